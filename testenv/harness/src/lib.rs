//! The end-to-end harness of ssm-operator, shared by the integration tests
//! (`tests/e2e`) and the demo (`examples/demo.rs`) of this crate.
//!
//! One module per role:
//!
//! - [`env`]: the environment — the control plane and the AWS emulator,
//!   started once per process, and the administrator's kubeconfig;
//! - [`aws`]: AWS as an administrator sets it up (keys, parameters, roles,
//!   policies) and the emulator's control endpoints (counters, faults);
//! - [`cluster`]: a test's objects in the API server (namespaces,
//!   SsmParameters, Secrets, Events);
//! - [`operator`]: the operator process — its identity, start, stop, logs
//!   and one-shot commands;
//! - [`wait`]: waiting with a deadline — [`eventually`] and the waits built
//!   on it or on a watch;
//! - [`manifest`]: the SsmParameter manifests the tests apply;
//! - [`proxy`]: a fault proxy in front of the API server, with a request log;
//! - [`chart`]: the operator installed by Helm, as a Pod on the node;
//! - [`pods`]: workloads on the node that mount Secrets, and `kubectl exec`;
//!
//! and [`Scenario`], one test's world, which ties them together.
// Test support: a failed set-up step fails the test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod aws;
pub mod chart;
pub mod cluster;
pub mod env;
pub mod manifest;
pub mod operator;
pub mod pods;
pub mod proxy;
pub mod scenario;
pub mod wait;

pub use aws::key_id;
pub use env::kubectl;
pub use operator::{Operator, OperatorOptions};
pub use scenario::Scenario;
pub use wait::{DEADLINE, eventually};
