//! Space entitlements end to end, against a fake Confluence started by the test that
//! checks the real request shapes of Confluence's space-permission REST API
//! (`GET /rest/api/space`, `POST /rest/api/space/{key}/permission` with
//! `{"subject": {"type": "user", "identifier"}, "operation": {"key", "target"}}`,
//! `DELETE /rest/api/space/{key}/permission/{id}`, `GET /rest/api/space/{key}?expand=permissions`):
//! the catalogue is fetched; a request approved is granted (once, through failures); a
//! request rejected sends nothing; a permission Confluence already has counts as granted;
//! an admin revocation and a deactivation remove what was granted; a restart re-sends
//! nothing that was acknowledged; bad input is refused and changes nothing.

mod common;

use common::fake_http::FakeServer;
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `svc:s3cret` in base64: the basic credentials the fake expects.
const BASIC: &str = "Basic c3ZjOnMzY3JldA==";
/// The operation pairs Confluence's space-permission API accepts.
const VALID: [(&str, &str); 14] = [
    ("read", "space"),
    ("create", "page"),
    ("create", "blogpost"),
    ("create", "comment"),
    ("create", "attachment"),
    ("delete", "page"),
    ("delete", "blogpost"),
    ("delete", "comment"),
    ("delete", "attachment"),
    ("delete", "space"),
    ("export", "space"),
    ("administer", "space"),
    ("archive", "page"),
    ("restrict_content", "space"),
];

/// One space permission the fake holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Perm {
    space: String,
    user: String,
    key: String,
    target: String,
}

/// One call the fake received.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    body: Value,
    status: u16,
}

#[derive(Default)]
struct FakeState {
    spaces: BTreeMap<String, String>,
    perms: BTreeMap<u64, Perm>,
    next_id: u64,
    /// Answer the next this many permission POSTs with 500.
    fail_posts: u32,
    /// Answer every POST of this operation (`key:target`) with 500.
    fail_op: Option<String>,
    log: Vec<Call>,
}

/// A fake Confluence Data Center answering the space and group endpoints under `/wiki`.
struct FakeConfluence {
    server: FakeServer<FakeState>,
}

impl FakeConfluence {
    fn start() -> FakeConfluence {
        let state = FakeState {
            spaces: [
                ("DOCS", "Documentation"),
                ("HR", "Human resources"),
                ("ENG", "Engineering"),
            ]
            .iter()
            .map(|(k, n)| (k.to_string(), n.to_string()))
            .collect(),
            next_id: 100,
            ..FakeState::default()
        };
        FakeConfluence {
            server: FakeServer::start(state, serve_connection),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/wiki", self.server.port)
    }

    fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        self.server.with(f)
    }

    fn log(&self) -> Vec<Call> {
        self.with(|s| s.log.clone())
    }

    /// The permissions of `user`, as `space key:target` (sorted).
    fn perms_of(&self, user: &str) -> BTreeSet<String> {
        self.with(|s| {
            s.perms
                .values()
                .filter(|p| p.user == user)
                .map(|p| format!("{} {}:{}", p.space, p.key, p.target))
                .collect()
        })
    }

    /// The permission calls (POST and DELETE) for `user`, with their status.
    fn permission_calls(&self, user: &str) -> Vec<Call> {
        self.log()
            .into_iter()
            .filter(|c| c.path.contains("/permission"))
            .filter(|c| c.method == "DELETE" || c.body["subject"]["identifier"] == user)
            .collect()
    }
}

fn query(target: &str) -> (String, BTreeMap<String, String>) {
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let params = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    (path.to_string(), params)
}

/// Serves requests on one connection (keep-alive) until the peer closes or the test ends.
fn serve_connection(conn: TcpStream, state: &Mutex<FakeState>, stop: &AtomicBool) {
    common::fake_http::serve_connection(conn, stop, |r| {
        let json_body = r
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"));
        let auth = r.header("authorization").unwrap_or("");
        let (status, reply) = answer(state, &r.method, &r.target, &r.body, json_body, auth);
        Some((status, reply.to_string()))
    });
}

fn error(status: u16, message: &str) -> (u16, Value) {
    (status, json!({"statusCode": status, "message": message}))
}

/// Whether `body` is exactly a `SpacePermissionRequest` for a user:
/// `{"subject": {"type": "user", "identifier": u}, "operation": {"key": k, "target": t}}`.
fn permission_request(body: &Value) -> Option<(String, String, String)> {
    let obj = body.as_object()?;
    let subject = obj.get("subject")?.as_object()?;
    let operation = obj.get("operation")?.as_object()?;
    let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<BTreeSet<_>>();
    let want = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    if keys(obj) != want(&["subject", "operation"])
        || keys(subject) != want(&["type", "identifier"])
        || keys(operation) != want(&["key", "target"])
        || subject["type"] != "user"
    {
        return None;
    }
    Some((
        subject["identifier"].as_str()?.to_string(),
        operation["key"].as_str()?.to_string(),
        operation["target"].as_str()?.to_string(),
    ))
}

fn answer(
    state: &Mutex<FakeState>,
    method: &str,
    target: &str,
    raw: &[u8],
    json_body: bool,
    auth: &str,
) -> (u16, Value) {
    let mut s = state.lock().expect("fake state");
    let (path, q) = query(target);
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (status, reply) = if auth != BASIC {
        error(401, "not authenticated")
    } else {
        match (method, segments.as_slice()) {
            ("GET", ["wiki", "rest", "api", "space"]) => {
                if q.get("type").map(String::as_str) != Some("global") {
                    error(400, "expected type=global")
                } else {
                    let start: usize = q.get("start").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(25);
                    let results: Vec<Value> = s
                        .spaces
                        .iter()
                        .skip(start)
                        .take(limit)
                        .map(|(k, n)| json!({"id": 1, "key": k, "name": n, "type": "global"}))
                        .collect();
                    (
                        200,
                        json!({"results": results, "start": start, "limit": limit, "size": results.len()}),
                    )
                }
            }
            ("GET", ["wiki", "rest", "api", "space", key]) => {
                if !s.spaces.contains_key(*key) {
                    error(404, "No space with key")
                } else if q.get("expand").map(String::as_str) != Some("permissions") {
                    (200, json!({"key": key}))
                } else {
                    let permissions: Vec<Value> = s
                        .perms
                        .iter()
                        .filter(|(_, p)| p.space == *key)
                        .map(|(id, p)| {
                            json!({"id": id,
                                   "subjects": {"user": {"results": [{"type": "known", "username": p.user}], "size": 1}},
                                   "operation": {"operation": p.key, "targetType": p.target},
                                   "anonymousAccess": false, "unlicensedAccess": false})
                        })
                        .collect();
                    (200, json!({"key": key, "permissions": permissions}))
                }
            }
            ("POST", ["wiki", "rest", "api", "space", key, "permission"]) => {
                match permission_request(&body) {
                    _ if !json_body => error(415, "expected application/json"),
                    None => error(400, "not a SpacePermissionRequest"),
                    Some(_) if s.fail_posts > 0 => {
                        s.fail_posts -= 1;
                        error(500, "Internal server error")
                    }
                    Some((_, k, t)) if s.fail_op == Some(format!("{k}:{t}")) => {
                        error(500, "Internal server error")
                    }
                    Some(_) if !s.spaces.contains_key(*key) => error(404, "No space with key"),
                    Some((user, k, t)) => {
                        if !VALID.contains(&(k.as_str(), t.as_str())) {
                            error(400, "invalid operation and target")
                        } else {
                            let perm = Perm {
                                space: key.to_string(),
                                user,
                                key: k,
                                target: t,
                            };
                            if s.perms.values().any(|p| *p == perm) {
                                error(
                                    400,
                                    "com.atlassian.confluence.api.service.exceptions.BadRequestException: Permission already exists",
                                )
                            } else {
                                s.next_id += 1;
                                let id = s.next_id;
                                s.perms.insert(id, perm);
                                let mut reply = body.clone();
                                reply["id"] = json!(id);
                                (200, reply)
                            }
                        }
                    }
                }
            }
            ("DELETE", ["wiki", "rest", "api", "space", key, "permission", id]) => {
                let id: Option<u64> = id.parse().ok();
                match id {
                    Some(id) if s.perms.get(&id).is_some_and(|p| p.space == *key) => {
                        s.perms.remove(&id);
                        (204, Value::Null)
                    }
                    _ => error(404, "No permission with that id"),
                }
            }
            // The access group (a deactivation also takes the user out of it).
            ("PUT" | "DELETE", ["wiki", "rest", "api", "user", _, "group", _]) => {
                (204, Value::Null)
            }
            ("GET", ["wiki", "rest", "api", "group", _, "member"]) => {
                (200, json!({"results": [], "size": 0}))
            }
            _ => error(404, "no such endpoint"),
        }
    };
    s.log.push(Call {
        method: method.to_string(),
        path: target.to_string(),
        body,
        status,
    });
    (status, reply)
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

fn settings(fake: &FakeConfluence) -> Value {
    json!({"kind": "confluence", "licence_tier": 20, "shared_slots": 5,
    "connector": {
        "kind": "confluence",
        "base_url": fake.base(),
        "credentials_file": "confluence.cred",
        "access_group": "confluence-users",
        "timeout_s": 1,
        "retry_base_ms": 50,
        "retry_cap_s": 1,
        "auto_resync": false,
        "spaces": {"offered": [{"key": "read", "target": "space"},
                               {"key": "create", "target": "page"}]}
    }})
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

fn ask(c: &Client, user: &str, body: &[u8]) -> Resp {
    c.call(
        "POST",
        "/api/v1/products/wiki/space-requests",
        &[
            ("X-Slotpool-User", user),
            ("Content-Type", "application/json"),
        ],
        Some(body),
    )
}

fn step(c: &Client, id: &str, what: &str, body: Option<&Value>) -> Resp {
    c.admin(
        "POST",
        &format!("/admin/v1/products/wiki/space-requests/{id}/{what}"),
        body,
    )
}

fn request(c: &Client, id: &str) -> Value {
    let all = c.admin("GET", "/admin/v1/space-requests?product=wiki", None);
    assert_eq!(all.status, 200, "{all:?}");
    all.json()
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id).cloned())
        .unwrap_or(Value::Null)
}

fn wait_state(c: &Client, id: &str, state: &str) {
    wait_until(
        &format!("request {id} is {state}"),
        Duration::from_secs(15),
        || request(c, id)["state"] == state,
    );
}

fn id_of(r: &Resp) -> String {
    assert_eq!(r.status, 201, "{r:?}");
    r.json()["id"].as_str().expect("an id").to_string()
}

/// The connector has read everything durable (nothing pending).
fn settled(c: &Client) -> bool {
    let s = c
        .admin("GET", "/admin/v1/products/wiki/connector", None)
        .json();
    s["cursor"] == s["durable"] && s["backlog"] == 0 && s["attempts"] == 0
}

#[test]
fn space_requests_are_granted_once_revoked_and_never_resent() {
    let fake = FakeConfluence::start();
    let tmp = temp_dir();
    std::fs::write(tmp.path().join("confluence.cred"), "svc:s3cret\n").expect("credentials");
    let opts = with_secrets(Opts::new(&tmp.path().join("data"), tmp.path()), tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    c.put_product("wiki", settings(&fake));
    for u in ["ann", "bob", "cyd", "dan"] {
        c.enrol("wiki", u);
    }

    // The catalogue: fetched at the connector's start, with the offered operations.
    wait_until("the catalogue is fetched", Duration::from_secs(15), || {
        c.admin("GET", "/admin/v1/products/wiki/spaces", None)
            .json()["spaces"]
            .as_array()
            .is_some_and(|s| s.len() == 3)
    });
    let cat = c
        .admin("GET", "/admin/v1/products/wiki/spaces", None)
        .json();
    assert_eq!(cat["spaces"][0]["key"], "DOCS");
    assert_eq!(cat["spaces"][0]["name"], "Documentation");
    assert_eq!(
        cat["spaces"][1]["operations"],
        json!([{"key": "read", "target": "space"}, {"key": "create", "target": "page"}])
    );
    assert!(
        fake.log()
            .iter()
            .any(|c| c.method == "GET" && c.path.starts_with("/wiki/rest/api/space?type=global")),
        "{:?}",
        fake.log()
    );
    let mine = c.user("GET", "/api/v1/products/wiki/spaces", "ann");
    assert_eq!(mine.status, 200, "{mine:?}");
    assert_eq!(mine.json()["spaces"], cat["spaces"]);
    assert_eq!(mine.json()["requests"], json!([]));

    // Request, approve: the fake receives the permission POSTs with Confluence's body.
    let ann = id_of(&ask(
        &c,
        "ann",
        br#"{"space": "DOCS", "operations": [{"key": "read", "target": "space"}, "create:page"], "reason": "writing the manual"}"#,
    ));
    assert_eq!(request(&c, &ann)["state"], "open");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        fake.permission_calls("ann").is_empty(),
        "nothing before approval"
    );
    let r = step(
        &c,
        &ann,
        "approve",
        Some(&json!({"by": "carol", "note": "ok"})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["decision"]["by"], "carol");
    wait_state(&c, &ann, "granted");
    assert_eq!(
        fake.perms_of("ann"),
        ["DOCS create:page", "DOCS read:space"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let posts = fake.permission_calls("ann");
    assert_eq!(posts.len(), 2, "{posts:?}");
    for p in &posts {
        assert_eq!(p.method, "POST");
        assert_eq!(p.path, "/wiki/rest/api/space/DOCS/permission");
        assert_eq!(
            p.body["subject"],
            json!({"type": "user", "identifier": "ann"})
        );
        assert_eq!(p.status, 200);
    }
    let granted = request(&c, &ann);
    assert_eq!(granted["decision"]["note"], "ok");
    assert!(granted["permissions"]
        .as_array()
        .is_some_and(|p| p.iter().all(|g| g["permission_id"].is_u64())));

    // Reject: nothing is sent.
    let bob = id_of(&ask(
        &c,
        "bob",
        br#"{"space": "HR", "operations": ["read:space"], "reason": "curious"}"#,
    ));
    let r = step(&c, &bob, "reject", Some(&json!({"note": "no"})));
    assert_eq!(r.json()["state"], "rejected", "{r:?}");
    assert_eq!(r.json()["decision"]["by"], "admin");

    // Confluence fails first: retried, and the permission arrives once.
    fake.with(|s| s.fail_posts = 2);
    let cyd = id_of(&ask(
        &c,
        "cyd",
        br#"{"space": "ENG", "operations": ["read:space"], "reason": "on-call"}"#,
    ));
    assert_eq!(step(&c, &cyd, "approve", None).status, 200);
    wait_state(&c, &cyd, "granted");
    let calls = fake.permission_calls("cyd");
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![500, 500, 200], "{calls:?}");
    assert_eq!(fake.perms_of("cyd").len(), 1);

    // A permission Confluence already has counts as granted (and is found to remove).
    fake.with(|s| {
        s.perms.insert(
            7,
            Perm {
                space: "HR".into(),
                user: "dan".into(),
                key: "read".into(),
                target: "space".into(),
            },
        )
    });
    let dan = id_of(&ask(
        &c,
        "dan",
        br#"{"space": "HR", "operations": ["read:space"], "reason": "payroll"}"#,
    ));
    assert_eq!(step(&c, &dan, "approve", None).status, 200);
    wait_state(&c, &dan, "granted");
    assert_eq!(
        request(&c, &dan)["permissions"][0]["permission_id"],
        Value::Null
    );

    // Bad input: each refused with its reason, and nothing changes.
    let before = c.admin("GET", "/admin/v1/space-requests", None).json();
    let log_before = fake.log().len();
    for (user, body, status, reason) in [
        (
            "ann",
            &br#"{"space": "NOPE", "operations": ["read:space"], "reason": "x"}"#[..],
            422,
            "unknown_space",
        ),
        (
            "bob",
            br#"{"space": "DOCS", "operations": ["delete:page"], "reason": "x"}"#,
            422,
            "operation_not_offered",
        ),
        (
            "bob",
            br#"{"space": "DOCS", "operations": ["read:space", "read:space"], "reason": "x"}"#,
            422,
            "operation_not_offered",
        ),
        (
            "bob",
            br#"{"space": "DOCS", "operations": [], "reason": "x"}"#,
            422,
            "operation_not_offered",
        ),
        (
            "ann",
            br#"{"space": "DOCS", "operations": ["read:space"], "reason": "again"}"#,
            409,
            "duplicate_request",
        ),
        (
            "zed",
            br#"{"space": "DOCS", "operations": ["read:space"], "reason": "x"}"#,
            403,
            "unknown_user",
        ),
        (
            "bob",
            br#"{"space": "DOCS", "operations": ["read"], "reason": "x"}"#,
            422,
            "invalid_body",
        ),
        (
            "bob",
            br#"{"space": "DOCS", "operations": ["read:space"], "reason": " "}"#,
            422,
            "invalid_body",
        ),
        (
            "bob",
            br#"{"space": "DOCS", "operations": ["read:space"]}"#,
            422,
            "invalid_body",
        ),
        (
            "bob",
            br#"{"space": "DOCS", "operations": ["read:space"], "reason": "x", "extra": 1}"#,
            422,
            "invalid_body",
        ),
        ("bob", br#"{"space": "#, 400, "bad_json"),
    ] {
        assert_problem(&ask(&c, user, body), status, reason);
    }
    assert_problem(
        &step(&c, "not-a-uuid", "approve", None),
        400,
        "invalid_request_id",
    );
    assert_problem(
        &step(&c, "00000000-0000-4000-8000-000000000000", "approve", None),
        404,
        "unknown_request",
    );
    assert_problem(&step(&c, &ann, "approve", None), 409, "request_closed");
    assert_problem(&step(&c, &bob, "revoke", None), 409, "request_closed");
    assert_problem(
        &step(&c, &bob, "reject", Some(&json!({"note": 5}))),
        422,
        "invalid_body",
    );
    assert_problem(
        &c.admin("GET", "/admin/v1/space-requests?state=maybe", None),
        400,
        "bad_query",
    );
    assert_problem(
        &c.user("GET", "/api/v1/products/nope/spaces", "ann"),
        404,
        "unknown_product",
    );
    let r = c.admin(
        "PUT",
        "/admin/v1/products/wiki",
        Some(&{
            let mut s = settings(&fake);
            s["connector"]["spaces"]["offered"] = json!([{"key": "fly", "target": "space"}]);
            s
        }),
    );
    assert_problem(&r, 422, "invalid_settings");
    assert_eq!(
        c.admin("GET", "/admin/v1/space-requests", None).json(),
        before
    );
    assert_eq!(fake.log().len(), log_before, "bad input sent nothing");

    // An administrator revokes: the fake receives the DELETE of that permission.
    let cyd_perm = request(&c, &cyd)["permissions"][0]["permission_id"].clone();
    let r = step(&c, &cyd, "revoke", Some(&json!({"by": "carol"})));
    assert_eq!(r.status, 200, "{r:?}");
    wait_state(&c, &cyd, "revoked");
    assert!(fake.perms_of("cyd").is_empty());
    assert!(fake.log().iter().any(|c| c.method == "DELETE"
        && c.path == format!("/wiki/rest/api/space/ENG/permission/{cyd_perm}")));
    // The permission that had no id is looked up, then deleted.
    assert_eq!(step(&c, &dan, "revoke", None).status, 200);
    wait_state(&c, &dan, "revoked");
    assert!(fake.perms_of("dan").is_empty());
    assert!(fake
        .log()
        .iter()
        .any(|c| c.method == "GET" && c.path == "/wiki/rest/api/space/HR?expand=permissions"));

    // Deactivating the user: the fake receives the DELETEs of what was granted.
    let ann_perms: BTreeSet<String> = request(&c, &ann)["permissions"]
        .as_array()
        .expect("granted permissions")
        .iter()
        .map(|p| {
            format!(
                "/wiki/rest/api/space/DOCS/permission/{}",
                p["permission_id"]
            )
        })
        .collect();
    let r = c.admin(
        "PUT",
        "/admin/v1/users/ann",
        Some(&json!({"active": false})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    wait_state(&c, &ann, "revoked");
    assert!(fake.perms_of("ann").is_empty());
    let deleted: BTreeSet<String> = fake
        .log()
        .iter()
        .filter(|c| c.method == "DELETE" && c.status == 204)
        .map(|c| c.path.clone())
        .filter(|p| ann_perms.contains(p))
        .collect();
    assert_eq!(deleted.len(), 2, "{ann_perms:?}");
    assert_eq!(deleted, ann_perms, "each of ann's permissions deleted");
    let revoked = request(&c, &ann);
    assert_eq!(revoked["revoked"]["reason"], "deactivated");
    assert_eq!(revoked["revoked"]["by"], "directory");
    assert_problem(
        &ask(
            &c,
            "ann",
            br#"{"space": "HR", "operations": ["read:space"], "reason": "x"}"#,
        ),
        403,
        "deactivated",
    );
    let status = c
        .admin("GET", "/admin/v1/products/wiki/connector", None)
        .json();
    assert_eq!(status["spaces"]["granted"], 3, "{status}");
    assert_eq!(status["spaces"]["removed"], 3, "{status}");

    // A restart re-sends nothing that was acknowledged: only the catalogue is read again.
    wait_until("the connector is idle", Duration::from_secs(10), || {
        settled(&c)
    });
    server.stop();
    let sent_before = fake.log().len();
    let server = Server::start(&opts);
    let c = server.client();
    wait_until(
        "the catalogue is fetched again",
        Duration::from_secs(15),
        || {
            fake.log()[sent_before..]
                .iter()
                .any(|c| c.path.starts_with("/wiki/rest/api/space?type=global"))
        },
    );
    wait_until("the connector is idle", Duration::from_secs(10), || {
        settled(&c)
    });
    std::thread::sleep(Duration::from_millis(300));
    let after: Vec<Call> = fake.log()[sent_before..]
        .iter()
        .filter(|c| c.path.contains("/permission"))
        .cloned()
        .collect();
    assert!(after.is_empty(), "re-sent after the restart: {after:?}");
    for (id, state) in [(&ann, "revoked"), (&bob, "rejected"), (&cyd, "revoked")] {
        assert_eq!(request(&c, id)["state"], state);
    }
    // The audit trail: the user's timeline (offline audit of the stopped service's data)
    // has every step of the request.
    let mut server = server;
    server.stop();
    let data = tmp.path().join("data");
    let out = slotpool_command()
        .args([
            "audit",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--product",
            "wiki",
        ])
        .args(["--user", "ann", "--format", "json"])
        .output()
        .expect("run slotpool audit");
    assert!(out.status.success(), "{out:?}");
    let audit: Value = serde_json::from_slice(&out.stdout).expect("audit JSON");
    let steps: Vec<&str> = audit["timeline"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|k| k.starts_with("space"))
        .collect();
    assert_eq!(
        steps,
        vec![
            "space_requested",
            "space_request_approved",
            "space_access_granted",
            "space_access_revoked",
            "space_access_removed"
        ],
        "{audit}"
    );
}

#[test]
fn a_product_without_space_entitlements_refuses_space_calls() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    c.put_product(
        "wiki",
        json!({"kind": "confluence", "licence_tier": 5, "shared_slots": 2}),
    );
    c.enrol("wiki", "ann");
    assert_problem(
        &c.user("GET", "/api/v1/products/wiki/spaces", "ann"),
        404,
        "no_spaces",
    );
    assert_problem(
        &ask(
            &c,
            "ann",
            br#"{"space": "DOCS", "operations": ["read:space"], "reason": "x"}"#,
        ),
        404,
        "no_spaces",
    );
    assert_problem(
        &c.admin("POST", "/admin/v1/products/wiki/spaces/refresh", None),
        404,
        "no_spaces",
    );
    let r = c.admin(
        "PUT",
        "/admin/v1/products/wiki",
        Some(&json!({"kind": "confluence", "licence_tier": 5, "shared_slots": 2,
                     "connector": {"kind": "jira", "base_url": "http://127.0.0.1:9/", "credentials_file": "j.cred",
                                   "access_group": "g", "spaces": {}}})),
    );
    assert_problem(&r, 422, "invalid_settings");
    assert_eq!(
        c.admin("GET", "/admin/v1/space-requests", None).json(),
        json!([])
    );
}

#[test]
fn a_kill_9_in_the_middle_of_a_grant_loses_nothing_and_grants_once() {
    let fake = FakeConfluence::start();
    let tmp = temp_dir();
    std::fs::write(tmp.path().join("confluence.cred"), "svc:s3cret").expect("credentials");
    let opts = with_secrets(Opts::new(&tmp.path().join("data"), tmp.path()), tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    c.put_product("wiki", settings(&fake));
    c.enrol("wiki", "eve");
    wait_until("the catalogue is fetched", Duration::from_secs(15), || {
        c.admin("GET", "/admin/v1/products/wiki/spaces", None)
            .json()["spaces"]
            .as_array()
            .is_some_and(|s| s.len() == 3)
    });
    // The first operation (create:page, in order) is granted, the second fails:
    // slotpool dies in between.
    fake.with(|s| s.fail_op = Some("read:space".into()));
    let eve = id_of(&ask(
        &c,
        "eve",
        br#"{"space": "DOCS", "operations": ["read:space", "create:page"], "reason": "x"}"#,
    ));
    assert_eq!(step(&c, &eve, "approve", None).status, 200);
    wait_until("the grant is failing", Duration::from_secs(10), || {
        c.admin("GET", "/admin/v1/products/wiki/connector", None)
            .json()["attempts"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    });
    assert_eq!(fake.perms_of("eve").len(), 1, "the first one is in");
    server.kill9();
    fake.with(|s| s.fail_op = None);
    let server = Server::start(&opts);
    let c = server.client();
    wait_state(&c, &eve, "granted");
    wait_until("the connector is idle", Duration::from_secs(10), || {
        settled(&c)
    });
    let ok: Vec<Call> = fake
        .permission_calls("eve")
        .into_iter()
        .filter(|c| c.status == 200)
        .collect();
    assert_eq!(ok.len(), 2, "each permission granted once: {ok:?}");
    assert_eq!(fake.perms_of("eve").len(), 2);
    // The one granted before the kill was asked again: Confluence said it exists.
    let permissions = request(&c, &eve)["permissions"].clone();
    let ids: Vec<&Value> = permissions
        .as_array()
        .expect("permissions")
        .iter()
        .map(|p| &p["permission_id"])
        .collect();
    assert_eq!(
        ids.iter().filter(|id| id.is_null()).count(),
        1,
        "{permissions}"
    );

    // A space deleted in Confluence (still in the catalogue): the grant is refused for
    // good, the request fails, and the work behind it is not held up.
    fake.with(|s| s.spaces.remove("ENG"));
    let gone = id_of(&ask(
        &c,
        "eve",
        br#"{"space": "ENG", "operations": ["read:space"], "reason": "x"}"#,
    ));
    let hr = id_of(&ask(
        &c,
        "eve",
        br#"{"space": "HR", "operations": ["read:space"], "reason": "x"}"#,
    ));
    assert_eq!(step(&c, &gone, "approve", None).status, 200);
    assert_eq!(step(&c, &hr, "approve", None).status, 200);
    wait_state(&c, &gone, "failed");
    wait_state(&c, &hr, "granted");
    let failed = request(&c, &gone);
    assert!(
        failed["failed"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("404")),
        "{failed}"
    );
    assert_problem(
        &ask(
            &c,
            "eve",
            br#"{"space": "ENG", "operations": ["read:space"], "reason": "x"}"#,
        ),
        409,
        "duplicate_request",
    );
    assert_eq!(step(&c, &gone, "revoke", None).status, 200);
    wait_state(&c, &gone, "revoked");
    let status = c
        .admin("GET", "/admin/v1/products/wiki/connector", None)
        .json();
    assert_eq!(status["spaces"]["refused"], 1, "{status}");
    assert_eq!(status["attempts"], 0, "{status}");
}
