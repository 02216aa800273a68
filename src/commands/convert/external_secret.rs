//! One ExternalSecret (ESO `external-secrets.io/v1` or `v1beta1`, a
//! Parameter Store store) as one SsmParameter giving the same Secret data,
//! or every reason it cannot be.

use std::collections::BTreeMap;

use kube::api::ObjectMeta;
use serde_json::Value;

use super::fields::{Fields, Problems};
use super::store::{Store, StoreRef};
use super::{duration, name_pattern, template};
use crate::api::{
    CreationPolicy, Decode, DeletionPolicy, IdentityRef, KeyFrom, ParameterRef, PathRef,
    SecretTarget, SecretType, SsmParameter, SsmParameterSpec,
};

/// A converted ExternalSecret, and what its user should know.
pub struct Converted {
    pub object: SsmParameter,
    pub notes: Vec<String>,
}

/// The ExternalSecret `namespace/name` with `spec`, reading through
/// `stores`. Without a namespace, `spec` is a ClusterExternalSecret's
/// `externalSecretSpec` (at `path`), made the template of a
/// ClusterSsmParameter.
pub fn convert(
    namespace: Option<&str>,
    name: &str,
    labels: Option<BTreeMap<String, String>>,
    (path, spec): (&str, Value),
    stores: &BTreeMap<StoreRef, Store>,
) -> Result<Converted, Problems> {
    let mut problems = Problems::new();
    let mut notes = Vec::new();
    let mut spec_fields = Fields::of(path, spec, &mut problems);
    let mut out = SsmParameterSpec::default();

    let store = store_of(namespace, &mut spec_fields, stores, &mut problems);
    let prefix = store.map(|s| s.prefix.clone()).unwrap_or_default();
    if let Some(store) = store {
        problems.extend(store.problems.iter().cloned());
        notes.extend(store.notes.iter().cloned());
        out.region = store.region.clone();
        out.identity = identity(namespace, store, &mut problems, &mut notes);
    }

    if let Some(interval) = spec_fields.string("refreshInterval", &mut problems) {
        match duration::refresh_interval(&interval) {
            // ESO's default is the operator's: leave it out.
            Ok(ours) if ours == "1h" => {}
            Ok(ours) => out.refresh_interval = Some(ours),
            Err(why) => problems.push(format!("spec.refreshInterval: {why}")),
        }
    }
    match spec_fields.string("refreshPolicy", &mut problems).as_deref() {
        None | Some("Periodic") => {}
        Some("OnChange") => out.refresh_interval = Some("0".to_owned()),
        Some(other) => problems.push(format!(
            "spec.refreshPolicy {other} has no equivalent (Periodic, and OnChange as refreshInterval: 0, convert)"
        )),
    }

    for mut entry in spec_fields.list("data", &mut problems) {
        if let Some(p) = data_entry(&mut entry, &prefix, &mut problems) {
            out.parameters.push(p);
        }
        entry.done(&mut problems);
    }
    for mut entry in spec_fields.list("dataFrom", &mut problems) {
        data_from(&mut entry, &prefix, &mut out, &mut problems, &mut notes);
        entry.done(&mut problems);
    }
    if out.parameters.is_empty() && out.path.is_none() && problems.is_empty() {
        problems.push("spec: neither data nor dataFrom reads a parameter".to_owned());
    }

    if let Some(target) = spec_fields.object("target", &mut problems) {
        out.target = secret_target(target, name, &mut problems, &mut notes);
    }
    spec_fields.done(&mut problems);

    if !problems.is_empty() {
        return Err(problems);
    }
    let object = SsmParameter {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: namespace.map(str::to_owned),
            labels,
            ..ObjectMeta::default()
        },
        spec: out,
        status: None,
    };
    Ok(Converted { object, notes })
}

/// The store `spec.secretStoreRef` names, when the input holds it.
fn store_of<'s>(
    namespace: Option<&str>,
    spec: &mut Fields,
    stores: &'s BTreeMap<StoreRef, Store>,
    problems: &mut Problems,
) -> Option<&'s Store> {
    let Some(mut reference) = spec.object("secretStoreRef", problems) else {
        problems.push("spec.secretStoreRef is missing".to_owned());
        return None;
    };
    let kind = reference
        .string("kind", problems)
        .unwrap_or_else(|| "SecretStore".to_owned());
    let name = reference.string("name", problems).unwrap_or_default();
    reference.done(problems);
    let wanted = StoreRef {
        namespace: (kind == "SecretStore").then(|| namespace.unwrap_or_default().to_owned()),
        kind,
        name,
    };
    let found = stores.get(&wanted);
    if found.is_none() {
        problems.push(format!(
            "spec.secretStoreRef: {wanted} is not in the input; give it too, so that its region and identity carry over"
        ));
    }
    found
}

/// The identity a store reads with, as `identity` here.
fn identity(
    namespace: Option<&str>,
    store: &Store,
    problems: &mut Problems,
    notes: &mut Vec<String>,
) -> Option<IdentityRef> {
    let mut identity = IdentityRef::default();
    if namespace.is_none() {
        // A ClusterSsmParameter's template.
        if let Some((_, account)) = &store.service_account {
            problems.push(format!(
                "the store reads as ServiceAccount {account}: a ClusterSsmParameter reads with the operator's own role (or a role it chains to), never a namespace's ServiceAccount"
            ));
        }
        notes.push("reads with the operator's own role, in every namespace it chooses".to_owned());
        if let Some(role) = &store.role_arn {
            identity.role_arn = Some(role.clone());
            notes.push(format!(
                "the chained role {role} must be allowed: the operator's --cluster-role-arns (chart value clusterRoleArns)"
            ));
        }
        return (identity != IdentityRef::default()).then_some(identity);
    }
    if let Some((account_namespace, account)) = &store.service_account {
        if let Some(other) = account_namespace
            .as_deref()
            .filter(|n| Some(*n) != namespace)
        {
            problems.push(format!(
                "the store reads as ServiceAccount {other}/{account}: an SsmParameter reads only as a ServiceAccount of its own namespace"
            ));
        }
        identity.service_account_name = Some(account.clone());
        notes.push(format!(
            "ServiceAccount {account} must consent: annotate it ssm-operator.io/allow-ssmparameters=true"
        ));
    } else {
        notes.push(
            "reads with the operator's own role: its namespace must be among --operator-identity-namespaces"
                .to_owned(),
        );
    }
    if let Some(role) = &store.role_arn {
        identity.role_arn = Some(role.clone());
        notes.push(format!(
            "the chained role {role} must be allowed: annotate the Namespace ssm-operator.io/allowed-role-arns"
        ));
    }
    (identity != IdentityRef::default()).then_some(identity)
}

/// One `spec.data[]` entry as a parameter.
fn data_entry(entry: &mut Fields, prefix: &str, problems: &mut Problems) -> Option<ParameterRef> {
    let key = entry.string("secretKey", problems);
    if entry.take("sourceRef").is_some() {
        problems.push(format!(
            "{}: generators and per-entry stores have no equivalent",
            entry.at("sourceRef")
        ));
    }
    let Some(mut remote) = entry.object("remoteRef", problems) else {
        problems.push(format!("{} is missing", entry.at("remoteRef")));
        return None;
    };
    let mut parameter = remote_ref(&mut remote, prefix, problems)?;
    if let Some(property) = remote.string("property", problems) {
        match gjson_path(&property) {
            Ok(()) => parameter.property = Some(property),
            Err(why) => problems.push(format!("{}: {why}", remote.at("property"))),
        }
    }
    remote.done(problems);
    match key {
        Some(key) => parameter.key = Some(key),
        None => problems.push(format!("{} is missing", entry.at("secretKey"))),
    }
    Some(parameter)
}

/// What `remoteRef` and `dataFrom[].extract` share: the name, its version
/// or label, and how the value is decoded.
fn remote_ref(remote: &mut Fields, prefix: &str, problems: &mut Problems) -> Option<ParameterRef> {
    let Some(key) = remote.string("key", problems) else {
        problems.push(format!("{} is missing", remote.at("key")));
        return None;
    };
    let mut parameter = ParameterRef {
        name: format!("{prefix}{key}"),
        ..ParameterRef::default()
    };
    // ESO reads `name:version`: a number selects a version, anything else
    // a label (Parameter Store's selector syntax).
    if let Some(version) = remote.string("version", problems) {
        match version.parse::<i64>() {
            Ok(n) if n >= 1 => parameter.version = Some(n),
            _ => parameter.label = Some(version),
        }
    }
    match remote.string("decodingStrategy", problems).as_deref() {
        None | Some("None") => {}
        Some("Base64") => parameter.decode = Some(Decode::Base64),
        Some(other) => problems.push(format!(
            "{}: {other} has no equivalent (None and Base64 convert)",
            remote.at("decodingStrategy")
        )),
    }
    match remote.string("conversionStrategy", problems).as_deref() {
        None | Some("Default") => {}
        Some(other) => problems.push(format!(
            "{}: {other} has no equivalent",
            remote.at("conversionStrategy")
        )),
    }
    match remote.string("metadataPolicy", problems).as_deref() {
        None | Some("None") => {}
        Some(other) => problems.push(format!(
            "{}: {other} (the parameter's tags) has no equivalent",
            remote.at("metadataPolicy")
        )),
    }
    Some(parameter)
}

/// A gjson path that is a dotted path here too: fields, array indexes and
/// `\.`; gjson's queries, wildcards and modifiers are not.
fn gjson_path(property: &str) -> Result<(), String> {
    match property.chars().find(|c| "*?#|@!=<>%()[]{},".contains(*c)) {
        Some(c) => Err(format!(
            "the gjson syntax {c:?} has no equivalent (a dotted path, array indexes and \\. convert)"
        )),
        None => Ok(()),
    }
}

/// One `spec.dataFrom[]` entry: an extract as a parameter, a find as the
/// path import.
fn data_from(
    entry: &mut Fields,
    prefix: &str,
    out: &mut SsmParameterSpec,
    problems: &mut Problems,
    notes: &mut Vec<String>,
) {
    if entry.take("sourceRef").is_some() {
        problems.push(format!(
            "{}: generators and per-entry stores have no equivalent",
            entry.at("sourceRef")
        ));
    }
    let rewrites = entry.list("rewrite", problems);
    if let Some(mut extract) = entry.object("extract", problems) {
        if let Some(mut parameter) = remote_ref(&mut extract, prefix, problems) {
            if extract.take("property").is_some() {
                problems.push(format!(
                    "{}: extracting the fields of a nested object has no equivalent (extract takes the top level)",
                    extract.at("property")
                ));
            }
            parameter.extract = Some(true);
            out.parameters.push(parameter);
        }
        extract.done(problems);
        if !rewrites.is_empty() {
            problems.push(format!(
                "{}: rewriting extracted keys has no equivalent",
                entry.at("rewrite")
            ));
        }
    } else if let Some(find) = entry.object("find", problems) {
        let path = find_path(find, rewrites, problems, notes);
        match (path, &out.path) {
            (Some(_), Some(_)) => problems.push(format!(
                "{}: a second find has no equivalent (one path import per SsmParameter)",
                entry.at("find")
            )),
            (Some(path), None) => out.path = Some(path),
            (None, _) => {}
        }
    } else {
        problems.push(format!("{}: neither extract nor find", entry.path()));
    }
}

/// A `find` (always recursive in ESO, keyed by full name) as a path import:
/// only with the rewrite that strips the path, so that the keys agree.
fn find_path(
    mut find: Fields,
    rewrites: Vec<Fields>,
    problems: &mut Problems,
    notes: &mut Vec<String>,
) -> Option<PathRef> {
    if find.take("tags").is_some() {
        problems.push(format!(
            "{}: finding by tags has no equivalent (find by path and name converts)",
            find.at("tags")
        ));
    }
    let path = find
        .string("path", problems)
        .unwrap_or_else(|| "/".to_owned());
    let mut include = Vec::new();
    if let Some(mut name) = find.object("name", problems) {
        if let Some(regexp) = name.string("regexp", problems) {
            match name_pattern::include_glob(&regexp) {
                Ok(glob) => include.push(glob),
                Err(why) => problems.push(why),
            }
        }
        name.done(problems);
    }
    for strategy in ["decodingStrategy", "conversionStrategy"] {
        match find.string(strategy, problems).as_deref() {
            None | Some("None") | Some("Default") => {}
            Some(other) => problems.push(format!(
                "{}: {other} has no equivalent for a path import",
                find.at(strategy)
            )),
        }
    }
    find.done(problems);
    if !strips(&path, rewrites, problems) {
        problems.push(format!(
            "find: ESO keys each found parameter by its full name, which no Secret key can be; only a rewrite of source ^{}/(.*) to $1 converts (as path.keyFrom: RelativePath)",
            path.trim_end_matches('/')
        ));
        return None;
    }
    notes.push(format!(
        "find under {path}: parameters below sub-paths, which ESO cannot key (a / in a key), are keyed by their relative path joined with '.'"
    ));
    Some(PathRef {
        prefix: path,
        recursive: Some(true),
        key_from: Some(KeyFrom::RelativePath),
        include,
        ..PathRef::default()
    })
}

/// Whether `rewrites` is the one regexp rewrite that strips `path`.
fn strips(path: &str, mut rewrites: Vec<Fields>, problems: &mut Problems) -> bool {
    if rewrites.len() != 1 {
        if rewrites.len() > 1 {
            problems.push("dataFrom[].rewrite: more than one rewrite has no equivalent".to_owned());
        }
        return false;
    }
    let mut rewrite = rewrites.remove(0);
    let Some(mut regexp) = rewrite.object("regexp", problems) else {
        rewrite.done(problems);
        return false;
    };
    let source = regexp.string("source", problems).unwrap_or_default();
    let target = regexp.string("target", problems).unwrap_or_default();
    regexp.done(problems);
    rewrite.done(problems);
    let trimmed = path.trim_end_matches('/');
    let escaped = trimmed.replace('.', "\\.");
    let sources = [
        format!("^{trimmed}/(.*)"),
        format!("^{escaped}/(.*)"),
        format!("{trimmed}/(.*)"),
    ];
    sources.contains(&source) && matches!(target.as_str(), "$1" | "${1}")
}

/// ESO's `target` as the Secret target here.
fn secret_target(
    mut target: Fields,
    name: &str,
    problems: &mut Problems,
    notes: &mut Vec<String>,
) -> Option<SecretTarget> {
    let mut out = SecretTarget {
        name: target.string("name", problems).filter(|n| n != name),
        immutable: target.boolean("immutable", problems).filter(|i| *i),
        ..SecretTarget::default()
    };
    let creation = target.string("creationPolicy", problems);
    out.creation_policy = match creation.as_deref() {
        None | Some("Owner") => None,
        Some("Orphan") => Some(CreationPolicy::Orphan),
        Some("Merge") => {
            notes.push(format!(
                "creationPolicy Merge: the Secret must consent: annotate it ssm-operator.io/merge-from={name}"
            ));
            Some(CreationPolicy::Merge)
        }
        Some(other) => {
            problems.push(format!(
                "spec.target.creationPolicy {other} has no equivalent (Owner, Orphan and Merge convert)"
            ));
            None
        }
    };
    out.deletion_policy = match target.string("deletionPolicy", problems).as_deref() {
        None | Some("Retain") => None,
        Some("Delete") => Some(DeletionPolicy::Delete),
        // ESO's Merge removes its keys and keeps the Secret: Delete does
        // that for a merged Secret here.
        Some("Merge") if out.creation_policy == Some(CreationPolicy::Merge) => {
            Some(DeletionPolicy::Delete)
        }
        Some(other) => {
            problems.push(format!(
                "spec.target.deletionPolicy {other} has no equivalent here with this creationPolicy"
            ));
            None
        }
    };
    if let Some(template) = target.object("template", problems) {
        secret_template(template, &mut out, problems);
    }
    target.done(problems);
    (out != SecretTarget::default()).then_some(out)
}

/// ESO's `target.template` into `out`.
fn secret_template(mut template: Fields, out: &mut SecretTarget, problems: &mut Problems) {
    if let Some(type_) = template.string("type", problems) {
        match type_.parse::<SecretType>() {
            Ok(SecretType::Opaque) => {}
            Ok(t) => out.type_ = Some(t),
            Err(_) => problems.push(format!(
                "spec.target.template.type {type_} is not a Secret type the operator writes"
            )),
        }
    }
    match template.string("engineVersion", problems).as_deref() {
        None | Some("v2") => {}
        Some(other) => problems.push(format!(
            "spec.target.template.engineVersion {other} has no equivalent (v2 converts)"
        )),
    }
    let merge = template.string("mergePolicy", problems);
    if let Some(mut metadata) = template.object("metadata", problems) {
        out.labels = metadata.strings("labels", problems).map(Into::into);
        out.annotations = metadata.strings("annotations", problems).map(Into::into);
        metadata.done(problems);
    }
    let data = template.strings("data", problems).unwrap_or_default();
    if !data.is_empty() && merge.as_deref() != Some("Merge") {
        problems.push(
            "spec.target.template.mergePolicy Replace (ESO's default) leaves the fetched keys out of the Secret; an SsmParameter's Secret holds them beside the template's: only mergePolicy: Merge converts"
                .to_owned(),
        );
    }
    let mut converted = BTreeMap::new();
    for (key, text) in data {
        match template::convert(&text) {
            Ok(ours) => {
                converted.insert(key, ours);
            }
            Err(why) => problems.push(format!("spec.target.template.data.{key}: {why}")),
        }
    }
    if !converted.is_empty() {
        out.template = Some(converted.into());
    }
    template.done(problems);
}
