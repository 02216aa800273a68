//! One test's world: a namespace, AWS resources named after the test, and
//! the operator processes it starts. It ties the harness's modules together
//! and names everything after the test; the work is theirs.

use std::process::Output;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::Api;
use serde_json::Value;
use ssm_operator::api::{SsmParameter, SsmParameterStatus};

use crate::aws::{self, Admin};
use crate::env::{EnvInfo, admin_client, shared};
use crate::operator::identity::{self, SERVICE_ACCOUNT, subject};
use crate::operator::{self, Operator, OperatorOptions, Site};
use crate::{cluster, wait};

pub struct Scenario {
    pub env: &'static EnvInfo,
    /// The administrator's client.
    pub kube: Client,
    /// The administrator's AWS clients.
    pub aws: Admin,
    /// Unique per test; prefixes every name it creates.
    pub id: String,
    pub namespace: String,
    others: Mutex<Vec<String>>,
    operators: Vec<Operator>,
}

impl Scenario {
    /// The world of test `test`, in a namespace of its own.
    pub async fn new(test: &str) -> Self {
        let env = shared().await;
        let kube = admin_client(env).await.expect("admin client");
        let id = format!(
            "{}-{:05}",
            test.replace('_', "-").chars().take(40).collect::<String>(),
            rand_suffix()
        );
        let namespace = id.clone();
        cluster::create_namespace(&kube, &namespace).await;
        Self {
            aws: Admin::new(env, &id).await,
            env,
            kube,
            id,
            namespace,
            others: Mutex::default(),
            operators: Vec::new(),
        }
    }

    /// Another namespace, deleted with this scenario's.
    pub async fn other_namespace(&self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.namespace);
        cluster::create_namespace(&self.kube, &name).await;
        self.others.lock().unwrap().push(name.clone());
        name
    }

    /// Deletes the namespaces (and so everything in them).
    pub async fn cleanup(self) {
        let others = self.others.lock().unwrap().clone();
        for ns in others.iter().chain([&self.namespace]) {
            cluster::delete_namespace(&self.kube, ns).await;
        }
    }

    // AWS, as the administrator sets it up.

    /// A customer-managed KMS key; returns its ARN.
    pub async fn create_key(&self) -> String {
        self.aws.create_key().await
    }

    /// Alias `alias/<name>` for key `key_arn`; returns the alias.
    pub async fn create_alias(&self, name: &str, key_arn: &str) -> String {
        self.aws.create_alias(name, key_arn).await
    }

    /// A SecureString encrypted with `key`.
    pub async fn put_secure_string(&self, name: &str, value: &str, key: &str) {
        self.aws.put_secure_string(name, value, key).await;
    }

    /// A String parameter (no encryption).
    pub async fn put_string(&self, name: &str, value: &str) {
        self.aws.put_string(name, value).await;
    }

    pub fn parameter_arn(&self, name: &str) -> String {
        aws::parameter_arn(name)
    }

    pub async fn put_role_policy(&self, role_name: &str, policy: &Value) {
        self.aws.put_role_policy(role_name, policy).await;
    }

    /// Sets how long sessions of role `role_name` may last.
    pub async fn set_max_session_duration(&self, role_name: &str, seconds: i32) {
        self.aws.set_max_session_duration(role_name, seconds).await;
    }

    /// An IAM role the operator's ServiceAccount may assume (IRSA), with
    /// `policy` inline; returns its ARN.
    pub async fn create_operator_role(&self, policy: &Value) -> String {
        let sub = subject(&self.namespace, SERVICE_ACCOUNT);
        self.create_role_trusting(&sub, policy).await
    }

    /// The operator's role (`<id>-op`), admitting the token subject `sub`.
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
        self.aws.create_web_identity_role(name, sub, policy).await
    }

    /// Replaces the trust policy of role `role_name`.
    pub async fn update_trust(&self, role_name: &str, trust: &Value) {
        self.aws.update_trust(role_name, trust).await;
    }

    /// An IAM role with trust policy `trust` and `policy` inline.
    pub async fn create_role_with_trust(
        &self,
        name: &str,
        trust: &Value,
        policy: &Value,
    ) -> String {
        self.aws.create_role_with_trust(name, trust, policy).await
    }

    /// A web identity token for `sub`, expiring `expires_in` seconds from
    /// now (negative: already expired).
    pub fn mint_token(&self, sub: &str, expires_in: i64) -> String {
        identity::mint_token(self.env, sub, expires_in)
    }

    // The operator.

    fn site(&self) -> Site<'_> {
        Site {
            env: self.env,
            kube: &self.kube,
            namespace: &self.namespace,
            prefix: &self.id,
        }
    }

    /// A key, and an operator whose role may read every parameter whose name
    /// starts with this test's id (`<id>-…` or `/<id>/…`) and decrypt with
    /// the key. Returns (key ARN, role ARN).
    pub async fn with_operator(&mut self) -> (String, String) {
        let key = self.create_key().await;
        let policy = aws::setup::read_prefix_policy(&self.id, &key);
        let role = self.create_operator_role(&policy).await;
        self.start_operator(&role).await;
        (key, role)
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
        let started = operator::start(self.site(), role_arn, options).await;
        self.operators.push(started);
    }

    /// Runs `ssm-operator <args>` to completion with the operator's identity
    /// and environment, as `kubectl exec` into its Pod would.
    pub async fn run_operator_command(&self, role_arn: &str, args: &[&str]) -> Output {
        operator::run_command(self.site(), role_arn, args).await
    }

    /// The first operator started.
    pub fn operator(&self) -> &Operator {
        self.operators.first().expect("the operator was started")
    }

    /// The `n`th operator started (from 0).
    pub fn nth_operator(&self, n: usize) -> &Operator {
        &self.operators[n]
    }

    /// Every operator started, in order.
    pub fn operators(&mut self) -> &mut Vec<Operator> {
        &mut self.operators
    }

    /// Everything the (first) operator logged so far.
    pub fn operator_log(&self) -> String {
        self.operator().logged()
    }

    /// How many reconciles of `name` the (first) operator finished with
    /// `reason`, by its log: see [`Operator::finished_reconciles`].
    pub fn finished_reconciles(&self, name: &str, reason: &str) -> usize {
        let object = format!("{}/{name}", self.namespace);
        self.operator().finished_reconciles(&object, reason)
    }

    /// Write requests the operator's ServiceAccount made to the API server.
    pub fn operator_writes(&self) -> usize {
        operator::writes(self.env, &self.namespace)
    }

    /// The request URIs of the operator's lists of `resource`, in order.
    pub fn operator_lists(&self, resource: &str) -> Vec<String> {
        operator::audited_lists(self.env, &self.namespace, resource)
    }

    /// The Secret writes of the operator in this namespace, in order.
    pub fn operator_secret_writes(&self) -> Vec<operator::SecretWrite> {
        operator::secret_writes(self.env, &self.namespace)
    }

    /// A token for ServiceAccount `sa` with `audience` ("" = the API server's).
    pub async fn token_for(&self, sa: &str, audience: &str) -> String {
        identity::token_for(&self.kube, &self.namespace, sa, audience).await
    }

    // The objects in the API server.

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
        cluster::apply(&self.kube, ns, manifest).await
    }

    pub async fn status(&self, name: &str) -> Option<SsmParameterStatus> {
        self.status_in(&self.namespace, name).await
    }

    pub async fn status_in(&self, ns: &str, name: &str) -> Option<SsmParameterStatus> {
        cluster::status(&self.kube, ns, name).await
    }

    /// The value of `key` in Secret `name`, as text.
    pub async fn secret_value(&self, name: &str, key: &str) -> Option<String> {
        cluster::secret_value(&self.kube, &self.namespace, name, key).await
    }

    /// Every key of Secret `name` with its value as text.
    pub async fn secret_data(&self, name: &str) -> std::collections::BTreeMap<String, String> {
        let secret = self.secrets().get(name).await.expect("get the Secret");
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect()
    }

    /// Writes Secret `secret` (JSON, `metadata.name` set) as field manager
    /// `manager` would, with server-side apply: someone else's Secret.
    pub async fn put_secret_as(&self, manager: &str, secret: Value) {
        let mut secret = secret;
        secret["apiVersion"] = "v1".into();
        secret["kind"] = "Secret".into();
        let secret: Secret = serde_json::from_value(secret).expect("a Secret");
        let name = secret.metadata.name.clone().expect("a named Secret");
        self.secrets()
            .patch(
                &name,
                &kube::api::PatchParams::apply(manager).force(),
                &kube::api::Patch::Apply(&secret),
            )
            .await
            .expect("apply the Secret");
    }

    /// Lets SsmParameters of namespace `ns` chain to roles matching `globs`
    /// (the Namespace annotation `ssm-operator.io/allowed-role-arns`).
    pub async fn allow_role_arns(&self, ns: &str, globs: &str) {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.kube.clone());
        let consent = serde_json::json!({"metadata": {"annotations": {"ssm-operator.io/allowed-role-arns": globs}}});
        namespaces
            .patch(
                ns,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&consent),
            )
            .await
            .expect("annotate the Namespace");
    }

    /// Calls of AWS `action` (`ssm:GetParameters`, …) by role `caller` so far.
    pub async fn aws_calls(&self, action: &str, caller: &str) -> u64 {
        aws::counters(self.env)
            .await
            .expect("the emulator's counters")
            .calls(action, caller)
    }

    /// Creates Deployment `name` in this scenario's namespace.
    pub async fn create_deployment(&self, name: &str) {
        cluster::create_deployment(&self.kube, &self.namespace, name).await;
    }

    /// Makes the operator read AWS now.
    pub async fn force_sync(&self, name: &str) {
        cluster::force_sync(&self.kube, &self.namespace, name).await;
    }

    /// Events about the SsmParameter `name`.
    pub async fn events(&self, name: &str) -> Vec<Event> {
        cluster::events(&self.kube, &self.namespace, name).await
    }

    // Waits.

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
        wait::condition(&self.kube, ns, name, type_, status, reason).await
    }

    /// Waits until the status of `name` satisfies `check` (within
    /// [`wait::DEADLINE`]); `what` names the awaited state in the timeout's
    /// message. Unlike [`Self::wait_for_condition`], it can wait for what
    /// tells a new sync from an earlier one (a version, a generation, a
    /// message).
    pub async fn wait_for_status(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&SsmParameterStatus) -> bool,
    ) -> SsmParameterStatus {
        wait::status(&self.kube, &self.namespace, name, what, check).await
    }

    /// Like [`Self::wait_for_condition`], but sees every version of the
    /// status written after the object's `resource_version`: see
    /// [`wait::condition_since`].
    pub async fn watch_for_condition(
        &self,
        name: &str,
        resource_version: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> SsmParameterStatus {
        let ns = &self.namespace;
        wait::condition_since(
            &self.kube,
            ns,
            name,
            resource_version,
            type_,
            status,
            reason,
        )
        .await
    }

    /// Waits until the garbage collector has deleted Secret `name`. It
    /// learns of a new CRD by rediscovery, every 30 s: hence the long wait.
    pub async fn wait_for_secret_collected(&self, name: &str) {
        wait::secret_collected(&self.kube, &self.namespace, name).await;
    }

    /// Waits for an Event with `reason` about the SsmParameter `name`.
    pub async fn wait_for_event(&self, name: &str, reason: &str) -> Event {
        wait::event(&self.kube, &self.namespace, name, reason).await
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::time::SystemTime::now()) % 100_000) as u32
}
