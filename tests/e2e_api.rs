//! End to end through the public HTTP contract: the README walkthrough and a first start
//! with no configuration at all (the basic contract's checks are in `e2e_contract.rs`).

mod common;

use common::*;
use serde_json::json;

/// The README walkthrough: create, enrol, request, queue, release, revoke, resize,
/// deactivate, refusals, fixed users, tier checks, and GET-then-PUT of settings.
#[test]
fn readme_walkthrough() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    let p = "/admin/v1/products/demo";

    // Create the product.
    let r = c.admin(
        "PUT",
        p,
        Some(&json!({"kind": "jira", "licence_tier": 10, "shared_slots": 2})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let created = r.json();
    assert_eq!(created["shared_slots"], 2);
    assert_eq!(created["licence_tier"], 10);
    assert_eq!(created["kind"], "jira");
    assert_eq!(created["inactivity_s"], 1800, "default inactivity_s");
    for u in ["alice", "bob", "carol"] {
        c.enrol("demo", u);
    }
    assert_eq!(c.product("demo")["members"], 3);

    // Two slots for alice and bob; carol waits.
    for u in ["alice", "bob"] {
        let r = c.request("demo", u);
        assert_eq!(
            (r.status, r.state().as_str()),
            (200, "granted"),
            "{u}: {r:?}"
        );
        assert!(r.json()["revoke_at"].is_string(), "{r:?}");
    }
    let r = c.request("demo", "carol");
    assert_eq!(r.status, 200, "{r:?}");
    let j = r.json();
    assert_eq!(j["state"], "queued", "{r:?}");
    assert_eq!(j["position"], 1, "{r:?}");
    assert!(j["estimated_wait_s"].is_u64(), "{r:?}");
    let retry = j["retry_after_s"].as_u64().expect("retry_after_s");
    assert!(retry >= 1, "{r:?}");
    assert_eq!(
        r.header("retry-after").map(str::trim),
        Some(retry.to_string().as_str()),
        "Retry-After header matches retry_after_s: {r:?}"
    );
    // Asking again keeps the same place.
    let r = c.request("demo", "carol");
    assert_eq!(
        (r.state().as_str(), &r.json()["position"]),
        ("queued", &json!(1))
    );

    // The administrator's view.
    let holders = c.holders_json("demo");
    assert_eq!(c.holders("demo"), ["alice", "bob"], "{holders}");
    for h in holders.as_array().unwrap() {
        assert!(
            h["since"].is_string() && h["last_activity"].is_string(),
            "{h}"
        );
    }
    let queue = c.queue_json("demo");
    assert_eq!(queue.as_array().unwrap().len(), 1, "{queue}");
    assert_eq!(queue[0]["user"], "carol");
    assert_eq!(queue[0]["position"], 1);
    assert!(queue[0]["since"].is_string());
    let v = check_invariants(&c, "demo").product;
    assert_eq!((&v["holders"], &v["queued"]), (&json!(2), &json!(1)));

    // bob logs out: carol, at the head of the queue, gets the slot at once.
    let r = c.release("demo", "bob");
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(c.slot("demo", "carol").state(), "granted");
    assert_eq!(c.slot("demo", "bob").state(), "none");
    assert_eq!(c.holders("demo"), ["alice", "carol"]);
    assert!(c.queue("demo").is_empty());
    // Releasing again changes nothing.
    assert_eq!(c.release("demo", "bob").status, 204);
    assert_eq!(c.holders("demo"), ["alice", "carol"]);

    // Activity by a holder: 204.
    let r = c.user("POST", "/api/v1/products/demo/activity", "alice");
    assert_eq!(r.status, 204, "{r:?}");

    // Admin revoke.
    let r = c.admin("DELETE", &format!("{p}/holders/alice"), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(c.slot("demo", "alice").state(), "none");
    assert_eq!(c.holders("demo"), ["carol"]);

    // Resize down: the longest-inactive holder loses the slot. alice takes the free slot
    // again; neither has been active since, so carol (granted earlier) is the longest
    // inactive, unless both got their slots within the same millisecond.
    assert_eq!(c.request("demo", "alice").state(), "granted");
    let holders = c.holders_json("demo");
    let last_activity = |user: &str| -> String {
        holders
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["user"] == user)
            .map(|h| h["last_activity"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{user} is not a holder: {holders}"))
    };
    // RFC 3339 with milliseconds in UTC: text order is time order.
    let (carol_at, alice_at) = (last_activity("carol"), last_activity("alice"));
    assert!(carol_at <= alice_at, "{holders}");
    let r = c.admin(
        "PUT",
        p,
        Some(&json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["shared_slots"], 1);
    assert_eq!(r.json()["holders"], 1, "{r:?}");
    let kept = c.holders("demo");
    assert_eq!(kept.len(), 1);
    let (keeper, victim) = if kept[0] == "alice" {
        ("alice", "carol")
    } else {
        ("carol", "alice")
    };
    if carol_at < alice_at {
        assert_eq!(
            victim, "carol",
            "the longest-inactive holder is revoked: {holders}"
        );
    }
    assert_eq!(c.slot("demo", victim).state(), "none");
    assert_eq!(c.slot("demo", keeper).state(), "granted");
    check_invariants(&c, "demo");

    // Deactivating a holder: the slot is lost and the queue head gets it.
    assert_eq!(c.request("demo", "bob").state(), "queued");
    let r = c.admin(
        "PUT",
        &format!("/admin/v1/users/{keeper}"),
        Some(&json!({"active": false})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["active"], false, "{r:?}");
    assert_eq!(c.slot("demo", keeper).state(), "none");
    assert_eq!(c.slot("demo", "bob").state(), "granted");
    assert_eq!(c.holders("demo"), ["bob"]);
    assert!(c.queue("demo").is_empty());
    let r = c.admin("GET", &format!("/admin/v1/users/{keeper}"), None);
    assert_eq!((r.status, &r.json()["active"]), (200, &json!(false)));

    // Refusals.
    assert_problem(&c.request("demo", keeper), 403, "deactivated");
    assert_problem(&c.request("demo", "mallory"), 403, "unknown_user");
    let r = c.admin(
        "PUT",
        "/admin/v1/users/dave",
        Some(&json!({"active": true})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_problem(&c.request("demo", "dave"), 403, "not_member");
    check_invariants(&c, "demo");
    assert_eq!(c.holders("demo"), ["bob"]);

    // A fixed user needs no slot.
    let r = c.admin("PUT", &format!("{p}/fixed/erin"), None);
    assert_eq!(r.status, 204, "{r:?}");
    let r = c.request("demo", "erin");
    assert_eq!((r.status, r.state().as_str()), (200, "fixed"), "{r:?}");
    assert_eq!(c.slot("demo", "erin").state(), "fixed");
    assert!(!c.holders("demo").contains(&"erin".to_string()));
    assert_eq!(c.product("demo")["fixed"], 1);

    // Fill the tier with shared slots: fixed 1 + shared 9 = tier 10.
    let r = c.admin(
        "PUT",
        p,
        Some(&json!({"kind": "jira", "licence_tier": 10, "shared_slots": 9})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let before = c.product("demo");
    assert_problem(
        &c.admin("PUT", &format!("{p}/fixed/frank"), None),
        422,
        "tier_exceeded",
    );
    assert_eq!(c.slot("demo", "frank").state(), "none");
    assert_problem(
        &c.admin(
            "PUT",
            p,
            Some(&json!({"kind": "jira", "licence_tier": 10, "shared_slots": 10})),
        ),
        422,
        "invalid_settings",
    );
    assert_eq!(c.product("demo"), before, "refusals changed nothing");

    // GET, then PUT back exactly what was read: read-only fields are ignored.
    let got = c.product("demo");
    assert_eq!(got["id"], "demo");
    let r = c.admin("PUT", p, Some(&got));
    assert_eq!(r.status, 200, "PUT back what GET returned: {r:?}");
    assert_eq!(c.product("demo"), got);
    // And the product list shows the same.
    let list = c.admin("GET", "/admin/v1/products", None).json();
    assert_eq!(list, json!([got]));
    check_invariants(&c, "demo");

    // The refused fixed licence (tier_exceeded) for frank, unknown until then, created no
    // user either: frank is still unknown.
    assert_problem(
        &c.admin("GET", "/admin/v1/users/frank", None),
        404,
        "unknown_user",
    );
    assert_problem(&c.request("demo", "frank"), 403, "unknown_user");
}

/// With no config, no token and no data dir: the token is generated into ./data, works,
/// is read back on restart; SIGTERM exits 0 and the journal verifies.
#[test]
fn first_start_without_config_generates_an_admin_token() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = temp_dir();
    let opts = Opts {
        data_dir: None,
        log_dir: tmp.path().to_path_buf(),
        cwd: Some(tmp.path().to_path_buf()),
        token: None,
        args: Vec::new(),
    };
    let mut server = Server::start(&opts);
    let stdout = server.stdout();
    assert!(
        stdout.contains("admin token generated and written to")
            && stdout.contains("data/admin_token"),
        "stdout should say where the token went:\n{}",
        server.logs()
    );
    let token_file = tmp.path().join("data/admin_token");
    let meta = std::fs::metadata(&token_file).expect("data/admin_token exists");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "admin_token file mode"
    );
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(token.len() >= 16, "token {token:?}");

    let c = Client::new(&server.base, &token);
    c.put_product(
        "demo",
        json!({"kind": "generic", "licence_tier": 3, "shared_slots": 2}),
    );
    c.enrol("demo", "alice");
    assert_eq!(c.request("demo", "alice").state(), "granted");
    let wrong = Client::new(&server.base, "not-the-generated-token");
    assert_problem(
        &wrong.admin("GET", "/admin/v1/products", None),
        401,
        "bad_token",
    );
    server.stop();
    assert_verify_ok(&tmp.path().join("data"));

    let mut again = Server::start(&opts);
    let stdout = again.stdout();
    assert!(
        stdout.contains("admin token read from") && stdout.contains("data/admin_token"),
        "stdout should say the token was read back:\n{}",
        again.logs()
    );
    assert!(!stdout.contains("generated and written"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim(),
        token,
        "the token file is kept"
    );
    let c = Client::new(&again.base, &token);
    assert_eq!(c.product("demo")["members"], 1);
    assert_eq!(c.slot("demo", "alice").state(), "granted");
    again.stop();
    let v = verify(&tmp.path().join("data"));
    assert_eq!(v.code, Some(0), "{v:#?}");
    assert!(v.stdout.contains("product/demo"), "{v:#?}");
}

/// Membership changes move the queue: removing a holder, giving a holder a fixed
/// licence, growing the pool, deactivating a queued user and reactivating a user. After
/// a clean restart everything reads back the same.
#[test]
fn membership_changes_move_the_queue_and_survive_a_restart() {
    let tmp = temp_dir();
    let opts = Opts::new(&tmp.path().join("data"), tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    let p = "/admin/v1/products/team";
    c.put_product(
        "team",
        json!({"kind": "bitbucket", "licence_tier": 6, "shared_slots": 2}),
    );
    let users = ["u1", "u2", "u3", "u4", "u5", "u6"];
    for u in users {
        c.enrol("team", u);
    }
    for u in users {
        c.request("team", u);
    }
    assert_eq!(c.holders("team"), ["u1", "u2"]);
    assert_eq!(c.queue("team"), ["u3", "u4", "u5", "u6"]);
    assert_eq!(c.slot("team", "u5").json()["position"], 3);

    // Removing a holder from the pool frees the slot for the queue head.
    assert_eq!(
        c.admin("DELETE", &format!("{p}/members/u1"), None).status,
        204
    );
    assert_eq!(c.holders("team"), ["u2", "u3"]);
    assert_eq!(c.slot("team", "u1").state(), "none");
    assert_problem(&c.request("team", "u1"), 403, "not_member");
    assert_eq!(c.slot("team", "u4").json()["position"], 1);

    // A holder who gets a fixed licence leaves the pool; the queue head moves up.
    assert_eq!(c.admin("PUT", &format!("{p}/fixed/u2"), None).status, 204);
    assert_eq!(c.slot("team", "u2").state(), "fixed");
    assert_eq!(c.holders("team"), ["u3", "u4"]);
    assert_eq!(c.queue("team"), ["u5", "u6"]);
    let v = c.product("team");
    assert_eq!((&v["fixed"], &v["members"]), (&json!(1), &json!(4)));
    // A fixed user cannot be enrolled.
    assert_problem(
        &c.admin("PUT", &format!("{p}/members/u2"), None),
        409,
        "fixed_user",
    );

    // Deactivating a queued user takes the queue place; the others move up.
    let r = c.admin("PUT", "/admin/v1/users/u5", Some(&json!({"active": false})));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.queue("team"), ["u6"]);
    assert_eq!(c.slot("team", "u6").json()["position"], 1);
    assert_eq!(c.slot("team", "u5").state(), "none");

    // Growing the pool grants the queue at once.
    let r = c.admin(
        "PUT",
        p,
        Some(&json!({"kind": "bitbucket", "licence_tier": 6, "shared_slots": 4})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(c.holders("team"), ["u3", "u4", "u6"]);
    assert!(c.queue("team").is_empty());
    check_invariants(&c, "team");

    // Reactivated, u5 may ask again and gets the free slot.
    assert_problem(&c.request("team", "u5"), 403, "deactivated");
    let r = c.admin("PUT", "/admin/v1/users/u5", Some(&json!({"active": true})));
    assert_eq!((r.status, &r.json()["active"]), (200, &json!(true)));
    assert_eq!(c.request("team", "u5").state(), "granted");

    // Taking the fixed licence away: u2 is in no pool now.
    assert_eq!(
        c.admin("DELETE", &format!("{p}/fixed/u2"), None).status,
        204
    );
    assert_problem(&c.request("team", "u2"), 403, "not_member");
    assert_eq!(c.product("team")["fixed"], 0);

    // Deactivating an unenrolled user, then enrolling them: a member who gets no slot.
    let r = c.admin(
        "PUT",
        "/admin/v1/users/zed",
        Some(&json!({"active": false})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    c.enrol("team", "zed");
    assert_problem(&c.request("team", "zed"), 403, "deactivated");
    assert!(!c.holders("team").contains(&"zed".to_string()));

    let slots = |c: &Client| -> Vec<String> {
        users
            .iter()
            .chain(["zed"].iter())
            .map(|u| c.slot("team", u).state())
            .collect()
    };
    let before = (
        c.product("team"),
        c.holders_json("team"),
        c.queue_json("team"),
        c.admin("GET", "/admin/v1/users", None).json(),
        slots(&c),
    );
    server.stop();
    assert_verify_ok(&tmp.path().join("data"));
    let server = Server::start(&opts);
    let c = server.client();
    let after = (
        c.product("team"),
        c.holders_json("team"),
        c.queue_json("team"),
        c.admin("GET", "/admin/v1/users", None).json(),
        slots(&c),
    );
    assert_eq!(after, before, "state after a clean restart");
    // Updating a recovered product is an update (200), not a creation.
    let r = c.admin(
        "PUT",
        p,
        Some(&json!({"kind": "bitbucket", "licence_tier": 6, "shared_slots": 4})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    check_invariants(&c, "team");
}

/// Rule 6: shrinking the pool revokes the longest-inactive holder. Activity counts, even
/// when the service coalesces it instead of journaling each one.
#[test]
fn resize_revokes_the_longest_inactive_holder_counting_recent_activity() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    let p = "/admin/v1/products/demo";
    c.put_product(
        "demo",
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 2}),
    );
    c.enrol("demo", "early");
    c.enrol("demo", "late");
    assert_eq!(c.request("demo", "early").state(), "granted");
    // Granted strictly later than "early" (timestamps have millisecond resolution).
    let since = |user: &str| -> String {
        let h = c.holders_json("demo");
        h.as_array()
            .unwrap()
            .iter()
            .find(|h| h["user"] == user)
            .map(|h| h["since"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{user} is not a holder: {h}"))
    };
    let early_since = since("early");
    loop {
        assert_eq!(c.request("demo", "late").state(), "granted");
        if since("late") > early_since {
            break;
        }
        assert_eq!(c.release("demo", "late").status, 204);
    }
    // Now "early" uses the product, in a later millisecond than "late" got its slot
    // (a tie would be broken by name, and "early" would go): "late" has been inactive
    // longer.
    let late_since = since("late");
    let last_activity = |user: &str| -> String {
        let h = c.holders_json("demo");
        h.as_array()
            .unwrap()
            .iter()
            .find(|h| h["user"] == user)
            .map(|h| h["last_activity"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{user} is not a holder: {h}"))
    };
    loop {
        let r = c.user("POST", "/api/v1/products/demo/activity", "early");
        assert_eq!(r.status, 204, "{r:?}");
        if last_activity("early") > late_since {
            break;
        }
    }
    let r = c.admin(
        "PUT",
        p,
        Some(&json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        c.holders("demo"),
        ["early"],
        "the holder active a moment ago kept the slot; the longest-inactive one lost it"
    );
    assert_eq!(c.slot("demo", "late").state(), "none");
}
