//! The reconcile pipeline of one SsmParameter:
//! plan → read AWS → build the Secret → apply → status and Events.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::batch::{Batcher, Fetch};
use crate::crd::{FORCE_SYNC_ANNOTATION, ParameterStatus, SsmParameter};
use crate::error::{Retry, SyncError};
use crate::plan::{Entry, Plan};
use crate::schedule::{Schedule, SyncBasis};
use crate::secret::{self, SecretData};
use crate::status::{self, SyncOutcome};

/// Field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "ssm-operator";

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub batcher: Batcher,
    pub default_region: String,
    pub recorder: Recorder,
    pub schedule: Schedule,
}

/// Failures of the Kubernetes API; retried with backoff by the controller.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// How the Secret was changed, for the Normal Event.
enum Written {
    Created(Vec<String>),
    Updated(Vec<String>),
}

pub async fn reconcile(
    obj: Arc<SsmParameter>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let object = ObjectRef::from_obj(&*obj);
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let plan = Plan::of(&obj, &ctx.default_region);
    let secret_name = plan
        .as_ref()
        .map_or_else(|_| obj.name_any(), |p| p.secret_name.clone());
    let existing = secrets.get_opt(&secret_name).await?;

    let basis = sync_basis(&obj, existing.as_ref());
    if let Some(wait) = ctx.schedule.wait_for(&object, &basis) {
        // Triggered by our own write or a no-op event: nothing is due.
        return Ok(wait.map_or_else(Action::await_change, Action::requeue));
    }

    let (outcome, written) = match &plan {
        Ok(plan) => sync(&obj, plan, existing.as_ref(), &secrets, &ctx.batcher).await?,
        Err(error) => (failure(error.clone(), false), None),
    };
    let new_status = status::next(
        obj.status.as_ref(),
        obj.metadata.generation,
        &secret_name,
        &outcome,
        &Time(k8s_openapi::jiff::Timestamp::now()),
    );
    if obj.status.as_ref() != Some(&new_status) {
        write_status(&obj, &new_status, &ctx.client).await?;
    }
    publish_events(
        &obj,
        &ctx.recorder,
        written,
        status::new_failure(obj.status.as_ref(), &new_status),
        &new_status,
    )
    .await;

    let refresh = plan.as_ref().ok().and_then(|p| p.refresh);
    Ok(match &outcome {
        SyncOutcome::Synced { .. } => {
            let secret_version = secrets
                .get_metadata_opt(&secret_name)
                .await?
                .and_then(|m| m.metadata.resource_version);
            let basis = SyncBasis {
                secret_version,
                ..basis
            };
            ctx.schedule
                .synced(object, basis, refresh)
                .map_or_else(Action::await_change, Action::requeue)
        }
        SyncOutcome::Failed { error, .. } => {
            next_attempt(error, refresh, ctx.schedule.failed(object))
        }
    })
}

/// Reads AWS and writes the Secret when its data or metadata differ.
async fn sync(
    obj: &SsmParameter,
    plan: &Plan,
    existing: Option<&Secret>,
    secrets: &Api<Secret>,
    batcher: &Batcher,
) -> Result<(SyncOutcome, Option<Written>), ReconcileError> {
    if existing.is_some_and(|s| !secret::is_ours(s, obj)) {
        let conflict = SyncError::SecretConflict {
            secret: plan.secret_name.clone(),
        };
        return Ok((failure(conflict, false), None));
    }
    let last_good =
        existing.is_some_and(|s| secret::holds_every_key(s, plan)) && obj.status.is_some();
    let (data, parameters) = match read(plan, batcher).await {
        Ok(read) => read,
        Err(error) => return Ok((failure(error, last_good), None)),
    };
    let desired = match secret::desired(obj, plan, &data) {
        Ok(desired) => desired,
        Err(error) => return Ok((failure(error, last_good), None)),
    };
    let mut written = None;
    if !existing.is_some_and(|s| secret::is_current(s, &desired)) {
        let changed = secret::changed_keys(existing, &desired);
        secrets
            .patch(
                &plan.secret_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&desired),
            )
            .await?;
        written = match existing {
            None => Some(Written::Created(changed)),
            Some(_) if !changed.is_empty() => Some(Written::Updated(changed)),
            Some(_) => None,
        };
    }
    Ok((SyncOutcome::Synced { parameters }, written))
}

fn failure(error: SyncError, last_good: bool) -> SyncOutcome {
    SyncOutcome::Failed { error, last_good }
}

/// Reads every parameter of `plan`; the first failure in spec order wins,
/// and missing parameters are reported together.
async fn read(
    plan: &Plan,
    batcher: &Batcher,
) -> Result<(SecretData, Vec<ParameterStatus>), SyncError> {
    let mut groups: BTreeMap<(crate::aws::Scope, bool), Vec<String>> = BTreeMap::new();
    for e in &plan.entries {
        groups
            .entry((e.scope.clone(), e.decrypt))
            .or_default()
            .push(e.request.clone());
    }
    let answers = join_all(
        groups
            .into_iter()
            .map(|((scope, decrypt), names)| async move {
                let fetched = batcher.read(scope.clone(), decrypt, names).await;
                ((scope, decrypt), fetched)
            }),
    )
    .await;
    let answers: HashMap<_, _> = answers.into_iter().collect();

    let mut data = SecretData::new();
    let mut parameters = Vec::new();
    let mut missing = Vec::new();
    let mut first_error = None;
    for entry in &plan.entries {
        let fetch = answers
            .get(&(entry.scope.clone(), entry.decrypt))
            .and_then(|a| a.get(&entry.request));
        match fetch {
            Some(Fetch::Found(p)) => {
                data.insert(entry.key.clone(), p.value.clone());
                parameters.push(parameter_status(entry, p));
            }
            Some(Fetch::SelectorMissing) => {
                first_error.get_or_insert(SyncError::ParameterVersionNotFound {
                    parameter: entry.name.clone(),
                    selector: selector_text(entry),
                });
            }
            Some(Fetch::Failed(e)) => {
                first_error.get_or_insert(e.clone());
            }
            Some(Fetch::Missing) | None => missing.push(entry.name.clone()),
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    if !missing.is_empty() {
        return Err(SyncError::ParameterNotFound {
            parameters: missing,
        });
    }
    Ok((data, parameters))
}

fn selector_text(entry: &Entry) -> String {
    match crate::batch::split_selector(&entry.request).1 {
        Some(s) if s.chars().all(|c| c.is_ascii_digit()) => format!("version {s}"),
        Some(s) => format!("label {s}"),
        None => "such version".to_owned(),
    }
}

fn parameter_status(entry: &Entry, p: &crate::aws::FetchedParameter) -> ParameterStatus {
    ParameterStatus {
        name: entry.name.clone(),
        key: entry.key.clone(),
        version: p.version,
        type_: p.type_.clone(),
        key_id: None,
        last_modified: p.last_modified.clone(),
    }
}

/// What decides whether a reconcile must read AWS.
fn sync_basis(obj: &SsmParameter, existing: Option<&Secret>) -> SyncBasis {
    SyncBasis {
        generation: obj.metadata.generation,
        force_sync: obj.annotations().get(FORCE_SYNC_ANNOTATION).cloned(),
        secret_version: existing.and_then(|s| s.metadata.resource_version.clone()),
    }
}

fn next_attempt(error: &SyncError, refresh: Option<Duration>, backoff: Duration) -> Action {
    match (error.retry(), refresh) {
        (Retry::Soon, _) => Action::requeue(backoff),
        (Retry::AtRefresh, Some(refresh)) => Action::requeue(crate::schedule::jitter(refresh)),
        (Retry::AtRefresh, None) | (Retry::OnSpecChange, _) => Action::await_change(),
    }
}

async fn write_status(
    obj: &SsmParameter,
    status: &crate::crd::SsmParameterStatus,
    client: &kube::Client,
) -> Result<(), ReconcileError> {
    let api: Api<SsmParameter> =
        Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": SsmParameter::api_version(&()),
        "kind": SsmParameter::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

async fn publish_events(
    obj: &SsmParameter,
    recorder: &Recorder,
    written: Option<Written>,
    new_failure: Option<String>,
    status: &crate::crd::SsmParameterStatus,
) {
    let versions = |keys: &[String]| {
        keys.iter()
            .map(|k| match status.parameters.iter().find(|p| &p.key == k) {
                Some(p) => format!("{k} (version {})", p.version),
                None => format!("{k} (removed)"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut events = Vec::new();
    if let Some(written) = written {
        let (reason, verb, keys) = match &written {
            Written::Created(keys) => ("Created", "created with", keys),
            Written::Updated(keys) => ("Updated", "updated", keys),
        };
        let secret = status.secret_name.clone().unwrap_or_default();
        events.push(Event {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            note: Some(format!("Secret {secret} {verb} {}", versions(keys))),
            action: "WriteSecret".to_owned(),
            secondary: None,
        });
    }
    if let Some(reason) = new_failure {
        let message = status::find(Some(status), status::SYNCED).map(|c| c.message.clone());
        events.push(Event {
            type_: EventType::Warning,
            reason,
            note: message,
            action: "Sync".to_owned(),
            secondary: None,
        });
    }
    let reference = obj.object_ref(&());
    for event in events {
        if let Err(error) = recorder.publish(&event, &reference).await {
            tracing::warn!(%error, reason = %event.reason, "could not publish an Event");
        }
    }
}
