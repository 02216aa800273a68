//! The consumer of one queue of change events: each message is read into a
//! change, the SsmParameters that read its parameter are prompted, and the
//! message is deleted only once their reconciles have finished. A crash
//! before that leaves the message to SQS, which delivers it again; a second
//! delivery reads AWS once more and writes nothing that has not changed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use tokio::task::JoinSet;

use super::change::{Change, Refused};
use super::sqs::{Mailbox, Message};
use crate::failpoint;
use crate::reconcile::announced::Finished;
use crate::reconcile::key::ObjectKey;
use crate::telemetry::metrics::Metrics;

/// Who a change concerns.
pub trait Audience: Send + Sync + 'static {
    /// The SsmParameters that read the parameter `change` is of.
    fn readers(&self, change: &Change) -> Vec<ObjectKey>;
    /// Whether `change` is of an account or region the operator does not
    /// read in by default (told apart from a change nobody reads).
    fn foreign(&self, change: &Change) -> bool;
    /// Makes `object` read AWS now, ahead of routine refreshes.
    fn prompt(&self, object: ObjectKey) -> Finished;
}

impl<T: Audience> Audience for Arc<T> {
    fn readers(&self, change: &Change) -> Vec<ObjectKey> {
        (**self).readers(change)
    }

    fn foreign(&self, change: &Change) -> bool {
        (**self).foreign(change)
    }

    fn prompt(&self, object: ObjectKey) -> Finished {
        (**self).prompt(object)
    }
}

/// What became of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its readers were reconciled.
    Prompted,
    /// No SsmParameter reads the parameter: no call to AWS.
    Unread,
    /// The same event (by EventBridge's id) came before.
    Duplicate,
    /// Not a change event.
    Malformed,
    /// Another service's event, or of an account or region nobody reads.
    Foreign,
    /// Its readers' reconciles did not finish in time: left in the queue,
    /// to be delivered again.
    Unfinished,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prompted => "prompted",
            Self::Unread => "unread",
            Self::Duplicate => "duplicate",
            Self::Malformed => "malformed",
            Self::Foreign => "foreign",
            Self::Unfinished => "unfinished",
        }
    }

    fn deletes(self) -> bool {
        self != Self::Unfinished
    }
}

/// How long a message waits for its readers' reconciles before it is left
/// for SQS to deliver again: a cold start of 10,000 SsmParameters takes
/// about 80 s, and a prompted reconcile goes ahead of that backlog.
pub const FINISH_WITHIN: Duration = Duration::from_secs(600);

/// Event ids remembered, to drop duplicates: EventBridge delivers "at least
/// once", and a duplicate comes soon after the first.
const REMEMBERED: usize = 4096;

/// The longest wait after failed receives, doubled from one second.
const RECEIVE_BACKOFF_CAP: Duration = Duration::from_secs(60);

/// One queue's consumer.
pub struct Consumer<M, A> {
    mailbox: M,
    audience: A,
    metrics: Arc<Metrics>,
    /// The queue's URL, for logs.
    queue: String,
    finish_within: Duration,
    /// Messages being handled, by MessageId: the receipt handle of their
    /// latest delivery, the only one that deletes them.
    held: Mutex<HashMap<String, String>>,
    recent: Mutex<Recent>,
}

impl<M: Mailbox, A: Audience> Consumer<M, A> {
    pub fn new(mailbox: M, audience: A, metrics: Arc<Metrics>, queue: String) -> Self {
        Self {
            mailbox,
            audience,
            metrics,
            queue,
            finish_within: FINISH_WITHIN,
            held: Mutex::default(),
            recent: Mutex::default(),
        }
    }

    /// Messages wait this long at most for their readers' reconciles.
    pub fn finish_within(mut self, wait: Duration) -> Self {
        self.finish_within = wait;
        self
    }

    /// Receives and handles messages until `shutdown`; messages still held
    /// then are left to SQS.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut handling = JoinSet::new();
        let mut backoff = Duration::from_secs(1);
        tracing::info!(queue = %self.queue, "reading change events");
        loop {
            let received = tokio::select! {
                () = &mut shutdown => return,
                received = self.mailbox.receive() => received,
            };
            while handling.try_join_next().is_some() {}
            match received {
                Ok(messages) => {
                    backoff = Duration::from_secs(1);
                    for message in messages.into_iter().filter(|m| self.hold(m)) {
                        handling.spawn(self.clone().handle(message));
                    }
                }
                Err(why) => {
                    tracing::warn!(queue = %self.queue, error = %why, wait_seconds = backoff.as_secs(), "receiving change events failed; trying again");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(RECEIVE_BACKOFF_CAP);
                }
            }
        }
    }

    /// Holds a message received; `false` when it is a new delivery of one
    /// held already, which is then deleted by its new receipt.
    fn hold(&self, message: &Message) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let first = !held.contains_key(&message.id);
        held.insert(message.id.clone(), message.receipt.clone());
        first
    }

    /// The receipt that deletes a held message, which is held no longer.
    fn release(&self, id: &str) -> Option<String> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(id)
    }

    async fn handle(self: Arc<Self>, message: Message) {
        failpoint::hit(failpoint::CHANGE_EVENT_RECEIVED);
        let outcome = self.judge(&message).await;
        self.metrics.change_event(outcome.as_str());
        tracing::debug!(queue = %self.queue, message = %message.id, outcome = outcome.as_str(), "change event handled");
        let Some(receipt) = self.release(&message.id) else {
            return;
        };
        if outcome.deletes()
            && let Err(why) = self.mailbox.delete(&receipt).await
        {
            // Delivered again later, and handled again: nothing lost.
            tracing::warn!(queue = %self.queue, message = %message.id, error = %why, "deleting a handled change event failed");
        }
    }

    async fn judge(&self, message: &Message) -> Outcome {
        let change = match Change::of(&message.body) {
            Ok(change) => change,
            Err(Refused::Malformed(why)) => {
                tracing::warn!(queue = %self.queue, message = %message.id, %why, "dropping a message that is not a change event");
                return Outcome::Malformed;
            }
            Err(Refused::NotParameterStore) => return Outcome::Foreign,
        };
        if !self.recent().first(&change.id) {
            return Outcome::Duplicate;
        }
        let readers = self.audience.readers(&change);
        if readers.is_empty() {
            return match self.audience.foreign(&change) {
                true => Outcome::Foreign,
                false => Outcome::Unread,
            };
        }
        tracing::debug!(queue = %self.queue, parameter = %change.name, readers = readers.len(), "a parameter changed; reading it again");
        let finished = readers.into_iter().map(|r| self.audience.prompt(r));
        match tokio::time::timeout(self.finish_within, join_all(finished)).await {
            Ok(_) => Outcome::Prompted,
            Err(_) => {
                // Its next delivery is no duplicate.
                self.recent().forget(&change.id);
                tracing::warn!(queue = %self.queue, message = %message.id, parameter = %change.name, "the reconciles a change event prompted did not finish in time; leaving it to be delivered again");
                Outcome::Unfinished
            }
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The latest event ids, [`REMEMBERED`] at most.
#[derive(Default)]
struct Recent {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Recent {
    /// Remembers `id`; whether it is new.
    fn first(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }

    fn forget(&mut self, id: &str) {
        self.ids.remove(id);
        self.order.retain(|o| o != id);
    }
}

#[cfg(test)]
mod tests;
