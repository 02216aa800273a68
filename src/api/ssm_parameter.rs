//! The `SsmParameter` API, `ssm-operator.io/v1alpha1`.
//!
//! The doc comments here are what `kubectl explain` shows; the schema
//! attributes and CEL rules are what the API server enforces at `kubectl
//! apply`, so malformed input never reaches the operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use strum::VariantArray as _;

use crate::api::StringMap;

/// The CRD's rule that no two parameters fill one Secret key (see
/// `SsmParameterSpec::parameters`): the keys are mapped once, and each must
/// be found exactly once among them. The one-element list binds the mapped
/// keys to `ks` (CEL's `cel.bind` is not in Kubernetes' CEL environment);
/// `distinct()` would need Kubernetes 1.34. The estimated cost, at 100
/// names of 1100 characters, is within the budget of one rule.
const DISTINCT_KEYS: &str = concat!(
    "[self.map(p, (has(p.extract) && p.extract)",
    " ? '/' + p.name + '/' + (has(p.keyPrefix) ? p.keyPrefix : '')",
    " : (has(p.key) ? p.key : p.name.substring(p.name.lastIndexOf('/') + 1)))]",
    ".all(ks, ks.all(k, ks.exists_one(j, j == k)))",
);

/// Keeps a Kubernetes Secret in sync with AWS Systems Manager Parameter Store.
///
/// The operator reads the named parameters (decrypting SecureStrings with its
/// AWS identity) and writes them, one key each, into a Secret of the same
/// namespace. Its conditions say exactly why when AWS refuses, never a value.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ssm-operator.io",
    version = "v1alpha1",
    kind = "SsmParameter",
    plural = "ssmparameters",
    shortname = "ssmp",
    category = "ssm-operator",
    namespaced,
    status = "SsmParameterStatus",
    doc = "Keeps a Kubernetes Secret in sync with AWS Systems Manager Parameter Store parameters.",
    printcolumn = r#"{"name": "Secret", "type": "string", "jsonPath": ".status.secretName"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "description": "True, or the reason the Secret is not ready", "jsonPath": ".status.ready"}"#,
    printcolumn = r#"{"name": "Synced", "type": "string", "description": "Reason of the latest read from AWS", "jsonPath": ".status.conditions[?(@.type==\"Synced\")].reason"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("(has(self.parameters) && size(self.parameters) > 0) || has(self.path)")
    .message("at least one of parameters or path is required"))]
pub struct SsmParameterSpec {
    /// AWS region of the parameters (SSM and KMS are regional). Defaults to
    /// the operator's region. A parameter named by ARN uses the ARN's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: Option<String>,

    /// The parameters to read; each becomes one key of the Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    // An extracting parameter stands for `/<name>/<keyPrefix>`, which no
    // Secret key can be (keys hold no `/`); its fields' keys are checked at
    // reconcile. (`filter` before `map` would lose the list's bounds, and
    // the CEL cost estimate with them.)
    #[x_kube(validation = kube::core::Rule::new(DISTINCT_KEYS)
        .message("every parameter must map to a distinct Secret key (set key to tell two apart)"))]
    pub parameters: Vec<ParameterRef>,

    /// Every parameter under a path (GetParametersByPath), one key each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathRef>,

    /// The AWS identity to read with. Default: the operator's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityRef>,

    /// The Secret to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<SecretTarget>,

    /// How often to read AWS again: a duration such as `30s`, `15m`, `1h`
    /// or `1h30m`, with ±10% jitter; `0` reads only when the spec changes.
    /// The minimum is `10s`. Default `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(h|m|s))+)$"), length(max = 32))]
    #[x_kube(validation = kube::core::Rule::new("self == '0' || duration(self) >= duration('10s')")
        .message("refreshInterval must be 0 or at least 10s"))]
    pub refresh_interval: Option<String>,

    /// Workloads of this namespace to restart (by a pod-template annotation)
    /// when the Secret's data changes — not when it is first created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub rollout_restart: Vec<WorkloadRef>,
}

/// Whose AWS permissions a read uses.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IdentityRef {
    /// Read AWS as this ServiceAccount of the same namespace: the operator
    /// asks the API server for a token for it (audience `sts.amazonaws.com`)
    /// and assumes the role named by its `eks.amazonaws.com/role-arn`
    /// annotation with it. The ServiceAccount must consent with the
    /// annotation `ssm-operator.io/allow-ssmparameters: "true"`. There is no
    /// namespace field, on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub service_account_name: Option<String>,

    /// A role to assume from that identity (a chained `sts:AssumeRole`).
    /// Allowed only when the Namespace's annotation
    /// `ssm-operator.io/allowed-role-arns` (comma-separated ARN globs) matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$")
    )]
    pub role_arn: Option<String>,
}

/// Bulk import of the parameters under a path.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PathRef {
    /// The path, starting with `/` (e.g. `/prd/payments`).
    #[schemars(length(min = 1, max = 1011), regex(pattern = r"^/[a-zA-Z0-9_.\-/]*$"))]
    #[x_kube(validation = kube::core::Rule::new("!self.startsWith('/aws/')")
        .message("paths under /aws/ are not read: they hold Secrets Manager references and public parameters"))]
    pub prefix: String,

    /// Also read parameters below sub-paths. Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<bool>,

    /// How a parameter's name becomes its Secret key: `Basename` (the last
    /// segment, default) or `RelativePath` (the segments below `prefix`
    /// joined with `.`). Two parameters mapping to one key are an error,
    /// never a silent overwrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_from: Option<KeyFrom>,

    /// Only the parameters whose full name matches one of these globs
    /// (default: every one). `*` matches within one path segment, `**`
    /// across segments, `?` one character: `/prd/app/db-*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 20),
        inner(length(min = 1, max = 1011), regex(pattern = r"^[a-zA-Z0-9_./*?-]+$"))
    )]
    pub include: Vec<String>,

    /// Not the parameters whose full name matches one of these globs
    /// (as `include`); an excluded name is never read, even if included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 20),
        inner(length(min = 1, max = 1011), regex(pattern = r"^[a-zA-Z0-9_./*?-]+$"))
    )]
    pub exclude: Vec<String>,
}

/// How a parameter read by path is named in the Secret.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum KeyFrom {
    #[default]
    Basename,
    RelativePath,
}

/// A workload to restart when the Secret changes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: WorkloadKind,
    /// Its name, in the SsmParameter's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The kinds of workload that can be restarted.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

/// One parameter of Parameter Store and the Secret key it fills.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!(has(self.version) && has(self.label))")
    .message("version and label are mutually exclusive"))]
#[x_kube(validation = kube::core::Rule::new("!(has(self.extract) && self.extract) || (!has(self.key) && !has(self.property))")
    .message("extract makes a key of every field: it is exclusive with key and property"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.keyPrefix) || (has(self.extract) && self.extract)")
    .message("keyPrefix applies only with extract: true"))]
pub struct ParameterRef {
    /// Parameter name (`prd-db-pass`, `/prd/db/pass`) or full ARN
    /// (`arn:aws:ssm:<region>:<account>:parameter/<name>`), e.g. a parameter
    /// shared from another account.
    /// Not under `/aws/`: Secrets Manager references
    /// (`/aws/reference/secretsmanager/…`) and public parameters
    /// (`/aws/service/…`) are refused.
    #[schemars(
        length(min = 1, max = 1100),
        regex(
            pattern = r"^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/)?[a-zA-Z0-9_.\-/]*[a-zA-Z0-9_.\-]$"
        )
    )]
    #[x_kube(validation = kube::core::Rule::new("!self.matches('^(arn:[^:]+:ssm:[^:]*:[^:]*:parameter)?/?aws/')")
        .message("names under /aws/ are not read: Secrets Manager references (/aws/reference/secretsmanager/...) come only decrypted and without versions, and public parameters (/aws/service/...) hold no secret"))]
    pub name: String,

    /// Secret data key. Default: the last path segment of `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: Option<String>,

    /// Pin a version of the parameter. Default: the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub version: Option<i64>,

    /// Pin a label of the parameter (exclusive with `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 100),
        regex(pattern = r"^[a-zA-Z._-][a-zA-Z0-9._-]*$")
    )]
    pub label: Option<String>,

    /// Decrypt a SecureString (default `true`). `false` stores the value
    /// exactly as AWS returns it without decryption, for applications that
    /// decrypt with KMS themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decrypt: Option<bool>,

    /// The value is JSON: take this field of it. A dotted path reaches
    /// nested fields (`db.password`, `hosts.0` for an array's first item);
    /// `\.` is a literal dot in a field name (`tls\.crt`). A non-string
    /// value is written as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub property: Option<String>,

    /// `Base64`: the value (or its `property`) is base64 text, and the
    /// Secret holds the decoded bytes — keystores, DER keys. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode: Option<Decode>,

    /// The value is a JSON object: every top-level field becomes its own
    /// key, named `keyPrefix` + the field's name (a non-string value as
    /// JSON text). Exclusive with `key` and `property`. Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<bool>,

    /// With `extract`: the prefix of the keys made (`db-` gives `db-user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key_prefix: Option<String>,
}

/// How a value is decoded before it is written: `None` (default), or
/// `Base64` — the value (or its `property`) is standard base64 text, line
/// breaks and missing padding allowed, and the Secret holds the bytes.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum Decode {
    #[default]
    None,
    Base64,
}

/// The Secret the operator writes, always in the SsmParameter's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!(has(self.immutable) && self.immutable && has(self.creationPolicy) && self.creationPolicy == 'Merge')")
    .message("an immutable Secret cannot be merged into"))]
pub struct SecretTarget {
    /// Secret name. Default: the SsmParameter's name. There is no namespace
    /// field on purpose: the Secret lives next to the SsmParameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: Option<String>,

    /// Secret type. Default `Opaque`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<SecretType>,

    /// Labels copied onto the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<StringMap>,

    /// Annotations copied onto the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,

    /// Extra keys built by substituting `{{ key }}` with the value of that
    /// key, e.g. `DATABASE_URL: postgres://app:{{ password | urlpath }}@db/app`.
    /// Filters, chainable left to right: `urlquery` (query component, space
    /// as `+`), `urlpath` (path segment or userinfo), `json` (escaped as the
    /// inside of a JSON string, without quotes), `b64enc`, `b64dec`, `trim`.
    /// Pure substitution: no other functions, no file, environment or
    /// network access. Each template is at most 8192 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 50, "additionalProperties" = {
        "type": "string",
        "maxLength": 8192,
        "x-kubernetes-validations": [crate::api::template_rule()],
    }))]
    #[x_kube(validation = kube::core::Rule::new("self.all(k, k.size() <= 253 && k.matches('^[-._a-zA-Z0-9]+$'))")
        .message("template keys must be valid Secret keys ([-._a-zA-Z0-9]+)"))]
    pub template: Option<StringMap>,

    /// Create an immutable Secret; a later change of its data replaces it
    /// (delete and create), announced by an Event. Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,

    /// `Owner` (default): the Secret is owned by the SsmParameter and deleted
    /// with it. `Orphan`: no owner, the Secret survives the SsmParameter.
    /// `Merge`: write only this SsmParameter's keys into a Secret that someone
    /// else owns (server-side apply field ownership), leaving the rest alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_policy: Option<CreationPolicy>,

    /// When a parameter disappears from AWS: `Retain` (default) keeps the last
    /// value and reports `ParameterNotFound`; `Delete` removes the Secret (with
    /// `Merge`, only this SsmParameter's keys; for a path import, the deleted
    /// parameter's key). "Disappears" means AWS says the name does not exist:
    /// a partial, empty or truncated answer is `AwsUnavailable` and changes
    /// nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Who owns the Secret.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum CreationPolicy {
    #[default]
    Owner,
    Orphan,
    Merge,
}

/// What happens to the Secret when its parameters disappear from AWS.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// The Secret types the operator may write. Service account tokens and
/// bootstrap tokens are refused on purpose: they grant cluster access.
///
/// The `type` strings are spelled once, here; the schema, serde and
/// [`SecretType::as_str`] all take them from strum.
#[derive(
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
)]
pub enum SecretType {
    #[default]
    Opaque,
    #[strum(serialize = "kubernetes.io/basic-auth")]
    BasicAuth,
    #[strum(serialize = "kubernetes.io/ssh-auth")]
    SshAuth,
    #[strum(serialize = "kubernetes.io/tls")]
    Tls,
    #[strum(serialize = "kubernetes.io/dockerconfigjson")]
    DockerConfigJson,
}

impl SecretType {
    /// The Secret's `type` string.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Serialize for SecretType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SecretType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|_| {
            let allowed: Vec<&str> = Self::VARIANTS.iter().map(|t| t.as_str()).collect();
            serde::de::Error::custom(format!(
                "unknown Secret type {text:?}; allowed: {}",
                allowed.join(", ")
            ))
        })
    }
}

impl schemars::JsonSchema for SecretType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretType".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let allowed: Vec<&str> = Self::VARIANTS.iter().map(|t| t.as_str()).collect();
        schemars::json_schema!({"type": "string", "enum": allowed})
    }
}

/// What the operator observed and did.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SsmParameterStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The Secret the operator writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,

    /// `True` when the Ready condition is True, otherwise its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,

    /// `Ready`: the Secret exists and holds every key the spec asks for.
    /// `Synced`: the latest read from AWS and write of the Secret succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// What the Secret holds now, one entry per key (never the values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ParameterStatus>,

    /// Identifies the Secret data whose `Updated` Event and workload restarts
    /// are done: a hash of parameter names, versions and the spec's shaping
    /// of them, never of values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<String>,

    /// The `resourceVersion` of the Secret as the last good sync left it: a
    /// restarted operator that finds the Secret still at this version knows
    /// it holds what `parameters` says, and probes versions without
    /// decrypting anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_resource_version: Option<String>,
}

/// One parameter as it is in the Secret now.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParameterStatus {
    /// The parameter's name as the spec gives it.
    pub name: String,
    /// The Secret key it fills.
    pub key: String,
    /// The parameter version in the Secret.
    pub version: i64,
    /// `String`, `StringList` or `SecureString`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The KMS key of a SecureString, when AWS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// When the parameter last changed in AWS (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl ParameterRef {
    /// The Secret key this parameter fills.
    pub fn secret_key(&self) -> &str {
        match &self.key {
            Some(key) => key,
            None => self.name.rsplit('/').next().unwrap_or(&self.name),
        }
    }

    /// With `extract`, the prefix of the keys of its fields.
    pub fn extracted_prefix(&self) -> Option<&str> {
        (self.extract == Some(true)).then(|| self.key_prefix.as_deref().unwrap_or_default())
    }

    /// Whether to decrypt a SecureString.
    pub fn decrypts(&self) -> bool {
        self.decrypt.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::parameter_ref;

    #[test]
    fn secret_key_defaults_to_last_path_segment() {
        assert_eq!(parameter_ref("prd-db-pass").secret_key(), "prd-db-pass");
        assert_eq!(parameter_ref("/prd/db/pass").secret_key(), "pass");
        assert_eq!(
            parameter_ref("arn:aws:ssm:ap-northeast-1:111122223333:parameter/prd/db/pass")
                .secret_key(),
            "pass"
        );
    }

    #[test]
    fn explicit_key_wins() {
        let mut p = parameter_ref("/prd/db/pass");
        p.key = Some("password".into());
        assert_eq!(p.secret_key(), "password");
    }

    #[test]
    fn decrypt_defaults_to_true() {
        assert!(parameter_ref("x").decrypts());
    }
}

#[cfg(test)]
mod drift {
    use crate::api::CrdKind;

    /// `crds/` and the chart's copy are what users apply; they must be what
    /// the types generate.
    #[test]
    fn committed_crds_match_the_rust_types() {
        let committed = [
            (
                CrdKind::SsmParameter,
                include_str!("../../crds/ssmparameters.ssm-operator.io.yaml"),
                include_str!("../../deploy/ssm-operator/crd/ssmparameters.ssm-operator.io.yaml"),
            ),
            (
                CrdKind::ClusterSsmParameter,
                include_str!("../../crds/clusterssmparameters.ssm-operator.io.yaml"),
                include_str!(
                    "../../deploy/ssm-operator/crd/clusterssmparameters.ssm-operator.io.yaml"
                ),
            ),
        ];
        for (kind, repository, chart) in committed {
            let generated = crate::api::crd_yaml(Some(kind)).unwrap();
            for (place, crd) in [("crds/", repository), ("the chart", chart)] {
                assert!(
                    crd == generated,
                    "the {kind:?} CRD in {place} is stale: run `make crd`"
                );
            }
        }
    }
}
