//! One test's AWS resources, as the administrator creates them: KMS keys,
//! parameters, IAM roles and their policies.

use serde_json::{Value, json};

use super::{admin_iam, admin_kms, admin_ssm};
use crate::env::{ACCOUNT, EnvInfo, REGION};

/// The administrator's clients, working for the test `id`.
pub struct Admin {
    pub iam: aws_sdk_iam::Client,
    pub kms: aws_sdk_kms::Client,
    pub ssm: aws_sdk_ssm::Client,
    env: &'static EnvInfo,
    /// Describes every key this creates.
    id: String,
}

impl Admin {
    pub async fn new(env: &'static EnvInfo, id: &str) -> Self {
        Self {
            iam: admin_iam(env).await,
            kms: admin_kms(env).await,
            ssm: admin_ssm(env).await,
            env,
            id: id.to_owned(),
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

    /// Alias `alias/<name>` for key `key_arn`; returns the alias.
    pub async fn create_alias(&self, name: &str, key_arn: &str) -> String {
        let alias = format!("alias/{name}");
        self.kms
            .create_alias()
            .alias_name(&alias)
            .target_key_id(key_arn)
            .send()
            .await
            .expect("create alias");
        alias
    }

    /// A SecureString encrypted with `key`.
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

    /// An IAM role `name` that the web identity token subject `sub` of this
    /// cluster may assume, with `policy` inline; returns its ARN.
    pub async fn create_web_identity_role(&self, name: &str, sub: &str, policy: &Value) -> String {
        let trust = web_identity_trust(&self.env.oidc_issuer, sub);
        self.create_role_with_trust(name, &trust, policy).await
    }

    /// An IAM role with trust policy `trust` and `policy` inline; its name is
    /// `name` cut to IAM's 64 characters. Returns its ARN.
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

    /// Sets how long sessions of role `role_name` may last (IAM's
    /// MaxSessionDuration, 1 hour unless set).
    pub async fn set_max_session_duration(&self, role_name: &str, seconds: i32) {
        self.iam
            .update_role()
            .role_name(role_name)
            .max_session_duration(seconds)
            .send()
            .await
            .expect("update role");
    }

    /// Replaces the trust policy of role `role_name`.
    pub async fn update_trust(&self, role_name: &str, trust: &Value) {
        self.iam
            .update_assume_role_policy()
            .role_name(role_name)
            .policy_document(trust.to_string())
            .send()
            .await
            .expect("update the role's trust policy");
    }

    /// Sets the inline policy of role `role_name` (replacing the last one).
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
}

/// A trust policy admitting the web identity tokens of `issuer` (the
/// cluster's OIDC issuer URL) with subject `sub` and audience STS.
pub fn web_identity_trust(issuer: &str, sub: &str) -> Value {
    let issuer = issuer.trim_start_matches("https://");
    json!({
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
    })
}

/// May read every parameter whose name starts with `prefix` (`<prefix>-…`
/// or `/<prefix>/…`) and decrypt with `key`.
pub fn read_prefix_policy(prefix: &str, key: &str) -> Value {
    let params = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{prefix}*");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["ssm:GetParameters", "ssm:GetParametersByPath"], "Resource": params},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key},
        ],
    })
}
