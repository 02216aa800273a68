//! Which namespaces a ClusterSsmParameter chooses: those its selector
//! matches and those it names, if they exist and are not being deleted.

use std::collections::{BTreeMap, BTreeSet};

use kube::core::{Selector, SelectorExt};

use crate::api::ClusterSsmParameter;

/// A namespace as the operator's metadata watch saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Being deleted: nothing can be created in it any more.
    pub terminating: bool,
}

impl Namespace {
    /// The namespace of `meta` (a Namespace's metadata).
    pub fn of(meta: &kube::api::ObjectMeta) -> Self {
        Self {
            name: meta.name.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            terminating: meta.deletion_timestamp.is_some(),
        }
    }
}

/// The names of the namespaces `owner` chooses among `namespaces`, or why
/// its selector is no selector.
pub fn chosen(
    owner: &ClusterSsmParameter,
    namespaces: &[Namespace],
) -> Result<BTreeSet<String>, String> {
    let spec = &owner.spec;
    let selector = match &spec.namespace_selector {
        Some(selector) => Some(
            Selector::try_from(selector.clone())
                .map_err(|e| format!("spec.namespaceSelector: {e}"))?,
        ),
        None => None,
    };
    let named: BTreeSet<&str> = spec.namespaces.iter().map(String::as_str).collect();
    Ok(namespaces
        .iter()
        .filter(|ns| !ns.terminating)
        .filter(|ns| {
            named.contains(ns.name.as_str())
                || selector.as_ref().is_some_and(|s| s.matches(&ns.labels))
        })
        .map(|ns| ns.name.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner(spec: serde_json::Value) -> ClusterSsmParameter {
        serde_json::from_value(json!({
            "apiVersion": "ssm-operator.io/v1alpha1",
            "kind": "ClusterSsmParameter",
            "metadata": {"name": "registry"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
        Namespace {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            terminating: false,
        }
    }

    fn cluster() -> Vec<Namespace> {
        let mut gone = namespace("gone", &[("team", "a")]);
        gone.terminating = true;
        vec![
            namespace("a1", &[("team", "a")]),
            namespace("a2", &[("team", "a"), ("tier", "prd")]),
            namespace("b1", &[("team", "b")]),
            namespace("plain", &[]),
            gone,
        ]
    }

    fn names(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    const TEMPLATE: &str = "template";

    #[test]
    fn the_selector_and_the_names_both_choose_and_a_terminating_namespace_never() {
        let template = json!({"parameters": [{"name": "/p"}]});
        let by_label =
            owner(json!({"namespaceSelector": {"matchLabels": {"team": "a"}}, TEMPLATE: template}));
        assert_eq!(names(&chosen(&by_label, &cluster()).unwrap()), ["a1", "a2"]);

        let both = owner(json!({
            "namespaceSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["prd"]}]},
            "namespaces": ["b1", "missing", "gone"],
            TEMPLATE: template,
        }));
        assert_eq!(names(&chosen(&both, &cluster()).unwrap()), ["a2", "b1"]);

        let every = owner(json!({"namespaceSelector": {}, TEMPLATE: template}));
        assert_eq!(
            names(&chosen(&every, &cluster()).unwrap()),
            ["a1", "a2", "b1", "plain"]
        );

        let named = owner(json!({"namespaces": ["plain"], TEMPLATE: template}));
        assert_eq!(names(&chosen(&named, &cluster()).unwrap()), ["plain"]);
    }

    #[test]
    fn a_selector_that_cannot_be_read_is_said_so() {
        let bad = owner(json!({
            "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Near"}]},
            "template": {"parameters": [{"name": "/p"}]},
        }));
        let error = chosen(&bad, &cluster()).unwrap_err();
        assert!(error.starts_with("spec.namespaceSelector: "), "{error}");
    }
}
