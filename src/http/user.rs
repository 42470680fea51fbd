//! The user API: request, poll, release, activity, and the notification stream.

use super::call::{Product, ProductUser, UserProduct};
use super::sse;
use super::AppState;
use crate::problem::Problem;
use crate::view::SlotState;
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use slotpool_actors::session::KEEP_ALIVE;
use slotpool_actors::{ask, ActorError, Poll, Read, SessionActor, UserFacts};
use slotpool_events::{Command, GateRequest, SlotView};
use std::collections::BTreeMap;
use std::sync::Arc;

fn slot_response(view: &SlotView) -> HttpResponse {
    let mut r = HttpResponse::Ok();
    if let SlotView::Queued { retry_after_s, .. } = view {
        r.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
    }
    r.json(SlotState::from(view))
}

/// What a slot request and a page view through the gate carry from the directory: the
/// user's attributes (a product's eligibility rule reads them) and, once any product has
/// reservations (rule 10), the names and SCIM ids of their directory groups.
type DirectoryFacts = (Option<Arc<BTreeMap<String, String>>>, Option<Arc<[String]>>);

/// The [`DirectoryFacts`] of `user`, read from the shared directory view: no message to
/// the directory actor on this path. Before any product has reservations no groups are
/// carried, so that products without reservations never note groups.
fn directory_facts(state: &AppState, user: &str) -> DirectoryFacts {
    facts_of(state, state.services.directory_view.facts(user))
}

/// The [`DirectoryFacts`] of what the directory view holds of a user.
fn facts_of(state: &AppState, facts: Option<Arc<UserFacts>>) -> DirectoryFacts {
    let groups = state.services.products.reservations_in_use().then(|| {
        facts
            .as_ref()
            .map_or_else(|| Arc::from(Vec::new()), |f| Arc::clone(&f.groups))
    });
    (facts.map(|f| Arc::clone(&f.attributes)), groups)
}

/// The slot request of `user`, with their [`DirectoryFacts`].
pub fn request_command(state: &AppState, user: String) -> Command {
    let (attributes, groups) = directory_facts(state, &user);
    Command::Request {
        user,
        attributes,
        groups,
    }
}

/// A page view of `user` through the gate, with their [`DirectoryFacts`] and what
/// bypass rules test: `gate` as the proxy described the view, completed here with the
/// directory's groups of the user and whether it holds them active.
pub fn page_view_command(state: &AppState, user: String, mut gate: GateRequest) -> Command {
    let facts = state.services.directory_view.facts(&user);
    if let Some(f) = &facts {
        gate.groups = Arc::clone(&f.groups);
        gate.active = Some(f.active);
    }
    let (attributes, groups) = facts_of(state, facts);
    Command::PageView {
        user,
        attributes,
        groups,
        gate: Some(Arc::new(gate)),
    }
}

/// `POST /api/v1/products/{p}/slot`: request or reconnect.
pub async fn request(
    UserProduct(ProductUser { product, user }): UserProduct,
) -> Result<HttpResponse, Problem> {
    let command = request_command(&product.state, user);
    let done = super::execute(&product.state, &product.addr, command).await?;
    Ok(slot_response(&done.view.unwrap_or(SlotView::None)))
}

/// `GET /api/v1/products/{p}/slot`: the caller's state.
pub async fn slot(
    UserProduct(ProductUser { product, user }): UserProduct,
) -> Result<HttpResponse, Problem> {
    let view = ask(&product.addr, Poll { user }).await?;
    Ok(slot_response(&view))
}

/// `DELETE /api/v1/products/{p}/slot`: release the slot or leave the queue.
pub async fn release(call: UserProduct) -> Result<HttpResponse, Problem> {
    call.0.execute(|user| Command::Release { user }).await
}

/// `POST /api/v1/products/{p}/activity`: a holder used the product.
pub async fn activity(call: UserProduct) -> Result<HttpResponse, Problem> {
    call.0.execute(|user| Command::Activity { user }).await
}

/// `GET /api/v1/products/{p}/notifications`: the caller's notifications as Server-Sent
/// Events (`granted`, `queue`, `warning`, `revoked`, and the current state first). While
/// the stream is open the caller's queue place does not expire.
pub async fn notifications(
    req: HttpRequest,
    UserProduct(ProductUser { product, user }): UserProduct,
) -> Result<HttpResponse, Problem> {
    let Product { state, addr, .. } = product;
    // Refuse a product that is not configured, and a user who may not ask for a slot
    // (as the slot API does), before opening a stream.
    let who = user.clone();
    let may = ask(&addr, Read::new(move |s, _| s.may_listen(&who))).await?;
    if let Err(refusal) = may {
        return Err(super::refused(
            &state,
            ActorError::Refused(refusal),
            Some(&user),
        ));
    }
    let permit = super::limits::streams::stream_permit(&req, &user)?;
    let frames = SessionActor::open(user, addr, KEEP_ALIVE);
    // The permit lives as long as the stream's body: the place is given back when the
    // browser goes.
    let body = futures_util::stream::unfold(Some((frames, permit)), |open| async move {
        let (mut rx, permit) = open?;
        let frame = rx.recv().await?;
        Some((
            Ok::<_, actix_web::Error>(sse::encode(&frame)),
            Some((rx, permit)),
        ))
    });
    let first = futures_util::stream::once(async {
        Ok::<_, actix_web::Error>(web::Bytes::from_static(b"retry: 3000\n\n"))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(sse::until_stop(
            futures_util::StreamExt::chain(first, body),
            &state.stopping,
        )))
}
