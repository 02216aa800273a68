//! The admin server: liveness and readiness for the kubelet, metrics for
//! Prometheus.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::telemetry::metrics::{self, Metrics};

/// What the handlers read.
#[derive(Clone)]
struct Admin {
    metrics: Arc<Metrics>,
    /// True once the caches are synced and reconciles reflect the cluster.
    ready: watch::Receiver<bool>,
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `addr` until `shutdown`
/// resolves, then lets requests in flight finish.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the admin server to {addr}"))?;
    serve_on(listener, metrics, ready, shutdown).await
}

async fn serve_on(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "admin server listening");
    axum::serve(listener, router(Admin { metrics, ready }))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the admin endpoints")
}

fn router(admin: Admin) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(admin)
}

/// The process answers, so it is alive.
async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(admin): State<Admin>) -> (StatusCode, &'static str) {
    if *admin.ready.borrow() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn render_metrics(State(admin): State<Admin>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, metrics::CONTENT_TYPE)],
        admin.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    struct Response {
        status: u16,
        content_type: Option<String>,
        body: String,
    }

    /// A server on a free local port; dropping the sender stops it.
    async fn start(
        metrics: Arc<Metrics>,
        ready: watch::Receiver<bool>,
    ) -> (
        SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_on(listener, metrics, ready, async {
            let _ = stopped.await;
        }));
        (addr, stop, server)
    }

    /// A plain HTTP/1.1 GET, the way the kubelet's probes and Prometheus ask.
    async fn get(addr: SocketAddr, path: &str) -> Response {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let raw = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut raw = String::new();
            stream.read_to_string(&mut raw).unwrap();
            raw
        })
        .await
        .unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        let content_type = lines
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| value.trim().to_owned());
        Response {
            status: status.parse().unwrap(),
            content_type,
            body: body.to_owned(),
        }
    }

    #[tokio::test]
    async fn healthz_is_ok_while_the_process_runs_even_before_ready() {
        let (_ready, not_ready) = watch::channel(false);
        let (addr, _stop, _server) = start(Arc::default(), not_ready).await;
        let response = get(addr, "/healthz").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "ok");
    }

    #[tokio::test]
    async fn readyz_is_unavailable_until_ready_then_ok() {
        let (ready, readiness) = watch::channel(false);
        let (addr, _stop, _server) = start(Arc::default(), readiness).await;
        let before = get(addr, "/readyz").await;
        assert_eq!((before.status, before.body.as_str()), (503, "not ready"));
        ready.send_replace(true);
        let after = get(addr, "/readyz").await;
        assert_eq!((after.status, after.body.as_str()), (200, "ready"));
    }

    #[tokio::test]
    async fn metrics_serves_the_openmetrics_text() {
        let metrics = Arc::new(Metrics::new());
        metrics.secret_written("created");
        let (_ready, readiness) = watch::channel(true);
        let (addr, _stop, _server) = start(metrics, readiness).await;
        let response = get(addr, "/metrics").await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.content_type.as_deref(),
            Some(metrics::CONTENT_TYPE)
        );
        assert!(
            response
                .body
                .contains(r#"ssm_operator_secret_writes_total{action="created"} 1"#),
            "{}",
            response.body
        );
        assert!(response.body.ends_with("# EOF\n"));
    }

    #[tokio::test]
    async fn an_unknown_path_is_not_found() {
        let (_ready, readiness) = watch::channel(true);
        let (addr, _stop, _server) = start(Arc::default(), readiness).await;
        assert_eq!(get(addr, "/debug").await.status, 404);
    }

    #[tokio::test]
    async fn the_server_stops_when_shutdown_resolves() {
        let (_ready, readiness) = watch::channel(true);
        let (addr, stop, server) = start(Arc::default(), readiness).await;
        assert_eq!(get(addr, "/healthz").await.status, 200);
        stop.send(()).unwrap();
        let stopped = tokio::time::timeout(Duration::from_secs(5), server).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    }

    #[tokio::test]
    async fn serve_reports_an_address_it_cannot_bind() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let (_ready, readiness) = watch::channel(true);
        let error = serve(addr, Arc::default(), readiness, std::future::pending())
            .await
            .unwrap_err();
        assert!(error.to_string().contains(&addr.to_string()), "{error:#}");
    }
}
