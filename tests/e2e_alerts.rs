//! Licence-use alerts end to end (issue G, part 5), with the real binary and a real local
//! HTTP receiver: an alert fires after its `for_s` and later resolves, the receiver gets
//! exactly one firing and one resolved POST, each signed with the secret, failed
//! deliveries are retried with the same delivery id, a restart re-delivers nothing
//! acknowledged, an unreachable webhook never holds up the pool, and bad settings are
//! refused with nothing changed.
//!
//! The server has no virtual clock: its sweeps run every second (`sweep_interval_s` 1)
//! and `for_s` is 2 s, so the time rules play out in a few seconds of real time.

mod common;

use common::fake_http::FakeServer;
use common::{assert_problem, free_port, temp_dir, Opts, Server};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::net::TcpStream;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SECRET: &str = "s3cret-for-tests";

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    answered: u16,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the receiver holds: every request it got, and how many to refuse first.
#[derive(Default)]
struct Inbox {
    got: Vec<Received>,
    fail_first: usize,
}

/// A webhook receiver on a local port: records every request; answers 500 to the first
/// `fail_first`, then 200.
struct Receiver {
    url: String,
    server: FakeServer<Inbox>,
}

fn receive(conn: TcpStream, inbox: &Mutex<Inbox>, stop: &AtomicBool) {
    common::fake_http::serve_connection(conn, stop, |r| {
        let mut inbox = inbox.lock().expect("lock");
        let answered = if inbox.got.len() < inbox.fail_first {
            500
        } else {
            200
        };
        inbox.got.push(Received {
            headers: r.headers.clone(),
            body: r.body.clone(),
            answered,
        });
        Some((answered, String::new()))
    });
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let inbox = Inbox {
            fail_first,
            ..Inbox::default()
        };
        let server = FakeServer::start(inbox, receive);
        Receiver {
            url: format!("http://127.0.0.1:{}/hooks/slotpool", server.port),
            server,
        }
    }

    fn got(&self) -> Vec<Received> {
        self.server.with(|i| i.got.clone())
    }

    /// The acknowledged requests whose `state` is `state`.
    fn acknowledged(&self, state: &str) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| r.answered == 200 && r.json()["state"] == state)
            .collect()
    }

    /// Waits until an acknowledged `state` request arrived; returns it.
    fn wait_for(&self, state: &str, secs: u64) -> Received {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(r) = self.acknowledged(state).into_iter().next() {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no acknowledged {state} delivery within {secs} s: {:?}",
            self.got()
        );
    }
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn settings(url: &str) -> Value {
    json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1,
           "sweep_interval_s": 1,
           "alerts": [{"name": "busy", "kind": "use_percent", "threshold": 100, "for_s": 2}],
           "alert_webhook": {"url": url, "secret": SECRET}})
}

/// The value of the sample `key` (name and labels, as written) in `/metrics`.
fn metric(c: &common::Client, key: &str) -> Option<f64> {
    let m = c.call("GET", "/metrics", &[], None);
    m.body
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

#[test]
fn an_alert_is_delivered_once_firing_and_once_resolved_signed_retried_and_never_again() {
    let tmp = temp_dir();
    let hook = Receiver::start(2);
    let opts = Opts::new(&tmp.path().join("data"), tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    c.put_product("p", settings(&hook.url));

    // The secret is never shown; sent back as shown, it keeps the stored one.
    let shown = c.product("p");
    assert_eq!(shown["alert_webhook"]["secret"], "[redacted]");
    assert!(!c
        .admin("GET", "/admin/v1/products", None)
        .body
        .contains(SECRET));
    c.put_product("p", shown.clone());

    c.enrol("p", "ann");
    let granted = Instant::now();
    assert_eq!(c.request("p", "ann").state(), "granted");
    let fired = hook.wait_for("firing", 20);
    assert!(
        granted.elapsed() >= Duration::from_secs(2),
        "fired before for_s"
    );
    let body = fired.json();
    assert_eq!(body["product"], "p");
    assert_eq!(body["alert"], "busy");
    assert_eq!(body["value"], 100);
    assert!(body["at"].is_string(), "{body}");
    assert_eq!(
        fired.header("X-Slotpool-Signature"),
        Some(sign(&fired.body).as_str()),
        "signed with the secret kept through the redacted PUT"
    );
    // The two refused attempts carried the same delivery id and body.
    let id = fired.header("X-Slotpool-Delivery").expect("delivery id");
    let attempts: Vec<_> = hook
        .got()
        .into_iter()
        .filter(|r| r.header("X-Slotpool-Delivery") == Some(id))
        .collect();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(attempts.iter().all(|r| r.body == fired.body));
    assert_eq!(
        metric(&c, "slotpool_alert_webhook_failures_total{product=\"p\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric(&c, "slotpool_alerts_firing{alert=\"busy\",product=\"p\"}"),
        Some(1.0)
    );
    let status = c.admin("GET", "/admin/v1/products/p/alerts", None).json();
    assert_eq!(status["alerts"][0]["state"], "firing", "{status}");
    assert_eq!(status["alerts"][0]["value"], 100);
    assert_eq!(status["webhook"]["delivery"]["last_delivery"]["id"], id);
    assert!(!status.to_string().contains(SECRET));
    let notices = c.admin("GET", "/admin/v1/notices", None).json();
    assert!(
        notices
            .as_array()
            .expect("a list")
            .iter()
            .any(|n| n["kind"] == "alert_fired" && n["alert"] == "busy"),
        "{notices}"
    );

    // Still busy: it does not fire again.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.acknowledged("firing").len(), 1);

    assert_eq!(c.release("p", "ann").status, 204);
    let resolved = hook.wait_for("resolved", 20);
    assert_eq!(resolved.json()["value"], 0);
    assert_eq!(
        resolved.header("X-Slotpool-Signature"),
        Some(sign(&resolved.body).as_str())
    );
    assert_ne!(resolved.header("X-Slotpool-Delivery"), Some(id));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.acknowledged("firing").len(), 1, "fires once");
    assert_eq!(hook.acknowledged("resolved").len(), 1, "resolves once");
    assert_eq!(
        metric(&c, "slotpool_alerts_firing{alert=\"busy\",product=\"p\"}"),
        Some(0.0)
    );

    // A restart re-delivers nothing that was acknowledged.
    let before = hook.got().len();
    server.stop();
    let mut server = Server::start(&opts);
    let c = server.client();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hook.got().len(), before, "{:?}", hook.got());
    let status = c.admin("GET", "/admin/v1/products/p/alerts", None).json();
    assert_eq!(status["alerts"][0]["state"], "ok", "{status}");

    // Audit tells from the journal alone when the alert fired and resolved.
    server.stop();
    let data = tmp.path().join("data");
    let out = common::slotpool_command()
        .args(["audit", "--data-dir", data.to_str().expect("utf-8")])
        .args(["--product", "p", "--format", "json"])
        .output()
        .expect("run slotpool audit");
    assert!(out.status.success(), "{out:?}");
    let audit: Value = serde_json::from_slice(&out.stdout).expect("json");
    let states: Vec<&str> = audit["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, ["firing", "resolved"], "{audit}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET));
}

#[test]
fn an_unreachable_webhook_never_holds_up_the_pool() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    let nowhere = format!("http://127.0.0.1:{}/hook", free_port());
    let mut s = settings(&nowhere);
    s["alerts"][0]["for_s"] = json!(0);
    s["shared_slots"] = json!(2);
    s["alerts"][0]["threshold"] = json!(50);
    c.put_product("u", s);
    c.enrol("u", "ann");
    c.enrol("u", "bob");
    assert_eq!(c.request("u", "ann").state(), "granted");
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&c, "slotpool_alert_webhook_failures_total{product=\"u\"}").unwrap_or(0.0) < 2.0 {
        assert!(Instant::now() < deadline, "no failed delivery counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The pool answers as always while deliveries fail.
    let t = Instant::now();
    assert_eq!(c.request("u", "bob").state(), "granted");
    assert_eq!(c.release("u", "bob").status, 204);
    assert_eq!(c.release("u", "ann").status, 204);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let status = c.admin("GET", "/admin/v1/products/u/alerts", None).json();
    let delivery = &status["webhook"]["delivery"];
    assert!(delivery["attempts"].as_u64() >= Some(2), "{status}");
    assert!(delivery["pending"].is_string(), "{status}");
    assert!(delivery["last_error"]["error"].is_string(), "{status}");
    assert!(delivery["next_retry"].is_string(), "{status}");
}

#[test]
fn bad_alert_settings_are_refused_and_change_nothing() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    c.put_product("b", settings("https://hooks.example/x"));
    let before = c.product("b");
    let rule = |kind: &str, threshold: i64, for_s: i64| json!({"name": "r", "kind": kind, "threshold": threshold, "for_s": for_s});
    let cases: Vec<(Value, &str)> = vec![
        (json!([rule("disk_full", 1, 0)]), "disk_full"),
        (
            json!([rule("use_percent", 80, 0), rule("queue_length", 3, 0)]),
            "used twice",
        ),
        (json!([rule("use_percent", -5, 0)]), "alerts[0].threshold"),
        (json!([rule("queue_length", 0, 0)]), "alerts[0].threshold"),
        (json!([rule("use_percent", 101, 0)]), "alerts[0].threshold"),
        (json!([rule("wait_p95_s", 60, -1)]), "alerts[0].for_s"),
        (
            json!([rule("tier_over", 90, 100_000_000)]),
            "alerts[0].for_s",
        ),
        (
            json!([{"name": "r", "kind": "use_percent", "threshold": 80, "extra": 1}]),
            "extra",
        ),
    ];
    for (alerts, needle) in cases {
        let mut s = settings("https://hooks.example/x");
        s["alerts"] = alerts;
        let r = c.admin("PUT", "/admin/v1/products/b", Some(&s));
        let p = assert_problem(&r, 422, "invalid_settings");
        assert!(
            p["detail"].as_str().unwrap_or("").contains(needle),
            "{needle}: {p}"
        );
    }
    for (hook, needle) in [
        (
            json!({"url": "ftp://hooks.example/x", "secret": "x"}),
            "alert_webhook.url",
        ),
        (
            json!({"url": "hooks.example/x", "secret": "x"}),
            "alert_webhook.url",
        ),
        (
            json!({"url": "https://hooks.example/x", "secret": ""}),
            "alert_webhook.secret",
        ),
        (json!({"url": "https://hooks.example/x"}), "secret"),
    ] {
        let mut s = settings("https://hooks.example/x");
        s["alert_webhook"] = hook;
        let r = c.admin("PUT", "/admin/v1/products/b", Some(&s));
        let p = assert_problem(&r, 422, "invalid_settings");
        assert!(
            p["detail"].as_str().unwrap_or("").contains(needle),
            "{needle}: {p}"
        );
    }
    // A new product cannot start from the redacted placeholder.
    let mut s = settings("https://hooks.example/x");
    s["alert_webhook"]["secret"] = json!("[redacted]");
    let r = c.admin("PUT", "/admin/v1/products/fresh", Some(&s));
    assert_problem(&r, 422, "invalid_settings");
    assert_eq!(c.product("b"), before);
}
