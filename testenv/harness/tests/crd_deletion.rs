//! Deleting the SsmParameter CRD or the ClusterSsmParameter CRD — by hand or
//! by an uninstall that removes them — never deletes users' Secrets,
//! whatever their creation policy. A test binary of its own: it deletes the
//! CRDs, so it gets an API server of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use ssm_operator::api::{ClusterSsmParameter, SsmParameter};
use ssm_operator::names::{CLUSTER_CRD_NAME, CRD_NAME};
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::{DEADLINE, OperatorOptions, Scenario, eventually};

async fn data(secrets: &Api<Secret>, name: &str) -> BTreeMap<String, Vec<u8>> {
    let secret = secrets.get(name).await.unwrap();
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

async fn delete_crd(s: &Scenario, name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(s.kube.clone());
    crds.delete(name, &DeleteParams::default()).await.unwrap();
    eventually("the CRD to be gone", DEADLINE, || async {
        crds.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_either_crd_keeps_every_secret_of_owner_orphan_and_merge_objects() {
    let mut s = Scenario::new("crd-deletion").await;
    let key = s.create_key().await;
    let policy = ssm_operator_testenv::aws::setup::read_prefix_policy(&s.id, &key);
    let role = s.create_operator_role(&policy).await;
    let options = OperatorOptions {
        args: vec!["--cluster-ssm-parameters=true".into()],
        ..OperatorOptions::default()
    };
    s.start_operator_with(&role, options).await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "kept", &key).await;

    // The ClusterSsmParameter CRD first: its objects go. The SsmParameters
    // they kept refer to an owner of a kind that no longer exists, which
    // the garbage collector leaves alone; had it deleted them, their
    // finalizer would have orphaned the Secrets, as below.
    let kept = serde_json::from_value::<ClusterSsmParameter>(json!({
        "apiVersion": "ssm-operator.io/v1alpha1", "kind": "ClusterSsmParameter",
        "metadata": {"name": format!("{}-kept", s.id)},
        "spec": {"namespaces": [s.namespace], "template": {"parameters": [{"name": name, "key": "pw"}]}},
    }))
    .unwrap();
    let kept_name = kept.metadata.name.clone().unwrap();
    Api::<ClusterSsmParameter>::all(s.kube.clone())
        .create(&Default::default(), &kept)
        .await
        .unwrap();
    s.wait_for_condition(&kept_name, "Ready", "True", "Synced")
        .await;
    let secrets = s.secrets();
    let kept_before = data(&secrets, &kept_name).await;
    delete_crd(&s, CLUSTER_CRD_NAME).await;
    assert_eq!(data(&secrets, &kept_name).await, kept_before);
    let parameters: Api<SsmParameter> = s.ssm_parameters();
    let still = parameters.get_opt(&kept_name).await.unwrap();
    println!(
        "crd-deletion: after the ClusterSsmParameter CRD went, its SsmParameter is {}",
        if still.is_some() {
            "still there"
        } else {
            "gone"
        }
    );

    // Then the SsmParameter CRD.
    s.put_secret_as(
        "someone-else",
        json!({
            "metadata": {"name": "shared", "annotations": {"ssm-operator.io/merge-from": "merged"}},
            "stringData": {"theirs": "T"},
        }),
    )
    .await;
    let objects = [
        ("owned", json!({})),
        ("orphaned", json!({"creationPolicy": "Orphan"})),
        (
            "merged",
            json!({"name": "shared", "creationPolicy": "Merge"}),
        ),
    ];
    for (object, target) in &objects {
        s.apply(&ssm_parameter(
            object,
            json!({"parameters": [{"name": name, "key": "pw"}], "target": target}),
        ))
        .await;
    }
    for (object, _) in &objects {
        s.wait_for_condition(object, "Ready", "True", "Synced")
            .await;
    }
    let mut before = BTreeMap::new();
    for secret in ["owned", "orphaned", "shared", kept_name.as_str()] {
        before.insert(secret, data(&secrets, secret).await);
    }
    assert_eq!(
        secrets.get("owned").await.unwrap().owner_references().len(),
        1
    );

    delete_crd(&s, CRD_NAME).await;

    for (secret, data_before) in &before {
        let now = secrets.get(secret).await.unwrap();
        assert!(
            now.owner_references().is_empty(),
            "Secret {secret} still refers to a deleted SsmParameter: garbage collection would delete it"
        );
        assert_eq!(
            &data(&secrets, secret).await,
            data_before,
            "Secret {secret}"
        );
    }
    let orphaned = s.events("owned").await;
    assert!(
        orphaned
            .iter()
            .any(|e| e.reason.as_deref() == Some("Orphaned")),
        "no Orphaned Event for the owned Secret"
    );
    // What a garbage collection would have deleted by now is still there.
    let deleted: Vec<_> = ssm_operator_testenv::operator::audited_writes(s.env, &s.namespace)
        .into_iter()
        .filter(|w| w.verb == "delete")
        .collect();
    assert!(deleted.is_empty(), "the operator deleted {deleted:?}");
    s.cleanup().await;
}
