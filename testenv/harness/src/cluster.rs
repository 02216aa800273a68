//! A test's objects in the API server, as the administrator sees them:
//! namespaces, SsmParameters, their Secrets and Events, and the workloads
//! they restart.

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt as _};
use serde_json::json;
use ssm_operator::api::{SsmParameter, SsmParameterStatus};

/// Creates namespace `name`.
pub async fn create_namespace(kube: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .expect("create namespace");
}

/// Creates Deployment `name` in namespace `ns`: one container, whose Pods
/// no node runs; what a rollout restart patches is its template.
pub async fn create_deployment(kube: &Client, ns: &str, name: &str) {
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(kube.clone(), ns);
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": name, "image": "app:1"}]}},
        },
    });
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment).unwrap(),
        )
        .await
        .expect("create Deployment");
}

/// Deletes namespace `name` (and so everything in it), if it can.
pub async fn delete_namespace(kube: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    let _ = namespaces.delete(name, &DeleteParams::default()).await;
}

/// Creates or updates (server-side apply) an SsmParameter in namespace `ns`
/// from a manifest (YAML or JSON).
pub async fn apply(kube: &Client, ns: &str, manifest: &str) -> SsmParameter {
    let obj: SsmParameter = serde_saphyr::from_str(manifest).expect("manifest");
    let api: Api<SsmParameter> = Api::namespaced(kube.clone(), ns);
    api.patch(
        &obj.name_any(),
        &PatchParams::apply("tests").force(),
        &Patch::Apply(&obj),
    )
    .await
    .expect("apply SsmParameter")
}

/// The status of SsmParameter `ns/name`, if it has one.
pub async fn status(kube: &Client, ns: &str, name: &str) -> Option<SsmParameterStatus> {
    let api: Api<SsmParameter> = Api::namespaced(kube.clone(), ns);
    api.get(name).await.ok()?.status
}

/// The value of `key` in Secret `ns/name`, as text.
pub async fn secret_value(kube: &Client, ns: &str, name: &str, key: &str) -> Option<String> {
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), ns);
    let secret = secrets.get_opt(name).await.ok()??;
    let bytes = secret.data?.get(key)?.0.clone();
    String::from_utf8(bytes).ok()
}

/// Makes the operator read AWS now for SsmParameter `ns/name`.
pub async fn force_sync(kube: &Client, ns: &str, name: &str) {
    let value = format!("{:?}", std::time::SystemTime::now());
    let patch = json!({"metadata": {"annotations": {"ssm-operator.io/force-sync": value}}});
    let api: Api<SsmParameter> = Api::namespaced(kube.clone(), ns);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("force sync");
}

/// Events in `ns` about the object `regarding`.
pub async fn events(kube: &Client, ns: &str, regarding: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(kube.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(regarding))
        .collect()
}
