//! Telling what a sync did: the status (when it changed), rollouts of the
//! workloads that read a changed Secret, Events, the log line and metrics.

pub mod events;
pub mod rollout;

use kube::ResourceExt;
use kube::runtime::events::Recorder;

use crate::api::{SsmParameter, WorkloadRef};
use crate::reconcile::apply::Written;
use crate::reconcile::status::{self, SyncOutcome};
use crate::telemetry::metrics::{Metrics, Outcome};
use events::Announcement;

/// What one sync came to.
pub struct Synced {
    pub outcome: SyncOutcome,
    pub written: Option<Written>,
}

/// What there is to tell of one sync of `obj`.
pub struct Told<'a> {
    pub obj: &'a SsmParameter,
    pub secret_name: &'a str,
    pub rollout_restart: &'a [WorkloadRef],
    pub synced: &'a Synced,
}

/// Writes the status when it changed, restarts the workloads of a changed
/// Secret, and publishes the Events of what happened.
pub async fn report(
    client: &kube::Client,
    recorder: &Recorder,
    told: &Told<'_>,
) -> Result<(), kube::Error> {
    let Told {
        obj,
        secret_name,
        rollout_restart,
        synced,
    } = *told;
    let old = obj.status.as_ref();
    let now = status::now();
    let new = status::next(
        old,
        obj.metadata.generation,
        secret_name,
        &synced.outcome,
        &now,
    );
    if old != Some(&new) {
        status::write(obj, &new, client).await?;
    }
    let restarts = match &synced.written {
        Some(w) if w.changed_data() => {
            let namespace = obj.namespace().unwrap_or_default();
            let at = now.0.to_string();
            rollout::restart(client, &namespace, rollout_restart, &at).await
        }
        _ => Vec::new(),
    };
    let announcement = Announcement {
        written: synced.written.as_ref(),
        new_failure: status::new_failure(old, &new),
        restart_failures: &restarts,
    };
    events::publish(obj, recorder, &new, announcement).await;
    Ok(())
}

/// Counts the reconcile, its outcome and its write, then logs the line that
/// says it is done.
pub fn record(metrics: &Metrics, object: &str, synced: &Synced, started: tokio::time::Instant) {
    let now = tokio::time::Instant::now();
    match &synced.outcome {
        SyncOutcome::Synced { .. } => {
            metrics.reconciled(Outcome::Synced, status::SYNCED_REASON, now - started);
            metrics.synced(object, now);
        }
        SyncOutcome::Failed { error, .. } => {
            metrics.reconciled(Outcome::Failed, error.reason().as_str(), now - started);
        }
    }
    if let Some(written) = &synced.written {
        metrics.secret_written(written.action());
    }
    log_outcome(&synced.outcome);
}

/// The reconcile's span names the object; the line says how it went.
fn log_outcome(outcome: &SyncOutcome) {
    match outcome {
        SyncOutcome::Synced { parameters } => {
            tracing::info!(reason = "Synced", parameters = parameters.len(), "synced");
        }
        SyncOutcome::Failed { error, .. } => {
            tracing::warn!(reason = %error.reason(), detail = %error.message(), "sync failed");
        }
    }
}
