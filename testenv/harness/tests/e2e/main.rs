//! Integration tests on a real control plane and the AWS emulator.
//! Each test gets its own namespace, AWS resources and operator process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admission;
mod api;
mod apiserver_faults;
mod aws_faults;
mod bounds;
mod change_events;
mod check;
mod cluster;
mod convert;
mod crash;
mod cross_account;
mod identity;
mod key_ids;
mod leader;
mod operations;
mod ownership;
mod pod_identity;
mod policy;
mod redaction;
mod seed;
mod shaping;
mod sync;
mod unwritable;
