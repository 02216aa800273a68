//! What users write and read: the SsmParameter types, the condition reasons,
//! and the value type that never prints. No IO.

mod filter;
mod reason;
mod ssm_parameter;
mod string_map;
mod value;

pub use filter::{Filter, template_pattern, template_rule};
pub use reason::*;
pub use ssm_parameter::*;
pub use string_map::StringMap;
pub use value::SecretValue;

use kube::CustomResourceExt;

/// The CustomResourceDefinition, as YAML.
pub fn crd_yaml() -> anyhow::Result<String> {
    Ok(serde_saphyr::to_string(&SsmParameter::crd())?)
}
