//! Time rules end to end, with the real binary and small settings: a browser's stream hears
//! its warning and its revocation, a queued browser hears its grant without polling, and a
//! kill -9 keeps pending warnings and deadlines.

mod common;

use common::{temp_dir, Opts, Server};
use serde_json::{json, Value};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Opens the notification stream of `user` and forwards each event (name, data) to a
/// channel, from a thread that ends when the server closes the stream.
fn listen(base: &str, product: &str, user: &str) -> mpsc::Receiver<(String, Value)> {
    let resp = ureq::get(&format!("{base}/api/v1/products/{product}/notifications"))
        .set("X-Slotpool-User", user)
        .call()
        .expect("stream opens");
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    common::stream_events(resp)
}

/// The next event, waiting at most `secs` seconds.
fn next(rx: &mpsc::Receiver<(String, Value)>, secs: u64) -> (String, Value) {
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|e| panic!("no event within {secs} s: {e}"))
}

fn quick_settings(slots: u32) -> Value {
    json!({"kind": "jira", "licence_tier": 10, "shared_slots": slots,
           "inactivity_s": 3, "warning_lead_s": 1, "sweep_interval_s": 1})
}

#[test]
fn a_stream_hears_the_warning_then_the_revocation() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    c.put_product("t", quick_settings(1));
    c.enrol("t", "ann");
    assert_eq!(c.request("t", "ann").state(), "granted");
    let rx = listen(&server.base, "t", "ann");
    let (first, _) = next(&rx, 5);
    assert!(first == "granted" || first == "warning", "{first}");
    let mut seen = vec![first];
    let revoked = loop {
        let (event, data) = next(&rx, 10);
        seen.push(event.clone());
        if event == "revoked" {
            break data;
        }
    };
    assert!(
        seen.contains(&"warning".to_string()),
        "warned first: {seen:?}"
    );
    assert_eq!(revoked["reason"], "inactivity");
    assert_eq!(c.slot("t", "ann").state(), "none");
}

#[test]
fn a_queued_stream_hears_its_grant_when_a_slot_frees() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    c.put_product(
        "q",
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1}),
    );
    c.enrol("q", "ann");
    c.enrol("q", "bob");
    assert_eq!(c.request("q", "ann").state(), "granted");
    assert_eq!(c.request("q", "bob").state(), "queued");
    let rx = listen(&server.base, "q", "bob");
    let (event, data) = next(&rx, 5);
    assert_eq!(
        (event.as_str(), data["position"].as_u64()),
        ("queue", Some(1))
    );
    assert_eq!(c.release("q", "ann").status, 204);
    let (event, data) = next(&rx, 5);
    assert_eq!(event, "granted", "{data}");
    assert_eq!(data["state"], "granted");
}

#[test]
fn kill_9_keeps_pending_warnings_and_deadlines() {
    let tmp = temp_dir();
    let opts = Opts::new(&tmp.path().join("data"), tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    c.put_product(
        "k",
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1,
               "inactivity_s": 8, "warning_lead_s": 5, "sweep_interval_s": 1}),
    );
    c.enrol("k", "ann");
    assert_eq!(c.request("k", "ann").state(), "granted");
    // Wait for the warning (about 3 s after the grant).
    let deadline = Instant::now() + Duration::from_secs(15);
    let warned = loop {
        let holders = c.admin("GET", "/admin/v1/products/k/holders", None).json();
        if !holders[0]["warned_at"].is_null() {
            break holders[0].clone();
        }
        assert!(Instant::now() < deadline, "no warning: {holders}");
        std::thread::sleep(Duration::from_millis(50));
    };
    server.kill9();
    let server = Server::start(&opts);
    let c = server.client();
    let holders = c.admin("GET", "/admin/v1/products/k/holders", None).json();
    assert_eq!(holders[0]["warned_at"], warned["warned_at"], "{holders}");
    assert_eq!(holders[0]["revoke_at"], warned["revoke_at"], "{holders}");
    // And the revocation still comes, for inactivity, not before the deadline.
    let rx = listen(&server.base, "k", "ann");
    let revoked = loop {
        let (event, data) = next(&rx, 15);
        if event == "revoked" {
            break data;
        }
    };
    assert_eq!(revoked["reason"], "inactivity");
    let revoke_at =
        chrono::DateTime::parse_from_rfc3339(warned["revoke_at"].as_str().expect("revoke_at"))
            .expect("rfc3339");
    assert!(
        chrono::Utc::now() >= revoke_at,
        "revoked before its deadline"
    );
}

/// Auto re-login (docs/design.md) with a real open stream: a holder whose page stays open and
/// who does nothing is revoked for inactivity and, a slot being free, granted again in
/// the same sweep, every time: the stream hears each warning followed by the grant, never
/// a lasting loss, and the slot API says `granted` throughout.
#[test]
fn an_open_stream_is_granted_again_after_each_revocation_for_inactivity() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    let mut settings = quick_settings(1);
    settings["auto_relogin"] = json!(true);
    settings["lock_s"] = json!(0);
    c.put_product("r", settings);
    c.enrol("r", "ann");
    assert_eq!(c.request("r", "ann").state(), "granted");
    let rx = listen(&server.base, "r", "ann");
    let (first, _) = next(&rx, 5);
    assert!(first == "granted" || first == "warning", "{first}");
    // Three cycles of warning, revocation and grant (about 3 s each).
    let mut regrants = 0;
    while regrants < 3 {
        let (event, data) = next(&rx, 10);
        assert_ne!(event, "revoked", "left without a slot: {data}");
        if event == "granted" {
            assert_eq!(data["state"], "granted", "{data}");
            regrants += 1;
        }
    }
    assert_eq!(c.slot("r", "ann").state(), "granted");
    let metrics = c.call("GET", "/metrics", &[], None).body;
    let revoked: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"slotpool_revocations_total{product="r",reason="inactivity"} "#)
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        revoked >= 3.0,
        "each grant followed a revocation: {revoked}"
    );
}
