//! How a parameter read is attempted: up to [`MAX_ATTEMPTS`] times, retrying
//! what the SDK's standard retry mode retries, with its backoff — but each
//! retry also waits for a [`RetryGate`] (the read budget), so that a retry
//! counts against AWS's quota as a first attempt does.
//!
//! The SDK's own retries are off for the parameter reads: they went out
//! unpaced, so that one throttle, or one attempt that timed out while AWS
//! still counted it, sent more reads than the budget allowed — and those
//! were throttled in turn.

use std::time::Duration;

use futures::future::BoxFuture;

use super::Scope;
use super::classify::{AwsFailure, FailureKind};

/// As the SDK's standard mode: the first attempt and two retries.
pub const MAX_ATTEMPTS: u32 = 3;

/// The SDK's standard mode: a retry waits a random time up to
/// `INITIAL_BACKOFF * 2^(retry - 1)`, at most `MAX_BACKOFF`.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Error codes the SDK's standard mode retries as throttling (the
/// `aws-runtime` crate's `THROTTLING_ERRORS`, of which SSM answers
/// `ThrottlingException`).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];
/// And as transient (its `TRANSIENT_ERRORS`).
const TRANSIENT: &[&str] = &["RequestTimeout", "RequestTimeoutException"];
/// HTTP statuses it retries whatever the code (`TRANSIENT_ERROR_STATUS_CODES`).
const TRANSIENT_STATUSES: &[u16] = &[500, 502, 503, 504];

/// Why a failed attempt is worth another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// AWS throttled it.
    Throttled,
    /// No answer, or a server error.
    Transient,
}

impl Retry {
    /// What the SDK's standard mode would retry, and as what.
    pub fn of(failure: &AwsFailure) -> Option<Self> {
        let code = failure.code.as_deref().unwrap_or_default();
        if THROTTLING.contains(&code) {
            return Some(Self::Throttled);
        }
        let transient = matches!(failure.kind, FailureKind::Timeout | FailureKind::Transport)
            || TRANSIENT.contains(&code)
            || failure
                .status
                .is_some_and(|s| TRANSIENT_STATUSES.contains(&s));
        transient.then_some(Self::Transient)
    }
}

/// What a retry waits for besides its backoff.
pub trait RetryGate: Send + Sync {
    /// Returns when a retry of a read of `scope` may go out; `why` is what
    /// became of the attempt before.
    fn before_retry<'a>(&'a self, scope: &'a Scope, why: Retry) -> BoxFuture<'a, ()>;
}

/// The attempts of one read.
pub struct Attempts<'a> {
    gate: Option<&'a dyn RetryGate>,
    scope: &'a Scope,
    made: u32,
}

impl<'a> Attempts<'a> {
    pub fn new(gate: Option<&'a dyn RetryGate>, scope: &'a Scope) -> Self {
        Self {
            gate,
            scope,
            made: 1,
        }
    }

    /// After a failed attempt: true, once the next may go out, if the
    /// failure is worth it and attempts are left; false to give up.
    pub async fn again(&mut self, failure: &AwsFailure) -> bool {
        let Some(why) = Retry::of(failure).filter(|_| self.made < MAX_ATTEMPTS) else {
            return false;
        };
        tokio::time::sleep(backoff(self.made, rand::random::<f64>())).await;
        if let Some(gate) = self.gate {
            gate.before_retry(self.scope, why).await;
        }
        self.made += 1;
        true
    }
}

/// The wait before retry number `retry` (1 for the first), for a random
/// `fraction` in [0, 1).
fn backoff(retry: u32, fraction: f64) -> Duration {
    let ceiling = INITIAL_BACKOFF.saturating_mul(1 << retry.saturating_sub(1).min(16));
    ceiling.min(MAX_BACKOFF).mul_f64(fraction.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: FailureKind, code: Option<&str>, status: Option<u16>) -> AwsFailure {
        AwsFailure {
            kind,
            code: code.map(str::to_owned),
            message: None,
            status,
        }
    }

    #[test]
    fn retries_what_the_sdks_standard_mode_retries() {
        let service = FailureKind::Service;
        let cases = [
            (
                failure(service, Some("ThrottlingException"), Some(400)),
                Some(Retry::Throttled),
            ),
            (
                failure(service, Some("InternalServerError"), Some(500)),
                Some(Retry::Transient),
            ),
            (failure(service, None, Some(503)), Some(Retry::Transient)),
            (
                failure(service, Some("RequestTimeout"), Some(400)),
                Some(Retry::Transient),
            ),
            (
                failure(FailureKind::Timeout, None, None),
                Some(Retry::Transient),
            ),
            (
                failure(FailureKind::Transport, None, None),
                Some(Retry::Transient),
            ),
            (
                failure(service, Some("AccessDeniedException"), Some(400)),
                None,
            ),
            (failure(service, Some("ParameterNotFound"), Some(400)), None),
            // KMS's throttle inside SSM's InvalidKeyId is not retried by the
            // SDK either: its code is not a throttling code.
            (failure(service, Some("InvalidKeyId"), Some(400)), None),
        ];
        for (failure, retry) in cases {
            assert_eq!(Retry::of(&failure), retry, "{failure:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        assert_eq!(backoff(1, 0.5), Duration::from_millis(500));
        assert_eq!(backoff(2, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(3, 0.999), Duration::from_secs(4).mul_f64(0.999));
        assert_eq!(backoff(40, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(1, 0.0), Duration::ZERO);
    }

    struct Counting(std::sync::Mutex<Vec<Retry>>);

    impl RetryGate for Counting {
        fn before_retry<'a>(&'a self, _: &'a Scope, why: Retry) -> BoxFuture<'a, ()> {
            self.0.lock().unwrap().push(why);
            Box::pin(async {})
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_retry_passes_the_gate_and_attempts_stop_at_three() {
        let gate = Counting(Default::default());
        let scope = Scope::operator("ap-northeast-1");
        let mut attempts = Attempts::new(Some(&gate), &scope);
        let throttled = failure(FailureKind::Service, Some("ThrottlingException"), Some(400));
        assert!(attempts.again(&throttled).await);
        assert!(
            attempts
                .again(&failure(FailureKind::Timeout, None, None))
                .await
        );
        assert!(!attempts.again(&throttled).await, "a fourth attempt");
        assert_eq!(
            *gate.0.lock().unwrap(),
            [Retry::Throttled, Retry::Transient]
        );
        let denied = failure(
            FailureKind::Service,
            Some("AccessDeniedException"),
            Some(400),
        );
        assert!(!Attempts::new(Some(&gate), &scope).again(&denied).await);
        assert_eq!(gate.0.lock().unwrap().len(), 2, "no retry of a refusal");
    }
}
