//! What a Pod of the chart's Deployment would get: the chart's RBAC for its
//! ServiceAccount, a kubeconfig with that ServiceAccount's token, and a
//! token for AWS: IRSA's web identity token, or the token EKS Pod Identity
//! projects for its agent.

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

/// How a Pod gets its AWS credentials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AwsCredentials {
    /// IRSA: `AWS_ROLE_ARN` and a web identity token for STS.
    #[default]
    Irsa,
    /// EKS Pod Identity: the agent's credentials endpoint
    /// (`AWS_CONTAINER_CREDENTIALS_FULL_URI`), which the emulator serves,
    /// and a token for it (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
    EksPodIdentity,
}

/// The audience of the tokens EKS projects for the Pod Identity agent.
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";

/// The cluster name Pod Identity associations of the tests are made in.
pub const POD_IDENTITY_CLUSTER: &str = "testenv";

/// The files of a Pod's identity.
pub struct PodIdentity {
    /// Where they are (and the operator's log goes).
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    /// IRSA's token, or Pod Identity's (as `credentials` says).
    pub aws_token_file: PathBuf,
    pub credentials: AwsCredentials,
}

/// The chart's RBAC for ServiceAccount [`SERVICE_ACCOUNT`] of the site's
/// namespace, a kubeconfig with its token, and its AWS token file holding
/// `aws_token` (default: a fresh token from the API server, for STS or for
/// the Pod Identity agent as `credentials` says). The kubeconfig names
/// `server` (default: the environment's API server; a fault proxy's
/// address puts one in front of it).
pub async fn pod_identity(
    site: Site<'_>,
    rbac: Rbac,
    aws_token: Option<String>,
    server: Option<&str>,
    credentials: AwsCredentials,
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
        None => {
            let audience = match credentials {
                AwsCredentials::Irsa => "sts.amazonaws.com",
                AwsCredentials::EksPodIdentity => POD_IDENTITY_AUDIENCE,
            };
            token_for(site.kube, site.namespace, sa, audience).await
        }
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
        credentials,
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
