//! Operations endpoints: health, readiness, metrics, the OpenAPI document, and the
//! problem for unknown paths.

use super::auth::app_state;
use crate::problem::Problem;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use prometheus::{Encoder, TextEncoder};
use std::sync::atomic::Ordering;

/// The OpenAPI 3 document of the whole API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: recovery is done and the journal accepts writes.
pub async fn readyz(req: HttpRequest) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    if !state.ready.load(Ordering::SeqCst) {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "Not ready",
            "recovery is not finished, or the service is stopping",
        ));
    }
    if !state.services.products.journal().is_writable() {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "journal_unavailable",
            "Journal unavailable",
            "the journal refused a write; restart the service to recover from disk",
        ));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(req: HttpRequest) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&state.registry.gather(), &mut out)
        .map_err(|e| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Metrics failed",
                e.to_string(),
            )
        })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out))
}

/// `GET /openapi.json`.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// Any path that is not a route.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, Problem> {
    Err(Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "Not found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}
