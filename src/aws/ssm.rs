//! [`ParameterStore`] over the AWS SDK.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_ssm::config::IdentityCache;
use aws_sdk_ssm::types::Parameter;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::attempts::{Attempts, RetryGate};
use super::classify::{self, AwsFailure};
use super::credentials::{CachedProvider, Identities};
use super::key_ids::KeyIds;
use super::{FetchedParameter, ParameterStore, ParametersPage, PathPage, PathQuery, Scope};
use crate::api::{SecretValue, SyncError};
use crate::aws::idle::IdleMap;

/// Parameter Store through the SDK, with one client per identity and region.
pub struct SsmParameterStore {
    base: SdkConfig,
    identities: Arc<Identities>,
    /// Scopes unused for [`crate::aws::idle::IDLE`] are forgotten.
    clients: IdleMap<Scope, aws_sdk_ssm::Client>,
    /// With `--report-key-ids`: the keys of SecureStrings, and KMS clients
    /// to ask.
    key_ids: Option<KeyIds>,
    kms_clients: IdleMap<Scope, aws_sdk_kms::Client>,
    /// What a retried read waits for: the read budget.
    retry_gate: Option<Arc<dyn RetryGate>>,
}

impl SsmParameterStore {
    /// `base` carries endpoint, retry and timeout settings; credentials come
    /// from `credentials` only.
    pub fn new(base: SdkConfig, identities: Arc<Identities>) -> Self {
        Self {
            base,
            identities,
            clients: IdleMap::new(),
            key_ids: None,
            kms_clients: IdleMap::new(),
            retry_gate: None,
        }
    }

    /// Retried reads wait for `gate` too ([`super::attempts`]).
    pub fn with_retry_gate(mut self, gate: Arc<dyn RetryGate>) -> Self {
        self.retry_gate = Some(gate);
        self
    }

    fn attempts<'a>(&'a self, scope: &'a Scope) -> Attempts<'a> {
        Attempts::new(self.retry_gate.as_deref(), scope)
    }

    /// Decrypting reads also tell the KMS key of each SecureString.
    pub fn with_key_ids(mut self, on: bool) -> Self {
        self.key_ids = on.then(KeyIds::default);
        self
    }

    fn kms_client(&self, scope: &Scope) -> aws_sdk_kms::Client {
        self.kms_clients
            .get_or_insert_with(scope, || {
                let config = aws_sdk_kms::config::Builder::from(&self.base)
                    .region(aws_sdk_kms::config::Region::new(scope.region.clone()))
                    .credentials_provider(self.provider(scope))
                    .identity_cache(IdentityCache::no_cache())
                    .build();
                aws_sdk_kms::Client::from_conf(config)
            })
            .clone()
    }

    fn provider(&self, scope: &Scope) -> CachedProvider {
        CachedProvider {
            identities: self.identities.clone(),
            identity: scope.identity.clone(),
        }
    }

    fn client(&self, scope: &Scope) -> aws_sdk_ssm::Client {
        self.clients
            .get_or_insert_with(scope, || {
                let config = aws_sdk_ssm::config::Builder::from(&self.base)
                    .region(aws_sdk_ssm::config::Region::new(scope.region.clone()))
                    .credentials_provider(self.provider(scope))
                    // The credentials cache is ours; a second one would hide
                    // an invalidation.
                    .identity_cache(IdentityCache::no_cache())
                    .build();
                aws_sdk_ssm::Client::from_conf(config)
            })
            .clone()
    }

    async fn read(
        &self,
        scope: &Scope,
        names: &[String],
        decrypt: bool,
    ) -> Result<ParametersPage, SyncError> {
        // Resolve credentials first: an STS refusal is then reported as
        // what it is, not as a failed SSM call.
        let signing = self.identities.credentials(&scope.identity).await?;
        let first = names.first().map(String::as_str).unwrap_or_default();
        let mut attempts = self.attempts(scope);
        loop {
            let out = self
                .client(scope)
                .get_parameters()
                .set_names(Some(names.to_vec()))
                .with_decryption(decrypt)
                .customize()
                .config_override(one_attempt())
                .send()
                .await;
            let err = match out {
                Ok(out) => {
                    let mut found = fetched_all(out.parameters);
                    if let Some(key_ids) = self.key_ids.as_ref().filter(|_| decrypt) {
                        let (ssm, kms) = (self.client(scope), self.kms_client(scope));
                        key_ids.fill(scope, &ssm, &kms, &mut found).await;
                    }
                    return Ok(ParametersPage {
                        found,
                        invalid: out.invalid_parameters.unwrap_or_default(),
                    });
                }
                Err(err) => err,
            };
            let failure = AwsFailure::of(&err);
            if !attempts.again(&failure).await {
                let operation = "GetParameters";
                return Err(self
                    .failed(scope, &signing, failure, operation, first)
                    .await);
            }
        }
    }

    async fn read_path(
        &self,
        scope: &Scope,
        query: &PathQuery,
        next_token: Option<String>,
    ) -> Result<PathPage, SyncError> {
        let signing = self.identities.credentials(&scope.identity).await?;
        let mut attempts = self.attempts(scope);
        loop {
            let out = self
                .client(scope)
                .get_parameters_by_path()
                .path(&query.prefix)
                .recursive(query.recursive)
                .with_decryption(query.decrypt)
                .set_next_token(next_token.clone())
                .customize()
                .config_override(one_attempt())
                .send()
                .await;
            let err = match out {
                Ok(out) => {
                    return Ok(PathPage {
                        found: fetched_all(out.parameters),
                        next_token: out.next_token.filter(|t| !t.is_empty()),
                    });
                }
                Err(err) => err,
            };
            let failure = AwsFailure::of(&err);
            if !attempts.again(&failure).await {
                let (operation, path) = ("GetParametersByPath", &query.prefix);
                return Err(self.failed(scope, &signing, failure, operation, path).await);
            }
        }
    }

    /// Classifies a failed call; credentials AWS no longer accepts (the
    /// `signing` ones) are dropped.
    async fn failed(
        &self,
        scope: &Scope,
        signing: &aws_credential_types::Credentials,
        failure: AwsFailure,
        operation: &str,
        parameter: &str,
    ) -> SyncError {
        if failure
            .code
            .as_deref()
            .is_some_and(|c| classify::CREDENTIALS_REFUSED.contains(&c))
        {
            self.identities
                .invalidate(&scope.identity, signing.access_key_id())
                .await;
        }
        match classify::ssm_read(&failure, operation, parameter) {
            SyncError::ParameterNotFound { parameters, .. } => SyncError::ParameterNotFound {
                parameters,
                region: scope.region.clone(),
            },
            other => other,
        }
    }
}

/// The parameter reads make their attempts themselves ([`Attempts`]); the
/// SDK's retries stay on for every other call.
fn one_attempt() -> aws_sdk_ssm::config::Builder {
    aws_sdk_ssm::config::Builder::default()
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::standard().with_max_attempts(1))
}

fn fetched_all(parameters: Option<Vec<Parameter>>) -> Vec<FetchedParameter> {
    parameters
        .unwrap_or_default()
        .into_iter()
        .map(fetched)
        .collect()
}

fn fetched(p: Parameter) -> FetchedParameter {
    FetchedParameter {
        version: p.version,
        type_: p.r#type.map(|t| t.as_str().to_owned()).unwrap_or_default(),
        last_modified: p
            .last_modified_date
            .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        value: SecretValue::new(p.value.unwrap_or_default()),
        selector: p.selector,
        arn: p.arn,
        name: p.name.unwrap_or_default(),
        key_id: None,
    }
}

impl ParameterStore for SsmParameterStore {
    fn get_parameters<'a>(
        &'a self,
        scope: &'a Scope,
        names: &'a [String],
        decrypt: bool,
    ) -> BoxFuture<'a, Result<ParametersPage, SyncError>> {
        self.read(scope, names, decrypt).boxed()
    }

    fn get_parameters_by_path<'a>(
        &'a self,
        scope: &'a Scope,
        query: &'a PathQuery,
        next_token: Option<String>,
    ) -> BoxFuture<'a, Result<PathPage, SyncError>> {
        self.read_path(scope, query, next_token).boxed()
    }
}

#[cfg(test)]
mod replay_tests {
    //! Real AWS error bodies replayed through the SDK's own HTTP stack, so
    //! that classification is tested on what the SDK makes of them.

    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::api::Reason;
    use crate::aws::credentials::OperatorIdentity;

    const KEY: &str =
        "arn:aws:kms:ap-northeast-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const ROLE: &str = "arn:aws:sts::111122223333:assumed-role/ssm-operator/ssm-operator";
    /// How messages name [`ROLE`]: without its session.
    const ROLE_IN_MESSAGES: &str = "arn:aws:sts::111122223333:assumed-role/ssm-operator/*";

    /// One answer of AWS at `uri`, replayed by the SDK's HTTP stack, and the
    /// operator's own identity: static credentials.
    fn replaying(
        uri: &str,
        content_type: &str,
        status: u16,
        body: &str,
    ) -> (SdkConfig, Identities) {
        // As many answers as attempts: a retried failure meets the same one.
        let answer = || {
            let request = http::Request::builder()
                .uri(uri)
                .body(SdkBody::empty())
                .unwrap();
            let response = http::Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(SdkBody::from(body.to_owned()))
                .unwrap();
            ReplayEvent::new(request, response)
        };
        let attempts = crate::aws::attempts::MAX_ATTEMPTS;
        let http_client = StaticReplayClient::new((0..attempts).map(|_| answer()).collect());
        let base = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("ap-northeast-1"))
            .http_client(http_client)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let static_credentials = Credentials::new("AKID", "SECRET", None, None, "replay");
        let operator =
            OperatorIdentity::Ambient(SharedCredentialsProvider::new(static_credentials));
        let identities = Identities::new(
            operator,
            base.clone(),
            None,
            std::time::Duration::from_secs(3600),
        );
        (base, identities)
    }

    async fn read_with_answer(status: u16, body: &str) -> Result<ParametersPage, SyncError> {
        let (base, identities) = replaying(
            "https://ssm.ap-northeast-1.amazonaws.com/",
            "application/x-amz-json-1.1",
            status,
            body,
        );
        let store = SsmParameterStore::new(base, Arc::new(identities));
        let scope = Scope::operator("ap-northeast-1");
        store
            .get_parameters(&scope, &["prd-db-pass".to_owned()], true)
            .await
    }

    /// STS's answer to a chained `sts:AssumeRole`, replayed, with the
    /// operator's own (static) credentials signing it.
    async fn assume_role_with_answer(status: u16, body: &str) -> Result<(), SyncError> {
        let (_, identities) = replaying(
            "https://sts.ap-northeast-1.amazonaws.com/",
            "text/xml",
            status,
            body,
        );
        let chained = crate::aws::Identity {
            chained_role: Some("arn:aws:iam::111122223333:role/target".to_owned()),
            ..crate::aws::Identity::default()
        };
        identities.credentials(&chained).await.map(drop)
    }

    fn sts_error_body(code: &str, message: &str) -> String {
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
             <Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>4f0c1b2e-0000-4000-8000-000000000000</RequestId></ErrorResponse>"
        )
    }

    #[tokio::test]
    async fn replayed_sts_duration_refusals_are_session_duration_refused() {
        for message in [
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ] {
            let err = assume_role_with_answer(400, &sts_error_body("ValidationError", message))
                .await
                .unwrap_err();
            assert_eq!(err.reason(), Reason::SessionDurationRefused, "{message}");
            assert!(!err.message().contains("4f0c1b2e"), "{}", err.message());
        }
    }

    #[tokio::test]
    async fn replayed_signature_refusal_is_passing() {
        let message = "Signature expired: 20261203T000000Z is now earlier than 20261203T000500Z \
                       (20261203T001000Z - 5 min.)";
        let err = read_with_answer(400, &error_body("InvalidSignatureException", message))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Reason::AwsUnavailable);
        assert!(err.message().contains("clock"), "{}", err.message());
    }

    #[tokio::test]
    async fn replayed_refusal_of_an_unshared_parameter_of_another_account_is_ssm_access_denied() {
        let arn = "arn:aws:ssm:us-west-2:444455556666:parameter/shared/token";
        let message = format!(
            "User: {ROLE} is not authorized to perform: ssm:GetParameters on resource: {arn} \
             because no resource-based policy allows the ssm:GetParameters action"
        );
        let err = read_with_answer(400, &error_body("AccessDeniedException", &message))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Reason::SsmAccessDenied);
    }

    fn error_body(code: &str, message: &str) -> String {
        serde_json::json!({ "__type": code, "message": message }).to_string()
    }

    #[tokio::test]
    async fn replayed_kms_denial_is_kms_access_denied_naming_key_and_role() {
        let message = format!(
            "User: {ROLE} is not authorized to perform: kms:Decrypt on resource: {KEY} because no identity-based \
             policy allows the kms:Decrypt action (Service: AWSKMS; Status Code: 400; Error Code: \
             AccessDeniedException; Request ID: 8b1e4d2c-0000-4000-8000-000000000000; Proxy: null)"
        );
        let err = read_with_answer(400, &error_body("AccessDeniedException", &message))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            SyncError::KmsAccessDenied {
                parameter: "prd-db-pass".into(),
                key: Some(KEY.into()),
                principal: Some(ROLE_IN_MESSAGES.into()),
            }
        );
        assert!(
            !err.message().contains("8b1e4d2c"),
            "request id leaked: {}",
            err.message()
        );
    }

    #[tokio::test]
    async fn replayed_invalid_key_id_bodies_tell_key_states_apart() {
        let cases = [
            (
                format!(
                    "{KEY} is disabled. (Service: AWSKMS; Status Code: 400; Error Code: DisabledException; Request ID: x; Proxy: null)"
                ),
                Reason::KmsKeyDisabled,
            ),
            (
                format!(
                    "{KEY} is pending deletion. (Service: AWSKMS; Status Code: 400; Error Code: KMSInvalidStateException; Request ID: x; Proxy: null)"
                ),
                Reason::KmsKeyPendingDeletion,
            ),
            (
                format!(
                    "{KEY} is pending import. (Service: AWSKMS; Status Code: 400; Error Code: KMSInvalidStateException; Request ID: x; Proxy: null)"
                ),
                Reason::KmsKeyUnusable,
            ),
            (
                format!(
                    "Key '{KEY}' does not exist (Service: AWSKMS; Status Code: 400; Error Code: NotFoundException; Request ID: x; Proxy: null)"
                ),
                Reason::KmsKeyNotFound,
            ),
        ];
        for (message, reason) in cases {
            let err = read_with_answer(400, &error_body("InvalidKeyId", &message))
                .await
                .unwrap_err();
            assert_eq!(err.reason(), reason, "{message}");
        }
    }

    #[tokio::test]
    async fn replayed_ssm_denial_is_ssm_access_denied() {
        let message = format!(
            "User: {ROLE} is not authorized to perform: ssm:GetParameters on resource: \
             arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd-db-pass because no identity-based policy \
             allows the ssm:GetParameters action"
        );
        let err = read_with_answer(400, &error_body("AccessDeniedException", &message))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Reason::SsmAccessDenied);
        assert!(err.message().contains("ssm:GetParameters"));
    }

    #[tokio::test]
    async fn replayed_throttling_and_server_errors_are_transient() {
        let throttled =
            read_with_answer(400, &error_body("ThrottlingException", "Rate exceeded")).await;
        assert_eq!(throttled.unwrap_err().reason(), Reason::Throttled);
        let unavailable = read_with_answer(500, &error_body("InternalServerError", "oops")).await;
        assert_eq!(unavailable.unwrap_err().reason(), Reason::AwsUnavailable);
    }

    #[tokio::test]
    async fn replayed_kms_throttling_inside_an_invalid_key_id_is_throttled_not_a_missing_key() {
        // KMS's text (repost.aws, kms-throttlingexception-error) in the
        // wrapping SSM uses for other KMS failures.
        let message = "You have exceeded the rate at which you may call KMS. Reduce the frequency of your \
                       calls. (Service: AWSKMS; Status Code: 400; Error Code: ThrottlingException; Request ID: \
                       4d15a2da-441a-11e5-8a71-8d9f87588b5d; Proxy: null)";
        let err = read_with_answer(400, &error_body("InvalidKeyId", message))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Reason::Throttled);
        assert!(!err.message().contains("4d15a2da"), "{}", err.message());
    }

    #[tokio::test]
    async fn replayed_expired_session_is_a_passing_fault() {
        let err = read_with_answer(
            400,
            &error_body(
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(err.reason(), Reason::AwsUnavailable);
    }

    #[tokio::test]
    async fn replayed_empty_answer_has_nothing_found_and_nothing_missing() {
        let page = read_with_answer(200, "{}").await.unwrap();
        assert_eq!(page, ParametersPage::default());
    }

    #[tokio::test]
    async fn replayed_invalid_parameters_are_reported_missing() {
        let body = r#"{"Parameters": [], "InvalidParameters": ["prd-db-pass"]}"#;
        let page = read_with_answer(200, body).await.unwrap();
        assert_eq!(page.invalid, vec!["prd-db-pass".to_owned()]);
    }
}
