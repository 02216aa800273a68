//! Leader election between two operator processes on the real API server:
//! one leads, the other stands by, and takes over when the leader dies or
//! releases the Lease. Each process has its own client, as two Pods would.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::SignedDuration;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use ssm_operator::runtime::leader::{self, Leadership, LeaseConfig};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use ssm_operator_testenv::env::admin_client;
use ssm_operator_testenv::{DEADLINE, Scenario};

const LEASE: &str = "ssm-operator";

/// The product's timing: 15 s leases, renewed every 5 s.
fn config(s: &Scenario, identity: &str) -> LeaseConfig {
    LeaseConfig::new(&s.namespace, LEASE, identity)
}

/// A process of identity `identity`, with a connection of its own.
async fn process(s: &Scenario, identity: &str) -> (kube::Client, LeaseConfig) {
    let client = admin_client(s.env).await.unwrap();
    (client, config(s, identity))
}

/// Starts `identity` waiting for the Lease in the background.
async fn start(s: &Scenario, identity: &str) -> JoinHandle<Leadership> {
    let (client, config) = process(s, identity).await;
    tokio::spawn(async move { leader::acquire(client, config).await.unwrap() })
}

async fn lead(s: &Scenario, identity: &str) -> Leadership {
    let (client, config) = process(s, identity).await;
    timeout(DEADLINE, leader::acquire(client, config))
        .await
        .expect("a free lease is taken at once")
        .unwrap()
}

async fn lease(s: &Scenario) -> Lease {
    let leases: Api<Lease> = Api::namespaced(s.kube.clone(), &s.namespace);
    leases.get(LEASE).await.unwrap()
}

async fn holder(s: &Scenario) -> Option<String> {
    lease(s).await.spec?.holder_identity
}

#[tokio::test(flavor = "multi_thread")]
async fn only_one_process_leads_a_lease() {
    let s = Scenario::new("leader-only-one").await;
    let mut a = start(&s, "a").await;
    let mut b = start(&s, "b").await;
    // Both race to create the Lease; one of them wins.
    let (leader, mut standby, leading) = timeout(DEADLINE, async {
        tokio::select! {
            won = &mut a => (won.unwrap(), b, "a"),
            won = &mut b => (won.unwrap(), a, "b"),
        }
    })
    .await
    .expect("one process leads");
    assert_eq!(holder(&s).await.as_deref(), Some(leading));

    // For longer than a Lease lasts unrenewed, the leader keeps it and the
    // other keeps waiting: a window to watch, not a condition to wait for.
    let timing = config(&s, leading);
    let window = timing.lease_duration + timing.renew_every;
    tokio::select! {
        _ = &mut standby => panic!("the standby took a lease its holder renews"),
        () = leader.lost() => panic!("the leader lost a lease nobody else may take"),
        () = tokio::time::sleep(window) => {}
    }
    assert_eq!(holder(&s).await.as_deref(), Some(leading));
    assert_eq!(lease(&s).await.spec.unwrap().lease_transitions, Some(0));

    standby.abort();
    leader.release().await;
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_takes_over_within_20_seconds_when_the_leader_stops_renewing() {
    let s = Scenario::new("leader-takeover").await;
    let leader = lead(&s, "a").await;
    // When the leader last renewed, by the Lease: the process's own clock
    // would start late on a busy machine, after the requests of `lead`.
    let renewed = lease(&s).await.spec.unwrap().renew_time.unwrap();
    let standby = start(&s, "b").await;
    // Dying right after a renewal is the slowest case: the Lease then
    // stays valid for its full duration.
    let died = Instant::now();
    drop(leader);

    let successor = timeout(Duration::from_secs(20), standby)
        .await
        .expect("the standby took over within 20 s")
        .unwrap();
    let took = died.elapsed();
    println!("the standby took over {took:?} after the leader died");
    let lease_duration = config(&s, "b").lease_duration;
    let spec = lease(&s).await.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    // The standby stamps the Lease with the time it judged it expired.
    let taken = spec.acquire_time.unwrap();
    let unrenewed = taken.0.duration_since(renewed.0);
    assert!(
        unrenewed >= SignedDuration::try_from(lease_duration - Duration::from_secs(1)).unwrap(),
        "the standby took the lease {unrenewed:?} after its last renewal, before it expired"
    );

    successor.release().await;
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn release_hands_the_lease_over_at_once() {
    let s = Scenario::new("leader-release").await;
    let leader = lead(&s, "a").await;
    let standby = start(&s, "b").await;

    // A standby looks every `retry_every` (2 s), not after the 15 s expiry.
    let handover = async {
        leader.release().await;
        standby.await.unwrap()
    };
    // Within 8 s: well before the Lease would expire (15 s after the
    // leader's last renewal, at most 5 s ago), with room for a busy node.
    let successor = timeout(Duration::from_secs(8), handover)
        .await
        .expect("the standby took the released lease at once");
    assert_eq!(holder(&s).await.as_deref(), Some("b"));

    successor.release().await;
    assert_eq!(holder(&s).await, None);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_learns_at_its_next_renewal_that_another_process_took_the_lease() {
    let s = Scenario::new("leader-lost").await;
    let leader = lead(&s, "a").await;
    let leases: Api<Lease> = Api::namespaced(s.kube.clone(), &s.namespace);
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let intruder = json!({"spec": {"holderIdentity": "intruder", "renewTime": now}});
    leases
        .patch(LEASE, &PatchParams::default(), &Patch::Merge(&intruder))
        .await
        .unwrap();

    let renew_every = config(&s, "a").renew_every;
    timeout(renew_every + Duration::from_secs(5), leader.lost())
        .await
        .expect("the leader noticed it lost the lease");
    assert_eq!(holder(&s).await.as_deref(), Some("intruder"));
    s.cleanup().await;
}
