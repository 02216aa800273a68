//! The emulator's control endpoints: its call counters, and faults injected
//! into the calls of one caller.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::EnvInfo;

/// One row of the emulator's counters.
#[derive(Debug, Deserialize)]
pub struct Counter {
    pub action: String,
    pub caller: String,
    pub outcome: String,
    pub count: u64,
}

/// The emulator's call counters.
#[derive(Debug, Deserialize)]
pub struct Counters {
    pub counters: Vec<Counter>,
}

impl Counters {
    /// Calls of `action` by `caller` (a role ARN), any outcome.
    pub fn calls(&self, action: &str, caller: &str) -> u64 {
        self.counters
            .iter()
            .filter(|c| c.action == action && c.caller == caller)
            .map(|c| c.count)
            .sum()
    }

    /// Calls of `action` by `caller` per outcome.
    pub fn outcomes(&self, action: &str, caller: &str) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for c in self
            .counters
            .iter()
            .filter(|c| c.action == action && c.caller == caller)
        {
            *out.entry(c.outcome.clone()).or_default() += c.count;
        }
        out
    }
}

pub async fn counters(info: &EnvInfo) -> anyhow::Result<Counters> {
    let body = control(info, "GET", "/_fidelity/counters", None).await?;
    serde_json::from_str(&body).context("parsing the emulator's counters")
}

/// Makes the next `count` calls of `action` by `caller` (a role ARN) fail
/// with `kind`: `throttle`, `unavailable` or `hang`.
pub async fn inject_fault(
    info: &EnvInfo,
    caller: &str,
    action: &str,
    kind: &str,
    count: u32,
) -> anyhow::Result<()> {
    let body =
        json!({ "action": action, "kind": kind, "count": count, "caller": caller, "seconds": 8 });
    control(info, "POST", "/_fidelity/faults", Some(body))
        .await
        .map(drop)
}

/// Clears the faults injected for `caller`.
pub async fn clear_faults(info: &EnvInfo, caller: &str) -> anyhow::Result<()> {
    let path = format!("/_fidelity/faults?caller={caller}");
    control(info, "DELETE", &path, None).await.map(drop)
}

/// A plain HTTP/1.1 request to the emulator's control endpoints.
async fn control(
    info: &EnvInfo,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<String> {
    let authority = info
        .aws_endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP answer")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 2") || head.starts_with("HTTP/1.0 2"),
        "{method} {path}: {head}"
    );
    Ok(body.to_owned())
}
