//! What one run sets up before the operator starts: SecureStrings in the
//! emulator, SsmParameters and unrelated Secrets in the API server.

use std::time::Duration;

use futures::{StreamExt as _, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use ssm_operator::api::SsmParameter;
use ssm_operator_testenv::Scenario;
use ssm_operator_testenv::manifest::ssm_parameter;

/// How many requests of set-up go out at once.
pub const SETUP_CONCURRENCY: usize = 16;

/// The shape of the SsmParameters of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// One parameter per SsmParameter.
    Single,
    /// Ten parameters per SsmParameter.
    Ten,
    /// One path of 250 parameters per SsmParameter.
    Path,
}

impl Variant {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "single" => Self::Single,
            "ten" => Self::Ten,
            "path" => Self::Path,
            other => anyhow::bail!("unknown variant {other:?}: single, ten or path"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Ten => "ten",
            Self::Path => "path",
        }
    }

    /// Parameters per SsmParameter.
    pub fn per_object(self) -> usize {
        match self {
            Self::Single => 1,
            Self::Ten => 10,
            Self::Path => 250,
        }
    }
}

/// One run's objects: `objects` SsmParameters, each of the variant's
/// number of SecureStrings.
pub struct World {
    pub variant: Variant,
    pub objects: usize,
    pub refresh: Duration,
    pub key: String,
}

impl World {
    pub fn object_name(i: usize) -> String {
        format!("o{i:05}")
    }

    /// The parameter `j` of object `i`.
    pub fn parameter(&self, s: &Scenario, i: usize, j: usize) -> String {
        match self.variant {
            Variant::Path => format!("/{}/path{i:05}/p{j:03}", s.id),
            _ => format!("/{}/o{i:05}/p{j:03}", s.id),
        }
    }

    /// The value of parameter `j` of object `i`.
    pub fn value(i: usize, j: usize) -> String {
        format!("value-{i:05}-{j:03}")
    }

    /// The spec of object `i`.
    pub fn spec(&self, s: &Scenario, i: usize) -> Value {
        let refresh = format!("{}s", self.refresh.as_secs());
        match self.variant {
            Variant::Path => json!({
                "path": {"prefix": format!("/{}/path{i:05}/", s.id)},
                "refreshInterval": refresh,
            }),
            _ => {
                let parameters: Vec<Value> = (0..self.variant.per_object())
                    .map(|j| json!({"name": self.parameter(s, i, j), "key": format!("k{j:03}")}))
                    .collect();
                json!({"parameters": parameters, "refreshInterval": refresh})
            }
        }
    }

    /// Every SecureString of every object.
    pub async fn put_parameters(&self, s: &Scenario) {
        let per_object = self.variant.per_object();
        let all = (0..self.objects).flat_map(|i| (0..per_object).map(move |j| (i, j)));
        stream::iter(all)
            .for_each_concurrent(SETUP_CONCURRENCY, |(i, j)| async move {
                let name = self.parameter(s, i, j);
                s.put_secure_string(&name, &Self::value(i, j), &self.key)
                    .await;
            })
            .await;
    }

    /// Every SsmParameter.
    pub async fn create_objects(&self, s: &Scenario) {
        stream::iter(0..self.objects)
            .for_each_concurrent(SETUP_CONCURRENCY, |i| async move {
                create_object(&s.ssm_parameters(), &Self::object_name(i), self.spec(s, i)).await;
            })
            .await;
    }
}

/// Creates SsmParameter `name` with `spec`.
pub async fn create_object(api: &Api<SsmParameter>, name: &str, spec: Value) {
    let obj: SsmParameter =
        serde_json::from_str(&ssm_parameter(name, spec)).expect("an SsmParameter manifest");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create SsmParameter");
}

/// A spec change of SsmParameter `name`: a label on its Secret.
pub async fn change_object(s: &Scenario, name: &str) {
    let patch = json!({"spec": {"target": {"labels": {"bench": "changed"}}}});
    s.ssm_parameters()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("change SsmParameter");
}

/// `count` Secrets of `size` bytes that no SsmParameter refers to.
pub async fn create_unrelated_secrets(s: &Scenario, count: usize, size: usize) {
    let api: Api<Secret> = s.secrets();
    let filler = "x".repeat(size);
    stream::iter(0..count)
        .for_each_concurrent(SETUP_CONCURRENCY, |i| {
            let (api, filler) = (api.clone(), filler.clone());
            async move {
                let secret: Secret = serde_json::from_value(json!({
                    "metadata": {"name": format!("unrelated-{i:05}")},
                    "stringData": {"blob": filler},
                }))
                .expect("a Secret");
                api.create(&PostParams::default(), &secret)
                    .await
                    .expect("create unrelated Secret");
            }
        })
        .await;
}
