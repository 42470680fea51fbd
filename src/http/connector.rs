//! The connector's admin API: its status (backlog, failures, next retry) and re-sync.

use super::call::{AdminProduct, Product};
use crate::problem::Problem;
use crate::view::rfc3339;
use actix_web::HttpResponse;
use serde_json::{json, Value};
use slotpool_actors::connector::{Resync, Status};
use slotpool_actors::{ConnectorActor, ConnectorOf, ConnectorStatus, ResyncReport};

async fn connector_of(product: &Product) -> Result<actix::Addr<ConnectorActor>, Problem> {
    product
        .addr
        .send(ConnectorOf)
        .await?
        .ok_or_else(|| Problem::no_connector(&product.id))
}

fn report_view(r: &ResyncReport) -> Value {
    json!({
        "at": rfc3339(r.at),
        "listed": r.listed,
        "wanted": r.wanted,
        "added": r.added,
        "removed": r.removed,
    })
}

fn status_view(product: &str, s: &ConnectorStatus) -> Value {
    json!({
        "product": product,
        "kind": s.settings.kind.code(),
        "base_url": s.settings.base_url,
        "access_group": s.settings.access_group,
        "cursor": s.cursor,
        "durable": s.durable,
        "backlog": s.backlog,
        "pending": s.pending,
        "attempts": s.attempts,
        "last_error": s.last_error.as_ref().map(|(at, e)| json!({"at": rfc3339(*at), "error": e})),
        "next_retry": s.next_retry.map(rfc3339),
        "delivered": s.delivered,
        "failed": s.failed,
        "last_resync": s.last_resync.as_ref().map(|r| match r {
            Ok(report) => report_view(report),
            Err((at, e)) => json!({"at": rfc3339(*at), "error": e}),
        }),
        "spaces": s.spaces.as_ref().map(|sp| json!({
            "last_catalogue": sp.last_catalogue.as_ref().map(|c| match c {
                Ok((at, n)) => json!({"at": rfc3339(*at), "spaces": n}),
                Err((at, e)) => json!({"at": rfc3339(*at), "error": e}),
            }),
            "granted": sp.granted,
            "removed": sp.removed,
            "refused": sp.refused,
        })),
    })
}

/// `GET /admin/v1/products/{p}/connector`: what the connector has delivered, what is
/// pending, the last failure and when it tries again.
pub async fn status(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    let connector = connector_of(&product).await?;
    let s = connector.send(Status).await?;
    Ok(HttpResponse::Ok().json(status_view(&product.id, &s)))
}

/// `POST /admin/v1/products/{p}/connector/resync`: reads the group from the product,
/// compares it with the holders and fixed users, and repairs the difference.
pub async fn resync(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    let connector = connector_of(&product).await?;
    let report = connector
        .send(Resync)
        .await?
        .map_err(|e| Problem::connector_failed(&e))?;
    Ok(HttpResponse::Ok().json(report_view(&report)))
}
