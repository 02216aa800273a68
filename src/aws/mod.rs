//! The seam to AWS: what the operator asks Parameter Store, and the real
//! implementation behind it.

pub mod arn;
pub mod classify;
pub mod credentials;
pub mod describe;
pub mod idle;
pub mod partition;
mod ssm;

use futures::future::BoxFuture;

pub use ssm::SsmParameterStore;

use crate::api::SecretValue;
use crate::api::SyncError;

/// Where a read goes: reads of the same scope may share a call.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub region: String,
    pub identity: Identity,
}

impl Scope {
    /// A scope of the operator's own identity.
    pub fn operator(region: &str) -> Self {
        Self {
            region: region.to_owned(),
            identity: Identity::default(),
        }
    }
}

/// Whose AWS permissions a read uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    pub source: IdentitySource,
    /// A role assumed from `source` (chained `sts:AssumeRole`).
    pub chained_role: Option<String>,
    /// The namespace a chained session reads for: its session name is
    /// `ssm-operator.<namespace>`, so that CloudTrail shows which namespace
    /// read and a trust policy can require it (`sts:RoleSessionName`).
    pub chained_for: Option<String>,
}

/// The first link of an identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentitySource {
    /// The operator's own IRSA role (or ambient credentials).
    #[default]
    Operator,
    /// A ServiceAccount's token exchanged for its annotated role.
    ServiceAccount {
        namespace: String,
        name: String,
        role_arn: String,
    },
}

impl Identity {
    /// The account of the role the reads run as, when a role ARN says it.
    pub fn account(&self) -> Option<String> {
        let role = match (&self.chained_role, &self.source) {
            (Some(role), _) => role.as_str(),
            (None, IdentitySource::ServiceAccount { role_arn, .. }) => role_arn.as_str(),
            (None, IdentitySource::Operator) => return None,
        };
        arn::Arn::parse(role).map(|arn| arn.account.to_owned())
    }
}

/// One parameter as Parameter Store returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedParameter {
    /// The name AWS returned (a name, or the ARN it was asked by).
    pub name: String,
    /// `:version` or `:label` when the request pinned one.
    pub selector: Option<String>,
    pub arn: Option<String>,
    pub value: SecretValue,
    pub version: i64,
    /// `String`, `StringList` or `SecureString`.
    pub type_: String,
    /// RFC 3339.
    pub last_modified: Option<String>,
}

/// The answer to one GetParameters call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParametersPage {
    pub found: Vec<FetchedParameter>,
    /// Names (with selectors) that do not exist.
    pub invalid: Vec<String>,
}

/// GetParameters names per call, as AWS allows.
pub const MAX_NAMES_PER_CALL: usize = 10;

/// One page of GetParametersByPath.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathPage {
    pub found: Vec<FetchedParameter>,
    /// Where the next page starts, if there is one.
    pub next_token: Option<String>,
}

/// A GetParametersByPath request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathQuery {
    pub prefix: String,
    pub recursive: bool,
    pub decrypt: bool,
}

/// Reads parameters from Parameter Store.
pub trait ParameterStore: Send + Sync + 'static {
    /// One GetParameters call of at most [`MAX_NAMES_PER_CALL`] names
    /// (`name`, `name:version`, `name:label` or an ARN).
    fn get_parameters<'a>(
        &'a self,
        scope: &'a Scope,
        names: &'a [String],
        decrypt: bool,
    ) -> BoxFuture<'a, Result<ParametersPage, SyncError>>;

    /// One page of GetParametersByPath.
    fn get_parameters_by_path<'a>(
        &'a self,
        scope: &'a Scope,
        query: &'a PathQuery,
        next_token: Option<String>,
    ) -> BoxFuture<'a, Result<PathPage, SyncError>>;
}

/// SDK settings shared by every client: region, endpoint (`AWS_ENDPOINT_URL`
/// and friends), retries and timeouts — and no credentials, which come from
/// [`credentials::CredentialsCache`] only.
pub async fn base_config(region: &str) -> aws_config::SdkConfig {
    defaults(region).no_credentials().load().await
}

/// The same settings with the ambient credentials of the SDK's default
/// chain, for the command-line tools run by a person.
pub async fn ambient_config(region: &str) -> aws_config::SdkConfig {
    defaults(region).load().await
}

fn defaults(region: &str) -> aws_config::ConfigLoader {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use std::time::Duration;

    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        // Standard mode: 3 attempts with backoff for throttling and 5xx.
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
}

/// The operator's own identity, from the standard AWS environment: IRSA when
/// `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE` are set, else the SDK's
/// default chain.
/// The account of the operator's own role, as IRSA's `AWS_ROLE_ARN` names it.
pub fn operator_account() -> Option<String> {
    let role = std::env::var("AWS_ROLE_ARN").ok()?;
    arn::Arn::parse(&role).map(|arn| arn.account.to_owned())
}

pub async fn operator_identity(region: &str) -> credentials::OperatorIdentity {
    let role = std::env::var("AWS_ROLE_ARN").ok().filter(|v| !v.is_empty());
    let token = std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").filter(|v| !v.is_empty());
    match (role, token) {
        (Some(role_arn), Some(token_file)) => credentials::OperatorIdentity::WebIdentity {
            role_arn,
            token_file: token_file.into(),
            session_name: std::env::var("AWS_ROLE_SESSION_NAME")
                .unwrap_or_else(|_| "ssm-operator".to_owned()),
        },
        _ => {
            let chain =
                aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                    .region(aws_config::Region::new(region.to_owned()))
                    .build()
                    .await;
            credentials::OperatorIdentity::Ambient(
                aws_credential_types::provider::SharedCredentialsProvider::new(chain),
            )
        }
    }
}
