//! Failures on demand for the end-to-end tests, compiled into debug builds
//! only: a release build neither reads the variable nor fails on purpose.
//!
//! `SSM_OPERATOR_FAILPOINT_PANIC=<namespace>/<name>` makes every reconcile
//! of that SsmParameter panic.

use crate::api::SsmParameter;

#[cfg(debug_assertions)]
#[allow(clippy::panic, reason = "a panic on demand is the point")]
pub fn panic_in_reconcile(obj: &SsmParameter) {
    use kube::ResourceExt as _;
    let Ok(wanted) = std::env::var("SSM_OPERATOR_FAILPOINT_PANIC") else {
        return;
    };
    let object = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    if wanted == object {
        panic!("failpoint: a panic in the reconcile of {object}");
    }
}

#[cfg(not(debug_assertions))]
pub fn panic_in_reconcile(_obj: &SsmParameter) {}
