//! A fault proxy in front of kube-apiserver: the operator's kubeconfig
//! points at it, and a test switches faults on and off while the operator
//! runs — 429 with `Retry-After`, 5xx, refused connections, connections
//! accepted and never answered, watch streams cut or ended with 410 Gone —
//! and reads the log of every request it saw.
//!
//! It serves TLS with the API server's own certificate (its names include
//! 127.0.0.1), so the operator trusts it with the environment's CA; the
//! operator's bearer token passes through to the API server unchanged.
//!
//! - [`faults`]: the switches and the one-shot actions;
//! - `serve`: listening, connections, and each request's fate;
//! - `watch`: watch streams that can be cut or expired;
//! - `tls`: the certificates;
//! - [`log`]: what the proxy saw.

pub mod faults;
pub mod log;
mod serve;
mod tls;
mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

use crate::env::EnvInfo;
pub use faults::Faults;
use faults::State;
pub use log::Logged;

/// What the proxy's tasks share.
struct Shared {
    control: signal::Sender<State>,
    log: Mutex<Vec<Logged>>,
    started: tokio::time::Instant,
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: String,
    client: serve::Upstream,
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port, forwarding to the environment's
    /// API server, with no fault on.
    pub async fn start(env: &EnvInfo) -> Self {
        let (control, _) = signal::channel(State::default());
        let shared = Arc::new(Shared {
            control,
            log: Mutex::default(),
            started: tokio::time::Instant::now(),
            acceptor: tls::acceptor(env),
            upstream: env.apiserver.trim_end_matches('/').to_owned(),
            client: tls::upstream(env),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let listener = tokio::spawn(serve::listen(listener, addr, shared.clone()));
        Self {
            addr,
            shared,
            listener,
        }
    }

    /// The address to put in a kubeconfig.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Switches the faults to `faults` (`Faults::default()`: none).
    pub fn set(&self, faults: Faults) {
        self.shared.control.send_modify(|s| s.faults = faults);
    }

    /// Changes the faults in place.
    pub fn change(&self, change: impl FnOnce(&mut Faults)) {
        self.shared.control.send_modify(|s| change(&mut s.faults));
    }

    /// The faults now on.
    pub fn faults(&self) -> Faults {
        self.shared.control.borrow().faults.clone()
    }

    /// Cuts every watch stream open now (the connection breaks mid-stream).
    pub fn cut_watches(&self) {
        self.shared.control.send_modify(|s| s.cuts += 1);
    }

    /// Ends every watch stream open now with a `410 Gone` ERROR event, as
    /// the API server does when the watch's resourceVersion is too old.
    pub fn expire_watches(&self) {
        self.shared.control.send_modify(|s| s.expiries += 1);
    }

    /// Answers the next watch request whose path contains `resource` (e.g.
    /// `ssmparameters`, `secrets`) with a `410 Gone` ERROR event at once, so
    /// that the watcher must list again.
    pub fn expire_next_watch(&self, resource: &str) {
        let resource = resource.to_owned();
        self.shared
            .control
            .send_modify(|s| s.expire_next.push(resource));
    }

    /// Watch expiries armed by [`Self::expire_next_watch`] not yet served.
    pub fn pending_expiries(&self) -> usize {
        self.shared.control.borrow().expire_next.len()
    }

    /// Now, by the clock of [`Logged::at`].
    pub fn now(&self) -> std::time::Duration {
        self.shared.started.elapsed()
    }

    /// Every request the proxy saw, in order.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.listener.abort();
        self.shared.control.send_modify(|s| s.stopped = true);
    }
}
