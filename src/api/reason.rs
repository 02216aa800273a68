//! Why a sync failed: one variant per condition reason of the API contract.
//!
//! Messages name the parameter, the KMS key and the role when known, and are
//! built from those parts only — never from raw AWS text that could carry a
//! request id, and never from a value — so the same failure always produces
//! the same message and a failing refresh does not rewrite status.

impl Reason {
    /// The PascalCase reason string of the API contract.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How soon trying again can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// A passing fault: retry with exponential backoff.
    Soon,
    /// Someone must change something in AWS: look again at the next refresh.
    AtRefresh,
    /// Only a change of the SsmParameter can help.
    OnSpecChange,
}

/// Why a sync did not succeed. Each variant is one condition reason of the
/// API contract; [`Reason`] is derived from the variants, so each reason is
/// spelled once.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(Reason),
    doc = "The condition reason of a failed sync: a [`SyncError`] variant's name.",
    derive(Hash, strum::IntoStaticStr, strum::Display, strum::VariantArray)
)]
pub enum SyncError {
    #[error("kms:Decrypt denied for parameter {parameter}{} to {}; grant kms:Decrypt on the key", key_part(.key), principal_part(.principal))]
    KmsAccessDenied {
        parameter: String,
        key: Option<String>,
        principal: Option<String>,
    },
    #[error("KMS key{} of parameter {parameter} is disabled; enable the key", key_part(.key))]
    KmsKeyDisabled {
        parameter: String,
        key: Option<String>,
    },
    #[error("KMS key{} of parameter {parameter} is pending deletion; cancel the deletion or re-encrypt the parameter with another key", key_part(.key))]
    KmsKeyPendingDeletion {
        parameter: String,
        key: Option<String>,
    },
    #[error("KMS key{} of parameter {parameter} does not exist; re-encrypt the parameter with an existing key", key_part(.key))]
    KmsKeyNotFound {
        parameter: String,
        key: Option<String>,
    },
    #[error("KMS key{} of parameter {parameter} cannot decrypt: its state is {state}; {}", key_part(.key), unusable_remedy(.state))]
    KmsKeyUnusable {
        parameter: String,
        key: Option<String>,
        /// The key state as KMS words it ("pending import", "unavailable"),
        /// or "unknown".
        state: String,
    },
    #[error("{action} denied for parameter {parameter} to {}; grant {action} on the parameter", principal_part(.principal))]
    SsmAccessDenied {
        parameter: String,
        action: String,
        principal: Option<String>,
    },
    #[error("parameter {} not found{}", .parameters.join(", "), searched(.parameters, .region))]
    ParameterNotFound {
        parameters: Vec<String>,
        /// The region searched for names that are not ARNs (an ARN names
        /// its own account and region).
        region: String,
    },
    #[error("parameter {parameter} has no {selector}")]
    ParameterVersionNotFound { parameter: String, selector: String },
    #[error("AWS throttled {operation} after retries; will retry with backoff")]
    Throttled { operation: String },
    #[error("AWS unavailable: {detail}")]
    AwsUnavailable { detail: String },
    #[error(
        "sts:AssumeRoleWithWebIdentity denied for role {role}; the role's trust policy must allow this ServiceAccount's token (sub and aud)"
    )]
    WebIdentityDenied { role: String },
    #[error("the web identity token for role {role} has expired")]
    WebIdentityTokenExpired { role: String },
    #[error("the web identity token for role {role} was refused: {detail}")]
    WebIdentityInvalid { role: String, detail: String },
    #[error("{action} denied for role {role} to {}{}", principal_part(.principal), trust_hint(.action))]
    AssumeRoleDenied {
        role: String,
        principal: Option<String>,
        /// What STS refused: `sts:AssumeRole`, or the `sts:TagSession` or
        /// `sts:SetSourceIdentity` the session asks for as well.
        action: String,
    },
    #[error("STS refused the session duration asked for role {role}: {why}")]
    SessionDurationRefused {
        role: String,
        /// Which limit it passed, and what would help.
        why: String,
    },
    #[error("{detail}")]
    ServiceAccountNotFound { detail: String },
    #[error("{role} may not be used by SsmParameters of namespace {namespace}; {remedy}")]
    RoleNotAllowed {
        role: String,
        namespace: String,
        /// What would allow it.
        remedy: String,
    },
    #[error("Secret {secret} {why}; nothing was written")]
    SecretConflict {
        secret: String,
        /// Why it may not be written, e.g. "exists and is not managed by
        /// this SsmParameter".
        why: String,
    },
    #[error(
        "Secret {secret} would hold {bytes} bytes or more, over the 1 MiB limit; nothing was written"
    )]
    SecretTooLarge { secret: String, bytes: usize },
    #[error("{detail}")]
    InvalidSpec { detail: String },
    /// The operator itself failed (a panic) while syncing this object. The
    /// message never carries the panic's text: it could quote a value.
    #[error(
        "the operator failed unexpectedly while syncing this object; it retries with backoff (the operator's log says where it failed)"
    )]
    InternalError,
}

/// Where a missing parameter was looked for, so that a parameter read in
/// the wrong region is obvious.
fn searched(parameters: &[String], region: &str) -> String {
    if region.is_empty() || parameters.iter().all(|p| p.starts_with("arn:")) {
        String::new()
    } else {
        format!(" in region {region}")
    }
}

/// What makes a key in `state` decrypt again (AWS KMS Developer Guide,
/// "Key states of AWS KMS keys").
fn unusable_remedy(state: &str) -> &'static str {
    match state {
        "pending import" => {
            "import the key material again or re-encrypt the parameter with another key"
        }
        "unavailable" => "reconnect the key's custom key store",
        "pending replica deletion" => {
            "cancel the replica's deletion or re-encrypt the parameter with another key"
        }
        "creating" | "updating" => "wait for KMS to finish; it is retried at the next refresh",
        _ => "the key must be Enabled to decrypt",
    }
}

fn key_part(key: &Option<String>) -> String {
    key.as_ref()
        .map(|k| format!(" (key {k})"))
        .unwrap_or_default()
}

/// What the target role's trust policy lacks, when STS refused more than
/// the role itself.
fn trust_hint(action: &str) -> &'static str {
    match action {
        // "Chaining roles with session tags" (IAM User Guide, "Passing
        // session tags in AWS STS"): transitive tags pass to every role
        // chained from the session.
        "sts:TagSession" => {
            "; the session carries transitive session tags (as EKS Pod Identity's do), so the \
             role's trust policy, and the policy of the role chaining to it, must allow \
             sts:TagSession as well as sts:AssumeRole"
        }
        "sts:SetSourceIdentity" => {
            "; with --chained-source-identity the role's trust policy must allow \
             sts:SetSourceIdentity as well as sts:AssumeRole"
        }
        _ => "",
    }
}

fn principal_part(principal: &Option<String>) -> String {
    match principal {
        Some(p) => format!("role {p}"),
        None => "the operator's role".to_owned(),
    }
}

/// Condition messages are capped by the API contract.
pub const MAX_MESSAGE_CHARS: usize = 512;

impl SyncError {
    /// The condition reason of this failure.
    pub fn reason(&self) -> Reason {
        self.into()
    }

    /// How soon trying again can help.
    pub fn retry(&self) -> Retry {
        match self {
            Self::Throttled { .. } | Self::AwsUnavailable { .. } | Self::InternalError => {
                Retry::Soon
            }
            // The kubelet rotates a projected token well before it expires,
            // and a tenant's token is asked for afresh: the next token read
            // is a new one, with nobody changing anything in AWS.
            Self::WebIdentityTokenExpired { .. } => Retry::Soon,
            Self::InvalidSpec { .. } => Retry::OnSpecChange,
            _ => Retry::AtRefresh,
        }
    }

    /// The condition message: bounded, stable for the same failure.
    pub fn message(&self) -> String {
        truncate(self.to_string(), MAX_MESSAGE_CHARS)
    }

    /// Whether this failure concerns one parameter rather than the whole read,
    /// so that a batch it failed is worth retrying name by name.
    pub fn concerns_one_parameter(&self) -> bool {
        matches!(
            self,
            Self::KmsAccessDenied { .. }
                | Self::KmsKeyDisabled { .. }
                | Self::KmsKeyPendingDeletion { .. }
                | Self::KmsKeyNotFound { .. }
                | Self::KmsKeyUnusable { .. }
                | Self::SsmAccessDenied { .. }
                | Self::ParameterNotFound { .. }
                | Self::ParameterVersionNotFound { .. }
                | Self::InvalidSpec { .. }
        )
    }

    /// The same failure, attributed to `parameter` (the batch it came from
    /// could not say which parameter failed).
    pub fn for_parameter(self, name: &str) -> Self {
        let name = name.to_owned();
        match self {
            Self::KmsAccessDenied { key, principal, .. } => Self::KmsAccessDenied {
                parameter: name,
                key,
                principal,
            },
            Self::KmsKeyDisabled { key, .. } => Self::KmsKeyDisabled {
                parameter: name,
                key,
            },
            Self::KmsKeyPendingDeletion { key, .. } => Self::KmsKeyPendingDeletion {
                parameter: name,
                key,
            },
            Self::KmsKeyNotFound { key, .. } => Self::KmsKeyNotFound {
                parameter: name,
                key,
            },
            Self::KmsKeyUnusable { key, state, .. } => Self::KmsKeyUnusable {
                parameter: name,
                key,
                state,
            },
            Self::SsmAccessDenied {
                action, principal, ..
            } => Self::SsmAccessDenied {
                parameter: name,
                action,
                principal,
            },
            other => other,
        }
    }
}

/// Cuts `text` to at most `max` characters, on a character boundary.
pub fn truncate(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_access_denied_message_names_parameter_key_and_role() {
        let err = SyncError::KmsAccessDenied {
            parameter: "prd-db-pass".into(),
            key: Some("arn:aws:kms:ap-northeast-1:111122223333:key/k1".into()),
            principal: Some("arn:aws:sts::111122223333:assumed-role/op/ssm-operator".into()),
        };
        assert_eq!(
            err.message(),
            "kms:Decrypt denied for parameter prd-db-pass (key arn:aws:kms:ap-northeast-1:111122223333:key/k1) \
             to role arn:aws:sts::111122223333:assumed-role/op/ssm-operator; grant kms:Decrypt on the key"
        );
        assert_eq!(err.reason(), Reason::KmsAccessDenied);
    }

    #[test]
    fn a_missing_parameter_is_told_with_the_region_searched_unless_named_by_arn() {
        let missing = |parameters: &[&str]| {
            SyncError::ParameterNotFound {
                parameters: parameters.iter().map(|p| (*p).to_owned()).collect(),
                region: "eu-west-1".into(),
            }
            .message()
        };
        assert_eq!(
            missing(&["/prd/db"]),
            "parameter /prd/db not found in region eu-west-1"
        );
        let arn = "arn:aws:ssm:us-west-2:444455556666:parameter/shared";
        assert_eq!(missing(&[arn]), format!("parameter {arn} not found"));
    }

    #[test]
    fn messages_are_capped_at_512_characters() {
        let err = SyncError::ParameterNotFound {
            parameters: vec!["p".repeat(400), "q".repeat(400)],
            region: "ap-northeast-1".into(),
        };
        assert_eq!(err.message().chars().count(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn transient_failures_retry_soon_and_spec_errors_wait_for_a_change() {
        let throttled = SyncError::Throttled {
            operation: "GetParameters".into(),
        };
        assert_eq!(throttled.retry(), Retry::Soon);
        let invalid = SyncError::InvalidSpec { detail: "x".into() };
        assert_eq!(invalid.retry(), Retry::OnSpecChange);
    }

    #[test]
    fn an_expired_web_identity_token_is_retried_soon_since_the_next_one_is_fresh() {
        let expired = SyncError::WebIdentityTokenExpired {
            role: "arn:aws:iam::111122223333:role/op".into(),
        };
        assert_eq!(expired.retry(), Retry::Soon);
    }

    #[test]
    fn an_internal_error_is_retried_soon_and_says_no_more_than_that() {
        assert_eq!(SyncError::InternalError.retry(), Retry::Soon);
        assert_eq!(SyncError::InternalError.reason().as_str(), "InternalError");
        assert!(
            SyncError::InternalError
                .message()
                .contains("retries with backoff")
        );
    }

    #[test]
    fn batch_failure_is_attributed_to_one_parameter() {
        let err = SyncError::KmsKeyDisabled {
            parameter: "a".into(),
            key: None,
        }
        .for_parameter("b");
        assert!(err.message().contains("parameter b"));
    }
}
