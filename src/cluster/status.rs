//! A ClusterSsmParameter's status from its namespaces' SsmParameters (pure).
//!
//! As for SsmParameter, an unchanged state gives an equal status (the
//! conditions keep their transition times), so nothing is written.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::{ClusterSsmParameter, ClusterSsmParameterStatus, FailedNamespace, SsmParameter};
use crate::cluster::children::kept_by;
use crate::reconcile::status::{READY, SYNCED, SYNCED_REASON, condition, find};

/// `failedNamespaces[].reason` of a namespace whose SsmParameter of that
/// name is not this ClusterSsmParameter's.
pub const CONFLICT_REASON: &str = "SsmParameterConflict";
/// `Ready`'s reason while chosen namespaces have no ready Secret yet and
/// none failed.
pub const PENDING_REASON: &str = "Pending";
/// The reason of both conditions for a selector that is none.
pub const INVALID_REASON: &str = "InvalidSpec";

/// The most namespaces a condition's message names.
const NAMED: usize = 10;

/// What the cluster holds for `owner`, as the status tells it.
pub struct Observed<'a> {
    pub owner: &'a ClusterSsmParameter,
    pub chosen: &'a BTreeSet<String>,
    /// The labelled SsmParameters of `owner`'s name, in any namespace.
    pub children: &'a [Arc<SsmParameter>],
    pub conflicts: &'a [String],
}

/// The status for what was observed, or for a spec that chooses nothing.
pub fn next(
    old: Option<&ClusterSsmParameterStatus>,
    observed: Result<Observed<'_>, (&ClusterSsmParameter, String)>,
    now: &Time,
) -> ClusterSsmParameterStatus {
    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let observed = match observed {
        Ok(observed) => observed,
        Err((owner, why)) => {
            let generation = owner.metadata.generation;
            let invalid = || (false, INVALID_REASON, why.clone());
            return ClusterSsmParameterStatus {
                observed_generation: generation,
                ready: Some(INVALID_REASON.to_owned()),
                conditions: vec![
                    condition(old_conditions, READY, invalid(), generation, now),
                    condition(old_conditions, SYNCED, invalid(), generation, now),
                ],
                namespaces: Some(0),
                failed_namespaces: Vec::new(),
            };
        }
    };
    let generation = observed.owner.metadata.generation;
    let (ready, failed) = standings(&observed);
    let total = observed.chosen.len();
    let ready_condition = match failed.first() {
        _ if ready == total => (
            true,
            SYNCED_REASON,
            format!("{total} of {total} namespaces hold the Secret"),
        ),
        Some(first) => (false, first.reason.as_str(), summary(ready, total, &failed)),
        None => (false, PENDING_REASON, summary(ready, total, &failed)),
    };
    let synced_condition = match failed.first() {
        None => (
            true,
            SYNCED_REASON,
            format!("no namespace of {total} failed"),
        ),
        Some(first) => (false, first.reason.as_str(), summary(ready, total, &failed)),
    };
    let ready_summary = match ready_condition.0 {
        true => "True".to_owned(),
        false => ready_condition.1.to_owned(),
    };
    ClusterSsmParameterStatus {
        observed_generation: generation,
        ready: Some(ready_summary),
        conditions: vec![
            condition(old_conditions, READY, ready_condition, generation, now),
            condition(old_conditions, SYNCED, synced_condition, generation, now),
        ],
        namespaces: Some(i32::try_from(ready).unwrap_or(i32::MAX)),
        failed_namespaces: failed,
    }
}

/// How many chosen namespaces are ready, and those that failed, by name.
fn standings(observed: &Observed<'_>) -> (usize, Vec<FailedNamespace>) {
    let mut ready = 0;
    let mut failed = Vec::new();
    for namespace in observed.chosen {
        if observed.conflicts.contains(namespace) {
            failed.push(FailedNamespace {
                name: namespace.clone(),
                reason: CONFLICT_REASON.to_owned(),
                message: format!(
                    "SsmParameter {namespace}/{} exists and is not this ClusterSsmParameter's; rename or delete it",
                    observed.owner.name_any()
                ),
            });
            continue;
        }
        let child = (observed.children.iter())
            .find(|c| c.namespace().as_deref() == Some(namespace) && kept_by(c, observed.owner));
        let Some(status) = child.and_then(|c| c.status.as_ref()) else {
            continue;
        };
        let ready_now = find(Some(status), READY).is_some_and(|c| c.status == "True");
        ready += usize::from(ready_now);
        let failure = [SYNCED, READY]
            .into_iter()
            .filter_map(|t| find(Some(status), t))
            .find(|c| c.status == "False");
        if let Some(failure) = failure {
            failed.push(FailedNamespace {
                name: namespace.clone(),
                reason: failure.reason.clone(),
                message: failure.message.clone(),
            });
        }
    }
    (ready, failed)
}

/// "1 of 3 namespaces hold the Secret; failed: a (KmsAccessDenied), …".
fn summary(ready: usize, total: usize, failed: &[FailedNamespace]) -> String {
    let mut text = format!("{ready} of {total} namespaces hold the Secret");
    if !failed.is_empty() {
        let named: Vec<String> = (failed.iter().take(NAMED))
            .map(|f| format!("{} ({})", f.name, f.reason))
            .collect();
        text.push_str(&format!("; failed: {}", named.join(", ")));
        if failed.len() > NAMED {
            text.push_str(&format!(" and {} more", failed.len() - NAMED));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SyncError;
    use crate::cluster::children::desired;
    use crate::reconcile::status::{self, SyncOutcome};
    use serde_json::json;

    fn owner() -> ClusterSsmParameter {
        serde_json::from_value(json!({
            "apiVersion": "ssm-operator.io/v1alpha1",
            "kind": "ClusterSsmParameter",
            "metadata": {"name": "ca", "uid": "u1", "generation": 3},
            "spec": {"namespaceSelector": {}, "template": {"parameters": [{"name": "/ca"}]}},
        }))
        .unwrap()
    }

    fn child(
        owner: &ClusterSsmParameter,
        namespace: &str,
        outcome: Option<SyncOutcome>,
    ) -> Arc<SsmParameter> {
        let mut child = desired(owner, namespace);
        child.status = outcome.map(|o| status::next(None, Some(1), "ca", &o, &status::now()));
        Arc::new(child)
    }

    fn synced() -> Option<SyncOutcome> {
        Some(SyncOutcome::Synced {
            parameters: Vec::new(),
        })
    }

    fn denied() -> Option<SyncOutcome> {
        let error = SyncError::KmsAccessDenied {
            parameter: "/ca".into(),
            key: None,
            principal: None,
        };
        Some(SyncOutcome::Failed {
            error,
            last_good: false,
        })
    }

    fn chosen(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    /// The status, from nothing, of `children` in `chosen` namespaces.
    fn first_status(
        owner: &ClusterSsmParameter,
        chosen: &BTreeSet<String>,
        children: &[Arc<SsmParameter>],
        conflicts: &[String],
    ) -> ClusterSsmParameterStatus {
        let observed = Observed {
            owner,
            chosen,
            children,
            conflicts,
        };
        next(None, Ok(observed), &status::now())
    }

    fn condition<'a>(status: &'a ClusterSsmParameterStatus, type_: &str) -> (&'a str, &'a str) {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn ready_when_every_chosen_namespace_holds_the_secret() {
        let owner = owner();
        let children = [child(&owner, "a", synced()), child(&owner, "b", synced())];
        let chosen = chosen(&["a", "b"]);
        let status = first_status(&owner, &chosen, &children, &[]);
        assert_eq!(status.ready.as_deref(), Some("True"));
        assert_eq!(status.namespaces, Some(2));
        assert_eq!(condition(&status, READY), ("True", SYNCED_REASON));
        assert_eq!(condition(&status, SYNCED), ("True", SYNCED_REASON));
        assert_eq!(status.observed_generation, Some(3));
        assert!(status.failed_namespaces.is_empty());
    }

    #[test]
    fn failed_namespaces_are_listed_with_their_reasons_and_pending_ones_are_not() {
        let owner = owner();
        let children = [
            child(&owner, "a", synced()),
            child(&owner, "b", denied()),
            child(&owner, "c", None),
        ];
        let chosen = chosen(&["a", "b", "c", "d", "taken"]);
        let conflicts = ["taken".to_owned()];
        let status = first_status(&owner, &chosen, &children, &conflicts);
        let failed: Vec<_> = (status.failed_namespaces.iter())
            .map(|f| (f.name.as_str(), f.reason.as_str()))
            .collect();
        assert_eq!(
            failed,
            [("b", "KmsAccessDenied"), ("taken", CONFLICT_REASON)]
        );
        assert_eq!(status.namespaces, Some(1));
        assert_eq!(status.ready.as_deref(), Some("KmsAccessDenied"));
        let (_, reason) = condition(&status, SYNCED);
        assert_eq!(reason, "KmsAccessDenied");
        let message = &status.conditions[0].message;
        assert_eq!(
            message,
            "1 of 5 namespaces hold the Secret; failed: b (KmsAccessDenied), taken (SsmParameterConflict)"
        );
    }

    #[test]
    fn namespaces_on_their_way_are_pending_not_failed() {
        let owner = owner();
        let children = [child(&owner, "a", None)];
        let chosen = chosen(&["a", "b"]);
        let status = first_status(&owner, &chosen, &children, &[]);
        assert_eq!(condition(&status, READY), ("False", PENDING_REASON));
        assert_eq!(condition(&status, SYNCED), ("True", SYNCED_REASON));
    }

    #[test]
    fn an_unchanged_state_gives_an_equal_status() {
        let owner = owner();
        let children = [child(&owner, "a", denied())];
        let chosen = chosen(&["a"]);
        let observe = || Observed {
            owner: &owner,
            chosen: &chosen,
            children: &children,
            conflicts: &[],
        };
        let first = next(None, Ok(observe()), &status::now());
        let later = Time(k8s_openapi::jiff::Timestamp::from_second(4_000_000_000).unwrap());
        assert_eq!(next(Some(&first), Ok(observe()), &later), first);
    }

    #[test]
    fn a_selector_that_is_none_is_invalid_spec() {
        let owner = owner();
        let status = next(
            None,
            Err((&owner, "spec.namespaceSelector: bad".into())),
            &status::now(),
        );
        assert_eq!(condition(&status, READY), ("False", INVALID_REASON));
        assert_eq!(status.conditions[1].message, "spec.namespaceSelector: bad");
    }
}
