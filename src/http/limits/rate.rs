//! Request rates (the `governor` crate's GCRA limiters, keyed): per user on the user
//! routes when a trusted proxy names the user, per peer on them otherwise, and per client
//! on the dashboard's sign-in. A request over its rate is answered 429 `rate_limited` with
//! `Retry-After`, and never reaches a handler.
//!
//! Users behind one trusted proxy share its address, so they are told apart by name (the
//! load tests' many users from 127.0.0.1 each have their own budget); the sign-in, which
//! names nobody, goes by the client address a trusted proxy forwards.

use super::{LimitSettings, Limits, Rate};
use crate::http::auth::{from_trusted_proxy, USER_HEADER};
use crate::problem::Problem;
use actix_web::dev::ServiceRequest;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Checks between two sweeps of keys that have been quiet long enough to be full again.
const PRUNE_EVERY: u64 = 4096;

/// One keyed limiter, or none when its rate is 0.
struct Keyed<K: Hash + Eq + Clone> {
    limiter: Option<RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>>,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(rate: Rate, period: Duration) -> Self {
        let limiter = NonZeroU32::new(rate.per_period).and_then(|n| {
            let quota = Quota::with_period(period / n.get())?
                .allow_burst(NonZeroU32::new(rate.burst).unwrap_or(n));
            Some(RateLimiter::keyed(quota))
        });
        Keyed {
            limiter,
            checks: AtomicU64::new(0),
        }
    }

    /// `None` when `key` may go on; else how long until it may.
    fn check(&self, key: &K) -> Option<Duration> {
        let limiter = self.limiter.as_ref()?;
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter
            .check_key(key)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The limiters of the running service.
pub struct Rates {
    user: Keyed<String>,
    peer: Keyed<IpAddr>,
    login: Keyed<IpAddr>,
}

impl Rates {
    /// The limiters for `settings`.
    pub fn new(settings: &LimitSettings) -> Rates {
        let second = Duration::from_secs(1);
        Rates {
            user: Keyed::new(settings.user_rate, second),
            peer: Keyed::new(settings.peer_rate, second),
            login: Keyed::new(settings.login_rate, Duration::from_secs(60)),
        }
    }
}

/// Whether `path` is one of the user routes (user API, gate, queue page).
pub(crate) fn user_route(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/gate/") || path.starts_with("/queue/")
}

/// The client's address: the peer's, or for a trusted proxy the one it appended to
/// `X-Forwarded-For` (the last entry: those before it come from the client, who could
/// otherwise choose a fresh budget with each request).
fn client_ip(req: &HttpRequest, trusted: bool) -> Option<IpAddr> {
    let forwarded = trusted
        .then(|| req.headers().get_all("x-forwarded-for").last())
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|a| a.trim().parse::<IpAddr>().ok());
    forwarded.or_else(|| req.peer_addr().map(|p| p.ip()))
}

impl Limits {
    /// How long the request must wait, if it is over a rate.
    fn over_rate(&self, req: &HttpRequest) -> Option<Duration> {
        let path = req.path();
        let trusted = from_trusted_proxy(req, &self.settings.trusted_proxies);
        if req.method() == Method::POST && path == "/admin/login" {
            return self.rates.login.check(&client_ip(req, trusted)?);
        }
        if !user_route(path) {
            return None;
        }
        let user = trusted
            .then(|| req.headers().get(USER_HEADER))
            .flatten()
            .and_then(|v| v.to_str().ok());
        match user {
            Some(name) => self.rates.user.check(&name.trim().to_string()),
            None => self.rates.peer.check(&client_ip(req, trusted)?),
        }
    }
}

/// The answer to a request over its rate: 429 `rate_limited` with `Retry-After`; `None`
/// for one within it.
pub fn refusal(req: &ServiceRequest) -> Option<HttpResponse> {
    let limits = req.app_data::<web::Data<Limits>>()?;
    let wait = limits.over_rate(req.request())?;
    limits.refused("rate_limited");
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut res = Problem::rate_limited(secs).error_response();
    if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_trusted_proxy_names_the_client_by_the_entry_it_appended() {
        let peer: std::net::SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let req = TestRequest::default()
            .peer_addr(peer)
            .insert_header(("X-Forwarded-For", "6.6.6.6, 10.1.2.3"))
            .to_http_request();
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(client_ip(&req, true), ip("10.1.2.3"));
        assert_eq!(client_ip(&req, false), ip("127.0.0.1"), "not believed");
        let plain = TestRequest::default().peer_addr(peer).to_http_request();
        assert_eq!(client_ip(&plain, true), ip("127.0.0.1"));
    }
}
