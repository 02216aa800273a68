//! The SsmParameters the controllers' caches hold, for what must look at
//! all of them outside a reconcile (the readers of a changed parameter).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::Store;

use crate::api::SsmParameter;
use crate::reconcile::status;
use crate::telemetry::census::State;

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

    /// Forgets every cache: the term of leadership that made them ended.
    pub fn clear(&self) {
        self.scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Every cached SsmParameter.
    pub fn all(&self) -> Vec<Arc<SsmParameter>> {
        let scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        scopes.values().flat_map(Store::state).collect()
    }
}

impl crate::telemetry::census::Census for Cached {
    fn count(&self) -> BTreeMap<State, u64> {
        let mut counts = BTreeMap::new();
        for obj in self.all() {
            for condition in [status::READY, status::SYNCED] {
                let found = status::find(obj.status.as_ref(), condition);
                let state = State {
                    condition: condition.to_owned(),
                    status: found.map_or("Unknown", |c| c.status.as_str()).to_owned(),
                    reason: found.map_or("Unknown", |c| c.reason.as_str()).to_owned(),
                };
                *counts.entry(state).or_default() += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::census::Census as _;
    use crate::testing::ssm_parameter;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    #[test]
    fn the_cached_ssm_parameters_are_counted_by_condition_status_and_reason() {
        let (reader, mut writer) = kube::runtime::reflector::store();
        let spec = json!({"parameters": [{"name": "p"}]});
        let mut synced = ssm_parameter("a", spec.clone());
        let mut denied = ssm_parameter("b", spec.clone());
        let condition = |type_: &str, status: &str, reason: &str| {
            json!({"type": type_, "status": status, "reason": reason, "message": "",
                   "lastTransitionTime": "2026-12-04T00:00:00Z"})
        };
        synced.status = Some(
            serde_json::from_value(json!({"conditions": [
            condition("Ready", "True", "Synced"), condition("Synced", "True", "Synced")]}))
            .unwrap(),
        );
        denied.status = Some(
            serde_json::from_value(json!({"conditions": [
            condition("Ready", "False", "KmsAccessDenied"),
            condition("Synced", "False", "KmsAccessDenied")]}))
            .unwrap(),
        );
        for obj in [synced, denied, ssm_parameter("c", spec)] {
            writer.apply_watcher_event(&Event::Apply(obj));
        }
        let cached = Cached::default();
        cached.watch(Some("payments".to_owned()), reader);
        let counts: Vec<(String, u64)> = (cached.count().into_iter())
            .map(|(s, n)| (format!("{} {} {}", s.condition, s.status, s.reason), n))
            .collect();
        assert_eq!(
            counts,
            [
                ("Ready False KmsAccessDenied".to_owned(), 1),
                ("Ready True Synced".to_owned(), 1),
                ("Ready Unknown Unknown".to_owned(), 1),
                ("Synced False KmsAccessDenied".to_owned(), 1),
                ("Synced True Synced".to_owned(), 1),
                ("Synced Unknown Unknown".to_owned(), 1),
            ]
        );
    }
}
