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

    /// The `resourceVersion` of Secret `namespace/name` as last seen, if a
    /// synced cache holds it.
    pub fn version(&self, namespace: &str, name: &str) -> Option<String> {
        let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
        let store = scopes
            .get(&Some(namespace.to_owned()))
            .or_else(|| scopes.get(&None))?;
        let secret = store.get(&ObjectRef::new(name).within(namespace))?;
        secret.metadata.resource_version.clone()
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

    #[test]
    fn a_secret_is_found_in_the_cache_of_its_namespace_or_of_the_cluster() {
        let seen = SeenSecrets::default();
        assert_eq!(seen.version("payments", "db"), None);
        let (reader, mut writer) = reflector::store();
        writer.apply_watcher_event(&Event::Apply(meta("payments", "db", "41")));
        seen.watch(Some("payments".into()), reader);
        assert_eq!(seen.version("payments", "db").as_deref(), Some("41"));
        assert_eq!(seen.version("payments", "other"), None);
        assert_eq!(seen.version("billing", "db"), None);

        let (reader, mut writer) = reflector::store();
        writer.apply_watcher_event(&Event::Apply(meta("billing", "db", "7")));
        seen.watch(None, reader);
        assert_eq!(seen.version("billing", "db").as_deref(), Some("7"));
    }
}
