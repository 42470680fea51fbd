//! The process's log: `tracing` lines to stderr, written by a thread of their own.
//!
//! Why a writer thread: every answered request logs a line (the access log,
//! [`crate::http::observe`]), and writing each to stderr from the thread that answered
//! it was one `write` system call per request on the hot path (800,000 for a 30 s
//! `make load`). Lines now go through `tracing-appender`'s non-blocking writer into a
//! buffered stderr that its thread flushes each time its queue runs dry: one `write` per
//! burst of lines, off the request's thread. The queue is not lossy: when it is full
//! (128,000 lines the writer could not keep up with) a logging thread waits rather than
//! drop a line. How much the access log says is configured (`access_log`, see
//! [`crate::config::AccessLog`]).
//!
//! Lines still queued when the process ends are written by [`flush`], which every way
//! out of `serve` calls: return from `main`, a panic (before the abort), a restart in
//! place (before the exec).

use crate::config::LogFormat;
use std::io::{BufWriter, Stderr};
use std::sync::Mutex;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

/// The writer thread's guard: dropping it writes what is queued and stops the thread.
/// A std Mutex: taken once, at the end.
static GUARD: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// What is logged unless `SLOTPOOL_LOG` says otherwise. openraft logs every leadership
/// confirmation that misses a member at ERROR (one line per answered read while a member
/// is down) and every vote at INFO; slotpool logs what an operator acts on itself (leader
/// changes, refused peers, stepping down), so openraft's core says only warnings and
/// above, and its per-read confirmation errors not at all (`SLOTPOOL_LOG=info,openraft=debug`
/// shows everything).
const DEFAULT_LOG_FILTER: &str = "info,openraft=warn,openraft::core::raft_core=off";

/// Lines the writer's queue holds before a logging thread waits.
const QUEUED_LINES: usize = 128_000;

/// Installs the subscriber: `SLOTPOOL_LOG`'s filter (or the default), in `format`, to
/// stderr through the writer thread.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLOTPOOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr: BufWriter<Stderr> = BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(stderr);
    if let Ok(mut slot) = GUARD.lock() {
        *slot = Some(guard);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Writes every queued line and stops the writer thread; later lines are dropped.
/// Called on the way out of the process.
pub fn flush() {
    let guard = match GUARD.lock() {
        Ok(mut slot) => slot.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    drop(guard);
}
