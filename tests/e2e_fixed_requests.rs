//! Fixed-licence requests end to end: a member asks, administrators list, approve (within
//! the licence tier) or reject; every step survives a restart.

mod common;

use common::*;
use serde_json::json;

fn ask(c: &Client, product: &str, user: &str, body: &[u8]) -> Resp {
    c.call(
        "POST",
        &format!("/api/v1/products/{product}/fixed-request"),
        &[
            ("X-Slotpool-User", user),
            ("Content-Type", "application/json"),
        ],
        Some(body),
    )
}

fn list(c: &Client, query: &str) -> Resp {
    c.admin("GET", &format!("/admin/v1/fixed-requests{query}"), None)
}

#[test]
fn members_ask_administrators_decide_within_the_tier_and_it_is_all_journaled() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let mut server = Server::start(&Opts::new(&data, tmp.path()));
    let c = server.client();
    c.put_product(
        "jira",
        json!({"kind": "jira", "licence_tier": 3, "shared_slots": 2}),
    );
    for u in ["ann", "bob", "cyd"] {
        c.enrol("jira", u);
    }
    assert_eq!(c.request("jira", "ann").state(), "granted");

    // Asking.
    let r = ask(&c, "jira", "ann", br#"{"reason": "I use Jira all day"}"#);
    assert_eq!(r.status, 201, "{r:?}");
    let ann = r.json();
    assert_eq!(ann["state"], "open");
    assert_eq!(ann["user"], "ann");
    assert_eq!(ann["product"], "jira");
    let ann_id = ann["id"].as_str().expect("id").to_string();
    let dup = assert_problem(
        &ask(&c, "jira", "ann", br#"{"reason": "again"}"#),
        409,
        "duplicate_request",
    );
    assert!(
        dup["detail"].as_str().unwrap_or("").contains(&ann_id),
        "{dup}"
    );
    assert_problem(
        &ask(&c, "jira", "zed", br#"{"reason": "x"}"#),
        403,
        "not_member",
    );
    assert_problem(
        &ask(&c, "jira", "bob", br#"{"reason": "  "}"#),
        422,
        "invalid_body",
    );
    assert_problem(
        &ask(&c, "jira", "bob", br#"{"reason": 1}"#),
        422,
        "invalid_body",
    );
    assert_problem(&ask(&c, "jira", "bob", br#"{"reason": "#), 400, "bad_json");
    // A bell is no text; the message says what is wrong (not the length).
    let r = ask(&c, "jira", "bob", br#"{"reason": "ring \u0007"}"#);
    assert!(
        assert_problem(&r, 422, "invalid_body")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("control character")),
        "{r:?}"
    );
    assert_problem(
        &ask(&c, "nope", "bob", br#"{"reason": "x"}"#),
        404,
        "unknown_product",
    );
    // Line breaks as a Windows client sends them, and a tab, are text.
    let r = ask(
        &c,
        "jira",
        "bob",
        br#"{"reason": "release manager\r\n\tall year"}"#,
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["reason"], "release manager\n\tall year", "{r:?}");
    let bob_id = r.json()["id"].as_str().expect("id").to_string();

    // Listing, with filters.
    let all = list(&c, "").json();
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    assert_eq!(all[0]["id"], json!(ann_id));
    assert_eq!(list(&c, "?state=open&product=jira").json(), all);
    assert_eq!(list(&c, "?state=approved").json(), json!([]));
    assert_problem(&list(&c, "?state=maybe"), 400, "bad_query");
    assert_problem(&list(&c, "?product=nope"), 404, "unknown_product");

    // Approving gives the fixed licence through the same rule as PUT .../fixed/{u}.
    let r = c.admin(
        "POST",
        &format!("/admin/v1/fixed-requests/{ann_id}/approve"),
        Some(&json!({"note": "approved by IT"})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["state"], "approved");
    assert_eq!(r.json()["note"], "approved by IT");
    assert_eq!(c.slot("jira", "ann").state(), "fixed");
    assert!(c.holders("jira").is_empty(), "ann's slot was freed");
    assert_eq!(c.product("jira")["fixed"], 1);

    // One fixed + 2 shared = the tier of 3: a second approval would exceed it.
    let r = c.admin(
        "POST",
        &format!("/admin/v1/fixed-requests/{bob_id}/approve"),
        None,
    );
    assert_problem(&r, 422, "tier_exceeded");
    assert_eq!(list(&c, "?state=open").json()[0]["id"], json!(bob_id));
    assert_problem(
        &c.admin(
            "POST",
            &format!("/admin/v1/fixed-requests/{ann_id}/approve"),
            None,
        ),
        409,
        "request_closed",
    );

    // Rejecting, with a note.
    let r = c.admin(
        "POST",
        &format!("/admin/v1/fixed-requests/{bob_id}/reject"),
        Some(&json!({"note": "not this quarter"})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["state"], "rejected");
    assert_problem(
        &c.admin(
            "POST",
            &format!("/admin/v1/fixed-requests/{bob_id}/reject"),
            None,
        ),
        409,
        "request_closed",
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_problem(
        &c.admin(
            "POST",
            &format!("/admin/v1/fixed-requests/{unknown}/reject"),
            None,
        ),
        404,
        "unknown_request",
    );
    assert_problem(
        &c.admin("POST", "/admin/v1/fixed-requests/not-a-uuid/approve", None),
        400,
        "invalid_request_id",
    );
    assert_problem(
        &c.admin_raw(
            "POST",
            &format!("/admin/v1/fixed-requests/{bob_id}/reject"),
            br#"{"note": "x", "extra": 1}"#,
        ),
        422,
        "invalid_body",
    );
    // Bob may ask again once his request is closed.
    let r = ask(&c, "jira", "bob", br#"{"reason": "please reconsider"}"#);
    assert_eq!(r.status, 201, "{r:?}");
    let before = list(&c, "").json();
    assert_eq!(before.as_array().map(Vec::len), Some(3));

    // Everything was journaled: a restart shows the same requests and the licence.
    server.stop();
    let server = Server::start(&Opts::new(&data, tmp.path()));
    let c = server.client();
    assert_eq!(list(&c, "").json(), before);
    assert_eq!(
        list(&c, "?state=rejected").json()[0]["note"],
        "not this quarter"
    );
    assert_eq!(c.slot("jira", "ann").state(), "fixed");
    assert_verify_ok_after_stop(server, &data);
}

fn assert_verify_ok_after_stop(mut server: Server, data: &std::path::Path) {
    server.stop();
    assert_verify_ok(data);
}

/// Approving or rejecting finds the request's product without asking every product:
/// through the index the product actors keep, rebuilt from the journal at a restart.
#[test]
fn a_request_is_found_among_several_products_and_after_a_restart() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let server = Server::start(&Opts::new(&data, tmp.path()));
    let c = server.client();
    for p in ["conf", "jira", "wiki"] {
        c.put_product(
            p,
            json!({"kind": "generic", "licence_tier": 5, "shared_slots": 2}),
        );
        c.enrol(p, "ann");
    }
    let asked = |c: &Client, p: &str| {
        let r = ask(c, p, "ann", br#"{"reason": "daily"}"#);
        assert_eq!(r.status, 201, "{r:?}");
        r.json()["id"].as_str().expect("id").to_string()
    };
    let (jira, wiki) = (asked(&c, "jira"), asked(&c, "wiki"));
    let r = c.admin(
        "POST",
        &format!("/admin/v1/fixed-requests/{wiki}/reject"),
        Some(&json!({"note": "no"})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["product"], "wiki");
    assert_eq!(r.json()["state"], "rejected");

    let mut server = server;
    server.stop();
    let server = Server::start(&Opts::new(&data, tmp.path()));
    let c = server.client();
    let r = c.admin(
        "POST",
        &format!("/admin/v1/fixed-requests/{jira}/approve"),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["product"], "jira");
    assert_eq!(r.json()["state"], "approved");
    assert!(r.json().get("decided_at").is_some(), "{r:?}");
    assert_eq!(c.slot("jira", "ann").state(), "fixed");
    assert_eq!(c.slot("conf", "ann").state(), "none");
    // Closed stays closed, and an id nobody holds is unknown, after the restart too.
    assert_problem(
        &c.admin(
            "POST",
            &format!("/admin/v1/fixed-requests/{wiki}/approve"),
            None,
        ),
        409,
        "request_closed",
    );
    assert_problem(
        &c.admin(
            "POST",
            "/admin/v1/fixed-requests/00000000-0000-4000-8000-000000000000/approve",
            None,
        ),
        404,
        "unknown_request",
    );
    assert_verify_ok_after_stop(server, &data);
}
