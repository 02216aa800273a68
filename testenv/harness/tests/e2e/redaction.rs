//! A secret value is never printed: a canary value goes through success and
//! every failure path, then is looked for in the operator's logs, the status,
//! the Events and kubectl's view of everything.

use serde_json::json;

use ssm_operator_testenv::aws::allow;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::{DEADLINE, Scenario, eventually, key_id, kubectl};

#[tokio::test(flavor = "multi_thread")]
async fn canary_value_appears_in_no_log_status_or_event() {
    let canary = format!(
        "CANARY-{:016x}",
        std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 7)
    );
    let mut s = Scenario::new("canary").await;
    let key = s.create_key().await;
    let parameter = format!("{}-secret", s.id);
    s.put_secure_string(&parameter, &canary, &key).await;
    let good = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": s.parameter_arn(&parameter)},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key},
        ],
    });
    let role = s.create_operator_role(&good).await;
    let role_name = role.rsplit('/').next().unwrap().to_owned();
    s.start_operator(&role).await;
    let spec = |target: &str| {
        ssm_parameter(
            "canary",
            json!({"parameters": [{"name": parameter, "key": "value"}], "target": {"name": target}}),
        )
    };
    s.apply(&spec("canary")).await;
    s.wait_for_condition("canary", "Ready", "True", "Synced")
        .await;
    assert_eq!(
        s.secret_value("canary", "value").await.as_deref(),
        Some(canary.as_str())
    );

    // KMS denied.
    s.put_role_policy(
        &role_name,
        &allow(&["ssm:GetParameters"], &[s.parameter_arn(&parameter)]),
    )
    .await;
    s.force_sync("canary").await;
    s.wait_for_condition("canary", "Synced", "False", "KmsAccessDenied")
        .await;
    // SSM denied.
    s.put_role_policy(
        &role_name,
        &allow(&["kms:Decrypt"], std::slice::from_ref(&key)),
    )
    .await;
    s.force_sync("canary").await;
    s.wait_for_condition("canary", "Synced", "False", "SsmAccessDenied")
        .await;
    // Key disabled.
    s.put_role_policy(&role_name, &good).await;
    s.aws
        .kms
        .disable_key()
        .key_id(key_id(&key))
        .send()
        .await
        .unwrap();
    s.force_sync("canary").await;
    s.wait_for_condition("canary", "Synced", "False", "KmsKeyDisabled")
        .await;
    s.aws
        .kms
        .enable_key()
        .key_id(key_id(&key))
        .send()
        .await
        .unwrap();
    // A Secret that is not ours: SecretConflict after a successful read.
    let foreign = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "foreign"}, "stringData": {"x": "y"}});
    kubectl(
        s.env,
        &["apply", "-n", &s.namespace, "-f", "-"],
        Some(&foreign.to_string()),
    );
    s.apply(&spec("foreign")).await;
    s.wait_for_condition("canary", "Synced", "False", "SecretConflict")
        .await;
    // Parameter gone.
    s.apply(&spec("canary")).await;
    s.wait_for_condition("canary", "Synced", "True", "Synced")
        .await;
    s.aws
        .ssm
        .delete_parameter()
        .name(&parameter)
        .send()
        .await
        .unwrap();
    s.force_sync("canary").await;
    s.wait_for_condition("canary", "Synced", "False", "ParameterNotFound")
        .await;
    // That reconcile logs, and publishes its Warning, after writing the status.
    eventually("the last reconcile to finish", DEADLINE, || async {
        (s.finished_reconciles("canary", "ParameterNotFound") >= 1).then_some(())
    })
    .await;

    let log = s.operator_log();
    assert!(
        log.contains("reconcile") || !log.is_empty(),
        "the operator logged nothing"
    );
    assert!(
        !log.contains(&canary),
        "the canary is in the operator's log"
    );
    let everything = kubectl(
        s.env,
        &["get", "ssmp,events", "-n", &s.namespace, "-o", "yaml"],
        None,
    );
    let text = String::from_utf8_lossy(&everything.stdout);
    assert!(text.contains("ParameterNotFound"), "{text}");
    assert!(
        !text.contains(&canary),
        "the canary is in a status or an Event"
    );
    s.cleanup().await;
}
