//! How `check` and `policy` find the SsmParameter they talk about: a
//! manifest (`-f`) or a live object (`[-n namespace] name`), the way kubectl
//! does — `-n` defaults to the kubeconfig's namespace.

use std::path::Path;

use anyhow::{Context as _, bail};
use kube::api::Api;

use crate::api::SsmParameter;

/// The SsmParameter of `file`, or the live one named `name`. A manifest that
/// names no namespace takes `namespace`, when given.
pub async fn load(
    file: Option<&Path>,
    namespace: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<SsmParameter> {
    if let Some(file) = file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut obj: SsmParameter = serde_saphyr::from_str(&text)
            .with_context(|| format!("{} is not an SsmParameter manifest", file.display()))?;
        if obj.metadata.namespace.is_none() {
            obj.metadata.namespace = namespace.map(str::to_owned);
        }
        return Ok(obj);
    }
    let Some(name) = name else {
        bail!("name an SsmParameter: -f <manifest> or [-n <namespace>] <name>");
    };
    let client = kube::Client::try_default()
        .await
        .context("no cluster to read the SsmParameter from (-f reads a manifest)")?;
    let api: Api<SsmParameter> = match namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::default_namespaced(client),
    };
    api.get(name)
        .await
        .with_context(|| format!("reading SsmParameter {name}"))
}
