//! Fuzzing every endpoint of the real binary with a fixed budget (proptest, fixed seed and
//! case count): arbitrary methods, path segments, query strings, headers and JSON (or
//! non-JSON) bodies, with and without valid credentials. No answer may be a 5xx, every
//! error must be a problem document, and the service must still be ready at the end.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

const CASES: u32 = 1_500;

/// The routes of `src/http/mod.rs` with their methods (`{}` is a path segment to fill
/// in), without the two endless event streams, which `e2e_api` covers. Any method may
/// also go to any route.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/products/{}/slot"),
    ("GET", "/api/v1/products/{}/slot"),
    ("DELETE", "/api/v1/products/{}/slot"),
    ("POST", "/api/v1/products/{}/activity"),
    ("GET", "/admin/v1/products"),
    ("PUT", "/admin/v1/products/{}"),
    ("GET", "/admin/v1/products/{}"),
    ("PUT", "/admin/v1/products/{}/members/{}"),
    ("DELETE", "/admin/v1/products/{}/members/{}"),
    ("PUT", "/admin/v1/products/{}/fixed/{}"),
    ("DELETE", "/admin/v1/products/{}/fixed/{}"),
    ("GET", "/admin/v1/products/{}/holders"),
    ("DELETE", "/admin/v1/products/{}/holders/{}"),
    ("GET", "/admin/v1/products/{}/queue"),
    ("GET", "/api/v1/products/{}/spaces"),
    ("POST", "/api/v1/products/{}/space-requests"),
    ("GET", "/admin/v1/products/{}/spaces"),
    ("POST", "/admin/v1/products/{}/spaces/refresh"),
    ("GET", "/admin/v1/space-requests"),
    ("POST", "/admin/v1/products/{}/space-requests/{}/approve"),
    ("POST", "/admin/v1/products/{}/space-requests/{}/reject"),
    ("POST", "/admin/v1/products/{}/space-requests/{}/revoke"),
    ("GET", "/admin/v1/notices"),
    ("GET", "/admin/v1/users"),
    ("GET", "/admin/v1/users/{}"),
    ("PUT", "/admin/v1/users/{}"),
    ("POST", "/admin/v1/backup"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/{}"),
    ("POST", "/api/v1/{}/{}"),
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// Arbitrary JSON, including extreme numbers and deep nesting.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Settings documents near the real shape, with values anywhere in range or out of it.
fn settings_like() -> impl Strategy<Value = Value> {
    let num = prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..1000).prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
        Just(Value::Null),
    ];
    (
        prop::sample::select(vec!["jira", "confluence", "bitbucket", "other", "", "JIRA"]),
        num.clone(),
        num.clone(),
        num.clone(),
        num.clone(),
        num,
        any::<bool>(),
    )
        .prop_map(|(kind, tier, shared, inactivity, lead, sweep, reclaim)| {
            json!({"kind": kind, "licence_tier": tier, "shared_slots": shared,
                   "inactivity_s": inactivity, "warning_lead_s": lead,
                   "sweep_interval_s": sweep, "reclaim_on_request": reclaim})
        })
}

fn body() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        3 => json_value().prop_map(|v| Some(v.to_string().into_bytes())),
        3 => settings_like().prop_map(|v| Some(v.to_string().into_bytes())),
        1 => Just(Some(json!({"active": false}).to_string().into_bytes())),
        2 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Some),
    ]
}

/// A path segment: plausible names, odd characters, very long ones; percent-encoded.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["demo", "alice", "bob", "carol", "jira"]).prop_map(str::to_string),
        2 => ".{0,20}",
        1 => "[a-z]{200,300}",
        1 => Just("..".to_string()),
    ]
    .prop_map(|s| encode(&s))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A header value a client can send (visible ASCII and spaces).
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["alice", "bob", "carol", "dave", "zed"]).prop_map(str::to_string),
        2 => "[ -~]{0,60}",
        1 => "[ -~]{300,600}",
    ]
}

#[derive(Debug, Clone)]
struct Call {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

fn call() -> impl Strategy<Value = Call> {
    let route = (
        prop::sample::select(ROUTES.to_vec()),
        prop::option::weighted(0.2, prop::sample::select(METHODS.to_vec())),
        segment(),
        segment(),
        prop::option::of("[ -~]{0,40}"),
    )
        .prop_map(|((method, route), other, a, b, query)| {
            let p = route.replacen("{}", &a, 1).replacen("{}", &b, 1);
            let path = match query {
                Some(q) => format!("{p}?{}", q.replace([' ', '#'], "+")),
                None => p,
            };
            (other.unwrap_or(method), path)
        });
    let auth = prop_oneof![
        3 => Just(Some(format!("Bearer {ADMIN_TOKEN}"))),
        1 => Just(None),
        1 => "[ -~]{0,80}".prop_map(Some),
        1 => "Bearer [ -~]{0,40}".prop_map(Some),
    ];
    let content_type = prop_oneof![
        3 => Just(Some("application/json".to_string())),
        1 => Just(None),
        1 => "[ -~]{0,40}".prop_map(Some),
    ];
    (
        route,
        prop::option::of(header_value()),
        auth,
        content_type,
        prop::option::of(("X-[A-Za-z-]{1,20}", header_value())),
        body(),
    )
        .prop_map(|((method, path), user, auth, ct, extra, body)| {
            let mut headers = Vec::new();
            if let Some(u) = user {
                headers.push(("X-Slotpool-User", u));
            }
            if let Some(a) = auth {
                headers.push(("Authorization", a));
            }
            if let Some(c) = ct {
                headers.push(("Content-Type", c));
            }
            if let Some((_, v)) = extra {
                headers.push(("X-Forwarded-For", v));
            }
            Call {
                method,
                path,
                headers,
                body,
            }
        })
}

#[test]
fn arbitrary_requests_to_every_endpoint_never_give_a_5xx() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let server = Server::start(&Opts::new(&data, tmp.path()));
    let c = server.client();
    // Something to act on: a product with members, a holder and a queue.
    c.put_product(
        "demo",
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1}),
    );
    for u in ["alice", "bob", "carol"] {
        c.enrol("demo", u);
    }
    c.request("demo", "alice");
    c.request("demo", "bob");

    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[11; 32]),
    );
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&call(), |call| {
        let headers: Vec<(&str, &str)> =
            call.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = match c.try_call(call.method, &call.path, &headers, call.body.as_deref()) {
            Ok(r) => r,
            // A request the client library itself refuses to send is not a server answer.
            Err(e) if e.0.contains("Bad") || e.0.contains("invalid") => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("{call:?}: transport {e:?}"))),
        };
        *statuses.borrow_mut().entry(r.status).or_default() += 1;
        prop_assert!(r.status < 500, "{call:?} gave {r:?}");
        if r.status >= 400 && call.method != "HEAD" {
            prop_assert!(
                r.content_type.starts_with("application/problem+json")
                    || r.content_type.starts_with("application/scim+json"),
                "{call:?}: an error that is not a problem: {r:?}"
            );
        }
        Ok(())
    });
    let statuses = statuses.into_inner();
    eprintln!("fuzz: answers by status: {statuses:?}");
    if let Err(e) = result {
        panic!("{e}\n{}", server.logs());
    }
    assert!(
        statuses.keys().any(|s| *s < 300) && statuses.keys().any(|s| *s >= 400),
        "the fuzzer reached both successes and refusals: {statuses:?}"
    );
    // Still serving, and the journal is still sound.
    assert_eq!(c.call("GET", "/readyz", &[], None).status, 200);
    check_invariants(&c, "demo");
}
