//! `ssm-operator policy`: the generated permissions policy lets the operator
//! sync, and every statement and key in it is needed; the generated trust
//! policy admits the operator's ServiceAccount and no other.

use serde_json::{Value, json};
use ssm_operator::api::SsmParameter;
use ssm_operator::aws::Identity;
use ssm_operator::aws::describe::AwsLookup;
use ssm_operator::aws::partition::Partition;
use ssm_operator::commands::policy::grants::permissions_policy;
use ssm_operator::commands::policy::trust::trust_policy;
use ssm_operator::reconcile::plan::Plan;

use ssm_operator_testenv::Scenario;
use ssm_operator_testenv::env::{ACCOUNT, REGION};
use ssm_operator_testenv::manifest::ssm_parameter_in;

const NAME: &str = "app-config";

/// Each Secret key and the value its parameter holds.
const VALUES: [(&str, &str); 6] = [
    ("api-token", "API-TOKEN"),
    ("db-pass", "DB-PASS"),
    ("region", "ap-northeast-1"),
    ("signing-key", "SIGNING-KEY"),
    ("session-secret", "SESSION-SECRET"),
    ("log-level", "debug"),
];

/// Two SecureStrings under two customer-managed keys and a plain String,
/// named; under a path, a SecureString under a third key, one under the AWS
/// managed key and a plain String. Returns the SsmParameter and the three
/// customer-managed keys.
async fn parameters(s: &Scenario) -> (String, Vec<String>) {
    let keys = vec![
        s.create_key().await,
        s.create_key().await,
        s.create_key().await,
    ];
    let id = &s.id;
    s.put_secure_string(&format!("{id}-api-token"), "API-TOKEN", &keys[0])
        .await;
    s.put_secure_string(&format!("/{id}/db-pass"), "DB-PASS", &keys[1])
        .await;
    s.put_string(&format!("{id}-region"), "ap-northeast-1")
        .await;
    s.put_secure_string(&format!("/{id}/app/signing-key"), "SIGNING-KEY", &keys[2])
        .await;
    s.put_secure_string(
        &format!("/{id}/app/session-secret"),
        "SESSION-SECRET",
        "alias/aws/ssm",
    )
    .await;
    s.put_string(&format!("/{id}/app/log-level"), "debug").await;
    let spec = json!({
        "parameters": [
            {"name": format!("{id}-api-token"), "key": "api-token"},
            {"name": format!("/{id}/db-pass")},
            {"name": format!("{id}-region"), "key": "region"},
        ],
        // With the trailing slash, which IAM keeps in the ARN it checks.
        "path": {"prefix": format!("/{id}/app/")},
    });
    (ssm_parameter_in(NAME, &s.namespace, spec), keys)
}

/// The permissions policy for `manifest`, with the administrator's view of
/// Parameter Store and KMS as the lookup.
async fn generated_policy(s: &Scenario, manifest: &str) -> Value {
    let obj: SsmParameter = serde_json::from_str(manifest).unwrap();
    let plan = Plan::of(&obj, REGION, Identity::default()).unwrap();
    let lookup = AwsLookup::new(s.aws.ssm.clone(), s.aws.kms.clone(), ACCOUNT);
    permissions_policy(&plan, ACCOUNT, &lookup).await.unwrap()
}

fn statements(policy: &Value) -> &Vec<Value> {
    policy["Statement"].as_array().unwrap()
}

fn role_name(role_arn: &str) -> &str {
    role_arn.rsplit('/').next().unwrap()
}

/// Compares the Secret with what the parameters hold, naming only the keys.
async fn assert_secret_holds_every_value(s: &Scenario) {
    for (key, expected) in VALUES {
        let value = s.secret_value(NAME, key).await;
        assert!(
            value.as_deref() == Some(expected),
            "Secret key {key} does not hold its parameter's value"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_policy_is_sufficient() {
    let mut s = Scenario::new("policy-sufficient").await;
    let (manifest, keys) = parameters(&s).await;
    let policy = generated_policy(&s, &manifest).await;

    let decrypt = statements(&policy)
        .iter()
        .find(|st| st["Action"] == "kms:Decrypt")
        .unwrap();
    let mut granted: Vec<&str> = decrypt["Resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    granted.sort_unstable();
    let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(
        granted, expected,
        "kms:Decrypt on exactly the customer-managed keys: {policy:#}"
    );

    let role = s.create_operator_role(&policy).await;
    s.start_operator(&role).await;
    s.apply(&manifest).await;
    s.wait_for_condition(NAME, "Ready", "True", "Synced").await;
    s.wait_for_condition(NAME, "Synced", "True", "Synced").await;
    assert_secret_holds_every_value(&s).await;
    s.cleanup().await;
}

/// The policy without statement `index`.
fn without_statement(policy: &Value, index: usize) -> Value {
    let mut reduced = policy.clone();
    reduced["Statement"].as_array_mut().unwrap().remove(index);
    reduced
}

/// The policy whose kms:Decrypt statement lacks `key`.
fn without_key(policy: &Value, key: &str) -> Value {
    let mut reduced = policy.clone();
    for statement in reduced["Statement"].as_array_mut().unwrap() {
        if statement["Action"] == "kms:Decrypt" {
            let resources = statement["Resource"].as_array_mut().unwrap();
            resources.retain(|r| r != key);
        }
    }
    reduced
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_policy_is_minimal() {
    let mut s = Scenario::new("policy-minimal").await;
    let (manifest, keys) = parameters(&s).await;
    let policy = generated_policy(&s, &manifest).await;
    let role = s.create_operator_role(&policy).await;
    s.start_operator(&role).await;
    s.apply(&manifest).await;
    s.wait_for_condition(NAME, "Ready", "True", "Synced").await;

    let mut cases = Vec::new();
    for (index, statement) in statements(&policy).iter().enumerate() {
        let reason = if statement["Action"] == "kms:Decrypt" {
            "KmsAccessDenied"
        } else {
            "SsmAccessDenied"
        };
        let sid = statement["Sid"].as_str().unwrap().to_owned();
        cases.push((
            format!("without {sid}"),
            without_statement(&policy, index),
            reason,
        ));
    }
    for key in &keys {
        cases.push((
            format!("without kms:Decrypt on {key}"),
            without_key(&policy, key),
            "KmsAccessDenied",
        ));
    }

    for (case, reduced, reason) in cases {
        eprintln!("{case}: expecting {reason}");
        s.put_role_policy(role_name(&role), &reduced).await;
        s.force_sync(NAME).await;
        s.wait_for_condition(NAME, "Synced", "False", reason).await;
        // Back to the whole policy, so that the next case starts from a sync.
        s.put_role_policy(role_name(&role), &policy).await;
        s.force_sync(NAME).await;
        s.wait_for_condition(NAME, "Synced", "True", "Synced").await;
    }
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_trust_policy_admits_only_the_service_account() {
    let mut s = Scenario::new("policy-trust").await;
    let (manifest, _) = parameters(&s).await;
    let policy = generated_policy(&s, &manifest).await;
    let (issuer, namespace) = (s.env.oidc_issuer.clone(), s.namespace.clone());
    let trusting = |service_account: &str| {
        trust_policy(
            Partition::of(REGION),
            ACCOUNT,
            &issuer,
            &namespace,
            service_account,
        )
        .to_string()
    };

    // Denied first: credentials, once issued, are kept for their lifetime.
    let role_name = format!("{}-op", s.id).chars().take(64).collect::<String>();
    let role = s
        .aws
        .iam
        .create_role()
        .role_name(&role_name)
        .assume_role_policy_document(trusting("someone-else"))
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    s.put_role_policy(&role_name, &policy).await;
    s.start_operator(&role).await;
    s.apply(&manifest).await;
    s.wait_for_condition(NAME, "Synced", "False", "WebIdentityDenied")
        .await;

    s.aws
        .iam
        .update_assume_role_policy()
        .role_name(&role_name)
        .policy_document(trusting("ssm-operator"))
        .send()
        .await
        .unwrap();
    s.force_sync(NAME).await;
    s.wait_for_condition(NAME, "Ready", "True", "Synced").await;
    assert_secret_holds_every_value(&s).await;
    s.cleanup().await;
}
