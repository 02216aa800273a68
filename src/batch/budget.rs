//! The operator's own SSM read rate, per account and region.
//!
//! AWS shares one GetParameter(s)/GetParametersByPath quota (40/s by
//! default) among everyone in an account and region; the operator keeps
//! under its budget (80% of that by default) so it never starves the
//! account's other users. Reads for new and changed SsmParameters go before
//! routine refreshes, so a new Secret never waits behind hundreds of
//! refreshes. After a ThrottlingException the rate halves, then creeps back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::aws::attempts::{Retry, RetryGate};
use crate::aws::{OperatorAccount, Scope};

/// Whose read it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// A refresh whose interval came round.
    Routine,
    /// A new or changed SsmParameter, a forced sync, a repair.
    Interactive,
}

/// Default reads per second per account and region.
pub const DEFAULT_READS_PER_SECOND: f64 = 32.0;
const MIN_READS_PER_SECOND: f64 = 1.0;

/// One rate budget per account and region.
pub struct Budgets {
    ceiling: f64,
    /// The account of the operator's own credentials, once known: its
    /// reads count against the same quota as tenant roles of that account.
    operator_account: OperatorAccount,
    // Keyed by what AWS's quota is shared by: account and region.
    scopes: Mutex<HashMap<(String, String), Arc<Budget>>>,
}

struct Budget {
    interactive: mpsc::UnboundedSender<oneshot::Sender<()>>,
    routine: mpsc::UnboundedSender<oneshot::Sender<()>>,
    rate: Arc<Mutex<f64>>,
}

impl Budgets {
    /// At most `reads_per_second` reads per scope.
    pub fn new(reads_per_second: f64) -> Self {
        Self {
            ceiling: reads_per_second.max(MIN_READS_PER_SECOND),
            operator_account: OperatorAccount::default(),
            scopes: Mutex::new(HashMap::new()),
        }
    }

    /// The operator's own reads are of `account`, once it is known.
    pub fn with_operator_account(mut self, account: OperatorAccount) -> Self {
        self.operator_account = account;
        self
    }

    /// What AWS's quota is shared by: the account of the role the reads run
    /// as and the region. Only the operator's own identity may have no role
    /// ARN to tell its account (credentials from the SDK's default chain):
    /// its reads before its first credentials told the account share a
    /// budget of their own.
    fn quota(&self, scope: &Scope) -> (String, String) {
        let account = scope
            .identity
            .account()
            .or_else(|| self.operator_account.get())
            .unwrap_or_default();
        (account, scope.region.clone())
    }

    fn budget(&self, scope: &Scope) -> Arc<Budget> {
        let key = self.quota(scope);
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        scopes
            .entry(key)
            .or_insert_with(|| Arc::new(Budget::start(self.ceiling)))
            .clone()
    }

    /// Waits until one read of `scope` may go out.
    pub async fn acquire(&self, scope: &Scope, priority: Priority) {
        let budget = self.budget(scope);
        let (grant, granted) = oneshot::channel();
        let queue = match priority {
            Priority::Interactive => &budget.interactive,
            Priority::Routine => &budget.routine,
        };
        if queue.send(grant).is_ok() {
            // A closed dispatcher only happens at shutdown; do not block then.
            let _ = granted.await;
        }
    }

    /// AWS throttled a read of `scope`: halve its rate.
    pub fn throttled(&self, scope: &Scope) {
        let budget = self.budget(scope);
        let mut rate = budget.rate.lock().unwrap_or_else(|p| p.into_inner());
        *rate = (*rate / 2.0).max(MIN_READS_PER_SECOND);
    }

    /// A read of `scope` went through: let its rate creep back up.
    pub fn succeeded(&self, scope: &Scope) {
        let budget = self.budget(scope);
        let mut rate = budget.rate.lock().unwrap_or_else(|p| p.into_inner());
        *rate = (*rate + 0.5).min(self.ceiling);
    }

    /// The current rate of `scope`, reads per second.
    pub fn rate(&self, scope: &Scope) -> f64 {
        *self
            .budget(scope)
            .rate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// A retry is a read like any other: it waits for the budget, ahead of
/// routine reads (its reconcile has waited once already), and a throttled
/// attempt halves the rate as a throttled answer does.
impl RetryGate for Budgets {
    fn before_retry<'a>(&'a self, scope: &'a Scope, why: Retry) -> BoxFuture<'a, ()> {
        if why == Retry::Throttled {
            self.throttled(scope);
        }
        self.acquire(scope, Priority::Interactive).boxed()
    }
}

impl Budget {
    fn start(ceiling: f64) -> Self {
        let (interactive, interactive_queue) = mpsc::unbounded_channel();
        let (routine, routine_queue) = mpsc::unbounded_channel();
        let rate = Arc::new(Mutex::new(ceiling));
        tokio::spawn(dispatch(interactive_queue, routine_queue, rate.clone()));
        Self {
            interactive,
            routine,
            rate,
        }
    }
}

type Grant = oneshot::Sender<()>;

/// How many seconds' worth of reads may go out at once after a quiet spell.
/// AWS does not document its quota's burst: a quarter of a second keeps the
/// reads as even as the rate allows, so that they never bunch beyond it.
const BURST_SECONDS: f64 = 0.25;

/// Hands out tokens of a bucket that holds [`BURST_SECONDS`]' worth,
/// interactive requests first.
async fn dispatch(
    mut interactive: mpsc::UnboundedReceiver<Grant>,
    mut routine: mpsc::UnboundedReceiver<Grant>,
    rate: Arc<Mutex<f64>>,
) {
    let current = || *rate.lock().unwrap_or_else(|p| p.into_inner());
    let capacity = |rate: f64| (rate * BURST_SECONDS).max(1.0);
    let mut tokens = capacity(current());
    let mut filled_at = Instant::now();
    let mut held: Option<Grant> = None;
    loop {
        let (next, is_routine) = match interactive.try_recv() {
            Ok(grant) => (grant, false),
            Err(_) => match held.take() {
                Some(grant) => (grant, true),
                None => tokio::select! {
                    biased;
                    Some(grant) = interactive.recv() => (grant, false),
                    Some(grant) = routine.recv() => (grant, true),
                    else => return,
                },
            },
        };
        let rate = current();
        let now = Instant::now();
        tokens = (tokens + now.duration_since(filled_at).as_secs_f64() * rate).min(capacity(rate));
        filled_at = now;
        if tokens < 1.0 {
            tokio::time::sleep(Duration::from_secs_f64((1.0 - tokens) / rate)).await;
            let now = Instant::now();
            tokens += now.duration_since(filled_at).as_secs_f64() * rate;
            filled_at = now;
        }
        tokens -= 1.0;
        // An interactive read that arrived while a routine one waited
        // overtakes it. (Only then is the queue looked at: a grant taken
        // from it and not handed out would let its read go unpaced.)
        let grant = match is_routine {
            true => match interactive.try_recv() {
                Ok(urgent) => {
                    held = Some(next);
                    urgent
                }
                Err(_) => next,
            },
            false => next,
        };
        let _ = grant.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Identity;

    fn scope() -> Scope {
        Scope::operator("ap-northeast-1")
    }

    #[tokio::test(start_paused = true)]
    async fn reads_beyond_the_budget_wait() {
        let budgets = Budgets::new(10.0);
        let start = Instant::now();
        for _ in 0..30 {
            budgets.acquire(&scope(), Priority::Routine).await;
        }
        // 2.5 in the first burst, then 10 per second.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(2650), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2850), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn interactive_reads_overtake_waiting_routine_ones() {
        let budgets = Arc::new(Budgets::new(2.0));
        // Use up the burst.
        for _ in 0..2 {
            budgets.acquire(&scope(), Priority::Routine).await;
        }
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (budgets, order) = (budgets.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                budgets.acquire(&scope(), Priority::Routine).await;
                order.lock().unwrap().push(format!("routine-{i}"));
            }));
        }
        tokio::task::yield_now().await;
        let (b, o) = (budgets.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            b.acquire(&scope(), Priority::Interactive).await;
            o.lock().unwrap().push("interactive".to_owned());
        }));
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        let position = order.iter().position(|s| s == "interactive").unwrap();
        assert!(position <= 1, "interactive served at {position}: {order:?}");
    }

    #[tokio::test]
    async fn the_operator_and_tenant_roles_of_one_account_share_its_budget() {
        let account = OperatorAccount::default();
        account.learn("111122223333");
        let budgets = Budgets::new(32.0).with_operator_account(account);
        let tenant = |role: &str| Scope {
            region: "ap-northeast-1".into(),
            identity: Identity {
                chained_role: Some(role.into()),
                ..Identity::default()
            },
        };
        let same_account = tenant("arn:aws:iam::111122223333:role/tenant");
        let other_account = tenant("arn:aws:iam::444455556666:role/tenant");
        budgets.throttled(&scope());
        assert_eq!(budgets.rate(&same_account), 16.0);
        assert_eq!(budgets.rate(&other_account), 32.0);
        let elsewhere = Scope::operator("eu-west-1");
        assert_eq!(budgets.rate(&elsewhere), 32.0);
    }

    #[tokio::test]
    async fn the_operator_joins_its_accounts_budget_once_its_credentials_tell_the_account() {
        let account = OperatorAccount::default();
        let budgets = Budgets::new(32.0).with_operator_account(account.clone());
        let tenant = Scope {
            region: "ap-northeast-1".into(),
            identity: Identity {
                chained_role: Some("arn:aws:iam::111122223333:role/tenant".into()),
                ..Identity::default()
            },
        };
        budgets.throttled(&scope());
        assert_eq!(budgets.rate(&tenant), 32.0, "the account is not known yet");
        account.learn("111122223333");
        budgets.throttled(&scope());
        assert_eq!(budgets.rate(&tenant), 16.0);
    }

    #[tokio::test]
    async fn throttling_halves_the_rate_and_success_restores_it() {
        let budgets = Budgets::new(32.0);
        budgets.throttled(&scope());
        assert_eq!(budgets.rate(&scope()), 16.0);
        for _ in 0..100 {
            budgets.succeeded(&scope());
        }
        assert_eq!(budgets.rate(&scope()), 32.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_waits_for_the_budget_and_a_throttled_attempt_halves_its_rate() {
        let budgets = Budgets::new(2.0);
        // Use up the burst.
        budgets.acquire(&scope(), Priority::Routine).await;
        let start = Instant::now();
        budgets.before_retry(&scope(), Retry::Transient).await;
        assert!(
            start.elapsed() >= Duration::from_millis(450),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            budgets.rate(&scope()),
            2.0,
            "a transient failure is no throttle"
        );
        budgets.before_retry(&scope(), Retry::Throttled).await;
        assert_eq!(budgets.rate(&scope()), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_interactive_reads_are_paced_like_sequential_ones() {
        let budgets = Arc::new(Budgets::new(32.0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let budgets = budgets.clone();
                tokio::spawn(async move {
                    for _ in 0..25 {
                        budgets.acquire(&scope(), Priority::Interactive).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // 8 in the first burst, then 32 per second: 92 / 32 = 2.875 s.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(2850), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(3000), "{elapsed:?}");
    }
}
