//! Parameters of another account and region, shared with the operator's
//! account (AWS RAM) and named by their ARN, decrypted with their key there.

use aws_sdk_ssm::types::{ParameterTier, ParameterType, ResourceTypeForTagging, Tag};
use serde_json::{Value, json};

use ssm_operator_testenv::Scenario;
use ssm_operator_testenv::aws::admin_of_account;
use ssm_operator_testenv::env::ACCOUNT;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::wait::synced_message;

const OWNER: &str = "222233334444";
const OWNER_REGION: &str = "us-west-2";
/// How the emulator models a RAM share: the owner tags the parameter with
/// the accounts it is shared with.
const SHARED_WITH: &str = "ssm-operator-test:shared-with";

/// A key policy: the owner administers the key, `decrypters` may decrypt.
fn key_policy(decrypters: &[String]) -> Value {
    let mut statements = vec![json!({
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{OWNER}:root")},
        "Action": "kms:*",
        "Resource": "*",
    })];
    if !decrypters.is_empty() {
        statements.push(json!({
            "Effect": "Allow",
            "Principal": {"AWS": decrypters},
            "Action": "kms:Decrypt",
            "Resource": "*",
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The owner account's administrator, in the parameters' region.
struct Owner {
    kms: aws_sdk_kms::Client,
    ssm: aws_sdk_ssm::Client,
}

impl Owner {
    async fn new(s: &Scenario) -> Self {
        let config = admin_of_account(s.env, OWNER, OWNER_REGION)
            .await
            .expect("the owner account's administrator");
        Self {
            kms: aws_sdk_kms::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
        }
    }

    /// A customer managed key with `policy`; its ARN.
    async fn create_key(&self, policy: &Value) -> String {
        let key = self
            .kms
            .create_key()
            .policy(policy.to_string())
            .send()
            .await
            .expect("create key");
        key.key_metadata.and_then(|m| m.arn).expect("key arn")
    }

    /// An advanced-tier SecureString (RAM shares no other tier) encrypted
    /// with `key`, shared with the operator's account; its ARN.
    async fn share_secure_string(&self, name: &str, value: &str, key: &str) -> String {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::SecureString)
            .key_id(key)
            .tier(ParameterTier::Advanced)
            .send()
            .await
            .expect("put parameter");
        let share = Tag::builder()
            .key(SHARED_WITH)
            .value(ACCOUNT)
            .build()
            .expect("tag");
        self.ssm
            .add_tags_to_resource()
            .resource_type(ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .tags(share)
            .send()
            .await
            .expect("share parameter");
        format!("arn:aws:ssm:{OWNER_REGION}:{OWNER}:parameter{name}")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parameter_shared_from_another_account_and_region_syncs_with_its_key_there() {
    let mut s = Scenario::new("cross-account").await;
    let owner = Owner::new(&s).await;
    let operator_account = format!("arn:aws:iam::{ACCOUNT}:root");
    let key = owner.create_key(&key_policy(&[operator_account])).await;
    let closed_key = owner.create_key(&key_policy(&[])).await;
    let value = format!("VALUE-OF-{}", s.id);
    let shared = owner
        .share_secure_string(&format!("/{}/shared", s.id), &value, &key)
        .await;
    let closed = owner
        .share_secure_string(&format!("/{}/closed", s.id), &value, &closed_key)
        .await;

    // Cross-account, the operator's own policies must allow both the
    // parameters and the keys; the key policies decide the rest.
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": [&shared, &closed]},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": [&key, &closed_key]},
        ],
    });
    let role = s.create_operator_role(&policy).await;
    s.start_operator(&role).await;

    s.apply(&ssm_parameter(
        "shared",
        json!({"parameters": [{"name": shared, "key": "value"}]}),
    ))
    .await;
    s.wait_for_condition("shared", "Ready", "True", "Synced")
        .await;
    assert!(
        s.secret_value("shared", "value").await.as_deref() == Some(value.as_str()),
        "the Secret does not hold the shared parameter's value"
    );

    s.apply(&ssm_parameter(
        "closed",
        json!({"parameters": [{"name": closed, "key": "value"}]}),
    ))
    .await;
    let status = s
        .wait_for_condition("closed", "Synced", "False", "KmsAccessDenied")
        .await;
    let message = synced_message(&status);
    assert!(
        message.contains(&closed_key),
        "the key is not named: {message}"
    );
    assert!(s.secrets().get_opt("closed").await.unwrap().is_none());

    // Not shared with the operator's account: AWS refuses it for want of
    // the owner's resource policy, it does not say it is missing.
    let unshared = format!(
        "arn:aws:ssm:{OWNER_REGION}:{OWNER}:parameter/{}/unshared",
        s.id
    );
    let mut wider = policy.clone();
    wider["Statement"][0]["Resource"] = json!([&shared, &closed, &unshared]);
    s.put_role_policy(role.rsplit('/').next().unwrap(), &wider)
        .await;
    s.apply(&ssm_parameter(
        "unshared",
        json!({"parameters": [{"name": unshared, "key": "value"}]}),
    ))
    .await;
    let status = s
        .wait_for_condition("unshared", "Synced", "False", "SsmAccessDenied")
        .await;
    let message = synced_message(&status);
    assert!(message.contains(&unshared), "{message}");
    s.cleanup().await;
}
