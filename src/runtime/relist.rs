//! What was deleted while a watch was down.
//!
//! After a watch gap too long for the API server to replay (410 Gone), the
//! watcher lists again, and the reflector's store is replaced by the new
//! list — with no `Delete` event for the objects missing from it. This
//! adapter sends those: a deleted SsmParameter is then forgotten, and the
//! owner of a deleted Secret repairs it, as after a delete seen live.

use std::hash::Hash;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

/// `events` (after `.reflect()` into `store`), with a `Delete` after each
/// relist for every object the store held before it and lost by it.
pub fn with_vanished<K, S>(events: S, store: Store<K>) -> impl Stream<Item = S::Item>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    // The store as the relist found it: the reflector swaps it at InitDone.
    let mut before: Option<Vec<Arc<K>>> = None;
    events.flat_map(move |event| {
        let vanished = match &event {
            Ok(Event::Init) => {
                before = Some(store.state());
                Vec::new()
            }
            Ok(Event::InitDone) => before
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|obj| store.get(&ObjectRef::from_obj(obj.as_ref())).is_none())
                .map(|obj| {
                    let gone = ObjectRef::from_obj(obj.as_ref());
                    tracing::info!(object = %gone, "deleted while the watch was down");
                    Ok(Event::Delete(K::clone(&obj)))
                })
                .collect(),
            _ => Vec::new(),
        };
        futures::stream::iter(std::iter::once(event).chain(vanished))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::WatchStreamExt as _;
    use kube::runtime::reflector;

    fn object(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("ns".to_owned()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn deleted(events: &[Event<ConfigMap>]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Delete(obj) => obj.metadata.name.clone(),
                _ => None,
            })
            .collect()
    }

    async fn run(events: Vec<Event<ConfigMap>>) -> Vec<Event<ConfigMap>> {
        let (reader, writer) = reflector::store();
        let stream =
            futures::stream::iter(events.into_iter().map(Ok::<_, watcher::Error>)).reflect(writer);
        with_vanished(stream, reader)
            .map(|e| e.unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn an_object_missing_from_a_relist_is_deleted() {
        let out = run(vec![
            Event::Init,
            Event::InitApply(object("a")),
            Event::InitApply(object("b")),
            Event::InitDone,
            Event::Init,
            Event::InitApply(object("a")),
            Event::InitDone,
        ])
        .await;
        assert_eq!(deleted(&out), ["b"]);
        // The Delete follows the end of the relist.
        assert!(matches!(out.last(), Some(Event::Delete(_))));
    }

    #[tokio::test]
    async fn the_first_list_and_live_deletes_add_nothing() {
        let out = run(vec![
            Event::Init,
            Event::InitApply(object("a")),
            Event::InitDone,
            Event::Apply(object("b")),
            Event::Delete(object("a")),
            Event::Init,
            Event::InitApply(object("b")),
            Event::InitDone,
        ])
        .await;
        assert_eq!(deleted(&out), ["a"]);
    }
}
