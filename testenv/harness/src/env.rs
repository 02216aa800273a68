//! The shared test environment: a real control plane and the AWS emulator,
//! started once per test binary by `testenv/env.py` and stopped by it when
//! this process exits (its stdin closes).

use std::io::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;

use anyhow::{Context as _, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use serde::Deserialize;
use tokio::sync::OnceCell;

pub const REGION: &str = "ap-northeast-1";
pub const ACCOUNT: &str = "123456789012";

/// What the supervisor reports once everything is ready.
#[derive(Debug, Deserialize)]
pub struct EnvInfo {
    pub kubeconfig: PathBuf,
    pub apiserver: String,
    pub ca_file: PathBuf,
    pub aws_endpoint: String,
    pub oidc_issuer: String,
    /// One JSON line per write request the API server served, and per read
    /// of a ServiceAccount outside kube-system (the operator's).
    pub audit_log: PathBuf,
    /// Certificates, kubeconfigs, etcd's data and logs: every process of
    /// the environment names it on its command line.
    pub workdir: PathBuf,
    /// The node's name, in an environment started with one
    /// ([`shared_with_node`]).
    #[serde(default)]
    pub node: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Report {
    Ready(EnvInfo),
    Failed { error: String },
}

static ENV: OnceCell<EnvInfo> = OnceCell::const_new();
// Held for the life of the process: its stdin is the supervisor's lifeline.
static SUPERVISOR: Mutex<Option<Child>> = Mutex::new(None);

/// The environment, started on first use.
pub async fn shared() -> &'static EnvInfo {
    started(false).await
}

/// The environment with a node that runs Pods (`testenv/node.py`), its
/// runtime holding the operator's image (`make image`). Call it before
/// anything else of the process starts the environment.
pub async fn shared_with_node() -> &'static EnvInfo {
    let env = started(true).await;
    assert!(
        env.node.is_some(),
        "this process's test environment was started without a node"
    );
    env
}

/// The process's environment, started (with a node or not) on first use.
async fn started(node: bool) -> &'static EnvInfo {
    match ENV.get_or_try_init(|| start(node)).await {
        Ok(env) => env,
        Err(error) => panic!("the test environment could not start: {error:#}"),
    }
}

/// The OCI archive of the operator's image that `make image` builds.
pub fn operator_image_archive() -> PathBuf {
    cache().join("images/ssm-operator.oci.tar")
}

/// The reference of the operator's image in the node's runtime.
pub const OPERATOR_IMAGE: (&str, &str) = ("ssm-operator.local/ssm-operator", "dev");

/// The workload image in the node's runtime (Debian's busybox-static).
pub const WORKLOAD_IMAGE: &str = "ssm-operator.local/busybox:1";

/// The repository: this crate lives in `testenv/harness/`.
fn repo() -> PathBuf {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    harness.ancestors().nth(2).unwrap_or(harness).to_path_buf()
}

fn cache() -> PathBuf {
    std::env::var_os("SSM_OPERATOR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/ssm-operator")
        })
}

/// The venv python written by `testenv/setup.sh` into `$CACHE/env.sh`.
fn python() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("SSM_OPERATOR_TESTENV_PYTHON") {
        return Ok(p.into());
    }
    let env_sh = cache().join("env.sh");
    let text = std::fs::read_to_string(&env_sh).with_context(|| {
        format!(
            "{} is missing: the test environment is not set up; run `make testenv` (or `make test`) first",
            env_sh.display()
        )
    })?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export SSM_OPERATOR_TESTENV_PYTHON="))
        .map(|v| PathBuf::from(v.trim_matches(['"', '\''])))
        .next()
        .with_context(|| format!("{} names no SSM_OPERATOR_TESTENV_PYTHON", env_sh.display()))
}

async fn start(node: bool) -> anyhow::Result<EnvInfo> {
    let info = tokio::task::spawn_blocking(move || start_supervisor(node)).await??;
    let client = admin_client(&info).await?;
    install_crd(&client).await?;
    register_oidc_provider(&info).await?;
    Ok(info)
}

/// Names the directory of a test run (`make test` makes one under the
/// cache) that keeps the audit log of every environment of the run and the
/// chart installs of the operator, for the RBAC check that runs after the
/// suite (`deploy/tests/test_rbac_used.py`).
pub const AUDIT_RUN: &str = "SSM_OPERATOR_AUDIT_RUN";

/// The directory of this test run, when the run keeps its audit logs.
pub fn audit_run() -> Option<PathBuf> {
    std::env::var_os(AUDIT_RUN)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
}

/// Notes in the run's directory that the chart was installed as `release`
/// into `namespace` for the operator's ServiceAccount `service_account`,
/// with these `--set` values: the RBAC check renders the same.
pub fn record_chart_install(namespace: &str, release: &str, service_account: &str, set: &[String]) {
    let Some(run) = audit_run() else { return };
    let line = serde_json::json!({
        "namespace": namespace, "release": release,
        "serviceAccount": service_account, "set": set,
    });
    // One short line per write, appended: parallel tests never interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run.join("chart-installs.jsonl"))
        .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
    if let Err(error) = written {
        panic!(
            "cannot note the chart install in {}: {error}",
            run.display()
        );
    }
}

/// Set to `floor`, the environment's API server is the one of the chart's
/// kubeVersion floor (`testenv/controlplane/floor`) and no controller manager
/// runs: `make test` runs the admission cases there too.
pub const KUBE: &str = "SSM_OPERATOR_TESTENV_KUBE";

/// Whether this process runs on the API server of the chart's floor.
pub fn floor() -> bool {
    match std::env::var(KUBE) {
        Ok(kube) if kube == "floor" => true,
        Ok(kube) if kube.is_empty() || kube == "current" => false,
        Ok(other) => panic!("{KUBE}={other:?}: expected `floor` or `current`"),
        Err(_) => false,
    }
}

/// The Kubernetes version this process's API server should be: the one its
/// `testenv/controlplane` module (or `floor/`) pins.
pub fn kubernetes_version() -> String {
    let module = if floor() {
        "testenv/controlplane/floor/go.mod"
    } else {
        "testenv/controlplane/go.mod"
    };
    let go_mod = std::fs::read_to_string(repo().join(module))
        .unwrap_or_else(|e| panic!("cannot read {module}: {e}"));
    go_mod
        .lines()
        .find_map(|line| line.trim().strip_prefix("require k8s.io/kubernetes "))
        .or_else(|| {
            go_mod
                .lines()
                .find_map(|line| line.trim().strip_prefix("k8s.io/kubernetes "))
        })
        .map(|version| version.trim().to_owned())
        .unwrap_or_else(|| panic!("{module} requires no k8s.io/kubernetes"))
}

fn start_supervisor(node: bool) -> anyhow::Result<EnvInfo> {
    let workdir = tempfile::Builder::new()
        .prefix("ssm-operator-e2e-")
        .tempdir()?
        .keep();
    let mut supervisor = Command::new(python()?);
    supervisor
        .arg(repo().join("testenv/env.py"))
        .arg("--workdir")
        .arg(&workdir);
    if floor() {
        supervisor.arg("--floor");
    }
    if node {
        let image = operator_image_archive();
        if !image.exists() {
            bail!(
                "{} is missing: `make image` builds the operator's image (`make test` does it first)",
                image.display()
            );
        }
        supervisor
            .args(["--components", "kube,aws,node", "--image"])
            .arg(image);
    }
    if let Some(run) = audit_run() {
        // One file per environment: a run may start several (one per test binary).
        let binary = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tests".to_owned());
        let log = run.join(format!("{binary}-{}.audit.jsonl", std::process::id()));
        supervisor.arg("--audit-log").arg(log);
    }
    let mut child = supervisor
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting testenv/env.py")?;
    let stdout = child.stdout.take().context("supervisor stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    *SUPERVISOR.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
    match serde_json::from_str::<Report>(&line) {
        Ok(Report::Ready(info)) => Ok(info),
        Ok(Report::Failed { error }) => bail!("{error}"),
        Err(_) => {
            bail!("testenv/env.py said {line:?} instead of its JSON report (see its stderr above)")
        }
    }
}

/// The helm binary `deploy/helm.sh` builds (once) into the cache.
pub fn helm() -> PathBuf {
    static HELM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HELM.get_or_init(|| {
        let out = Command::new(repo().join("deploy/helm.sh"))
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("deploy/helm.sh could not run: {e}"));
        assert!(
            out.status.success(),
            "deploy/helm.sh could not provide helm"
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// The chart's directory.
pub fn chart() -> PathBuf {
    repo().join("deploy/ssm-operator")
}

/// A client with the administrator's kubeconfig, for this test's runtime.
pub async fn admin_client(info: &EnvInfo) -> anyhow::Result<Client> {
    let kubeconfig = Kubeconfig::read_from(&info.kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

async fn install_crd(client: &Client) -> anyhow::Result<()> {
    for kind in ssm_operator::api::CrdKind::ALL {
        install_one_crd(client, kind.crd()).await?;
    }
    Ok(())
}

async fn install_one_crd(client: &Client, crd: CustomResourceDefinition) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    crds.patch(
        &name,
        &PatchParams::apply("ssm-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .with_context(|| format!("the CRD {name} was not established within 30 s"))??;
    Ok(())
}

async fn register_oidc_provider(info: &EnvInfo) -> anyhow::Result<()> {
    let iam = crate::aws::admin_iam(info).await;
    let url = info.oidc_issuer.clone();
    iam.create_open_id_connect_provider()
        .url(url)
        .client_id_list("sts.amazonaws.com")
        .thumbprint_list("9e99a48a9960b14926bb7f3b02e22da2b0ab7280")
        .send()
        .await
        .context("registering the cluster's OIDC issuer in IAM")?;
    Ok(())
}

/// Runs `kubectl` against the environment as the administrator.
pub fn kubectl(env: &EnvInfo, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("kubectl must be installed")
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}
