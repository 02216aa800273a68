//! Integration tests on a real control plane and the AWS emulator.
//! Each test gets its own namespace, AWS resources and operator process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admission;
mod api;
mod apiserver_faults;
mod check;
mod cross_account;
mod identity;
mod leader;
mod operations;
mod policy;
mod redaction;
mod seed;
mod sync;
