//! ClusterSsmParameter: one Secret in every chosen namespace, read from AWS
//! once per refresh, with the same identity rules.
//!
//! An operator serving ClusterSsmParameters serves every one in the cluster,
//! so the tests that start one take turns ([`ONE_AT_A_TIME`]): two such
//! operators would both keep the other test's.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt as _};
use serde_json::json;
use ssm_operator::api::{ClusterSsmParameter, SsmParameter};
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::wait::{self, eventually};
use ssm_operator_testenv::{OperatorOptions, Scenario};

pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DEADLINE: Duration = Duration::from_secs(60);

fn cluster_ssm_parameter(name: &str, spec: serde_json::Value) -> ClusterSsmParameter {
    serde_json::from_value(json!({
        "apiVersion": "ssm-operator.io/v1alpha1",
        "kind": "ClusterSsmParameter",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

async fn label(s: &Scenario, namespace: &str, key: &str, value: Option<&str>) {
    let namespaces: Api<Namespace> = Api::all(s.kube.clone());
    let patch = json!({"metadata": {"labels": {key: value}}});
    namespaces
        .patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("label the Namespace");
}

/// Waits until the ClusterSsmParameter's status has `ready` namespaces and
/// `holds` is true of it.
async fn wait_for_status(
    s: &Scenario,
    name: &str,
    what: &str,
    holds: impl Fn(&ssm_operator::api::ClusterSsmParameterStatus) -> bool,
) -> ssm_operator::api::ClusterSsmParameterStatus {
    let api: Api<ClusterSsmParameter> = Api::all(s.kube.clone());
    eventually(what, DEADLINE, || async {
        let status = api.get(name).await.ok()?.status?;
        holds(&status).then_some(status)
    })
    .await
}

async fn wait_for_value(s: &Scenario, namespace: &str, name: &str, value: &str) {
    let what = format!("Secret {namespace}/{name} holding the value");
    eventually(&what, DEADLINE, || async {
        let got =
            ssm_operator_testenv::cluster::secret_value(&s.kube, namespace, name, "password").await;
        (got.as_deref() == Some(value)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_secret_is_kept_in_every_chosen_namespace_and_read_once_per_refresh() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut s = Scenario::new("cluster").await;
    let selector = format!("{}-registry", s.id);
    let (a, b, c) = (
        s.other_namespace("a").await,
        s.other_namespace("b").await,
        s.other_namespace("c").await,
    );
    let taken = s.other_namespace("taken").await;
    for ns in [&a, &b, &taken] {
        label(&s, ns, &selector, Some("yes")).await;
    }
    let key = s.create_key().await;
    let policy = ssm_operator_testenv::aws::setup::read_prefix_policy(&s.id, &key);
    let role = s.create_operator_role(&policy).await;
    // No namespace may read with the operator's identity on its own: the
    // kept SsmParameters still do, as their ClusterSsmParameter's.
    let options = OperatorOptions {
        also_watch: vec![a.clone(), b.clone(), c.clone(), taken.clone()],
        tenants_only: true,
        args: vec!["--cluster-ssm-parameters=true".into()],
        ..OperatorOptions::default()
    };
    s.start_operator_with(&role, options).await;
    let parameter = format!("{}-registry-password", s.id);
    s.put_secure_string(&parameter, "hunter2", &key).await;
    // Someone else's SsmParameter of that name: never touched.
    let theirs = ssm_parameter(&s.id, json!({"parameters": [{"name": "elsewhere"}]}));
    s.apply_in(&taken, &theirs).await;

    let name = s.id.clone();
    let owners: Api<ClusterSsmParameter> = Api::all(s.kube.clone());
    let spec = json!({
        "namespaceSelector": {"matchLabels": {&selector: "yes"}},
        "template": {
            "parameters": [{"name": parameter, "key": "password"}],
            "target": {"name": "registry"},
            "refreshInterval": "10s",
        },
    });
    owners
        .create(&Default::default(), &cluster_ssm_parameter(&name, spec))
        .await
        .expect("create the ClusterSsmParameter");
    for ns in [&a, &b] {
        wait_for_value(&s, ns, "registry", "hunter2").await;
    }
    let status = wait_for_status(&s, &name, "2 namespaces ready, 1 conflict", |st| {
        st.namespaces == Some(2) && st.failed_namespaces.len() == 1
    })
    .await;
    let failed = &status.failed_namespaces[0];
    assert_eq!(
        (failed.name.as_str(), failed.reason.as_str()),
        (taken.as_str(), "SsmParameterConflict")
    );
    assert_eq!(status.ready.as_deref(), Some("SsmParameterConflict"));
    let untouched: SsmParameter = Api::namespaced(s.kube.clone(), &taken)
        .get(&name)
        .await
        .unwrap();
    assert_eq!(untouched.spec.parameters[0].name, "elsewhere");
    assert!(untouched.owner_references().is_empty());

    // A refresh of every namespace is one read: they refresh on one beat.
    let calls = s.aws_calls("ssm:GetParameters", &role).await;
    let decrypts = s.aws_calls("kms:Decrypt", &role).await;
    println!("cluster: first sync of 2 namespaces: {calls} GetParameters, {decrypts} decrypts");
    let finished = |s: &Scenario, ns: &str| {
        s.operator()
            .finished_reconciles(&format!("{ns}/{name}"), "Synced")
    };
    let before = (finished(&s, &a), finished(&s, &b));
    eventually("a refresh of both namespaces", DEADLINE, || async {
        (finished(&s, &a) > before.0 && finished(&s, &b) > before.1).then_some(())
    })
    .await;
    let refreshed = s.aws_calls("ssm:GetParameters", &role).await - calls;
    assert_eq!(
        refreshed, 1,
        "one GetParameters for the refresh of both namespaces"
    );
    assert_eq!(
        s.aws_calls("kms:Decrypt", &role).await,
        decrypts,
        "nothing changed"
    );

    // A namespace that starts matching gets the Secret; one that stops
    // matching loses it (creationPolicy Owner).
    label(&s, &c, &selector, Some("yes")).await;
    label(&s, &a, &selector, None).await;
    wait_for_value(&s, &c, "registry", "hunter2").await;
    wait::secret_collected(&s.kube, &a, "registry").await;
    wait_for_status(&s, &name, "b and c ready", |st| st.namespaces == Some(2)).await;

    // An edited SsmParameter is put back to the template.
    let kept: Api<SsmParameter> = Api::namespaced(s.kube.clone(), &b);
    let edit = json!({"spec": {"parameters": [{"name": parameter, "key": "renamed"}]}});
    kept.patch(&name, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    eventually("the template back in b", DEADLINE, || async {
        let child = kept.get(&name).await.ok()?;
        (child.spec.parameters[0].key.as_deref() == Some("password")).then_some(())
    })
    .await;

    // Deleting it deletes what it keeps, and their Secrets.
    owners
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    for ns in [&b, &c] {
        wait::secret_collected(&s.kube, ns, "registry").await;
    }
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ssm_parameter_claiming_a_cluster_ssm_parameter_it_is_not_kept_by_reads_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut s = Scenario::new("cluster-forged").await;
    let chosen = s.other_namespace("chosen").await;
    let (key, role) = {
        let key = s.create_key().await;
        let policy = ssm_operator_testenv::aws::setup::read_prefix_policy(&s.id, &key);
        (key.clone(), s.create_operator_role(&policy).await)
    };
    let options = OperatorOptions {
        also_watch: vec![chosen.clone()],
        tenants_only: true,
        args: vec!["--cluster-ssm-parameters=true".into()],
        ..OperatorOptions::default()
    };
    s.start_operator_with(&role, options).await;
    let parameter = format!("{}-ca", s.id);
    s.put_secure_string(&parameter, "bundle", &key).await;
    let name = s.id.clone();
    let owners: Api<ClusterSsmParameter> = Api::all(s.kube.clone());
    let spec = json!({
        "namespaces": [chosen],
        "template": {"parameters": [{"name": parameter, "key": "password"}]},
    });
    let owner = owners
        .create(&Default::default(), &cluster_ssm_parameter(&name, spec))
        .await
        .unwrap();
    wait_for_value(&s, &chosen, &name, "bundle").await;

    // A tenant of an unchosen namespace copies the reference (and the uid):
    // the operator's identity is still not theirs.
    let mut forged: SsmParameter = serde_json::from_str(&ssm_parameter(
        &name,
        json!({"parameters": [{"name": parameter, "key": "password"}]}),
    ))
    .unwrap();
    forged.metadata.owner_references = Some(vec![owner.controller_owner_ref(&()).unwrap()]);
    let tenants: Api<SsmParameter> = Api::namespaced(s.kube.clone(), &s.namespace);
    tenants.create(&Default::default(), &forged).await.unwrap();
    let status = s
        .wait_for_condition(&name, "Synced", "False", "RoleNotAllowed")
        .await;
    let message = ssm_operator_testenv::wait::synced_message(&status);
    assert!(
        message.contains("does not choose this namespace"),
        "{message}"
    );
    assert!(s.secrets().get_opt(&name).await.unwrap().is_none());

    owners
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    wait::secret_collected(&s.kube, &chosen, &name).await;
    s.cleanup().await;
}
