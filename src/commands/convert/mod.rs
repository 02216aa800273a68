//! `ssm-operator convert`: External Secrets Operator manifests of the
//! Parameter Store provider as SsmParameters. Reads ExternalSecrets with
//! the SecretStores and ClusterSecretStores they name (files or stdin,
//! several YAML documents, `kind: List` too), prints the SsmParameters on
//! stdout, and reports on stderr, per object, every field that has no
//! equivalent — such an object is not printed, and the exit status is 1.
//! Nothing is dropped unseen: a field the conversion does not know is a
//! reason too.

mod cluster_external_secret;
mod duration;
mod external_secret;
mod fields;
mod name_pattern;
mod store;
mod template;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use fields::{Fields, Problems};
use store::StoreRef;

use crate::api::{ClusterSsmParameter, SsmParameter};

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// YAML files of ExternalSecrets and their stores; `-` or none reads
    /// standard input.
    pub files: Vec<PathBuf>,
}

/// What converting a set of manifests gave.
#[derive(Debug, Default)]
pub struct Conversion {
    pub objects: Vec<SsmParameter>,
    pub clusters: Vec<ClusterSsmParameter>,
    /// Per object that did not convert (`ExternalSecret payments/db`), why.
    pub refused: Vec<(String, Problems)>,
    /// What the users of converted objects should know.
    pub notes: Vec<String>,
}

pub fn run(args: ConvertArgs) -> anyhow::Result<ExitCode> {
    let mut documents = Vec::new();
    let files = match args.files.is_empty() {
        true => vec![PathBuf::from("-")],
        false => args.files,
    };
    for file in files {
        let text = match file.as_os_str() == "-" {
            true => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading standard input")?;
                text
            }
            false => std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?,
        };
        let parsed: Vec<Value> = serde_saphyr::from_multiple(&text)
            .with_context(|| format!("{} is not YAML", file.display()))?;
        documents.extend(parsed);
    }
    let conversion = convert(documents);
    for note in &conversion.notes {
        eprintln!("note: {note}");
    }
    for (object, problems) in &conversion.refused {
        eprintln!("{object}: not converted:");
        for problem in problems {
            eprintln!("  - {problem}");
        }
    }
    let mut yaml = Vec::new();
    let objects = (conversion.objects.iter().map(serde_saphyr::to_string))
        .chain(conversion.clusters.iter().map(serde_saphyr::to_string));
    for text in objects {
        let mut text = text?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        yaml.push(text);
    }
    print!("{}", yaml.join("---\n"));
    Ok(match conversion.refused.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

/// The SsmParameters of `documents`, and what did not convert.
pub fn convert(documents: Vec<Value>) -> Conversion {
    let documents: Vec<Value> = documents.into_iter().flat_map(list_items).collect();
    let mut stores = BTreeMap::new();
    let mut out = Conversion::default();
    let mut external_secrets = Vec::new();
    let mut cluster_external_secrets = Vec::new();
    for document in documents {
        let Some(object) = Object::of(document) else {
            out.refused.push((
                "a document".to_owned(),
                vec!["not a Kubernetes object (apiVersion, kind and metadata.name)".to_owned()],
            ));
            continue;
        };
        let id = object.id();
        if !object.api_version.starts_with("external-secrets.io/") {
            let why = match object
                .api_version
                .starts_with("generators.external-secrets.io/")
            {
                true => "generators have no equivalent: the operator reads Parameter Store only",
                false => "not an External Secrets Operator object",
            };
            out.refused.push((id, vec![why.to_owned()]));
            continue;
        }
        match object.kind.as_str() {
            "SecretStore" | "ClusterSecretStore" => {
                let reference = StoreRef {
                    namespace: (object.kind == "SecretStore")
                        .then(|| object.namespace.clone().unwrap_or_default()),
                    kind: object.kind.clone(),
                    name: object.name.clone(),
                };
                stores.insert(reference.clone(), store::read(&reference, object.spec));
            }
            "ExternalSecret" => external_secrets.push(object),
            "ClusterExternalSecret" => cluster_external_secrets.push(object),
            "PushSecret" | "ClusterPushSecret" => out.refused.push((
                id,
                vec![
                    "PushSecret writes to AWS: the operator only reads Parameter Store".to_owned(),
                ],
            )),
            other => out
                .refused
                .push((id, vec![format!("{other} has no equivalent")])),
        }
    }
    for object in external_secrets {
        let id = object.id();
        match external_secret::convert(
            object.namespace.as_deref(),
            &object.name,
            object.labels,
            ("spec", object.spec),
            &stores,
        ) {
            Ok(converted) => {
                out.notes
                    .extend(converted.notes.into_iter().map(|n| format!("{id}: {n}")));
                out.objects.push(converted.object);
            }
            Err(problems) => out.refused.push((id, problems)),
        }
    }
    for object in cluster_external_secrets {
        let id = object.id();
        match cluster_external_secret::convert(&object.name, object.labels, object.spec, &stores) {
            Ok(converted) => {
                out.notes
                    .extend(converted.notes.into_iter().map(|n| format!("{id}: {n}")));
                out.clusters.push(converted.object);
            }
            Err(problems) => out.refused.push((id, problems)),
        }
    }
    out.notes.sort();
    out.notes.dedup();
    out
}

/// A `kind: List` (as `kubectl get -o yaml` prints) as its items.
fn list_items(document: Value) -> Vec<Value> {
    match document {
        Value::Object(ref o) if o.get("kind") == Some(&Value::String("List".to_owned())) => o
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// The parts of a manifest the conversion reads; the server's own fields
/// (`status`, `metadata.uid`, …) are not the user's intent and are left.
struct Object {
    api_version: String,
    kind: String,
    name: String,
    namespace: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    spec: Value,
}

impl Object {
    fn of(document: Value) -> Option<Self> {
        let mut ignored = Problems::new();
        let mut fields = Fields::of("", document, &mut ignored);
        let api_version = fields.string("apiVersion", &mut ignored)?;
        let kind = fields.string("kind", &mut ignored)?;
        let mut metadata = fields.object("metadata", &mut ignored)?;
        Some(Self {
            api_version,
            kind,
            name: metadata.string("name", &mut ignored)?,
            namespace: metadata.string("namespace", &mut ignored),
            labels: metadata.strings("labels", &mut ignored),
            spec: fields.take("spec").unwrap_or(Value::Null),
        })
    }

    fn id(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{} {namespace}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Decode, KeyFrom};
    use serde_json::json;

    fn store(kind: &str, aws: Value) -> Value {
        let mut metadata = json!({"name": "store"});
        if kind == "SecretStore" {
            metadata["namespace"] = json!("payments");
        }
        json!({"apiVersion": "external-secrets.io/v1", "kind": kind, "metadata": metadata,
               "spec": {"provider": {"aws": aws}}})
    }

    fn external_secret(spec: Value) -> Value {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
               "metadata": {"name": "db", "namespace": "payments", "labels": {"team": "p"}},
               "spec": spec})
    }

    #[test]
    fn an_external_secret_and_its_store_become_one_ssm_parameter() {
        let out = convert(vec![
            store(
                "SecretStore",
                json!({"service": "ParameterStore", "region": "eu-west-1", "prefix": "/prd",
                       "role": "arn:aws:iam::111122223333:role/r",
                       "auth": {"jwt": {"serviceAccountRef": {"name": "app"}}}}),
            ),
            external_secret(json!({
                "refreshInterval": "30m",
                "secretStoreRef": {"name": "store"},
                "target": {"name": "db-secret", "creationPolicy": "Orphan"},
                "data": [{"secretKey": "pw", "remoteRef": {"key": "/db/pass", "version": "3",
                          "property": "a.b", "decodingStrategy": "Base64"}},
                         {"secretKey": "user", "remoteRef": {"key": "/db/user", "version": "prod"}}],
                "dataFrom": [{"extract": {"key": "/db/json"}}],
            })),
        ]);
        assert!(out.refused.is_empty(), "{:?}", out.refused);
        let [object] = out.objects.as_slice() else {
            panic!("{:?}", out.objects)
        };
        assert_eq!(object.metadata.namespace.as_deref(), Some("payments"));
        assert_eq!(object.metadata.labels.as_ref().unwrap()["team"], "p");
        let spec = &object.spec;
        assert_eq!(spec.region.as_deref(), Some("eu-west-1"));
        assert_eq!(spec.refresh_interval.as_deref(), Some("30m"));
        let identity = spec.identity.as_ref().unwrap();
        assert_eq!(identity.service_account_name.as_deref(), Some("app"));
        assert_eq!(
            identity.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/r")
        );
        let [pw, user, json] = spec.parameters.as_slice() else {
            panic!("{:?}", spec.parameters)
        };
        assert_eq!(
            (
                pw.name.as_str(),
                pw.key.as_deref(),
                pw.version,
                pw.property.as_deref()
            ),
            ("/prd/db/pass", Some("pw"), Some(3), Some("a.b"))
        );
        assert_eq!(pw.decode, Some(Decode::Base64));
        assert_eq!(user.label.as_deref(), Some("prod"));
        assert_eq!(
            (json.name.as_str(), json.extract),
            ("/prd/db/json", Some(true))
        );
        let target = spec.target.as_ref().unwrap();
        assert_eq!(target.name.as_deref(), Some("db-secret"));
        assert_eq!(
            target.creation_policy,
            Some(crate::api::CreationPolicy::Orphan)
        );
        assert!(out.notes.iter().any(|n| n.contains("allow-ssmparameters")));
        assert!(out.notes.iter().any(|n| n.contains("allowed-role-arns")));
    }

    #[test]
    fn a_find_with_the_rewrite_that_strips_its_path_is_a_path_import() {
        let out = convert(vec![
            store("ClusterSecretStore", json!({"service": "ParameterStore"})),
            external_secret(json!({
                "secretStoreRef": {"name": "store", "kind": "ClusterSecretStore"},
                "dataFrom": [{"find": {"path": "/prd/app", "name": {"regexp": "^/prd/app/db-.*"}},
                              "rewrite": [{"regexp": {"source": "^/prd/app/(.*)", "target": "$1"}}]}],
            })),
        ]);
        assert!(out.refused.is_empty(), "{:?}", out.refused);
        let path = out.objects[0].spec.path.as_ref().unwrap();
        assert_eq!(path.prefix, "/prd/app");
        assert_eq!(path.recursive, Some(true));
        assert_eq!(path.key_from, Some(KeyFrom::RelativePath));
        assert_eq!(path.include, ["/prd/app/db-**"]);
    }

    #[test]
    fn an_object_that_does_not_convert_is_refused_whole_with_every_reason() {
        let out = convert(vec![
            store("SecretStore", json!({"service": "ParameterStore"})),
            external_secret(json!({
                "secretStoreRef": {"name": "store"},
                "refreshInterval": "1s",
                "data": [{"secretKey": "a", "remoteRef": {"key": "/a", "metadataPolicy": "Fetch"}}],
                "target": {"template": {"mergePolicy": "Merge", "data": {"x": "{{ .a | upper }}"}}},
                "somethingNew": true,
            })),
        ]);
        assert!(out.objects.is_empty());
        let [(object, problems)] = out.refused.as_slice() else {
            panic!("{:?}", out.refused)
        };
        assert_eq!(object, "ExternalSecret payments/db");
        for why in [
            "spec.refreshInterval",
            "metadataPolicy",
            "\"upper\"",
            "spec.somethingNew: has no equivalent",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(why)),
                "{why}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_list_is_read_item_by_item_and_other_kinds_are_refused() {
        let out = convert(vec![
            json!({"kind": "List", "items": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
                {"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret", "metadata": {"name": "all"}},
            ]}),
            json!("not an object"),
        ]);
        let refused: Vec<&str> = out.refused.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(
            refused,
            ["ConfigMap c", "a document", "ClusterExternalSecret all"]
        );
    }

    fn cluster_external_secret(spec: Value) -> Value {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
               "metadata": {"name": "registry"}, "spec": spec})
    }

    #[test]
    fn a_cluster_external_secret_becomes_a_cluster_ssm_parameter() {
        let out = convert(vec![
            store(
                "ClusterSecretStore",
                json!({"service": "ParameterStore", "prefix": "/ci",
                       "role": "arn:aws:iam::111122223333:role/registry"}),
            ),
            cluster_external_secret(json!({
                "externalSecretName": "registry-credentials",
                "namespaceSelectors": [{"matchLabels": {"registry": "yes"}}],
                "namespaces": ["build"],
                "refreshTime": "1m",
                "externalSecretSpec": {
                    "secretStoreRef": {"name": "store", "kind": "ClusterSecretStore"},
                    "refreshInterval": "15m",
                    "data": [{"secretKey": "password", "remoteRef": {"key": "/registry/password"}}],
                },
            })),
        ]);
        assert!(out.refused.is_empty(), "{:?}", out.refused);
        let [object] = out.clusters.as_slice() else {
            panic!("{:?}", out.clusters)
        };
        assert_eq!(
            object.metadata.name.as_deref(),
            Some("registry-credentials")
        );
        let spec = &object.spec;
        let labels = spec
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap();
        assert_eq!(labels["registry"], "yes");
        assert_eq!(spec.namespaces, ["build"]);
        let template = &spec.template;
        assert_eq!(template.parameters[0].name, "/ci/registry/password");
        assert_eq!(template.refresh_interval.as_deref(), Some("15m"));
        let identity = template.identity.as_ref().unwrap();
        assert_eq!(identity.service_account_name, None);
        assert_eq!(
            identity.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/registry")
        );
        assert!(
            out.notes.iter().any(|n| n.contains("--cluster-role-arns")),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn a_cluster_external_secret_without_an_equivalent_is_refused_with_every_reason() {
        let out = convert(vec![
            store(
                "ClusterSecretStore",
                json!({"service": "ParameterStore",
                       "auth": {"jwt": {"serviceAccountRef": {"name": "reader", "namespace": "ops"}}}}),
            ),
            cluster_external_secret(json!({
                "namespaceSelectors": [{"matchLabels": {"a": "1"}}, {"matchLabels": {"b": "1"}}],
                "externalSecretMetadata": {"labels": {"x": "y"}},
                "externalSecretSpec": {
                    "secretStoreRef": {"name": "store", "kind": "ClusterSecretStore"},
                    "data": [{"secretKey": "a", "remoteRef": {"key": "/a"}}],
                },
            })),
            cluster_external_secret(json!({
                "namespaces": ["a"],
                "externalSecretSpec": {"secretStoreRef": {"name": "local"},
                                       "data": [{"secretKey": "a", "remoteRef": {"key": "/a"}}]},
            })),
        ]);
        assert!(out.clusters.is_empty());
        let [(_, first), (_, second)] = out.refused.as_slice() else {
            panic!("{:?}", out.refused)
        };
        for why in [
            "2 selectors",
            "externalSecretMetadata.labels",
            "never a namespace's ServiceAccount",
        ] {
            assert!(first.iter().any(|p| p.contains(why)), "{why}: {first:?}");
        }
        assert!(
            second
                .iter()
                .any(|p| p.contains("a SecretStore is one per namespace")),
            "{second:?}"
        );
    }
}
