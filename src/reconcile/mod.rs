//! The reconcile pipeline of one SsmParameter:
//! plan → read AWS → build the Secret → apply → status, Events, rollouts.

pub mod apply;
pub mod build;
pub mod plan;
pub mod read;
pub mod report;
pub mod schedule;
pub mod status;
pub mod tenancy;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::api::{DeletionPolicy, SsmParameter, SsmParameterStatus};
use crate::api::{Reason, Retry, SyncError};
use crate::batch::budget::Priority;
use crate::batch::{Batcher, Reader};
use crate::names::{FIELD_MANAGER, FORCE_SYNC_ANNOTATION};
use crate::reconcile::apply::Written;
use crate::reconcile::build::secret;
use crate::reconcile::plan::Plan;
use crate::reconcile::read::{Depth, Known, Read};
use crate::reconcile::report::events::{self, Announcement};
use crate::reconcile::report::rollout;
use crate::reconcile::schedule::{Due, Schedule, SyncBasis};
use crate::reconcile::status::SyncOutcome;
use crate::reconcile::tenancy::Tenancy;
use crate::telemetry::metrics::{Metrics, Outcome};

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub batcher: Batcher,
    pub default_region: String,
    pub recorder: Recorder,
    pub schedule: Schedule,
    pub tenancy: Tenancy,
    pub metrics: Arc<Metrics>,
    /// Reconciles running now.
    pub in_flight: AtomicI64,
}

impl Context {
    /// Forgets a deleted SsmParameter.
    pub fn forget(&self, obj: &SsmParameter) {
        self.schedule.forget(&ObjectRef::from_obj(obj));
        self.metrics.forget(&object_key(obj));
    }
}

/// `namespace/name`, for the metrics' internal bookkeeping (never a label).
fn object_key(obj: &SsmParameter) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Counts a reconcile in flight while it lives.
struct InFlight<'a>(&'a Context);

impl<'a> InFlight<'a> {
    fn start(ctx: &'a Context) -> Self {
        let n = ctx.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        ctx.metrics.queue_depth(n);
        Self(ctx)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let n = self.0.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
        self.0.metrics.queue_depth(n);
    }
}

/// Failures of the Kubernetes API; retried with backoff by the controller.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// What one sync did.
struct Synced {
    outcome: SyncOutcome,
    written: Option<Written>,
    /// The Secret's `resourceVersion` as the sync left it.
    secret_version: Option<String>,
}

impl Synced {
    fn failed(error: SyncError, last_good: bool) -> Self {
        Self {
            outcome: failure(error, last_good),
            written: None,
            secret_version: None,
        }
    }
}

/// One reconcile, in a span that every log line of it carries (never values).
#[tracing::instrument(
    name = "reconcile",
    skip_all,
    fields(ssm_parameter = %object_key(&obj), generation = obj.metadata.generation)
)]
pub async fn reconcile(
    obj: Arc<SsmParameter>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let _in_flight = InFlight::start(&ctx);
    // From now on, batches of AWS reads wait for this one's.
    let reader = ctx.batcher.reader();
    let started = tokio::time::Instant::now();
    let object = ObjectRef::from_obj(&*obj);
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());

    let plan = plan(&obj, &ctx).await?;
    let secret_name = plan
        .as_ref()
        .map_or_else(|_| obj.name_any(), |p| p.secret_name.clone());
    let existing = secrets.get_opt(&secret_name).await?;
    let basis = sync_basis(&obj, existing.as_ref());
    let depth = match ctx.schedule.due(&object, &basis) {
        // Triggered by our own write or a no-op event: nothing is due.
        Due::Later(wait) => return Ok(wait.map_or_else(Action::await_change, Action::requeue)),
        Due::Refresh => Depth::Changed,
        Due::Full => Depth::Full,
    };
    let synced = match &plan {
        Ok(plan) => sync(&obj, plan, existing.as_ref(), &secrets, depth, reader).await?,
        Err(error) => {
            drop(reader);
            Synced::failed(error.clone(), false)
        }
    };
    report(&obj, &ctx, &plan, &secret_name, &synced).await?;
    log_outcome(&synced.outcome, depth);
    record(&ctx.metrics, &obj, &synced, started);

    let refresh = plan.as_ref().ok().and_then(|p| p.refresh);
    Ok(match &synced.outcome {
        SyncOutcome::Synced { .. } => {
            let basis = SyncBasis {
                secret_version: synced.secret_version,
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

/// The identity `obj` reads with, and what it asks for.
async fn plan(
    obj: &SsmParameter,
    ctx: &Context,
) -> Result<Result<Plan, SyncError>, ReconcileError> {
    Ok(
        match tenancy::resolve(obj, &ctx.tenancy, &ctx.client).await? {
            Ok(identity) => Plan::of(obj, &ctx.default_region, identity),
            Err(error) => Err(error),
        },
    )
}

/// Tells what happened: the status (when it changed), rollouts of workloads
/// whose Secret changed, Events.
async fn report(
    obj: &SsmParameter,
    ctx: &Context,
    plan: &Result<Plan, SyncError>,
    secret_name: &str,
    synced: &Synced,
) -> Result<(), ReconcileError> {
    let old = obj.status.as_ref();
    let new = status::next(
        old,
        obj.metadata.generation,
        secret_name,
        &synced.outcome,
        &now(),
    );
    if old != Some(&new) {
        write_status(obj, &new, &ctx.client).await?;
    }
    let restarts = match (plan, &synced.written) {
        (Ok(plan), Some(w)) if w.changed_data() => {
            let namespace = obj.namespace().unwrap_or_default();
            rollout::restart(
                &ctx.client,
                &namespace,
                &plan.rollout_restart,
                &now().0.to_string(),
            )
            .await
        }
        _ => Vec::new(),
    };
    let announcement = Announcement {
        written: synced.written.as_ref(),
        new_failure: status::new_failure(old, &new),
        restart_failures: &restarts,
    };
    events::publish(obj, &ctx.recorder, &new, announcement).await;
    Ok(())
}

/// Reads AWS and writes the Secret when its data or metadata differ.
async fn sync(
    obj: &SsmParameter,
    plan: &Plan,
    existing: Option<&Secret>,
    secrets: &Api<Secret>,
    depth: Depth,
    reader: Reader,
) -> Result<Synced, ReconcileError> {
    if existing.is_some_and(|s| !secret::is_ours(s, obj, plan)) {
        let secret = plan.secret_name.clone();
        return Ok(Synced::failed(SyncError::SecretConflict { secret }, false));
    }
    let recorded = obj
        .status
        .as_ref()
        .map(|s| s.parameters.as_slice())
        .unwrap_or_default();
    let explicit_keys = plan.entries.iter().map(|e| e.key.as_str());
    let recorded_keys = recorded.iter().map(|p| p.key.as_str());
    let last_good = !recorded.is_empty()
        && existing.is_some_and(|s| secret::holds_keys(s, recorded_keys.chain(explicit_keys)));
    let known = Known {
        versions: recorded
            .iter()
            .map(|p| (p.key.as_str(), p.version))
            .collect(),
        data: existing.and_then(|s| s.data.as_ref()),
    };
    let priority = match depth {
        Depth::Full => Priority::Interactive,
        Depth::Changed => Priority::Routine,
    };
    let (data, parameters) = match read::read(plan, reader, priority, depth, &known).await {
        Ok(Read::Unchanged(parameters)) => {
            return Ok(Synced {
                outcome: SyncOutcome::Synced { parameters },
                written: None,
                secret_version: existing.and_then(|s| s.metadata.resource_version.clone()),
            });
        }
        Ok(Read::Values(data, parameters)) => (data, parameters),
        Err(error)
            if error.reason() == Reason::ParameterNotFound
                && plan.deletion == DeletionPolicy::Delete =>
        {
            let written = apply::remove(secrets, plan, existing).await?;
            return Ok(Synced {
                outcome: failure(error, false),
                written,
                secret_version: None,
            });
        }
        Err(error) => return Ok(Synced::failed(error, last_good)),
    };
    let desired = match secret::desired(obj, plan, &data, existing) {
        Ok(desired) => desired,
        Err(error) => return Ok(Synced::failed(error, last_good)),
    };
    let spec_changed =
        obj.status.as_ref().and_then(|s| s.observed_generation) != obj.metadata.generation;
    let (written, secret_version) =
        apply::apply(secrets, plan, existing, &desired, spec_changed).await?;
    Ok(Synced {
        outcome: SyncOutcome::Synced { parameters },
        written,
        secret_version,
    })
}

fn failure(error: SyncError, last_good: bool) -> SyncOutcome {
    SyncOutcome::Failed { error, last_good }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
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
        (Retry::AtRefresh, Some(refresh)) => {
            Action::requeue(crate::reconcile::schedule::jitter(refresh))
        }
        (Retry::AtRefresh, None) | (Retry::OnSpecChange, _) => Action::await_change(),
    }
}

async fn write_status(
    obj: &SsmParameter,
    status: &SsmParameterStatus,
    client: &kube::Client,
) -> Result<(), ReconcileError> {
    let api: Api<SsmParameter> =
        Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": SsmParameter::api_version(&()),
        "kind": SsmParameter::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&obj.name_any(), &params, &Patch::Apply(&patch))
        .await?;
    Ok(())
}

fn record(metrics: &Metrics, obj: &SsmParameter, synced: &Synced, started: tokio::time::Instant) {
    let now = tokio::time::Instant::now();
    match &synced.outcome {
        SyncOutcome::Synced { .. } => {
            metrics.reconciled(Outcome::Synced, Reason::Synced.as_str(), now - started);
            metrics.synced(&object_key(obj), now);
        }
        SyncOutcome::Failed { error, .. } => {
            metrics.reconciled(Outcome::Failed, error.reason().as_str(), now - started);
        }
    }
    if let Some(written) = &synced.written {
        metrics.secret_written(written.action());
    }
}

/// The reconcile's span names the object; the line says how it went.
fn log_outcome(outcome: &SyncOutcome, depth: Depth) {
    match outcome {
        SyncOutcome::Synced { parameters } => {
            tracing::info!(
                reason = "Synced",
                ?depth,
                parameters = parameters.len(),
                "synced"
            );
        }
        SyncOutcome::Failed { error, .. } => {
            tracing::warn!(reason = %error.reason(), detail = %error.message(), ?depth, "sync failed");
        }
    }
}
