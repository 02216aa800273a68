//! The Secrets the operator writes, as the metadata watch sees them: the
//! version of a Secret without a request for it.
//!
//! A reconcile reads its Secret whole only when metadata cannot tell it is
//! as the last good sync left it: on a refresh that finds every parameter
//! unchanged, and after a restart, it reads nothing of the Secret at all.
//! A watch may lag behind: a stale version differs from the recorded one
//! and costs a read of the Secret, never a wrong conclusion.
//!
//! Each Secret is remembered by what the operator reads of it and nothing
//! else — its version and the SsmParameter its annotation names — in a map
//! of its own rather than a reflector store of whole metadata objects: with
//! 10,000 Secrets, a cached `ObjectMeta` and its annotation map would be
//! about a kilobyte each, these are about a tenth of that.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PartialObjectMeta};
use kube::runtime::watcher::{self, Event};

use crate::names::OWNER_ANNOTATION;
use crate::reconcile::key::ObjectKey;

/// The metadata caches of the watched scopes (a namespace, or `None` for
/// the whole cluster), replaced with each term of leadership.
#[derive(Default)]
pub struct SeenSecrets {
    scopes: RwLock<HashMap<Option<String>, Arc<SecretCache>>>,
}

impl SeenSecrets {
    /// The cache of `scope` from now on.
    pub fn watch(&self, scope: Option<String>, cache: Arc<SecretCache>) {
        let mut scopes = self.scopes.write().unwrap_or_else(|p| p.into_inner());
        scopes.insert(scope, cache);
    }

    /// Secret `namespace/name` as the metadata watch last saw it.
    pub fn lookup(&self, namespace: &str, name: &str) -> Seen {
        let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
        match scopes
            .get(&Some(namespace.to_owned()))
            .or_else(|| scopes.get(&None))
        {
            Some(cache) => cache.lookup(namespace, name),
            None => Seen::Unknown,
        }
    }
}

/// What the metadata watch knows of one Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// At this `resourceVersion`.
    Version(String),
    /// Not among the labelled Secrets: absent, or a Secret the operator
    /// never wrote (which an attempt to create it finds out).
    Absent,
    /// No synced cache covers it.
    Unknown,
}

impl Seen {
    /// The version seen, if any.
    pub fn version(&self) -> Option<String> {
        match self {
            Self::Version(version) => Some(version.clone()),
            Self::Absent | Self::Unknown => None,
        }
    }
}

/// One watched scope's labelled Secrets.
#[derive(Default)]
pub struct SecretCache {
    state: RwLock<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Whether a first list is in: until then the cache cannot tell absence.
    listed: bool,
    secrets: HashMap<ObjectKey, Remembered>,
    /// A list under way; it replaces `secrets` when it is done.
    relisting: Option<HashMap<ObjectKey, Remembered>>,
}

/// What is kept of one Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Remembered {
    version: Option<Box<str>>,
    owner: Option<Box<str>>,
}

impl Remembered {
    fn of(meta: &ObjectMeta) -> Self {
        Self {
            version: meta.resource_version.as_deref().map(Box::from),
            owner: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(OWNER_ANNOTATION))
                .map(|owner| Box::from(owner.as_str())),
        }
    }

    /// The Secret's metadata as far as it is kept: enough to tell who
    /// writes it.
    fn metadata(&self, key: &ObjectKey) -> PartialObjectMeta<Secret> {
        let (namespace, name) = key.parts();
        let meta = ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            resource_version: self.version.as_deref().map(str::to_owned),
            annotations: self
                .owner
                .as_deref()
                .map(|owner| [(OWNER_ANNOTATION.to_owned(), owner.to_owned())].into()),
            ..ObjectMeta::default()
        };
        PartialObjectMeta {
            types: None,
            metadata: meta,
            _phantom: std::marker::PhantomData,
        }
    }
}

impl SecretCache {
    fn lookup(&self, namespace: &str, name: &str) -> Seen {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        match state.secrets.get(format!("{namespace}/{name}").as_str()) {
            Some(Remembered {
                version: Some(version),
                ..
            }) => Seen::Version(version.to_string()),
            Some(_) => Seen::Unknown,
            None if !state.listed => Seen::Unknown,
            None => Seen::Absent,
        }
    }

    /// Takes in one event of the watch; returns the Secrets it touched:
    /// the one applied or deleted, and after a relist every Secret the
    /// list no longer holds (deleted while the watch was down).
    pub fn apply(&self, event: Event<PartialObjectMeta<Secret>>) -> Vec<PartialObjectMeta<Secret>> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Init => {
                state.relisting = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(secret) => {
                let key = ObjectKey::of(&secret);
                let remembered = Remembered::of(&secret.metadata);
                match &mut state.relisting {
                    Some(list) => list.insert(key, remembered),
                    None => state.secrets.insert(key, remembered),
                };
                vec![secret]
            }
            Event::InitDone => {
                let listed = state.relisting.take().unwrap_or_default();
                let before = std::mem::replace(&mut state.secrets, listed);
                let first = !std::mem::replace(&mut state.listed, true);
                if first {
                    return Vec::new();
                }
                before
                    .into_iter()
                    .filter(|(key, _)| !state.secrets.contains_key(key))
                    .map(|(key, gone)| {
                        tracing::info!(secret = %key, "deleted while the watch was down");
                        gone.metadata(&key)
                    })
                    .collect()
            }
            Event::Apply(secret) => {
                let key = ObjectKey::of(&secret);
                state.secrets.insert(key, Remembered::of(&secret.metadata));
                vec![secret]
            }
            Event::Delete(secret) => {
                state.secrets.remove(&ObjectKey::of(&secret));
                vec![secret]
            }
        }
    }
}

/// The Secrets that `events` touch, as they come, kept in `cache`.
pub fn remembered<S>(
    events: S,
    cache: Arc<SecretCache>,
) -> impl Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>>
where
    S: Stream<Item = Result<Event<PartialObjectMeta<Secret>>, watcher::Error>>,
{
    events.flat_map(move |event| {
        let touched: Vec<Result<_, watcher::Error>> = match event {
            Ok(event) => cache.apply(event).into_iter().map(Ok).collect(),
            Err(error) => vec![Err(error)],
        };
        futures::stream::iter(touched)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt as _;

    fn meta(namespace: &str, name: &str, version: &str) -> PartialObjectMeta<Secret> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name, "namespace": namespace, "resourceVersion": version,
                "annotations": {OWNER_ANNOTATION: format!("{name}-params"), "team": "payments"},
                "labels": {"app": "db"},
            },
        }))
        .unwrap()
    }

    fn names(touched: &[PartialObjectMeta<Secret>]) -> Vec<String> {
        touched.iter().map(|s| s.name_any()).collect()
    }

    /// A cache whose first list held `secrets`.
    fn listed(secrets: &[PartialObjectMeta<Secret>]) -> Arc<SecretCache> {
        let cache = Arc::new(SecretCache::default());
        cache.apply(Event::Init);
        for secret in secrets {
            cache.apply(Event::InitApply(secret.clone()));
        }
        cache.apply(Event::InitDone);
        cache
    }

    #[test]
    fn a_secret_is_found_in_the_cache_of_its_namespace_or_of_the_cluster() {
        let seen = SeenSecrets::default();
        assert_eq!(seen.lookup("payments", "db"), Seen::Unknown);
        seen.watch(
            Some("payments".into()),
            listed(&[meta("payments", "db", "41")]),
        );
        assert_eq!(seen.lookup("payments", "db"), Seen::Version("41".into()));
        assert_eq!(seen.lookup("payments", "other"), Seen::Absent);
        assert_eq!(seen.lookup("billing", "db"), Seen::Unknown);

        seen.watch(None, listed(&[meta("billing", "db", "7")]));
        assert_eq!(seen.lookup("billing", "db"), Seen::Version("7".into()));
    }

    #[test]
    fn a_cache_still_listing_tells_no_absence() {
        let seen = SeenSecrets::default();
        let cache = Arc::new(SecretCache::default());
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(meta("payments", "db", "41")));
        seen.watch(Some("payments".into()), cache.clone());
        assert_eq!(seen.lookup("payments", "other"), Seen::Unknown);
        cache.apply(Event::InitDone);
        assert_eq!(seen.lookup("payments", "other"), Seen::Absent);
        assert_eq!(seen.lookup("payments", "db"), Seen::Version("41".into()));
    }

    #[test]
    fn live_events_move_the_version_and_a_delete_tells_absence() {
        let cache = listed(&[meta("payments", "db", "41")]);
        let touched = cache.apply(Event::Apply(meta("payments", "db", "42")));
        assert_eq!(names(&touched), ["db"]);
        assert_eq!(cache.lookup("payments", "db"), Seen::Version("42".into()));
        let touched = cache.apply(Event::Delete(meta("payments", "db", "42")));
        assert_eq!(names(&touched), ["db"]);
        assert_eq!(cache.lookup("payments", "db"), Seen::Absent);
    }

    #[test]
    fn a_relist_keeps_the_old_list_until_it_is_done_then_tells_what_vanished() {
        let cache = listed(&[meta("payments", "a", "1"), meta("payments", "b", "2")]);
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(meta("payments", "a", "3")));
        // Mid-relist, the old list still answers.
        assert_eq!(cache.lookup("payments", "b"), Seen::Version("2".into()));
        let vanished = cache.apply(Event::InitDone);
        assert_eq!(names(&vanished), ["b"]);
        assert_eq!(
            vanished[0]
                .annotations()
                .get(OWNER_ANNOTATION)
                .map(String::as_str),
            Some("b-params"),
            "the vanished Secret still names its writer, who repairs it"
        );
        assert_eq!(cache.lookup("payments", "a"), Seen::Version("3".into()));
        assert_eq!(cache.lookup("payments", "b"), Seen::Absent);
    }

    #[test]
    fn the_first_list_tells_no_deletes() {
        let cache = Arc::new(SecretCache::default());
        cache.apply(Event::Init);
        let touched = cache.apply(Event::InitApply(meta("payments", "a", "1")));
        assert_eq!(names(&touched), ["a"]);
        assert!(cache.apply(Event::InitDone).is_empty());
    }

    #[test]
    fn only_the_version_and_the_writer_are_kept() {
        let cache = listed(&[meta("payments", "db", "41")]);
        let state = cache.state.read().unwrap();
        let kept = &state.secrets[&ObjectKey::new("payments", "db")];
        assert_eq!(
            kept,
            &Remembered {
                version: Some("41".into()),
                owner: Some("db-params".into()),
            }
        );
    }
}
