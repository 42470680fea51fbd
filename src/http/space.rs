//! Space entitlements over HTTP: a member lists the product's Confluence spaces and asks
//! for permissions in one (`/api/v1/products/{p}/spaces`, `.../space-requests`);
//! administrators list the catalogue, have the connector fetch it again, list requests,
//! and approve, reject or revoke them (`/admin/v1/...`), with the same authorisation as
//! fixed-licence requests (the admin token). The rules (who may ask, unknown spaces,
//! operations not offered, duplicates) live in the core (`slotpool_events::space`); this
//! only parses and maps.

use super::auth::Admin;
use super::body::{check_text, parse_json, read_bytes, read_json};
use super::call::{AdminProduct, Product, ProductUser, UserProduct};
use super::AppState;
use crate::problem::Problem;
use crate::view::rfc3339;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use slotpool_actors::{ask, ConnectorOf, ProductActor, Read, RefreshSpaces};
use slotpool_events::fixed_request::MAX_TEXT_LEN;
use slotpool_events::space::MAX_NAME_LEN;
use slotpool_events::{Command, Refusal, SpaceBook, SpaceOperation, SpaceRequest};
use uuid::Uuid;

/// Most operations one request may name.
const MAX_OPERATIONS: usize = 20;

/// The JSON view of one space request.
fn request_view(product: &str, r: &SpaceRequest) -> Value {
    json!({
        "id": r.id,
        "product": product,
        "user": r.user,
        "space": r.space,
        "operations": r.operations,
        "reason": r.reason,
        "state": r.state(),
        "requested_at": rfc3339(r.at),
        "decision": r.decision.as_ref().map(|d| json!({
            "approved": d.approved,
            "by": d.by,
            "note": d.note,
            "at": rfc3339(d.at),
        })),
        "granted_at": r.granted.as_ref().map(|(at, _)| rfc3339(*at)),
        "permissions": r.granted.as_ref().map(|(_, grants)| grants
            .iter()
            .map(|g| json!({
                "key": g.operation.key,
                "target": g.operation.target,
                "permission_id": g.permission_id,
            }))
            .collect::<Vec<_>>()),
        "revoked": r.revoked.as_ref().map(|v| json!({
            "reason": v.reason.code(),
            "by": v.by,
            "at": rfc3339(v.at),
        })),
        "removed_at": r.removed_at.map(rfc3339),
        "failed": r.failed.as_ref().map(|(at, error)| json!({
            "at": rfc3339(*at),
            "error": error,
        })),
    })
}

/// The catalogue: when the connector last changed it, and the spaces by key.
fn catalogue_view(product: &str, book: &SpaceBook) -> Value {
    json!({
        "product": product,
        "catalogued_at": book.catalogued_at.map(rfc3339),
        "spaces": book.spaces().map(|s| json!({
            "key": s.key,
            "name": s.name,
            "operations": s.operations,
        })).collect::<Vec<_>>(),
    })
}

/// Whether the product has space entitlements (its connector has `spaces`).
fn has_spaces(s: &slotpool_events::ProductState) -> bool {
    s.settings()
        .and_then(|s| s.connector.as_ref())
        .is_some_and(|c| c.spaces.is_some())
}

/// The space book, or `no_spaces` for a product without space entitlements.
async fn book_of(addr: &actix::Addr<ProductActor>) -> Result<SpaceBook, Problem> {
    ask(
        addr,
        Read::new(|s, _| has_spaces(s).then(|| s.spaces().clone())),
    )
    .await?
    .ok_or_else(|| Refusal::NoSpaces.into())
}

/// `GET /api/v1/products/{p}/spaces`: the catalogue, and the caller's own requests.
pub async fn user_list(
    UserProduct(ProductUser { product, user }): UserProduct,
) -> Result<HttpResponse, Problem> {
    let book = book_of(&product.addr).await?;
    let mut view = catalogue_view(&product.id, &book);
    let mine: Vec<Value> = book
        .requests
        .values()
        .filter(|r| r.user == user)
        .map(|r| request_view(&product.id, r))
        .collect();
    view["requests"] = Value::Array(mine);
    Ok(HttpResponse::Ok().json(view))
}

/// An operation as given: `{"key": "read", "target": "space"}` or `"read:space"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OperationInput {
    Object(SpaceOperation),
    Text(String),
}

impl OperationInput {
    fn operation(self) -> Result<SpaceOperation, Problem> {
        match self {
            OperationInput::Object(op) => Ok(op),
            OperationInput::Text(t) => match t.split_once(':') {
                Some((k, t)) => Ok(SpaceOperation::new(k, t)),
                None => Err(Problem::invalid_body(format!(
                    "operation {t:?} must be key:target (read:space) or {{\"key\", \"target\"}}"
                ))),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    space: String,
    operations: Vec<OperationInput>,
    reason: String,
}

/// `POST /api/v1/products/{p}/space-requests`: the caller asks for permissions in a
/// space (201 with the request).
pub async fn request(
    UserProduct(ProductUser { product, user }): UserProduct,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    let Product {
        state,
        id: product_id,
        addr,
    } = product;
    let asked: Ask = read_json(body, state.max_body_bytes, Problem::invalid_body).await?;
    let reason = check_text("reason", &asked.reason, MAX_TEXT_LEN)?;
    if reason.is_empty() {
        return Err(Problem::invalid_body("reason must not be empty".into()));
    }
    let space = check_text("space", &asked.space, MAX_NAME_LEN)?;
    if space.is_empty() || space.contains('\n') {
        return Err(Problem::invalid_body("space must be a space key".into()));
    }
    if asked.operations.len() > MAX_OPERATIONS {
        return Err(Problem::invalid_body(format!(
            "at most {MAX_OPERATIONS} operations per request"
        )));
    }
    let operations = asked
        .operations
        .into_iter()
        .map(OperationInput::operation)
        .collect::<Result<Vec<_>, _>>()?;
    match state.services.directory_view.facts(&user) {
        None => return Err(Problem::unknown_user(&user)),
        Some(f) if !f.active => return Err(Refusal::Deactivated.into()),
        Some(_) => {}
    }
    let id = Uuid::new_v4().to_string();
    super::execute(
        &state,
        &addr,
        Command::RequestSpace {
            id: id.clone(),
            user,
            space,
            operations,
            reason,
        },
    )
    .await?;
    let r = find_in(&addr, id).await?;
    Ok(HttpResponse::Created().json(request_view(&product_id, &r)))
}

async fn find_in(addr: &actix::Addr<ProductActor>, id: String) -> Result<SpaceRequest, Problem> {
    ask(addr, Read::new(move |s, _| s.space_request(&id).cloned()))
        .await?
        .ok_or_else(|| Refusal::UnknownRequest.into())
}

/// `GET /admin/v1/products/{p}/spaces`: the catalogue.
pub async fn admin_list(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    let book = book_of(&product.addr).await?;
    Ok(HttpResponse::Ok().json(catalogue_view(&product.id, &book)))
}

/// `POST /admin/v1/products/{p}/spaces/refresh`: the connector fetches the spaces now
/// (424 `connector_failed` when Confluence cannot be reached; retried with backoff).
pub async fn refresh(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    book_of(&product.addr).await?;
    let connector = product
        .addr
        .send(ConnectorOf)
        .await?
        .ok_or_else(|| Problem::no_connector(&product.id))?;
    let n = connector
        .send(RefreshSpaces)
        .await?
        .map_err(|e| Problem::connector_failed(&e))?;
    let book = book_of(&product.addr).await?;
    let mut view = catalogue_view(&product.id, &book);
    view["fetched"] = json!(n);
    Ok(HttpResponse::Ok().json(view))
}

/// The filters of `GET /admin/v1/space-requests`.
#[derive(Deserialize)]
pub struct ListQuery {
    product: Option<String>,
    state: Option<String>,
    user: Option<String>,
}

const STATES: [&str; 7] = [
    "open", "rejected", "approved", "granted", "failed", "revoking", "revoked",
];

/// `GET /admin/v1/space-requests[?product=p][&state=s][&user=u]`, oldest first.
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    if let Some(s) = &query.state {
        if !STATES.contains(&s.as_str()) {
            return Err(Problem::bad_query(format!(
                "state must be one of {}",
                STATES.join(", ")
            )));
        }
    }
    let products = match &query.product {
        Some(p) => vec![(p.clone(), state.product(p)?)],
        None => state.services.products.all(),
    };
    let mut out = Vec::new();
    for (product, addr) in products {
        let (wanted, user) = (query.state.clone(), query.user.clone());
        let found = ask(
            &addr,
            Read::maybe(move |s, _| {
                s.spaces()
                    .requests
                    .values()
                    .filter(|r| wanted.as_deref().is_none_or(|w| w == r.state()))
                    .filter(|r| user.as_deref().is_none_or(|u| u == r.user))
                    .cloned()
                    .collect::<Vec<_>>()
            }),
        )
        .await?;
        for r in found {
            out.push((r.at, r.id.clone(), request_view(&product, &r)));
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
    /// Who decides (recorded in the trail); `admin` when not given.
    #[serde(default)]
    by: Option<String>,
}

/// The note and the approver of a decision (both optional, and so is the body).
async fn read_decision(state: &AppState, body: web::Payload) -> Result<(String, String), Problem> {
    let buf = read_bytes(body, state.max_body_bytes).await?;
    let d: Decision = if buf.iter().all(u8::is_ascii_whitespace) {
        Decision::default()
    } else {
        parse_json(&buf, Problem::invalid_body)?
    };
    let note = check_text("note", &d.note, MAX_TEXT_LEN)?;
    let by = match d.by {
        Some(b) => {
            let b = check_text("by", &b, MAX_NAME_LEN)?;
            if b.is_empty() || b.contains('\n') {
                return Err(Problem::invalid_body("by must name the approver".into()));
            }
            b
        }
        None => "admin".to_string(),
    };
    Ok((note, by))
}

/// The product and request of `/admin/v1/products/{p}/space-requests/{id}/...`.
fn target(state: &AppState, path: &(String, String)) -> Result<actix::Addr<ProductActor>, Problem> {
    let addr = state.product(&path.0)?;
    Uuid::parse_str(&path.1)
        .map_err(|_| Problem::bad_name("invalid_request_id", "a space request id is a UUID"))?;
    Ok(addr)
}

/// What an approver's call does to the request.
enum Step {
    Approve,
    Reject,
    Revoke,
}

async fn decide(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
    step: Step,
) -> Result<HttpResponse, Problem> {
    let addr = target(&state, &path)?;
    let (note, by) = read_decision(&state, body).await?;
    let (product, id) = path.into_inner();
    let r = find_in(&addr, id.clone()).await?;
    let command = match step {
        Step::Approve => Command::ApproveSpaceRequest {
            id: id.clone(),
            by,
            note,
            active: state
                .services
                .directory_view
                .facts(&r.user)
                .is_none_or(|f| f.active),
        },
        Step::Reject => Command::RejectSpaceRequest {
            id: id.clone(),
            by,
            note,
        },
        Step::Revoke => Command::RevokeSpaceAccess { id: id.clone(), by },
    };
    super::execute(&state, &addr, command).await?;
    let r = find_in(&addr, id).await?;
    Ok(HttpResponse::Ok().json(request_view(&product, &r)))
}

/// `POST /admin/v1/products/{p}/space-requests/{id}/approve`: the connector grants the
/// permissions next.
pub async fn approve(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    decide(state, path, body, Step::Approve).await
}

/// `POST /admin/v1/products/{p}/space-requests/{id}/reject`.
pub async fn reject(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    decide(state, path, body, Step::Reject).await
}

/// `POST /admin/v1/products/{p}/space-requests/{id}/revoke`: the connector removes the
/// permissions next.
pub async fn revoke(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    decide(state, path, body, Step::Revoke).await
}
