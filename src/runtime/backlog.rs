//! New objects before the backlog: the objects of a (re)list reach the
//! controller's queue only as fast as reconciles finish.
//!
//! At start-up (and after a watch gap) every SsmParameter arrives at once,
//! and the controller's queue serves them in turn: an object applied then
//! would wait behind thousands. Here the listed objects wait in a queue of
//! their own and go to the controller one per finished reconcile, never
//! more than `concurrency` ahead; objects created or changed meanwhile
//! (live events) go at once, behind a few.

use std::collections::VecDeque;

use futures::{Stream, StreamExt as _};
use kube::runtime::watcher::{self, Event};
use tokio::sync::{mpsc, watch};

use crate::api::SsmParameter;
use crate::names::FORCE_SYNC_ANNOTATION;

type Item = Result<Event<SsmParameter>, watcher::Error>;

/// `events` with their listed objects held back: at most `concurrency`
/// released and not yet reconciled, as `finished` (the count of finished
/// reconciles) tells. Listed objects go on as `Apply` events.
pub fn trickle<S>(
    events: S,
    mut finished: watch::Receiver<u64>,
    concurrency: usize,
) -> impl Stream<Item = Item>
where
    S: Stream<Item = Item> + Send + 'static,
{
    let (out, stream) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        let mut held: VecDeque<SsmParameter> = VecDeque::new();
        let base = *finished.borrow_and_update();
        let mut released: u64 = 0;
        loop {
            let done = finished.borrow().saturating_sub(base);
            let room = released.saturating_sub(done) < concurrency as u64;
            if room && let Some(obj) = held.pop_front() {
                released += 1;
                if out.send(Ok(Event::Apply(obj))).is_err() {
                    return;
                }
                continue;
            }
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(Event::InitApply(obj))) => held.push_back(trigger(obj)),
                    Some(other) => {
                        if out.send(other).is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                changed = finished.changed(), if !held.is_empty() => {
                    if changed.is_err() {
                        return;
                    }
                }
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

/// What of a held object the controller needs to trigger its reconcile
/// (which reads the object from the cache): its name and what the
/// trigger's filter looks at; not its status.
fn trigger(mut obj: SsmParameter) -> SsmParameter {
    obj.status = None;
    obj.metadata.labels = None;
    if let Some(annotations) = obj.metadata.annotations.as_mut() {
        annotations.retain(|k, _| k == FORCE_SYNC_ANNOTATION);
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ssm_parameter;
    use serde_json::json;

    fn listed(n: usize) -> Vec<Item> {
        let mut events = vec![Ok(Event::Init)];
        for i in 0..n {
            let obj = ssm_parameter(&format!("o{i}"), json!({"parameters": [{"name": "p"}]}));
            events.push(Ok(Event::InitApply(obj)));
        }
        events.push(Ok(Event::InitDone));
        events
    }

    fn name(item: &Item) -> String {
        match item {
            Ok(Event::Apply(obj)) => obj.metadata.name.clone().unwrap_or_default(),
            Ok(Event::InitDone) => "InitDone".to_owned(),
            Ok(Event::Init) => "Init".to_owned(),
            _ => "other".to_owned(),
        }
    }

    #[tokio::test]
    async fn listed_objects_go_one_per_finished_reconcile_and_live_ones_go_first() {
        let (finish, finished) = watch::channel(0u64);
        let (input, events) = mpsc::unbounded_channel();
        for item in listed(10) {
            input.send(item).unwrap();
        }
        let events = futures::stream::unfold(events, |mut events| async move {
            let item = events.recv().await?;
            Some((item, events))
        });
        let mut out = std::pin::pin!(trickle(events, finished, 3));
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(name(&out.next().await.unwrap()));
        }
        assert_eq!(seen, ["Init", "o0", "o1", "o2", "InitDone"]);
        let live = ssm_parameter("new", json!({"parameters": [{"name": "p"}]}));
        input.send(Ok(Event::Apply(live))).unwrap();
        assert_eq!(
            name(&out.next().await.unwrap()),
            "new",
            "before the backlog"
        );
        finish.send_modify(|n| *n += 1);
        assert_eq!(name(&out.next().await.unwrap()), "o3");
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(50), out.next());
        assert!(nothing.await.is_err(), "no room until a reconcile finishes");
        finish.send_modify(|n| *n += 2);
        assert_eq!(name(&out.next().await.unwrap()), "o4");
        assert_eq!(name(&out.next().await.unwrap()), "o5");
    }
}
