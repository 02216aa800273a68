//! AWS answering partially, emptily or not at all: the emulator's faults,
//! each scoped to the test's own role. After each fault the test checks what
//! a user relies on: the Secret holds the current values or the last good
//! ones, the operator deleted nothing (the API server's audit log records
//! every write), and it wrote nothing while nothing changed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use serde_json::{Value, json};
use ssm_operator::api::SsmParameterStatus;

use ssm_operator_testenv::aws::{Fault, clear_faults, counters, inject, pending_faults};
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::{DEADLINE, Scenario, eventually};

const BY_PATH: &str = "ssm:GetParametersByPath";
const GET: &str = "ssm:GetParameters";
const WEB_IDENTITY: &str = "sts:AssumeRoleWithWebIdentity";

async fn data(s: &Scenario, secret: &str) -> BTreeMap<String, String> {
    s.secret_data(secret).await
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ready(status: &SsmParameterStatus) -> (String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    (c.status.clone(), c.reason.clone())
}

/// Waits until the first sync of `name` is done, every write of it landed.
async fn first_sync(s: &Scenario, name: &str) {
    s.wait_for_condition(name, "Ready", "True", "Synced").await;
    eventually("the first sync to finish", DEADLINE, || async {
        (s.finished_reconciles(name, "Synced") >= 1).then_some(())
    })
    .await;
}

/// Forces a sync of `name` and waits to see `Synced=False` with `reason`
/// (watched from before the sync: the state lasts only until a retry).
async fn force_sync_into(s: &Scenario, name: &str, reason: &str) -> SsmParameterStatus {
    let obj = s.ssm_parameters().get(name).await.unwrap();
    let version = obj.resource_version().unwrap();
    s.force_sync(name).await;
    s.watch_for_condition(name, &version, "Synced", "False", reason)
        .await
}

/// The operator wrote no Secret since it had written `before` of them.
fn assert_no_secret_write_since(s: &Scenario, before: usize, during: &str) {
    let writes = s.operator_secret_writes();
    assert_eq!(
        writes.len(),
        before,
        "Secret writes during {during}: {:?}",
        &writes[before.min(writes.len())..]
    );
}

/// A sync that `fault` breaks, by two answers (the sync and its first
/// retry), under `target`; then recovery with backoff.
async fn partial_answer_keeps_the_secret(test: &str, target: Value) {
    let mut s = Scenario::new(test).await;
    let (key, role) = s.with_operator().await;
    let (a, b) = (format!("{}-a", s.id), format!("{}-b", s.id));
    s.put_secure_string(&a, "A1", &key).await;
    s.put_secure_string(&b, "B1", &key).await;
    let spec = json!({
        "parameters": [{"name": a, "key": "a"}, {"name": b, "key": "b"}],
        "refreshInterval": "1h",
        "target": target,
    });
    s.apply(&ssm_parameter("partial", spec)).await;
    first_sync(&s, "partial").await;
    let before = s.operator_secret_writes().len();

    // GetParameters leaves `b` out of both lists, twice.
    let fault = Fault::new(GET, "partial").names(&[&b]).count(2);
    inject(s.env, &role, &fault).await.unwrap();
    let faulted = Instant::now();
    let status = force_sync_into(&s, "partial", "AwsUnavailable").await;
    assert_eq!(ready(&status), ("True".into(), "Stale".into()));
    s.wait_for_condition("partial", "Synced", "True", "Synced")
        .await;
    println!(
        "{test}: recovered {:?} after two partial answers; Secret writes during the fault: {}",
        faulted.elapsed(),
        s.operator_secret_writes().len() - before
    );
    assert_eq!(
        data(&s, "partial").await,
        expected(&[("a", "A1"), ("b", "B1")])
    );
    assert_no_secret_write_since(&s, before, "a partial answer");

    // Still in sync afterwards: a change is written, once.
    s.put_secure_string(&b, "B2", &key).await;
    s.force_sync("partial").await;
    eventually("the new value", DEADLINE, || async {
        (s.secret_value("partial", "b").await.as_deref() == Some("B2")).then_some(())
    })
    .await;
    let writes = s.operator_secret_writes();
    assert_eq!(writes.len(), before + 1, "{writes:?}");
    assert_eq!(writes[before].verb, "patch");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_get_parameters_answer_under_delete_deletes_no_secret() {
    partial_answer_keeps_the_secret("partial-delete", json!({"deletionPolicy": "Delete"})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_get_parameters_answer_under_retain_keeps_the_last_good_values() {
    partial_answer_keeps_the_secret("partial-retain", json!({"deletionPolicy": "Retain"})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_get_parameters_answer_with_merge_removes_no_key_of_the_shared_secret() {
    let mut s = Scenario::new("partial-merge").await;
    let (key, role) = s.with_operator().await;
    let a = format!("{}-a", s.id);
    s.put_secure_string(&a, "A1", &key).await;
    // Someone else's Secret, opted in to this SsmParameter's keys.
    s.put_secret_as(
        "someone-else",
        json!({
            "metadata": {
                "name": "shared",
                "annotations": {"ssm-operator.io/merge-from": "merge"},
            },
            "stringData": {"theirs": "T"},
        }),
    )
    .await;
    let spec = json!({
        "parameters": [{"name": a, "key": "a"}],
        "refreshInterval": "1h",
        "target": {"name": "shared", "creationPolicy": "Merge", "deletionPolicy": "Delete"},
    });
    s.apply(&ssm_parameter("merge", spec)).await;
    first_sync(&s, "merge").await;
    assert_eq!(
        data(&s, "shared").await,
        expected(&[("a", "A1"), ("theirs", "T")])
    );
    let before = s.operator_secret_writes().len();

    let fault = Fault::new(GET, "partial").count(2);
    inject(s.env, &role, &fault).await.unwrap();
    force_sync_into(&s, "merge", "AwsUnavailable").await;
    s.wait_for_condition("merge", "Synced", "True", "Synced")
        .await;
    assert_eq!(
        data(&s, "shared").await,
        expected(&[("a", "A1"), ("theirs", "T")])
    );
    assert_no_secret_write_since(&s, before, "a partial answer into a merged Secret");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_path_listing_drops_no_key_and_writes_nothing() {
    let mut s = Scenario::new("truncated-path").await;
    let (key, role) = s.with_operator().await;
    // Twelve parameters: two pages of GetParametersByPath.
    let mut all = BTreeMap::new();
    for i in 0..12 {
        let name = format!("/{}/app/p{i:02}", s.id);
        s.put_secure_string(&name, &format!("v{i}"), &key).await;
        all.insert(format!("p{i:02}"), format!("v{i}"));
    }
    let spec = json!({
        "path": {"prefix": format!("/{}/app", s.id)},
        "refreshInterval": "1h",
        "target": {"deletionPolicy": "Delete"},
    });
    s.apply(&ssm_parameter("imported", spec)).await;
    first_sync(&s, "imported").await;
    assert_eq!(data(&s, "imported").await, all);
    let before = s.operator_secret_writes().len();

    for (what, fault) in [
        (
            "a listing that ends early",
            Fault::new(BY_PATH, "end_early"),
        ),
        ("a page cut short", Fault::new(BY_PATH, "cut_page").keep(3)),
        ("a NextToken that fails", Fault::new(BY_PATH, "bad_token")),
    ] {
        inject(s.env, &role, &fault).await.unwrap();
        let faulted = Instant::now();
        let status = force_sync_into(&s, "imported", "AwsUnavailable").await;
        assert_eq!(ready(&status), ("True".into(), "Stale".into()), "{what}");
        s.wait_for_condition("imported", "Synced", "True", "Synced")
            .await;
        println!(
            "truncated-path: {what}: recovered {:?} later",
            faulted.elapsed()
        );
        assert_eq!(data(&s, "imported").await, all, "after {what}");
        assert_no_secret_write_since(&s, before, what);
    }
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_path_listing_deletes_nothing_even_under_delete() {
    let mut s = Scenario::new("empty-path").await;
    let (key, role) = s.with_operator().await;
    for name in ["a", "b", "c"] {
        let parameter = format!("/{}/app/{name}", s.id);
        s.put_secure_string(&parameter, name, &key).await;
    }
    let spec = json!({
        "path": {"prefix": format!("/{}/app", s.id)},
        "refreshInterval": "1h",
        "target": {"deletionPolicy": "Delete"},
    });
    s.apply(&ssm_parameter("imported", spec)).await;
    first_sync(&s, "imported").await;
    let before = s.operator_secret_writes().len();

    let fault = Fault::new(BY_PATH, "empty").count(2);
    inject(s.env, &role, &fault).await.unwrap();
    let faulted = Instant::now();
    force_sync_into(&s, "imported", "AwsUnavailable").await;
    s.wait_for_condition("imported", "Synced", "True", "Synced")
        .await;
    println!(
        "empty-path: recovered {:?} after two empty listings",
        faulted.elapsed()
    );
    assert_eq!(
        data(&s, "imported").await,
        expected(&[("a", "a"), ("b", "b"), ("c", "c")])
    );
    assert_no_secret_write_since(&s, before, "an empty listing");

    // A path with nothing under it at all creates no (empty) Secret.
    s.apply(&ssm_parameter(
        "nothing",
        json!({"path": {"prefix": format!("/{}/none", s.id)}}),
    ))
    .await;
    s.wait_for_condition("nothing", "Synced", "False", "ParameterNotFound")
        .await;
    assert!(s.secrets().get_opt("nothing").await.unwrap().is_none());
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_throttling_inside_ssm_is_retried_soon_and_recovers_without_waiting_for_the_refresh() {
    let mut s = Scenario::new("kms-throttled").await;
    let (key, role) = s.with_operator().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "v1", &key).await;
    let spec = json!({"parameters": [{"name": name, "key": "pw"}], "refreshInterval": "1h"});
    s.apply(&ssm_parameter("kms", spec)).await;
    first_sync(&s, "kms").await;
    let before = s.operator_secret_writes().len();

    // SSM's own code around a KMS failure is not documented: InvalidKeyId,
    // the code of every other KMS failure SSM reports, is the one a key
    // state would be read from.
    for (kind, reason, value) in [
        ("kms_throttle", "Throttled", "v2"),
        ("kms_internal", "AwsUnavailable", "v3"),
    ] {
        let fault = Fault::new(GET, kind).code("InvalidKeyId").count(2);
        inject(s.env, &role, &fault).await.unwrap();
        s.put_secure_string(&name, value, &key).await;
        let faulted = Instant::now();
        let status = force_sync_into(&s, "kms", reason).await;
        assert_eq!(ready(&status), ("True".into(), "Stale".into()), "{kind}");
        eventually(
            "the new value, well before the refresh",
            DEADLINE,
            || async {
                (s.secret_value("kms", "pw").await.as_deref() == Some(value)).then_some(())
            },
        )
        .await;
        println!(
            "kms-throttled: {kind} inside InvalidKeyId: new value written {:?} after the fault (refreshInterval 1h)",
            faulted.elapsed()
        );
        s.wait_for_condition("kms", "Synced", "True", "Synced")
            .await;
        assert_eq!(
            pending_faults(s.env, &role).await.unwrap().get(kind),
            None,
            "the retries did not meet the fault"
        );
    }
    let writes = s.operator_secret_writes();
    assert_eq!(
        writes.len(),
        before + 2,
        "one write per new value: {writes:?}"
    );
    assert!(writes.iter().all(|w| w.verb != "delete"), "{writes:?}");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sts_hanging_across_a_credential_renewal_keeps_reading_with_the_cached_credentials() {
    let mut s = Scenario::new("sts-hangs").await;
    let key = s.create_key().await;
    let policy = ssm_operator_testenv::aws::setup::read_prefix_policy(&s.id, &key);
    let role = s.create_operator_role(&policy).await;
    // The operator's first credentials live 80 s: renewed from 60 s on,
    // used until 75 s.
    let short = Fault::new(WEB_IDENTITY, "short_lived").seconds(80.0);
    inject(s.env, &role, &short).await.unwrap();
    s.start_operator(&role).await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "v1", &key).await;
    let spec = json!({"parameters": [{"name": name, "key": "pw"}], "refreshInterval": "10s"});
    s.apply(&ssm_parameter("sts", spec)).await;
    first_sync(&s, "sts").await;
    let before = s.operator_secret_writes().len();
    let all_writes = s.operator_writes();
    let ok = |c: &ssm_operator_testenv::aws::Counters, action: &str| {
        c.outcomes(action, &role)
            .get("ok")
            .copied()
            .unwrap_or_default()
    };
    assert_eq!(ok(&counters(s.env).await.unwrap(), WEB_IDENTITY), 1);

    // From now on STS hangs.
    let hangs = 100;
    let hang = Fault::new(WEB_IDENTITY, "hang").count(hangs).seconds(20.0);
    inject(s.env, &role, &hang).await.unwrap();
    let taken = || async {
        let pending = pending_faults(s.env, &role).await.unwrap();
        u64::from(hangs) - pending.get("hang").copied().unwrap_or_default()
    };
    eventually(
        "a renewal to be tried while STS hangs",
        Duration::from_secs(100),
        || async { (taken().await > 0).then_some(()) },
    )
    .await;
    let renewal_tried = Instant::now();
    let reads = ok(&counters(s.env).await.unwrap(), GET);
    eventually(
        "a read with the cached credentials while STS hangs",
        DEADLINE,
        || async { (ok(&counters(s.env).await.unwrap(), GET) > reads).then_some(()) },
    )
    .await;
    let status = s.status("sts").await.unwrap();
    assert_eq!(ready(&status), ("True".into(), "Synced".into()));
    let tries = taken().await;
    println!(
        "sts-hangs: a read succeeded {:?} after the renewal began to hang; STS calls during the hang: {tries}",
        renewal_tried.elapsed()
    );
    assert!(tries <= 3, "renewal retried in a loop: {tries} calls");

    clear_faults(s.env, &role).await.unwrap();
    let healed = Instant::now();
    eventually("the credentials to be renewed", DEADLINE, || async {
        (ok(&counters(s.env).await.unwrap(), WEB_IDENTITY) >= 2).then_some(())
    })
    .await;
    println!("sts-hangs: renewed {:?} after STS healed", healed.elapsed());
    let reads = ok(&counters(s.env).await.unwrap(), GET);
    eventually("a read with the new credentials", DEADLINE, || async {
        (ok(&counters(s.env).await.unwrap(), GET) > reads).then_some(())
    })
    .await;
    assert_eq!(s.secret_value("sts", "pw").await.as_deref(), Some("v1"));
    assert_eq!(
        s.finished_reconciles("sts", "AwsUnavailable"),
        0,
        "a read failed while the cached credentials were good"
    );
    assert_no_secret_write_since(&s, before, "STS hanging");
    assert_eq!(
        s.operator_writes(),
        all_writes,
        "a write (status, Event) while nothing changed"
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_identity_provider_is_retried_soon_not_at_the_refresh() {
    let mut s = Scenario::new("idp-unreachable").await;
    let key = s.create_key().await;
    let policy = ssm_operator_testenv::aws::setup::read_prefix_policy(&s.id, &key);
    let role = s.create_operator_role(&policy).await;
    // The SDK retries IDPCommunicationError itself (3 attempts): three
    // answers fail one STS call of the operator.
    let fault = Fault::new(WEB_IDENTITY, "idp_communication_error").count(3);
    inject(s.env, &role, &fault).await.unwrap();
    s.start_operator(&role).await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "v1", &key).await;
    let spec = json!({"parameters": [{"name": name, "key": "pw"}], "refreshInterval": "1h"});
    let created = s.apply(&ssm_parameter("idp", spec)).await;
    let started = Instant::now();
    s.watch_for_condition(
        "idp",
        &created.resource_version().unwrap(),
        "Synced",
        "False",
        "AwsUnavailable",
    )
    .await;
    s.wait_for_condition("idp", "Ready", "True", "Synced").await;
    let outcomes = counters(s.env).await.unwrap().outcomes(WEB_IDENTITY, &role);
    println!(
        "idp-unreachable: synced {:?} after creation; STS calls: {outcomes:?}",
        started.elapsed()
    );
    assert_eq!(
        outcomes.get("IDPCommunicationError"),
        Some(&3),
        "{outcomes:?}"
    );
    assert_eq!(outcomes.get("ok"), Some(&1), "{outcomes:?}");
    assert_eq!(s.secret_value("idp", "pw").await.as_deref(), Some("v1"));
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_ssm_calls_expired_is_renewed_and_the_sync_recovers() {
    let mut s = Scenario::new("session-expired").await;
    let (key, role) = s.with_operator().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "v1", &key).await;
    let spec = json!({"parameters": [{"name": name, "key": "pw"}], "refreshInterval": "1h"});
    s.apply(&ssm_parameter("session", spec)).await;
    first_sync(&s, "session").await;
    let before = s.operator_secret_writes().len();

    let fault = Fault::new(GET, "expired_token");
    inject(s.env, &role, &fault).await.unwrap();
    let faulted = Instant::now();
    force_sync_into(&s, "session", "AwsUnavailable").await;
    s.wait_for_condition("session", "Synced", "True", "Synced")
        .await;
    let outcomes = counters(s.env).await.unwrap().outcomes(WEB_IDENTITY, &role);
    println!(
        "session-expired: recovered {:?} after SSM refused the session; STS calls: {outcomes:?}",
        faulted.elapsed()
    );
    assert_eq!(
        outcomes.get("ok"),
        Some(&2),
        "the session was not renewed: {outcomes:?}"
    );
    assert_eq!(s.secret_value("session", "pw").await.as_deref(), Some("v1"));
    assert_no_secret_write_since(&s, before, "a refused session");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_signature_keeps_the_credentials_and_makes_no_sts_call() {
    let mut s = Scenario::new("bad-signature").await;
    let (key, role) = s.with_operator().await;
    let name = format!("{}-pw", s.id);
    s.put_secure_string(&name, "v1", &key).await;
    let spec = json!({"parameters": [{"name": name, "key": "pw"}]});
    s.apply(&ssm_parameter("signed", spec)).await;
    first_sync(&s, "signed").await;
    let sts_calls = |c: &ssm_operator_testenv::aws::Counters| c.calls(WEB_IDENTITY, &role);
    let before = sts_calls(&counters(s.env).await.unwrap());

    // A clock off by minutes: every read refused, new credentials or not.
    let refusals = 3;
    let skewed = Fault::new(GET, "invalid_signature").count(refusals);
    inject(s.env, &role, &skewed).await.unwrap();
    let refused = force_sync_into(&s, "signed", "AwsUnavailable").await;
    assert!(
        refused.conditions[1].message.contains("clock"),
        "{:?}",
        refused.conditions[1]
    );
    eventually("every refused read to be retried", DEADLINE, || async {
        let pending = pending_faults(s.env, &role).await.unwrap();
        pending.is_empty().then_some(())
    })
    .await;
    s.wait_for_condition("signed", "Synced", "True", "Synced")
        .await;
    let after = sts_calls(&counters(s.env).await.unwrap());
    assert_eq!(after, before, "STS was called again for refused signatures");
    s.cleanup().await;
}
