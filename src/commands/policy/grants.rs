//! The permissions policy: the least privilege that reading one SsmParameter
//! needs (pure, given what [`KeyLookup`] tells of the parameters' keys).
//!
//! The permissions follow the calls the operator makes (see [`crate::reconcile::read`]):
//! `ssm:GetParameters` on each explicit parameter (a probe without decryption,
//! then a decrypting read of the SecureStrings); `ssm:GetParametersByPath` on
//! the path (without decryption), then `ssm:GetParameters` by name on the
//! SecureStrings it found there; and `kms:Decrypt`, through SSM only, on the
//! customer-managed keys of the SecureStrings it decrypts.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::aws::describe::{Encryption, KeyLookup};
use crate::aws::partition::Partition;
use crate::events::queue::Queue;
use crate::reconcile::plan::Plan;

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

/// What reading change events from `queues` takes of the operator's own
/// role: a long poll, the deletion of what it handled, and the queue's
/// attributes (`check`). A queue of no region of its own is in `region`.
pub fn change_events_statement(queues: &[Queue], region: &str) -> Value {
    let arns: BTreeSet<String> = (queues.iter())
        .map(|q| {
            let region = q.region.as_deref().unwrap_or(region);
            Partition::of(region).arn("sqs", region, &q.account, &q.name)
        })
        .collect();
    json!({
        "Sid": "ReadChangeEvents",
        "Effect": "Allow",
        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
        "Resource": arns,
    })
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
        .map(|r| Partition::of(r).service_host("ssm", r))
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
    Partition::of(region).arn("ssm", region, account, &format!("parameter/{bare}"))
}

/// The ARNs of a path: the one GetParametersByPath is checked on, and the
/// pattern of the parameters under it.
///
/// IAM checks GetParametersByPath on the ARN of the `Path` as the request
/// sends it, a trailing slash kept: for `/prd/payments/` the refusal reads
/// "not authorized to perform: ssm:GetParametersByPath on resource:
/// arn:aws:ssm:…:parameter/prd/payments/". The operator sends the prefix as
/// the spec writes it, so the grant is that ARN exactly.
fn path_arns(region: &str, account: &str, prefix: &str) -> (String, String) {
    let partition = Partition::of(region);
    let resource = format!("parameter/{}", prefix.strip_prefix('/').unwrap_or(prefix));
    let path = partition.arn("ssm", region, account, &resource);
    let below = format!("{}/*", resource.trim_end_matches('/'));
    (path, partition.arn("ssm", region, account, &below))
}

/// The least-privilege permissions policy for reading what `plan` asks, with
/// parameters of `account` (unless named by ARN), their keys found by `ssm`.
pub async fn permissions_policy(
    plan: &Plan,
    account: &str,
    ssm: &dyn KeyLookup,
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use anyhow::Context as _;
    use futures::FutureExt;
    use futures::future::BoxFuture;

    use super::*;
    use crate::api::SsmParameter;
    use crate::aws::Identity;
    use crate::aws::describe::WithoutAws;

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

    impl KeyLookup for FakeLookup {
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

    #[test]
    fn reading_change_events_is_allowed_on_exactly_the_queues_named() {
        let queues = [
            Queue::parse("https://sqs.eu-west-1.amazonaws.com/111122223333/ssm-changes").unwrap(),
            Queue::parse("http://127.0.0.1:4566/444455556666/local").unwrap(),
            Queue::parse("https://sqs.cn-north-1.amazonaws.com.cn/111122223333/cn").unwrap(),
        ];
        let statement = change_events_statement(&queues, REGION);
        assert_eq!(
            statement,
            json!({
                "Sid": "ReadChangeEvents", "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": [
                    "arn:aws-cn:sqs:cn-north-1:111122223333:cn",
                    "arn:aws:sqs:ap-northeast-1:444455556666:local",
                    "arn:aws:sqs:eu-west-1:111122223333:ssm-changes",
                ],
            })
        );
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
            json!(["arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/payments/"])
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
    fn a_path_is_granted_on_the_arn_of_its_prefix_as_written() {
        let arns = |prefix| path_arns(REGION, ACCOUNT, prefix);
        let arn = |resource| format!("arn:aws:ssm:ap-northeast-1:111122223333:{resource}");
        assert_eq!(
            arns("/prd/payments/"),
            (
                arn("parameter/prd/payments/"),
                arn("parameter/prd/payments/*")
            )
        );
        assert_eq!(
            arns("/prd/payments"),
            (
                arn("parameter/prd/payments"),
                arn("parameter/prd/payments/*")
            )
        );
    }

    #[tokio::test]
    async fn in_china_and_govcloud_the_policy_names_their_partition() {
        let obj: SsmParameter = serde_json::from_value(json!({
            "apiVersion": "ssm-operator.io/v1alpha1",
            "kind": "SsmParameter",
            "metadata": {"name": "app", "namespace": "payments"},
            "spec": {"parameters": [{"name": "prd-db-pass"}], "path": {"prefix": "/prd/"}},
        }))
        .unwrap();
        for (region, partition, host) in [
            ("cn-north-1", "aws-cn", "ssm.cn-north-1.amazonaws.com.cn"),
            (
                "us-gov-west-1",
                "aws-us-gov",
                "ssm.us-gov-west-1.amazonaws.com",
            ),
        ] {
            let plan = Plan::of(&obj, region, Identity::default()).unwrap();
            let policy = permissions_policy(&plan, ACCOUNT, &WithoutAws)
                .await
                .unwrap();
            let prefix = format!("arn:{partition}:ssm:{region}:{ACCOUNT}:parameter/");
            for sid in [
                "ReadParameters",
                "ReadParametersByPath",
                "ReadSecureStringsUnderPath",
            ] {
                let resources = statement(&policy, sid).unwrap()["Resource"].clone();
                for resource in resources.as_array().unwrap() {
                    let resource = resource.as_str().unwrap();
                    assert!(resource.starts_with(&prefix), "{sid}: {resource}");
                }
            }
            let decrypt = statement(&policy, "DecryptParameters").unwrap();
            assert_eq!(decrypt["Condition"]["StringEquals"]["kms:ViaService"], host);
        }
    }

    #[test]
    fn the_root_path_covers_every_parameter_below_it() {
        let (path, under) = path_arns(REGION, ACCOUNT, "/");
        assert_eq!(path, "arn:aws:ssm:ap-northeast-1:111122223333:parameter/");
        assert_eq!(under, "arn:aws:ssm:ap-northeast-1:111122223333:parameter/*");
    }
}
