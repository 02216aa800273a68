//! ssm-operator keeps Kubernetes Secrets in sync with AWS Systems Manager
//! Parameter Store, and says exactly why in status when AWS refuses.
//!
//! The folders, bottom up (nothing imports upward):
//!
//! - [`names`]: every name the operator owns (field manager, labels, annotations).
//! - [`api`]: the SsmParameter types, condition reasons, `SecretValue`. No IO.
//! - [`telemetry`]: logs and metrics.
//! - [`aws`]: the seam to AWS — Parameter Store, credentials, error classification.
//! - [`batch`]: reads of many SsmParameters coalesced into few calls, under a rate budget.
//! - [`reconcile`]: the path of one SsmParameter, one step per file; its
//!   `mod.rs` is the pipeline.
//! - [`events`]: Parameter Store change events, and which SsmParameters
//!   read the changed parameter.
//! - [`cluster`]: ClusterSsmParameter — an SsmParameter kept in each chosen
//!   namespace, and a status gathered from theirs.
//! - [`runtime`]: the running process — controller, leader election, admin server.
//! - [`commands`]: the command line, one file per subcommand.
//! - [`failpoint`]: where test builds can be made to crash.

pub mod api;
pub mod aws;
pub mod batch;
pub mod cluster;
pub mod commands;
pub mod events;
pub mod failpoint;
pub mod names;
pub mod reconcile;
pub mod runtime;
pub mod telemetry;
#[cfg(test)]
pub mod testing;
