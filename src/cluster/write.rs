//! Writes what [`super::children::changes`] found: creates, spec
//! replacements and deletions of kept SsmParameters, and the status.

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::api::{ClusterSsmParameter, ClusterSsmParameterStatus, SsmParameter};
use crate::cluster::children::Changes;
use crate::names::FIELD_MANAGER;

/// Makes the changes; returns the namespaces found to hold someone else's
/// SsmParameter of that name.
pub async fn apply(client: &Client, changes: Changes) -> Result<Vec<String>, kube::Error> {
    let mut conflicts = changes.conflicts;
    for child in changes.create {
        let namespace = child.namespace().unwrap_or_default();
        if !create(client, child).await? {
            conflicts.push(namespace);
        }
    }
    for (child, uid) in changes.update {
        replace_spec(client, &child, &uid).await?;
    }
    for (namespace, name, uid) in changes.delete {
        let api: Api<SsmParameter> = Api::namespaced(client.clone(), &namespace);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            // Gone already, or replaced by another object of that name.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            other => other.map(drop)?,
        }
    }
    Ok(conflicts)
}

/// Creates `child`; false when its name is taken by an SsmParameter the
/// labelled watch does not show as `owner`'s.
async fn create(client: &Client, child: SsmParameter) -> Result<bool, kube::Error> {
    let api: Api<SsmParameter> =
        Api::namespaced(client.clone(), &child.namespace().unwrap_or_default());
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match api.create(&params, &child).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

/// Replaces the spec of the kept SsmParameter `uid` with `child`'s, only if
/// it is still that object.
async fn replace_spec(client: &Client, child: &SsmParameter, uid: &str) -> Result<(), kube::Error> {
    let api: Api<SsmParameter> =
        Api::namespaced(client.clone(), &child.namespace().unwrap_or_default());
    let operations = [
        json!({"op": "test", "path": "/metadata/uid", "value": uid}),
        json!({"op": "replace", "path": "/spec", "value": child.spec}),
    ];
    let patch: json_patch::Patch =
        serde_json::from_value(json!(operations)).map_err(kube::Error::SerdeError)?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    match api
        .patch(&child.name_any(), &params, &Patch::<()>::Json(patch))
        .await
    {
        // Deleted or replaced meanwhile (the test failed): the watch tells.
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409 | 422) => Ok(()),
        other => other.map(drop),
    }
}

/// Writes `status` (server-side apply of the status subresource).
pub async fn status(
    client: &Client,
    owner: &ClusterSsmParameter,
    status: &ClusterSsmParameterStatus,
) -> Result<(), kube::Error> {
    let api: Api<ClusterSsmParameter> = Api::all(client.clone());
    let patch = json!({
        "apiVersion": ClusterSsmParameter::api_version(&()),
        "kind": ClusterSsmParameter::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api
        .patch_status(&owner.name_any(), &params, &Patch::Apply(&patch))
        .await
    {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other.map(drop),
    }
}
