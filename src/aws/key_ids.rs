//! The KMS key of each SecureString, for `status.parameters[].keyId`
//! (`--report-key-ids`).
//!
//! GetParameters does not say which key a SecureString is encrypted with.
//! SSM DescribeParameters does, as the parameter was written — a key id,
//! an alias or an ARN ("KeyId: The alias or ID of the KMS key", SSM API
//! Reference, ParameterMetadata) — and KMS DescribeKey turns any of those
//! into the key's ARN, so that the status names a key the same way however
//! the parameter was created.
//!
//! Opt-in, since it needs more of the reading role: `ssm:DescribeParameters`
//! (an action IAM authorizes on the account, not on parameters) and
//! `kms:DescribeKey` on the keys. Asked only with decrypting reads of
//! parameter versions not looked up before (the status keeps what was
//! found), one DescribeParameters per GetParameters batch and one
//! DescribeKey per key. A lookup that fails leaves keyId empty and never
//! fails the read.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_ssm::types::{ParameterMetadata, ParameterStringFilter};

use super::arn::same_parameter;
use super::classify::AwsFailure;
use super::describe::parameters_matching;
use super::idle::IdleMap;
use super::{FetchedParameter, Scope};

/// Parameter versions remembered; beyond, the memory starts afresh.
const MAX_VERSIONS: usize = 50_000;

/// What was learnt of keys, per scope.
#[derive(Default)]
pub struct KeyIds {
    /// (scope, parameter name, version) → key ARN; `None`: not a key to name.
    versions: Mutex<HashMap<(Scope, String, i64), Option<String>>>,
    /// (scope, key as SSM names it) → key ARN.
    keys: IdleMap<(Scope, String), String>,
}

impl KeyIds {
    /// Fills `key_id` of the SecureStrings in `found`, read in `scope`.
    pub async fn fill(
        &self,
        scope: &Scope,
        ssm: &aws_sdk_ssm::Client,
        kms: &aws_sdk_kms::Client,
        found: &mut [FetchedParameter],
    ) {
        let mut unknown = Vec::new();
        for p in found.iter_mut().filter(|p| p.type_ == "SecureString") {
            match self.remembered(scope, p) {
                Some(key) => p.key_id = key,
                None => unknown.push(p),
            }
        }
        // Another account's parameters are not described in this one.
        unknown.retain(|p| !p.name.starts_with("arn:"));
        if unknown.is_empty() {
            return;
        }
        let names: Vec<String> = unknown.iter().map(|p| p.name.clone()).collect();
        let described = match describe(ssm, &names).await {
            Ok(described) => described,
            Err(failure) => {
                tracing::warn!(
                    region = %scope.region,
                    error = %failure,
                    "keyId not reported: ssm:DescribeParameters failed"
                );
                return;
            }
        };
        for p in unknown {
            let metadata = described
                .iter()
                .find(|m| m.name().is_some_and(|n| same_parameter(n, &p.name)));
            // DescribeParameters tells the latest version's key: a pinned
            // older version may be under another.
            let written = metadata
                .filter(|m| m.version() == p.version)
                .and_then(|m| m.key_id());
            let Some(written) = written else { continue };
            match self.key_arn(scope, kms, written).await {
                Ok(arn) => {
                    p.key_id = Some(arn.clone());
                    self.remember(scope, p, Some(arn));
                }
                Err(failure) => tracing::warn!(
                    region = %scope.region,
                    error = %failure,
                    "keyId not reported: kms:DescribeKey failed"
                ),
            }
        }
    }

    fn remembered(&self, scope: &Scope, p: &FetchedParameter) -> Option<Option<String>> {
        let versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        versions
            .get(&(scope.clone(), p.name.clone(), p.version))
            .cloned()
    }

    fn remember(&self, scope: &Scope, p: &FetchedParameter, key: Option<String>) {
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        if versions.len() >= MAX_VERSIONS {
            versions.clear();
        }
        versions.insert((scope.clone(), p.name.clone(), p.version), key);
    }

    async fn key_arn(
        &self,
        scope: &Scope,
        kms: &aws_sdk_kms::Client,
        written: &str,
    ) -> Result<String, String> {
        let entry = (scope.clone(), written.to_owned());
        if let Some(arn) = self.keys.get(&entry) {
            return Ok(arn);
        }
        // A key ARN is the answer already; an alias (or a key id) is asked.
        let arn = match written.contains(":key/") {
            true => written.to_owned(),
            false => {
                let described = kms
                    .describe_key()
                    .key_id(written)
                    .send()
                    .await
                    .map_err(|e| AwsFailure::of(&e).describe())?;
                described
                    .key_metadata
                    .and_then(|m| m.arn)
                    .ok_or_else(|| format!("KMS described {written} without an ARN"))?
            }
        };
        self.keys.get_or_insert_with(&entry, || arn.clone());
        Ok(arn)
    }
}

/// The metadata of `names` (at most 50, as the Name filter takes).
async fn describe(
    ssm: &aws_sdk_ssm::Client,
    names: &[String],
) -> Result<Vec<ParameterMetadata>, String> {
    let filter = ParameterStringFilter::builder()
        .key("Name")
        .option("Equals")
        .set_values(Some(names.to_vec()))
        .build()
        .map_err(|e| e.to_string())?;
    parameters_matching(ssm, filter)
        .await
        .map_err(|e| AwsFailure::of(&e).describe())
}
