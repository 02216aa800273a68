//! `ssm-operator policy`: the least-privilege IAM policy that reading one
//! SsmParameter needs, and the IRSA trust policy of the ServiceAccount that
//! reads it.
//!
//! The permissions follow the calls the operator makes (see [`crate::reconcile::read`]):
//! `ssm:GetParameters` on each explicit parameter (a probe without decryption,
//! then a decrypting read of the SecureStrings); `ssm:GetParametersByPath` on
//! the path (without decryption), then `ssm:GetParameters` by name on the
//! SecureStrings it found there; and `kms:Decrypt`, through SSM only, on the
//! customer-managed keys of the SecureStrings it decrypts.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_ssm::types::{ParameterMetadata, ParameterStringFilter, ParameterType};
use futures::FutureExt;
use futures::future::BoxFuture;
use kube::ResourceExt;
use kube::api::Api;
use serde_json::{Value, json};

use crate::api::SsmParameter;
use crate::aws::Identity;
use crate::reconcile::plan::Plan;

/// Where the issuer goes in a trust policy printed without one; the README
/// uses the same placeholder.
const ISSUER_PLACEHOLDER: &str = "<OIDC>";

/// How long to wait for a cluster to tell its OIDC issuer before printing the
/// placeholder instead.
const ISSUER_TIMEOUT: Duration = Duration::from_secs(5);

/// The ServiceAccount (and its namespace) the operator runs as by default.
const OPERATOR_SERVICE_ACCOUNT: &str = "ssm-operator";

/// SSM's default key for SecureStrings. AWS managed keys (`alias/aws/…`) may
/// be used by every principal of the account through the service without a
/// grant, so they never appear in a policy.
const AWS_MANAGED_SSM_KEY: &str = "alias/aws/ssm";

/// `ssm-operator policy`: print the IAM policies an SsmParameter's reader needs.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("ssm_parameter").required(true).args(["file", "name"])))]
pub struct PolicyArgs {
    /// An SsmParameter manifest (YAML).
    #[arg(long, short = 'f', conflicts_with = "namespace")]
    pub file: Option<PathBuf>,

    /// Namespace of the live SsmParameter. Default: the kubeconfig's.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// Name of a live SsmParameter to read from the cluster.
    pub name: Option<String>,

    /// Region of parameters whose SsmParameter names none.
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,

    /// The AWS account of the parameters. Default: the account of the
    /// ambient AWS credentials (STS GetCallerIdentity).
    #[arg(long, value_parser = parse_account)]
    pub account: Option<String>,

    /// The cluster's OIDC issuer URL, for the trust policy. Default: the one
    /// the API server announces, when a cluster is reachable.
    #[arg(long)]
    pub oidc_issuer: Option<String>,

    /// The ServiceAccount whose role reads AWS. Default: the SsmParameter's
    /// `spec.identity.serviceAccountName`, else `ssm-operator`.
    #[arg(long)]
    pub service_account: Option<String>,

    /// Namespace of that ServiceAccount. Default: the SsmParameter's own for
    /// `spec.identity.serviceAccountName`, else `ssm-operator`.
    #[arg(long)]
    pub service_account_namespace: Option<String>,

    /// Do not ask AWS which KMS keys the parameters use: grant kms:Decrypt on
    /// any key, through SSM only.
    #[arg(long, requires = "account")]
    pub no_aws: bool,
}

fn parse_account(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a 12-digit AWS account id"))
    }
}

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
pub trait SsmLookup: Sync {
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

impl SsmLookup for WithoutAws {
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

    /// Every parameter matching `filter`, all pages: a filtered page may be
    /// empty and still have a next one.
    async fn describe(
        &self,
        region: &str,
        filter: ParameterStringFilter,
    ) -> anyhow::Result<Vec<ParameterMetadata>> {
        let pages: Vec<_> = self
            .ssm_in(region)
            .describe_parameters()
            .parameter_filters(filter)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .with_context(|| format!("SSM DescribeParameters in {region} (--no-aws skips it)"))?;
        Ok(pages
            .into_iter()
            .flat_map(|page| page.parameters.unwrap_or_default())
            .collect())
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

impl SsmLookup for AwsLookup {
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

/// The key of a SecureString as SSM stores it; `None` for other types.
fn secure_string_key(parameter: &ParameterMetadata) -> Option<&str> {
    (parameter.r#type() == Some(&ParameterType::SecureString))
        .then(|| parameter.key_id().unwrap_or(AWS_MANAGED_SSM_KEY))
}

/// The name DescribeParameters knows `name` by in `account`, or `None` for an
/// ARN of another account. In an ARN, a hierarchical name loses its leading
/// `/` (`parameter/prd/db` is `/prd/db`).
fn name_in_account<'a>(name: &'a str, account: &str) -> Option<std::borrow::Cow<'a, str>> {
    let Some(arn) = name.strip_prefix("arn:") else {
        return Some(name.into());
    };
    // <partition>:ssm:<region>:<account>:parameter/<name>
    let mut parts = arn.splitn(5, ':').skip(3);
    let (arn_account, resource) = (parts.next()?, parts.next()?);
    let bare = resource.strip_prefix("parameter/")?;
    if arn_account != account {
        return None;
    }
    Some(if bare.contains('/') {
        format!("/{bare}").into()
    } else {
        bare.into()
    })
}

/// What one SsmParameter's reads touch, collected before the document is
/// written.
#[derive(Default)]
struct Grants {
    /// `ssm:GetParameters` on the explicit parameters.
    parameters: BTreeSet<String>,
    /// `ssm:GetParametersByPath` on the path.
    path: Option<String>,
    /// `ssm:GetParameters` on what is under the path, to decrypt it.
    under_path: Option<String>,
    /// `kms:Decrypt` on these keys (`*`: any key).
    keys: BTreeSet<String>,
    /// The regions whose SSM decrypts.
    decrypting_regions: BTreeSet<String>,
}

impl Grants {
    fn decrypt(&mut self, region: &str, encryption: &Encryption) {
        let key = match encryption {
            Encryption::Plain | Encryption::AwsManagedKey => return,
            Encryption::CustomerKey(arn) => arn.clone(),
            Encryption::Unknown => "*".to_owned(),
        };
        self.keys.insert(key);
        self.decrypting_regions.insert(region.to_owned());
    }

    fn document(self) -> Value {
        let mut statements = Vec::new();
        if !self.parameters.is_empty() {
            statements.push(allow(
                "ReadParameters",
                "ssm:GetParameters",
                self.parameters,
            ));
        }
        if let Some(path) = self.path {
            statements.push(allow(
                "ReadParametersByPath",
                "ssm:GetParametersByPath",
                [path].into(),
            ));
        }
        if let Some(under_path) = self.under_path {
            statements.push(allow(
                "ReadSecureStringsUnderPath",
                "ssm:GetParameters",
                [under_path].into(),
            ));
        }
        if !self.keys.is_empty() {
            statements.push(decrypt_through_ssm(self.keys, &self.decrypting_regions));
        }
        json!({"Version": "2012-10-17", "Statement": statements})
    }
}

fn allow(sid: &str, action: &str, resources: BTreeSet<String>) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resources})
}

/// `kms:Decrypt` on `keys`, only when SSM of one of `regions` asks: the role
/// cannot use the keys directly, only to read the parameters.
fn decrypt_through_ssm(keys: BTreeSet<String>, regions: &BTreeSet<String>) -> Value {
    // Any key: naming some ARNs as well would add nothing.
    let keys = if keys.contains("*") {
        ["*".to_owned()].into()
    } else {
        keys
    };
    let services: Vec<String> = regions
        .iter()
        .map(|r| format!("ssm.{r}.amazonaws.com"))
        .collect();
    let via = match services.as_slice() {
        [one] => json!(one),
        _ => json!(services),
    };
    let mut statement = allow("DecryptParameters", "kms:Decrypt", keys);
    statement["Condition"] = json!({"StringEquals": {"kms:ViaService": via}});
    statement
}

/// The ARN IAM checks for a parameter: a name becomes an ARN of `account` in
/// `region`; an ARN (another account or region) stays as it is.
fn parameter_arn(region: &str, account: &str, name: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_owned();
    }
    let bare = name.trim_start_matches('/');
    format!("arn:aws:ssm:{region}:{account}:parameter/{bare}")
}

/// The ARNs of a path: the one GetParametersByPath is checked on, and the
/// pattern of the parameters under it.
fn path_arns(region: &str, account: &str, prefix: &str) -> (String, String) {
    let bare = prefix.trim_matches('/');
    let path = format!("arn:aws:ssm:{region}:{account}:parameter/{bare}");
    let under = if bare.is_empty() {
        format!("{path}*")
    } else {
        format!("{path}/*")
    };
    (path, under)
}

/// The least-privilege permissions policy for reading what `plan` asks, with
/// parameters of `account` (unless named by ARN), their keys found by `ssm`.
pub async fn permissions_policy(
    plan: &Plan,
    account: &str,
    ssm: &dyn SsmLookup,
) -> anyhow::Result<Value> {
    let mut grants = Grants::default();
    for entry in &plan.entries {
        let region = &entry.scope.region;
        grants
            .parameters
            .insert(parameter_arn(region, account, &entry.name));
        // Read without decryption, a SecureString never reaches KMS.
        if entry.decrypt {
            grants.decrypt(region, &ssm.parameter(region, &entry.name).await?);
        }
    }
    if let Some(path) = &plan.path {
        let (region, prefix) = (&path.scope.region, &path.query.prefix);
        let (path_arn, under_path_arn) = path_arns(region, account, prefix);
        grants.path = Some(path_arn);
        let found = ssm.path(region, prefix, path.query.recursive).await?;
        // The path is listed without decryption; SecureStrings found there
        // are then decrypted with GetParameters by name.
        if found.iter().any(|e| *e != Encryption::Plain) {
            grants.under_path = Some(under_path_arn);
        }
        for encryption in &found {
            grants.decrypt(region, encryption);
        }
    }
    Ok(grants.document())
}

/// The IRSA trust policy: `service_account` of `namespace` may assume the
/// role with a token of the cluster's OIDC `issuer` meant for STS.
pub fn trust_policy(account: &str, issuer: &str, namespace: &str, service_account: &str) -> Value {
    let provider = issuer.trim_start_matches("https://");
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ServiceAccountWebIdentity",
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{account}:oidc-provider/{provider}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{provider}:sub"): format!("system:serviceaccount:{namespace}:{service_account}"),
                format!("{provider}:aud"): "sts.amazonaws.com",
            }},
        }],
    })
}

/// Prints `{"permissionsPolicy": …, "trustPolicy": …}` to stdout; what the
/// reader should know about them goes to stderr.
pub async fn run(args: PolicyArgs) -> anyhow::Result<()> {
    let obj = load(&args).await?;
    let region = args
        .region
        .clone()
        .or_else(|| obj.spec.region.clone())
        .context("the SsmParameter names no region: pass --region or set AWS_REGION")?;
    // Whose identity reads does not change what it reads.
    let plan = Plan::of(&obj, &region, Identity::default())?;
    let (account, permissions) = permissions(&args, &plan, &region).await?;
    let (namespace, service_account) = reader(&args, &obj)?;
    if let Some(role) = obj
        .spec
        .identity
        .as_ref()
        .and_then(|i| i.role_arn.as_deref())
    {
        eprintln!(
            "note: the SsmParameter reads as {role}: the permissions policy belongs on that role, \
             which must trust the ServiceAccount's role for sts:AssumeRole; the trust policy \
             printed is the ServiceAccount's role's"
        );
    }
    let issuer = oidc_issuer(&args).await;
    let trust = trust_policy(&account, &issuer, &namespace, &service_account);
    let policies = json!({"permissionsPolicy": permissions, "trustPolicy": trust});
    println!("{}", serde_json::to_string_pretty(&policies)?);
    Ok(())
}

/// The account and the permissions policy, asking AWS unless `--no-aws`.
async fn permissions(
    args: &PolicyArgs,
    plan: &Plan,
    region: &str,
) -> anyhow::Result<(String, Value)> {
    if args.no_aws {
        let account = args.account.clone().context("--no-aws needs --account")?;
        eprintln!(
            "warning: --no-aws: the parameters' KMS keys were not looked up, so kms:Decrypt is \
             granted on any key (through SSM only); run without --no-aws to name the keys"
        );
        let policy = permissions_policy(plan, &account, &WithoutAws).await?;
        return Ok((account, policy));
    }
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await;
    let account = match &args.account {
        Some(account) => account.clone(),
        None => caller_account(&config).await?,
    };
    let lookup = AwsLookup::new(
        aws_sdk_ssm::Client::new(&config),
        aws_sdk_kms::Client::new(&config),
        &account,
    );
    let policy = permissions_policy(plan, &account, &lookup).await?;
    Ok((account, policy))
}

async fn caller_account(config: &aws_config::SdkConfig) -> anyhow::Result<String> {
    let identity = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .context("STS GetCallerIdentity, to learn the account (--account skips it)")?;
    identity
        .account
        .context("STS GetCallerIdentity named no account: pass --account")
}

/// The SsmParameter, from `--file` or from the cluster.
async fn load(args: &PolicyArgs) -> anyhow::Result<SsmParameter> {
    if let Some(file) = &args.file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        return serde_yaml::from_str(&text)
            .with_context(|| format!("{} is not an SsmParameter manifest", file.display()));
    }
    let Some(name) = &args.name else {
        bail!("name an SsmParameter, or give its manifest with --file");
    };
    let client = kube::Client::try_default()
        .await
        .context("no cluster to read the SsmParameter from (--file reads a manifest)")?;
    let api: Api<SsmParameter> = match &args.namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::default_namespaced(client),
    };
    api.get(name)
        .await
        .with_context(|| format!("reading SsmParameter {name}"))
}

/// The ServiceAccount (namespace, name) whose role reads AWS for `obj`.
fn reader(args: &PolicyArgs, obj: &SsmParameter) -> anyhow::Result<(String, String)> {
    let own = obj
        .spec
        .identity
        .as_ref()
        .and_then(|i| i.service_account_name.clone());
    let namespace = match (&args.service_account_namespace, &own) {
        (Some(namespace), _) => namespace.clone(),
        // spec.identity names a ServiceAccount of the SsmParameter's namespace.
        (None, Some(sa)) => obj.namespace().with_context(|| {
            format!(
                "the SsmParameter reads as ServiceAccount {sa} of its own namespace, which \
                 the manifest does not name: pass --service-account-namespace"
            )
        })?,
        (None, None) => OPERATOR_SERVICE_ACCOUNT.to_owned(),
    };
    let name = args
        .service_account
        .clone()
        .or(own)
        .unwrap_or_else(|| OPERATOR_SERVICE_ACCOUNT.to_owned());
    Ok((namespace, name))
}

/// `--oidc-issuer`, else the cluster's, else the placeholder (said on stderr).
async fn oidc_issuer(args: &PolicyArgs) -> String {
    if let Some(issuer) = &args.oidc_issuer {
        return issuer.clone();
    }
    let failure = match tokio::time::timeout(ISSUER_TIMEOUT, cluster_issuer()).await {
        Ok(Ok(issuer)) => {
            eprintln!("note: the trust policy uses the cluster's OIDC issuer {issuer}");
            return issuer;
        }
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {ISSUER_TIMEOUT:?}"),
    };
    eprintln!(
        "warning: no --oidc-issuer and the cluster did not tell its issuer ({failure}): the trust \
         policy says {ISSUER_PLACEHOLDER} where the issuer without https:// goes"
    );
    ISSUER_PLACEHOLDER.to_owned()
}

/// The issuer the API server announces in its OpenID discovery document.
async fn cluster_issuer() -> anyhow::Result<String> {
    let client = kube::Client::try_default().await?;
    // kube's request builder is made for resource URLs, but a GET of
    // `<base>/<name>` is all this one needs.
    let request = kube::core::Request::new("/.well-known")
        .get("openid-configuration", &kube::api::GetParams::default())?;
    let discovery: Value = client.request(request).await?;
    discovery["issuer"]
        .as_str()
        .map(str::to_owned)
        .context("the API server's OpenID configuration names no issuer")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;

    use super::*;

    const ACCOUNT: &str = "111122223333";
    const REGION: &str = "ap-northeast-1";
    const KEY_A: &str = "arn:aws:kms:ap-northeast-1:111122223333:key/aaaa";
    const KEY_B: &str = "arn:aws:kms:ap-northeast-1:111122223333:key/bbbb";
    const KEY_PATH: &str = "arn:aws:kms:ap-northeast-1:111122223333:key/cccc";
    const KEY_WEST: &str = "arn:aws:kms:us-west-2:444455556666:key/dddd";

    /// Parameter Store as a table: name → encryption, and what is under the path.
    struct FakeLookup {
        parameters: HashMap<&'static str, Encryption>,
        under_path: Vec<Encryption>,
    }

    impl SsmLookup for FakeLookup {
        fn parameter<'a>(
            &'a self,
            _: &'a str,
            name: &'a str,
        ) -> BoxFuture<'a, anyhow::Result<Encryption>> {
            let found = self.parameters.get(name).cloned();
            async move { found.context("the test asked for an unknown parameter") }.boxed()
        }

        fn path<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: bool,
        ) -> BoxFuture<'a, anyhow::Result<Vec<Encryption>>> {
            let found = self.under_path.clone();
            async move { Ok(found) }.boxed()
        }
    }

    fn fake(parameters: &[(&'static str, Encryption)], under_path: Vec<Encryption>) -> FakeLookup {
        FakeLookup {
            parameters: parameters.iter().cloned().collect(),
            under_path,
        }
    }

    fn plan(spec: Value) -> Plan {
        let obj: SsmParameter = serde_json::from_value(json!({
            "apiVersion": "ssm-operator.io/v1alpha1",
            "kind": "SsmParameter",
            "metadata": {"name": "app", "namespace": "payments"},
            "spec": spec,
        }))
        .unwrap();
        Plan::of(&obj, REGION, Identity::default()).unwrap()
    }

    fn statement<'a>(policy: &'a Value, sid: &str) -> Option<&'a Value> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
    }

    fn sids(policy: &Value) -> Vec<&str> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn explicit_parameters_get_their_exact_arns_and_customer_keys() {
        let plan = plan(json!({"parameters": [
            {"name": "prd-db-pass"},
            {"name": "/prd/api/token"},
            {"name": "/prd/region"},
            {"name": "/prd/default-key"},
        ]}));
        let lookup = fake(
            &[
                ("prd-db-pass", Encryption::CustomerKey(KEY_A.into())),
                ("/prd/api/token", Encryption::CustomerKey(KEY_B.into())),
                ("/prd/region", Encryption::Plain),
                ("/prd/default-key", Encryption::AwsManagedKey),
            ],
            vec![],
        );
        let policy = permissions_policy(&plan, ACCOUNT, &lookup).await.unwrap();
        assert_eq!(
            policy,
            json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "ReadParameters", "Effect": "Allow", "Action": "ssm:GetParameters", "Resource": [
                    "arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd-db-pass",
                    "arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/api/token",
                    "arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/default-key",
                    "arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/region",
                ]},
                {"Sid": "DecryptParameters", "Effect": "Allow", "Action": "kms:Decrypt",
                 "Resource": [KEY_A, KEY_B],
                 "Condition": {"StringEquals": {"kms:ViaService": "ssm.ap-northeast-1.amazonaws.com"}}},
            ]})
        );
    }

    #[tokio::test]
    async fn plain_strings_and_undecrypted_secure_strings_need_no_kms() {
        let plan = plan(json!({"parameters": [
            {"name": "/prd/region"},
            {"name": "/prd/ciphertext", "decrypt": false},
        ]}));
        // The lookup does not know /prd/ciphertext: it must not be asked.
        let lookup = fake(&[("/prd/region", Encryption::Plain)], vec![]);
        let policy = permissions_policy(&plan, ACCOUNT, &lookup).await.unwrap();
        assert_eq!(sids(&policy), ["ReadParameters"]);
    }

    #[tokio::test]
    async fn a_parameter_named_by_arn_keeps_its_arn_and_its_regions_ssm_decrypts() {
        let arn = "arn:aws:ssm:us-west-2:444455556666:parameter/shared/token";
        let plan = plan(json!({"parameters": [{"name": arn}, {"name": "local"}]}));
        let lookup = fake(
            &[
                (
                    "arn:aws:ssm:us-west-2:444455556666:parameter/shared/token",
                    Encryption::CustomerKey(KEY_WEST.into()),
                ),
                ("local", Encryption::CustomerKey(KEY_A.into())),
            ],
            vec![],
        );
        let policy = permissions_policy(&plan, ACCOUNT, &lookup).await.unwrap();
        let read = statement(&policy, "ReadParameters").unwrap();
        assert_eq!(
            read["Resource"],
            json!([
                "arn:aws:ssm:ap-northeast-1:111122223333:parameter/local",
                arn,
            ])
        );
        let decrypt = statement(&policy, "DecryptParameters").unwrap();
        assert_eq!(decrypt["Resource"], json!([KEY_A, KEY_WEST]));
        assert_eq!(
            decrypt["Condition"]["StringEquals"]["kms:ViaService"],
            json!([
                "ssm.ap-northeast-1.amazonaws.com",
                "ssm.us-west-2.amazonaws.com"
            ])
        );
    }

    #[tokio::test]
    async fn a_path_with_secure_strings_may_be_listed_and_read_below_by_name() {
        let plan = plan(json!({"path": {"prefix": "/prd/payments/", "recursive": true}}));
        let lookup = fake(
            &[],
            vec![
                Encryption::Plain,
                Encryption::AwsManagedKey,
                Encryption::CustomerKey(KEY_PATH.into()),
            ],
        );
        let policy = permissions_policy(&plan, ACCOUNT, &lookup).await.unwrap();
        assert_eq!(
            sids(&policy),
            [
                "ReadParametersByPath",
                "ReadSecureStringsUnderPath",
                "DecryptParameters"
            ]
        );
        assert_eq!(
            statement(&policy, "ReadParametersByPath").unwrap()["Resource"],
            json!(["arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/payments"])
        );
        let under = statement(&policy, "ReadSecureStringsUnderPath").unwrap();
        assert_eq!(under["Action"], "ssm:GetParameters");
        assert_eq!(
            under["Resource"],
            json!(["arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/payments/*"])
        );
        assert_eq!(
            statement(&policy, "DecryptParameters").unwrap()["Resource"],
            json!([KEY_PATH])
        );
    }

    #[tokio::test]
    async fn a_path_of_plain_strings_is_only_listed() {
        let plan = plan(json!({"path": {"prefix": "/prd/config"}}));
        let lookup = fake(&[], vec![Encryption::Plain]);
        let policy = permissions_policy(&plan, ACCOUNT, &lookup).await.unwrap();
        assert_eq!(sids(&policy), ["ReadParametersByPath"]);
    }

    #[tokio::test]
    async fn without_aws_any_key_may_decrypt_but_only_through_ssm() {
        let plan = plan(json!({
            "parameters": [{"name": "prd-db-pass"}],
            "path": {"prefix": "/prd/payments"},
        }));
        let policy = permissions_policy(&plan, ACCOUNT, &WithoutAws)
            .await
            .unwrap();
        assert_eq!(
            sids(&policy),
            [
                "ReadParameters",
                "ReadParametersByPath",
                "ReadSecureStringsUnderPath",
                "DecryptParameters"
            ]
        );
        let decrypt = statement(&policy, "DecryptParameters").unwrap();
        assert_eq!(decrypt["Resource"], json!(["*"]));
        assert_eq!(
            decrypt["Condition"]["StringEquals"]["kms:ViaService"],
            "ssm.ap-northeast-1.amazonaws.com"
        );
    }

    #[tokio::test]
    async fn one_unknown_key_widens_the_grant_to_any_key() {
        let plan = plan(json!({"parameters": [{"name": "a"}, {"name": "b"}]}));
        let lookup = fake(
            &[
                ("a", Encryption::CustomerKey(KEY_A.into())),
                ("b", Encryption::Unknown),
            ],
            vec![],
        );
        let policy = permissions_policy(&plan, ACCOUNT, &lookup).await.unwrap();
        assert_eq!(
            statement(&policy, "DecryptParameters").unwrap()["Resource"],
            json!(["*"])
        );
    }

    #[test]
    fn the_root_path_covers_every_parameter_below_it() {
        let (path, under) = path_arns(REGION, ACCOUNT, "/");
        assert_eq!(path, "arn:aws:ssm:ap-northeast-1:111122223333:parameter/");
        assert_eq!(under, "arn:aws:ssm:ap-northeast-1:111122223333:parameter/*");
    }

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

    #[test]
    fn trust_policy_admits_one_service_account_with_sts_tokens() {
        let trust = trust_policy(
            ACCOUNT,
            "https://oidc.eks.ap-northeast-1.amazonaws.com/id/EXAMPLE",
            "payments",
            "reader",
        );
        let issuer = "oidc.eks.ap-northeast-1.amazonaws.com/id/EXAMPLE";
        assert_eq!(
            trust,
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "ServiceAccountWebIdentity",
                "Effect": "Allow",
                "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}")},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    format!("{issuer}:sub"): "system:serviceaccount:payments:reader",
                    format!("{issuer}:aud"): "sts.amazonaws.com",
                }},
            }]})
        );
    }

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        policy: PolicyArgs,
    }

    fn parse(args: &[&str]) -> Result<PolicyArgs, clap::Error> {
        Command::try_parse_from(std::iter::once("policy").chain(args.iter().copied()))
            .map(|c| c.policy)
    }

    #[test]
    fn a_manifest_or_a_live_object_is_required_but_not_both() {
        let live = parse(&["-n", "payments", "db-credentials"]).unwrap();
        assert_eq!(live.namespace.as_deref(), Some("payments"));
        assert_eq!(live.name.as_deref(), Some("db-credentials"));
        let file = parse(&["-f", "app.yaml"]).unwrap();
        assert_eq!(file.file, Some(PathBuf::from("app.yaml")));
        assert!(parse(&[]).is_err());
        assert!(parse(&["-f", "app.yaml", "db-credentials"]).is_err());
    }

    #[test]
    fn no_aws_needs_an_account_and_accounts_are_twelve_digits() {
        assert!(parse(&["-f", "app.yaml", "--no-aws"]).is_err());
        assert!(parse(&["-f", "app.yaml", "--no-aws", "--account", "1234"]).is_err());
        let args = parse(&["-f", "app.yaml", "--no-aws", "--account", ACCOUNT]).unwrap();
        assert!(args.no_aws);
    }

    fn object(identity: Option<Value>, namespace: Option<&str>) -> SsmParameter {
        serde_json::from_value(json!({
            "apiVersion": "ssm-operator.io/v1alpha1",
            "kind": "SsmParameter",
            "metadata": {"name": "app", "namespace": namespace},
            "spec": {"parameters": [{"name": "x"}], "identity": identity},
        }))
        .unwrap()
    }

    #[test]
    fn the_reader_is_the_operator_unless_the_spec_or_the_flags_say_otherwise() {
        let args = parse(&["-f", "app.yaml"]).unwrap();
        let operator = object(None, Some("payments"));
        assert_eq!(
            reader(&args, &operator).unwrap(),
            ("ssm-operator".into(), "ssm-operator".into())
        );
        let own = object(
            Some(json!({"serviceAccountName": "payments-reader"})),
            Some("payments"),
        );
        assert_eq!(
            reader(&args, &own).unwrap(),
            ("payments".into(), "payments-reader".into())
        );
        let unplaced = object(Some(json!({"serviceAccountName": "payments-reader"})), None);
        assert!(reader(&args, &unplaced).is_err());
        let flags = parse(&[
            "-f",
            "app.yaml",
            "--service-account",
            "ops",
            "--service-account-namespace",
            "ops-ns",
        ])
        .unwrap();
        assert_eq!(
            reader(&flags, &own).unwrap(),
            ("ops-ns".into(), "ops".into())
        );
    }
}
