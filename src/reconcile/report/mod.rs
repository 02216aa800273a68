//! Telling what a sync did: the status (when it changed), rollouts of the
//! workloads that read a changed Secret, Events, the log line and metrics.

pub mod events;
pub mod rollout;

use kube::ResourceExt;

use crate::api::{SsmParameter, SsmParameterStatus, WorkloadRef};
use crate::failpoint;
use crate::reconcile::apply::Written;
use crate::reconcile::status::{self, SyncOutcome};
use crate::telemetry::metrics::{Metrics, Outcome};
use events::{Announcement, Recorder};

/// What one sync came to.
pub struct Synced {
    pub outcome: SyncOutcome,
    pub written: Option<Written>,
    /// Of the data the Secret holds after a successful sync.
    pub fingerprint: Option<String>,
    /// The Secret's `resourceVersion` after a successful sync.
    pub secret_version: Option<String>,
}

/// What there is to tell of one sync of `obj`.
pub struct Told<'a> {
    pub obj: &'a SsmParameter,
    pub secret_name: &'a str,
    pub rollout_restart: &'a [WorkloadRef],
    pub synced: &'a Synced,
}

/// Restarts the workloads of changed data and announces the change, writes
/// the status when it changed, then publishes the other Events. In this
/// order, a crash or a failed write at any point leaves a status that still
/// says the data is unannounced, and the next reconcile finishes the
/// restarts and the announcement, doing neither twice (see [`rollout`] and
/// [`events::announce_update`]).
pub async fn report(
    client: &kube::Client,
    recorder: &Recorder,
    told: &Told<'_>,
) -> Result<Reported, kube::Error> {
    let Told {
        obj,
        secret_name,
        rollout_restart,
        synced,
    } = *told;
    let old = obj.status.as_ref();
    let now = status::now();
    let mut new = status::next(
        old,
        obj.metadata.generation,
        secret_name,
        &synced.outcome,
        &now,
    );
    let changed = data_changed(old, synced);
    let restarts = match (changed, synced.fingerprint.as_deref()) {
        (true, Some(fingerprint)) => {
            let namespace = obj.namespace().unwrap_or_default();
            let key = rollout::annotation(&obj.name_any());
            let at = now.0.to_string();
            rollout::restart(client, &namespace, rollout_restart, &key, fingerprint, &at).await
        }
        _ => Vec::new(),
    };
    // A workload that does not exist has nothing to restart: told, not retried.
    let pending = restarts.iter().any(|(_, e)| !is_not_found(e));
    if !pending && synced.fingerprint.is_some() {
        new.data_fingerprint.clone_from(&synced.fingerprint);
    }
    if let SyncOutcome::Synced { .. } = synced.outcome {
        new.secret_resource_version
            .clone_from(&synced.secret_version);
    }
    if let (true, false, Some(fingerprint)) = (changed, pending, synced.fingerprint.as_deref()) {
        let keys = updated_keys(old, &new, synced.written.as_ref());
        events::announce_update(client, obj, &new, &keys, fingerprint).await;
    }
    let status_written = match old != Some(&new) {
        true => {
            status::write(obj, &new, client).await?;
            failpoint::hit(failpoint::AFTER_STATUS_WRITE);
            Some(new.clone())
        }
        false => None,
    };
    let announcement = Announcement {
        written: synced.written.as_ref(),
        new_failure: status::new_failure(old, &new),
        restart_failures: &restarts,
    };
    events::publish(obj, recorder, &new, announcement).await;
    Ok(Reported {
        restarts_pending: pending,
        status_written,
    })
}

/// What a report did and leaves to do.
pub struct Reported {
    /// Workloads still to restart: the next reconcile must come soon.
    pub restarts_pending: bool,
    /// The status it wrote, if it wrote one.
    pub status_written: Option<SsmParameterStatus>,
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(e) if e.code == 404)
}

/// Whether the Secret's data changed since it was last announced: by this
/// sync, or by an earlier one whose announcement did not finish.
fn data_changed(old: Option<&SsmParameterStatus>, synced: &Synced) -> bool {
    let written = synced.written.as_ref().is_some_and(Written::changed_data);
    let announced = old.and_then(|s| s.data_fingerprint.as_deref());
    written
        || (announced.is_some()
            && synced.fingerprint.is_some()
            && announced != synced.fingerprint.as_deref())
}

/// The keys of an update: as written now, or else those whose parameter
/// version differs from what the old status recorded.
fn updated_keys(
    old: Option<&SsmParameterStatus>,
    new: &SsmParameterStatus,
    written: Option<&Written>,
) -> Vec<String> {
    if let Some(Written::Updated(keys) | Written::Replaced(keys)) = written {
        return keys.clone();
    }
    let before = old.map(|s| s.parameters.as_slice()).unwrap_or_default();
    let mut keys: Vec<String> = new
        .parameters
        .iter()
        .filter(|p| !before.contains(p))
        .map(|p| p.key.clone())
        .chain(
            before
                .iter()
                .filter(|p| !new.parameters.iter().any(|n| n.key == p.key))
                .map(|p| p.key.clone()),
        )
        .collect();
    keys.sort();
    keys.dedup();
    keys
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
