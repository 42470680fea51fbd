//! Server-Sent Events framing of a session's frames.

use crate::view::SlotState;
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use slotpool_actors::Frame;
use tokio_util::sync::CancellationToken;

/// An event stream's body that ends when the server stops (`AppState::stopping`). Why:
/// a stream stays open as long as its browser does, and a graceful stop waits for every
/// open response; without this each stop with a page open waited out the whole drain
/// timeout. The browser's `EventSource` reconnects after the `retry` it was given.
pub fn until_stop<S: Stream>(body: S, stopping: &CancellationToken) -> impl Stream<Item = S::Item> {
    body.take_until(stopping.clone().cancelled_owned())
}

/// One frame as SSE bytes: `event: <name>` and a JSON `data:` line, or a comment line for
/// a keep-alive.
pub fn encode(frame: &Frame) -> Bytes {
    match frame {
        Frame::KeepAlive => Bytes::from_static(b": keep-alive\n\n"),
        Frame::Notify(n) => {
            let mut data = serde_json::to_value(SlotState::from(&n.view)).unwrap_or_default();
            if let (Some(reason), Some(obj)) = (n.reason, data.as_object_mut()) {
                obj.insert("reason".into(), reason.into());
            }
            Bytes::from(format!("event: {}\ndata: {}\n\n", n.event, data))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotpool_actors::Notification;
    use slotpool_events::{SlotView, Timestamp};

    #[test]
    fn frames_are_named_events_with_json_data() {
        let f = Frame::Notify(Notification {
            event: "warning",
            view: SlotView::Granted {
                revoke_at: Timestamp::from_millis(0),
                warned: true,
            },
            reason: None,
        });
        assert_eq!(
            encode(&f),
            "event: warning\ndata: {\"revoke_at\":\"1970-01-01T00:00:00.000Z\",\"state\":\"granted\",\"warned\":true}\n\n"
        );
        let f = Frame::Notify(Notification {
            event: "revoked",
            view: SlotView::None,
            reason: Some("inactivity"),
        });
        assert_eq!(
            encode(&f),
            "event: revoked\ndata: {\"reason\":\"inactivity\",\"state\":\"none\"}\n\n"
        );
        assert_eq!(encode(&Frame::KeepAlive), ": keep-alive\n\n");
    }
}
