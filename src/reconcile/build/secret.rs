//! The Secret an SsmParameter should produce, and whether an existing one is
//! ours (pure).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::api::SecretValue;
use crate::api::SyncError;
use crate::api::{CreationPolicy, SsmParameter};
use crate::names::{
    MANAGED_BY, MANAGED_BY_LABEL, MERGE_FROM_ANNOTATION, OWNER_ANNOTATION,
    UNMERGEABLE_SECRET_TYPES, WATCH_LABEL,
};
use crate::reconcile::build::writable;
use crate::reconcile::plan::Plan;

/// The API server refuses Secrets over 1 MiB.
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// The Secret's data, key → value.
pub type SecretData = BTreeMap<String, SecretValue>;

/// The Secret `obj` should produce from `data`. With `Merge` it is the part
/// the operator applies into `existing`: its keys, and nothing else.
pub fn desired(
    obj: &SsmParameter,
    plan: &Plan,
    data: &SecretData,
    existing: Option<&Secret>,
) -> Result<Secret, SyncError> {
    let merge = plan.creation == CreationPolicy::Merge;
    let ours: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    let others: usize = match existing {
        Some(s) if merge => s
            .data
            .iter()
            .flatten()
            .filter(|(k, _)| !data.contains_key(*k))
            .map(|(k, v)| k.len() + v.0.len())
            .sum(),
        _ => 0,
    };
    if ours + others > MAX_SECRET_BYTES {
        return Err(SyncError::SecretTooLarge {
            secret: plan.secret_name.clone(),
            bytes: ours + others,
        });
    }
    let target = obj.spec.target.clone().unwrap_or_default();
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    if !merge {
        labels.extend(target.labels.unwrap_or_default());
        labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
        annotations.extend(target.annotations.unwrap_or_default());
    }
    // After the user's: `target.labels` cannot take the Secret out of the
    // operator's sight, nor name another owner.
    labels.insert(WATCH_LABEL.to_owned(), "true".to_owned());
    // A merged Secret may have several writers: none of them is its owner.
    if !merge {
        annotations.insert(OWNER_ANNOTATION.to_owned(), obj.name_any());
    }
    let secret_type = (!merge).then_some(plan.secret_type);
    writable::check(secret_type, data, &labels, &annotations)?;
    if let (Some(wanted), Some(existing)) = (secret_type, existing) {
        let current = existing.type_.as_deref().unwrap_or("Opaque");
        if current != wanted.as_str() {
            return Err(SyncError::InvalidSpec {
                detail: format!(
                    "target.type is {} but Secret {} is of type {current}, which the API server does not change; delete the Secret to have it written with the new type",
                    wanted.as_str(),
                    plan.secret_name
                ),
            });
        }
    }
    let owner_references = match plan.creation {
        CreationPolicy::Owner => obj.controller_owner_ref(&()).map(|r| vec![r]),
        CreationPolicy::Orphan | CreationPolicy::Merge => None,
    };
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(plan.secret_name.clone()),
            namespace: obj.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references,
            ..ObjectMeta::default()
        },
        type_: (!merge).then(|| plan.secret_type.as_str().to_owned()),
        immutable: (plan.immutable && !merge).then_some(true),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.expose().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    })
}

/// Whether the Secret may be written for `obj`: one it wrote, a new one, or
/// — with `Merge` — an existing Secret that allows it; never the cluster's
/// own credentials.
pub fn may_write(
    existing: Option<&Secret>,
    obj: &SsmParameter,
    plan: &Plan,
) -> Result<(), SyncError> {
    let refuse = |why: String| {
        Err(SyncError::SecretConflict {
            secret: plan.secret_name.clone(),
            why,
        })
    };
    let merge = plan.creation == CreationPolicy::Merge;
    let Some(existing) = existing else {
        return match merge {
            true => refuse(format!(
                "does not exist; creationPolicy Merge writes only into an existing Secret that allows it with the annotation {MERGE_FROM_ANNOTATION}"
            )),
            false => Ok(()),
        };
    };
    let secret_type = existing.type_.as_deref().unwrap_or("Opaque");
    if UNMERGEABLE_SECRET_TYPES.contains(&secret_type) {
        return refuse(format!("is of type {secret_type}, which is never written"));
    }
    let name = obj.name_any();
    match (written_for(existing, obj), merge) {
        (true, _) => Ok(()),
        (false, true) if merge_allowed(existing, &name) => Ok(()),
        (false, true) => refuse(format!(
            "does not allow SsmParameter {name} to merge into it: its annotation {MERGE_FROM_ANNOTATION} must list that name (or *)"
        )),
        (false, false) => refuse("exists and is not managed by this SsmParameter".to_owned()),
    }
}

/// Whether the operator wrote `existing` for `obj` alone.
fn written_for(existing: &Secret, obj: &SsmParameter) -> bool {
    let labelled = existing.labels().get(WATCH_LABEL).map(String::as_str) == Some("true");
    let named = existing.annotations().get(OWNER_ANNOTATION) == Some(&obj.name_any());
    labelled && named
}

/// Whether `existing`'s annotation lets SsmParameter `name` merge into it.
fn merge_allowed(existing: &Secret, name: &str) -> bool {
    existing
        .annotations()
        .get(MERGE_FROM_ANNOTATION)
        .is_some_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|n| n == "*" || n == name)
        })
}

/// Whether `existing` already is `desired`, as far as the operator manages it.
/// With `merge`, only `desired`'s keys are compared: the rest is someone else's.
pub fn is_current(existing: &Secret, desired: &Secret, merge: bool) -> bool {
    let subset = |want: &Option<BTreeMap<String, String>>, have: &BTreeMap<String, String>| {
        want.iter().flatten().all(|(k, v)| have.get(k) == Some(v))
    };
    let empty = BTreeMap::new();
    let have = existing.data.as_ref().unwrap_or(&empty);
    let want = desired.data.as_ref().unwrap_or(&empty);
    let data_current = if merge {
        want.iter().all(|(k, v)| have.get(k) == Some(v))
    } else {
        have == want
    };
    data_current
        && (merge || existing.type_ == desired.type_)
        && (desired.immutable != Some(true) || existing.immutable == Some(true))
        && subset(&desired.metadata.labels, existing.labels())
        && subset(&desired.metadata.annotations, existing.annotations())
        && desired
            .metadata
            .owner_references
            .iter()
            .flatten()
            .all(|r| existing.owner_references().contains(r))
}

/// The keys whose bytes differ between `existing` and `desired` (no values).
/// With `merge`, keys `desired` lacks are not ours, so never "removed".
pub fn changed_keys(existing: Option<&Secret>, desired: &Secret, merge: bool) -> Vec<String> {
    let empty = BTreeMap::new();
    let before = existing.and_then(|s| s.data.as_ref()).unwrap_or(&empty);
    let after = desired.data.as_ref().unwrap_or(&empty);
    let removed = before
        .keys()
        .filter(|k| !merge && !after.contains_key(*k))
        .cloned();
    let mut keys: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(removed)
        .collect();
    keys.sort();
    keys
}

/// Whether `existing` holds every one of `keys`.
pub fn holds_keys<'a>(existing: &Secret, mut keys: impl Iterator<Item = &'a str>) -> bool {
    let data = existing.data.as_ref();
    keys.all(|k| data.is_some_and(|d| d.contains_key(k)))
}

/// Whether an immutable `existing` must be replaced to become `desired`.
pub fn needs_replacement(existing: &Secret, desired: &Secret) -> bool {
    existing.immutable == Some(true) && existing.data != desired.data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ParameterRef, SecretTarget, SsmParameterSpec};

    fn object() -> SsmParameter {
        let mut obj = SsmParameter::new(
            "db-credentials",
            SsmParameterSpec {
                region: None,
                parameters: vec![ParameterRef {
                    name: "prd-db-pass".into(),
                    key: Some("password".into()),
                    version: None,
                    label: None,
                    decrypt: None,
                    property: None,
                    decode: None,
                    extract: None,
                    key_prefix: None,
                }],
                path: None,
                identity: None,
                rollout_restart: Vec::new(),
                target: Some(SecretTarget {
                    labels: Some([("team", "payments")].into()),
                    ..SecretTarget::default()
                }),
                refresh_interval: None,
            },
        );
        obj.metadata.namespace = Some("payments".into());
        obj.metadata.uid = Some("uid-1".into());
        obj
    }

    fn desired_(obj: &SsmParameter, plan: &Plan, data: &SecretData) -> Result<Secret, SyncError> {
        desired(obj, plan, data, None)
    }

    fn data(value: &str) -> SecretData {
        [("password".to_owned(), SecretValue::new(value))].into()
    }

    #[test]
    fn desired_secret_is_owned_labelled_and_holds_the_values() {
        let obj = object();
        let plan = Plan::of(&obj, "ap-northeast-1", Default::default()).unwrap();
        let secret = desired_(&obj, &plan, &data("PASSWORD")).unwrap();
        assert_eq!(secret.metadata.namespace.as_deref(), Some("payments"));
        assert_eq!(secret.labels()[MANAGED_BY_LABEL], MANAGED_BY);
        assert_eq!(secret.labels()["team"], "payments");
        assert_eq!(secret.owner_references()[0].uid, "uid-1");
        assert_eq!(secret.owner_references()[0].controller, Some(true));
        assert_eq!(secret.data.unwrap()["password"].0, b"PASSWORD");
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    }

    #[test]
    fn over_one_mebibyte_is_refused() {
        let obj = object();
        let plan = Plan::of(&obj, "ap-northeast-1", Default::default()).unwrap();
        let err = desired_(&obj, &plan, &data(&"x".repeat(MAX_SECRET_BYTES))).unwrap_err();
        assert_eq!(err.reason(), crate::api::Reason::SecretTooLarge);
        assert!(!err.message().contains("xxxx"));
    }

    #[test]
    fn a_foreign_secret_is_not_ours() {
        let obj = object();
        let plan = Plan::of(&obj, "ap-northeast-1", Default::default()).unwrap();
        let ours = desired_(&obj, &plan, &data("a")).unwrap();
        assert!(may_write(Some(&ours), &obj, &plan).is_ok());
        let foreign = Secret {
            metadata: ObjectMeta {
                name: Some("db-credentials".into()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };
        let refused = may_write(Some(&foreign), &obj, &plan).unwrap_err();
        assert_eq!(refused.reason(), crate::api::Reason::SecretConflict);
    }

    #[test]
    fn changed_keys_and_currency_follow_the_data() {
        let obj = object();
        let plan = Plan::of(&obj, "ap-northeast-1", Default::default()).unwrap();
        let old = desired_(&obj, &plan, &data("a")).unwrap();
        let new = desired_(&obj, &plan, &data("b")).unwrap();
        assert!(is_current(&old, &old, false));
        assert!(!is_current(&old, &new, false));
        assert_eq!(
            changed_keys(Some(&old), &new, false),
            vec!["password".to_owned()]
        );
        assert_eq!(changed_keys(None, &new, false), vec!["password".to_owned()]);
        assert!(holds_keys(&old, ["password"].into_iter()));
    }
}
