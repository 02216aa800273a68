//! The status this operator last wrote, for a cache that has not seen it
//! yet.
//!
//! After a watch gap (an API server that answered 429 for minutes, say) the
//! cache can hold an SsmParameter as it was before the operator's own
//! status writes for many seconds. Reconciled from that, each refresh would
//! take what it already wrote for news — versions that changed, an update
//! not yet announced — and write the same status and Event again. While the
//! cached object is still the version the last status write was based on,
//! its status is taken to be the one written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::ObjectRef;

use crate::api::{SsmParameter, SsmParameterStatus};

#[derive(Default)]
pub struct OwnStatus {
    written: Mutex<HashMap<ObjectRef<SsmParameter>, Written>>,
}

struct Written {
    /// The `resourceVersion` of the object the write was based on.
    on: Option<String>,
    status: SsmParameterStatus,
}

impl OwnStatus {
    /// Records that `status` was written over `obj` as it was cached.
    pub fn wrote(&self, obj: &SsmParameter, status: SsmParameterStatus) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let on = obj.metadata.resource_version.clone();
        written.insert(ObjectRef::from_obj(obj), Written { on, status });
    }

    /// `obj` with the status last written over this very version of it, if
    /// any: the cache has not seen that write yet.
    pub fn freshest(&self, obj: Arc<SsmParameter>) -> Arc<SsmParameter> {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let object = ObjectRef::from_obj(&*obj);
        match written.get(&object) {
            Some(w) if w.on.is_some() && w.on == obj.metadata.resource_version => {
                let mut fresher = SsmParameter::clone(&obj);
                fresher.status = Some(w.status.clone());
                Arc::new(fresher)
            }
            Some(_) => {
                // The cache has moved on: it is the truth again.
                written.remove(&object);
                obj
            }
            None => obj,
        }
    }

    /// The cache now holds `obj`: a status written over an older version
    /// of it is in the cache too, and need not be kept.
    pub fn cached(&self, obj: &SsmParameter) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let object = ObjectRef::from_obj(obj);
        if written
            .get(&object)
            .is_some_and(|w| w.on != obj.metadata.resource_version)
        {
            written.remove(&object);
        }
    }

    /// Forgets a deleted object.
    pub fn forget(&self, object: &ObjectRef<SsmParameter>) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.remove(object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ssm_parameter;
    use serde_json::json;

    fn at_version(version: &str) -> SsmParameter {
        let mut obj = ssm_parameter("db", json!({"parameters": [{"name": "p", "key": "k"}]}));
        obj.metadata.resource_version = Some(version.to_owned());
        obj
    }

    fn status(generation: i64) -> SsmParameterStatus {
        SsmParameterStatus {
            observed_generation: Some(generation),
            ..SsmParameterStatus::default()
        }
    }

    #[test]
    fn a_cache_behind_the_last_status_write_is_read_with_that_status() {
        let own = OwnStatus::default();
        let cached = at_version("10");
        assert_eq!(own.freshest(Arc::new(cached.clone())).status, None);
        own.wrote(&cached, status(3));
        let seen = own.freshest(Arc::new(cached.clone()));
        assert_eq!(seen.status, Some(status(3)));
        assert_eq!(seen.metadata.resource_version.as_deref(), Some("10"));
        // Once the cache has a newer version, it is the truth.
        let newer = at_version("11");
        assert_eq!(own.freshest(Arc::new(newer)).status, None);
        assert_eq!(own.freshest(Arc::new(cached)).status, None, "forgotten");
    }

    #[test]
    fn what_the_cache_has_caught_up_with_is_forgotten_at_once() {
        let own = OwnStatus::default();
        let cached = at_version("10");
        own.wrote(&cached, status(3));
        own.cached(&cached);
        assert_eq!(
            own.freshest(Arc::new(cached.clone())).status,
            Some(status(3))
        );
        own.cached(&at_version("11"));
        assert_eq!(own.freshest(Arc::new(cached)).status, None);
    }
}
