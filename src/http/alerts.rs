//! The alerts' admin API: `GET /admin/v1/products/{p}/alerts` lists the product's alert
//! rules with their state (firing since when, with what value) and the webhook's
//! delivery status (the secret never shown).

use super::call::AdminProduct;
use crate::problem::Problem;
use crate::view::rfc3339;
use actix_web::HttpResponse;
use serde_json::{json, Value};
use slotpool_actors::alert::{AlertDeliveryStatus, DeliveryStatus};
use slotpool_actors::product::AlertsOf;
use slotpool_actors::{ask, Read};

fn delivery_view(s: &AlertDeliveryStatus) -> Value {
    json!({
        "cursor": s.cursor,
        "durable": s.durable,
        "pending": s.pending,
        "attempts": s.attempts,
        "last_error": s.last_error.as_ref().map(|(at, e)| json!({"at": rfc3339(*at), "error": e})),
        "next_retry": s.next_retry.map(rfc3339),
        "last_delivery": s.last_delivered.as_ref().map(|(at, id)| json!({"at": rfc3339(*at), "id": id})),
        "delivered": s.delivered,
        "failed": s.failed,
    })
}

/// `GET /admin/v1/products/{p}/alerts`: `{"product", "alerts": [{"name", "kind",
/// "threshold", "for_s", "state": "firing"|"ok", "since", "value"}], "webhook": {"url",
/// "delivery": {...}} | null}`.
pub async fn list(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    let id = product.id.clone();
    let view = ask(
        &product.addr,
        Read::maybe(move |s, _| {
            let settings = s.settings()?;
            let firing = s.firing_alerts();
            let alerts: Vec<Value> = settings
                .alerts
                .iter()
                .map(|r| {
                    let f = firing.get(&r.name);
                    json!({
                        "name": r.name,
                        "kind": r.kind.code(),
                        "threshold": r.threshold,
                        "for_s": r.for_s,
                        "state": if f.is_some() { "firing" } else { "ok" },
                        "since": f.map(|f| rfc3339(f.since)),
                        "value": f.map(|f| f.value),
                    })
                })
                .collect();
            Some((
                alerts,
                settings.alert_webhook.as_ref().map(|w| w.url.clone()),
            ))
        }),
    )
    .await?
    .ok_or_else(|| Problem::unknown_product(&id))?;
    let (alerts, url) = view;
    let delivery = match product.addr.send(AlertsOf).await? {
        Some(actor) => Some(actor.send(DeliveryStatus).await?),
        None => None,
    };
    Ok(HttpResponse::Ok().json(json!({
        "product": id,
        "alerts": alerts,
        "webhook": url.map(|url| json!({
            "url": url,
            "delivery": delivery.as_ref().map(delivery_view),
        })),
    })))
}
