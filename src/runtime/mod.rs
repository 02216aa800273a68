//! What makes the operator a running process: [`run`], the API client,
//! the controller wiring and the guard around each reconcile, leader
//! election in terms, and the admin server.

pub mod admin;
pub mod backlog;
pub mod campaign;
pub mod changes;
pub mod client;
pub mod cluster;
pub mod controller;
pub mod guard;
pub mod held;
pub mod leader;
pub mod pace;
pub mod relist;
pub mod retry_after;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::aws;
use crate::batch::budget::Budgets;
use crate::events::sqs::SqsMailbox;
use crate::reconcile::tenancy::Tenancy;
use crate::telemetry::metrics::Metrics;
use changes::ChangeEvents;
use leader::LeaseConfig;
use pace::Pace;

/// How the operator runs, whatever set it (flags, environment, a test).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Region of parameters whose SsmParameter names none.
    pub region: String,
    /// Empty: every namespace.
    pub watch_namespaces: Vec<String>,
    /// Whether to serve ClusterSsmParameters.
    pub cluster_ssm_parameters: bool,
    /// The longest a batch of reads waits for reconciles still on their way.
    pub batch_window: Duration,
    /// SSM reads per second per account and region.
    pub aws_read_rate: f64,
    /// Reconciles running at once.
    pub max_concurrent_reconciles: u16,
    /// The client's own pace of requests to the API server.
    pub kube_api_pace: Pace,
    /// The most parameters one path import may hold.
    pub max_path_parameters: usize,
    pub tenancy: Tenancy,
    /// Lifetime asked of STS for every identity's credentials.
    pub aws_session_duration: Duration,
    /// Chained sessions also set `SourceIdentity` (their session name).
    pub chained_source_identity: bool,
    /// Decrypting reads also look up each SecureString's KMS key.
    pub report_key_ids: bool,
    /// Address of the admin server.
    pub http_addr: SocketAddr,
    /// Reconcile only while holding this Lease; `None`: always.
    pub leader_election: Option<LeaseConfig>,
    /// SQS queues of Parameter Store change events to read.
    pub change_event_queues: Vec<crate::events::queue::Queue>,
}

/// Runs the operator until SIGTERM or Ctrl-C: the admin server at once,
/// the controller whenever this process leads (with leader election on).
pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    let client = client::connect(settings.kube_api_pace).await?;
    if let Some(lease) = &mut settings.leader_election
        && lease.namespace.is_empty()
    {
        // The Pod's own namespace (its ServiceAccount's), or the context's.
        lease.namespace = client.default_namespace().to_owned();
    }
    let metrics = Arc::new(Metrics::new());
    let base = aws::base_config(&settings.region).await;
    let operator = aws::operator_identity(&settings.region).await;
    // Tenant tokens need the API server; without the feature, none are asked.
    let tokens = settings
        .tenancy
        .service_account_identities
        .then(|| client.clone());
    let operator_account = aws::OperatorAccount::from_environment();
    let identities = aws::credentials::Identities::new(
        operator,
        base.clone(),
        tokens,
        settings.aws_session_duration,
    )
    .with_source_identity(settings.chained_source_identity)
    .with_operator_account(operator_account.clone());
    let identities = Arc::new(identities);
    let change_events = (!settings.change_event_queues.is_empty()).then(|| {
        let mailboxes = (settings.change_event_queues.iter())
            .map(|queue| {
                Arc::new(SqsMailbox::new(
                    &base,
                    identities.clone(),
                    queue.clone(),
                    &settings.region,
                    metrics.clone(),
                ))
            })
            .collect();
        Arc::new(ChangeEvents {
            mailboxes,
            operator_account: operator_account.clone(),
        })
    });
    let budgets = Arc::new(
        Budgets::new(settings.aws_read_rate).with_operator_account(operator_account.clone()),
    );
    let store = Arc::new(
        aws::SsmParameterStore::new(base, identities)
            .with_key_ids(settings.report_key_ids)
            .with_retry_gate(budgets.clone()),
    );

    let shutdown = futures::FutureExt::shared(Box::pin(shutdown_signal()));
    let (ready, readiness) = tokio::sync::watch::channel(false);
    let admin = tokio::spawn(admin::serve(
        settings.http_addr,
        metrics.clone(),
        readiness,
        shutdown.clone(),
    ));

    tracing::info!(region = %settings.region, namespaces = ?settings.watch_namespaces, "starting");
    let wiring = controller::Wiring {
        settings,
        metrics,
        ready: Arc::new(ready),
        budgets,
        fanout: Default::default(),
        change_events,
    };
    let ctx = wiring.context(&client, store);
    match wiring.settings.leader_election.clone() {
        None => controller::run(client, &wiring, ctx, shutdown.clone()).await,
        Some(config) => {
            // A standby is ready: it serves its purpose by waiting, and a
            // rolling update must not stall on it.
            let _ = wiring.ready.send(true);
            let term = |end| controller::run(client.clone(), &wiring, ctx.clone(), end);
            campaign::lead_in_terms(client.clone(), config, shutdown.clone(), term).await?;
        }
    }
    admin.await??;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down; finishing reconciles in flight");
}
