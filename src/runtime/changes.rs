//! Change events wired to the controller: a consumer per queue while this
//! process leads, whose prompts are refreshes due now.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use crate::aws::OperatorAccount;
use crate::events::change::Change;
use crate::events::consume::{Audience, Consumer};
use crate::events::sqs::SqsMailbox;
use crate::reconcile::Context;
use crate::reconcile::announced::Finished;
use crate::reconcile::key::ObjectKey;

/// The queues to read, and what the readers of a change are judged by.
pub struct ChangeEvents {
    pub mailboxes: Vec<Arc<SqsMailbox>>,
    pub operator_account: OperatorAccount,
}

impl ChangeEvents {
    /// Reads every queue until `shutdown`.
    pub async fn consume(
        &self,
        ctx: Arc<Context>,
        shutdown: impl Future<Output = ()> + Clone + Send + 'static,
    ) {
        let consumers = self.mailboxes.iter().map(|mailbox| {
            let audience = Cluster {
                ctx: ctx.clone(),
                operator_account: self.operator_account.clone(),
            };
            let queue = mailbox.queue().to_string();
            let consumer = Consumer::new(mailbox.clone(), audience, ctx.metrics.clone(), queue);
            Arc::new(consumer).run(shutdown.clone())
        });
        join_all(consumers).await;
    }
}

/// The SsmParameters of the controllers' caches.
struct Cluster {
    ctx: Arc<Context>,
    operator_account: OperatorAccount,
}

impl Audience for Cluster {
    fn readers(&self, change: &Change) -> Vec<ObjectKey> {
        let objects = self.ctx.cached.all();
        let account = self.operator_account.get();
        crate::events::readers_of(
            change,
            &objects,
            &self.ctx.default_region,
            account.as_deref(),
        )
    }

    fn foreign(&self, change: &Change) -> bool {
        let account = self.operator_account.get();
        change.region != self.ctx.default_region
            || account.is_some_and(|account| account != change.account)
    }

    fn prompt(&self, object: ObjectKey) -> Finished {
        let finished = self.ctx.announcements.announce(object.clone());
        self.ctx.refreshes.book(object, Duration::ZERO);
        finished
    }
}
