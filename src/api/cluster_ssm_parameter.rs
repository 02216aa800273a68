//! The `ClusterSsmParameter` API, `ssm-operator.io/v1alpha1`: one Secret in
//! many namespaces.
//!
//! The operator keeps an SsmParameter of the same name in each chosen
//! namespace, its spec the template, owned by the ClusterSsmParameter; those
//! SsmParameters read AWS together (one read per refresh, however many
//! namespaces) and write the Secrets. The doc comments are what `kubectl
//! explain` shows.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::api::SsmParameterSpec;

/// Writes the same Secret, from AWS Systems Manager Parameter Store, into
/// every namespace it chooses.
///
/// For each chosen namespace the operator keeps an SsmParameter of this
/// name there, whose spec is `template` (a cluster admin's object: its
/// SsmParameters read with the operator's own identity, whatever the
/// namespace). AWS is read once per refresh for all of them. A namespace
/// that stops matching loses its SsmParameter, and with it the Secret
/// (`creationPolicy: Owner`) or not (`Orphan`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ssm-operator.io",
    version = "v1alpha1",
    kind = "ClusterSsmParameter",
    plural = "clusterssmparameters",
    shortname = "cssmp",
    category = "ssm-operator",
    status = "ClusterSsmParameterStatus",
    doc = "Writes the same Secret, from AWS Systems Manager Parameter Store, into every namespace it chooses.",
    printcolumn = r#"{"name": "Namespaces", "type": "integer", "description": "Namespaces whose Secret is ready", "jsonPath": ".status.namespaces"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "description": "True, or the reason some namespace's Secret is not ready", "jsonPath": ".status.ready"}"#,
    printcolumn = r#"{"name": "Synced", "type": "string", "description": "Reason of the latest reads from AWS", "jsonPath": ".status.conditions[?(@.type==\"Synced\")].reason"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.namespaceSelector) || (has(self.namespaces) && size(self.namespaces) > 0)")
    .message("choose namespaces: namespaceSelector, namespaces, or both"))]
pub struct ClusterSsmParameterSpec {
    /// The namespaces whose labels match (`{}` matches every namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Namespaces by name, besides those the selector matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 256),
        inner(
            length(min = 1, max = 63),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        )
    )]
    pub namespaces: Vec<String>,

    /// The spec of the SsmParameter kept in each namespace. Its identity is
    /// the operator's own, or a role it chains to (`identity.roleArn`) that
    /// the operator's `--cluster-role-arns` allows; never a ServiceAccount.
    #[x_kube(validation = kube::core::Rule::new("!has(self.identity) || !has(self.identity.serviceAccountName)")
        .message("a ClusterSsmParameter reads with the operator's identity (or a roleArn it allows), never a namespace's ServiceAccount"))]
    pub template: SsmParameterSpec,
}

/// What the operator observed and did, over every chosen namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSsmParameterStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `True` when the Ready condition is True, otherwise its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,

    /// `Ready`: every chosen namespace's Secret is ready. `Synced`: every
    /// namespace's latest read and write succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The number of chosen namespaces whose Secret is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<i32>,

    /// The chosen namespaces whose Secret is not ready or not in sync, and
    /// why (never a value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub failed_namespaces: Vec<FailedNamespace>,
}

/// A namespace whose Secret is not as the template says.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FailedNamespace {
    /// The namespace.
    pub name: String,
    /// A reason of SsmParameter's conditions, or `SsmParameterConflict`:
    /// the namespace has an SsmParameter of this name that is not this
    /// ClusterSsmParameter's.
    pub reason: String,
    /// What failed, as that namespace's SsmParameter says.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}
