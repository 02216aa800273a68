//! One test's world: a namespace, AWS resources named after the test, and an
//! operator process that runs as a Pod would — with a ServiceAccount token
//! for the API server and an IRSA token for AWS.

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use ssm_operator::api::{SsmParameter, SsmParameterStatus};

use super::aws::{admin_iam, admin_kms, admin_ssm};
use super::env::{ACCOUNT, EnvInfo, REGION, admin_client, chart, helm, shared};

/// How long anything the operator should do "within seconds" may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` until it yields a value or `deadline` passes.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > until {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub struct Scenario {
    pub env: &'static EnvInfo,
    pub kube: Client,
    pub iam: aws_sdk_iam::Client,
    pub kms: aws_sdk_kms::Client,
    pub ssm: aws_sdk_ssm::Client,
    /// Unique per test; prefixes every name it creates.
    pub id: String,
    pub namespace: String,
    others: std::sync::Mutex<Vec<String>>,
    operators: Vec<Operator>,
}

/// How to start the operator, beyond the defaults.
#[derive(Default)]
pub struct OperatorOptions {
    /// More `ssm-operator run` flags.
    pub args: Vec<String>,
    /// More namespaces to watch.
    pub also_watch: Vec<String>,
    /// The web identity token file's content (default: a fresh token).
    pub aws_token: Option<String>,
    /// Run with leader election, under this name in the Lease.
    pub leader: Option<String>,
    /// The process's name (for logs and the Lease).
    pub name: String,
    /// Install the chart's namespaced RBAC (Role per watched namespace).
    pub namespaced_rbac: bool,
}

/// Which of the chart's RBAC to install.
#[derive(Clone, Copy, Default)]
struct Rbac {
    leader_election: bool,
    namespaced: bool,
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
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        self.child.wait().await.expect("wait for the operator")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Scenario {
    pub async fn new(test: &str) -> Self {
        let env = shared().await;
        let kube = admin_client(env).await.expect("admin client");
        let suffix: u32 = rand_suffix();
        let id = format!(
            "{}-{suffix:05}",
            test.replace('_', "-").chars().take(40).collect::<String>()
        );
        let namespace = id.clone();
        let namespaces: Api<Namespace> = Api::all(kube.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
            )
            .await
            .expect("create namespace");
        Self {
            iam: admin_iam(env).await,
            kms: admin_kms(env).await,
            ssm: admin_ssm(env).await,
            env,
            kube,
            id,
            namespace,
            others: std::sync::Mutex::default(),
            operators: Vec::new(),
        }
    }

    /// A customer-managed KMS key; returns its ARN.
    pub async fn create_key(&self) -> String {
        let key = self
            .kms
            .create_key()
            .description(&self.id)
            .send()
            .await
            .expect("create key");
        key.key_metadata.and_then(|m| m.arn).expect("key arn")
    }

    /// A SecureString encrypted with `key`; `name` is prefixed with the test id.
    pub async fn put_secure_string(&self, name: &str, value: &str, key: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .key_id(key)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }

    /// A String parameter (no encryption).
    pub async fn put_string(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }

    /// A key, and an operator whose role may read every parameter whose name
    /// starts with this test's id (`<id>-…` or `/<id>/…`) and decrypt with
    /// the key. Returns (key ARN, role ARN).
    pub async fn with_operator(&mut self) -> (String, String) {
        let key = self.create_key().await;
        let params = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{}*", self.id);
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["ssm:GetParameters", "ssm:GetParametersByPath"], "Resource": params},
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key},
            ],
        });
        let role = self.create_operator_role(&policy).await;
        self.start_operator(&role).await;
        (key, role)
    }

    /// Write requests (create, update, patch, delete) the operator's
    /// ServiceAccount made to the API server so far.
    pub fn operator_writes(&self) -> usize {
        let user = format!("system:serviceaccount:{}:ssm-operator", self.namespace);
        let log = std::fs::read_to_string(&self.env.audit_log).unwrap_or_default();
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["user"]["username"] == user.as_str())
            .filter(|e| {
                matches!(
                    e["verb"].as_str(),
                    Some("create" | "update" | "patch" | "delete")
                )
            })
            .count()
    }

    pub fn parameter_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{}",
            name.trim_start_matches('/')
        )
    }

    /// An IAM role the operator's ServiceAccount may assume (IRSA), with
    /// `policy` inline; returns its ARN.
    pub async fn create_operator_role(&self, policy: &Value) -> String {
        self.create_role_trusting(
            &format!("system:serviceaccount:{}:ssm-operator", self.namespace),
            policy,
        )
        .await
    }

    /// An IAM role whose trust policy admits the token subject `sub`.
    pub async fn create_role_trusting(&self, sub: &str, policy: &Value) -> String {
        let name = format!("{}-op", self.id);
        self.create_named_role_trusting(&name, sub, policy).await
    }

    /// An IAM role `name` that the web identity token subject `sub` of this
    /// cluster may assume, with `policy` inline; returns its ARN.
    pub async fn create_named_role_trusting(
        &self,
        name: &str,
        sub: &str,
        policy: &Value,
    ) -> String {
        let issuer = self.env.oidc_issuer.trim_start_matches("https://");
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}") },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": { "StringEquals": {
                    format!("{issuer}:sub"): sub,
                    format!("{issuer}:aud"): "sts.amazonaws.com",
                }},
            }],
        });
        self.create_role_with_trust(name, &trust, policy).await
    }

    /// An IAM role with trust policy `trust` and `policy` inline.
    pub async fn create_role_with_trust(
        &self,
        name: &str,
        trust: &Value,
        policy: &Value,
    ) -> String {
        let name: String = name.chars().take(64).collect();
        let role = self
            .iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .expect("create role");
        self.put_role_policy(&name, policy).await;
        role.role.map(|r| r.arn).expect("role arn")
    }

    /// A web identity token for `sub` signed with the cluster's
    /// ServiceAccount key, expiring `expires_in` seconds from now (negative:
    /// already expired) — what the API server cannot be asked for.
    pub fn mint_token(&self, sub: &str, expires_in: i64) -> String {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let header = json!({"alg": "RS256", "typ": "JWT"});
        let claims = json!({"iss": self.env.oidc_issuer, "sub": sub, "aud": ["sts.amazonaws.com"],
                            "iat": now - 3600, "nbf": now - 3600, "exp": now + expires_in});
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let key = self
            .env
            .kubeconfig
            .parent()
            .unwrap()
            .join("pki/service-account.key");
        let mut openssl = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl must be installed");
        {
            use std::io::Write;
            openssl
                .stdin
                .take()
                .unwrap()
                .write_all(signed.as_bytes())
                .unwrap();
        }
        let signature = openssl.wait_with_output().unwrap().stdout;
        format!("{signed}.{}", b64(&signature))
    }

    pub async fn put_role_policy(&self, role_name: &str, policy: &Value) {
        self.iam
            .put_role_policy()
            .role_name(role_name)
            .policy_name("read")
            .policy_document(policy.to_string())
            .send()
            .await
            .expect("put role policy");
    }

    /// Starts the operator as the ServiceAccount `ssm-operator` of this
    /// namespace, assuming `role_arn` through IRSA.
    pub async fn start_operator(&mut self, role_arn: &str) {
        self.start_operator_with(role_arn, OperatorOptions::default())
            .await;
    }

    /// Starts the operator as the ServiceAccount `ssm-operator` of this
    /// namespace, with `options`.
    pub async fn start_operator_with(&mut self, role_arn: &str, options: OperatorOptions) {
        let rbac = Rbac {
            leader_election: options.leader.is_some(),
            namespaced: options.namespaced_rbac,
        };
        let (dir, kubeconfig, aws_token_file) = self
            .operator_identity(rbac, options.aws_token.clone())
            .await;
        let mut watched = vec![self.namespace.clone()];
        watched.extend(options.also_watch);
        let log = dir.join("operator.log");
        let admin = free_port();
        let child = tokio::process::Command::new(operator_binary())
            .args(["run", "--watch-namespaces", &watched.join(","), "--log-format", "json"])
            .args(["--http-addr", &format!("127.0.0.1:{admin}")])
            .args(match &options.leader {
                Some(_) => vec!["--leader-elect=true".to_owned(), "--lease-namespace".to_owned(), self.namespace.clone()],
                None => Vec::new(),
            })
            .args(&options.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", &kubeconfig)
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", &self.env.aws_endpoint)
            .env("AWS_ROLE_ARN", role_arn)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &aws_token_file)
            .env("POD_NAME", options.leader.as_deref().unwrap_or("ssm-operator"))
            .env("SSM_OPERATOR_LOG_LEVEL", "debug,hyper=info,kube_client=info,aws_smithy_runtime=info,aws_config=info,h2=info,rustls=info,tower=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("start the operator");
        self.operators.push(Operator {
            child,
            log,
            admin: format!("127.0.0.1:{admin}"),
            name: options.name,
        });
    }

    /// What a Pod of the chart's Deployment would get: the chart's RBAC for
    /// ServiceAccount `ssm-operator`, a kubeconfig with its token, and its
    /// IRSA token file. Returns (directory, kubeconfig, token file).
    async fn operator_identity(
        &self,
        rbac: Rbac,
        aws_token: Option<String>,
    ) -> (PathBuf, PathBuf, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix(&self.id)
            .tempdir()
            .unwrap()
            .keep();
        let sa = "ssm-operator";
        self.grant_operator_rbac(sa, rbac).await;
        let aws_token = match aws_token {
            Some(token) => token,
            None => self.token_for(sa, "sts.amazonaws.com").await,
        };
        let aws_token_file = dir.join("aws-token");
        std::fs::write(&aws_token_file, aws_token).unwrap();
        let kube_token = self.token_for(sa, "").await;
        let kubeconfig = dir.join("kubeconfig");
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "operator",
            "clusters": [{"name": "test", "cluster": {"server": self.env.apiserver, "certificate-authority": self.env.ca_file}}],
            "users": [{"name": sa, "user": {"token": kube_token}}],
            "contexts": [{"name": "operator", "context": {"cluster": "test", "user": sa}}],
        });
        std::fs::write(&kubeconfig, config.to_string()).unwrap();
        (dir, kubeconfig, aws_token_file)
    }

    /// Runs `ssm-operator <args>` to completion with the operator's identity
    /// and environment, as `kubectl exec` into its Pod would.
    pub async fn run_operator_command(
        &self,
        role_arn: &str,
        args: &[&str],
    ) -> std::process::Output {
        let (_, kubeconfig, aws_token_file) = self.operator_identity(Rbac::default(), None).await;
        tokio::process::Command::new(operator_binary())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", &kubeconfig)
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", &self.env.aws_endpoint)
            .env("AWS_ROLE_ARN", role_arn)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &aws_token_file)
            .output()
            .await
            .expect("run ssm-operator")
    }

    /// Another namespace, deleted with this scenario's.
    pub async fn other_namespace(&self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.namespace);
        let namespaces: Api<Namespace> = Api::all(self.kube.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
            )
            .await
            .expect("create namespace");
        self.others.lock().unwrap().push(name.clone());
        name
    }

    /// The first operator started.
    pub fn operator(&self) -> &Operator {
        self.operators.first().expect("the operator was started")
    }

    /// Every operator started, in order.
    pub fn operators(&mut self) -> &mut Vec<Operator> {
        &mut self.operators
    }

    /// Everything the operator logged so far.
    pub fn operator_log(&self) -> String {
        std::fs::read_to_string(&self.operator().log).unwrap_or_default()
    }

    /// Installs the chart into this namespace (release = namespace): the
    /// ServiceAccount `sa` and exactly the chart's RBAC, which the operator
    /// process then runs with.
    async fn grant_operator_rbac(&self, sa: &str, rbac: Rbac) {
        let scope = match rbac.namespaced {
            // A Role in the one watched namespace instead of a ClusterRole.
            true => vec![
                "--set".to_owned(),
                "rbac.scope=namespace".to_owned(),
                "--set".to_owned(),
                format!("watchNamespaces[0]={}", self.namespace),
            ],
            false => Vec::new(),
        };
        let out = tokio::process::Command::new(helm())
            .args(["upgrade", "--install", &self.namespace])
            .arg(chart())
            .args(["--namespace", &self.namespace, "--kubeconfig"])
            .arg(&self.env.kubeconfig)
            .args([
                "--set",
                &format!("region={REGION}"),
                "--set",
                "crds.install=false",
            ])
            .args(["--set", &format!("serviceAccount.name={sa}")])
            .args([
                "--set",
                &format!("leaderElection.enabled={}", rbac.leader_election),
            ])
            .args(&scope)
            .output()
            .await
            .expect("helm runs");
        assert!(
            out.status.success(),
            "helm install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A token for ServiceAccount `sa` with `audience` ("" = the API server's).
    pub async fn token_for(&self, sa: &str, audience: &str) -> String {
        let sas: Api<ServiceAccount> = Api::namespaced(self.kube.clone(), &self.namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: if audience.is_empty() {
                    vec![]
                } else {
                    vec![audience.to_owned()]
                },
                expiration_seconds: Some(3600),
                bound_object_ref: None,
            },
            ..TokenRequest::default()
        };
        let token: TokenRequest = sas
            .create_subresource("token", sa, &PostParams::default(), &request)
            .await
            .expect("token request");
        token.status.expect("token status").token
    }

    pub fn ssm_parameters(&self) -> Api<SsmParameter> {
        Api::namespaced(self.kube.clone(), &self.namespace)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.kube.clone(), &self.namespace)
    }

    /// Creates an SsmParameter from a manifest (YAML or JSON).
    pub async fn apply(&self, manifest: &str) -> SsmParameter {
        self.apply_in(&self.namespace, manifest).await
    }

    /// Creates an SsmParameter in namespace `ns`.
    pub async fn apply_in(&self, ns: &str, manifest: &str) -> SsmParameter {
        let obj: SsmParameter = serde_yaml::from_str(manifest).expect("manifest");
        let api: Api<SsmParameter> = Api::namespaced(self.kube.clone(), ns);
        api.patch(
            &obj.name_any(),
            &PatchParams::apply("tests").force(),
            &Patch::Apply(&obj),
        )
        .await
        .expect("apply SsmParameter")
    }

    pub async fn status(&self, name: &str) -> Option<SsmParameterStatus> {
        self.status_in(&self.namespace, name).await
    }

    pub async fn status_in(&self, ns: &str, name: &str) -> Option<SsmParameterStatus> {
        let api: Api<SsmParameter> = Api::namespaced(self.kube.clone(), ns);
        api.get(name).await.ok()?.status
    }

    /// Waits until condition `type_` of `name` has `status` and `reason`;
    /// on timeout, says what the conditions were.
    pub async fn wait_for_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> SsmParameterStatus {
        self.wait_for_condition_in(&self.namespace, name, type_, status, reason)
            .await
    }

    /// [`Self::wait_for_condition`] in namespace `ns`.
    pub async fn wait_for_condition_in(
        &self,
        ns: &str,
        name: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> SsmParameterStatus {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let current = self.status_in(ns, name).await;
            let matched = current
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_));
            if matched.is_some_and(|c| c.status == status && c.reason == reason) {
                return current.unwrap_or_default();
            }
            if tokio::time::Instant::now() > until {
                panic!(
                    "timed out after {DEADLINE:?} waiting for {ns}/{name}: {type_}={status} ({reason}); status: {current:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls the status of `name` until `check` holds (within [`DEADLINE`]);
    /// `what` names the awaited state in the timeout's message. Unlike
    /// [`Self::wait_for_condition`], it can wait for what tells a new sync
    /// from an earlier one (a version, a generation, a message).
    pub async fn wait_for_status(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&SsmParameterStatus) -> bool,
    ) -> SsmParameterStatus {
        let check = &check;
        eventually(what, DEADLINE, move || async move {
            self.status(name).await.filter(|s| check(s))
        })
        .await
    }

    /// Like [`Self::wait_for_condition`], but sees every version of the
    /// status written after the object's `resource_version` (a watch), so
    /// that a state which lasts only a moment (until a retry a backoff step
    /// later) is not missed between two polls of a busy API server.
    pub async fn watch_for_condition(
        &self,
        name: &str,
        resource_version: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> SsmParameterStatus {
        use futures::{StreamExt as _, TryStreamExt as _};
        use kube::api::{WatchEvent, WatchParams};

        let matches = |obj: &SsmParameter| {
            obj.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == status && c.reason == reason)
            })
        };
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(DEADLINE.as_secs() as u32);
        let seen = async {
            let mut from = resource_version.to_owned();
            // A watch ends at its timeout (or the server's); resume where it stopped.
            loop {
                let mut events = self
                    .ssm_parameters()
                    .watch(&params, &from)
                    .await
                    .expect("watch the SsmParameter")
                    .boxed();
                while let Some(event) = events.try_next().await.expect("watch event") {
                    match event {
                        WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                            if matches(&obj) {
                                return obj.status.unwrap_or_default();
                            }
                            from = obj.resource_version().unwrap_or(from);
                        }
                        WatchEvent::Bookmark(b) => from = b.metadata.resource_version,
                        WatchEvent::Deleted(_) => panic!("{name} was deleted"),
                        WatchEvent::Error(e) => panic!("watching {name}: {e:?}"),
                    }
                }
            }
        };
        match tokio::time::timeout(DEADLINE, seen).await {
            Ok(status) => status,
            Err(_) => panic!(
                "timed out after {DEADLINE:?} watching {}/{name} for {type_}={status} ({reason}); status: {:#?}",
                self.namespace,
                self.status(name).await
            ),
        }
    }

    /// How many reconciles of `name` the operator finished with `reason`
    /// (`Synced`, or the reason of a failure), by its log. A reconcile logs
    /// its outcome after all its writes (Secret, status, rollouts, Events),
    /// so this tells when they have all landed.
    pub fn finished_reconciles(&self, name: &str, reason: &str) -> usize {
        let object = format!("{}/{name}", self.namespace);
        self.operator_log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["message"] == "synced" || l["message"] == "sync failed")
            .filter(|l| l["span"]["ssm_parameter"] == object.as_str() && l["reason"] == reason)
            .count()
    }

    /// Waits until the garbage collector has deleted Secret `name`. It
    /// learns of a new CRD by rediscovery, every 30 s: hence the long wait.
    pub async fn wait_for_secret_collected(&self, name: &str) {
        eventually(
            &format!("garbage collection of Secret {name}"),
            Duration::from_secs(90),
            || async {
                self.secrets()
                    .get_opt(name)
                    .await
                    .ok()?
                    .is_none()
                    .then_some(())
            },
        )
        .await;
    }

    /// The value of `key` in Secret `name`, as text.
    pub async fn secret_value(&self, name: &str, key: &str) -> Option<String> {
        let secret = self.secrets().get_opt(name).await.ok()??;
        let bytes = secret.data?.get(key)?.0.clone();
        String::from_utf8(bytes).ok()
    }

    /// Makes the operator read AWS now.
    pub async fn force_sync(&self, name: &str) {
        let value = format!("{:?}", std::time::SystemTime::now());
        let patch = json!({"metadata": {"annotations": {"ssm-operator.io/force-sync": value}}});
        self.ssm_parameters()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("force sync");
    }

    /// Events about the SsmParameter `name`.
    pub async fn events(&self, name: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.kube.clone(), &self.namespace);
        events
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect()
    }

    /// Deletes the namespace (and so everything in it).
    pub async fn cleanup(self) {
        let namespaces: Api<Namespace> = Api::all(self.kube.clone());
        let others = self.others.lock().unwrap().clone();
        for ns in others.iter().chain([&self.namespace]) {
            let _ = namespaces.delete(ns, &DeleteParams::default()).await;
        }
    }
}

/// The operator binary cargo built next to this test (or example).
fn operator_binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_ssm-operator") {
        return path.into();
    }
    // An example runs from target/<profile>/examples/.
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("ssm-operator")
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::time::SystemTime::now()) % 100_000) as u32
}

/// Runs `kubectl` against the environment as the administrator.
pub fn kubectl(env: &EnvInfo, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("kubectl")
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
