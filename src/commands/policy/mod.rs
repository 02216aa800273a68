//! `ssm-operator policy`: the least-privilege IAM policy that reading one
//! SsmParameter needs ([`grants`]), and the trust policy (IRSA, or EKS Pod
//! Identity for the operator's own role) of the ServiceAccount that reads
//! it ([`trust`]).

pub mod grants;
pub mod trust;

use std::path::PathBuf;

use anyhow::Context as _;
use kube::ResourceExt;
use serde_json::{Value, json};

use crate::api::SsmParameter;
use crate::aws::describe::{AwsLookup, WithoutAws};
use crate::aws::partition::Partition;
use crate::aws::{self, Identity};
use crate::commands::manifest;
use crate::reconcile::plan::Plan;

/// The ServiceAccount (and its namespace) the operator runs as by default.
const OPERATOR_SERVICE_ACCOUNT: &str = "ssm-operator";

/// `ssm-operator policy`: print the IAM policies an SsmParameter's reader needs.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("ssm_parameter").required(true).args(["file", "name"])))]
pub struct PolicyArgs {
    /// An SsmParameter manifest (YAML).
    #[arg(long, short = 'f', conflicts_with = "namespace")]
    pub file: Option<PathBuf>,

    /// Namespace of the live SsmParameter. Default: the kubeconfig's.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// Name of a live SsmParameter to read from the cluster.
    pub name: Option<String>,

    /// Region of parameters whose SsmParameter names none.
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,

    /// The AWS account of the parameters. Default: the account of the
    /// ambient AWS credentials (STS GetCallerIdentity).
    #[arg(long, value_parser = parse_account)]
    pub account: Option<String>,

    /// The cluster's OIDC issuer URL, for the trust policy. Default: the one
    /// the API server announces, when a cluster is reachable.
    #[arg(long)]
    pub oidc_issuer: Option<String>,

    /// The ServiceAccount whose role reads AWS. Default: the SsmParameter's
    /// `spec.identity.serviceAccountName`, else `ssm-operator`.
    #[arg(long)]
    pub service_account: Option<String>,

    /// Namespace of that ServiceAccount. Default: the SsmParameter's own for
    /// `spec.identity.serviceAccountName`, else `ssm-operator`.
    #[arg(long)]
    pub service_account_namespace: Option<String>,

    /// Do not ask AWS which KMS keys the parameters use: grant kms:Decrypt on
    /// any key, through SSM only.
    #[arg(long, requires = "account")]
    pub no_aws: bool,

    /// The operator's own role gets its credentials from EKS Pod Identity
    /// instead of IRSA: print the Pod Identity trust policy. Not for
    /// `spec.identity.serviceAccountName`, whose tokens the operator
    /// exchanges itself (IRSA's trust).
    #[arg(long, conflicts_with = "oidc_issuer")]
    pub pod_identity: bool,

    /// SQS queues of change events the operator reads (its
    /// `--change-event-queues`): the permissions policy also allows reading
    /// them, a statement for the operator's own role.
    #[arg(long, env = "SSM_OPERATOR_CHANGE_EVENT_QUEUES", value_delimiter = ',', value_parser = crate::commands::parse_queue)]
    pub change_event_queues: Vec<Option<crate::events::queue::Queue>>,
}

fn parse_account(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a 12-digit AWS account id"))
    }
}

/// Prints `{"permissionsPolicy": …, "trustPolicy": …}` to stdout; what the
/// reader should know about them goes to stderr.
pub async fn run(args: PolicyArgs) -> anyhow::Result<()> {
    let obj = manifest::load(
        args.file.as_deref(),
        args.namespace.as_deref(),
        args.name.as_deref(),
    )
    .await?;
    let region = args
        .region
        .clone()
        .or_else(|| obj.spec.region.clone())
        .context("the SsmParameter names no region: pass --region or set AWS_REGION")?;
    // Whose identity reads does not change what it reads.
    let plan = Plan::of(&obj, &region, Identity::default())?;
    let (account, mut permissions) = permissions(&args, &plan, &region).await?;
    let queues: Vec<_> = args.change_event_queues.iter().flatten().cloned().collect();
    if !queues.is_empty() {
        let statement = grants::change_events_statement(&queues, &region);
        if let Some(statements) = permissions["Statement"].as_array_mut() {
            statements.push(statement);
        }
        if obj.spec.identity.is_some() {
            eprintln!(
                "note: the ReadChangeEvents statement belongs on the operator's own role, which \
                 reads the queues; the rest on the role the SsmParameter reads as"
            );
        }
    }
    let (namespace, service_account) = reader(&args, &obj)?;
    let identity = obj.spec.identity.as_ref();
    if args.pod_identity && identity.is_some_and(|i| i.service_account_name.is_some()) {
        anyhow::bail!(
            "--pod-identity: the SsmParameter reads as its namespace's ServiceAccount, whose \
             token the operator exchanges itself (IRSA); Pod Identity is only for the operator's \
             own role"
        );
    }
    if let Some(role) = identity.and_then(|i| i.role_arn.as_deref()) {
        // Pod Identity's session tags are transitive: every role chained
        // from its session must allow tagging too ("Chaining roles with
        // session tags", IAM User Guide).
        let actions = match args.pod_identity {
            true => {
                "sts:AssumeRole and sts:TagSession (Pod Identity's session tags are transitive)"
            }
            false => "sts:AssumeRole",
        };
        eprintln!(
            "note: the SsmParameter reads as {role}: the permissions policy belongs on that role, \
             which must trust the ServiceAccount's role for {actions}, and the ServiceAccount's \
             role must be allowed the same on it; the trust policy printed is the \
             ServiceAccount's role's"
        );
    }
    let trust = match args.pod_identity {
        true => trust::pod_identity_trust_policy(&namespace, &service_account),
        false => {
            let issuer = trust::oidc_issuer(args.oidc_issuer.as_deref()).await;
            trust::trust_policy(
                Partition::of(&region),
                &account,
                &issuer,
                &namespace,
                &service_account,
            )
        }
    };
    let policies = json!({"permissionsPolicy": permissions, "trustPolicy": trust});
    println!("{}", serde_json::to_string_pretty(&policies)?);
    Ok(())
}

/// The account and the permissions policy, asking AWS unless `--no-aws`.
async fn permissions(
    args: &PolicyArgs,
    plan: &Plan,
    region: &str,
) -> anyhow::Result<(String, Value)> {
    if args.no_aws {
        let account = args.account.clone().context("--no-aws needs --account")?;
        eprintln!(
            "warning: --no-aws: the parameters' KMS keys were not looked up, so kms:Decrypt is \
             granted on any key (through SSM only); run without --no-aws to name the keys"
        );
        let policy = grants::permissions_policy(plan, &account, &WithoutAws).await?;
        return Ok((account, policy));
    }
    let config = aws::ambient_config(region).await;
    let account = match &args.account {
        Some(account) => account.clone(),
        None => caller_account(&config).await?,
    };
    let lookup = AwsLookup::new(
        aws_sdk_ssm::Client::new(&config),
        aws_sdk_kms::Client::new(&config),
        &account,
    );
    let policy = grants::permissions_policy(plan, &account, &lookup).await?;
    Ok((account, policy))
}

async fn caller_account(config: &aws_config::SdkConfig) -> anyhow::Result<String> {
    let identity = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .context("STS GetCallerIdentity, to learn the account (--account skips it)")?;
    identity
        .account
        .context("STS GetCallerIdentity named no account: pass --account")
}

/// The ServiceAccount (namespace, name) whose role reads AWS for `obj`.
fn reader(args: &PolicyArgs, obj: &SsmParameter) -> anyhow::Result<(String, String)> {
    let own = obj
        .spec
        .identity
        .as_ref()
        .and_then(|i| i.service_account_name.clone());
    let namespace = match (&args.service_account_namespace, &own) {
        (Some(namespace), _) => namespace.clone(),
        // spec.identity names a ServiceAccount of the SsmParameter's namespace.
        (None, Some(sa)) => obj.namespace().with_context(|| {
            format!(
                "the SsmParameter reads as ServiceAccount {sa} of its own namespace, which \
                 the manifest does not name: pass --service-account-namespace"
            )
        })?,
        (None, None) => OPERATOR_SERVICE_ACCOUNT.to_owned(),
    };
    let name = args
        .service_account
        .clone()
        .or(own)
        .unwrap_or_else(|| OPERATOR_SERVICE_ACCOUNT.to_owned());
    Ok((namespace, name))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    const ACCOUNT: &str = "111122223333";

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        policy: PolicyArgs,
    }

    fn parse(args: &[&str]) -> Result<PolicyArgs, clap::Error> {
        Command::try_parse_from(std::iter::once("policy").chain(args.iter().copied()))
            .map(|c| c.policy)
    }

    #[test]
    fn a_manifest_or_a_live_object_is_required_but_not_both() {
        let live = parse(&["-n", "payments", "db-credentials"]).unwrap();
        assert_eq!(live.namespace.as_deref(), Some("payments"));
        assert_eq!(live.name.as_deref(), Some("db-credentials"));
        let file = parse(&["-f", "app.yaml"]).unwrap();
        assert_eq!(file.file, Some(PathBuf::from("app.yaml")));
        assert!(parse(&[]).is_err());
        assert!(parse(&["-f", "app.yaml", "db-credentials"]).is_err());
    }

    #[test]
    fn no_aws_needs_an_account_and_accounts_are_twelve_digits() {
        assert!(parse(&["-f", "app.yaml", "--no-aws"]).is_err());
        assert!(parse(&["-f", "app.yaml", "--no-aws", "--account", "1234"]).is_err());
        let args = parse(&["-f", "app.yaml", "--no-aws", "--account", ACCOUNT]).unwrap();
        assert!(args.no_aws);
    }

    #[test]
    fn pod_identity_has_no_oidc_issuer() {
        assert!(
            parse(&["-f", "app.yaml", "--pod-identity"])
                .unwrap()
                .pod_identity
        );
        assert!(
            parse(&[
                "-f",
                "app.yaml",
                "--pod-identity",
                "--oidc-issuer",
                "https://x"
            ])
            .is_err()
        );
    }

    fn object(identity: Option<Value>, namespace: Option<&str>) -> SsmParameter {
        serde_json::from_value(json!({
            "apiVersion": "ssm-operator.io/v1alpha1",
            "kind": "SsmParameter",
            "metadata": {"name": "app", "namespace": namespace},
            "spec": {"parameters": [{"name": "x"}], "identity": identity},
        }))
        .unwrap()
    }

    #[test]
    fn the_reader_is_the_operator_unless_the_spec_or_the_flags_say_otherwise() {
        let args = parse(&["-f", "app.yaml"]).unwrap();
        let operator = object(None, Some("payments"));
        assert_eq!(
            reader(&args, &operator).unwrap(),
            ("ssm-operator".into(), "ssm-operator".into())
        );
        let own = object(
            Some(json!({"serviceAccountName": "payments-reader"})),
            Some("payments"),
        );
        assert_eq!(
            reader(&args, &own).unwrap(),
            ("payments".into(), "payments-reader".into())
        );
        let unplaced = object(Some(json!({"serviceAccountName": "payments-reader"})), None);
        assert!(reader(&args, &unplaced).is_err());
        let flags = parse(&[
            "-f",
            "app.yaml",
            "--service-account",
            "ops",
            "--service-account-namespace",
            "ops-ns",
        ])
        .unwrap();
        assert_eq!(
            reader(&flags, &own).unwrap(),
            ("ops-ns".into(), "ops".into())
        );
    }
}
