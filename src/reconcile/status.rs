//! The next status from the old one and the outcome of a sync (pure).
//!
//! Conditions keep their `lastTransitionTime` while their status holds, and a
//! repeated failure produces the same message, so an unchanged outcome gives
//! an equal status and nothing is written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::api::SyncError;
use crate::api::{ParameterStatus, SsmParameter, SsmParameterStatus};
use crate::names::FIELD_MANAGER;

/// Condition types.
pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";
/// The reason of both conditions after a good sync (the failures' reasons
/// are [`crate::api::Reason`]s).
pub const SYNCED_REASON: &str = "Synced";
/// `Ready`'s reason while the Secret keeps the last good values.
pub const STALE_REASON: &str = "Stale";

/// What a sync came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The Secret holds the values of `parameters`.
    Synced { parameters: Vec<ParameterStatus> },
    /// Nothing new was written. `last_good` says whether the Secret still
    /// holds every key the spec asks for from an earlier good read.
    Failed { error: SyncError, last_good: bool },
}

/// The status after `outcome`, for the spec of `generation`.
pub fn next(
    old: Option<&SsmParameterStatus>,
    generation: Option<i64>,
    secret_name: &str,
    outcome: &SyncOutcome,
    now: &Time,
) -> SsmParameterStatus {
    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let (ready, synced, parameters) = match outcome {
        SyncOutcome::Synced { parameters } => (
            (
                true,
                SYNCED_REASON,
                format!("Secret {secret_name} holds every key"),
            ),
            (
                true,
                SYNCED_REASON,
                "the latest read from AWS succeeded".to_owned(),
            ),
            parameters.clone(),
        ),
        SyncOutcome::Failed { error, last_good } => {
            let ready = if *last_good {
                (
                    true,
                    STALE_REASON,
                    format!(
                        "Secret {secret_name} keeps the last good values; the latest read failed: {}",
                        error.reason()
                    ),
                )
            } else {
                (false, error.reason().as_str(), error.message())
            };
            let kept = if *last_good {
                old.map(|s| s.parameters.clone()).unwrap_or_default()
            } else {
                Vec::new()
            };
            (
                ready,
                (false, error.reason().as_str(), error.message()),
                kept,
            )
        }
    };
    let ready_summary = if ready.0 {
        "True".to_owned()
    } else {
        ready.1.to_owned()
    };
    SsmParameterStatus {
        observed_generation: generation,
        secret_name: Some(secret_name.to_owned()),
        ready: Some(ready_summary),
        conditions: vec![
            condition(old_conditions, READY, ready, generation, now),
            condition(old_conditions, SYNCED, synced, generation, now),
        ],
        parameters,
        data_fingerprint: old.and_then(|s| s.data_fingerprint.clone()),
        secret_resource_version: old.and_then(|s| s.secret_resource_version.clone()),
    }
}

/// The condition of `type_`, keeping the old one's transition time while its
/// status holds.
pub fn condition(
    old: &[Condition],
    type_: &str,
    (status, reason, message): (bool, &str, String),
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_owned();
    let previous = old.iter().find(|c| c.type_ == type_);
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => now.clone(),
    };
    Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// The condition of `type_`, if any.
pub fn find<'a>(status: Option<&'a SsmParameterStatus>, type_: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

/// The reason to announce with a Warning Event: `Synced` turned False, or its
/// reason changed. `None` for a failure that merely repeats.
pub fn new_failure(old: Option<&SsmParameterStatus>, new: &SsmParameterStatus) -> Option<String> {
    let after = find(Some(new), SYNCED).filter(|c| c.status == "False")?;
    let before = find(old, SYNCED);
    let repeated = before.is_some_and(|b| b.status == "False" && b.reason == after.reason);
    (!repeated).then(|| after.reason.clone())
}

/// The time conditions carry.
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Writes `status` (server-side apply of the status subresource).
pub async fn write(
    obj: &SsmParameter,
    status: &SsmParameterStatus,
    client: &kube::Client,
) -> Result<(), kube::Error> {
    let api: Api<SsmParameter> =
        Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": SsmParameter::api_version(&()),
        "kind": SsmParameter::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&obj.name_any(), &params, &Patch::Apply(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn synced() -> SyncOutcome {
        SyncOutcome::Synced {
            parameters: vec![ParameterStatus {
                name: "prd-db-pass".into(),
                key: "password".into(),
                version: 3,
                type_: "SecureString".into(),
                key_id: None,
                last_modified: None,
            }],
        }
    }

    fn denied(last_good: bool) -> SyncOutcome {
        SyncOutcome::Failed {
            error: SyncError::KmsAccessDenied {
                parameter: "prd-db-pass".into(),
                key: Some("arn:aws:kms:ap-northeast-1:111122223333:key/k".into()),
                principal: None,
            },
            last_good,
        }
    }

    #[test]
    fn success_makes_ready_and_synced_true() {
        let s = next(None, Some(1), "db", &synced(), &at(10));
        assert_eq!(s.ready.as_deref(), Some("True"));
        assert_eq!(find(Some(&s), READY).unwrap().status, "True");
        assert_eq!(find(Some(&s), SYNCED).unwrap().reason, "Synced");
        assert_eq!(s.parameters.len(), 1);
        assert_eq!(s.observed_generation, Some(1));
    }

    #[test]
    fn kms_denial_after_success_keeps_ready_true_with_reason_stale() {
        let good = next(None, Some(1), "db", &synced(), &at(10));
        let stale = next(Some(&good), Some(1), "db", &denied(true), &at(20));
        let ready = find(Some(&stale), READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Stale")
        );
        assert_eq!(ready.last_transition_time, at(10));
        let synced = find(Some(&stale), SYNCED).unwrap();
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", "KmsAccessDenied")
        );
        assert_eq!(synced.last_transition_time, at(20));
        assert_eq!(stale.parameters, good.parameters);
    }

    #[test]
    fn a_first_sync_that_fails_leaves_ready_false_with_the_same_reason() {
        let s = next(None, Some(1), "db", &denied(false), &at(10));
        let ready = find(Some(&s), READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "KmsAccessDenied")
        );
        assert_eq!(s.ready.as_deref(), Some("KmsAccessDenied"));
        assert!(s.parameters.is_empty());
    }

    #[test]
    fn a_repeated_failure_gives_an_equal_status_and_no_new_warning() {
        let good = next(None, Some(1), "db", &synced(), &at(10));
        let first = next(Some(&good), Some(1), "db", &denied(true), &at(20));
        let again = next(Some(&first), Some(1), "db", &denied(true), &at(30));
        assert_eq!(first, again);
        assert_eq!(
            new_failure(Some(&good), &first).as_deref(),
            Some("KmsAccessDenied")
        );
        assert_eq!(new_failure(Some(&first), &again), None);
    }

    #[test]
    fn an_unchanged_success_gives_an_equal_status() {
        let first = next(None, Some(1), "db", &synced(), &at(10));
        let again = next(Some(&first), Some(1), "db", &synced(), &at(99));
        assert_eq!(first, again);
        assert_eq!(new_failure(Some(&first), &again), None);
    }
}
