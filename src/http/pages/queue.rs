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
use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use maud::{html, PreEscaped};
use serde::Deserialize;
use slotpool_actors::{ask, Poll, ProductActor, Read};
use slotpool_events::{Blocked, QueuePage, SlotView};

/// The query of the queue page (`lang` is read by [`Lang::of`]).
#[derive(Debug, Deserialize)]
pub struct QueueQuery {
    /// Where to go once granted; validated against `queue_page.base_url`.
    pub return_to: Option<String>,
}

/// The product's `queue_page` settings (the defaults before it is configured).
async fn queue_page_settings(addr: &Addr<ProductActor>) -> Result<QueuePage, Problem> {
    Ok(ask(
        addr,
        Read::new(|s, _| {
            s.settings()
                .map(|s| s.queue_page.clone())
                .unwrap_or_default()
        }),
    )
    .await?)
}

/// `GET /queue/{p}`.
pub async fn queue_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<QueueQuery>,
    user: CallingUser,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let addr = state.product(&id)?;
    let qp = queue_page_settings(&addr).await?;
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
    let qp = queue_page_settings(&addr).await?;
    let (mime, data) = qp.logo_parts().ok_or_else(Problem::no_logo)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| Problem::no_logo())?;
    Ok(HttpResponse::Ok()
        .content_type(mime.to_string())
        .insert_header(("Cache-Control", "public, max-age=60"))
        .body(bytes))
}
