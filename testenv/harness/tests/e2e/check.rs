//! `ssm-operator check`: the missing permission, named before any Secret is
//! written.

use kube::Resource as _;
use serde_json::json;
use ssm_operator::api::{ClusterSsmParameter, SsmParameter};

use ssm_operator_testenv::Scenario;
use ssm_operator_testenv::aws::allow;
use ssm_operator_testenv::manifest::ssm_parameter_in;

#[tokio::test(flavor = "multi_thread")]
async fn check_names_the_missing_permission_before_any_secret_is_written() {
    let s = Scenario::new("check").await;
    let key = s.create_key().await;
    let (plain, secure) = (format!("{}-plain", s.id), format!("{}-secure", s.id));
    s.put_string(&plain, "CANARY-PLAIN").await;
    s.put_secure_string(&secure, "CANARY-SECURE", &key).await;
    let readable = vec![s.parameter_arn(&plain), s.parameter_arn(&secure)];
    let role = s
        .create_operator_role(&allow(&["ssm:GetParameters"], &readable))
        .await;
    let manifest = ssm_parameter_in(
        "app",
        &s.namespace,
        json!({"parameters": [{"name": plain, "key": "plain"}, {"name": secure, "key": "secure"}]}),
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest).unwrap();
    let path = file.path().to_str().unwrap();

    let out = s.run_operator_command(&role, &["check", "-f", path]).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}{stderr}");
    let secure_line = stdout
        .lines()
        .find(|l| l.contains(&secure))
        .unwrap_or_default();
    assert!(
        secure_line.contains("FAILED") && secure_line.contains("KmsAccessDenied"),
        "{stdout}"
    );
    assert!(secure_line.contains(&key), "the key is not named: {stdout}");
    let plain_line = stdout
        .lines()
        .find(|l| l.contains(&plain))
        .unwrap_or_default();
    assert!(plain_line.trim_start().starts_with("ok"), "{stdout}");
    assert!(
        !stdout.contains("CANARY") && !stderr.contains("CANARY"),
        "a value was printed"
    );
    assert!(s.secrets().get_opt("app").await.unwrap().is_none());

    let role_name = role.rsplit('/').next().unwrap().to_owned();
    let granted = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": readable},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}]});
    s.put_role_policy(&role_name, &granted).await;
    let out = s.run_operator_command(&role, &["check", "-f", path]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("every parameter can be read and decrypted"));
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn check_tells_a_missing_version_from_a_missing_parameter_and_names_the_region() {
    let s = Scenario::new("check-missing").await;
    let pinned = format!("{}-pinned", s.id);
    s.put_string(&pinned, "v1").await;
    let absent = format!("{}-absent", s.id);
    let role = s
        .create_operator_role(&allow(&["ssm:GetParameters"], &["*".to_owned()]))
        .await;
    let manifest = ssm_parameter_in(
        "app",
        &s.namespace,
        json!({"parameters": [
            {"name": pinned, "key": "pinned", "version": 9},
            {"name": absent, "key": "absent"},
        ]}),
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest).unwrap();
    let path = file.path().to_str().unwrap();

    let out = s.run_operator_command(&role, &["check", "-f", path]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(name) && l.contains("FAILED"))
            .unwrap_or_default()
            .to_owned()
    };
    let pinned_line = line(&pinned);
    assert!(
        pinned_line.contains("ParameterVersionNotFound") && pinned_line.contains("version 9"),
        "{stdout}"
    );
    let absent_line = line(&absent);
    assert!(
        absent_line.contains("ParameterNotFound")
            && absent_line.contains(&format!("in region {}", ssm_operator_testenv::env::REGION)),
        "{stdout}"
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reads_a_kept_ssm_parameter_as_its_cluster_ssm_parameter_would() {
    // No operator serving ClusterSsmParameters may keep this one meanwhile.
    let _turn = crate::cluster::ONE_AT_A_TIME.lock().await;
    let s = Scenario::new("check-kept").await;
    let key = s.create_key().await;
    let parameter = format!("{}-ca", s.id);
    s.put_secure_string(&parameter, "CANARY-CA", &key).await;
    let policy = ssm_operator_testenv::aws::setup::read_prefix_policy(&s.id, &key);
    let role = s.create_operator_role(&policy).await;
    let template = json!({"parameters": [{"name": parameter, "key": "ca"}]});
    let name = format!("{}-kept", s.id);
    let owners: kube::Api<ClusterSsmParameter> = kube::Api::all(s.kube.clone());
    let owner: ClusterSsmParameter = serde_json::from_value(json!({
        "apiVersion": "ssm-operator.io/v1alpha1", "kind": "ClusterSsmParameter",
        "metadata": {"name": name},
        "spec": {"namespaces": [s.namespace], "template": template},
    }))
    .unwrap();
    let owner = owners.create(&Default::default(), &owner).await.unwrap();
    // Kept as the operator keeps one: its reference, its spec the template
    // (a manifest: the operator's own role may not get SsmParameters).
    let manifest = |spec: serde_json::Value| {
        let mut kept: SsmParameter =
            serde_json::from_str(&ssm_parameter_in(&name, &s.namespace, spec)).unwrap();
        kept.metadata.owner_references = Some(vec![owner.controller_owner_ref(&()).unwrap()]);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), serde_json::to_string(&kept).unwrap()).unwrap();
        file
    };
    let kept = manifest(template);
    let out = s
        .run_operator_command(&role, &["check", "-f", kept.path().to_str().unwrap()])
        .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("every parameter can be read and decrypted"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("CANARY") && !stderr.contains("CANARY"),
        "a value was printed"
    );

    // Edited away from the template, it is no longer kept: it reads nothing.
    let edited = manifest(json!({"parameters": [{"name": parameter, "key": "other"}]}));
    let out = s
        .run_operator_command(&role, &["check", "-f", edited.path().to_str().unwrap()])
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("RoleNotAllowed") && stdout.contains("its spec is not the template"),
        "{stdout}"
    );
    owners.delete(&name, &Default::default()).await.unwrap();
    s.cleanup().await;
}
