//! How the sync behaves over time: change detection without KMS, throttling,
//! AWS outages.

use std::time::Duration;

use kube::ResourceExt;
use serde_json::json;

use ssm_operator_testenv::aws::{clear_faults, counters, inject_fault};
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::{DEADLINE, Scenario, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_refresh_decrypts_nothing_and_writes_nothing() {
    let mut s = Scenario::new("no-kms-on-refresh").await;
    let (key, role) = s.with_operator().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "v1", &key).await;
    s.apply(&ssm_parameter(
        "steady",
        json!({"parameters": [{"name": name, "key": "pw"}], "refreshInterval": "10s"}),
    ))
    .await;
    s.wait_for_condition("steady", "Ready", "True", "Synced")
        .await;
    // Let the first sync's writes (Secret, status, Event) land.
    eventually("the first sync's writes", DEADLINE, || async {
        (s.operator_writes() >= 3).then_some(())
    })
    .await;
    eventually("the first sync to finish", DEADLINE, || async {
        (s.finished_reconciles("steady", "Synced") >= 1).then_some(())
    })
    .await;

    let before = counters(s.env).await.unwrap();
    let (decrypts, probes, writes) = (
        before.calls("kms:Decrypt", &role),
        before.calls("ssm:GetParameters", &role),
        s.operator_writes(),
    );
    let events = s.events("steady").await.len();
    let finished = s.finished_reconciles("steady", "Synced");
    eventually("two refreshes", Duration::from_secs(40), || async {
        (counters(s.env)
            .await
            .unwrap()
            .calls("ssm:GetParameters", &role)
            >= probes + 2)
            .then_some(())
    })
    .await;
    // A refresh writes, if at all, after its read: count once both are done.
    eventually("the two refreshes to finish", DEADLINE, || async {
        (s.finished_reconciles("steady", "Synced") >= finished + 2).then_some(())
    })
    .await;
    let after = counters(s.env).await.unwrap();
    println!(
        "two unchanged refreshes: {} GetParameters, {} KMS decrypts, {} API writes",
        after.calls("ssm:GetParameters", &role) - probes,
        after.calls("kms:Decrypt", &role) - decrypts,
        s.operator_writes() - writes
    );
    assert_eq!(
        after.calls("kms:Decrypt", &role),
        decrypts,
        "an unchanged refresh decrypted"
    );
    assert_eq!(
        s.operator_writes(),
        writes,
        "an unchanged refresh wrote to the API server"
    );
    assert_eq!(s.events("steady").await.len(), events);

    // A new version is decrypted once, and only it.
    s.put_secure_string(&name, "v2", &key).await;
    eventually("the new value", Duration::from_secs(25), || async {
        (s.secret_value("steady", "pw").await.as_deref() == Some("v2")).then_some(())
    })
    .await;
    // The status follows the Secret's write; count once that sync is done.
    s.wait_for_status("steady", "status of version 2", |st| {
        st.parameters.first().is_some_and(|p| p.version == 2)
    })
    .await;
    let decrypted = counters(s.env).await.unwrap().calls("kms:Decrypt", &role) - decrypts;
    assert_eq!(
        decrypted, 1,
        "a changed refresh should decrypt the changed parameter once"
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_within_the_read_budget_and_reported_only_when_retries_run_out() {
    let mut s = Scenario::new("throttled").await;
    let (key, role) = s.with_operator().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "v", &key).await;
    // Two throttles: the third attempt goes through.
    inject_fault(s.env, &role, "ssm:GetParameters", "throttle", 2)
        .await
        .unwrap();
    s.apply(&ssm_parameter(
        "patient",
        json!({"parameters": [{"name": name, "key": "pw"}], "refreshInterval": "1h"}),
    ))
    .await;
    s.wait_for_condition("patient", "Ready", "True", "Synced")
        .await;
    let outcomes = counters(s.env)
        .await
        .unwrap()
        .outcomes("ssm:GetParameters", &role);
    assert_eq!(
        outcomes.get("ThrottlingException"),
        Some(&2),
        "{outcomes:?}"
    );

    // More throttles than retries: Throttled, then recovery with backoff.
    inject_fault(s.env, &role, "ssm:GetParameters", "throttle", 3)
        .await
        .unwrap();
    let version = s
        .ssm_parameters()
        .get("patient")
        .await
        .unwrap()
        .resource_version()
        .unwrap();
    s.force_sync("patient").await;
    // Throttled lasts only until the retry one backoff step (2 s) later.
    let status = s
        .watch_for_condition("patient", &version, "Synced", "False", "Throttled")
        .await;
    assert_eq!(status.ready.as_deref(), Some("True"));
    s.wait_for_condition("patient", "Synced", "True", "Synced")
        .await;
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_unavailable_keeps_the_last_good_secret_and_recovers_after_one_backoff_step() {
    let mut s = Scenario::new("outage").await;
    let (key, role) = s.with_operator().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "good", &key).await;
    s.apply(&ssm_parameter(
        "outage",
        json!({"parameters": [{"name": name, "key": "pw"}], "refreshInterval": "1h"}),
    ))
    .await;
    s.wait_for_condition("outage", "Ready", "True", "Synced")
        .await;
    let before = s.secrets().get("outage").await.unwrap();

    inject_fault(s.env, &role, "ssm:GetParameters", "unavailable", 1000)
        .await
        .unwrap();
    s.force_sync("outage").await;
    let status = s
        .wait_for_condition("outage", "Synced", "False", "AwsUnavailable")
        .await;
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Stale")
    );
    let during = s.secrets().get("outage").await.unwrap();
    assert_eq!(
        during.metadata.resource_version,
        before.metadata.resource_version
    );

    clear_faults(s.env, &role).await.unwrap();
    let healed = std::time::Instant::now();
    s.wait_for_condition("outage", "Synced", "True", "Synced")
        .await;
    println!("recovered {:?} after the emulator healed", healed.elapsed());
    assert_eq!(
        s.secret_value("outage", "pw").await.as_deref(),
        Some("good")
    );
    s.cleanup().await;
}
