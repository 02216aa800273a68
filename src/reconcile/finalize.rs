//! Deleting an SsmParameter without ever losing a Secret to the deletion of
//! the CRD. A Secret with `creationPolicy: Owner` carries an ownerReference,
//! and deleting the CRD deletes every SsmParameter at once: garbage
//! collection would follow with every Secret. So such SsmParameters carry
//! [`FINALIZER`]; when one is deleted while the CRD is being deleted (or
//! while the operator cannot tell), its Secret is orphaned first. Deleting
//! one SsmParameter on its own still deletes its Secret, as documented.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};

use crate::reconcile::report::events::Recorder;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::api::{CreationPolicy, SsmParameter};
use crate::names::{CLUSTER_CRD_NAME, CRD_NAME, FIELD_MANAGER, FINALIZER};
use crate::reconcile::{plan, tenancy};

/// Whether `obj` needs the finalizer and lacks it.
pub fn missing(obj: &SsmParameter) -> bool {
    let owner = obj
        .spec
        .target
        .as_ref()
        .and_then(|t| t.creation_policy)
        .unwrap_or_default()
        == CreationPolicy::Owner;
    owner && !obj.finalizers().iter().any(|f| f == FINALIZER)
}

/// Adds the finalizer, before any Secret gets an ownerReference to `obj`.
pub async fn add(obj: &SsmParameter, client: &kube::Client) -> Result<(), kube::Error> {
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    set(obj, client, finalizers).await
}

/// The deletion of `obj`: orphans its Secret when the CRD is going, then
/// lets the object go.
pub async fn finalize(
    obj: &SsmParameter,
    client: &kube::Client,
    recorder: &Recorder,
) -> Result<Action, kube::Error> {
    if !obj.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    if let Some(why) = keep_secret(client, obj).await? {
        orphan(obj, client).await?;
        announce(obj, recorder, why).await;
    }
    let finalizers = obj
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    match set(obj, client, finalizers).await {
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        other => other?,
    }
    Ok(Action::await_change())
}

/// Why the Secret must outlive this deletion, if it must: the CRD is being
/// deleted — for an SsmParameter a ClusterSsmParameter keeps, either CRD,
/// since deleting the ClusterSsmParameters deletes theirs — or the operator
/// may not read it to tell.
async fn keep_secret(
    client: &kube::Client,
    obj: &SsmParameter,
) -> Result<Option<&'static str>, kube::Error> {
    let mut crds = vec![(CRD_NAME, "SsmParameter")];
    if tenancy::claimed_keeper(obj).is_some() {
        crds.push((CLUSTER_CRD_NAME, "ClusterSsmParameter"));
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (crd, kind) in crds {
        match api.get_opt(crd).await {
            Ok(Some(found)) if found.metadata.deletion_timestamp.is_none() => {}
            Ok(_) if kind == "SsmParameter" => {
                return Ok(Some("the SsmParameter CRD is being deleted"));
            }
            Ok(_) => return Ok(Some("the ClusterSsmParameter CRD is being deleted")),
            Err(kube::Error::Api(e)) if e.code == 403 => {
                tracing::warn!(
                    crd,
                    "may not read the CRD, so cannot tell whether it is being deleted; the Secret is kept"
                );
                return Ok(Some(
                    "the operator may not read a CRD to tell whether it is being deleted",
                ));
            }
            Err(error) => return Err(error),
        }
    }
    Ok(None)
}

/// Takes `obj`'s ownerReference off its Secret, touching nothing else.
async fn orphan(obj: &SsmParameter, client: &kube::Client) -> Result<(), kube::Error> {
    let secrets: Api<Secret> =
        Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let uid = obj.uid().unwrap_or_default();
    let patch = json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}]}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let name = plan::secret_name(obj);
    match secrets
        .patch(&name, &params, &Patch::Strategic(&patch))
        .await
    {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other.map(drop),
    }
}

async fn announce(obj: &SsmParameter, recorder: &Recorder, why: &str) {
    let event = Event {
        type_: EventType::Normal,
        reason: "Orphaned".to_owned(),
        note: Some(format!(
            "Secret {} kept without its ownerReference: {why}",
            plan::secret_name(obj)
        )),
        action: "Finalize".to_owned(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(%error, "could not publish an Event");
    }
}

/// Sets `obj`'s finalizers, only if it has not changed since it was read.
async fn set(
    obj: &SsmParameter,
    client: &kube::Client,
    finalizers: Vec<String>,
) -> Result<(), kube::Error> {
    let api: Api<SsmParameter> =
        Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": obj.resource_version(),
    }});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(&obj.name_any(), &params, &Patch::Merge(&patch))
        .await
        .map(drop)
}
