//! Issue D over plain HTTP: the gate's answers, `return_to` validation (no open
//! redirect), security headers, escaping of what administrators and users typed, the
//! languages of the queue page, and the dashboard's sign-in, session and CSRF checks.

mod common;

use common::{assert_problem, temp_dir, Client, Opts, Server};
use serde_json::json;

const P: &str = "jira";

fn start() -> (tempfile::TempDir, Server, Client) {
    let dir = temp_dir();
    let server = Server::start(&Opts::new(&dir.path().join("data"), dir.path()));
    let c = server.client();
    let r = c.put_product(
        P,
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1,
        "queue_page": {
            "title": "<script>alert('title')</script> Jira",
            "message": "Read **this**. <img src=x onerror=alert(1)> [x](javascript:alert(2))",
            "base_url": "https://jira.example.com/"
        }}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    (dir, server, c)
}

fn gate(c: &Client, user: &str, uri: &str) -> common::Resp {
    c.call(
        "GET",
        &format!("/gate/{P}"),
        &[("X-Slotpool-User", user), ("X-Original-URI", uri)],
        None,
    )
}

#[test]
fn the_gate_lets_holders_and_fixed_users_through_grants_free_slots_and_refuses_the_rest() {
    let (_d, _s, c) = start();
    for u in ["alice", "bob"] {
        c.enrol(P, u);
    }
    assert_eq!(
        c.admin("PUT", "/admin/v1/products/jira/fixed/fred", None)
            .status,
        204
    );

    // A member with a free slot and nobody waiting is granted by the gate itself.
    let r = gate(&c, "alice", "/");
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(c.holders(P), vec!["alice".to_string()]);
    // A holder's page view is activity.
    let before = c.holders_json(P)[0]["last_activity"].clone();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(gate(&c, "alice", "/x").status, 204);
    let after = c.holders_json(P)[0]["last_activity"].clone();
    assert!(after.as_str() > before.as_str(), "{before} -> {after}");
    // A fixed user passes without a slot.
    assert_eq!(gate(&c, "fred", "/").status, 204);
    assert_eq!(c.holders(P), vec!["alice".to_string()]);

    // The pool is full: 401 with the original URI encoded for the queue page, and the
    // gate queues nobody.
    let r = gate(&c, "bob", "/browse/X-1?a=1&b=2");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("X-Slotpool-Return-To"),
        Some("%2Fbrowse%2FX-1%3Fa%3D1%26b%3D2")
    );
    assert!(c.queue(P).is_empty());
    // Queued (by the queue page's request): still 401, and the poll keeps the place.
    assert_eq!(c.request(P, "bob").state(), "queued");
    assert_eq!(gate(&c, "bob", "/").status, 401);
    // Not a member, and no user at all: 401.
    assert_eq!(gate(&c, "mallory", "/").status, 401);
    let r = c.call("GET", "/gate/jira", &[], None);
    assert_eq!(r.status, 401);
    // Unknown product: 404.
    let r = c.call("GET", "/gate/nope", &[("X-Slotpool-User", "alice")], None);
    assert_problem(&r, 404, "unknown_product");

    // Alice leaves: bob, the queue head, holds the slot and passes.
    assert_eq!(c.release(P, "alice").status, 204);
    assert_eq!(gate(&c, "bob", "/").status, 204);
    assert_eq!(gate(&c, "alice", "/").status, 401);
}

#[test]
fn the_gate_sends_browsers_to_the_queue_page_when_the_proxy_names_it() {
    let (_d, _s, c) = start();
    c.enrol(P, "alice");
    c.enrol(P, "bob");
    assert_eq!(gate(&c, "alice", "/").status, 204);
    let r = c.call(
        "GET",
        "/gate/jira",
        &[
            ("X-Slotpool-User", "bob"),
            ("X-Forwarded-Uri", "/a?b=1"),
            ("X-Slotpool-Queue-Url", "/slotpool/queue/jira"),
        ],
        None,
    );
    assert_eq!(r.status, 401);
    assert!(
        r.content_type.starts_with("text/html"),
        "{}",
        r.content_type
    );
    assert!(
        r.body
            .contains("url=/slotpool/queue/jira?return_to=%2Fa%3Fb%3D1"),
        "{}",
        r.body
    );
    // A queue address that is not a local path is ignored.
    let r = c.call(
        "GET",
        "/gate/jira",
        &[
            ("X-Slotpool-User", "bob"),
            ("X-Slotpool-Queue-Url", "//evil.example/"),
        ],
        None,
    );
    assert_eq!(r.status, 401);
    assert!(!r.body.contains("evil"), "{}", r.body);
}

fn queue_page(c: &Client, query: &str) -> common::Resp {
    c.call(
        "GET",
        &format!("/queue/{P}{query}"),
        &[("X-Slotpool-User", "alice")],
        None,
    )
}

#[test]
fn open_redirects_through_return_to_are_refused() {
    let (_d, _s, c) = start();
    c.enrol(P, "alice");
    for bad in [
        "https://evil.example/",
        "https://jira.example.com.evil.example/",
        "https://jira.example.com@evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "javascript:alert(1)",
        "http://jira.example.com/",
    ] {
        let q = format!("?return_to={}", url_encode(bad));
        let r = queue_page(&c, &q);
        assert_problem(&r, 400, "invalid_return_to");
        assert!(r.header("Location").is_none());
    }
    let r = queue_page(
        &c,
        &format!(
            "?return_to={}",
            url_encode("https://jira.example.com/browse/X-1?a=1&b=2")
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("data-return-to=\"https://jira.example.com/browse/X-1?a=1&amp;b=2\""),
        "{}",
        r.body
    );
    let r = queue_page(&c, "?return_to=%2Fbrowse%2FX-2");
    assert!(r
        .body
        .contains("data-return-to=\"https://jira.example.com/browse/X-2\""));
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn pages_carry_security_headers_and_escape_what_people_typed() {
    let (_d, s, c) = start();
    c.enrol(P, "alice");
    let r = queue_page(&c, "");
    assert_eq!(r.status, 200, "{}", r.body);
    let csp = r.header("Content-Security-Policy").unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.header("X-Frame-Options"), Some("DENY"));
    assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    // No inline script, no inline style attribute, nothing from another host.
    assert!(
        !r.body.contains("<script>") && !r.body.contains(" style="),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("src=\"http") && !r.body.contains("stylesheet\" href=\"http"),
        "{}",
        r.body
    );
    // The administrator's title is text; the Markdown is rendered and sanitised.
    assert!(
        r.body
            .contains("&lt;script&gt;alert('title')&lt;/script&gt; Jira"),
        "{}",
        r.body
    );
    assert!(r.body.contains("<strong>this</strong>"), "{}", r.body);
    assert!(
        !r.body.contains("onerror") && !r.body.contains("javascript:"),
        "{}",
        r.body
    );

    for path in [
        "/static/slotpool.js",
        "/static/queue.js",
        "/static/pages.css",
        "/admin/",
    ] {
        let r = c.call("GET", path, &[], None);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{path}"
        );
        assert!(r.header("Content-Security-Policy").is_some(), "{path}");
    }
    // API answers (JSON, problems) are no documents: no sniffing, a policy that allows
    // nothing, and none of the document headers.
    for (path, status) in [("/healthz", 200), ("/api/v1/products/nope/slot", 404)] {
        let r = c.call("GET", path, &[("X-Slotpool-User", "alice")], None);
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert_eq!(
            r.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            r.header("Content-Security-Policy"),
            Some("default-src 'none'; frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(r.header("X-Frame-Options"), None, "{path}");
    }

    // A user name with markup shows as text in the dashboard.
    let evil = "<img src=x onerror=alert(3)>";
    let enc = url_encode(evil);
    assert_eq!(
        c.admin(
            "PUT",
            &format!("/admin/v1/products/jira/members/{enc}"),
            None
        )
        .status,
        204
    );
    assert_eq!(c.request(P, evil).state(), "granted");
    let admin = Admin::sign_in(&s);
    let page = admin.get("/admin/products/jira");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("&lt;img src=x onerror=alert(3)&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<img src=x"), "{}", page.body);
}

#[test]
fn the_queue_page_speaks_english_and_german() {
    let (_d, _s, c) = start();
    c.enrol(P, "alice");
    let en = queue_page(&c, "");
    assert!(en.body.contains("<html lang=\"en\">") && en.body.contains("Your position"));
    let de = queue_page(&c, "?lang=de");
    assert!(de.body.contains("<html lang=\"de\">") && de.body.contains("Ihre Position"));
    let de = c.call(
        "GET",
        "/queue/jira",
        &[
            ("X-Slotpool-User", "alice"),
            ("Accept-Language", "de-DE,de;q=0.9,en;q=0.5"),
        ],
        None,
    );
    assert!(de.body.contains("Ihre Position"), "{}", de.body);
    // The dashboard too.
    let login = c.call("GET", "/admin/?lang=de", &[], None);
    assert!(
        login.body.contains("<html lang=\"de\">") && login.body.contains("Anmelden"),
        "{}",
        login.body
    );
    let login = c.call("GET", "/admin/", &[("Accept-Language", "de")], None);
    assert!(login.body.contains("Admin-Token"), "{}", login.body);
}

/// A dashboard session over plain HTTP: cookies and CSRF tokens by hand.
struct Admin {
    agent: ureq::Agent,
    base: String,
    cookie: String,
    csrf: String,
}

fn cookie_of(r: &ureq::Response, name: &str) -> Option<String> {
    r.all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or("").to_string())
        .filter(|c| c.len() > name.len() + 1)
}

fn csrf_in(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    body[at..].split('"').next().unwrap_or("").to_string()
}

fn response(r: Result<ureq::Response, ureq::Error>) -> ureq::Response {
    match r {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport: {e}"),
    }
}

impl Admin {
    fn sign_in(s: &Server) -> Admin {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let login = response(agent.get(&format!("{}/admin/", s.base)).call());
        let nonce = cookie_of(&login, "slotpool_login").expect("login cookie");
        let csrf = csrf_in(&login.into_string().unwrap_or_default());
        let r = response(
            agent
                .post(&format!("{}/admin/login", s.base))
                .set("Cookie", &nonce)
                .send_form(&[("csrf", &csrf), ("token", &s.token)]),
        );
        assert_eq!(r.status(), 303);
        let set = r.all("set-cookie").join(" | ");
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        let cookie = cookie_of(&r, "slotpool_admin").expect("session cookie");
        let mut admin = Admin {
            agent,
            base: s.base.clone(),
            cookie,
            csrf: String::new(),
        };
        admin.csrf = csrf_in(&admin.get("/admin/").body);
        admin
    }

    fn get(&self, path: &str) -> common::Resp {
        let r = response(
            self.agent
                .get(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie)
                .call(),
        );
        let status = r.status();
        common::Resp {
            status,
            content_type: r.content_type().to_string(),
            headers: vec![],
            body: r.into_string().unwrap_or_default(),
        }
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> u16 {
        response(
            self.agent
                .post(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie)
                .send_form(form),
        )
        .status()
    }
}

#[test]
fn dashboard_forms_need_the_session_and_its_csrf_token() {
    let (_d, s, c) = start();
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    // A wrong token does not sign in.
    let login = response(agent.get(&format!("{}/admin/", s.base)).call());
    let nonce = cookie_of(&login, "slotpool_login").expect("login cookie");
    let csrf = csrf_in(&login.into_string().unwrap_or_default());
    let r = response(
        agent
            .post(&format!("{}/admin/login", s.base))
            .set("Cookie", &nonce)
            .send_form(&[("csrf", &csrf), ("token", "not-the-token")]),
    );
    assert_eq!(r.status(), 401);
    assert!(cookie_of(&r, "slotpool_admin").is_none());
    // Sign-in without the login form's CSRF token is refused.
    let r = response(
        agent
            .post(&format!("{}/admin/login", s.base))
            .send_form(&[("token", &s.token)]),
    );
    assert_eq!(r.status(), 403);

    let admin = Admin::sign_in(&s);
    // Without the CSRF token, or with another one: refused, nothing changes.
    assert_eq!(
        admin.post("/admin/products/jira/resize", &[("shared_slots", "5")]),
        403
    );
    assert_eq!(
        admin.post(
            "/admin/products/jira/resize",
            &[("shared_slots", "5"), ("csrf", "forged")]
        ),
        403
    );
    assert_eq!(c.product(P)["shared_slots"], 1);
    // Without the session: refused.
    let r = response(
        agent
            .post(&format!("{}/admin/products/jira/resize", s.base))
            .send_form(&[("shared_slots", "5"), ("csrf", &admin.csrf)]),
    );
    assert_eq!(r.status(), 401);
    assert_eq!(c.product(P)["shared_slots"], 1);
    // With both: done.
    assert_eq!(
        admin.post(
            "/admin/products/jira/resize",
            &[("shared_slots", "5"), ("csrf", &admin.csrf)]
        ),
        303
    );
    assert_eq!(c.product(P)["shared_slots"], 5);
    // A refused change is shown on the page, with the core's reason.
    let r = response(
        admin
            .agent
            .post(&format!("{}/admin/products/jira/resize", s.base))
            .set("Cookie", &admin.cookie)
            .send_form(&[("shared_slots", "11"), ("csrf", &admin.csrf)]),
    );
    assert_eq!(r.status(), 422);
    assert!(r
        .into_string()
        .unwrap_or_default()
        .contains("exceed licence_tier"));
    // The settings form: every setting and the queue page's text.
    let form = [
        ("csrf", admin.csrf.as_str()),
        ("kind", "confluence"),
        ("licence_tier", "12"),
        ("shared_slots", "4"),
        ("inactivity_s", "900"),
        ("warning_lead_s", "30"),
        ("sweep_interval_s", "60"),
        ("lock_s", "10"),
        ("queue_timer_s", "45"),
        ("auto_relogin", "on"),
        ("qp_title", "Busy <today>"),
        ("qp_message", "Please **log out**."),
        ("qp_logo_url", ""),
        ("qp_base_url", "https://wiki.example.com/"),
    ];
    assert_eq!(admin.post("/admin/products/jira/settings", &form), 303);
    let p = c.product(P);
    assert_eq!(p["kind"], "confluence");
    assert_eq!(
        (p["licence_tier"].as_u64(), p["shared_slots"].as_u64()),
        (Some(12), Some(4))
    );
    assert_eq!(
        (p["inactivity_s"].as_u64(), p["lock_s"].as_u64()),
        (Some(900), Some(10))
    );
    assert_eq!(
        (
            p["auto_relogin"].as_bool(),
            p["reclaim_on_request"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(p["queue_page"]["title"], "Busy <today>");
    assert_eq!(p["queue_page"]["base_url"], "https://wiki.example.com/");
    assert!(p["queue_page"].get("logo_url").is_none());
    let page = admin.get("/admin/products/jira");
    assert!(
        page.body.contains("value=\"Busy &lt;today&gt;\""),
        "{}",
        page.body
    );
    // Revoke from the holders table.
    c.enrol(P, "alice");
    assert_eq!(c.request(P, "alice").state(), "granted");
    assert_eq!(
        admin.post("/admin/products/jira/revoke", &[("user", "alice")]),
        403
    );
    assert_eq!(c.holders(P), vec!["alice".to_string()]);
    assert_eq!(
        admin.post(
            "/admin/products/jira/revoke",
            &[("user", "alice"), ("csrf", &admin.csrf)]
        ),
        303
    );
    assert!(c.holders(P).is_empty());
    // The admin API accepts the session only with the CSRF header for changes.
    let r = response(
        admin
            .agent
            .delete(&format!("{}/admin/v1/products/jira/members/nobody", s.base))
            .set("Cookie", &admin.cookie)
            .call(),
    );
    assert_eq!(r.status(), 403);
    let r = response(
        admin
            .agent
            .get(&format!("{}/admin/v1/products/jira", s.base))
            .set("Cookie", &admin.cookie)
            .call(),
    );
    assert_eq!(r.status(), 200);
    // Signing out ends the session on the server: the old cookie no longer works.
    assert_eq!(admin.post("/admin/logout", &[("csrf", &admin.csrf)]), 303);
    let r = response(
        admin
            .agent
            .get(&format!("{}/admin/v1/products/jira", s.base))
            .set("Cookie", &admin.cookie)
            .call(),
    );
    assert_eq!(r.status(), 401);
    assert_eq!(
        admin.post(
            "/admin/products/jira/resize",
            &[("shared_slots", "1"), ("csrf", &admin.csrf)]
        ),
        401
    );
}

#[test]
fn an_uploaded_logo_is_served_by_slotpool_and_bad_queue_page_settings_are_refused() {
    let (_d, _s, c) = start();
    c.enrol(P, "alice");
    // A 1x1 PNG.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let mut settings = c.product(P);
    settings["queue_page"]["logo"] = json!(format!("data:image/png;base64,{png}"));
    assert_eq!(c.put_product(P, settings.clone()).status, 200);
    let r = c.call("GET", "/queue/jira/logo", &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "image/png");
    let page = queue_page(&c, "");
    assert!(
        page.body.contains("src=\"../queue/jira/logo\""),
        "{}",
        page.body
    );

    for (field, value) in [
        ("logo", json!("data:image/svg+xml;base64,PHN2Zz4=")),
        ("logo", json!("https://example.com/x.png")),
        ("base_url", json!("javascript:alert(1)")),
        ("base_url", json!("//evil.example/")),
        ("logo_url", json!("javascript:alert(1)")),
        ("title", json!("x".repeat(201))),
    ] {
        let mut bad = settings.clone();
        bad["queue_page"][field] = value.clone();
        let r = c.admin("PUT", "/admin/v1/products/jira", Some(&bad));
        assert_problem(&r, 422, "invalid_settings");
        assert!(
            r.body.contains(&format!("queue_page.{field}")),
            "{field}: {}",
            r.body
        );
    }
    assert_eq!(
        c.product(P)["queue_page"]["base_url"],
        "https://jira.example.com/"
    );
}

/// `slotpool_requests_total{product="jira",outcome}` as `/metrics` shows it.
fn requests_counted(c: &Client, outcome: &str) -> f64 {
    let metrics = c.call("GET", "/metrics", &[], None).body;
    let wanted = format!("slotpool_requests_total{{outcome=\"{outcome}\",product=\"{P}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&wanted))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn the_gate_says_why_in_its_state_header_and_counts_only_its_grants_as_requests() {
    let (_d, _s, c) = start();
    for u in ["alice", "bob"] {
        c.enrol(P, u);
    }
    assert_eq!(
        c.admin("PUT", "/admin/v1/products/jira/fixed/fred", None)
            .status,
        204
    );
    let state = |r: &common::Resp| r.header("X-Slotpool-State").map(str::to_string);
    let r = gate(&c, "alice", "/");
    assert_eq!((r.status, state(&r)), (204, Some("granted".into())));
    assert_eq!(requests_counted(&c, "granted"), 1.0);
    // A holder's page views are activity, not requests.
    for _ in 0..3 {
        let r = gate(&c, "alice", "/");
        assert_eq!((r.status, state(&r)), (204, Some("granted".into())));
    }
    assert_eq!(requests_counted(&c, "granted"), 1.0);
    let r = gate(&c, "fred", "/");
    assert_eq!((r.status, state(&r)), (204, Some("fixed".into())));
    // The pool is full: none, and nobody queued; queued by the queue page: queued, and
    // the place kept.
    let r = gate(&c, "bob", "/");
    assert_eq!((r.status, state(&r)), (401, Some("none".into())));
    assert_eq!(requests_counted(&c, "queued"), 0.0);
    assert!(c.queue(P).is_empty());
    assert_eq!(c.request(P, "bob").state(), "queued");
    let r = gate(&c, "bob", "/");
    assert_eq!((r.status, state(&r)), (401, Some("queued".into())));
    assert_eq!(c.queue(P), vec!["bob".to_string()]);
    assert_eq!(requests_counted(&c, "queued"), 1.0);
    let r = gate(&c, "mallory", "/");
    assert_eq!((r.status, state(&r)), (401, Some("none".into())));
}

/// Issue G on the dashboard: the gate policies form sets the mode, the maintenance
/// message, the bypass rules (as JSON, validated by the core as the admin API's PUT) and
/// the API prefixes, with the session's CSRF token; in passthrough the product page
/// shows the would-be figures and the shadow run page what the run recorded.
#[test]
fn the_dashboard_edits_the_gate_policies_and_shows_the_shadow_run() {
    let (_d, s, c) = start();
    let admin = Admin::sign_in(&s);
    let page = admin.get("/admin/products/jira");
    for part in [
        "id=\"gate-form\"",
        "name=\"mode\"",
        "<option value=\"enforce\" selected",
        "name=\"bypass\"",
        "name=\"api_prefixes\"",
        "name=\"queue_all_message\"",
    ] {
        assert!(page.body.contains(part), "{part} in the product page");
    }
    assert!(
        !page.body.contains("id=\"live-shadow\""),
        "no shadow run in enforce"
    );
    let rules =
        r#"[{"name": "robots", "users": ["ci-bot"]}, {"name": "rest", "paths": ["/rest/"]}]"#;
    let form = |csrf: &str, mode: &str, bypass: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("mode", mode.to_string()),
            (
                "queue_all_message",
                "Upgrade until **10:00** <b>now</b>".to_string(),
            ),
            ("bypass", bypass.to_string()),
            ("api_prefixes", "/rest/ /plugins/servlet/api/".to_string()),
        ]
    };
    let post = |fields: &[(&str, String)]| {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = response(
            admin
                .agent
                .post(&format!("{}/admin/products/jira/gate", s.base))
                .set("Cookie", &admin.cookie)
                .send_form(&pairs),
        );
        (r.status(), r.into_string().unwrap_or_default())
    };
    // Without the CSRF token: refused, nothing changes.
    assert_eq!(post(&form("forged", "queue_all", rules)).0, 403);
    assert!(c.product(P).get("mode").is_none());

    assert_eq!(post(&form(&admin.csrf, "queue_all", rules)).0, 303);
    let p = c.product(P);
    assert_eq!(p["mode"], "queue_all");
    assert_eq!(
        p["queue_page"]["queue_all_message"],
        "Upgrade until **10:00** <b>now</b>"
    );
    assert_eq!(p["bypass"][0]["name"], "robots");
    assert_eq!(p["bypass"][1]["paths"], json!(["/rest/"]));
    assert_eq!(
        p["api_prefixes"],
        json!(["/rest/", "/plugins/servlet/api/"])
    );
    assert_eq!(
        p["queue_page"]["title"], "<script>alert('title')</script> Jira",
        "the other settings are kept"
    );
    assert_eq!(
        gate(&c, "ci-bot", "/browse/X-1").status,
        204,
        "the rule works"
    );
    let page = admin.get("/admin/products/jira");
    assert!(
        page.body.contains("<option value=\"queue_all\" selected"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("&quot;ci-bot&quot;"),
        "the rules as JSON, escaped"
    );
    assert!(
        page.body.contains("**10:00** &lt;b&gt;now&lt;/b&gt;"),
        "the message escaped"
    );
    assert!(page.body.contains("value=\"/rest/ /plugins/servlet/api/\""));

    // A bad rule (the core's validation, as the admin API's) or bad JSON or mode: 422
    // shown on the page, nothing changes.
    let bad_cidr = r#"[{"name": "office", "cidrs": ["10.0.0.1/8"]}]"#;
    let (status, body) = post(&form(&admin.csrf, "enforce", bad_cidr));
    assert_eq!(status, 422);
    assert!(body.contains("bypass[0].cidrs"), "{body}");
    let (status, body) = post(&form(&admin.csrf, "enforce", "[{\"name\": "));
    assert_eq!(status, 422);
    assert!(body.contains("bypass must be a JSON list"), "{body}");
    let (status, body) = post(&form(&admin.csrf, "open_all", rules));
    assert_eq!(status, 422);
    assert!(body.contains("open_all"), "{body}");
    assert_eq!(c.product(P)["mode"], "queue_all");
    assert_eq!(c.product(P)["bypass"].as_array().map(Vec::len), Some(2));

    // Passthrough with the rules emptied: the shadow run. alice's view is granted, bob's
    // and carol's would have waited (both let through).
    assert_eq!(post(&form(&admin.csrf, "passthrough", "")).0, 303);
    assert!(c.product(P).get("bypass").is_none());
    for u in ["alice", "bob", "carol"] {
        c.enrol(P, u);
        let r = gate(&c, u, "/browse/X-1");
        assert_eq!(r.status, 204, "{r:?}");
    }
    assert_eq!(c.product(P)["would_be_queued"], 2);
    let page = admin.get("/admin/products/jira");
    assert!(page.body.contains("id=\"live-shadow\""), "{}", page.body);
    assert!(
        page.body.contains("id=\"would-be-queued\">2<"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"would-be-holders\">1 / 1<"),
        "{}",
        page.body
    );
    let shadow = admin.get("/admin/products/jira/shadow");
    assert_eq!(shadow.status, 200);
    assert!(
        shadow.body.contains("id=\"shadow-requests\">3<"),
        "{}",
        shadow.body
    );
    assert!(
        shadow.body.contains("id=\"shadow-queued\">2<"),
        "{}",
        shadow.body
    );
    assert!(
        shadow.body.contains("id=\"shadow-peak-queued\">2<"),
        "{}",
        shadow.body
    );
    assert!(shadow.body.contains("(going on)"), "{}", shadow.body);

    // Leaving passthrough ends the run (its figures stay); the panel goes.
    assert_eq!(post(&form(&admin.csrf, "enforce", "")).0, 303);
    assert!(c.product(P).get("mode").is_none());
    let page = admin.get("/admin/products/jira");
    assert!(!page.body.contains("id=\"live-shadow\""));
    let shadow = admin.get("/admin/products/jira/shadow");
    assert!(shadow.body.contains(", ended "), "{}", shadow.body);
    assert!(
        shadow.body.contains("id=\"shadow-queued\">2<"),
        "{}",
        shadow.body
    );
    // Without the session: back to sign-in.
    let r = response(
        ureq::AgentBuilder::new()
            .redirects(0)
            .build()
            .get(&format!("{}/admin/products/jira/shadow", s.base))
            .call(),
    );
    assert_eq!(r.status(), 303);
}
