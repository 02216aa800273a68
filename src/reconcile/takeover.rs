//! Taking over Secrets written before each SsmParameter had its own field
//! manager: every SsmParameter then wrote as `ssm-operator`, so a merged
//! Secret's keys of several SsmParameters belonged to that one manager.
//!
//! Once this SsmParameter's manager co-owns its fields (they were just
//! applied with the same values), the old manager lets go of them by applying
//! what it still owns minus those fields. Keys of other SsmParameters stay
//! with the old manager, values untouched, until they take theirs over.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value, json};

use crate::names::FIELD_MANAGER;

/// The data keys the old shared manager owns in `secret`; `None` when it
/// owns nothing there that it could keep or remove (a Secret written by this
/// version, or taken over already).
pub fn legacy_keys(secret: &Secret) -> Option<BTreeSet<String>> {
    let entry = secret.metadata.managed_fields.iter().flatten().find(|e| {
        e.manager.as_deref() == Some(FIELD_MANAGER)
            && e.operation.as_deref() == Some("Apply")
            && e.subresource.is_none()
    })?;
    let fields = &entry.fields_v1.as_ref()?.0;
    let nonempty = |v: &Value| v.as_object().is_some_and(|o| !o.is_empty());
    let metadata = &fields["f:metadata"];
    let owns_anything = nonempty(&fields["f:data"])
        || !fields["f:type"].is_null()
        || !fields["f:immutable"].is_null()
        || ["f:labels", "f:annotations", "f:ownerReferences"]
            .iter()
            .any(|f| nonempty(&metadata[*f]));
    if !owns_anything {
        return None;
    }
    let data = fields["f:data"].as_object();
    Some(
        data.into_iter()
            .flat_map(Map::keys)
            .filter_map(|k| k.strip_prefix("f:"))
            .map(str::to_owned)
            .collect(),
    )
}

/// Makes the old shared manager give up every field of `existing` that
/// `desired` now holds under this SsmParameter's own manager; returns the
/// Secret as that left it, if there was anything to give up.
pub async fn release(
    secrets: &Api<Secret>,
    existing: &Secret,
    desired: &Secret,
) -> Result<Option<Secret>, kube::Error> {
    let Some(legacy) = legacy_keys(existing) else {
        return Ok(None);
    };
    let ours = desired.data.iter().flatten().map(|(k, _)| k);
    let kept: BTreeSet<&String> = legacy
        .iter()
        .filter(|k| !ours.clone().any(|o| o == *k))
        .collect();
    let current = existing.data.as_ref();
    let data: Map<String, Value> = kept
        .into_iter()
        .filter_map(|k| {
            let value = current?.get(k)?;
            Some((k.clone(), serde_json::to_value(value).ok()?))
        })
        .collect();
    let name = existing.metadata.name.as_deref().unwrap_or_default();
    let mut remaining = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
    });
    // An empty `data` would be a field of its own to own.
    if !data.is_empty() {
        remaining["data"] = Value::Object(data);
    }
    let released = secrets
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&remaining),
        )
        .await?;
    Ok(Some(released))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    fn managed(manager: &str, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    #[test]
    fn legacy_keys_are_the_old_managers_data_keys() {
        let mut secret = Secret::default();
        assert_eq!(legacy_keys(&secret), None);
        secret.metadata.managed_fields = Some(vec![
            managed("ssm-operator/uid-1", json!({"f:data": {"f:mine": {}}})),
            managed(
                "ssm-operator",
                json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {}}),
            ),
        ]);
        assert_eq!(
            legacy_keys(&secret),
            Some(["a".to_owned(), "b".to_owned()].into())
        );
    }

    #[test]
    fn an_old_manager_that_owns_nothing_left_is_no_legacy() {
        let mut secret = Secret::default();
        secret.metadata.managed_fields = Some(vec![managed(
            "ssm-operator",
            json!({"f:metadata": {"f:name": {}}}),
        )]);
        assert_eq!(legacy_keys(&secret), None);
        secret.metadata.managed_fields = Some(vec![managed(
            "ssm-operator",
            json!({"f:metadata": {"f:labels": {"f:team": {}}}}),
        )]);
        assert_eq!(legacy_keys(&secret), Some(BTreeSet::new()));
    }

    #[test]
    fn a_secret_of_the_new_managers_has_no_legacy_keys() {
        let mut secret = Secret::default();
        secret.metadata.managed_fields = Some(vec![managed(
            "ssm-operator/uid-1",
            json!({"f:data": {"f:a": {}}}),
        )]);
        assert_eq!(legacy_keys(&secret), None);
    }
}
