//! Properties of the operator's pure parts, over generated input: what holds
//! for every refresh interval, template, parameter path, ARN, AWS failure and
//! sync outcome, not only for the examples of the unit tests.
//!
//! Bounded: proptest's default of 256 cases per property (`PROPTEST_CASES`
//! changes it), a few seconds in all.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;

use ssm_operator::api::{KeyFrom, ParameterStatus, Reason, SecretValue, SyncError};
use ssm_operator::aws::arn::{Arn, split_selector};
use ssm_operator::aws::classify::{self, AwsFailure, FailureKind};
use ssm_operator::reconcile::build::{compose, template};
use ssm_operator::reconcile::plan::parse_interval;
use ssm_operator::reconcile::status::{self, SyncOutcome};

// --- refreshInterval ---------------------------------------------------------

fn unit_seconds(unit: char) -> u64 {
    match unit {
        'h' => 3600,
        'm' => 60,
        _ => 1,
    }
}

proptest! {
    #[test]
    fn an_interval_of_units_is_their_sum(parts in prop::collection::vec((0u64..100_000, prop::sample::select(vec!['h', 'm', 's'])), 1..5)) {
        let text: String = parts.iter().map(|(n, unit)| format!("{n}{unit}")).collect();
        let total: u64 = parts.iter().map(|(n, unit)| n * unit_seconds(*unit)).sum();
        let parsed = parse_interval(&text);
        if total >= 10 {
            prop_assert_eq!(parsed.ok(), Some(Some(Duration::from_secs(total))), "{}", text);
        } else {
            prop_assert!(parsed.is_err(), "{} is under the 10 s minimum", text);
        }
    }

    #[test]
    fn any_text_parses_to_zero_or_at_least_ten_seconds_or_invalid_spec(text in "\\PC{0,12}|[0-9hms]{0,12}") {
        match parse_interval(&text) {
            Ok(None) => prop_assert_eq!(text, "0"),
            Ok(Some(duration)) => prop_assert!(duration >= Duration::from_secs(10)),
            Err(error) => prop_assert_eq!(error.reason(), Reason::InvalidSpec),
        }
    }

    #[test]
    fn an_interval_with_any_other_character_is_refused(
        before in "[0-9]{1,4}[hms]", other in "[^0-9hms]", after in "[0-9]{0,4}[hms]?",
    ) {
        let text = format!("{before}{other}{after}");
        prop_assert!(parse_interval(&text).is_err(), "{:?} was accepted", text);
    }

    #[test]
    fn a_huge_interval_is_refused_not_wrapped(n in (u64::MAX / 3600 + 1)..u64::MAX) {
        let text = format!("{n}h");
        prop_assert!(parse_interval(&text).is_err());
    }
}

// --- templates -------------------------------------------------------------------

/// Values are upper case, keys and template text lower case: an error that
/// holds an upper-case run holds a value.
fn secret_values() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-z]{1,6}", "[A-Z]{8,40}", 1..5)
}

#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    /// `{{ key }}` of the n-th value (modulo their number).
    Value(usize),
    /// A placeholder of no value.
    Unknown(String),
    /// `{{` never closed.
    Unclosed,
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    let piece = prop_oneof![
        4 => "[a-z :/@.]{0,10}".prop_map(Piece::Text),
        4 => any::<usize>().prop_map(Piece::Value),
        1 => "[a-z]{7,9}".prop_map(Piece::Unknown),
        1 => Just(Piece::Unclosed),
    ];
    prop::collection::vec(piece, 0..12)
}

/// The template text and what it renders to, if it renders.
fn template_of(pieces: &[Piece], values: &BTreeMap<String, String>) -> (String, Option<String>) {
    let keys: Vec<&String> = values.keys().collect();
    let (mut text, mut rendered) = (String::new(), Some(String::new()));
    for piece in pieces {
        match piece {
            Piece::Text(literal) => {
                text.push_str(literal);
                if let Some(r) = rendered.as_mut() {
                    r.push_str(literal);
                }
            }
            Piece::Value(n) => {
                let key = keys[n % keys.len()];
                text.push_str(&format!("{{{{ {key} }}}}"));
                if let Some(r) = rendered.as_mut() {
                    r.push_str(&values[key]);
                }
            }
            Piece::Unknown(name) => {
                text.push_str(&format!("{{{{{name}}}}}"));
                rendered = None;
            }
            Piece::Unclosed => {
                // Unless a later `}}` closes it into an unknown placeholder.
                text.push_str("{{");
                rendered = None;
            }
        }
    }
    (text, rendered)
}

fn secret_data(values: &BTreeMap<String, String>) -> BTreeMap<String, SecretValue> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), SecretValue::new(v.clone())))
        .collect()
}

proptest! {
    #[test]
    fn a_rendered_template_never_passes_the_secret_limit(
        values in secret_values(),
        templates in prop::collection::vec(pieces(), 1..4),
        limit in 0usize..600,
    ) {
        let data = secret_data(&values);
        let texts: BTreeMap<String, String> = templates
            .iter()
            .enumerate()
            .map(|(i, pieces)| (format!("TEMPLATE_{i}"), template_of(pieces, &values).0))
            .collect();
        if let Ok(rendered) = template::render_all(&texts, &data, "target", limit) {
            let size: usize = data.iter().chain(rendered.iter()).map(|(k, v)| k.len() + v.len()).sum();
            prop_assert!(size <= limit, "{} bytes rendered under a limit of {}", size, limit);
        }
    }

    #[test]
    fn a_template_renders_exactly_its_substitution_when_it_fits(
        values in secret_values(),
        pieces in pieces(),
        slack in prop::option::of(0usize..100),
    ) {
        let data = secret_data(&values);
        let (text, expected) = template_of(&pieces, &values);
        let Some(expected) = expected else { return Ok(()) };
        let size = data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + "key".len() + expected.len();
        let limit = slack.map_or(size.saturating_sub(1), |s| size + s);
        let texts = BTreeMap::from([("key".to_owned(), text)]);
        match template::render_all(&texts, &data, "target", limit) {
            Ok(rendered) => {
                prop_assert!(limit >= size);
                prop_assert_eq!(rendered["key"].expose(), expected.as_bytes());
            }
            Err(error) => {
                prop_assert!(limit < size, "{}", error.message());
                prop_assert_eq!(error.reason(), Reason::SecretTooLarge);
            }
        }
    }

    #[test]
    fn no_template_error_holds_a_value(
        values in secret_values(),
        templates in prop::collection::vec(pieces(), 1..4),
        limit in 0usize..600,
    ) {
        let data = secret_data(&values);
        let texts: BTreeMap<String, String> = templates
            .iter()
            .enumerate()
            .map(|(i, pieces)| (format!("t{i}"), template_of(pieces, &values).0))
            .collect();
        if let Err(error) = template::render_all(&texts, &data, "target", limit) {
            let message = error.message();
            for value in values.values() {
                for fragment in value.as_bytes().windows(4) {
                    let fragment = std::str::from_utf8(fragment).unwrap_or_default();
                    prop_assert!(!message.contains(fragment), "a fragment of a value in {:?}", message);
                }
            }
        }
    }
}

proptest! {
    /// Admission never refuses a template that the operator would render.
    #[test]
    fn what_admission_refuses_the_operator_refuses_too(
        text in "(\\{\\{|\\}\\}|\\{|\\}|\\||a|b| |trim|b64enc|urlpath|upper|x){0,16}",
    ) {
        let pattern = regex_lite::Regex::new(&ssm_operator::api::template_pattern()).unwrap();
        let data = secret_data(&BTreeMap::from([("a".to_owned(), "v".to_owned()), ("b".to_owned(), "w".to_owned())]));
        let texts = BTreeMap::from([("key".to_owned(), text.clone())]);
        let rendered = template::render_all(&texts, &data, "target", 1 << 20);
        if !pattern.is_match(&text) {
            prop_assert!(rendered.is_err(), "admission would refuse {:?}, which renders", text);
        }
    }

    /// `urlpath` leaves only unreserved characters and `%XX`, and decodes
    /// back to the value; `b64enc | b64dec` is the value itself.
    #[test]
    fn url_and_base64_filters_round_trip(value in "\\PC{0,40}") {
        let data = secret_data(&BTreeMap::from([("v".to_owned(), value.clone())]));
        let texts = BTreeMap::from([
            ("path".to_owned(), "{{ v | urlpath }}".to_owned()),
            ("b64".to_owned(), "{{ v | b64enc | b64dec }}".to_owned()),
        ]);
        let rendered = template::render_all(&texts, &data, "target", 1 << 20).unwrap();
        let encoded = rendered["path"].expose();
        prop_assert!(encoded.iter().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(b)));
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < encoded.len() {
            if encoded[i] == b'%' {
                let hex = std::str::from_utf8(&encoded[i + 1..i + 3]).unwrap();
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                decoded.push(encoded[i]);
                i += 1;
            }
        }
        prop_assert_eq!(decoded, value.as_bytes());
        prop_assert_eq!(rendered["b64"].expose(), value.as_bytes());
    }
}

// --- keys of a path import -----------------------------------------------------------

fn is_valid_secret_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        && key != "."
        && !key.starts_with("..")
}

fn parameter_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z0-9_.-]{1,12}",
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => "\\PC{1,4}",
    ]
}

proptest! {
    #[test]
    fn every_key_a_path_import_accepts_is_a_valid_secret_key(
        prefix in prop::collection::vec("[a-z]{1,5}", 1..3).prop_map(|s| format!("/{}", s.join("/"))),
        below in prop::collection::vec(parameter_segment(), 1..4),
        relative in any::<bool>(),
        outside in any::<bool>(),
    ) {
        let name = match outside {
            false => format!("{prefix}/{}", below.join("/")),
            true => format!("/elsewhere/{}", below.join("/")),
        };
        let key_from = if relative { KeyFrom::RelativePath } else { KeyFrom::Basename };
        match compose::path_key(&prefix, &name, key_from) {
            Ok(key) => prop_assert!(is_valid_secret_key(&key), "{:?} from {:?}", key, name),
            Err(error) => prop_assert_eq!(error.reason(), Reason::InvalidSpec),
        }
    }

    #[test]
    fn a_path_import_keys_every_parameter_of_valid_segments(
        prefix in prop::collection::vec("[a-z]{1,5}", 1..3).prop_map(|s| format!("/{}", s.join("/"))),
        below in prop::collection::vec("[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,11}", 1..4),
    ) {
        let name = format!("{prefix}/{}", below.join("/"));
        let basename = compose::path_key(&prefix, &name, KeyFrom::Basename);
        prop_assert_eq!(basename.ok(), below.last().cloned());
        let relative = compose::path_key(&prefix, &name, KeyFrom::RelativePath);
        prop_assert_eq!(relative.ok(), Some(below.join(".")));
    }
}

// --- ARNs of every partition ---------------------------------------------------------

const PARTITIONS: [&str; 8] = [
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

fn partition() -> impl Strategy<Value = &'static str> {
    prop::sample::select(PARTITIONS.to_vec())
}

fn region() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{2}(-gov|-iso|-isob)?-[a-z]{4,9}-[1-9]",
        Just(String::new()),
    ]
}

fn account() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9]{12}", Just(String::new())]
}

/// The text of an ARN (the display that `Arn::parse` reads).
fn display(arn: &Arn<'_>) -> String {
    format!(
        "arn:{}:{}:{}:{}:{}",
        arn.partition, arn.service, arn.region, arn.account, arn.resource
    )
}

proptest! {
    #[test]
    fn an_arn_of_any_partition_parses_into_its_parts_and_displays_back(
        partition in partition(),
        service in "[a-z][a-z0-9-]{0,12}",
        region in region(),
        account in account(),
        resource in "[a-zA-Z0-9/_.:*-]{0,40}",
    ) {
        let text = format!("arn:{partition}:{service}:{region}:{account}:{resource}");
        let arn = Arn::parse(&text);
        prop_assert_eq!(arn, Some(Arn { partition, service: &service, region: &region, account: &account, resource: &resource }));
        prop_assert_eq!(arn.map(|a| display(&a)), Some(text.clone()));
    }

    #[test]
    fn whatever_parses_as_an_arn_displays_back_to_the_same_text(text in "(arn:)?\\PC{0,30}|arn:[a-z:-]{0,20}") {
        if let Some(arn) = Arn::parse(&text) {
            prop_assert_eq!(display(&arn), text);
        }
    }

    #[test]
    fn a_parameter_arn_of_any_partition_names_its_parameter_and_keeps_its_selector(
        partition in partition(),
        region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
        account in "[0-9]{12}",
        segments in prop::collection::vec("[a-zA-Z0-9_.-]{1,10}", 1..4),
        selector in prop::option::of("[0-9]{1,3}|[a-z]{1,8}"),
    ) {
        let path = segments.join("/");
        let arn_text = format!("arn:{partition}:ssm:{region}:{account}:parameter/{path}");
        let named = match &selector {
            Some(s) => format!("{arn_text}:{s}"),
            None => arn_text.clone(),
        };
        prop_assert_eq!(split_selector(&named), (arn_text.as_str(), selector.as_deref()));
        let arn = Arn::parse(&arn_text);
        let expected = if segments.len() > 1 { format!("/{path}") } else { path.clone() };
        prop_assert_eq!(arn.and_then(|a| a.parameter_name()).map(|n| n.into_owned()), Some(expected));
    }
}

// --- classification of AWS failures -------------------------------------------------

const CODES: [&str; 22] = [
    "AccessDeniedException",
    "AccessDenied",
    "InvalidKeyId",
    "KMSInvalidStateException",
    "DisabledException",
    "NotFoundException",
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "ValidationException",
    "InvalidParameters",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "InternalServerError",
    "ServiceUnavailable",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "InvalidIdentityToken",
    "IDPRejectedClaim",
    "IDPCommunicationError",
    "ExpiredToken",
];

/// Pieces of AWS error text the classifier recognises, and a secret-like
/// canary (an access key id) it must never repeat.
fn message_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        (partition(), "[0-9]{12}", "[a-f0-9-]{8,36}")
            .prop_map(|(p, a, k)| format!("arn:{p}:kms:ap-northeast-1:{a}:key/{k}")),
        (partition(), "[0-9]{12}", "[a-z-]{1,12}")
            .prop_map(|(p, a, r)| format!("arn:{p}:sts::{a}:assumed-role/{r}/session")),
        (partition(), "[0-9]{12}", "[a-z/]{1,12}")
            .prop_map(|(p, a, n)| format!("arn:{p}:ssm:ap-northeast-1:{a}:parameter/{n}")),
        Just("(Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException)".to_owned()),
        Just("Error Code: DisabledException".to_owned()),
        Just("Error Code: KMSInvalidStateException".to_owned()),
        Just("is not authorized to perform: ssm:GetParameters on resource:".to_owned()),
        Just("Request ID: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".to_owned()),
        "[A-Z0-9]{16}".prop_map(|k| format!("AKIA{k}")),
        "[a-z ]{0,20}",
    ]
}

fn failure() -> impl Strategy<Value = AwsFailure> {
    (
        prop::sample::select(vec![
            FailureKind::Service,
            FailureKind::Timeout,
            FailureKind::Transport,
        ]),
        prop::option::of(prop_oneof![
            4 => prop::sample::select(CODES.to_vec()).prop_map(str::to_owned),
            1 => "[A-Za-z]{1,20}",
        ]),
        prop::option::of(prop::collection::vec(message_piece(), 0..5).prop_map(|p| p.join(" "))),
        prop::option::of(prop_oneof![
            Just(400u16),
            Just(403),
            Just(500),
            Just(503),
            100u16..600
        ]),
    )
        .prop_map(|(kind, code, message, status)| AwsFailure {
            kind,
            code,
            message,
            status,
        })
}

fn classified(failure: &AwsFailure, parameter: &str, role: &str) -> Vec<SyncError> {
    vec![
        classify::ssm_read(failure, "GetParameters", parameter),
        classify::web_identity(failure, role),
        classify::assume_role(failure, role),
    ]
}

proptest! {
    #[test]
    fn every_aws_failure_is_classified_with_a_bounded_message_and_no_credential(
        failure in failure(),
        parameter in "/[a-z]{1,10}",
    ) {
        let role = "arn:aws:iam::123456789012:role/reader";
        for error in classified(&failure, &parameter, role) {
            let message = error.message();
            prop_assert!(message.chars().count() <= ssm_operator::api::MAX_MESSAGE_CHARS);
            prop_assert!(!message.contains("AKIA"), "an access key id in {:?}", message);
            prop_assert!(!message.contains("0f1e2d3c"), "a request id in {:?}", message);
        }
    }

    #[test]
    fn a_kms_denial_names_the_key_arn_of_any_partition(
        partition in partition(),
        key in "[a-f0-9]{8}-[a-f0-9]{4}",
        noise in "[a-z ]{0,20}",
    ) {
        let arn = format!("arn:{partition}:kms:us-east-1:123456789012:key/{key}");
        let failure = AwsFailure {
            code: Some("AccessDeniedException".to_owned()),
            message: Some(format!("{noise} not authorized to perform kms:Decrypt on resource: {arn} {noise}")),
            status: Some(400),
            ..AwsFailure::default()
        };
        match classify::ssm_read(&failure, "GetParameters", "/p") {
            SyncError::KmsAccessDenied { key, .. } => prop_assert_eq!(key, Some(arn)),
            other => prop_assert!(false, "{:?}", other.reason()),
        }
    }

    /// What a failure says comes from what the classifier recognises: the
    /// code, the ARNs, the asked parameter and role. Text it does not
    /// recognise reaches a message only as the sanitised AWS message of an
    /// error it cannot name (`AwsUnavailable`, `InvalidSpec` and
    /// `WebIdentityInvalid` details).
    #[test]
    fn a_named_failure_repeats_only_what_it_recognised(
        failure in failure(),
        canary in "[a-z]{6}".prop_map(|c| format!("canary{c}")),
    ) {
        let failure = AwsFailure {
            message: Some(format!("{} {canary}", failure.message.clone().unwrap_or_default())),
            ..failure
        };
        for error in classified(&failure, "/p", "arn:aws:iam::123456789012:role/reader") {
            let names_aws_text = matches!(
                error.reason(),
                Reason::AwsUnavailable | Reason::InvalidSpec | Reason::WebIdentityInvalid
            );
            if !names_aws_text {
                prop_assert!(!error.message().contains(&canary), "{:?} repeats {:?}", error.reason(), error.message());
            }
        }
    }
}

// --- status::next ------------------------------------------------------------------

fn sync_error() -> impl Strategy<Value = SyncError> {
    let name = "[a-z/]{1,12}";
    prop_oneof![
        (
            name,
            prop::option::of("arn:aws:kms:[a-z0-9-]{4,10}:[0-9]{12}:key/[a-f0-9]{8}")
        )
            .prop_map(|(parameter, key)| SyncError::KmsAccessDenied {
                parameter,
                key,
                principal: None
            }),
        (
            prop::collection::vec(name, 1..3),
            "[a-z]{2}-[a-z]{4,9}-[1-3]"
        )
            .prop_map(|(parameters, region)| SyncError::ParameterNotFound { parameters, region }),
        "[A-Za-z]{1,10}".prop_map(|operation| SyncError::Throttled { operation }),
        "[a-z ]{0,30}".prop_map(|detail| SyncError::AwsUnavailable { detail }),
        "[a-z ]{0,30}".prop_map(|detail| SyncError::InvalidSpec { detail }),
        (name, 0usize..5_000_000)
            .prop_map(|(secret, bytes)| SyncError::SecretTooLarge { secret, bytes }),
    ]
}

fn parameter_status() -> impl Strategy<Value = ParameterStatus> {
    (
        "[a-z/]{1,12}",
        "[a-z]{1,8}",
        1i64..100,
        prop::sample::select(vec!["String", "SecureString"]),
    )
        .prop_map(|(name, key, version, type_)| ParameterStatus {
            name,
            key,
            version,
            type_: type_.to_owned(),
            key_id: None,
            last_modified: None,
        })
}

fn outcome() -> impl Strategy<Value = SyncOutcome> {
    prop_oneof![
        prop::collection::vec(parameter_status(), 0..3)
            .prop_map(|parameters| SyncOutcome::Synced { parameters }),
        (sync_error(), any::<bool>())
            .prop_map(|(error, last_good)| SyncOutcome::Failed { error, last_good }),
    ]
}

fn time(second: i64) -> Time {
    Time(Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH))
}

proptest! {
    #[test]
    fn the_same_outcome_twice_gives_the_same_status(
        history in prop::collection::vec(outcome(), 0..3),
        outcome in outcome(),
        generation in prop::option::of(1i64..10),
        secret in "[a-z]{1,10}",
        first in 1_700_000_000i64..1_800_000_000,
        later in 1i64..1_000_000,
    ) {
        // Any status an earlier history of outcomes left.
        let mut old = None;
        for (i, earlier) in history.iter().enumerate() {
            old = Some(status::next(old.as_ref(), generation, &secret, earlier, &time(first - 1000 + i as i64)));
        }
        let once = status::next(old.as_ref(), generation, &secret, &outcome, &time(first));
        let twice = status::next(Some(&once), generation, &secret, &outcome, &time(first + later));
        prop_assert_eq!(twice, once);
    }
}
