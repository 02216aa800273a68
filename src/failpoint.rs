//! Places where a test build of the operator fails when told to, so that
//! tests can prove what a crash or a panic leaves behind:
//! `SSM_OPERATOR_FAILPOINT=<name>` aborts the process at that point (whatever
//! a crash interrupts must be finished, once, by the next reconcile), and
//! `SSM_OPERATOR_FAILPOINT_PANIC=<namespace>/<name>` makes every reconcile of
//! that SsmParameter panic. Compiled only with the `failpoints` feature,
//! which the test harness turns on; in every other build these are empty.

/// Right after the Secret is written, before status, rollouts and Events.
pub const AFTER_SECRET_WRITE: &str = "after-secret-write";
/// Right after the status is written, before the Events.
pub const AFTER_STATUS_WRITE: &str = "after-status-write";
/// A change event received, before anything is done with it.
pub const CHANGE_EVENT_RECEIVED: &str = "change-event-received";
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

/// Panics if `obj` is the SsmParameter named by `SSM_OPERATOR_FAILPOINT_PANIC`.
#[cfg(feature = "failpoints")]
#[allow(clippy::panic, reason = "a panic on demand is the point")]
pub fn panic_in_reconcile(obj: &crate::api::SsmParameter) {
    use kube::ResourceExt as _;
    let Ok(wanted) = std::env::var("SSM_OPERATOR_FAILPOINT_PANIC") else {
        return;
    };
    let object = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    if wanted == object {
        panic!("failpoint: a panic in the reconcile of {object}");
    }
}

/// Panics on demand: never, in this build.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn panic_in_reconcile(_obj: &crate::api::SsmParameter) {}
