//! The reconciles on their way to read AWS, so that a batch can wait for
//! them instead of guessing how long they take.
//!
//! A reconcile registers (takes a [`Ticket`]) when it starts. It is *on its way*
//! while it does anything but wait for AWS (resolving its identity, reading
//! its Secret, looking at a probe's answer); it has *arrived* from when the
//! batching task takes one of its requests until that request is answered —
//! the batcher, not the reader, says so, so that a reader whose answer is
//! sent but not yet seen never counts as arrived. A batch goes out once
//! every reader registered by a [`Mark`] it takes has arrived or left, or when
//! its window closes, whichever comes first. Readers registered later join it
//! if they arrive in time but never hold it back, so a steady stream of
//! reconciles cannot keep a batch open.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Who is on the way, and a signal when that changes.
#[derive(Default)]
pub struct Readers {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    /// The next registration number.
    next: u64,
    /// Registered readers, by registration number, with how many of their
    /// reads wait in a batch now (0: on their way).
    waiting: BTreeMap<u64, usize>,
}

/// A point in the order of registrations: the readers before it are the ones
/// a batch that takes it waits for.
#[derive(Clone, Copy, Debug)]
pub struct Mark(u64);

impl Readers {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever a panicking holder did.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a reader, on its way.
    pub fn register(self: &Arc<Self>) -> Ticket {
        let mut state = self.state();
        let number = state.next;
        state.next += 1;
        state.waiting.insert(number, 0);
        Ticket {
            readers: self.clone(),
            number,
        }
    }

    /// The point a batch opening now waits up to.
    pub fn mark(&self) -> Mark {
        Mark(self.state().next)
    }

    /// How many readers are registered now.
    pub fn registered(&self) -> usize {
        self.state().waiting.len()
    }

    /// Whether a reader registered before `mark` is still on its way.
    pub fn on_the_way_before(&self, mark: Mark) -> bool {
        self.state()
            .waiting
            .range(..mark.0)
            .any(|(_, waiting)| *waiting == 0)
    }

    /// Resolves after a reader arrived or left (possibly spuriously).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Changes who waits, and says so to the batching task (the one waiter;
    /// a stored permit covers a change between its check and its wait).
    fn update(&self, change: impl FnOnce(&mut BTreeMap<u64, usize>)) {
        change(&mut self.state().waiting);
        self.changed.notify_one();
    }
}

/// The registration of one reconcile that is going to read. Dropping it says
/// it will not read again.
pub struct Ticket {
    readers: Arc<Readers>,
    number: u64,
}

impl Ticket {
    /// The number its requests carry.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Counts the holder as arrived while the guard lives: it is busy with
    /// AWS outside any batch (reading a path), so nobody should wait for it.
    pub fn busy(&self) -> Busy<'_> {
        self.readers.update(|w| {
            if let Some(n) = w.get_mut(&self.number) {
                *n += 1;
            }
        });
        Busy(self)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let number = self.number;
        self.readers.update(|w| {
            w.remove(&number);
        });
    }
}

/// A [`Ticket`]'s holder busy with AWS outside a batch.
pub struct Busy<'a>(&'a Ticket);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.readers.answered(self.0.number);
    }
}

impl Readers {
    /// A request of reader `number` joined a batch.
    pub fn arrived(&self, number: u64) {
        if let Some(n) = self.state().waiting.get_mut(&number) {
            *n += 1;
        }
    }

    /// A request of reader `number` is about to be answered: the reader is on
    /// its way again from now, before it even sees the answer.
    pub fn answered(&self, number: u64) {
        if let Some(n) = self.state().waiting.get_mut(&number) {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_waits_only_for_readers_registered_before_its_mark() {
        let readers = Arc::new(Readers::default());
        let first = readers.register();
        let second = readers.register();
        let mark = readers.mark();
        let _late = readers.register();
        assert!(readers.on_the_way_before(mark));
        readers.arrived(first.number());
        assert!(readers.on_the_way_before(mark), "second is on its way");
        drop(second);
        assert!(
            !readers.on_the_way_before(mark),
            "the late one does not count"
        );
    }

    #[test]
    fn a_reader_is_on_its_way_again_once_its_read_is_answered() {
        let readers = Arc::new(Readers::default());
        let reader = readers.register();
        let mark = readers.mark();
        readers.arrived(reader.number());
        let busy = reader.busy();
        assert!(!readers.on_the_way_before(mark));
        readers.answered(reader.number());
        assert!(!readers.on_the_way_before(mark), "still busy with a path");
        drop(busy);
        assert!(readers.on_the_way_before(mark));
    }
}
