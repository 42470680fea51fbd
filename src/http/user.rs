//! The user API: request, poll, release, activity.

use super::auth::{app_state, CallingUser};
use super::sse;
use super::view::SlotState;
use super::AppState;
use crate::problem::Problem;
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use slotpool_actors::session::KEEP_ALIVE;
use slotpool_actors::{ask, ActorError, Execute, Poll, Read, SessionActor};
use slotpool_events::{Command, Refusal, SlotView};
use std::sync::Arc;

fn slot_response(view: &SlotView) -> HttpResponse {
    let mut r = HttpResponse::Ok();
    if let SlotView::Queued { retry_after_s, .. } = view {
        r.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
    }
    r.json(SlotState::from(view))
}

/// Runs a user command; a `not_member` refusal for a user the directory has never heard
/// of becomes `unknown_user`, which tells an administrator more.
async fn run(
    state: &AppState,
    id: &str,
    user: &str,
    command: Command,
) -> Result<Option<SlotView>, Problem> {
    let addr = state.product(id)?;
    let cause = super::observe::cause();
    match ask(&addr, Execute { command, cause }).await {
        Ok(done) => Ok(done.view),
        Err(ActorError::Refused(r)) => Err(refused(state, user, r)),
        Err(e) => Err(e.into()),
    }
}

/// A refusal as the user API answers it: `not_member` for a user the directory has never
/// heard of becomes `unknown_user`.
fn refused(state: &AppState, user: &str, refusal: Refusal) -> Problem {
    match refusal {
        Refusal::NotMember if state.services.directory_view.facts(user).is_none() => {
            Problem::unknown_user(user)
        }
        r => r.into(),
    }
}

/// `POST /api/v1/products/{p}/slot`: request or reconnect.
pub async fn request(
    req: HttpRequest,
    path: web::Path<String>,
    user: CallingUser,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let command = request_command(state, user.0.clone());
    let view = run(state, &path, &user.0, command).await?;
    Ok(slot_response(&view.unwrap_or(SlotView::None)))
}

/// The request of `user`, carrying the directory's attributes of the user, which a
/// product's eligibility rule reads.
/// Read from the shared directory view: no message to the directory actor on this path.
/// Shared by the slot request and the gate.
///
/// Once any product has reservations (rule 10), the request also carries the names and
/// SCIM ids of the user's directory groups; before that it carries none, so that products
/// without reservations never note groups.
pub fn request_command(state: &super::AppState, user: String) -> Command {
    let facts = state.services.directory_view.facts(&user);
    let groups = state.services.products.reservations_in_use().then(|| {
        facts
            .as_ref()
            .map_or_else(|| Arc::from(Vec::new()), |f| Arc::clone(&f.groups))
    });
    let attributes = facts.map(|f| Arc::clone(&f.attributes));
    Command::Request {
        user,
        attributes,
        groups,
    }
}

/// `GET /api/v1/products/{p}/slot`: the caller's state.
pub async fn slot(
    req: HttpRequest,
    path: web::Path<String>,
    user: CallingUser,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let addr = state.product(&path)?;
    let view = ask(&addr, Poll { user: user.0 }).await?;
    Ok(slot_response(&view))
}

/// `DELETE /api/v1/products/{p}/slot`: release the slot or leave the queue.
pub async fn release(
    req: HttpRequest,
    path: web::Path<String>,
    user: CallingUser,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let command = Command::Release {
        user: user.0.clone(),
    };
    run(state, &path, &user.0, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/products/{p}/activity`: a holder used the product.
pub async fn activity(
    req: HttpRequest,
    path: web::Path<String>,
    user: CallingUser,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let command = Command::Activity {
        user: user.0.clone(),
    };
    run(state, &path, &user.0, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/products/{p}/notifications`: the caller's notifications as Server-Sent
/// Events (`granted`, `queue`, `warning`, `revoked`, and the current state first). While
/// the stream is open the caller's queue place does not expire.
pub async fn notifications(
    req: HttpRequest,
    path: web::Path<String>,
    user: CallingUser,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let addr = state.product(&path)?;
    // Refuse a product that is not configured, and a user who may not ask for a slot
    // (as the slot API does), before opening a stream.
    let who = user.0.clone();
    let may = ask(&addr, Read::new(move |s, _| s.may_listen(&who))).await?;
    if let Err(refusal) = may {
        return Err(refused(state, &user.0, refusal));
    }
    let permit = super::limits::streams::stream_permit(&req, &user.0)?;
    let frames = SessionActor::open(user.0, addr, KEEP_ALIVE);
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
        .streaming(futures_util::StreamExt::chain(first, body)))
}
