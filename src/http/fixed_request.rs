//! Fixed-licence requests: a member asks (`POST /api/v1/products/{p}/fixed-request`),
//! administrators list, approve or reject (`/admin/v1/fixed-requests`). The rules (who
//! may ask, duplicates, the licence tier) live in the core; this only parses and maps.

use super::auth::{check_product_id, Admin};
use super::body::{check_text, parse_json, read_bytes, read_json};
use super::call::{AdminPath, Product, ProductUser, UserProduct};
use super::AppState;
use crate::problem::Problem;
use crate::view::FixedRequestView;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use slotpool_actors::{ask, LookupUser, ProductActor, Read};
use slotpool_events::fixed_request::MAX_TEXT_LEN;
use slotpool_events::{Command, FixedRequest, Refusal};
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    reason: String,
}

/// `POST /api/v1/products/{p}/fixed-request`: the caller asks for a fixed licence (201).
pub async fn request(
    UserProduct(ProductUser { product, user }): UserProduct,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    let Product {
        state,
        id: product_id,
        addr,
    } = product;
    let ask_body: Ask = read_json(body, state.max_body_bytes, Problem::invalid_body).await?;
    let reason = check_text("reason", &ask_body.reason, MAX_TEXT_LEN)?;
    if reason.is_empty() {
        return Err(Problem::invalid_body("reason must not be empty".into()));
    }
    let id = Uuid::new_v4().to_string();
    super::execute(
        &state,
        &addr,
        Command::RequestFixed {
            id: id.clone(),
            user,
            reason,
        },
    )
    .await?;
    let found = find_in(&addr, id).await?;
    let r = found.ok_or(Refusal::UnknownRequest)?;
    Ok(HttpResponse::Created().json(FixedRequestView::new(&product_id, &r)))
}

async fn find_in(
    addr: &actix::Addr<ProductActor>,
    id: String,
) -> Result<Option<FixedRequest>, Problem> {
    Ok(ask(addr, Read::new(move |s, _| s.fixed_request(&id).cloned())).await?)
}

/// The product holding request `id` (from the index the product actors keep: one
/// product asked, not every one), and the request.
async fn find(
    state: &AppState,
    id: &str,
) -> Result<(String, actix::Addr<ProductActor>, FixedRequest), Problem> {
    let (product, addr) = state
        .services
        .products
        .holding_request(id)
        .ok_or(Refusal::UnknownRequest)?;
    let r = find_in(&addr, id.to_string())
        .await?
        .ok_or(Refusal::UnknownRequest)?;
    Ok((product, addr, r))
}

/// The filters of `GET /admin/v1/fixed-requests`.
#[derive(Deserialize)]
pub struct ListQuery {
    /// Only this product's requests.
    product: Option<String>,
    /// Only requests in this state (`open`, `approved`, `rejected`).
    state: Option<String>,
}

/// `GET /admin/v1/fixed-requests[?product=p][&state=open|approved|rejected]`, oldest first.
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    if let Some(s) = &query.state {
        if !["open", "approved", "rejected"].contains(&s.as_str()) {
            return Err(Problem::bad_query(
                "state must be open, approved or rejected",
            ));
        }
    }
    let products = match &query.product {
        Some(p) => vec![(p.clone(), state.product(p)?)],
        None => state.services.products.all(),
    };
    let mut out: Vec<(slotpool_events::Timestamp, String, FixedRequestView)> = Vec::new();
    for (product, addr) in products {
        let wanted = query.state.clone();
        let found = ask(
            &addr,
            Read::maybe(move |s, _| {
                s.fixed_requests()
                    .filter(|r| wanted.as_deref().is_none_or(|w| w == r.state.code()))
                    .cloned()
                    .collect::<Vec<_>>()
            }),
        )
        .await?;
        for r in found {
            out.push((r.at, r.id.clone(), FixedRequestView::new(&product, &r)));
        }
    }
    out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(HttpResponse::Ok().json(out.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Decision {
    #[serde(default)]
    note: String,
}

/// The note of an administrator's decision (optional, and so is the body).
async fn read_note(state: &AppState, body: web::Payload) -> Result<String, Problem> {
    let buf = read_bytes(body, state.max_body_bytes).await?;
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Ok(String::new());
    }
    let d: Decision = parse_json(&buf, Problem::invalid_body)?;
    check_text("note", &d.note, MAX_TEXT_LEN)
}

fn check_id(id: &str) -> Result<(), Problem> {
    Uuid::parse_str(id).map(|_| ()).map_err(|_| {
        Problem::bad_name("invalid_request_id", "a fixed-licence request id is a UUID")
    })
}

/// What an approval and a rejection of request `id` start from, in this order: the id
/// checked, the note read, the request found (its product, the product's actor, it).
async fn read_decision(
    state: &AppState,
    id: &str,
    body: web::Payload,
) -> Result<(String, (String, actix::Addr<ProductActor>, FixedRequest)), Problem> {
    check_id(id)?;
    let note = read_note(state, body).await?;
    Ok((note, find(state, id).await?))
}

/// `POST /admin/v1/fixed-requests/{id}/approve`: gives the fixed licence (422 when it
/// would exceed the licence tier, as giving one directly does).
pub async fn approve(call: AdminPath, body: web::Payload) -> Result<HttpResponse, Problem> {
    let AdminPath(state, path) = call;
    let (note, (product, addr, r)) = read_decision(&state, &path, body).await?;
    let known = state
        .services
        .directory
        .send(LookupUser {
            user: r.user.clone(),
        })
        .await??;
    let command = Command::ApproveFixedRequest {
        id: path.to_string(),
        note,
        active: known.is_none_or(|u| u.active),
    };
    decide(&state, &product, &addr, command, &path).await
}

/// `POST /admin/v1/fixed-requests/{id}/reject`.
pub async fn reject(call: AdminPath, body: web::Payload) -> Result<HttpResponse, Problem> {
    let AdminPath(state, path) = call;
    let (note, (product, addr, _)) = read_decision(&state, &path, body).await?;
    let command = Command::RejectFixedRequest {
        id: path.to_string(),
        note,
    };
    decide(&state, &product, &addr, command, &path).await
}

async fn decide(
    state: &AppState,
    product: &str,
    addr: &actix::Addr<ProductActor>,
    command: Command,
    id: &str,
) -> Result<HttpResponse, Problem> {
    check_product_id(product)?;
    super::execute(state, addr, command).await?;
    let r = find_in(addr, id.to_string())
        .await?
        .ok_or(Refusal::UnknownRequest)?;
    Ok(HttpResponse::Ok().json(FixedRequestView::new(product, &r)))
}
