//! On a real node: the operator installed by Helm runs as a Pod of its own
//! image, and workloads read the Secrets it writes from their files and
//! their environment. A test binary of its own, because its environment has
//! a node (`env::shared_with_node`: containerd, the kubelet and the
//! scheduler, testenv/node.py).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt as _;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use ssm_operator::names::{CLUSTER_CRD_NAME, CRD_NAME};
use ssm_operator_testenv::chart::{Install, RELEASE, adopt_crds, run_helm, succeeded};
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::operator::free_port;
use ssm_operator_testenv::pods::{self, MOUNT, POD_START};
use ssm_operator_testenv::proxy::{FaultProxy, Faults};
use ssm_operator_testenv::{DEADLINE, Scenario, env, eventually};

/// The seed scenario's value.
const PASSWORD: &str = "PASSWORD";

async fn scenario(test: &str) -> Scenario {
    env::shared_with_node().await;
    Scenario::new(test).await
}

/// The Pods of the release, newest first.
async fn operator_pods(s: &Scenario) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(s.kube.clone(), &s.namespace);
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    let mut listed = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items;
    listed.sort_by_key(|pod| std::cmp::Reverse(pod.creation_timestamp()));
    listed
}

/// The kubelet's Events about Pod `pod` with `reason` whose note contains `text`.
async fn kubelet_said(s: &Scenario, pod: &str, reason: &str, text: &str) -> bool {
    s.events(pod).await.iter().any(|e| {
        e.reason.as_deref() == Some(reason) && e.note.as_deref().is_some_and(|n| n.contains(text))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_runs_the_operator_from_its_image_gated_by_its_probes_and_uninstall_keeps_secrets() {
    let s = scenario("chart-pod").await;
    // The restricted level warns (host networking is this environment's
    // need, not the chart's): the warning must name nothing else.
    let namespaces: Api<Namespace> = Api::all(s.kube.clone());
    let labels = json!({"metadata": {"labels": {
        "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted",
    }}});
    namespaces
        .patch(
            &s.namespace,
            &PatchParams::default(),
            &Patch::Merge(&labels),
        )
        .await
        .unwrap();
    let key = s.create_key().await;
    let parameter = format!("{}-prd-db-pass", s.id);
    s.put_secure_string(&parameter, PASSWORD, &key).await;
    let policy = ssm_operator_testenv::aws::setup::read_prefix_policy(&s.id, &key);
    let role = s.create_operator_role(&policy).await;
    adopt_crds(&s.kube, &s.namespace).await;

    // The API server answers 503 to everything: the operator cannot list,
    // so /readyz says 503, and its Pod runs but is not Ready. (Without
    // leader election: a standby that waits for the Lease is ready.)
    let proxy = FaultProxy::start(s.env).await;
    proxy.set(Faults {
        fail: Some(503),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let install = Install {
        env: s.env,
        namespace: &s.namespace,
        role_arn: &role,
        api_server: &proxy.url(),
        http_port: free_port(),
    };
    let out = install
        .upgrade(
            dir.path(),
            &install.values(&[]),
            &["leaderElection.enabled=false"],
        )
        .await;
    let warnings = succeeded("helm install", &out);
    assert!(
        warnings.contains("hostNetwork=true"),
        "no Pod Security warning of host networking: {warnings}"
    );
    for check in [
        "allowPrivilegeEscalation",
        "unrestricted capabilities",
        "runAsNonRoot",
        "runAsUser=0",
        "seccompProfile",
        "privileged",
        "restricted volume types",
    ] {
        assert!(
            !warnings.contains(check),
            "the chart's Pod is not restricted ({check}): {warnings}"
        );
    }
    let pod = eventually("the operator's Pod to run", POD_START, || async {
        let pod = operator_pods(&s).await.into_iter().next()?;
        let running = pod
            .status
            .as_ref()?
            .container_statuses
            .as_ref()?
            .iter()
            .any(|c| {
                c.state
                    .as_ref()
                    .is_some_and(|state| state.running.is_some())
            });
        running.then_some(pod)
    })
    .await;
    let name = pod.name_any();
    eventually(
        "the readiness probe to fail with 503",
        POD_START,
        || async {
            kubelet_said(
                &s,
                &name,
                "Unhealthy",
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
            )
            .await
            .then_some(())
        },
    )
    .await;
    let pod = operator_pods(&s).await.into_iter().next().unwrap();
    assert!(!pods::is_ready(&pod), "Ready although /readyz answers 503");
    assert_eq!(
        pods::restarts(&pod),
        0,
        "restarted although /healthz answers"
    );

    // The API server answers again: the first list completes, the Pod is
    // Ready, and the operator in it reads AWS with the projected token.
    proxy.set(Faults::default());
    let pod = pods::rolled_out(&s.kube, &s.namespace, RELEASE).await;
    assert_eq!(pod.name_any(), name, "Ready is the same Pod, not a new one");
    s.apply(&ssm_parameter(
        "db-credentials",
        json!({"parameters": [{"name": parameter, "key": PASSWORD}]}),
    ))
    .await;
    s.wait_for_condition("db-credentials", "Ready", "True", "Synced")
        .await;
    assert_eq!(
        s.secret_value("db-credentials", PASSWORD).await.as_deref(),
        Some(PASSWORD)
    );

    // helm upgrade rolls the Pod, now with leader election (and so a
    // rolling update): the new one takes the Lease.
    // (On the one node, a new Pod on the host network needs a port that the
    // old one does not hold.)
    let install = Install {
        http_port: free_port(),
        ..install
    };
    let out = install
        .upgrade(dir.path(), &install.values(&[]), &["logLevel=debug"])
        .await;
    succeeded("helm upgrade", &out);
    let rolled = eventually("a new Pod to replace the first", POD_START, || async {
        let pods = operator_pods(&s).await;
        match pods.as_slice() {
            [only] if only.name_any() != name && pods::is_ready(only) => Some(only.clone()),
            _ => None,
        }
    })
    .await;
    let leases: Api<Lease> = Api::namespaced(s.kube.clone(), &s.namespace);
    eventually("the new Pod to hold the Lease", DEADLINE, || async {
        let lease = leases.get(RELEASE).await.ok()?;
        (lease.spec?.holder_identity? == rolled.name_any()).then_some(())
    })
    .await;

    // A liveness probe that fails restarts the container: the operator
    // listens on another port than the probes ask.
    let elsewhere = format!("127.0.0.1:{}", free_port());
    let install = Install {
        http_port: free_port(),
        ..install
    };
    let broken = install.values(&[("SSM_OPERATOR_HTTP_ADDR", &elsewhere)]);
    let out = install
        .upgrade(
            dir.path(),
            &broken,
            &[
                "livenessProbe.periodSeconds=1",
                "livenessProbe.failureThreshold=2",
            ],
        )
        .await;
    succeeded("helm upgrade to a probe that fails", &out);
    let failing = eventually(
        "the unreachable Pod's container to be restarted",
        POD_START,
        || async {
            let pod = operator_pods(&s).await.into_iter().next()?;
            (pod.name_any() != rolled.name_any() && pods::restarts(&pod) > 0).then_some(pod)
        },
    )
    .await;
    assert!(
        kubelet_said(&s, &failing.name_any(), "Killing", "failed liveness probe").await,
        "restarted, but not for its liveness probe"
    );
    let still = operator_pods(&s).await;
    assert!(
        still
            .iter()
            .any(|pod| pod.name_any() == rolled.name_any() && pods::is_ready(pod)),
        "the rollout replaced the Ready Pod with one that is not"
    );

    // helm uninstall: the operator goes; the CRDs (crds.keep), the
    // SsmParameter and its Secret stay.
    succeeded(
        "helm uninstall",
        &run_helm(
            s.env,
            &["uninstall", RELEASE, "--namespace", &s.namespace, "--wait"],
        )
        .await,
    );
    let deployments: Api<Deployment> = Api::namespaced(s.kube.clone(), &s.namespace);
    assert!(deployments.get_opt(RELEASE).await.unwrap().is_none());
    let accounts: Api<ServiceAccount> = Api::namespaced(s.kube.clone(), &s.namespace);
    assert!(accounts.get_opt("ssm-operator").await.unwrap().is_none());
    let crds: Api<CustomResourceDefinition> = Api::all(s.kube.clone());
    for crd in [CRD_NAME, CLUSTER_CRD_NAME] {
        assert!(
            crds.get_opt(crd).await.unwrap().is_some(),
            "{crd} was deleted"
        );
    }
    assert!(
        s.ssm_parameters()
            .get_opt("db-credentials")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.secret_value("db-credentials", PASSWORD).await.as_deref(),
        Some(PASSWORD)
    );
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_read_the_secret_from_files_and_env_and_see_each_rotation_once() {
    let mut s = scenario("pods").await;
    let (key, _role) = s.with_operator().await;
    let parameter = format!("{}-prd-db-pass", s.id);
    s.put_secure_string(&parameter, PASSWORD, &key).await;
    s.apply(&ssm_parameter(
        "db-credentials",
        json!({
            "parameters": [{"name": parameter, "key": PASSWORD}],
            "rolloutRestart": [{"kind": "Deployment", "name": "restarted"}],
        }),
    ))
    .await;
    s.wait_for_condition("db-credentials", "Ready", "True", "Synced")
        .await;
    // `reader` is not restarted: its file follows the Secret, its
    // environment keeps what it started with. `restarted` is rolled.
    for app in ["reader", "restarted"] {
        pods::create_reader(&s.kube, &s.namespace, app, "db-credentials", PASSWORD).await;
    }
    let reader = pods::rolled_out(&s.kube, &s.namespace, "reader").await;
    let mut previous = pods::rolled_out(&s.kube, &s.namespace, "restarted")
        .await
        .name_any();
    let file = format!("{MOUNT}/{PASSWORD}");
    let env_value = format!("echo -n ${PASSWORD}");
    let read =
        |pod: &Pod, command: &[&str]| pods::exec(s.env, &s.namespace, &pod.name_any(), command);
    assert_eq!(read(&reader, &["cat", &file]), PASSWORD);
    assert_eq!(read(&reader, &["sh", "-c", &env_value]), PASSWORD);
    assert_eq!(pods::rollouts(&s.kube, &s.namespace, "restarted").await, 1);

    for (round, value) in ["rotated-1", "rotated-2"].into_iter().enumerate() {
        s.put_secure_string(&parameter, value, &key).await;
        s.force_sync("db-credentials").await;
        // The kubelet updates the mounted file in place: same Pod, no restart.
        eventually(
            "the mounted file to hold the new value",
            POD_START,
            || async { (read(&reader, &["cat", &file]) == value).then_some(()) },
        )
        .await;
        let pods_now: Api<Pod> = Api::namespaced(s.kube.clone(), &s.namespace);
        let same = pods_now.get(&reader.name_any()).await.unwrap();
        assert_eq!(pods::restarts(&same), 0);
        assert_eq!(
            read(&reader, &["sh", "-c", &env_value]),
            PASSWORD,
            "the environment changed without a restart"
        );

        // The listed Deployment rolls once: new Pods start with the new value.
        previous = eventually("a new Pod with the new value", POD_START, || async {
            let pod = pods::rolled_out(&s.kube, &s.namespace, "restarted").await;
            (pod.name_any() != previous && read(&pod, &["sh", "-c", &env_value]) == value)
                .then(|| pod.name_any())
        })
        .await;
        assert_eq!(
            pods::rollouts(&s.kube, &s.namespace, "restarted").await,
            round + 2,
            "not exactly one rollout for this change"
        );
    }

    // A sync that changes nothing rolls nothing: once its reconcile has
    // finished (it logs after its writes, rollouts included), still three.
    let before = s.finished_reconciles("db-credentials", "Synced");
    s.force_sync("db-credentials").await;
    eventually("the unchanged sync to finish", DEADLINE, || async {
        (s.finished_reconciles("db-credentials", "Synced") > before).then_some(())
    })
    .await;
    assert_eq!(pods::rollouts(&s.kube, &s.namespace, "restarted").await, 3);
    s.cleanup().await;
}
