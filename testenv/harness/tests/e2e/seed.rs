//! The seed scenario, step by step: SsmParameter → decrypted Secret, and
//! every KMS, SSM and STS refusal told apart in status.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde_json::{Value, json};

use ssm_operator::api::SsmParameterStatus;

use ssm_operator_testenv::aws::{allow, counters, set_key_state};
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::{DEADLINE, Scenario, eventually, key_id, kubectl};

const VALUE: &str = "PASSWORD";

/// The seed's world: a customer-managed key, `prd-db-pass` encrypted with it,
/// an operator whose role may read and decrypt it, and the SsmParameter.
struct Seed {
    s: Scenario,
    key: String,
    parameter: String,
    role_arn: String,
}

impl Seed {
    async fn start(test: &str) -> Self {
        Self::start_with(test, "1h", true).await
    }

    async fn start_with(test: &str, refresh: &str, decrypt: bool) -> Self {
        let mut s = Scenario::new(test).await;
        let key = s.create_key().await;
        let parameter = format!("{}-prd-db-pass", s.id);
        s.put_secure_string(&parameter, VALUE, &key).await;
        let role_arn = s
            .create_operator_role(&full_policy(&s, &parameter, &key))
            .await;
        s.start_operator(&role_arn).await;
        s.apply(&ssm_parameter(
            "db-credentials",
            spec(&parameter, refresh, decrypt),
        ))
        .await;
        Self {
            s,
            key,
            parameter,
            role_arn,
        }
    }

    fn role_name(&self) -> &str {
        self.role_arn.rsplit('/').next().unwrap_or_default()
    }

    async fn revoke_decrypt(&self) {
        let policy = allow(
            &["ssm:GetParameters"],
            &[self.s.parameter_arn(&self.parameter)],
        );
        self.s.put_role_policy(self.role_name(), &policy).await;
    }

    async fn restore_access(&self) {
        let policy = full_policy(&self.s, &self.parameter, &self.key);
        self.s.put_role_policy(self.role_name(), &policy).await;
    }

    /// Waits for the Secret to be in sync.
    async fn synced(&self) -> SsmParameterStatus {
        self.s
            .wait_for_condition("db-credentials", "Ready", "True", "Synced")
            .await
    }

    /// Reads AWS now and waits for `Synced=False` with `reason`.
    async fn refused(&self, reason: &str) -> SsmParameterStatus {
        self.s.force_sync("db-credentials").await;
        self.s
            .wait_for_condition("db-credentials", "Synced", "False", reason)
            .await
    }

    /// The Secret still holds the last good value.
    async fn assert_secret_kept(&self) {
        let value = self.s.secret_value("db-credentials", "password").await;
        assert_eq!(value.as_deref(), Some(VALUE));
    }

    /// Calls of GetParameters by the operator's role that AWS refused with `code`.
    async fn refused_reads(&self, code: &str) -> u64 {
        let c = counters(self.s.env).await.unwrap();
        c.outcomes("ssm:GetParameters", &self.role_arn)
            .get(code)
            .copied()
            .unwrap_or(0)
    }
}

fn full_policy(s: &Scenario, parameter: &str, key: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": s.parameter_arn(parameter)},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key},
        ],
    })
}

/// The seed's spec: `parameter` as Secret key `password`.
fn spec(parameter: &str, refresh: &str, decrypt: bool) -> Value {
    json!({
        "parameters": [{"name": parameter, "key": "password", "decrypt": decrypt}],
        "refreshInterval": refresh,
    })
}

fn condition<'a>(
    s: &'a ssm_operator::api::SsmParameterStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    s.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_scenario_syncs_decrypted_secret_owned_by_the_ssm_parameter() {
    let seed = Seed::start("seed-syncs").await;
    let s = &seed.s;
    let status = s
        .wait_for_condition("db-credentials", "Ready", "True", "Synced")
        .await;
    assert_eq!(condition(&status, "Synced").status, "True");
    seed.assert_secret_kept().await;

    let obj = s.ssm_parameters().get("db-credentials").await.unwrap();
    let secret: Secret = s.secrets().get("db-credentials").await.unwrap();
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("SsmParameter", obj.uid().unwrap().as_str())
    );
    assert_eq!(status.secret_name.as_deref(), Some("db-credentials"));
    assert_eq!(status.observed_generation, obj.metadata.generation);
    let p = &status.parameters[0];
    assert_eq!(
        (p.name.as_str(), p.key.as_str(), p.version, p.type_.as_str()),
        (seed.parameter.as_str(), "password", 1, "SecureString")
    );

    let out = kubectl(s.env, &["get", "ssmp", "-n", &s.namespace], None);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("SECRET") && table.contains("READY") && table.contains("SYNCED"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("db-credentials"))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[1..4],
        &["db-credentials", "True", "Synced"],
        "{table}"
    );
    s_created_event(s).await;
    seed.s.cleanup().await;
}

async fn s_created_event(s: &Scenario) {
    let created = s.wait_for_event("db-credentials", "Created").await;
    assert_eq!(created.type_.as_deref(), Some("Normal"));
    assert!(
        created
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("password (version 1)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_access_denied_sets_synced_false_and_keeps_secret_then_recovers() {
    let seed = Seed::start("kms-denied").await;
    let s = &seed.s;
    seed.synced().await;

    seed.revoke_decrypt().await;
    let status = seed.refused("KmsAccessDenied").await;
    let message = &condition(&status, "Synced").message;
    assert!(message.contains(&seed.parameter), "{message}");
    assert!(message.contains(&seed.key), "{message}");
    assert!(
        message.contains(&format!("assumed-role/{}", seed.role_name())),
        "{message}"
    );
    let ready = condition(&status, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Stale")
    );
    seed.assert_secret_kept().await;

    // Two more refused refreshes: still one Warning, and status unchanged.
    let refused = seed.refused_reads("AccessDeniedException").await;
    for round in 1..=2 {
        s.force_sync("db-credentials").await;
        eventually("another refused read", DEADLINE, || async {
            (seed.refused_reads("AccessDeniedException").await >= refused + round).then_some(())
        })
        .await;
    }
    // Each refused refresh reports (status, Events) after its read: count
    // once the first refusal and both refreshes have finished.
    eventually("the refused refreshes to finish", DEADLINE, || async {
        (s.finished_reconciles("db-credentials", "KmsAccessDenied") >= 3).then_some(())
    })
    .await;
    let warnings: Vec<_> = s
        .events("db-credentials")
        .await
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].reason.as_deref(), Some("KmsAccessDenied"));
    assert_eq!(
        warnings[0].series.as_ref().map(|s| s.count),
        None,
        "the Warning repeated: {warnings:?}"
    );
    let status_after = s.status("db-credentials").await.unwrap();
    assert_eq!(status_after, status, "a repeated failure rewrote status");

    seed.restore_access().await;
    s.force_sync("db-credentials").await;
    s.wait_for_condition("db-credentials", "Synced", "True", "Synced")
        .await;
    let status = s
        .wait_for_condition("db-credentials", "Ready", "True", "Synced")
        .await;
    assert_eq!(status.ready.as_deref(), Some("True"));
    seed.s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_policy_deny_is_kms_access_denied() {
    let seed = Seed::start("key-policy-deny").await;
    let s = &seed.s;
    seed.synced().await;
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "deny-operator", "Effect": "Deny", "Principal": {"AWS": seed.role_arn}, "Action": "kms:Decrypt", "Resource": "*"},
        ],
    });
    s.aws
        .kms
        .put_key_policy()
        .key_id(key_id(&seed.key))
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    let status = seed.refused("KmsAccessDenied").await;
    assert!(condition(&status, "Synced").message.contains(&seed.key));
    seed.assert_secret_kept().await;
    seed.s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_key_is_kms_key_disabled_and_reenabling_recovers() {
    let seed = Seed::start("key-disabled").await;
    let s = &seed.s;
    seed.synced().await;
    s.aws
        .kms
        .disable_key()
        .key_id(key_id(&seed.key))
        .send()
        .await
        .unwrap();
    let status = seed.refused("KmsKeyDisabled").await;
    assert!(condition(&status, "Synced").message.contains(&seed.key));
    assert_eq!(condition(&status, "Ready").reason, "Stale");
    seed.assert_secret_kept().await;

    s.aws
        .kms
        .enable_key()
        .key_id(key_id(&seed.key))
        .send()
        .await
        .unwrap();
    s.force_sync("db-credentials").await;
    s.wait_for_condition("db-credentials", "Synced", "True", "Synced")
        .await;
    seed.s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_pending_deletion_is_kms_key_pending_deletion() {
    let seed = Seed::start("key-pending-deletion").await;
    let s = &seed.s;
    seed.synced().await;
    s.aws
        .kms
        .schedule_key_deletion()
        .key_id(key_id(&seed.key))
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    seed.refused("KmsKeyPendingDeletion").await;
    seed.assert_secret_kept().await;
    seed.s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_whose_imported_material_expired_is_kms_key_unusable_naming_the_state() {
    let seed = Seed::start("key-pending-import").await;
    let s = &seed.s;
    seed.synced().await;
    // Imported key material that expires leaves the key PendingImport.
    set_key_state(s.env, &seed.key, "PendingImport")
        .await
        .unwrap();
    let status = seed.refused("KmsKeyUnusable").await;
    let message = &status.conditions[1].message;
    assert!(message.contains("its state is pending import"), "{message}");
    assert!(message.contains(&seed.key), "{message}");
    seed.assert_secret_kept().await;
    set_key_state(s.env, &seed.key, "Enabled").await.unwrap();
    s.force_sync("db-credentials").await;
    s.wait_for_condition("db-credentials", "Synced", "True", "Synced")
        .await;
    seed.s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_parameter_is_parameter_not_found_and_secret_retained() {
    let seed = Seed::start("parameter-deleted").await;
    let s = &seed.s;
    seed.synced().await;
    s.aws
        .ssm
        .delete_parameter()
        .name(&seed.parameter)
        .send()
        .await
        .unwrap();
    let status = seed.refused("ParameterNotFound").await;
    assert!(
        condition(&status, "Synced")
            .message
            .contains(&seed.parameter)
    );
    assert_eq!(condition(&status, "Ready").reason, "Stale");
    seed.assert_secret_kept().await;
    seed.s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn role_without_ssm_read_is_ssm_access_denied_and_first_sync_writes_no_secret() {
    let mut s = Scenario::new("no-ssm-read").await;
    let key = s.create_key().await;
    let parameter = format!("{}-prd-db-pass", s.id);
    s.put_secure_string(&parameter, VALUE, &key).await;
    let role = s
        .create_operator_role(&allow(&["kms:Decrypt"], std::slice::from_ref(&key)))
        .await;
    s.start_operator(&role).await;
    s.apply(&ssm_parameter(
        "db-credentials",
        spec(&parameter, "1h", true),
    ))
    .await;
    let status = s
        .wait_for_condition("db-credentials", "Synced", "False", "SsmAccessDenied")
        .await;
    let ready = condition(&status, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "SsmAccessDenied")
    );
    assert!(
        condition(&status, "Synced")
            .message
            .contains("ssm:GetParameters")
    );
    assert!(condition(&status, "Synced").message.contains(&parameter));
    assert!(
        s.secrets()
            .get_opt("db-credentials")
            .await
            .unwrap()
            .is_none()
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn trust_policy_mismatch_is_web_identity_denied() {
    let mut s = Scenario::new("web-identity-denied").await;
    let key = s.create_key().await;
    let parameter = format!("{}-prd-db-pass", s.id);
    s.put_secure_string(&parameter, VALUE, &key).await;
    let sub = format!("system:serviceaccount:{}:someone-else", s.namespace);
    let role = s
        .create_role_trusting(&sub, &full_policy(&s, &parameter, &key))
        .await;
    s.start_operator(&role).await;
    s.apply(&ssm_parameter(
        "db-credentials",
        spec(&parameter, "1h", true),
    ))
    .await;
    let status = s
        .wait_for_condition("db-credentials", "Synced", "False", "WebIdentityDenied")
        .await;
    assert_eq!(condition(&status, "Ready").status, "False");
    assert!(condition(&status, "Synced").message.contains(&role));
    assert!(
        s.secrets()
            .get_opt("db-credentials")
            .await
            .unwrap()
            .is_none()
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn new_parameter_value_reaches_the_secret_within_the_refresh_interval() {
    let seed = Seed::start_with("value-changes", "10s", true).await;
    let s = &seed.s;
    seed.synced().await;
    s.put_secure_string(&seed.parameter, "ROTATED", &seed.key)
        .await;
    eventually(
        "the rotated value in the Secret",
        Duration::from_secs(25),
        || async {
            (s.secret_value("db-credentials", "password")
                .await
                .as_deref()
                == Some("ROTATED"))
            .then_some(())
        },
    )
    .await;
    // The status follows the Secret's write.
    let status = s
        .wait_for_status("db-credentials", "status of version 2", |st| {
            st.parameters.first().is_some_and(|p| p.version == 2)
        })
        .await;
    assert_eq!(condition(&status, "Ready").reason, "Synced");
    let updated = s.wait_for_event("db-credentials", "Updated").await;
    assert!(
        updated
            .note
            .unwrap_or_default()
            .contains("password (version 2)")
    );
    seed.s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_refresh_writes_nothing() {
    let seed = Seed::start_with("unchanged-refresh", "10s", true).await;
    let s = &seed.s;
    seed.synced().await;
    // The first sync's Created Event follows its status.
    eventually("the first sync to finish", DEADLINE, || async {
        (s.finished_reconciles("db-credentials", "Synced") >= 1).then_some(())
    })
    .await;
    let secret_rv = s
        .secrets()
        .get("db-credentials")
        .await
        .unwrap()
        .resource_version();
    let object_rv = s
        .ssm_parameters()
        .get("db-credentials")
        .await
        .unwrap()
        .resource_version();
    let events = s.events("db-credentials").await.len();
    let finished = s.finished_reconciles("db-credentials", "Synced");
    let reads = counters(s.env)
        .await
        .unwrap()
        .calls("ssm:GetParameters", &seed.role_arn);
    eventually("two refreshes", Duration::from_secs(40), || async {
        (counters(s.env)
            .await
            .unwrap()
            .calls("ssm:GetParameters", &seed.role_arn)
            >= reads + 2)
            .then_some(())
    })
    .await;
    // A refresh writes, if at all, after its read: compare once both are done.
    eventually("the two refreshes to finish", DEADLINE, || async {
        (s.finished_reconciles("db-credentials", "Synced") >= finished + 2).then_some(())
    })
    .await;
    assert_eq!(
        s.secrets()
            .get("db-credentials")
            .await
            .unwrap()
            .resource_version(),
        secret_rv
    );
    assert_eq!(
        s.ssm_parameters()
            .get("db-credentials")
            .await
            .unwrap()
            .resource_version(),
        object_rv
    );
    assert_eq!(s.events("db-credentials").await.len(), events);
    seed.s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn decrypt_false_stores_the_value_as_aws_returns_it() {
    let seed = Seed::start_with("decrypt-false", "1h", false).await;
    let s = &seed.s;
    seed.synced().await;
    let raw = s
        .aws
        .ssm
        .get_parameter()
        .name(&seed.parameter)
        .with_decryption(false)
        .send()
        .await
        .unwrap()
        .parameter
        .and_then(|p| p.value)
        .unwrap();
    assert_ne!(raw, VALUE);
    assert_eq!(
        s.secret_value("db-credentials", "password").await,
        Some(raw)
    );
    seed.s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_ssm_parameter_deletes_its_secret() {
    let seed = Seed::start("owner-deleted").await;
    let s = &seed.s;
    seed.synced().await;
    s.ssm_parameters()
        .delete("db-credentials", &Default::default())
        .await
        .unwrap();
    s.wait_for_secret_collected("db-credentials").await;
    seed.s.cleanup().await;
}

/// A world of `count` SecureStrings and an operator allowed to read them;
/// `forbidden` of them are encrypted with a key the role may not use.
async fn many_parameters(
    test: &str,
    count: usize,
    forbidden: usize,
) -> (Scenario, Vec<String>, String) {
    let s = Scenario::new(test).await;
    let key = s.create_key().await;
    let forbidden_key = s.create_key().await;
    let names: Vec<String> = (0..count).map(|i| format!("{}-p{i}", s.id)).collect();
    for (i, name) in names.iter().enumerate() {
        let k = if i < count - forbidden {
            &key
        } else {
            &forbidden_key
        };
        s.put_secure_string(name, VALUE, k).await;
    }
    let arns: Vec<String> = names.iter().map(|n| s.parameter_arn(n)).collect();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": arns},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key},
        ],
    });
    let role = s.create_operator_role(&policy).await;
    // Every object exists before the operator starts, so all are due together.
    for (i, name) in names.iter().enumerate() {
        s.apply(&ssm_parameter(&format!("obj-{i}"), spec(name, "1h", true)))
            .await;
    }
    (s, names, role)
}

#[tokio::test(flavor = "multi_thread")]
async fn ssm_parameters_due_together_share_get_parameters_calls() {
    let (mut s, _, role) = many_parameters("batching", 6, 0).await;
    s.start_operator(&role).await;
    for i in 0..6 {
        s.wait_for_condition(&format!("obj-{i}"), "Ready", "True", "Synced")
            .await;
    }
    let calls = counters(s.env)
        .await
        .unwrap()
        .calls("ssm:GetParameters", &role);
    let batches: Vec<String> = s
        .operator_log()
        .lines()
        .filter(|l| l.contains("batch of reads"))
        .map(str::to_owned)
        .collect();
    assert!(
        calls <= 2,
        "6 SsmParameters due together took {calls} GetParameters calls; batches:\n{}",
        batches.join("\n")
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_undecryptable_parameter_in_a_batch_fails_only_its_ssm_parameter() {
    let (mut s, names, role) = many_parameters("batch-denial", 4, 1).await;
    s.start_operator(&role).await;
    for i in 0..3 {
        s.wait_for_condition(&format!("obj-{i}"), "Ready", "True", "Synced")
            .await;
    }
    let status = s
        .wait_for_condition("obj-3", "Synced", "False", "KmsAccessDenied")
        .await;
    assert!(condition(&status, "Synced").message.contains(&names[3]));
    s.cleanup().await;
}
