pub mod aws;
pub mod env;
pub mod scenario;

pub use scenario::{DEADLINE, OperatorOptions, Scenario, eventually, kubectl};

/// The key id of a KMS key ARN (the emulator's key-admin calls take ids).
pub fn key_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
