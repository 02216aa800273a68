//! The operator as users run it: `helm install` of the chart, its Pod
//! running the operator's image on the environment's node.
//!
//! What differs from an install on EKS is only what this environment
//! differs in, each set through the chart's own values:
//! - the image is the local one (`make image`), never pulled;
//! - the Pod uses the host network (all traffic stays on loopback), and its
//!   in-cluster address of the API server is `127.0.0.1` (no kube-proxy
//!   serves the `kubernetes` Service here): `KUBERNETES_SERVICE_HOST` and
//!   `_PORT`, which the kubelet would otherwise set, point at the API
//!   server, or at a fault proxy in front of it;
//! - IRSA as the EKS Pod Identity webhook injects it: `AWS_ROLE_ARN`,
//!   `AWS_WEB_IDENTITY_TOKEN_FILE` and the projected token (audience
//!   `sts.amazonaws.com`) at `/var/run/secrets/eks.amazonaws.com/serviceaccount`;
//! - AWS is the emulator (`AWS_ENDPOINT_URL`).

use std::path::{Path, PathBuf};
use std::process::Output;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use ssm_operator::names::{CLUSTER_CRD_NAME, CRD_NAME};

use crate::env::{EnvInfo, OPERATOR_IMAGE, REGION, chart, helm, record_chart_install};
use crate::operator::identity::SERVICE_ACCOUNT;

/// The release name: the Deployment, its Lease and its ServiceAccount's
/// roles are named after it.
pub const RELEASE: &str = "ssm-operator";

/// Where EKS mounts the web identity token (the Pod Identity webhook's
/// `aws-iam-token` volume).
pub const TOKEN_DIR: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";

/// An install of the chart into one namespace.
pub struct Install<'a> {
    pub env: &'a EnvInfo,
    pub namespace: &'a str,
    /// The IAM role of the operator's ServiceAccount (IRSA).
    pub role_arn: &'a str,
    /// The API server as the Pod reaches it (`https://127.0.0.1:<port>`):
    /// the environment's, or a fault proxy's.
    pub api_server: &'a str,
    /// The port of `/metrics`, `/healthz` and `/readyz` on the node.
    pub http_port: u16,
}

impl Install<'_> {
    /// The values of this install, with `extra_env` appended to the Pod's
    /// environment (last, so they win).
    pub fn values(&self, extra_env: &[(&str, &str)]) -> Value {
        let port = self
            .api_server
            .rsplit(':')
            .next()
            .expect("the API server's URL has a port");
        let mut env = vec![
            json!({"name": "AWS_ENDPOINT_URL", "value": self.env.aws_endpoint}),
            json!({"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}),
            json!({"name": "AWS_DEFAULT_REGION", "value": REGION}),
            json!({"name": "AWS_ROLE_ARN", "value": self.role_arn}),
            json!({"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": format!("{TOKEN_DIR}/token")}),
            json!({"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"}),
            json!({"name": "KUBERNETES_SERVICE_PORT", "value": port}),
        ];
        env.extend(
            extra_env
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value})),
        );
        json!({
            "region": REGION,
            "image": {"repository": OPERATOR_IMAGE.0, "tag": OPERATOR_IMAGE.1, "pullPolicy": "Never"},
            "watchNamespaces": [self.namespace],
            "operatorIdentityNamespaces": [self.namespace],
            "serviceAccount": {
                "name": SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": self.role_arn},
            },
            "hostNetwork": true,
            "http": {"host": "127.0.0.1", "port": self.http_port},
            // A Service cannot point at 127.0.0.1 (EndpointSlices refuse
            // loopback addresses), and no kube-proxy runs here.
            "metrics": {"service": {"enabled": false}},
            "terminationGracePeriodSeconds": 5,
            "extraEnv": env,
            "extraVolumes": [{
                "name": "aws-iam-token",
                "projected": {"sources": [{"serviceAccountToken": {
                    "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token",
                }}]},
            }],
            "extraVolumeMounts": [{"name": "aws-iam-token", "mountPath": TOKEN_DIR, "readOnly": true}],
        })
    }

    /// `helm upgrade --install` with `values` (written to a file in `dir`)
    /// and `set`; notes the install for the RBAC check. Returns helm's
    /// output, whatever it says.
    pub async fn upgrade(&self, dir: &Path, values: &Value, set: &[&str]) -> Output {
        let file = values_file(dir, values);
        // What the RBAC check renders: the values that decide the grants.
        let mut recorded = vec![
            format!("region={REGION}"),
            format!("serviceAccount.name={SERVICE_ACCOUNT}"),
            format!("watchNamespaces[0]={}", self.namespace),
        ];
        recorded.extend(set.iter().map(|s| (*s).to_owned()));
        record_chart_install(self.namespace, RELEASE, SERVICE_ACCOUNT, &recorded);
        let mut args = vec!["upgrade", "--install", RELEASE];
        let chart = chart();
        args.push(chart.to_str().expect("a UTF-8 path"));
        args.extend(["--namespace", self.namespace, "-f"]);
        args.push(file.to_str().expect("a UTF-8 path"));
        for value in set {
            args.extend(["--set", value]);
        }
        run_helm(self.env, &args).await
    }
}

/// Lets the release [`RELEASE`] of namespace `ns` adopt the CRDs that the
/// environment installed, as an administrator adopts existing objects into
/// a release: Helm's ownership label and annotations. The chart then
/// manages them (`crds.install`), and keeps them on uninstall (`crds.keep`).
pub async fn adopt_crds(kube: &Client, ns: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(kube.clone());
    let ownership = json!({"metadata": {
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": ns},
    }});
    for name in [CRD_NAME, CLUSTER_CRD_NAME] {
        crds.patch(name, &PatchParams::default(), &Patch::Merge(&ownership))
            .await
            .expect("label the CRDs for Helm");
    }
}

fn values_file(dir: &Path, values: &Value) -> PathBuf {
    let file = tempfile::Builder::new()
        .prefix("values-")
        .suffix(".json")
        .tempfile_in(dir)
        .expect("a values file")
        .keep()
        .expect("keep the values file")
        .1;
    std::fs::write(&file, values.to_string()).expect("write the values file");
    file
}

/// Runs helm with the administrator's kubeconfig.
pub async fn run_helm(env: &EnvInfo, args: &[&str]) -> Output {
    tokio::process::Command::new(helm())
        .args(args)
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .output()
        .await
        .expect("helm runs")
}

/// Panics with helm's stderr unless it succeeded; returns its stderr (the
/// API server's warnings).
pub fn succeeded(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed: {stderr}");
    stderr
}
