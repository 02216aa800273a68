//! When each SsmParameter became Ready at each generation, by a watch of
//! them all (one request, however many objects), so that waiting costs the
//! API server little.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use ssm_operator::api::SsmParameter;
use tokio::time::Instant;

/// Ready times of every object seen, by name and generation.
#[derive(Clone, Default)]
pub struct Tracker {
    ready: Arc<Mutex<HashMap<String, HashMap<i64, Instant>>>>,
}

impl Tracker {
    /// Starts watching the SsmParameters of `api` (stops with the process).
    pub fn start(api: Api<SsmParameter>) -> Self {
        let tracker = Self::default();
        let ready = tracker.ready.clone();
        tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let (Ok(Event::Apply(obj)) | Ok(Event::InitApply(obj))) = event else {
                    continue;
                };
                let Some(generation) = ready_generation(&obj) else {
                    continue;
                };
                let mut ready = ready.lock().unwrap_or_else(|p| p.into_inner());
                ready
                    .entry(obj.name_any())
                    .or_default()
                    .entry(generation)
                    .or_insert_with(Instant::now);
            }
        });
        tracker
    }

    /// When `name` was first seen Ready at `generation`.
    pub fn ready_at(&self, name: &str, generation: i64) -> Option<Instant> {
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        ready.get(name)?.get(&generation).copied()
    }

    /// The times at which the objects of `names` became Ready at
    /// `generation`, sorted; objects not Ready yet are left out.
    pub fn ready_times(&self, names: &[String], generation: i64) -> Vec<Instant> {
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        let mut times: Vec<Instant> = names
            .iter()
            .filter_map(|n| ready.get(n)?.get(&generation).copied())
            .collect();
        times.sort_unstable();
        times
    }

    /// Waits until every object of `names` is Ready at `generation`, or
    /// `deadline` passes; the sorted Ready times, as far as they came.
    pub async fn all_ready(
        &self,
        names: &[String],
        generation: i64,
        deadline: Duration,
    ) -> Vec<Instant> {
        let until = Instant::now() + deadline;
        loop {
            let times = self.ready_times(names, generation);
            if times.len() == names.len() || Instant::now() > until {
                return times;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The generation `obj` is Ready at: its status observed it, and says Ready.
fn ready_generation(obj: &SsmParameter) -> Option<i64> {
    let status = obj.status.as_ref()?;
    let observed = status.observed_generation?;
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    (ready && Some(observed) == obj.metadata.generation).then_some(observed)
}
