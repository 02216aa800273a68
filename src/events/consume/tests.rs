use super::*;
use crate::reconcile::announced::Announcements;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde_json::json;
use tokio::sync::mpsc;

/// A queue whose deliveries a test hands in, and which records deletions.
struct FakeMailbox {
    deliveries: tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<Message>>>,
    deleted: mpsc::UnboundedSender<String>,
}

impl Mailbox for FakeMailbox {
    fn receive(&self) -> BoxFuture<'_, Result<Vec<Message>, String>> {
        async move {
            match self.deliveries.lock().await.recv().await {
                Some(messages) => Ok(messages),
                None => std::future::pending().await,
            }
        }
        .boxed()
    }

    fn delete<'a>(&'a self, receipt: &'a str) -> BoxFuture<'a, Result<(), String>> {
        let _ = self.deleted.send(receipt.to_owned());
        async { Ok(()) }.boxed()
    }
}

/// SsmParameter `payments/db` reads `/prd/db/pass` in 111122223333 and
/// ap-northeast-1; prompts are announced as the operator announces them.
struct FakeAudience {
    announcements: Announcements,
    prompted: mpsc::UnboundedSender<ObjectKey>,
}

impl Audience for FakeAudience {
    fn readers(&self, change: &Change) -> Vec<ObjectKey> {
        let read = change.concerns("/prd/db/pass", "ap-northeast-1", Some("111122223333"));
        read.then(|| ObjectKey::new("payments", "db"))
            .into_iter()
            .collect()
    }

    fn foreign(&self, change: &Change) -> bool {
        change.account != "111122223333" || change.region != "ap-northeast-1"
    }

    fn prompt(&self, object: ObjectKey) -> Finished {
        let finished = self.announcements.announce(object.clone());
        let _ = self.prompted.send(object);
        finished
    }
}

struct Running {
    deliver: mpsc::UnboundedSender<Vec<Message>>,
    deleted: mpsc::UnboundedReceiver<String>,
    prompted: mpsc::UnboundedReceiver<ObjectKey>,
    audience: Arc<FakeAudience>,
    metrics: Arc<Metrics>,
}

fn start(finish_within: Duration) -> Running {
    let (deliver, deliveries) = mpsc::unbounded_channel();
    let (deleted_tx, deleted) = mpsc::unbounded_channel();
    let (prompted_tx, prompted) = mpsc::unbounded_channel();
    let mailbox = Arc::new(FakeMailbox {
        deliveries: tokio::sync::Mutex::new(deliveries),
        deleted: deleted_tx,
    });
    let audience = Arc::new(FakeAudience {
        announcements: Announcements::default(),
        prompted: prompted_tx,
    });
    let metrics = Arc::new(Metrics::new());
    let consumer = Consumer::new(mailbox, audience.clone(), metrics.clone(), "q".to_owned())
        .finish_within(finish_within);
    tokio::spawn(Arc::new(consumer).run(std::future::pending()));
    Running {
        deliver,
        deleted,
        prompted,
        audience,
        metrics,
    }
}

fn event(id: &str, account: &str, name: &str) -> String {
    json!({
        "version": "0", "id": id, "detail-type": "Parameter Store Change",
        "source": "aws.ssm", "account": account, "time": "2026-12-04T02:00:00Z",
        "region": "ap-northeast-1", "resources": [],
        "detail": {"operation": "Update", "name": name, "type": "SecureString"},
    })
    .to_string()
}

fn message(id: &str, receipt: &str, body: String) -> Message {
    Message {
        id: id.to_owned(),
        receipt: receipt.to_owned(),
        body,
    }
}

fn counted(metrics: &Metrics, outcome: &str) -> bool {
    let line = format!("ssm_operator_change_events_total{{outcome=\"{outcome}\"}} 1");
    metrics.render().lines().any(|l| l == line)
}

#[tokio::test]
async fn a_change_is_deleted_only_after_the_reconcile_it_prompted_has_finished() {
    let mut run = start(FINISH_WITHIN);
    let body = event("e1", "111122223333", "/prd/db/pass");
    run.deliver.send(vec![message("m1", "r1", body)]).unwrap();
    let prompted = run.prompted.recv().await.unwrap();
    assert_eq!(prompted.as_str(), "payments/db");
    tokio::task::yield_now().await;
    assert!(run.deleted.try_recv().is_err(), "not before the reconcile");

    // SQS delivers it again meanwhile: held once, deleted by the new receipt.
    let body = event("e1", "111122223333", "/prd/db/pass");
    run.deliver.send(vec![message("m1", "r2", body)]).unwrap();
    let reconcile = loop {
        if let Some(taken) = run.audience.announcements.take(&prompted) {
            break taken;
        }
        tokio::task::yield_now().await;
    };
    drop(reconcile);
    assert_eq!(run.deleted.recv().await.unwrap(), "r2");
    assert!(counted(&run.metrics, "prompted"));
    assert!(run.prompted.try_recv().is_err(), "prompted once");
}

#[tokio::test]
async fn malformed_foreign_duplicate_and_unread_messages_are_counted_and_deleted_unprompted() {
    let mut run = start(FINISH_WITHIN);
    let other_service = json!({
        "version": "0", "id": "x", "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "account": "111122223333", "time": "2026-12-04T02:00:00Z",
        "region": "ap-northeast-1", "resources": [], "detail": {"operation": "x"},
    });
    run.deliver
        .send(vec![
            message("m1", "r1", "canary-not-json".to_owned()),
            message("m2", "r2", other_service.to_string()),
            message("m3", "r3", event("e3", "444455556666", "/prd/db/pass")),
            message("m4", "r4", event("e4", "111122223333", "/nobody/reads")),
            message("m5", "r5", event("e5", "111122223333", "/prd/db/pass")),
        ])
        .unwrap();
    let first = run.prompted.recv().await.unwrap();
    drop(run.audience.announcements.take(&first));
    let mut deleted = Vec::new();
    for _ in 0..5 {
        deleted.push(run.deleted.recv().await.unwrap());
    }
    // The same event again, in another message: EventBridge's duplicate.
    run.deliver
        .send(vec![message(
            "m6",
            "r6",
            event("e5", "111122223333", "/prd/db/pass"),
        )])
        .unwrap();
    deleted.push(run.deleted.recv().await.unwrap());
    deleted.sort();
    assert_eq!(deleted, ["r1", "r2", "r3", "r4", "r5", "r6"]);
    for outcome in ["malformed", "prompted", "unread", "duplicate"] {
        assert!(
            counted(&run.metrics, outcome),
            "{outcome}: {}",
            run.metrics.render()
        );
    }
    let foreign = "ssm_operator_change_events_total{outcome=\"foreign\"} 2";
    assert!(run.metrics.render().contains(foreign));
    assert!(
        run.prompted.try_recv().is_err(),
        "only the one reader, once"
    );
    assert!(
        !run.metrics.render().contains("canary"),
        "a message is never quoted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_change_whose_reconcile_does_not_finish_in_time_is_left_and_handled_on_redelivery() {
    let mut run = start(Duration::from_secs(30));
    let body = || event("e1", "111122223333", "/prd/db/pass");
    run.deliver.send(vec![message("m1", "r1", body())]).unwrap();
    let object = run.prompted.recv().await.unwrap();
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(counted(&run.metrics, "unfinished"));
    assert!(run.deleted.try_recv().is_err(), "left to SQS");

    run.deliver.send(vec![message("m1", "r2", body())]).unwrap();
    assert_eq!(run.prompted.recv().await.unwrap(), object, "no duplicate");
    drop(run.audience.announcements.take(&object));
    assert_eq!(run.deleted.recv().await.unwrap(), "r2");
}
