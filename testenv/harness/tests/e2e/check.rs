//! `ssm-operator check`: the missing permission, named before any Secret is
//! written.

use serde_json::json;

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
