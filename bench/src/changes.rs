//! The change-events run: N single-parameter SsmParameters refreshed hourly,
//! the operator reading the queue the emulator's EventBridge sends Parameter
//! Store's changes to, then C changes of distinct parameters, spread over the
//! objects and paced; for each, the time from PutParameter's answer to the
//! Secret holding the new value, and what all of them cost AWS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use ssm_operator::names::WATCH_LABEL;
use ssm_operator_testenv::aws::events::{Delivery, EventsQueue};
use ssm_operator_testenv::aws::setup::read_prefix_policy;
use ssm_operator_testenv::env::REGION;
use ssm_operator_testenv::{OperatorOptions, Scenario};
use tokio::time::Instant;

use crate::measure::{Delta, Snapshot};
use crate::track::Tracker;
use crate::world::{Variant, World};

/// How long the run waits at most for the cold start, and for the changes.
const DEADLINE: Duration = Duration::from_secs(600);
/// The SsmParameters' refresh: far beyond the run, so that only the events
/// bring the new values.
const HOURLY: Duration = Duration::from_secs(3600);

/// What the run measured.
pub struct Changes {
    pub objects: usize,
    pub changes: usize,
    pub rate: f64,
    /// Latencies of the changes that reached their Secret, sorted.
    pub latencies: Vec<Duration>,
    /// AWS calls and writes from the first change until the queue was drained.
    pub delta: Delta,
}

/// Runs `changes` changes over `objects` SsmParameters, `rate` a second.
pub async fn run(objects: usize, changes: usize, rate: f64, operator_args: &[String]) -> Changes {
    let mut s = Scenario::new(&format!("bench-changes-{objects}")).await;
    let key = s.create_key().await;
    let w = World {
        variant: Variant::Single,
        objects,
        refresh: HOURLY,
        key: key.clone(),
    };
    w.put_parameters(&s).await;
    // Registered after the set-up's puts: the queue gets the changes only.
    let queue = EventsQueue::create(s.env, &s.id, REGION, 30, Delivery::default())
        .await
        .expect("the events queue");
    w.create_objects(&s).await;
    let role = s
        .create_operator_role(&read_prefix_policy(&s.id, &key))
        .await;
    let tracker = Tracker::start(s.ssm_parameters());
    let mut args = operator_args.to_vec();
    args.extend(["--change-event-queues".to_owned(), queue.url.clone()]);
    let options = OperatorOptions {
        log_level: Some("info".to_owned()),
        args,
        ..OperatorOptions::default()
    };
    s.start_operator_with(&role, options).await;
    let names: Vec<String> = (0..objects).map(World::object_name).collect();
    let ready = tracker.all_ready(&names, 1, DEADLINE).await;
    eprintln!(
        "[{}] {} of {objects} SsmParameters Ready; changing {changes} parameters, {rate}/s",
        s.id,
        ready.len()
    );

    let before = Snapshot::take(&s, &role).await;
    let pending = Pending::default();
    let watching = tokio::spawn(pending.clone().watch(s.secrets()));
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    for k in 0..changes {
        // Distinct objects, spread over all of them.
        let i = k * objects / changes;
        let value = format!("rotated-{k:05}");
        let put_at = Instant::now();
        s.put_secure_string(&w.parameter(&s, i, 0), &value, &key)
            .await;
        pending.expect(World::object_name(i), value, put_at);
        next += gap;
        tokio::time::sleep_until(next).await;
    }
    let latencies = pending.all_seen(changes, DEADLINE).await;
    let deadline = Instant::now() + DEADLINE;
    while !queue.drained().await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delta = Snapshot::take(&s, &role).await.since(&before);
    watching.abort();
    queue.delete().await;
    s.cleanup().await;
    Changes {
        objects,
        changes,
        rate,
        latencies,
        delta,
    }
}

/// The values expected in Secrets, and how long each took to arrive.
#[derive(Clone, Default)]
struct Pending {
    inner: Arc<Mutex<PendingState>>,
}

#[derive(Default)]
struct PendingState {
    /// Secret name → (value, when it was put).
    waiting: HashMap<String, (String, Instant)>,
    /// Values that arrived before their put was recorded (the Secret's
    /// value, when it was seen).
    early: HashMap<String, (String, Instant)>,
    seen: Vec<Duration>,
}

impl Pending {
    fn expect(&self, secret: String, value: String, put_at: Instant) {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match state.early.remove(&secret) {
            Some((held, seen_at)) if held == value => {
                state.seen.push(seen_at.saturating_duration_since(put_at));
            }
            _ => {
                state.waiting.insert(secret, (value, put_at));
            }
        }
    }

    fn saw(&self, secret: String, value: String, at: Instant) {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match state.waiting.get(&secret) {
            Some((wanted, put_at)) if *wanted == value => {
                let latency = at.saturating_duration_since(*put_at);
                state.waiting.remove(&secret);
                state.seen.push(latency);
            }
            _ if value.starts_with("rotated-") => {
                state.early.insert(secret, (value, at));
            }
            _ => {}
        }
    }

    /// Watches the operator's Secrets until aborted.
    async fn watch(self, api: Api<Secret>) {
        let config = watcher::Config::default().labels(&format!("{WATCH_LABEL}=true"));
        let mut events = watcher::watcher(api, config).boxed();
        while let Some(event) = events.next().await {
            let (Ok(Event::Apply(secret)) | Ok(Event::InitApply(secret))) = event else {
                continue;
            };
            let at = Instant::now();
            let value = (secret.data.as_ref())
                .and_then(|d| d.get("k000"))
                .map(|v| String::from_utf8_lossy(&v.0).into_owned());
            if let Some(value) = value {
                self.saw(secret.name_any(), value, at);
            }
        }
    }

    /// The latencies once `count` values arrived, or when `deadline` passed.
    async fn all_seen(&self, count: usize, deadline: Duration) -> Vec<Duration> {
        let end = Instant::now() + deadline;
        loop {
            let seen = {
                let state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                state.seen.clone()
            };
            if seen.len() >= count || Instant::now() >= end {
                let mut seen = seen;
                seen.sort_unstable();
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
