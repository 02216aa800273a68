//! What unit tests share: a Parameter Store with fixed contents, a Kubernetes
//! API server in memory, and builders of SsmParameters.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use crate::api::{ParameterRef, SecretValue, SsmParameter, SyncError};
use crate::aws::arn::split_selector;
use crate::aws::{FetchedParameter, ParameterStore, ParametersPage, PathPage, PathQuery, Scope};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// One SecureString of the [`FakeStore`].
#[derive(Clone, Debug)]
struct Stored {
    value: String,
    version: i64,
    /// Decrypting reads of it fail, as without `kms:Decrypt`.
    denied: bool,
}

/// One call the [`FakeStore`] answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreCall {
    pub names: Vec<String>,
    pub decrypt: bool,
}

/// Parameter Store with contents the test sets; it counts the calls.
#[derive(Default)]
pub struct FakeStore {
    parameters: Mutex<BTreeMap<String, Stored>>,
    calls: Mutex<Vec<StoreCall>>,
    /// Every call fails so while set.
    failure: Mutex<Option<SyncError>>,
    /// Answers leave these names out of both lists, as no AWS answer does.
    unanswered: Mutex<Vec<String>>,
    /// GetParameters calls asking for one of these names fail so.
    failing_names: Mutex<Vec<(String, SyncError)>>,
    /// Path listings leave these names out, as a truncated listing does.
    unlisted: Mutex<Vec<String>>,
    /// Path listings list nothing, as an empty answer does.
    empty_listings: Mutex<bool>,
    path_calls: Mutex<usize>,
}

/// GetParametersByPath parameters per page, as AWS's default.
const PAGE: usize = 10;

impl FakeStore {
    /// SecureStrings `value-of-<name>`, version 1.
    pub fn with(names: &[&str]) -> Self {
        let store = Self::default();
        for name in names {
            store.put(name, &format!("value-of-{name}"));
        }
        store
    }

    /// Writes a SecureString: a new version, as PutParameter does.
    pub fn put(&self, name: &str, value: &str) {
        let mut parameters = lock(&self.parameters);
        let version = parameters.get(name).map_or(1, |p| p.version + 1);
        let denied = parameters.get(name).is_some_and(|p| p.denied);
        parameters.insert(
            name.to_owned(),
            Stored {
                value: value.to_owned(),
                version,
                denied,
            },
        );
    }

    /// Decrypting reads of `name` (and of any call it is part of) fail.
    pub fn deny(&self, name: &str) {
        if let Some(p) = lock(&self.parameters).get_mut(name) {
            p.denied = true;
        }
    }

    /// Every call fails with `error` from now on (`None`: no more).
    pub fn fail_with(&self, error: Option<SyncError>) {
        *lock(&self.failure) = error;
    }

    /// GetParameters answers leave `name` out of both `Parameters` and
    /// `InvalidParameters`: a partial answer.
    pub fn leave_out(&self, name: &str) {
        lock(&self.unanswered).push(name.to_owned());
    }

    /// GetParameters calls that ask for `name` fail with `error` from now on.
    pub fn fail_calls_asking(&self, name: &str, error: SyncError) {
        lock(&self.failing_names).push((name.to_owned(), error));
    }

    /// Path listings leave `name` out: a listing cut short.
    pub fn leave_out_of_listings(&self, name: &str) {
        lock(&self.unlisted).push(name.to_owned());
    }

    /// Path listings list nothing (`true`) or what there is (`false`).
    pub fn empty_listings(&self, empty: bool) {
        *lock(&self.empty_listings) = empty;
    }

    /// GetParametersByPath calls (pages) so far.
    pub fn path_calls(&self) -> usize {
        *lock(&self.path_calls)
    }

    /// Deletes the parameter, as DeleteParameter does.
    pub fn delete(&self, name: &str) {
        lock(&self.parameters).remove(name);
    }

    /// The names of every GetParameters call, in order.
    pub fn calls(&self) -> Vec<Vec<String>> {
        lock(&self.calls).iter().map(|c| c.names.clone()).collect()
    }

    /// Every call, with its decryption mode.
    pub fn all_calls(&self) -> Vec<StoreCall> {
        lock(&self.calls).clone()
    }

    /// The names asked with decryption, over all calls.
    pub fn decrypted(&self) -> Vec<String> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.decrypt)
            .flat_map(|c| c.names.clone())
            .collect()
    }

    pub fn forget_calls(&self) {
        lock(&self.calls).clear();
    }

    fn fetched(name: &str, selector: Option<&str>, p: &Stored, decrypt: bool) -> FetchedParameter {
        let value = if !decrypt {
            format!("ciphertext-of-{name}")
        } else {
            p.value.clone()
        };
        FetchedParameter {
            name: name.to_owned(),
            selector: selector.map(|s| format!(":{s}")),
            arn: None,
            value: SecretValue::new(value),
            version: p.version,
            type_: "SecureString".to_owned(),
            last_modified: None,
            // What `--report-key-ids` finds, with decrypting reads only.
            key_id: decrypt.then(|| fake_key_arn(name)),
        }
    }
}

/// The key the fake store says a SecureString is encrypted with.
pub fn fake_key_arn(name: &str) -> String {
    format!("arn:aws:kms:ap-northeast-1:111122223333:key/key-of-{name}")
}

impl ParameterStore for FakeStore {
    fn get_parameters<'a>(
        &'a self,
        _: &'a Scope,
        names: &'a [String],
        decrypt: bool,
    ) -> BoxFuture<'a, Result<ParametersPage, SyncError>> {
        async move {
            lock(&self.calls).push(StoreCall {
                names: names.to_vec(),
                decrypt,
            });
            if let Some(error) = lock(&self.failure).clone() {
                return Err(error);
            }
            let failing = lock(&self.failing_names).clone();
            if let Some((_, error)) = failing.into_iter().find(|(n, _)| names.contains(n)) {
                return Err(error);
            }
            let parameters = lock(&self.parameters).clone();
            let denied = names.iter().find(|n| {
                let p = parameters.get(split_selector(n).0);
                decrypt && p.is_some_and(|p| p.denied)
            });
            if let Some(denied) = denied {
                // AWS fails the whole call and does not say for which name.
                return Err(SyncError::KmsAccessDenied {
                    parameter: denied.clone(),
                    key: None,
                    principal: None,
                });
            }
            let mut page = ParametersPage::default();
            let unanswered = lock(&self.unanswered).clone();
            for name in names.iter().filter(|n| !unanswered.contains(n)) {
                let (base, selector) = split_selector(name);
                match parameters.get(base) {
                    Some(p) if selector.is_none_or(|s| s == p.version.to_string()) => {
                        page.found.push(Self::fetched(base, selector, p, decrypt));
                    }
                    _ => page.invalid.push(name.clone()),
                }
            }
            Ok(page)
        }
        .boxed()
    }

    fn get_parameters_by_path<'a>(
        &'a self,
        _: &'a Scope,
        query: &'a PathQuery,
        next_token: Option<String>,
    ) -> BoxFuture<'a, Result<PathPage, SyncError>> {
        async move {
            *lock(&self.path_calls) += 1;
            if let Some(error) = lock(&self.failure).clone() {
                return Err(error);
            }
            if *lock(&self.empty_listings) {
                return Ok(PathPage::default());
            }
            let prefix = format!("{}/", query.prefix.trim_end_matches('/'));
            let unlisted = lock(&self.unlisted).clone();
            let all: Vec<FetchedParameter> = lock(&self.parameters)
                .iter()
                .filter(|(name, _)| {
                    name.strip_prefix(&prefix)
                        .is_some_and(|rest| query.recursive || !rest.contains('/'))
                })
                .filter(|(name, _)| !unlisted.contains(name))
                .map(|(name, p)| Self::fetched(name, None, p, query.decrypt))
                .collect();
            let start: usize = next_token.and_then(|t| t.parse().ok()).unwrap_or(0);
            let page_names: Vec<String> = (all.iter().skip(start).take(PAGE))
                .map(|p| p.name.clone())
                .collect();
            let parameters = lock(&self.parameters).clone();
            if query.decrypt && page_names.iter().any(|n| parameters[n].denied) {
                // One refusal fails the whole page, which names no parameter.
                return Err(SyncError::KmsAccessDenied {
                    parameter: query.prefix.clone(),
                    key: None,
                    principal: None,
                });
            }
            let found: Vec<FetchedParameter> = all.iter().skip(start).take(PAGE).cloned().collect();
            let next = start + found.len();
            Ok(PathPage {
                found,
                next_token: (next < all.len()).then(|| next.to_string()),
            })
        }
        .boxed()
    }
}

/// A request the [`FakeApi`] answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiCall {
    pub method: Method,
    pub path: String,
}

/// An Event the [`FakeApi`] was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedEvent {
    pub type_: String,
    pub reason: String,
    pub note: String,
}

#[derive(Default)]
struct Cluster {
    secrets: BTreeMap<(String, String), Secret>,
    service_accounts: BTreeMap<(String, String), Value>,
    ssm_parameters: BTreeMap<(String, String), Value>,
    events: Vec<PublishedEvent>,
    calls: Vec<ApiCall>,
    resource_version: u64,
    /// Whether the SsmParameter CRD is being deleted.
    crd_deleting: bool,
    /// Names of the Events created with a name of their own.
    event_names: std::collections::BTreeSet<String>,
    /// Workloads by (kind plural, name): each exists once asked for.
    workloads: BTreeMap<(String, String), Value>,
    /// Refuse the next N status writes / workload patches with a 500.
    failing_status_writes: usize,
    failing_workload_patches: usize,
}

/// A Kubernetes API server in memory, for the requests a reconcile makes:
/// Secrets (get, server-side apply, delete), SsmParameter status, Events
/// and workload patches. It keeps what it was sent so that tests can say
/// what was written.
#[derive(Clone, Default)]
pub struct FakeApi(Arc<Mutex<Cluster>>);

impl FakeApi {
    /// A client whose requests this answers.
    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |request: Request<kube::client::Body>| {
            let api = api.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = body.collect().await?.to_bytes();
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(api.answer(
                    &parts.method,
                    parts.uri.path(),
                    &bytes,
                ))
            }
        });
        kube::Client::new(service, "default")
    }

    /// Makes `obj` exist, so that its status can be written.
    pub fn add_ssm_parameter(&self, obj: &SsmParameter) {
        let key = (
            obj.metadata.namespace.clone().unwrap_or_default(),
            obj.metadata.name.clone().unwrap_or_default(),
        );
        let value = serde_json::to_value(obj).unwrap_or_default();
        lock(&self.0).ssm_parameters.insert(key, value);
    }

    /// The SsmParameter as the API server holds it, status included.
    pub fn ssm_parameter(&self, namespace: &str, name: &str) -> Option<SsmParameter> {
        let value = lock(&self.0)
            .ssm_parameters
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()?;
        serde_json::from_value(value).ok()
    }

    /// Creates ServiceAccount `name` of namespace `payments` with `annotations`.
    pub fn put_service_account(&self, name: &str, annotations: Value) {
        let account = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": "payments", "annotations": annotations},
        });
        lock(&self.0)
            .service_accounts
            .insert(("payments".to_owned(), name.to_owned()), account);
    }

    /// Puts a Secret in place as someone else would.
    pub fn put_secret(&self, mut secret: Secret) {
        let mut cluster = lock(&self.0);
        cluster.resource_version += 1;
        secret.metadata.resource_version = Some(cluster.resource_version.to_string());
        let key = (
            secret.metadata.namespace.clone().unwrap_or_default(),
            secret.metadata.name.clone().unwrap_or_default(),
        );
        cluster.secrets.insert(key, secret);
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<Secret> {
        lock(&self.0)
            .secrets
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every Secret of `namespace`.
    pub fn secrets(&self, namespace: &str) -> Vec<Secret> {
        let cluster = lock(&self.0);
        cluster
            .secrets
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, secret)| secret.clone())
            .collect()
    }

    /// The Secret's value of `key`, as text.
    pub fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        let secret = self.secret(namespace, name)?;
        let bytes = secret.data?.get(key)?.0.clone();
        String::from_utf8(bytes).ok()
    }

    pub fn delete_secret(&self, namespace: &str, name: &str) {
        lock(&self.0)
            .secrets
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// Refuses the next `n` status writes, as an API server failing would.
    pub fn fail_status_writes(&self, n: usize) {
        lock(&self.0).failing_status_writes = n;
    }

    /// Refuses the next `n` workload patches.
    pub fn fail_workload_patches(&self, n: usize) {
        lock(&self.0).failing_workload_patches = n;
    }

    /// The pod-template annotations of workload `kind` (plural) `name`.
    pub fn workload_annotations(&self, kind: &str, name: &str) -> Value {
        lock(&self.0)
            .workloads
            .get(&(kind.to_owned(), name.to_owned()))
            .map(|w| w["spec"]["template"]["metadata"]["annotations"].clone())
            .unwrap_or(Value::Null)
    }

    /// Makes the SsmParameter CRD one that is being deleted.
    pub fn delete_crd(&self) {
        lock(&self.0).crd_deleting = true;
    }

    /// Every request, in order.
    pub fn calls(&self) -> Vec<ApiCall> {
        lock(&self.0).calls.clone()
    }

    /// Every request that is not a read.
    pub fn writes(&self) -> Vec<ApiCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.method != Method::GET)
            .collect()
    }

    pub fn events(&self) -> Vec<PublishedEvent> {
        lock(&self.0).events.clone()
    }

    pub fn forget_calls(&self) {
        let mut cluster = lock(&self.0);
        cluster.calls.clear();
        cluster.events.clear();
    }

    fn answer(&self, method: &Method, path: &str, body: &[u8]) -> Response<kube::client::Body> {
        let mut cluster = lock(&self.0);
        cluster.calls.push(ApiCall {
            method: method.clone(),
            path: path.to_owned(),
        });
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            (&Method::GET, ["api", "v1", "namespaces", ns, "secrets", name]) => {
                match cluster.secrets.get(&((*ns).to_owned(), (*name).to_owned())) {
                    Some(secret) => ok(json!(secret)),
                    None => status(StatusCode::NOT_FOUND, "NotFound"),
                }
            }
            (&Method::GET, ["api", "v1", "namespaces", ns, "serviceaccounts", name]) => {
                match cluster
                    .service_accounts
                    .get(&((*ns).to_owned(), (*name).to_owned()))
                {
                    Some(account) => ok(account.clone()),
                    None => status(StatusCode::NOT_FOUND, "NotFound"),
                }
            }
            (&Method::PATCH, ["api", "v1", "namespaces", ns, "secrets", name])
                if body["metadata"]["ownerReferences"][0]["$patch"] == "delete" =>
            {
                let uid = body["metadata"]["ownerReferences"][0]["uid"].clone();
                match cluster
                    .secrets
                    .get_mut(&((*ns).to_owned(), (*name).to_owned()))
                {
                    Some(secret) => {
                        if let Some(refs) = secret.metadata.owner_references.as_mut() {
                            refs.retain(|r| json!(r.uid) != uid);
                        }
                        ok(json!(secret))
                    }
                    None => status(StatusCode::NOT_FOUND, "NotFound"),
                }
            }
            (&Method::PATCH, ["api", "v1", "namespaces", ns, "secrets", name]) => {
                cluster.apply_secret(ns, name, body)
            }
            (
                &Method::GET,
                [
                    "apis",
                    "apiextensions.k8s.io",
                    "v1",
                    "customresourcedefinitions",
                    name,
                ],
            ) => {
                let mut crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name}});
                if cluster.crd_deleting {
                    crd["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                }
                ok(crd)
            }
            (
                &Method::PATCH,
                [
                    "apis",
                    "ssm-operator.io",
                    "v1alpha1",
                    "namespaces",
                    ns,
                    "ssmparameters",
                    name,
                ],
            ) => {
                let key = ((*ns).to_owned(), (*name).to_owned());
                match cluster.ssm_parameters.get_mut(&key) {
                    Some(obj) => {
                        obj["metadata"]["finalizers"] = body["metadata"]["finalizers"].clone();
                        ok(obj.clone())
                    }
                    None => status(StatusCode::NOT_FOUND, "NotFound"),
                }
            }
            (&Method::DELETE, ["api", "v1", "namespaces", ns, "secrets", name]) => {
                match cluster
                    .secrets
                    .remove(&((*ns).to_owned(), (*name).to_owned()))
                {
                    Some(_) => status(StatusCode::OK, "Success"),
                    None => status(StatusCode::NOT_FOUND, "NotFound"),
                }
            }
            (
                &Method::PATCH,
                [
                    "apis",
                    "ssm-operator.io",
                    "v1alpha1",
                    "namespaces",
                    ns,
                    "ssmparameters",
                    name,
                    "status",
                ],
            ) => {
                if cluster.failing_status_writes > 0 {
                    cluster.failing_status_writes -= 1;
                    return status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError");
                }
                let key = ((*ns).to_owned(), (*name).to_owned());
                match cluster.ssm_parameters.get_mut(&key) {
                    Some(obj) => {
                        obj["status"] = body["status"].clone();
                        ok(obj.clone())
                    }
                    None => status(StatusCode::NOT_FOUND, "NotFound"),
                }
            }
            (&Method::POST, ["apis", "events.k8s.io", "v1", "namespaces", _, "events"])
                if body["metadata"]["name"].is_string()
                    && !cluster
                        .event_names
                        .insert(body["metadata"]["name"].to_string()) =>
            {
                status(StatusCode::CONFLICT, "AlreadyExists")
            }
            (
                &Method::POST | &Method::PATCH,
                ["apis", "events.k8s.io", "v1", "namespaces", _, "events", ..],
            ) => {
                cluster.events.push(PublishedEvent {
                    type_: body["type"].as_str().unwrap_or_default().to_owned(),
                    reason: body["reason"].as_str().unwrap_or_default().to_owned(),
                    note: body["note"].as_str().unwrap_or_default().to_owned(),
                });
                ok(body)
            }
            (&Method::PATCH, ["apis", "apps", "v1", "namespaces", _, _, _])
                if cluster.failing_workload_patches > 0 =>
            {
                cluster.failing_workload_patches -= 1;
                status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            }
            (&Method::GET, ["apis", "apps", "v1", "namespaces", _, kind, name]) => {
                ok(cluster.workload(kind, name).clone())
            }
            (&Method::PATCH, ["apis", "apps", "v1", "namespaces", _, kind, name]) => {
                let workload = cluster.workload(kind, name);
                let wanted = &body["spec"]["template"]["metadata"]["annotations"];
                let annotations = &mut workload["spec"]["template"]["metadata"]["annotations"];
                for (k, v) in wanted.as_object().into_iter().flatten() {
                    annotations[k] = v.clone();
                }
                ok(workload.clone())
            }
            _ => status(StatusCode::NOT_FOUND, "NotFound"),
        }
    }
}

impl Cluster {
    /// Workload `kind` (plural) `name`, there from the first time it is asked for.
    fn workload(&mut self, kind: &str, name: &str) -> &mut Value {
        self.workloads
            .entry((kind.to_owned(), name.to_owned()))
            .or_insert_with(|| {
                json!({
                    "apiVersion": "apps/v1",
                    "kind": match kind {
                        "deployments" => "Deployment",
                        "statefulsets" => "StatefulSet",
                        _ => "DaemonSet",
                    },
                    "metadata": {"name": name},
                    "spec": {"template": {"metadata": {"annotations": {}}}},
                })
            })
    }

    /// Server-side apply of a Secret, as far as one field manager goes: its
    /// labels and annotations are added, its data replaces the old (or,
    /// for a Secret it does not own, is merged into it).
    fn apply_secret(&mut self, ns: &str, name: &str, body: Value) -> Response<kube::client::Body> {
        let Ok(applied) = serde_json::from_value::<Secret>(body) else {
            return status(StatusCode::BAD_REQUEST, "BadRequest");
        };
        let key = (ns.to_owned(), name.to_owned());
        let current = self.secrets.get(&key);
        // A resourceVersion in an apply is a precondition on an existing
        // object only: an absent one is created (kubernetes#106745).
        if let (Some(wanted), Some(current)) = (&applied.metadata.resource_version, current)
            && current.metadata.resource_version.as_ref() != Some(wanted)
        {
            return status(StatusCode::CONFLICT, "Conflict");
        }
        let mut secret = current.cloned().unwrap_or_default();
        if secret.immutable == Some(true) && secret.data != applied.data {
            // "field is immutable when `immutable` is set"
            return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid");
        }
        let owned_outright = applied.type_.is_some();
        secret.metadata.name = Some(name.to_owned());
        secret.metadata.namespace = Some(ns.to_owned());
        for (mine, theirs) in [
            (&applied.metadata.labels, &mut secret.metadata.labels),
            (
                &applied.metadata.annotations,
                &mut secret.metadata.annotations,
            ),
        ] {
            theirs
                .get_or_insert_default()
                .extend(mine.clone().unwrap_or_default());
        }
        if applied.metadata.owner_references.is_some() {
            secret.metadata.owner_references = applied.metadata.owner_references.clone();
        }
        if owned_outright {
            secret.type_ = applied.type_.clone();
            secret.data = applied.data.clone();
        } else {
            secret
                .data
                .get_or_insert_default()
                .extend(applied.data.clone().unwrap_or_default());
        }
        if applied.immutable.is_some() {
            secret.immutable = applied.immutable;
        }
        self.resource_version += 1;
        secret.metadata.resource_version = Some(self.resource_version.to_string());
        self.secrets.insert(key, secret.clone());
        ok(json!(secret))
    }
}

fn ok(body: Value) -> Response<kube::client::Body> {
    respond(StatusCode::OK, body)
}

fn status(code: StatusCode, reason: &str) -> Response<kube::client::Body> {
    let body = json!({
        "apiVersion": "v1",
        "kind": "Status",
        "status": if code.is_success() { "Success" } else { "Failure" },
        "reason": reason,
        "message": reason,
        "code": code.as_u16(),
    });
    respond(code, body)
}

fn respond(code: StatusCode, body: Value) -> Response<kube::client::Body> {
    let mut response = Response::new(kube::client::Body::from(body.to_string().into_bytes()));
    *response.status_mut() = code;
    response
}

/// An SsmParameter of namespace `payments`, generation 1, with a uid.
pub fn ssm_parameter(name: &str, spec: Value) -> SsmParameter {
    let value = json!({
        "apiVersion": "ssm-operator.io/v1alpha1",
        "kind": "SsmParameter",
        "metadata": {
            "name": name,
            "namespace": "payments",
            "uid": format!("uid-of-{name}"),
            "generation": 1,
        },
        "spec": spec,
    });
    serde_json::from_value(value).expect("the test's spec is an SsmParameter spec")
}

/// A parameter of the spec by name alone, every other field defaulted.
pub fn parameter_ref(name: &str) -> ParameterRef {
    ParameterRef {
        name: name.into(),
        key: None,
        version: None,
        label: None,
        decrypt: None,
        property: None,
        decode: None,
        extract: None,
        key_prefix: None,
    }
}

/// A Secret of namespace `payments` that someone else wrote.
pub fn foreign_secret(name: &str, data: &[(&str, &str)]) -> Secret {
    let data: BTreeMap<String, k8s_openapi::ByteString> = data
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                k8s_openapi::ByteString(v.as_bytes().to_vec()),
            )
        })
        .collect();
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("payments".to_owned()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}
