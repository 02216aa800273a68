//! What the operator tells about itself: logs and metrics.

pub mod census;
pub mod logs;
pub mod metrics;
