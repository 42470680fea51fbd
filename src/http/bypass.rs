//! `GET /admin/v1/products/{p}/bypass`: who went past the pool, and how often. The daily
//! per-rule counts of page views bypass rules let through the gate, read from the
//! product's journal (the `BypassesCounted` records of its sweeps, folded by
//! [`slotpool_events::History`]), like the dashboard's charts: never a second store.

use super::call::AdminProduct;
use crate::problem::Problem;
use crate::view::BypassDayView;
use actix_web::{web, HttpResponse};
use slotpool_events::{History, HistoryOptions, ProductEvent, StreamId};
use slotpool_journal::Journal;

/// Every day's counts of product `id`, oldest day first, rules by name within a day.
fn bypass_days(journal: &Journal, id: &str) -> Result<Vec<BypassDayView>, Problem> {
    let stream = StreamId::product(id).map_err(Problem::journal_error)?;
    let mut history = History::new(HistoryOptions::default());
    journal
        .replay::<ProductEvent>(&stream, |env| history.push(&env))
        .map_err(Problem::journal_error)?;
    Ok(history.bypass_days().map(BypassDayView::from).collect())
}

/// `GET /admin/v1/products/{p}/bypass`: `[{"day", "rule", "count", "users"}]`. Views are
/// recorded by the product's sweeps, so the latest sweep interval's are not in yet
/// (`slotpool_gate_bypassed_total` counts them at once).
pub async fn list(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    let journal = product.state.services.products.journal().clone();
    let id = product.id;
    let days = web::block(move || bypass_days(&journal, &id))
        .await
        .map_err(Problem::internal)??;
    Ok(HttpResponse::Ok().json(days))
}
