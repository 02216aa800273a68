//! Listening, connections, and what becomes of each request.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::Shared;
use super::faults::Fate;
use super::log::{Logged, is_watch};
use super::watch;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type Body = UnsyncBoxBody<Bytes, BoxError>;
pub(super) type Upstream = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// Accepts connections on `addr` (first on `listener`) until the proxy is
/// dropped; while refusing, does not listen at all.
pub(super) async fn listen(listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) {
    let mut control = shared.control.subscribe();
    let mut listener = Some(listener);
    // Connections accepted into a black hole: open, never read, also after
    // the hole closes (as after a network partition, their client must give
    // up on them); closed when the proxy refuses or stops.
    let mut held: Vec<TcpStream> = Vec::new();
    loop {
        if control.borrow().faults.refuse {
            drop(listener.take());
            held.clear();
            if control.wait_for(|s| !s.faults.refuse).await.is_err() {
                return;
            }
        }
        let bound = match listener.take() {
            Some(bound) => bound,
            None => match bind(addr) {
                Ok(bound) => bound,
                Err(error) => {
                    eprintln!(
                        "the fault proxy could not listen on {addr} again: {error}; retrying"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        loop {
            tokio::select! {
                accepted = bound.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    if control.borrow().faults.black_hole {
                        held.push(tcp);
                    } else {
                        tokio::spawn(connection(tcp, shared.clone()));
                    }
                }
                changed = control.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let refuse = {
                        let now = control.borrow_and_update();
                        now.faults.refuse || now.stopped
                    };
                    if refuse {
                        break;
                    }
                }
            }
        }
        if control.borrow().stopped {
            return;
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

/// Serves one connection until it ends, or until the proxy refuses or stops.
async fn connection(tcp: TcpStream, shared: Arc<Shared>) {
    let mut control = shared.control.subscribe();
    let Ok(tls) = shared.acceptor.accept(tcp).await else {
        return;
    };
    let handler = shared.clone();
    let service = hyper::service::service_fn(move |request| handle(request, handler.clone()));
    let serving =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service);
    tokio::select! {
        _ = serving => {}
        _ = control.wait_for(|s| s.faults.refuse || s.stopped) => {}
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, BoxError> {
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let watch = is_watch(&path);
    let fate = fate(&shared, &path, watch);
    let log = |status: Option<u16>, by_proxy: bool| {
        let entry = Logged {
            at: shared.started.elapsed(),
            method: method.clone(),
            path: path.clone(),
            status,
            by_proxy,
        };
        shared
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
    };
    match fate {
        Fate::Held => {
            log(None, true);
            // Never, as when packets are dropped: the client must give up.
            let mut control = shared.control.subscribe();
            let _ = control.wait_for(|s| s.stopped).await;
            Err("the fault proxy stopped".into())
        }
        Fate::Answered {
            status,
            retry_after,
        } => {
            log(Some(status), true);
            Ok(status_response(status, retry_after))
        }
        Fate::Expired => {
            log(Some(200), true);
            Ok(json_response(200, None, watch::gone_event()))
        }
        Fate::Forwarded => {
            let (mut parts, body) = request.into_parts();
            parts.uri = format!("{}{path}", shared.upstream).parse()?;
            parts.headers.remove(HOST);
            let forwarded = Request::from_parts(parts, body.map_err(BoxError::from).boxed_unsync());
            match shared.client.request(forwarded).await {
                Ok(response) => {
                    log(Some(response.status().as_u16()), false);
                    let (parts, body) = response.into_parts();
                    let body = if watch {
                        watch::body(body, shared.control.subscribe())
                    } else {
                        body.map_err(BoxError::from).boxed_unsync()
                    };
                    Ok(Response::from_parts(parts, body))
                }
                Err(error) => {
                    eprintln!("the fault proxy could not reach the API server: {error}");
                    log(Some(502), true);
                    Ok(status_response(502, None))
                }
            }
        }
    }
}

/// The request's fate by the faults now on; an armed expiry is used up.
fn fate(shared: &Shared, path: &str, watch: bool) -> Fate {
    let fate = Fate::of(&shared.control.borrow().faults, watch);
    if fate != Fate::Forwarded || !watch {
        return fate;
    }
    let resource = path.split('?').next().unwrap_or_default();
    let mut expired = false;
    shared.control.send_if_modified(|s| {
        let armed = s
            .expire_next
            .iter()
            .position(|r| resource.contains(r.as_str()));
        if let Some(i) = armed {
            s.expire_next.remove(i);
            expired = true;
        }
        expired
    });
    if expired {
        Fate::Expired
    } else {
        Fate::Forwarded
    }
}

/// A `Status` as the API server answers it.
fn status_response(status: u16, retry_after: Option<u32>) -> Response<Body> {
    let reason = match status {
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    let mut body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{reason} (fault proxy)"), "reason": reason, "code": status,
    });
    if let Some(seconds) = retry_after {
        body["details"] = serde_json::json!({"retryAfterSeconds": seconds});
    }
    json_response(status, retry_after, Bytes::from(body.to_string()))
}

fn json_response(status: u16, retry_after: Option<u32>, body: Bytes) -> Response<Body> {
    let mut response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json");
    if let Some(seconds) = retry_after {
        response = response.header(RETRY_AFTER, seconds.to_string());
    }
    response
        .body(Full::new(body).map_err(BoxError::from).boxed_unsync())
        .unwrap()
}
