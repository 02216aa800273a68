//! `ssm-operator check`: before any Secret is written, whether the identity
//! of an SsmParameter can read and decrypt each of its parameters — and if
//! not, which permission is missing. Values are read, never printed.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use kube::ResourceExt;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};

use crate::api::{ClusterSsmParameter, SsmParameter, SyncError};
use crate::aws::arn::split_selector;
use crate::aws::credentials::Identities;
use crate::aws::{self, ParameterStore, PathQuery, Scope, SsmParameterStore};
use crate::cluster;
use crate::commands::manifest;
use crate::events::queue::Queue;
use crate::events::sqs::SqsMailbox;
use crate::reconcile::Halt;
use crate::reconcile::plan::Plan;
use crate::reconcile::read::selector_of;
use crate::reconcile::tenancy::{self, Tenancy};

/// Check one SsmParameter, as the operator would read it.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// An SsmParameter manifest (YAML).
    #[arg(long, short = 'f', conflicts_with = "name")]
    pub file: Option<PathBuf>,

    /// Namespace of a live SsmParameter (also the namespace of a manifest
    /// that names none). Default: the kubeconfig's.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// Name of a live SsmParameter.
    pub name: Option<String>,

    /// Region of parameters whose SsmParameter names none.
    #[arg(long, env = "AWS_REGION")]
    pub region: String,

    /// SQS queues of change events the operator reads (its
    /// `--change-event-queues`): also tell whether each answers the
    /// operator's own identity.
    #[arg(long, env = "SSM_OPERATOR_CHANGE_EVENT_QUEUES", value_delimiter = ',', value_parser = crate::commands::parse_queue)]
    pub change_event_queues: Vec<Option<Queue>>,
}

/// One line of the report.
struct Finding {
    subject: String,
    /// The reason it failed.
    problem: Option<String>,
    detail: String,
}

/// Runs the check; fails (exit 1) when anything would not sync.
pub async fn run(args: CheckArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let obj = ssm_parameter(&args, &client).await?;
    let tenancy = Tenancy {
        service_account_identities: true,
        operator_identity_namespaces: vec!["*".to_owned()],
        cluster_role_arns: vec!["*".to_owned()],
    };
    let base = aws::base_config(&args.region).await;
    let operator = aws::operator_identity(&args.region).await;
    let identities = Identities::new(
        operator,
        base.clone(),
        Some(client.clone()),
        std::time::Duration::from_secs(900),
    );
    let identities = Arc::new(identities);
    let store = SsmParameterStore::new(base, identities.clone());

    println!(
        "SsmParameter {}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    );
    let mut findings = Vec::new();
    let identity = match tenancy::resolve(&obj, &tenancy, &client, &LookedUp(client.clone())).await
    {
        Ok(identity) => identity,
        Err(Halt::Failed { error, .. }) => return report(vec![refused("identity", error)]),
        Err(other) => anyhow::bail!("could not resolve the identity: {other:?}"),
    };
    findings.push(match identities.credentials(&identity).await {
        Ok(_) => ok("credentials", describe(&identity)),
        Err(error) => return report(vec![refused("credentials", error)]),
    });
    let plan = match Plan::of(&obj, &args.region, identity) {
        Ok(plan) => plan,
        Err(error) => return report(vec![refused("spec", error)]),
    };
    for entry in &plan.entries {
        let subject = format!("{} → {}", entry.name, entry.key);
        findings
            .push(check_one(&store, &entry.scope, &entry.request, entry.decrypt, subject).await);
    }
    if let Some(path) = &plan.path {
        findings.extend(check_path(&store, &path.scope, &path.query).await);
    }
    for queue in args.change_event_queues.iter().flatten() {
        findings.push(check_queue(&identities, queue, &args.region).await);
    }
    report(findings)
}

/// Whether `queue` answers GetQueueAttributes as the operator's own
/// identity. ReceiveMessage and DeleteMessage are not tried: they would
/// take messages from the operator.
async fn check_queue(identities: &Arc<Identities>, queue: &Queue, region: &str) -> Finding {
    let base = aws::base_config(region).await;
    let metrics = Default::default();
    let mailbox = SqsMailbox::new(&base, identities.clone(), queue.clone(), region, metrics);
    let subject = format!("change events {queue}");
    match mailbox.visibility_timeout().await {
        Ok(timeout) => {
            let timeout = timeout.map_or("unknown".to_owned(), |t| format!("{}s", t.as_secs()));
            ok(
                &subject,
                format!(
                    "reachable (visibility timeout {timeout}; sqs:ReceiveMessage and \
                     sqs:DeleteMessage are not tried)"
                ),
            )
        }
        Err(why) => Finding {
            subject,
            problem: Some("ChangeEventQueueUnreachable".to_owned()),
            detail: why,
        },
    }
}

/// The SsmParameter to check, placed in a namespace: the tenancy rules
/// depend on it.
async fn ssm_parameter(args: &CheckArgs, client: &kube::Client) -> anyhow::Result<SsmParameter> {
    let namespace = args.namespace.as_deref();
    let mut obj = manifest::load(args.file.as_deref(), namespace, args.name.as_deref()).await?;
    if obj.metadata.namespace.is_none() {
        obj.metadata.namespace = Some(client.default_namespace().to_owned());
    }
    Ok(obj)
}

/// Who keeps an SsmParameter, asked of the API server: the
/// ClusterSsmParameter its controller reference names (listed by name:
/// the operator's role may list them, not get them) and its Namespace.
struct LookedUp(kube::Client);

impl tenancy::Keepers for LookedUp {
    fn keeper<'a>(&'a self, obj: &'a SsmParameter) -> BoxFuture<'a, tenancy::Keeper> {
        Box::pin(async move {
            let Some((name, _)) = tenancy::claimed_keeper(obj) else {
                return tenancy::Keeper::Nobody;
            };
            let owners: Api<ClusterSsmParameter> = Api::all(self.0.clone());
            let by_name = ListParams::default().fields(&format!("metadata.name={name}"));
            let owner = match owners.list(&by_name).await {
                Ok(list) => list.items.into_iter().next().map(Arc::new),
                Err(error) => {
                    return tenancy::Keeper::Unkept(format!(
                        "ClusterSsmParameter {name} could not be read: {error}"
                    ));
                }
            };
            let namespaces: Api<Namespace> = Api::all(self.0.clone());
            let namespace = match namespaces
                .get_opt(&obj.namespace().unwrap_or_default())
                .await
            {
                Ok(found) => found.map(|ns| cluster::choose::Namespace::of(&ns.metadata)),
                Err(error) => {
                    return tenancy::Keeper::Unkept(format!(
                        "its Namespace could not be read: {error}"
                    ));
                }
            };
            cluster::verdict(obj, owner, namespace.as_ref())
        })
    }
}

/// Why `request` was not found, as the operator tells it: a pinned version
/// or label of a parameter that exists is `ParameterVersionNotFound`.
async fn not_found(store: &SsmParameterStore, scope: &Scope, request: &str) -> SyncError {
    let (base, selector) = split_selector(request);
    if selector.is_some() {
        let names = [base.to_owned()];
        if let Ok(page) = store.get_parameters(scope, &names, false).await
            && !page.found.is_empty()
        {
            return SyncError::ParameterVersionNotFound {
                parameter: base.to_owned(),
                selector: selector_of(request),
            };
        }
    }
    SyncError::ParameterNotFound {
        parameters: vec![base.to_owned()],
        region: scope.region.clone(),
    }
}

/// Reads `request` without, then with decryption: the first tells SSM
/// permissions and existence, the second KMS permissions.
async fn check_one(
    store: &SsmParameterStore,
    scope: &Scope,
    request: &str,
    decrypt: bool,
    subject: String,
) -> Finding {
    let names = [request.to_owned()];
    let probe = match store.get_parameters(scope, &names, false).await {
        Ok(page) => page,
        Err(error) => return refused(&subject, error),
    };
    let Some(found) = probe.found.first() else {
        return refused(&subject, not_found(store, scope, request).await);
    };
    let what = format!("{} version {}", found.type_, found.version);
    if !decrypt || found.type_ != "SecureString" {
        return ok(&subject, format!("readable ({what})"));
    }
    match store.get_parameters(scope, &names, true).await {
        Ok(_) => ok(&subject, format!("readable and decryptable ({what})")),
        Err(error) => refused(&subject, error),
    }
}

async fn check_path(store: &SsmParameterStore, scope: &Scope, query: &PathQuery) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut next_token = None;
    loop {
        match store.get_parameters_by_path(scope, query, next_token).await {
            Err(error) => {
                findings.push(refused(&format!("path {}", query.prefix), error));
                return findings;
            }
            Ok(page) => {
                for p in &page.found {
                    findings.push(check_one(store, scope, &p.name, true, p.name.clone()).await);
                }
                match page.next_token {
                    Some(token) => next_token = Some(token),
                    None => return findings,
                }
            }
        }
    }
}

fn describe(identity: &aws::Identity) -> String {
    let first = match &identity.source {
        aws::IdentitySource::Operator => "the operator's own identity".to_owned(),
        aws::IdentitySource::ServiceAccount {
            namespace,
            name,
            role_arn,
        } => {
            format!("ServiceAccount {namespace}/{name} as {role_arn}")
        }
    };
    match &identity.chained_role {
        Some(role) => format!("{first}, then {role}"),
        None => first,
    }
}

fn ok(subject: &str, detail: String) -> Finding {
    Finding {
        subject: subject.to_owned(),
        problem: None,
        detail,
    }
}

fn refused(subject: &str, error: SyncError) -> Finding {
    Finding {
        subject: subject.to_owned(),
        detail: error.message(),
        problem: Some(error.reason().to_string()),
    }
}

fn report(findings: Vec<Finding>) -> anyhow::Result<()> {
    let mut failed = 0;
    for f in &findings {
        match &f.problem {
            None => println!("  ok      {}: {}", f.subject, f.detail),
            Some(reason) => {
                failed += 1;
                println!("  FAILED  {}: {reason}: {}", f.subject, f.detail);
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed: this SsmParameter would not sync");
    }
    println!("every parameter can be read and decrypted");
    Ok(())
}
