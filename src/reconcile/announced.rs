//! SsmParameters a change event announced: their next reconcile reads AWS
//! whatever the schedule says, and whoever announced the change learns when
//! that reconcile has finished (so that an SQS message is deleted only then).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::reconcile::key::ObjectKey;

/// The announcements no reconcile has taken yet, by object.
#[derive(Default)]
pub struct Announcements {
    waiting: Mutex<HashMap<ObjectKey, Vec<oneshot::Sender<()>>>>,
}

/// An announcement a reconcile took: dropped when the reconcile ends,
/// however it ends, which tells every announcer it has finished.
#[must_use]
pub struct Announced {
    _finished: Vec<oneshot::Sender<()>>,
}

/// Resolves once a reconcile that started after the announcement has
/// finished (or the object was deleted, which leaves nothing to do).
pub type Finished = oneshot::Receiver<()>;

impl Announcements {
    /// Announces a change `object` reads.
    pub fn announce(&self, object: ObjectKey) -> Finished {
        let (finished, waiter) = oneshot::channel();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.entry(object).or_default().push(finished);
        waiter
    }

    /// What was announced for `object` since its last reconcile started.
    pub fn take(&self, object: &ObjectKey) -> Option<Announced> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let finished = waiting.remove(object)?;
        Some(Announced {
            _finished: finished,
        })
    }

    /// Forgets a deleted object: its announcers are done.
    pub fn forget(&self, object: &ObjectKey) {
        drop(self.take(object));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_announcer_learns_when_the_reconcile_that_took_it_ends() {
        let announcements = Announcements::default();
        let key = ObjectKey::new("payments", "db");
        let mut first = announcements.announce(key.clone());
        let mut second = announcements.announce(key.clone());
        let taken = announcements.take(&key).expect("announced");
        assert!(announcements.take(&key).is_none(), "taken once");
        assert!(first.try_recv().is_err() && second.try_recv().is_err());
        let mut later = announcements.announce(key.clone());
        drop(taken);
        assert!(first.await.is_err(), "finished: the sender is gone");
        assert!(second.await.is_err());
        assert_eq!(
            later.try_recv(),
            Err(oneshot::error::TryRecvError::Empty),
            "announced after that reconcile started: waits for the next"
        );
        announcements.forget(&key);
        assert!(
            later.await.is_err(),
            "a deleted object leaves nothing to wait for"
        );
    }
}
