//! The dashboard's pages as `maud` markup. Every value is escaped by `maud`; nothing an
//! administrator or user typed is ever written as markup.

use super::charts::{self, Line};
use super::form::{kind_code, path_segment};
use super::series::{MinuteSeries, Peaks};
use super::session::Session;
use super::ProductData;
use crate::http::pages::lang::Lang;
use crate::http::pages::layout::page;
use crate::view::NoticeView;
use crate::view::ProductView;
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
fn shell(l: Lang, session: &Session, root: &str, title: &str, body: Markup) -> Markup {
    page(
        l,
        &format!("{title} · slotpool"),
        root,
        &["dashboard.js"],
        html! {
            header class="topbar" {
                a href={ (root) "admin/" } { "slotpool" }
                nav aria-label=(t(l, "Main")) {
                    a href={ (root) "admin/" } { (t(l, "Products")) }
                    a href={ (root) "openapi.json" } { "API" }
                    form class="inline" method="post" action={ (root) "admin/logout" } {
                        input type="hidden" name="csrf" value=(session.csrf());
                        button type="submit" { (t(l, "Sign out")) }
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
pub fn login(l: Lang, csrf: &str, error: Option<&str>) -> Markup {
    page(
        l,
        "Sign in · slotpool",
        "../",
        &[],
        html! {
            main id="main" class="login" {
                div class="panel" {
                    h1 { (t(l, "slotpool administration")) }
                    p class="muted" { (t(l, "Sign in with the admin token")) " (" code { "SLOTPOOL_ADMIN_TOKEN" } ", " code { "admin_token_file" } ", " code { "data/admin_token" } ")." }
                    @if let Some(e) = error {
                        div class="flash bad" role="alert" { (e) }
                    }
                    form method="post" action="login" {
                        input type="hidden" name="csrf" value=(csrf);
                        div class="field" {
                            label for="token" { (t(l, "Admin token")) }
                            input type="password" id="token" name="token" autocomplete="current-password" required autofocus;
                        }
                        button type="submit" id="sign-in" { (t(l, "Sign in")) }
                    }
                }
            }
        },
    )
}

/// The badge of a notice's kind: a fired alert is bad news, a resolved one good news.
fn notice_badge(kind: &str) -> &'static str {
    match kind {
        "alert_fired" => "badge bad",
        "alert_resolved" => "badge ok",
        _ => "badge warn",
    }
}

fn notices_panel(l: Lang, notices: &[NoticeView]) -> Markup {
    html! {
        section class="panel" aria-labelledby="notices-h" {
            h2 id="notices-h" { (t(l, "Notices")) }
            @if notices.is_empty() {
                p class="empty" { (t(l, "No notices.")) }
            } @else {
                table {
                    thead { tr { th scope="col" { (t(l, "When")) } th scope="col" { (t(l, "Product")) } th scope="col" { (t(l, "Kind")) } th scope="col" { (t(l, "Message")) } } }
                    tbody {
                        @for n in notices {
                            tr { td { (time(&n.at)) } td { (n.product) } td { span class=(notice_badge(n.kind)) { (n.kind) } } td { (n.message) } }
                        }
                    }
                }
            }
        }
    }
}

/// The list of products.
pub fn index(
    l: Lang,
    session: &Session,
    products: &[ProductView],
    notices: &[NoticeView],
    f: Option<&Flash>,
) -> Markup {
    shell(
        l,
        session,
        "../",
        "Products",
        html! {
            h1 { (t(l, "Products")) }
            (flash(f))
            section class="panel" aria-labelledby="products-h" {
                h2 id="products-h" { (t(l, "Shared pools")) }
                @if products.is_empty() {
                    p class="empty" { (t(l, "No product yet. Create one below.")) }
                } @else {
                    table id="products" {
                        thead { tr {
                            th scope="col" { (t(l, "Product")) } th scope="col" { (t(l, "Kind")) }
                            th scope="col" class="num" { (t(l, "Tier")) } th scope="col" class="num" { (t(l, "Fixed")) }
                            th scope="col" class="num" { (t(l, "Shared slots")) } th scope="col" class="num" { (t(l, "Held")) }
                            th scope="col" class="num" { (t(l, "Queued")) } th scope="col" class="num" { (t(l, "Members")) }
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
                h2 id="new-h" { (t(l, "New product")) }
                form method="post" action="products" class="row" {
                    input type="hidden" name="csrf" value=(session.csrf());
                    div class="field" { label for="new-id" { (t(l, "Id")) } input type="text" id="new-id" name="id" required pattern="[A-Za-z0-9._-]+" placeholder="jira-prod"; }
                    div class="field" { label for="new-kind" { (t(l, "Kind")) } (kind_select("new-kind", None)) }
                    div class="field" { label for="new-tier" { (t(l, "Licence tier")) } input type="number" id="new-tier" name="licence_tier" min="1" required; }
                    div class="field" { label for="new-slots" { (t(l, "Shared slots")) } input type="number" id="new-slots" name="shared_slots" min="0" required; }
                    button type="submit" { (t(l, "Create")) }
                }
            }
            (notices_panel(l, notices))
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

fn number(l: Lang, id: &str, label: &'static str, value: u32, hint: &'static str) -> Markup {
    html! {
        div class="field" {
            label for=(id) { (t(l, label)) }
            input type="number" id=(id) name=(id) value=(value) min="0" required aria-describedby={ (id) "-hint" };
            div class="hint" id={ (id) "-hint" } { (t(l, hint)) }
        }
    }
}

/// The product's gate policies: its mode and its bypass rules, in order, with what each
/// matches, then the form that edits them with the maintenance message and the API
/// prefixes (the same settings as the admin API's `mode`, `bypass`, `api_prefixes` and
/// `queue_page.queue_all_message`, validated by the core alike).
fn gate_panel(l: Lang, session: &Session, seg: &str, s: &slotpool_events::Settings) -> Markup {
    let conditions = |r: &slotpool_events::BypassRule| {
        [
            ("users", &r.users),
            ("groups", &r.groups),
            ("cidrs", &r.cidrs),
            ("paths", &r.paths),
            ("token_kinds", &r.token_kinds),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}: {}", v.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
    };
    html! {
        section class="panel" aria-labelledby="gate-h" {
            h2 id="gate-h" { (t(l, "Gate policies")) }
            p { (t(l, "Mode")) ": " span class="badge" id="gate-mode" { (s.mode.code()) } }
            @if s.bypass.is_empty() {
                p class="empty" { (t(l, "No bypass rules.")) }
            } @else {
                table id="bypass-rules" {
                    thead { tr { th scope="col" class="num" { "#" } th scope="col" { (t(l, "Bypass rule")) } th scope="col" { (t(l, "Lets through")) } } }
                    tbody {
                        @for (i, r) in s.bypass.iter().enumerate() {
                            tr { td class="num" { (i + 1) } td { (r.name) } td { (conditions(r)) } }
                        }
                    }
                }
            }
            (gate_form(l, session, seg, s))
        }
    }
}

/// The form of the gate policies (`POST .../gate`): mode, maintenance message, bypass
/// rules, API prefixes, the capacity schedule and the alert rules; lists and the schedule
/// are edited as the JSON the admin API takes.
fn gate_form(l: Lang, session: &Session, seg: &str, s: &slotpool_events::Settings) -> Markup {
    let rules = if s.bypass.is_empty() {
        String::new()
    } else {
        serde_json::to_string_pretty(&s.bypass).unwrap_or_default()
    };
    let schedule = if s.schedule.is_empty() {
        String::new()
    } else {
        serde_json::to_string_pretty(&s.schedule).unwrap_or_default()
    };
    let alerts = if s.alerts.is_empty() {
        String::new()
    } else {
        serde_json::to_string_pretty(&s.alerts).unwrap_or_default()
    };
    let mode_label = |m: slotpool_events::Mode| match m {
        slotpool_events::Mode::Enforce => t(l, "enforce: the pool decides"),
        slotpool_events::Mode::Passthrough => t(l, "passthrough: a shadow run, nobody waits"),
        slotpool_events::Mode::QueueAll => t(l, "queue_all: maintenance, everyone waits"),
    };
    html! {
        form method="post" action={ (seg) "/gate" } id="gate-form" {
            input type="hidden" name="csrf" value=(session.csrf());
            div class="grid2" {
                div class="field" {
                    label for="gate-mode-select" { (t(l, "Mode")) }
                    select id="gate-mode-select" name="mode" {
                        @for m in slotpool_events::Mode::ALL {
                            option value=(m.code()) selected[s.mode == m] { (mode_label(m)) }
                        }
                    }
                }
                div class="field" {
                    label for="api_prefixes" { (t(l, "API path prefixes (JSON answers)")) }
                    input type="text" id="api_prefixes" name="api_prefixes" placeholder="/rest/" value=(s.api_prefixes.join(" ")) aria-describedby="api_prefixes-hint";
                    div class="hint" id="api_prefixes-hint" { (t(l, "A refused request under one gets 429 with its place in the queue instead of the queue page. Separate with spaces.")) }
                }
            }
            div class="field" {
                label for="queue_all_message" { (t(l, "Maintenance message (queue_all, Markdown)")) }
                textarea id="queue_all_message" name="queue_all_message" maxlength="10000" { (s.queue_page.queue_all_message.as_deref().unwrap_or("")) }
            }
            div class="field" {
                label for="bypass" { (t(l, "Bypass rules (JSON)")) }
                textarea id="bypass" name="bypass" rows="8" spellcheck="false" placeholder=r#"[{"name": "robots", "users": ["ci-bot"]}, {"name": "rest", "paths": ["/rest/"]}]"# aria-describedby="bypass-hint" { (rules) }
                div class="hint" id="bypass-hint" { (t(l, "An ordered list; each rule has a name and any of users, groups, cidrs, paths, token_kinds. Empty: no rules.")) }
            }
            div class="grid2" {
                div class="field" {
                    label for="timezone" { (t(l, "Time zone of the schedule (IANA)")) }
                    input type="text" id="timezone" name="timezone" placeholder="Europe/Berlin" value=(s.timezone.as_deref().unwrap_or(""));
                }
            }
            div class="field" {
                label for="schedule" { (t(l, "Scheduled capacity (JSON)")) }
                textarea id="schedule" name="schedule" rows="6" spellcheck="false" placeholder=r#"{"weekly": [{"days": ["mon","tue","wed","thu","fri"], "from": "08:00", "to": "18:00", "shared_slots": 40}], "dated": []}"# aria-describedby="schedule-hint" { (schedule) }
                div class="hint" id="schedule-hint" { (t(l, "Weekly windows and dated events with their own pool size; the shared slots above are the size otherwise. Empty: no schedule.")) }
            }
            div class="field" {
                label for="alerts" { (t(l, "Licence-use alerts (JSON)")) }
                textarea id="alerts" name="alerts" rows="5" spellcheck="false" placeholder=r#"[{"name": "busy", "kind": "use_percent", "threshold": 80, "for_s": 300}]"# aria-describedby="alerts-hint" { (alerts) }
                div class="hint" id="alerts-hint" { (t(l, "Kinds: use_percent, queue_length, wait_p95_s, tier_over. The webhook and its secret are set through the admin API.")) }
            }
            button type="submit" id="gate-submit" { (t(l, "Save gate policies")) }
        }
    }
}

/// In passthrough mode: the shadow run's would-be figures as they stand now (live), and
/// the way to what the run recorded so far (from the journal).
fn passthrough_panel(l: Lang, seg: &str, p: &ProductView) -> Markup {
    html! {
        @if let Some(queued) = p.would_be_queued {
            section class="panel" id="live-shadow" data-live aria-labelledby="shadow-h" {
                h2 id="shadow-h" { (t(l, "Shadow run (passthrough)")) }
                p { (t(l, "Nobody waits at the gate. Enforcing this pool size now would mean:")) }
                div class="kpis" {
                    div class="kpi" { div class="n" id="would-be-holders" { (p.holders) " / " (p.settings.shared_slots) } div class="l" { (t(l, "would hold a slot")) } }
                    div class="kpi" { div class="n" id="would-be-queued" { (queued) } div class="l" { (t(l, "would be waiting")) } }
                }
                p { a href={ (seg) "/shadow" } id="shadow-link" { (t(l, "What the shadow run recorded")) } }
            }
        }
    }
}

/// The figures of the latest shadow run (`GET .../shadow`).
pub fn shadow(
    l: Lang,
    session: &Session,
    id: &str,
    _: (),
    run: &Option<slotpool_events::shadow::ShadowRun>,
) -> Markup {
    let seg = path_segment(id);
    shell(
        l,
        session,
        "../../../",
        &format!("{id}: shadow run"),
        html! {
            h1 { (t(l, "Product")) " " (id) ": " (t(l, "shadow run")) }
            div class="tabs" {
                a href="charts?range=day" { (t(l, "Last day")) }
                a href="peaks" { (t(l, "User peaks")) }
                a href={ "../" (seg) } { (t(l, "Back to the product")) }
            }
            section class="panel" id="shadow-run" {
                @match run {
                    None => { p class="empty" { (t(l, "The product has never been in passthrough mode.")) } }
                    Some(r) => {
                        p id="shadow-period" {
                            (t(l, "Passthrough since")) " " (time(&crate::view::rfc3339(r.since)))
                            @if let Some(u) = r.until { ", " (t(l, "ended")) " " (time(&crate::view::rfc3339(u))) } @else { " (" (t(l, "going on")) ")" }
                            ", " (r.shared_slots) " " (t(l, "shared slots")) "."
                        }
                        table id="shadow-figures" {
                            tbody {
                                tr { th scope="row" { (t(l, "Requests")) } td class="num" id="shadow-requests" { (r.requests()) } }
                                tr { th scope="row" { (t(l, "Granted at once")) } td class="num" { (r.granted_at_once) } }
                                tr { th scope="row" { (t(l, "Would have waited")) } td class="num" id="shadow-queued" { (r.queued) } }
                                tr { th scope="row" { (t(l, "Granted from the queue")) } td class="num" { (r.granted_from_queue) } }
                                tr { th scope="row" { (t(l, "Longest queue")) } td class="num" id="shadow-peak-queued" { (r.peak_queued) } }
                                tr { th scope="row" { (t(l, "Most slots held at once")) } td class="num" { (r.peak_holders) } }
                                tr { th scope="row" { (t(l, "Queue places expired")) } td class="num" { (r.expired) } }
                                tr { th scope="row" { (t(l, "Warnings")) } td class="num" { (r.warnings) } }
                                @for (reason, n) in &r.revocations {
                                    tr { th scope="row" { (t(l, "Revocations")) ": " (reason) } td class="num" { (n) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One product: counts, resize, holders, queue, sync, settings, notices.
pub fn product(l: Lang, session: &Session, d: &ProductData, f: Option<&Flash>) -> Markup {
    let p = &d.overview;
    let s = &p.settings;
    let seg = path_segment(&p.id);
    let qp = &s.queue_page;
    shell(
        l,
        session,
        "../../",
        &p.id,
        html! {
            h1 { (t(l, "Product")) " " (p.id) }
            (flash(f))
            div class="kpis" id="live-kpis" data-live {
                div class="kpi" { div class="n" id="kpi-holders" { (p.holders) " / " (p.effective_shared_slots) } div class="l" { (t(l, "Slots held")) } }
                div class="kpi" { div class="n" id="kpi-queued" { (p.queued) } div class="l" { (t(l, "Queued")) } }
                div class="kpi" { div class="n" { (p.members) } div class="l" { (t(l, "Members")) } }
                div class="kpi" { div class="n" { (p.fixed) } div class="l" { (t(l, "Fixed users")) } }
                div class="kpi" { div class="n" { (s.licence_tier) } div class="l" { (t(l, "Licence tier")) } }
            }
            @if let Some(n) = &p.next_capacity_change { p id="next-capacity" { (t(l, "Next capacity change")) ": " (n.at) " → " (n.shared_slots) } }
            div class="tabs" {
                a href={ (seg) "/charts?range=day" } { (t(l, "Charts: last day")) }
                a href={ (seg) "/charts?range=week" } { (t(l, "Charts: last week")) }
                a href={ (seg) "/peaks" } { (t(l, "User peaks")) }
            }
            div class="grid2" {
                section class="panel" aria-labelledby="resize-h" {
                    h2 id="resize-h" { (t(l, "Resize the pool")) }
                    form method="post" action={ (seg) "/resize" } class="row" id="resize-form" {
                        input type="hidden" name="csrf" value=(session.csrf());
                        div class="field" {
                            label for="resize-slots" { (t(l, "Shared slots")) }
                            input type="number" id="resize-slots" name="shared_slots" min="0" value=(s.shared_slots) required;
                        }
                        button type="submit" id="resize-submit" { (t(l, "Resize")) }
                    }
                    p class="hint small muted" { (t(l, "Fixed users + shared slots may not exceed the licence tier. Shrinking below the holders revokes the longest-inactive ones.")) }
                }
                section class="panel" aria-labelledby="sync-h" {
                    h2 id="sync-h" { (t(l, "Source groups")) }
                    form method="post" class="row" id="sync-form"
                        data-url={ "../../admin/v1/products/" (seg) "/sync" } data-csrf=(session.csrf()) {
                        button type="submit" id="sync-now" { (t(l, "Sync now")) }
                    }
                    p id="sync-result" class="small" role="status" aria-live="polite" {}
                }
            }
            (live_list("live-holders", "holders", "Holders", d.holders.len(), t(l, "Nobody holds a slot."), html! {
                table id="holders" {
                    thead { tr {
                        th scope="col" { (t(l, "User")) } th scope="col" { (t(l, "Since")) } th scope="col" { (t(l, "Last activity")) }
                        th scope="col" { (t(l, "Inactive for")) } th scope="col" { (t(l, "Loses the slot at")) } th scope="col" { (t(l, "Warning")) } th scope="col" { span class="sr-only" { (t(l, "Actions")) } }
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
                                        span class="badge warn" { (t(l, "warned")) " " (time(w)) }
                                    } @else {
                                        span class="badge ok" { (t(l, "active")) }
                                    }
                                }
                                td {
                                    form method="post" action={ (seg) "/revoke" } class="inline" {
                                        input type="hidden" name="csrf" value=(session.csrf());
                                        input type="hidden" name="user" value=(h.user);
                                        button type="submit" class="danger" aria-label={ (t(l, "Revoke the slot of")) " " (h.user) } { (t(l, "Revoke")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }))
            (live_list("live-queue", "queue", "Queue", d.queue.len(), t(l, "Nobody is waiting."), html! {
                table id="queue" {
                    thead { tr { th scope="col" class="num" { "#" } th scope="col" { (t(l, "User")) } th scope="col" { (t(l, "Since")) } th scope="col" { (t(l, "Waiting for")) } } }
                    tbody {
                        @for q in &d.queue {
                            tr { td class="num" { (q.position) } td class="user" { (q.user) } td { (time(&q.since)) } td { (ago(d.now_ms, &q.since)) } }
                        }
                    }
                }
            }))
            section class="panel" aria-labelledby="settings-h" {
                h2 id="settings-h" { (t(l, "Settings")) }
                form method="post" action={ (seg) "/settings" } id="settings-form" {
                    input type="hidden" name="csrf" value=(session.csrf());
                    div class="grid3" {
                        div class="field" { label for="kind" { (t(l, "Kind")) } (kind_select("kind", Some(kind_code(s.kind)))) }
                        (number(l, "licence_tier", "Licence tier", s.licence_tier, "Total seats of the licence."))
                        (number(l, "shared_slots", "Shared slots", s.shared_slots, "Slots in the shared pool."))
                        (number(l, "inactivity_s", "Inactivity time (s)", s.inactivity_s, "Inactive this long: the slot may be revoked."))
                        (number(l, "warning_lead_s", "Warning lead (s)", s.warning_lead_s, "Warning this long before revocation."))
                        (number(l, "sweep_interval_s", "Sweep interval (s)", s.sweep_interval_s, "How often inactive holders are revoked."))
                        (number(l, "lock_s", "Lock time (s)", s.lock_s, "No manual re-login this long after revocation."))
                        (number(l, "queue_timer_s", "Queue timer (s)", s.queue_timer_s, "A silent queued client loses its place."))
                    }
                    div class="row" {
                        label class="check" { input type="checkbox" name="reclaim_on_request" checked[s.reclaim_on_request]; (t(l, "Reclaim on request")) }
                        label class="check" { input type="checkbox" name="auto_relogin" checked[s.auto_relogin]; (t(l, "Auto re-login")) }
                    }
                    h3 { (t(l, "Queue page")) }
                    div class="grid2" {
                        div class="field" { label for="qp_title" { (t(l, "Title")) } input type="text" id="qp_title" name="qp_title" maxlength="200" value=(qp.title.as_deref().unwrap_or("")); }
                        div class="field" { label for="qp_base_url" { (t(l, "Product address (base URL)")) } input type="url" id="qp_base_url" name="qp_base_url" placeholder="https://jira.example.com/" value=(qp.base_url.as_deref().unwrap_or("")) aria-describedby="qp_base_url-hint"; div class="hint" id="qp_base_url-hint" { (t(l, "The queue page only returns users to addresses under it.")) } }
                        div class="field" { label for="qp_logo_url" { (t(l, "Logo address")) } input type="text" id="qp_logo_url" name="qp_logo_url" placeholder="https://…/logo.png" value=(qp.logo_url.as_deref().unwrap_or("")); }
                        div class="field" {
                            label for="logo_file" { (t(l, "Or upload a logo (PNG, JPEG, GIF, WebP; at most 64 KB)")) }
                            input type="file" id="logo_file" accept="image/png,image/jpeg,image/gif,image/webp" data-target="logo_data";
                            input type="hidden" id="logo_data" name="logo_data";
                            @if qp.logo.is_some() {
                                label class="check" { input type="checkbox" name="remove_logo"; (t(l, "Remove the uploaded logo")) }
                            }
                        }
                    }
                    div class="field" { label for="qp_message" { (t(l, "Message (Markdown)")) } textarea id="qp_message" name="qp_message" maxlength="10000" { (qp.message.as_deref().unwrap_or("")) } }
                    button type="submit" id="settings-submit" { (t(l, "Save settings")) }
                }
            }
            (passthrough_panel(l, &seg, p))
            (gate_panel(l, session, &seg, s))
            (notices_panel(l, &d.notices))
        },
    )
}

/// Charts of one product over the last day or week.
pub fn charts(l: Lang, session: &Session, id: &str, week: bool, s: &MinuteSeries) -> Markup {
    let step = 60_000;
    let range = if week {
        t(l, "last week")
    } else {
        t(l, "last day")
    };
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
        l,
        session,
        "../../../",
        &format!("{id}: charts"),
        html! {
            h1 { (t(l, "Product")) " " (id)  ": " (range) }
            div class="tabs" {
                a href="charts?range=day" aria-current=[(!week).then_some("page")] { (t(l, "Last day")) }
                a href="charts?range=week" aria-current=[week.then_some("page")] { (t(l, "Last week")) }
                a href="peaks" { (t(l, "User peaks")) }
                a href={ "../" (seg) } { (t(l, "Back to the product")) }
            }
            p class="muted small" { (t(l, "Per minute, from the journal (replayed through the core). Holders and queue show each minute's maximum.")) }
            section class="panel" {
                (charts::line_chart("c-use", t(l, "Slots held and queue"), s.start_ms, step, &[
                    Line { label: t(l, "holders"), values: &s.holders },
                    Line { label: t(l, "queue length"), values: &s.queued },
                    Line { label: t(l, "shared slots"), values: &s.shared_slots },
                ]))
            }
            section class="panel" {
                (charts::line_chart("c-licence", t(l, "Licence use: fixed, shared, tier"), s.start_ms, step, &[
                    Line { label: t(l, "fixed users"), values: &s.fixed },
                    Line { label: t(l, "shared slots"), values: &s.shared_slots },
                    Line { label: t(l, "licence tier"), values: &s.tier },
                ]))
            }
            section class="panel" {
                @if reason_lines.is_empty() {
                    h2 { (t(l, "Revocations by reason")) }
                    p class="empty" { (t(l, "No revocations in this period.")) }
                } @else {
                    (charts::line_chart("c-revocations", t(l, "Revocations by reason (per minute)"), s.start_ms, step, &reason_lines))
                }
            }
        },
    )
}

/// The user-peak view.
pub fn peaks(l: Lang, session: &Session, id: &str, share: u32, p: &Peaks) -> Markup {
    let seg = path_segment(id);
    let start = p.days.first().map_or(0, |d| d.day_ms);
    let demand: Vec<u32> = p.days.iter().map(|d| d.demand).collect();
    let held: Vec<u32> = p.days.iter().map(|d| d.holders).collect();
    let shared: Vec<u32> = p.days.iter().map(|d| d.shared_slots).collect();
    let mark = format!("{} ({share} %)", t(l, "slots to serve this share at once"));
    shell(
        l,
        session,
        "../../../",
        &format!("{id}: user peaks"),
        html! {
            h1 { (t(l, "Product")) " " (id) ": " (t(l, "user peaks, last 90 days")) }
            div class="tabs" {
                a href="charts?range=day" { (t(l, "Last day")) }
                a href="charts?range=week" { (t(l, "Last week")) }
                a href="peaks" aria-current="page" { (t(l, "User peaks")) }
                a href={ "../" (seg) } { (t(l, "Back to the product")) }
            }
            section class="panel" {
                form method="get" action="peaks" class="row" {
                    div class="field" {
                        label for="share" { (t(l, "Share of requests to serve at once (%)")) }
                        input type="number" id="share" name="share" min="1" max="100" value=(share);
                    }
                    button type="submit" { (t(l, "Compute")) }
                }
                p id="peak-answer" {
                    @if p.requests == 0 {
                        (t(l, "No requests in the last 90 days."))
                    } @else {
                        strong { (p.slots_for_share) } " " (t(l, "shared slots would have served")) " " (share) " % " (t(l, "of the"))
                        " " (p.requests) " " (t(l, "requests of the last 90 days at once (the pool has")) " " (p.shared_slots_now) " " (t(l, "now)."))
                    }
                }
            }
            section class="panel" {
                (charts::day_bars(t(l, "daily peak"), "c-peaks", t(l, "Daily peak of demand (holders + queue)"), start, &demand, &[
                    Line { label: t(l, "daily peak of slots held"), values: &held },
                    Line { label: t(l, "shared slots"), values: &shared },
                ], (p.requests > 0).then_some((mark.as_str(), p.slots_for_share))))
            }
            section class="panel" {
                h2 { (t(l, "Days")) }
                table {
                    thead { tr { th scope="col" { (t(l, "Day (UTC)")) } th scope="col" class="num" { (t(l, "Peak held")) } th scope="col" class="num" { (t(l, "Peak demand")) } th scope="col" class="num" { (t(l, "Requests")) } th scope="col" class="num" { (t(l, "Shared slots")) } } }
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

/// A live panel listing `count` rows: its heading with the count, then `table`, or the
/// `empty` sentence when there are none. The holders and the queue are shown this way.
fn live_list(
    section_id: &str,
    key: &str,
    title: &str,
    count: usize,
    empty: &str,
    table: Markup,
) -> Markup {
    html! {
        section class="panel" id=(section_id) data-live aria-labelledby={ (key) "-h" } {
            h2 id={ (key) "-h" } { (title) " (" (count) ")" }
            @if count == 0 {
                p class="empty" { (empty) }
            } @else {
                (table)
            }
        }
    }
}

/// `en` in the dashboard's language.
pub fn t(l: Lang, en: &'static str) -> &'static str {
    match l {
        Lang::En => en,
        Lang::De => de(en),
    }
}

/// The German of the dashboard's English texts (the English text where none is needed).
fn de(en: &'static str) -> &'static str {
    match en {
        "Actions" => "Aktionen",
        "Admin token" => "Admin-Token",
        "Back to the product" => "Zurück zum Produkt",
        "Charts: last day" => "Diagramme: letzter Tag",
        "Charts: last week" => "Diagramme: letzte Woche",
        "Compute" => "Berechnen",
        "Create" => "Anlegen",
        "Day (UTC)" => "Tag (UTC)",
        "Days" => "Tage",
        "Fixed users + shared slots may not exceed the licence tier. Shrinking below the holders revokes the longest-inactive ones." => "Feste Nutzer + gemeinsame Plätze dürfen die Lizenzstufe nicht überschreiten. Verkleinern unter die Zahl der Inhaber entzieht den am längsten Inaktiven die Lizenz.",
        "Fixed users" => "Feste Nutzer",
        "Fixed" => "Fest",
        "Held" => "Belegt",
        "Id" => "Kennung",
        "Inactive for" => "Inaktiv seit",
        "Kind" => "Art",
        "Last activity" => "Letzte Aktivität",
        "Last day" => "Letzter Tag",
        "Last week" => "Letzte Woche",
        "last day" => "letzter Tag",
        "last week" => "letzte Woche",
        "Licence tier" => "Lizenzstufe",
        "Logo address" => "Logo-Adresse",
        "Loses the slot at" => "Verliert den Platz um",
        "Main" => "Hauptnavigation",
        "Members" => "Mitglieder",
        "Message (Markdown)" => "Nachricht (Markdown)",
        "Message" => "Nachricht",
        "New product" => "Neues Produkt",
        "No notices." => "Keine Hinweise.",
        "No product yet. Create one below." => "Noch kein Produkt. Legen Sie unten eines an.",
        "No revocations in this period." => "Keine Entzüge in diesem Zeitraum.",
        "Nobody holds a slot." => "Niemand belegt einen Platz.",
        "Nobody is waiting." => "Niemand wartet.",
        "Notices" => "Hinweise",
        "Or upload a logo (PNG, JPEG, GIF, WebP; at most 64 KB)" => "Oder ein Logo hochladen (PNG, JPEG, GIF, WebP; höchstens 64 KB)",
        "Peak demand" => "Spitzenbedarf",
        "Peak held" => "Spitze belegt",
        "Per minute, from the journal (replayed through the core). Holders and queue show each minute's maximum." => "Pro Minute, aus dem Journal (durch den Kern nachgespielt). Inhaber und Warteschlange zeigen das Maximum jeder Minute.",
        "Product address (base URL)" => "Adresse des Produkts (Basis-URL)",
        "Product" => "Produkt",
        "Products" => "Produkte",
        "Queue page" => "Warteseite",
        "Queue" => "Warteschlange",
        "Queued" => "Wartend",
        "Requests" => "Anfragen",
        "Resize the pool" => "Pool-Größe ändern",
        "Resize" => "Ändern",
        "Revocations by reason" => "Entzüge nach Grund",
        "Revoke" => "Entziehen",
        "Revoke the slot of" => "Platz entziehen:",
        "Save settings" => "Einstellungen speichern",
        "Settings" => "Einstellungen",
        "Share of requests to serve at once (%)" => "Anteil sofort bedienter Anfragen (%)",
        "Shared pools" => "Gemeinsame Pools",
        "Shared slots" => "Gemeinsame Plätze",
        "Sign in" => "Anmelden",
        "Sign in with the admin token" => "Melden Sie sich mit dem Admin-Token an",
        "Sign out" => "Abmelden",
        "Since" => "Seit",
        "Slots held" => "Belegte Plätze",
        "Source groups" => "Quellgruppen",
        "Sync now" => "Jetzt synchronisieren",
        "The queue page only returns users to addresses under it." => "Die Warteseite leitet Nutzer nur zu Adressen darunter zurück.",
        "Tier" => "Stufe",
        "Title" => "Titel",
        "User peaks" => "Nutzungsspitzen",
        "User" => "Nutzer",
        "Waiting for" => "Wartet seit",
        "Warning" => "Warnung",
        "When" => "Wann",
        "active" => "aktiv",
        "warned" => "gewarnt",
        "slotpool administration" => "slotpool-Verwaltung",
        "Slots held and queue" => "Belegte Plätze und Warteschlange",
        "holders" => "Inhaber",
        "queue length" => "Länge der Warteschlange",
        "shared slots" => "gemeinsame Plätze",
        "Licence use: fixed, shared, tier" => "Lizenznutzung: fest, gemeinsam, Stufe",
        "fixed users" => "feste Nutzer",
        "licence tier" => "Lizenzstufe",
        "Revocations by reason (per minute)" => "Entzüge nach Grund (pro Minute)",
        "slots to serve this share at once" => "Plätze, um diesen Anteil sofort zu bedienen",
        "user peaks, last 90 days" => "Nutzungsspitzen, letzte 90 Tage",
        "No requests in the last 90 days." => "Keine Anfragen in den letzten 90 Tagen.",
        "shared slots would have served" => "gemeinsame Plätze hätten",
        "of the" => "der",
        "requests of the last 90 days at once (the pool has" => "Anfragen der letzten 90 Tage sofort bedient (der Pool hat jetzt",
        "now)." => ").",
        "Daily peak of demand (holders + queue)" => "Tägliche Bedarfsspitze (Inhaber + Warteschlange)",
        "daily peak of slots held" => "tägliche Spitze belegter Plätze",
        "Inactivity time (s)" => "Inaktivitätszeit (s)",
        "Inactive this long: the slot may be revoked." => "So lange inaktiv: der Platz kann entzogen werden.",
        "Warning lead (s)" => "Vorwarnzeit (s)",
        "Warning this long before revocation." => "Warnung so lange vor dem Entzug.",
        "Sweep interval (s)" => "Prüfintervall (s)",
        "How often inactive holders are revoked." => "Wie oft inaktiven Inhabern der Platz entzogen wird.",
        "Lock time (s)" => "Sperrzeit (s)",
        "No manual re-login this long after revocation." => "So lange nach dem Entzug keine erneute Anmeldung.",
        "Queue timer (s)" => "Warteschlangen-Timer (s)",
        "A silent queued client loses its place." => "Ein stiller wartender Client verliert seinen Platz.",
        "Total seats of the licence." => "Gesamtzahl der Lizenzplätze.",
        "Slots in the shared pool." => "Plätze im gemeinsamen Pool.",
        "Reclaim on request" => "Bei Anfrage zurückholen",
        "Auto re-login" => "Automatisch neu anmelden",
        "Remove the uploaded logo" => "Hochgeladenes Logo entfernen",
        "Product created." => "Produkt angelegt.",
        "Settings saved." => "Einstellungen gespeichert.",
        "Pool resized." => "Pool-Größe geändert.",
        "Slot revoked." => "Platz entzogen.",
        "That is not the admin token." => "Das ist nicht das Admin-Token.",
        "daily peak" => "Tagesspitze",
        "Gate policies" => "Zugangsregeln",
        "Mode" => "Modus",
        "No bypass rules." => "Keine Ausnahmeregeln.",
        "Time zone of the schedule (IANA)" => "Zeitzone des Zeitplans (IANA)",
        "Scheduled capacity (JSON)" => "Geplante Kapazität (JSON)",
        "Weekly windows and dated events with their own pool size; the shared slots above are the size otherwise. Empty: no schedule." => "Wöchentliche Zeitfenster und datierte Termine mit eigener Poolgröße; sonst gilt die Zahl der geteilten Plätze oben. Leer: kein Zeitplan.",
        "Licence-use alerts (JSON)" => "Alarme zur Lizenznutzung (JSON)",
        "Kinds: use_percent, queue_length, wait_p95_s, tier_over. The webhook and its secret are set through the admin API." => "Arten: use_percent, queue_length, wait_p95_s, tier_over. Webhook und Geheimnis werden über die Admin-API gesetzt.",
        "Bypass rule" => "Ausnahmeregel",
        "Lets through" => "Lässt durch",
        "Save gate policies" => "Zugangsregeln speichern",
        "Bypass rules (JSON)" => "Ausnahmeregeln (JSON)",
        "Maintenance message (queue_all, Markdown)" => "Wartungsnachricht (queue_all, Markdown)",
        "API path prefixes (JSON answers)" => "API-Pfadpräfixe (JSON-Antworten)",
        "Shadow run (passthrough)" => "Probelauf (passthrough)",
        "shadow run" => "Probelauf",
        "would hold a slot" => "hätten einen Platz",
        "would be waiting" => "würden warten",
        "What the shadow run recorded" => "Was der Probelauf aufgezeichnet hat",
        "Would have waited" => "Hätten gewartet",
        "Granted at once" => "Sofort vergeben",
        "Warnings" => "Warnungen",
        _ => en,
    }
}
