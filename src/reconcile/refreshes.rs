//! When each SsmParameter refreshes next, as a timer of the operator's own.
//!
//! kube's controller can requeue an object after a delay, but its scheduler
//! keeps two copies of the object's `ObjectRef` (four strings each) in a
//! map and a delay queue: with 10,000 objects each waiting for its refresh,
//! about 5 MB. Here each object waits as one compact key in a time-ordered
//! map; the controller is triggered with the object when its time comes.
//! A reconcile that books a refresh returns `await_change`, so the object
//! is never scheduled twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use futures::Stream;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::api::SsmParameter;
use crate::reconcile::key::ObjectKey;

/// The booked refreshes, one lane per watched scope: each scope's
/// controller takes only its own objects' refreshes.
#[derive(Default)]
pub struct Refreshes {
    /// Whether the scopes are namespaces (else one scope, the cluster).
    by_namespace: bool,
    lanes: Mutex<HashMap<Option<String>, Booked>>,
    /// An earlier refresh was booked than the one a stream sleeps for.
    sooner: Notify,
}

#[derive(Default)]
struct Booked {
    by_time: BTreeSet<(Instant, ObjectKey)>,
    by_key: HashMap<ObjectKey, Instant>,
}

impl Refreshes {
    /// Refreshes for controllers of one namespace each (`true`) or of the
    /// whole cluster.
    pub fn new(by_namespace: bool) -> Self {
        Self {
            by_namespace,
            ..Self::default()
        }
    }

    fn lane_of(&self, object: &ObjectKey) -> Option<String> {
        self.by_namespace.then(|| object.parts().0.to_owned())
    }

    /// Books `object`'s next refresh `after` from now, in place of any
    /// booked before.
    pub fn book(&self, object: ObjectKey, after: Duration) {
        let at = Instant::now() + after;
        let lane = self.lane_of(&object);
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let booked = lanes.entry(lane).or_default();
        if let Some(before) = booked.by_key.insert(object.clone(), at) {
            booked.by_time.remove(&(before, object.clone()));
        }
        let first = booked.by_time.first().is_none_or(|(next, _)| at < *next);
        booked.by_time.insert((at, object));
        drop(lanes);
        if first {
            self.sooner.notify_waiters();
        }
    }

    /// Cancels `object`'s refresh (it was deleted, or waits for a change).
    pub fn cancel(&self, object: &ObjectKey) {
        let lane = self.lane_of(object);
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(booked) = lanes.get_mut(&lane)
            && let Some(at) = booked.by_key.remove(object)
        {
            booked.by_time.remove(&(at, object.clone()));
        }
    }

    /// How long until `object`'s booked refresh, if one is booked.
    pub fn booked_in(&self, object: &ObjectKey) -> Option<Duration> {
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let at = lanes.get(&self.lane_of(object))?.by_key.get(object)?;
        Some(at.saturating_duration_since(Instant::now()))
    }

    /// Takes the earliest refresh of `lane` due by now; else says when its
    /// next one is.
    fn take_due(&self, lane: &Option<String>) -> Result<ObjectKey, Option<Instant>> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(booked) = lanes.get_mut(lane) else {
            return Err(None);
        };
        match booked.by_time.first() {
            Some((at, _)) if *at <= Instant::now() => {
                let (_, object) = booked.by_time.pop_first().ok_or(None)?;
                booked.by_key.remove(&object);
                Ok(object)
            }
            Some((at, _)) => Err(Some(*at)),
            None => Err(None),
        }
    }

    /// The objects of scope `namespace` (`None`: the cluster) whose refresh
    /// comes due, as it does, for the controller to reconcile. Each refresh
    /// is taken once: a new term of leadership takes what the last left.
    pub fn due(
        self: std::sync::Arc<Self>,
        namespace: Option<String>,
    ) -> impl Stream<Item = ObjectRef<SsmParameter>> + Send {
        let lane = namespace.filter(|_| self.by_namespace);
        futures::stream::unfold((self, lane), |(refreshes, lane)| async move {
            loop {
                let taken = {
                    let sooner = refreshes.sooner.notified();
                    tokio::pin!(sooner);
                    sooner.as_mut().enable();
                    match refreshes.take_due(&lane) {
                        Ok(object) => Some(object),
                        Err(Some(at)) => {
                            tokio::select! {
                                () = tokio::time::sleep_until(at) => {}
                                () = sooner => {}
                            }
                            None
                        }
                        Err(None) => {
                            sooner.await;
                            None
                        }
                    }
                };
                if let Some(object) = taken {
                    let (namespace, name) = object.parts();
                    let found = ObjectRef::new(name).within(namespace);
                    return Some((found, (refreshes, lane)));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;
    use std::sync::Arc;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("payments", name)
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_come_due_in_time_order_and_a_new_booking_replaces_the_old() {
        let refreshes = Arc::new(Refreshes::default());
        refreshes.book(key("late"), Duration::from_secs(30));
        refreshes.book(key("early"), Duration::from_secs(10));
        refreshes.book(key("moved"), Duration::from_secs(5));
        refreshes.book(key("moved"), Duration::from_secs(20));
        refreshes.book(key("gone"), Duration::from_secs(15));
        refreshes.cancel(&key("gone"));
        assert_eq!(refreshes.booked_in(&key("gone")), None);
        assert_eq!(
            refreshes.booked_in(&key("early")),
            Some(Duration::from_secs(10))
        );

        let started = Instant::now();
        let due: Vec<(String, u64)> = refreshes
            .clone()
            .due(None)
            .take(3)
            .map(|o| (o.name, started.elapsed().as_secs()))
            .collect()
            .await;
        assert_eq!(
            due,
            [
                ("early".into(), 10),
                ("moved".into(), 20),
                ("late".into(), 30)
            ]
        );
        assert_eq!(refreshes.booked_in(&key("late")), None, "taken once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_sooner_booking_wakes_a_stream_sleeping_for_a_later_one() {
        let refreshes = Arc::new(Refreshes::default());
        refreshes.book(key("hour"), Duration::from_secs(3600));
        let mut due = Box::pin(refreshes.clone().due(None));
        let started = Instant::now();
        let booker = refreshes.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            booker.book(key("soon"), Duration::from_secs(2));
        });
        let first = due.next().await.unwrap();
        assert_eq!(first.name, "soon");
        assert_eq!(first.namespace.as_deref(), Some("payments"));
        assert_eq!(started.elapsed().as_secs(), 3);
    }
}

#[cfg(test)]
mod lanes {
    use super::*;
    use futures::StreamExt as _;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn each_namespaces_controller_takes_only_its_own_refreshes() {
        let refreshes = Arc::new(Refreshes::new(true));
        refreshes.book(ObjectKey::new("billing", "a"), Duration::from_secs(1));
        refreshes.book(ObjectKey::new("payments", "b"), Duration::from_secs(2));
        let payments: Vec<String> = (refreshes.clone().due(Some("payments".into())))
            .take(1)
            .map(|o| o.name)
            .collect()
            .await;
        assert_eq!(payments, ["b"]);
        assert!(
            refreshes
                .booked_in(&ObjectKey::new("billing", "a"))
                .is_some(),
            "left for the billing controller"
        );
    }
}
