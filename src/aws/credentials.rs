//! AWS credentials of the operator's identity, cached for their lifetime.
//!
//! With IRSA (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`) the operator
//! calls `sts:AssumeRoleWithWebIdentity` itself rather than leaving it to the
//! SDK, so that an STS refusal is classified as such and never mistaken for
//! an SSM or KMS failure, and so that there is one STS call per credential
//! lifetime however many SsmParameters there are. The token file is re-read
//! on every STS call because the kubelet rotates it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};
use tokio::sync::Mutex;

use super::classify::{self, AwsFailure};
use crate::error::SyncError;

/// Where the operator's own AWS identity comes from.
#[derive(Clone, Debug)]
pub enum OperatorIdentity {
    /// IRSA: a role assumed with a projected ServiceAccount token.
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
        session_name: String,
    },
    /// Whatever the SDK's default chain finds (environment, profile,
    /// instance metadata): for running outside a cluster.
    Ambient(SharedCredentialsProvider),
}

/// Renew credentials this long before they expire, at most.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

struct Cached {
    credentials: Credentials,
    renew_at: SystemTime,
}

/// The operator identity's credentials, fetched once per lifetime.
pub struct CredentialsCache {
    identity: OperatorIdentity,
    sts: aws_sdk_sts::Client,
    // An async mutex makes concurrent callers wait for one STS call instead
    // of each making their own.
    cached: Mutex<Option<Cached>>,
}

impl CredentialsCache {
    pub fn new(identity: OperatorIdentity, sts: aws_sdk_sts::Client) -> Self {
        Self {
            identity,
            sts,
            cached: Mutex::new(None),
        }
    }

    /// Current credentials, from the cache while they are fresh.
    pub async fn credentials(&self) -> Result<Credentials, SyncError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| SystemTime::now() < c.renew_at) {
            return Ok(c.credentials.clone());
        }
        let credentials = self.fetch().await?;
        *cached = Some(Cached {
            renew_at: renew_at(&credentials, SystemTime::now()),
            credentials: credentials.clone(),
        });
        Ok(credentials)
    }

    /// Forgets the cached credentials, e.g. after AWS said they expired.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// The role this identity assumes, when known.
    pub fn role_arn(&self) -> Option<&str> {
        match &self.identity {
            OperatorIdentity::WebIdentity { role_arn, .. } => Some(role_arn),
            OperatorIdentity::Ambient(_) => None,
        }
    }

    async fn fetch(&self) -> Result<Credentials, SyncError> {
        match &self.identity {
            OperatorIdentity::Ambient(provider) => {
                provider
                    .provide_credentials()
                    .await
                    .map_err(|e| SyncError::AwsUnavailable {
                        detail: format!(
                            "no AWS credentials: {}",
                            crate::aws::classify::sanitize(&e.to_string())
                        ),
                    })
            }
            OperatorIdentity::WebIdentity {
                role_arn,
                token_file,
                session_name,
            } => {
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
                let out = self
                    .sts
                    .assume_role_with_web_identity()
                    .role_arn(role_arn)
                    .role_session_name(session_name)
                    .web_identity_token(token.trim())
                    .send()
                    .await
                    .map_err(|e| classify::web_identity(&AwsFailure::of(&e), role_arn))?;
                let c = out.credentials.ok_or_else(|| SyncError::AwsUnavailable {
                    detail: "AssumeRoleWithWebIdentity returned no credentials".to_owned(),
                })?;
                let expiry = SystemTime::try_from(c.expiration).ok();
                Ok(Credentials::new(
                    c.access_key_id,
                    c.secret_access_key,
                    Some(c.session_token),
                    expiry,
                    "ssm-operator-web-identity",
                ))
            }
        }
    }
}

/// When to renew: a quarter of the lifetime, at most five minutes, before
/// expiry; credentials without expiry are kept.
fn renew_at(credentials: &Credentials, now: SystemTime) -> SystemTime {
    let Some(expiry) = credentials.expiry() else {
        return now + Duration::from_secs(3600);
    };
    let lifetime = expiry.duration_since(now).unwrap_or_default();
    expiry - RENEW_BEFORE.min(lifetime / 4)
}

/// Hands the cached credentials to an SDK client.
#[derive(Clone)]
pub struct CachedProvider(pub Arc<CredentialsCache>);

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
            self.0
                .credentials()
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
}
