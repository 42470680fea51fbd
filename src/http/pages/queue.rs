//! The queue page, `GET /queue/{p}`: where a user waits for a slot. Also the uploaded
//! logo, `GET /queue/{p}/logo`.
//!
//! The page is rendered with the user's current state (a poll: it changes nothing but
//! keeps a queue place alive) and the administrator's `queue_page` settings; `queue.js`
//! then requests a slot, follows the notification stream, and redirects to the validated
//! `return_to` once the slot is granted. All URLs on the page are relative, so it works
//! under any prefix a front proxy mounts slotpool at (`/slotpool/queue/jira`).

use super::lang::Lang;
use super::layout::page;
use super::{markdown, return_to};
use crate::http::auth::{check_product_id, CallingUser};
use crate::http::AppState;
use crate::problem::Problem;
use crate::view::SlotState;
use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use maud::{html, PreEscaped};
use serde::Deserialize;
use slotpool_actors::{ask, Poll, ProductActor, Read};
use slotpool_events::{Blocked, Mode, QueuePage, SlotView};

/// The query of the queue page (`lang` is read by [`Lang::of`]).
#[derive(Debug, Deserialize)]
pub struct QueueQuery {
    /// Where to go once granted; validated against `queue_page.base_url`.
    pub return_to: Option<String>,
}

/// The product's `queue_page` settings and mode (the defaults before it is configured).
async fn queue_page_settings(addr: &Addr<ProductActor>) -> Result<(QueuePage, Mode), Problem> {
    Ok(ask(
        addr,
        Read::new(|s, _| {
            s.settings()
                .map(|s| (s.queue_page.clone(), s.mode))
                .unwrap_or_default()
        }),
    )
    .await?)
}

/// Whether the client asked for JSON rather than the page: an `Accept` that names
/// `application/json` (or a `+json` type) and not `text/html`. Browsers always ask for
/// HTML; REST clients and mobile apps ask for JSON.
pub(crate) fn wants_json(req: &HttpRequest) -> bool {
    let accept = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    (accept.contains("application/json") || accept.contains("+json"))
        && !accept.contains("text/html")
}

/// The queue page's answer to a client that asked for JSON: its slot request (joining
/// the queue, or keeping its place: the same request the page's script makes), then
/// `200` with the slot state once it holds a slot (or a fixed licence), or `429` with
/// `Retry-After` and a problem holding the state (`position`, `estimated_wait_s`...)
/// and the paths of the slot API and the notification stream while it waits.
pub(crate) async fn json_answer(
    state: &AppState,
    addr: &Addr<ProductActor>,
    id: &str,
    user: String,
) -> Result<HttpResponse, Problem> {
    let command = crate::http::user::request_command(state, user);
    let done = crate::http::execute(state, addr, command).await?;
    let view = done.view.unwrap_or(SlotView::None);
    let slot = SlotState::from(&view);
    let retry = match &view {
        SlotView::Granted { .. } | SlotView::Fixed => {
            return Ok(HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(slot));
        }
        SlotView::Queued { retry_after_s, .. } => *retry_after_s,
        SlotView::Locked { until } => {
            let now = ask(addr, Read::new(|_, now| now)).await?;
            let ms = (until.as_millis() - now.as_millis()).max(0);
            (ms as u64).div_ceil(1000).max(1)
        }
        SlotView::None => 1,
    };
    let problem = Problem::waiting(slot.state, retry);
    let mut body = problem.body();
    if let (Some(fields), Ok(serde_json::Value::Object(extra))) =
        (body.as_object_mut(), serde_json::to_value(&slot))
    {
        fields.extend(extra);
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        fields.insert(
            "links".into(),
            serde_json::json!({
                "slot": format!("api/v1/products/{encoded}/slot"),
                "notifications": format!("api/v1/products/{encoded}/notifications"),
            }),
        );
    }
    Ok(HttpResponse::TooManyRequests()
        .content_type(crate::problem::PROBLEM_JSON)
        .insert_header((actix_web::http::header::RETRY_AFTER, retry.to_string()))
        .insert_header(("Cache-Control", "no-store"))
        .body(body.to_string()))
}

/// `GET /queue/{p}`: the page, or for a client that asks for JSON, [`json_answer`].
pub async fn queue_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<QueueQuery>,
    user: CallingUser,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let addr = state.product(&id)?;
    if wants_json(&req) {
        return json_answer(&state, &addr, &id, user.0).await;
    }
    let (qp, mode) = queue_page_settings(&addr).await?;
    let target = match query.return_to.as_deref() {
        Some(r) => {
            return_to::validate(r, qp.base_url.as_deref()).map_err(Problem::invalid_return_to)?
        }
        None => qp.base_url.clone().unwrap_or_else(|| "/".to_string()),
    };
    let view = ask(
        &addr,
        Poll {
            user: user.0.clone(),
        },
    )
    .await?;
    let lang = Lang::of(&req);
    let t = lang.text();
    let title = qp
        .title
        .clone()
        .unwrap_or_else(|| t.queue_title.to_string());
    let message = qp.message.as_deref().map(markdown::render);
    // queue_all (maintenance): the administrator's word on why everyone waits.
    let maintenance = (mode == Mode::QueueAll)
        .then(|| qp.queue_all_message.as_deref().map(markdown::render))
        .flatten();
    let logo = if qp.logo_parts().is_some() {
        Some(format!("../queue/{id}/logo"))
    } else {
        qp.logo_url.clone()
    };
    // Rule 10: why members behind may pass this user (as the page loads; queue.js keeps
    // it current).
    let reason = match &view {
        SlotView::Queued {
            waiting_for: Some(Blocked::GroupCap { group }),
            ..
        } => Some(format!("{} {group}", t.waiting_group_cap)),
        SlotView::Queued {
            waiting_for: Some(Blocked::Reserved),
            ..
        } => Some(t.waiting_reserved.to_string()),
        _ => None,
    };
    let (position, wait) = match &view {
        SlotView::Queued {
            position,
            estimated_wait_s,
            ..
        } => (
            position.to_string(),
            format!("{estimated_wait_s} {}", t.seconds),
        ),
        _ => ("–".to_string(), "–".to_string()),
    };
    let encoded = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
    let body = html! {
        div class="queue-wrap" {
            main id="main" class="queue-card" {
                div id="slotpool-queue"
                    data-slot={ "../api/v1/products/" (encoded) "/slot" }
                    data-events={ "../api/v1/products/" (encoded) "/notifications" }
                    data-return-to=(target)
                    data-t-seconds=(t.seconds) data-t-minutes=(t.minutes)
                    data-t-granted=(t.granted) data-t-fixed=(t.fixed) data-t-locked=(t.locked)
                    data-t-none=(t.none) data-t-live=(t.live) data-t-polling=(t.polling)
                    data-t-error=(t.error) data-t-joining=(t.joining)
                    data-t-waiting-group-cap=(t.waiting_group_cap)
                    data-t-waiting-reserved=(t.waiting_reserved)
                    data-t-intro=(t.queue_intro)
                    data-t-intro-passed=(t.queue_intro_passed) {
                    @if let Some(src) = &logo {
                        img class="logo" src=(src) alt="";
                    }
                    h1 { (title) }
                    // Always there, so queue.js can show it when the mode switches.
                    div class="message maintenance" id="sp-maintenance" hidden[maintenance.is_none()] {
                        @if let Some(m) = &maintenance { (PreEscaped(m)) }
                    }
                    @if let Some(m) = &message {
                        div class="message" { (PreEscaped(m)) }
                    }
                    // Kept current by queue.js, with the reason below.
                    p class="intro" id="sp-intro" {
                        @if reason.is_some() { (t.queue_intro_passed) } @else { (t.queue_intro) }
                    }
                    div class="progress" id="sp-progress" aria-hidden="true" { span {} }
                    section aria-live="polite" aria-atomic="false" {
                        dl class="stats" {
                            div class="stat" { dt { (t.position) } dd id="sp-position" { (position) } }
                            div class="stat" { dt { (t.estimated_wait) } dd id="sp-wait" { (wait) } }
                            div class="stat" { dt { (t.next_check) } dd id="sp-countdown" { "–" } }
                        }
                        p class="state-text" id="sp-state" role="status" {}
                        // Kept current by queue.js from every state it receives.
                        p class="waiting-for" id="sp-waiting-for" hidden[reason.is_none()] {
                            @if let Some(r) = &reason { (r) }
                        }
                    }
                    div class="actions" {
                        button type="button" id="sp-reconnect" { (t.reconnect) }
                        a class="button secondary hidden" id="sp-continue" href=(target) { (t.continue_to) }
                    }
                    p class="mode" id="sp-mode" {}
                    noscript { p class="state-text bad" { (t.noscript) } }
                    p class="brand" { "slotpool" }
                }
            }
        }
    };
    let markup = page(lang, &title, "../", &["queue.js"], body);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(markup.into_string()))
}

/// `GET /queue/{p}/logo`: the uploaded logo of the product's queue page.
pub async fn logo(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    check_product_id(&path)?;
    let addr = state.product(&path)?;
    let (qp, _) = queue_page_settings(&addr).await?;
    let (mime, data) = qp.logo_parts().ok_or_else(Problem::no_logo)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| Problem::no_logo())?;
    Ok(HttpResponse::Ok()
        .content_type(mime.to_string())
        .insert_header(("Cache-Control", "public, max-age=60"))
        .body(bytes))
}
