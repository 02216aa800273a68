//! The path of one SsmParameter, one step per file, and the pipeline that
//! runs them: see [`reconcile`].

pub mod announced;
pub mod apply;
pub mod build;
pub mod cached;
pub mod finalize;
pub mod fingerprint;
pub mod halt;
pub mod key;
pub mod own_status;
pub mod plan;
pub mod read;
pub mod refreshes;
pub mod report;
pub mod schedule;
pub mod seen;
pub mod status;
pub mod takeover;
pub mod tenancy;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use crate::api::{DeletionPolicy, ParameterStatus, Reason, SsmParameter, SyncError, WorkloadRef};
use crate::batch::budget::Priority;
use crate::batch::{Batcher, Reader};
use crate::names::FORCE_SYNC_ANNOTATION;
use crate::reconcile::announced::Announcements;
use crate::reconcile::apply::Written;
use crate::reconcile::build::secret::{self, SecretData};
use crate::reconcile::key::ObjectKey;
use crate::reconcile::own_status::OwnStatus;
use crate::reconcile::plan::Plan;
use crate::reconcile::read::{Depth, Known, Read};
use crate::reconcile::refreshes::Refreshes;
use crate::reconcile::report::events::Recorder;
use crate::reconcile::report::{Synced, Told};
use crate::reconcile::schedule::{Due, Lane, Schedule, SyncBasis};
use crate::reconcile::seen::{Seen, SeenSecrets};
use crate::reconcile::status::SyncOutcome;
use crate::reconcile::tenancy::Tenancy;
use crate::telemetry::metrics::Metrics;
pub use halt::Halt;

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub batcher: Batcher,
    pub default_region: String,
    /// The most parameters one path import may hold.
    pub max_path_parameters: usize,
    pub recorder: Recorder,
    pub schedule: Schedule,
    pub tenancy: Tenancy,
    pub metrics: Arc<Metrics>,
    /// Reconciles running now.
    pub in_flight: AtomicI64,
    /// The Secrets' versions, by the metadata watch.
    pub seen: SeenSecrets,
    /// The statuses written, until the cache has them.
    pub own_status: OwnStatus,
    /// The refreshes booked, by object.
    pub refreshes: Arc<Refreshes>,
    /// Who keeps the SsmParameters of ClusterSsmParameters.
    pub keepers: Arc<dyn tenancy::Keepers>,
    /// SsmParameters a change event said to read again now.
    pub announcements: Announcements,
    /// Every watched scope's SsmParameters.
    pub cached: cached::Cached,
}

impl Context {
    /// Forgets a deleted SsmParameter.
    pub fn forget(&self, obj: &SsmParameter) {
        self.schedule.forget(&ObjectRef::from_obj(obj));
        self.own_status.forget(&ObjectRef::from_obj(obj));
        let key = ObjectKey::of(obj);
        self.refreshes.cancel(&key);
        self.announcements.forget(&key);
        self.metrics.forget(key.as_str());
    }
}

/// The SsmParameters served, counted by state from the caches.
impl crate::telemetry::census::Census for Context {
    fn count(&self) -> std::collections::BTreeMap<crate::telemetry::census::State, u64> {
        crate::telemetry::census::Census::count(&self.cached)
    }
}

/// Failures of the Kubernetes API; retried with backoff by the controller.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API: {}", api_failure(.0))]
    Kube(#[from] kube::Error),
}

/// A failed request by code and reason only, never the API server's message:
/// its refusal of a Secret can quote the Secret's data.
fn api_failure(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(response) => format!("{} {}", response.code, response.reason),
        other => other.to_string(),
    }
}

/// One reconcile, in a span that every log line of it carries (never values).
#[tracing::instrument(
    name = "reconcile",
    skip_all,
    fields(ssm_parameter = %ObjectKey::of(&*obj), generation = obj.metadata.generation)
)]
pub async fn reconcile(
    obj: Arc<SsmParameter>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let _in_flight = InFlight::start(&ctx);
    // Whoever announced a change learns when this reconcile ends.
    let announced = ctx.announcements.take(&ObjectKey::of(&*obj));
    let obj = ctx.own_status.freshest(obj);
    if obj.metadata.deletion_timestamp.is_some() {
        return Ok(finalize::finalize(&obj, &ctx.client, &ctx.recorder).await?);
    }
    // From now on, batches of AWS reads wait for this one's.
    let reader = ctx.batcher.reader();
    let started = tokio::time::Instant::now();
    let mut attempt = Attempt::start(&obj, &ctx, announced.is_some()).await?;
    let synced = match sync(&mut attempt, reader).await {
        Ok(synced) => synced,
        Err(Halt::NotDue(action)) => return Ok(action),
        Err(Halt::Kube(error)) => return Err(error.into()),
        Err(Halt::Failed { error, written }) => attempt.failed(error, written),
    };
    let told = Told {
        obj: &obj,
        secret_name: &attempt.secret_name,
        rollout_restart: &attempt.rollout_restart,
        synced: &synced,
    };
    let reported = report::report(&ctx.client, &ctx.recorder, &told).await?;
    if let Some(status) = reported.status_written.clone() {
        ctx.own_status.wrote(&obj, status);
    }
    report::record(
        &ctx.metrics,
        ObjectKey::of(&*obj).as_str(),
        &synced,
        started,
    );
    Ok(match reported.restarts_pending {
        true => Action::requeue(ctx.schedule.failed(ObjectRef::from_obj(&*obj))),
        false => attempt.next(synced),
    })
}

/// The steps of one sync, each of which may halt it.
async fn sync(attempt: &mut Attempt<'_>, reader: Reader) -> Result<Synced, Halt> {
    let depth = attempt.due()?;
    let plan = attempt.plan().await?;
    attempt.ensure_ours(&plan, depth).await?;
    attempt.guard().await?;
    let read = attempt.read(&plan, depth, reader).await?;
    attempt.apply(&plan, read).await
}

/// The refresh beat of the SsmParameters of the ClusterSsmParameter `uid`:
/// the same in every process.
fn beat_of(uid: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(uid.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

/// One SsmParameter's reconcile: what it found, and what it learnt on the way.
pub struct Attempt<'a> {
    obj: &'a SsmParameter,
    ctx: &'a Context,
    secrets: Api<Secret>,
    /// The Secret as read, once read.
    existing: Option<Secret>,
    /// Whether the Secret was read; until then the metadata watch says it
    /// is as the last good sync left it.
    fetched: bool,
    /// A first sync, and the metadata watch holds no such Secret: it is
    /// taken as absent and created only if it is — read only when the API
    /// server says that its name is taken.
    absent: bool,
    secret_name: String,
    /// What decides whether AWS must be read; its Secret version is the one
    /// the sync leaves.
    basis: SyncBasis,
    /// Whether the identity and the spec allowed a plan.
    planned: bool,
    /// From the plan, once there is one.
    refresh: Option<Duration>,
    rollout_restart: Vec<WorkloadRef>,
    /// Another writer keeps changing the Secret: repair it after this long.
    contested: Option<Duration>,
    /// Which reads of other objects this one's may share a call with.
    lane: Option<Lane>,
    /// What the status says the last good sync was based on.
    recorded: Option<SyncBasis>,
    /// A change event named a parameter this object reads: AWS is read now,
    /// whatever the schedule says, ahead of routine refreshes.
    announced: bool,
}

impl<'a> Attempt<'a> {
    /// Finds the Secret the spec targets: by the metadata watch when that
    /// shows it as the last good sync left it, else by reading it.
    async fn start(
        obj: &'a SsmParameter,
        ctx: &'a Context,
        announced: bool,
    ) -> Result<Self, kube::Error> {
        let namespace = obj.namespace().unwrap_or_default();
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        let secret_name = plan::secret_name(obj);
        let object = ObjectRef::from_obj(obj);
        let seen = ctx.seen.lookup(&namespace, &secret_name);
        let recorded = recorded(obj);
        let left = ctx.schedule.secret_version(&object, recorded.as_ref());
        // After a first sync, the status tells whether it found the name
        // taken: a foreign Secret is read again, not AWS.
        let first = obj.status.is_none() && left.is_none();
        let absent = first && seen == Seen::Absent && !plan::merges(obj);
        let seen = seen.version();
        let mut attempt = Self {
            obj,
            ctx,
            secrets,
            existing: None,
            fetched: false,
            absent,
            secret_name,
            basis: SyncBasis {
                generation: obj.metadata.generation,
                force_sync: obj.annotations().get(FORCE_SYNC_ANNOTATION).cloned(),
                secret_version: seen.clone(),
            },
            planned: false,
            refresh: None,
            rollout_restart: Vec::new(),
            contested: None,
            lane: None,
            recorded,
            announced,
        };
        if seen.is_none() || seen != left {
            attempt.fetch().await?;
        }
        Ok(attempt)
    }

    /// Reads the Secret, unless it was read already or is taken as absent.
    async fn fetch(&mut self) -> Result<(), kube::Error> {
        if !self.fetched && !self.absent {
            self.existing = self.secrets.get_opt(&self.secret_name).await?;
            self.fetched = true;
            self.basis.secret_version = self
                .existing
                .as_ref()
                .and_then(|s| s.metadata.resource_version.clone());
        }
        Ok(())
    }

    /// Whether, and how deep, AWS must be read now.
    fn due(&mut self) -> Result<Depth, Halt> {
        match self.ctx.schedule.due(
            &ObjectRef::from_obj(self.obj),
            &self.basis,
            self.recorded.as_ref(),
        ) {
            Due::Later(_) | Due::Refresh if self.announced => Ok(self.announced_depth()),
            // Triggered by our own write or a no-op event: nothing is due.
            Due::Later(wait) => Err(Halt::NotDue(self.refresh_after(wait))),
            // Merging SsmParameters change their shared Secret by design.
            Due::Contested(wait) if plan::merges(self.obj) => {
                Err(Halt::NotDue(Action::requeue(wait)))
            }
            Due::Contested(wait) => {
                self.contested = Some(wait);
                Err(Halt::from(SyncError::SecretConflict {
                    secret: self.secret_name.clone(),
                    why: format!(
                        "keeps being changed by another writer; it is restored from AWS at most once every {}s while that goes on",
                        schedule::PROMPT_REFILL.as_secs()
                    ),
                }))
            }
            Due::Refresh => Ok(Depth::Changed),
            Due::Full => Ok(Depth::Full),
        }
    }

    /// How to read a parameter a change event announced: one named
    /// parameter at once with decryption (one call, one decrypt); more, or
    /// a path, by a probe first, so that only what changed is decrypted.
    fn announced_depth(&self) -> Depth {
        let spec = &self.obj.spec;
        match (spec.parameters.len(), &spec.path) {
            (1, None) => Depth::Full,
            _ => Depth::Changed,
        }
    }

    /// The identity to read with, and what to read.
    async fn plan(&mut self) -> Result<Plan, Halt> {
        let ctx = self.ctx;
        let identity = tenancy::resolve(self.obj, &ctx.tenancy, &ctx.client, &*ctx.keepers).await?;
        let plan = Plan::of(self.obj, &self.ctx.default_region, identity)?;
        self.planned = true;
        self.refresh = plan.refresh;
        self.rollout_restart = plan.rollout_restart.clone();
        self.lane = plan.lane();
        // The SsmParameters of one ClusterSsmParameter refresh together.
        if let Some((_, uid)) = tenancy::claimed_keeper(self.obj) {
            let lane = self.lane.get_or_insert(Lane {
                key: 0,
                names: 0,
                beat: None,
            });
            lane.beat = Some(beat_of(uid));
        }
        Ok(plan)
    }

    /// A Secret someone else wrote is touched only when it allows a merge
    /// (one unread is as this object's last good sync left it).
    async fn ensure_ours(&mut self, plan: &Plan, depth: Depth) -> Result<(), Halt> {
        if depth == Depth::Full {
            self.fetch().await?;
        }
        if !self.fetched {
            return Ok(());
        }
        Ok(secret::may_write(self.existing.as_ref(), self.obj, plan)?)
    }

    /// Under `creationPolicy: Owner`, the finalizer that keeps the Secret
    /// through a deletion of the CRD, before the Secret refers to `obj`.
    async fn guard(&self) -> Result<(), Halt> {
        if finalize::missing(self.obj) {
            finalize::add(self.obj, &self.ctx.client).await?;
        }
        Ok(())
    }

    /// Reads AWS; under `deletionPolicy: Delete`, removes the Secret of
    /// parameters AWS says are gone.
    async fn read(&mut self, plan: &Plan, depth: Depth, reader: Reader) -> Result<Read, Halt> {
        match self.read_values(plan, depth, reader).await {
            Err(Halt::Failed { error, .. })
                if error.reason() == Reason::ParameterNotFound
                    && plan.deletion == DeletionPolicy::Delete =>
            {
                self.fetch().await?;
                let written = apply::remove(&self.secrets, plan, self.existing.as_ref()).await?;
                Err(Halt::Failed { error, written })
            }
            other => other,
        }
    }

    /// Probes AWS, then reads the Secret and decrypts only when something
    /// changed.
    async fn read_values(
        &mut self,
        plan: &Plan,
        depth: Depth,
        reader: Reader,
    ) -> Result<Read, Halt> {
        let priority = match depth {
            Depth::Full => Priority::Interactive,
            Depth::Changed if self.announced => Priority::Interactive,
            Depth::Changed => Priority::Routine,
        };
        let limit = self.ctx.max_path_parameters;
        let probed = read::probe(plan, reader, priority, depth, &self.known(), limit).await?;
        if let Some(parameters) = probed.unchanged(&self.known()) {
            return Ok(Read::Unchanged(parameters));
        }
        self.fetch().await?;
        secret::may_write(self.existing.as_ref(), self.obj, plan)?;
        Ok(probed.values(plan, &self.known()).await?)
    }

    /// What the Secret holds, as far as this attempt knows.
    fn known(&self) -> Known<'_> {
        let recorded = self.recorded();
        Known {
            by_key: recorded.iter().map(|p| (p.key.as_str(), p)).collect(),
            data: self.existing.as_ref().and_then(|s| s.data.as_ref()),
            as_recorded: !self.fetched && !self.absent,
            recorded,
        }
    }

    /// Makes the Secret the values make, when it differs.
    async fn apply(&mut self, plan: &Plan, read: Read) -> Result<Synced, Halt> {
        let (data, parameters) = match read {
            Read::Unchanged(parameters) => (None, parameters),
            Read::Values(data, parameters) => (Some(data), parameters),
        };
        let fingerprint = Some(fingerprint::of(plan, &parameters));
        let outcome = SyncOutcome::Synced { parameters };
        let Some(data) = data else {
            return Ok(Synced {
                outcome,
                written: None,
                fingerprint,
                secret_version: self.basis.secret_version.clone(),
            });
        };
        let (written, secret_version) = self.write(plan, &data).await?;
        self.ctx
            .schedule
            .wrote(ObjectRef::from_obj(self.obj), secret_version.clone());
        self.basis.secret_version.clone_from(&secret_version);
        Ok(Synced {
            outcome,
            written,
            fingerprint,
            secret_version,
        })
    }

    /// Writes `data` into the Secret: creates one taken as absent, and
    /// when its name is taken after all, reads it and goes the usual way.
    async fn write(
        &mut self,
        plan: &Plan,
        data: &SecretData,
    ) -> Result<(Option<Written>, Option<String>), Halt> {
        if self.absent {
            let desired = secret::desired(self.obj, plan, data, None)?;
            if let Some(created) = apply::create(&self.secrets, plan, desired).await? {
                return Ok(created);
            }
            // Taken by another writer's Secret, or by one the watch has
            // not shown yet.
            self.absent = false;
            self.fetch().await?;
            secret::may_write(self.existing.as_ref(), self.obj, plan)?;
        }
        let desired = secret::desired(self.obj, plan, data, self.existing.as_ref())?;
        let spec_changed = self.obj.status.as_ref().and_then(|s| s.observed_generation)
            != self.obj.metadata.generation;
        let existing = self.existing.as_ref();
        Ok(apply::apply(&self.secrets, plan, existing, &desired, spec_changed).await?)
    }

    /// A failed sync, and whether the Secret still holds the last good values.
    fn failed(&self, error: SyncError, written: Option<Written>) -> Synced {
        let recorded = self.recorded();
        let explicit_keys = (self.obj.spec.parameters.iter())
            .filter(|p| p.extracted_prefix().is_none())
            .map(|p| p.secret_key());
        let recorded_keys = recorded.iter().map(|p| p.key.as_str());
        // An unread Secret is as the last good sync of this spec left it.
        let holds = !self.fetched && !self.absent
            || self
                .existing
                .as_ref()
                .is_some_and(|s| secret::holds_keys(s, recorded_keys.chain(explicit_keys)));
        let last_good = self.planned
            && written.is_none()
            && !matches!(error, SyncError::SecretConflict { .. })
            && !recorded.is_empty()
            && holds;
        Synced {
            outcome: SyncOutcome::Failed { error, last_good },
            written,
            fingerprint: None,
            secret_version: None,
        }
    }

    /// What the status says the Secret holds.
    fn recorded(&self) -> &[ParameterStatus] {
        self.obj
            .status
            .as_ref()
            .map(|s| s.parameters.as_slice())
            .unwrap_or_default()
    }

    /// Books the next refresh (`None`: none, the object waits for a
    /// change); the controller need not requeue the object.
    fn refresh_after(&self, wait: Option<std::time::Duration>) -> Action {
        let object = ObjectKey::of(self.obj);
        match wait {
            Some(wait) => self.ctx.refreshes.book(object, wait),
            None => self.ctx.refreshes.cancel(&object),
        }
        Action::await_change()
    }

    /// When to reconcile again.
    fn next(self, synced: Synced) -> Action {
        let object = ObjectRef::from_obj(self.obj);
        if let Some(wait) = self.contested {
            // The last good sync stands: the fight costs no backoff reset.
            return Action::requeue(wait);
        }
        match &synced.outcome {
            SyncOutcome::Synced { .. } => {
                let wait = (self.ctx.schedule).synced(
                    object,
                    self.basis.clone(),
                    self.refresh,
                    self.lane.as_ref(),
                );
                self.refresh_after(wait)
            }
            SyncOutcome::Failed { error, .. } => {
                schedule::next_attempt(error, self.refresh, self.ctx.schedule.failed(object))
            }
        }
    }
}

/// What the status says the last good sync was based on, if it was good.
fn recorded(obj: &SsmParameter) -> Option<SyncBasis> {
    let status = obj.status.as_ref()?;
    let synced = status
        .conditions
        .iter()
        .any(|c| c.type_ == status::SYNCED && c.status == "True");
    synced.then(|| SyncBasis {
        generation: status.observed_generation,
        // A force-sync value the status does not record may be unanswered.
        force_sync: None,
        secret_version: status.secret_resource_version.clone(),
    })
}

/// Counts a reconcile in flight while it lives.
struct InFlight<'a>(&'a Context);

impl<'a> InFlight<'a> {
    fn start(ctx: &'a Context) -> Self {
        let n = ctx.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        ctx.metrics.queue_depth(n);
        Self(ctx)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let n = self.0.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
        self.0.metrics.queue_depth(n);
    }
}
