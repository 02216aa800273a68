//! What the operator tells about itself: logs and metrics.

pub mod logs;
pub mod metrics;
