//! Places where a test build of the operator dies on the spot when told to
//! (`SSM_OPERATOR_FAILPOINT=<name>`), so that tests can prove that whatever
//! a crash interrupts is finished, once, by the next reconcile. Compiled only
//! with the `failpoints` feature, which the test harness turns on; in every
//! other build [`hit`] is empty.

/// Right after the Secret is written, before status, rollouts and Events.
pub const AFTER_SECRET_WRITE: &str = "after-secret-write";
/// Right after the status is written, before the Events.
pub const AFTER_STATUS_WRITE: &str = "after-status-write";
/// Between the restarts of two workloads.
pub const BETWEEN_ROLLOUTS: &str = "between-rollouts";

/// Aborts the process if the failpoint `name` is armed.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if std::env::var("SSM_OPERATOR_FAILPOINT").is_ok_and(|armed| armed == name) {
        tracing::error!(failpoint = name, "failpoint hit: aborting");
        std::process::abort();
    }
}

/// Aborts the process if the failpoint `name` is armed: never, in this build.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
