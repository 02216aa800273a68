//! How many SsmParameters are in each state, counted at scrape time from
//! whatever holds them (the controllers' caches): one series per condition,
//! status and reason — bounded sets, never an object's name.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

/// A condition's state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, EncodeLabelSet)]
pub struct State {
    /// `Ready` or `Synced`.
    pub condition: String,
    /// `True`, `False` or `Unknown` (not reconciled yet).
    pub status: String,
    pub reason: String,
}

/// What can count the SsmParameters by state.
pub trait Census: Send + Sync + 'static {
    fn count(&self) -> BTreeMap<State, u64>;
}

/// The collector: nothing until a census is given (a standby counts none).
#[derive(Default)]
pub struct States(Mutex<Option<Arc<dyn Census>>>);

impl std::fmt::Debug for States {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("States")
    }
}

impl States {
    /// Counts with `census` from now on.
    pub fn counted_by(&self, census: Arc<dyn Census>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(census);
    }
}

impl Collector for States {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let census = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let counts = census.map(|c| c.count()).unwrap_or_default();
        let mut family = encoder.encode_descriptor(
            "ssm_operator_ssm_parameters",
            "SsmParameters served, by the status and reason of their Ready and Synced conditions",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (state, count) in counts {
            let gauge = ConstGauge::new(i64::try_from(count).unwrap_or(i64::MAX));
            gauge.encode(family.encode_family(&state)?)?;
        }
        Ok(())
    }
}
