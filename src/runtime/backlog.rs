//! New objects before the backlog: the objects of a (re)list reach the
//! controller's queue only as their reconciles finish.
//!
//! At start-up (and after a watch gap) every SsmParameter arrives at once,
//! and the controller's queue serves them in turn: an object applied then
//! would wait behind thousands. Here the listed objects wait in a queue of
//! their own and go to the controller at most `concurrency` at a time, the
//! next when one of them has been reconciled; objects created since the
//! process started go first, and live events (objects created or changed
//! meanwhile) go at once, behind a few.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::api::{SsmParameter, SsmParameterSpec};
use crate::names::FORCE_SYNC_ANNOTATION;

type Item = Result<Event<SsmParameter>, watcher::Error>;

/// A released object not reconciled after this long no longer holds its
/// place (its reconcile may have been skipped: the object was deleted).
const RELEASED_AT_MOST: Duration = Duration::from_secs(30);

/// The listed objects handed to the controller and not reconciled yet.
pub struct Backlog {
    concurrency: usize,
    released: Mutex<HashMap<ObjectRef<SsmParameter>, Instant>>,
    room: Notify,
}

impl Backlog {
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency: concurrency.max(1),
            released: Mutex::default(),
            room: Notify::new(),
        }
    }

    /// A reconcile of `object` finished (or it was deleted).
    pub fn done(&self, object: &ObjectRef<SsmParameter>) {
        let removed = self
            .released
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(object);
        if removed.is_some() {
            self.room.notify_one();
        }
    }

    /// Takes a place for `object` if there is one.
    fn release(&self, object: ObjectRef<SsmParameter>) -> bool {
        let mut released = self.released.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        released.retain(|_, at| now.duration_since(*at) < RELEASED_AT_MOST);
        if released.len() >= self.concurrency {
            return false;
        }
        released.insert(object, now);
        true
    }
}

/// A held object, as little of it as the controller reads: which object it
/// is, and what its trigger filter hashes (generation, deletion, the
/// force-sync annotation). The controller reconciles the object its cache
/// holds, not this one; holding whole objects here would keep a second
/// copy of every listed SsmParameter during a cold start.
struct Trigger {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    deletion_timestamp: Option<Time>,
    force_sync: Option<String>,
}

impl Trigger {
    fn of(obj: SsmParameter) -> Self {
        let meta = obj.metadata;
        Self {
            force_sync: meta
                .annotations
                .and_then(|mut a| a.remove(FORCE_SYNC_ANNOTATION)),
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resource_version: meta.resource_version,
            generation: meta.generation,
            deletion_timestamp: meta.deletion_timestamp,
        }
    }

    fn object_ref(&self) -> ObjectRef<SsmParameter> {
        let name = self.name.as_deref().unwrap_or_default();
        match &self.namespace {
            Some(namespace) => ObjectRef::new(name).within(namespace),
            None => ObjectRef::new(name),
        }
    }

    /// The object the controller is triggered with: no spec, no status.
    fn object(self) -> SsmParameter {
        let annotations = self
            .force_sync
            .map(|v| std::iter::once((FORCE_SYNC_ANNOTATION.to_owned(), v)).collect());
        SsmParameter {
            metadata: ObjectMeta {
                name: self.name,
                namespace: self.namespace,
                uid: self.uid,
                resource_version: self.resource_version,
                generation: self.generation,
                deletion_timestamp: self.deletion_timestamp,
                annotations,
                ..ObjectMeta::default()
            },
            spec: SsmParameterSpec::default(),
            status: None,
        }
    }
}

/// The held objects: those created since the process started, then the rest.
#[derive(Default)]
struct Held {
    fresh: VecDeque<Trigger>,
    backlog: VecDeque<Trigger>,
}

impl Held {
    fn next(&self) -> Option<&Trigger> {
        self.fresh.front().or_else(|| self.backlog.front())
    }

    fn pop(&mut self) -> Option<Trigger> {
        self.fresh.pop_front().or_else(|| self.backlog.pop_front())
    }

    fn is_empty(&self) -> bool {
        self.fresh.is_empty() && self.backlog.is_empty()
    }
}

/// `events` with their listed objects held back in `backlog`. Listed
/// objects go on as `Apply` events.
pub fn trickle<S>(events: S, backlog: std::sync::Arc<Backlog>) -> impl Stream<Item = Item>
where
    S: Stream<Item = Item> + Send + 'static,
{
    // Creation times have whole seconds.
    let started = Timestamp::now() - Duration::from_secs(1);
    let (out, stream) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        let mut held = Held::default();
        loop {
            if let Some(next) = held.next()
                && backlog.release(next.object_ref())
                && let Some(next) = held.pop()
            {
                if out.send(Ok(Event::Apply(next.object()))).is_err() {
                    return;
                }
                continue;
            }
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(Event::InitApply(obj))) => {
                        let created = obj.metadata.creation_timestamp.as_ref().map(|t| t.0);
                        match created.is_some_and(|c| c >= started) {
                            true => held.fresh.push_back(Trigger::of(obj)),
                            false => held.backlog.push_back(Trigger::of(obj)),
                        }
                    }
                    Some(Ok(Event::Delete(obj))) => {
                        backlog.done(&ObjectRef::from_obj(&obj));
                        if out.send(Ok(Event::Delete(obj))).is_err() {
                            return;
                        }
                    }
                    Some(other) => {
                        if out.send(other).is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                () = backlog.room.notified(), if !held.is_empty() => {}
                // A place held too long frees itself: look again then.
                () = tokio::time::sleep(RELEASED_AT_MOST), if !held.is_empty() => {}
                // The controller stopped: so does the watch.
                () = out.closed() => return,
            }
        }
    });
    futures::stream::unfold(stream, |mut stream| async move {
        let item = stream.recv().await?;
        Some((item, stream))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ssm_parameter;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;
    use std::sync::Arc;

    fn object(name: &str, created: Timestamp) -> SsmParameter {
        let mut obj = ssm_parameter(name, json!({"parameters": [{"name": "p"}]}));
        obj.metadata.creation_timestamp = Some(Time(created));
        obj
    }

    fn name(item: &Item) -> String {
        match item {
            Ok(Event::Apply(obj)) => obj.metadata.name.clone().unwrap_or_default(),
            Ok(Event::InitDone) => "InitDone".to_owned(),
            Ok(Event::Init) => "Init".to_owned(),
            _ => "other".to_owned(),
        }
    }

    fn done(backlog: &Backlog, name: &str) {
        backlog.done(&ObjectRef::new(name).within("payments"));
    }

    #[tokio::test]
    async fn listed_objects_go_as_reconciles_finish_and_newer_ones_go_first() {
        let old = Timestamp::now() - Duration::from_secs(3600);
        let (input, events) = mpsc::unbounded_channel();
        input.send(Ok(Event::Init)).unwrap();
        for i in 0..6 {
            input
                .send(Ok(Event::InitApply(object(&format!("o{i}"), old))))
                .unwrap();
        }
        let created_now = object("created-now", Timestamp::now());
        input.send(Ok(Event::InitApply(created_now))).unwrap();
        input.send(Ok(Event::InitDone)).unwrap();
        let events = futures::stream::unfold(events, |mut events| async move {
            let item = events.recv().await?;
            Some((item, events))
        });
        let backlog = Arc::new(Backlog::new(3));
        let mut out = std::pin::pin!(trickle(events, backlog.clone()));
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(name(&out.next().await.unwrap()));
        }
        assert_eq!(seen, ["Init", "o0", "o1", "o2", "InitDone"]);
        let live = object("live", Timestamp::now());
        input.send(Ok(Event::Apply(live))).unwrap();
        assert_eq!(
            name(&out.next().await.unwrap()),
            "live",
            "before the backlog"
        );
        // Another object's reconcile makes no room; a released one's does.
        done(&backlog, "live");
        let nothing = tokio::time::timeout(Duration::from_millis(50), out.next());
        assert!(
            nothing.await.is_err(),
            "no room until o0..o2 are reconciled"
        );
        done(&backlog, "o1");
        assert_eq!(
            name(&out.next().await.unwrap()),
            "created-now",
            "newer first"
        );
        done(&backlog, "o0");
        done(&backlog, "o2");
        assert_eq!(name(&out.next().await.unwrap()), "o3");
        assert_eq!(name(&out.next().await.unwrap()), "o4");
    }
}
