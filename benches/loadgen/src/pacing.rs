//! When each connection sends, and from which instant a request's latency counts.
//!
//! Closed loop (`--rate max`): a connection sends its next request as soon as the previous
//! answer arrives. That measures capacity, but its latency figures are those of a
//! saturated server, and they hide stalls: while the server stalls, the clients send
//! nothing, so the requests that would have waited are never counted (coordinated
//! omission).
//!
//! Open loop (`--rate N`): the requests are due on a fixed schedule, N per second over all
//! connections, each connection's evenly spaced and the connections interleaved. A request
//! that cannot be sent when due, because its connection is still waiting for an earlier
//! answer, counts its latency from when it was due, as wrk2 does: a stall costs every
//! request it delayed. A request sent after its due time only because the generator's
//! timer woke late (tokio's timer has millisecond resolution) counts from when it was
//! sent: the server had nothing to do with that delay.

use std::time::{Duration, Instant};

/// The schedule of one connection.
#[derive(Debug, Clone, Copy)]
pub enum Pacing {
    /// The next request goes out as soon as the previous answer is in.
    Closed,
    /// Request `k` is due at `start + offset + k * period`.
    Open {
        start: Instant,
        period: Duration,
        offset: Duration,
    },
}

impl Pacing {
    /// The schedule of connection `index` of `connections`, for `rate` requests per second
    /// over all of them (`None`: closed loop).
    pub fn new(rate: Option<f64>, start: Instant, index: usize, connections: usize) -> Pacing {
        match rate {
            None => Pacing::Closed,
            Some(rate) => {
                let period = Duration::from_secs_f64(connections as f64 / rate);
                Pacing::Open {
                    start,
                    period,
                    offset: period.mul_f64(index as f64 / connections as f64),
                }
            }
        }
    }

    /// When request `k` is due; `None` in closed loop (at once).
    pub fn due(&self, k: u64) -> Option<Instant> {
        match *self {
            Pacing::Closed => None,
            Pacing::Open {
                start,
                period,
                offset,
            } => {
                let k = u32::try_from(k).unwrap_or(u32::MAX);
                Some(start + offset + period.saturating_mul(k))
            }
        }
    }
}

/// The instant request latency counts from: `sent` (when it went out) unless the
/// connection was still busy with an earlier request when it was `due` (`free` is when
/// that earlier answer came in), in which case it counts from `due`.
pub fn latency_start(due: Option<Instant>, free: Instant, sent: Instant) -> Instant {
    match due {
        Some(due) if free > due => due,
        _ => sent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_interleave_evenly_at_the_rate() {
        let start = Instant::now();
        // 4 connections at 1,000/s: each sends every 4 ms, 1 ms apart from the next.
        let due = |i, k| {
            Pacing::new(Some(1000.0), start, i, 4)
                .due(k)
                .expect("open loop")
                - start
        };
        assert_eq!(due(0, 0), Duration::ZERO);
        assert_eq!(due(1, 0), Duration::from_millis(1));
        assert_eq!(due(3, 0), Duration::from_millis(3));
        assert_eq!(due(0, 1), Duration::from_millis(4));
        assert_eq!(due(2, 5), Duration::from_millis(22));
        assert!(Pacing::new(None, start, 0, 4).due(7).is_none());
    }

    #[test]
    fn a_request_held_up_by_a_slow_answer_counts_from_when_it_was_due() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // Due at 10, previous answer at 17, sent at 17: the 7 ms wait counts.
        assert_eq!(latency_start(Some(ms(10)), ms(17), ms(17)), ms(10));
        // Due at 10, connection free since 8, the timer woke at 11: counts from 11.
        assert_eq!(latency_start(Some(ms(10)), ms(8), ms(11)), ms(11));
        // Closed loop: always from when it was sent.
        assert_eq!(latency_start(None, ms(17), ms(17)), ms(17));
    }
}
