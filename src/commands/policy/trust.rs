//! The trust policy of the role that reads: which ServiceAccount's tokens,
//! from which cluster's OIDC issuer, may assume it.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::aws::partition::Partition;
use crate::names::STS_AUDIENCE;

/// Where the issuer goes in a trust policy printed without one; the README
/// uses the same placeholder.
const ISSUER_PLACEHOLDER: &str = "<OIDC>";

/// How long to wait for a cluster to tell its OIDC issuer before printing the
/// placeholder instead.
const ISSUER_TIMEOUT: Duration = Duration::from_secs(5);

/// The IRSA trust policy: `service_account` of `namespace` may assume the
/// role of `account` in `partition` with a token of the cluster's OIDC
/// `issuer` meant for STS.
///
/// The audience is `sts.amazonaws.com` in every partition: it is the
/// audience EKS's webhook projects tokens for, China included, where
/// `sts.amazonaws.com.cn` is refused with "Incorrect token audience"
/// (eksctl-io/eksctl#1910, terraform-aws-modules/terraform-aws-eks#2700).
pub fn trust_policy(
    partition: Partition,
    account: &str,
    issuer: &str,
    namespace: &str,
    service_account: &str,
) -> Value {
    let provider = issuer.trim_start_matches("https://");
    let provider_arn = format!(
        "arn:{}:iam::{account}:oidc-provider/{provider}",
        partition.name
    );
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ServiceAccountWebIdentity",
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{provider}:sub"): format!("system:serviceaccount:{namespace}:{service_account}"),
                format!("{provider}:aud"): STS_AUDIENCE,
            }},
        }],
    })
}

/// The EKS Pod Identity trust policy: the EKS Auth service may assume the
/// role for `service_account` of `namespace`, with `sts:AssumeRole` and
/// `sts:TagSession` ("Create IAM role with trust policy required by EKS Pod
/// Identity", EKS User Guide). The same service principal in every
/// partition: the China regions' copy of that page names it too.
///
/// The condition reads the session tags EKS Pod Identity adds
/// (`kubernetes-namespace`, `kubernetes-service-account`; "Enable or
/// disable session tags", ibid.): an association created with
/// `disableSessionTags` gets no such tags and would be refused.
pub fn pod_identity_trust_policy(namespace: &str, service_account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "EksPodIdentity",
            "Effect": "Allow",
            "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringEquals": {
                "aws:RequestTag/kubernetes-namespace": namespace,
                "aws:RequestTag/kubernetes-service-account": service_account,
            }},
        }],
    })
}

/// The service that assumes roles for EKS Pod Identity associations.
pub const POD_IDENTITY_PRINCIPAL: &str = "pods.eks.amazonaws.com";

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
            Partition::of("ap-northeast-1"),
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

    #[test]
    fn the_pod_identity_trust_lets_eks_assume_and_tag_for_one_service_account() {
        let trust = pod_identity_trust_policy("ssm-operator", "ssm-operator");
        assert_eq!(
            trust,
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "EksPodIdentity",
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {"StringEquals": {
                    "aws:RequestTag/kubernetes-namespace": "ssm-operator",
                    "aws:RequestTag/kubernetes-service-account": "ssm-operator",
                }},
            }]})
        );
    }

    #[test]
    fn in_china_the_trust_names_the_aws_cn_provider_and_the_same_audience() {
        let issuer = "oidc.eks.cn-north-1.amazonaws.com.cn/id/EXAMPLE";
        let trust = trust_policy(
            Partition::of("cn-north-1"),
            ACCOUNT,
            issuer,
            "payments",
            "reader",
        );
        let statement = &trust["Statement"][0];
        assert_eq!(
            statement["Principal"]["Federated"],
            format!("arn:aws-cn:iam::{ACCOUNT}:oidc-provider/{issuer}")
        );
        assert_eq!(
            statement["Condition"]["StringEquals"][format!("{issuer}:aud")],
            "sts.amazonaws.com"
        );
    }
}
