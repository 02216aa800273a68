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

/// A fault of the emulator (its README lists the kinds): a refusal
/// (`throttle`, `unavailable`, `hang`, `expired_token`, `invalid_signature`,
/// `idp_communication_error`, `kms_throttle`, `kms_internal`) or a broken
/// answer (`partial`, `empty`, `cut_page`, `end_early`, `bad_token`,
/// `short_lived`).
#[derive(Clone, Debug)]
pub struct Fault {
    action: String,
    kind: String,
    count: u32,
    seconds: f64,
    keep: Option<u32>,
    names: Option<Vec<String>>,
    code: Option<String>,
}

impl Fault {
    /// The next call of `action` (`ssm:GetParameters`, …) answers `kind`.
    pub fn new(action: &str, kind: &str) -> Self {
        Self {
            action: action.to_owned(),
            kind: kind.to_owned(),
            count: 1,
            seconds: 8.0,
            keep: None,
            names: None,
            code: None,
        }
    }

    /// The next `count` calls.
    pub fn count(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// How long a `hang` lasts, or how long `short_lived` credentials live.
    pub fn seconds(mut self, seconds: f64) -> Self {
        self.seconds = seconds;
        self
    }

    /// How many parameters a `cut_page` or `end_early` page keeps.
    pub fn keep(mut self, keep: u32) -> Self {
        self.keep = Some(keep);
        self
    }

    /// The names a `partial` answer leaves out (default: the last asked).
    pub fn names(mut self, names: &[&str]) -> Self {
        self.names = Some(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    /// SSM's error code around a `kms_throttle` or `kms_internal`.
    pub fn code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    fn body(&self, caller: &str) -> Value {
        let mut body = json!({
            "action": self.action, "kind": self.kind, "count": self.count,
            "seconds": self.seconds, "caller": caller,
        });
        if let Some(keep) = self.keep {
            body["keep"] = json!(keep);
        }
        if let Some(names) = &self.names {
            body["names"] = json!(names);
        }
        if let Some(code) = &self.code {
            body["code"] = json!(code);
        }
        body
    }
}

/// Injects `fault` into the calls of `caller` (a role ARN).
pub async fn inject(info: &EnvInfo, caller: &str, fault: &Fault) -> anyhow::Result<()> {
    control(info, "POST", "/_fidelity/faults", Some(fault.body(caller)))
        .await
        .map(drop)
}

/// Puts KMS key `key_arn` in `state` (`PendingImport`, `Unavailable`, …),
/// which moto's API cannot reach.
pub async fn set_key_state(info: &EnvInfo, key_arn: &str, state: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({"key": key_arn, "state": state});
    control(info, "PUT", "/_fidelity/key-state", Some(body))
        .await
        .map(drop)
}

/// An EKS Pod Identity association: `service_account` of `namespace` in
/// `cluster` gets credentials of `role_arn` from the agent.
pub struct PodIdentityAssociation<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub role_arn: &'a str,
}

/// Associates a role with a ServiceAccount in the emulator's Pod Identity
/// agent (EKS CreatePodIdentityAssociation, which moto does not serve).
pub async fn associate_pod_identity(
    info: &EnvInfo,
    association: &PodIdentityAssociation<'_>,
) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "cluster": association.cluster,
        "namespace": association.namespace,
        "serviceAccount": association.service_account,
        "roleArn": association.role_arn,
    });
    control(
        info,
        "PUT",
        "/_fidelity/pod-identity-association",
        Some(body),
    )
    .await
    .map(drop)
}

/// Where the emulator serves the Pod Identity agent's credentials.
pub fn pod_identity_agent_uri(info: &EnvInfo) -> String {
    format!(
        "{}/_pod-identity/v1/credentials",
        info.aws_endpoint.trim_end_matches('/')
    )
}

/// How many calls the faults of `caller` still have to hit, per kind.
pub async fn pending_faults(info: &EnvInfo, caller: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let body = control(info, "GET", "/_fidelity/faults", None).await?;
    let listed: Value = serde_json::from_str(&body).context("parsing the emulator's faults")?;
    let mut pending = BTreeMap::new();
    for fault in listed["faults"].as_array().into_iter().flatten() {
        if fault["caller"] == caller {
            let kind = fault["kind"].as_str().unwrap_or_default().to_owned();
            *pending.entry(kind).or_default() += fault["count"].as_u64().unwrap_or_default();
        }
    }
    Ok(pending)
}

/// Clears the faults injected for `caller`.
pub async fn clear_faults(info: &EnvInfo, caller: &str) -> anyhow::Result<()> {
    let path = format!("/_fidelity/faults?caller={caller}");
    control(info, "DELETE", &path, None).await.map(drop)
}

/// A plain HTTP/1.1 request to the emulator's control endpoints.
pub(crate) async fn control(
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
