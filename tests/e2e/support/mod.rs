pub mod aws;
pub mod env;
pub mod scenario;

pub use scenario::{DEADLINE, Scenario, eventually, kubectl};
