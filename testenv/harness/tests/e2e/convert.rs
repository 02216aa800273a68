//! `ssm-operator convert` against its corpus (`testenv/convert-corpus`):
//! each convertible case's ExternalSecret is converted, applied to the real
//! API server and synced by the operator from the emulator to exactly the
//! Secret data ESO's semantics give; each refused case is reported on
//! stderr with its reasons, printed nowhere, and exits with 1.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use ssm_operator_testenv::operator::binary;
use ssm_operator_testenv::{Scenario, kubectl};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    kind: String,
    #[serde(default)]
    parameters: Vec<Parameter>,
    secret: Option<Expected>,
    #[serde(default)]
    refused: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameter {
    name: String,
    value: String,
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    name: String,
    data: BTreeMap<String, String>,
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../convert-corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} cannot be read: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus has {} cases", files.len());
    files
}

/// A case file with the test's prefix and namespace: its expectations, and
/// the manifests to convert.
fn case(file: &Path, s: &Scenario) -> (Case, String) {
    let text = std::fs::read_to_string(file)
        .unwrap()
        .replace("${PREFIX}", &s.id)
        .replace("${NAMESPACE}", &s.namespace);
    let (head, manifests) = text
        .split_once("\n---\n")
        .unwrap_or_else(|| panic!("{}: no manifests after the case", file.display()));
    let case: Case = serde_saphyr::from_str(head)
        .unwrap_or_else(|e| panic!("{}: the case does not parse: {e}", file.display()));
    assert_eq!(case.kind, "ConversionCase", "{}", file.display());
    (case, manifests.to_owned())
}

/// `ssm-operator convert` of `manifests` on stdin: exit code, stdout, stderr.
fn convert(manifests: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(binary())
        .arg("convert")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ssm-operator convert");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifests.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn converted_external_secrets_sync_to_the_secret_data_eso_gives() {
    // A ClusterExternalSecret converts to a ClusterSsmParameter, which only
    // an operator serving them all syncs.
    let _turn = crate::cluster::ONE_AT_A_TIME.lock().await;
    let mut s = Scenario::new("convert").await;
    let key = s.create_key().await;
    let policy = ssm_operator_testenv::aws::setup::read_prefix_policy(&s.id, &key);
    let role = s.create_operator_role(&policy).await;
    let options = ssm_operator_testenv::OperatorOptions {
        args: vec!["--cluster-ssm-parameters=true".into()],
        ..Default::default()
    };
    s.start_operator_with(&role, options).await;
    let mut clusters = Vec::new();
    let mut expected = Vec::new();
    for file in corpus() {
        let (case, manifests) = case(&file, &s);
        let Some(secret) = case.secret else { continue };
        for p in &case.parameters {
            for value in p.versions.iter().chain([&p.value]) {
                match p.type_.as_str() {
                    "SecureString" => s.put_secure_string(&p.name, value, &key).await,
                    "String" => s.put_string(&p.name, value).await,
                    other => panic!("{}: parameter type {other}", file.display()),
                }
            }
        }
        let (code, stdout, stderr) = convert(&manifests);
        assert_eq!(code, Some(0), "{}: {stderr}", file.display());
        assert!(
            stdout.contains("kind: SsmParameter") || stdout.contains("kind: ClusterSsmParameter"),
            "{}: {stdout}",
            file.display()
        );
        let applied = kubectl(
            s.env,
            &["apply", "-n", &s.namespace, "-f", "-"],
            Some(&stdout),
        );
        assert!(
            applied.status.success(),
            "{}: the API server refused the conversion:\n{stdout}\n{}",
            file.display(),
            String::from_utf8_lossy(&applied.stderr)
        );
        let object = stdout
            .lines()
            .skip_while(|l| !l.starts_with("metadata:"))
            .find_map(|l| l.trim().strip_prefix("name: "))
            .unwrap()
            .to_owned();
        if stdout.contains("kind: ClusterSsmParameter") {
            clusters.push(object.clone());
        }
        // A ClusterSsmParameter's SsmParameter in the namespace has its name.
        expected.push((file, object, secret));
    }
    assert!(!clusters.is_empty(), "a ClusterExternalSecret case");
    assert!(expected.len() >= 8, "{} convertible cases", expected.len());
    for (file, object, secret) in expected {
        s.wait_for_condition(&object, "Ready", "True", "Synced")
            .await;
        assert_eq!(
            s.secret_data(&secret.name).await,
            secret.data,
            "{}: the Secret's data",
            file.display()
        );
    }
    for name in clusters {
        let deleted = kubectl(s.env, &["delete", "clusterssmparameter", &name], None);
        assert!(
            deleted.status.success(),
            "{}",
            String::from_utf8_lossy(&deleted.stderr)
        );
    }
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_has_no_equivalent_is_reported_per_object_and_printed_nowhere() {
    let s = Scenario::new("convert-refused").await;
    let mut refused_cases = 0;
    for file in corpus() {
        let (case, manifests) = case(&file, &s);
        if case.refused.is_empty() {
            continue;
        }
        refused_cases += 1;
        let (code, stdout, stderr) = convert(&manifests);
        assert_eq!(code, Some(1), "{}: {stderr}", file.display());
        assert!(
            !stdout.contains("kind: SsmParameter") && !stdout.contains("kind: ClusterSsmParameter"),
            "{}: printed {stdout}",
            file.display()
        );
        let missing: Vec<&String> = (case.refused.iter())
            .filter(|fragment| !stderr.contains(fragment.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{}: the report lacks {missing:?}:\n{stderr}",
            file.display()
        );
    }
    assert!(refused_cases >= 2, "{refused_cases} refused cases");
    s.cleanup().await;
}
