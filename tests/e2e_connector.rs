//! The product connector against a fake Jira started by the test: every grant and loss of
//! a slot (and every fixed licence given or taken) ends up exactly in the product's access
//! group, through failures (500), a product that hangs beyond the timeout, and a kill -9
//! of slotpool in the middle of deliveries; a drift made by hand is repaired by re-sync.

mod common;

use common::fake_http::FakeServer;
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const GROUP: &str = "jira-software-users";
/// `svc:s3cret` in base64: the basic credentials the fake expects.
const BASIC: &str = "Basic c3ZjOnMzY3JldA==";

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Like Jira.
    Up,
    /// 500 to everything.
    Failing,
    /// Reads the request and never answers (until the mode changes; then it hangs up).
    Hanging,
}

/// One call the fake received.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    /// The user added or removed (None for a member list).
    user: Option<String>,
    /// `true` add, `false` remove.
    add: bool,
    status: u16,
    /// Whether the call changed the group.
    changed: bool,
    /// A webhook call's `Idempotency-Key` header and its body's `id`.
    key: Option<String>,
    id: Option<String>,
}

#[derive(Default)]
struct FakeState {
    mode: Option<Mode>,
    members: BTreeSet<String>,
    log: Vec<Call>,
}

/// A fake Jira Data Center answering the group-membership endpoints.
struct FakeJira {
    server: FakeServer<FakeState>,
}

impl FakeJira {
    fn start() -> FakeJira {
        let state = FakeState {
            mode: Some(Mode::Up),
            ..FakeState::default()
        };
        FakeJira {
            server: FakeServer::start(state, serve_connection),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/jira", self.server.port)
    }

    fn set_mode(&self, mode: Mode) {
        self.server.state.lock().expect("fake state").mode = Some(mode);
    }

    fn members(&self) -> BTreeSet<String> {
        self.server
            .state
            .lock()
            .expect("fake state")
            .members
            .clone()
    }

    fn log(&self) -> Vec<Call> {
        self.server.state.lock().expect("fake state").log.clone()
    }

    /// Changes the group behind slotpool's back (an administrator in Jira).
    fn tamper(&self, add: &str, remove: &str) {
        let mut s = self.server.state.lock().expect("fake state");
        s.members.insert(add.to_string());
        s.members.remove(remove);
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(target: &str) -> (String, BTreeMap<String, String>) {
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let params = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path.to_string(), params)
}

/// Serves requests on one connection (keep-alive) until the peer closes or the test ends.
fn serve_connection(conn: TcpStream, state: &Mutex<FakeState>, stop: &AtomicBool) {
    common::fake_http::serve_connection(conn, stop, |r| {
        let mode = state.lock().expect("fake state").mode;
        if mode == Some(Mode::Hanging) {
            while state.lock().expect("fake state").mode == Some(Mode::Hanging)
                && !stop.load(Ordering::SeqCst)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            return None;
        }
        let key = r.header("idempotency-key").map(str::to_string);
        let auth = r.header("authorization").unwrap_or("");
        let (status, answer) = if r.target == "/hook" {
            webhook(state, &r.body, key)
        } else {
            answer(state, &r.method, &r.target, &r.body, auth)
        };
        Some((status, answer.to_string()))
    });
}

fn answer(
    state: &Mutex<FakeState>,
    method: &str,
    target: &str,
    body: &[u8],
    auth: &str,
) -> (u16, Value) {
    let mut s = state.lock().expect("fake state");
    let (path, q) = query(target);
    let user = match method {
        "POST" => serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|b| b["name"].as_str().map(str::to_string)),
        "DELETE" => q.get("username").cloned(),
        _ => None,
    };
    let mut call = Call {
        method: method.to_string(),
        user: user.clone(),
        add: method == "POST",
        status: 500,
        changed: false,
        key: None,
        id: None,
    };
    let (status, reply) = if s.mode == Some(Mode::Failing) {
        (500, json!({"errorMessages": ["Internal server error"]}))
    } else if auth != BASIC {
        (401, json!({"errorMessages": ["not authenticated"]}))
    } else if q.get("groupname").map(String::as_str) != Some(GROUP) {
        (404, json!({"errorMessages": ["group not found"]}))
    } else {
        match (method, path.as_str(), user) {
            ("POST", "/jira/rest/api/2/group/user", Some(u)) => {
                if s.members.insert(u.clone()) {
                    call.changed = true;
                    (201, json!({"name": GROUP}))
                } else {
                    (
                        400,
                        json!({"errorMessages": [format!("Cannot add user. '{u}' is already a member of '{GROUP}'")]}),
                    )
                }
            }
            ("DELETE", "/jira/rest/api/2/group/user", Some(u)) => {
                if s.members.remove(&u) {
                    call.changed = true;
                    (200, json!({}))
                } else {
                    (
                        400,
                        json!({"errorMessages": [format!("Cannot remove user. '{u}' is not a member of '{GROUP}'")]}),
                    )
                }
            }
            ("GET", "/jira/rest/api/2/group/member", None) => {
                let start: usize = q.get("startAt").and_then(|v| v.parse().ok()).unwrap_or(0);
                let max: usize = q
                    .get("maxResults")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(50)
                    .min(2);
                let all: Vec<&String> = s.members.iter().collect();
                let page: Vec<Value> = all
                    .iter()
                    .skip(start)
                    .take(max)
                    .map(|n| json!({"name": n, "active": true}))
                    .collect();
                let is_last = start + page.len() >= all.len();
                (
                    200,
                    json!({"startAt": start, "maxResults": max, "total": all.len(), "isLast": is_last, "values": page}),
                )
            }
            _ => (404, json!({"errorMessages": ["no such endpoint"]})),
        }
    };
    call.status = status;
    s.log.push(call);
    (status, reply)
}

/// A generic webhook: `{"product","user","action","group","id"}` and an idempotency key.
fn webhook(state: &Mutex<FakeState>, body: &[u8], key: Option<String>) -> (u16, Value) {
    let mut s = state.lock().expect("fake state");
    let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let user = b["user"].as_str().map(str::to_string);
    let add = b["action"] == "add";
    let well_formed = b["product"] == "wiki"
        && b["group"] == GROUP
        && (add || b["action"] == "remove")
        && user.is_some();
    let mut call = Call {
        method: "POST".into(),
        user: user.clone(),
        add,
        status: 400,
        changed: false,
        key,
        id: b["id"].as_str().map(str::to_string),
    };
    if well_formed && s.mode == Some(Mode::Up) {
        let u = user.unwrap_or_default();
        call.changed = if add {
            s.members.insert(u)
        } else {
            s.members.remove(&u)
        };
        call.status = 204;
    } else if s.mode == Some(Mode::Failing) {
        call.status = 503;
    }
    let status = call.status;
    s.log.push(call);
    (status, json!({}))
}

/// Settings of a Jira connector to `fake`, with the credentials file `cred`, which must
/// lie in the server's connector secrets directory ([`with_secrets`]): the settings name
/// it relative to that directory.
fn connector(fake: &FakeJira, cred: &Path, auto_resync: bool) -> Value {
    let name = cred.file_name().expect("a file name").to_string_lossy();
    json!({
        "kind": "jira",
        "base_url": fake.base(),
        "credentials_file": name,
        "access_group": GROUP,
        "timeout_s": 1,
        "retry_base_ms": 50,
        "retry_cap_s": 1,
        "auto_resync": auto_resync,
    })
}

/// A server whose connector secrets directory is `dir` (written as a config file there).
fn with_secrets(opts: Opts, dir: &Path) -> Opts {
    let config = dir.join("slotpool.toml");
    std::fs::write(
        &config,
        format!("connector_secrets_dir = {:?}\n", dir.display().to_string()),
    )
    .expect("config");
    opts.arg("--config").arg(config.to_str().expect("utf-8"))
}

/// Holders and fixed users: who should be in the group.
fn wanted(c: &Client, product: &str, fixed: &[&str]) -> BTreeSet<String> {
    c.holders(product)
        .into_iter()
        .chain(fixed.iter().map(|s| s.to_string()))
        .collect()
}

#[track_caller]
fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("timed out waiting until {what}");
}

fn status(c: &Client, product: &str) -> Value {
    let r = c.admin(
        "GET",
        &format!("/admin/v1/products/{product}/connector"),
        None,
    );
    assert_eq!(r.status, 200, "connector status: {r:?}");
    r.json()
}

fn metric(c: &Client, line_start: &str) -> Option<f64> {
    let r = c.call("GET", "/metrics", &[], None);
    r.body
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The fake's log, replayed call by call, gives its group (call before tampering); and for each user the calls
/// that were answered successfully never contradict one another out of order: the last
/// one says what the group holds.
fn check_log(fake: &FakeJira) {
    let log = fake.log();
    let mut replay = BTreeSet::new();
    let mut last: BTreeMap<String, bool> = BTreeMap::new();
    for c in &log {
        let Some(u) = &c.user else { continue };
        if c.changed {
            if c.add {
                assert!(replay.insert(u.clone()), "{c:?}");
            } else {
                assert!(replay.remove(u), "{c:?}");
            }
        }
        if c.status < 300 || c.status == 400 {
            last.insert(u.clone(), c.add);
        }
    }
    let members = fake.members();
    for (u, add) in &last {
        assert_eq!(
            members.contains(u),
            *add,
            "the last delivery to {u} does not match the group"
        );
    }
    assert_eq!(replay, members, "the call log does not replay to the group");
}

#[test]
fn grants_and_losses_reach_the_group_through_failures_hangs_and_resync() {
    let fake = FakeJira::start();
    let tmp = temp_dir();
    let cred = tmp.path().join("jira.cred");
    std::fs::write(&cred, "svc:s3cret\n").expect("credentials");
    let server = Server::start(&with_secrets(
        Opts::new(&tmp.path().join("data"), tmp.path()),
        tmp.path(),
    ));
    let c = server.client();
    c.put_product(
        "jira",
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 3,
               "connector": connector(&fake, &cred, true)}),
    );
    // The settings show where the credentials are, never what they are.
    let shown = c.product("jira").to_string();
    assert!(!shown.contains("s3cret"), "{shown}");

    let users: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    for u in &users {
        c.enrol("jira", u);
    }
    let r = c.admin("PUT", "/admin/v1/products/jira/fixed/fx", None);
    assert_eq!(r.status, 204, "{r:?}");
    for u in &users {
        c.request("jira", u);
    }
    let fixed = ["fx"];
    let want = wanted(&c, "jira", &fixed);
    assert_eq!(want.len(), 4);
    wait_until(
        "the first grants are in the group",
        Duration::from_secs(10),
        || fake.members() == want,
    );

    // The product fails: the pool goes on, the backlog grows and is visible.
    fake.set_mode(Mode::Failing);
    assert_eq!(c.release("jira", "u0").status, 204);
    let r = c.admin("DELETE", "/admin/v1/products/jira/holders/u1", None);
    assert_eq!(r.status, 204, "{r:?}");
    let r = c.admin("PUT", "/admin/v1/users/u2", Some(&json!({"active": false})));
    assert!(r.status < 300, "{r:?}");
    wait_until("failures are reported", Duration::from_secs(10), || {
        let s = status(&c, "jira");
        s["attempts"].as_u64().unwrap_or(0) >= 2 && s["backlog"].as_u64().unwrap_or(0) > 0
    });
    let s = status(&c, "jira");
    assert!(
        s["last_error"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("500"),
        "{s}"
    );
    assert!(s["next_retry"].is_string(), "{s}");
    assert!(
        metric(&c, "slotpool_outbox_backlog{product=\"jira\"}").unwrap_or(0.0) > 0.0,
        "backlog gauge"
    );
    assert!(
        metric(
            &c,
            "slotpool_connector_deliveries_total{outcome=\"error\",product=\"jira\"}"
        )
        .unwrap_or(0.0)
            >= 2.0
    );

    // The product hangs beyond the timeout: a timeout, not a stuck connector.
    fake.set_mode(Mode::Hanging);
    wait_until("a timeout is reported", Duration::from_secs(15), || {
        status(&c, "jira")["last_error"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("did not answer")
    });
    // Meanwhile the pool answers at once.
    let t = Instant::now();
    assert_eq!(c.release("jira", "u3").status, 204);
    assert!(t.elapsed() < Duration::from_secs(1));

    // The product comes back: everything is delivered, exactly.
    fake.set_mode(Mode::Up);
    let want = wanted(&c, "jira", &fixed);
    assert!(!want.contains("u0") && !want.contains("u1") && !want.contains("u2"));
    wait_until(
        "the group matches the pool",
        Duration::from_secs(15),
        || fake.members() == want,
    );
    wait_until("the backlog is empty", Duration::from_secs(10), || {
        let s = status(&c, "jira");
        s["backlog"] == json!(0) && s["attempts"] == json!(0)
    });
    assert_eq!(
        metric(&c, "slotpool_outbox_backlog{product=\"jira\"}"),
        Some(0.0)
    );

    // A fixed licence taken away leaves the group.
    let r = c.admin("DELETE", "/admin/v1/products/jira/fixed/fx", None);
    assert_eq!(r.status, 204, "{r:?}");
    let want = wanted(&c, "jira", &[]);
    wait_until("fx left the group", Duration::from_secs(10), || {
        fake.members() == want
    });
    check_log(&fake);

    // A drift made by hand in the product is repaired by a re-sync.
    let holder = c.holders("jira")[0].clone();
    fake.tamper("intruder", &holder);
    let r = c.admin("POST", "/admin/v1/products/jira/connector/resync", None);
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(report["added"], json!([holder]), "{report}");
    assert_eq!(report["removed"], json!(["intruder"]), "{report}");
    assert_eq!(fake.members(), want);

    // Errors: no connector, unknown product.
    c.put_product(
        "plain",
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 1}),
    );
    assert_problem(
        &c.admin("GET", "/admin/v1/products/plain/connector", None),
        404,
        "no_connector",
    );
    assert_problem(
        &c.admin("POST", "/admin/v1/products/nope/connector/resync", None),
        404,
        "unknown_product",
    );
    // Invalid connector settings are refused and change nothing.
    let r = c.admin(
        "PUT",
        "/admin/v1/products/jira",
        Some(
            &json!({"kind": "jira", "licence_tier": 10, "shared_slots": 3,
                     "connector": {"kind": "jira", "base_url": "ftp://x", "access_group": ""}}),
        ),
    );
    let p = assert_problem(&r, 422, "invalid_settings");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or("")
            .contains("connector.base_url"),
        "{p}"
    );
    let r = c.admin(
        "PUT",
        "/admin/v1/products/jira",
        Some(
            &json!({"kind": "jira", "licence_tier": 10, "shared_slots": 3,
                     "connector": {"kind": "ldap", "base_url": "http://x", "access_group": "g"}}),
        ),
    );
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(status(&c, "jira")["base_url"], json!(fake.base()));
}

#[test]
fn kill_9_in_the_middle_of_deliveries_loses_none() {
    let fake = FakeJira::start();
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let cred = tmp.path().join("jira.cred");
    std::fs::write(&cred, "svc:s3cret").expect("credentials");
    let opts = with_secrets(Opts::new(&data, tmp.path()), tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    // No automatic re-sync: only the outbox can deliver what the kill interrupted.
    c.put_product(
        "jira",
        json!({"kind": "jira", "licence_tier": 20, "shared_slots": 4,
               "connector": connector(&fake, &cred, false)}),
    );
    let users: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    for u in &users {
        c.enrol("jira", u);
    }
    for u in &users[..2] {
        c.request("jira", u);
    }
    let want = wanted(&c, "jira", &[]);
    wait_until(
        "the first grants are in the group",
        Duration::from_secs(10),
        || fake.members() == want,
    );

    // The product fails while slots change hands; slotpool is killed mid-retry.
    fake.set_mode(Mode::Failing);
    for u in &users[2..] {
        c.request("jira", u);
    }
    assert_eq!(c.release("jira", "k0").status, 204);
    assert_eq!(c.release("jira", "k2").status, 204);
    let r = c.admin("PUT", "/admin/v1/products/jira/fixed/k9", None);
    assert_eq!(r.status, 204, "{r:?}");
    wait_until("deliveries are failing", Duration::from_secs(10), || {
        status(&c, "jira")["attempts"].as_u64().unwrap_or(0) >= 1
    });
    let want = wanted(&c, "jira", &["k9"]);
    assert_ne!(fake.members(), want);
    server.kill9();

    fake.set_mode(Mode::Up);
    let server = Server::start(&opts);
    let c = server.client();
    assert_eq!(
        wanted(&c, "jira", &["k9"]),
        want,
        "the pool survived the kill"
    );
    wait_until(
        "every change reached the group",
        Duration::from_secs(15),
        || fake.members() == want,
    );
    wait_until("the backlog is empty", Duration::from_secs(10), || {
        status(&c, "jira")["backlog"] == json!(0)
    });
    check_log(&fake);
    // No re-sync ran: the outbox did it (every change was a single add or remove).
    assert!(status(&c, "jira")["last_resync"].is_null());
    assert!(fake.log().iter().all(|c| c.method != "GET"));
}

#[test]
fn a_webhook_gets_every_change_with_an_idempotency_key() {
    let fake = FakeJira::start();
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    c.put_product(
        "wiki",
        json!({"kind": "generic", "licence_tier": 5, "shared_slots": 2,
               "connector": {"kind": "webhook", "base_url": format!("http://127.0.0.1:{}/hook", fake.server.port),
                             "access_group": GROUP, "timeout_s": 1, "retry_base_ms": 50, "retry_cap_s": 1}}),
    );
    for u in ["w1", "w2", "w3"] {
        c.enrol("wiki", u);
        c.request("wiki", u);
    }
    fake.set_mode(Mode::Failing);
    assert_eq!(c.release("wiki", "w1").status, 204);
    wait_until("a failure is reported", Duration::from_secs(10), || {
        status(&c, "wiki")["attempts"].as_u64().unwrap_or(0) >= 1
    });
    fake.set_mode(Mode::Up);
    let want = wanted(&c, "wiki", &[]);
    assert_eq!(want, ["w2", "w3"].iter().map(|s| s.to_string()).collect());
    wait_until("the hook saw every change", Duration::from_secs(10), || {
        fake.members() == want && status(&c, "wiki")["backlog"] == json!(0)
    });
    check_log(&fake);
    for call in fake.log() {
        assert!(
            call.id.as_deref().is_some_and(|i| !i.is_empty()),
            "{call:?}"
        );
        assert_eq!(call.key, call.id, "the idempotency key is the delivery id");
    }
    // A webhook cannot list its group: a re-sync adds whoever should be in it.
    let r = c.admin("POST", "/admin/v1/products/wiki/connector/resync", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["listed"], json!(false));
    assert_eq!(r.json()["added"], json!(["w2", "w3"]));
}
