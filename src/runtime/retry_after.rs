//! The API server's `Retry-After` honoured by the whole client: after a 429,
//! no request of this process is sent before the time it names — neither a
//! retry of the same request nor the next request of a caller that gave up
//! (a watcher restarting after its own short backoff, say).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower::Layer;

use super::held::{Held, Hold};

/// A longer wait than this is cut to it: a request waits at most this long
/// for its turn, and its own deadline decides the rest.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Shares one "not before" among every request of a client.
#[derive(Clone, Default)]
pub struct RetryAfterLayer {
    not_before: Arc<Mutex<Option<Instant>>>,
}

impl<S> Layer<S> for RetryAfterLayer {
    type Service = Held<S, NotBefore>;

    fn layer(&self, inner: S) -> Self::Service {
        Held {
            inner,
            hold: NotBefore(self.not_before.clone()),
        }
    }
}

/// The latest `Retry-After` of any answer, shared by every request.
#[derive(Clone)]
pub struct NotBefore(Arc<Mutex<Option<Instant>>>);

impl Hold for NotBefore {
    fn until<R>(&self, _request: &Request<R>) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn answered<B>(&self, response: &Response<B>) {
        if let Some(after) = retry_after(response) {
            let at = Instant::now() + after;
            let mut latest = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            *latest = Some(latest.map_or(at, |l| l.max(at)));
        }
    }
}

/// The wait a 429 asks for, in whole seconds as the API server sends it.
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    if response.status() != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let seconds: u64 = response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{BoxError, ServiceExt as _};

    fn answer(status: u16, retry_after: Option<&str>) -> Response<()> {
        let mut response = Response::builder().status(status);
        if let Some(value) = retry_after {
            response = response.header("Retry-After", value);
        }
        response.body(()).unwrap()
    }

    #[test]
    fn only_a_429_with_whole_seconds_asks_to_wait_and_long_waits_are_capped() {
        assert_eq!(
            retry_after(&answer(429, Some("2"))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&answer(429, Some("3600"))),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(&answer(429, None)), None);
        assert_eq!(retry_after(&answer(429, Some("soon"))), None);
        assert_eq!(retry_after(&answer(503, Some("2"))), None);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_429_the_next_request_waits_for_retry_after() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        let server = tower::service_fn(move |_: Request<()>| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                log.push(Instant::now());
                let status = if log.len() == 1 { 429 } else { 200 };
                Ok::<_, BoxError>(answer(status, Some("2")))
            }
        });
        let client = RetryAfterLayer::default().layer(server);
        let start = Instant::now();
        let first = client.clone().oneshot(Request::new(())).await.unwrap();
        assert_eq!(first.status(), 429);
        let second = client.clone().oneshot(Request::new(())).await.unwrap();
        assert_eq!(second.status(), 200);
        let sent = sent.lock().unwrap();
        assert_eq!(sent[0], start);
        assert!(sent[1] - sent[0] >= Duration::from_secs(2));
    }
}
