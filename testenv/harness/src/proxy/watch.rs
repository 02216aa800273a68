//! Watch streams passed through until a test cuts them, expires them (410
//! Gone) or black-holes them.

use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::sync::watch as signal;

use super::faults::State;
use super::serve::{Body, BoxError};

/// The ERROR event of a watch whose resourceVersion is too old.
pub(super) fn gone_event() -> Bytes {
    let event = serde_json::json!({
        "type": "ERROR",
        "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version (fault proxy)", "reason": "Expired", "code": 410,
        },
    });
    Bytes::from(format!("{event}\n"))
}

fn cut() -> BoxError {
    "watch stream cut by the fault proxy".into()
}

/// `upstream`, a watch's body, under the proxy's control from now on.
pub(super) fn body(upstream: Incoming, control: signal::Receiver<State>) -> Body {
    let (cuts, expiries) = {
        let now = control.borrow();
        (now.cuts, now.expiries)
    };
    let frames = futures::stream::unfold(Some((upstream, control)), move |open| async move {
        let (mut upstream, mut control) = open?;
        loop {
            if control.borrow().faults.black_hole {
                // Never deliver again: the watcher must give up on it.
                let _ = control.wait_for(|s| s.stopped).await;
                return Some((Err(cut()), None));
            }
            tokio::select! {
                frame = upstream.frame() => return match frame {
                    Some(Ok(frame)) => Some((Ok(frame), Some((upstream, control)))),
                    Some(Err(error)) => Some((Err(error.into()), None)),
                    None => None,
                },
                changed = control.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    let (stop, cut_now, expire_now) = {
                        let now = control.borrow_and_update();
                        (now.stopped || now.faults.refuse, now.cuts != cuts, now.expiries != expiries)
                    };
                    if stop || cut_now {
                        return Some((Err(cut()), None));
                    }
                    if expire_now {
                        return Some((Ok(Frame::data(gone_event())), None));
                    }
                }
            }
        }
    });
    StreamBody::new(frames).boxed_unsync()
}
