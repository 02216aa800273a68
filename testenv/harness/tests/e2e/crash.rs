//! Killed anywhere between the Secret write and the last Event, the operator
//! finishes after its restart what the crash interrupted, once: the Secret
//! holds the new value, each listed workload is restarted exactly once for
//! the change, and one `Updated` Event says so.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use serde_json::{Value, json};

use ssm_operator::failpoint;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::operator::audited_writes;
use ssm_operator_testenv::{DEADLINE, OperatorOptions, Scenario, eventually};

const WORKLOADS: [&str; 2] = ["web", "worker"];

/// Patches of Deployment `name` the operator of `s` made, by the audit log.
fn restarts(s: &Scenario, name: &str) -> usize {
    audited_writes(s.env, &s.namespace)
        .iter()
        .filter(|w| w.verb == "patch" && w.resource == "deployments" && w.name == name)
        .filter(|w| w.code == 200)
        .count()
}

async fn create_deployments(s: &Scenario) {
    for name in WORKLOADS {
        s.create_deployment(name).await;
    }
}

/// A data change during which the operator dies at `at`, then the restart.
async fn killed_at(test: &str, at: &str) {
    let mut s = Scenario::new(test).await;
    let key = s.create_key().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "one", &key).await;
    create_deployments(&s).await;
    let policy = ssm_operator_testenv::aws::setup::read_prefix_policy(&s.id, &key);
    let role = s.create_operator_role(&policy).await;
    s.start_operator(&role).await;
    let restart_list: Vec<Value> = WORKLOADS
        .iter()
        .map(|n| json!({"kind": "Deployment", "name": n}))
        .collect();
    s.apply(&ssm_parameter(
        "app",
        json!({"parameters": [{"name": name, "key": "pw"}], "rolloutRestart": restart_list}),
    ))
    .await;
    s.wait_for_condition("app", "Ready", "True", "Synced").await;
    s.wait_for_event("app", "Created").await;
    s.operators().clear();
    let armed = OperatorOptions {
        env: vec![("SSM_OPERATOR_FAILPOINT".to_owned(), at.to_owned())],
        name: "armed".to_owned(),
        ..OperatorOptions::default()
    };
    s.start_operator_with(&role, armed).await;

    s.put_secure_string(&name, "two", &key).await;
    s.force_sync("app").await;
    let status = eventually(&format!("the operator to die at {at}"), DEADLINE, || {
        let exited = s.operators()[0].exited();
        async move { exited }
    })
    .await;
    assert!(
        !status.success(),
        "{at}: the process ended cleanly: {status}"
    );
    assert!(
        s.operator_log().contains("failpoint hit"),
        "{at}: the operator died elsewhere; build it with `--features failpoints`"
    );

    s.operators().clear();
    s.start_operator(&role).await;
    eventually(
        "the new value, announced, with every workload restarted",
        DEADLINE,
        || async {
            let value = s.secret_value("app", "pw").await;
            let updated = s
                .events("app")
                .await
                .iter()
                .filter(|e| e.reason.as_deref() == Some("Updated"))
                .count();
            let restarted = WORKLOADS.iter().all(|w| restarts(&s, w) >= 1);
            (value.as_deref() == Some("two") && updated >= 1 && restarted).then_some(())
        },
    )
    .await;
    // Let the restart's first reconcile and one more finish, then count.
    eventually("the restart's first reconcile", DEADLINE, || async {
        (s.finished_reconciles("app", "Synced") >= 1).then_some(())
    })
    .await;
    s.force_sync("app").await;
    eventually("a reconcile after the repair", DEADLINE, || async {
        (s.finished_reconciles("app", "Synced") >= 2).then_some(())
    })
    .await;
    for workload in WORKLOADS {
        assert_eq!(
            restarts(&s, workload),
            1,
            "{at}: {workload} restarted other than once"
        );
    }
    let updated = s
        .events("app")
        .await
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Updated"))
        .count();
    assert_eq!(updated, 1, "{at}: Updated Events");
    let fingerprint = s.status("app").await.unwrap().data_fingerprint.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(s.kube.clone(), &s.namespace);
    for workload in WORKLOADS {
        let template = deployments
            .get(workload)
            .await
            .unwrap()
            .spec
            .unwrap()
            .template;
        let annotations = template.metadata.unwrap().annotations.unwrap_or_default();
        assert_eq!(
            annotations.get("rollout.ssm-operator.io/app"),
            Some(&fingerprint)
        );
    }
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_secret_write_the_restart_finishes_the_rollouts_and_the_event_once() {
    killed_at("crash-secret", failpoint::AFTER_SECRET_WRITE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_between_two_rollouts_each_workload_restarts_exactly_once() {
    killed_at("crash-rollouts", failpoint::BETWEEN_ROLLOUTS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_status_write_nothing_is_done_twice() {
    killed_at("crash-status", failpoint::AFTER_STATUS_WRITE).await;
}
