//! EKS Pod Identity as the operator's own identity: credentials from the
//! agent's endpoint (which the emulator serves), the trust policy that
//! `ssm-operator policy --pod-identity` prints, roles chained from its
//! tagged sessions, and messages that do not change with its random
//! session names.

use std::time::Duration;

use serde_json::{Value, json};

use ssm_operator::commands::policy::trust::pod_identity_trust_policy;
use ssm_operator_testenv::aws::{Fault, counters, inject, setup};
use ssm_operator_testenv::env::ACCOUNT;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::operator::audited_writes;
use ssm_operator_testenv::operator::identity::{AwsCredentials, SERVICE_ACCOUNT};
use ssm_operator_testenv::{OperatorOptions, Scenario, eventually};

/// What the agent's calls are counted as.
const AGENT: &str = "eks-auth:AssumeRoleForPodIdentity";

fn pod_identity() -> OperatorOptions {
    OperatorOptions {
        aws_credentials: AwsCredentials::EksPodIdentity,
        ..OperatorOptions::default()
    }
}

/// The operator's role (`<id>-op`) with the Pod Identity trust `policy`
/// prints for the operator's ServiceAccount, allowed `permissions`.
async fn pod_identity_role(s: &Scenario, permissions: &Value) -> String {
    let trust = pod_identity_trust_policy(&s.namespace, SERVICE_ACCOUNT);
    s.create_role_with_trust(&format!("{}-op", s.id), &trust, permissions)
        .await
}

fn read(parameter: &str, extra: Value) -> Value {
    let mut spec = json!({"parameters": [{"name": parameter, "key": "value"}]});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    spec
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_reads_with_eks_pod_identity_credentials_under_the_trust_policy_it_prints() {
    let mut s = Scenario::new("pod-identity").await;
    let key = s.create_key().await;
    let parameter = format!("{}-db", s.id);
    s.put_secure_string(&parameter, "POD-IDENTITY-VALUE", &key)
        .await;
    let role = pod_identity_role(&s, &setup::read_prefix_policy(&s.id, &key)).await;
    s.start_operator_with(&role, pod_identity()).await;

    s.apply(&ssm_parameter("db", read(&parameter, json!({}))))
        .await;
    s.wait_for_condition("db", "Ready", "True", "Synced").await;
    assert_eq!(
        s.secret_value("db", "value").await.as_deref(),
        Some("POD-IDENTITY-VALUE")
    );
    let c = counters(s.env).await.unwrap();
    assert!(
        c.calls(AGENT, &role) >= 1,
        "the credentials came from elsewhere"
    );
    assert_eq!(c.calls("sts:AssumeRoleWithWebIdentity", &role), 0);
    assert!(c.calls("ssm:GetParameters", &role) >= 1);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_chained_from_a_pod_identity_session_must_trust_it_for_tag_session() {
    let mut s = Scenario::new("pod-identity-chain").await;
    let key = s.create_key().await;
    let parameter = format!("{}-shared", s.id);
    s.put_secure_string(&parameter, "CHAINED-VALUE", &key).await;
    let target_name = format!("{}-target", s.id);
    let target_arn = format!("arn:aws:iam::{ACCOUNT}:role/{target_name}");
    // Chaining a tagged session needs sts:TagSession on both sides (EKS
    // User Guide, "Access AWS Resources using EKS Pod Identity Target IAM
    // Roles"): here the operator's own policy allows it, the target's
    // trust does not yet.
    let operator_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": target_arn}]});
    let role = pod_identity_role(&s, &operator_policy).await;
    // What an IRSA session needs, and a Pod Identity session does not get by.
    let assume_only = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": role}, "Action": "sts:AssumeRole"}]});
    let reader = setup::read_prefix_policy(&s.id, &key);
    s.create_role_with_trust(&target_name, &assume_only, &reader)
        .await;
    s.allow_role_arns(&s.namespace, &target_arn).await;
    s.start_operator_with(&role, pod_identity()).await;

    let spec = read(&parameter, json!({"identity": {"roleArn": target_arn}}));
    s.apply(&ssm_parameter("chained", spec)).await;
    let status = s
        .wait_for_condition("chained", "Synced", "False", "AssumeRoleDenied")
        .await;
    let message = &status.conditions[1].message;
    assert!(
        message.starts_with(&format!("sts:TagSession denied for role {target_arn}")),
        "{message}"
    );
    assert!(message.contains("must allow sts:TagSession"), "{message}");

    let tagging = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": role},
         "Action": ["sts:AssumeRole", "sts:TagSession"]}]});
    s.update_trust(&target_name, &tagging).await;
    s.force_sync("chained").await;
    s.wait_for_condition("chained", "Ready", "True", "Synced")
        .await;
    assert_eq!(
        s.secret_value("chained", "value").await.as_deref(),
        Some("CHAINED-VALUE")
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_reads_the_same_after_pod_identity_credentials_are_renewed() {
    let mut s = Scenario::new("pod-identity-renew").await;
    let granted = s.create_key().await;
    let other = s.create_key().await;
    let parameter = format!("{}-locked", s.id);
    s.put_secure_string(&parameter, "LOCKED-VALUE", &other)
        .await;
    let role = pod_identity_role(&s, &setup::read_prefix_policy(&s.id, &granted)).await;
    // The agent's credentials last 20 s here, so that they are renewed
    // (at three quarters of their life) a few times during the test; each
    // renewal is a new session with a new random name.
    let lifetime = Duration::from_secs(20);
    let short = Fault::new(AGENT, "short_lived")
        .seconds(lifetime.as_secs_f64())
        .count(50);
    inject(s.env, &role, &short).await.unwrap();
    s.start_operator_with(&role, pod_identity()).await;

    let spec = read(&parameter, json!({"refreshInterval": "10s"}));
    s.apply(&ssm_parameter("locked", spec)).await;
    let first = s
        .wait_for_condition("locked", "Synced", "False", "KmsAccessDenied")
        .await;
    let message = first.conditions[1].message.clone();
    let role_name = role.rsplit('/').next().unwrap();
    assert!(
        message.contains(&format!("assumed-role/{role_name}/*")),
        "{message}"
    );
    assert!(!message.contains("eks-"), "a session name: {message}");

    eventually(
        "three credential fetches and three more refused refreshes",
        4 * lifetime,
        || async {
            let fetched = counters(s.env).await.ok()?.calls(AGENT, &role);
            let refused = s.finished_reconciles("locked", "KmsAccessDenied");
            (fetched >= 3 && refused >= 4).then_some(())
        },
    )
    .await;
    let now = s.status("locked").await.unwrap();
    assert_eq!(now.conditions[1].message, message);
    let status_writes = audited_writes(s.env, &s.namespace)
        .iter()
        .filter(|w| w.resource == "ssmparameters" && w.subresource == "status")
        .filter(|w| w.name == "locked" && w.code == 200)
        .count();
    assert_eq!(
        status_writes, 1,
        "the status was rewritten as the credentials were renewed"
    );
    s.cleanup().await;
}
