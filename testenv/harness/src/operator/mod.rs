//! The operator process, run as a Pod would run it — with a ServiceAccount
//! token for the API server and an IRSA token for AWS ([`identity`]): its
//! start and stop, its log, one-shot commands, and what it wrote.

pub mod identity;

use std::path::PathBuf;
use std::process::{ExitStatus, Output, Stdio};

use kube::Client;
use serde_json::Value;

use crate::env::{EnvInfo, REGION};
use identity::{
    AwsCredentials, POD_IDENTITY_CLUSTER, PodIdentity, Rbac, SERVICE_ACCOUNT, pod_identity, subject,
};

/// Where an operator runs: as ServiceAccount [`SERVICE_ACCOUNT`] of
/// `namespace`, set up by the administrator's client `kube`, its files in a
/// fresh directory whose name starts with `prefix`.
#[derive(Clone, Copy)]
pub struct Site<'a> {
    pub env: &'static EnvInfo,
    pub kube: &'a Client,
    pub namespace: &'a str,
    pub prefix: &'a str,
}

/// How to start the operator, beyond the defaults.
#[derive(Default)]
pub struct OperatorOptions {
    /// The API server's address in the operator's kubeconfig (default: the
    /// environment's); a [`crate::proxy::FaultProxy`]'s puts it in front.
    pub api_server: Option<String>,
    /// More `ssm-operator run` flags.
    pub args: Vec<String>,
    /// More namespaces to watch.
    pub also_watch: Vec<String>,
    /// The web identity token file's content (default: a fresh token).
    pub aws_token: Option<String>,
    /// How the operator gets its AWS credentials (default: IRSA). With EKS
    /// Pod Identity, the role is associated with the operator's
    /// ServiceAccount in the emulator's agent.
    pub aws_credentials: AwsCredentials,
    /// Run with leader election, under this name in the Lease.
    pub leader: Option<String>,
    /// The process's name (for logs and the Lease).
    pub name: String,
    /// Install the chart's namespaced RBAC (Role per watched namespace).
    pub namespaced_rbac: bool,
    /// Keep the chart's default tenancy: no namespace may read with the
    /// operator's own identity. Otherwise the admin of the test lists the
    /// watched namespaces (`--operator-identity-namespaces`), unless `args`
    /// say otherwise.
    pub tenants_only: bool,
    /// More environment variables (e.g. `SSM_OPERATOR_FAILPOINT`, see
    /// `ssm_operator::failpoint`).
    pub env: Vec<(String, String)>,
    /// `SSM_OPERATOR_LOG_LEVEL` (default: debug, with the libraries at info).
    pub log_level: Option<String>,
}

/// The operator process; killed when dropped.
pub struct Operator {
    child: tokio::process::Child,
    pub log: PathBuf,
    /// Address of its `/healthz`, `/readyz` and `/metrics`.
    pub admin: String,
    pub name: String,
}

impl Operator {
    /// Kills the process at once (SIGKILL): no lease release, nothing.
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// Asks the process to stop (SIGTERM) and waits for it.
    pub async fn terminate(&mut self) -> ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        self.child.wait().await.expect("wait for the operator")
    }

    /// Its peak resident memory so far, in MiB (`VmHWM`), while it runs.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        self.status_kib("VmHWM:").map(|kib| kib / 1024.0)
    }

    /// Its resident memory now, in MiB (`VmRSS`), while it runs.
    pub fn rss_mib(&self) -> Option<f64> {
        self.status_kib("VmRSS:").map(|kib| kib / 1024.0)
    }

    /// The CPU time it used so far (user and system), while it runs.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds_of(self.child.id()?)
    }

    fn status_kib(&self, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Its exit status, once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Everything it logged so far.
    pub fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many reconciles of `object` (`namespace/name`) it finished with
    /// `reason` (`Synced`, or the reason of a failure), by its log. A
    /// reconcile logs its outcome after all its writes (Secret, status,
    /// rollouts, Events), so this tells when they have all landed.
    pub fn finished_reconciles(&self, object: &str, reason: &str) -> usize {
        self.logged()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["message"] == "synced" || l["message"] == "sync failed")
            .filter(|l| l["span"]["ssm_parameter"] == object && l["reason"] == reason)
            .count()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// `USER_HZ`, the unit of `/proc/<pid>/stat`'s CPU times: 100 on Linux.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The CPU time process `pid` used so far (user and system), in seconds.
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / CLOCK_TICKS_PER_SECOND)
}

const DEFAULT_LOG_LEVEL: &str = "debug,hyper=info,kube_client=info,aws_smithy_runtime=info,aws_config=info,h2=info,rustls=info,tower=info";

/// GET `path` from the admin server at `addr` (plain HTTP/1.1): the status
/// code and the body.
pub async fn admin_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((code, body))
}

/// Starts `ssm-operator run` at `site`, assuming `role_arn` through IRSA.
pub async fn start(site: Site<'_>, role_arn: &str, options: OperatorOptions) -> Operator {
    let rbac = Rbac {
        leader_election: options.leader.is_some(),
        namespaced: options.namespaced_rbac,
    };
    let server = options.api_server.as_deref();
    let credentials = options.aws_credentials;
    let identity = pod_identity(site, rbac, options.aws_token.clone(), server, credentials).await;
    if credentials == AwsCredentials::EksPodIdentity {
        let association = crate::aws::PodIdentityAssociation {
            cluster: POD_IDENTITY_CLUSTER,
            namespace: site.namespace,
            service_account: SERVICE_ACCOUNT,
            role_arn,
        };
        crate::aws::associate_pod_identity(site.env, &association)
            .await
            .expect("the emulator takes the Pod Identity association");
    }
    let mut watched = vec![site.namespace.to_owned()];
    watched.extend(options.also_watch);
    let tenancy_chosen = options
        .args
        .iter()
        .any(|a| a.starts_with("--operator-identity-namespaces"));
    let operator_identity = match options.tenants_only || tenancy_chosen {
        true => Vec::new(),
        false => vec![format!(
            "--operator-identity-namespaces={}",
            watched.join(",")
        )],
    };
    let log = identity.dir.join("operator.log");
    let admin = free_port();
    let child = pod_command(site, &identity, role_arn)
        .args([
            "run",
            "--watch-namespaces",
            &watched.join(","),
            "--log-format",
            "json",
        ])
        .args(["--http-addr", &format!("127.0.0.1:{admin}")])
        .args(match &options.leader {
            Some(_) => vec![
                "--leader-elect=true".to_owned(),
                "--lease-namespace".to_owned(),
                site.namespace.to_owned(),
            ],
            None => Vec::new(),
        })
        .args(&operator_identity)
        .args(&options.args)
        .env(
            "POD_NAME",
            options.leader.as_deref().unwrap_or("ssm-operator"),
        )
        .envs(options.env.iter().map(|(k, v)| (k, v)))
        .env(
            "SSM_OPERATOR_LOG_LEVEL",
            options.log_level.as_deref().unwrap_or(DEFAULT_LOG_LEVEL),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start the operator");
    Operator {
        child,
        log,
        admin: format!("127.0.0.1:{admin}"),
        name: options.name,
    }
}

/// Runs `ssm-operator <args>` to completion at `site` with the operator's
/// identity and environment, as `kubectl exec` into its Pod would.
pub async fn run_command(site: Site<'_>, role_arn: &str, args: &[&str]) -> Output {
    let identity = pod_identity(site, Rbac::default(), None, None, AwsCredentials::Irsa).await;
    pod_command(site, &identity, role_arn)
        .args(args)
        .output()
        .await
        .expect("run ssm-operator")
}

/// The operator binary with nothing but a Pod's environment.
fn pod_command(site: Site<'_>, identity: &PodIdentity, role_arn: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBECONFIG", &identity.kubeconfig)
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", &site.env.aws_endpoint);
    match identity.credentials {
        // What EKS's Pod Identity webhook sets in a Pod (EKS User Guide,
        // "Understand how EKS Pod Identity works"), with the emulator's
        // endpoint where the agent listens on 169.254.170.23.
        AwsCredentials::EksPodIdentity => command
            .env(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                crate::aws::pod_identity_agent_uri(site.env),
            )
            .env(
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                &identity.aws_token_file,
            ),
        AwsCredentials::Irsa => command
            .env("AWS_ROLE_ARN", role_arn)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &identity.aws_token_file),
    };
    // jemalloc's options, for profiles and allocator experiments (the
    // `heap-profile` build reads `prof:true` from here).
    if let Some(conf) = std::env::var_os("_RJEM_MALLOC_CONF") {
        command.env("_RJEM_MALLOC_CONF", conf);
    }
    command
}

/// One write request of the operator, by the API server's audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audited {
    /// `create`, `update`, `patch` or `delete`.
    pub verb: String,
    /// `secrets`, `deployments`, …
    pub resource: String,
    /// `status`, `token`, or empty.
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The response's status code.
    pub code: u16,
}

/// The write requests (create, update, patch, delete) the operator's
/// ServiceAccount in namespace `ns` made so far, in order, by the audit log
/// (which records every write before answering it).
pub fn audited_writes(env: &EnvInfo, ns: &str) -> Vec<Audited> {
    let user = subject(ns, SERVICE_ACCOUNT);
    let log = std::fs::read_to_string(&env.audit_log).unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["user"]["username"] == user.as_str())
        .filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete")
            )
        })
        .map(|e| Audited {
            verb: text(&e["verb"]),
            resource: text(&e["objectRef"]["resource"]),
            subresource: text(&e["objectRef"]["subresource"]),
            namespace: text(&e["objectRef"]["namespace"]),
            name: text(&e["objectRef"]["name"]),
            code: e["responseStatus"]["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or_default(),
        })
        .collect()
}

/// The request URIs of the lists (not watches) of `resource` the operator
/// of namespace `ns` made so far, in order, by the audit log.
pub fn audited_lists(env: &EnvInfo, ns: &str, resource: &str) -> Vec<String> {
    let user = subject(ns, SERVICE_ACCOUNT);
    let log = std::fs::read_to_string(&env.audit_log).unwrap_or_default();
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["user"]["username"] == user.as_str() && e["verb"] == "list")
        .filter(|e| e["objectRef"]["resource"] == resource)
        .map(|e| e["requestURI"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// How many write requests the operator of namespace `ns` made so far.
pub fn writes(env: &EnvInfo, ns: &str) -> usize {
    audited_writes(env, ns).len()
}

/// Write requests with one of `verbs` the operator of namespace `ns` made
/// so far on `resource` (`secrets`, `leases`, …; `None`: any).
pub fn audited(env: &EnvInfo, ns: &str, verbs: &[&str], resource: Option<&str>) -> usize {
    audited_writes(env, ns)
        .iter()
        .filter(|w| verbs.contains(&w.verb.as_str()))
        .filter(|w| resource.is_none_or(|r| w.resource == r))
        .count()
}

/// One write of a Secret, by the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretWrite {
    /// `create`, `update`, `patch` or `delete`.
    pub verb: String,
    pub name: String,
}

/// The Secret writes the operator's ServiceAccount in namespace `ns` made
/// in `ns` so far, in order.
pub fn secret_writes(env: &EnvInfo, ns: &str) -> Vec<SecretWrite> {
    audited_writes(env, ns)
        .into_iter()
        .filter(|w| w.resource == "secrets" && w.namespace == ns)
        .map(|w| SecretWrite {
            verb: w.verb,
            name: w.name,
        })
        .collect()
}

/// The operator binary in the target directory of the test (or example)
/// that runs this: `ssm-operator` in the profile's directory (a test runs
/// from `target/<profile>/deps/`, an example from `target/<profile>/examples/`).
/// Cargo builds a binary only for the tests of its own package, so `make
/// test` and `make demo` build it first.
pub fn binary() -> PathBuf {
    // The benchmark runs a release build it names.
    if let Some(path) = std::env::var_os("SSM_OPERATOR_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    let path = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("ssm-operator");
    assert!(
        path.exists(),
        "{} is missing: `make test` builds it before the tests; alone, `cargo build --bin ssm-operator --features failpoints`",
        path.display()
    );
    path
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
