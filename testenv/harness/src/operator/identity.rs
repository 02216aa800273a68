//! What a Pod of the chart's Deployment would get: the chart's RBAC for its
//! ServiceAccount, a kubeconfig with that ServiceAccount's token, and an
//! IRSA web identity token for AWS.

use std::path::PathBuf;
use std::process::Stdio;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::Site;
use crate::env::{EnvInfo, REGION, chart, helm, record_chart_install};

/// The operator's ServiceAccount, in the namespace it runs in.
pub const SERVICE_ACCOUNT: &str = "ssm-operator";

/// The token subject of ServiceAccount `ns/sa`.
pub fn subject(ns: &str, sa: &str) -> String {
    format!("system:serviceaccount:{ns}:{sa}")
}

/// Which of the chart's RBAC to install.
#[derive(Clone, Copy, Default)]
pub struct Rbac {
    pub leader_election: bool,
    /// A Role in the one watched namespace instead of a ClusterRole.
    pub namespaced: bool,
}

/// The files of a Pod's identity.
pub struct PodIdentity {
    /// Where they are (and the operator's log goes).
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub aws_token_file: PathBuf,
}

/// The chart's RBAC for ServiceAccount [`SERVICE_ACCOUNT`] of the site's
/// namespace, a kubeconfig with its token, and its IRSA token file holding
/// `aws_token` (default: a fresh token from the API server). The kubeconfig
/// names `server` (default: the environment's API server; a fault proxy's
/// address puts one in front of it).
pub async fn pod_identity(
    site: Site<'_>,
    rbac: Rbac,
    aws_token: Option<String>,
    server: Option<&str>,
) -> PodIdentity {
    let dir = tempfile::Builder::new()
        .prefix(site.prefix)
        .tempdir()
        .unwrap()
        .keep();
    let sa = SERVICE_ACCOUNT;
    install_chart_rbac(site, sa, rbac).await;
    let aws_token = match aws_token {
        Some(token) => token,
        None => token_for(site.kube, site.namespace, sa, "sts.amazonaws.com").await,
    };
    let aws_token_file = dir.join("aws-token");
    std::fs::write(&aws_token_file, aws_token).unwrap();
    let kube_token = token_for(site.kube, site.namespace, sa, "").await;
    let kubeconfig = dir.join("kubeconfig");
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "test", "cluster": {"server": server.unwrap_or(&site.env.apiserver), "certificate-authority": site.env.ca_file}}],
        "users": [{"name": sa, "user": {"token": kube_token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "test", "user": sa}}],
    });
    std::fs::write(&kubeconfig, config.to_string()).unwrap();
    PodIdentity {
        dir,
        kubeconfig,
        aws_token_file,
    }
}

/// Installs the chart into the site's namespace (release = namespace): the
/// ServiceAccount `sa` and exactly the chart's RBAC, which the operator
/// process then runs with.
async fn install_chart_rbac(site: Site<'_>, sa: &str, rbac: Rbac) {
    let namespace = site.namespace;
    let mut values = vec![
        format!("region={REGION}"),
        "crds.install=false".to_owned(),
        format!("serviceAccount.name={sa}"),
        format!("leaderElection.enabled={}", rbac.leader_election),
    ];
    if rbac.namespaced {
        values.push("rbac.scope=namespace".to_owned());
        values.push(format!("watchNamespaces[0]={namespace}"));
    }
    let out = tokio::process::Command::new(helm())
        .args(["upgrade", "--install", namespace])
        .arg(chart())
        .args(["--namespace", namespace, "--kubeconfig"])
        .arg(&site.env.kubeconfig)
        .args(values.iter().flat_map(|value| ["--set", value.as_str()]))
        .output()
        .await
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    record_chart_install(namespace, namespace, sa, &values);
}

/// A token for ServiceAccount `ns/sa` with `audience` ("" = the API server's).
pub async fn token_for(kube: &Client, ns: &str, sa: &str, audience: &str) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(kube.clone(), ns);
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

/// A web identity token for `sub` signed with the cluster's ServiceAccount
/// key, expiring `expires_in` seconds from now (negative: already expired)
/// — what the API server cannot be asked for.
pub fn mint_token(env: &EnvInfo, sub: &str, expires_in: i64) -> String {
    use base64::Engine;
    use std::io::Write;

    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let claims = json!({"iss": env.oidc_issuer, "sub": sub, "aud": ["sts.amazonaws.com"],
                        "iat": now - 3600, "nbf": now - 3600, "exp": now + expires_in});
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = env
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
    openssl
        .stdin
        .take()
        .unwrap()
        .write_all(signed.as_bytes())
        .unwrap();
    let signature = openssl.wait_with_output().unwrap().stdout;
    format!("{signed}.{}", b64(&signature))
}
