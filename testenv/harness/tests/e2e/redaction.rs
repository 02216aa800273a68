//! A secret value is never printed: a canary value goes through success and
//! every failure path with every log at trace level, then is looked for in
//! the operator's logs, its metrics, the status, the Events and kubectl's
//! view of everything.

use serde_json::json;

use ssm_operator_testenv::aws::allow;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::operator::admin_get;
use ssm_operator_testenv::{DEADLINE, OperatorOptions, Scenario, eventually, key_id, kubectl};

#[tokio::test(flavor = "multi_thread")]
async fn canary_value_appears_in_no_log_metric_status_or_event_even_at_trace() {
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
    let at_trace = OperatorOptions {
        log_level: Some("trace".to_owned()),
        ..OperatorOptions::default()
    };
    s.start_operator_with(&role, at_trace).await;
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
    // Specs only the operator can refuse, with the canary in the data: a
    // template naming no key, and a .dockerconfigjson that is not JSON (the
    // API server's refusal would quote the value).
    s.apply(&ssm_parameter(
        "canary",
        json!({"parameters": [{"name": parameter, "key": "value"}], "target": {"template": {"t": "{{ nope }}"}}}),
    ))
    .await;
    s.wait_for_condition("canary", "Synced", "False", "InvalidSpec")
        .await;
    s.apply(&ssm_parameter(
        "canary",
        json!({"parameters": [{"name": parameter, "key": ".dockerconfigjson"}],
               "target": {"name": "registry", "type": "kubernetes.io/dockerconfigjson"}}),
    ))
    .await;
    eventually("the .dockerconfigjson to be refused", DEADLINE, || async {
        let status = s.status("canary").await?;
        let synced = status.conditions.iter().find(|c| c.type_ == "Synced")?;
        (synced.reason == "InvalidSpec" && synced.message.contains(".dockerconfigjson"))
            .then_some(())
    })
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

    let (_, metrics) = admin_get(&s.operator().admin, "/metrics").await.unwrap();
    assert!(
        metrics.contains("ssm_operator_reconciles_total"),
        "{metrics}"
    );
    assert!(!metrics.contains(&canary), "the canary is in /metrics");
    let log = s.operator_log();
    assert!(log.contains("TRACE"), "the operator did not log at trace");
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
