//! The SsmParameters the controllers' caches hold, for what must look at
//! all of them outside a reconcile (the readers of a changed parameter).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::Store;

use crate::api::SsmParameter;

/// Each watched scope's cache (`None`: the cluster), as its controller made
/// it in the current term of leadership.
#[derive(Default)]
pub struct Cached {
    scopes: Mutex<HashMap<Option<String>, Store<SsmParameter>>>,
}

impl Cached {
    /// The cache of scope `namespace`, in place of an earlier term's.
    pub fn watch(&self, namespace: Option<String>, store: Store<SsmParameter>) {
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        scopes.insert(namespace, store);
    }

    /// Every cached SsmParameter.
    pub fn all(&self) -> Vec<Arc<SsmParameter>> {
        let scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        scopes.values().flat_map(Store::state).collect()
    }
}
