//! Telling what a sync did: Events, and rollouts of the workloads that read
//! the Secret.

pub mod events;
pub mod rollout;
