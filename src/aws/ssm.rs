//! [`ParameterStore`] over the AWS SDK.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_sdk_ssm::config::IdentityCache;
use aws_sdk_ssm::types::Parameter;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::classify::{self, AwsFailure};
use super::credentials::{CachedProvider, CredentialsCache};
use super::{FetchedParameter, ParameterStore, ParametersPage, Scope};
use crate::error::SyncError;
use crate::value::SecretValue;

/// Parameter Store through the SDK, with one client per region.
pub struct SsmParameterStore {
    base: SdkConfig,
    credentials: Arc<CredentialsCache>,
    clients: Mutex<HashMap<String, aws_sdk_ssm::Client>>,
}

impl SsmParameterStore {
    /// `base` carries endpoint, retry and timeout settings; credentials come
    /// from `credentials` only.
    pub fn new(base: SdkConfig, credentials: Arc<CredentialsCache>) -> Self {
        Self {
            base,
            credentials,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, region: &str) -> aws_sdk_ssm::Client {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let config = aws_sdk_ssm::config::Builder::from(&self.base)
                    .region(aws_sdk_ssm::config::Region::new(region.to_owned()))
                    .credentials_provider(CachedProvider(self.credentials.clone()))
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
        self.credentials.credentials().await?;
        let first = names.first().map(String::as_str).unwrap_or_default();
        let out = self
            .client(&scope.region)
            .get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(decrypt)
            .send()
            .await;
        match out {
            Ok(out) => Ok(ParametersPage {
                found: out
                    .parameters
                    .unwrap_or_default()
                    .into_iter()
                    .map(fetched)
                    .collect(),
                invalid: out.invalid_parameters.unwrap_or_default(),
            }),
            Err(err) => {
                let failure = AwsFailure::of(&err);
                if matches!(
                    failure.code.as_deref(),
                    Some(
                        "ExpiredTokenException"
                            | "UnrecognizedClientException"
                            | "InvalidSignatureException"
                    )
                ) {
                    self.credentials.invalidate().await;
                }
                Err(classify::ssm_read(&failure, "GetParameters", first))
            }
        }
    }
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
}
