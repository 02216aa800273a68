//! A compact key for per-object memory.
//!
//! kube's `ObjectRef` carries four strings (name, namespace, and the
//! resourceVersion and uid it was made from) in 96 bytes plus their
//! allocations. A map with one entry per object, at 10,000 objects, spends
//! a few megabytes on those keys alone; this one is a single allocation,
//! shared by every map that holds a key of the same object.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use kube::runtime::reflector::ObjectRef;

/// `namespace/name` of an object (neither part can hold a `/`); clones
/// share the one allocation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(Arc<str>);

impl ObjectKey {
    /// The key of `namespace/name`: the same allocation as every other live
    /// key of that object, in whichever map it is kept.
    pub fn new(namespace: &str, name: &str) -> Self {
        let text = format!("{namespace}/{name}");
        let mut interned = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = interned.keys.get(text.as_str()) {
            return key.clone();
        }
        let key = Self(Arc::from(text));
        interned.keys.insert(key.clone());
        interned.added += 1;
        if interned.added >= PURGE_EVERY {
            // Keys no map holds any more: objects deleted, or never kept.
            interned.keys.retain(|k| Arc::strong_count(&k.0) > 1);
            interned.added = 0;
        }
        key
    }

    /// The key of `obj`, from its metadata.
    pub fn of(obj: &impl kube::Resource) -> Self {
        let meta = obj.meta();
        Self::new(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }

    /// `namespace/name`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its namespace and name.
    pub fn parts(&self) -> (&str, &str) {
        self.0.split_once('/').unwrap_or(("", &self.0))
    }
}

impl std::borrow::Borrow<str> for ObjectKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The live keys, so that the maps keyed by one object share its key: at
/// 10,000 objects, one allocation per object instead of one per map.
static INTERNED: LazyLock<Mutex<Interned>> = LazyLock::new(Mutex::default);

/// How many new keys between two purges of the keys nothing holds.
const PURGE_EVERY: usize = 4096;

#[derive(Default)]
struct Interned {
    keys: HashSet<ObjectKey>,
    added: usize,
}

impl<K: kube::Resource> From<&ObjectRef<K>> for ObjectKey {
    fn from(object: &ObjectRef<K>) -> Self {
        Self::new(
            object.namespace.as_deref().unwrap_or_default(),
            &object.name,
        )
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SsmParameter;

    #[test]
    fn a_key_is_its_namespace_and_name() {
        let key = ObjectKey::new("payments", "db");
        assert_eq!(key.parts(), ("payments", "db"));
        assert_eq!(key.to_string(), "payments/db");
        let object = ObjectRef::<SsmParameter>::new("db").within("payments");
        assert_eq!(ObjectKey::from(&object), key);
        assert_eq!(
            ObjectKey::new("", "cluster-wide").parts(),
            ("", "cluster-wide")
        );
    }
}
