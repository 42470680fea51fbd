//! The basic public contract (docs/contract.md) against a fresh server, step by step: health,
//! product settings and their refusal, members and fixed users, request, queue and
//! release, activity, the admin lists and revocation, problem+json errors, tokens, the
//! OpenAPI document and the metrics. Passing these is necessary, not sufficient: every
//! other `e2e_*` test goes further into one part.

mod common;

use common::*;
use serde_json::{json, Value};

const PRODUCT: &str = "/admin/v1/products/contract";
const SLOT: &str = "/api/v1/products/contract/slot";
const ACTIVITY: &str = "/api/v1/products/contract/activity";

/// A fresh server with product `contract` (tier 4, two shared slots), members `ann`,
/// `ben` and `cat`, and the fixed user `fay`.
fn contract_server() -> (tempfile::TempDir, Server) {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    let settings = json!({"kind": "jira", "licence_tier": 4, "shared_slots": 2});
    let r = c.admin("PUT", PRODUCT, Some(&settings));
    assert_eq!(r.status, 201, "a new product is created: {r:?}");
    for u in ["ann", "ben", "cat"] {
        let r = c.admin("PUT", &format!("{PRODUCT}/members/{u}"), None);
        assert_eq!(r.status, 204, "enrol {u}: {r:?}");
    }
    let r = c.admin("PUT", &format!("{PRODUCT}/fixed/fay"), None);
    assert_eq!(r.status, 204, "a fixed licence for fay: {r:?}");
    (tmp, server)
}

fn state_of(r: &Resp) -> Value {
    r.json()["state"].clone()
}

/// `/healthz` and `/readyz` answer 200 once the server is up.
#[test]
fn health_and_readiness_answer_200() {
    let (_tmp, server) = contract_server();
    let c = server.client();
    assert_eq!(c.call("GET", "/healthz", &[], None).status, 200);
    assert_eq!(c.call("GET", "/readyz", &[], None).status, 200);
}

/// Settings: a second PUT updates (200); a pool larger than the tier is refused with
/// 422 `invalid_settings` as problem+json, and changes nothing.
#[test]
fn product_settings_update_and_refusal() {
    let (_tmp, server) = contract_server();
    let c = server.client();
    let settings = json!({"kind": "jira", "licence_tier": 4, "shared_slots": 2});
    let r = c.admin("PUT", PRODUCT, Some(&settings));
    assert_eq!(r.status, 200, "the same PUT again is an update: {r:?}");
    let too_big = json!({"kind": "jira", "licence_tier": 1, "shared_slots": 2});
    let r = c.admin("PUT", PRODUCT, Some(&too_big));
    assert_problem(&r, 422, "invalid_settings");
    let p = c.product("contract");
    assert_eq!(
        (p["licence_tier"].clone(), p["shared_slots"].clone()),
        (json!(4), json!(2))
    );
}

/// Two members are granted, the third is queued first with an estimated wait and a
/// retry hint, a fixed user is `fixed`, a stranger gets a 403 problem; the product's
/// counts say so.
#[test]
fn requests_grant_queue_fixed_and_refuse() {
    let (_tmp, server) = contract_server();
    let c = server.client();
    assert_eq!(state_of(&c.request("contract", "ann")), json!("granted"));
    assert_eq!(state_of(&c.request("contract", "ben")), json!("granted"));
    let r = c.request("contract", "cat");
    let j = r.json();
    assert_eq!(
        (r.status, j["state"].clone()),
        (200, json!("queued")),
        "{r:?}"
    );
    assert_eq!(j["position"], 1, "{r:?}");
    assert!(j["estimated_wait_s"].is_number(), "{r:?}");
    assert!(j["retry_after_s"].is_number(), "{r:?}");
    assert_eq!(state_of(&c.request("contract", "fay")), json!("fixed"));
    let r = c.request("contract", "stranger");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        r.content_type.starts_with("application/problem+json"),
        "{r:?}"
    );
    assert!(r.json()["reason"].is_string(), "{r:?}");
    let p = c.product("contract");
    assert_eq!(p["holders"], 2, "{p}");
    assert_eq!(p["queued"], 1, "{p}");
    assert_eq!(p["fixed"], 1, "{p}");
    assert_eq!(p["members"], 3, "{p}");
}

/// Release frees the slot for the queue's head at once; activity is 204 for a holder and
/// 409 `not_holder` for anyone else; the admin lists show it; an admin revocation takes
/// the slot away.
#[test]
fn release_activity_lists_and_revocation() {
    let (_tmp, server) = contract_server();
    let c = server.client();
    for u in ["ann", "ben", "cat"] {
        c.request("contract", u);
    }
    let r = c.release("contract", "ann");
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        state_of(&c.slot("contract", "cat")),
        json!("granted"),
        "the head of the queue got the slot"
    );
    assert_eq!(state_of(&c.slot("contract", "ann")), json!("none"));
    let r = c.user("POST", ACTIVITY, "ben");
    assert_eq!(r.status, 204, "{r:?}");
    let r = c.user("POST", ACTIVITY, "ann");
    assert_problem(&r, 409, "not_holder");
    let mut holders = c.holders("contract");
    holders.sort();
    assert_eq!(holders, ["ben", "cat"]);
    assert_eq!(c.queue_json("contract"), json!([]));
    let r = c.admin("DELETE", &format!("{PRODUCT}/holders/ben"), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_ne!(state_of(&c.slot("contract", "ben")), json!("granted"));
}

/// Errors of the caller: a wrong admin token (401), malformed JSON (400), an unknown
/// product (404 `unknown_product`), no user header (401); every one a problem.
#[test]
fn caller_errors_are_problems() {
    let (_tmp, server) = contract_server();
    let c = server.client();
    let wrong = Client::new(&server.base, "wrong");
    let r = wrong.admin("GET", "/admin/v1/products", None);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.content_type.starts_with("application/problem+json"),
        "{r:?}"
    );
    let r = c.admin_raw("PUT", "/admin/v1/products/x", b"{oops");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.content_type.starts_with("application/problem+json"),
        "{r:?}"
    );
    let r = c.request("none-such", "ann");
    assert_problem(&r, 404, "unknown_product");
    let r = c.call("POST", SLOT, &[], None);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.content_type.starts_with("application/problem+json"),
        "{r:?}"
    );
}

/// `/openapi.json` is an OpenAPI document with paths; `/metrics` answers.
#[test]
fn openapi_and_metrics_are_served() {
    let (_tmp, server) = contract_server();
    let c = server.client();
    let r = c.call("GET", "/openapi.json", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json()["paths"].is_object(), "{r:?}");
    let r = c.call("GET", "/metrics", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
}
