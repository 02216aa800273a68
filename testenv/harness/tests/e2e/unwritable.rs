//! Specs the schema admits but the API server would refuse: each gets
//! `Synced=False` with `InvalidSpec` naming the field, one status write, no
//! Secret, no Event per retry, and no further AWS read until its spec changes.

use serde_json::{Value, json};

use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::operator::audited_writes;
use ssm_operator_testenv::{DEADLINE, Scenario, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn specs_the_api_server_would_refuse_are_invalid_spec_once_and_read_aws_no_more() {
    let mut s = Scenario::new("unwritable").await;
    let (key, role) = s.with_operator().await;
    let pw = format!("{}-pw", s.id);
    s.put_secure_string(&pw, "not json {", &key).await;
    let one = |key: &str| json!([{"name": pw, "key": key}]);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("dot-key", json!({"parameters": one(".")}), "key"),
        (
            "bad-label",
            json!({"parameters": one("pw"), "target": {"labels": {"team": "x".repeat(64)}}}),
            "target.labels",
        ),
        (
            "bad-annotation",
            json!({"parameters": one("pw"), "target": {"annotations": {"not/valid/key": "x"}}}),
            "target.annotations",
        ),
        (
            "tls-without-cert",
            json!({"parameters": one("tls.key"), "target": {"type": "kubernetes.io/tls"}}),
            "tls.crt",
        ),
        (
            "docker-not-json",
            json!({"parameters": one(".dockerconfigjson"), "target": {"type": "kubernetes.io/dockerconfigjson"}}),
            ".dockerconfigjson",
        ),
    ];
    for (name, spec, _) in &cases {
        s.apply(&ssm_parameter(name, spec.clone())).await;
    }
    // A type change of an existing Secret.
    s.apply(&ssm_parameter(
        "retyped",
        json!({"parameters": one("username")}),
    ))
    .await;
    s.wait_for_condition("retyped", "Ready", "True", "Synced")
        .await;
    s.apply(&ssm_parameter(
        "retyped",
        json!({"parameters": one("username"), "target": {"type": "kubernetes.io/basic-auth"}}),
    ))
    .await;

    let mut refused: Vec<(&str, &str)> = cases.iter().map(|(n, _, f)| (*n, *f)).collect();
    refused.push(("retyped", "target.type"));
    for (name, field) in &refused {
        let status = s
            .wait_for_condition(name, "Synced", "False", "InvalidSpec")
            .await;
        let message = ssm_operator_testenv::wait::synced_message(&status);
        assert!(message.contains(field), "{name}: {message}");
        assert!(
            !message.contains("not json"),
            "{name}: the value is in the status"
        );
    }
    eventually("every refusal's reconcile to finish", DEADLINE, || async {
        refused
            .iter()
            .all(|(name, _)| s.finished_reconciles(name, "InvalidSpec") >= 1)
            .then_some(())
    })
    .await;
    let reads = || s.aws_calls("ssm:GetParameters", &role);
    let reads_before = reads().await;

    // Let the operator work on something else for a while: a neighbour
    // applied now, synced, then refreshed on demand twice.
    s.apply(&ssm_parameter(
        "neighbour",
        json!({"parameters": one("pw2")}),
    ))
    .await;
    s.wait_for_condition("neighbour", "Ready", "True", "Synced")
        .await;
    for round in 2..=3 {
        s.force_sync("neighbour").await;
        eventually("the neighbour's refresh", DEADLINE, || async {
            (s.finished_reconciles("neighbour", "Synced") >= round).then_some(())
        })
        .await;
    }
    let writes = audited_writes(s.env, &s.namespace);
    for (name, _) in &refused {
        assert_eq!(
            s.finished_reconciles(name, "InvalidSpec"),
            1,
            "{name} was retried"
        );
        let status_writes = writes
            .iter()
            .filter(|w| {
                w.resource == "ssmparameters" && w.subresource == "status" && w.name == *name
            })
            .filter(|w| w.code == 200)
            .count();
        // `retyped` wrote its status once when it synced.
        let allowed = if *name == "retyped" { 2 } else { 1 };
        assert!(
            status_writes <= allowed,
            "{name}: {status_writes} writes to its status"
        );
        let warnings = s
            .events(name)
            .await
            .iter()
            .filter(|e| e.reason.as_deref() == Some("InvalidSpec"))
            .count();
        assert_eq!(warnings, 1, "{name}: InvalidSpec Events");
    }
    for (name, _, _) in &cases {
        assert!(
            s.secrets().get_opt(name).await.unwrap().is_none(),
            "{name} has a Secret"
        );
    }
    // The neighbour's three reads, at most two calls each; none for the refused.
    let spent = reads().await - reads_before;
    assert!(spent <= 6, "{spent} GetParameters calls");
    let log = s.operator_log();
    assert!(!log.contains("not json"), "the value is in the log");
    s.cleanup().await;
}
