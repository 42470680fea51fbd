//! Limits on what one client may cost the service: how long a request body may take to
//! arrive ([`body`]), how many notification streams may be open ([`streams`]), and how
//! many requests a peer or a user may send ([`rate`]). Each refusal is a problem with a
//! stable reason and is counted in `slotpool_http_refused_total{reason}`.
//!
//! The limits are one `web::Data<Limits>` beside the application state; the middlewares
//! find it there, and a missing one (a test app) means no limit.

pub mod body;
pub mod rate;
pub mod streams;

use ipnet::IpNet;
use std::time::Duration;

/// Reasons a request is refused by a limit, each a label of
/// `slotpool_http_refused_total` from the start.
pub const REFUSAL_REASONS: [&str; 3] = ["rate_limited", "too_many_streams", "request_timeout"];

/// The configured limits (see `slotpool.sample.toml`).
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// The whole request body must have arrived this long after the handler starts
    /// reading it; else 408 `request_timeout` and the connection is closed.
    pub body_timeout: Duration,
    /// Open notification streams per user (browser tabs); 503 `too_many_streams` beyond.
    pub max_streams_per_user: usize,
    /// Open notification streams in total; 503 `too_many_streams` beyond.
    pub max_streams: usize,
    /// Requests per second (and burst) of one user on the user routes, as named by a
    /// trusted proxy; 0 means no limit.
    pub user_rate: Rate,
    /// Requests per second (and burst) of one peer on the user routes when no trusted
    /// proxy names a user; 0 means no limit.
    pub peer_rate: Rate,
    /// Sign-in attempts at the dashboard per minute (and burst) of one client; 0 means
    /// no limit.
    pub login_rate: Rate,
    /// Peers whose `X-Forwarded-For` names the client (and whose user header is
    /// believed).
    pub trusted_proxies: Vec<IpNet>,
}

/// A rate: `per_period` requests per period, up to `burst` at once; 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period (a second, or a minute for sign-in).
    pub per_period: u32,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
}

/// The limits of the running service, with the refusal counter.
pub struct Limits {
    /// What was configured.
    pub settings: LimitSettings,
    streams: streams::Streams,
    rates: rate::Rates,
    refused: prometheus::IntCounterVec,
}

impl Limits {
    /// The limits, with `slotpool_http_refused_total` registered in `registry` and every
    /// reason at 0.
    pub fn new(
        settings: LimitSettings,
        registry: &prometheus::Registry,
    ) -> Result<Limits, prometheus::Error> {
        let refused = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "slotpool_http_refused_total",
                "Requests refused by a limit, by reason (rate_limited, too_many_streams, request_timeout)",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(refused.clone()))?;
        for reason in REFUSAL_REASONS {
            refused.with_label_values(&[reason]);
        }
        Ok(Limits {
            streams: streams::Streams::default(),
            rates: rate::Rates::new(&settings),
            settings,
            refused,
        })
    }

    /// Counts one refusal.
    fn refused(&self, reason: &'static str) {
        self.refused.with_label_values(&[reason]).inc();
    }
}
