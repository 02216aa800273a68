//! Calls that go out full: a batch whose last call for a scope would carry
//! fewer than ten names leaves the requests of that remainder for the next
//! batch when more readers are on their way, and never past the window.
//!
//! Sixteen reconciles at a time make batches of sixteen names, which would
//! be two calls of ten and six; carried, the six go with the next four.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use super::Request;
use crate::aws::{MAX_NAMES_PER_CALL, Scope};

/// Splits `requests` into those to send now and those to carry to the next
/// batch: requests of a partly filled last call, newest first, when
/// `more_coming` and their window (from when they arrived) has time left.
pub(super) fn fill(
    requests: Vec<Request>,
    more_coming: bool,
    now: Instant,
    window: Duration,
) -> (Vec<Request>, Vec<Request>) {
    if !more_coming {
        return (requests, Vec::new());
    }
    let mut names: HashMap<(Scope, bool), BTreeSet<&str>> = HashMap::new();
    for r in &requests {
        names
            .entry((r.scope.clone(), r.decrypt))
            .or_default()
            .extend(r.names.iter().map(String::as_str));
    }
    let mut spare: HashMap<(Scope, bool), usize> = names
        .into_iter()
        .map(|(lane, names)| (lane, names.len() % MAX_NAMES_PER_CALL))
        .collect();
    let mut carry = vec![false; requests.len()];
    for (i, r) in requests.iter().enumerate().rev() {
        let left = spare.get_mut(&(r.scope.clone(), r.decrypt));
        if let Some(left) = left
            && r.names.len() <= *left
            && r.arrived + window > now
        {
            *left -= r.names.len();
            carry[i] = true;
        }
    }
    let (mut go, mut wait) = (Vec::new(), Vec::new());
    for (r, carried) in requests.into_iter().zip(carry) {
        match carried {
            true => wait.push(r),
            false => go.push(r),
        }
    }
    (go, wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::budget::Priority;

    fn request(reader: u64, names: &[&str], arrived: Instant) -> Request {
        let (reply, _) = tokio::sync::oneshot::channel();
        Request {
            reader,
            arrived,
            scope: Scope::operator("ap-northeast-1"),
            decrypt: true,
            priority: Priority::Interactive,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            reply,
        }
    }

    fn sixteen(arrived: Instant) -> Vec<Request> {
        (0..16)
            .map(|i| request(i, &[&format!("p{i}")], arrived))
            .collect()
    }

    fn readers(requests: &[Request]) -> Vec<u64> {
        requests.iter().map(|r| r.reader).collect()
    }

    const WINDOW: Duration = Duration::from_millis(250);

    #[tokio::test(start_paused = true)]
    async fn the_remainder_of_a_full_call_waits_for_the_next_batch_when_more_are_coming() {
        let now = Instant::now();
        let (go, wait) = fill(sixteen(now), true, now, WINDOW);
        assert_eq!(readers(&go), (0..10).collect::<Vec<_>>());
        assert_eq!(readers(&wait), (10..16).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_waits_when_nobody_else_is_coming_or_the_window_is_over() {
        let now = Instant::now();
        let (go, wait) = fill(sixteen(now), false, now, WINDOW);
        assert_eq!((go.len(), wait.len()), (16, 0));
        tokio::time::advance(WINDOW).await;
        let (go, wait) = fill(sixteen(now), true, Instant::now(), WINDOW);
        assert_eq!((go.len(), wait.len()), (16, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn full_calls_and_requests_larger_than_the_remainder_go_now() {
        let now = Instant::now();
        let twenty: Vec<Request> = (0..20)
            .map(|i| request(i, &[&format!("p{i}")], now))
            .collect();
        let (go, wait) = fill(twenty, true, now, WINDOW);
        assert_eq!((go.len(), wait.len()), (20, 0));
        let ten: Vec<&str> = vec!["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        let mixed = vec![
            request(0, &["x", "y", "z"], now),
            request(1, &ten[..9], now),
        ];
        // 12 names: the 2 over ten are in a request of 9, which cannot wait alone.
        let (go, wait) = fill(mixed, true, now, WINDOW);
        assert_eq!((go.len(), wait.len()), (2, 0));
    }
}
