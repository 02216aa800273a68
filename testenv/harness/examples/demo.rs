//! The seed scenario, narrated, on a local control plane with a node and
//! the AWS emulator: `make demo`. The operator runs from its image, installed
//! by Helm; the demo ends inside a running Pod that mounts the Secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kube::ResourceExt as _;
use serde_json::json;
use ssm_operator_testenv::aws::allow;
use ssm_operator_testenv::chart::{Install, RELEASE, adopt_crds, succeeded};
use ssm_operator_testenv::env::{self, EnvInfo};
use ssm_operator_testenv::manifest::ssm_parameter_yaml;
use ssm_operator_testenv::operator::free_port;
use ssm_operator_testenv::pods::{self, MOUNT};
use ssm_operator_testenv::{DEADLINE, Scenario, eventually, kubectl};

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
        "Starting a real kube-apiserver, etcd, controller manager and scheduler, a node (kubelet, containerd, runc), and the AWS emulator (SSM, KMS, STS, IAM)",
    );
    env::shared_with_node().await;
    let s = Scenario::new("demo").await;
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

    say("helm install: the operator runs as a Pod of its image, with IRSA's projected token");
    let install = Install {
        env: s.env,
        namespace: &ns,
        role_arn: &role,
        api_server: &s.env.apiserver,
        http_port: free_port(),
    };
    let values = tempfile::tempdir().unwrap();
    adopt_crds(&s.kube, &ns).await;
    println!(
        "$ helm upgrade --install {RELEASE} deploy/ssm-operator -n {ns} --set image.repository={},image.tag={} ...",
        env::OPERATOR_IMAGE.0,
        env::OPERATOR_IMAGE.1
    );
    succeeded(
        "helm install",
        &install
            .upgrade(values.path(), &install.values(&[]), &[])
            .await,
    );
    pods::rolled_out(&s.kube, &ns, RELEASE).await;
    show(s.env, &["get", "pods", "-n", &ns, "-o", "wide"]);

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

    say("A workload mounts the Secret; the password, read inside its running Pod");
    pods::create_reader(&s.kube, &ns, "app", "db-credentials", "password").await;
    let pod = pods::rolled_out(&s.kube, &ns, "app").await.name_any();
    show(s.env, &["get", "pods", "-n", &ns, "-l", "app=app"]);
    let file = format!("{MOUNT}/password");
    let cat = ["cat", file.as_str()];
    println!("$ kubectl exec -n {ns} {pod} -- cat {file}");
    println!("{}", pods::exec(s.env, &ns, &pod, &cat));

    say("The password is rotated in Parameter Store; the file in the running Pod follows");
    s.put_secure_string("prd-db-pass", "ROTATED-PASSWORD", &key)
        .await;
    s.force_sync("db-credentials").await;
    eventually("the Pod to see the rotated value", DEADLINE, || async {
        (pods::exec(s.env, &ns, &pod, &cat) == "ROTATED-PASSWORD").then_some(())
    })
    .await;
    println!("$ kubectl exec -n {ns} {pod} -- cat {file}");
    println!("{}", pods::exec(s.env, &ns, &pod, &cat));
    println!("(the same Pod, never restarted: the kubelet updated the mounted file)");
    say("Done. Everything started here stops with this process.");
}
