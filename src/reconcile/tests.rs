//! The reconcile of one SsmParameter through every outcome, against an API
//! server in memory and a Parameter Store with fixed contents.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::*;
use crate::batch::budget::Budgets;
use crate::names::{OWNER_ANNOTATION, WATCH_LABEL};
use crate::reconcile::status::{READY, SYNCED};
use crate::testing::{ApiCall, FakeApi, FakeStore, StoreCall, foreign_secret, ssm_parameter};

const NS: &str = "payments";

/// An operator with nothing but its own identity, one API server, one store.
struct World {
    api: FakeApi,
    store: Arc<FakeStore>,
    ctx: Arc<Context>,
}

impl World {
    fn new() -> Self {
        Self::with_tenancy(Tenancy {
            service_account_identities: true,
            operator_identity_namespaces: vec!["*".to_owned()],
            cluster_role_arns: Vec::new(),
        })
    }

    fn with_tenancy(tenancy: Tenancy) -> Self {
        Self::of(FakeApi::default(), Arc::new(FakeStore::default()), tenancy)
    }

    /// The same API server and AWS, and an operator process that starts
    /// afresh, its metadata watch holding the Secrets as they are now.
    fn restarted(self) -> Self {
        let tenancy = self.ctx.tenancy.clone();
        let world = Self::of(self.api, self.store, tenancy);
        world.watching();
        world
    }

    /// The metadata watch, listed: it holds the Secrets as they are now.
    fn watching(&self) {
        use kube::runtime::watcher::Event;
        let cache = Arc::new(crate::reconcile::seen::SecretCache::default());
        cache.apply(Event::Init);
        for secret in self.api.secrets(NS) {
            let meta: kube::api::PartialObjectMeta<Secret> = serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": secret.metadata,
            }))
            .expect("Secret metadata");
            cache.apply(Event::InitApply(meta));
        }
        cache.apply(Event::InitDone);
        self.ctx.seen.watch(Some(NS.to_owned()), cache);
    }

    fn of(api: FakeApi, store: Arc<FakeStore>, tenancy: Tenancy) -> Self {
        let client = api.client();
        let metrics = Arc::new(Metrics::new());
        let batcher = Batcher::start(
            store.clone(),
            Arc::new(Budgets::new(1000.0)),
            metrics.clone(),
            Duration::from_millis(250),
            16,
        );
        let ctx = Arc::new(Context {
            client: client.clone(),
            batcher,
            default_region: "ap-northeast-1".to_owned(),
            max_path_parameters: 50,
            recorder: Recorder::new(client),
            schedule: Schedule::default(),
            tenancy,
            metrics,
            in_flight: AtomicI64::new(0),
            seen: SeenSecrets::default(),
            own_status: OwnStatus::default(),
            refreshes: Default::default(),
            keepers: Arc::new(crate::reconcile::tenancy::NoKeepers),
            announcements: Default::default(),
            cached: Default::default(),
        });
        Self { api, store, ctx }
    }

    /// Applies `spec` as SsmParameter `name`.
    fn apply(&self, name: &str, spec: Value) -> SsmParameter {
        let obj = ssm_parameter(name, spec);
        self.api.add_ssm_parameter(&obj);
        obj
    }

    /// One reconcile of `name` as the API server holds it now.
    async fn reconcile(&self, name: &str) -> Action {
        let obj = self
            .api
            .ssm_parameter(NS, name)
            .expect("the SsmParameter was applied");
        reconcile(Arc::new(obj), self.ctx.clone())
            .await
            .expect("the reconcile reaches the API server")
    }

    /// A first good sync of `name`, then a clean slate of calls.
    async fn synced(&self, name: &str, spec: Value) {
        self.apply(name, spec);
        self.reconcile(name).await;
        assert_eq!(
            self.condition(name, SYNCED),
            ("True".into(), "Synced".into())
        );
        self.api.forget_calls();
        self.store.forget_calls();
    }

    /// (status, reason) of a condition.
    fn condition(&self, name: &str, type_: &str) -> (String, String) {
        let obj = self.api.ssm_parameter(NS, name);
        let status = obj.and_then(|o| o.status);
        status::find(status.as_ref(), type_)
            .map(|c| (c.status.clone(), c.reason.clone()))
            .unwrap_or_default()
    }

    /// The message of a condition.
    fn condition_message(&self, name: &str, type_: &str) -> String {
        let obj = self.api.ssm_parameter(NS, name);
        let status = obj.and_then(|o| o.status);
        status::find(status.as_ref(), type_)
            .map(|c| c.message.clone())
            .unwrap_or_default()
    }

    fn value(&self, secret: &str, key: &str) -> Option<String> {
        self.api.secret_value(NS, secret, key)
    }

    /// How long until the refresh booked for `name`, if any.
    fn refresh_booked(&self, name: &str) -> Option<Duration> {
        (self.ctx.refreshes).booked_in(&crate::reconcile::key::ObjectKey::new(NS, name))
    }

    fn status(&self, name: &str) -> Option<crate::api::SsmParameterStatus> {
        self.api.ssm_parameter(NS, name).and_then(|o| o.status)
    }

    /// The message of a condition.
    fn message(&self, name: &str, type_: &str) -> String {
        let status = self.status(name);
        status::find(status.as_ref(), type_)
            .map(|c| c.message.clone())
            .unwrap_or_default()
    }

    /// The writes to paths containing `fragment` (`/secrets/`, `/status`, …).
    fn writes_to(&self, fragment: &str) -> Vec<ApiCall> {
        self.api
            .writes()
            .into_iter()
            .filter(|c| c.path.contains(fragment))
            .collect()
    }

    fn event_reasons(&self) -> Vec<String> {
        self.api.events().into_iter().map(|e| e.reason).collect()
    }
}

fn db_password() -> Value {
    json!({"parameters": [{"name": "prd-db-pass", "key": "password"}], "refreshInterval": "10s"})
}

/// One parameter, read every 10 s, its Secret removed when AWS says it is gone.
fn under_delete() -> Value {
    json!({
        "parameters": [{"name": "prd-db-pass"}],
        "refreshInterval": "10s",
        "target": {"deletionPolicy": "Delete"},
    })
}

/// Past the refresh interval (10 s, with jitter).
async fn refresh_comes_round() {
    tokio::time::advance(Duration::from_secs(12)).await;
}

#[tokio::test(start_paused = true)]
async fn a_first_sync_writes_the_secret_with_its_owner_status_and_a_created_event() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.apply("db", db_password());
    w.reconcile("db").await;

    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
    let secret = w.api.secret(NS, "db").unwrap_or_default();
    let owners = secret.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].uid, "uid-of-db");
    assert_eq!(w.condition("db", READY), ("True".into(), "Synced".into()));
    assert_eq!(w.condition("db", SYNCED), ("True".into(), "Synced".into()));
    assert_eq!(w.event_reasons(), vec!["Created"]);
    assert_eq!(w.store.decrypted(), vec!["prd-db-pass"]);
}

#[tokio::test(start_paused = true)]
async fn a_first_sync_creates_a_secret_the_watch_does_not_hold_without_reading_it_first() {
    let w = World::new();
    w.watching();
    w.store.put("prd-db-pass", "s3cr3t");
    w.apply("db", db_password());
    w.reconcile("db").await;

    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
    assert_eq!(w.condition("db", SYNCED), ("True".into(), "Synced".into()));
    assert_eq!(w.event_reasons(), vec!["Created"]);
    let secret_calls: Vec<_> = w
        .api
        .calls()
        .into_iter()
        .filter(|c| c.path.contains("/secrets/"))
        .collect();
    assert_eq!(
        secret_calls.len(),
        1,
        "one write, no read: {secret_calls:?}"
    );
    assert_eq!(secret_calls[0].method, Method::PATCH);
}

#[tokio::test(start_paused = true)]
async fn a_first_sync_that_finds_the_name_taken_by_a_foreign_secret_leaves_it_alone() {
    let w = World::new();
    w.watching();
    w.store.put("prd-db-pass", "s3cr3t");
    // Unlabelled, so the watch does not hold it.
    w.api
        .put_secret(foreign_secret("db", &[("password", "theirs")]));
    let before = w.api.secret(NS, "db");
    w.apply("db", db_password());
    w.reconcile("db").await;

    assert_eq!(
        w.condition("db", SYNCED),
        ("False".into(), "SecretConflict".into())
    );
    assert_eq!(w.api.secret(NS, "db"), before);
    w.store.forget_calls();
    w.reconcile("db").await;
    assert_eq!(
        w.condition("db", SYNCED),
        ("False".into(), "SecretConflict".into())
    );
    assert_eq!(w.api.secret(NS, "db"), before);
    assert_eq!(
        w.store.calls(),
        Vec::<Vec<String>>::new(),
        "a retry reads the Secret, not AWS"
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_sync_that_finds_its_own_secret_the_watch_has_not_shown_yet_writes_it() {
    let w = World::new();
    w.watching();
    w.store.put("prd-db-pass", "s3cr3t");
    let mut ours = foreign_secret("db", &[("password", "old")]);
    ours.metadata.labels = Some([(WATCH_LABEL.to_owned(), "true".to_owned())].into());
    ours.metadata.annotations = Some([(OWNER_ANNOTATION.to_owned(), "db".to_owned())].into());
    w.api.put_secret(ours);
    w.apply("db", db_password());
    w.reconcile("db").await;

    assert_eq!(w.condition("db", SYNCED), ("True".into(), "Synced".into()));
    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
    assert_eq!(w.event_reasons(), vec!["Updated"]);
}

#[tokio::test(start_paused = true)]
async fn a_first_sync_decrypts_each_parameter_once() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.apply("db", db_password());
    w.reconcile("db").await;
    let decrypting: Vec<_> = w
        .store
        .all_calls()
        .into_iter()
        .filter(|c| c.decrypt)
        .collect();
    assert_eq!(decrypting.len(), 1, "{:?}", w.store.all_calls());
}

#[tokio::test(start_paused = true)]
async fn a_read_of_everything_is_one_decrypting_call_without_a_probe() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.store.put("prd-db-user", "app");
    let spec = json!({"parameters": [{"name": "prd-db-pass"}, {"name": "prd-db-user"}, {"name": "prd-db-pass", "key": "sealed", "decrypt": false}]});
    w.apply("db", spec);
    w.reconcile("db").await;
    assert_eq!(w.value("db", "prd-db-pass").as_deref(), Some("s3cr3t"));
    let calls = w.store.all_calls();
    // Named with and without decryption, that parameter is probed first:
    // the probe, the other one decrypted at once, then the decrypting read.
    assert_eq!(calls.len(), 3, "{calls:?}");

    w.apply(
        "simple",
        json!({"parameters": [{"name": "prd-db-pass"}, {"name": "prd-db-user"}]}),
    );
    w.store.forget_calls();
    w.reconcile("simple").await;
    let calls = w.store.all_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].decrypt);
    assert_eq!(w.value("simple", "prd-db-user").as_deref(), Some("app"));
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_a_secret_at_the_recorded_version_costs_a_probe_and_nothing_else() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;
    let w = w.restarted();
    w.reconcile("db").await;
    let calls = w.store.all_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(!calls[0].decrypt, "a probe without decryption");
    let api_calls = w.api.calls();
    assert!(
        !api_calls.iter().any(|c| c.path.contains("/secrets/")),
        "the Secret was read: {api_calls:?}"
    );
    assert_eq!(w.api.writes(), Vec::new());
    assert_eq!(w.condition("db", SYNCED), ("True".into(), "Synced".into()));
}

fn key_ids(w: &World, name: &str) -> Vec<Option<String>> {
    let obj = w.api.ssm_parameter(NS, name).expect("the SsmParameter");
    let status = obj.status.expect("a status");
    status.parameters.into_iter().map(|p| p.key_id).collect()
}

#[tokio::test(start_paused = true)]
async fn a_key_found_by_a_decrypting_read_stays_in_the_status_through_refreshes_and_restarts() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;
    let key = Some(crate::testing::fake_key_arn("prd-db-pass"));
    assert_eq!(key_ids(&w, "db"), vec![key.clone()]);

    refresh_comes_round().await;
    w.reconcile("db").await;
    let w = w.restarted();
    w.reconcile("db").await;

    assert_eq!(w.store.decrypted(), Vec::<String>::new());
    assert_eq!(w.api.writes(), vec![], "the status was rewritten");
    assert_eq!(key_ids(&w, "db"), vec![key]);
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_a_secret_edited_meanwhile_is_read_and_repaired() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;
    let mut edited = w.api.secret(NS, "db").expect("the Secret");
    edited.data.get_or_insert_default().insert(
        "password".into(),
        k8s_openapi::ByteString(b"tampered".to_vec()),
    );
    w.api.put_secret(edited);
    let w = w.restarted();
    w.reconcile("db").await;
    assert_eq!(w.store.decrypted(), vec!["prd-db-pass"]);
    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_refresh_writes_nothing_and_decrypts_nothing() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;

    refresh_comes_round().await;
    w.reconcile("db").await;

    assert!(
        !w.store.calls().is_empty(),
        "the refresh did not look at AWS"
    );
    assert_eq!(w.store.decrypted(), Vec::<String>::new());
    assert_eq!(w.api.writes(), vec![]);
    assert_eq!(w.api.events(), vec![]);
}

fn extracted_db() -> Value {
    json!({
        "parameters": [
            {"name": "/prd/db", "extract": true, "keyPrefix": "db-"},
            {"name": "/prd/api", "key": "api"},
        ],
        "refreshInterval": "10s",
    })
}

#[tokio::test(start_paused = true)]
async fn an_extracted_object_gives_a_key_per_field_and_an_unchanged_refresh_decrypts_nothing() {
    let w = World::new();
    w.store
        .put("/prd/db", r#"{"user":"app","password":"pw","port":5432}"#);
    w.store.put("/prd/api", "token");
    w.synced("db", extracted_db()).await;
    assert_eq!(w.value("db", "db-user").as_deref(), Some("app"));
    assert_eq!(w.value("db", "db-password").as_deref(), Some("pw"));
    assert_eq!(w.value("db", "db-port").as_deref(), Some("5432"));
    assert_eq!(w.value("db", "api").as_deref(), Some("token"));
    let status = w.status("db").unwrap();
    let keys: Vec<&str> = status.parameters.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["db-user", "db-password", "db-port", "api"],
        "in the object's order"
    );

    refresh_comes_round().await;
    w.reconcile("db").await;
    assert_eq!(w.store.decrypted(), Vec::<String>::new());
    assert_eq!(w.api.writes(), vec![]);
}

#[tokio::test(start_paused = true)]
async fn a_changed_extracted_object_adds_and_drops_its_keys_and_keeps_the_others() {
    let w = World::new();
    w.store.put("/prd/db", r#"{"user":"app","password":"pw"}"#);
    w.store.put("/prd/api", "token");
    w.synced("db", extracted_db()).await;

    w.store.put(
        "/prd/db",
        r#"{"user":"app","password":"pw2","host":"db.internal"}"#,
    );
    refresh_comes_round().await;
    w.reconcile("db").await;
    assert_eq!(w.store.decrypted(), vec!["/prd/db"]);
    assert_eq!(w.value("db", "db-password").as_deref(), Some("pw2"));
    assert_eq!(w.value("db", "db-host").as_deref(), Some("db.internal"));
    assert_eq!(w.value("db", "api").as_deref(), Some("token"));

    w.store.put("/prd/db", r#"{"user":"app"}"#);
    refresh_comes_round().await;
    w.reconcile("db").await;
    assert_eq!(
        w.value("db", "db-password"),
        None,
        "a field gone from the object"
    );
    assert_eq!(w.value("db", "db-user").as_deref(), Some("app"));
}

#[tokio::test(start_paused = true)]
async fn an_extracted_key_that_clashes_with_another_is_invalid_spec_and_nothing_is_written() {
    let w = World::new();
    w.store.put("/prd/db", r#"{"api":"CANARY-x"}"#);
    w.store.put("/prd/api", "token");
    w.apply(
        "db",
        json!({"parameters": [{"name": "/prd/db", "extract": true}, {"name": "/prd/api", "key": "api"}]}),
    );
    w.reconcile("db").await;
    assert_eq!(w.condition("db", SYNCED).1, "InvalidSpec");
    assert!(w.api.secret(NS, "db").is_none());
    let message = w.message("db", SYNCED);
    assert!(message.contains("\"api\""), "{message}");
    assert!(!message.contains("CANARY"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_before_the_refresh_is_due_reads_nothing() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;

    // Triggered by the operator's own write of the Secret, say.
    let action = w.reconcile("db").await;

    assert_eq!(w.store.calls(), Vec::<Vec<String>>::new());
    assert_eq!(w.api.writes(), vec![]);
    // The refresh stays booked on the operator's own timer.
    assert_eq!(action, Action::await_change());
    let left = w.refresh_booked("db").expect("a refresh is booked");
    assert!(
        left > Duration::ZERO && left <= Duration::from_secs(11),
        "{left:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_announced_change_of_one_parameter_is_one_decrypting_call_before_the_refresh() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    let mut hourly = db_password();
    hourly["refreshInterval"] = json!("1h");
    w.synced("db", hourly).await;

    w.store.put("prd-db-pass", "rotated");
    let finished = w.ctx.announcements.announce(ObjectKey::new(NS, "db"));
    w.reconcile("db").await;

    let calls = w.store.all_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].decrypt, "no probe first: {calls:?}");
    assert_eq!(w.value("db", "password").as_deref(), Some("rotated"));
    assert!(
        finished.await.is_err(),
        "the announcer learns the reconcile ended"
    );
    let left = w.refresh_booked("db").expect("a refresh is booked");
    assert!(left > Duration::from_secs(3000), "{left:?}");

    // The same change told again (a redelivery): read, nothing written.
    w.api.forget_calls();
    let _again = w.ctx.announcements.announce(ObjectKey::new(NS, "db"));
    w.reconcile("db").await;
    assert_eq!(w.store.all_calls().len(), 2);
    assert_eq!(w.api.writes(), vec![]);
    assert_eq!(w.value("db", "password").as_deref(), Some("rotated"));
}

#[tokio::test(start_paused = true)]
async fn an_announced_change_of_several_parameters_decrypts_only_the_changed_one() {
    let w = World::new();
    w.store.put("/prd/user", "app");
    w.store.put("/prd/pass", "old");
    let spec = json!({"parameters": [{"name": "/prd/user"}, {"name": "/prd/pass"}], "refreshInterval": "1h"});
    w.synced("db", spec).await;

    w.store.put("/prd/pass", "new");
    let _finished = w.ctx.announcements.announce(ObjectKey::new(NS, "db"));
    w.reconcile("db").await;

    assert_eq!(w.store.decrypted(), vec!["/prd/pass"]);
    assert_eq!(w.value("db", "pass").as_deref(), Some("new"));
}

#[tokio::test(start_paused = true)]
async fn a_good_sync_books_its_refresh_and_a_spec_without_one_books_none() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;
    let left = w.refresh_booked("db").expect("a refresh is booked");
    assert!(
        left >= Duration::from_secs(9) && left <= Duration::from_secs(11),
        "{left:?}"
    );

    let mut once = db_password();
    once["refreshInterval"] = json!("0");
    let mut changed = ssm_parameter("db", once);
    changed.metadata.generation = Some(2);
    w.api.add_ssm_parameter(&changed);
    w.reconcile("db").await;
    assert_eq!(w.condition("db", SYNCED), ("True".into(), "Synced".into()));
    assert_eq!(
        w.refresh_booked("db"),
        None,
        "refreshInterval 0 reads on a change only"
    );
}

#[tokio::test(start_paused = true)]
async fn a_changed_value_decrypts_only_the_changed_parameter() {
    let w = World::new();
    w.store.put("/prd/user", "app");
    w.store.put("/prd/pass", "old");
    let spec = json!({"parameters": [{"name": "/prd/user"}, {"name": "/prd/pass"}], "refreshInterval": "10s"});
    w.synced("db", spec).await;

    w.store.put("/prd/pass", "new");
    refresh_comes_round().await;
    w.reconcile("db").await;

    assert_eq!(w.store.decrypted(), vec!["/prd/pass"]);
    assert_eq!(w.value("db", "pass").as_deref(), Some("new"));
    assert_eq!(w.value("db", "user").as_deref(), Some("app"));
    let events = w.api.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].reason, "Updated");
    assert!(
        events[0].note.contains("pass (version 2)"),
        "{}",
        events[0].note
    );
    assert!(
        !events[0].note.contains("new"),
        "a value in an Event: {}",
        events[0].note
    );
}

#[tokio::test(start_paused = true)]
async fn a_changed_value_restarts_the_listed_workloads_but_a_first_sync_does_not() {
    let w = World::new();
    w.store.put("prd-db-pass", "old");
    let spec = json!({
        "parameters": [{"name": "prd-db-pass"}],
        "refreshInterval": "10s",
        "rolloutRestart": [{"kind": "Deployment", "name": "api"}],
    });
    w.apply("db", spec);
    w.reconcile("db").await;
    let restarts = |w: &World| w.writes_to("/deployments/").len();
    assert_eq!(restarts(&w), 0);

    w.store.put("prd-db-pass", "new");
    refresh_comes_round().await;
    w.reconcile("db").await;
    assert_eq!(restarts(&w), 1);
}

/// A first sync that fails: the reason on both conditions, one Warning, no
/// Secret; the same failure again writes nothing new.
async fn assert_first_sync_fails(w: &World, name: &str, reason: &str) {
    w.reconcile(name).await;
    assert_eq!(w.condition(name, SYNCED), ("False".into(), reason.into()));
    assert_eq!(w.condition(name, READY), ("False".into(), reason.into()));
    assert_eq!(w.event_reasons(), vec![reason.to_owned()]);
    assert!(w.api.secret(NS, name).is_none(), "a Secret was written");

    w.api.forget_calls();
    tokio::time::advance(Duration::from_secs(400)).await;
    w.reconcile(name).await;
    let status_writes = w.writes_to("/status");
    assert_eq!(status_writes, vec![], "the same failure rewrote the status");
    assert_eq!(w.api.events(), vec![], "the same failure warned again");
}

#[tokio::test(start_paused = true)]
async fn kms_access_denied_on_a_first_sync_sets_the_reason_and_warns_once() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.store.deny("prd-db-pass");
    w.apply("db", db_password());
    assert_first_sync_fails(&w, "db", "KmsAccessDenied").await;
}

#[tokio::test(start_paused = true)]
async fn a_missing_parameter_is_parameter_not_found() {
    let w = World::new();
    w.apply("db", db_password());
    assert_first_sync_fails(&w, "db", "ParameterNotFound").await;
}

#[tokio::test(start_paused = true)]
async fn a_missing_pinned_version_is_parameter_version_not_found() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.apply(
        "db",
        json!({"parameters": [{"name": "prd-db-pass", "version": 7}]}),
    );
    assert_first_sync_fails(&w, "db", "ParameterVersionNotFound").await;
}

#[tokio::test(start_paused = true)]
async fn throttling_and_unavailability_are_their_own_reasons() {
    for (error, reason) in [
        (
            SyncError::Throttled {
                operation: "GetParameters".into(),
            },
            "Throttled",
        ),
        (
            SyncError::AwsUnavailable {
                detail: "connection refused".into(),
            },
            "AwsUnavailable",
        ),
    ] {
        let w = World::new();
        w.store.fail_with(Some(error));
        w.apply("db", db_password());
        assert_first_sync_fails(&w, "db", reason).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_namespace_without_the_operators_identity_is_role_not_allowed_without_reading() {
    let w = World::with_tenancy(Tenancy {
        service_account_identities: true,
        operator_identity_namespaces: vec!["platform-*".to_owned()],
        cluster_role_arns: Vec::new(),
    });
    w.store.put("prd-db-pass", "s3cr3t");
    w.apply("db", db_password());
    assert_first_sync_fails(&w, "db", "RoleNotAllowed").await;
    assert_eq!(w.store.calls(), Vec::<Vec<String>>::new());
}

#[tokio::test(start_paused = true)]
async fn a_missing_service_account_is_service_account_not_found() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.apply(
        "db",
        json!({"parameters": [{"name": "prd-db-pass"}], "identity": {"serviceAccountName": "reader"}}),
    );
    assert_first_sync_fails(&w, "db", "ServiceAccountNotFound").await;
}

#[tokio::test(start_paused = true)]
async fn an_unknown_template_placeholder_is_invalid_spec_and_waits_for_a_change() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.apply(
        "db",
        json!({"parameters": [{"name": "prd-db-pass"}], "target": {"template": {"url": "{{ nope }}"}}}),
    );
    let action = w.reconcile("db").await;
    assert_eq!(
        w.condition("db", SYNCED),
        ("False".into(), "InvalidSpec".into())
    );
    assert_eq!(action, Action::await_change());
    assert_eq!(w.refresh_booked("db"), None);
    assert!(w.api.secret(NS, "db").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_secret_over_the_limit_is_secret_too_large_and_not_written() {
    let w = World::new();
    w.store.put("big", &"x".repeat(1024 * 1024 + 1));
    w.apply("db", json!({"parameters": [{"name": "big"}]}));
    assert_first_sync_fails(&w, "db", "SecretTooLarge").await;
}

#[tokio::test(start_paused = true)]
async fn a_secret_someone_else_wrote_is_a_conflict_and_stays_as_it_was() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.api
        .put_secret(foreign_secret("db", &[("password", "theirs")]));
    let before = w.api.secret(NS, "db");
    w.apply("db", db_password());
    w.reconcile("db").await;

    assert_eq!(
        w.condition("db", SYNCED),
        ("False".into(), "SecretConflict".into())
    );
    assert_eq!(w.api.secret(NS, "db"), before);
    assert_eq!(
        w.store.calls(),
        Vec::<Vec<String>>::new(),
        "read AWS for a Secret it may not write"
    );
    let secret_writes = w.writes_to("/secrets/");
    assert_eq!(secret_writes, vec![]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_last_good_value_and_says_stale() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;

    w.store.deny("prd-db-pass");
    w.api.put_secret(w.api.secret(NS, "db").unwrap_or_default()); // an edit: read everything
    w.reconcile("db").await;

    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
    assert_eq!(w.condition("db", READY), ("True".into(), "Stale".into()));
    assert_eq!(
        w.condition("db", SYNCED),
        ("False".into(), "KmsAccessDenied".into())
    );
    assert_eq!(w.event_reasons(), vec!["KmsAccessDenied"]);
}

#[tokio::test(start_paused = true)]
async fn an_edited_secret_is_repaired_at_the_next_reconcile() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;

    let mut edited = w.api.secret(NS, "db").unwrap_or_default();
    edited.data = Some(
        [(
            "password".to_owned(),
            k8s_openapi::ByteString(b"tampered".to_vec()),
        )]
        .into(),
    );
    w.api.put_secret(edited);
    w.reconcile("db").await;

    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
    assert_eq!(w.store.decrypted(), vec!["prd-db-pass"]);
    assert_eq!(w.event_reasons(), vec!["Updated"]);
}

#[tokio::test(start_paused = true)]
async fn a_deleted_secret_is_created_again() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;

    w.api.delete_secret(NS, "db");
    w.reconcile("db").await;

    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
    assert_eq!(w.event_reasons(), vec!["Created"]);
}

#[tokio::test(start_paused = true)]
async fn a_vanished_parameter_under_retain_keeps_the_secret() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;

    w.store.delete("prd-db-pass");
    refresh_comes_round().await;
    w.reconcile("db").await;

    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
    assert_eq!(
        w.condition("db", SYNCED),
        ("False".into(), "ParameterNotFound".into())
    );
    assert_eq!(w.condition("db", READY), ("True".into(), "Stale".into()));
}

#[tokio::test(start_paused = true)]
async fn a_vanished_parameter_under_delete_removes_the_secret() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", under_delete()).await;

    w.store.delete("prd-db-pass");
    refresh_comes_round().await;
    w.reconcile("db").await;

    assert!(w.api.secret(NS, "db").is_none(), "the Secret was kept");
    let deletes: Vec<_> = w
        .api
        .writes()
        .into_iter()
        .filter(|c| c.method == Method::DELETE)
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        w.condition("db", READY),
        ("False".into(), "ParameterNotFound".into())
    );
    assert!(
        w.event_reasons().contains(&"Deleted".to_owned()),
        "{:?}",
        w.event_reasons()
    );
}

#[tokio::test(start_paused = true)]
async fn recovery_after_a_failure_says_synced_again() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.store.fail_with(Some(SyncError::AwsUnavailable {
        detail: "timeout".into(),
    }));
    w.apply("db", db_password());
    w.reconcile("db").await;
    assert_eq!(
        w.condition("db", SYNCED),
        ("False".into(), "AwsUnavailable".into())
    );

    w.store.fail_with(None);
    tokio::time::advance(Duration::from_secs(5)).await;
    w.reconcile("db").await;
    assert_eq!(w.condition("db", SYNCED), ("True".into(), "Synced".into()));
    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
}

#[tokio::test(start_paused = true)]
async fn a_partial_answer_under_delete_deletes_nothing_and_is_aws_unavailable() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", under_delete()).await;

    w.store.leave_out("prd-db-pass");
    refresh_comes_round().await;
    w.reconcile("db").await;

    assert_eq!(w.value("db", "prd-db-pass").as_deref(), Some("s3cr3t"));
    let secret_writes = w.writes_to("/secrets/");
    assert_eq!(secret_writes, vec![]);
    assert_eq!(
        w.condition("db", SYNCED),
        ("False".into(), "AwsUnavailable".into())
    );
    assert_eq!(w.condition("db", READY), ("True".into(), "Stale".into()));
}

#[tokio::test(start_paused = true)]
async fn a_spec_the_api_server_would_refuse_is_invalid_spec_and_reads_aws_no_more() {
    let w = World::new();
    w.store.put("cert", "-----BEGIN CERTIFICATE-----");
    w.apply(
        "tls",
        json!({"parameters": [{"name": "cert", "key": "tls.crt"}], "target": {"type": "kubernetes.io/tls"}}),
    );
    let action = w.reconcile("tls").await;

    assert_eq!(
        w.condition("tls", SYNCED),
        ("False".into(), "InvalidSpec".into())
    );
    assert_eq!(action, Action::await_change());
    assert!(
        w.api.secret(NS, "tls").is_none(),
        "a partial Secret was written"
    );
    let status_writes = |w: &World| w.writes_to("/status").len();
    assert_eq!(status_writes(&w), 1);
    assert_eq!(w.event_reasons(), vec!["InvalidSpec"]);
}

#[tokio::test(start_paused = true)]
async fn target_labels_cannot_take_the_secret_out_of_the_operators_sight() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.apply(
        "db",
        json!({"parameters": [{"name": "prd-db-pass"}], "target": {"labels": {"ssm-operator.io/managed": "false"}}}),
    );
    w.reconcile("db").await;
    let secret = w.api.secret(NS, "db").unwrap_or_default();
    let labels = secret.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get(crate::names::WATCH_LABEL).map(String::as_str),
        Some("true")
    );
}

#[test]
fn a_failed_api_request_is_told_by_code_and_reason_never_by_the_servers_message() {
    let refusal = kube::Error::Api(
        kube::core::Status::failure(
            "data[.dockerconfigjson]: invalid value \"canary-s3cr3t\"",
            "Invalid",
        )
        .with_code(422)
        .boxed(),
    );
    let text = ReconcileError::from(refusal).to_string();
    assert!(!text.contains("canary"), "{text}");
    assert!(text.contains("422") && text.contains("Invalid"), "{text}");
}

fn read_as_reader() -> Value {
    json!({"parameters": [{"name": "prd-db-pass"}], "identity": {"serviceAccountName": "reader"}})
}

#[tokio::test(start_paused = true)]
async fn a_service_account_that_opted_in_is_read_as() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.api.put_service_account(
        "reader",
        json!({
            "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/reader",
            "ssm-operator.io/allow-ssmparameters": "true",
        }),
    );
    w.apply("db", read_as_reader());
    w.reconcile("db").await;
    assert_eq!(w.condition("db", SYNCED), ("True".into(), "Synced".into()));
}

#[tokio::test(start_paused = true)]
async fn a_service_account_that_did_not_opt_in_is_never_borrowed() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.api.put_service_account(
        "reader",
        json!({"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/reader"}),
    );
    w.apply("db", read_as_reader());
    assert_first_sync_fails(&w, "db", "ServiceAccountNotFound").await;
    assert_eq!(w.store.calls(), Vec::<Vec<String>>::new());
    let obj = w.api.ssm_parameter(NS, "db").expect("applied");
    let message = status::find(obj.status.as_ref(), SYNCED).map(|c| c.message.clone());
    assert!(
        message
            .as_deref()
            .unwrap_or_default()
            .contains("ssm-operator.io/allow-ssmparameters"),
        "{message:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn by_default_no_namespace_reads_with_the_operators_identity_and_the_message_says_what_to_set()
 {
    let w = World::with_tenancy(Tenancy {
        service_account_identities: true,
        operator_identity_namespaces: Vec::new(),
        cluster_role_arns: Vec::new(),
    });
    w.store.put("prd-db-pass", "s3cr3t");
    w.apply("db", db_password());
    assert_first_sync_fails(&w, "db", "RoleNotAllowed").await;
    assert_eq!(w.store.calls(), Vec::<Vec<String>>::new());
    let obj = w.api.ssm_parameter(NS, "db").expect("applied");
    let message = status::find(obj.status.as_ref(), SYNCED).map(|c| c.message.clone());
    let message = message.unwrap_or_default();
    assert!(
        message.contains("--operator-identity-namespaces"),
        "{message}"
    );
    assert!(message.contains("identity.serviceAccountName"), "{message}");
}

fn restarting_api() -> Value {
    json!({
        "parameters": [{"name": "prd-db-pass", "key": "password"}],
        "refreshInterval": "10s",
        "rolloutRestart": [{"kind": "Deployment", "name": "api"}, {"kind": "StatefulSet", "name": "worker"}],
    })
}

fn updated_events(w: &World) -> usize {
    w.event_reasons().iter().filter(|r| *r == "Updated").count()
}

#[tokio::test(start_paused = true)]
async fn a_status_write_lost_after_the_restarts_neither_restarts_twice_nor_loses_the_update() {
    let w = World::new();
    w.store.put("prd-db-pass", "old");
    w.synced("db", restarting_api()).await;

    w.store.put("prd-db-pass", "new");
    w.api.fail_status_writes(1);
    refresh_comes_round().await;
    let obj = w.api.ssm_parameter(NS, "db").unwrap();
    assert!(reconcile(Arc::new(obj), w.ctx.clone()).await.is_err());
    assert_eq!(w.value("db", "password").as_deref(), Some("new"));
    assert_eq!(w.writes_to("/deployments/").len(), 1);
    assert_eq!(w.writes_to("/statefulsets/").len(), 1);
    assert_eq!(
        updated_events(&w),
        1,
        "announced with the restarts, before the status"
    );

    refresh_comes_round().await;
    w.reconcile("db").await;
    assert_eq!(w.writes_to("/deployments/").len(), 1, "restarted twice");
    assert_eq!(w.writes_to("/statefulsets/").len(), 1, "restarted twice");
    assert_eq!(updated_events(&w), 1, "announced twice");
    let note = w
        .api
        .events()
        .into_iter()
        .find(|e| e.reason == "Updated")
        .unwrap()
        .note;
    assert!(note.contains("password (version 2)"), "{note}");
    assert!(!note.contains("new"));

    refresh_comes_round().await;
    w.reconcile("db").await;
    assert_eq!(updated_events(&w), 1, "announced twice");
}

#[tokio::test(start_paused = true)]
async fn a_failed_restart_is_retried_until_it_is_done_and_only_the_failed_one() {
    let w = World::new();
    w.store.put("prd-db-pass", "old");
    w.synced("db", restarting_api()).await;

    w.store.put("prd-db-pass", "new");
    w.api.fail_workload_patches(1);
    refresh_comes_round().await;
    w.reconcile("db").await;
    assert!(
        w.event_reasons()
            .contains(&"RolloutRestartFailed".to_owned())
    );
    assert_eq!(w.writes_to("/statefulsets/").len(), 1);
    let fingerprint =
        w.api.workload_annotations("statefulsets", "worker")["rollout.ssm-operator.io/db"].clone();
    assert!(fingerprint.is_string());
    assert!(
        w.api.workload_annotations("deployments", "api")["rollout.ssm-operator.io/db"].is_null()
    );

    refresh_comes_round().await;
    w.reconcile("db").await;
    assert_eq!(
        w.api.workload_annotations("deployments", "api")["rollout.ssm-operator.io/db"],
        fingerprint
    );
    assert_eq!(
        w.writes_to("/statefulsets/").len(),
        1,
        "the done one restarted again"
    );
    assert_eq!(updated_events(&w), 1);
}

fn merging(name: &str) -> Value {
    json!({
        "parameters": [{"name": "prd-db-pass", "key": name}],
        "target": {"name": "shared", "creationPolicy": "Merge"},
    })
}

#[tokio::test(start_paused = true)]
async fn merge_writes_only_into_a_secret_that_lists_it() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.apply("a", merging("a"));
    w.reconcile("a").await;
    assert_eq!(
        w.condition("a", SYNCED),
        ("False".into(), "SecretConflict".into())
    );
    assert!(
        w.api.secret(NS, "shared").is_none(),
        "Merge created a Secret"
    );

    let mut theirs = foreign_secret("shared", &[("theirs", "T")]);
    w.api.put_secret(theirs.clone());
    force_sync(&w, "a");
    w.reconcile("a").await;
    assert_eq!(
        w.condition("a", SYNCED),
        ("False".into(), "SecretConflict".into())
    );
    assert_eq!(w.value("shared", "a"), None);

    theirs.metadata.annotations =
        Some([("ssm-operator.io/merge-from".to_owned(), "b, a".to_owned())].into());
    w.api.put_secret(theirs);
    force_sync(&w, "a");
    w.reconcile("a").await;
    assert_eq!(w.condition("a", SYNCED), ("True".into(), "Synced".into()));
    assert_eq!(w.value("shared", "a").as_deref(), Some("s3cr3t"));
    assert_eq!(w.value("shared", "theirs").as_deref(), Some("T"));
    let shared = w.api.secret(NS, "shared").unwrap();
    assert!(
        !shared
            .annotations()
            .contains_key(crate::names::OWNER_ANNOTATION)
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_is_ever_merged_into_a_service_account_token() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    let mut token = foreign_secret("shared", &[("token", "T")]);
    token.type_ = Some("kubernetes.io/service-account-token".into());
    token.metadata.annotations =
        Some([("ssm-operator.io/merge-from".to_owned(), "*".to_owned())].into());
    w.api.put_secret(token.clone());
    w.apply("a", merging("a"));
    w.reconcile("a").await;
    assert_eq!(
        w.condition("a", SYNCED),
        ("False".into(), "SecretConflict".into())
    );
    let after = w.api.secret(NS, "shared").unwrap();
    assert_eq!(after.data, token.data);
    assert!(w.store.calls().is_empty());
}

/// Marks `name` deleted, as the API server does for an object with finalizers.
fn mark_deleted(w: &World, name: &str) -> SsmParameter {
    let mut obj = w.api.ssm_parameter(NS, name).unwrap();
    obj.metadata.deletion_timestamp = Some(status::now());
    obj
}

#[tokio::test(start_paused = true)]
async fn an_owned_secret_is_guarded_and_deleting_its_ssm_parameter_alone_lets_it_go() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;
    let obj = w.api.ssm_parameter(NS, "db").unwrap();
    assert_eq!(obj.finalizers(), [crate::names::FINALIZER.to_owned()]);

    let deleting = mark_deleted(&w, "db");
    reconcile(Arc::new(deleting), w.ctx.clone()).await.unwrap();
    assert!(
        w.api
            .ssm_parameter(NS, "db")
            .unwrap()
            .finalizers()
            .is_empty()
    );
    let secret = w.api.secret(NS, "db").unwrap();
    assert_eq!(
        secret.owner_references().len(),
        1,
        "garbage collection deletes it as documented"
    );
}

#[tokio::test(start_paused = true)]
async fn deleting_the_crd_orphans_the_secret_before_the_ssm_parameter_goes() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;
    w.api.delete_crd();

    let deleting = mark_deleted(&w, "db");
    reconcile(Arc::new(deleting), w.ctx.clone()).await.unwrap();
    let secret = w.api.secret(NS, "db").unwrap();
    assert!(
        secret.owner_references().is_empty(),
        "left for garbage collection"
    );
    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
    assert!(
        w.api
            .ssm_parameter(NS, "db")
            .unwrap()
            .finalizers()
            .is_empty()
    );
    assert!(w.event_reasons().contains(&"Orphaned".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn orphan_and_merge_need_no_finalizer() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced(
        "db",
        json!({"parameters": [{"name": "prd-db-pass"}], "target": {"creationPolicy": "Orphan"}}),
    )
    .await;
    assert!(
        w.api
            .ssm_parameter(NS, "db")
            .unwrap()
            .finalizers()
            .is_empty()
    );
}

/// Sets a new force-sync value on `name`, as a user would.
fn force_sync(w: &World, name: &str) {
    let mut obj = w.api.ssm_parameter(NS, name).unwrap();
    let value = format!("{:?}", tokio::time::Instant::now());
    obj.annotations_mut()
        .insert(FORCE_SYNC_ANNOTATION.to_owned(), value);
    w.api.add_ssm_parameter(&obj);
}

#[tokio::test(start_paused = true)]
async fn a_path_over_the_limit_is_invalid_spec_and_writes_nothing() {
    let w = World::new();
    for i in 0..51 {
        w.store.put(&format!("/big/p{i}"), "v");
    }
    w.apply("big", json!({"path": {"prefix": "/big"}}));
    let action = w.reconcile("big").await;
    assert_eq!(
        w.condition("big", SYNCED),
        ("False".into(), "InvalidSpec".into())
    );
    assert!(w.api.secret(NS, "big").is_none());
    assert_eq!(action, Action::await_change());

    for i in 0..51 {
        w.store.put(&format!("/small/p{i}"), "v");
    }
    w.store.delete("/small/p50");
    w.apply("small", json!({"path": {"prefix": "/small"}}));
    w.reconcile("small").await;
    assert_eq!(
        w.condition("small", SYNCED),
        ("True".into(), "Synced".into())
    );
}

/// Two parameters under `/prd/app`, read every 10 s, with `deletion`.
async fn synced_path(w: &World, deletion: &str) {
    w.store.put("/prd/app/a", "va");
    w.store.put("/prd/app/b", "vb");
    let spec = json!({
        "path": {"prefix": "/prd/app"},
        "refreshInterval": "10s",
        "target": {"deletionPolicy": deletion},
    });
    w.synced("app", spec).await;
    assert_eq!(w.value("app", "b").as_deref(), Some("vb"));
}

/// The Secret still holds both keys and nothing wrote to it.
fn assert_path_secret_untouched(w: &World) {
    assert_eq!(w.value("app", "a").as_deref(), Some("va"));
    assert_eq!(w.value("app", "b").as_deref(), Some("vb"));
    assert_eq!(w.writes_to("/secrets/"), vec![]);
}

#[tokio::test(start_paused = true)]
async fn a_path_listing_that_leaves_out_a_parameter_that_exists_drops_no_key_and_writes_nothing() {
    for deletion in ["Retain", "Delete"] {
        let w = World::new();
        synced_path(&w, deletion).await;

        w.store.leave_out_of_listings("/prd/app/b");
        refresh_comes_round().await;
        w.reconcile("app").await;

        assert_path_secret_untouched(&w);
        assert_eq!(
            w.condition("app", SYNCED),
            ("False".into(), "AwsUnavailable".into()),
            "{deletion}"
        );
        assert_eq!(w.condition("app", READY), ("True".into(), "Stale".into()));
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_path_listing_deletes_nothing_even_under_delete() {
    let w = World::new();
    synced_path(&w, "Delete").await;

    w.store.empty_listings(true);
    refresh_comes_round().await;
    w.reconcile("app").await;

    assert_path_secret_untouched(&w);
    assert_eq!(
        w.condition("app", SYNCED),
        ("False".into(), "AwsUnavailable".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_sync_lists_a_path_decrypted_and_reads_no_value_a_second_time() {
    let w = World::new();
    for i in 0..12 {
        w.store.put(&format!("/prd/app/p{i:02}"), &format!("v{i}"));
    }
    w.apply(
        "app",
        json!({"path": {"prefix": "/prd/app"}, "refreshInterval": "10s"}),
    );
    w.reconcile("app").await;
    assert_eq!(w.value("app", "p11").as_deref(), Some("v11"));
    assert_eq!(w.store.path_calls(), 2);
    assert_eq!(w.store.all_calls(), vec![], "no GetParameters call follows");

    // A refresh lists without decryption, and decrypts only what changed.
    w.store.put("/prd/app/p03", "new");
    refresh_comes_round().await;
    w.reconcile("app").await;
    assert_eq!(w.value("app", "p03").as_deref(), Some("new"));
    let decrypting: Vec<StoreCall> = (w.store.all_calls().into_iter())
        .filter(|c| c.decrypt)
        .collect();
    assert_eq!(
        decrypting,
        [StoreCall {
            names: vec!["/prd/app/p03".to_owned()],
            decrypt: true
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn a_path_that_leaves_names_out_is_listed_without_decryption_even_at_a_first_sync() {
    let w = World::new();
    for name in ["db-user", "db-pass", "legacy"] {
        w.store.put(&format!("/prd/app/{name}"), "v");
    }
    w.apply(
        "app",
        json!({"path": {"prefix": "/prd/app", "exclude": ["/prd/app/legacy"]}}),
    );
    w.reconcile("app").await;
    assert_eq!(w.value("app", "db-pass").as_deref(), Some("v"));
    assert_eq!(w.value("app", "legacy"), None);
    let decrypted: Vec<String> = (w.store.all_calls().into_iter())
        .filter(|c| c.decrypt)
        .flat_map(|c| c.names)
        .collect();
    assert_eq!(
        decrypted,
        ["/prd/app/db-pass", "/prd/app/db-user"],
        "only the picked names are decrypted, one read for them"
    );
}

#[tokio::test(start_paused = true)]
async fn a_kms_refusal_in_a_decrypted_listing_names_the_parameter_not_the_path() {
    let w = World::new();
    w.store.put("/prd/app/a", "va");
    w.store.put("/prd/app/b", "vb");
    w.store.deny("/prd/app/b");
    w.apply("app", json!({"path": {"prefix": "/prd/app"}}));
    w.reconcile("app").await;
    assert_eq!(
        w.condition("app", SYNCED),
        ("False".into(), "KmsAccessDenied".into())
    );
    let message = w.condition_message("app", SYNCED);
    assert!(message.contains("/prd/app/b"), "{message}");
    assert!(w.api.secret(NS, "app").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_path_listing_is_read_to_its_last_page() {
    let w = World::new();
    for i in 0..12 {
        w.store.put(&format!("/prd/app/p{i:02}"), "v");
    }
    w.apply("app", json!({"path": {"prefix": "/prd/app"}}));
    w.reconcile("app").await;
    assert_eq!(w.value("app", "p11").as_deref(), Some("v"));
    assert_eq!(w.store.path_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_parameter_deleted_from_a_path_under_retain_keeps_its_key_and_is_parameter_not_found() {
    let w = World::new();
    synced_path(&w, "Retain").await;

    w.store.delete("/prd/app/b");
    refresh_comes_round().await;
    w.reconcile("app").await;

    assert_path_secret_untouched(&w);
    assert_eq!(
        w.condition("app", SYNCED),
        ("False".into(), "ParameterNotFound".into())
    );
    assert_eq!(w.condition("app", READY), ("True".into(), "Stale".into()));
    let obj = w.api.ssm_parameter(NS, "app").expect("applied");
    let message = status::find(obj.status.as_ref(), SYNCED).map(|c| c.message.clone());
    assert!(
        message
            .as_deref()
            .unwrap_or_default()
            .contains("/prd/app/b"),
        "{message:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_parameter_deleted_from_a_path_under_delete_drops_only_its_key() {
    let w = World::new();
    synced_path(&w, "Delete").await;

    w.store.delete("/prd/app/b");
    refresh_comes_round().await;
    w.reconcile("app").await;

    assert_eq!(w.value("app", "a").as_deref(), Some("va"));
    assert_eq!(w.value("app", "b"), None);
    assert_eq!(w.condition("app", SYNCED), ("True".into(), "Synced".into()));
}

#[tokio::test(start_paused = true)]
async fn every_parameter_deleted_from_a_path_under_delete_removes_the_secret() {
    let w = World::new();
    synced_path(&w, "Delete").await;

    w.store.delete("/prd/app/a");
    w.store.delete("/prd/app/b");
    refresh_comes_round().await;
    w.reconcile("app").await;

    assert!(w.api.secret(NS, "app").is_none(), "the Secret was kept");
    assert_eq!(
        w.condition("app", SYNCED),
        ("False".into(), "ParameterNotFound".into())
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_path_on_a_first_sync_is_parameter_not_found_and_writes_no_secret() {
    let w = World::new();
    w.apply("app", json!({"path": {"prefix": "/prd/nothing"}}));
    assert_first_sync_fails(&w, "app", "ParameterNotFound").await;
}

#[tokio::test(start_paused = true)]
async fn kms_throttling_inside_ssm_keeps_the_secret_and_is_retried_at_the_backoff() {
    let w = World::new();
    w.store.put("prd-db-pass", "s3cr3t");
    w.synced("db", db_password()).await;

    w.store.fail_with(Some(SyncError::Throttled {
        operation: "kms:Decrypt (for GetParameters)".into(),
    }));
    w.api.put_secret(w.api.secret(NS, "db").unwrap_or_default()); // an edit: read everything
    let action = w.reconcile("db").await;

    assert_eq!(w.value("db", "password").as_deref(), Some("s3cr3t"));
    assert_eq!(
        w.condition("db", SYNCED),
        ("False".into(), "Throttled".into())
    );
    let retry = format!("{action:?}");
    assert!(
        retry.contains("requeue_after: Some(1.") || retry.contains("requeue_after: Some(2."),
        "retried at {retry}, not after the first backoff step"
    );

    w.store.fail_with(None);
    tokio::time::advance(Duration::from_secs(3)).await;
    w.reconcile("db").await;
    assert_eq!(w.condition("db", SYNCED), ("True".into(), "Synced".into()));
}
