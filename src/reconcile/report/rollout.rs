//! Restarting workloads when their Secret's data changes, the way `kubectl
//! rollout restart` does: a new pod-template annotation. Which workloads are
//! due follows from state that survives a crash: each restarted pod template
//! carries the fingerprint of the data it was restarted for, so a restart
//! interrupted half-way is finished later, and none is done twice.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;

use crate::api::{WorkloadKind, WorkloadRef};
use crate::names::{FIELD_MANAGER, RESTARTED_AT, ROLLOUT_ANNOTATION_PREFIX};

/// The pod-template annotation that holds the fingerprint of the data
/// SsmParameter `name` last restarted the workload for. The name part of an
/// annotation key has at most 63 characters: a longer name is shortened and
/// made unique with a hash of it.
pub fn annotation(name: &str) -> String {
    const MAX: usize = 63;
    if name.len() <= MAX {
        return format!("{ROLLOUT_ANNOTATION_PREFIX}/{name}");
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let head = name[..MAX - hash.len() - 1].trim_end_matches(['-', '.']);
    format!("{ROLLOUT_ANNOTATION_PREFIX}/{head}-{hash}")
}

/// Restarts each workload whose pod template does not yet carry
/// `fingerprint` under `key`; returns the ones that could not be, with why.
pub async fn restart(
    client: &kube::Client,
    namespace: &str,
    workloads: &[WorkloadRef],
    key: &str,
    fingerprint: &str,
    at: &str,
) -> Vec<(WorkloadRef, kube::Error)> {
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        key: fingerprint,
        RESTARTED_AT: at,
    }}}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let mut failed = Vec::new();
    for (i, workload) in workloads.iter().enumerate() {
        if i > 0 {
            crate::failpoint::hit(crate::failpoint::BETWEEN_ROLLOUTS);
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &resource(workload.kind));
        let name = workload.name.as_str();
        let result = match api.get(name).await {
            Ok(current) if carries(&current, key, fingerprint) => Ok(()),
            Ok(_) => api
                .patch(name, &params, &Patch::Merge(&patch))
                .await
                .map(drop),
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            failed.push((workload.clone(), error));
        }
    }
    failed
}

fn resource(kind: WorkloadKind) -> ApiResource {
    match kind {
        WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
        WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        WorkloadKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
    }
}

/// Whether the workload's pod template already carries `fingerprint`.
fn carries(workload: &DynamicObject, key: &str, fingerprint: &str) -> bool {
    workload.data["spec"]["template"]["metadata"]["annotations"][key].as_str() == Some(fingerprint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_keys_fit_the_limit_and_stay_apart() {
        assert_eq!(annotation("db"), "rollout.ssm-operator.io/db");
        let long_a = format!("{}a", "x".repeat(70));
        let long_b = format!("{}b", "x".repeat(70));
        let (a, b) = (annotation(&long_a), annotation(&long_b));
        assert_ne!(a, b);
        for key in [a, b] {
            let name = key.split_once('/').unwrap().1;
            assert!(name.len() <= 63, "{name}");
        }
    }
}
