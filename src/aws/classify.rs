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
    fn describe(&self) -> String {
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
static SSM_ACTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"perform: (ssm:[A-Za-z]+)").unwrap_or_else(|_| unreachable!("static regex"))
});
static REQUEST_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\s*;?\s*request ?id:?\s*[A-Za-z0-9-]+;?")
        .unwrap_or_else(|_| unreachable!("static regex"))
});
static ACCESS_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(AKIA|ASIA)[A-Z0-9]{12,}\b").unwrap_or_else(|_| unreachable!("static regex"))
});

fn first_match(re: &Regex, text: &str) -> Option<String> {
    re.find(text)
        .map(|m| m.as_str().trim_end_matches(['.', ',', ')']).to_owned())
}

/// Drops request ids and access key ids from AWS text.
pub fn sanitize(text: &str) -> String {
    let text = REQUEST_ID.replace_all(text, "");
    ACCESS_KEY
        .replace_all(&text, "<redacted>")
        .trim()
        .to_owned()
}

/// The codes with which AWS refuses credentials it no longer accepts
/// (expired session, unknown key, bad signature): drop them and fetch new.
pub const CREDENTIALS_REFUSED: [&str; 3] = [
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
];

/// A failed SSM read of `parameter` (the name asked for; a batch of several
/// passes its first name and is re-asked name by name when needed).
pub fn ssm_read(failure: &AwsFailure, operation: &str, parameter: &str) -> SyncError {
    let parameter = parameter.to_owned();
    let message = failure.message();
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
        "ParameterNotFound" => SyncError::ParameterNotFound {
            parameters: vec![parameter],
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

fn kms_key_state(failure: &AwsFailure, parameter: String, key: Option<String>) -> SyncError {
    let message = failure.message();
    let embedded =
        |code: &str| message.contains(&format!("Error Code: {code}")) || failure.code() == code;
    if embedded("DisabledException") || message.contains("is disabled") {
        SyncError::KmsKeyDisabled { parameter, key }
    } else if embedded("KMSInvalidStateException") || message.contains("pending deletion") {
        SyncError::KmsKeyPendingDeletion { parameter, key }
    } else if embedded("AccessDeniedException") {
        SyncError::KmsAccessDenied {
            parameter,
            key,
            principal: first_match(&PRINCIPAL_ARN, message),
        }
    } else {
        SyncError::KmsKeyNotFound { parameter, key }
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
    SyncError::AssumeRoleDenied {
        role: role.to_owned(),
        principal: first_match(&PRINCIPAL_ARN, failure.message()),
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
                principal: Some(ROLE.into()),
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
                principal: Some(ROLE.into()),
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

    #[test]
    fn sanitize_drops_request_ids_and_access_keys() {
        let text = "Bad thing (Request ID: 0e6f2a8c-1111; key ASIAABCDEFGHIJKLMNOP)";
        let clean = sanitize(text);
        assert!(!clean.contains("0e6f2a8c"));
        assert!(!clean.contains("ASIAABCDEFGHIJKLMNOP"));
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
