//! One ClusterExternalSecret as one ClusterSsmParameter: its namespaces
//! chosen the same way, its `externalSecretSpec` the template, or every
//! reason it cannot be.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ObjectMeta;
use serde_json::Value;

use super::external_secret;
use super::fields::{Fields, Problems};
use super::store::{Store, StoreRef};
use crate::api::{ClusterSsmParameter, ClusterSsmParameterSpec};

/// A converted ClusterExternalSecret, and what its user should know.
pub struct Converted {
    pub object: ClusterSsmParameter,
    pub notes: Vec<String>,
}

/// The ClusterExternalSecret `name` with `spec`, reading through `stores`.
pub fn convert(
    name: &str,
    labels: Option<BTreeMap<String, String>>,
    spec: Value,
    stores: &BTreeMap<StoreRef, Store>,
) -> Result<Converted, Problems> {
    let mut problems = Problems::new();
    let mut notes = Vec::new();
    let mut fields = Fields::of("spec", spec, &mut problems);
    let mut out = ClusterSsmParameterSpec::default();

    let mut selectors: Vec<Value> = fields.take("namespaceSelector").into_iter().collect();
    match fields.take("namespaceSelectors") {
        Some(Value::Array(items)) => selectors.extend(items),
        Some(_) => problems.push("spec.namespaceSelectors: not a list".to_owned()),
        None => {}
    }
    match selectors.as_slice() {
        [] => {}
        [one] => match serde_json::from_value::<LabelSelector>(one.clone()) {
            Ok(selector) => out.namespace_selector = Some(selector),
            Err(e) => problems.push(format!("spec.namespaceSelectors: not a label selector: {e}")),
        },
        more => problems.push(format!(
            "spec.namespaceSelectors: {} selectors, any of which chooses a namespace; a ClusterSsmParameter has one selector (and names): merge them into one, or convert one ClusterSsmParameter per selector",
            more.len()
        )),
    }
    match fields.take("namespaces") {
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(namespace) => out.namespaces.push(namespace),
                    _ => problems.push(format!("spec.namespaces[{i}]: not a string")),
                }
            }
        }
        Some(_) => problems.push("spec.namespaces: not a list".to_owned()),
        None => {}
    }
    if out.namespace_selector.is_none() && out.namespaces.is_empty() && problems.is_empty() {
        problems.push("spec: chooses no namespace (namespaceSelectors, namespaces)".to_owned());
    }
    // Its ExternalSecrets' name is what the kept SsmParameters are named.
    let kept_name = fields
        .string("externalSecretName", &mut problems)
        .unwrap_or_else(|| name.to_owned());
    if let Some(mut metadata) = fields.object("externalSecretMetadata", &mut problems) {
        for field in ["labels", "annotations"] {
            if metadata
                .strings(field, &mut problems)
                .is_some_and(|m| !m.is_empty())
            {
                problems.push(format!(
                    "spec.externalSecretMetadata.{field}: the SsmParameters kept in each namespace carry no labels or annotations of their own (the Secret's are target.labels and target.annotations)"
                ));
            }
        }
        metadata.done(&mut problems);
    }
    if fields.string("refreshTime", &mut problems).is_some() {
        notes.push(
            "refreshTime is left out: the operator watches Namespaces and follows their labels at once"
                .to_owned(),
        );
    }
    match fields.take("externalSecretSpec") {
        None => problems.push("spec.externalSecretSpec is missing".to_owned()),
        Some(spec) => {
            let local_store = spec["secretStoreRef"]["kind"]
                .as_str()
                .unwrap_or("SecretStore")
                == "SecretStore";
            if local_store {
                problems.push(
                    "spec.externalSecretSpec.secretStoreRef: a SecretStore is one per namespace; a ClusterSsmParameter reads as a ClusterSecretStore does"
                        .to_owned(),
                );
            } else {
                let path = ("spec.externalSecretSpec", spec);
                match external_secret::convert(None, &kept_name, None, path, stores) {
                    Ok(converted) => {
                        out.template = converted.object.spec;
                        notes.extend(converted.notes);
                    }
                    Err(found) => problems.extend(found),
                }
            }
        }
    }
    fields.done(&mut problems);

    if !problems.is_empty() {
        return Err(problems);
    }
    let object = ClusterSsmParameter {
        metadata: ObjectMeta {
            name: Some(kept_name),
            labels,
            ..ObjectMeta::default()
        },
        spec: out,
        status: None,
    };
    Ok(Converted { object, notes })
}
