//! Workloads that really run, on the node of an environment started with
//! [`crate::env::shared_with_node`]: Deployments of the workload image that
//! mount a Secret, their Pods, and commands run inside them.
//!
//! Every Pod uses the host network, so that all traffic stays on loopback.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt as _};
use serde_json::json;

use crate::env::{EnvInfo, WORKLOAD_IMAGE};
use crate::eventually;

/// How long a Pod may take to start on the node: the scheduler, the
/// kubelet's sync, the sandbox and the container.
pub const POD_START: Duration = Duration::from_secs(90);

/// Where the readers mount the Secret.
pub const MOUNT: &str = "/etc/app";

/// Creates Deployment `name`: one busybox Pod that mounts Secret `secret` at
/// [`MOUNT`] and also reads its key `key` into the environment variable of
/// the same name, then sleeps.
pub async fn create_reader(kube: &Client, ns: &str, name: &str, secret: &str, key: &str) {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "hostNetwork": true,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{
                        "name": "app",
                        "image": WORKLOAD_IMAGE,
                        "imagePullPolicy": "Never",
                        "command": ["/bin/sleep", "3600"],
                        "env": [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}],
                        "volumeMounts": [{"name": "secret", "mountPath": MOUNT, "readOnly": true}],
                        "securityContext": {
                            "runAsNonRoot": true, "runAsUser": 65532, "allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
                        },
                    }],
                    "volumes": [{"name": "secret", "secret": {"secretName": secret}}],
                },
            },
        },
    });
    Api::<Deployment>::namespaced(kube.clone(), ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment).unwrap(),
        )
        .await
        .expect("create the reader Deployment");
}

/// Waits until Deployment `name` has rolled out — every replica of its
/// newest template Ready, no Pod of an older template left — and returns
/// its one running Pod.
pub async fn rolled_out(kube: &Client, ns: &str, name: &str) -> Pod {
    let deployments: Api<Deployment> = Api::namespaced(kube.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(kube.clone(), ns);
    eventually(
        &format!("Deployment {ns}/{name} to roll out"),
        POD_START,
        || async {
            let deployment = deployments.get(name).await.ok()?;
            let status = deployment.status.as_ref()?;
            let wanted = deployment.spec.as_ref()?.replicas.unwrap_or(1);
            let done = status.observed_generation == deployment.metadata.generation
                && status.updated_replicas == Some(wanted)
                && status.ready_replicas == Some(wanted)
                && status.replicas == Some(wanted);
            if !done {
                return None;
            }
            let selector = selector_of(&deployment);
            let running: Vec<Pod> = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|pod| pod.metadata.deletion_timestamp.is_none())
                .collect();
            match running.as_slice() {
                [pod] if is_ready(pod) => Some(pod.clone()),
                _ => None,
            }
        },
    )
    .await
}

/// The Deployment's Pods' label selector (its `matchLabels`).
fn selector_of(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.selector.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Whether the Pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// How often the Pod's containers restarted.
pub fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .map(|statuses| statuses.iter().map(|s| s.restart_count).sum())
        .unwrap_or(0)
}

/// The ReplicaSets of Deployment `name`: one per template it rolled out.
pub async fn rollouts(kube: &Client, ns: &str, name: &str) -> usize {
    let replica_sets: Api<ReplicaSet> = Api::namespaced(kube.clone(), ns);
    replica_sets
        .list(&ListParams::default())
        .await
        .expect("list ReplicaSets")
        .items
        .iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|owner| owner.kind == "Deployment" && owner.name == name)
        })
        .count()
}

/// Runs `command` in the first container of Pod `pod` (`kubectl exec`,
/// through the API server to the kubelet) and returns what it printed;
/// panics with its stderr if it fails.
pub fn exec(env: &EnvInfo, ns: &str, pod: &str, command: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(["exec", "-n", ns, pod, "--"])
        .args(command)
        .output()
        .expect("kubectl must be installed");
    assert!(
        out.status.success(),
        "kubectl exec {pod} -- {command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
