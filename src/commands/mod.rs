//! The command line. Every flag can also be set by an environment variable.

pub mod check;
pub mod convert;
mod manifest;
pub mod policy;

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::reconcile::tenancy::Tenancy;
use crate::runtime::Settings;
use crate::runtime::leader::LeaseConfig;
use crate::runtime::pace::Pace;
use crate::telemetry::logs::LogFormat;

#[derive(Parser, Debug)]
#[command(
    name = "ssm-operator",
    version,
    about = "Keeps Kubernetes Secrets in sync with AWS SSM Parameter Store"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator.
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions (SsmParameter, ClusterSsmParameter)
    /// as YAML documents.
    Crd {
        /// Only this one: `SsmParameter` or `ClusterSsmParameter`.
        #[arg(long)]
        kind: Option<crate::api::CrdKind>,
    },
    /// Print the least-privilege IAM permissions and IRSA trust policies an
    /// SsmParameter's identity needs.
    Policy(crate::commands::policy::PolicyArgs),
    /// Tell, before any Secret is written, whether an SsmParameter's identity
    /// can read and decrypt each of its parameters, and what is missing.
    Check(crate::commands::check::CheckArgs),
    /// Print External Secrets Operator manifests (ExternalSecrets and their
    /// stores, Parameter Store provider) as SsmParameters; report on stderr
    /// what has no equivalent.
    Convert(crate::commands::convert::ConvertArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Region of parameters whose SsmParameter names none.
    #[arg(long, env = "AWS_REGION")]
    pub region: String,

    /// Namespaces to watch, comma-separated; empty watches every namespace.
    #[arg(long, env = "SSM_OPERATOR_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,

    /// Serve ClusterSsmParameters (which takes cluster-wide permissions).
    /// Default: when watching every namespace.
    #[arg(long, env = "SSM_OPERATOR_CLUSTER_SSM_PARAMETERS")]
    pub cluster_ssm_parameters: Option<bool>,

    /// How long a batch of reads waits at most for reconciles still on their
    /// way to share its GetParameters calls (it goes out as soon as they have
    /// joined; the window only bounds the wait for one that stalls).
    #[arg(long, env = "SSM_OPERATOR_BATCH_WINDOW", default_value = "250ms", value_parser = parse_millis)]
    pub batch_window: Duration,

    /// SSM reads per second per account and region (AWS's default quota is
    /// 40/s, shared by everyone in the account).
    #[arg(long, env = "SSM_OPERATOR_AWS_READ_RATE", default_value_t = crate::batch::budget::DEFAULT_READS_PER_SECOND)]
    pub aws_read_rate: f64,

    /// Reconciles running at once; the rest wait their turn in the queue, so
    /// that a backlog holds no Secret in memory.
    #[arg(long, env = "SSM_OPERATOR_MAX_CONCURRENT_RECONCILES", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,

    /// Requests per second to the API server (watches aside), as client-go's
    /// QPS: thousands of SsmParameters syncing at once write at this pace
    /// instead of as fast as the API server accepts.
    #[arg(long, env = "SSM_OPERATOR_KUBE_API_QPS", default_value_t = 500.0)]
    pub kube_api_qps: f64,

    /// Requests to the API server that may go at once after a quiet spell.
    #[arg(long, env = "SSM_OPERATOR_KUBE_API_BURST", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub kube_api_burst: u32,

    /// The most parameters one `path` import may hold: listing a larger path
    /// stops there (InvalidSpec), so that one tenant's path cannot spend the
    /// account's SSM quota for everyone.
    #[arg(long, env = "SSM_OPERATOR_MAX_PATH_PARAMETERS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_path_parameters: u64,

    /// Let SsmParameters read AWS as a ServiceAccount of their namespace
    /// (`identity.serviceAccountName`). Needs `serviceaccounts/token` create.
    #[arg(long, env = "SSM_OPERATOR_SERVICE_ACCOUNT_IDENTITIES", default_value_t = true, action = clap::ArgAction::Set)]
    pub service_account_identities: bool,

    /// Namespaces (comma-separated globs) whose SsmParameters may read AWS
    /// with the operator's own identity. In a shared cluster, name only the
    /// platform's namespaces, so that tenants must bring their own identity.
    /// Default: none — no namespace shares the operator's role; `*` shares
    /// it with every namespace.
    #[arg(
        long,
        env = "SSM_OPERATOR_OPERATOR_IDENTITY_NAMESPACES",
        value_delimiter = ','
    )]
    pub operator_identity_namespaces: Vec<String>,

    /// Role ARNs (comma-separated globs) that ClusterSsmParameters may chain
    /// to from the operator's identity with `template.identity.roleArn`.
    /// Default: none.
    #[arg(long, env = "SSM_OPERATOR_CLUSTER_ROLE_ARNS", value_delimiter = ',')]
    pub cluster_role_arns: Vec<String>,

    /// Lifetime asked of STS for every identity's credentials: 15m to 12h,
    /// and no more than the roles' MaxSessionDuration. Chained
    /// `identity.roleArn` sessions last at most 1h, as AWS allows.
    #[arg(long, env = "SSM_OPERATOR_AWS_SESSION_DURATION", default_value = "1h", value_parser = parse_session_duration)]
    pub aws_session_duration: Duration,

    /// Chained `identity.roleArn` sessions also set `SourceIdentity` to
    /// their session name, `ssm-operator.<namespace>`. The target roles'
    /// trust policies must allow `sts:SetSourceIdentity`.
    #[arg(long, env = "SSM_OPERATOR_CHAINED_SOURCE_IDENTITY", default_value_t = false, action = clap::ArgAction::Set)]
    pub chained_source_identity: bool,

    /// Fill `status.parameters[].keyId` with the ARN of each SecureString's
    /// KMS key. The reading roles must also be allowed
    /// `ssm:DescribeParameters` (on `*`) and `kms:DescribeKey` on the keys;
    /// without them keyId stays empty and nothing else changes.
    #[arg(long, env = "SSM_OPERATOR_REPORT_KEY_IDS", default_value_t = false, action = clap::ArgAction::Set)]
    pub report_key_ids: bool,

    /// SQS queues (URLs, comma-separated) an EventBridge rule sends
    /// Parameter Store's change events to: the SsmParameters that read a
    /// changed parameter read it again within seconds, whatever their
    /// `refreshInterval`. Read with the operator's own identity
    /// (`sqs:ReceiveMessage`, `sqs:DeleteMessage`, `sqs:GetQueueAttributes`).
    #[arg(long, env = "SSM_OPERATOR_CHANGE_EVENT_QUEUES", value_delimiter = ',', value_parser = parse_queue)]
    pub change_event_queues: Vec<Option<crate::events::queue::Queue>>,

    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "SSM_OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: std::net::SocketAddr,

    /// Reconcile only while holding a Lease, so that several replicas can
    /// run with one active.
    #[arg(long, env = "SSM_OPERATOR_LEADER_ELECT", default_value_t = false, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Namespace of the Lease. Default: the operator's own (its Pod's, or
    /// the kubeconfig context's).
    #[arg(long, env = "SSM_OPERATOR_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Name of the Lease.
    #[arg(long, env = "SSM_OPERATOR_LEASE_NAME", default_value = "ssm-operator")]
    pub lease_name: String,

    /// This replica's name in the Lease, unique among the replicas (the
    /// chart sets it to the Pod's name). Needed with `--leader-elect`: a
    /// name two replicas shared would make both believe they lead.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,

    /// Log format.
    #[arg(long, env = "SSM_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `ssm_operator=debug,kube=info`.
    #[arg(long, env = "SSM_OPERATOR_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

impl RunArgs {
    /// What the runtime needs of these flags; refused when they cannot
    /// work together.
    pub fn settings(self) -> anyhow::Result<Settings> {
        let leader_election = match (self.leader_elect, self.pod_name.filter(|n| !n.is_empty())) {
            (false, _) => None,
            (true, None) => anyhow::bail!(
                "--leader-elect needs this replica's own name in the Lease: set POD_NAME (the \
                 chart sets it from the Pod's metadata.name) or --pod-name"
            ),
            // An empty namespace is the operator's own, known once connected.
            (true, Some(pod)) => Some(LeaseConfig::new(
                self.lease_namespace.unwrap_or_default(),
                self.lease_name,
                pod,
            )),
        };
        Ok(Settings {
            region: self.region,
            cluster_ssm_parameters: (self.cluster_ssm_parameters)
                .unwrap_or(self.watch_namespaces.is_empty()),
            watch_namespaces: self.watch_namespaces,
            batch_window: self.batch_window,
            aws_read_rate: self.aws_read_rate,
            max_concurrent_reconciles: self.max_concurrent_reconciles,
            kube_api_pace: Pace {
                qps: self.kube_api_qps,
                burst: self.kube_api_burst,
            },
            max_path_parameters: usize::try_from(self.max_path_parameters).unwrap_or(usize::MAX),
            tenancy: Tenancy {
                service_account_identities: self.service_account_identities,
                // The chart passes an empty list as an empty variable.
                operator_identity_namespaces: self
                    .operator_identity_namespaces
                    .into_iter()
                    .filter(|glob| !glob.is_empty())
                    .collect(),
                cluster_role_arns: (self.cluster_role_arns.into_iter())
                    .filter(|glob| !glob.is_empty())
                    .collect(),
            },
            aws_session_duration: self.aws_session_duration,
            chained_source_identity: self.chained_source_identity,
            report_key_ids: self.report_key_ids,
            http_addr: self.http_addr,
            leader_election,
            // The chart passes an empty list as an empty variable.
            change_event_queues: self.change_event_queues.into_iter().flatten().collect(),
        })
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    match crate::reconcile::plan::parse_interval(text) {
        Ok(Some(duration)) => Ok(duration),
        _ => Err(format!("{text:?} is not a duration such as 15m or 1h")),
    }
}

/// A session duration STS can grant: "DurationSeconds … Minimum value of
/// 900. Maximum value of 43200." (STS API Reference, AssumeRole and
/// AssumeRoleWithWebIdentity).
fn parse_session_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if !(MIN_SESSION..=MAX_SESSION).contains(&duration) {
        return Err(format!(
            "{text:?} is not a session AWS grants: STS sessions last from 15m to 12h \
             (and no longer than the role's MaxSessionDuration)"
        ));
    }
    Ok(duration)
}

const MIN_SESSION: Duration = Duration::from_secs(900);
const MAX_SESSION: Duration = Duration::from_secs(43_200);

/// A queue URL, or nothing for an empty item.
pub(crate) fn parse_queue(text: &str) -> Result<Option<crate::events::queue::Queue>, String> {
    match text.trim() {
        "" => Ok(None),
        url => crate::events::queue::Queue::parse(url).map(Some),
    }
}

fn parse_millis(text: &str) -> Result<Duration, String> {
    let millis = text.strip_suffix("ms").unwrap_or(text);
    millis
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{text:?} is not a duration in milliseconds such as 50ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_duration_sts_would_refuse_is_refused_at_start_up() {
        let parse = |duration: &str| {
            let args = ["ssm-operator", "run", "--region", "ap-northeast-1"];
            let extra = ["--aws-session-duration", duration];
            Cli::try_parse_from(args.iter().chain(&extra)).map(|cli| match cli.command {
                Command::Run(args) => args.aws_session_duration,
                _ => unreachable!(),
            })
        };
        assert_eq!(parse("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse("12h").unwrap(), Duration::from_secs(43_200));
        for refused in ["60s", "14m", "13h"] {
            let error = parse(refused).unwrap_err().to_string();
            assert!(error.contains("from 15m to 12h"), "{refused}: {error}");
        }
    }

    #[test]
    fn the_operators_identity_is_shared_with_no_namespace_unless_listed() {
        let settings = |extra: &[&str]| {
            let args = ["ssm-operator", "run", "--region", "ap-northeast-1"];
            let cli = Cli::parse_from(args.iter().chain(extra));
            match cli.command {
                Command::Run(args) => {
                    (*args)
                        .settings()
                        .unwrap()
                        .tenancy
                        .operator_identity_namespaces
                }
                _ => Vec::new(),
            }
        };
        assert_eq!(settings(&[]), Vec::<String>::new());
        assert_eq!(
            settings(&["--operator-identity-namespaces", ""]),
            Vec::<String>::new()
        );
        assert_eq!(
            settings(&["--operator-identity-namespaces", "platform-*,ops"]),
            vec!["platform-*", "ops"]
        );
    }

    #[test]
    fn run_flags_parse() {
        let cli = Cli::parse_from([
            "ssm-operator",
            "run",
            "--region",
            "ap-northeast-1",
            "--watch-namespaces",
            "a,b",
            "--batch-window",
            "20ms",
            "--log-format",
            "text",
        ]);
        let Command::Run(args) = cli.command else {
            panic!("expected run");
        };
        assert_eq!(args.region, "ap-northeast-1");
        assert_eq!(args.watch_namespaces, vec!["a", "b"]);
        assert_eq!(args.batch_window, Duration::from_millis(20));
        assert_eq!(args.log_format, LogFormat::Text);
    }

    #[test]
    fn change_event_queues_are_read_from_the_flag_and_a_bad_url_stops_the_start() {
        let run = |queues: &str| {
            Cli::try_parse_from([
                "ssm-operator",
                "run",
                "--region",
                "ap-northeast-1",
                "--change-event-queues",
                queues,
            ])
        };
        let Ok(Cli {
            command: Command::Run(args),
        }) = run("https://sqs.eu-west-1.amazonaws.com/111122223333/changes,")
        else {
            panic!("expected run");
        };
        let queues = args.settings().unwrap().change_event_queues;
        let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            names,
            ["changes"],
            "the empty item of an empty chart value is no queue"
        );
        let refused = run("arn:aws:sqs:eu-west-1:111122223333:changes").unwrap_err();
        assert!(
            refused.to_string().contains("not an SQS queue URL"),
            "{refused}"
        );
    }

    #[test]
    fn leader_election_needs_a_name_of_this_replica_and_leases_in_its_own_namespace() {
        let settings = |extra: &[&str]| {
            let args = [
                "ssm-operator",
                "run",
                "--region",
                "ap-northeast-1",
                "--leader-elect=true",
            ];
            let Command::Run(args) = Cli::parse_from(args.iter().chain(extra)).command else {
                panic!("expected run");
            };
            (*args).settings()
        };
        if std::env::var_os("POD_NAME").is_none() {
            let refused = settings(&[]).unwrap_err().to_string();
            assert!(refused.contains("POD_NAME"), "{refused}");
        }
        let lease = settings(&["--pod-name", "ssm-operator-7d9f-x2"])
            .unwrap()
            .leader_election
            .unwrap();
        assert_eq!(lease.identity, "ssm-operator-7d9f-x2");
        assert_eq!(lease.namespace, "", "the operator's own, once connected");
    }
}
