//! Stalls of the machine itself, seen from a thread that only sleeps.
//!
//! A thread asks to sleep 1 ms at a time and notes every wake-up more than
//! [`THRESHOLD`] late. Such a delay is not slotpool's: the thread needs no lock and almost
//! no CPU, so it is late only when no CPU was given to it, because the machine was
//! saturated or because a virtual machine's host did not run it (a CPU quota that throttles
//! the whole guest, seen here as several milliseconds every 100 ms). Every request in
//! flight at such a moment is late by as much, and a latency percentile above the
//! stalled share of the run measures the machine, not the server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A wake-up later than this counts as a stall.
pub const THRESHOLD: Duration = Duration::from_millis(2);

/// How often and how long the monitor found the machine stalled.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stalls {
    /// Wake-ups later than [`THRESHOLD`].
    pub count: u64,
    /// Their lateness, added up.
    pub total: Duration,
}

/// The running monitor.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Stalls>>,
}

impl Monitor {
    /// Watches until `until` (or [`Monitor::finish`]).
    pub fn start(until: Instant) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("stall-monitor".into())
            .spawn(move || {
                let tick = Duration::from_millis(1);
                let mut seen = Stalls::default();
                while !flag.load(Ordering::Relaxed) && Instant::now() < until {
                    let asked = Instant::now();
                    std::thread::sleep(tick);
                    let late = asked.elapsed().saturating_sub(tick);
                    if late > THRESHOLD {
                        seen.count += 1;
                        seen.total += late;
                    }
                }
                seen
            })
            .ok();
        Monitor { stop, thread }
    }

    /// Stops watching and says what was seen (nothing, if the thread could not start).
    pub fn finish(mut self) -> Stalls {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}
