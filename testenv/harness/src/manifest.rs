//! The SsmParameter manifests the tests apply: one shape, built here, for
//! every test file. The text is what `kubectl apply -f -` and
//! [`Scenario::apply`](crate::Scenario::apply) take.

use serde_json::{Value, json};

/// The `apiVersion` of SsmParameter.
pub const API_VERSION: &str = "ssm-operator.io/v1alpha1";

/// An SsmParameter named `name` with `spec`, as JSON text (which is also
/// YAML); its namespace is the one it is applied in.
pub fn ssm_parameter(name: &str, spec: Value) -> String {
    object(json!({"name": name}), spec).to_string()
}

/// An SsmParameter `namespace/name` with `spec`, as JSON text: for what
/// reads the manifest without applying it in a namespace (`ssm-operator
/// check -f`, the policy generator).
pub fn ssm_parameter_in(name: &str, namespace: &str, spec: Value) -> String {
    object(json!({"name": name, "namespace": namespace}), spec).to_string()
}

/// An SsmParameter named `name` whose spec is YAML text as a user writes
/// it, every line indented by two spaces (the block under `spec:`): for
/// specs that must reach the API server exactly as written — malformed
/// ones, which a JSON value could not always express — and for the demo,
/// which shows the manifest.
pub fn ssm_parameter_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: {API_VERSION}\nkind: SsmParameter\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

fn object(metadata: Value, spec: Value) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "SsmParameter",
        "metadata": metadata,
        "spec": spec,
    })
}
