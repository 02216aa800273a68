//! Running it in production: the admin endpoints, the metrics after the
//! scenario, and two replicas with leader election.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::{Value, json};

use ssm_operator_testenv::aws::allow;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::operator::admin_get;
use ssm_operator_testenv::{DEADLINE, OperatorOptions, Scenario, eventually};

/// The value of one sample line `name{labels}` of a metrics text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics_tell_what_happened() {
    let mut s = Scenario::new("metrics").await;
    let (key, role) = s.with_operator().await;
    let admin = s.operator().admin.clone();
    eventually("the operator to be ready", DEADLINE, || async {
        (admin_get(&admin, "/readyz").await?.0 == 200).then_some(())
    })
    .await;
    assert_eq!(admin_get(&admin, "/healthz").await.unwrap().0, 200);

    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "v", &key).await;
    s.apply(&ssm_parameter(
        "counted",
        json!({"parameters": [{"name": name, "key": "pw"}]}),
    ))
    .await;
    s.wait_for_condition("counted", "Ready", "True", "Synced")
        .await;
    let role_name = role.rsplit('/').next().unwrap().to_owned();
    s.put_role_policy(
        &role_name,
        &allow(&["ssm:GetParameters"], &[s.parameter_arn(&name)]),
    )
    .await;
    s.force_sync("counted").await;
    s.wait_for_condition("counted", "Synced", "False", "KmsAccessDenied")
        .await;

    // The reconcile records its metrics just after it writes the status.
    let denied = r#"ssm_operator_reconciles_total{outcome="failed",reason="KmsAccessDenied"}"#;
    let text = eventually("the metrics to count the denial", DEADLINE, || async {
        let (code, text) = admin_get(&admin, "/metrics").await?;
        (code == 200 && sample(&text, denied) >= 1.0).then_some(text)
    })
    .await;
    let counts: BTreeMap<&str, f64> = [
        ("synced", sample(&text, r#"ssm_operator_reconciles_total{outcome="synced",reason="Synced"}"#)),
        ("denied", sample(&text, r#"ssm_operator_reconciles_total{outcome="failed",reason="KmsAccessDenied"}"#)),
        ("created", sample(&text, r#"ssm_operator_secret_writes_total{action="created"}"#)),
        ("reads", sample(&text, r#"ssm_operator_aws_calls_total{operation="GetParameters",outcome="ok"}"#)),
        ("refused", sample(&text, r#"ssm_operator_aws_calls_total{operation="GetParameters",outcome="KmsAccessDenied"}"#)),
    ]
    .into();
    println!("metrics after the scenario: {counts:?}");
    assert_eq!(counts["created"], 1.0, "{text}");
    assert!(counts["synced"] >= 1.0 && counts["denied"] >= 1.0, "{text}");
    assert!(counts["reads"] >= 1.0 && counts["refused"] >= 1.0, "{text}");
    assert!(text.contains("ssm_operator_reconcile_duration_seconds_bucket"));
    let version = format!(
        r#"ssm_operator_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &version), 1.0, "{text}");
    let denied = r#"ssm_operator_ssm_parameters{condition="Synced",status="False",reason="KmsAccessDenied"}"#;
    let text = eventually("the object counted as denied", DEADLINE, || async {
        let (_, text) = admin_get(&admin, "/metrics").await?;
        (sample(&text, denied) == 1.0).then_some(text)
    })
    .await;
    assert!(text.contains("ssm_operator_oldest_sync_age_seconds"));
    assert!(
        !text.contains("counted") && !text.contains(&s.namespace),
        "per-object labels in metrics"
    );
    s.cleanup().await;
}

/// Who holds the operator's Lease.
async fn holder(s: &Scenario) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(s.kube.clone(), &s.namespace);
    leases
        .get_opt("ssm-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
}

/// Write requests per operator token, by the audit log's credential id.
fn writes_by_credential(s: &Scenario) -> BTreeMap<String, usize> {
    let user = format!("system:serviceaccount:{}:ssm-operator", s.namespace);
    let log = std::fs::read_to_string(&s.env.audit_log).unwrap_or_default();
    let mut writes = BTreeMap::new();
    for event in log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let resource = event["objectRef"]["resource"].as_str().unwrap_or_default();
        let write = matches!(
            event["verb"].as_str(),
            Some("create" | "update" | "patch" | "delete")
        );
        if event["user"]["username"] == user.as_str()
            && write
            && resource != "leases"
            && resource != "events"
        {
            let credential = event["user"]["extra"]["authentication.kubernetes.io/credential-id"]
                [0]
            .as_str()
            .unwrap_or("?")
            .to_owned();
            *writes.entry(credential).or_default() += 1;
        }
    }
    writes
}

/// Whether the audit log holds the operator's status write of `name`: the
/// API server logs a write just before answering it, so a reader of the
/// status may see the new status before its audit line.
fn status_write_audited(s: &Scenario, name: &str) -> bool {
    let user = format!("system:serviceaccount:{}:ssm-operator", s.namespace);
    let log = std::fs::read_to_string(&s.env.audit_log).unwrap_or_default();
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|e| {
            let object = &e["objectRef"];
            // The log holds the operator's reads too.
            let write = matches!(e["verb"].as_str(), Some("patch" | "update"));
            e["user"]["username"] == user.as_str()
                && write
                && object["namespace"] == s.namespace.as_str()
                && object["resource"] == "ssmparameters"
                && object["subresource"] == "status"
                && object["name"] == name
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_takes_over_within_20_seconds_of_the_leaders_death() {
    let mut s = Scenario::new("failover").await;
    let key = s.create_key().await;
    let params = format!(
        "arn:aws:ssm:ap-northeast-1:123456789012:parameter/{}*",
        s.id
    );
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": params},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}]});
    let role = s.create_operator_role(&policy).await;
    for name in ["op-1", "op-2"] {
        let options = OperatorOptions {
            leader: Some(name.to_owned()),
            name: name.to_owned(),
            ..OperatorOptions::default()
        };
        s.start_operator_with(&role, options).await;
    }
    let leader = eventually("a leader", DEADLINE, || holder(&s)).await;
    let first = format!("{}-first", s.id);
    s.put_secure_string(&first, "one", &key).await;
    s.apply(&ssm_parameter(
        "first",
        json!({"parameters": [{"name": first, "key": "pw"}]}),
    ))
    .await;
    s.wait_for_condition("first", "Ready", "True", "Synced")
        .await;
    // Every write of the leader's must be counted before it dies.
    eventually(
        "the leader's status write in the audit log",
        DEADLINE,
        || async { status_write_audited(&s, "first").then_some(()) },
    )
    .await;
    let before = writes_by_credential(&s);
    assert_eq!(before.len(), 1, "both replicas wrote: {before:?}");

    let index = s.operators().iter().position(|o| o.name == leader).unwrap();
    s.operators()[index].kill();
    let killed = std::time::Instant::now();
    let standby = eventually(
        "the standby to take over",
        Duration::from_secs(20),
        || async { holder(&s).await.filter(|h| *h != leader) },
    )
    .await;
    let took = killed.elapsed();
    println!("{standby} took over {took:?} after {leader} was killed");

    let second = format!("{}-second", s.id);
    s.put_secure_string(&second, "two", &key).await;
    s.apply(&ssm_parameter(
        "second",
        json!({"parameters": [{"name": second, "key": "pw"}]}),
    ))
    .await;
    s.wait_for_condition("second", "Ready", "True", "Synced")
        .await;
    let after = writes_by_credential(&s);
    let new_writers: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(
        new_writers.len(),
        1,
        "writers after the takeover: {after:?}"
    );
    assert_eq!(
        before.values().sum::<usize>(),
        after[before.keys().next().unwrap()],
        "the dead leader wrote"
    );

    // SIGTERM: the new leader finishes and releases the Lease at once.
    let index = s
        .operators()
        .iter()
        .position(|o| o.name == standby)
        .unwrap();
    let status = s.operators()[index].terminate().await;
    assert!(status.success(), "{status:?}");
    let leases: Api<Lease> = Api::namespaced(s.kube.clone(), &s.namespace);
    let lease = leases.get("ssm-operator").await.unwrap();
    assert_eq!(
        lease.spec.and_then(|l| l.holder_identity),
        None,
        "the Lease was not released"
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespaced_install_syncs_without_cluster_wide_roles() {
    let mut s = Scenario::new("namespaced").await;
    let key = s.create_key().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "v", &key).await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": s.parameter_arn(&name)},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}]});
    let role = s.create_operator_role(&policy).await;
    let options = OperatorOptions {
        namespaced_rbac: true,
        ..OperatorOptions::default()
    };
    s.start_operator_with(&role, options).await;
    s.apply(&ssm_parameter(
        "scoped",
        json!({"parameters": [{"name": name, "key": "pw"}]}),
    ))
    .await;
    s.wait_for_condition("scoped", "Ready", "True", "Synced")
        .await;
    // A chained role needs the Namespace's consent, which the namespaced
    // install reads from its own Namespace only.
    let elsewhere = "arn:aws:iam::123456789012:role/elsewhere";
    let chained = json!({"parameters": [{"name": name, "key": "pw"}],
                         "identity": {"roleArn": elsewhere}});
    s.apply(&ssm_parameter("chained", chained)).await;
    s.wait_for_condition("chained", "Synced", "False", "RoleNotAllowed")
        .await;
    s.allow_role_arns(&s.namespace, elsewhere).await;
    // Consent read; the operator's role may not sts:AssumeRole it.
    s.force_sync("chained").await;
    s.wait_for_condition("chained", "Synced", "False", "AssumeRoleDenied")
        .await;
    s.cleanup().await;
}
