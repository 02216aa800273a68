//! The client of the API server: every request bounded in time, 429s
//! waited out as the server asks.
//!
//! Without a deadline, a request to an API server that accepts and never
//! answers waits forever, and a reconcile, a watch restart or a Lease
//! renewal with it: each request, retries included, gets
//! [`REQUEST_TIMEOUT`] until its response's headers. Watches are long
//! requests, but their headers come at once, and the watcher gives up on a
//! stream silent for longer than [`WATCH_TIMEOUT`] (plus 5 s).
//!
//! A 429 (or 503, 504) is retried a few times, with exponential backoff but
//! never sooner than its `Retry-After`; and after a 429 no request of the
//! process goes out before that time ([`super::retry_after`]).
//!
//! Every request but watches also waits its turn at the client's own pace
//! ([`super::pace`]), retries included.
//!
//! The stack, outermost first: deadline → retries → pace → Retry-After gate
//! → buffer (so that retries can clone the service) → kube's own stack
//! (without its retries, which the deadline could cut before the gate
//! learnt of their 429s).

use std::time::Duration;

use kube::Client;
use kube::client::ClientBuilder;
use kube::client::retry::RetryPolicy;
use tower::buffer::BufferLayer;
use tower::retry::RetryLayer;
use tower::timeout::TimeoutLayer;

use super::pace::{Pace, PaceLayer};
use super::retry_after::RetryAfterLayer;

/// Until the response's headers, retries after 429 included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Retries of a 429, 503 or 504 before the caller sees it.
pub const RETRIES: u32 = 4;

/// TCP connect and TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a watch request lasts before the server ends it and the watcher
/// starts the next: also how soon a watch that stopped delivering anything
/// (a black-holed connection) is given up (plus 5 s, the watcher's margin).
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// A client from the environment (in-cluster or `KUBECONFIG`) with the
/// timeouts above, at `pace`.
pub async fn connect(pace: Pace) -> anyhow::Result<Client> {
    let mut config = kube::Config::infer().await?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    Ok(with_timeouts(config, pace)?)
}

fn with_timeouts(mut config: kube::Config, pace: Pace) -> Result<Client, kube::Error> {
    config.default_retry = false;
    let retries = RetryPolicy::new(
        Duration::from_millis(500),
        Duration::from_secs(10),
        RETRIES,
        true,
    )
    .map_err(|e| kube::Error::Service(e.into()))?;
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&BufferLayer::<http::Request<kube::client::Body>>::new(1024))
        .with_layer(&RetryAfterLayer::default())
        .with_layer(&PaceLayer::new(pace))
        .with_layer(&RetryLayer::new(retries))
        .with_layer(&TimeoutLayer::new(REQUEST_TIMEOUT))
        .build())
}

/// Objects per page of a watch's list. A page is held whole while it is
/// read, every object with its managedFields (which the cache drops only
/// after), and a restart lists both the SsmParameters, with their status,
/// and their Secrets: at kube's default of 500, that burst was 10 MB at
/// 10,000 objects and the highest the process's memory went.
pub const LIST_PAGE: u32 = 100;

/// The watcher settings of every watch: [`WATCH_TIMEOUT`], lists of
/// [`LIST_PAGE`] objects a page.
pub fn watch_config() -> kube::runtime::watcher::Config {
    kube::runtime::watcher::Config::default()
        .timeout(whole_seconds(WATCH_TIMEOUT))
        .page_size(LIST_PAGE)
}

fn whole_seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_ends_before_a_request_would_time_out_twice() {
        // The watcher gives a silent watch WATCH_TIMEOUT + 5 s.
        assert!(WATCH_TIMEOUT > REQUEST_TIMEOUT);
        assert_eq!(watch_config().timeout, Some(60));
    }

    #[test]
    fn a_watch_lists_in_pages_of_list_page() {
        assert_eq!(watch_config().page_size, Some(LIST_PAGE));
    }

    #[tokio::test]
    async fn a_request_that_is_never_answered_fails_after_the_request_timeout() {
        tokio::time::pause();
        // Accepts, and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let pace = Pace {
            qps: 100.0,
            burst: 100,
        };
        let client = with_timeouts(config, pace).unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client, "default");
        let started = tokio::time::Instant::now();
        let error = api.get("s").await.unwrap_err();
        assert!(error.to_string().contains("timed out"), "{error}");
        assert!(started.elapsed() >= REQUEST_TIMEOUT);
    }
}
