//! What makes the operator a running process: [`run`], the controller
//! wiring, leader election and the admin server.

pub mod admin;
pub mod controller;
pub mod leader;

use std::sync::Arc;

use crate::reconcile::tenancy;
use crate::telemetry::metrics;
use crate::{aws, commands};

/// Runs the operator until SIGTERM or Ctrl-C: the admin server at once,
/// the controller once this process leads (with leader election on).
pub async fn run(args: commands::RunArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let metrics = Arc::new(metrics::Metrics::new());
    let base = aws::base_config(&args.region).await;
    let operator = aws::operator_identity(&args.region).await;
    // Tenant tokens need the API server; without the feature, none are asked.
    let tokens = args.service_account_identities.then(|| client.clone());
    let identities = aws::credentials::Identities::new(
        operator,
        base.clone(),
        tokens,
        args.aws_session_duration,
    );
    let store = Arc::new(aws::SsmParameterStore::new(base, Arc::new(identities)));

    let shutdown = futures::FutureExt::shared(Box::pin(shutdown_signal()));
    let (ready, readiness) = tokio::sync::watch::channel(false);
    let admin = tokio::spawn(admin::serve(
        args.http_addr,
        metrics.clone(),
        readiness,
        shutdown.clone(),
    ));

    let leadership = match &args.leader_elect.then(|| lease(&args)) {
        None => None,
        // A standby is ready: it serves its purpose by waiting, and a rolling
        // update must not stall on it.
        Some(config) => {
            let _ = ready.send(true);
            tokio::select! {
                leading = leader::acquire(client.clone(), config.clone()) => Some(leading?),
                () = shutdown.clone() => return Ok(()),
            }
        }
    };
    tracing::info!(region = %args.region, namespaces = ?args.watch_namespaces, "starting");
    let settings = controller::Settings {
        default_region: args.region,
        watch_namespaces: args.watch_namespaces,
        batch_window: args.batch_window,
        aws_read_rate: args.aws_read_rate,
        tenancy: tenancy::Tenancy {
            service_account_identities: args.service_account_identities,
            operator_identity_namespaces: args.operator_identity_namespaces,
        },
        metrics,
        ready,
    };
    let controller = controller::run(client, settings, store, shutdown.clone());
    match &leadership {
        None => controller.await,
        Some(leading) => tokio::select! {
            () = controller => {},
            () = leading.lost() => anyhow::bail!("lost the leader lease; exiting so that a standby takes over"),
        },
    }
    if let Some(leading) = leadership {
        leading.release().await;
    }
    admin.await??;
    tracing::info!("stopped");
    Ok(())
}

fn lease(args: &commands::RunArgs) -> leader::LeaseConfig {
    leader::LeaseConfig::new(
        args.lease_namespace.clone(),
        args.lease_name.clone(),
        args.pod_name.clone(),
    )
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
