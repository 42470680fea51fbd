//! The user API: request, poll, release, activity.

use super::auth::{app_state, CallingUser};
use super::sse;
use super::view::SlotState;
use super::AppState;
use crate::problem::Problem;
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use slotpool_actors::session::KEEP_ALIVE;
use slotpool_actors::{ask, ActorError, Execute, LookupUser, Poll, SessionActor};
use slotpool_events::{Command, DirectoryUser, Refusal, SlotView};
use std::sync::Arc;

fn slot_response(view: &SlotView) -> HttpResponse {
    let mut r = HttpResponse::Ok();
    if let SlotView::Queued { retry_after_s, .. } = view {
        r.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
    }
    r.json(SlotState::from(view))
}

/// Runs a user command; a `not_member` refusal for a user the directory has never heard
/// of becomes `unknown_user`, which tells an administrator more. `known` is whether the
/// directory knows the user, when the caller has asked it already.
async fn run(
    state: &AppState,
    id: &str,
    user: &str,
    known: Option<bool>,
    command: impl FnOnce(String) -> Command,
) -> Result<Option<SlotView>, Problem> {
    let addr = state.product(id)?;
    let command = command(user.to_string());
    let cause = super::observe::cause();
    match ask(&addr, Execute { command, cause }).await {
        Ok(done) => Ok(done.view),
        Err(ActorError::Refused(Refusal::NotMember)) => {
            let known = match known {
                Some(known) => known,
                None => lookup(state, user).await?.is_some(),
            };
            Err(if known {
                Refusal::NotMember.into()
            } else {
                Problem::unknown_user(user)
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The directory's record of `user`, if any.
async fn lookup(state: &AppState, user: &str) -> Result<Option<DirectoryUser>, Problem> {
    Ok(state
        .services
        .directory
        .send(LookupUser {
            user: user.to_string(),
        })
        .await??)
}

/// `POST /api/v1/products/{p}/slot`: request or reconnect.
pub async fn request(
    req: HttpRequest,
    path: web::Path<String>,
    user: CallingUser,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let (command, known) = request_command(state, user.0.clone());
    let view = run(state, &path, &user.0, Some(known), move |_| command).await?;
    Ok(slot_response(&view.unwrap_or(SlotView::None)))
}

/// The request of `user`, carrying the directory's attributes of the user, which a
/// product's eligibility rule reads, and whether the directory knows the user at all.
/// Read from the shared directory view: no message to the directory actor on this path.
/// Shared by the slot request and the gate.
///
/// Once any product has reservations (rule 10), the request also carries the names and
/// SCIM ids of the user's directory groups; before that it carries none, so that products
/// without reservations never note groups.
pub fn request_command(state: &super::AppState, user: String) -> (Command, bool) {
    let facts = state.services.directory_view.facts(&user);
    let found = facts.is_some();
    let groups = state.services.products.reservations_in_use().then(|| {
        facts
            .as_ref()
            .map_or_else(|| Arc::from(Vec::new()), |f| Arc::clone(&f.groups))
    });
    let attributes = facts.map(|f| Arc::clone(&f.attributes));
    let command = Command::Request {
        user,
        attributes,
        groups,
    };
    (command, found)
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
    run(state, &path, &user.0, None, |user| Command::Release {
        user,
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/products/{p}/activity`: a holder used the product.
pub async fn activity(
    req: HttpRequest,
    path: web::Path<String>,
    user: CallingUser,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    run(state, &path, &user.0, None, |user| Command::Activity {
        user,
    })
    .await?;
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
    // Refuse a product that is not configured before opening a stream.
    ask(
        &addr,
        Poll {
            user: user.0.clone(),
        },
    )
    .await?;
    let frames = SessionActor::open(user.0, addr, KEEP_ALIVE);
    let body = futures_util::stream::unfold(Some(frames), |rx| async move {
        let mut rx = rx?;
        let frame = rx.recv().await?;
        Some((Ok::<_, actix_web::Error>(sse::encode(&frame)), Some(rx)))
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
