//! AWS credentials of every identity the operator reads as, cached for their
//! lifetime.
//!
//! The operator calls STS itself rather than leaving it to the SDK, so that
//! an STS refusal is classified as such and never mistaken for an SSM or KMS
//! failure, and so that there is one STS call per identity and credential
//! lifetime however many SsmParameters share it. Web identity tokens are read
//! afresh for every STS call: the kubelet rotates the operator's token file,
//! and a tenant's token is asked of the API server (TokenRequest) each time.

use std::path::PathBuf;

use crate::aws::idle::IdleMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

use super::classify::{self, AwsFailure};
use super::{Identity, IdentitySource};
use crate::api::{Retry, SyncError};
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
/// Credentials are used until this long before their expiry, not later: a
/// request signed with them must reach AWS before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// How long a renewal may hold up a read while the cached credentials are
/// still good: a hanging STS must not stall the reads that do not need it.
const RENEWAL_PATIENCE: Duration = Duration::from_secs(3);
/// The wait after a failed STS call of one identity before the next,
/// doubled after each failure up to the cap: an STS outage costs one call
/// per identity and wait, however many SsmParameters read as it.
const STS_RETRY_START: Duration = Duration::from_secs(2);
const STS_RETRY_CAP: Duration = Duration::from_secs(60);

struct Cached {
    credentials: Credentials,
    renew_at: Instant,
    /// Until when they may be used (their expiry less a margin); `None`: no expiry.
    usable_until: Option<Instant>,
}

impl Cached {
    fn of(credentials: Credentials) -> Self {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let at = |t: SystemTime| now + t.duration_since(wall).unwrap_or_default();
        Self {
            renew_at: at(renew_at(&credentials, wall)),
            usable_until: credentials
                .expiry()
                .map(|expiry| at(expiry.checked_sub(EXPIRY_MARGIN).unwrap_or(expiry))),
            credentials,
        }
    }

    fn usable_at(&self, now: Instant) -> bool {
        self.usable_until.is_none_or(|until| now < until)
    }
}

/// What the operator knows of one identity's credentials.
#[derive(Default)]
struct SlotState {
    cached: Option<Cached>,
    /// STS calls that failed in a row, and when the next may be made.
    failures: u32,
    retry_at: Option<Instant>,
    /// The last passing failure, answered again until `retry_at` to callers
    /// that have no usable credentials.
    last_failure: Option<SyncError>,
}

/// One identity's credentials; the async mutex makes concurrent callers wait
/// for one STS call instead of each making their own.
type Slot = tokio::sync::Mutex<SlotState>;

/// The longest session of a role assumed by role chaining.
const CHAINED_MAX_SECONDS: i32 = 3600;

/// Credentials of every identity, fetched once per lifetime.
pub struct Identities {
    operator: OperatorIdentity,
    sts: aws_sdk_sts::Client,
    base: aws_config::SdkConfig,
    kube: Option<kube::Client>,
    session_duration: Duration,
    /// Whether chained sessions also set `SourceIdentity`.
    source_identity: bool,
    /// Told the account of the operator's ambient credentials.
    operator_account: super::OperatorAccount,
    /// Identities unused for [`crate::aws::idle::IDLE`] are forgotten.
    slots: IdleMap<Identity, Arc<Slot>>,
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
            source_identity: false,
            operator_account: super::OperatorAccount::default(),
            slots: IdleMap::new(),
        }
    }

    /// Chained sessions also set `SourceIdentity` to their session name: it
    /// shows in CloudTrail on every call of the session and of any session
    /// chained from it, and cannot be changed by them. The target role's
    /// trust policy must then allow `sts:SetSourceIdentity` as well.
    pub fn with_source_identity(mut self, on: bool) -> Self {
        self.source_identity = on;
        self
    }

    /// Ambient credentials that name their account tell it to `account`.
    pub fn with_operator_account(mut self, account: super::OperatorAccount) -> Self {
        self.operator_account = account;
        self
    }

    fn slot(&self, identity: &Identity) -> Arc<Slot> {
        self.slots.get_or_insert_with(identity, Arc::default)
    }

    /// Current credentials of `identity`: from the cache while they are
    /// fresh; renewed when due, but while STS fails (or hangs past
    /// [`RENEWAL_PATIENCE`]) the cached ones stay in use until their real
    /// expiry. A failed STS call is not made again before a backoff.
    pub async fn credentials(&self, identity: &Identity) -> Result<Credentials, SyncError> {
        let slot = self.slot(identity);
        let mut state = slot.lock().await;
        let now = Instant::now();
        if let Some(c) = state.cached.as_ref().filter(|c| now < c.renew_at) {
            return Ok(c.credentials.clone());
        }
        let usable = state
            .cached
            .as_ref()
            .filter(|c| c.usable_at(now))
            .map(|c| c.credentials.clone());
        if state.retry_at.is_some_and(|at| now < at) {
            if let Some(usable) = usable {
                return Ok(usable);
            }
            if let Some(failure) = &state.last_failure {
                return Err(failure.clone());
            }
        }
        let fetched = match usable {
            Some(_) => tokio::time::timeout(RENEWAL_PATIENCE, self.fetch(identity))
                .await
                .unwrap_or_else(|_| {
                    Err(SyncError::AwsUnavailable {
                        detail: format!(
                            "STS did not answer a credential renewal within {} s",
                            RENEWAL_PATIENCE.as_secs()
                        ),
                    })
                }),
            None => self.fetch(identity).await,
        };
        let error = match fetched {
            Ok(credentials) => {
                *state = SlotState {
                    cached: Some(Cached::of(credentials.clone())),
                    ..SlotState::default()
                };
                return Ok(credentials);
            }
            Err(error) => error,
        };
        let passing = error.retry() == Retry::Soon;
        if usable.is_some() || passing {
            let wait = STS_RETRY_START
                .saturating_mul(2u32.saturating_pow(state.failures))
                .min(STS_RETRY_CAP);
            state.failures = state.failures.saturating_add(1);
            state.retry_at = Some(Instant::now() + wait);
            tracing::warn!(
                reason = error.reason().as_str(),
                detail = %error.message(),
                retry_in_s = wait.as_secs(),
                cached_in_use = usable.is_some(),
                "getting AWS credentials failed"
            );
        }
        if let Some(usable) = usable {
            return Ok(usable);
        }
        // A refusal someone must fix is not remembered: once fixed, the
        // next reconcile sees it at once.
        state.last_failure = passing.then(|| error.clone());
        Err(error)
    }

    /// Forgets the cached credentials of `identity` if they are the ones
    /// with `access_key_id` (AWS just refused those: expired, unknown or
    /// badly signed); newer ones fetched meanwhile are kept.
    pub async fn invalidate(&self, identity: &Identity, access_key_id: &str) {
        let slot = self.slot(identity);
        let mut state = slot.lock().await;
        if state
            .cached
            .as_ref()
            .is_some_and(|c| c.credentials.access_key_id() == access_key_id)
        {
            state.cached = None;
        }
    }

    async fn fetch(&self, identity: &Identity) -> Result<Credentials, SyncError> {
        let Some(role) = &identity.chained_role else {
            return self.fetch_source(&identity.source).await;
        };
        let first = Identity {
            source: identity.source.clone(),
            ..Identity::default()
        };
        let signing = Box::pin(self.credentials(&first)).await?;
        let session = match &identity.chained_for {
            Some(namespace) => session_name(&format!("ssm-operator.{namespace}")),
            None => "ssm-operator".to_owned(),
        };
        self.assume_role(role, &session, &first, signing).await
    }

    async fn fetch_source(&self, source: &IdentitySource) -> Result<Credentials, SyncError> {
        match (source, &self.operator) {
            (IdentitySource::Operator, OperatorIdentity::Ambient(provider)) => {
                let credentials = provider
                    .provide_credentials()
                    .await
                    .map_err(|e| ambient_failure(&e))?;
                if let Some(account) = credentials.account_id() {
                    self.operator_account.learn(account.as_str());
                }
                Ok(credentials)
            }
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

    /// Assumes `role_arn` with `signing`, the credentials of `first`.
    async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
        first: &Identity,
        signing: Credentials,
    ) -> Result<Credentials, SyncError> {
        let access_key_id = signing.access_key_id().to_owned();
        let config = aws_sdk_sts::config::Builder::from(&self.base)
            .credentials_provider(SharedCredentialsProvider::new(signing))
            .build();
        let answer = aws_sdk_sts::Client::from_conf(config)
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .set_source_identity(self.source_identity.then(|| session_name.to_owned()))
            .duration_seconds(self.chained_duration_seconds())
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e) => {
                let failure = AwsFailure::of(&e);
                if failure
                    .code
                    .as_deref()
                    .is_some_and(|c| classify::CREDENTIALS_REFUSED.contains(&c))
                {
                    // STS refused the first link's session: a new one next time.
                    Box::pin(self.invalidate(first, &access_key_id)).await;
                }
                return Err(classify::assume_role(&failure, role_arn));
            }
        };
        sts_credentials(out.credentials, "ssm-operator-assume-role")
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.session_duration.as_secs()).unwrap_or(3600)
    }

    /// Every `sts:AssumeRole` here is signed with an assumed role's
    /// credentials, and "role chaining limits your AWS CLI or AWS API role
    /// session to a maximum of one hour" (IAM User Guide): AWS refuses more.
    fn chained_duration_seconds(&self) -> i32 {
        self.duration_seconds().min(CHAINED_MAX_SECONDS)
    }
}

/// The SDK's credential chain failed: the message keeps the whole chain of
/// causes ("no profile", "IMDS timed out", …), since the error's own text
/// is only its kind ("an error occurred while loading credentials").
fn ambient_failure(error: &CredentialsError) -> SyncError {
    let chain = aws_smithy_types::error::display::DisplayErrorContext(error).to_string();
    SyncError::AwsUnavailable {
        detail: format!("no AWS credentials: {}", classify::sanitize(&chain)),
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

    /// What the test STS does on its next call.
    #[derive(Clone, Copy, Debug)]
    enum Answer {
        /// Credentials living this many seconds.
        Issue(u64),
        Fail,
        Hang,
    }

    /// A credentials source whose answers the test sets; it counts calls.
    #[derive(Debug, Default)]
    struct Sts {
        answers: std::sync::Mutex<std::collections::VecDeque<Answer>>,
        calls: std::sync::atomic::AtomicUsize,
    }

    #[derive(Debug, Clone)]
    struct TestSource(Arc<Sts>);

    impl ProvideCredentials for TestSource {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::new(async move {
                let n = self
                    .0
                    .calls
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    + 1;
                let answer = self.0.answers.lock().unwrap().pop_front();
                match answer.unwrap_or(Answer::Issue(3600)) {
                    Answer::Issue(secs) => Ok(Credentials::new(
                        format!("AKID{n}"),
                        "SECRET",
                        None,
                        Some(SystemTime::now() + Duration::from_secs(secs)),
                        "test",
                    )),
                    Answer::Fail => Err(CredentialsError::provider_error("STS is down")),
                    Answer::Hang => std::future::pending().await,
                }
            })
        }
    }

    impl Sts {
        fn answering(answers: &[Answer]) -> Arc<Self> {
            let sts = Arc::new(Self::default());
            sts.answers.lock().unwrap().extend(answers.iter().copied());
            sts
        }

        fn calls(&self) -> usize {
            self.calls.load(std::sync::atomic::Ordering::SeqCst)
        }

        fn identities(self: &Arc<Self>) -> Identities {
            Identities::new(
                OperatorIdentity::Ambient(SharedCredentialsProvider::new(TestSource(self.clone()))),
                aws_config::SdkConfig::builder()
                    .behavior_version(aws_config::BehaviorVersion::latest())
                    .build(),
                None,
                Duration::from_secs(3600),
            )
        }
    }

    async fn key_of(identities: &Identities) -> Result<String, SyncError> {
        let c = identities.credentials(&Identity::default()).await?;
        Ok(c.access_key_id().to_owned())
    }

    // 400 s credentials renew at 300 s and are used until 395 s.
    const PAST_RENEWAL: Duration = Duration::from_secs(310);

    #[tokio::test(start_paused = true)]
    async fn cached_credentials_stay_in_use_past_their_renewal_while_sts_fails() {
        use Answer::*;
        let sts = Sts::answering(&[Issue(400), Fail, Fail, Issue(3600)]);
        let identities = sts.identities();
        assert_eq!(key_of(&identities).await.unwrap(), "AKID1");

        tokio::time::advance(PAST_RENEWAL).await;
        assert_eq!(key_of(&identities).await.unwrap(), "AKID1");
        assert_eq!(sts.calls(), 2, "the renewal was tried");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_is_retried_after_a_growing_wait_not_at_every_read() {
        use Answer::*;
        let sts = Sts::answering(&[Issue(400), Fail, Fail, Issue(3600)]);
        let identities = sts.identities();
        key_of(&identities).await.unwrap();
        tokio::time::advance(PAST_RENEWAL).await;
        key_of(&identities).await.unwrap();
        for _ in 0..10 {
            assert_eq!(key_of(&identities).await.unwrap(), "AKID1");
        }
        assert_eq!(sts.calls(), 2, "a read during the wait called STS");

        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(key_of(&identities).await.unwrap(), "AKID1");
        assert_eq!(sts.calls(), 3);
        tokio::time::advance(Duration::from_secs(3)).await;
        key_of(&identities).await.unwrap();
        assert_eq!(sts.calls(), 3, "the second wait is longer (4 s)");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(key_of(&identities).await.unwrap(), "AKID4");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_renewal_holds_a_read_up_no_longer_than_its_patience() {
        use Answer::*;
        let sts = Sts::answering(&[Issue(400), Hang]);
        let identities = sts.identities();
        key_of(&identities).await.unwrap();
        tokio::time::advance(PAST_RENEWAL).await;
        let started = Instant::now();
        assert_eq!(key_of(&identities).await.unwrap(), "AKID1");
        assert_eq!(started.elapsed(), RENEWAL_PATIENCE);
        let started = Instant::now();
        key_of(&identities).await.unwrap();
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "the next read waited again"
        );
    }

    #[test]
    fn a_failed_credential_chain_keeps_its_cause_in_the_message() {
        let error = CredentialsError::provider_error("the profile `dev` has no sso_region");
        let message = ambient_failure(&error).message();
        assert!(
            message.contains("the profile `dev` has no sso_region"),
            "{message}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_their_real_expiry_the_sts_failure_is_reported_and_remembered() {
        use Answer::*;
        let sts = Sts::answering(&[Issue(400), Fail, Fail]);
        let identities = sts.identities();
        key_of(&identities).await.unwrap();
        tokio::time::advance(Duration::from_secs(396)).await;
        let error = key_of(&identities).await.unwrap_err();
        assert_eq!(error.reason(), crate::api::Reason::AwsUnavailable);
        assert_eq!(key_of(&identities).await.unwrap_err(), error);
        assert_eq!(
            sts.calls(),
            2,
            "an STS outage cost more than one call per wait"
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        key_of(&identities).await.unwrap_err();
        assert_eq!(sts.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn refused_credentials_are_dropped_only_while_they_are_the_cached_ones() {
        let sts = Sts::answering(&[]);
        let identities = sts.identities();
        let operator = Identity::default();
        assert_eq!(key_of(&identities).await.unwrap(), "AKID1");
        identities.invalidate(&operator, "AKID0").await;
        assert_eq!(key_of(&identities).await.unwrap(), "AKID1");
        identities.invalidate(&operator, "AKID1").await;
        assert_eq!(key_of(&identities).await.unwrap(), "AKID2");
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
