//! The seam to AWS: what the operator asks Parameter Store, and the real
//! implementation behind it.

pub mod arn;
pub mod attempts;
pub mod classify;
pub mod credentials;
pub mod describe;
pub mod idle;
pub mod key_ids;
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
    /// The ARN of a SecureString's KMS key, when looked up
    /// ([`key_ids`]).
    pub key_id: Option<String>,
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

/// The account of the operator's own credentials: the one IRSA's
/// `AWS_ROLE_ARN` names, else the one the SDK's chain reports with the
/// first credentials it loads (the EKS Pod Identity agent answers with an
/// `AccountId`). Known from then on, for the read budget of that account.
#[derive(Clone, Debug, Default)]
pub struct OperatorAccount(std::sync::Arc<std::sync::OnceLock<String>>);

impl OperatorAccount {
    /// As far as the environment tells (IRSA's role ARN).
    pub fn from_environment() -> Self {
        let known = Self::default();
        let role = std::env::var("AWS_ROLE_ARN").unwrap_or_default();
        if let Some(role) = arn::Arn::parse(&role) {
            known.learn(role.account);
        }
        known
    }

    /// The account, once told; later tellings change nothing.
    pub fn learn(&self, account: &str) {
        if !account.is_empty() {
            let _ = self.0.set(account.to_owned());
        }
    }

    pub fn get(&self) -> Option<String> {
        self.0.get().cloned()
    }
}

/// The operator's own identity, from the standard AWS environment: IRSA when
/// `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE` are set, else the SDK's
/// default chain (EKS Pod Identity, environment, profile, instance metadata).
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

/// The profiles a person's laptop has: `credential_process` and IAM
/// Identity Center, which `policy` and `check` load through the SDK's
/// default chain ([`ambient_config`]).
#[cfg(all(test, feature = "profile-credentials"))]
mod laptop_profiles {
    use aws_config::profile::ProfileFileCredentialsProvider;
    use aws_credential_types::provider::ProvideCredentials;
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};

    async fn credentials_of(config: &str) -> Result<aws_credential_types::Credentials, String> {
        let files = EnvConfigFiles::builder()
            .with_contents(EnvConfigFileKind::Config, config)
            .build();
        ProfileFileCredentialsProvider::builder()
            .profile_files(files)
            .profile_name("laptop")
            .build()
            .provide_credentials()
            .await
            .map_err(|e| aws_smithy_types::error::display::DisplayErrorContext(e).to_string())
    }

    #[tokio::test]
    async fn a_credential_process_profile_gives_the_credentials_its_process_prints() {
        let config = r#"[profile laptop]
credential_process = echo '{"Version":1,"AccessKeyId":"AKIDLAPTOP","SecretAccessKey":"laptop-secret"}'
"#;
        let credentials = credentials_of(config).await.expect("credentials");
        assert_eq!(credentials.access_key_id(), "AKIDLAPTOP");
    }

    #[tokio::test]
    async fn an_identity_center_profile_is_understood_and_asks_for_a_login() {
        let config = "[profile laptop]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = ReadOnly
[sso-session corp]
sso_start_url = https://corp.awsapps.example/start
sso_region = eu-west-1
";
        let refused = credentials_of(config).await.expect_err("no login was made");
        assert!(
            !refused.contains("feature"),
            "profiles of IAM Identity Center are not built in: {refused}"
        );
    }
}
