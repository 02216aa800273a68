//! The rest of the SsmParameter API: paths, properties, pins, templates,
//! Secret types, immutability, creation and deletion policies, rollouts.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::{DEADLINE, Scenario, eventually};

fn condition(s: &ssm_operator::api::SsmParameterStatus, type_: &str) -> (String, String, String) {
    let c = s.conditions.iter().find(|c| c.type_ == type_).unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

async fn data(s: &Scenario, secret: &str) -> BTreeMap<String, String> {
    s.secret_data(secret).await
}

/// A scenario with an operator that may read `<id>*`, and one SecureString
/// `<id>-pw` holding `value`; returns (scenario, key ARN, parameter name).
async fn with_secret(test: &str, value: &str) -> (Scenario, String, String) {
    let mut s = Scenario::new(test).await;
    let (key, _) = s.with_operator().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, value, &key).await;
    (s, key, name)
}

#[tokio::test(flavor = "multi_thread")]
async fn path_imports_every_parameter_below_it_across_pages() {
    let mut s = Scenario::new("path-import").await;
    let (key, _) = s.with_operator().await;
    let prefix = format!("/{}/app", s.id);
    for i in 0..12 {
        s.put_secure_string(&format!("{prefix}/p{i:02}"), &format!("v{i}"), &key)
            .await;
    }
    s.put_string(&format!("{prefix}/db/host"), "db.internal")
        .await;
    s.apply(&ssm_parameter("flat", json!({"path": {"prefix": prefix}})))
        .await;
    s.apply(&ssm_parameter(
        "deep",
        json!({"path": {"prefix": prefix, "recursive": true, "keyFrom": "RelativePath"}}),
    ))
    .await;
    let flat = s
        .wait_for_condition("flat", "Ready", "True", "Synced")
        .await;
    assert_eq!(
        flat.parameters.len(),
        12,
        "non-recursive reads only the direct children"
    );
    let flat_data = data(&s, "flat").await;
    assert_eq!(flat_data["p00"], "v0");
    assert_eq!(flat_data["p11"], "v11");
    s.wait_for_condition("deep", "Ready", "True", "Synced")
        .await;
    let deep = data(&s, "deep").await;
    assert_eq!(deep.len(), 13);
    assert_eq!(deep["db.host"], "db.internal");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn path_key_clash_is_invalid_spec_and_writes_nothing() {
    let mut s = Scenario::new("path-clash").await;
    let (key, _) = s.with_operator().await;
    let prefix = format!("/{}", s.id);
    s.put_secure_string(&format!("{prefix}/a/pass"), "one", &key)
        .await;
    s.put_secure_string(&format!("{prefix}/b/pass"), "two", &key)
        .await;
    s.apply(&ssm_parameter(
        "clash",
        json!({"path": {"prefix": prefix, "recursive": true}}),
    ))
    .await;
    let status = s
        .wait_for_condition("clash", "Synced", "False", "InvalidSpec")
        .await;
    let (_, _, message) = condition(&status, "Synced");
    assert!(
        message.contains("/a/pass") && message.contains("/b/pass"),
        "{message}"
    );
    assert!(!message.contains("one") && !message.contains("two"));
    assert!(s.secrets().get_opt("clash").await.unwrap().is_none());
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn property_takes_one_field_of_a_json_value_and_a_missing_one_is_invalid_spec() {
    let mut s = Scenario::new("property").await;
    let (key, _) = s.with_operator().await;
    let name = format!("{}-db", s.id);
    s.put_secure_string(
        &name,
        r#"{"username":"app","password":"JSON-SECRET"}"#,
        &key,
    )
    .await;
    s.apply(&ssm_parameter(
        "db",
        json!({"parameters": [{"name": name, "key": "password", "property": "password"}]}),
    ))
    .await;
    s.wait_for_condition("db", "Ready", "True", "Synced").await;
    assert_eq!(data(&s, "db").await["password"], "JSON-SECRET");

    s.apply(&ssm_parameter(
        "missing",
        json!({"parameters": [{"name": name, "key": "token", "property": "token"}]}),
    ))
    .await;
    let status = s
        .wait_for_condition("missing", "Synced", "False", "InvalidSpec")
        .await;
    let (_, _, message) = condition(&status, "Synced");
    assert!(message.contains("\"token\""), "{message}");
    assert!(
        !message.contains("JSON-SECRET") && !message.contains("username"),
        "{message}"
    );
    assert!(s.secrets().get_opt("missing").await.unwrap().is_none());
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn version_and_label_pins_and_missing_pins_are_parameter_version_not_found() {
    let mut s = Scenario::new("pins").await;
    let (key, _) = s.with_operator().await;
    let name = format!("{}-pinned", s.id);
    s.put_secure_string(&name, "first", &key).await;
    s.put_secure_string(&name, "second", &key).await;
    s.aws
        .ssm
        .label_parameter_version()
        .name(&name)
        .parameter_version(1)
        .labels("stable")
        .send()
        .await
        .unwrap();
    let spec = json!({"parameters": [
        {"name": name, "key": "v1", "version": 1},
        {"name": name, "key": "stable", "label": "stable"},
        {"name": name, "key": "latest"},
    ]});
    s.apply(&ssm_parameter("pins", spec)).await;
    let status = s
        .wait_for_condition("pins", "Ready", "True", "Synced")
        .await;
    let d = data(&s, "pins").await;
    assert_eq!(
        (d["v1"].as_str(), d["stable"].as_str(), d["latest"].as_str()),
        ("first", "first", "second")
    );
    assert_eq!(
        status
            .parameters
            .iter()
            .map(|p| p.version)
            .collect::<Vec<_>>(),
        vec![1, 1, 2]
    );

    s.apply(&ssm_parameter(
        "no-version",
        json!({"parameters": [{"name": name, "version": 9}]}),
    ))
    .await;
    let status = s
        .wait_for_condition("no-version", "Synced", "False", "ParameterVersionNotFound")
        .await;
    assert!(condition(&status, "Synced").2.contains("version 9"));
    s.apply(&ssm_parameter(
        "no-label",
        json!({"parameters": [{"name": name, "label": "gone"}]}),
    ))
    .await;
    let status = s
        .wait_for_condition("no-label", "Synced", "False", "ParameterVersionNotFound")
        .await;
    assert!(condition(&status, "Synced").2.contains("label gone"));
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn template_builds_extra_keys_and_an_unknown_placeholder_is_invalid_spec() {
    let (s, _, name) = with_secret("template", "pw").await;
    let target = |template: &str| {
        json!({"parameters": [{"name": name, "key": "password"}],
               "target": {"type": "kubernetes.io/basic-auth",
                          "labels": {"team": "payments"}, "annotations": {"owner": "payments"},
                          "template": {"username": "app", "DATABASE_URL": template}}})
    };
    s.apply(&ssm_parameter(
        "url",
        target("postgres://app:{{ password }}@db/app"),
    ))
    .await;
    s.wait_for_condition("url", "Ready", "True", "Synced").await;
    let secret: Secret = s.secrets().get("url").await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(secret.labels()["team"], "payments");
    assert_eq!(secret.annotations()["owner"], "payments");
    let d = data(&s, "url").await;
    assert_eq!(d["DATABASE_URL"], "postgres://app:pw@db/app");
    assert_eq!(d["username"], "app");

    s.apply(&ssm_parameter("bad", target("{{ passwd }}"))).await;
    let status = s
        .wait_for_condition("bad", "Synced", "False", "InvalidSpec")
        .await;
    assert!(condition(&status, "Synced").2.contains("passwd"));
    assert!(s.secrets().get_opt("bad").await.unwrap().is_none());
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn immutable_secret_is_replaced_when_its_data_changes() {
    let (s, key, name) = with_secret("immutable", "one").await;
    s.apply(&ssm_parameter(
        "frozen",
        json!({"parameters": [{"name": name, "key": "pw"}], "target": {"immutable": true}}),
    ))
    .await;
    s.wait_for_condition("frozen", "Ready", "True", "Synced")
        .await;
    let before: Secret = s.secrets().get("frozen").await.unwrap();
    assert_eq!(before.immutable, Some(true));
    s.put_secure_string(&name, "two", &key).await;
    s.force_sync("frozen").await;
    eventually("the replaced Secret", DEADLINE, || async {
        let after = s.secrets().get_opt("frozen").await.ok()??;
        (after.uid() != before.uid() && after.data?.get("pw")?.0 == b"two").then_some(())
    })
    .await;
    s.wait_for_event("frozen", "Replaced").await;
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_that_is_not_ours_is_a_conflict_and_stays_untouched() {
    let (s, _, name) = with_secret("conflict", "ours").await;
    let foreign: Secret = serde_json::from_value(json!({
        "metadata": {"name": "argocd-secret"},
        "stringData": {"admin.password": "theirs"},
    }))
    .unwrap();
    s.secrets()
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let before = s.secrets().get("argocd-secret").await.unwrap();
    s.apply(&ssm_parameter(
        "grabby",
        json!({"parameters": [{"name": name, "key": "pw"}], "target": {"name": "argocd-secret"}}),
    ))
    .await;
    s.wait_for_condition("grabby", "Synced", "False", "SecretConflict")
        .await;
    let after = s.secrets().get("argocd-secret").await.unwrap();
    assert_eq!(after.resource_version(), before.resource_version());
    assert_eq!(
        data(&s, "argocd-secret").await,
        BTreeMap::from([("admin.password".into(), "theirs".into())])
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn orphan_secret_survives_its_ssm_parameter() {
    let (s, _, name) = with_secret("orphan", "kept").await;
    s.apply(&ssm_parameter(
        "orphan",
        json!({"parameters": [{"name": name, "key": "pw"}], "target": {"creationPolicy": "Orphan"}}),
    ))
    .await;
    s.wait_for_condition("orphan", "Ready", "True", "Synced")
        .await;
    let secret = s.secrets().get("orphan").await.unwrap();
    assert!(secret.owner_references().is_empty());
    s.ssm_parameters()
        .delete("orphan", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the SsmParameter to be gone", DEADLINE, || async {
        s.ssm_parameters()
            .get_opt("orphan")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(data(&s, "orphan").await["pw"], "kept");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_writes_only_our_keys_and_removing_a_parameter_removes_only_its_key() {
    let mut s = Scenario::new("merge").await;
    let (key, _) = s.with_operator().await;
    let (a, b) = (format!("{}-a", s.id), format!("{}-b", s.id));
    s.put_secure_string(&a, "A", &key).await;
    s.put_secure_string(&b, "B", &key).await;
    s.put_secret_as("someone-else", json!({
        "metadata": {"name": "shared", "labels": {"app": "theirs"}, "annotations": {"ssm-operator.io/merge-from": "merge"}},
        "stringData": {"theirs": "T"},
    }))
        .await;
    let spec = |params: Value| json!({"parameters": params, "target": {"name": "shared", "creationPolicy": "Merge"}});
    s.apply(&ssm_parameter(
        "merge",
        spec(json!([{"name": a, "key": "a"}, {"name": b, "key": "b"}])),
    ))
    .await;
    s.wait_for_condition("merge", "Ready", "True", "Synced")
        .await;
    let merged = data(&s, "shared").await;
    assert_eq!(
        merged,
        BTreeMap::from([
            ("a".into(), "A".into()),
            ("b".into(), "B".into()),
            ("theirs".into(), "T".into())
        ])
    );
    assert!(
        s.secrets()
            .get("shared")
            .await
            .unwrap()
            .owner_references()
            .is_empty()
    );

    s.apply(&ssm_parameter(
        "merge",
        spec(json!([{"name": a, "key": "a"}])),
    ))
    .await;
    eventually("key b to be removed", DEADLINE, || async {
        let d = data(&s, "shared").await;
        (!d.contains_key("b")).then_some(d)
    })
    .await;
    let d = data(&s, "shared").await;
    assert_eq!(
        d,
        BTreeMap::from([("a".into(), "A".into()), ("theirs".into(), "T".into())])
    );
    assert_eq!(
        s.secrets().get("shared").await.unwrap().labels()["app"],
        "theirs"
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_policy_delete_removes_the_secret_when_its_parameters_are_gone() {
    let (s, _, name) = with_secret("deletion-delete", "x").await;
    s.apply(&ssm_parameter(
        "ephemeral",
        json!({"parameters": [{"name": name, "key": "pw"}], "target": {"deletionPolicy": "Delete"}}),
    ))
    .await;
    s.wait_for_condition("ephemeral", "Ready", "True", "Synced")
        .await;
    s.aws
        .ssm
        .delete_parameter()
        .name(&name)
        .send()
        .await
        .unwrap();
    s.force_sync("ephemeral").await;
    let status = s
        .wait_for_condition("ephemeral", "Ready", "False", "ParameterNotFound")
        .await;
    assert_eq!(condition(&status, "Synced").1, "ParameterNotFound");
    assert!(s.secrets().get_opt("ephemeral").await.unwrap().is_none());
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_or_deleted_secret_is_repaired_within_seconds() {
    let (s, _, name) = with_secret("drift", "right").await;
    s.apply(&ssm_parameter(
        "drift",
        json!({"parameters": [{"name": name, "key": "pw"}]}),
    ))
    .await;
    s.wait_for_condition("drift", "Ready", "True", "Synced")
        .await;
    let edit = json!({"stringData": {"pw": "wrong"}});
    s.secrets()
        .patch("drift", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    eventually("the edit to be repaired", DEADLINE, || async {
        (s.secret_value("drift", "pw").await.as_deref() == Some("right")).then_some(())
    })
    .await;
    s.secrets()
        .delete("drift", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deleted Secret to come back", DEADLINE, || async {
        (s.secret_value("drift", "pw").await.as_deref() == Some("right")).then_some(())
    })
    .await;
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_restart_annotates_workloads_on_change_but_not_at_creation() {
    let (s, key, name) = with_secret("rollout", "one").await;
    let pod = json!({"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "web:1"}]}});
    let selector = json!({"matchLabels": {"app": "web"}});
    let workload = |kind: &str| {
        json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web"},
               "spec": {"selector": selector, "template": pod}})
    };
    let pp = PostParams::default();
    let deployments: Api<Deployment> = Api::namespaced(s.kube.clone(), &s.namespace);
    let statefulsets: Api<StatefulSet> = Api::namespaced(s.kube.clone(), &s.namespace);
    let daemonsets: Api<DaemonSet> = Api::namespaced(s.kube.clone(), &s.namespace);
    deployments
        .create(
            &pp,
            &serde_json::from_value(workload("Deployment")).unwrap(),
        )
        .await
        .unwrap();
    statefulsets
        .create(
            &pp,
            &serde_json::from_value(workload("StatefulSet")).unwrap(),
        )
        .await
        .unwrap();
    daemonsets
        .create(&pp, &serde_json::from_value(workload("DaemonSet")).unwrap())
        .await
        .unwrap();
    let restarts = json!([
        {"kind": "Deployment", "name": "web"},
        {"kind": "StatefulSet", "name": "web"},
        {"kind": "DaemonSet", "name": "web"},
    ]);
    s.apply(&ssm_parameter(
        "web",
        json!({"parameters": [{"name": name, "key": "pw"}], "rolloutRestart": restarts}),
    ))
    .await;
    s.wait_for_condition("web", "Ready", "True", "Synced").await;
    // Rollouts follow the status: look once the creation's Event is out.
    s.wait_for_event("web", "Created").await;
    let restarted = |annotations: Option<BTreeMap<String, String>>| {
        annotations
            .unwrap_or_default()
            .contains_key("ssm-operator.io/restartedAt")
    };
    let d = deployments.get("web").await.unwrap();
    assert!(
        !restarted(
            d.spec
                .unwrap()
                .template
                .metadata
                .unwrap_or_default()
                .annotations
        ),
        "restarted at creation"
    );

    s.put_secure_string(&name, "two", &key).await;
    s.force_sync("web").await;
    eventually("every workload restarted", DEADLINE, || async {
        let d = deployments
            .get("web")
            .await
            .ok()?
            .spec?
            .template
            .metadata?
            .annotations;
        let st = statefulsets
            .get("web")
            .await
            .ok()?
            .spec?
            .template
            .metadata?
            .annotations;
        let ds = daemonsets
            .get("web")
            .await
            .ok()?
            .spec?
            .template
            .metadata?
            .annotations;
        (restarted(d) && restarted(st) && restarted(ds)).then_some(())
    })
    .await;
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_over_one_mebibyte_is_secret_too_large_and_nothing_is_written() {
    let mut s = Scenario::new("too-large").await;
    let (key, _) = s.with_operator().await;
    let name = format!("{}-big", s.id);
    s.put_secure_string(&name, &"x".repeat(4000), &key).await;
    let huge = "{{ big }}".repeat(300);
    s.apply(&ssm_parameter(
        "huge",
        json!({"parameters": [{"name": name, "key": "big"}], "target": {"template": {"huge": huge}}}),
    ))
    .await;
    let status = s
        .wait_for_condition("huge", "Synced", "False", "SecretTooLarge")
        .await;
    assert!(!condition(&status, "Synced").2.contains("xxxx"));
    assert!(s.secrets().get_opt("huge").await.unwrap().is_none());
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_ssm_parameter_is_ready_within_seconds_while_hundreds_refresh() {
    let mut s = Scenario::new("priority").await;
    let (key, _) = s.with_operator().await;
    let names: Vec<String> = (0..10).map(|i| format!("{}-p{i}", s.id)).collect();
    for name in &names {
        s.put_secure_string(name, "v", &key).await;
    }
    for i in 0..200 {
        let spec =
            json!({"parameters": [{"name": names[i % 10], "key": "v"}], "refreshInterval": "10s"});
        s.apply(&ssm_parameter(&format!("bulk-{i:03}"), spec)).await;
    }
    eventually(
        "the bulk to be synced",
        Duration::from_secs(120),
        || async {
            let list = s.ssm_parameters().list(&Default::default()).await.ok()?;
            let ready = list
                .items
                .iter()
                .filter(|o| o.status.as_ref().and_then(|st| st.ready.as_deref()) == Some("True"));
            (ready.count() == 200).then_some(())
        },
    )
    .await;
    let started = std::time::Instant::now();
    s.apply(&ssm_parameter(
        "newcomer",
        json!({"parameters": [{"name": names[0], "key": "v"}]}),
    ))
    .await;
    s.wait_for_condition("newcomer", "Ready", "True", "Synced")
        .await;
    let waited = started.elapsed();
    // The deadline of wait_for_condition is the guarantee; the number is for the record.
    println!("newcomer Ready after {waited:?} with 200 SsmParameters refreshing every 10s");
    s.cleanup().await;
}
