//! One run: a world of N parameters, the operator started on it cold, one
//! unchanged full refresh, a spec change of every object and a restart, each
//! phase measured.

use std::collections::HashMap;
use std::time::Duration;

use futures::{StreamExt as _, stream};
use kube::api::{Api, ListParams};
use serde_json::json;
use ssm_operator::api::SsmParameter;
use ssm_operator::names::WATCH_LABEL;
use ssm_operator_testenv::aws::setup::read_prefix_policy;
use ssm_operator_testenv::{OperatorOptions, Scenario};
use tokio::time::Instant;

use crate::measure::{Delta, Snapshot, reconciles};
use crate::track::Tracker;
use crate::world::{self, Variant, World};

/// New objects applied during a phase, one every [`PROBE_GAP`], to measure
/// how long a new object waits.
pub const PROBES: usize = 10;
const PROBE_GAP: Duration = Duration::from_millis(500);
/// Unrelated Secrets' size.
const UNRELATED_SIZE: usize = 10 * 1024;
/// How long any phase may take at most: the run stops with what it has.
const PHASE_DEADLINE: Duration = Duration::from_secs(600);

/// What one phase measured.
pub struct Phase {
    pub name: &'static str,
    /// From the phase's start until every object was current.
    pub took: Option<Duration>,
    /// Objects current within the deadline, of all.
    pub done: (usize, usize),
    /// From the phase's start until the first, half and 90% were current.
    pub first: Option<Duration>,
    pub half: Option<Duration>,
    pub most: Option<Duration>,
    pub delta: Delta,
    /// Latencies of the new objects applied during the phase, sorted.
    pub probes: Vec<Duration>,
    /// How many new objects the phase applied.
    pub probes_applied: usize,
    pub cpu_seconds: f64,
}

/// What one run measured.
pub struct Report {
    pub variant: Variant,
    pub parameters: usize,
    pub objects: usize,
    pub unrelated: usize,
    pub phases: Vec<Phase>,
    /// The first process's high-water mark, over every phase it ran.
    pub peak_rss_mib: f64,
    pub steady_rss_mib: f64,
    /// The restarted process's high-water mark (its start lists everything
    /// again, with each object's status).
    pub restart_peak_rss_mib: Option<f64>,
    /// The SsmParameters the set-up created, and how long that took: what
    /// the API server takes when nothing else runs.
    pub api_server_creates: (usize, Duration),
}

/// Runs the benchmark of `parameters` SecureStrings in the shape of
/// `variant`, with `unrelated` other Secrets beside them; only its cold
/// start when `cold_only`.
pub async fn run(
    variant: Variant,
    parameters: usize,
    unrelated: usize,
    operator_args: &[String],
    cold_only: bool,
) -> Report {
    let mut s = Scenario::new(&format!("bench-{}-{parameters}", variant.name())).await;
    let objects = parameters.div_ceil(variant.per_object());
    // Long enough that a refresh starts after the cold start ends.
    let refresh = Duration::from_secs(if objects > 2000 { 300 } else { 120 });
    let key = s.create_key().await;
    let w = World {
        variant,
        objects,
        refresh,
        key: key.clone(),
    };
    let t = Instant::now();
    w.put_parameters(&s).await;
    put_probe_parameters(&s, &key).await;
    world::create_unrelated_secrets(&s, unrelated, UNRELATED_SIZE).await;
    let creating = Instant::now();
    w.create_objects(&s).await;
    let api_server_creates = (objects, creating.elapsed());
    eprintln!(
        "[{}] set up {parameters} parameters, {objects} SsmParameters, {unrelated} unrelated Secrets in {:.0?}",
        s.id,
        t.elapsed()
    );
    let role = s
        .create_operator_role(&read_prefix_policy(&s.id, &key))
        .await;
    let tracker = Tracker::start(s.ssm_parameters());
    let names: Vec<String> = (0..objects).map(World::object_name).collect();
    let mut phases = Vec::new();

    // Cold: the operator starts on objects that have no Secret yet.
    let before = Snapshot::take(&s, &role).await;
    let start = Instant::now();
    start_operator(&mut s, &role, operator_args).await;
    let probes = tokio::spawn(probe(prober(&s, &tracker), "cold", w.refresh));
    let times = tracker.all_ready(&names, 1, PHASE_DEADLINE).await;
    let probe_latencies = probes.await.expect("the cold start's probes");
    let cold = phase("cold start", start, &times, objects, &before, &s, &role).await;
    phases.push(Phase {
        probes: probe_latencies,
        probes_applied: PROBES,
        cpu_seconds: cpu(&s),
        ..cold
    });
    check_secrets(&s, &w).await;
    let report = move |phases, (peak_rss_mib, steady_rss_mib), restart_peak_rss_mib| Report {
        variant,
        parameters,
        objects,
        unrelated,
        phases,
        peak_rss_mib,
        steady_rss_mib,
        restart_peak_rss_mib,
        api_server_creates,
    };
    let rss = |s: &Scenario| {
        let operator = s.operator();
        (
            operator.peak_rss_mib().unwrap_or_default(),
            operator.rss_mib().unwrap_or_default(),
        )
    };
    if cold_only {
        let first = rss(&s);
        if let Some(mut operator) = s.operators().pop() {
            operator.terminate().await;
            eprintln!("[{}] the operator's log: {}", s.id, operator.log.display());
        }
        s.cleanup().await;
        return report(phases, first, None);
    }

    // An unchanged full refresh: every object once more, nothing changed.
    let before = Snapshot::take(&s, &role).await;
    let cpu_before = cpu(&s);
    let from = reconciles(s.operator()).await;
    let all = u64::try_from(objects + PROBES).unwrap_or(u64::MAX);
    let started = Instant::now();
    // The new objects go in once a tenth of the refresh has gone.
    wait_for_reconciles(&s, from + all / 10, w.refresh * 2).await;
    let probes = tokio::spawn(probe(prober(&s, &tracker), "refresh", w.refresh));
    let refreshed = wait_for_reconciles(&s, from + all, w.refresh + PHASE_DEADLINE).await;
    let probe_latencies = probes.await.expect("the refresh's probes");
    phases.push(Phase {
        name: "full refresh",
        took: refreshed.map(|end| end.saturating_duration_since(started)),
        done: (0, 0),
        first: None,
        half: None,
        most: None,
        delta: Snapshot::take(&s, &role).await.since(&before),
        probes: probe_latencies,
        probes_applied: PROBES,
        cpu_seconds: cpu(&s) - cpu_before,
    });

    // A spec change of every object.
    let before = Snapshot::take(&s, &role).await;
    let cpu_before = cpu(&s);
    let start = Instant::now();
    stream::iter(&names)
        .for_each_concurrent(16, |name| {
            let s = &s;
            async move { world::change_object(s, name).await }
        })
        .await;
    let times = tracker.all_ready(&names, 2, PHASE_DEADLINE).await;
    let changed = phase("spec change", start, &times, objects, &before, &s, &role).await;
    phases.push(Phase {
        cpu_seconds: cpu(&s) - cpu_before,
        ..changed
    });

    // A restart: a new process finds every Secret current.
    let first = rss(&s);
    let last = s.operators().pop();
    if let Some(mut old) = last {
        old.terminate().await;
    }
    let before = Snapshot::take(&s, &role).await;
    let start = Instant::now();
    start_operator(&mut s, &role, operator_args).await;
    let all = u64::try_from(objects).unwrap_or(u64::MAX);
    let restarted = wait_for_reconciles(&s, all, PHASE_DEADLINE).await;
    phases.push(Phase {
        name: "restart",
        took: restarted.map(|end| end - start),
        done: (0, 0),
        first: None,
        half: None,
        most: None,
        delta: Snapshot::take(&s, &role).await.since(&before),
        probes: Vec::new(),
        probes_applied: 0,
        cpu_seconds: cpu(&s),
    });
    let restart_peak = s.operator().peak_rss_mib();
    s.cleanup().await;
    report(phases, first, restart_peak)
}

async fn start_operator(s: &mut Scenario, role: &str, args: &[String]) {
    let options = OperatorOptions {
        log_level: Some("info".to_owned()),
        args: args.to_vec(),
        ..OperatorOptions::default()
    };
    s.start_operator_with(role, options).await;
}

fn cpu(s: &Scenario) -> f64 {
    s.operator().cpu_seconds().unwrap_or_default()
}

/// The phase that started at `start`, whose objects became current at `times`.
async fn phase(
    name: &'static str,
    start: Instant,
    times: &[Instant],
    objects: usize,
    before: &Snapshot,
    s: &Scenario,
    role: &str,
) -> Phase {
    let at = |fraction: f64| {
        let n = ((objects as f64) * fraction).ceil() as usize;
        times.get(n.max(1) - 1).map(|t| *t - start)
    };
    Phase {
        name,
        took: (times.len() == objects).then(|| at(1.0)).flatten(),
        done: (times.len(), objects),
        first: at(0.0),
        half: at(0.5),
        most: at(0.9),
        delta: Snapshot::take(s, role).await.since(before),
        probes: Vec::new(),
        probes_applied: 0,
        cpu_seconds: 0.0,
    }
}

/// Waits until the operator finished `count` reconciles; when it did.
async fn wait_for_reconciles(s: &Scenario, count: u64, deadline: Duration) -> Option<Instant> {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if reconciles(s.operator()).await >= count {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

fn probe_parameter(id: &str, k: usize) -> String {
    format!("/{id}/probe/p{k:02}")
}

async fn put_probe_parameters(s: &Scenario, key: &str) {
    for k in 0..PROBES {
        s.put_secure_string(&probe_parameter(&s.id, k), "probe", key)
            .await;
    }
}

/// What applies new objects during a phase and sees them Ready.
struct Prober {
    api: Api<SsmParameter>,
    tracker: Tracker,
    id: String,
}

fn prober(s: &Scenario, tracker: &Tracker) -> Prober {
    Prober {
        api: s.ssm_parameters(),
        tracker: tracker.clone(),
        id: s.id.clone(),
    }
}

/// Applies [`PROBES`] new objects, one every [`PROBE_GAP`]; how long each
/// took to be Ready, sorted.
async fn probe(p: Prober, phase: &'static str, refresh: Duration) -> Vec<Duration> {
    let mut applied = Vec::new();
    for k in 0..PROBES {
        let name = format!("probe-{phase}-{k:02}");
        let spec = json!({
            "parameters": [{"name": probe_parameter(&p.id, k), "key": "value"}],
            "refreshInterval": format!("{}s", refresh.as_secs()),
        });
        let at = Instant::now();
        world::create_object(&p.api, &name, spec).await;
        applied.push((name, at));
        tokio::time::sleep(PROBE_GAP).await;
    }
    let until = Instant::now() + PHASE_DEADLINE;
    let mut latencies = Vec::new();
    for (name, at) in applied {
        loop {
            if let Some(ready) = p.tracker.ready_at(&name, 1) {
                latencies.push(ready - at);
                break;
            }
            if Instant::now() > until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    latencies.sort_unstable();
    latencies
}

/// Every Secret holds its values.
async fn check_secrets(s: &Scenario, w: &World) {
    let mut held: HashMap<String, Vec<String>> = HashMap::new();
    let mut params = ListParams::default().labels(WATCH_LABEL).limit(500);
    loop {
        let page = s.secrets().list(&params).await.expect("list Secrets");
        for secret in page.items {
            let mut values: Vec<String> = secret
                .data
                .unwrap_or_default()
                .into_values()
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                .collect();
            values.sort_unstable();
            held.insert(secret.metadata.name.unwrap_or_default(), values);
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let wrong = (0..w.objects)
        .filter(|&i| {
            let expected: Vec<String> = (0..w.variant.per_object())
                .map(|j| World::value(i, j))
                .collect();
            held.get(&World::object_name(i)) != Some(&expected)
        })
        .count();
    assert_eq!(
        wrong, 0,
        "Secrets without their values after the cold start"
    );
}
