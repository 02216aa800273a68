//! Events: `Normal` when the Secret's data is written, `Warning` when a sync
//! starts failing or fails for another reason — never once per retry.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use crate::names::REPORTER;

use crate::api::{SsmParameter, SsmParameterStatus, WorkloadRef};
use crate::reconcile::apply::Written;
use crate::reconcile::status;

/// What a reconcile has to announce after the status (`Updated` comes
/// before it: see [`announce_update`]).
pub struct Announcement<'a> {
    pub written: Option<&'a Written>,
    /// The reason of a new failure.
    pub new_failure: Option<String>,
    /// Workloads that could not be restarted.
    pub restart_failures: &'a [(WorkloadRef, kube::Error)],
}

/// Publishes Events as kube's `Recorder` does, but without its cache: the
/// operator tells each change once, never once per retry, so the cache's
/// series would hold nothing but memory — every object's last Event for six
/// minutes (10,000 Events after a cold start), scanned whole at each
/// publish.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
}

impl Recorder {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// Creates `event` about `regarding`.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let type_ = match event.type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let name = regarding.name.clone().unwrap_or_default();
        // As kube's Recorder names them: the object's name, a random part.
        let meta = ObjectMeta {
            name: Some(format!(
                "{}.{:016x}",
                name.chars().take(200).collect::<String>(),
                rand::random::<u64>()
            )),
            ..ObjectMeta::default()
        };
        let what = What {
            type_,
            reason: &event.reason,
            action: &event.action,
            note: event.note.clone().unwrap_or_default(),
        };
        let namespace = regarding.namespace.clone().unwrap_or_default();
        let k8s_event = k8s_event(meta, regarding.clone(), what);
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        events.create(&PostParams::default(), &k8s_event).await?;
        Ok(())
    }
}

/// What an Event says.
struct What<'a> {
    type_: &'a str,
    reason: &'a str,
    action: &'a str,
    note: String,
}

/// An events.k8s.io/v1 Event of this operator about `regarding`.
fn k8s_event(mut metadata: ObjectMeta, regarding: ObjectReference, what: What<'_>) -> K8sEvent {
    metadata.namespace.clone_from(&regarding.namespace);
    K8sEvent {
        metadata,
        event_time: Some(MicroTime(status::now().0)),
        type_: Some(what.type_.to_owned()),
        reason: Some(what.reason.to_owned()),
        action: Some(what.action.to_owned()),
        note: Some(crate::api::truncate(what.note, 1024)),
        regarding: Some(regarding),
        reporting_controller: Some(REPORTER.to_owned()),
        reporting_instance: Some(REPORTER.to_owned()),
        ..Default::default()
    }
}

pub async fn publish(
    obj: &SsmParameter,
    recorder: &Recorder,
    status: &SsmParameterStatus,
    what: Announcement<'_>,
) {
    let mut events = Vec::new();
    let secret = status.secret_name.clone().unwrap_or_default();
    let write = match what.written {
        Some(Written::Created(keys)) => Some((
            "Created",
            format!("Secret {secret} created with {}", versions(status, keys)),
        )),
        Some(Written::Replaced(keys)) => Some((
            "Replaced",
            format!(
                "immutable Secret {secret} replaced: {}",
                versions(status, keys)
            ),
        )),
        Some(Written::Removed) => Some((
            "Deleted",
            format!(
                "Secret {secret} (or this SsmParameter's keys in it) removed: its parameters are gone from AWS"
            ),
        )),
        Some(Written::Updated(_)) | None => None,
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

/// `Normal Updated` for the data of `fingerprint`, once however often it is
/// tried: the Event's name is made of the fingerprint, so that a reconcile
/// finishing what a crashed one began finds it there (409) and is done.
pub async fn announce_update(
    client: &kube::Client,
    obj: &SsmParameter,
    status: &SsmParameterStatus,
    keys: &[String],
    fingerprint: &str,
) {
    let secret = status.secret_name.clone().unwrap_or_default();
    let name = format!(
        "{}.updated.{}",
        obj.name_any().chars().take(200).collect::<String>(),
        fingerprint.chars().take(16).collect::<String>()
    );
    let meta = ObjectMeta {
        name: Some(name),
        ..ObjectMeta::default()
    };
    let what = What {
        type_: "Normal",
        reason: "Updated",
        action: "WriteSecret",
        note: format!("Secret {secret} updated: {}", versions(status, keys)),
    };
    let event = k8s_event(meta, obj.object_ref(&()), what);
    let events: Api<K8sEvent> =
        Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    match events.create(&PostParams::default(), &event).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(error) => tracing::warn!(%error, reason = "Updated", "could not publish an Event"),
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
