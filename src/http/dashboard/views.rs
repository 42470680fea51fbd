//! The dashboard's pages as `maud` markup. Every value is escaped by `maud`; nothing an
//! administrator or user typed is ever written as markup.

use super::charts::{self, Line};
use super::form::path_segment;
use super::series::{MinuteSeries, Peaks};
use super::session::Session;
use super::{kind_code, ProductData};
use crate::http::pages::lang::Lang;
use crate::http::pages::layout::page;
use crate::http::view::NoticeView;
use crate::http::view::ProductView;
use maud::{html, Markup};

/// A message shown at the top of a page.
pub struct Flash {
    ok: bool,
    text: String,
}

impl Flash {
    /// A success.
    pub fn ok(text: &str) -> Flash {
        Flash {
            ok: true,
            text: text.into(),
        }
    }
    /// A refusal.
    pub fn bad(text: &str) -> Flash {
        Flash {
            ok: false,
            text: text.into(),
        }
    }
}

fn flash(f: Option<&Flash>) -> Markup {
    html! {
        @if let Some(f) = f {
            div class={ "flash " (if f.ok { "ok" } else { "bad" }) } role=(if f.ok { "status" } else { "alert" }) { (f.text) }
        }
    }
}

/// The frame of every signed-in page. `root` is the relative path to `/`.
fn shell(session: &Session, root: &str, title: &str, body: Markup) -> Markup {
    page(
        Lang::En,
        &format!("{title} · slotpool"),
        root,
        &["dashboard.js"],
        html! {
            header class="topbar" {
                a href={ (root) "admin/" } { "slotpool" }
                nav aria-label="Main" {
                    a href={ (root) "admin/" } { "Products" }
                    a href={ (root) "openapi.json" } { "API" }
                    form class="inline" method="post" action={ (root) "admin/logout" } {
                        input type="hidden" name="csrf" value=(session.csrf());
                        button type="submit" { "Sign out" }
                    }
                }
            }
            main id="main" class="content" { (body) }
        },
    )
}

fn time(iso: &str) -> String {
    // "2026-11-23T10:00:00.000Z" -> "2026-11-23 10:00:00 UTC"
    iso.get(..19)
        .map(|s| format!("{} UTC", s.replace('T', " ")))
        .unwrap_or_else(|| iso.to_string())
}

fn ago(now_ms: i64, iso: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(iso) else {
        return String::new();
    };
    let s = ((now_ms - t.timestamp_millis()) / 1000).max(0);
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

/// The sign-in page.
pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    page(
        Lang::En,
        "Sign in · slotpool",
        "../",
        &[],
        html! {
            main id="main" class="login" {
                div class="panel" {
                    h1 { "slotpool administration" }
                    p class="muted" { "Sign in with the admin token (" code { "SLOTPOOL_ADMIN_TOKEN" } ", " code { "admin_token_file" } " or " code { "data/admin_token" } ")." }
                    @if let Some(e) = error {
                        div class="flash bad" role="alert" { (e) }
                    }
                    form method="post" action="login" {
                        input type="hidden" name="csrf" value=(csrf);
                        div class="field" {
                            label for="token" { "Admin token" }
                            input type="password" id="token" name="token" autocomplete="current-password" required autofocus;
                        }
                        button type="submit" id="sign-in" { "Sign in" }
                    }
                }
            }
        },
    )
}

fn notices_panel(notices: &[NoticeView]) -> Markup {
    html! {
        section class="panel" aria-labelledby="notices-h" {
            h2 id="notices-h" { "Notices" }
            @if notices.is_empty() {
                p class="empty" { "No notices." }
            } @else {
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Product" } th scope="col" { "Kind" } th scope="col" { "Message" } } }
                    tbody {
                        @for n in notices {
                            tr { td { (time(&n.at)) } td { (n.product) } td { span class="badge warn" { (n.kind) } } td { (n.message) } }
                        }
                    }
                }
            }
        }
    }
}

/// The list of products.
pub fn index(
    session: &Session,
    products: &[ProductView],
    notices: &[NoticeView],
    f: Option<&Flash>,
) -> Markup {
    shell(
        session,
        "../",
        "Products",
        html! {
            h1 { "Products" }
            (flash(f))
            section class="panel" aria-labelledby="products-h" {
                h2 id="products-h" { "Shared pools" }
                @if products.is_empty() {
                    p class="empty" { "No product yet. Create one below." }
                } @else {
                    table id="products" {
                        thead { tr {
                            th scope="col" { "Product" } th scope="col" { "Kind" }
                            th scope="col" class="num" { "Tier" } th scope="col" class="num" { "Fixed" }
                            th scope="col" class="num" { "Shared slots" } th scope="col" class="num" { "Held" }
                            th scope="col" class="num" { "Queued" } th scope="col" class="num" { "Members" }
                        } }
                        tbody {
                            @for p in products {
                                tr {
                                    td { a href={ "products/" (path_segment(&p.id)) } { (p.id) } }
                                    td { (kind_code(p.settings.kind)) }
                                    td class="num" { (p.settings.licence_tier) }
                                    td class="num" { (p.fixed) }
                                    td class="num" { (p.settings.shared_slots) }
                                    td class="num" { (p.holders) }
                                    td class="num" { (p.queued) }
                                    td class="num" { (p.members) }
                                }
                            }
                        }
                    }
                }
            }
            section class="panel" aria-labelledby="new-h" {
                h2 id="new-h" { "New product" }
                form method="post" action="products" class="row" {
                    input type="hidden" name="csrf" value=(session.csrf());
                    div class="field" { label for="new-id" { "Id" } input type="text" id="new-id" name="id" required pattern="[A-Za-z0-9._-]+" placeholder="jira-prod"; }
                    div class="field" { label for="new-kind" { "Kind" } (kind_select("new-kind", None)) }
                    div class="field" { label for="new-tier" { "Licence tier" } input type="number" id="new-tier" name="licence_tier" min="1" required; }
                    div class="field" { label for="new-slots" { "Shared slots" } input type="number" id="new-slots" name="shared_slots" min="0" required; }
                    button type="submit" { "Create" }
                }
            }
            (notices_panel(notices))
        },
    )
}

fn kind_select(id: &str, current: Option<&str>) -> Markup {
    html! {
        select id=(id) name="kind" {
            @for k in ["jira", "confluence", "bitbucket", "jsm", "generic"] {
                option value=(k) selected[current == Some(k)] { (k) }
            }
        }
    }
}

fn number(id: &str, label: &str, value: u32, hint: &str) -> Markup {
    html! {
        div class="field" {
            label for=(id) { (label) }
            input type="number" id=(id) name=(id) value=(value) min="0" required aria-describedby={ (id) "-hint" };
            div class="hint" id={ (id) "-hint" } { (hint) }
        }
    }
}

/// One product: counts, resize, holders, queue, sync, settings, notices.
pub fn product(session: &Session, d: &ProductData, f: Option<&Flash>) -> Markup {
    let p = &d.overview;
    let s = &p.settings;
    let seg = path_segment(&p.id);
    let qp = &s.queue_page;
    shell(
        session,
        "../../",
        &p.id,
        html! {
            h1 { "Product " (p.id) }
            (flash(f))
            div class="kpis" id="live-kpis" data-live {
                div class="kpi" { div class="n" id="kpi-holders" { (p.holders) " / " (s.shared_slots) } div class="l" { "Slots held" } }
                div class="kpi" { div class="n" id="kpi-queued" { (p.queued) } div class="l" { "Queued" } }
                div class="kpi" { div class="n" { (p.members) } div class="l" { "Members" } }
                div class="kpi" { div class="n" { (p.fixed) } div class="l" { "Fixed users" } }
                div class="kpi" { div class="n" { (s.licence_tier) } div class="l" { "Licence tier" } }
            }
            div class="tabs" {
                a href={ (seg) "/charts?range=day" } { "Charts: last day" }
                a href={ (seg) "/charts?range=week" } { "Charts: last week" }
                a href={ (seg) "/peaks" } { "User peaks" }
            }
            div class="grid2" {
                section class="panel" aria-labelledby="resize-h" {
                    h2 id="resize-h" { "Resize the pool" }
                    form method="post" action={ (seg) "/resize" } class="row" id="resize-form" {
                        input type="hidden" name="csrf" value=(session.csrf());
                        div class="field" {
                            label for="resize-slots" { "Shared slots" }
                            input type="number" id="resize-slots" name="shared_slots" min="0" value=(s.shared_slots) required;
                        }
                        button type="submit" id="resize-submit" { "Resize" }
                    }
                    p class="hint small muted" { "Fixed users + shared slots may not exceed the licence tier. Shrinking below the holders revokes the longest-inactive ones." }
                }
                section class="panel" aria-labelledby="sync-h" {
                    h2 id="sync-h" { "Source groups" }
                    form method="post" class="row" id="sync-form"
                        data-url={ "../../admin/v1/products/" (seg) "/sync" } data-csrf=(session.csrf()) {
                        button type="submit" id="sync-now" { "Sync now" }
                    }
                    p id="sync-result" class="small" role="status" aria-live="polite" {}
                }
            }
            section class="panel" id="live-holders" data-live aria-labelledby="holders-h" {
                h2 id="holders-h" { "Holders (" (d.holders.len()) ")" }
                @if d.holders.is_empty() {
                    p class="empty" { "Nobody holds a slot." }
                } @else {
                    table id="holders" {
                        thead { tr {
                            th scope="col" { "User" } th scope="col" { "Since" } th scope="col" { "Last activity" }
                            th scope="col" { "Inactive for" } th scope="col" { "Loses the slot at" } th scope="col" { "Warning" } th scope="col" { span class="sr-only" { "Actions" } }
                        } }
                        tbody {
                            @for h in &d.holders {
                                tr {
                                    td class="user" { (h.user) }
                                    td { (time(&h.since)) }
                                    td { (time(&h.last_activity)) }
                                    td { (ago(d.now_ms, &h.last_activity)) }
                                    td { (time(&h.revoke_at)) }
                                    td {
                                        @if let Some(w) = &h.warned_at {
                                            span class="badge warn" { "warned " (time(w)) }
                                        } @else {
                                            span class="badge ok" { "active" }
                                        }
                                    }
                                    td {
                                        form method="post" action={ (seg) "/revoke" } class="inline" {
                                            input type="hidden" name="csrf" value=(session.csrf());
                                            input type="hidden" name="user" value=(h.user);
                                            button type="submit" class="danger" aria-label={ "Revoke the slot of " (h.user) } { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section class="panel" id="live-queue" data-live aria-labelledby="queue-h" {
                h2 id="queue-h" { "Queue (" (d.queue.len()) ")" }
                @if d.queue.is_empty() {
                    p class="empty" { "Nobody is waiting." }
                } @else {
                    table id="queue" {
                        thead { tr { th scope="col" class="num" { "#" } th scope="col" { "User" } th scope="col" { "Since" } th scope="col" { "Waiting for" } } }
                        tbody {
                            @for q in &d.queue {
                                tr { td class="num" { (q.position) } td class="user" { (q.user) } td { (time(&q.since)) } td { (ago(d.now_ms, &q.since)) } }
                            }
                        }
                    }
                }
            }
            section class="panel" aria-labelledby="settings-h" {
                h2 id="settings-h" { "Settings" }
                form method="post" action={ (seg) "/settings" } id="settings-form" {
                    input type="hidden" name="csrf" value=(session.csrf());
                    div class="grid3" {
                        div class="field" { label for="kind" { "Kind" } (kind_select("kind", Some(kind_code(s.kind)))) }
                        (number("licence_tier", "Licence tier", s.licence_tier, "Total seats of the licence."))
                        (number("shared_slots", "Shared slots", s.shared_slots, "Slots in the shared pool."))
                        (number("inactivity_s", "Inactivity time (s)", s.inactivity_s, "Inactive this long: the slot may be revoked."))
                        (number("warning_lead_s", "Warning lead (s)", s.warning_lead_s, "Warning this long before revocation."))
                        (number("sweep_interval_s", "Sweep interval (s)", s.sweep_interval_s, "How often inactive holders are revoked."))
                        (number("lock_s", "Lock time (s)", s.lock_s, "No manual re-login this long after revocation."))
                        (number("queue_timer_s", "Queue timer (s)", s.queue_timer_s, "A silent queued client loses its place."))
                    }
                    div class="row" {
                        label class="check" { input type="checkbox" name="reclaim_on_request" checked[s.reclaim_on_request]; "Reclaim on request" }
                        label class="check" { input type="checkbox" name="auto_relogin" checked[s.auto_relogin]; "Auto re-login" }
                    }
                    h3 { "Queue page" }
                    div class="grid2" {
                        div class="field" { label for="qp_title" { "Title" } input type="text" id="qp_title" name="qp_title" maxlength="200" value=(qp.title.as_deref().unwrap_or("")); }
                        div class="field" { label for="qp_base_url" { "Product address (base URL)" } input type="url" id="qp_base_url" name="qp_base_url" placeholder="https://jira.example.com/" value=(qp.base_url.as_deref().unwrap_or("")) aria-describedby="qp_base_url-hint"; div class="hint" id="qp_base_url-hint" { "The queue page only returns users to addresses under it." } }
                        div class="field" { label for="qp_logo_url" { "Logo address" } input type="text" id="qp_logo_url" name="qp_logo_url" placeholder="https://…/logo.png" value=(qp.logo_url.as_deref().unwrap_or("")); }
                        div class="field" {
                            label for="logo_file" { "Or upload a logo (PNG, JPEG, GIF, WebP; at most 64 KB)" }
                            input type="file" id="logo_file" accept="image/png,image/jpeg,image/gif,image/webp" data-target="logo_data";
                            input type="hidden" id="logo_data" name="logo_data";
                            @if qp.logo.is_some() {
                                label class="check" { input type="checkbox" name="remove_logo"; "Remove the uploaded logo" }
                            }
                        }
                    }
                    div class="field" { label for="qp_message" { "Message (Markdown)" } textarea id="qp_message" name="qp_message" maxlength="10000" { (qp.message.as_deref().unwrap_or("")) } }
                    button type="submit" id="settings-submit" { "Save settings" }
                }
            }
            (notices_panel(&d.notices))
        },
    )
}

/// Charts of one product over the last day or week.
pub fn charts(session: &Session, id: &str, week: bool, s: &MinuteSeries) -> Markup {
    let step = 60_000;
    let range = if week { "last week" } else { "last day" };
    let seg = path_segment(id);
    let reasons: Vec<(&str, &Vec<u32>)> = s.revocations.iter().map(|(k, v)| (*k, v)).collect();
    let reason_lines: Vec<Line> = reasons
        .iter()
        .map(|(k, v)| Line {
            label: k,
            values: v,
        })
        .collect();
    shell(
        session,
        "../../../",
        &format!("{id}: charts"),
        html! {
            h1 { "Product " (id) ": " (range) }
            div class="tabs" {
                a href="charts?range=day" aria-current=[(!week).then_some("page")] { "Last day" }
                a href="charts?range=week" aria-current=[week.then_some("page")] { "Last week" }
                a href="peaks" { "User peaks" }
                a href={ "../" (seg) } { "Back to the product" }
            }
            p class="muted small" { "Per minute, from the journal (replayed through the core). Holders and queue show each minute's maximum." }
            section class="panel" {
                (charts::line_chart("c-use", "Slots held and queue", s.start_ms, step, &[
                    Line { label: "holders", values: &s.holders },
                    Line { label: "queue length", values: &s.queued },
                    Line { label: "shared slots", values: &s.shared_slots },
                ]))
            }
            section class="panel" {
                (charts::line_chart("c-licence", "Licence use: fixed, shared, tier", s.start_ms, step, &[
                    Line { label: "fixed users", values: &s.fixed },
                    Line { label: "shared slots", values: &s.shared_slots },
                    Line { label: "licence tier", values: &s.tier },
                ]))
            }
            section class="panel" {
                @if reason_lines.is_empty() {
                    h2 { "Revocations by reason" }
                    p class="empty" { "No revocations in this period." }
                } @else {
                    (charts::line_chart("c-revocations", "Revocations by reason (per minute)", s.start_ms, step, &reason_lines))
                }
            }
        },
    )
}

/// The user-peak view.
pub fn peaks(session: &Session, id: &str, share: u32, p: &Peaks) -> Markup {
    let seg = path_segment(id);
    let start = p.days.first().map_or(0, |d| d.day_ms);
    let demand: Vec<u32> = p.days.iter().map(|d| d.demand).collect();
    let held: Vec<u32> = p.days.iter().map(|d| d.holders).collect();
    let shared: Vec<u32> = p.days.iter().map(|d| d.shared_slots).collect();
    let mark = format!("slots for {share} % at once");
    shell(
        session,
        "../../../",
        &format!("{id}: user peaks"),
        html! {
            h1 { "Product " (id) ": user peaks, last 90 days" }
            div class="tabs" {
                a href="charts?range=day" { "Last day" }
                a href="charts?range=week" { "Last week" }
                a href="peaks" aria-current="page" { "User peaks" }
                a href={ "../" (seg) } { "Back to the product" }
            }
            section class="panel" {
                form method="get" action="peaks" class="row" {
                    div class="field" {
                        label for="share" { "Share of requests to serve at once (%)" }
                        input type="number" id="share" name="share" min="1" max="100" value=(share);
                    }
                    button type="submit" { "Compute" }
                }
                p id="peak-answer" {
                    @if p.requests == 0 {
                        "No requests in the last 90 days."
                    } @else {
                        strong { (p.slots_for_share) } " shared slots would have served " (share) " % of the "
                        (p.requests) " requests of the last 90 days at once (the pool has " (p.shared_slots_now) " now)."
                    }
                }
            }
            section class="panel" {
                (charts::day_bars("c-peaks", "Daily peak of demand (holders + queue)", start, &demand, &[
                    Line { label: "daily peak of slots held", values: &held },
                    Line { label: "shared slots", values: &shared },
                ], (p.requests > 0).then_some((mark.as_str(), p.slots_for_share))))
            }
            section class="panel" {
                h2 { "Days" }
                table {
                    thead { tr { th scope="col" { "Day (UTC)" } th scope="col" class="num" { "Peak held" } th scope="col" class="num" { "Peak demand" } th scope="col" class="num" { "Requests" } th scope="col" class="num" { "Shared slots" } } }
                    tbody {
                        @for d in p.days.iter().rev().filter(|d| d.requests > 0 || d.holders > 0) {
                            tr {
                                td { (chrono::DateTime::from_timestamp_millis(d.day_ms).unwrap_or_default().format("%Y-%m-%d")) }
                                td class="num" { (d.holders) } td class="num" { (d.demand) }
                                td class="num" { (d.requests) } td class="num" { (d.shared_slots) }
                            }
                        }
                    }
                }
            }
        },
    )
}
