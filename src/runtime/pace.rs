//! The client's own request rate, as client-go's QPS and burst: at most
//! `burst` requests at once, then `qps` a second, shared by every request of
//! the process but watches (which last for minutes and are not work the API
//! server does per second).
//!
//! Thousands of SsmParameters syncing at once would otherwise send their
//! Secret, status and Event writes as fast as the API server accepts them;
//! the API server then answers 504s and its watches fall behind, for this
//! operator and everyone else.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::Request;
use tokio::time::Instant;
use tower::Layer;

use super::held::{Held, Hold};

/// Requests per second, and how many may go at once after a quiet spell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    pub qps: f64,
    pub burst: u32,
}

/// Shares one bucket among every request of a client.
#[derive(Clone)]
pub struct PaceLayer {
    bucket: Arc<Mutex<Bucket>>,
}

pub struct Bucket {
    pace: Pace,
    /// Tokens at `at`; below zero, requests have reserved the future.
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes a token; how long the request must wait for it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let burst = f64::from(self.pace.burst.max(1));
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * self.pace.qps;
        self.tokens = (self.tokens + earned).min(burst) - 1.0;
        self.at = now;
        match self.tokens < 0.0 {
            true => Duration::from_secs_f64(-self.tokens / self.pace.qps),
            false => Duration::ZERO,
        }
    }
}

impl PaceLayer {
    pub fn new(pace: Pace) -> Self {
        let pace = Pace {
            qps: pace.qps.max(0.1),
            burst: pace.burst.max(1),
        };
        Self {
            bucket: Arc::new(Mutex::new(Bucket {
                pace,
                tokens: f64::from(pace.burst),
                at: Instant::now(),
            })),
        }
    }
}

impl<S> Layer<S> for PaceLayer {
    type Service = Held<S, Turns>;

    fn layer(&self, inner: S) -> Self::Service {
        Held {
            inner,
            hold: Turns(self.bucket.clone()),
        }
    }
}

/// Each request's turn from the shared bucket; watches need none.
#[derive(Clone)]
pub struct Turns(Arc<Mutex<Bucket>>);

impl Hold for Turns {
    fn until<R>(&self, request: &Request<R>) -> Option<Instant> {
        if is_watch(request) {
            return None;
        }
        let now = Instant::now();
        let wait = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reserve(now);
        (!wait.is_zero()).then(|| now + wait)
    }
}

fn is_watch<R>(request: &Request<R>) -> bool {
    request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Response;
    use tower::{BoxError, Service, ServiceExt as _};

    fn server(
        sent: Arc<Mutex<Vec<Instant>>>,
    ) -> impl Service<Request<()>, Response = Response<()>, Error = BoxError, Future: Send>
    + Clone
    + Send
    + 'static {
        tower::service_fn(move |_: Request<()>| {
            let sent = sent.clone();
            async move {
                sent.lock().unwrap().push(Instant::now());
                Ok::<_, BoxError>(Response::new(()))
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_burst_go_at_the_pace() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let client = PaceLayer::new(Pace {
            qps: 10.0,
            burst: 5,
        })
        .layer(server(sent.clone()));
        let start = Instant::now();
        let requests = (0..25).map(|_| client.clone().oneshot(Request::new(())));
        futures::future::join_all(requests).await;
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 25);
        assert_eq!(sent.iter().filter(|t| **t == start).count(), 5, "the burst");
        // The other 20 at 10 a second.
        let last = *sent.iter().max().unwrap() - start;
        assert!(
            last >= Duration::from_millis(1900) && last <= Duration::from_millis(2100),
            "{last:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn watches_do_not_wait_for_the_pace() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let client = PaceLayer::new(Pace { qps: 1.0, burst: 1 }).layer(server(sent.clone()));
        let start = Instant::now();
        let watch = || {
            Request::get("/api/v1/secrets?watch=true&labelSelector=a")
                .body(())
                .unwrap()
        };
        let requests = (0..5).map(|_| client.clone().oneshot(watch()));
        futures::future::join_all(requests).await;
        let sent = sent.lock().unwrap();
        assert!(sent.iter().all(|t| *t == start), "{sent:?}");
    }
}
