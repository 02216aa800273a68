//! The seed scenario, narrated, on a local control plane and AWS emulator:
//! `make demo`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use ssm_operator_testenv::aws::allow;
use ssm_operator_testenv::env::EnvInfo;
use ssm_operator_testenv::manifest::ssm_parameter_yaml;
use ssm_operator_testenv::{Scenario, kubectl};

fn say(text: &str) {
    println!("\n\x1b[1m▶ {text}\x1b[0m");
}

fn show(env: &EnvInfo, args: &[&str]) {
    println!("$ kubectl {}", args.join(" "));
    let out = kubectl(env, args, None);
    print!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::main]
async fn main() {
    say(
        "Starting a real kube-apiserver, etcd and controller manager, and the AWS emulator (SSM, KMS, STS, IAM)",
    );
    let mut s = Scenario::new("demo").await;
    let ns = s.namespace.clone();

    say(
        "An admin creates a customer-managed KMS key and the SecureString prd-db-pass encrypted with it",
    );
    let key = s.create_key().await;
    s.put_secure_string("prd-db-pass", "PASSWORD", &key).await;
    println!("key: {key}\nparameter: prd-db-pass (SecureString)");

    say(
        "The operator's IAM role, assumed through IRSA by the ServiceAccount ssm-operator, may read and decrypt it",
    );
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": s.parameter_arn("prd-db-pass")},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key},
        ],
    });
    let role = s.create_operator_role(&policy).await;
    println!(
        "role: {role}\n{}",
        serde_json::to_string_pretty(&policy).unwrap()
    );
    s.start_operator(&role).await;

    say("A user applies an SsmParameter");
    let manifest = ssm_parameter_yaml(
        "db-credentials",
        "  region: ap-northeast-1\n  parameters:\n    - name: prd-db-pass\n      key: password\n  refreshInterval: 1h\n",
    );
    println!("$ kubectl apply -n {ns} -f -");
    print!("{manifest}");
    let out = kubectl(s.env, &["apply", "-n", &ns, "-f", "-"], Some(&manifest));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    s.wait_for_condition("db-credentials", "Ready", "True", "Synced")
        .await;
    show(s.env, &["get", "ssmp", "-n", &ns]);
    show(
        s.env,
        &[
            "get",
            "secret",
            "db-credentials",
            "-n",
            &ns,
            "-o",
            "jsonpath={.data.password}",
        ],
    );
    println!(
        "  (base64 of: {})",
        s.secret_value("db-credentials", "password")
            .await
            .unwrap_or_default()
    );

    say("The role loses kms:Decrypt; the next read is refused by KMS");
    s.put_role_policy(
        role.rsplit('/').next().unwrap(),
        &allow(&["ssm:GetParameters"], &[s.parameter_arn("prd-db-pass")]),
    )
    .await;
    s.force_sync("db-credentials").await;
    s.wait_for_condition("db-credentials", "Synced", "False", "KmsAccessDenied")
        .await;
    show(s.env, &["get", "ssmp", "-n", &ns]);
    show(
        s.env,
        &[
            "get",
            "ssmp",
            "db-credentials",
            "-n",
            &ns,
            "-o",
            "jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{\"\\n\"}{end}",
        ],
    );
    let kept = s
        .secret_value("db-credentials", "password")
        .await
        .unwrap_or_default();
    println!("The Secret keeps the last good value: password={kept}");
    show(
        s.env,
        &[
            "get",
            "events",
            "-n",
            &ns,
            "--field-selector",
            "type=Warning",
        ],
    );

    say("Access is restored; the next read syncs again");
    s.put_role_policy(role.rsplit('/').next().unwrap(), &policy)
        .await;
    s.force_sync("db-credentials").await;
    s.wait_for_condition("db-credentials", "Synced", "True", "Synced")
        .await;
    s.wait_for_condition("db-credentials", "Ready", "True", "Synced")
        .await;
    show(s.env, &["get", "ssmp", "-n", &ns]);

    say("Deleting the SsmParameter deletes its Secret (ownerReference, garbage collection)");
    show(s.env, &["delete", "ssmp", "db-credentials", "-n", &ns]);
    s.wait_for_secret_collected("db-credentials").await;
    show(
        s.env,
        &[
            "get",
            "secrets",
            "-n",
            &ns,
            "-l",
            "app.kubernetes.io/managed-by=ssm-operator",
        ],
    );
    say("Done. Everything started here stops with this process.");
}
