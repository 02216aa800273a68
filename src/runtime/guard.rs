//! Each reconcile bounded in time, and a panic in one reconcile told on its
//! object (`Synced=False`, reason `InternalError`, one Warning) and retried
//! with backoff, instead of ending the process and every other object's sync
//! with it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use kube::runtime::controller::Action;

use crate::api::{SsmParameter, SyncError};
use crate::failpoint;
use crate::reconcile::report::events::{self, Announcement};
use crate::reconcile::status::{self, SyncOutcome};
use crate::reconcile::{self, Context, ReconcileError, plan};
use crate::telemetry::metrics::Outcome;

/// Longer than a few API requests and AWS reads with their own timeouts
/// and retries; a reconcile still running then is dropped and retried.
pub const RECONCILE_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a guarded reconcile did not complete.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    #[error("the reconcile did not finish within {} s", .0.as_secs())]
    TimedOut(Duration),
    /// Its message is not kept: it could quote a value.
    #[error("the reconcile panicked")]
    Panicked,
}

/// What the controller runs for one SsmParameter.
pub async fn reconcile(obj: Arc<SsmParameter>, ctx: Arc<Context>) -> Result<Action, Failure> {
    let started = tokio::time::Instant::now();
    let work = async {
        failpoint::panic_in_reconcile(&obj);
        reconcile::reconcile(obj.clone(), ctx.clone()).await
    };
    match bounded(work, RECONCILE_TIMEOUT).await {
        Ok(done) => Ok(done?),
        Err(Failure::Panicked) => {
            tell_internal_error(&obj, &ctx).await;
            let took = tokio::time::Instant::now() - started;
            let reason = SyncError::InternalError.reason();
            ctx.metrics
                .reconciled(Outcome::Failed, reason.as_str(), took);
            Err(Failure::Panicked)
        }
        Err(other) => Err(other),
    }
}

/// `work`, unless it panics or takes longer than `limit`.
async fn bounded<T>(work: impl Future<Output = T>, limit: Duration) -> Result<T, Failure> {
    match tokio::time::timeout(limit, AssertUnwindSafe(work).catch_unwind()).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(_panic)) => Err(Failure::Panicked),
        Err(_) => Err(Failure::TimedOut(limit)),
    }
}

/// `Synced=False` with `InternalError`; `Ready` stays as true as it was (the
/// Secret keeps what the last good sync wrote). Written, and announced with
/// a Warning, only when it changes: a panic that repeats writes nothing.
async fn tell_internal_error(obj: &SsmParameter, ctx: &Context) {
    let old = obj.status.as_ref();
    let last_good = status::find(old, status::READY).is_some_and(|c| c.status == "True");
    let outcome = SyncOutcome::Failed {
        error: SyncError::InternalError,
        last_good,
    };
    let secret_name = plan::secret_name(obj);
    let new = status::next(
        old,
        obj.metadata.generation,
        &secret_name,
        &outcome,
        &status::now(),
    );
    if old != Some(&new)
        && let Err(error) = status::write(obj, &new, &ctx.client).await
    {
        let error = ReconcileError::from(error);
        tracing::warn!(%error, "could not write the InternalError condition");
        return;
    }
    let announcement = Announcement {
        written: None,
        new_failure: status::new_failure(old, &new),
        restart_failures: &[],
    };
    events::publish(obj, &ctx.recorder, &new, announcement).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_caught_as_a_failure() {
        #[allow(clippy::panic)]
        let work = async { panic!("a value that must not be kept") };
        let caught: Result<(), Failure> = bounded(work, Duration::from_secs(1)).await;
        assert!(matches!(caught, Err(Failure::Panicked)));
        assert_eq!(Failure::Panicked.to_string(), "the reconcile panicked");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconcile_that_never_ends_times_out() {
        let hung = bounded(std::future::pending::<()>(), RECONCILE_TIMEOUT).await;
        assert!(matches!(hung, Err(Failure::TimedOut(_))));
    }

    #[tokio::test]
    async fn a_finished_reconcile_passes_through() {
        let done = bounded(async { 7 }, Duration::from_secs(1)).await;
        assert!(matches!(done, Ok(7)));
    }
}
