//! Writing the Secret: server-side apply when it differs, replacement of an
//! immutable one, removal under `deletionPolicy: Delete`.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use crate::api::CreationPolicy;
use crate::failpoint;
use crate::reconcile::build::secret;
use crate::reconcile::plan::Plan;
use crate::reconcile::takeover;

/// What a sync did to the Secret, for Events and rollouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    Created(Vec<String>),
    Updated(Vec<String>),
    /// An immutable Secret was deleted and created again.
    Replaced(Vec<String>),
    /// `deletionPolicy: Delete`: the Secret, or with `Merge` our keys, removed.
    Removed,
}

impl Written {
    /// The metrics label of this write.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Created(_) => "created",
            Self::Updated(_) => "updated",
            Self::Replaced(_) => "replaced",
            Self::Removed => "removed",
        }
    }

    /// Whether existing consumers now see other data.
    pub fn changed_data(&self) -> bool {
        matches!(self, Self::Updated(_) | Self::Replaced(_))
    }
}

/// Makes the Secret `desired`; `reapply` forces a write of a merged Secret
/// whose keys may have been dropped from the spec. Returns what was written
/// and the Secret's `resourceVersion` as this left it — taken from the write
/// itself, so that a change made right after it is never mistaken for ours.
pub async fn apply(
    secrets: &Api<Secret>,
    plan: &Plan,
    existing: Option<&Secret>,
    desired: &Secret,
    reapply: bool,
) -> Result<(Option<Written>, Option<String>), kube::Error> {
    let merge = plan.creation == CreationPolicy::Merge;
    if let Some(current) = existing.filter(|s| {
        secret::is_current(s, desired, merge)
            && !(merge && reapply)
            && takeover::legacy_keys(s).is_none()
    }) {
        return Ok((None, current.metadata.resource_version.clone()));
    }
    let changed = secret::changed_keys(existing, desired, merge);
    let params = PatchParams::apply(&plan.field_manager).force();
    let name = &plan.secret_name;
    if existing.is_some_and(|s| secret::needs_replacement(s, desired)) {
        secrets.delete(name, &DeleteParams::default()).await?;
        let written = secrets.patch(name, &params, &Patch::Apply(desired)).await?;
        return Ok((
            Some(Written::Replaced(changed)),
            written.metadata.resource_version,
        ));
    }
    let mut written = secrets.patch(name, &params, &Patch::Apply(desired)).await?;
    failpoint::hit(failpoint::AFTER_SECRET_WRITE);
    if let Some(existing) = existing
        && let Some(released) = takeover::release(secrets, existing, desired).await?
    {
        written = released;
    }
    let what = match existing {
        None => Some(Written::Created(changed)),
        Some(_) if !changed.is_empty() => Some(Written::Updated(changed)),
        Some(_) => None,
    };
    Ok((what, written.metadata.resource_version))
}

/// A `resourceVersion` no object has: etcd's revisions are signed 64-bit
/// counters that start at 1.
const NO_SUCH_VERSION: &str = "9223372036854775807";

/// Creates the Secret `desired` unless a Secret has its name already (then
/// `None`), without reading first. In a server-side apply a
/// `resourceVersion` is a precondition on an existing object only: an
/// absent one is created, a present one of another version refused with
/// 409 Conflict (kubernetes#106745; kube-apiserver 1.35 answers so).
pub async fn create(
    secrets: &Api<Secret>,
    plan: &Plan,
    mut desired: Secret,
) -> Result<Option<(Option<Written>, Option<String>)>, kube::Error> {
    let keys = secret::changed_keys(None, &desired, plan.creation == CreationPolicy::Merge);
    desired.metadata.resource_version = Some(NO_SUCH_VERSION.to_owned());
    let params = PatchParams::apply(&plan.field_manager).force();
    match secrets
        .patch(&plan.secret_name, &params, &Patch::Apply(&desired))
        .await
    {
        Ok(written) => {
            failpoint::hit(failpoint::AFTER_SECRET_WRITE);
            Ok(Some((
                Some(Written::Created(keys)),
                written.metadata.resource_version,
            )))
        }
        Err(kube::Error::Api(refused)) if refused.is_conflict() => Ok(None),
        Err(error) => Err(error),
    }
}

/// Removes the Secret — or, when merging, only what this SsmParameter wrote.
pub async fn remove(
    secrets: &Api<Secret>,
    plan: &Plan,
    existing: Option<&Secret>,
) -> Result<Option<Written>, kube::Error> {
    if existing.is_none() {
        return Ok(None);
    }
    if plan.creation == CreationPolicy::Merge {
        // Applying nothing gives up every field this manager owned.
        let nothing = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": plan.secret_name},
        });
        let params = PatchParams::apply(&plan.field_manager).force();
        secrets
            .patch(&plan.secret_name, &params, &Patch::Apply(&nothing))
            .await?;
    } else {
        secrets
            .delete(&plan.secret_name, &DeleteParams::default())
            .await?;
    }
    Ok(Some(Written::Removed))
}
