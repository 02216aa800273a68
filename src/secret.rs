//! The Secret an SsmParameter should produce, and whether an existing one is
//! ours (pure).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::crd::SsmParameter;
use crate::error::SyncError;
use crate::plan::Plan;
use crate::value::SecretValue;

/// Label on every Secret the operator writes; the operator watches Secrets
/// through it, by metadata only.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "ssm-operator";
/// Annotation naming the SsmParameter that writes the Secret.
pub const OWNER_ANNOTATION: &str = "ssm-operator.io/owner";

/// The API server refuses Secrets over 1 MiB.
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// The Secret's data, key → value.
pub type SecretData = BTreeMap<String, SecretValue>;

/// The Secret `obj` should produce from `data`.
pub fn desired(obj: &SsmParameter, plan: &Plan, data: &SecretData) -> Result<Secret, SyncError> {
    let bytes: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_SECRET_BYTES {
        return Err(SyncError::SecretTooLarge {
            secret: plan.secret_name.clone(),
            bytes,
        });
    }
    let target = obj.spec.target.clone().unwrap_or_default();
    let mut labels = target.labels.unwrap_or_default();
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    let mut annotations = target.annotations.unwrap_or_default();
    annotations.insert(OWNER_ANNOTATION.to_owned(), obj.name_any());

    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(plan.secret_name.clone()),
            namespace: obj.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: obj.controller_owner_ref(&()).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        type_: Some(plan.secret_type.as_str().to_owned()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.expose().as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    })
}

/// Whether `existing` was written for `obj` (and may be overwritten).
pub fn is_ours(existing: &Secret, obj: &SsmParameter) -> bool {
    let labelled = existing.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY);
    let named = existing.annotations().get(OWNER_ANNOTATION) == Some(&obj.name_any());
    labelled && named
}

/// Whether `existing` already is `desired`, as far as the operator manages it.
pub fn is_current(existing: &Secret, desired: &Secret) -> bool {
    let subset = |want: &Option<BTreeMap<String, String>>, have: &BTreeMap<String, String>| {
        want.iter().flatten().all(|(k, v)| have.get(k) == Some(v))
    };
    existing.data.clone().unwrap_or_default() == desired.data.clone().unwrap_or_default()
        && existing.type_ == desired.type_
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
pub fn changed_keys(existing: Option<&Secret>, desired: &Secret) -> Vec<String> {
    let empty = BTreeMap::new();
    let before = existing.and_then(|s| s.data.as_ref()).unwrap_or(&empty);
    let after = desired.data.as_ref().unwrap_or(&empty);
    let mut keys: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(before.keys().filter(|k| !after.contains_key(*k)).cloned())
        .collect();
    keys.sort();
    keys
}

/// Whether `existing` holds every key of `plan` (from an earlier good read).
pub fn holds_every_key(existing: &Secret, plan: &Plan) -> bool {
    let data = existing.data.as_ref();
    plan.keys().all(|k| data.is_some_and(|d| d.contains_key(k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ParameterRef, SecretTarget, SsmParameterSpec};

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
                }],
                target: Some(SecretTarget {
                    labels: Some([("team".to_owned(), "payments".to_owned())].into()),
                    ..SecretTarget::default()
                }),
                refresh_interval: None,
            },
        );
        obj.metadata.namespace = Some("payments".into());
        obj.metadata.uid = Some("uid-1".into());
        obj
    }

    fn data(value: &str) -> SecretData {
        [("password".to_owned(), SecretValue::new(value))].into()
    }

    #[test]
    fn desired_secret_is_owned_labelled_and_holds_the_values() {
        let obj = object();
        let plan = Plan::of(&obj, "ap-northeast-1").unwrap();
        let secret = desired(&obj, &plan, &data("PASSWORD")).unwrap();
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
        let plan = Plan::of(&obj, "ap-northeast-1").unwrap();
        let err = desired(&obj, &plan, &data(&"x".repeat(MAX_SECRET_BYTES))).unwrap_err();
        assert_eq!(err.reason(), crate::error::Reason::SecretTooLarge);
        assert!(!err.message().contains("xxxx"));
    }

    #[test]
    fn a_foreign_secret_is_not_ours() {
        let obj = object();
        let plan = Plan::of(&obj, "ap-northeast-1").unwrap();
        let ours = desired(&obj, &plan, &data("a")).unwrap();
        assert!(is_ours(&ours, &obj));
        let foreign = Secret {
            metadata: ObjectMeta {
                name: Some("db-credentials".into()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };
        assert!(!is_ours(&foreign, &obj));
    }

    #[test]
    fn changed_keys_and_currency_follow_the_data() {
        let obj = object();
        let plan = Plan::of(&obj, "ap-northeast-1").unwrap();
        let old = desired(&obj, &plan, &data("a")).unwrap();
        let new = desired(&obj, &plan, &data("b")).unwrap();
        assert!(is_current(&old, &old));
        assert!(!is_current(&old, &new));
        assert_eq!(changed_keys(Some(&old), &new), vec!["password".to_owned()]);
        assert_eq!(changed_keys(None, &new), vec!["password".to_owned()]);
        assert!(holds_every_key(&old, &plan));
    }
}
