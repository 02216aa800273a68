//! The SsmParameters a ClusterSsmParameter keeps: one per chosen namespace,
//! of its name, labelled with it, owned by it, its spec the template.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};

use crate::api::{ClusterSsmParameter, SsmParameter};
use crate::names::CLUSTER_LABEL;

/// The SsmParameter `owner` keeps in `namespace`.
pub fn desired(owner: &ClusterSsmParameter, namespace: &str) -> SsmParameter {
    let mut child = SsmParameter::new(&owner.name_any(), owner.spec.template.clone());
    child.metadata.namespace = Some(namespace.to_owned());
    child.metadata.labels = Some([(CLUSTER_LABEL.to_owned(), owner.name_any())].into());
    child.metadata.owner_references = Some(vec![owner_reference(owner)]);
    child
}

/// A controller reference that does not block the owner's deletion: that
/// would take `update` of the owner's finalizers, which the operator needs
/// for nothing else.
fn owner_reference(owner: &ClusterSsmParameter) -> OwnerReference {
    OwnerReference {
        api_version: ClusterSsmParameter::api_version(&()).into_owned(),
        kind: ClusterSsmParameter::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

pub use crate::reconcile::tenancy::claimed_keeper as owner_of;

/// Whether `child` is kept by `owner` (the same uid, not only the name).
pub fn kept_by(child: &SsmParameter, owner: &ClusterSsmParameter) -> bool {
    let uid = owner.uid().unwrap_or_default();
    owner_of(child) == Some((owner.name_any().as_str(), uid.as_str()))
}

/// What bringing the namespaces in line takes.
#[derive(Debug, Default)]
pub struct Changes {
    /// Chosen namespaces without the SsmParameter.
    pub create: Vec<SsmParameter>,
    /// Kept SsmParameters whose spec is not the template (edited by
    /// someone, or a template changed): the desired one, and the uid of
    /// the one to replace the spec of.
    pub update: Vec<(SsmParameter, String)>,
    /// Kept SsmParameters of namespaces no longer chosen: namespace, name
    /// and uid.
    pub delete: Vec<(String, String, String)>,
    /// Chosen namespaces whose SsmParameter of that name is someone else's.
    pub conflicts: Vec<String>,
}

impl Changes {
    /// Nothing to write, and no conflict.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty()
            && self.update.is_empty()
            && self.delete.is_empty()
            && self.conflicts.is_empty()
    }
}

/// Compares what `owner` keeps (among the labelled `children`) with the
/// `chosen` namespaces.
pub fn changes(
    owner: &ClusterSsmParameter,
    chosen: &BTreeSet<String>,
    children: &[Arc<SsmParameter>],
) -> Changes {
    let name = owner.name_any();
    let mut changes = Changes::default();
    let mut present = BTreeSet::new();
    for child in children.iter().filter(|c| c.name_any() == name) {
        let namespace = child.namespace().unwrap_or_default();
        let uid = child.uid().unwrap_or_default();
        if !kept_by(child, owner) {
            // Labelled, but by another owner (or by hand): not ours to touch.
            if chosen.contains(&namespace) {
                changes.conflicts.push(namespace.clone());
                present.insert(namespace);
            }
            continue;
        }
        if !chosen.contains(&namespace) {
            if child.metadata.deletion_timestamp.is_none() {
                changes.delete.push((namespace, name.clone(), uid));
            }
            continue;
        }
        if child.spec != owner.spec.template {
            changes.update.push((desired(owner, &namespace), uid));
        }
        present.insert(namespace);
    }
    changes.create = (chosen.iter())
        .filter(|ns| !present.contains(*ns))
        .map(|ns| desired(owner, ns))
        .collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner(uid: &str) -> ClusterSsmParameter {
        serde_json::from_value(json!({
            "apiVersion": "ssm-operator.io/v1alpha1",
            "kind": "ClusterSsmParameter",
            "metadata": {"name": "registry", "uid": uid},
            "spec": {"namespaces": ["a"], "template": {"parameters": [{"name": "/ci/registry"}]}},
        }))
        .unwrap()
    }

    fn child_in(owner: &ClusterSsmParameter, namespace: &str) -> Arc<SsmParameter> {
        let mut child = desired(owner, namespace);
        child.metadata.uid = Some(format!("child-{namespace}"));
        Arc::new(child)
    }

    fn chosen(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_kept_ssm_parameter_is_labelled_owned_and_of_the_template() {
        let owner = owner("u1");
        let child = desired(&owner, "team-a");
        assert_eq!(child.namespace().as_deref(), Some("team-a"));
        assert_eq!(child.name_any(), "registry");
        assert_eq!(
            child.labels().get(CLUSTER_LABEL).map(String::as_str),
            Some("registry")
        );
        assert_eq!(child.spec, owner.spec.template);
        assert_eq!(owner_of(&child), Some(("registry", "u1")));
        assert!(kept_by(&child, &owner));
        assert!(
            !kept_by(&child, &self::owner("u2")),
            "a namesake of another uid"
        );
        let reference = &child.owner_references()[0];
        assert_eq!(reference.block_owner_deletion, None);
    }

    #[test]
    fn missing_namespaces_are_created_unchosen_deleted_edited_replaced() {
        let owner = owner("u1");
        let mut edited = (*child_in(&owner, "b")).clone();
        edited.spec.refresh_interval = Some("10s".into());
        let children = vec![
            child_in(&owner, "a"),
            Arc::new(edited),
            child_in(&owner, "c"),
            child_in(&self::owner("u0"), "d"),
            child_in(&self::owner("u0"), "elsewhere"),
        ];
        let changes = changes(&owner, &chosen(&["a", "b", "d", "new"]), &children);
        let created: Vec<_> = changes
            .create
            .iter()
            .map(|c| c.namespace().unwrap())
            .collect();
        assert_eq!(created, ["new"]);
        assert_eq!(changes.update.len(), 1);
        assert_eq!(changes.update[0].0.namespace().as_deref(), Some("b"));
        assert_eq!(changes.update[0].0.spec, owner.spec.template);
        assert_eq!(changes.update[0].1, "child-b");
        assert_eq!(
            changes.delete,
            [("c".to_owned(), "registry".to_owned(), "child-c".to_owned())]
        );
        assert_eq!(changes.conflicts, ["d"], "another uid's: never touched");
    }

    #[test]
    fn nothing_changes_when_every_namespace_holds_the_template() {
        let owner = owner("u1");
        let children = vec![child_in(&owner, "a"), child_in(&owner, "b")];
        let changes = changes(&owner, &chosen(&["a", "b"]), &children);
        assert!(changes.is_empty(), "{changes:?}");
    }
}
