//! The gate: `GET /gate/{p}`, asked by a reverse proxy (nginx `auth_request`, Traefik
//! forwardAuth) on every page view of the product.
//!
//! One command of the core per page view, `Command::PageView`, in one trip to the product:
//! the core decides, this maps where the caller stands afterwards. 204 lets the view
//! through: the caller holds a slot (the view counts as activity, coalesced like
//! `POST .../activity`), has a fixed licence, or is a member for whom a slot is free and
//! nobody waits (granted by the view). Anyone else gets 401, which the proxy turns into a
//! redirect to the queue page; a queued member's view keeps the queue place alive, as a
//! poll does. The gate never queues anyone: that is the queue page's request.

use super::call::{ProductUser, UserProduct};
use crate::problem::Problem;
use actix::Addr;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use slotpool_actors::{ask, ProductActor, Read};
use slotpool_events::{GateRequest, Passage};
use std::net::IpAddr;

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

/// Header on a 401 for a client that wants JSON (it asked for it in `Accept`, or its
/// path lies under one of the product's `api_prefixes`): `json`. nginx reads it
/// (`auth_request_set`) to send the refusal to the queue's JSON answer, not the page.
pub const ANSWER_HEADER: &str = "x-slotpool-answer";

/// Header on a 204 that a bypass rule let through: the rule's name.
pub const BYPASS_HEADER: &str = "x-slotpool-bypass";
/// Header on a 204 in passthrough mode: what enforcing would have answered (`granted`,
/// `queued`, `locked`, `none`).
pub const WOULD_BE_HEADER: &str = "x-slotpool-would-be";
/// Request header a proxy may set to name the kind of credential a request carries
/// (such as `pat` for Atlassian personal access tokens), for bypass rules' `token_kinds`.
pub const TOKEN_KIND_HEADER: &str = "X-Slotpool-Token-Kind";

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

/// The original URI of the page view, as the proxy passed it (`X-Original-URI` from
/// nginx, `X-Forwarded-Uri` from Traefik).
fn original_uri(req: &HttpRequest) -> Option<&str> {
    header(req, "X-Original-URI").or_else(|| header(req, "X-Forwarded-Uri"))
}

/// Whether a refused client wants the queue's JSON answer rather than the page: it asked
/// for JSON (`Accept`), or its path lies under one of the product's `api_prefixes`
/// (one read of the product's settings, only for a refusal that has a path to test).
async fn wants_json_answer(req: &HttpRequest, addr: &Addr<ProductActor>) -> Result<bool, Problem> {
    if super::pages::queue::wants_json(req) {
        return Ok(true);
    }
    let Some(uri) = original_uri(req).map(str::to_string) else {
        return Ok(false);
    };
    Ok(ask(
        addr,
        Read::new(move |s, _| {
            s.settings()
                .is_some_and(|s| slotpool_events::answer::under_api_prefix(&s.api_prefixes, &uri))
        }),
    )
    .await?)
}

fn refused_for(req: &HttpRequest, state: &'static str, json: bool) -> HttpResponse {
    let original = original_uri(req).filter(|u| local_path(u)).unwrap_or("/");
    let encoded: String = url::form_urlencoded::byte_serialize(original.as_bytes()).collect();
    let mut res = HttpResponse::build(StatusCode::UNAUTHORIZED);
    res.insert_header((GATE_STATE_HEADER, state))
        .insert_header((RETURN_TO_HEADER, encoded.clone()))
        .insert_header(("Cache-Control", "no-store"));
    if json {
        res.insert_header((ANSWER_HEADER, "json"));
    }
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

fn allowed(state: &'static str) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((GATE_STATE_HEADER, state))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// What the proxy says of the page view, for the product's bypass rules: the client's
/// address (`X-Real-IP`, else the last `X-Forwarded-For` entry, the one the nearest proxy
/// added, else the peer itself), the original URI, and the kind of credential it carries
/// (`X-Slotpool-Token-Kind`, else the scheme of its `Authorization` header). The gate
/// only ever hears a user from a trusted proxy, so these headers are the proxy's.
fn gate_request(req: &HttpRequest) -> GateRequest {
    let real_ip = header(req, "X-Real-IP").and_then(|v| v.trim().parse::<IpAddr>().ok());
    let forwarded = || {
        header(req, "X-Forwarded-For")
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    };
    let client = real_ip
        .or_else(forwarded)
        .or_else(|| req.peer_addr().map(|a| a.ip()));
    let uri = original_uri(req).map(str::to_string);
    let kind = |k: &str| {
        let k = k.trim().to_ascii_lowercase();
        let plain = !k.is_empty()
            && k.len() <= slotpool_events::bypass::MAX_TOKEN_KIND_LEN
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        plain.then_some(k)
    };
    let token_kind = header(req, TOKEN_KIND_HEADER).and_then(kind).or_else(|| {
        header(req, "Authorization")
            .and_then(|v| v.split_whitespace().next())
            .and_then(kind)
    });
    GateRequest {
        client,
        uri,
        token_kind,
        ..GateRequest::default()
    }
}

/// `GET /gate/{p}`: one command of the core, `Command::PageView`, answered in one
/// trip; where the caller stands afterwards is the answer. A view a bypass rule lets
/// through is 204 with `X-Slotpool-State: bypassed` and the rule in `X-Slotpool-Bypass`.
pub async fn gate(
    req: HttpRequest,
    UserProduct(ProductUser { product, user }): UserProduct,
) -> Result<HttpResponse, Problem> {
    let asker = user.clone();
    let command = super::user::page_view_command(&product.state, user, gate_request(&req));
    let done = super::execute(&product.state, &product.addr, command).await?;
    Ok(match done.passage {
        Some(Passage::Granted) => allowed("granted"),
        Some(Passage::Fixed) => allowed("fixed"),
        Some(Passage::Bypassed(rule)) => {
            let mut res = allowed("bypassed");
            if let Ok(v) = HeaderValue::from_str(&rule) {
                res.headers_mut()
                    .insert(HeaderName::from_static(BYPASS_HEADER), v);
            }
            res
        }
        Some(Passage::Passthrough(would_be)) => {
            let mut res = allowed("passthrough");
            res.headers_mut().insert(
                HeaderName::from_static(WOULD_BE_HEADER),
                HeaderValue::from_static(would_be),
            );
            res
        }
        Some(Passage::Refused(state)) => {
            let json = wants_json_answer(&req, &product.addr).await?;
            // Traefik passes the gate's refusal to the client as it is: a JSON client gets
            // the queue's JSON answer from here (nginx routes its 401 there instead).
            if json && header(&req, QUEUE_URL_HEADER).is_some() {
                super::pages::queue::json_answer(&product.state, &product.addr, &product.id, asker)
                    .await?
            } else {
                refused_for(&req, state, json)
            }
        }
        None => refused_for(&req, "none", false),
    })
}
