//! Bad input of every kind gets a clear 4xx `application/problem+json` with the right
//! `reason`, never a 5xx, and changes nothing.

mod common;

use common::*;
use serde_json::{json, Value};

/// Everything the admin API shows, to compare before and after the bad requests.
fn everything(c: &Client) -> Value {
    let get = |path: &str| {
        let r = c.admin("GET", path, None);
        assert_eq!(r.status, 200, "GET {path}: {r:?}");
        r.json()
    };
    let mut slots = serde_json::Map::new();
    for u in ["alice", "bob", "carol", "erin", "ghost"] {
        slots.insert(u.to_string(), c.slot("demo", u).json());
    }
    json!({
        "products": get("/admin/v1/products"),
        "holders": get("/admin/v1/products/demo/holders"),
        "queue": get("/admin/v1/products/demo/queue"),
        "users": get("/admin/v1/users"),
        "slots": slots,
    })
}

/// Asserts a 4xx problem with `status` and `reason`, and never a 5xx.
#[track_caller]
fn refused(r: &Resp, status: u16, reason: &str) {
    assert!(r.status < 500, "a 5xx is a bug: {r:?}");
    assert_problem(r, status, reason);
}

#[test]
fn bad_input_is_a_clear_4xx_and_changes_nothing() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    c.put_product(
        "demo",
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 1}),
    );
    for u in ["alice", "bob", "carol"] {
        c.enrol("demo", u);
    }
    let r = c.admin("PUT", "/admin/v1/products/demo/fixed/erin", None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(c.request("demo", "alice").state(), "granted");
    assert_eq!(c.request("demo", "bob").state(), "queued");
    let before = everything(&c);

    let p = "/admin/v1/products/demo";
    let settings = |extra: Value| {
        let mut s = json!({"kind": "jira", "licence_tier": 5, "shared_slots": 2});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s.to_string().into_bytes()
    };

    // Bodies of settings.
    refused(&c.admin_raw("PUT", p, b"{oops"), 400, "bad_json");
    refused(
        &c.admin_raw("PUT", p, b"{\"kind\": \"jira\","),
        400,
        "bad_json",
    );
    refused(&c.admin_raw("PUT", p, b""), 400, "bad_json");
    refused(&c.admin_raw("PUT", p, b"\xff\xfe\x00"), 400, "bad_json");
    for wrong in [
        json!({"licence_tier": "many"}),
        json!({"shared_slots": -1}),
        json!({"shared_slots": 1.5}),
        json!({"licence_tier": 4294967296u64}),
        json!({"kind": "sharepoint"}),
        json!({"reclaim_on_request": "yes"}),
        json!({"inactivity_s": null}),
        json!({"shared_slots": 5, "licence_tier": 0}),
        json!({"inactivity_s": 60, "warning_lead_s": 60}),
        json!({"shared_slots": 5}), // erin's fixed licence + 5 > tier 5
    ] {
        let r = c.admin_raw("PUT", p, &settings(wrong.clone()));
        assert!(r.status < 500, "{wrong}: {r:?}");
        refused(&r, 422, "invalid_settings");
    }
    refused(
        &c.admin_raw("PUT", p, &settings(json!({"shared_slot": 2}))),
        422,
        "invalid_settings",
    );
    refused(
        &c.admin_raw("PUT", p, br#"{"kind": "jira", "licence_tier": 5}"#),
        422,
        "invalid_settings",
    );
    for not_object in [&b"[1, 2]"[..], b"\"jira\"", b"42", b"null", b"true"] {
        refused(&c.admin_raw("PUT", p, not_object), 422, "invalid_settings");
    }
    // Over the 64 KiB limit: a long string inside otherwise valid settings.
    let mut big = br#"{"kind": "jira", "licence_tier": 5, "shared_slots": 2, "pad": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 100 * 1024));
    big.extend(b"\"}");
    refused(&c.admin_raw("PUT", p, &big), 413, "payload_too_large");
    refused(
        &c.admin_raw("PUT", "/admin/v1/users/alice", &big),
        413,
        "payload_too_large",
    );
    // A new product with bad settings is not created.
    refused(
        &c.admin_raw(
            "PUT",
            "/admin/v1/products/newp",
            &settings(json!({"shared_slots": 9})),
        ),
        422,
        "invalid_settings",
    );
    refused(
        &c.admin("GET", "/admin/v1/products/newp", None),
        404,
        "unknown_product",
    );
    refused(&c.request("newp", "alice"), 404, "unknown_product");

    // Bodies of user updates.
    let users = "/admin/v1/users/alice";
    refused(&c.admin_raw("PUT", users, b"{"), 400, "bad_json");
    refused(&c.admin_raw("PUT", users, b""), 400, "bad_json");
    let r = c.admin_raw("PUT", users, br#"{"active": "no"}"#);
    assert!((400..500).contains(&r.status) && r.status != 404, "{r:?}");
    assert_problem(&r, r.status, r.json()["reason"].as_str().unwrap_or("?"));
    let r = c.admin_raw("PUT", users, br#"{"active": false, "admin": true}"#);
    assert!((400..500).contains(&r.status), "{r:?}");
    assert_problem(&r, r.status, r.json()["reason"].as_str().unwrap_or("?"));

    // Unknown products and invalid ids.
    refused(
        &c.admin("GET", "/admin/v1/products/nope", None),
        404,
        "unknown_product",
    );
    refused(&c.request("nope", "alice"), 404, "unknown_product");
    refused(&c.slot("nope", "alice"), 404, "unknown_product");
    refused(&c.release("nope", "alice"), 404, "unknown_product");
    refused(
        &c.admin("PUT", "/admin/v1/products/nope/members/alice", None),
        404,
        "unknown_product",
    );
    refused(
        &c.admin("GET", "/admin/v1/products/nope/holders", None),
        404,
        "unknown_product",
    );
    let long_id = "p".repeat(65);
    for bad_id in [
        "bad%20id",
        "semi;colon",
        "caf%C3%A9",
        "tab%09",
        long_id.as_str(),
    ] {
        refused(
            &c.admin(
                "PUT",
                &format!("/admin/v1/products/{bad_id}"),
                Some(&json!({"kind": "jira", "licence_tier": 5, "shared_slots": 1})),
            ),
            400,
            "invalid_product_id",
        );
        refused(&c.request(bad_id, "alice"), 400, "invalid_product_id");
    }

    // Invalid user names: control characters, too long, empty, not ASCII in a header.
    let long_user = "u".repeat(257);
    for bad_user in ["bell%07", "new%0Aline", "nul%00", long_user.as_str()] {
        refused(
            &c.admin("PUT", &format!("{p}/members/{bad_user}"), None),
            400,
            "invalid_user",
        );
        refused(
            &c.admin(
                "PUT",
                &format!("/admin/v1/users/{bad_user}"),
                Some(&json!({"active": true})),
            ),
            400,
            "invalid_user",
        );
    }
    for bad_header in ["al\tice", long_user.as_str(), "   "] {
        refused(
            &c.call(
                "POST",
                "/api/v1/products/demo/slot",
                &[("X-Slotpool-User", bad_header)],
                None,
            ),
            400,
            "invalid_user",
        );
    }
    // Bytes no client library sends. Not ASCII: refused by slotpool as invalid_user.
    let raw_user = |bytes: &[u8]| {
        let mut req = b"POST /api/v1/products/demo/slot HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\nX-Slotpool-User: ".to_vec();
        req.extend_from_slice(bytes);
        req.extend_from_slice(b"\r\n\r\n");
        raw_request(server.port, &req)
    };
    for bad_bytes in [&b"ali\xc3\xa9"[..], b"\xff\xfe"] {
        refused(&raw_user(bad_bytes), 400, "invalid_user");
    }
    // A raw control character in a header is refused by the HTTP parser itself (a bare
    // 400, before any slotpool code runs); a 4xx all the same.
    let r = raw_user(b"al\x01ice");
    assert_eq!(r.status, 400, "{r:?}");
    // 256 bytes is the longest name: accepted (and unknown).
    refused(&c.request("demo", &"u".repeat(256)), 403, "unknown_user");

    // Admin authentication.
    let admin_paths = [
        ("GET", "/admin/v1/products"),
        ("GET", "/admin/v1/products/demo"),
        ("PUT", "/admin/v1/products/demo/members/mallory"),
        ("DELETE", "/admin/v1/products/demo/holders/alice"),
        ("PUT", "/admin/v1/products/demo/fixed/mallory"),
    ];
    for (m, path) in admin_paths {
        let r = c.call(m, path, &[], None);
        refused(&r, 401, "missing_token");
        let r = c.call(
            m,
            path,
            &[("Authorization", "Bearer not-the-token-0123456789")],
            None,
        );
        refused(&r, 401, "bad_token");
        let r = c.call(m, path, &[("Authorization", "Bearer")], None);
        assert!(r.status == 401, "{r:?}");
        let basic = format!("Basic {ADMIN_TOKEN}");
        let r = c.call(m, path, &[("Authorization", &basic)], None);
        assert_eq!(r.status, 401, "non-Bearer scheme: {r:?}");
        let reason = r.json()["reason"].as_str().unwrap_or("").to_string();
        assert!(
            reason == "missing_token" || reason == "bad_token",
            "non-Bearer scheme: {r:?}"
        );
        assert_problem(&r, 401, &reason);
        // The user header is no admin credential.
        let r = c.call(m, path, &[("X-Slotpool-User", "alice")], None);
        refused(&r, 401, "missing_token");
    }
    // The token check comes before the body is used.
    let r = c.call(
        "PUT",
        p,
        &[("Authorization", "Bearer wrong-token-0123456789")],
        Some(&settings(json!({"shared_slots": 3}))),
    );
    refused(&r, 401, "bad_token");

    // The user header.
    refused(
        &c.call("POST", "/api/v1/products/demo/slot", &[], None),
        401,
        "missing_user",
    );
    refused(
        &c.call("DELETE", "/api/v1/products/demo/slot", &[], None),
        401,
        "missing_user",
    );
    refused(
        &c.call("POST", "/api/v1/products/demo/activity", &[], None),
        401,
        "missing_user",
    );

    // Unknown routes and methods.
    refused(&c.call("GET", "/nope", &[], None), 404, "not_found");
    refused(&c.admin("GET", "/admin/v1/nope", None), 404, "not_found");
    refused(
        &c.call("GET", "/api/v1/products/demo/nope", &[], None),
        404,
        "not_found",
    );
    let r = c.admin("DELETE", p, None);
    assert!(
        (400..500).contains(&r.status),
        "DELETE product is no route: {r:?}"
    );
    assert_problem(&r, r.status, r.json()["reason"].as_str().unwrap_or("?"));
    let r = c.admin("PATCH", "/admin/v1/products/demo/holders", None);
    assert!((400..500).contains(&r.status), "{r:?}");
    assert_problem(&r, r.status, r.json()["reason"].as_str().unwrap_or("?"));

    // Rules: activity by a non-holder, revoke of a non-holder.
    refused(
        &c.user("POST", "/api/v1/products/demo/activity", "bob"),
        409,
        "not_holder",
    );
    refused(
        &c.user("POST", "/api/v1/products/demo/activity", "carol"),
        409,
        "not_holder",
    );
    refused(
        &c.admin("DELETE", &format!("{p}/holders/bob"), None),
        409,
        "not_holder",
    );
    refused(
        &c.admin("DELETE", &format!("{p}/holders/carol"), None),
        409,
        "not_holder",
    );
    refused(
        &c.admin("DELETE", &format!("{p}/holders/ghost"), None),
        409,
        "not_holder",
    );
    refused(&c.request("demo", "ghost"), 403, "unknown_user");
    // A fixed user cannot be enrolled in the pool.
    refused(
        &c.admin("PUT", &format!("{p}/members/erin"), None),
        409,
        "fixed_user",
    );

    assert_eq!(everything(&c), before, "bad input changed the state");
    check_invariants(&c, "demo");
    // The server is still healthy.
    assert_eq!(c.call("GET", "/readyz", &[], None).status, 200);

    // Enrolling a new user into the product whose creation was refused above is refused
    // as an unknown product, and creates no user.
    refused(
        &c.admin("PUT", "/admin/v1/products/newp/members/newbie", None),
        404,
        "unknown_product",
    );
    refused(
        &c.admin("PUT", "/admin/v1/products/newp/fixed/newbie", None),
        404,
        "unknown_product",
    );
    refused(
        &c.admin("GET", "/admin/v1/users/newbie", None),
        404,
        "unknown_user",
    );
    assert_eq!(
        everything(&c),
        before,
        "refused enrolments changed the state"
    );
}

/// `X-Slotpool-User` from a peer that is not a trusted proxy is refused (401
/// `untrusted_proxy`) and changes nothing; admin calls do not depend on the peer.
#[test]
fn user_header_from_an_untrusted_peer_is_refused() {
    let tmp = temp_dir();
    let server = Server::start(
        &Opts::new(&tmp.path().join("data"), tmp.path())
            .arg("--trusted-proxies")
            .arg("10.9.9.9/32"),
    );
    let c = server.client();
    c.put_product(
        "demo",
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 2}),
    );
    c.enrol("demo", "alice");
    let before = c.product("demo");
    refused(&c.request("demo", "alice"), 401, "untrusted_proxy");
    refused(&c.slot("demo", "alice"), 401, "untrusted_proxy");
    refused(&c.release("demo", "alice"), 401, "untrusted_proxy");
    refused(
        &c.user("POST", "/api/v1/products/demo/activity", "alice"),
        401,
        "untrusted_proxy",
    );
    refused(
        &c.call("POST", "/api/v1/products/demo/slot", &[], None),
        401,
        "missing_user",
    );
    assert_eq!(c.product("demo"), before);
    assert!(c.holders("demo").is_empty());
    assert!(c.queue("demo").is_empty());
}

/// A malformed config or flag is refused at start-up with exit code 3, not a crash.
#[test]
fn bad_flags_and_config_exit_3() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    for (args, env_token) in [
        (vec!["--trusted-proxies", "not-a-cidr"], Some(ADMIN_TOKEN)),
        (vec!["--durability", "sometimes"], Some(ADMIN_TOKEN)),
        (vec![], Some("short")),
    ] {
        let mut opts = Opts::new(&data, tmp.path());
        opts.token = env_token.map(str::to_string);
        for a in &args {
            opts = opts.arg(a);
        }
        let mut s = Server::spawn(&opts);
        let status = s.wait_exit(std::time::Duration::from_secs(15));
        assert_eq!(status.code(), Some(3), "{args:?}: {status}\n{}", s.logs());
        assert!(s.stderr().contains("error"), "{}", s.logs());
    }
    let bad_config = tmp.path().join("bad.toml");
    std::fs::write(&bad_config, "listen = 12\nnot_a_setting = true\n").unwrap();
    let mut s = Server::spawn(
        &Opts::new(&data, tmp.path())
            .arg("--config")
            .arg(bad_config.to_str().unwrap()),
    );
    let status = s.wait_exit(std::time::Duration::from_secs(15));
    assert_eq!(status.code(), Some(3), "bad config: {status}\n{}", s.logs());
}

/// Every refusal of a call's preamble comes in one order, on every route that shares it:
/// the caller (admin token, user header) first, then the names of the path (product id,
/// user name, request id), then an unknown product. A bad caller never learns whether a
/// product exists.
#[test]
fn refusals_come_caller_first_then_names_then_unknown_product() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    let bad_token = [("Authorization", "Bearer not-the-token-0123456789")];
    let admin_on_product = [
        ("GET", "/admin/v1/products/nope"),
        ("GET", "/admin/v1/products/nope/holders"),
        ("GET", "/admin/v1/products/nope/queue"),
        ("GET", "/admin/v1/products/nope/sync"),
        ("POST", "/admin/v1/products/nope/sync"),
        ("GET", "/admin/v1/products/nope/connector"),
        ("POST", "/admin/v1/products/nope/connector/resync"),
        ("PUT", "/admin/v1/products/nope/members/alice"),
        ("DELETE", "/admin/v1/products/nope/members/alice"),
        ("PUT", "/admin/v1/products/nope/fixed/alice"),
        ("DELETE", "/admin/v1/products/nope/fixed/alice"),
        ("DELETE", "/admin/v1/products/nope/holders/alice"),
    ];
    for (m, path) in admin_on_product {
        refused(&c.call(m, path, &[], None), 401, "missing_token");
        refused(&c.call(m, path, &bad_token, None), 401, "bad_token");
        refused(&c.admin(m, path, None), 404, "unknown_product");
        let bad_id = path.replace("nope", "bad%20id");
        refused(&c.call(m, &bad_id, &bad_token, None), 401, "bad_token");
        refused(&c.admin(m, &bad_id, None), 400, "invalid_product_id");
    }
    // On `{product}/{user}` the user name is checked before the product is looked up.
    for path in [
        "/admin/v1/products/nope/members/bell%07",
        "/admin/v1/products/nope/fixed/bell%07",
        "/admin/v1/products/nope/holders/bell%07",
    ] {
        refused(&c.call("DELETE", path, &bad_token, None), 401, "bad_token");
        refused(&c.admin("DELETE", path, None), 400, "invalid_user");
    }
    for verb in ["approve", "reject"] {
        let path = format!("/admin/v1/fixed-requests/not-a-uuid/{verb}");
        refused(&c.call("POST", &path, &[], None), 401, "missing_token");
        refused(&c.admin("POST", &path, None), 400, "invalid_request_id");
    }
    let user_on_product = [
        ("POST", "/api/v1/products/nope/slot"),
        ("GET", "/api/v1/products/nope/slot"),
        ("DELETE", "/api/v1/products/nope/slot"),
        ("POST", "/api/v1/products/nope/activity"),
        ("GET", "/api/v1/products/nope/notifications"),
        ("POST", "/api/v1/products/nope/fixed-request"),
        ("GET", "/gate/nope"),
    ];
    for (m, path) in user_on_product {
        refused(&c.call(m, path, &[], None), 401, "missing_user");
        let bad_user = [("X-Slotpool-User", "al\tice")];
        refused(&c.call(m, path, &bad_user, None), 400, "invalid_user");
        refused(&c.user(m, path, "alice"), 404, "unknown_product");
        let bad_id = path.replace("nope", "bad%20id");
        refused(&c.call(m, &bad_id, &[], None), 401, "missing_user");
        refused(&c.user(m, &bad_id, "alice"), 400, "invalid_product_id");
    }
}
