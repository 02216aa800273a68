//! Events: `Normal` when the Secret's data is written, `Warning` when a sync
//! starts failing or fails for another reason — never once per retry.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::api::{SsmParameter, SsmParameterStatus, WorkloadRef};
use crate::reconcile::apply::Written;
use crate::reconcile::status;

/// What a reconcile has to announce.
pub struct Announcement<'a> {
    pub written: Option<&'a Written>,
    /// The keys of a data change not announced before (`Updated`).
    pub updated: Option<Vec<String>>,
    /// The reason of a new failure.
    pub new_failure: Option<String>,
    /// Workloads that could not be restarted.
    pub restart_failures: &'a [(WorkloadRef, kube::Error)],
}

pub async fn publish(
    obj: &SsmParameter,
    recorder: &Recorder,
    status: &SsmParameterStatus,
    what: Announcement<'_>,
) {
    let mut events = Vec::new();
    let secret = status.secret_name.clone().unwrap_or_default();
    let write = match (what.written, &what.updated) {
        (Some(Written::Created(keys)), _) => Some((
            "Created",
            format!("Secret {secret} created with {}", versions(status, keys)),
        )),
        (Some(Written::Replaced(keys)), _) => Some((
            "Replaced",
            format!(
                "immutable Secret {secret} replaced: {}",
                versions(status, keys)
            ),
        )),
        (Some(Written::Removed), _) => Some((
            "Deleted",
            format!(
                "Secret {secret} (or this SsmParameter's keys in it) removed: its parameters are gone from AWS"
            ),
        )),
        (_, Some(keys)) => Some((
            "Updated",
            format!("Secret {secret} updated: {}", versions(status, keys)),
        )),
        (Some(Written::Updated(_)), None) | (None, None) => None,
    };
    if let Some((reason, note)) = write {
        events.push(event(EventType::Normal, reason, note, "WriteSecret"));
    }
    if let Some(reason) = what.new_failure {
        let message = status::find(Some(status), status::SYNCED).map(|c| c.message.clone());
        events.push(event(
            EventType::Warning,
            &reason,
            message.unwrap_or_default(),
            "Sync",
        ));
    }
    for (workload, error) in what.restart_failures {
        let note = format!(
            "could not restart {:?} {}: {}",
            workload.kind, workload.name, error
        );
        events.push(event(
            EventType::Warning,
            "RolloutRestartFailed",
            note,
            "RolloutRestart",
        ));
    }
    let reference = obj.object_ref(&());
    for event in events {
        if let Err(error) = recorder.publish(&event, &reference).await {
            tracing::warn!(%error, reason = %event.reason, "could not publish an Event");
        }
    }
}

fn event(type_: EventType, reason: &str, note: String, action: &str) -> Event {
    Event {
        type_,
        reason: reason.to_owned(),
        note: Some(crate::api::truncate(note, 1024)),
        action: action.to_owned(),
        secondary: None,
    }
}

/// `key (version N)` for each key — names and versions, never values.
fn versions(status: &SsmParameterStatus, keys: &[String]) -> String {
    keys.iter()
        .map(|k| match status.parameters.iter().find(|p| &p.key == k) {
            Some(p) => format!("{k} (version {})", p.version),
            None => k.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
