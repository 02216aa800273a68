//! Malformed SsmParameters are refused by the API server itself, at
//! `kubectl apply`, with a message naming the field — nothing is written.

use ssm_operator_testenv::manifest::ssm_parameter_yaml;
use ssm_operator_testenv::{Scenario, env, kubectl};

/// 100 parameters with names of 1100 characters (the schema's maxima) and
/// distinct default keys, or with the last two sharing one.
fn hundred_long_names(clash: bool) -> String {
    let names: String = (0..100)
        .map(|i| {
            let last = if clash && i == 99 { 98 } else { i };
            let stem = "s".repeat(1100 - 6);
            format!("  - name: /{stem}/k{last:03}\n")
        })
        .collect();
    format!("  parameters:\n{names}")
}

/// (what is wrong, spec, a fragment the error must contain)
fn malformed() -> Vec<(&'static str, String, &'static str)> {
    let hundred_and_one: String = (0..101).map(|i| format!("  - name: p{i}\n")).collect();
    vec![
        ("no parameters", "  parameters: []\n".into(), "at least one of parameters or path"),
        ("parameters missing", "  region: ap-northeast-1\n".into(), "at least one of parameters or path"),
        ("empty name", "  parameters:\n  - name: \"\"\n".into(), "spec.parameters[0].name"),
        ("name with a space", "  parameters:\n  - name: \"a b\"\n".into(), "spec.parameters[0].name"),
        ("name ending in a slash", "  parameters:\n  - name: /a/\n".into(), "spec.parameters[0].name"),
        ("invalid key", "  parameters:\n  - name: a\n    key: \"pass word\"\n".into(), "spec.parameters[0].key"),
        ("empty key", "  parameters:\n  - name: a\n    key: \"\"\n".into(), "spec.parameters[0].key"),
        (
            "duplicate explicit keys",
            "  parameters:\n  - name: a\n    key: k\n  - name: b\n    key: k\n".into(),
            "distinct Secret key",
        ),
        (
            "duplicate default keys",
            "  parameters:\n  - name: /x/pass\n  - name: /y/pass\n".into(),
            "distinct Secret key",
        ),
        (
            "an explicit key that is another's default key",
            "  parameters:\n  - name: /x/pass\n  - name: b\n    key: pass\n".into(),
            "distinct Secret key",
        ),
        (
            "one parameter extracted twice with one prefix",
            "  parameters:\n  - name: /db\n    extract: true\n    keyPrefix: db-\n  - name: /db\n    extract: true\n    keyPrefix: db-\n".into(),
            "distinct Secret key",
        ),
        (
            "one parameter extracted twice without prefix",
            "  parameters:\n  - name: /db\n    extract: true\n  - name: /db\n    extract: true\n".into(),
            "distinct Secret key",
        ),
        (
            "100 parameters of 1100 characters, two sharing a key",
            hundred_long_names(true),
            "distinct Secret key",
        ),
        (
            "version and label together",
            "  parameters:\n  - name: a\n    version: 2\n    label: prod\n".into(),
            "mutually exclusive",
        ),
        ("version zero", "  parameters:\n  - name: a\n    version: 0\n".into(), "spec.parameters[0].version"),
        ("label with a space", "  parameters:\n  - name: a\n    label: \"a b\"\n".into(), "spec.parameters[0].label"),
        ("malformed refreshInterval", "  parameters:\n  - name: a\n  refreshInterval: 1 hour\n".into(), "spec.refreshInterval"),
        ("refreshInterval without unit", "  parameters:\n  - name: a\n  refreshInterval: \"5\"\n".into(), "spec.refreshInterval"),
        ("refreshInterval in days", "  parameters:\n  - name: a\n  refreshInterval: 1d\n".into(), "spec.refreshInterval"),
        ("refreshInterval too short", "  parameters:\n  - name: a\n  refreshInterval: 5s\n".into(), "at least 10s"),
        ("more than 100 parameters", format!("  parameters:\n{hundred_and_one}"), "spec.parameters"),
        ("bad region", "  region: Tokyo\n  parameters:\n  - name: a\n".into(), "spec.region"),
        (
            "service account token type",
            "  parameters:\n  - name: a\n  target:\n    type: kubernetes.io/service-account-token\n".into(),
            "spec.target.type",
        ),
        (
            "bootstrap token type",
            "  parameters:\n  - name: a\n  target:\n    type: bootstrap.kubernetes.io/token\n".into(),
            "spec.target.type",
        ),
        (
            "secret name not a DNS name",
            "  parameters:\n  - name: a\n  target:\n    name: Not_Valid\n".into(),
            "spec.target.name",
        ),
        ("decrypt not a boolean", "  parameters:\n  - name: a\n    decrypt: maybe\n".into(), "decrypt"),
        ("parameters not a list", "  parameters: a\n".into(), "spec.parameters"),
        ("name too long", format!("  parameters:\n  - name: {}\n", "a".repeat(1101)), "spec.parameters[0].name"),
        ("key too long", format!("  parameters:\n  - name: a\n    key: {}\n", "k".repeat(254)), "spec.parameters[0].key"),
        ("label too long", format!("  parameters:\n  - name: a\n    label: {}\n", "l".repeat(101)), "spec.parameters[0].label"),
        ("negative version", "  parameters:\n  - name: a\n    version: -1\n".into(), "spec.parameters[0].version"),
        ("version not a number", "  parameters:\n  - name: a\n    version: latest\n".into(), "spec.parameters[0].version"),
        ("empty property", "  parameters:\n  - name: a\n    property: \"\"\n".into(), "spec.parameters[0].property"),
        ("name with a colon selector", "  parameters:\n  - name: a:3\n".into(), "spec.parameters[0].name"),
        ("ARN of another service", "  parameters:\n  - name: arn:aws:kms:us-east-1:111122223333:key/x\n".into(), "spec.parameters[0].name"),
        ("refreshInterval negative", "  parameters:\n  - name: a\n  refreshInterval: -1s\n".into(), "spec.refreshInterval"),
        ("refreshInterval fractional", "  parameters:\n  - name: a\n  refreshInterval: 1.5h\n".into(), "spec.refreshInterval"),
        ("empty region", "  region: \"\"\n  parameters:\n  - name: a\n".into(), "spec.region"),
        ("Secrets Manager reference", "  parameters:\n  - name: /aws/reference/secretsmanager/db\n".into(), "Secrets Manager references"),
        ("public parameter", "  parameters:\n  - name: /aws/service/global-infrastructure/regions\n".into(), "public parameters"),
        ("Secrets Manager reference by ARN", "  parameters:\n  - name: arn:aws:ssm:us-east-1:111122223333:parameter/aws/reference/secretsmanager/db\n".into(), "spec.parameters[0].name"),
        ("path under /aws/", "  path:\n    prefix: /aws/service/\n".into(), "paths under /aws/"),
        ("path prefix without a slash", "  path:\n    prefix: prd/app\n".into(), "spec.path.prefix"),
        ("path prefix with a space", "  path:\n    prefix: /prd app\n".into(), "spec.path.prefix"),
        ("path without prefix", "  path:\n    recursive: true\n".into(), "spec.path.prefix"),
        ("path keyFrom unknown", "  path:\n    prefix: /prd\n    keyFrom: FullName\n".into(), "spec.path.keyFrom"),
        ("path recursive not a boolean", "  path:\n    prefix: /prd\n    recursive: sometimes\n".into(), "spec.path.recursive"),
        ("unknown Secret type", "  parameters:\n  - name: a\n  target:\n    type: Opaque2\n".into(), "spec.target.type"),
        ("target namespace", "  parameters:\n  - name: a\n  target:\n    namespace: kube-system\n".into(), "namespace"),
        ("template key invalid", "  parameters:\n  - name: a\n  target:\n    template:\n      \"bad key\": x\n".into(), "template keys must be valid Secret keys"),
        ("template value not a string", "  parameters:\n  - name: a\n  target:\n    template:\n      k:\n        nested: x\n".into(), "spec.target.template"),
        ("creationPolicy unknown", "  parameters:\n  - name: a\n  target:\n    creationPolicy: Adopt\n".into(), "spec.target.creationPolicy"),
        ("deletionPolicy unknown", "  parameters:\n  - name: a\n  target:\n    deletionPolicy: Purge\n".into(), "spec.target.deletionPolicy"),
        ("immutable and Merge", "  parameters:\n  - name: a\n  target:\n    immutable: true\n    creationPolicy: Merge\n".into(), "cannot be merged into"),
        ("immutable not a boolean", "  parameters:\n  - name: a\n  target:\n    immutable: yes please\n".into(), "spec.target.immutable"),
        ("labels not a map", "  parameters:\n  - name: a\n  target:\n    labels: [a]\n".into(), "spec.target.labels"),
        ("rolloutRestart of a Pod", "  parameters:\n  - name: a\n  rolloutRestart:\n  - kind: Pod\n    name: web\n".into(), "spec.rolloutRestart[0].kind"),
        ("rolloutRestart without name", "  parameters:\n  - name: a\n  rolloutRestart:\n  - kind: Deployment\n".into(), "spec.rolloutRestart[0].name"),
        ("unknown field", "  parameters:\n  - name: a\n  refresh: 1h\n".into(), "refresh"),
        ("unknown template filter", "  parameters:\n  - name: a\n  target:\n    template:\n      url: \"x{{ a | upper }}\"\n".into(), "with filters among urlquery, urlpath, json, b64enc, b64dec, trim"),
        ("template function call", "  parameters:\n  - name: a\n  target:\n    template:\n      home: \"{{ env \\\"HOME\\\" }}\"\n".into(), "every {{ in a template must open"),
        ("template too long", format!("  parameters:\n  - name: a\n  target:\n    template:\n      big: {}\n", "x".repeat(8193)), "spec.target.template.big"),
        ("extract with key", "  parameters:\n  - name: a\n    extract: true\n    key: k\n".into(), "exclusive with key and property"),
        ("extract with property", "  parameters:\n  - name: a\n    extract: true\n    property: p\n".into(), "exclusive with key and property"),
        ("keyPrefix without extract", "  parameters:\n  - name: a\n    keyPrefix: db-\n".into(), "keyPrefix applies only with extract"),
        ("keyPrefix not a key", "  parameters:\n  - name: a\n    extract: true\n    keyPrefix: \"a b\"\n".into(), "spec.parameters[0].keyPrefix"),
        ("decode unknown", "  parameters:\n  - name: a\n    decode: Hex\n".into(), "spec.parameters[0].decode"),
        ("include pattern with a space", "  path:\n    prefix: /prd\n    include: [\"/prd/a b\"]\n".into(), "spec.path.include[0]"),
        ("exclude pattern empty", "  path:\n    prefix: /prd\n    exclude: [\"\"]\n".into(), "spec.path.exclude[0]"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_apply_rejects_malformed_ssm_parameters_naming_the_field() {
    let s = Scenario::new("admission").await;
    let mut failures = Vec::new();
    for (what, spec, expected) in malformed() {
        let out = kubectl(
            s.env,
            &["apply", "-n", &s.namespace, "-f", "-"],
            Some(&ssm_parameter_yaml("bad", &spec)),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !stderr.contains(expected) {
            failures.push(format!(
                "{what}: exit {:?}, expected {expected:?} in: {stderr}",
                out.status.code()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "accepted or unclear:\n{}",
        failures.join("\n")
    );
    let listed = kubectl(
        s.env,
        &["get", "ssmp", "-n", &s.namespace, "-o", "name"],
        None,
    );
    assert!(
        String::from_utf8_lossy(&listed.stdout).trim().is_empty(),
        "something malformed was written"
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_apply_accepts_the_contracts_example() {
    let s = Scenario::new("admission-ok").await;
    let spec = "  region: ap-northeast-1\n  parameters:\n  - name: prd-db-pass\n    key: password\n  - name: /prd/db/user\n    version: 3\n  - name: arn:aws:ssm:us-east-1:111122223333:parameter/shared/token\n    label: prod\n    decrypt: false\n  target:\n    name: db-credentials\n    type: kubernetes.io/basic-auth\n    labels:\n      team: payments\n  refreshInterval: 1h30m\n";
    let out = kubectl(
        s.env,
        &["apply", "-n", &s.namespace, "-f", "-"],
        Some(&ssm_parameter_yaml("bad", spec)),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let explain = kubectl(
        s.env,
        &["explain", "ssmparameter.spec.parameters.decrypt"],
        None,
    );
    assert!(String::from_utf8_lossy(&explain.stdout).contains("without decryption"));
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_apply_accepts_distinct_keys_up_to_the_schemas_bounds() {
    let s = Scenario::new("admission-keys").await;
    let accepted = [
        ("100 names of 1100 characters", hundred_long_names(false)),
        (
            "one parameter extracted with two prefixes, and its own key",
            "  parameters:\n  - name: /db\n    extract: true\n  - name: /db\n    extract: true\n    keyPrefix: db-\n  - name: /db\n".into(),
        ),
        (
            "same last segment, told apart by key",
            "  parameters:\n  - name: /x/pass\n  - name: /y/pass\n    key: other\n".into(),
        ),
    ];
    for (i, (what, spec)) in accepted.iter().enumerate() {
        let out = kubectl(
            s.env,
            &["apply", "-n", &s.namespace, "-f", "-"],
            Some(&ssm_parameter_yaml(&format!("ok-{i}"), spec)),
        );
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    s.cleanup().await;
}

/// `make test` runs this file on the API server of the chart's kubeVersion
/// floor too: this proves which server each run had.
#[tokio::test(flavor = "multi_thread")]
async fn the_api_server_is_the_kubernetes_version_of_this_run() {
    let s = Scenario::new("admission-version").await;
    let info = s.kube.apiserver_version().await.expect("server version");
    assert_eq!(
        info.git_version,
        env::kubernetes_version(),
        "{}=floor runs on the floor's API server, otherwise on the current one",
        env::KUBE
    );
    s.cleanup().await;
}

/// A ClusterSsmParameter named `name` whose spec is YAML text, indented by
/// two spaces.
fn cluster_ssm_parameter_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: ssm-operator.io/v1alpha1\nkind: ClusterSsmParameter\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_apply_judges_cluster_ssm_parameters_by_the_same_rules() {
    let s = Scenario::new("admission-cluster").await;
    let template = "  template:\n    parameters:\n    - name: /ci/registry\n";
    let refused = [
        ("no namespace chosen", template.to_owned(), "choose namespaces"),
        (
            "a ServiceAccount identity",
            format!("  namespaces: [a]\n{template}    identity:\n      serviceAccountName: reader\n"),
            "never a namespace's ServiceAccount",
        ),
        (
            "the template's own rules",
            "  namespaces: [a]\n  template:\n    parameters:\n    - name: /x/pass\n    - name: /y/pass\n".to_owned(),
            "distinct Secret key",
        ),
        (
            "a namespace name that is none",
            format!("  namespaces: [\"Not A Namespace\"]\n{template}"),
            "spec.namespaces[0]",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (what, spec, expected)) in refused.iter().enumerate() {
        let manifest = cluster_ssm_parameter_yaml(&format!("{}-bad-{i}", s.id), spec);
        let out = kubectl(s.env, &["apply", "-f", "-"], Some(&manifest));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !stderr.contains(expected) {
            failures.push(format!("{what}: expected {expected:?} in: {stderr}"));
        }
    }
    assert!(
        failures.is_empty(),
        "accepted or unclear:\n{}",
        failures.join("\n")
    );

    let name = format!("{}-ok", s.id);
    let spec = format!(
        "  namespaceSelector:\n    matchLabels:\n      registry: \"yes\"\n  namespaces: [a, b]\n{template}    identity:\n      roleArn: arn:aws:iam::111122223333:role/registry-reader\n"
    );
    let out = kubectl(
        s.env,
        &["apply", "-f", "-"],
        Some(&cluster_ssm_parameter_yaml(&name, &spec)),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let explain = kubectl(s.env, &["explain", "cssmp.spec.template"], None);
    assert!(
        String::from_utf8_lossy(&explain.stdout).contains("kept in each namespace"),
        "{}",
        String::from_utf8_lossy(&explain.stdout)
    );
    let deleted = kubectl(s.env, &["delete", "cssmp", &name], None);
    assert!(deleted.status.success());
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_kubectl_get_lists_every_kind_the_operator_serves() {
    let s = Scenario::new("admission-category").await;
    let ssm_parameter = ssm_parameter_yaml(
        &format!("{}-one", s.id),
        "  parameters:\n  - name: /ci/one\n",
    );
    let cluster = cluster_ssm_parameter_yaml(
        &format!("{}-all", s.id),
        &format!(
            "  namespaces: [{}]\n  template:\n    parameters:\n    - name: /ci/all\n",
            s.namespace
        ),
    );
    for manifest in [&ssm_parameter, &cluster] {
        let out = kubectl(
            s.env,
            &["apply", "-n", &s.namespace, "-f", "-"],
            Some(manifest),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = kubectl(
        s.env,
        &["get", "ssm-operator", "-n", &s.namespace, "-o", "name"],
        None,
    );
    let names = String::from_utf8_lossy(&listed.stdout);
    assert!(
        names.contains(&format!("ssmparameter.ssm-operator.io/{}-one", s.id))
            && names.contains(&format!("clusterssmparameter.ssm-operator.io/{}-all", s.id)),
        "{names}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let deleted = kubectl(s.env, &["delete", "cssmp", &format!("{}-all", s.id)], None);
    assert!(deleted.status.success());
    s.cleanup().await;
}
