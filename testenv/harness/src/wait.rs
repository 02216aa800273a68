//! Waiting for what the operator does, always with a deadline: [`eventually`]
//! polls any check, [`until`] watches one object (kube-runtime's
//! `await_condition`), and the waits of the tests are built on those two.

use std::future::Future;
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, WatchEvent, WatchParams};
use kube::runtime::wait::await_condition;
use kube::{Client, Resource, ResourceExt as _};
use serde::de::DeserializeOwned;
use ssm_operator::api::{SsmParameter, SsmParameterStatus};
use tokio::time::Instant;

use crate::cluster;

/// How long anything the operator should do "within seconds" may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// How long [`eventually`] waits between two checks.
const POLL: Duration = Duration::from_millis(200);

/// How long the garbage collector may take to delete a dependent: it learns
/// of a new CRD by rediscovery, every 30 s.
pub const COLLECTION: Duration = Duration::from_secs(90);

/// Polls `check` until it yields a value or `deadline` passes.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > until {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The deadline of [`until`] passed.
#[derive(Debug)]
pub struct TimedOut;

/// Watches object `name` until `holds` is true of it (`None`: it does not
/// exist), within `deadline`; returns it as `holds` saw it. A watch sees
/// every version of the object, so a state that lasts only a moment is not
/// missed. A failed watch is started again, within the same deadline.
pub async fn until<K>(
    api: &Api<K>,
    name: &str,
    deadline: Duration,
    holds: impl Fn(Option<&K>) -> bool,
) -> Result<Option<K>, TimedOut>
where
    K: Clone + std::fmt::Debug + Send + DeserializeOwned + Resource + 'static,
{
    let until = Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, await_condition(api.clone(), name, &holds)).await {
            Ok(Ok(object)) => return Ok(object),
            Ok(Err(error)) => eprintln!("watching {name} failed ({error}); watching again"),
            Err(_) => return Err(TimedOut),
        }
        if Instant::now() + POLL > until {
            return Err(TimedOut);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The message of the `Synced` condition of `status` (panics without one).
pub fn synced_message(status: &SsmParameterStatus) -> &str {
    &status
        .conditions
        .iter()
        .find(|c| c.type_ == "Synced")
        .expect("a Synced condition")
        .message
}

/// Whether condition `type_` of `status` has `value` and `reason`.
pub fn has_condition(
    status: Option<&SsmParameterStatus>,
    type_: &str,
    value: &str,
    reason: &str,
) -> bool {
    status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .is_some_and(|c| c.status == value && c.reason == reason)
}

/// Waits until condition `type_` of SsmParameter `ns/name` has `value` and
/// `reason`; on timeout, says what the conditions were.
pub async fn condition(
    kube: &Client,
    ns: &str,
    name: &str,
    type_: &str,
    value: &str,
    reason: &str,
) -> SsmParameterStatus {
    let api: Api<SsmParameter> = Api::namespaced(kube.clone(), ns);
    let seen = until(&api, name, DEADLINE, |obj| {
        has_condition(obj.and_then(|o| o.status.as_ref()), type_, value, reason)
    })
    .await;
    match seen {
        Ok(obj) => obj.and_then(|o| o.status).unwrap_or_default(),
        Err(TimedOut) => {
            let current = cluster::status(kube, ns, name).await;
            panic!(
                "timed out after {DEADLINE:?} waiting for {ns}/{name}: {type_}={value} ({reason}); status: {current:#?}"
            )
        }
    }
}

/// Waits until the status of SsmParameter `ns/name` satisfies `check`;
/// `what` names the awaited state in the timeout's message.
pub async fn status(
    kube: &Client,
    ns: &str,
    name: &str,
    what: &str,
    check: impl Fn(&SsmParameterStatus) -> bool,
) -> SsmParameterStatus {
    let api: Api<SsmParameter> = Api::namespaced(kube.clone(), ns);
    let seen = until(&api, name, DEADLINE, |obj| {
        obj.and_then(|o| o.status.as_ref()).is_some_and(&check)
    })
    .await;
    match seen {
        Ok(obj) => obj.and_then(|o| o.status).unwrap_or_default(),
        Err(TimedOut) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// Like [`condition`], but from the object's `resource_version` on: sees
/// every version of the status written since, so that a state which lasts
/// only a moment (until a retry a backoff step later) and may be over before
/// a fresh watch lists the object is not missed. ([`until`] starts from the
/// object as it is now; this resumes a raw watch from a known version.)
pub async fn condition_since(
    kube: &Client,
    ns: &str,
    name: &str,
    resource_version: &str,
    type_: &str,
    value: &str,
    reason: &str,
) -> SsmParameterStatus {
    let api: Api<SsmParameter> = Api::namespaced(kube.clone(), ns);
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(DEADLINE.as_secs() as u32);
    let seen = async {
        let mut from = resource_version.to_owned();
        // A watch ends at its timeout (or the server's); resume where it stopped.
        loop {
            let mut events = api
                .watch(&params, &from)
                .await
                .expect("watch the SsmParameter")
                .boxed();
            while let Some(event) = events.try_next().await.expect("watch event") {
                match event {
                    WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                        if has_condition(obj.status.as_ref(), type_, value, reason) {
                            return obj.status.unwrap_or_default();
                        }
                        from = obj.resource_version().unwrap_or(from);
                    }
                    WatchEvent::Bookmark(b) => from = b.metadata.resource_version,
                    WatchEvent::Deleted(_) => panic!("{name} was deleted"),
                    WatchEvent::Error(e) => panic!("watching {name}: {e:?}"),
                }
            }
        }
    };
    match tokio::time::timeout(DEADLINE, seen).await {
        Ok(status) => status,
        Err(_) => panic!(
            "timed out after {DEADLINE:?} watching {ns}/{name} for {type_}={value} ({reason}); status: {:#?}",
            cluster::status(kube, ns, name).await
        ),
    }
}

/// Waits until the garbage collector has deleted Secret `ns/name`
/// (within [`COLLECTION`]).
pub async fn secret_collected(kube: &Client, ns: &str, name: &str) {
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), ns);
    if until(&secrets, name, COLLECTION, |secret| secret.is_none())
        .await
        .is_err()
    {
        panic!("timed out after {COLLECTION:?} waiting for garbage collection of Secret {name}");
    }
}

/// Waits for an Event with `reason` about the object `regarding` in `ns`;
/// returns the first such Event.
pub async fn event(kube: &Client, ns: &str, regarding: &str, reason: &str) -> Event {
    let what = format!("an Event {reason} about {regarding}");
    eventually(&what, DEADLINE, || async {
        cluster::events(kube, ns, regarding)
            .await
            .into_iter()
            .find(|e| e.reason.as_deref() == Some(reason))
    })
    .await
}
