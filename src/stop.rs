//! [`Stop`]: the process's stop signals (SIGTERM, SIGINT, SIGQUIT), heard once for its
//! whole life.
//!
//! Why one listener for the life of the process and not one per HTTP server: a cluster
//! member serves in phases (a follower's forwarding server, then the leader's), and the
//! signal runtime wakes only listeners that exist when a signal comes. With a listener per
//! server, a `systemctl stop` that landed between the two (while a new leader restores
//! its products) was heard by nobody, and the process went on to lead. Here the signal is
//! noted once; every server stops on it, also one started after it came, and whatever
//! decides what comes next (lead, restart in place, exit) asks [`Stop::requested`].

use crate::failure::Failure;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// Set by the signal handler itself, for the whole process: a signal that comes after
/// the actix system ended (a member that stepped down, shutting Raft down before it
/// restarts in place) is still heard ([`requested`]), where the system's listener is gone.
static SIGNALLED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Whether a stop signal came at any time since [`Stop::install`].
pub(crate) fn requested() -> bool {
    SIGNALLED
        .get()
        .is_some_and(|flag| flag.load(Ordering::SeqCst))
}

/// The process's stop request. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Stop {
    requested: CancellationToken,
}

impl Stop {
    /// Installs the handlers (on the actix system's runtime: call it inside it). A failure
    /// to install them refuses the start rather than leave a service no signal stops.
    pub(crate) fn install() -> Result<Stop, Failure> {
        use actix_web::rt::signal::unix::{signal, SignalKind};
        let install = |kind| {
            signal(kind)
                .map_err(|e| Failure::Runtime(format!("cannot listen for stop signals: {e}")))
        };
        let (mut term, mut int, mut quit) = (
            install(SignalKind::terminate())?,
            install(SignalKind::interrupt())?,
            install(SignalKind::quit())?,
        );
        let flag = SIGNALLED.get_or_init(|| Arc::new(AtomicBool::new(false)));
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
            signal_hook::flag::register(signal, Arc::clone(flag))
                .map_err(|e| Failure::Runtime(format!("cannot listen for stop signals: {e}")))?;
        }
        let requested = CancellationToken::new();
        let tell = requested.clone();
        actix_web::rt::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = quit.recv() => "SIGQUIT",
            };
            tracing::info!(
                signal = name,
                "stopping: closing event streams, draining requests"
            );
            tell.cancel();
        });
        Ok(Stop { requested })
    }

    /// Whether a stop signal has come.
    pub(crate) fn requested(&self) -> bool {
        self.requested.is_cancelled() || requested()
    }

    /// Resolves when a stop signal has come (at once if it has already): an HTTP server's
    /// `shutdown_signal`, each a graceful stop.
    pub(crate) fn signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.requested.clone().cancelled_owned()
    }

    /// A token cancelled by a stop signal, and which its holder may cancel for reasons of
    /// its own (a leader losing its lead): what ends a server's event streams.
    pub(crate) fn streams(&self) -> CancellationToken {
        self.requested.child_token()
    }
}
