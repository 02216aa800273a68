//! Deleting the SsmParameter CRD — by hand or by an uninstall that removes
//! it — never deletes users' Secrets, whatever their creation policy. A test
//! binary of its own: it deletes the CRD, so it gets an API server of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use ssm_operator::names::CRD_NAME;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::{DEADLINE, Scenario, eventually};

async fn data(secrets: &Api<Secret>, name: &str) -> BTreeMap<String, Vec<u8>> {
    let secret = secrets.get(name).await.unwrap();
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_crd_keeps_every_secret_of_owner_orphan_and_merge_objects() {
    let mut s = Scenario::new("crd-deletion").await;
    let (key, _) = s.with_operator().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "kept", &key).await;
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
    let secrets = s.secrets();
    let mut before = BTreeMap::new();
    for secret in ["owned", "orphaned", "shared"] {
        before.insert(secret, data(&secrets, secret).await);
    }
    assert_eq!(
        secrets.get("owned").await.unwrap().owner_references().len(),
        1
    );

    let crds: Api<CustomResourceDefinition> = Api::all(s.kube.clone());
    crds.delete(CRD_NAME, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the CRD to be gone", DEADLINE, || async {
        crds.get_opt(CRD_NAME)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

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
