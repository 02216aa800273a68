//! What users write and read: the SsmParameter types, the condition reasons,
//! and the value type that never prints. No IO.

mod cluster_ssm_parameter;
mod filter;
mod reason;
mod ssm_parameter;
mod string_map;
mod value;

pub use cluster_ssm_parameter::*;
pub use filter::{Filter, template_pattern, template_rule};
pub use reason::*;
pub use ssm_parameter::*;
pub use string_map::StringMap;
pub use value::SecretValue;

use kube::CustomResourceExt;

/// The kinds the operator defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum CrdKind {
    SsmParameter,
    ClusterSsmParameter,
}

impl CrdKind {
    pub const ALL: [Self; 2] = [Self::SsmParameter, Self::ClusterSsmParameter];

    pub fn crd(
        self,
    ) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition
    {
        match self {
            Self::SsmParameter => SsmParameter::crd(),
            Self::ClusterSsmParameter => ClusterSsmParameter::crd(),
        }
    }
}

/// The CustomResourceDefinition of `kind`, or of every kind, as YAML
/// documents.
pub fn crd_yaml(kind: Option<CrdKind>) -> anyhow::Result<String> {
    let kinds = kind.map_or_else(|| CrdKind::ALL.to_vec(), |k| vec![k]);
    let documents: Result<Vec<String>, _> = kinds
        .iter()
        .map(|k| serde_saphyr::to_string(&k.crd()))
        .collect();
    Ok(documents?.join("---\n"))
}
