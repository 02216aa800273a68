//! A compact key for per-object memory.
//!
//! kube's `ObjectRef` carries four strings (name, namespace, and the
//! resourceVersion and uid it was made from) in 96 bytes plus their
//! allocations. A map with one entry per object, at 10,000 objects, spends
//! a few megabytes on those keys alone; this one is a single allocation.

use std::fmt;
use std::sync::Arc;

use kube::runtime::reflector::ObjectRef;

/// `namespace/name` of an object (neither part can hold a `/`); clones
/// share the one allocation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(Arc<str>);

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self(Arc::from(format!("{namespace}/{name}")))
    }

    /// Its namespace and name.
    pub fn parts(&self) -> (&str, &str) {
        self.0.split_once('/').unwrap_or(("", &self.0))
    }
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
