//! Identities: the operator's cached IRSA role, tenants' ServiceAccounts,
//! chained roles — and no way for one namespace to read through another's.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use ssm_operator_testenv::aws;
use ssm_operator_testenv::aws::{Fault, allow, counters, inject};
use ssm_operator_testenv::env::ACCOUNT;
use ssm_operator_testenv::manifest::{ssm_parameter, ssm_parameter_in};
use ssm_operator_testenv::{OperatorOptions, Scenario, eventually};

const WEB_IDENTITY: &str = "sts:AssumeRoleWithWebIdentity";

/// The spec of these tests: `parameter` as Secret key `value`, read as
/// `identity`.
fn read_as(parameter: &str, identity: Value) -> Value {
    json!({"parameters": [{"name": parameter, "key": "value"}], "identity": identity})
}

/// A read policy for one parameter and key.
fn reader(s: &Scenario, parameter: &str, key: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": s.parameter_arn(parameter)},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key},
        ],
    })
}

/// A ServiceAccount `name` in `ns` annotated with `role`, whose owner lets
/// SsmParameters read as it.
async fn service_account(s: &Scenario, ns: &str, name: &str, role: &str) {
    let annotations = json!({
        "eks.amazonaws.com/role-arn": role,
        "ssm-operator.io/allow-ssmparameters": "true",
    });
    create_service_account(s, ns, name, annotations).await;
}

async fn create_service_account(s: &Scenario, ns: &str, name: &str, annotations: Value) {
    let accounts: Api<ServiceAccount> = Api::namespaced(s.kube.clone(), ns);
    let account = json!({"metadata": {"name": name, "annotations": annotations}});
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(account).unwrap(),
        )
        .await
        .unwrap();
}

/// A tenant: a namespace, its ServiceAccount `reader`, its role (trusting
/// only that ServiceAccount), its key and its parameter.
struct Tenant {
    namespace: String,
    role: String,
    parameter: String,
}

async fn tenant(s: &Scenario, namespace: String, tag: &str) -> Tenant {
    let key = s.create_key().await;
    let parameter = format!("{}-{tag}-secret", s.id);
    s.put_secure_string(&parameter, &format!("VALUE-OF-{tag}"), &key)
        .await;
    let sub = format!("system:serviceaccount:{namespace}:reader");
    let role = s
        .create_named_role_trusting(
            &format!("{}-{tag}", s.id),
            &sub,
            &reader(s, &parameter, &key),
        )
        .await;
    service_account(s, &namespace, "reader", &role).await;
    Tenant {
        namespace,
        role,
        parameter,
    }
}

/// The operator's own role: allowed nothing.
async fn powerless_operator(s: &mut Scenario, options: OperatorOptions) -> String {
    let role = s
        .create_operator_role(&allow(&["ssm:DescribeParameters"], &["*".to_owned()]))
        .await;
    s.start_operator_with(&role, options).await;
    role
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_reads_with_its_own_service_account() {
    let mut s = Scenario::new("tenant-reads").await;
    let a = tenant(&s, s.namespace.clone(), "a").await;
    powerless_operator(&mut s, OperatorOptions::default()).await;
    s.apply(&ssm_parameter(
        "mine",
        read_as(&a.parameter, json!({"serviceAccountName": "reader"})),
    ))
    .await;
    s.wait_for_condition("mine", "Ready", "True", "Synced")
        .await;
    assert_eq!(
        s.secret_value("mine", "value").await.as_deref(),
        Some("VALUE-OF-a")
    );
    let assumed = counters(s.env)
        .await
        .unwrap()
        .calls("sts:AssumeRoleWithWebIdentity", &a.role);
    assert_eq!(assumed, 1);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_spec_a_tenant_can_write_reads_another_tenants_parameter() {
    let mut s = Scenario::new("cross-tenant").await;
    let a = tenant(&s, s.namespace.clone(), "a").await;
    let b_namespace = s.other_namespace("b").await;
    let b = tenant(&s, b_namespace.clone(), "b").await;
    // Tenant A also makes a ServiceAccount claiming B's role.
    service_account(&s, &a.namespace, "impostor", &b.role).await;
    // The chart's defaults: the operator's own identity is no tenant's.
    let options = OperatorOptions {
        also_watch: vec![b_namespace.clone()],
        tenants_only: true,
        ..OperatorOptions::default()
    };
    powerless_operator(&mut s, options).await;
    s.apply_in(
        &b.namespace,
        &ssm_parameter(
            "b-own",
            read_as(&b.parameter, json!({"serviceAccountName": "reader"})),
        ),
    )
    .await;
    s.wait_for_condition_in(&b.namespace, "b-own", "Ready", "True", "Synced")
        .await;

    let b_arn = s.parameter_arn(&b.parameter);
    let attempts = [
        (
            "by-name",
            b.parameter.as_str(),
            json!({"serviceAccountName": "reader"}),
            "SsmAccessDenied",
        ),
        (
            "by-arn",
            b_arn.as_str(),
            json!({"serviceAccountName": "reader"}),
            "SsmAccessDenied",
        ),
        (
            "impostor",
            b.parameter.as_str(),
            json!({"serviceAccountName": "impostor"}),
            "WebIdentityDenied",
        ),
        (
            "their-role",
            b.parameter.as_str(),
            json!({"serviceAccountName": "reader", "roleArn": b.role}),
            "RoleNotAllowed",
        ),
        (
            "operator",
            b.parameter.as_str(),
            json!({}),
            "RoleNotAllowed",
        ),
        (
            "their-account",
            b.parameter.as_str(),
            json!({"serviceAccountName": "no-such-account"}),
            "ServiceAccountNotFound",
        ),
    ];
    for (name, parameter, identity, _) in &attempts {
        s.apply(&ssm_parameter(name, read_as(parameter, identity.clone())))
            .await;
    }
    for (name, _, _, reason) in &attempts {
        let status = s.wait_for_condition(name, "Synced", "False", reason).await;
        assert_eq!(status.ready.as_deref(), Some(*reason));
        assert!(
            s.secrets().get_opt(name).await.unwrap().is_none(),
            "{name} wrote a Secret"
        );
    }
    // B is unaffected.
    let b_status = s.status_in(&b.namespace, "b-own").await.unwrap();
    assert_eq!(b_status.ready.as_deref(), Some("True"));
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_service_account_or_role_annotation_is_service_account_not_found() {
    let mut s = Scenario::new("sa-missing").await;
    let a = tenant(&s, s.namespace.clone(), "a").await;
    // Opted in, but names no role.
    let consent = json!({"ssm-operator.io/allow-ssmparameters": "true"});
    create_service_account(&s, &s.namespace, "plain", consent).await;
    powerless_operator(&mut s, OperatorOptions::default()).await;
    s.apply(&ssm_parameter(
        "missing",
        read_as(&a.parameter, json!({"serviceAccountName": "ghost"})),
    ))
    .await;
    s.apply(&ssm_parameter(
        "plain",
        read_as(&a.parameter, json!({"serviceAccountName": "plain"})),
    ))
    .await;
    let missing = s
        .wait_for_condition("missing", "Synced", "False", "ServiceAccountNotFound")
        .await;
    assert!(missing.conditions[1].message.contains("ghost"));
    let plain = s
        .wait_for_condition("plain", "Synced", "False", "ServiceAccountNotFound")
        .await;
    assert!(
        plain.conditions[1]
            .message
            .contains("eks.amazonaws.com/role-arn")
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_account_that_did_not_opt_in_is_never_borrowed() {
    let mut s = Scenario::new("sa-consent").await;
    let a = tenant(&s, s.namespace.clone(), "a").await;
    // The app's own ServiceAccount, with a role that may read the parameter,
    // but no consent that SsmParameters read as it.
    let role_only = json!({"eks.amazonaws.com/role-arn": a.role});
    create_service_account(&s, &s.namespace, "app", role_only).await;
    powerless_operator(&mut s, OperatorOptions::default()).await;
    s.apply(&ssm_parameter(
        "borrowed",
        read_as(&a.parameter, json!({"serviceAccountName": "app"})),
    ))
    .await;
    let status = s
        .wait_for_condition("borrowed", "Synced", "False", "ServiceAccountNotFound")
        .await;
    assert!(
        status.conditions[1]
            .message
            .contains("ssm-operator.io/allow-ssmparameters"),
        "{}",
        status.conditions[1].message
    );
    assert!(s.secret_value("borrowed", "value").await.is_none());
    let assumed = counters(s.env)
        .await
        .unwrap()
        .calls("sts:AssumeRoleWithWebIdentity", &a.role);
    assert_eq!(assumed, 0);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_account_identities_can_be_turned_off() {
    let mut s = Scenario::new("sa-off").await;
    let a = tenant(&s, s.namespace.clone(), "a").await;
    let options = OperatorOptions {
        args: vec!["--service-account-identities=false".into()],
        ..OperatorOptions::default()
    };
    powerless_operator(&mut s, options).await;
    s.apply(&ssm_parameter(
        "off",
        read_as(&a.parameter, json!({"serviceAccountName": "reader"})),
    ))
    .await;
    let status = s
        .wait_for_condition("off", "Synced", "False", "ServiceAccountNotFound")
        .await;
    assert!(status.conditions[1].message.contains("turned off"));
    let assumed = counters(s.env)
        .await
        .unwrap()
        .calls("sts:AssumeRoleWithWebIdentity", &a.role);
    assert_eq!(assumed, 0);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chained_role_needs_the_namespaces_consent_and_its_denial_is_assume_role_denied() {
    let mut s = Scenario::new("chained").await;
    let a = tenant(&s, s.namespace.clone(), "a").await;
    let key = s.create_key().await;
    let shared = format!("{}-shared", s.id);
    s.put_secure_string(&shared, "SHARED", &key).await;
    // A role that trusts tenant A's role, and that A's role may assume.
    let trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": a.role}, "Action": "sts:AssumeRole"}]});
    let target = s
        .create_role_with_trust(
            &format!("{}-target", s.id),
            &trust,
            &reader(&s, &shared, &key),
        )
        .await;
    let a_role_name = a.role.rsplit('/').next().unwrap().to_owned();
    powerless_operator(&mut s, OperatorOptions::default()).await;
    let identity = json!({"serviceAccountName": "reader", "roleArn": target});

    s.apply(&ssm_parameter(
        "chained",
        read_as(&shared, identity.clone()),
    ))
    .await;
    s.wait_for_condition("chained", "Synced", "False", "RoleNotAllowed")
        .await;
    assert_eq!(
        counters(s.env)
            .await
            .unwrap()
            .calls("sts:AssumeRole", &a.role),
        0,
        "STS was asked anyway"
    );

    s.allow_role_arns(
        &s.namespace,
        &format!("arn:aws:iam::{ACCOUNT}:role/{}-*", s.id),
    )
    .await;
    // Consent given, but A's role may not sts:AssumeRole yet.
    s.force_sync("chained").await;
    let status = s
        .wait_for_condition("chained", "Synced", "False", "AssumeRoleDenied")
        .await;
    assert!(status.conditions[1].message.contains(&target));

    let mut policy = reader(&s, &a.parameter, &key);
    policy["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target}));
    s.put_role_policy(&a_role_name, &policy).await;
    s.force_sync("chained").await;
    s.wait_for_condition("chained", "Ready", "True", "Synced")
        .await;
    assert_eq!(
        s.secret_value("chained", "value").await.as_deref(),
        Some("SHARED")
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_and_invalid_web_identity_tokens_are_told_apart() {
    let mut expired = Scenario::new("token-expired").await;
    let sub = format!("system:serviceaccount:{}:ssm-operator", expired.namespace);
    let token = expired.mint_token(&sub, -120);
    let role = expired
        .create_operator_role(&allow(&["ssm:GetParameters"], &["*".to_owned()]))
        .await;
    let options = OperatorOptions {
        aws_token: Some(token),
        ..OperatorOptions::default()
    };
    expired.start_operator_with(&role, options).await;
    expired
        .apply(&ssm_parameter(
            "expired",
            read_as(&format!("{}-x", expired.id), json!({})),
        ))
        .await;
    expired
        .wait_for_condition("expired", "Synced", "False", "WebIdentityTokenExpired")
        .await;
    expired.cleanup().await;

    let mut invalid = Scenario::new("token-invalid").await;
    let role = invalid
        .create_operator_role(&allow(&["ssm:GetParameters"], &["*".to_owned()]))
        .await;
    let options = OperatorOptions {
        aws_token: Some("not-a-token".into()),
        ..OperatorOptions::default()
    };
    invalid.start_operator_with(&role, options).await;
    invalid
        .apply(&ssm_parameter(
            "invalid",
            read_as(&format!("{}-x", invalid.id), json!({})),
        ))
        .await;
    invalid
        .wait_for_condition("invalid", "Synced", "False", "WebIdentityInvalid")
        .await;
    invalid.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_fetched_once_per_identity_and_lifetime() {
    let mut s = Scenario::new("sts-cache").await;
    let tenants = [
        tenant(&s, s.namespace.clone(), "a").await,
        tenant(&s, s.other_namespace("b").await, "b").await,
        tenant(&s, s.other_namespace("c").await, "c").await,
    ];
    // STS issues no session under 15 minutes: the emulator hands out
    // credentials that expire after 60 s instead.
    let lifetime = Duration::from_secs(60);
    for t in &tenants {
        let short = Fault::new(WEB_IDENTITY, "short_lived")
            .seconds(lifetime.as_secs_f64())
            .count(20);
        inject(s.env, &t.role, &short).await.unwrap();
    }
    let options = OperatorOptions {
        also_watch: tenants[1..].iter().map(|t| t.namespace.clone()).collect(),
        ..OperatorOptions::default()
    };
    powerless_operator(&mut s, options).await;
    let started = Instant::now();
    for t in &tenants {
        for i in 0..50 {
            let spec = json!({"parameters": [{"name": t.parameter, "key": "value"}],
                              "identity": {"serviceAccountName": "reader"}, "refreshInterval": "10s"});
            s.apply_in(&t.namespace, &ssm_parameter(&format!("obj-{i:02}"), spec))
                .await;
        }
    }
    // Refresh for two credential lifetimes.
    let until = started + 2 * lifetime + Duration::from_secs(10);
    eventually(
        "two credential lifetimes of refreshes",
        3 * lifetime,
        || async { (Instant::now() >= until).then_some(()) },
    )
    .await;
    let elapsed = started.elapsed();
    let c = counters(s.env).await.unwrap();
    let reads: u64 = tenants
        .iter()
        .map(|t| c.calls("ssm:GetParameters", &t.role))
        .sum();
    for t in &tenants {
        let assumed = c.calls("sts:AssumeRoleWithWebIdentity", &t.role);
        println!(
            "{}: {assumed} AssumeRoleWithWebIdentity in {elapsed:?}",
            t.namespace
        );
        // Renewed at three quarters of each lifetime, never per refresh.
        let lifetimes = (elapsed.as_secs_f64() / (lifetime.as_secs_f64() * 0.75)).ceil() as u64;
        assert!(
            assumed >= 1 && assumed <= lifetimes + 1,
            "{assumed} STS calls for {}",
            t.namespace
        );
    }
    println!("{reads} GetParameters calls by 150 SsmParameters over 3 identities in {elapsed:?}");
    assert!(reads > 150, "the SsmParameters did not refresh");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chained_session_is_named_after_its_namespace_so_a_trust_policy_can_require_it() {
    let mut s = Scenario::new("session-name").await;
    let other = s.other_namespace("other").await;
    let key = s.create_key().await;
    let shared = format!("{}-shared", s.id);
    s.put_secure_string(&shared, "SHARED", &key).await;
    // The operator's role may assume the target; the target trusts it only
    // for sessions of this scenario's namespace.
    let mut operator_policy = aws::setup::read_prefix_policy(&s.id, &key);
    operator_policy["Statement"].as_array_mut().unwrap().push(
        json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": format!("arn:aws:iam::{ACCOUNT}:role/{}-target", s.id)}),
    );
    let operator_role = s.create_operator_role(&operator_policy).await;
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": operator_role}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:RoleSessionName": format!("ssm-operator.{}", s.namespace)}},
    }]});
    let target = s
        .create_role_with_trust(
            &format!("{}-target", s.id),
            &trust,
            &reader(&s, &shared, &key),
        )
        .await;
    for ns in [&s.namespace, &other] {
        s.allow_role_arns(ns, &target).await;
    }
    let options = OperatorOptions {
        also_watch: vec![other.clone()],
        ..OperatorOptions::default()
    };
    s.start_operator_with(&operator_role, options).await;
    let spec =
        json!({"parameters": [{"name": shared, "key": "value"}], "identity": {"roleArn": target}});
    s.apply(&ssm_parameter("chained", spec.clone())).await;
    s.apply_in(&other, &ssm_parameter_in("chained", &other, spec))
        .await;

    s.wait_for_condition("chained", "Ready", "True", "Synced")
        .await;
    let refused = s
        .wait_for_condition_in(&other, "chained", "Synced", "False", "AssumeRoleDenied")
        .await;
    assert!(refused.conditions[1].message.contains(&target));
    s.cleanup().await;
}

/// The operator's role, which may assume `<id>-target` and whose sessions
/// may last 2 hours; the target, trusting it and reading `parameter`.
async fn two_hour_roles(s: &Scenario, parameter: &str, key: &str) -> (String, String) {
    let target_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}-target", s.id);
    let mut operator_policy = aws::setup::read_prefix_policy(&s.id, key);
    operator_policy["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target_arn}));
    let operator_role = s.create_operator_role(&operator_policy).await;
    s.set_max_session_duration(&format!("{}-op", s.id), 7200)
        .await;
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": operator_role}, "Action": "sts:AssumeRole"}]});
    let target = s
        .create_role_with_trust(
            &format!("{}-target", s.id),
            &trust,
            &reader(s, parameter, key),
        )
        .await;
    s.set_max_session_duration(&format!("{}-target", s.id), 7200)
        .await;
    s.allow_role_arns(&s.namespace, &target).await;
    (operator_role, target)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chained_session_asks_for_one_hour_at_most_as_aws_allows_role_chaining() {
    let mut s = Scenario::new("chained-hour").await;
    let key = s.create_key().await;
    let shared = format!("{}-shared", s.id);
    s.put_secure_string(&shared, "SHARED", &key).await;
    let (operator_role, target) = two_hour_roles(&s, &shared, &key).await;
    // Both roles allow 2 h, but a session chained from another is refused
    // anything over 1 h.
    let options = OperatorOptions {
        args: vec!["--aws-session-duration".into(), "2h".into()],
        ..OperatorOptions::default()
    };
    s.start_operator_with(&operator_role, options).await;
    let spec =
        json!({"parameters": [{"name": shared, "key": "value"}], "identity": {"roleArn": target}});
    s.apply(&ssm_parameter("chained", spec)).await;
    s.wait_for_condition("chained", "Ready", "True", "Synced")
        .await;
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_longer_than_the_role_allows_is_reported_as_such() {
    let mut s = Scenario::new("session-too-long").await;
    let key = s.create_key().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "PW", &key).await;
    // The role allows the default hour; the operator asks for two.
    let role = s
        .create_operator_role(&aws::setup::read_prefix_policy(&s.id, &key))
        .await;
    let options = OperatorOptions {
        args: vec!["--aws-session-duration".into(), "2h".into()],
        ..OperatorOptions::default()
    };
    s.start_operator_with(&role, options).await;
    s.apply(&ssm_parameter(
        "long",
        json!({"parameters": [{"name": name}]}),
    ))
    .await;
    let refused = s
        .wait_for_condition("long", "Synced", "False", "SessionDurationRefused")
        .await;
    let message = &refused.conditions[1].message;
    assert!(message.contains(&role), "{message}");
    assert!(message.contains("MaxSessionDuration"), "{message}");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_source_identity_on_a_chained_session_sets_it_and_a_trust_policy_can_require_it() {
    let mut s = Scenario::new("source-identity").await;
    let key = s.create_key().await;
    let shared = format!("{}-shared", s.id);
    s.put_secure_string(&shared, "SHARED", &key).await;
    let target_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}-target", s.id);
    let mut operator_policy = aws::setup::read_prefix_policy(&s.id, &key);
    operator_policy["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target_arn}));
    let operator_role = s.create_operator_role(&operator_policy).await;
    // Trusted to assume, but not yet to set a source identity.
    let assume_only = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": operator_role}, "Action": "sts:AssumeRole"}]});
    let target = s
        .create_role_with_trust(
            &format!("{}-target", s.id),
            &assume_only,
            &reader(&s, &shared, &key),
        )
        .await;
    s.allow_role_arns(&s.namespace, &target).await;
    let options = OperatorOptions {
        args: vec!["--chained-source-identity=true".to_owned()],
        ..OperatorOptions::default()
    };
    s.start_operator_with(&operator_role, options).await;
    let spec = json!({"parameters": [{"name": shared, "key": "value"}], "identity": {"roleArn": target}, "refreshInterval": "10s"});
    s.apply(&ssm_parameter("chained", spec)).await;
    s.wait_for_condition("chained", "Synced", "False", "AssumeRoleDenied")
        .await;

    let role_name = target.rsplit('/').next().unwrap().to_owned();
    let with_source_identity = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": operator_role},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        "Condition": {"StringEquals": {"sts:SourceIdentity": format!("ssm-operator.{}", s.namespace)}},
    }]});
    s.aws
        .iam
        .update_assume_role_policy()
        .role_name(&role_name)
        .policy_document(with_source_identity.to_string())
        .send()
        .await
        .unwrap();
    s.force_sync("chained").await;
    s.wait_for_condition("chained", "Ready", "True", "Synced")
        .await;
    assert_eq!(
        s.secret_value("chained", "value").await.as_deref(),
        Some("SHARED")
    );
    s.cleanup().await;
}
