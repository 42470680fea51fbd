//! Issue G against the real binary: the gate policies of a product's settings. Bypass
//! rules (users, groups, networks, paths, credential kinds): a view a rule admits passes
//! the gate without a slot, is counted per rule in `/metrics`, and its daily count per
//! rule is journaled (it survives a restart); never for a deactivated account; a holder
//! keeps the slot; bad rules are refused with a clear problem and change nothing.

mod common;

use common::{assert_problem, temp_dir, Client, Opts, Resp, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const P: &str = "jira";

fn gate(c: &Client, user: &str, uri: &str, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("X-Slotpool-User", user), ("X-Original-URI", uri)];
    headers.extend_from_slice(extra);
    c.call("GET", &format!("/gate/{P}"), &headers, None)
}

fn settings_with_rules() -> Value {
    json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1, "sweep_interval_s": 1,
    "bypass": [
        {"name": "robots", "users": ["ci-bot"]},
        {"name": "service-group", "groups": ["svc"]},
        {"name": "rest", "paths": ["/rest/", "/status"]},
        {"name": "office", "cidrs": ["10.0.0.0/8"]},
        {"name": "tokens", "token_kinds": ["bearer"]},
        {"name": "never-used", "users": ["nobody"], "cidrs": ["192.0.2.0/24"]}
    ]})
}

/// The value of one sample line of `/metrics`, 0 when absent.
fn metric(c: &Client, key: &str) -> f64 {
    let text = c.call("GET", "/metrics", &[], None).body;
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn bypassed(c: &Client, rule: &str) -> f64 {
    metric(
        c,
        &format!("slotpool_gate_bypassed_total{{product=\"{P}\",rule=\"{rule}\"}}"),
    )
}

fn assert_bypassed(r: &Resp, rule: &str) {
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("x-slotpool-state"), Some("bypassed"), "{r:?}");
    assert_eq!(r.header("x-slotpool-bypass"), Some(rule), "{r:?}");
}

fn assert_refused(r: &Resp) {
    assert_eq!(r.status, 401, "{r:?}");
    assert_ne!(r.header("x-slotpool-state"), Some("bypassed"), "{r:?}");
}

/// Polls `GET /admin/v1/products/{P}/bypass` until `done` holds of it (sweeps record
/// the counts once a second here).
fn wait_for_counts(c: &Client, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = c.admin("GET", &format!("/admin/v1/products/{P}/bypass"), None);
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json();
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "counts never recorded: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count_of(days: &Value, rule: &str) -> u64 {
    days.as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["rule"] == rule)
        .map(|d| d["count"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn bypass_rules_let_views_through_without_a_slot_counted_and_journaled() {
    let dir = temp_dir();
    let opts = Opts::new(&dir.path().join("data"), dir.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    let r = c.put_product(P, settings_with_rules());
    assert_eq!(r.status, 201);
    assert_eq!(c.product(P)["bypass"][0]["name"], "robots");
    for u in ["alice", "bob", "ci-bot"] {
        c.enrol(P, u);
    }
    // Every rule's series exists from the start, at 0.
    let text = c.call("GET", "/metrics", &[], None).body;
    assert!(
        text.contains("slotpool_gate_bypassed_total{product=\"jira\",rule=\"never-used\"} 0"),
        "{text}"
    );

    // The robot passes by name and takes no slot: the one slot stays free for alice.
    assert_bypassed(&gate(&c, "ci-bot", "/browse/X-1", &[]), "robots");
    assert_bypassed(&gate(&c, "CI-Bot", "/browse/X-1", &[]), "robots");
    assert!(c.holders(P).is_empty());
    let r = gate(&c, "alice", "/", &[]);
    assert_eq!(
        (r.status, r.header("x-slotpool-state")),
        (204, Some("granted"))
    );
    assert_eq!(c.holders(P), vec!["alice".to_string()]);

    // bob, with the pool full, is refused on a page...
    assert_refused(&gate(&c, "bob", "/secure/Dashboard.jspa", &[]));
    // ...but passes on REST paths, from the office network, or with a bearer token.
    assert_bypassed(&gate(&c, "bob", "/rest/api/2/myself?x=1", &[]), "rest");
    assert_bypassed(&gate(&c, "bob", "/status", &[]), "rest");
    assert_bypassed(
        &gate(&c, "bob", "/", &[("X-Real-IP", "10.20.30.40")]),
        "office",
    );
    assert_bypassed(
        &gate(
            &c,
            "bob",
            "/",
            &[("X-Forwarded-For", "203.0.113.9, 10.1.1.1")],
        ),
        "office",
    );
    assert_bypassed(
        &gate(&c, "bob", "/", &[("Authorization", "Bearer abc.def")]),
        "tokens",
    );
    assert_bypassed(
        &gate(&c, "bob", "/", &[("X-Slotpool-Token-Kind", "Bearer")]),
        "tokens",
    );
    // A path that could mean another page to the product never matches.
    assert_refused(&gate(&c, "bob", "/rest/../secure/Dashboard.jspa", &[]));
    assert_refused(&gate(&c, "bob", "/rest/%2e%2e/secure/Dashboard.jspa", &[]));
    assert_refused(&gate(&c, "bob", "/", &[("X-Real-IP", "192.0.2.1")]));
    assert_refused(&gate(
        &c,
        "bob",
        "/",
        &[("Authorization", "Basic Ym9iOng=")],
    ));
    assert_eq!(
        c.holders(P),
        vec!["alice".to_string()],
        "nobody took a slot"
    );
    assert!(c.queue(P).is_empty(), "nobody was queued");

    // A holder's REST call stays a holder's view: the slot is kept.
    let r = gate(&c, "alice", "/rest/api/2/myself", &[]);
    assert_eq!(
        (r.status, r.header("x-slotpool-state")),
        (204, Some("granted"))
    );
    assert_eq!(c.holders(P), vec!["alice".to_string()]);

    // A user the product does not know passes by directory group.
    let scim = common::Scim::new(&server);
    let id = scim.user("integration");
    scim.group("svc", &[&id]);
    assert_bypassed(&gate(&c, "integration", "/", &[]), "service-group");

    // No rule lets a deactivated account through, whatever it matches.
    for user in ["ci-bot", "integration"] {
        let r = c.admin(
            "PUT",
            &format!("/admin/v1/users/{user}"),
            Some(&json!({"active": false})),
        );
        assert_eq!(r.status, 200, "{r:?}");
        assert_refused(&gate(
            &c,
            user,
            "/rest/api/2/myself",
            &[("X-Real-IP", "10.0.0.1")],
        ));
    }

    // Counted per rule at once...
    assert_eq!(bypassed(&c, "robots"), 2.0);
    assert_eq!(bypassed(&c, "rest"), 2.0);
    assert_eq!(bypassed(&c, "office"), 2.0);
    assert_eq!(bypassed(&c, "tokens"), 2.0);
    assert_eq!(bypassed(&c, "service-group"), 1.0);
    assert_eq!(bypassed(&c, "never-used"), 0.0);
    // ...and journaled per day and rule by the sweeps, with whose views they were.
    let days = wait_for_counts(&c, |v| {
        count_of(v, "robots") == 2
            && count_of(v, "rest") == 2
            && count_of(v, "office") == 2
            && count_of(v, "tokens") == 2
            && count_of(v, "service-group") == 1
    });
    let robots = days
        .as_array()
        .and_then(|a| a.iter().find(|d| d["rule"] == "robots"))
        .expect("a robots day");
    assert_eq!(robots["users"], json!({"ci-bot": 1, "CI-Bot": 1}));
    assert_eq!(robots["day"].as_str().map(str::len), Some(10), "{robots}");
    assert_eq!(count_of(&days, "never-used"), 0);

    // The counts are facts of the journal: a restart keeps them.
    server.stop();
    let mut server = Server::start(&opts);
    let c = server.client();
    let days = c
        .admin("GET", &format!("/admin/v1/products/{P}/bypass"), None)
        .json();
    assert_eq!(count_of(&days, "robots"), 2, "{days}");
    assert_eq!(count_of(&days, "rest"), 2, "{days}");
    server.stop();
    common::assert_verify_ok(&dir.path().join("data"));
    // And offline audit answers it from the journal alone.
    let data = dir.path().join("data");
    let out = common::slotpool_command()
        .args(["audit", "--data-dir"])
        .arg(&data)
        .args(["--product", P, "--format", "json"])
        .output()
        .expect("run slotpool audit");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("audit JSON");
    assert_eq!(count_of(&report["bypassed"], "robots"), 2, "{report}");
    assert_eq!(count_of(&report["bypassed"], "tokens"), 2, "{report}");
}

#[test]
fn bad_bypass_rules_are_refused_with_a_clear_problem_and_change_nothing() {
    let dir = temp_dir();
    let server = Server::start(&Opts::new(&dir.path().join("data"), dir.path()));
    let c = server.client();
    c.put_product(P, settings_with_rules());
    let before = c.product(P);
    let base = || json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([{"name": "x", "cidrs": ["10.0.0.0/33"]}]),
            "bypass[0].cidrs",
        ),
        (
            json!([{"name": "x", "cidrs": ["10.0.0.1/8"]}]),
            "bypass[0].cidrs",
        ),
        (
            json!([{"name": "x", "paths": ["rest/"]}]),
            "bypass[0].paths",
        ),
        (
            json!([{"name": "x", "paths": ["/a/../b"]}]),
            "bypass[0].paths",
        ),
        (json!([{"name": "x"}]), "no condition"),
        (
            json!([{"name": "bad name", "users": ["a"]}]),
            "bypass[0].name",
        ),
        (
            json!([{"name": "x", "users": ["a"]}, {"name": "x", "users": ["b"]}]),
            "used twice",
        ),
        (
            json!([{"name": "x", "token_kinds": ["two words"]}]),
            "token_kinds",
        ),
        (
            json!([{"name": "x", "hosts": ["a.example"]}]),
            "unknown field",
        ),
        (json!([{"users": ["a"]}]), "name"),
    ];
    for (rules, part) in cases {
        let mut body = base();
        body["bypass"] = rules.clone();
        let r = c.admin("PUT", &format!("/admin/v1/products/{P}"), Some(&body));
        let problem = assert_problem(&r, 422, "invalid_settings");
        let detail = problem["detail"].as_str().unwrap_or("");
        assert!(detail.contains(part), "{rules}: {part} not in {detail}");
        assert_eq!(c.product(P), before, "{rules} changed the product");
    }
}

/// Opens the notification stream of `user` and forwards each event (name, data) to a
/// channel ([`stream_events`]).
fn listen(base: &str, user: &str) -> std::sync::mpsc::Receiver<(String, Value)> {
    let resp = ureq::get(&format!("{base}/api/v1/products/{P}/notifications"))
        .set("X-Slotpool-User", user)
        .call()
        .expect("stream opens");
    common::stream_events(resp)
}

/// The first event named `name` within 10 s.
fn wait_event(rx: &std::sync::mpsc::Receiver<(String, Value)>, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (event, data) = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no {name} event: {e}"));
        if event == name {
            return data;
        }
    }
}

fn with_mode(mode: &str) -> Value {
    json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1, "mode": mode,
        "queue_page": {"queue_all_message": "Upgrade to 10.3 until **10:00**"},
        "bypass": [{"name": "ops", "users": ["admin-ann"]}]})
}

#[test]
fn modes_passthrough_records_the_shadow_run_and_queue_all_holds_everyone_back() {
    let dir = temp_dir();
    let server = Server::start(&Opts::new(&dir.path().join("data"), dir.path()));
    let c = server.client();
    c.put_product(P, with_mode("passthrough"));
    for u in ["alice", "bob", "carol"] {
        c.enrol(P, u);
    }
    // Passthrough: nobody waits, and the pool records what enforcing would have done.
    let r = gate(&c, "alice", "/", &[]);
    assert_eq!(
        (r.status, r.header("x-slotpool-state")),
        (204, Some("granted"))
    );
    let r = gate(&c, "bob", "/", &[]);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("x-slotpool-state"), Some("passthrough"));
    assert_eq!(r.header("x-slotpool-would-be"), Some("queued"));
    let product = c.product(P);
    assert_eq!(product["mode"], "passthrough");
    assert_eq!(product["would_be_queued"], 1);
    assert_eq!(c.queue(P), vec!["bob".to_string()], "the shadow queue");
    assert_refused(&gate(&c, "mallory", "/", &[]));

    // queue_all: switching is immediate, and a waiting user's stream hears it.
    let bob = listen(&server.base, "bob");
    wait_event(&bob, "queue");
    // The shadow run is silent: alice's would-be revocation is not told to her stream.
    let alice = listen(&server.base, "alice");
    wait_event(&alice, "granted");
    assert_eq!(
        c.admin(
            "DELETE",
            &format!("/admin/v1/products/{P}/holders/alice"),
            None
        )
        .status,
        204
    );
    // The freed slot went to bob (the shadow queue's head); alice asks again and waits.
    assert_eq!(c.holders(P), vec!["bob".to_string()]);
    assert_eq!(c.request(P, "alice").state(), "queued");
    let r = c.admin(
        "PUT",
        &format!("/admin/v1/products/{P}"),
        Some(&with_mode("queue_all")),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(wait_event(&bob, "mode")["reason"], "queue_all");
    assert!(c.product(P).get("would_be_queued").is_none());
    let (first, data) = alice
        .recv_timeout(Duration::from_secs(10))
        .expect("alice hears the switch");
    assert_eq!(
        (first.as_str(), data["reason"].clone()),
        ("mode", json!("queue_all"))
    );
    // The holder keeps the slot; once bob releases it nobody gets it; everyone queues.
    assert_eq!(gate(&c, "bob", "/", &[]).status, 204);
    assert_eq!(c.release(P, "bob").status, 204);
    assert!(c.holders(P).is_empty());
    assert_refused(&gate(&c, "carol", "/", &[]));
    assert_eq!(c.request(P, "carol").state(), "queued");
    assert!(c.holders(P).is_empty());
    // Bypass rules still pass.
    assert_bypassed(&gate(&c, "admin-ann", "/", &[]), "ops");
    // The queue page shows the administrator's maintenance message.
    let page = c.call(
        "GET",
        &format!("/queue/{P}"),
        &[("X-Slotpool-User", "carol")],
        None,
    );
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<strong>10:00</strong>"),
        "{}",
        page.body
    );

    // Leaving the mode serves the queue in order: alice first.
    let r = c.admin(
        "PUT",
        &format!("/admin/v1/products/{P}"),
        Some(&with_mode("enforce")),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.holders(P), vec!["alice".to_string()]);
    assert_eq!(c.queue(P), vec!["carol".to_string()]);
    assert_eq!(wait_event(&bob, "mode")["reason"], "enforce");
    let page = c.call(
        "GET",
        &format!("/queue/{P}"),
        &[("X-Slotpool-User", "carol")],
        None,
    );
    assert!(
        !page.body.contains("<strong>10:00</strong>"),
        "{}",
        page.body
    );

    // An unknown mode is refused and changes nothing.
    let r = c.admin(
        "PUT",
        &format!("/admin/v1/products/{P}"),
        Some(&with_mode("open_all")),
    );
    let problem = assert_problem(&r, 422, "invalid_settings");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("open_all"),
        "{problem}"
    );
    assert!(c.product(P).get("mode").is_none(), "still enforce");
}

fn basic(user: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:pw"));
    format!("Basic {token}")
}

#[test]
fn json_clients_wait_with_429_and_retry_after_through_the_shipped_nginx() {
    let dir = temp_dir();
    let server = Server::start(&Opts::new(&dir.path().join("data"), dir.path()));
    let c = server.client();
    c.put_product(
        P,
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1}),
    );
    for u in ["alice", "bob", "carol"] {
        c.enrol(P, u);
    }
    // Straight at slotpool: the queue page answers JSON to a client that asks for it.
    assert_eq!(c.request(P, "alice").state(), "granted");
    let json_queue = |user: &str, accept: &str| {
        c.call(
            "GET",
            &format!("/queue/{P}"),
            &[("X-Slotpool-User", user), ("Accept", accept)],
            None,
        )
    };
    let r = json_queue("bob", "application/json");
    assert_eq!(r.status, 429, "{r:?}");
    assert!(
        r.content_type.starts_with("application/problem+json"),
        "{r:?}"
    );
    let body = r.json();
    assert_eq!(body["reason"], "waiting");
    assert_eq!(body["state"], "queued");
    assert_eq!(body["position"], 1);
    assert!(body["estimated_wait_s"].as_u64().is_some(), "{body}");
    assert_eq!(
        r.header("retry-after").map(str::to_string),
        body["retry_after_s"].as_u64().map(|s| s.to_string())
    );
    assert_eq!(body["links"]["slot"], "api/v1/products/jira/slot");
    assert_eq!(
        c.queue(P),
        vec!["bob".to_string()],
        "the JSON answer joined the queue"
    );
    // The holder gets 200 with its state; a browser still gets the page; an unknown user
    // the slot API's refusal (an unknown user: 403 unknown_user).
    let r = json_queue("alice", "application/json");
    assert_eq!(
        (r.status, r.json()["state"].clone()),
        (200, json!("granted"))
    );
    let r = json_queue(
        "bob",
        "text/html,application/xhtml+xml,application/json;q=0.9",
    );
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/html"), "{r:?}");
    assert_problem(
        &json_queue("mallory", "application/json"),
        403,
        "unknown_user",
    );
    // Traefik passes the gate's refusal as it is: with the queue URL header, a JSON
    // client's refusal is the JSON answer itself.
    let r = gate(
        &c,
        "carol",
        "/rest/api/2/issue/X-1",
        &[
            ("X-Slotpool-Queue-Url", "/slotpool/queue/jira"),
            ("Accept", "application/json"),
        ],
    );
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.json()["position"], 2);

    // Through the shipped nginx configuration: a REST client's refused call becomes the
    // JSON answer; a browser's a redirect to the queue page.
    let product = common::browser::Product::start(P);
    let nginx = common::browser::Nginx::start(
        dir.path(),
        server.port,
        product.port,
        &[("alice", "pw"), ("bob", "pw"), ("carol", "pw")],
    );
    let via = Client::new(&format!("http://127.0.0.1:{}", nginx.port), "");
    let call = |user: &str, accept: &str| {
        via.call(
            "GET",
            "/rest/api/2/issue/X-1",
            &[("Authorization", &basic(user)), ("Accept", accept)],
            None,
        )
    };
    let r = call("bob", "application/json");
    assert_eq!(r.status, 429, "{r:?}\n{}", nginx.error_log());
    assert_eq!(r.json()["state"], "queued");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    let r = call("bob", "text/html");
    assert_eq!(r.status, 302, "{r:?}");
    assert!(
        r.header("location")
            .is_some_and(|l| l.contains("/slotpool/queue/jira?return_to=")),
        "{r:?}"
    );
    // Once alice leaves, bob (the queue's head) is let through on his next try.
    assert_eq!(c.release(P, "alice").status, 204);
    let r = call("bob", "application/json");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("Product page"), "{r:?}");
}

#[test]
fn api_prefixes_send_a_refused_rest_call_to_the_json_answer_whatever_its_accept() {
    let dir = temp_dir();
    let server = Server::start(&Opts::new(&dir.path().join("data"), dir.path()));
    let c = server.client();
    let settings = json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1,
                          "api_prefixes": ["/rest/", "/plugins/servlet/api/"]});
    assert_eq!(c.put_product(P, settings.clone()).status, 201);
    assert_eq!(
        c.product(P)["api_prefixes"],
        json!(["/rest/", "/plugins/servlet/api/"])
    );
    for u in ["alice", "bob", "carol"] {
        c.enrol(P, u);
    }
    assert_eq!(c.request(P, "alice").state(), "granted");

    // Straight at the gate: a refused view under a prefix says so to the proxy, with any
    // Accept; other paths, and a path that could mean another page, do not.
    let any = [("Accept", "*/*")];
    let r = gate(&c, "bob", "/rest/api/2/search?jql=x", &any);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.header("x-slotpool-answer"), Some("json"), "{r:?}");
    let r = gate(&c, "bob", "/plugins/servlet/api/items", &[]);
    assert_eq!(r.header("x-slotpool-answer"), Some("json"), "{r:?}");
    for browser_path in [
        "/browse/ABC-1",
        "/rest/../secure/Dashboard.jspa",
        "/restricted",
    ] {
        let r = gate(&c, "bob", browser_path, &any);
        assert_eq!(r.status, 401, "{browser_path}: {r:?}");
        assert_eq!(r.header("x-slotpool-answer"), None, "{browser_path}: {r:?}");
    }
    // Accept still decides on its own; a holder passes under a prefix as anywhere.
    let r = gate(
        &c,
        "bob",
        "/browse/ABC-1",
        &[("Accept", "application/json")],
    );
    assert_eq!(r.header("x-slotpool-answer"), Some("json"), "{r:?}");
    assert_eq!(gate(&c, "alice", "/rest/api/2/myself", &any).status, 204);
    assert!(c.queue(P).is_empty(), "the gate queues nobody");

    // Traefik (the queue URL header): the gate answers the REST call's JSON itself.
    let traefik = [
        ("X-Slotpool-Queue-Url", "/slotpool/queue/jira"),
        ("Accept", "*/*"),
    ];
    let r = c.call(
        "GET",
        &format!("/gate/{P}"),
        &[
            ("X-Slotpool-User", "carol"),
            ("X-Forwarded-Uri", "/rest/api/2/issue/ABC-1"),
            traefik[0],
            traefik[1],
        ],
        None,
    );
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.json()["state"], "queued");
    assert_eq!(r.json()["position"], 1);
    assert!(r.header("retry-after").is_some(), "{r:?}");
    let r = c.call(
        "GET",
        &format!("/gate/{P}"),
        &[
            ("X-Slotpool-User", "bob"),
            ("X-Forwarded-Uri", "/browse/ABC-1"),
            traefik[0],
            traefik[1],
        ],
        None,
    );
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.content_type.starts_with("text/html"), "{r:?}");

    // Through the shipped nginx: a script's `Accept: */*` call under /rest/ gets 429 and
    // its place; the same user's page view gets the redirect to the queue page.
    let product = common::browser::Product::start(P);
    let nginx = common::browser::Nginx::start(
        dir.path(),
        server.port,
        product.port,
        &[("alice", "pw"), ("bob", "pw"), ("carol", "pw")],
    );
    let via = Client::new(&format!("http://127.0.0.1:{}", nginx.port), "");
    let call = |user: &str, path: &str| {
        via.call(
            "GET",
            path,
            &[("Authorization", &basic(user)), ("Accept", "*/*")],
            None,
        )
    };
    let r = call("bob", "/rest/api/2/search?jql=project%3DABC");
    assert_eq!(r.status, 429, "{r:?}\n{}", nginx.error_log());
    assert_eq!(r.json()["state"], "queued");
    assert_eq!(r.json()["position"], 2, "behind carol");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    let r = call("bob", "/browse/ABC-1");
    assert_eq!(r.status, 302, "{r:?}");
    assert!(
        r.header("location")
            .is_some_and(|l| l.contains("/slotpool/queue/jira?return_to=%2Fbrowse%2FABC-1")),
        "{r:?}"
    );

    // A bad prefix is refused with a clear problem and changes nothing.
    let mut bad = settings.clone();
    bad["api_prefixes"] = json!(["rest/", "/rest/../x"]);
    let problem = assert_problem(
        &c.admin("PUT", &format!("/admin/v1/products/{P}"), Some(&bad)),
        422,
        "invalid_settings",
    );
    let detail = problem["detail"].as_str().unwrap_or("");
    assert!(detail.contains("api_prefixes[0]: 'rest/'"), "{problem}");
    assert!(detail.contains("api_prefixes[1]"), "{problem}");
    assert_eq!(
        c.product(P)["api_prefixes"],
        json!(["/rest/", "/plugins/servlet/api/"])
    );
    // Without the setting, Accept alone decides again (the JSON shows no empty list).
    let mut off = settings;
    off.as_object_mut().map(|o| o.remove("api_prefixes"));
    assert_eq!(c.put_product(P, off).status, 200);
    assert!(c.product(P).get("api_prefixes").is_none());
    let r = call("bob", "/rest/api/2/search");
    assert_eq!(r.status, 302, "{r:?}");
}
