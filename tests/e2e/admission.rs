//! Malformed SsmParameters are refused by the API server itself, at
//! `kubectl apply`, with a message naming the field — nothing is written.

use crate::support::{Scenario, kubectl};

fn manifest(spec: &str) -> String {
    format!(
        "apiVersion: ssm-operator.io/v1alpha1\nkind: SsmParameter\nmetadata:\n  name: bad\nspec:\n{spec}"
    )
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
            Some(&manifest(&spec)),
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
        Some(&manifest(spec)),
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
