//! When each SsmParameter is due to read AWS again.
//!
//! A reconcile can be triggered by many things — the refresh timer, a spec
//! change, the force-sync annotation, an edit of the Secret, or the operator's
//! own write of the Secret. Only the first four warrant a read from AWS; the
//! schedule remembers the last good sync so that the others cost nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use rand::Rng;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

use crate::api::{Retry, SsmParameter, SyncError};
use crate::aws::MAX_NAMES_PER_CALL;
use crate::reconcile::key::ObjectKey;

/// What a good sync was based on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncBasis {
    pub generation: Option<i64>,
    /// Value of the force-sync annotation.
    pub force_sync: Option<String>,
    /// `resourceVersion` of the Secret as the sync left it.
    pub secret_version: Option<String>,
}

struct Entry {
    basis: SyncBasis,
    next_due: Option<Instant>,
}

/// What a reconcile has to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet; look again after this long (`None`: on a change only).
    Later(Option<Duration>),
    /// The refresh interval came round; the Secret is as the last sync left it.
    Refresh,
    /// First sync, new spec, forced sync, edited Secret or a failure before:
    /// the Secret cannot be trusted to hold the last values.
    Full,
    /// Another writer changed the Secret again after the object's allowance
    /// of prompted reads ran out: a fight over the Secret, told as such, and
    /// repaired after this long.
    Contested(Duration),
}

/// Per-object memory of good syncs and failed attempts, keyed compactly:
/// `synced` and `written` hold an entry for every object.
#[derive(Default)]
pub struct Schedule {
    synced: Mutex<HashMap<ObjectKey, Entry>>,
    failures: Mutex<HashMap<ObjectKey, u32>>,
    prompts: Mutex<HashMap<ObjectKey, Prompts>>,
    /// The Secret version each object's last write left, recorded or not: a
    /// sync whose status write failed is not another writer's edit.
    written: Mutex<HashMap<ObjectKey, String>>,
    departures: Mutex<Departures>,
}

/// Which reads may share a call, and how many names an object reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    /// Reads of the same key share calls (the scope and decryption mode).
    pub key: u64,
    pub names: usize,
    /// Objects of one beat (the SsmParameters of one ClusterSsmParameter,
    /// which read the same names) refresh at the same instants, whenever
    /// each synced, so that their reads go out as one.
    pub beat: Option<u64>,
}

/// Refreshes booked ahead, per lane: the instant and the names booked on it.
///
/// Jittered one by one, the refreshes of objects synced over a few seconds
/// scatter over the jitter's range and each goes out nearly alone (2 names
/// per call at 1,000 objects). Booked onto a departure that has room, they
/// go out ten names a call, and the jitter spreads the departures instead.
#[derive(Default)]
struct Departures {
    lanes: HashMap<u64, BTreeMap<Instant, usize>>,
}

impl Departures {
    /// The instant `lane`'s next refresh goes: the departure nearest to
    /// `target` within the jitter's range of `interval` that has room, or
    /// a new one at `target`.
    fn book(&mut self, lane: &Lane, now: Instant, interval: Duration, target: Instant) -> Instant {
        let booked = self.lanes.entry(lane.key).or_default();
        // Departures gone by hold nobody any more.
        *booked = booked.split_off(&now);
        let earliest = now + interval.mul_f64(1.0 - JITTER);
        let latest = now + interval.mul_f64(1.0 + JITTER);
        let nearest = booked
            .range(earliest..=latest)
            .filter(|(_, names)| **names + lane.names <= MAX_NAMES_PER_CALL)
            .map(|(at, _)| *at)
            .min_by_key(|at| at.max(&target).duration_since(*at.min(&target)));
        let at = nearest.unwrap_or(target);
        *booked.entry(at).or_default() += lane.names;
        at
    }
}

/// Reads an object may be prompted to (a new spec, force-sync value or an
/// edit of its Secret) beyond its refresh: [`PROMPT_BURST`] at once, then
/// one per [`PROMPT_REFILL`]. A script flooding force-sync, or a controller
/// fighting over the Secret, thus costs one read per 10 s, not one per
/// event, and other tenants' objects keep the read budget.
struct Prompts {
    tokens: f64,
    at: Instant,
}

pub const PROMPT_BURST: f64 = 5.0;
pub const PROMPT_REFILL: Duration = Duration::from_secs(10);

/// First retry after a passing failure, doubled each time up to the cap.
const BACKOFF_START: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

impl Schedule {
    /// Whether, and how, AWS must be read now. `recorded` is what the
    /// status says the last good sync was based on: after a restart, a
    /// Secret still as that sync left it needs only a version probe.
    pub fn due(
        &self,
        object: &ObjectRef<SsmParameter>,
        basis: &SyncBasis,
        recorded: Option<&SyncBasis>,
    ) -> Due {
        let synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = synced.get(&ObjectKey::from(object)) else {
            return match recorded == Some(basis) && basis.secret_version.is_some() {
                true => Due::Refresh,
                false => Due::Full,
            };
        };
        if &entry.basis != basis {
            let same_spec = entry.basis.generation == basis.generation
                && entry.basis.force_sync == basis.force_sync;
            if same_spec && self.wrote_last(object, basis.secret_version.as_deref()) {
                // Our own write whose sync was never recorded: finish it.
                return Due::Full;
            }
            return match (self.prompt(object), same_spec) {
                (None, _) => Due::Full,
                (Some(wait), true) => Due::Contested(wait),
                (wait, false) => Due::Later(wait),
            };
        }
        match entry.next_due {
            None => Due::Later(None),
            Some(due) => {
                let left = due.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Due::Refresh
                } else {
                    Due::Later(Some(left))
                }
            }
        }
    }

    /// Takes a prompted read from `object`'s allowance; `Some(wait)` when
    /// there is none left for that long.
    fn prompt(&self, object: &ObjectRef<SsmParameter>) -> Option<Duration> {
        let mut prompts = self.prompts.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let bucket = prompts.entry(object.into()).or_insert(Prompts {
            tokens: PROMPT_BURST,
            at: now,
        });
        let earned = now.duration_since(bucket.at).as_secs_f64() / PROMPT_REFILL.as_secs_f64();
        bucket.tokens = (bucket.tokens + earned).min(PROMPT_BURST);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return None;
        }
        Some(PROMPT_REFILL.mul_f64(1.0 - bucket.tokens))
    }

    /// Records the Secret version a write of `object` left.
    pub fn wrote(&self, object: ObjectRef<SsmParameter>, version: Option<String>) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let object = ObjectKey::from(&object);
        match version {
            Some(version) => written.insert(object, version),
            None => written.remove(&object),
        };
    }

    fn wrote_last(&self, object: &ObjectRef<SsmParameter>, version: Option<&str>) -> bool {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        version.is_some() && written.get(&ObjectKey::from(object)).map(String::as_str) == version
    }

    /// The Secret version the last good sync of `object` left, or else the
    /// one `recorded` (from the status) says.
    pub fn secret_version(
        &self,
        object: &ObjectRef<SsmParameter>,
        recorded: Option<&SyncBasis>,
    ) -> Option<String> {
        let synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        match synced.get(&ObjectKey::from(object)) {
            Some(entry) => entry.basis.secret_version.clone(),
            None => recorded.and_then(|r| r.secret_version.clone()),
        }
    }

    /// Records a good sync; returns the wait until the next refresh: the
    /// interval, jittered, and — for reads in `lane` — moved within the
    /// jitter's range to a refresh of other objects that has room for them.
    pub fn synced(
        &self,
        object: ObjectRef<SsmParameter>,
        basis: SyncBasis,
        refresh: Option<Duration>,
        lane: Option<&Lane>,
    ) -> Option<Duration> {
        let object = ObjectKey::from(&object);
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&object);
        let now = Instant::now();
        let next_due = refresh.map(|interval| {
            let target = now + jitter(interval);
            match lane {
                Some(Lane {
                    beat: Some(beat), ..
                }) => now + on_beat(interval, *beat, SystemTime::now()),
                Some(lane) => self
                    .departures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .book(lane, now, interval, target),
                None => target,
            }
        });
        let wait = next_due.map(|due| due - now);
        let entry = Entry { basis, next_due };
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(object, entry);
        wait
    }

    /// Records a failed sync; returns the wait before the next attempt of a
    /// passing failure (exponential, jittered).
    pub fn failed(&self, object: ObjectRef<SsmParameter>) -> Duration {
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ObjectKey::from(&object));
        self.backoff(object)
    }

    /// Records a failed attempt that leaves the last good sync standing (the
    /// API server failed; the Secret's resourceVersion still tells whether it
    /// changed); returns the wait before the next attempt.
    pub fn backoff(&self, object: ObjectRef<SsmParameter>) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let attempts = failures.entry((&object).into()).or_insert(0);
        let wait = BACKOFF_START
            .saturating_mul(2u32.saturating_pow(*attempts))
            .min(BACKOFF_CAP);
        *attempts = attempts.saturating_add(1);
        jitter(wait)
    }

    /// Forgets a deleted object.
    pub fn forget(&self, object: &ObjectRef<SsmParameter>) {
        let object = &ObjectKey::from(object);
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(object);
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(object);
        self.prompts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(object);
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(object);
    }
}

/// When to try again after `error`: soon with backoff for a passing fault,
/// at the refresh for one someone must fix in AWS, on a spec change for a
/// spec that cannot work.
pub fn next_attempt(error: &SyncError, refresh: Option<Duration>, backoff: Duration) -> Action {
    match (error.retry(), refresh) {
        (Retry::Soon, _) => Action::requeue(backoff),
        (Retry::AtRefresh, Some(refresh)) => Action::requeue(jitter(refresh)),
        (Retry::AtRefresh, None) | (Retry::OnSpecChange, _) => Action::await_change(),
    }
}

/// The wait from `now` to the next instant of `beat`: beats of one value
/// fall on the same wall-clock instants, `interval` apart; those of other
/// values are spread over the interval.
fn on_beat(interval: Duration, beat: u64, now: SystemTime) -> Duration {
    let period = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let now = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    let since = (now % period + period - beat % period) % period;
    Duration::from_millis(period - since)
}

/// The jitter's range: ±10% of the interval.
const JITTER: f64 = 0.1;

/// ±10%, so that objects created together (or an operator restart) do not
/// refresh in lockstep.
pub fn jitter(interval: Duration) -> Duration {
    let factor = rand::rng().random_range((1.0 - JITTER)..=(1.0 + JITTER));
    interval.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> ObjectRef<SsmParameter> {
        ObjectRef::new("db").within("payments")
    }

    fn basis(generation: i64) -> SyncBasis {
        SyncBasis {
            generation: Some(generation),
            force_sync: None,
            secret_version: Some("41".into()),
        }
    }

    /// The first basis, with force-sync value `n`.
    fn forced(n: u32) -> SyncBasis {
        SyncBasis {
            force_sync: Some(n.to_string()),
            ..basis(1)
        }
    }

    /// The first basis, with the Secret at version `n`.
    fn at_version(n: u32) -> SyncBasis {
        SyncBasis {
            secret_version: Some(n.to_string()),
            ..basis(1)
        }
    }

    #[test]
    fn an_unknown_object_is_due_now() {
        assert_eq!(
            Schedule::default().due(&object(), &basis(1), None),
            Due::Full
        );
    }

    #[tokio::test]
    async fn after_a_good_sync_the_same_basis_waits_for_the_refresh() {
        let schedule = Schedule::default();
        schedule.synced(object(), basis(1), Some(Duration::from_secs(60)), None);
        let Due::Later(Some(wait)) = schedule.due(&object(), &basis(1), None) else {
            panic!("expected to wait");
        };
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(66));
    }

    #[tokio::test]
    async fn a_new_generation_force_sync_or_edited_secret_is_due_now() {
        let schedule = Schedule::default();
        schedule.synced(object(), basis(1), Some(Duration::from_secs(60)), None);
        assert_eq!(schedule.due(&object(), &basis(2), None), Due::Full);
        let mut forced = basis(1);
        forced.force_sync = Some("now".into());
        assert_eq!(schedule.due(&object(), &forced, None), Due::Full);
        let mut edited = basis(1);
        edited.secret_version = Some("42".into());
        assert_eq!(schedule.due(&object(), &edited, None), Due::Full);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_prompts_reads_at_most_once_per_refill_after_the_burst() {
        let schedule = Schedule::default();
        schedule.synced(object(), basis(1), Some(Duration::from_secs(3600)), None);
        let mut reads = 0;
        for n in 0..100 {
            if schedule.due(&object(), &forced(n), None) == Due::Full {
                reads += 1;
            }
        }
        assert_eq!(reads, 5, "the burst");
        let Due::Later(Some(wait)) = schedule.due(&object(), &forced(100), None) else {
            panic!("expected to wait");
        };
        assert!(wait <= PROMPT_REFILL);
        tokio::time::advance(wait).await;
        assert_eq!(schedule.due(&object(), &forced(101), None), Due::Full);
        assert!(matches!(
            schedule.due(&object(), &forced(102), None),
            Due::Later(Some(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn edits_of_the_secret_beyond_the_burst_are_a_contest_repaired_after_the_refill() {
        let schedule = Schedule::default();
        schedule.synced(object(), basis(1), Some(Duration::from_secs(3600)), None);
        let repairs = (0..20)
            .filter(|&n| schedule.due(&object(), &at_version(100 + n), None) == Due::Full)
            .count();
        assert_eq!(repairs, 5, "the burst");
        let Due::Contested(wait) = schedule.due(&object(), &at_version(120), None) else {
            panic!("expected a contest");
        };
        assert!(wait <= PROMPT_REFILL);
        tokio::time::advance(wait).await;
        assert_eq!(schedule.due(&object(), &at_version(121), None), Due::Full);
    }

    #[tokio::test(start_paused = true)]
    async fn the_operators_own_unrecorded_write_is_no_edit_and_costs_no_allowance() {
        let schedule = Schedule::default();
        schedule.synced(object(), basis(1), Some(Duration::from_secs(3600)), None);
        for n in 200..220 {
            schedule.wrote(object(), Some(n.to_string()));
            assert_eq!(
                schedule.due(&object(), &at_version(n), None),
                Due::Full,
                "{n}"
            );
        }
        for n in 300..305 {
            assert_eq!(
                schedule.due(&object(), &at_version(n), None),
                Due::Full,
                "the burst is whole"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_force_sync_flood_waits_without_a_contest() {
        let schedule = Schedule::default();
        schedule.synced(object(), basis(1), Some(Duration::from_secs(3600)), None);
        let outcomes: Vec<Due> = (0..7)
            .map(|n| schedule.due(&object(), &forced(n), None))
            .collect();
        assert!(matches!(outcomes[6], Due::Later(Some(_))), "{outcomes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn when_the_interval_has_passed_a_refresh_is_due() {
        let schedule = Schedule::default();
        schedule.synced(object(), basis(1), Some(Duration::from_secs(60)), None);
        tokio::time::advance(Duration::from_secs(67)).await;
        assert_eq!(schedule.due(&object(), &basis(1), None), Due::Refresh);
    }

    #[tokio::test]
    async fn refresh_zero_waits_for_a_change_only() {
        let schedule = Schedule::default();
        schedule.synced(object(), basis(1), None, None);
        assert_eq!(schedule.due(&object(), &basis(1), None), Due::Later(None));
    }

    #[test]
    fn after_a_restart_a_secret_as_the_recorded_sync_left_it_needs_only_a_probe() {
        let schedule = Schedule::default();
        let recorded = basis(1);
        assert_eq!(
            schedule.due(&object(), &basis(1), Some(&recorded)),
            Due::Refresh
        );
        assert_eq!(
            schedule
                .secret_version(&object(), Some(&recorded))
                .as_deref(),
            Some("41")
        );
        // Edited while the operator was down, a new spec, a forced sync.
        for now in [at_version(42), basis(2), forced(1)] {
            assert_eq!(
                schedule.due(&object(), &now, Some(&recorded)),
                Due::Full,
                "{now:?}"
            );
        }
        // A Secret that is gone is no Secret as the sync left it.
        let gone = SyncBasis {
            secret_version: None,
            ..basis(1)
        };
        let recorded_gone = gone.clone();
        assert_eq!(
            schedule.due(&object(), &gone, Some(&recorded_gone)),
            Due::Full
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_of_one_lane_go_out_ten_names_at_a_time_however_their_syncs_were_spread() {
        let schedule = Schedule::default();
        let lane = Lane {
            key: 7,
            names: 1,
            beat: None,
        };
        let interval = Duration::from_secs(3600);
        let mut departures = std::collections::BTreeSet::new();
        for n in 0..1000 {
            // Syncs spread over 100 s.
            tokio::time::advance(Duration::from_millis(100)).await;
            let object = ObjectRef::new(&format!("o{n}")).within("payments");
            let wait = schedule
                .synced(object, basis(1), Some(interval), Some(&lane))
                .unwrap();
            assert!(
                wait >= interval.mul_f64(0.9) && wait <= interval.mul_f64(1.1),
                "{wait:?}"
            );
            departures.insert(Instant::now() + wait);
        }
        assert!(departures.len() <= 101, "{} departures", departures.len());
        // Another lane does not share them.
        let other = Lane {
            key: 8,
            names: 1,
            beat: None,
        };
        let wait = schedule
            .synced(object(), basis(1), Some(interval), Some(&other))
            .unwrap();
        assert!(!departures.contains(&(Instant::now() + wait)));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let schedule = Schedule::default();
        let waits: Vec<Duration> = (0..12).map(|_| schedule.failed(object())).collect();
        assert!(waits[0] <= Duration::from_millis(2200));
        assert!(
            waits[3] >= Duration::from_millis(14400) && waits[3] <= Duration::from_millis(17600)
        );
        assert!(waits[11] <= Duration::from_secs(330));
    }

    #[test]
    fn passing_aws_faults_are_retried_after_the_backoff_not_at_the_refresh() {
        let hour = Some(Duration::from_secs(3600));
        let backoff = Duration::from_secs(2);
        for error in [
            SyncError::Throttled {
                operation: "kms:Decrypt (for GetParameters)".into(),
            },
            SyncError::AwsUnavailable {
                detail: "STS did not answer".into(),
            },
            SyncError::WebIdentityTokenExpired {
                role: "arn:aws:iam::111122223333:role/op".into(),
            },
        ] {
            assert_eq!(
                next_attempt(&error, hour, backoff),
                Action::requeue(backoff),
                "{error:?}"
            );
        }
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let j = jitter(Duration::from_secs(100));
            assert!(j >= Duration::from_secs(90) && j <= Duration::from_secs(110));
        }
    }

    #[test]
    fn objects_of_one_beat_refresh_at_the_same_instants_whenever_they_synced() {
        let interval = Duration::from_secs(3600);
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs);
        let beat = 12_345_678;
        let first = at(10) + on_beat(interval, beat, at(10));
        let second = at(1000) + on_beat(interval, beat, at(1000));
        assert_eq!(first, second);
        let wait = on_beat(interval, beat, at(10));
        assert!(wait > Duration::ZERO && wait <= interval, "{wait:?}");
        // Right on the beat: the next one, a whole interval on.
        assert_eq!(on_beat(interval, beat, first), interval);
        let other = at(10) + on_beat(interval, beat + 60_000, at(10));
        assert_ne!(first, other, "another beat falls elsewhere");
    }
}
