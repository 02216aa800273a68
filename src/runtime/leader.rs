//! Leader election on a `coordination.k8s.io/v1` Lease: of several replicas,
//! only the one holding the Lease reconciles.
//!
//! The leader renews the Lease every `renew_every`. A standby takes the Lease
//! when nobody holds it or its holder has not renewed it for
//! `leaseDurationSeconds`. Every write carries the `resourceVersion` it read,
//! so of two processes writing at once only one succeeds, and a leader that
//! cannot renew steps down before any standby may take over.
//!
//! Expiry compares the holder's `renewTime` with this process's clock, so the
//! nodes' clocks must agree to well within `renew_every` (NTP does).

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::names::FIELD_MANAGER;

/// Which Lease to hold, as whom, and how often to renew it.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per process, e.g. the Pod name.
    pub identity: String,
    /// How long the Lease stays with its holder after each renewal.
    pub lease_duration: Duration,
    /// How often the leader renews. A leader that could not renew for
    /// `lease_duration - renew_every` steps down, so it has stopped before a
    /// standby may take the Lease. Must be well below `lease_duration`.
    pub renew_every: Duration,
    /// How often a standby looks whether the Lease is free, and how soon the
    /// leader tries again after a failed renewal.
    pub retry_every: Duration,
}

impl LeaseConfig {
    /// The timing of Kubernetes' own controllers: a standby takes over at most
    /// `lease_duration + retry_every` (17 s) after the leader's last renewal.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
        }
    }

    /// How long the leader may go without a successful renewal.
    fn renew_deadline(&self) -> Duration {
        self.lease_duration.saturating_sub(self.renew_every)
    }
}

/// This process holds the Lease and renews it in the background.
///
/// Dropping it stops the renewals without releasing the Lease, as a crash
/// would: a standby takes over once the Lease expires.
pub struct Leadership {
    lost: watch::Receiver<bool>,
    release: oneshot::Sender<()>,
    renewal: JoinHandle<()>,
}

impl Leadership {
    fn start(leases: Api<Lease>, config: LeaseConfig, lease: Lease, renewed_at: Instant) -> Self {
        let (lost_tx, lost) = watch::channel(false);
        let (release, release_rx) = oneshot::channel();
        let holder = Holder {
            leases,
            config,
            lease,
            renewed_at,
        };
        let renewal = tokio::spawn(holder.keep(lost_tx, release_rx));
        Self {
            lost,
            release,
            renewal,
        }
    }

    /// Resolves once this process no longer leads: another process holds the
    /// Lease, it was deleted, or it could not be renewed in time. Stop
    /// reconciling at once then, and campaign again ([`super::campaign`]).
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut lost = self.lost.clone();
        async move {
            // An error means the renewal ended: nothing keeps the Lease any more.
            let _ = lost.wait_for(|lost| *lost).await;
        }
    }

    /// Stops renewing and frees the Lease, so a standby takes over at once
    /// instead of after `lease_duration`.
    pub async fn release(self) {
        // An error means the renewal ended already: the Lease is not ours.
        let _ = self.release.send(());
        if let Err(error) = self.renewal.await {
            tracing::warn!(%error, "the lease renewal ended abnormally");
        }
    }
}

/// Waits until this process holds the Lease, creating it if missing.
///
/// Fails only when retrying cannot help, e.g. when RBAC forbids the Lease;
/// other errors are logged and retried every `retry_every`. Dropping the
/// future while it waits (on shutdown) leaves at most a Lease of ours that
/// nobody renews, and so expires.
pub async fn acquire(client: kube::Client, config: LeaseConfig) -> Result<Leadership, kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut seen_holder: Option<String> = None;
    loop {
        let sent_at = Instant::now();
        match try_take(&leases, &config).await {
            Ok(Attempt::Taken(lease)) => {
                tracing::info!(lease = %config.name, identity = %config.identity, "leading");
                return Ok(Leadership::start(leases, config, *lease, sent_at));
            }
            Ok(Attempt::HeldBy(holder)) => {
                if seen_holder.as_ref() != Some(&holder) {
                    tracing::info!(lease = %config.name, %holder, "standing by while another process leads");
                    seen_holder = Some(holder);
                }
            }
            Ok(Attempt::Outraced) => {}
            Err(error) if !worth_retrying(&error) => return Err(error),
            Err(error) => {
                tracing::warn!(%error, lease = %config.name, "could not take the lease; retrying")
            }
        }
        tokio::time::sleep(config.retry_every).await;
    }
}

/// What one try to take the Lease came to.
enum Attempt {
    Taken(Box<Lease>),
    HeldBy(String),
    /// Another process wrote the Lease between our read and our write.
    Outraced,
}

async fn try_take(leases: &Api<Lease>, config: &LeaseConfig) -> Result<Attempt, kube::Error> {
    let now = Timestamp::now();
    let Some(current) = leases.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(taken(None, config, now)),
        };
        return outraced_if_conflict(leases.create(&post_params(), &lease).await);
    };
    let spec = current.spec.as_ref();
    match claim(spec, &config.identity, now) {
        Claim::Held { holder } => return Ok(Attempt::HeldBy(holder)),
        Claim::Expired { holder } => {
            tracing::info!(lease = %config.name, %holder, "taking over the lease its holder stopped renewing");
        }
        Claim::Free | Claim::Ours => {}
    }
    let lease = with_spec(&current, taken(spec, config, now));
    outraced_if_conflict(leases.replace(&config.name, &post_params(), &lease).await)
}

fn outraced_if_conflict(written: Result<Lease, kube::Error>) -> Result<Attempt, kube::Error> {
    match written {
        Ok(lease) => Ok(Attempt::Taken(Box::new(lease))),
        Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
            Ok(Attempt::Outraced)
        }
        Err(error) => Err(error),
    }
}

/// Client errors other than conflicts and throttling repeat on every try.
fn worth_retrying(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => !(400..500).contains(&status.code) || status.code == 429,
        _ => true,
    }
}

/// The renewal side of a Leadership: the Lease as last written by us.
struct Holder {
    leases: Api<Lease>,
    config: LeaseConfig,
    lease: Lease,
    /// When the last successful write was sent, by the monotonic clock.
    renewed_at: Instant,
}

/// What one renewal came to.
enum Renewal {
    Renewed(Box<Lease>),
    /// Someone else wrote the Lease, but it is still ours: renew that version.
    Stale(Box<Lease>),
    /// Someone else holds the Lease (`None`: nobody, or it was deleted).
    Lost(Option<String>),
}

impl Holder {
    /// Renews until released, dropped or lost.
    async fn keep(mut self, lost: watch::Sender<bool>, mut release: oneshot::Receiver<()>) {
        let mut next = self.renewed_at + self.config.renew_every;
        loop {
            tokio::select! {
                requested = &mut release => {
                    // Dropped without a request: stop renewing, as a crash would.
                    if requested.is_ok() {
                        self.release().await;
                    }
                    return;
                }
                () = tokio::time::sleep_until(next) => {}
            }
            match self.renew().await {
                Ok(()) => next = self.renewed_at + self.config.renew_every,
                Err(holder) => {
                    tracing::info!(lease = %self.config.name, holder = holder.as_deref().unwrap_or(""), "lost the lease");
                    lost.send_replace(true);
                    return;
                }
            }
        }
    }

    /// Ok while this process may go on leading; Err with the new holder, if
    /// any, once it may not.
    async fn renew(&mut self) -> Result<(), Option<String>> {
        let deadline = self.renewed_at + self.config.renew_deadline();
        loop {
            let sent_at = Instant::now();
            let error = match tokio::time::timeout_at(deadline, self.try_renew()).await {
                Ok(Ok(Renewal::Renewed(lease))) => {
                    self.lease = *lease;
                    self.renewed_at = sent_at;
                    return Ok(());
                }
                Ok(Ok(Renewal::Stale(lease))) => {
                    self.lease = *lease;
                    continue;
                }
                Ok(Ok(Renewal::Lost(holder))) => return Err(holder),
                Ok(Err(error)) => error,
                Err(_) => {
                    tracing::warn!(lease = %self.config.name, "could not renew the lease in time; stepping down");
                    return Err(None);
                }
            };
            tracing::warn!(%error, lease = %self.config.name, "could not renew the lease; retrying");
            // At the deadline, the next try times out at once.
            let retry_at = (Instant::now() + self.config.retry_every).min(deadline);
            tokio::time::sleep_until(retry_at).await;
        }
    }

    async fn try_renew(&self) -> Result<Renewal, kube::Error> {
        let spec = renewed(self.lease.spec.as_ref(), Timestamp::now());
        match self.write(&with_spec(&self.lease, spec)).await {
            Ok(lease) => Ok(Renewal::Renewed(Box::new(lease))),
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_not_found() => {
                self.reread().await
            }
            Err(error) => Err(error),
        }
    }

    async fn reread(&self) -> Result<Renewal, kube::Error> {
        let Some(current) = self.leases.get_opt(&self.config.name).await? else {
            return Ok(Renewal::Lost(None));
        };
        let spec = current.spec.as_ref();
        Ok(match claim(spec, &self.config.identity, Timestamp::now()) {
            Claim::Ours => Renewal::Stale(Box::new(current)),
            _ => Renewal::Lost(spec.and_then(|s| s.holder_identity.clone())),
        })
    }

    /// Frees the Lease; if that fails, it expires after `lease_duration`.
    async fn release(&self) {
        let name = &self.config.name;
        match tokio::time::timeout(self.config.renew_every, self.free()).await {
            Ok(Ok(())) => tracing::info!(lease = %name, "released the lease"),
            Ok(Err(error)) => {
                tracing::warn!(%error, lease = %name, "could not release the lease; a standby takes over when it expires")
            }
            Err(_) => {
                tracing::warn!(lease = %name, "releasing the lease timed out; a standby takes over when it expires")
            }
        }
    }

    async fn free(&self) -> Result<(), kube::Error> {
        let lease = with_spec(&self.lease, released(self.lease.spec.as_ref()));
        match self.write(&lease).await {
            Err(kube::Error::Api(status)) if status.is_conflict() => {}
            written => return written.map(drop),
        }
        // Someone else wrote the Lease since our renewal: free it only if it
        // is still ours.
        let current = self.leases.get(&self.config.name).await?;
        let spec = current.spec.as_ref();
        if claim(spec, &self.config.identity, Timestamp::now()) == Claim::Ours {
            self.write(&with_spec(&current, released(spec))).await?;
        }
        Ok(())
    }

    /// Replaces the Lease, if nobody wrote it since `lease` was read.
    async fn write(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        self.leases
            .replace(&self.config.name, &post_params(), lease)
            .await
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

/// `lease` with its metadata (and so its `resourceVersion`) and a new spec.
fn with_spec(lease: &Lease, spec: LeaseSpec) -> Lease {
    Lease {
        metadata: lease.metadata.clone(),
        spec: Some(spec),
    }
}

/// What a process may do with a Lease it read.
#[derive(Debug, PartialEq, Eq)]
enum Claim {
    /// Nobody holds it: take it.
    Free,
    /// This identity holds it: renew it (a restart keeps its identity).
    Ours,
    /// Its holder stopped renewing: take it over.
    Expired { holder: String },
    /// Another process holds it and renews it in time: wait.
    Held { holder: String },
}

fn claim(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Claim {
    let Some(spec) = spec else {
        return Claim::Free;
    };
    let holder = match spec.holder_identity.as_deref() {
        None | Some("") => return Claim::Free,
        Some(holder) => holder.to_owned(),
    };
    if holder == identity {
        Claim::Ours
    } else if expires_at(spec).is_none_or(|at| at <= now) {
        Claim::Expired { holder }
    } else {
        Claim::Held { holder }
    }
}

/// `None` when the holder never said when it renewed or for how long: it
/// cannot prove it is alive.
fn expires_at(spec: &LeaseSpec) -> Option<Timestamp> {
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?;
    let seconds = spec.lease_duration_seconds?;
    renewed
        .0
        .checked_add(SignedDuration::from_secs(i64::from(seconds)))
        .ok()
}

/// The Lease as this process takes it (`previous`: `None` when creating it).
fn taken(previous: Option<&LeaseSpec>, config: &LeaseConfig, now: Timestamp) -> LeaseSpec {
    let changes_hands =
        previous.is_some_and(|p| p.holder_identity.as_deref() != Some(config.identity.as_str()));
    let previous = previous.cloned().unwrap_or_default();
    let acquire_time = previous
        .acquire_time
        .clone()
        .filter(|_| !changes_hands)
        .unwrap_or(MicroTime(now));
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(whole_seconds(config.lease_duration)),
        acquire_time: Some(acquire_time),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(
            previous
                .lease_transitions
                .unwrap_or(0)
                .saturating_add(i32::from(changes_hands)),
        ),
        ..previous
    }
}

fn renewed(spec: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        renew_time: Some(MicroTime(now)),
        ..spec.cloned().unwrap_or_default()
    }
}

/// No holder, and a duration of one second for clients that look only at
/// the renewal time.
fn released(spec: Option<&LeaseSpec>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        ..spec.cloned().unwrap_or_default()
    }
}

fn whole_seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(T0 + seconds).unwrap()
    }

    fn config(identity: &str) -> LeaseConfig {
        LeaseConfig::new("ssm-operator", "ssm-operator", identity)
    }

    /// A Lease `holder` renewed at `renewed`, for 15 s.
    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(MicroTime(at(0))),
            renew_time: Some(MicroTime(at(renewed))),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }
    }

    fn held(holder: &str) -> Claim {
        Claim::Held {
            holder: holder.to_owned(),
        }
    }

    #[test]
    fn a_lease_without_holder_is_free() {
        assert_eq!(claim(None, "b", at(0)), Claim::Free);
        assert_eq!(claim(Some(&LeaseSpec::default()), "b", at(0)), Claim::Free);
        let empty = LeaseSpec {
            holder_identity: Some(String::new()),
            ..held_by("a", 0)
        };
        assert_eq!(claim(Some(&empty), "b", at(5)), Claim::Free);
    }

    #[test]
    fn a_lease_renewed_within_its_duration_stays_with_its_holder() {
        let lease = held_by("a", 10);
        assert_eq!(claim(Some(&lease), "b", at(10)), held("a"));
        assert_eq!(claim(Some(&lease), "b", at(24)), held("a"));
    }

    #[test]
    fn a_lease_not_renewed_for_its_duration_may_be_taken_over() {
        let lease = held_by("a", 10);
        let expired = Claim::Expired {
            holder: "a".to_owned(),
        };
        assert_eq!(claim(Some(&lease), "b", at(25)), expired);
        assert_eq!(claim(Some(&lease), "b", at(3600)), expired);
    }

    #[test]
    fn the_holders_own_duration_decides_expiry() {
        let lease = LeaseSpec {
            lease_duration_seconds: Some(60),
            ..held_by("a", 10)
        };
        assert_eq!(claim(Some(&lease), "b", at(60)), held("a"));
    }

    #[test]
    fn a_holder_that_never_renewed_nor_said_for_how_long_may_be_taken_over() {
        let no_times = LeaseSpec {
            renew_time: None,
            acquire_time: None,
            ..held_by("a", 0)
        };
        let no_duration = LeaseSpec {
            lease_duration_seconds: None,
            ..held_by("a", 0)
        };
        for lease in [no_times, no_duration] {
            assert!(matches!(
                claim(Some(&lease), "b", at(1)),
                Claim::Expired { .. }
            ));
        }
    }

    #[test]
    fn a_lease_held_by_this_identity_is_ours_even_after_a_restart() {
        assert_eq!(claim(Some(&held_by("a", 10)), "a", at(11)), Claim::Ours);
        assert_eq!(claim(Some(&held_by("a", 10)), "a", at(3600)), Claim::Ours);
    }

    #[test]
    fn a_created_lease_names_this_process_and_counts_no_transition() {
        let spec = taken(None, &config("a"), at(5));
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(5))));
        assert_eq!(spec.renew_time, Some(MicroTime(at(5))));
        assert_eq!(spec.lease_transitions, Some(0));
    }

    #[test]
    fn taking_over_counts_a_transition_and_restarts_the_acquire_time() {
        let spec = taken(Some(&held_by("a", 10)), &config("b"), at(40));
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(40))));
        assert_eq!(spec.renew_time, Some(MicroTime(at(40))));
        assert_eq!(spec.lease_transitions, Some(4));
    }

    #[test]
    fn taking_a_released_lease_counts_a_transition() {
        let free = released(Some(&held_by("a", 10)));
        let spec = taken(Some(&free), &config("b"), at(12));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.lease_duration_seconds, Some(15));
    }

    #[test]
    fn taking_back_our_own_lease_keeps_the_acquire_time_and_transitions() {
        let spec = taken(Some(&held_by("a", 10)), &config("a"), at(40));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(spec.lease_transitions, Some(3));
    }

    #[test]
    fn a_renewal_moves_only_the_renew_time() {
        let before = held_by("a", 10);
        let after = renewed(Some(&before), at(15));
        assert_eq!(
            after,
            LeaseSpec {
                renew_time: Some(MicroTime(at(15))),
                ..before
            }
        );
    }

    #[test]
    fn a_released_lease_is_free_at_once_for_everyone() {
        let spec = released(Some(&held_by("a", 10)));
        assert_eq!(spec.holder_identity, None);
        assert_eq!(claim(Some(&spec), "b", at(10)), Claim::Free);
        assert!(expires_at(&spec).is_some_and(|t| t <= at(11)));
    }

    #[test]
    fn the_leader_steps_down_before_a_standby_may_take_over() {
        let config = config("a");
        assert!(config.renew_deadline() < config.lease_duration);
        assert!(config.renew_deadline() >= config.renew_every);
    }

    #[test]
    fn a_standby_takes_over_within_20_seconds_of_the_last_renewal() {
        let config = config("b");
        assert!(config.lease_duration + config.retry_every <= Duration::from_secs(20));
    }

    #[test]
    fn durations_are_written_in_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_secs(15)), 15);
        assert_eq!(whole_seconds(Duration::from_millis(500)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
