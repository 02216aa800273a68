//! Restarting workloads when their Secret changes, the way `kubectl rollout
//! restart` does: a new pod-template annotation.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::api::{WorkloadKind, WorkloadRef};
use crate::names::{FIELD_MANAGER, RESTARTED_AT};

/// Restarts each workload; returns the ones that could not be, with why.
pub async fn restart(
    client: &kube::Client,
    namespace: &str,
    workloads: &[WorkloadRef],
    at: &str,
) -> Vec<(WorkloadRef, kube::Error)> {
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let mut failed = Vec::new();
    for workload in workloads {
        let patch = Patch::Merge(&patch);
        let name = workload.name.as_str();
        let result = match workload.kind {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
                api.patch(name, &params, &patch).await.map(drop)
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
                api.patch(name, &params, &patch).await.map(drop)
            }
            WorkloadKind::DaemonSet => {
                let api: Api<DaemonSet> = Api::namespaced(client.clone(), namespace);
                api.patch(name, &params, &patch).await.map(drop)
            }
        };
        if let Err(error) = result {
            failed.push((workload.clone(), error));
        }
    }
    failed
}
