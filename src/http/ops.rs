//! Operations endpoints: health, readiness, metrics, the OpenAPI document, and the
//! problem for unknown paths.

use super::AppState;
use crate::problem::Problem;
use actix_web::{web, HttpRequest, HttpResponse};
use prometheus::{Encoder, TextEncoder};
use std::sync::atomic::Ordering;

/// The OpenAPI 3 document of the whole API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: recovery is done and the journal accepts writes.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    ready(&state)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

/// Whether the service is ready: recovery done, the journal accepting writes.
pub fn ready(state: &AppState) -> Result<(), Problem> {
    if !state.ready.load(Ordering::SeqCst) {
        return Err(Problem::not_ready());
    }
    if !state.services.products.journal().is_writable() {
        return Err(Problem::journal_unavailable(
            "the journal refused a write; restart the service to recover from disk",
        ));
    }
    Ok(())
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    if let Some(m) = req.app_data::<actix_web::web::Data<super::observe::HttpMetrics>>() {
        refresh_scrape_gauges(&state, m);
    }
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&state.registry.gather(), &mut out)
        .map_err(Problem::metrics_failed)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out))
}

/// Sets the gauges that are functions of the moment of the scrape: readiness, and each
/// product's snapshot age from the time its latest snapshot was taken.
fn refresh_scrape_gauges(state: &super::AppState, m: &super::observe::HttpMetrics) {
    let ready =
        state.ready.load(Ordering::SeqCst) && state.services.products.journal().is_writable();
    m.ready.set(i64::from(ready));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    for family in state.registry.gather() {
        if family.name() != "slotpool_snapshot_timestamp_seconds" {
            continue;
        }
        for metric in family.get_metric() {
            let product = metric
                .get_label()
                .iter()
                .find(|l| l.name() == "product")
                .map(|l| l.value().to_string());
            let taken = metric.get_gauge().value();
            // 0: the product's gauge exists but no snapshot was taken yet.
            if let Some(product) = product.filter(|_| taken > 0.0) {
                m.snapshot_age
                    .with_label_values(&[product.as_str()])
                    .set((now - taken).max(0.0));
            }
        }
    }
}

/// `GET /openapi.json`.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// Any path that is not a route.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, Problem> {
    Err(Problem::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}
