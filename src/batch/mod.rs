//! Coalescing of reads across SsmParameters, under the rate budget.
//!
//! Reads that are due together and share a scope (credentials and region)
//! and a decryption mode go out together as GetParameters calls of at most
//! ten names. When a call fails because of one parameter (AWS does not
//! say which), its names are asked again one by one, so that the failure is
//! attributed to that parameter and the other SsmParameters of the batch
//! still sync. Every call waits for the scope's [`Budgets`].
//!
//! A batch does not guess how long to wait: every reconcile that may read
//! holds a [`Reader`]; a batch gives reconciles a moment to register, then
//! goes out as soon as the readers on their way have all joined it or left
//! ([`readers`]). The window only bounds the wait for one that stalls.

pub mod budget;
mod readers;
mod room;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared, join_all};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::api::SyncError;
use crate::aws::arn::{same_parameter, split_selector};
use crate::aws::{
    FetchedParameter, MAX_NAMES_PER_CALL, ParameterStore, ParametersPage, PathQuery, Scope,
};
use crate::batch::budget::{Budgets, Priority};
use crate::telemetry::metrics::Metrics;
use readers::{Readers, Ticket};

/// The outcome of reading one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetch {
    Found(FetchedParameter),
    /// The parameter does not exist.
    Missing,
    /// The pinned version or label does not exist, the parameter does.
    SelectorMissing,
    Failed(SyncError),
}

/// A read of some names, answered once the batch it joined is done.
struct Request {
    /// The number of the reader's ticket.
    reader: u64,
    /// When it joined a batch first.
    arrived: Instant,
    scope: Scope,
    decrypt: bool,
    priority: Priority,
    names: Vec<String>,
    reply: oneshot::Sender<HashMap<String, Fetch>>,
}

/// Coalesces reads into GetParameters calls. Cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    requests: mpsc::UnboundedSender<Request>,
    aws: Aws,
    readers: Arc<Readers>,
    listings: Listings,
}

/// One reconcile's way to read: batches wait for it while it is on its way.
/// Drop it as soon as the reconcile will not read again.
pub struct Reader {
    batcher: Batcher,
    ticket: Ticket,
}

/// The store, the budget and the metrics every call goes through.
#[derive(Clone)]
struct Aws {
    store: Arc<dyn ParameterStore>,
    budgets: Arc<Budgets>,
    metrics: Arc<Metrics>,
}

impl Batcher {
    /// Starts the batching task; a batch waits at most `window` for readers
    /// on their way. With `concurrency` readers registered (every reconcile
    /// slot taken), more are taken to be coming once those are answered.
    pub fn start(
        store: Arc<dyn ParameterStore>,
        budgets: Arc<Budgets>,
        metrics: Arc<Metrics>,
        window: Duration,
        concurrency: usize,
    ) -> Self {
        let (requests, inbox) = mpsc::unbounded_channel();
        let aws = Aws {
            store,
            budgets,
            metrics,
        };
        let readers = Arc::new(Readers::default());
        let pacing = Pacing {
            window,
            concurrency,
        };
        tokio::spawn(run(aws.clone(), readers.clone(), pacing, inbox));
        Self {
            requests,
            aws,
            readers,
            listings: Listings::default(),
        }
    }

    /// A reader, on its way from now on.
    pub fn reader(&self) -> Reader {
        Reader {
            batcher: self.clone(),
            ticket: self.readers.register(),
        }
    }
}

impl Reader {
    /// Reads `names` (`name`, `name:version`, `name:label` or an ARN).
    pub async fn read(
        &self,
        scope: Scope,
        decrypt: bool,
        priority: Priority,
        names: Vec<String>,
    ) -> HashMap<String, Fetch> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            reader: self.ticket.number(),
            arrived: Instant::now(),
            scope,
            decrypt,
            priority,
            names: names.clone(),
            reply,
        };
        let stopped = || {
            let error = SyncError::AwsUnavailable {
                detail: "the operator is shutting down".to_owned(),
            };
            names
                .iter()
                .map(|n| (n.clone(), Fetch::Failed(error.clone())))
                .collect()
        };
        if self.batcher.requests.send(request).is_err() {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
    }

    /// Reads every parameter under a path, all pages, up to `limit`: a path
    /// holding more is refused after the page that passes it. Readers of
    /// the same path at the same time (the SsmParameters a
    /// ClusterSsmParameter keeps, refreshed on one beat) share one listing.
    pub async fn read_path(
        &self,
        scope: &Scope,
        query: &PathQuery,
        priority: Priority,
        limit: usize,
    ) -> Result<Vec<FetchedParameter>, SyncError> {
        // Not batched, but busy with AWS: nobody should wait for it meanwhile.
        let _busy = self.ticket.busy();
        let key = (scope.clone(), query.clone(), limit);
        let listing = {
            let mut listings = lock(&self.batcher.listings);
            match listings.get(&key) {
                Some(listing) => listing.clone(),
                None => {
                    let aws = self.batcher.aws.clone();
                    let in_flight = self.batcher.listings.clone();
                    let key_done = key.clone();
                    let listing = async move {
                        let (scope, query, limit) = &key_done;
                        let listed = aws.list(scope, query, priority, *limit).await;
                        lock(&in_flight).remove(&key_done);
                        listed
                    }
                    .boxed()
                    .shared();
                    listings.insert(key, listing.clone());
                    listing
                }
            }
        };
        listing.await
    }
}

/// Path listings in flight, by scope, query and limit.
type Listings = Arc<std::sync::Mutex<HashMap<(Scope, PathQuery, usize), SharedListing>>>;
type SharedListing = Shared<BoxFuture<'static, Result<Vec<FetchedParameter>, SyncError>>>;

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Aws {
    /// Every page of the listing of `query`.
    async fn list(
        &self,
        scope: &Scope,
        query: &PathQuery,
        priority: Priority,
        limit: usize,
    ) -> Result<Vec<FetchedParameter>, SyncError> {
        let mut found = Vec::new();
        let mut next_token = None;
        loop {
            self.budgets.acquire(scope, priority).await;
            let page = self
                .store
                .get_parameters_by_path(scope, query, next_token.clone())
                .await;
            let page = self.account(scope, "GetParametersByPath", page)?;
            found.extend(page.found);
            if found.len() > limit {
                return Err(SyncError::InvalidSpec {
                    detail: format!(
                        "path {} holds more than {limit} parameters, the most one SsmParameter may import (--max-path-parameters); narrow path.prefix or split it",
                        query.prefix
                    ),
                });
            }
            match page.next_token {
                // A page that points at itself would list forever.
                Some(token) if next_token.as_ref() == Some(&token) => {
                    return Err(SyncError::AwsUnavailable {
                        detail: format!(
                            "GetParametersByPath of {} answered the NextToken it was asked with",
                            query.prefix
                        ),
                    });
                }
                // Pages may be short, even empty, and still have a next one.
                Some(token) => next_token = Some(token),
                None => return Ok(found),
            }
        }
    }

    /// Tells the budget and the metrics how AWS answered.
    fn account<T>(
        &self,
        scope: &Scope,
        operation: &str,
        answer: Result<T, SyncError>,
    ) -> Result<T, SyncError> {
        match &answer {
            Err(SyncError::Throttled { .. }) => self.budgets.throttled(scope),
            Ok(_) => self.budgets.succeeded(scope),
            Err(_) => {}
        }
        let outcome = answer
            .as_ref()
            .map_or_else(|e| e.reason().as_str(), |_| "ok");
        self.metrics.aws_call(operation, outcome);
        answer
    }

    async fn get_parameters(
        &self,
        scope: &Scope,
        names: &[String],
        decrypt: bool,
        priority: Priority,
    ) -> Result<ParametersPage, SyncError> {
        self.budgets.acquire(scope, priority).await;
        let answer = self.store.get_parameters(scope, names, decrypt).await;
        self.account(scope, "GetParameters", answer)
    }
}

/// How long batches wait, and for how many readers at most.
#[derive(Clone, Copy)]
struct Pacing {
    window: Duration,
    concurrency: usize,
}

/// How long a batch waits for reconciles to register before it counts who
/// is on the way: reconciles due together start a few milliseconds apart
/// (the controller's queue hands them out timer tick by timer tick), and the
/// first may reach its read before the last has started.
const REGISTRATION: Duration = Duration::from_millis(20);

/// Gathers each batch: from its first request, for [`REGISTRATION`], then
/// until the readers on their way by then have arrived or left; never past
/// the window.
async fn run(
    aws: Aws,
    readers: Arc<Readers>,
    pacing: Pacing,
    mut inbox: mpsc::UnboundedReceiver<Request>,
) {
    let Pacing {
        window,
        concurrency,
    } = pacing;
    // Requests a batch left for the next one, to fill its last call.
    let mut carried: Vec<Request> = Vec::new();
    loop {
        let mut batch = Gathering {
            readers: &readers,
            inbox: &mut inbox,
            requests: std::mem::take(&mut carried),
        };
        if batch.requests.is_empty() {
            match batch.inbox.recv().await {
                Some(first) => batch.take(first),
                None => return,
            }
        }
        let opened = Instant::now();
        let oldest = batch.requests.iter().map(|r| r.arrived).min();
        let deadline = oldest.unwrap_or(opened) + window;
        let registering = deadline.min(opened + REGISTRATION);
        let mut open = batch.until(registering, false).await;
        let registered = readers.mark();
        while open && readers.on_the_way_before(registered) && Instant::now() < deadline {
            open = batch.until(deadline, true).await;
        }
        // Readers on their way, or every slot taken: the queue behind them
        // sends more as soon as these are answered.
        let more_coming = open
            && (readers.on_the_way_before(readers.mark()) || readers.registered() >= concurrency);
        let (now, later) = room::fill(batch.requests, more_coming, Instant::now(), window);
        tracing::debug!(
            requests = now.len(),
            carried = later.len(),
            waited_ms = opened.elapsed().as_millis(),
            "batch of reads"
        );
        carried = later;
        if !now.is_empty() {
            tokio::spawn(serve(aws.clone(), readers.clone(), now));
        }
        if !open && carried.is_empty() {
            return;
        }
    }
}

/// A batch being gathered.
struct Gathering<'a> {
    readers: &'a Readers,
    inbox: &'a mut mpsc::UnboundedReceiver<Request>,
    requests: Vec<Request>,
}

impl Gathering<'_> {
    fn take(&mut self, request: Request) {
        self.readers.arrived(request.reader);
        self.requests.push(request);
    }

    /// Takes requests until `deadline`, or until the next change among the
    /// readers (an arrival is one) when `or_change`. False once the inbox
    /// has closed.
    async fn until(&mut self, deadline: Instant, or_change: bool) -> bool {
        loop {
            tokio::select! {
                next = self.inbox.recv() => match next {
                    Some(request) => {
                        self.take(request);
                        if or_change {
                            return true;
                        }
                    }
                    None => return false,
                },
                () = self.readers.changed(), if or_change => return true,
                () = tokio::time::sleep_until(deadline) => return true,
            }
        }
    }
}

/// Reads of one scope and decryption mode, and the most urgent of them.
type Groups = BTreeMap<(Scope, bool), (Priority, BTreeSet<String>)>;

/// Answers every request of one batch.
async fn serve(aws: Aws, readers: Arc<Readers>, batch: Vec<Request>) {
    let mut groups: Groups = BTreeMap::new();
    for request in &batch {
        let (priority, names) = groups
            .entry((request.scope.clone(), request.decrypt))
            .or_insert((Priority::Routine, BTreeSet::new()));
        *priority = (*priority).max(request.priority);
        names.extend(request.names.iter().cloned());
    }
    let answers = join_all(
        groups
            .into_iter()
            .map(|((scope, decrypt), (priority, names))| {
                let aws = aws.clone();
                async move {
                    let names: Vec<String> = names.into_iter().collect();
                    let group = Group {
                        aws: &aws,
                        scope: &scope,
                        priority,
                    };
                    let fetched = group.read(decrypt, &names).await;
                    ((scope, decrypt), fetched)
                }
            }),
    )
    .await;
    let answers: HashMap<(Scope, bool), HashMap<String, Fetch>> = answers.into_iter().collect();
    // Every reader is on its way again before any of them hears back, so
    // that the first to ask again waits for the others.
    for request in &batch {
        readers.answered(request.reader);
    }
    for request in batch {
        let group = answers.get(&(request.scope.clone(), request.decrypt));
        let reply = request
            .names
            .iter()
            .filter_map(|n| Some((n.clone(), group?.get(n)?.clone())))
            .collect();
        // The reader may have given up waiting; nothing to do then.
        let _ = request.reply.send(reply);
    }
}

/// The reads of one scope.
struct Group<'a> {
    aws: &'a Aws,
    scope: &'a Scope,
    priority: Priority,
}

impl Group<'_> {
    /// Reads every name, ten per call, then tells missing pinned versions
    /// apart from missing parameters.
    async fn read(&self, decrypt: bool, names: &[String]) -> HashMap<String, Fetch> {
        let chunks = names.chunks(MAX_NAMES_PER_CALL);
        let chunks = join_all(chunks.map(|chunk| self.read_chunk(decrypt, chunk))).await;
        let mut fetched: HashMap<String, Fetch> = chunks.into_iter().flatten().collect();

        let pinned_missing: Vec<(String, String)> = fetched
            .iter()
            .filter(|(_, f)| matches!(f, Fetch::Missing))
            .filter_map(|(n, _)| match split_selector(n) {
                (base, Some(_)) => Some((n.clone(), base.to_owned())),
                (_, None) => None,
            })
            .collect();
        if !pinned_missing.is_empty() {
            // GetParameters reports a missing version like a missing
            // parameter; a read of the bare names, without decryption,
            // tells them apart.
            let bases: BTreeSet<String> = pinned_missing.iter().map(|(_, b)| b.clone()).collect();
            let bases: Vec<String> = bases.into_iter().collect();
            let probes = bases.chunks(MAX_NAMES_PER_CALL);
            let probes = join_all(probes.map(|c| self.read_chunk(false, c))).await;
            let probes: HashMap<String, Fetch> = probes.into_iter().flatten().collect();
            for (name, base) in pinned_missing {
                match probes.get(&base) {
                    Some(Fetch::Found(_)) => {
                        fetched.insert(name, Fetch::SelectorMissing);
                    }
                    // Only AWS's word that the parameter itself does not
                    // exist makes it missing: a failed or partial probe
                    // says nothing (and must not turn a missing version
                    // into a deletion).
                    Some(Fetch::Failed(error)) => {
                        fetched.insert(name, Fetch::Failed(error.clone()));
                    }
                    Some(Fetch::Missing) => {}
                    Some(Fetch::SelectorMissing) | None => {
                        let error = SyncError::AwsUnavailable {
                            detail: format!("GetParameters did not answer for {base}"),
                        };
                        fetched.insert(name, Fetch::Failed(error));
                    }
                }
            }
        }
        fetched
    }

    async fn read_chunk(&self, decrypt: bool, chunk: &[String]) -> Vec<(String, Fetch)> {
        let answer = self
            .aws
            .get_parameters(self.scope, chunk, decrypt, self.priority)
            .await;
        match answer {
            Ok(page) => chunk
                .iter()
                .map(|name| (name.clone(), fetch_of(&page, name)))
                .collect(),
            Err(error) if chunk.len() > 1 && error.concerns_one_parameter() => {
                let singles = join_all(chunk.iter().map(|name| async move {
                    let single = std::slice::from_ref(name);
                    Box::pin(self.read_chunk(decrypt, single)).await
                }))
                .await;
                singles.into_iter().flatten().collect()
            }
            Err(error) => chunk
                .iter()
                .map(|name| {
                    let error = error.clone().for_parameter(split_selector(name).0);
                    (name.clone(), Fetch::Failed(error))
                })
                .collect(),
        }
    }
}

/// What `page` says of `name`. Only AWS's explicit word that it does not
/// exist — the name in `InvalidParameters` ("GetParameters … InvalidParameters:
/// a list of parameters that are not formatted correctly or do not run during
/// an execution", AWS Systems Manager API Reference) — makes it missing. A
/// name in neither list is an answer AWS does not give: it is treated as a
/// passing fault, never as a deletion.
fn fetch_of(page: &ParametersPage, name: &str) -> Fetch {
    if let Some(p) = page.found.iter().find(|p| answers(p, name)) {
        return Fetch::Found(p.clone());
    }
    if page.invalid.iter().any(|invalid| invalid == name) {
        return Fetch::Missing;
    }
    Fetch::Failed(SyncError::AwsUnavailable {
        detail: format!(
            "GetParameters answered neither {} nor that it does not exist",
            split_selector(name).0
        ),
    })
}

/// Whether `p` is the answer to the request `name`.
fn answers(p: &FetchedParameter, name: &str) -> bool {
    let (base, selector) = split_selector(name);
    let same_selector = p.selector.as_deref().map(|s| s.trim_start_matches(':')) == selector;
    let same_name = same_parameter(&p.name, base) || p.arn.as_deref() == Some(base);
    same_name && same_selector
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeStore;

    fn start(store: Arc<FakeStore>, window_ms: u64) -> Batcher {
        let budgets = Arc::new(Budgets::new(1000.0));
        Batcher::start(
            store,
            budgets,
            Arc::new(Metrics::new()),
            Duration::from_millis(window_ms),
            16,
        )
    }

    fn scope() -> Scope {
        Scope::operator("ap-northeast-1")
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    const WINDOW: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn reads_of_readers_on_their_way_share_one_call_without_waiting_for_the_window() {
        let store = Arc::new(FakeStore::with(&["a", "b", "c"]));
        let batcher = start(store.clone(), WINDOW.as_millis() as u64);
        let (first, second) = (batcher.reader(), batcher.reader());
        let started = Instant::now();
        let (x, y) = tokio::join!(
            first.read(scope(), true, Priority::Interactive, names(&["a", "b"])),
            async {
                // Still busy elsewhere (reading its Secret, say) for a while.
                tokio::time::sleep(Duration::from_millis(300)).await;
                second
                    .read(scope(), true, Priority::Interactive, names(&["b", "c"]))
                    .await
            }
        );
        assert!(matches!(x["a"], Fetch::Found(_)));
        assert!(matches!(y["c"], Fetch::Found(_)));
        assert_eq!(store.calls(), vec![names(&["a", "b", "c"])]);
        assert!(started.elapsed() < WINDOW, "waited for the window");
    }

    #[tokio::test(start_paused = true)]
    async fn second_reads_after_a_shared_answer_share_a_call_too() {
        let store = Arc::new(FakeStore::with(&["a", "b", "c", "d"]));
        let batcher = start(store.clone(), WINDOW.as_millis() as u64);
        let twice = |first: &'static str, then: &'static str| {
            let reader = batcher.reader();
            async move {
                reader
                    .read(scope(), false, Priority::Interactive, names(&[first]))
                    .await;
                reader
                    .read(scope(), true, Priority::Interactive, names(&[then]))
                    .await
            }
        };
        let started = Instant::now();
        tokio::join!(twice("a", "b"), twice("c", "d"));
        assert_eq!(store.calls(), vec![names(&["a", "c"]), names(&["b", "d"])]);
        assert!(started.elapsed() < WINDOW, "waited for the window");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_leaves_without_reading_releases_the_batch() {
        let store = Arc::new(FakeStore::with(&["a"]));
        let batcher = start(store.clone(), WINDOW.as_millis() as u64);
        let (reading, leaving) = (batcher.reader(), batcher.reader());
        let started = Instant::now();
        let (fetched, ()) = tokio::join!(
            reading.read(scope(), true, Priority::Interactive, names(&["a"])),
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                drop(leaving);
            }
        );
        assert!(matches!(fetched["a"], Fetch::Found(_)));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < WINDOW,
            "waited {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_reader_holds_a_batch_no_longer_than_the_window() {
        let store = Arc::new(FakeStore::with(&["a"]));
        let batcher = start(store.clone(), WINDOW.as_millis() as u64);
        let (reading, _stalled) = (batcher.reader(), batcher.reader());
        let started = Instant::now();
        let fetched = reading
            .read(scope(), true, Priority::Interactive, names(&["a"]))
            .await;
        assert!(matches!(fetched["a"], Fetch::Found(_)));
        assert_eq!(started.elapsed(), WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_reader_waits_only_for_others_to_register() {
        let store = Arc::new(FakeStore::with(&["a"]));
        let batcher = start(store.clone(), WINDOW.as_millis() as u64);
        let started = Instant::now();
        let fetched = batcher
            .reader()
            .read(scope(), true, Priority::Interactive, names(&["a"]))
            .await;
        assert!(matches!(fetched["a"], Fetch::Found(_)));
        assert_eq!(started.elapsed(), REGISTRATION);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_registered_just_after_the_batch_opened_joins_it() {
        let store = Arc::new(FakeStore::with(&["a", "b"]));
        let batcher = start(store.clone(), WINDOW.as_millis() as u64);
        let first = batcher.reader();
        let started = Instant::now();
        tokio::join!(
            first.read(scope(), true, Priority::Interactive, names(&["a"])),
            async {
                // Started by the controller a few milliseconds later, then
                // slow to get to its read.
                tokio::time::sleep(Duration::from_millis(5)).await;
                let late = batcher.reader();
                tokio::time::sleep(Duration::from_millis(300)).await;
                late.read(scope(), true, Priority::Interactive, names(&["b"]))
                    .await
            }
        );
        assert_eq!(store.calls(), vec![names(&["a", "b"])]);
        assert!(started.elapsed() < WINDOW, "waited for the window");
    }

    #[tokio::test]
    async fn calls_carry_at_most_ten_names() {
        let all: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let store = Arc::new(FakeStore::with(&refs));
        let batcher = start(store.clone(), 10);
        let fetched = batcher
            .reader()
            .read(scope(), true, Priority::Interactive, all.clone())
            .await;
        assert_eq!(fetched.len(), 25);
        let sizes: Vec<usize> = store.calls().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
    }

    #[tokio::test]
    async fn one_undecryptable_parameter_fails_only_itself() {
        let store = Arc::new(FakeStore::with(&["good", "bad"]));
        store.deny("bad");
        let batcher = start(store.clone(), 50);
        let (me, them) = (batcher.reader(), batcher.reader());
        let (mine, theirs) = tokio::join!(
            me.read(scope(), true, Priority::Interactive, names(&["bad"])),
            them.read(scope(), true, Priority::Interactive, names(&["good"]))
        );
        assert!(
            matches!(&mine["bad"], Fetch::Failed(SyncError::KmsAccessDenied { parameter, .. }) if parameter == "bad")
        );
        assert!(matches!(theirs["good"], Fetch::Found(_)));
    }

    #[tokio::test]
    async fn a_name_in_neither_list_is_a_passing_fault_not_a_missing_parameter() {
        let store = Arc::new(FakeStore::with(&["a", "b"]));
        store.leave_out("b");
        let batcher = start(store, 10);
        let fetched = batcher
            .reader()
            .read(scope(), true, Priority::Interactive, names(&["a", "b"]))
            .await;
        assert!(matches!(fetched["a"], Fetch::Found(_)));
        assert!(
            matches!(
                &fetched["b"],
                Fetch::Failed(SyncError::AwsUnavailable { .. })
            ),
            "{:?}",
            fetched["b"]
        );
    }

    #[tokio::test]
    async fn a_missing_version_whose_parameter_cannot_be_checked_is_a_failure_not_a_deletion() {
        let store = Arc::new(FakeStore::with(&["present"]));
        // The bare-name probe that tells a missing version from a missing
        // parameter fails.
        store.fail_calls_asking(
            "present",
            SyncError::Throttled {
                operation: "GetParameters".into(),
            },
        );
        let batcher = start(store, 10);
        let fetched = batcher
            .reader()
            .read(scope(), true, Priority::Interactive, names(&["present:7"]))
            .await;
        assert!(
            matches!(
                &fetched["present:7"],
                Fetch::Failed(SyncError::Throttled { .. })
            ),
            "{:?}",
            fetched["present:7"]
        );
    }

    #[tokio::test]
    async fn an_empty_answer_leaves_every_name_unanswered() {
        let store = Arc::new(FakeStore::with(&["a", "b"]));
        store.leave_out("a");
        store.leave_out("b");
        let batcher = start(store, 10);
        let fetched = batcher
            .reader()
            .read(scope(), true, Priority::Interactive, names(&["a", "b"]))
            .await;
        for name in ["a", "b"] {
            assert!(
                matches!(
                    &fetched[name],
                    Fetch::Failed(SyncError::AwsUnavailable { .. })
                ),
                "{name}: {:?}",
                fetched[name]
            );
        }
    }

    #[tokio::test]
    async fn missing_parameter_and_missing_version_are_told_apart() {
        let store = Arc::new(FakeStore::with(&["present"]));
        let batcher = start(store, 10);
        let fetched = batcher
            .reader()
            .read(
                scope(),
                true,
                Priority::Interactive,
                names(&["absent", "present:7", "present:1"]),
            )
            .await;
        assert_eq!(fetched["absent"], Fetch::Missing);
        assert_eq!(fetched["present:7"], Fetch::SelectorMissing);
        assert!(matches!(fetched["present:1"], Fetch::Found(_)));
    }

    #[test]
    fn a_one_level_name_asked_with_a_slash_is_answered_by_its_stored_spelling() {
        let stored = FetchedParameter {
            name: "db".to_owned(),
            selector: None,
            arn: None,
            value: crate::api::SecretValue::new("v".to_owned()),
            version: 1,
            type_: "SecureString".to_owned(),
            last_modified: None,
            key_id: None,
        };
        let page = ParametersPage {
            found: vec![stored],
            invalid: vec![],
        };
        assert!(matches!(fetch_of(&page, "/db"), Fetch::Found(_)));
        assert!(matches!(fetch_of(&page, "db"), Fetch::Found(_)));
        assert!(matches!(fetch_of(&page, "/prd/db"), Fetch::Failed(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn readers_of_one_path_at_the_same_time_share_its_listing() {
        let store = Arc::new(FakeStore::with(&["/p/a", "/p/b", "/q/c"]));
        let batcher = start(store.clone(), 50);
        let query = |prefix: &str| PathQuery {
            prefix: prefix.to_owned(),
            recursive: false,
            decrypt: false,
        };
        let (p, q) = (query("/p"), query("/q"));
        let readers: Vec<Reader> = (0..4).map(|_| batcher.reader()).collect();
        let listed = join_all(readers.iter().enumerate().map(|(i, reader)| {
            let query = if i < 3 { p.clone() } else { q.clone() };
            async move {
                reader
                    .read_path(&scope(), &query, Priority::Routine, 100)
                    .await
            }
        }))
        .await;
        let names = |i: usize| -> Vec<String> {
            listed[i]
                .as_ref()
                .unwrap()
                .iter()
                .map(|f| f.name.clone())
                .collect()
        };
        assert_eq!(names(0), ["/p/a", "/p/b"]);
        assert_eq!(names(2), names(0));
        assert_eq!(names(3), ["/q/c"]);
        assert_eq!(store.path_calls(), 2, "one listing per path");

        // Once done, the next reader lists again.
        readers[0]
            .read_path(&scope(), &p, Priority::Routine, 100)
            .await
            .unwrap();
        assert_eq!(store.path_calls(), 3);
    }
}
