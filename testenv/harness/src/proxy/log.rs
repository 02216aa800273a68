//! What the proxy saw: one entry per request.

use std::time::Duration;

/// One request, as the proxy saw and answered it.
#[derive(Clone, Debug)]
pub struct Logged {
    /// Since the proxy started.
    pub at: Duration,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `None`: never answered (a black hole).
    pub status: Option<u16>,
    /// Whether the proxy answered itself (a fault) rather than the API server.
    pub by_proxy: bool,
}

impl Logged {
    /// A watch request.
    pub fn is_watch(&self) -> bool {
        is_watch(&self.path)
    }
}

/// Whether a request's path and query ask for a watch.
pub fn is_watch(path: &str) -> bool {
    path.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1")
    })
}

/// The requests in `log` made between `from` and `to` (since the proxy
/// started).
pub fn between(log: &[Logged], from: Duration, to: Duration) -> Vec<&Logged> {
    log.iter().filter(|l| l.at >= from && l.at < to).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_are_told_by_their_query() {
        assert!(is_watch(
            "/api/v1/secrets?labelSelector=a&watch=true&timeoutSeconds=60"
        ));
        assert!(!is_watch("/api/v1/secrets?limit=500"));
        assert!(!is_watch("/apis/x/v1/watchers"));
    }
}
