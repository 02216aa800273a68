//! `--report-key-ids`: `status.parameters[].keyId` names each SecureString's
//! KMS key by its ARN, however the parameter was written, and a role not
//! allowed to look keys up still syncs, without keyId.

use serde_json::{Value, json};

use ssm_operator_testenv::aws::setup;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::{OperatorOptions, Scenario, key_id};

fn reporting() -> OperatorOptions {
    OperatorOptions {
        args: vec!["--report-key-ids=true".to_owned()],
        ..OperatorOptions::default()
    }
}

/// The three ways PutParameter names a key: its ARN, its id, an alias.
async fn three_spellings(s: &Scenario, key: &str) -> Vec<String> {
    let alias = s.create_alias(&format!("{}-key", s.id), key).await;
    let spellings = [key.to_owned(), key_id(key).to_owned(), alias];
    let mut names = Vec::new();
    for (i, spelling) in spellings.iter().enumerate() {
        let name = format!("{}-p{i}", s.id);
        s.put_secure_string(&name, &format!("VALUE-{i}"), spelling)
            .await;
        names.push(name);
    }
    names
}

fn spec(names: &[String]) -> Value {
    let parameters: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"name": name, "key": format!("k{i}")}))
        .collect();
    json!({"parameters": parameters})
}

fn with_lookups(mut policy: Value, key: &str) -> Value {
    let statements = policy["Statement"].as_array_mut().unwrap();
    statements
        .push(json!({"Effect": "Allow", "Action": "ssm:DescribeParameters", "Resource": "*"}));
    statements.push(json!({"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": key}));
    policy
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secure_strings_key_is_named_by_its_arn_whether_written_by_arn_id_or_alias() {
    let mut s = Scenario::new("key-ids").await;
    let key = s.create_key().await;
    let names = three_spellings(&s, &key).await;
    let policy = with_lookups(setup::read_prefix_policy(&s.id, &key), &key);
    let role = s.create_operator_role(&policy).await;
    s.start_operator_with(&role, reporting()).await;

    s.apply(&ssm_parameter("keyed", spec(&names))).await;
    let status = s
        .wait_for_condition("keyed", "Ready", "True", "Synced")
        .await;
    let keys: Vec<Option<&str>> = status
        .parameters
        .iter()
        .map(|p| p.key_id.as_deref())
        .collect();
    assert_eq!(keys, vec![Some(key.as_str()); 3]);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_may_not_look_keys_up_syncs_without_key_ids() {
    let mut s = Scenario::new("key-ids-denied").await;
    let key = s.create_key().await;
    let names = three_spellings(&s, &key).await;
    let role = s
        .create_operator_role(&setup::read_prefix_policy(&s.id, &key))
        .await;
    s.start_operator_with(&role, reporting()).await;

    s.apply(&ssm_parameter("unkeyed", spec(&names))).await;
    let status = s
        .wait_for_condition("unkeyed", "Ready", "True", "Synced")
        .await;
    assert!(status.parameters.iter().all(|p| p.key_id.is_none()));
    assert_eq!(
        s.secret_value("unkeyed", "k2").await.as_deref(),
        Some("VALUE-2")
    );
    assert!(
        s.operator_log().contains("keyId not reported"),
        "the refusal was not logged"
    );
    s.cleanup().await;
}
