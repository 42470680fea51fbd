//! What every request leaves behind for operators: its cause id (the uuid the journal
//! stores in the envelope of every event the request causes, the `X-Request-Id` response
//! header, and the `cause` field of its log lines), its count and latency by route
//! pattern, method and status.
//!
//! The one middleware of the app ([`super::around`]) observes every request from first to
//! last ([`Observed`]). It gives each request a cause id (the caller's `X-Request-Id` when
//! it is a UUID, so a proxy's id carries through; a fresh v4 otherwise), runs the request
//! inside a `request` tracing span carrying it and inside a task-local scope, from which
//! handlers take it with [`cause`] for the commands they send.

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web;
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use slotpool_actors::metrics::register;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

/// The request and response header carrying the cause id.
pub const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    static CAUSE: Uuid;
}

/// The cause id of the request being handled (a fresh one outside a request, e.g. in
/// tests that call a handler directly).
pub fn cause() -> Uuid {
    CAUSE.try_with(|c| *c).unwrap_or_else(|_| Uuid::new_v4())
}

/// What the access log says ([`crate::config::AccessLog`]), with the count its sampling
/// goes by. Absent from the app (tests that build one by hand): every answer is logged.
pub struct AccessLogPolicy {
    setting: crate::config::AccessLog,
    answered: AtomicU64,
}

impl AccessLogPolicy {
    /// The policy of `setting`.
    pub fn new(setting: crate::config::AccessLog) -> AccessLogPolicy {
        AccessLogPolicy {
            setting,
            answered: AtomicU64::new(0),
        }
    }

    /// Whether the answer with `status` to a call of `route` gets a line.
    fn logs(&self, route: &str, status: actix_web::http::StatusCode) -> bool {
        use crate::config::AccessLog;
        let failed = status.is_client_error() || status.is_server_error();
        match self.setting {
            AccessLog::Off => false,
            AccessLog::Errors => failed,
            AccessLog::All { .. } if failed => true,
            AccessLog::All { .. } if is_probe(route) => false,
            AccessLog::All { sample: 1 } => true,
            AccessLog::All { sample } => {
                self.answered.fetch_add(1, Ordering::Relaxed) % u64::from(sample) == 0
            }
        }
    }
}

/// The HTTP metrics, by route pattern (never the raw path: bounded cardinality), and the
/// gauges `/metrics` computes when it is scraped.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    /// `slotpool_ready`: what `/readyz` would answer, as 1 or 0.
    pub ready: IntGauge,
    /// `slotpool_snapshot_age_seconds{product}`: now minus the latest snapshot's time.
    pub snapshot_age: GaugeVec,
}

impl HttpMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<HttpMetrics, prometheus::Error> {
        let duration = HistogramOpts::new(
            "slotpool_http_request_duration_seconds",
            "Time from receiving an HTTP request to its response head, by route pattern and method.",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ]);
        let snapshot_age = Opts::new(
            "slotpool_snapshot_age_seconds",
            "Seconds since the product's latest snapshot was taken (absent before the first).",
        );
        Ok(HttpMetrics {
            requests: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "slotpool_http_requests_total",
                        "HTTP requests answered, by route pattern, method and status code.",
                    ),
                    &["route", "method", "status"],
                )?,
            )?,
            duration: register(registry, HistogramVec::new(duration, &["route", "method"])?)?,
            ready: register(
                registry,
                IntGauge::new(
                    "slotpool_ready",
                    "1 when recovery is done and the journal accepts writes (as /readyz), else 0.",
                )?,
            )?,
            snapshot_age: register(registry, GaugeVec::new(snapshot_age, &["product"])?)?,
        })
    }
}

/// A method label from a closed set, so that odd methods cannot grow the label space.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Paths polled by monitoring: counted, but not logged on every call.
fn is_probe(route: &str) -> bool {
    matches!(route, "/metrics" | "/healthz" | "/readyz")
}

/// What is observed of one request, from its arrival ([`Observed::begin`]) to its answer
/// ([`Observed::end`]): cause id, span, log line, metrics, `X-Request-Id`. The one
/// middleware ([`super::around`]) runs everything else inside it ([`Observed::run`]).
pub struct Observed {
    started: Instant,
    id: Uuid,
    method: &'static str,
    metrics: Option<web::Data<HttpMetrics>>,
    access_log: Option<web::Data<AccessLogPolicy>>,
    span: tracing::Span,
}

impl Observed {
    /// A request arrives: its cause id (the caller's `X-Request-Id` when it is a UUID, a
    /// fresh one otherwise) and its span.
    pub fn begin(req: &ServiceRequest) -> Observed {
        let id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v.trim()).ok())
            .unwrap_or_else(Uuid::new_v4);
        let method = method_label(req.method());
        Observed {
            started: Instant::now(),
            id,
            method,
            metrics: req.app_data::<web::Data<HttpMetrics>>().cloned(),
            access_log: req.app_data::<web::Data<AccessLogPolicy>>().cloned(),
            span: tracing::info_span!("request", cause = %id, method),
        }
    }

    /// Runs the request's handling in its span, with its cause id for [`cause`].
    pub async fn run<F: std::future::Future>(&self, handling: F) -> F::Output {
        CAUSE
            .scope(self.id, handling)
            .instrument(self.span.clone())
            .await
    }

    /// The answer is ready: counts it, sets `X-Request-Id`, and writes its log line.
    pub fn end<B>(self, res: &mut ServiceResponse<B>) {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_string());
        let status = res.status();
        let took = self.started.elapsed();
        if let Some(m) = &self.metrics {
            m.requests
                .with_label_values(&[route.as_str(), self.method, status.as_str()])
                .inc();
            m.duration
                .with_label_values(&[route.as_str(), self.method])
                .observe(took.as_secs_f64());
        }
        let mut id = Uuid::encode_buffer();
        if let Ok(v) = HeaderValue::from_str(self.id.hyphenated().encode_lower(&mut id)) {
            res.headers_mut()
                .insert(HeaderName::from_static(REQUEST_ID), v);
        }
        let logged = match &self.access_log {
            Some(policy) => policy.logs(&route, status),
            None => !is_probe(&route) || status.is_server_error(),
        };
        if logged {
            self.span.in_scope(|| {
                tracing::info!(
                    route = %route,
                    status = status.as_u16(),
                    micros = took.as_micros() as u64,
                    "answered"
                )
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AccessLogPolicy;
    use crate::config::AccessLog;
    use actix_web::http::StatusCode;

    #[test]
    fn the_policy_logs_what_its_setting_says() {
        let all = AccessLogPolicy::new(AccessLog::All { sample: 1 });
        assert!(all.logs("/api/v1/products/{product}/slot", StatusCode::OK));
        assert!(!all.logs("/readyz", StatusCode::OK));
        assert!(all.logs("/readyz", StatusCode::SERVICE_UNAVAILABLE));
        let errors = AccessLogPolicy::new(AccessLog::Errors);
        assert!(!errors.logs("/x", StatusCode::NO_CONTENT));
        assert!(errors.logs("/x", StatusCode::NOT_FOUND));
        assert!(errors.logs("/x", StatusCode::INTERNAL_SERVER_ERROR));
        let off = AccessLogPolicy::new(AccessLog::Off);
        assert!(!off.logs("/x", StatusCode::INTERNAL_SERVER_ERROR));
        // One in four successful answers; every failed one.
        let sampled = AccessLogPolicy::new(AccessLog::All { sample: 4 });
        let logged = (0..100)
            .filter(|_| sampled.logs("/x", StatusCode::OK))
            .count();
        assert_eq!(logged, 25);
        assert!(sampled.logs("/x", StatusCode::CONFLICT));
    }
}
