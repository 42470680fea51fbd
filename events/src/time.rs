//! Time as the pure core sees it: a plain value handed in by the caller.
//!
//! The core never reads a clock. Actors read an injectable clock and pass the instant
//! in, so that replay, audit and virtual-time tests run the very same rules.

use serde::{Deserialize, Serialize};

/// Longest interval accepted for any time setting (and an alert's `for_s`): thirty days,
/// in seconds.
pub const MAX_INTERVAL_S: u32 = 30 * 24 * 3600;

/// An instant, in milliseconds since the Unix epoch (UTC).
///
/// Milliseconds in an `i64` keep envelopes small and comparisons trivial; formatting as
/// RFC 3339 is the job of the front ends.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant plus `secs` seconds (saturating, never panics).
    pub fn plus_secs(self, secs: u32) -> Self {
        Timestamp(self.0.saturating_add(i64::from(secs) * 1000))
    }

    /// Whole seconds from `self` until `later`, rounded up; zero if `later` is not after.
    pub fn secs_until(self, later: Timestamp) -> u64 {
        let ms = later.0.saturating_sub(self.0);
        if ms <= 0 {
            0
        } else {
            (ms as u64).div_ceil(1000)
        }
    }
}
