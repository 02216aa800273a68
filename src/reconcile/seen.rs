//! The Secrets the operator writes, as the metadata watch sees them: the
//! version of a Secret without a request for it.
//!
//! A reconcile reads its Secret whole only when metadata cannot tell it is
//! as the last good sync left it: on a refresh that finds every parameter
//! unchanged, and after a restart, it reads nothing of the Secret at all.
//! A watch may lag behind: a stale version differs from the recorded one
//! and costs a read of the Secret, never a wrong conclusion.

use std::collections::HashMap;
use std::sync::RwLock;

use futures::FutureExt;

use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

/// The metadata caches of the watched scopes (a namespace, or `None` for
/// the whole cluster), replaced with each term of leadership.
#[derive(Default)]
pub struct SeenSecrets {
    scopes: RwLock<HashMap<Option<String>, Store<PartialObjectMeta<Secret>>>>,
}

impl SeenSecrets {
    /// The cache of `scope` from now on.
    pub fn watch(&self, scope: Option<String>, store: Store<PartialObjectMeta<Secret>>) {
        let mut scopes = self.scopes.write().unwrap_or_else(|p| p.into_inner());
        scopes.insert(scope, store);
    }

    /// Secret `namespace/name` as the metadata watch last saw it.
    pub fn lookup(&self, namespace: &str, name: &str) -> Seen {
        let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
        let Some(store) = scopes
            .get(&Some(namespace.to_owned()))
            .or_else(|| scopes.get(&None))
        else {
            return Seen::Unknown;
        };
        match store.get(&ObjectRef::new(name).within(namespace)) {
            Some(secret) => match &secret.metadata.resource_version {
                Some(version) => Seen::Version(version.clone()),
                None => Seen::Unknown,
            },
            // Until its first list is in, the cache cannot tell absence.
            None if store.wait_until_ready().now_or_never().is_none() => Seen::Unknown,
            None => Seen::Absent,
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

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    fn meta(namespace: &str, name: &str, version: &str) -> PartialObjectMeta<Secret> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": version},
        }))
        .unwrap()
    }

    /// A cache whose first list held `secret`.
    fn listed(secret: PartialObjectMeta<Secret>) -> Store<PartialObjectMeta<Secret>> {
        let (reader, mut writer) = reflector::store();
        for event in [Event::Init, Event::InitApply(secret), Event::InitDone] {
            writer.apply_watcher_event(&event);
        }
        reader
    }

    #[test]
    fn a_secret_is_found_in_the_cache_of_its_namespace_or_of_the_cluster() {
        let seen = SeenSecrets::default();
        assert_eq!(seen.lookup("payments", "db"), Seen::Unknown);
        seen.watch(
            Some("payments".into()),
            listed(meta("payments", "db", "41")),
        );
        assert_eq!(seen.lookup("payments", "db"), Seen::Version("41".into()));
        assert_eq!(seen.lookup("payments", "other"), Seen::Absent);
        assert_eq!(seen.lookup("billing", "db"), Seen::Unknown);

        seen.watch(None, listed(meta("billing", "db", "7")));
        assert_eq!(seen.lookup("billing", "db"), Seen::Version("7".into()));
    }

    #[test]
    fn a_cache_still_listing_tells_no_absence() {
        let seen = SeenSecrets::default();
        let (reader, mut writer) = reflector::store();
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(meta("payments", "db", "41")));
        seen.watch(Some("payments".into()), reader);
        assert_eq!(seen.lookup("payments", "other"), Seen::Unknown);
        writer.apply_watcher_event(&Event::InitDone);
        assert_eq!(seen.lookup("payments", "other"), Seen::Absent);
        assert_eq!(seen.lookup("payments", "db"), Seen::Version("41".into()));
    }
}
