//! AWS as an administrator sets it up: the administrator's clients (here),
//! a test's keys, parameters, roles and policies ([`setup`]), and the
//! emulator's control endpoints ([`emulator`]).

pub mod emulator;
pub mod events;
pub mod setup;

use anyhow::Context as _;
use aws_credential_types::Credentials;
use serde_json::{Value, json};

use crate::env::{ACCOUNT, EnvInfo, REGION};

pub use emulator::{
    Counter, Counters, Fault, PodIdentityAssociation, associate_pod_identity, clear_faults,
    counters, inject, inject_fault, pending_faults, pod_identity_agent_uri, set_key_state,
};
pub use setup::Admin;

pub(crate) async fn admin_config(info: &EnvInfo) -> aws_config::SdkConfig {
    admin_in_region(info, REGION).await
}

/// The administrator of the emulator's default account, in `region`.
pub async fn admin_in_region(info: &EnvInfo, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(&info.aws_endpoint)
        .credentials_provider(Credentials::new(
            "AKIDADMINISTRATOR",
            "administrator",
            None,
            None,
            "tests",
        ))
        .load()
        .await
}

pub async fn admin_iam(info: &EnvInfo) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&admin_config(info).await)
}

pub async fn admin_kms(info: &EnvInfo) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&admin_config(info).await)
}

pub async fn admin_ssm(info: &EnvInfo) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&admin_config(info).await)
}

/// The emulator's administrator of `account`, working in `region`. Static
/// keys always act in the emulator's default account; the sessions of a role
/// named `OrganizationAccountAccessRole` (the administrator role AWS
/// Organizations creates in member accounts) administer the role's account.
pub async fn admin_of_account(
    info: &EnvInfo,
    account: &str,
    region: &str,
) -> anyhow::Result<aws_config::SdkConfig> {
    let sts = aws_sdk_sts::Client::new(&admin_config(info).await);
    let assumed = sts
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        ))
        .role_session_name("tests")
        .send()
        .await
        .context("assuming the administrator role of another account")?;
    let credentials = assumed
        .credentials
        .context("AssumeRole without credentials")?;
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(&info.aws_endpoint)
        .credentials_provider(Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            None,
            "tests",
        ))
        .load()
        .await)
}

/// An IAM policy document allowing `actions` on `resources`.
pub fn allow(actions: &[&str], resources: &[String]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": resources }],
    })
}

/// The ARN of parameter `name` of the operator's account and region.
pub fn parameter_arn(name: &str) -> String {
    format!(
        "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{}",
        name.trim_start_matches('/')
    )
}

/// The key id of a KMS key ARN (the emulator's key-admin calls take ids).
pub fn key_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
