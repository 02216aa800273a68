//! What `policy` asks AWS about parameters: their type and KMS key
//! (SSM DescribeParameters, KMS DescribeKey). The operator itself never
//! makes these calls.

use std::borrow::Cow;
use std::collections::BTreeSet;

use anyhow::Context as _;
use aws_sdk_ssm::types::{ParameterMetadata, ParameterStringFilter, ParameterType};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::aws::arn::Arn;

/// SSM's default key for SecureStrings. AWS managed keys (`alias/aws/…`) may
/// be used by every principal of the account through the service without a
/// grant, so they never appear in a policy.
const AWS_MANAGED_SSM_KEY: &str = "alias/aws/ssm";

/// How a parameter is encrypted, as far as reading it is concerned.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Encryption {
    /// `String` or `StringList`: no KMS.
    Plain,
    /// A SecureString under an AWS managed key such as `alias/aws/ssm`: no
    /// grant needed inside the account.
    AwsManagedKey,
    /// A SecureString under this customer-managed key (its ARN).
    CustomerKey(String),
    /// Not known (AWS not asked, or the parameter not found): any key may be
    /// needed.
    Unknown,
}

/// Where the policy learns how parameters are encrypted.
pub trait KeyLookup: Sync {
    /// The parameter `name` (a name or an ARN, as the spec gives it) in `region`.
    fn parameter<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Encryption>>;

    /// The distinct encryptions of the parameters under `prefix` (and below
    /// its sub-paths when `recursive`); empty when there are none.
    fn path<'a>(
        &'a self,
        region: &'a str,
        prefix: &'a str,
        recursive: bool,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Encryption>>>;
}

/// The lookup for `--no-aws`: nothing is known, anything may be encrypted.
pub struct WithoutAws;

impl KeyLookup for WithoutAws {
    fn parameter<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Encryption>> {
        async { Ok(Encryption::Unknown) }.boxed()
    }

    fn path<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: bool,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Encryption>>> {
        async { Ok(vec![Encryption::Unknown]) }.boxed()
    }
}

/// The lookup against AWS: SSM DescribeParameters tells a parameter's type
/// and key, KMS DescribeKey turns the key's id or alias into its ARN.
pub struct AwsLookup {
    ssm: aws_sdk_ssm::Client,
    kms: aws_sdk_kms::Client,
    /// Parameters named by an ARN of another account cannot be described here.
    account: String,
}

impl AwsLookup {
    /// The clients' credentials must allow `ssm:DescribeParameters` and
    /// `kms:DescribeKey`; their region is replaced by each parameter's.
    pub fn new(ssm: aws_sdk_ssm::Client, kms: aws_sdk_kms::Client, account: &str) -> Self {
        Self {
            ssm,
            kms,
            account: account.to_owned(),
        }
    }

    fn ssm_in(&self, region: &str) -> aws_sdk_ssm::Client {
        let config = self.ssm.config().to_builder();
        aws_sdk_ssm::Client::from_conf(
            config
                .region(aws_sdk_ssm::config::Region::new(region.to_owned()))
                .build(),
        )
    }

    fn kms_in(&self, region: &str) -> aws_sdk_kms::Client {
        let config = self.kms.config().to_builder();
        aws_sdk_kms::Client::from_conf(
            config
                .region(aws_sdk_kms::config::Region::new(region.to_owned()))
                .build(),
        )
    }

    async fn describe_parameter(&self, region: &str, name: &str) -> anyhow::Result<Encryption> {
        let Some(own_name) = name_in_account(name, &self.account) else {
            eprintln!(
                "note: {name} belongs to another account, whose keys cannot be looked up here: \
                 kms:Decrypt is granted on any key, through SSM in {region}"
            );
            return Ok(Encryption::Unknown);
        };
        let filter = ParameterStringFilter::builder()
            .key("Name")
            .option("Equals")
            .values(own_name)
            .build()?;
        let found = self.describe(region, filter).await?;
        let Some(parameter) = found.first() else {
            eprintln!(
                "note: parameter {name} not found in {region}: \
                 kms:Decrypt is granted on any key, through SSM in {region}"
            );
            return Ok(Encryption::Unknown);
        };
        match secure_string_key(parameter) {
            Some(key_id) => self.key(region, key_id).await,
            None => Ok(Encryption::Plain),
        }
    }

    async fn describe_path(
        &self,
        region: &str,
        prefix: &str,
        recursive: bool,
    ) -> anyhow::Result<Vec<Encryption>> {
        let filter = ParameterStringFilter::builder()
            .key("Path")
            .option(if recursive { "Recursive" } else { "OneLevel" })
            .values(prefix)
            .build()?;
        let parameters = self.describe(region, filter).await?;
        let mut encryptions = BTreeSet::new();
        let mut key_ids = BTreeSet::new();
        for parameter in &parameters {
            match secure_string_key(parameter) {
                Some(key_id) => key_ids.insert(key_id),
                None => encryptions.insert(Encryption::Plain),
            };
        }
        // Parameters under a path tend to share a key: ask KMS once per key.
        for key_id in key_ids {
            encryptions.insert(self.key(region, key_id).await?);
        }
        Ok(encryptions.into_iter().collect())
    }

    async fn describe(
        &self,
        region: &str,
        filter: ParameterStringFilter,
    ) -> anyhow::Result<Vec<ParameterMetadata>> {
        parameters_matching(&self.ssm_in(region), filter)
            .await
            .with_context(|| format!("SSM DescribeParameters in {region} (--no-aws skips it)"))
    }

    /// The key SSM stores as `key_id`: a key id, key ARN, alias or alias ARN.
    async fn key(&self, region: &str, key_id: &str) -> anyhow::Result<Encryption> {
        // No grant is needed whatever the key's ARN; and KMS would create
        // the key behind a reserved alias not used yet.
        if key_id.starts_with("alias/aws/") || key_id.contains(":alias/aws/") {
            return Ok(Encryption::AwsManagedKey);
        }
        let described = self
            .kms_in(region)
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .with_context(|| format!("KMS DescribeKey {key_id} in {region} (--no-aws skips it)"))?;
        let metadata = described
            .key_metadata
            .with_context(|| format!("KMS DescribeKey {key_id} returned no key"))?;
        if metadata.key_manager == Some(aws_sdk_kms::types::KeyManagerType::Aws) {
            return Ok(Encryption::AwsManagedKey);
        }
        let arn = metadata
            .arn
            .with_context(|| format!("KMS DescribeKey {key_id} returned no key ARN"))?;
        Ok(Encryption::CustomerKey(arn))
    }
}

impl KeyLookup for AwsLookup {
    fn parameter<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Encryption>> {
        self.describe_parameter(region, name).boxed()
    }

    fn path<'a>(
        &'a self,
        region: &'a str,
        prefix: &'a str,
        recursive: bool,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Encryption>>> {
        self.describe_path(region, prefix, recursive).boxed()
    }
}

/// Every parameter matching `filter`, all pages: a filtered page may be
/// empty and still have a next one.
pub async fn parameters_matching(
    ssm: &aws_sdk_ssm::Client,
    filter: ParameterStringFilter,
) -> Result<Vec<ParameterMetadata>, DescribeFailure> {
    let pages: Vec<_> = ssm
        .describe_parameters()
        .parameter_filters(filter)
        .into_paginator()
        .send()
        .try_collect()
        .await?;
    Ok(pages
        .into_iter()
        .flat_map(|page| page.parameters.unwrap_or_default())
        .collect())
}

/// A failed DescribeParameters call.
pub type DescribeFailure = aws_sdk_ssm::error::SdkError<
    aws_sdk_ssm::operation::describe_parameters::DescribeParametersError,
    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
>;

/// The key of a SecureString as SSM stores it; `None` for other types.
fn secure_string_key(parameter: &ParameterMetadata) -> Option<&str> {
    (parameter.r#type() == Some(&ParameterType::SecureString))
        .then(|| parameter.key_id().unwrap_or(AWS_MANAGED_SSM_KEY))
}

/// The name DescribeParameters knows `name` by in `account`, or `None` for an
/// ARN of another account. In an ARN, a hierarchical name loses its leading
/// `/` (`parameter/prd/db` is `/prd/db`).
fn name_in_account<'a>(name: &'a str, account: &str) -> Option<Cow<'a, str>> {
    if !name.starts_with("arn:") {
        return Some(name.into());
    }
    let arn = Arn::parse(name)?;
    if arn.account != account {
        return None;
    }
    arn.parameter_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "111122223333";

    #[test]
    fn arns_of_this_account_are_described_by_name() {
        let arn = |name: &str| format!("arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/{name}");
        assert_eq!(
            name_in_account("prd-db-pass", ACCOUNT).as_deref(),
            Some("prd-db-pass")
        );
        assert_eq!(
            name_in_account(&arn("prd-db-pass"), ACCOUNT).as_deref(),
            Some("prd-db-pass")
        );
        assert_eq!(
            name_in_account(&arn("prd/db/pass"), ACCOUNT).as_deref(),
            Some("/prd/db/pass")
        );
        assert_eq!(name_in_account(&arn("x"), "444455556666"), None);
    }
}
