//! The trust policy of the role that reads: which ServiceAccount's tokens,
//! from which cluster's OIDC issuer, may assume it.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::names::STS_AUDIENCE;

/// Where the issuer goes in a trust policy printed without one; the README
/// uses the same placeholder.
const ISSUER_PLACEHOLDER: &str = "<OIDC>";

/// How long to wait for a cluster to tell its OIDC issuer before printing the
/// placeholder instead.
const ISSUER_TIMEOUT: Duration = Duration::from_secs(5);

/// The IRSA trust policy: `service_account` of `namespace` may assume the
/// role with a token of the cluster's OIDC `issuer` meant for STS.
pub fn trust_policy(account: &str, issuer: &str, namespace: &str, service_account: &str) -> Value {
    let provider = issuer.trim_start_matches("https://");
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ServiceAccountWebIdentity",
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{account}:oidc-provider/{provider}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{provider}:sub"): format!("system:serviceaccount:{namespace}:{service_account}"),
                format!("{provider}:aud"): STS_AUDIENCE,
            }},
        }],
    })
}

/// `--oidc-issuer`, else the cluster's, else the placeholder (said on stderr).
pub async fn oidc_issuer(flag: Option<&str>) -> String {
    if let Some(issuer) = flag {
        return issuer.to_owned();
    }
    let failure = match tokio::time::timeout(ISSUER_TIMEOUT, cluster_issuer()).await {
        Ok(Ok(issuer)) => {
            eprintln!("note: the trust policy uses the cluster's OIDC issuer {issuer}");
            return issuer;
        }
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {ISSUER_TIMEOUT:?}"),
    };
    eprintln!(
        "warning: no --oidc-issuer and the cluster did not tell its issuer ({failure}): the trust \
         policy says {ISSUER_PLACEHOLDER} where the issuer without https:// goes"
    );
    ISSUER_PLACEHOLDER.to_owned()
}

/// The issuer the API server announces in its OpenID discovery document.
async fn cluster_issuer() -> anyhow::Result<String> {
    let client = kube::Client::try_default().await?;
    // kube's request builder is made for resource URLs, but a GET of
    // `<base>/<name>` is all this one needs.
    let request = kube::core::Request::new("/.well-known")
        .get("openid-configuration", &kube::api::GetParams::default())?;
    let discovery: Value = client.request(request).await?;
    discovery["issuer"]
        .as_str()
        .map(str::to_owned)
        .context("the API server's OpenID configuration names no issuer")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "111122223333";

    #[test]
    fn trust_policy_admits_one_service_account_with_sts_tokens() {
        let trust = trust_policy(
            ACCOUNT,
            "https://oidc.eks.ap-northeast-1.amazonaws.com/id/EXAMPLE",
            "payments",
            "reader",
        );
        let issuer = "oidc.eks.ap-northeast-1.amazonaws.com/id/EXAMPLE";
        assert_eq!(
            trust,
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "ServiceAccountWebIdentity",
                "Effect": "Allow",
                "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}")},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    format!("{issuer}:sub"): "system:serviceaccount:payments:reader",
                    format!("{issuer}:aud"): "sts.amazonaws.com",
                }},
            }]})
        );
    }
}
