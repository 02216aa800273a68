//! AWS credentials of every identity the operator reads as, cached for their
//! lifetime.
//!
//! The operator calls STS itself rather than leaving it to the SDK, so that
//! an STS refusal is classified as such and never mistaken for an SSM or KMS
//! failure, and so that there is one STS call per identity and credential
//! lifetime however many SsmParameters share it. Web identity tokens are read
//! afresh for every STS call: the kubelet rotates the operator's token file,
//! and a tenant's token is asked of the API server (TokenRequest) each time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

use super::classify::{self, AwsFailure};
use super::{Identity, IdentitySource};
use crate::api::SyncError;
use crate::names::STS_AUDIENCE;

/// Where the operator's own AWS identity comes from.
#[derive(Clone, Debug)]
pub enum OperatorIdentity {
    /// IRSA: a role assumed with the projected ServiceAccount token.
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
        session_name: String,
    },
    /// Whatever the SDK's default chain finds (environment, profile,
    /// instance metadata): for running outside a cluster.
    Ambient(SharedCredentialsProvider),
}

/// Lifetime of the tenant tokens the operator asks for (the API server's minimum).
const TENANT_TOKEN_SECONDS: i64 = 600;
/// Renew credentials this long before they expire, at most.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

struct Cached {
    credentials: Credentials,
    renew_at: SystemTime,
}

/// One identity's credentials; the async mutex makes concurrent callers wait
/// for one STS call instead of each making their own.
type Slot = tokio::sync::Mutex<Option<Cached>>;

/// Credentials of every identity, fetched once per lifetime.
pub struct Identities {
    operator: OperatorIdentity,
    sts: aws_sdk_sts::Client,
    base: aws_config::SdkConfig,
    kube: Option<kube::Client>,
    session_duration: Duration,
    slots: Mutex<HashMap<Identity, Arc<Slot>>>,
}

impl Identities {
    /// `kube` is needed for ServiceAccount identities (TokenRequest).
    pub fn new(
        operator: OperatorIdentity,
        base: aws_config::SdkConfig,
        kube: Option<kube::Client>,
        session_duration: Duration,
    ) -> Self {
        Self {
            operator,
            sts: aws_sdk_sts::Client::new(&base),
            base,
            kube,
            session_duration,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, identity: &Identity) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(identity.clone()).or_default().clone()
    }

    /// Current credentials of `identity`, from the cache while they are fresh.
    pub async fn credentials(&self, identity: &Identity) -> Result<Credentials, SyncError> {
        let slot = self.slot(identity);
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| SystemTime::now() < c.renew_at) {
            return Ok(c.credentials.clone());
        }
        let credentials = self.fetch(identity).await?;
        *cached = Some(Cached {
            renew_at: renew_at(&credentials, SystemTime::now()),
            credentials: credentials.clone(),
        });
        Ok(credentials)
    }

    /// Forgets the cached credentials, e.g. after AWS said they expired.
    pub async fn invalidate(&self, identity: &Identity) {
        *self.slot(identity).lock().await = None;
    }

    async fn fetch(&self, identity: &Identity) -> Result<Credentials, SyncError> {
        let Some(role) = &identity.chained_role else {
            return self.fetch_source(&identity.source).await;
        };
        let first = Identity {
            source: identity.source.clone(),
            ..Identity::default()
        };
        let first = Box::pin(self.credentials(&first)).await?;
        let session = match &identity.chained_for {
            Some(namespace) => session_name(&format!("ssm-operator.{namespace}")),
            None => "ssm-operator".to_owned(),
        };
        self.assume_role(role, &session, first).await
    }

    async fn fetch_source(&self, source: &IdentitySource) -> Result<Credentials, SyncError> {
        match (source, &self.operator) {
            (IdentitySource::Operator, OperatorIdentity::Ambient(provider)) => provider
                .provide_credentials()
                .await
                .map_err(|e| SyncError::AwsUnavailable {
                    detail: format!("no AWS credentials: {}", classify::sanitize(&e.to_string())),
                }),
            (
                IdentitySource::Operator,
                OperatorIdentity::WebIdentity {
                    role_arn,
                    token_file,
                    session_name,
                },
            ) => {
                let token = tokio::fs::read_to_string(token_file).await.map_err(|e| {
                    SyncError::WebIdentityInvalid {
                        role: role_arn.clone(),
                        detail: format!(
                            "cannot read the token file {}: {}",
                            token_file.display(),
                            e.kind()
                        ),
                    }
                })?;
                self.assume_role_with_web_identity(role_arn, session_name, token.trim())
                    .await
            }
            (
                IdentitySource::ServiceAccount {
                    namespace,
                    name,
                    role_arn,
                },
                _,
            ) => {
                let token = self.service_account_token(namespace, name).await?;
                let session = session_name(&format!("ssm-operator.{namespace}.{name}"));
                self.assume_role_with_web_identity(role_arn, &session, &token)
                    .await
            }
        }
    }

    /// A short-lived token for a tenant's ServiceAccount, audience STS.
    async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, SyncError> {
        let not_found = |detail: String| SyncError::ServiceAccountNotFound { detail };
        let Some(kube) = &self.kube else {
            return Err(not_found(
                "ServiceAccount identities are not enabled in this operator".to_owned(),
            ));
        };
        let accounts: Api<ServiceAccount> = Api::namespaced(kube.clone(), namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![STS_AUDIENCE.to_owned()],
                expiration_seconds: Some(TENANT_TOKEN_SECONDS),
                bound_object_ref: None,
            },
            ..TokenRequest::default()
        };
        let answer: Result<TokenRequest, _> = accounts
            .create_subresource("token", name, &PostParams::default(), &request)
            .await;
        match answer {
            Ok(token) => token.status.map(|s| s.token).ok_or_else(|| {
                not_found(format!(
                    "the API server issued no token for ServiceAccount {namespace}/{name}"
                ))
            }),
            Err(kube::Error::Api(e)) if e.code == 404 => Err(not_found(format!(
                "ServiceAccount {namespace}/{name} not found"
            ))),
            Err(e) => Err(SyncError::AwsUnavailable {
                detail: format!("could not get a token for ServiceAccount {namespace}/{name}: {e}"),
            }),
        }
    }

    async fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session_name: &str,
        token: &str,
    ) -> Result<Credentials, SyncError> {
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .web_identity_token(token)
            .duration_seconds(self.duration_seconds())
            .send()
            .await
            .map_err(|e| classify::web_identity(&AwsFailure::of(&e), role_arn))?;
        sts_credentials(out.credentials, "ssm-operator-web-identity")
    }

    async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
        first: Credentials,
    ) -> Result<Credentials, SyncError> {
        let config = aws_sdk_sts::config::Builder::from(&self.base)
            .credentials_provider(SharedCredentialsProvider::new(first))
            .build();
        let out = aws_sdk_sts::Client::from_conf(config)
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .duration_seconds(self.duration_seconds())
            .send()
            .await
            .map_err(|e| classify::assume_role(&AwsFailure::of(&e), role_arn))?;
        sts_credentials(out.credentials, "ssm-operator-assume-role")
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.session_duration.as_secs()).unwrap_or(3600)
    }
}

fn sts_credentials(
    credentials: Option<aws_sdk_sts::types::Credentials>,
    provider: &'static str,
) -> Result<Credentials, SyncError> {
    let c = credentials.ok_or_else(|| SyncError::AwsUnavailable {
        detail: "STS returned no credentials".to_owned(),
    })?;
    let expiry = SystemTime::try_from(c.expiration).ok();
    Ok(Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        expiry,
        provider,
    ))
}

/// STS session names: at most 64 of `[\w+=,.@-]`.
fn session_name(wanted: &str) -> String {
    wanted
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

/// When to renew: a quarter of the lifetime, at most five minutes, before
/// expiry; credentials without expiry are kept an hour.
fn renew_at(credentials: &Credentials, now: SystemTime) -> SystemTime {
    let Some(expiry) = credentials.expiry() else {
        return now + Duration::from_secs(3600);
    };
    let lifetime = expiry.duration_since(now).unwrap_or_default();
    expiry - RENEW_BEFORE.min(lifetime / 4)
}

/// Hands one identity's cached credentials to an SDK client.
#[derive(Clone)]
pub struct CachedProvider {
    pub identities: Arc<Identities>,
    pub identity: Identity,
}

impl std::fmt::Debug for CachedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedProvider")
    }
}

impl ProvideCredentials for CachedProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.identities
                .credentials(&self.identity)
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials_expiring_in(now: SystemTime, secs: u64) -> Credentials {
        Credentials::new(
            "AKID",
            "SECRET",
            None,
            Some(now + Duration::from_secs(secs)),
            "test",
        )
    }

    #[test]
    fn hour_long_credentials_renew_five_minutes_early() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = credentials_expiring_in(now, 3600);
        assert_eq!(renew_at(&c, now), now + Duration::from_secs(3300));
    }

    #[test]
    fn short_credentials_renew_at_three_quarters_of_their_life() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = credentials_expiring_in(now, 900);
        assert_eq!(renew_at(&c, now), now + Duration::from_secs(675));
    }

    #[test]
    fn session_names_are_what_sts_accepts() {
        assert_eq!(
            session_name("ssm-operator.team-a.reader"),
            "ssm-operator.team-a.reader"
        );
        assert_eq!(session_name("a/b c"), "a-b-c");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }

    #[tokio::test]
    async fn one_identity_is_fetched_once_while_fresh() {
        let static_credentials = Credentials::new("AKID", "SECRET", None, None, "test");
        let identities = Identities::new(
            OperatorIdentity::Ambient(SharedCredentialsProvider::new(static_credentials)),
            aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .build(),
            None,
            Duration::from_secs(3600),
        );
        let operator = Identity::default();
        let a = identities.credentials(&operator).await.unwrap();
        let b = identities.credentials(&operator).await.unwrap();
        assert_eq!(a.access_key_id(), b.access_key_id());
    }
}
