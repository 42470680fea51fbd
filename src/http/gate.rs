//! The gate: `GET /gate/{p}`, asked by a reverse proxy (nginx `auth_request`, Traefik
//! forwardAuth) on every page view of the product.
//!
//! 204 lets the view through: the caller holds a slot (the view counts as activity, sent
//! through the same coalescing path as `POST .../activity`), has a fixed licence, or is a
//! member for whom a slot is free and nobody waits (granted here). Anyone else gets 401,
//! which the proxy turns into a redirect to the queue page. The gate never queues anyone:
//! that is the queue page's request.

use super::auth::{app_state, CallingUser};
use crate::problem::Problem;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use slotpool_actors::{ask, Execute, Poll, Read};
use slotpool_events::{Command, SlotView};
use uuid::Uuid;

/// Header on a 401 from the gate telling the proxy (and a curious administrator) why.
pub const GATE_STATE_HEADER: &str = "X-Slotpool-State";

fn refused(state: &'static str) -> HttpResponse {
    HttpResponse::build(StatusCode::UNAUTHORIZED)
        .insert_header((GATE_STATE_HEADER, state))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

fn allowed(state: &'static str) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((GATE_STATE_HEADER, state))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// `GET /gate/{p}`.
pub async fn gate(
    req: HttpRequest,
    path: web::Path<String>,
    user: CallingUser,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let addr = state.product(&path)?;
    let user = user.0;
    // A poll: changes nothing, except that it keeps a queue place alive.
    let view = ask(&addr, Poll { user: user.clone() }).await?;
    match view {
        SlotView::Fixed => Ok(allowed("fixed")),
        SlotView::Granted { .. } => {
            let command = Command::Activity { user };
            // The holder may have lost the slot since the poll: then it is a refusal.
            match ask(
                &addr,
                Execute {
                    command,
                    cause: Uuid::new_v4(),
                },
            )
            .await
            {
                Ok(_) => Ok(allowed("granted")),
                Err(slotpool_actors::ActorError::Refused(_)) => Ok(refused("none")),
                Err(e) => Err(e.into()),
            }
        }
        SlotView::Queued { .. } => Ok(refused("queued")),
        SlotView::Locked { .. } => Ok(refused("locked")),
        SlotView::None => {
            let who = user.clone();
            let free = ask(
                &addr,
                Read::new(move |s, _| {
                    let counts = s.counts();
                    let member = s.user(&who).is_some_and(|u| u.member && !u.deactivated);
                    let slots = s.settings().map_or(0, |st| st.shared_slots as usize);
                    member && counts.queued == 0 && counts.holders < slots
                }),
            )
            .await?;
            if !free {
                return Ok(refused("none"));
            }
            // The core decides: between the read and this request the last slot may have
            // gone, in which case the member is queued (as the queue page would do).
            let command = Command::Request { user };
            match ask(
                &addr,
                Execute {
                    command,
                    cause: Uuid::new_v4(),
                },
            )
            .await
            {
                Ok(done) => Ok(match done.view {
                    Some(SlotView::Granted { .. }) => allowed("granted"),
                    Some(SlotView::Fixed) => allowed("fixed"),
                    Some(SlotView::Queued { .. }) => refused("queued"),
                    _ => refused("none"),
                }),
                Err(slotpool_actors::ActorError::Refused(_)) => Ok(refused("none")),
                Err(e) => Err(e.into()),
            }
        }
    }
}
