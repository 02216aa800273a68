//! The API server misbehaving, through a fault proxy between the operator
//! and kube-apiserver: a 429 storm, an outage with two replicas, a
//! black-holed connection, a watch gap; and a panic in one reconcile. After
//! each fault the same invariants hold: every Secret holds the current AWS
//! values, the operator deleted no Secret, one `Updated` Event per change of
//! data, and no write while nothing changes.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};
use serde_json::json;
use tokio::time::Instant;

use ssm_operator_testenv::aws::counters;
use ssm_operator_testenv::aws::setup::read_prefix_policy;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::operator::{Audited, Operator, audited, audited_writes};
use ssm_operator_testenv::proxy::log::between;
use ssm_operator_testenv::proxy::{FaultProxy, Faults, Logged};
use ssm_operator_testenv::{DEADLINE, OperatorOptions, Scenario, eventually};

/// Every object of these tests reads AWS this often.
const REFRESH: &str = "10s";
const LEASE: &str = "ssm-operator";

/// An SsmParameter of the test, its parameter, the value AWS holds now and
/// how many times the test changed it.
struct Tracked {
    name: String,
    parameter: String,
    value: String,
    changes: usize,
}

/// A key and a role for the operator, which reads the API server through
/// `proxy` (with leader election as `leader`, if any). Returns (key, role).
async fn operator_behind(
    s: &mut Scenario,
    proxy: &FaultProxy,
    leader: Option<&str>,
) -> (String, String) {
    let key = s.create_key().await;
    let role = s
        .create_operator_role(&read_prefix_policy(&s.id, &key))
        .await;
    if let Some(name) = leader {
        start_replica(s, &role, proxy, name).await;
    } else {
        let options = OperatorOptions {
            api_server: Some(proxy.url()),
            ..OperatorOptions::default()
        };
        s.start_operator_with(&role, options).await;
    }
    (key, role)
}

async fn start_replica(s: &mut Scenario, role: &str, proxy: &FaultProxy, name: &str) {
    let options = OperatorOptions {
        api_server: Some(proxy.url()),
        leader: Some(name.to_owned()),
        name: name.to_owned(),
        ..OperatorOptions::default()
    };
    s.start_operator_with(role, options).await;
}

/// `count` SecureStrings and an SsmParameter for each, synced.
async fn synced_objects(s: &Scenario, key: &str, count: usize) -> Vec<Tracked> {
    let mut objects = Vec::new();
    for i in 0..count {
        let tracked = Tracked {
            name: format!("app-{i}"),
            parameter: format!("{}-p{i}", s.id),
            value: "v1".to_owned(),
            changes: 0,
        };
        s.put_secure_string(&tracked.parameter, &tracked.value, key)
            .await;
        s.apply(&ssm_parameter(
            &tracked.name,
            json!({"parameters": [{"name": tracked.parameter, "key": "value"}], "refreshInterval": REFRESH}),
        ))
        .await;
        objects.push(tracked);
    }
    for tracked in &objects {
        s.wait_for_condition(&tracked.name, "Ready", "True", "Synced")
            .await;
    }
    objects
}

/// A new value in AWS for `tracked`.
async fn change(s: &Scenario, key: &str, tracked: &mut Tracked) {
    tracked.changes += 1;
    tracked.value = format!("v{}", tracked.changes + 1);
    s.put_secure_string(&tracked.parameter, &tracked.value, key)
        .await;
}

/// Waits until every Secret holds its current AWS value; returns how long
/// that took.
async fn converged(s: &Scenario, objects: &[Tracked], deadline: Duration) -> Duration {
    let started = Instant::now();
    eventually(
        "every Secret to hold the current values",
        deadline,
        || async {
            for tracked in objects {
                let value = s.secret_value(&tracked.name, "value").await;
                if value.as_deref() != Some(tracked.value.as_str()) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    started.elapsed()
}

/// Writes other than the Lease's renewals.
fn object_writes(s: &Scenario) -> Vec<Audited> {
    audited_writes(s.env, &s.namespace)
        .into_iter()
        .filter(|w| w.resource != "leases")
        .collect()
}

/// The invariants after a fault, once every Secret holds the current
/// values: the operator deleted no Secret, each object has one `Updated`
/// Event per change, and two more refreshes of the first object (by
/// `operator`, the one that leads) write nothing.
async fn check_invariants(s: &Scenario, objects: &[Tracked], operator: &Operator) {
    converged(s, objects, DEADLINE).await;
    let deletes = audited(s.env, &s.namespace, &["delete"], Some("secrets"));
    assert_eq!(deletes, 0, "the operator deleted a Secret");
    for tracked in objects {
        let updated = || async {
            let events = s.events(&tracked.name).await;
            events
                .iter()
                .filter(|e| e.reason.as_deref() == Some("Updated"))
                .count()
        };
        let what = format!("{} Updated Events for {}", tracked.changes, tracked.name);
        eventually(&what, DEADLINE, || async {
            (updated().await >= tracked.changes).then_some(())
        })
        .await;
        assert_eq!(
            updated().await,
            tracked.changes,
            "Updated Events of {}",
            tracked.name
        );
    }
    // A reconcile logs its outcome after all its writes: once each object
    // finished one more, the writes of the last change have landed.
    let synced = |tracked: &Tracked| {
        operator.finished_reconciles(&format!("{}/{}", s.namespace, tracked.name), "Synced")
    };
    let more_refreshes = |n: usize, what: &str| {
        let from: Vec<usize> = objects.iter().map(synced).collect();
        let what = format!("{n} more refreshes of every object {what}");
        async move {
            eventually(&what, Duration::from_secs(60), || async {
                let done = objects.iter().zip(&from).all(|(t, f)| synced(t) >= f + n);
                done.then_some(())
            })
            .await
        }
    };
    more_refreshes(1, "after the last change").await;
    let writes = object_writes(s);
    more_refreshes(2, "while nothing changes").await;
    let after = object_writes(s);
    assert!(
        after.len() == writes.len(),
        "the operator wrote while nothing changed: {:#?}",
        &after[writes.len().min(after.len())..]
    );
}

/// Retries of one request (same method and path; not POSTs, of which
/// several may share a path) sooner than `retry_after` after a 429.
fn retried_too_soon(log: &[&Logged], retry_after: Duration) -> usize {
    let mut last_429: std::collections::HashMap<(&str, &str), Duration> = Default::default();
    let mut too_soon = 0;
    for entry in log.iter().filter(|l| l.method != "POST") {
        let request = (entry.method.as_str(), entry.path.as_str());
        if let Some(at) = last_429.get(&request)
            && entry.at - *at < retry_after
        {
            too_soon += 1;
        }
        if entry.status == Some(429) {
            last_429.insert(request, entry.at);
        }
    }
    too_soon
}

/// Peak resident memory of each operator, for the test's report line.
fn peak_rss(operators: &[Operator]) -> String {
    let peaks: Vec<String> = operators
        .iter()
        .map(|o| match o.peak_rss_mib() {
            Some(mib) => format!("{mib:.0} MiB"),
            None => "?".to_owned(),
        })
        .collect();
    format!("peak RSS {}", peaks.join(", "))
}

fn assert_running(operators: &mut [Operator]) {
    for operator in operators {
        assert_eq!(operator.exited(), None, "operator {} exited", operator.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_storm_of_two_minutes_while_values_change_delays_syncs_and_loses_nothing() {
    let mut s = Scenario::new("apiserver-429-storm").await;
    let proxy = FaultProxy::start(s.env).await;
    let (key, _role) = operator_behind(&mut s, &proxy, None).await;
    let mut objects = synced_objects(&s, &key, 3).await;

    let retry_after = 2;
    let from = proxy.now();
    proxy.set(Faults {
        throttle: Some(retry_after),
        ..Faults::default()
    });
    // The storm is a window of time, not a condition to wait for.
    change(&s, &key, &mut objects[0]).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    change(&s, &key, &mut objects[1]).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let to = proxy.now();
    proxy.set(Faults::default());

    let recovered = converged(&s, &objects, Duration::from_secs(90)).await;
    let log = proxy.requests();
    let storm = between(&log, from, to);
    let throttled = storm.iter().filter(|l| l.status == Some(429)).count();
    let too_soon = retried_too_soon(&storm, Duration::from_secs(u64::from(retry_after)));
    let rate = storm.len() as f64 / (to - from).as_secs_f64();
    println!(
        "429 storm of {:?}: {} requests ({rate:.2}/s), {throttled} answered 429, {too_soon} retried sooner than Retry-After; every Secret current {recovered:?} after the storm",
        to - from,
        storm.len()
    );
    assert!(throttled > 0, "the storm answered nothing with 429");
    assert_eq!(too_soon, 0, "requests were retried sooner than Retry-After");
    assert_running(s.operators());
    check_invariants(&s, &objects, s.operator()).await;
    let rss = peak_rss(s.operators());
    println!("{}: {rss}", s.id);
    s.cleanup().await;
}

async fn lease(s: &Scenario) -> Option<Lease> {
    let leases: Api<Lease> = Api::namespaced(s.kube.clone(), &s.namespace);
    leases.get_opt(LEASE).await.ok().flatten()
}

/// The holder of the Lease, once it renewed it after `after` (wall clock).
async fn leader_since(s: &Scenario, after: k8s_openapi::jiff::Timestamp) -> Option<String> {
    let spec = lease(s).await?.spec?;
    let renewed = spec.renew_time?.0;
    (renewed > after).then_some(spec.holder_identity?)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_server_down_five_minutes_with_two_replicas_costs_a_new_term_not_a_restart() {
    let mut s = Scenario::new("apiserver-down-two-replicas").await;
    // One proxy per replica, as each Pod has its own way to the API server.
    let (to_a, to_b) = (
        FaultProxy::start(s.env).await,
        FaultProxy::start(s.env).await,
    );
    let (key, role) = operator_behind(&mut s, &to_a, Some("a")).await;
    let now = k8s_openapi::jiff::Timestamp::now;
    let started = now();
    eventually("replica a to lead", DEADLINE, || async {
        leader_since(&s, started).await.filter(|h| h == "a")
    })
    .await;
    start_replica(&mut s, &role, &to_b, "b").await;
    let mut objects = synced_objects(&s, &key, 2).await;
    let decrypts = counters(s.env).await.unwrap().calls("kms:Decrypt", &role);

    let down = Faults {
        refuse: true,
        ..Faults::default()
    };
    to_a.set(down.clone());
    to_b.set(down);
    change(&s, &key, &mut objects[0]).await;
    // Five minutes of outage, a window: both replicas must live through it.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(300) {
        assert_running(s.operators());
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // The former leader's way back opens first, so that it is the one to
    // lead again: what it read before the outage must still count.
    let back_at = now();
    let back = Instant::now();
    to_a.set(Faults::default());
    let holder = eventually("a leader after the outage", Duration::from_secs(60), || {
        leader_since(&s, back_at)
    })
    .await;
    let led_after = back.elapsed();
    to_b.set(Faults::default());
    let recovered = converged(&s, &objects, Duration::from_secs(60)).await + led_after;
    let decrypted = counters(s.env).await.unwrap().calls("kms:Decrypt", &role) - decrypts;
    println!(
        "API server down 5 min: {holder} leads {led_after:?} after it came back; every Secret current after {recovered:?}; {decrypted} KMS decrypts for 1 changed of {} parameters",
        objects.len()
    );
    assert_eq!(
        holder, "a",
        "the only replica that could reach the API server did not lead"
    );
    assert_running(s.operators());
    assert!(
        s.operator_log().contains("campaigning again"),
        "replica a did not step down and campaign again"
    );
    assert_eq!(decrypted, 1, "the leader read every SecureString again");
    check_invariants(&s, &objects, s.operator()).await;
    let rss = peak_rss(s.operators());
    println!("{}: {rss}", s.id);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_black_holed_connection_times_out_and_the_operator_recovers_in_the_same_process() {
    let mut s = Scenario::new("apiserver-black-hole").await;
    let proxy = FaultProxy::start(s.env).await;
    let (key, _role) = operator_behind(&mut s, &proxy, Some("a")).await;
    let mut objects = synced_objects(&s, &key, 2).await;

    proxy.set(Faults {
        black_hole: true,
        ..Faults::default()
    });
    change(&s, &key, &mut objects[0]).await;
    // Longer than a request's timeout (30 s) and a Lease's renewal deadline.
    let hole = Instant::now();
    while hole.elapsed() < Duration::from_secs(60) {
        assert_running(s.operators());
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    proxy.set(Faults::default());

    let recovered = converged(&s, &objects, Duration::from_secs(120)).await;
    let held = proxy
        .requests()
        .iter()
        .filter(|l| l.status.is_none())
        .count();
    println!(
        "black hole of 60 s: {held} requests never answered; every Secret current {recovered:?} after it closed"
    );
    assert!(held > 0, "no request went into the black hole");
    assert_running(s.operators());
    assert!(
        s.operator_log().contains("campaigning again"),
        "the operator did not step down and campaign again"
    );
    check_invariants(&s, &objects, s.operator()).await;
    let rss = peak_rss(s.operators());
    println!("{}: {rss}", s.id);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_gap_with_a_secret_and_an_ssm_parameter_deleted_is_repaired_after_the_relist() {
    let mut s = Scenario::new("apiserver-watch-gap").await;
    let proxy = FaultProxy::start(s.env).await;
    let (key, _role) = operator_behind(&mut s, &proxy, None).await;
    let objects = synced_objects(&s, &key, 1).await;
    let kept = &objects[0];
    // Deleted during the gap: one without a finalizer (Orphan), which the
    // relist finds gone, and one with (Owner), whose deletion waits for the
    // operator to see it after the relist.
    for (name, policy) in [("gone", "Orphan"), ("guarded", "Owner")] {
        s.apply(&ssm_parameter(
            name,
            json!({"parameters": [{"name": kept.parameter, "key": "value"}],
                   "target": {"creationPolicy": policy}, "refreshInterval": REFRESH}),
        ))
        .await;
        s.wait_for_condition(name, "Ready", "True", "Synced").await;
    }

    // The gap: watches cut and every new one refused.
    let from = proxy.now();
    proxy.change(|f| f.fail_watches = Some(500));
    proxy.cut_watches();
    eventually("both watches to be refused", DEADLINE, || async {
        let log = proxy.requests();
        let refused = |resource: &str| {
            between(&log, from, proxy.now() + Duration::from_secs(1))
                .iter()
                .any(|l| l.is_watch() && l.status == Some(500) && l.path.contains(resource))
        };
        (refused("ssmparameters") && refused("secrets")).then_some(())
    })
    .await;
    s.secrets()
        .delete(&kept.name, &DeleteParams::default())
        .await
        .unwrap();
    for name in ["gone", "guarded"] {
        s.ssm_parameters()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    // Too long a gap to replay: the next watch of each is 410 Gone.
    proxy.expire_next_watch("ssmparameters");
    proxy.expire_next_watch("secrets");
    let gap_ends = Instant::now();
    proxy.change(|f| f.fail_watches = None);

    eventually(
        "both watches to be expired",
        Duration::from_secs(60),
        || async { (proxy.pending_expiries() == 0).then_some(()) },
    )
    .await;
    let repaired = converged(&s, std::slice::from_ref(kept), Duration::from_secs(60)).await;
    let forgotten = format!("{}/gone", s.namespace);
    eventually(
        "the deleted SsmParameter to be forgotten",
        DEADLINE,
        || async {
            s.operator_log()
                .lines()
                .any(|l| {
                    l.contains("deleted while the watch was down")
                        && l.contains("SsmParameter")
                        && l.contains(&format!("/gone.{}", s.namespace))
                })
                .then_some(())
        },
    )
    .await;
    eventually(
        "the guarded SsmParameter to go once the operator saw its deletion",
        DEADLINE,
        || async {
            s.ssm_parameters()
                .get_opt("guarded")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    println!(
        "watch gap: the deleted Secret recreated {:?} after the gap ended ({repaired:?} after both relists); {forgotten} forgotten",
        gap_ends.elapsed()
    );
    assert_running(s.operators());
    check_invariants(&s, std::slice::from_ref(kept), s.operator()).await;
    let rss = peak_rss(s.operators());
    println!("{}: {rss}", s.id);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_in_one_reconcile_is_an_internal_error_on_that_object_and_the_others_still_sync() {
    let mut s = Scenario::new("reconcile-panic").await;
    let key = s.create_key().await;
    let role = s
        .create_operator_role(&read_prefix_policy(&s.id, &key))
        .await;
    let broken = "broken";
    let failpoint = format!("{}/{broken}", s.namespace);
    let options = OperatorOptions {
        env: vec![("SSM_OPERATOR_FAILPOINT_PANIC".to_owned(), failpoint.clone())],
        ..OperatorOptions::default()
    };
    s.start_operator_with(&role, options).await;
    let parameter = format!("{}-p", s.id);
    s.put_secure_string(&parameter, "v1", &key).await;
    for name in [broken, "fine"] {
        s.apply(&ssm_parameter(
            name,
            json!({"parameters": [{"name": parameter, "key": "value"}], "refreshInterval": REFRESH}),
        ))
        .await;
    }

    let status = s
        .wait_for_condition(broken, "Synced", "False", "InternalError")
        .await;
    s.wait_for_condition("fine", "Ready", "True", "Synced")
        .await;
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InternalError")
    );
    // Retried with backoff (2 s, 4 s, 8 s, …), announced once.
    let panicked = || {
        s.operator_log()
            .lines()
            .filter(|l| l.contains("panicked (its message is not logged"))
            .count()
    };
    eventually("a retried reconcile to panic again", DEADLINE, || async {
        (panicked() >= 3).then_some(())
    })
    .await;
    let warnings = s
        .events(broken)
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("InternalError"))
        .count();
    assert_eq!(warnings, 1, "one Warning for the panics, not one per retry");
    let log = s.operator_log();
    assert!(
        !log.contains("failpoint: a panic"),
        "a panic's message reached the log"
    );
    println!(
        "a panicking reconcile: {} panics logged by place; 1 Warning; the other object Synced",
        panicked()
    );
    assert_running(s.operators());
    let rss = peak_rss(s.operators());
    println!("{}: {rss}", s.id);
    s.cleanup().await;
}
