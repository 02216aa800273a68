//! Prometheus metrics of the operator.
//!
//! Labels carry only bounded sets — outcomes, reasons, operations, actions —
//! never an object's name: a cluster with ten thousand SsmParameters must not
//! make ten thousand series. How stale the stalest object is comes out as one
//! gauge, computed at scrape time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::time::Instant;

/// Content type of [`Metrics::render`]: prometheus-client writes OpenMetrics.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the reconcile duration buckets, in seconds: from a
/// reconcile that finds nothing due (~1 ms) to one that waits out AWS
/// throttling (~30 s).
const RECONCILE_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How a reconcile ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Synced,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "synced",
            Self::Failed => "failed",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReconcileLabels {
    outcome: Outcome,
    reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AwsCallLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SecretWriteLabels {
    action: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChangeEventLabels {
    outcome: &'static str,
}

/// The metrics of one operator process; shared through an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_duration: Histogram,
    aws_calls: Family<AwsCallLabels, Counter>,
    secret_writes: Family<SecretWriteLabels, Counter>,
    change_events: Family<ChangeEventLabels, Counter>,
    queue_depth: Gauge,
    last_syncs: Arc<LastSyncs>,
    states: Arc<super::census::States>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Self {
            registry: Registry::default(),
            reconciles: Family::default(),
            reconcile_duration: Histogram::new(RECONCILE_BUCKETS),
            aws_calls: Family::default(),
            secret_writes: Family::default(),
            change_events: Family::default(),
            queue_depth: Gauge::default(),
            last_syncs: Arc::default(),
            states: Arc::default(),
        };
        metrics.registered()
    }

    fn registered(mut self) -> Self {
        let registry = &mut self.registry;
        registry.register(
            "ssm_operator_reconciles",
            "Reconciles of SsmParameters by outcome and condition reason",
            self.reconciles.clone(),
        );
        registry.register_with_unit(
            "ssm_operator_reconcile_duration",
            "Time one reconcile of an SsmParameter took",
            Unit::Seconds,
            self.reconcile_duration.clone(),
        );
        registry.register(
            "ssm_operator_aws_calls",
            "Calls to AWS by operation and outcome (ok or the error reason)",
            self.aws_calls.clone(),
        );
        registry.register(
            "ssm_operator_secret_writes",
            "Writes of Secrets by action",
            self.secret_writes.clone(),
        );
        registry.register(
            "ssm_operator_change_events",
            "Parameter Store change events received, by what became of them",
            self.change_events.clone(),
        );
        registry.register(
            "ssm_operator_queue_depth",
            "Reconciles waiting or running",
            self.queue_depth.clone(),
        );
        registry.register_collector(Box::new(self.last_syncs.clone()));
        registry.register_collector(Box::new(self.states.clone()));
        let build = Family::<BuildLabels, Gauge>::default();
        let version = BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        };
        build.get_or_create(&version).set(1);
        registry.register(
            "ssm_operator_build_info",
            "The operator's version; always 1",
            build,
        );
        self
    }

    /// The SsmParameters are counted by state with `census`, at each scrape.
    pub fn census(&self, census: Arc<dyn super::census::Census>) {
        self.states.counted_by(census);
    }

    /// A reconcile ended with `outcome`; `reason` is its condition reason.
    pub fn reconciled(&self, outcome: Outcome, reason: &str, duration: Duration) {
        let labels = ReconcileLabels {
            outcome,
            reason: reason.to_owned(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    /// A call to AWS `operation` ended with `outcome`: `ok` or the error reason.
    pub fn aws_call(&self, operation: &str, outcome: &str) {
        let labels = AwsCallLabels {
            operation: operation.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.aws_calls.get_or_create(&labels).inc();
    }

    /// A Secret was `created`, `updated`, `replaced` or `removed`.
    pub fn secret_written(&self, action: &str) {
        let labels = SecretWriteLabels {
            action: action.to_owned(),
        };
        self.secret_writes.get_or_create(&labels).inc();
    }

    /// A change event was received; `outcome` is what became of it
    /// (`events::consume::Outcome`).
    pub fn change_event(&self, outcome: &'static str) {
        let labels = ChangeEventLabels { outcome };
        self.change_events.get_or_create(&labels).inc();
    }

    /// `n` reconciles are waiting or running.
    pub fn queue_depth(&self, n: i64) {
        self.queue_depth.set(n);
    }

    /// `object` (`namespace/name`) last synced successfully `at`.
    pub fn synced(&self, object: &str, at: Instant) {
        self.last_syncs.record(object, at);
    }

    /// `object` is gone: its last sync no longer counts.
    pub fn forget(&self, object: &str) {
        self.last_syncs.forget(object);
    }

    /// Every metric, in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; an error would come from an encoder
        // and leave the text without its `# EOF`, which a scraper rejects.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "could not encode the metrics");
        }
        text
    }
}

/// The last successful sync of every live object, by `namespace/name`.
#[derive(Debug, Default)]
struct LastSyncs(Mutex<HashMap<String, Instant>>);

impl LastSyncs {
    fn record(&self, object: &str, at: Instant) {
        let mut syncs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match syncs.get_mut(object) {
            Some(last) => *last = at,
            None => {
                syncs.insert(object.to_owned(), at);
            }
        }
    }

    fn forget(&self, object: &str) {
        let mut syncs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        syncs.remove(object);
    }

    /// Zero when no object has synced yet: an object that never synced shows
    /// in its own status and in the failed reconciles, not here.
    fn oldest_age(&self, now: Instant) -> Duration {
        let syncs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        syncs.values().min().map_or(Duration::ZERO, |oldest| {
            now.saturating_duration_since(*oldest)
        })
    }
}

impl Collector for LastSyncs {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let age = ConstGauge::new(self.oldest_age(Instant::now()).as_secs_f64());
        let metric = encoder.encode_descriptor(
            "ssm_operator_oldest_sync_age",
            "Time since the least recently synced SsmParameter last synced successfully.",
            Some(&Unit::Seconds),
            age.metric_type(),
        )?;
        age.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `series` (name and labels exactly as written).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .filter_map(|line| line.rsplit_once(' '))
            .find(|(name, _)| *name == series)
            .and_then(|(_, value)| value.parse().ok())
    }

    #[test]
    fn the_version_and_the_objects_by_state_are_told() {
        use super::super::census::{Census, State};
        struct Two;
        impl Census for Two {
            fn count(&self) -> std::collections::BTreeMap<State, u64> {
                let state = |status: &str, reason: &str| State {
                    condition: "Ready".to_owned(),
                    status: status.to_owned(),
                    reason: reason.to_owned(),
                };
                [(state("True", "Synced"), 7), (state("False", "Stale"), 2)].into()
            }
        }
        let metrics = Metrics::new();
        let version = format!(
            r#"ssm_operator_build_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(sample(&metrics.render(), &version), Some(1.0));
        assert!(
            !metrics.render().contains("ssm_operator_ssm_parameters{"),
            "a standby counts nothing"
        );
        metrics.census(Arc::new(Two));
        let text = metrics.render();
        let ready =
            r#"ssm_operator_ssm_parameters{condition="Ready",status="True",reason="Synced"}"#;
        assert_eq!(sample(&text, ready), Some(7.0), "{text}");
        let stale =
            r#"ssm_operator_ssm_parameters{condition="Ready",status="False",reason="Stale"}"#;
        assert_eq!(sample(&text, stale), Some(2.0));
    }

    #[test]
    fn reconciles_are_counted_by_outcome_and_reason() {
        let metrics = Metrics::new();
        let second = Duration::from_secs(1);
        metrics.reconciled(Outcome::Synced, "Synced", second);
        metrics.reconciled(Outcome::Synced, "Synced", second);
        metrics.reconciled(Outcome::Failed, "KmsAccessDenied", second);
        let text = metrics.render();
        assert_eq!(
            sample(
                &text,
                r#"ssm_operator_reconciles_total{outcome="synced",reason="Synced"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"ssm_operator_reconciles_total{outcome="failed",reason="KmsAccessDenied"}"#
            ),
            Some(1.0)
        );
    }

    #[test]
    fn reconcile_durations_fall_in_buckets_from_milliseconds_to_seconds() {
        let metrics = Metrics::new();
        metrics.reconciled(Outcome::Synced, "Synced", Duration::from_millis(1));
        metrics.reconciled(Outcome::Synced, "Synced", Duration::from_millis(200));
        metrics.reconciled(Outcome::Failed, "Throttled", Duration::from_secs(20));
        let text = metrics.render();
        let bucket = |le: &str| {
            sample(
                &text,
                &format!(r#"ssm_operator_reconcile_duration_seconds_bucket{{le="{le}"}}"#),
            )
        };
        assert_eq!(bucket("0.001"), Some(1.0));
        assert_eq!(bucket("0.25"), Some(2.0));
        assert_eq!(bucket("10.0"), Some(2.0));
        assert_eq!(bucket("30.0"), Some(3.0));
        assert_eq!(
            sample(&text, "ssm_operator_reconcile_duration_seconds_count"),
            Some(3.0)
        );
        assert!(text.contains("# UNIT ssm_operator_reconcile_duration_seconds seconds"));
    }

    #[test]
    fn aws_calls_are_counted_by_operation_and_outcome() {
        let metrics = Metrics::new();
        metrics.aws_call("GetParameters", "ok");
        metrics.aws_call("GetParameters", "KmsAccessDenied");
        metrics.aws_call("AssumeRoleWithWebIdentity", "ok");
        let text = metrics.render();
        for (operation, outcome) in [
            ("GetParameters", "ok"),
            ("GetParameters", "KmsAccessDenied"),
            ("AssumeRoleWithWebIdentity", "ok"),
        ] {
            let series = format!(
                r#"ssm_operator_aws_calls_total{{operation="{operation}",outcome="{outcome}"}}"#
            );
            assert_eq!(sample(&text, &series), Some(1.0), "{series}");
        }
    }

    #[test]
    fn secret_writes_are_counted_by_action() {
        let metrics = Metrics::new();
        metrics.secret_written("created");
        metrics.secret_written("updated");
        metrics.secret_written("updated");
        let text = metrics.render();
        let writes = |action: &str| {
            sample(
                &text,
                &format!(r#"ssm_operator_secret_writes_total{{action="{action}"}}"#),
            )
        };
        assert_eq!(writes("created"), Some(1.0));
        assert_eq!(writes("updated"), Some(2.0));
        assert_eq!(writes("removed"), None);
    }

    #[test]
    fn queue_depth_shows_the_last_value_set() {
        let metrics = Metrics::new();
        metrics.queue_depth(7);
        metrics.queue_depth(3);
        assert_eq!(
            sample(&metrics.render(), "ssm_operator_queue_depth"),
            Some(3.0)
        );
    }

    #[test]
    fn oldest_sync_age_is_the_age_of_the_stalest_live_object() {
        let metrics = Metrics::new();
        let now = Instant::now();
        metrics.synced("team-a/db", now - Duration::from_secs(300));
        metrics.synced("team-a/api", now - Duration::from_secs(60));
        let age = sample(&metrics.render(), "ssm_operator_oldest_sync_age_seconds");
        assert!(age.is_some_and(|s| (300.0..310.0).contains(&s)), "{age:?}");
    }

    #[test]
    fn a_new_sync_replaces_the_last_one_of_the_same_object() {
        let syncs = LastSyncs::default();
        let now = Instant::now();
        syncs.record("team-a/db", now - Duration::from_secs(300));
        syncs.record("team-a/db", now - Duration::from_secs(5));
        assert_eq!(syncs.oldest_age(now), Duration::from_secs(5));
    }

    #[test]
    fn a_forgotten_object_no_longer_counts_toward_the_oldest_sync() {
        let syncs = LastSyncs::default();
        let now = Instant::now();
        syncs.record("team-a/db", now - Duration::from_secs(300));
        syncs.record("team-a/api", now - Duration::from_secs(60));
        syncs.forget("team-a/db");
        assert_eq!(syncs.oldest_age(now), Duration::from_secs(60));
        syncs.forget("team-a/api");
        assert_eq!(syncs.oldest_age(now), Duration::ZERO);
    }

    #[test]
    fn object_names_never_become_labels() {
        let metrics = Metrics::new();
        metrics.synced("team-a/db-password", Instant::now());
        assert!(!metrics.render().contains("db-password"));
    }

    #[test]
    fn the_text_is_complete_openmetrics() {
        let metrics = Metrics::new();
        metrics.reconciled(Outcome::Synced, "Synced", Duration::from_millis(5));
        metrics.aws_call("GetParameters", "ok");
        metrics.secret_written("created");
        let text = metrics.render();
        assert!(text.ends_with("# EOF\n"), "{text}");
        for family in [
            "ssm_operator_reconciles",
            "ssm_operator_reconcile_duration_seconds",
            "ssm_operator_aws_calls",
            "ssm_operator_secret_writes",
            "ssm_operator_queue_depth",
            "ssm_operator_oldest_sync_age_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
        }
    }
}
