//! Harness shared by the end-to-end tests: a real `slotpool` process on a free port with
//! its own data dir, a small HTTP client, the pool invariants and a load generator.
//!
//! Every server is killed when its [`Server`] is dropped, so no process outlives a test.
//! Each start writes its stdout and stderr to files in the test's temp dir; when a test
//! fails, the tails of those files are printed for diagnosis.

#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod fake_http;
pub mod fault_proxy;
pub mod linearizable;
pub mod stored;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The admin token every test server gets through `SLOTPOOL_ADMIN_TOKEN`.
pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_slotpool")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A temp dir for one test.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("slotpool-e2e-")
        .tempdir()
        .expect("temp dir")
}

/// A `slotpool` command with no `SLOTPOOL_*` variable inherited from the caller, but
/// `E2E_SERVER_LOG` as its `SLOTPOOL_LOG` filter when set (to debug one test's servers:
/// `E2E_SERVER_LOG=info,openraft=debug cargo test --test ...`).
pub fn slotpool_command() -> Command {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SLOTPOOL_") {
            cmd.env_remove(&k);
        }
    }
    if let Some(filter) = std::env::var_os("E2E_SERVER_LOG") {
        cmd.env("SLOTPOOL_LOG", filter);
    }
    cmd.env("RUST_BACKTRACE", "1");
    cmd.stdin(Stdio::null());
    cmd
}

static STARTS: AtomicUsize = AtomicUsize::new(0);

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Opts {
    /// `--data-dir`; `None` leaves it to the default (`./data` in `cwd`).
    pub data_dir: Option<PathBuf>,
    /// Where stdout/stderr files go (and the cwd unless `cwd` is set).
    pub log_dir: PathBuf,
    /// Working directory of the process.
    pub cwd: Option<PathBuf>,
    /// `SLOTPOOL_ADMIN_TOKEN`; `None` leaves it unset.
    pub token: Option<String>,
    /// Further arguments after `serve`.
    pub args: Vec<String>,
}

impl Opts {
    /// A server on `data_dir` with the fixed admin token, logging into `log_dir`.
    pub fn new(data_dir: &Path, log_dir: &Path) -> Self {
        Opts {
            data_dir: Some(data_dir.to_path_buf()),
            log_dir: log_dir.to_path_buf(),
            cwd: None,
            token: Some(ADMIN_TOKEN.to_string()),
            args: Vec::new(),
        }
    }

    /// Adds arguments.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
}

/// One running (or exited) `slotpool serve` process.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub base: String,
    pub data_dir: Option<PathBuf>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    pub token: String,
    exit: Option<ExitStatus>,
}

impl Server {
    /// Starts a server and waits until `/readyz` answers 200.
    pub fn start(opts: &Opts) -> Server {
        // The free port may be taken by another test between its choice and the bind:
        // then try another one.
        for _ in 0..3 {
            let mut s = Server::spawn(opts);
            if s.wait_ready_or_bind_failure(Duration::from_secs(15)) {
                return s;
            }
        }
        panic!("no free port found in 3 attempts");
    }

    /// Like [`Server::wait_ready`], but returns false if the process exited because it
    /// could not listen on its port.
    fn wait_ready_or_bind_failure(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.try_wait().is_some() {
                if self.stderr().contains("cannot listen") {
                    return false;
                }
                break;
            }
            // Ready means this process answers: another test's server that took the port
            // in between answers /readyz too, while this one is failing to bind it.
            if self.ready_now() && self.try_wait().is_none() && self.says_listening() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.wait_ready(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100)),
        );
        true
    }

    /// Whether this process printed that it listens (once it has bound its port).
    fn says_listening(&self) -> bool {
        std::fs::read_to_string(&self.stdout_path).is_ok_and(|o| o.contains("listening on"))
    }

    fn ready_now(&self) -> bool {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build()
            .get(&format!("{}/readyz", self.base))
            .call()
            .is_ok_and(|r| r.status() == 200)
    }

    /// Starts a server without waiting for it.
    pub fn spawn(opts: &Opts) -> Server {
        Server::spawn_on(opts, free_port())
    }

    /// Starts a server listening on `port` (`--listen 127.0.0.1:<port>`) without waiting
    /// for it: a cluster node restarted on the address its peers know.
    pub fn spawn_on(opts: &Opts, port: u16) -> Server {
        let n = STARTS.fetch_add(1, Ordering::SeqCst);
        let stdout_path = opts.log_dir.join(format!("serve-{n}-{port}.stdout"));
        let stderr_path = opts.log_dir.join(format!("serve-{n}-{port}.stderr"));
        let mut cmd = slotpool_command();
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"));
        if let Some(d) = &opts.data_dir {
            cmd.arg("--data-dir").arg(d);
        }
        cmd.args(&opts.args);
        if let Some(t) = &opts.token {
            cmd.env("SLOTPOOL_ADMIN_TOKEN", t);
        }
        cmd.current_dir(opts.cwd.as_deref().unwrap_or(&opts.log_dir));
        cmd.stdout(std::fs::File::create(&stdout_path).expect("stdout file"));
        cmd.stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
        let child = cmd.spawn().expect("spawn slotpool serve");
        Server {
            child: Some(child),
            port,
            base: format!("http://127.0.0.1:{port}"),
            data_dir: opts.data_dir.clone(),
            stdout_path,
            stderr_path,
            token: opts.token.clone().unwrap_or_default(),
            exit: None,
        }
    }

    /// Polls `/readyz` until it answers 200; fails (with the logs) if the process exits
    /// or `timeout` passes.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "slotpool serve exited with {status} before it was ready\n{}",
                    self.logs()
                );
            }
            // Ready, and it is this process that answers: it is still running.
            if self.ready_now() && self.try_wait().is_none() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "slotpool serve not ready after {timeout:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("child").id() as i32
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(c) = self.child.as_mut() {
                self.exit = c.try_wait().expect("try_wait");
            }
        }
        self.exit
    }

    /// Waits for the process to exit, failing after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "slotpool serve still running {timeout:?} later\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        if self.try_wait().is_none() {
            // SAFETY: plain syscall on the pid of our own child, which we have not reaped.
            let rc = unsafe { libc::kill(self.pid(), libc::SIGKILL) };
            assert_eq!(rc, 0, "kill -9 failed");
        }
        self.wait_exit(Duration::from_secs(10));
    }

    /// Sends `signal` (`libc::SIGSTOP`, `libc::SIGCONT`, ...) to the running process.
    pub fn signal(&mut self, signal: i32) {
        assert!(self.try_wait().is_none(), "server already exited");
        // SAFETY: plain syscall on the pid of our own child, which we have not reaped.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill -{signal} failed");
    }

    /// SIGTERM and wait for the exit (drain, flush); returns the exit status.
    pub fn sigterm(&mut self) -> ExitStatus {
        assert!(self.try_wait().is_none(), "server already exited");
        // SAFETY: plain syscall on the pid of our own child, which we have not reaped.
        let rc = unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM failed");
        self.wait_exit(Duration::from_secs(20))
    }

    /// SIGTERM and assert a clean exit 0.
    pub fn stop(&mut self) {
        let s = self.sigterm();
        assert_eq!(
            s.code(),
            Some(0),
            "SIGTERM should exit 0, got {s}\n{}",
            self.logs()
        );
    }

    /// Everything the process wrote to stdout.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Everything the process wrote to stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The tails of stdout and stderr, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- stdout ({}) ---\n{}\n--- stderr ({}) ---\n{}",
            self.stdout_path.display(),
            tail(&self.stdout(), 4000),
            self.stderr_path.display(),
            tail(&self.stderr(), 8000)
        )
    }

    /// A client with the server's admin token.
    pub fn client(&self) -> Client {
        Client::new(&self.base, &self.token)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.exit.is_none() && c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "=== slotpool server on port {} ===\n{}",
                self.port,
                self.logs()
            );
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// The outcome of a finished `slotpool` subcommand.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `slotpool verify --data-dir dir`.
pub fn verify(dir: &Path) -> Output {
    let out = slotpool_command()
        .arg("verify")
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run slotpool verify");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts that `slotpool verify` finds `dir` intact.
pub fn assert_verify_ok(dir: &Path) {
    let v = verify(dir);
    assert_eq!(v.code, Some(0), "slotpool verify should exit 0: {v:#?}");
}

// ---------------------------------------------------------------------------------------
// HTTP

/// One HTTP answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `state` of a slot answer.
    pub fn state(&self) -> String {
        self.json()["state"].as_str().unwrap_or("").to_string()
    }
}

/// A transport failure: no (complete) answer.
#[derive(Debug, Clone)]
pub struct CallError(pub String);

/// A small blocking HTTP client bound to one server.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
    pub token: String,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) with admin `token`.
    pub fn new(base: &str, token: &str) -> Self {
        Client::with_timeout(base, token, Duration::from_secs(20))
    }

    /// Like [`Client::new`], giving up on a call after `timeout` (a paused server never
    /// answers).
    pub fn with_timeout(base: &str, token: &str, timeout: Duration) -> Self {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout(timeout)
                .redirects(0)
                .build(),
            base: base.to_string(),
            token: token.to_string(),
        }
    }

    /// Sends any request; any status is an `Ok`.
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Resp, CallError> {
        let mut req = self
            .agent
            .request(method, &format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(CallError(t.to_string())),
        };
        let status = resp.status();
        let content_type = resp.header("content-type").unwrap_or("").to_string();
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|n| {
                let v = resp.header(&n).unwrap_or("").to_string();
                (n, v)
            })
            .collect();
        let body = resp
            .into_string()
            .map_err(|e| CallError(format!("reading the body: {e}")))?;
        Ok(Resp {
            status,
            content_type,
            headers,
            body,
        })
    }

    /// Sends any request; a transport failure fails the test.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        self.try_call(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: transport error {e:?}"))
    }

    /// An admin call with the bearer token and an optional JSON body.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let auth = format!("Bearer {}", self.token);
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.call(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            bytes.as_deref(),
        )
    }

    /// An admin call with a raw body.
    pub fn admin_raw(&self, method: &str, path: &str, body: &[u8]) -> Resp {
        let auth = format!("Bearer {}", self.token);
        self.call(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Some(body),
        )
    }

    /// A user call through the (trusted, loopback) proxy header.
    pub fn user(&self, method: &str, path: &str, user: &str) -> Resp {
        self.call(method, path, &[("X-Slotpool-User", user)], None)
    }

    /// `POST /api/v1/products/{p}/slot` as `user`.
    pub fn request(&self, product: &str, user: &str) -> Resp {
        self.user("POST", &format!("/api/v1/products/{product}/slot"), user)
    }

    /// `GET /api/v1/products/{p}/slot` as `user`.
    pub fn slot(&self, product: &str, user: &str) -> Resp {
        self.user("GET", &format!("/api/v1/products/{product}/slot"), user)
    }

    /// `DELETE /api/v1/products/{p}/slot` as `user`.
    pub fn release(&self, product: &str, user: &str) -> Resp {
        self.user("DELETE", &format!("/api/v1/products/{product}/slot"), user)
    }

    /// Creates or updates a product; asserts 200 or 201.
    pub fn put_product(&self, product: &str, settings: Value) -> Resp {
        let r = self.admin(
            "PUT",
            &format!("/admin/v1/products/{product}"),
            Some(&settings),
        );
        assert!(
            r.status == 200 || r.status == 201,
            "PUT product {product}: {r:?}"
        );
        r
    }

    /// Enrols `user` in `product`; asserts 204.
    pub fn enrol(&self, product: &str, user: &str) {
        let r = self.admin(
            "PUT",
            &format!("/admin/v1/products/{product}/members/{user}"),
            None,
        );
        assert_eq!(r.status, 204, "enrol {user} in {product}: {r:?}");
    }

    /// `GET /admin/v1/products/{p}` as JSON; asserts 200.
    pub fn product(&self, product: &str) -> Value {
        let r = self.admin("GET", &format!("/admin/v1/products/{product}"), None);
        assert_eq!(r.status, 200, "GET product {product}: {r:?}");
        r.json()
    }

    /// Holder user names, in the server's order.
    pub fn holders(&self, product: &str) -> Vec<String> {
        names(&self.holders_json(product))
    }

    /// `GET /admin/v1/products/{p}/holders`; asserts 200.
    pub fn holders_json(&self, product: &str) -> Value {
        let r = self.admin(
            "GET",
            &format!("/admin/v1/products/{product}/holders"),
            None,
        );
        assert_eq!(r.status, 200, "GET holders: {r:?}");
        r.json()
    }

    /// Queue user names, head first.
    pub fn queue(&self, product: &str) -> Vec<String> {
        names(&self.queue_json(product))
    }

    /// `GET /admin/v1/products/{p}/queue`; asserts 200.
    pub fn queue_json(&self, product: &str) -> Value {
        let r = self.admin("GET", &format!("/admin/v1/products/{product}/queue"), None);
        assert_eq!(r.status, 200, "GET queue: {r:?}");
        r.json()
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {list}"))
        .iter()
        .map(|h| h["user"].as_str().expect("user field").to_string())
        .collect()
}

/// Asserts an RFC 9457 problem with `status` and `reason`; returns its body.
#[track_caller]
pub fn assert_problem(r: &Resp, status: u16, reason: &str) -> Value {
    assert_eq!(r.status, status, "expected {status} {reason}, got {r:?}");
    assert!(
        r.content_type.starts_with("application/problem+json"),
        "expected application/problem+json, got {r:?}"
    );
    let j = r.json();
    assert_eq!(j["reason"], json!(reason), "wrong reason: {r:?}");
    assert_eq!(j["status"], json!(status), "status field: {r:?}");
    for f in ["type", "title", "detail"] {
        assert!(j[f].is_string(), "problem without {f}: {r:?}");
    }
    j
}

// ---------------------------------------------------------------------------------------
// Invariants

/// What the admin API shows of a product's pool at one moment.
#[derive(Debug, Clone)]
pub struct PoolView {
    pub product: Value,
    pub holders: Vec<String>,
    pub queue: Vec<String>,
}

/// Reads a product's pool and checks the rules that hold after every event: never more
/// holders than `shared_slots`, nobody both holding and queued, a queue only when the
/// pool is full (or, with reservations, when no queued member may take a free slot),
/// queue positions 1..n, and counts matching the lists. Call it while no
/// other client changes the product.
#[track_caller]
pub fn check_invariants(c: &Client, product: &str) -> PoolView {
    let (view, violations) = invariant_violations(c, product);
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    view
}

/// Like [`check_invariants`], but returns every broken rule (with the pool it saw)
/// instead of failing, so that a long run can count them.
pub fn invariant_violations(c: &Client, product: &str) -> (PoolView, Vec<String>) {
    let view = c.product(product);
    let holders_json = c.holders_json(product);
    let queue_json = c.queue_json(product);
    let holders = names(&holders_json);
    let queue = names(&queue_json);
    // The pool's size now: what a schedule makes of `shared_slots` (scheduled capacity).
    let shared = view["effective_shared_slots"]
        .as_u64()
        .or_else(|| view["shared_slots"].as_u64())
        .expect("shared_slots") as usize;
    let ctx = format!("product {view}\nholders {holders_json}\nqueue {queue_json}");
    let mut violations = Vec::new();
    let mut check = |ok: bool, what: &str| {
        if !ok {
            violations.push(format!("{what}\n{ctx}"));
        }
    };
    check(holders.len() <= shared, "more holders than shared_slots");
    let hs: HashSet<&String> = holders.iter().collect();
    let qs: HashSet<&String> = queue.iter().collect();
    check(hs.len() == holders.len(), "a user holds twice");
    check(qs.len() == queue.len(), "a user is queued twice");
    check(hs.is_disjoint(&qs), "a user both holds and is queued");
    // Rule 10: with reservations a queue beside free slots is right when every queued
    // member may not take one (their slot state says why they wait).
    let reserving = view["reservations"]
        .as_array()
        .is_some_and(|r| !r.is_empty());
    let all_blocked = || {
        queue.iter().all(|u| {
            c.slot(product, u)
                .json()
                .get("waiting_for")
                .is_some_and(|w| w == "group_cap" || w == "reserved")
        })
    };
    check(
        queue.is_empty() || holders.len() == shared || (reserving && all_blocked()),
        "a queue while slots are free",
    );
    let positions: Vec<u64> = queue_json
        .as_array()
        .expect("queue array")
        .iter()
        .map(|q| q["position"].as_u64().expect("position"))
        .collect();
    let expected: Vec<u64> = (1..=queue.len() as u64).collect();
    check(positions == expected, "queue positions");
    check(
        view["holders"].as_u64() == Some(holders.len() as u64),
        "holders count",
    );
    check(
        view["queued"].as_u64() == Some(queue.len() as u64),
        "queued count",
    );
    let fixed = view["fixed"].as_u64().unwrap_or(0);
    let tier = view["licence_tier"].as_u64().unwrap_or(0);
    check(
        fixed + shared as u64 <= tier,
        "fixed users + shared_slots exceed the licence tier",
    );
    (
        PoolView {
            product: view,
            holders,
            queue,
        },
        violations,
    )
}

// ---------------------------------------------------------------------------------------
// Load

/// What a client last heard from the server about its own slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Released (or never asked): the server said nothing is held.
    None,
    /// A request was answered `granted`.
    Granted,
    /// A request was answered `queued`.
    Queued,
}

/// A user operation of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Request,
    Release,
}

/// One load client's record: its last acknowledged outcome and what was in flight when
/// the connection failed.
#[derive(Debug, Clone)]
pub struct Track {
    pub user: String,
    pub last: Known,
    pub in_flight: Option<Op>,
    pub acked: u64,
    pub transport_error: Option<String>,
    pub unexpected: Vec<String>,
    /// Pause after each answer, at most this long (0: none). A client that pauses is
    /// often idle when the server dies, and then its state must match exactly.
    pub think_ms: u64,
    /// Whether the client also reports activity (`POST .../activity`) now and then while
    /// it holds a slot.
    pub activity: bool,
}

impl Track {
    /// A client whose user stands as `last`.
    pub fn new(user: &str, last: Known) -> Self {
        Track {
            user: user.to_string(),
            last,
            in_flight: None,
            acked: 0,
            transport_error: None,
            unexpected: Vec::new(),
            think_ms: 0,
            activity: false,
        }
    }

    /// The same client, also reporting activity while it holds a slot.
    pub fn active(mut self) -> Self {
        self.activity = true;
        self
    }

    /// The same client, pausing up to `ms` after each answer.
    pub fn thinking(mut self, ms: u64) -> Self {
        self.think_ms = ms;
        self
    }

    /// The states the server may show for this user now, given the last acknowledged
    /// operation and at most the one unacknowledged operation in flight. Being granted
    /// from the queue by others' releases is always allowed.
    pub fn allowed(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = match self.last {
            Known::None => vec!["none"],
            Known::Granted => vec!["granted"],
            Known::Queued => vec!["granted", "queued"],
        };
        match self.in_flight {
            Some(Op::Request) => v.extend(["granted", "queued"]),
            Some(Op::Release) => v.push("none"),
            None => {}
        }
        v.sort();
        v.dedup();
        v
    }
}

/// Parses a slot state into what a client would know.
pub fn known(state: &str) -> Known {
    match state {
        "granted" => Known::Granted,
        "queued" => Known::Queued,
        "none" => Known::None,
        other => panic!("unexpected slot state {other:?}"),
    }
}

/// A running load: its threads and the count of operations acknowledged so far.
pub struct Load {
    handles: Vec<JoinHandle<Track>>,
    /// Operations acknowledged so far, by all threads.
    pub acks: Arc<AtomicU64>,
}

impl Load {
    /// Waits until at least `n` operations were acknowledged; fails after `timeout`.
    pub fn wait_for_acks(&self, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.acks.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "only {} operations acknowledged after {timeout:?}",
                self.acks.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Joins the threads (after `stop` is set or the server died).
    pub fn join(self) -> Vec<Track> {
        join_load(self.handles)
    }
}

/// Runs one thread per track, each toggling request/release for its own user as fast as
/// the server answers, until `stop` is set or the connection fails.
pub fn start_load(base: &str, product: &str, tracks: Vec<Track>, stop: &Arc<AtomicBool>) -> Load {
    let acks = Arc::new(AtomicU64::new(0));
    let handles = tracks
        .into_iter()
        .map(|t| {
            let client = Client::new(base, "");
            let product = product.to_string();
            let stop = Arc::clone(stop);
            let acks = Arc::clone(&acks);
            std::thread::spawn(move || load_worker(client, &product, t, &stop, &acks))
        })
        .collect();
    Load { handles, acks }
}

/// Joins the load threads.
pub fn join_load(handles: Vec<JoinHandle<Track>>) -> Vec<Track> {
    handles
        .into_iter()
        .map(|h| h.join().expect("load thread panicked"))
        .collect()
}

fn load_worker(
    client: Client,
    product: &str,
    mut t: Track,
    stop: &AtomicBool,
    acks: &AtomicU64,
) -> Track {
    let path = format!("/api/v1/products/{product}/slot");
    let mut rng = Rng(t.user.bytes().fold(0x9E37_79B9_7F4A_7C15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    }) | 1);
    let activity_path = format!("/api/v1/products/{product}/activity");
    while !stop.load(Ordering::SeqCst) {
        if t.activity && t.last == Known::Granted && rng.next() % 3 == 0 {
            // Activity changes nothing a restart must keep; a holder must get 204.
            match client.try_call(
                "POST",
                &activity_path,
                &[("X-Slotpool-User", &t.user)],
                None,
            ) {
                Ok(r) if r.status == 204 => {
                    t.acked += 1;
                    acks.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                Ok(r) if r.status == 503 => {
                    t.transport_error = Some(format!("{r:?}"));
                    break;
                }
                Ok(r) => {
                    t.unexpected.push(format!("POST {activity_path}: {r:?}"));
                    break;
                }
                Err(e) => {
                    t.transport_error = Some(e.0);
                    break;
                }
            }
        }
        let op = if t.last == Known::None {
            Op::Request
        } else {
            Op::Release
        };
        let method = match op {
            Op::Request => "POST",
            Op::Release => "DELETE",
        };
        let r = match client.try_call(method, &path, &[("X-Slotpool-User", &t.user)], None) {
            // 503: the service could not promise the change; like a lost connection, it
            // may or may not have happened.
            Ok(r) if r.status == 503 => {
                t.in_flight = Some(op);
                t.transport_error = Some(format!("{r:?}"));
                break;
            }
            Ok(r) => r,
            Err(e) => {
                // Sent or not, it was not acknowledged: it may or may not have happened.
                t.in_flight = Some(op);
                t.transport_error = Some(e.0);
                break;
            }
        };
        match (op, r.status) {
            (Op::Request, 200) => match r.state().as_str() {
                "granted" => t.last = Known::Granted,
                "queued" => t.last = Known::Queued,
                _ => {
                    t.unexpected.push(format!("{method} {path}: {r:?}"));
                    break;
                }
            },
            (Op::Release, 204) => t.last = Known::None,
            _ => {
                t.unexpected.push(format!("{method} {path}: {r:?}"));
                break;
            }
        }
        t.acked += 1;
        acks.fetch_add(1, Ordering::SeqCst);
        if t.think_ms > 0 {
            let ms = rng.range(t.think_ms / 2, t.think_ms + 1);
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
    t
}

/// Checks every user's state against its track; returns the observed states.
#[track_caller]
pub fn check_tracks(c: &Client, product: &str, tracks: &[Track]) -> BTreeMap<String, String> {
    let (observed, bad) = track_mismatches(c, product, tracks);
    assert!(
        bad.is_empty(),
        "states inconsistent with acknowledged operations:\n{}",
        bad.join("\n")
    );
    observed
}

/// Like [`check_tracks`], but returns the users whose state contradicts an acknowledged
/// operation (a lost change) instead of failing.
pub fn track_mismatches(
    c: &Client,
    product: &str,
    tracks: &[Track],
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut observed = BTreeMap::new();
    let mut bad = Vec::new();
    for t in tracks {
        let r = c.slot(product, &t.user);
        assert_eq!(r.status, 200, "GET slot of {}: {r:?}", t.user);
        let state = r.state();
        if !t.allowed().contains(&state.as_str()) {
            bad.push(format!(
                "{}: server says {state:?}, allowed {:?} (last acked {:?}, in flight {:?})",
                t.user,
                t.allowed(),
                t.last,
                t.in_flight
            ));
        }
        observed.insert(t.user.clone(), state);
    }
    (observed, bad)
}

/// The users of the load tests.
pub fn load_users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i:02}")).collect()
}

/// A tiny deterministic PRNG (xorshift64*), seeded from the clock unless
/// `SLOTPOOL_E2E_SEED` is set; the seed is printed so that a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    /// A generator; prints its seed.
    pub fn from_env_or_clock() -> Rng {
        let seed = std::env::var("SLOTPOOL_E2E_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(42)
            });
        eprintln!("e2e seed: SLOTPOOL_E2E_SEED={seed}");
        Rng(seed | 1)
    }

    /// A generator from a fixed seed (for tests that must replay the same numbers).
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Sends raw bytes as one HTTP/1.1 request (which should say `Connection: close`) and
/// parses the answer: for requests a well-behaved client library refuses to send.
pub fn raw_request(port: u16, request: &[u8]) -> Resp {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).expect("write request");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Resp {
        status,
        content_type,
        headers,
        body: body.to_string(),
    }
}

/// The SCIM error schema.
pub const SCIM_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM error: status, `status` as a string, schema, content type and `scimType`.
pub fn assert_scim_error(r: &Resp, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.content_type.starts_with("application/scim+json"),
        "{}",
        r.content_type
    );
    let b = r.json();
    assert_eq!(b["schemas"], serde_json::json!([SCIM_ERROR]), "{b}");
    assert_eq!(b["status"], serde_json::json!(status.to_string()), "{b}");
    assert_eq!(b["scimType"].as_str(), scim_type, "{b}");
    assert!(b["detail"].is_string(), "{b}");
}

/// SCIM calls (`/scim/v2...`) with the SCIM token the server generated in its data dir.
pub struct Scim {
    pub c: Client,
    pub token: String,
}

impl Scim {
    /// A SCIM client of `s`, which must run on a data dir of its own.
    pub fn new(s: &Server) -> Scim {
        let dir = s.data_dir.clone().expect("data dir");
        let token = std::fs::read_to_string(dir.join("scim_token"))
            .expect("a SCIM token generated in the data dir")
            .trim()
            .to_string();
        Scim {
            c: s.client(),
            token,
        }
    }

    /// A SCIM call with `token` (none: no Authorization header) and a raw body.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/scim+json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        self.c
            .call(method, &format!("/scim/v2{path}"), &headers, body)
    }

    /// A SCIM call with the server's token and a JSON body.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.call_with(method, path, Some(&self.token), bytes.as_deref())
    }

    /// Creates an active user; returns their SCIM id.
    pub fn user(&self, name: &str) -> String {
        let u = self.ok(
            "POST",
            "/Users",
            Some(&serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name, "active": true})),
            201,
        );
        u["id"].as_str().expect("id").to_string()
    }

    /// Creates a group with members (SCIM ids); returns its id.
    pub fn group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members
            .iter()
            .map(|m| serde_json::json!({"value": m}))
            .collect();
        let g = self.ok(
            "POST",
            "/Groups",
            Some(&serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name, "members": members})),
            201,
        );
        g["id"].as_str().expect("id").to_string()
    }

    /// Takes the user with SCIM id `user` out of group `group` (a PATCH, as identity
    /// providers send it).
    pub fn remove_member(&self, group: &str, user: &str) {
        self.ok(
            "PATCH",
            &format!("/Groups/{group}"),
            Some(&serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": "members", "value": [{"value": user}]}]})),
            200,
        );
    }

    /// A SCIM call that must answer `status` (with a SCIM content type unless 204);
    /// returns the body as JSON.
    pub fn ok(&self, method: &str, path: &str, body: Option<&Value>, status: u16) -> Value {
        let r = self.call(method, path, body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        if status != 204 {
            assert!(
                r.content_type.starts_with("application/scim+json"),
                "{}",
                r.content_type
            );
        }
        r.json()
    }
}

/// Forwards each event (name, data) of an open notification stream to a channel, from a
/// thread that ends when the server closes the stream (or the receiver is dropped).
pub fn stream_events(resp: ureq::Response) -> std::sync::mpsc::Receiver<(String, Value)> {
    use std::io::{BufRead, BufReader};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { return };
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                let value = serde_json::from_str(data).unwrap_or(Value::Null);
                if tx.send((std::mem::take(&mut event), value)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}
