//! AWS failure → [`SyncError`]: the one place that reads AWS error text.
//!
//! It matches on the error code plus the embedded `Error Code: X` and
//! `Service: AWSKMS` markers, never on whole messages (AWS rewords them), and
//! keeps only the parts it recognises: ARNs of keys, roles and parameters.

use std::sync::LazyLock;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use regex_lite::Regex;

use crate::api::{SyncError, truncate};

/// What went wrong on the wire, independent of the SDK's error types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsFailure {
    pub kind: FailureKind,
    pub code: Option<String>,
    pub message: Option<String>,
    pub status: Option<u16>,
}

/// Where in the request a failure happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailureKind {
    /// AWS answered with an error.
    #[default]
    Service,
    /// No answer in time.
    Timeout,
    /// The request did not reach AWS, or the answer was unreadable.
    Transport,
}

impl AwsFailure {
    /// Reads the failure out of an SDK error.
    pub fn of<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Self {
        let kind = match err {
            SdkError::TimeoutError(_) => FailureKind::Timeout,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => FailureKind::Transport,
            _ => FailureKind::Service,
        };
        Self {
            kind,
            code: err.code().map(str::to_owned),
            message: err.message().map(str::to_owned),
            status: err.raw_response().map(|r| r.status().as_u16()),
        }
    }

    fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("")
    }

    fn message(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }

    fn is_throttling(&self) -> bool {
        matches!(
            self.code(),
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
        )
    }

    /// 5xx, timeouts, connection errors and the like.
    fn unavailable(&self, operation: &str) -> Option<SyncError> {
        let detail = match self.kind {
            FailureKind::Timeout => format!("{operation} timed out"),
            FailureKind::Transport if self.code.is_none() => {
                format!("{operation} could not reach AWS")
            }
            _ if self.status.is_some_and(|s| s >= 500)
                || matches!(
                    self.code(),
                    "InternalServerError" | "InternalFailure" | "ServiceUnavailable"
                ) =>
            {
                format!("{operation} answered {}", self.describe())
            }
            _ => return None,
        };
        Some(SyncError::AwsUnavailable { detail })
    }

    /// `Code: message` without request ids or anything credential-like.
    pub(crate) fn describe(&self) -> String {
        let code = self
            .code
            .clone()
            .or_else(|| self.status.map(|s| format!("HTTP {s}")))
            .unwrap_or_else(|| "an error".to_owned());
        let message = sanitize(self.message());
        if message.is_empty() {
            code
        } else {
            truncate(format!("{code}: {message}"), 300)
        }
    }
}

static KMS_KEY_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+")
        .unwrap_or_else(|_| unreachable!("static regex"))
});
static PRINCIPAL_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"arn:aws[a-z-]*:(sts|iam)::[0-9]{12}:[A-Za-z0-9+=,.@_/-]+")
        .unwrap_or_else(|_| unreachable!("static regex"))
});
static PARAMETER_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter(/[A-Za-z0-9_.\-/]+)")
        .unwrap_or_else(|_| unreachable!("static regex"))
});
static STS_ACTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"perform: (sts:[A-Za-z]+)").unwrap_or_else(|_| unreachable!("static regex"))
});
static SSM_ACTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"perform: (ssm:[A-Za-z]+)").unwrap_or_else(|_| unreachable!("static regex"))
});
static REQUEST_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\s*;?\s*request ?id:?\s*[A-Za-z0-9-]+;?")
        .unwrap_or_else(|_| unreachable!("static regex"))
});
/// The request id the EKS Pod Identity agent puts before its errors:
/// "[<uuid>]: (<code>): <message>" (aws/eks-pod-identity-agent,
/// pkg/errors/errors.go).
static BRACKETED_REQUEST_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\]:?\s*")
        .unwrap_or_else(|_| unreachable!("static regex"))
});
static ACCESS_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(AKIA|ASIA)[A-Z0-9]{12,}\b").unwrap_or_else(|_| unreachable!("static regex"))
});

/// The session part of an assumed-role ARN
/// (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
static ROLE_SESSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(arn:aws[a-z-]*:sts::[0-9]{12}:assumed-role/[A-Za-z0-9+=,.@_-]+)/[A-Za-z0-9+=,.@_-]+",
    )
    .unwrap_or_else(|_| unreachable!("static regex"))
});

fn first_match(re: &Regex, text: &str) -> Option<String> {
    re.find(text)
        .map(|m| stable_sessions(m.as_str().trim_end_matches(['.', ',', ')'])))
}

/// Drops request ids and access key ids from AWS text, and names assumed
/// roles without their session.
pub fn sanitize(text: &str) -> String {
    let text = REQUEST_ID.replace_all(text, "");
    let text = BRACKETED_REQUEST_ID.replace_all(&text, "");
    let text = stable_sessions(&text);
    ACCESS_KEY
        .replace_all(&text, "<redacted>")
        .trim()
        .to_owned()
}

/// An assumed role's session names are not the operator's to choose when
/// its credentials come from the SDK's chain: EKS Pod Identity names each
/// session `eks-<cluster>-<pod>-<random UUID>` (EKS API Reference,
/// "AssumedRoleUser"), so the same refusal would read differently after
/// every credential refresh and rewrite the status. Messages name the role
/// (`…:assumed-role/<role>/*`), which is what a grant is written for.
fn stable_sessions(text: &str) -> String {
    ROLE_SESSION.replace_all(text, "$1/*").into_owned()
}

/// The codes with which AWS refuses credentials it no longer accepts
/// (expired session, unknown key): drop them and fetch new. JSON services
/// (SSM) say `ExpiredTokenException` ("The security token included in the
/// request is expired"), `UnrecognizedClientException`; query services
/// (STS, for a chained AssumeRole) say `ExpiredToken`,
/// `InvalidClientTokenId`.
pub const CREDENTIALS_REFUSED: [&str; 4] = [
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "ExpiredToken",
    "InvalidClientTokenId",
];

/// The codes of a signature AWS did not accept: `InvalidSignatureException`
/// (JSON services), `SignatureDoesNotMatch` (query services). Their usual
/// cause is a clock off by more than AWS's five minutes ("Signature expired:
/// … is now earlier than …", "Signature not yet current"): new credentials
/// would be refused the same way, so the cached ones are kept and no STS
/// call is made for them.
pub const SIGNATURE_REFUSED: [&str; 2] = ["InvalidSignatureException", "SignatureDoesNotMatch"];

/// KMS error codes that say "try again": what KMS answers SSM when it is
/// over its request quota ("You have exceeded the rate at which you may call
/// KMS. Reduce the frequency of your calls. (Service: AWSKMS; Status Code:
/// 400; Error Code: ThrottlingException; …)", repost.aws knowledge-center
/// kms-throttlingexception-error) …
const KMS_THROTTLED: [&str; 2] = ["ThrottlingException", "LimitExceededException"];
/// … or failing in a way its API reference calls retryable:
/// `KMSInternalException` ("an internal exception occurred. The request can
/// be retried"), `DependencyTimeoutException` ("The system timed out …
/// You can retry the request"), `KeyUnavailableException` ("the specified
/// CMK was not available. You can retry the request").
const KMS_PASSING: [&str; 3] = [
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
];

static EMBEDDED_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Error Code: ([A-Za-z]+)").unwrap_or_else(|_| unreachable!("static regex"))
});

/// A passing KMS failure inside an SSM error, whatever SSM's own code around
/// it (which AWS does not document for these): never a key-state reason.
fn kms_passing(failure: &AwsFailure, operation: &str) -> Option<SyncError> {
    let message = failure.message();
    if !message.contains("Service: AWSKMS") {
        return None;
    }
    let embedded = EMBEDDED_CODE.captures(message)?.get(1)?.as_str();
    if KMS_THROTTLED.contains(&embedded) {
        return Some(SyncError::Throttled {
            operation: format!("kms:Decrypt (for {operation})"),
        });
    }
    KMS_PASSING
        .contains(&embedded)
        .then(|| SyncError::AwsUnavailable {
            detail: format!("KMS failed to decrypt for {operation} ({embedded}); will retry"),
        })
}

/// A failed SSM read of `parameter` (the name asked for; a batch of several
/// passes its first name and is re-asked name by name when needed).
pub fn ssm_read(failure: &AwsFailure, operation: &str, parameter: &str) -> SyncError {
    let parameter = parameter.to_owned();
    let message = failure.message();
    if let Some(passing) = kms_passing(failure, operation) {
        return passing;
    }
    if failure.is_throttling() {
        return SyncError::Throttled {
            operation: operation.to_owned(),
        };
    }
    if let Some(unavailable) = failure.unavailable(operation) {
        return unavailable;
    }
    let key = first_match(&KMS_KEY_ARN, message);
    match failure.code() {
        "AccessDeniedException" | "AccessDenied" if is_kms(message) => SyncError::KmsAccessDenied {
            parameter,
            key,
            principal: first_match(&PRINCIPAL_ARN, message),
        },
        "AccessDeniedException" | "AccessDenied" => SyncError::SsmAccessDenied {
            parameter: PARAMETER_ARN
                .captures(message)
                .and_then(|c| c.get(1))
                .map(|m| denied_parameter_name(m.as_str(), &parameter))
                .unwrap_or(parameter),
            action: SSM_ACTION
                .captures(message)
                .and_then(|c| c.get(1))
                .map_or_else(|| format!("ssm:{operation}"), |m| m.as_str().to_owned()),
            principal: first_match(&PRINCIPAL_ARN, message),
        },
        "InvalidKeyId" | "KMSInvalidStateException" | "DisabledException" | "NotFoundException" => {
            kms_key_state(failure, parameter, key)
        }
        // The store that made the call fills in the region it searched.
        "ParameterNotFound" => SyncError::ParameterNotFound {
            parameters: vec![parameter],
            region: String::new(),
        },
        "ParameterVersionNotFound" => SyncError::ParameterVersionNotFound {
            parameter,
            selector: "such version or label".to_owned(),
        },
        "ValidationException" | "InvalidParameters" => SyncError::InvalidSpec {
            detail: format!(
                "AWS rejected the read of {parameter}: {}",
                failure.describe()
            ),
        },
        // SSM refused a NextToken it handed out (expired, say): the listing
        // is read again from its start, never taken as complete.
        "InvalidNextToken" => SyncError::AwsUnavailable {
            detail: format!(
                "{operation} of {parameter} refused its own NextToken (InvalidNextToken); the listing will be read again"
            ),
        },
        code if SIGNATURE_REFUSED.contains(&code) => SyncError::AwsUnavailable {
            detail: format!(
                "AWS refused the request's signature ({code}); usually the clock of the operator's node is off"
            ),
        },
        code if CREDENTIALS_REFUSED.contains(&code) => SyncError::AwsUnavailable {
            detail: format!(
                "AWS refused the operator's credentials ({})",
                failure.code()
            ),
        },
        _ => SyncError::AwsUnavailable {
            detail: format!("{operation} failed: {}", failure.describe()),
        },
    }
}

fn is_kms(message: &str) -> bool {
    message.contains("Service: AWSKMS")
        || message.contains("kms:Decrypt")
        || message.contains("customer master key")
}

/// AWS names the denied resource by ARN; keep the caller's spelling of the
/// name when it is the same parameter.
fn denied_parameter_name(arn_path: &str, asked: &str) -> String {
    if arn_path.trim_start_matches('/') == asked.trim_start_matches('/')
        || asked.ends_with(arn_path)
    {
        asked.to_owned()
    } else {
        arn_path.trim_start_matches('/').to_owned()
    }
}

/// The key states KMS refuses Decrypt in with `KMSInvalidStateException`
/// (AWS KMS Developer Guide, "Key states of AWS KMS keys"), as its message
/// words them: "<key ARN> is pending deletion." is KMS's known text; the
/// others are taken to follow its form.
const UNUSABLE_STATES: [&str; 5] = [
    "pending replica deletion",
    "pending import",
    "unavailable",
    "creating",
    "updating",
];

fn kms_key_state(failure: &AwsFailure, parameter: String, key: Option<String>) -> SyncError {
    let message = failure.message();
    let embedded =
        |code: &str| message.contains(&format!("Error Code: {code}")) || failure.code() == code;
    let says = |state: &str| message.contains(&format!(" is {state}"));
    if embedded("DisabledException") || says("disabled") {
        SyncError::KmsKeyDisabled { parameter, key }
    } else if says("pending deletion") {
        SyncError::KmsKeyPendingDeletion { parameter, key }
    } else if embedded("KMSInvalidStateException") {
        let state = UNUSABLE_STATES.into_iter().find(|state| says(state));
        SyncError::KmsKeyUnusable {
            parameter,
            key,
            state: state.unwrap_or("unknown").to_owned(),
        }
    } else if embedded("AccessDeniedException") {
        SyncError::KmsAccessDenied {
            parameter,
            key,
            principal: first_match(&PRINCIPAL_ARN, message),
        }
    } else if embedded("NotFoundException") || message.contains("does not exist") {
        SyncError::KmsKeyNotFound { parameter, key }
    } else {
        // An InvalidKeyId that names no state KMS is known to answer: say
        // so rather than call the key missing.
        SyncError::KmsKeyUnusable {
            parameter,
            key,
            state: "unknown".to_owned(),
        }
    }
}

/// A failed `sts:AssumeRoleWithWebIdentity` for `role`.
pub fn web_identity(failure: &AwsFailure, role: &str) -> SyncError {
    let role = role.to_owned();
    if failure.is_throttling() {
        return SyncError::Throttled {
            operation: "AssumeRoleWithWebIdentity".to_owned(),
        };
    }
    if let Some(unavailable) = failure.unavailable("AssumeRoleWithWebIdentity") {
        return unavailable;
    }
    if let Some(refused) = session_duration_refused(failure, &role) {
        return refused;
    }
    match failure.code() {
        "AccessDenied" | "AccessDeniedException" => SyncError::WebIdentityDenied { role },
        "ExpiredTokenException" | "ExpiredToken" => SyncError::WebIdentityTokenExpired { role },
        "InvalidIdentityToken" | "IDPRejectedClaim" => SyncError::WebIdentityInvalid {
            role,
            detail: failure.describe(),
        },
        "IDPCommunicationError" => SyncError::AwsUnavailable {
            detail: format!(
                "the identity provider did not answer STS: {}",
                failure.describe()
            ),
        },
        _ => SyncError::WebIdentityInvalid {
            role,
            detail: failure.describe(),
        },
    }
}

/// STS's `ValidationError` for a `DurationSeconds` it does not grant, by
/// the limit its known texts name: "The requested DurationSeconds exceeds
/// the MaxSessionDuration set for this role.", "… exceeds the 1 hour session
/// limit for roles assumed by role chaining.", and input validation's
/// "Value '…' at 'durationSeconds' failed to satisfy constraint".
fn session_duration_refused(failure: &AwsFailure, role: &str) -> Option<SyncError> {
    let message = failure.message();
    if failure.code() != "ValidationError"
        || !message.to_ascii_lowercase().contains("durationseconds")
    {
        return None;
    }
    let why = if message.contains("MaxSessionDuration") {
        "it exceeds the role's MaxSessionDuration; raise the role's MaxSessionDuration or lower --aws-session-duration"
    } else if message.contains("role chaining") {
        "it exceeds the 1 hour limit of sessions assumed by role chaining"
    } else {
        "STS grants sessions of 15m to 12h; set --aws-session-duration within them"
    };
    Some(SyncError::SessionDurationRefused {
        role: role.to_owned(),
        why: why.to_owned(),
    })
}

/// A failed chained `sts:AssumeRole` of `role`.
pub fn assume_role(failure: &AwsFailure, role: &str) -> SyncError {
    if failure.is_throttling() {
        return SyncError::Throttled {
            operation: "AssumeRole".to_owned(),
        };
    }
    if let Some(unavailable) = failure.unavailable("AssumeRole") {
        return unavailable;
    }
    if let Some(refused) = session_duration_refused(failure, role) {
        return refused;
    }
    if SIGNATURE_REFUSED.contains(&failure.code()) {
        return SyncError::AwsUnavailable {
            detail: format!(
                "STS refused the signature of sts:AssumeRole of {role} ({}); usually the clock of the operator's node is off",
                failure.code()
            ),
        };
    }
    if CREDENTIALS_REFUSED.contains(&failure.code()) {
        // The first link's session expired or was refused: a new one helps.
        return SyncError::AwsUnavailable {
            detail: format!(
                "STS refused the credentials sts:AssumeRole of {role} was signed with ({}); they will be renewed",
                failure.code()
            ),
        };
    }
    SyncError::AssumeRoleDenied {
        role: role.to_owned(),
        principal: first_match(&PRINCIPAL_ARN, failure.message()),
        action: STS_ACTION
            .captures(failure.message())
            .and_then(|c| c.get(1))
            .map_or("sts:AssumeRole", |m| m.as_str())
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, message: &str) -> AwsFailure {
        AwsFailure {
            kind: FailureKind::Service,
            code: Some(code.into()),
            message: Some(message.into()),
            status: Some(400),
        }
    }

    const KEY: &str =
        "arn:aws:kms:ap-northeast-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const ROLE: &str = "arn:aws:sts::111122223333:assumed-role/ssm-operator/ssm-operator";
    /// How messages name [`ROLE`]: without its session.
    const ROLE_IN_MESSAGES: &str = "arn:aws:sts::111122223333:assumed-role/ssm-operator/*";

    #[test]
    fn identity_policy_kms_denial_is_kms_access_denied_with_key_and_role() {
        let f = service(
            "AccessDeniedException",
            &format!(
                "User: {ROLE} is not authorized to perform: kms:Decrypt on resource: {KEY} because no \
                 identity-based policy allows the kms:Decrypt action (Service: AWSKMS; Status Code: 400; \
                 Error Code: AccessDeniedException; Request ID: 0e6f2a8c-1111-2222-3333-444455556666; Proxy: null)"
            ),
        );
        assert_eq!(
            ssm_read(&f, "GetParameters", "prd-db-pass"),
            SyncError::KmsAccessDenied {
                parameter: "prd-db-pass".into(),
                key: Some(KEY.into()),
                principal: Some(ROLE_IN_MESSAGES.into()),
            }
        );
    }

    #[test]
    fn key_policy_text_is_kms_access_denied() {
        let f = service(
            "AccessDeniedException",
            "The ciphertext refers to a customer master key that does not exist, does not exist in this \
             region, or you are not allowed to access. (Service: AWSKMS; Status Code: 400; Error Code: \
             AccessDeniedException; Request ID: 9a1c)",
        );
        assert_eq!(
            ssm_read(&f, "GetParameters", "p").reason(),
            crate::api::Reason::KmsAccessDenied
        );
    }

    #[test]
    fn ssm_denial_names_action_and_parameter() {
        let f = service(
            "AccessDeniedException",
            &format!(
                "User: {ROLE} is not authorized to perform: ssm:GetParameters on resource: \
                 arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/db/pass because no identity-based \
                 policy allows the ssm:GetParameters action"
            ),
        );
        assert_eq!(
            ssm_read(&f, "GetParameters", "/prd/db/pass"),
            SyncError::SsmAccessDenied {
                parameter: "/prd/db/pass".into(),
                action: "ssm:GetParameters".into(),
                principal: Some(ROLE_IN_MESSAGES.into()),
            }
        );
    }

    #[test]
    fn invalid_key_id_is_told_apart_by_embedded_error_code() {
        let disabled = service(
            "InvalidKeyId",
            &format!(
                "{KEY} is disabled. (Service: AWSKMS; Status Code: 400; Error Code: DisabledException; Request ID: x)"
            ),
        );
        let pending = service(
            "InvalidKeyId",
            &format!(
                "{KEY} is pending deletion. (Service: AWSKMS; Status Code: 400; Error Code: KMSInvalidStateException; Request ID: x)"
            ),
        );
        let missing = service(
            "InvalidKeyId",
            &format!(
                "Key '{KEY}' does not exist (Service: AWSKMS; Status Code: 400; Error Code: NotFoundException; Request ID: x)"
            ),
        );
        use crate::api::Reason::*;
        assert_eq!(
            ssm_read(&disabled, "GetParameters", "p").reason(),
            KmsKeyDisabled
        );
        assert_eq!(
            ssm_read(&pending, "GetParameters", "p").reason(),
            KmsKeyPendingDeletion
        );
        assert_eq!(
            ssm_read(&missing, "GetParameters", "p").reason(),
            KmsKeyNotFound
        );
        let pending_import = service(
            "InvalidKeyId",
            &format!(
                "{KEY} is pending import. (Service: AWSKMS; Status Code: 400; Error Code: KMSInvalidStateException; Request ID: x)"
            ),
        );
        let unusable = ssm_read(&pending_import, "GetParameters", "p");
        assert_eq!(unusable.reason(), KmsKeyUnusable);
        assert!(unusable.message().contains("its state is pending import"));
        assert!(unusable.message().contains(KEY));
        let disconnected = service(
            "InvalidKeyId",
            &format!(
                "{KEY} is unavailable. (Service: AWSKMS; Status Code: 400; Error Code: KMSInvalidStateException; Request ID: x)"
            ),
        );
        assert!(
            ssm_read(&disconnected, "GetParameters", "p")
                .message()
                .contains("custom key store")
        );
        let unknown = service("InvalidKeyId", "The key cannot be used.");
        assert_eq!(
            ssm_read(&unknown, "GetParameters", "p"),
            SyncError::KmsKeyUnusable {
                parameter: "p".into(),
                key: None,
                state: "unknown".into(),
            }
        );
        assert!(
            ssm_read(&missing, "GetParameters", "p")
                .message()
                .contains(KEY)
        );
    }

    #[test]
    fn throttling_and_server_errors_are_transient() {
        use crate::api::Reason::*;
        assert_eq!(
            ssm_read(
                &service("ThrottlingException", "Rate exceeded"),
                "GetParameters",
                "p"
            )
            .reason(),
            Throttled
        );
        let mut unavailable = service("InternalServerError", "boom");
        unavailable.status = Some(500);
        assert_eq!(
            ssm_read(&unavailable, "GetParameters", "p").reason(),
            AwsUnavailable
        );
        let timeout = AwsFailure {
            kind: FailureKind::Timeout,
            ..AwsFailure::default()
        };
        assert_eq!(
            ssm_read(&timeout, "GetParameters", "p").reason(),
            AwsUnavailable
        );
    }

    #[test]
    fn a_refused_signature_is_passing_and_not_a_reason_to_drop_the_credentials() {
        let skewed = service(
            "InvalidSignatureException",
            "Signature expired: 20260101T000000Z is now earlier than 20260101T000500Z",
        );
        let error = ssm_read(&skewed, "GetParameters", "p");
        assert_eq!(error.reason(), crate::api::Reason::AwsUnavailable);
        assert!(error.message().contains("clock"), "{}", error.message());
        assert!(!CREDENTIALS_REFUSED.contains(&"InvalidSignatureException"));
        let chained = service("SignatureDoesNotMatch", "Signature not yet current");
        assert_eq!(
            assume_role(&chained, "arn:aws:iam::111122223333:role/r").reason(),
            crate::api::Reason::AwsUnavailable
        );
    }

    #[test]
    fn a_refused_session_duration_is_told_as_such_with_the_limit_it_passed() {
        use crate::api::Reason::*;
        let role = "arn:aws:iam::111122223333:role/op";
        let too_long = service(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        );
        let refused = web_identity(&too_long, role);
        assert_eq!(refused.reason(), SessionDurationRefused);
        assert!(refused.message().contains("MaxSessionDuration"));
        assert!(refused.message().contains(role));
        let chained = service(
            "ValidationError",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by \
             role chaining.",
        );
        let refused = assume_role(&chained, role);
        assert_eq!(refused.reason(), SessionDurationRefused);
        assert!(refused.message().contains("role chaining"));
        let out_of_range = service(
            "ValidationError",
            "1 validation error detected: Value '60' at 'durationSeconds' failed to satisfy \
             constraint: Member must have value greater than or equal to 900",
        );
        assert_eq!(
            assume_role(&out_of_range, role).reason(),
            SessionDurationRefused
        );
        // Another ValidationError stays what it was.
        let other = service(
            "ValidationError",
            "Invalid length for parameter RoleSessionName",
        );
        assert_eq!(assume_role(&other, role).reason(), AssumeRoleDenied);
    }

    #[test]
    fn web_identity_failures_are_classified_by_sts_code() {
        use crate::api::Reason::*;
        let role = "arn:aws:iam::111122223333:role/op";
        assert_eq!(
            web_identity(
                &service(
                    "AccessDenied",
                    "Not authorized to perform sts:AssumeRoleWithWebIdentity"
                ),
                role
            )
            .reason(),
            WebIdentityDenied
        );
        assert_eq!(
            web_identity(&service("ExpiredTokenException", "Token expired"), role).reason(),
            WebIdentityTokenExpired
        );
        assert_eq!(
            web_identity(
                &service("InvalidIdentityToken", "No OpenIDConnect provider found"),
                role
            )
            .reason(),
            WebIdentityInvalid
        );
        assert_eq!(
            assume_role(&service("AccessDenied", "not authorized"), role).reason(),
            AssumeRoleDenied
        );
    }

    /// KMS's own throttling text inside an SSM error whose code is `code`.
    fn kms_inside(code: &str, kms_code: &str, kms_status: u16) -> AwsFailure {
        let text = match kms_code {
            "ThrottlingException" => {
                "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
            }
            _ => "The request was rejected because an internal exception occurred.",
        };
        let mut f = service(
            code,
            &format!(
                "{text} (Service: AWSKMS; Status Code: {kms_status}; Error Code: {kms_code}; Request ID: 4d15a2da-441a; Proxy: null)"
            ),
        );
        if code == "InternalServerError" {
            f.status = Some(500);
        }
        f
    }

    #[test]
    fn kms_throttling_inside_ssm_is_throttled_whatever_ssms_code_around_it() {
        use crate::api::Reason::*;
        for code in [
            "ThrottlingException",
            "InvalidKeyId",
            "AccessDeniedException",
            "InternalServerError",
            "SomethingNew",
        ] {
            let error = ssm_read(
                &kms_inside(code, "ThrottlingException", 400),
                "GetParameters",
                "p",
            );
            assert_eq!(error.reason(), Throttled, "{code}");
            assert!(
                error.message().contains("kms:Decrypt"),
                "{}",
                error.message()
            );
            assert!(!error.concerns_one_parameter());
        }
    }

    #[test]
    fn passing_kms_failures_inside_ssm_are_aws_unavailable_never_a_key_state() {
        use crate::api::Reason::*;
        for kms_code in [
            "KMSInternalException",
            "DependencyTimeoutException",
            "KeyUnavailableException",
        ] {
            for code in [
                "InternalServerError",
                "InvalidKeyId",
                "AccessDeniedException",
            ] {
                let error = ssm_read(&kms_inside(code, kms_code, 500), "GetParameters", "p");
                assert_eq!(error.reason(), AwsUnavailable, "{code} around {kms_code}");
                assert!(!error.message().contains("4d15a2da"), "{}", error.message());
            }
        }
        // A key state stays a key state.
        let disabled = service(
            "InvalidKeyId",
            "k is disabled. (Service: AWSKMS; Status Code: 400; Error Code: DisabledException; Request ID: x)",
        );
        assert_eq!(
            ssm_read(&disabled, "GetParameters", "p").reason(),
            KmsKeyDisabled
        );
    }

    #[test]
    fn a_next_token_ssm_refuses_is_a_passing_fault() {
        let f = service("InvalidNextToken", "The specified token isn't valid.");
        let error = ssm_read(&f, "GetParametersByPath", "/prd/app/");
        assert_eq!(error.reason(), crate::api::Reason::AwsUnavailable);
        assert!(error.message().contains("InvalidNextToken"));
    }

    #[test]
    fn refused_session_credentials_are_passing_for_ssm_and_chained_roles() {
        use crate::api::Reason::*;
        let expired = service(
            "ExpiredTokenException",
            "The security token included in the request is expired",
        );
        assert_eq!(
            ssm_read(&expired, "GetParameters", "p").reason(),
            AwsUnavailable
        );
        let role = "arn:aws:iam::111122223333:role/target";
        for code in [
            "ExpiredToken",
            "SignatureDoesNotMatch",
            "InvalidClientTokenId",
        ] {
            let error = assume_role(&service(code, "whatever"), role);
            assert_eq!(error.reason(), AwsUnavailable, "{code}");
        }
    }

    #[test]
    fn an_unreachable_identity_provider_is_a_passing_fault() {
        let f = service(
            "IDPCommunicationError",
            "The request could not be fulfilled because the identity provider (IDP) that was asked to verify the incoming identity token could not be reached.",
        );
        let error = web_identity(&f, "arn:aws:iam::111122223333:role/op");
        assert_eq!(error.reason(), crate::api::Reason::AwsUnavailable);
        assert_eq!(error.retry(), crate::api::Retry::Soon);
    }

    #[test]
    fn sanitize_drops_request_ids_and_access_keys() {
        let text = "Bad thing (Request ID: 0e6f2a8c-1111; key ASIAABCDEFGHIJKLMNOP)";
        let clean = sanitize(text);
        assert!(!clean.contains("0e6f2a8c"));
        assert!(!clean.contains("ASIAABCDEFGHIJKLMNOP"));
        let agent =
            "[0b6e2c1a-7a44-4c1e-9f1d-3b2a1c0d9e8f]: (AccessDeniedException): no, fault: client";
        assert_eq!(
            sanitize(agent),
            "(AccessDeniedException): no, fault: client"
        );
    }

    #[test]
    fn a_chained_session_refused_tagging_says_the_trust_must_allow_tag_session() {
        let f = service(
            "AccessDenied",
            "User: arn:aws:sts::111122223333:assumed-role/op/eks-prd-op-0b6e2c1a is not \
             authorized to perform: sts:TagSession on resource: arn:aws:iam::111122223333:role/target",
        );
        let error = assume_role(&f, "arn:aws:iam::111122223333:role/target");
        assert_eq!(error.reason(), crate::api::Reason::AssumeRoleDenied);
        let message = error.message();
        assert!(
            message.starts_with(
                "sts:TagSession denied for role arn:aws:iam::111122223333:role/target to role \
                 arn:aws:sts::111122223333:assumed-role/op/*"
            ),
            "{message}"
        );
        assert!(message.contains("must allow sts:TagSession"), "{message}");
        let plain = service(
            "AccessDenied",
            "User: arn:aws:sts::111122223333:assumed-role/op/ssm-operator is not authorized to \
             perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/target",
        );
        assert!(
            assume_role(&plain, "arn:aws:iam::111122223333:role/target")
                .message()
                .starts_with("sts:AssumeRole denied for role")
        );
    }

    #[test]
    fn a_refusal_reads_the_same_whatever_the_session_was_named() {
        let denied = |session: &str| {
            let f = service(
                "AccessDeniedException",
                &format!(
                    "User: arn:aws:sts::111122223333:assumed-role/op/{session} is not authorized \
                     to perform: ssm:GetParameters on resource: \
                     arn:aws:ssm:eu-west-1:111122223333:parameter/db"
                ),
            );
            ssm_read(&f, "GetParameters", "db").message()
        };
        let first = denied("eks-prd-ssm-operator-7d9f-0b6e2c1a-7a44-4c1e-9f1d-3b2a1c0d9e8f");
        let refreshed = denied("eks-prd-ssm-operator-7d9f-5f4e3d2c-1b0a-4987-8654-3210fedcba98");
        assert_eq!(first, refreshed);
        assert!(
            first.contains("arn:aws:sts::111122223333:assumed-role/op/*"),
            "{first}"
        );
        assert!(!first.contains("eks-prd"), "{first}");
    }

    #[test]
    fn same_failure_with_other_request_id_gives_same_message() {
        let a = service("Weird", "oops; Request ID: aaaa-1111");
        let b = service("Weird", "oops; Request ID: bbbb-2222");
        assert_eq!(
            ssm_read(&a, "GetParameters", "p").message(),
            ssm_read(&b, "GetParameters", "p").message()
        );
    }
}
