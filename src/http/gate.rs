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
use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use slotpool_actors::{ask, ActorError, Execute, Executed, Poll, ProductActor, Read};
use slotpool_events::{Command, SlotView};

/// Header on the gate's answers telling the proxy (and a curious administrator) why.
pub const GATE_STATE_HEADER: &str = "X-Slotpool-State";
/// Header on a 401: the original URI (from `X-Original-URI` or `X-Forwarded-Uri`),
/// percent-encoded for a query string, so nginx can build the queue page's `return_to`
/// (it has no URL encoding of its own).
pub const RETURN_TO_HEADER: &str = "X-Slotpool-Return-To";
/// Request header a proxy may set to the queue page's address (a path such as
/// `/slotpool/queue/jira`): the 401 then carries a page that sends the browser there,
/// for proxies that pass the 401 to the browser as it is (Traefik forwardAuth).
pub const QUEUE_URL_HEADER: &str = "X-Slotpool-Queue-Url";

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether a proxy's header names a path of this host: it starts with one `/`, and has
/// no whitespace or control character (a browser drops a tab or newline from a URL, so
/// `/\t/evil.example` would be read as `//evil.example`, another host).
fn local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn refused_for(req: &HttpRequest, state: &'static str) -> HttpResponse {
    let original = header(req, "X-Original-URI")
        .or_else(|| header(req, "X-Forwarded-Uri"))
        .filter(|u| local_path(u))
        .unwrap_or("/");
    let encoded: String = url::form_urlencoded::byte_serialize(original.as_bytes()).collect();
    let mut res = HttpResponse::build(StatusCode::UNAUTHORIZED);
    res.insert_header((GATE_STATE_HEADER, state))
        .insert_header((RETURN_TO_HEADER, encoded.clone()))
        .insert_header(("Cache-Control", "no-store"));
    let queue = header(req, QUEUE_URL_HEADER)
        .filter(|q| local_path(q) && !q.contains(['\\', '?', '#', '"', '<', '>']));
    match queue {
        Some(q) => {
            let target = format!("{q}?return_to={encoded}");
            let page = maud::html! {
                (maud::DOCTYPE)
                html lang="en" {
                    head {
                        meta charset="utf-8";
                        meta http-equiv="refresh" content={ "0;url=" (target) };
                        title { "Waiting for a licence" }
                    }
                    body { p { a href=(target) { "Continue to the queue page" } } }
                }
            };
            res.content_type("text/html; charset=utf-8")
                .body(page.into_string())
        }
        None => {
            let mut body = Problem::no_slot(state).body();
            if let Some(fields) = body.as_object_mut() {
                fields.insert("state".into(), state.into());
            }
            res.content_type(crate::problem::PROBLEM_JSON)
                .body(body.to_string())
        }
    }
}

/// Sends `command` to the product; `None` when the core refuses it (the holder lost the
/// slot since the poll, or the member may no longer ask): the view is then refused.
async fn try_execute(
    addr: &Addr<ProductActor>,
    command: Command,
) -> Result<Option<Executed>, Problem> {
    match ask(
        addr,
        Execute {
            command,
            cause: crate::http::observe::cause(),
        },
    )
    .await
    {
        Ok(done) => Ok(Some(done)),
        Err(ActorError::Refused(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
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
    let refused = |state| refused_for(&req, state);
    // A poll: changes nothing, except that it keeps a queue place alive.
    let view = ask(&addr, Poll { user: user.clone() }).await?;
    match view {
        SlotView::Fixed => Ok(allowed("fixed")),
        SlotView::Granted { .. } => {
            // The holder may have lost the slot since the poll: then it is a refusal.
            let done = try_execute(&addr, Command::Activity { user }).await?;
            Ok(match done {
                Some(_) => allowed("granted"),
                None => refused("none"),
            })
        }
        SlotView::Queued { .. } => Ok(refused("queued")),
        SlotView::Locked { .. } => Ok(refused("locked")),
        SlotView::None => {
            let who = user.clone();
            // With reservations (rule 10) whether a slot is free for the user depends on
            // their groups, which the request carries.
            let command = super::user::request_command(state, user);
            let groups = match &command {
                Command::Request { groups, .. } => groups.clone(),
                _ => None,
            };
            let free = ask(
                &addr,
                Read::new(move |s, _| s.slot_free_for_groups(&who, groups.as_deref())),
            )
            .await?;
            if !free {
                return Ok(refused("none"));
            }
            // The core decides: between the read and this request the last slot may have
            // gone, in which case the member is queued (as the queue page would do).
            let done = try_execute(&addr, command).await?;
            Ok(match done.and_then(|d| d.view) {
                Some(SlotView::Granted { .. }) => allowed("granted"),
                Some(SlotView::Fixed) => allowed("fixed"),
                Some(SlotView::Queued { .. }) => refused("queued"),
                _ => refused("none"),
            })
        }
    }
}
