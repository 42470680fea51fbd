//! Group commit: many appends, one write of the write-ahead log and one `fdatasync`.
//!
//! An append adds its keys and values to the frame of the next group and gets a ticket.
//! A caller that must not answer before its events survive registers a [`DurableWaiter`]
//! for its ticket ([`crate::Journal::when_durable`]); one committer thread takes every waiter
//! registered so far, writes the frame once for all of them (by default followed by
//! `fdatasync`), and tells each. So concurrent appends share one write, and a batch
//! gathers while the previous write runs.
//!
//! [`GroupCommit`] owns the frame, the tickets and the waiters; only this module takes
//! their locks.

use crate::checkpoint::Checkpointer;
use crate::config::FlushObserver;
use crate::error::JournalError;
use crate::health::Health;
use crate::lock::lock;
use crate::wal;
use crate::watermark::Watermark;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Told once whether the appends it waits for became durable.
pub type DurableWaiter = Box<dyn FnOnce(Result<(), JournalError>) + Send>;

/// How often, at most, the committer rewrites the watermark; also how long after the
/// last flush it catches up.
pub(crate) const WATERMARK_EVERY: Duration = Duration::from_millis(100);

/// The group-commit state of one journal.
pub(crate) struct GroupCommit {
    /// Whether a group's log write is `fdatasync`ed ([`crate::Durability::Fsync`]).
    sync_groups: bool,
    /// See [`crate::JournalConfig::log_segment_bytes`].
    segment_bytes: u64,
    on_flush: Option<FlushObserver>,
    /// The next group's frame of the write-ahead log (see [`wal::push_record`]). A std
    /// Mutex: held for a copy or a swap, never across I/O. The ticket counter `appended`
    /// moves under it, so that a frame taken holds exactly the appends up to the ticket
    /// read with it.
    frame: Mutex<Vec<u8>>,
    /// Appends so far; each append's ticket is the value after it.
    appended: AtomicU64,
    /// Highest ticket known durable.
    durable: AtomicU64,
    // A std Mutex, not an async one: it is held for a push or a swap, never across
    // I/O or an await, and the committer is a plain thread.
    pending: Mutex<Pending>,
    wake: Condvar,
    committer: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Pending {
    waiters: Vec<DurableWaiter>,
    shutdown: bool,
}

impl GroupCommit {
    /// The state of a journal whose groups are synced when `sync_groups`.
    pub(crate) fn new(
        sync_groups: bool,
        segment_bytes: u64,
        on_flush: Option<FlushObserver>,
    ) -> GroupCommit {
        GroupCommit {
            sync_groups,
            segment_bytes,
            on_flush,
            frame: Mutex::new(Vec::new()),
            appended: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            committer: Mutex::new(None),
        }
    }

    /// Adds one append's keys and values to the next group's frame; returns its ticket.
    pub(crate) fn add_to_frame<'a>(
        &self,
        entries: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> u64 {
        let mut frame = lock(&self.frame);
        if entries.len() > 0 {
            wal::push_record(&mut frame, entries);
        }
        self.appended.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The ticket of the latest append; waiting for it covers every append so far.
    pub(crate) fn latest_ticket(&self) -> u64 {
        self.appended.load(Ordering::SeqCst)
    }

    /// The highest ticket known durable.
    pub(crate) fn durable_ticket(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    /// Calls `waiter` once the append with `ticket` (and all before it) is durable, or
    /// with the error that prevented it (`health`'s, or a shutdown's). Calls it at once if
    /// that is already the case.
    pub(crate) fn when_durable(&self, ticket: u64, waiter: DurableWaiter, health: &Health) {
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return waiter(Ok(()));
        }
        if let Err(e) = health.check().and_then(|()| self.check_open()) {
            return waiter(Err(e));
        }
        let mut pending = lock(&self.pending);
        // Only the first waiter of a batch wakes the committer (a futex call saved per
        // request): later ones find it awake, or flushing, and it takes them all after.
        let first = pending.waiters.is_empty();
        pending.waiters.push(waiter);
        drop(pending);
        if first {
            self.wake.notify_one();
        }
    }

    /// Refuses a write after shutdown.
    pub(crate) fn check_open(&self) -> Result<(), JournalError> {
        if lock(&self.pending).shutdown {
            return Err(JournalError::Failed("the journal is shut down".into()));
        }
        Ok(())
    }

    /// Keeps the committer thread's handle, for [`GroupCommit::stop`].
    pub(crate) fn started(&self, handle: JoinHandle<()>) {
        *lock(&self.committer) = Some(handle);
    }

    /// Stops the committer once it has written what it was given.
    pub(crate) fn stop(&self) {
        lock(&self.pending).shutdown = true;
        self.wake.notify_all();
        if let Some(handle) = lock(&self.committer).take() {
            let _ = handle.join();
        }
    }
}

impl GroupCommit {
    /// The committer: waits for waiters, writes the frame once for all of them (moving to
    /// the next log segment when this one is full), tells them.
    ///
    /// The watermark (see [`crate::watermark`]) is written after the answers, never more
    /// often than every [`WATERMARK_EVERY`]: while appends keep coming, and once more that
    /// long after they stop (or at once when the journal closes). Writing and renaming its
    /// file costs ext4 a data write-back, up to several milliseconds, all of it in front of
    /// the next group's flush. Written after every flush it was 6% of the server's CPU
    /// under `make load`; written whenever the committer found no waiter (which, between
    /// two groups of a busy service, is often) it was one flush in ten (measured with
    /// `perf trace -s`).
    pub(crate) fn run(
        &self,
        mut log: wal::Segment,
        closed: Sender<wal::Segment>,
        around: Around<'_>,
    ) {
        let commit = self;
        let Around {
            health,
            checkpointer,
            watermark,
            path,
        } = around;
        let mut spare_frame = Vec::new();
        let mut unwritten: Option<(u64, crate::watermark::Tips)> = None;
        let mut written = Instant::now();
        loop {
            let waiters = {
                let mut pending = lock(&commit.pending);
                while pending.waiters.is_empty() && !pending.shutdown {
                    if unwritten.is_none() {
                        pending = commit.wake.wait(pending).unwrap_or_else(|p| p.into_inner());
                        continue;
                    }
                    let due = written + WATERMARK_EVERY;
                    let now = Instant::now();
                    if now >= due {
                        break;
                    }
                    pending = commit
                        .wake
                        .wait_timeout(pending, due - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                if pending.waiters.is_empty() {
                    // Due (or shutting down): the watermark catches up with the flushes.
                    let stopping = pending.shutdown;
                    drop(pending);
                    if let Some((version, tips)) = unwritten.take() {
                        watermark.write(path, version, &tips);
                        written = Instant::now();
                    }
                    if stopping {
                        return;
                    }
                    continue;
                }
                std::mem::take(&mut pending.waiters)
            };
            // Read before the frame is taken: every record it names is in the frame or
            // an earlier one.
            let tips = watermark.take_changed();
            // Every waiter registered after its append, so this covers all of them.
            let (mut frame, target) = {
                let mut frame = lock(&commit.frame);
                let taken = std::mem::replace(&mut *frame, std::mem::take(&mut spare_frame));
                (taken, commit.appended.load(Ordering::SeqCst))
            };
            if log.written() >= commit.segment_bytes {
                if let Some(next) = checkpointer.take_spare() {
                    let full = std::mem::replace(&mut log, next);
                    // A checkpointer that has stopped has failed the journal already.
                    let _ = closed.send(full);
                }
            }
            let started = Instant::now();
            let result = health.check().and_then(|()| {
                log.write_frame(&mut frame, commit.sync_groups)
                    .map_err(|e| JournalError::Io(e.to_string()))
            });
            frame.clear();
            spare_frame = frame;
            if let Some(observe) = &commit.on_flush {
                observe(started.elapsed(), waiters.len());
            }
            match result {
                Ok(()) => {
                    commit.durable.fetch_max(target, Ordering::SeqCst);
                    for w in waiters {
                        w(Ok(()));
                    }
                    // After the answers: a crash before this leaves the watermark behind,
                    // which only weakens the check.
                    if tips.is_some() {
                        unwritten = tips;
                    }
                    if unwritten.is_some() && written.elapsed() >= WATERMARK_EVERY {
                        if let Some((version, tips)) = unwritten.take() {
                            watermark.write(path, version, &tips);
                            written = Instant::now();
                        }
                    }
                }
                Err(e) => {
                    health.fail(e.to_string());
                    for w in waiters {
                        w(Err(JournalError::Failed(e.to_string())));
                    }
                }
            }
        }
    }
}

/// What the committer works with besides the group-commit state: the journal's health,
/// the checkpointer's spare segment, the live watermark and the data directory.
pub(crate) struct Around<'a> {
    pub(crate) health: &'a Health,
    pub(crate) checkpointer: &'a Checkpointer,
    pub(crate) watermark: &'a Watermark,
    pub(crate) path: &'a Path,
}
