//! The ClusterSsmParameter controller: its objects, every namespace (by
//! metadata) and the SsmParameters it keeps (by their label) — each of
//! which wakes the ClusterSsmParameters it concerns.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};

use crate::api::{ClusterSsmParameter, SsmParameter};
use crate::cluster::{self, Caches, ClusterContext, Fanout, children};
use crate::names::CLUSTER_LABEL;
use crate::reconcile::ReconcileError;

/// Runs until `shutdown` resolves; publishes its caches to `fanout` for the
/// SsmParameter reconciles.
pub async fn run(
    client: Client,
    fanout: &Fanout,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let owners = Api::<ClusterSsmParameter>::all(client.clone());
    let controller = Controller::new(owners, watcher::Config::default().any_semantic());
    let (namespaces, writer) = reflector::store();
    let namespace_events = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        watcher::Config::default(),
    )
    .reflect(writer)
    .touched_objects();
    let (kept, writer) = reflector::store();
    let kept_events = watcher(
        Api::<SsmParameter>::all(client.clone()),
        watcher::Config::default().labels(CLUSTER_LABEL),
    )
    .default_backoff()
    .reflect(writer)
    .touched_objects();
    let caches = Caches {
        owners: controller.store(),
        namespaces,
        children: kept,
    };
    fanout.set(caches.clone());
    let every_owner = caches.owners.clone();
    let ctx = Arc::new(ClusterContext { client, caches });
    controller
        // A namespace's labels may matter to any of them.
        .watches_stream(namespace_events, move |_| {
            (every_owner.state().iter())
                .map(|o| ObjectRef::from_obj(&**o))
                .collect::<Vec<_>>()
        })
        .watches_stream(kept_events, |child: SsmParameter| {
            children::owner_of(&child).map(|(name, _)| ObjectRef::new(name))
        })
        .graceful_shutdown_on(shutdown)
        .run(cluster::reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ClusterSsmParameter reconcile did not complete");
            }
        })
        .await;
}

fn error_policy(
    owner: Arc<ClusterSsmParameter>,
    error: &ReconcileError,
    _: Arc<ClusterContext>,
) -> Action {
    use kube::ResourceExt;
    tracing::warn!(%error, cluster_ssm_parameter = owner.name_any(), "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}
