//! Leading in terms: campaign for the Lease, reconcile while this process
//! holds it, stop when it is lost, and campaign again.
//!
//! The process lives on across terms, with its credentials cache and its
//! memory of what it read: an API server that was away for longer than the
//! Lease lasts costs a new term, not a restart that reads every SecureString
//! again.

use std::future::Future;
use std::pin::Pin;

use futures::FutureExt as _;
use futures::future::{Shared, select};
use kube::Client;

use super::leader::{self, LeaseConfig};

/// Resolves when a term ends: on shutdown, or when the Lease is lost.
pub type TermEnd = Shared<Pin<Box<dyn Future<Output = ()> + Send>>>;

/// Runs `term` each time this process takes the Lease, until `shutdown`;
/// `term` must return soon after the [`TermEnd`] it is given resolves. Fails
/// only when taking the Lease cannot succeed (RBAC forbids it).
pub async fn lead_in_terms<S, T, Fut>(
    client: Client,
    config: LeaseConfig,
    shutdown: S,
    mut term: T,
) -> Result<(), kube::Error>
where
    S: Future<Output = ()> + Clone + Send + Unpin + 'static,
    T: FnMut(TermEnd) -> Fut,
    Fut: Future<Output = ()>,
{
    // Between stepping down and the earliest takeover by a standby there is
    // `renew_every`: reconciles still running after half of it are dropped.
    let grace = config.renew_every / 2;
    loop {
        let leading = tokio::select! {
            leading = leader::acquire(client.clone(), config.clone()) => leading?,
            () = shutdown.clone() => return Ok(()),
        };
        let lost = leading.lost().boxed().shared();
        let end: Pin<Box<dyn Future<Output = ()> + Send>> =
            Box::pin(select(shutdown.clone(), lost.clone()).map(drop));
        let reconciling = term(end.shared());
        let overdue = async {
            lost.clone().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = reconciling => {}
            () = overdue => {
                tracing::warn!(lease = %config.name, "reconciles still running when the lease was lost were dropped");
            }
        }
        if shutdown.clone().now_or_never().is_some() {
            leading.release().await;
            return Ok(());
        }
        tracing::warn!(lease = %config.name, identity = %config.identity, "stopped reconciling: the lease was lost; campaigning again");
    }
}
