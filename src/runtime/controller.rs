//! Wiring of the controller: watches, triggers, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::{StreamExt, TryStreamExt, future::join_all};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::api::SsmParameter;
use crate::batch::Batcher;
use crate::batch::budget::Budgets;
use crate::names::{FORCE_SYNC_ANNOTATION, OWNER_ANNOTATION, WATCH_LABEL};
use crate::reconcile::Context;
use crate::reconcile::refreshes::Refreshes;
use crate::reconcile::report::events::Recorder;
use crate::reconcile::schedule::Schedule;
use crate::reconcile::seen::{self, SecretCache};
use crate::runtime::backlog::{self, Backlog};
use crate::runtime::client::watch_config;
use crate::runtime::guard::{self, Failure};
use crate::runtime::{Settings, relist};
use crate::telemetry::metrics::Metrics;

/// What the controller is wired with.
pub struct Wiring {
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    /// Set once every watched scope's cache is synced.
    pub ready: Arc<tokio::sync::watch::Sender<bool>>,
    /// The SSM read budgets, which the store's retries wait for too.
    pub budgets: Arc<Budgets>,
    /// The ClusterSsmParameter controller's caches, once it runs.
    pub fanout: Arc<crate::cluster::Fanout>,
    /// The queues of change events to read, if any.
    pub change_events: Option<Arc<super::changes::ChangeEvents>>,
}

impl Wiring {
    /// What every reconcile shares, for the life of the process: kept across
    /// terms of leadership, so that a leader that lost the Lease and took it
    /// back does not read every parameter again.
    pub fn context(
        &self,
        client: &Client,
        store: Arc<dyn crate::aws::ParameterStore>,
    ) -> Arc<Context> {
        let settings = &self.settings;
        Arc::new(Context {
            batcher: Batcher::start(
                store,
                self.budgets.clone(),
                self.metrics.clone(),
                settings.batch_window,
                usize::from(settings.max_concurrent_reconciles),
            ),
            default_region: settings.region.clone(),
            max_path_parameters: settings.max_path_parameters,
            recorder: Recorder::new(client.clone()),
            schedule: Schedule::default(),
            tenancy: settings.tenancy.clone(),
            metrics: self.metrics.clone(),
            in_flight: Default::default(),
            seen: Default::default(),
            own_status: Default::default(),
            refreshes: Arc::new(Refreshes::new(!settings.watch_namespaces.is_empty())),
            keepers: self.fanout.clone(),
            announcements: Default::default(),
            cached: Default::default(),
            client: client.clone(),
        })
    }
}

/// Runs until `shutdown` resolves, then finishes the reconciles in flight.
pub async fn run(
    client: Client,
    wiring: &Wiring,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    wiring.metrics.census(ctx.clone());
    let concurrency = wiring.settings.max_concurrent_reconciles;
    // One controller per watched scope: a reflector store holds one list.
    let namespaces = &wiring.settings.watch_namespaces;
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    };
    let readiness = Arc::new(Readiness {
        scopes: scopes.len(),
        synced: AtomicUsize::new(0),
        ready: wiring.ready.clone(),
    });
    let controllers: Vec<_> = scopes
        .into_iter()
        .map(|namespace| {
            let backlog = Arc::new(Backlog::new(usize::from(concurrency)));
            let watched = controller(
                client.clone(),
                namespace,
                ctx.clone(),
                readiness.clone(),
                backlog.clone(),
            );
            (watched, backlog)
        })
        .collect();
    let clusters = (wiring.settings.cluster_ssm_parameters)
        .then(|| super::cluster::run(client.clone(), &wiring.fanout, shutdown.clone()));
    let change_events =
        (wiring.change_events.as_ref()).map(|events| events.consume(ctx.clone(), shutdown.clone()));
    let parameters = join_all(controllers.into_iter().map(|(controller, backlog)| {
        // Each reconcile of a listed object makes room for the next.
        let reconcile = move |obj: Arc<SsmParameter>, ctx: Arc<Context>| {
            let backlog = backlog.clone();
            async move {
                let done = guard::reconcile(obj.clone(), ctx).await;
                backlog.done(&ObjectRef::from_obj(&*obj));
                done
            }
        };
        controller
            .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "reconcile did not complete");
                }
            })
    }));
    let clusters = futures::future::OptionFuture::from(clusters);
    let change_events = futures::future::OptionFuture::from(change_events);
    futures::join!(parameters, clusters, change_events);
    // A standby counts no objects and reads no events.
    ctx.cached.clear();
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Ready once every watched scope has listed its SsmParameters.
struct Readiness {
    scopes: usize,
    synced: AtomicUsize,
    ready: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Readiness {
    fn scope_synced(&self) {
        if self.synced.fetch_add(1, Ordering::Relaxed) + 1 == self.scopes {
            tracing::info!("caches synced");
            let _ = self.ready.send(true);
        }
    }
}

fn controller(
    client: Client,
    namespace: Option<String>,
    ctx: Arc<Context>,
    readiness: Arc<Readiness>,
    backlog: Arc<Backlog>,
) -> Controller<SsmParameter> {
    let ns = namespace.as_deref();
    let (reader, writer) = reflector::store();
    ctx.cached.watch(namespace.clone(), reader.clone());
    // Owned Secrets by metadata only, label-selected: the operator never
    // caches Secret data, and an edited or deleted Secret is repaired at once.
    let seen = Arc::new(SecretCache::default());
    ctx.seen.watch(namespace.clone(), seen.clone());
    let refreshes = ctx.refreshes.clone().due(namespace.clone());
    let synced_once = AtomicBool::new(false);
    // Status writes and other metadata noise do not trigger a reconcile;
    // a new generation or a new force-sync value does.
    let parameters = watcher(
        api::<SsmParameter>(&client, ns),
        watch_config().any_semantic(),
    )
    .default_backoff()
    .modify(trim_metadata)
    .reflect(writer);
    let parameters =
        relist::with_vanished(parameters, reader.clone()).inspect_ok(move |event| match event {
            // Deleted objects leave nothing to remember.
            watcher::Event::Delete(obj) => ctx.forget(obj),
            watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                ctx.own_status.cached(obj)
            }
            // Only the first full list counts; relists do not unready.
            watcher::Event::InitDone if !synced_once.swap(true, Ordering::Relaxed) => {
                readiness.scope_synced()
            }
            _ => {}
        });
    // Listed objects wait for room, live ones go first.
    let parameters = backlog::trickle(parameters, backlog)
        .applied_objects()
        .predicate_filter(spec_or_force_sync, Default::default());
    let secrets = watcher(
        api::<PartialObjectMeta<Secret>>(&client, ns),
        watch_config().labels(&format!("{WATCH_LABEL}=true")),
    )
    .default_backoff();
    let secrets = seen::remembered(secrets, seen);
    let known = reader.clone();
    Controller::for_stream(parameters, reader)
        .watches_stream(secrets, move |secret| writers_of(&secret, &known))
        .reconcile_on(refreshes)
}

/// The cache keeps no managedFields and no `kubectl apply` copy of the
/// object: nothing reads them from it, and they are often the largest part
/// of an object's metadata.
fn trim_metadata(obj: &mut SsmParameter) {
    let meta = &mut obj.metadata;
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(LAST_APPLIED);
        // An empty map still holds a node of room for eleven entries.
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The annotation in which `kubectl apply` keeps the whole object as applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The SsmParameters that write `secret`: the one its annotation names, or
/// else those merging into it.
fn writers_of(
    secret: &PartialObjectMeta<Secret>,
    known: &reflector::Store<SsmParameter>,
) -> Vec<ObjectRef<SsmParameter>> {
    let namespace = secret.namespace();
    if let Some(owner) = secret.annotations().get(OWNER_ANNOTATION) {
        let object = ObjectRef::<SsmParameter>::new(owner);
        return vec![match &namespace {
            Some(ns) => object.within(ns),
            None => object,
        }];
    }
    let name = secret.name_any();
    known
        .state()
        .iter()
        .filter(|p| p.namespace() == namespace && merges_into(p, &name))
        .map(|p| ObjectRef::from_obj(&**p))
        .collect()
}

fn merges_into(obj: &SsmParameter, secret: &str) -> bool {
    use crate::reconcile::plan;
    plan::merges(obj) && plan::secret_name(obj) == secret
}

fn spec_or_force_sync(obj: &SsmParameter) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    obj.metadata.generation.hash(&mut hasher);
    obj.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    obj.annotations()
        .get(FORCE_SYNC_ANNOTATION)
        .hash(&mut hasher);
    Some(hasher.finish())
}

fn error_policy(obj: Arc<SsmParameter>, error: &Failure, ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, namespace = obj.namespace(), name = obj.name_any(), "reconcile failed; retrying");
    let object = ObjectRef::from_obj(&*obj);
    let wait = match error {
        // The API server failed, or was too slow: what the last good sync
        // read still stands, and an outage costs no read of every value.
        Failure::Reconcile(_) | Failure::TimedOut(_) => ctx.schedule.backoff(object),
        Failure::Panicked => ctx.schedule.failed(object),
    };
    Action::requeue(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ssm_parameter;
    use serde_json::json;

    #[test]
    fn a_cached_ssm_parameter_keeps_no_managed_fields_nor_applied_copy() {
        let mut obj = ssm_parameter("db", json!({"parameters": [{"name": "p"}]}));
        obj.metadata.managed_fields = Some(vec![Default::default()]);
        obj.metadata.annotations = Some([(LAST_APPLIED.to_owned(), "{}".to_owned())].into());
        trim_metadata(&mut obj);
        assert_eq!(obj.metadata.managed_fields, None);
        assert_eq!(obj.metadata.annotations, None);

        obj.metadata.annotations = Some(
            [
                (LAST_APPLIED.to_owned(), "{}".to_owned()),
                (FORCE_SYNC_ANNOTATION.to_owned(), "1".to_owned()),
            ]
            .into(),
        );
        trim_metadata(&mut obj);
        assert_eq!(
            obj.metadata.annotations,
            Some([(FORCE_SYNC_ANNOTATION.to_owned(), "1".to_owned())].into())
        );
    }
}
