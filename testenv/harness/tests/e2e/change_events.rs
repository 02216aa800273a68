//! Parameter Store change events, sent by the emulator's EventBridge to an
//! SQS queue the operator reads (`--change-event-queues`): a change reaches
//! the Secret in seconds though the refresh is an hour away, a deletion
//! follows the deletion policy, a lost event is caught by the refresh, a
//! duplicate or malformed message changes nothing, and a message held by a
//! killed operator is handled after its restart.
//!
//! Each test reads parameters of a region of its own, and its queue gets
//! the changes of that region only: no other test's changes reach it.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use serde_json::{Value, json};

use ssm_operator::failpoint;
use ssm_operator_testenv::aws::events::{Delivery, EventsQueue};
use ssm_operator_testenv::aws::{admin_in_region, allow};
use ssm_operator_testenv::env::ACCOUNT;
use ssm_operator_testenv::manifest::ssm_parameter;
use ssm_operator_testenv::operator::admin_get;
use ssm_operator_testenv::{DEADLINE, OperatorOptions, Scenario, eventually};

/// A test's world: its scenario, the region of its parameters, the queue of
/// their changes, and the operator's role (which reads them and their key).
struct World {
    s: Scenario,
    region: &'static str,
    queue: EventsQueue,
    ssm: aws_sdk_ssm::Client,
    key: String,
    role: String,
}

impl World {
    async fn new(test: &str, region: &'static str, visibility: u32, delivery: Delivery) -> Self {
        let s = Scenario::new(test).await;
        let config = admin_in_region(s.env, region).await;
        let (ssm, kms) = (
            aws_sdk_ssm::Client::new(&config),
            aws_sdk_kms::Client::new(&config),
        );
        let key = kms.create_key().description(&s.id).send().await.unwrap();
        let key = key.key_metadata.and_then(|m| m.arn).unwrap();
        let parameters = format!("arn:aws:ssm:{region}:{ACCOUNT}:parameter/{}*", s.id);
        let mut policy = allow(&["ssm:GetParameters"], &[parameters]);
        policy["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}));
        let role = s.create_operator_role(&policy).await;
        let queue = EventsQueue::create(s.env, &s.id, region, visibility, delivery)
            .await
            .unwrap();
        Self {
            s,
            region,
            queue,
            ssm,
            key,
            role,
        }
    }

    /// Starts an operator that reads the queue, with `options` besides.
    async fn start_operator(&mut self, mut options: OperatorOptions) {
        options
            .args
            .extend(["--change-event-queues".to_owned(), self.queue.url.clone()]);
        let role = self.role.clone();
        self.s.start_operator_with(&role, options).await;
        let operator = self.s.operators().last().unwrap();
        let log = operator.log.clone();
        eventually("the operator to read the queue", DEADLINE, || async {
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            logged.contains("reading change events").then_some(())
        })
        .await;
    }

    /// An operator reading the queue, and SsmParameter `app` reading
    /// parameter `<id>-pw` (value `one`) as `w.spec` with `extra` makes it,
    /// synced, every message of that handled. Returns the parameter's name.
    async fn synced(&mut self, extra: Value) -> String {
        let name = self.parameter("pw");
        self.put(&name, "one").await;
        self.start_operator(OperatorOptions::default()).await;
        let spec = self.spec(&name, extra);
        self.s.apply(&ssm_parameter("app", spec)).await;
        self.s
            .wait_for_condition("app", "Ready", "True", "Synced")
            .await;
        self.wait_first_reconcile().await;
        self.wait_drained().await;
        name
    }

    /// Waits until the first operator's log says a reconcile of `app`
    /// finished: its writes are all made.
    async fn wait_first_reconcile(&self) {
        eventually("a reconcile of app to finish", DEADLINE, || async {
            (self.s.finished_reconciles("app", "Synced") >= 1).then_some(())
        })
        .await;
    }

    /// Parameter `<id>-<suffix>` of the test's region.
    fn parameter(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.s.id)
    }

    async fn put(&self, name: &str, value: &str) {
        (self.ssm.put_parameter())
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .key_id(&self.key)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }

    async fn delete(&self, name: &str) {
        (self.ssm.delete_parameter())
            .name(name)
            .send()
            .await
            .expect("delete parameter");
    }

    /// An SsmParameter `name` reading `parameter` of the test's region as
    /// key `pw`, refreshed hourly unless `extra` says otherwise.
    fn spec(&self, parameter: &str, extra: Value) -> Value {
        let mut spec = json!({
            "region": self.region,
            "parameters": [{"name": parameter, "key": "pw"}],
            "refreshInterval": "1h",
        });
        for (field, value) in extra.as_object().unwrap() {
            spec[field] = value.clone();
        }
        spec
    }

    /// Waits until the Secret of `app` holds `value`; `what` says why.
    async fn wait_for_value(&self, value: &str, what: &str) {
        eventually(what, DEADLINE, || async {
            let held = self.s.secret_value("app", "pw").await;
            (held.as_deref() == Some(value)).then_some(())
        })
        .await;
    }

    /// Waits until every message is handled: none waits, none is held.
    async fn wait_drained(&self) {
        eventually("the queue to be drained", DEADLINE, || async {
            self.queue.drained().await.then_some(())
        })
        .await;
    }

    /// The `n`th operator's count of change events with `outcome`.
    async fn outcomes(&self, n: usize, outcome: &str) -> f64 {
        let series = format!("ssm_operator_change_events_total{{outcome=\"{outcome}\"}}");
        let admin = self.s.nth_operator(n).admin.clone();
        let (_, text) = admin_get(&admin, "/metrics").await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    async fn cleanup(self) {
        self.queue.delete().await;
        self.s.cleanup().await;
    }
}

/// The rollout annotation the operator put on Deployment `name`, if any.
async fn restarted_for(s: &Scenario, name: &str, ssm_parameter: &str) -> Option<String> {
    let deployments: Api<Deployment> = Api::namespaced(s.kube.clone(), &s.namespace);
    let template = deployments.get(name).await.ok()?.spec?.template;
    let annotations = template.metadata?.annotations?;
    annotations
        .get(&format!("rollout.ssm-operator.io/{ssm_parameter}"))
        .cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_value_reaches_the_secret_in_seconds_while_the_refresh_is_an_hour() {
    let mut w = World::new("change-event", "eu-north-1", 30, Delivery::default()).await;
    w.s.create_deployment("web").await;
    let restart = json!({"rolloutRestart": [{"kind": "Deployment", "name": "web"}]});
    let name = w.synced(restart).await;
    let reads = w.s.aws_calls("ssm:GetParameters", &w.role).await;
    let decrypts = w.s.aws_calls("kms:Decrypt", &w.role).await;
    let prompted = w.outcomes(0, "prompted").await;

    w.put(&name, "after-rotation").await;
    w.wait_for_value("after-rotation", "the rotated value in the Secret")
        .await;
    eventually(
        "the workload restarted for the change",
        DEADLINE,
        || async { restarted_for(&w.s, "web", "app").await },
    )
    .await;
    w.wait_drained().await;
    let reads = w.s.aws_calls("ssm:GetParameters", &w.role).await - reads;
    let decrypts = w.s.aws_calls("kms:Decrypt", &w.role).await - decrypts;
    println!("one change: {reads} GetParameters, {decrypts} KMS decrypts");
    assert_eq!((reads, decrypts), (1, 1), "one decrypting read, no probe");
    assert_eq!(w.outcomes(0, "prompted").await - prompted, 1.0);
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_parameter_follows_the_deletion_policy_in_seconds() {
    let mut w = World::new("change-event-delete", "eu-south-1", 30, Delivery::default()).await;
    let kept = w.parameter("kept");
    let removed = w.parameter("removed");
    w.put(&kept, "kept-value").await;
    w.put(&removed, "removed-value").await;
    w.start_operator(OperatorOptions::default()).await;
    w.s.apply(&ssm_parameter("retained", w.spec(&kept, json!({}))))
        .await;
    let delete = json!({"target": {"deletionPolicy": "Delete"}});
    w.s.apply(&ssm_parameter("deleted", w.spec(&removed, delete)))
        .await;
    for name in ["retained", "deleted"] {
        w.s.wait_for_condition(name, "Ready", "True", "Synced")
            .await;
    }
    w.wait_drained().await;
    let prompted = w.outcomes(0, "prompted").await;

    w.delete(&kept).await;
    w.delete(&removed).await;
    w.s.wait_for_condition("retained", "Synced", "False", "ParameterNotFound")
        .await;
    w.s.wait_for_condition("deleted", "Synced", "False", "ParameterNotFound")
        .await;
    eventually(
        "the Secret of deletionPolicy Delete removed",
        DEADLINE,
        || async {
            w.s.secret_value("deleted", "pw")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        w.s.secret_value("retained", "pw").await.as_deref(),
        Some("kept-value"),
        "deletionPolicy Retain keeps the last value"
    );
    w.wait_drained().await;
    assert_eq!(w.outcomes(0, "prompted").await - prompted, 2.0);
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_event_is_caught_by_the_periodic_refresh() {
    let mut w = World::new("change-event-lost", "ca-central-1", 30, Delivery::default()).await;
    let name = w.synced(json!({"refreshInterval": "10s"})).await;
    let lose_one = Delivery {
        drop_next: 1,
        ..Delivery::default()
    };
    w.queue.deliver(lose_one).await.unwrap();
    let prompted = w.outcomes(0, "prompted").await;

    w.put(&name, "two").await;
    assert_eq!(w.queue.delivered().await.unwrap(), (0, 1), "the event lost");
    w.wait_for_value("two", "the refresh to bring the new value")
        .await;
    assert_eq!(w.outcomes(0, "prompted").await, prompted, "no event came");
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_or_malformed_message_changes_nothing() {
    let twice = Delivery {
        duplicate: true,
        ..Delivery::default()
    };
    let mut w = World::new("change-event-duplicate", "sa-east-1", 30, twice).await;
    let name = w.synced(json!({})).await;
    let writes = w.s.operator_writes();
    let reads = w.s.aws_calls("ssm:GetParameters", &w.role).await;
    let malformed = w.outcomes(0, "malformed").await;
    let foreign = w.outcomes(0, "foreign").await;
    let duplicates = w.outcomes(0, "duplicate").await;

    // Not JSON, JSON but no event, another service's event: none reads AWS.
    let canary = "canary-c0ffee-not-an-event";
    w.queue.send(canary).await.unwrap();
    w.queue.send(r#"{"detail": {"name": "x"}}"#).await.unwrap();
    let ec2 = json!({
        "version": "0", "id": "9e0f0a3c-ec2", "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "account": ACCOUNT, "time": "2026-12-04T02:00:00Z",
        "region": w.region, "resources": [], "detail": {"state": "running"},
    });
    w.queue.send(&ec2.to_string()).await.unwrap();
    w.wait_drained().await;
    assert_eq!(w.outcomes(0, "malformed").await - malformed, 2.0);
    assert_eq!(w.outcomes(0, "foreign").await - foreign, 1.0);
    assert_eq!(w.s.aws_calls("ssm:GetParameters", &w.role).await, reads);
    assert_eq!(
        w.s.operator_writes(),
        writes,
        "a message that is no change writes nothing"
    );

    // A change delivered twice: read once, written once.
    w.put(&name, "two").await;
    w.wait_for_value("two", "the new value").await;
    w.wait_drained().await;
    assert_eq!(
        w.outcomes(0, "duplicate").await - duplicates,
        1.0,
        "the second delivery dropped"
    );
    assert_eq!(
        w.s.aws_calls("ssm:GetParameters", &w.role).await - reads,
        1,
        "the duplicate read nothing"
    );
    let log = w.s.operator_log();
    let quoted: Vec<&str> = log.lines().filter(|l| l.contains(canary)).collect();
    assert!(quoted.is_empty(), "a message quoted in the log: {quoted:?}");
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_held_by_a_killed_operator_is_handled_after_its_restart() {
    let mut w = World::new("change-event-killed", "af-south-1", 3, Delivery::default()).await;
    let name = w.synced(json!({})).await;
    w.s.operators().clear();
    let armed = OperatorOptions {
        env: vec![(
            "SSM_OPERATOR_FAILPOINT".to_owned(),
            failpoint::CHANGE_EVENT_RECEIVED.to_owned(),
        )],
        name: "armed".to_owned(),
        ..OperatorOptions::default()
    };
    w.start_operator(armed).await;
    // Its start-up read of AWS done, only the event can bring the change.
    w.wait_first_reconcile().await;

    w.put(&name, "two").await;
    let status = eventually("the operator to die holding the message", DEADLINE, || {
        let exited = w.s.operators()[0].exited();
        async move { exited }
    })
    .await;
    assert!(!status.success(), "the process ended cleanly: {status}");
    assert!(
        w.s.operator_log().contains("failpoint hit"),
        "the operator died elsewhere; build it with `--features failpoints`"
    );
    assert_eq!(
        w.s.secret_value("app", "pw").await.as_deref(),
        Some("one"),
        "killed before anything was done"
    );

    w.start_operator(OperatorOptions::default()).await;
    w.wait_for_value("two", "the new value after the restart")
        .await;
    // SQS gives the message again once its visibility timeout (3 s) ends.
    eventually("the message handled and deleted", DEADLINE, || async {
        let handled = w.outcomes(1, "prompted").await >= 1.0;
        (handled && w.queue.drained().await).then_some(())
    })
    .await;
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn check_tells_whether_each_queue_answers_the_operator() {
    let w = World::new("change-event-check", "eu-west-3", 30, Delivery::default()).await;
    let name = w.parameter("pw");
    w.put(&name, "CANARY-CHECK").await;
    let manifest = ssm_operator_testenv::manifest::ssm_parameter_in(
        "app",
        &w.s.namespace,
        w.spec(&name, json!({})),
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest).unwrap();
    let path = file.path().to_str().unwrap();
    let missing = format!("{}-missing", w.queue.url);
    let queues = format!("{},{missing}", w.queue.url);

    let args = ["check", "-f", path, "--change-event-queues", &queues];
    let out = w.s.run_operator_command(&w.role, &args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line_of = |url: &str| {
        (stdout.lines())
            .find(|l| l.contains(&format!("change events {url}:")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line_of(&w.queue.url).trim_start().starts_with("ok")
            && line_of(&w.queue.url).contains("reachable"),
        "{stdout}"
    );
    let refused = line_of(&missing);
    assert!(
        refused.contains("FAILED") && refused.contains("ChangeEventQueueUnreachable"),
        "{stdout}"
    );
    assert!(
        !out.status.success(),
        "a queue that does not answer fails the check"
    );
    assert!(!stdout.contains("CANARY"), "a value was printed");
    w.cleanup().await;
}
