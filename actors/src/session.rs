//! Sessions: one actor per open browser stream, pushing the user's notifications.
//!
//! A [`SessionActor`] subscribes to its product for one user, forwards what the product
//! tells that user (granted, queue position, warning, revoked) into a channel that the
//! front end turns into Server-Sent Events, and sends keep-alive frames. While it lives,
//! the product counts the user as connected (their queue place does not expire; auto
//! re-login applies). When the browser goes away the channel closes, the session stops
//! and unsubscribes.

// Moved to `messages`; kept reachable at their old paths.
pub use crate::messages::{Notification, Subscribe, Unsubscribe};
use crate::product::ProductActor;
use actix::prelude::*;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// One frame of a session's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A notification.
    Notify(Notification),
    /// Nothing happened; the connection is alive.
    KeepAlive,
}

/// How often a session sends a keep-alive frame (and so notices a closed browser).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Frames a session may hold for a slow browser before it drops keep-alives.
pub const FRAME_BUFFER: usize = 64;

/// One open notification stream of one user.
pub struct SessionActor {
    id: Uuid,
    user: String,
    product: Addr<ProductActor>,
    out: mpsc::Sender<Frame>,
    keep_alive: Duration,
}

impl SessionActor {
    /// A session of `user` on `product`, writing frames to `out`.
    pub fn new(
        user: String,
        product: Addr<ProductActor>,
        out: mpsc::Sender<Frame>,
        keep_alive: Duration,
    ) -> Self {
        SessionActor {
            id: Uuid::new_v4(),
            user,
            product,
            out,
            keep_alive,
        }
    }

    /// Opens a session: starts the actor and returns the receiving end of its frames.
    pub fn open(
        user: String,
        product: Addr<ProductActor>,
        keep_alive: Duration,
    ) -> mpsc::Receiver<Frame> {
        let (tx, rx) = mpsc::channel(FRAME_BUFFER);
        SessionActor::new(user, product, tx, keep_alive).start();
        rx
    }

    fn send(&self, frame: Frame, ctx: &mut Context<Self>) {
        match self.out.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!(user = %self.user, "browser is slow; frame dropped")
            }
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.product.do_send(Subscribe {
            user: self.user.clone(),
            id: self.id,
            session: ctx.address().recipient(),
        });
        ctx.run_interval(self.keep_alive, |act, ctx| {
            if act.out.is_closed() {
                ctx.stop();
            } else {
                act.send(Frame::KeepAlive, ctx);
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.product.do_send(Unsubscribe {
            user: std::mem::take(&mut self.user),
            id: self.id,
        });
    }
}

impl Handler<Notification> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Notification, ctx: &mut Self::Context) {
        self.send(Frame::Notify(msg), ctx);
    }
}
