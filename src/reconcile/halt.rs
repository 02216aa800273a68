//! Why a reconcile's pipeline stopped before its last step.

use kube::runtime::controller::Action;

use crate::api::SyncError;
use crate::reconcile::apply::Written;

/// A step's way of ending the pipeline early; `?` carries it to the end.
#[derive(Debug)]
pub enum Halt {
    /// Nothing is due (the trigger was our own write, say): look again then.
    NotDue(Action),
    /// The sync failed for a reason the status reports; `written` is what
    /// was done to the Secret all the same (`deletionPolicy: Delete`).
    Failed {
        error: SyncError,
        written: Option<Written>,
    },
    /// The API server failed: the controller retries with backoff.
    Kube(kube::Error),
}

impl From<SyncError> for Halt {
    fn from(error: SyncError) -> Self {
        Self::Failed {
            error,
            written: None,
        }
    }
}

impl From<kube::Error> for Halt {
    fn from(error: kube::Error) -> Self {
        Self::Kube(error)
    }
}
