//! The faults a test switches on and off, and the one-shot actions.

/// Faults that last until switched off. Several may be on; the first that
/// applies to a request decides it, in the order of the fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Not listening: connections are refused, and open ones are closed.
    pub refuse: bool,
    /// Connections are accepted and never answered; requests on open
    /// connections are never answered, and watch streams stop delivering —
    /// for good, also after the switch is off: only new connections work.
    pub black_hole: bool,
    /// Every request is answered `429 Too Many Requests` with
    /// `Retry-After` of this many seconds.
    pub throttle: Option<u32>,
    /// Every request is answered with this status (500, 503, …).
    pub fail: Option<u16>,
    /// Every watch request is answered with this status: a watch gap.
    pub fail_watches: Option<u16>,
}

/// Everything the proxy's tasks watch.
#[derive(Clone, Debug, Default)]
pub(super) struct State {
    pub faults: Faults,
    /// Incremented to cut the watch streams open then.
    pub cuts: u64,
    /// Incremented to end the watch streams open then with 410 Gone.
    pub expiries: u64,
    /// Resources whose next watch request gets 410 Gone, one each.
    pub expire_next: Vec<String>,
    /// The proxy was dropped: every connection closes.
    pub stopped: bool,
}

/// What becomes of one request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fate {
    /// Never answered.
    Held,
    /// Answered by the proxy with this status (and Retry-After).
    Answered {
        status: u16,
        retry_after: Option<u32>,
    },
    /// A watch answered with 410 Gone.
    Expired,
    Forwarded,
}

impl Fate {
    pub fn of(faults: &Faults, watch: bool) -> Self {
        if faults.black_hole {
            Self::Held
        } else if let Some(seconds) = faults.throttle {
            Self::Answered {
                status: 429,
                retry_after: Some(seconds),
            }
        } else if let Some(status) = faults.fail {
            Self::Answered {
                status,
                retry_after: None,
            }
        } else if let Some(status) = faults.fail_watches.filter(|_| watch) {
            Self::Answered {
                status,
                retry_after: None,
            }
        } else {
            Self::Forwarded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_gap_fails_watches_only() {
        let gap = Faults {
            fail_watches: Some(500),
            ..Faults::default()
        };
        assert_eq!(Fate::of(&gap, false), Fate::Forwarded);
        assert!(matches!(
            Fate::of(&gap, true),
            Fate::Answered { status: 500, .. }
        ));
    }

    #[test]
    fn a_black_hole_holds_everything_and_throttling_says_when_to_retry() {
        let hole = Faults {
            black_hole: true,
            throttle: Some(3),
            ..Faults::default()
        };
        assert_eq!(Fate::of(&hole, false), Fate::Held);
        let throttled = Faults {
            throttle: Some(3),
            ..Faults::default()
        };
        assert_eq!(
            Fate::of(&throttled, true),
            Fate::Answered {
                status: 429,
                retry_after: Some(3)
            }
        );
    }
}
