//! Hardening end to end: what a hostile or careless client, peer or configuration meets.
//! A user named twice, a queue address a browser would read as another host,
//! `X-Forwarded-Proto` from a peer that is not a trusted proxy, the modes of everything
//! in a fresh data dir, stalled request bodies, notification streams of strangers and
//! too many of them, request rates, and connector credentials outside the secrets dir.

mod common;

use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A product `p` with one shared slot and member `ann`.
fn with_product(c: &Client) {
    c.put_product(
        "p",
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 1}),
    );
    c.enrol("p", "ann");
}

/// Two `X-Slotpool-User` headers: 400 `duplicate_user_header`, and nobody is granted.
#[test]
fn a_user_named_twice_is_refused() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    with_product(&c);
    c.enrol("p", "bob");
    let r = raw_request(
        server.port,
        b"POST /api/v1/products/p/slot HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\nX-Slotpool-User: ann\r\nX-Slotpool-User: bob\r\n\r\n",
    );
    assert_problem(&r, 400, "duplicate_user_header");
    assert!(c.holders("p").is_empty());
    assert!(c.queue("p").is_empty());
    // Once is fine.
    assert_eq!(c.request("p", "ann").state(), "granted");
}

/// The gate's queue address with a tab (`/\t/evil.example/x`, which a browser reads as
/// `//evil.example/x`) or any other whitespace or control character is ignored: the 401
/// is the plain problem, with no page sending the browser anywhere.
#[test]
fn a_queue_address_with_whitespace_is_not_followed() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    with_product(&c);
    c.enrol("p", "bob");
    assert_eq!(c.request("p", "ann").state(), "granted");
    for bad in [&b"/\t/evil.example/x"[..], b"/ /evil.example/x", b"/a\tb"] {
        let mut req = b"GET /gate/p HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Slotpool-User: bob\r\nX-Slotpool-Queue-Url: ".to_vec();
        req.extend_from_slice(bad);
        req.extend_from_slice(b"\r\n\r\n");
        let r = raw_request(server.port, &req);
        assert_eq!(r.status, 401, "{r:?}");
        assert!(
            r.content_type.starts_with("application/problem+json"),
            "{bad:?} was followed: {r:?}"
        );
        assert!(!r.body.contains("evil"), "{r:?}");
    }
    // A plain local path is still followed.
    let r = c.call(
        "GET",
        "/gate/p",
        &[
            ("X-Slotpool-User", "bob"),
            ("X-Slotpool-Queue-Url", "/slotpool/queue/p"),
        ],
        None,
    );
    assert!(r.content_type.starts_with("text/html"), "{r:?}");
}

/// The dashboard's cookies are `Secure` when a trusted proxy says the browser came over
/// https, and not when the same header comes from any other peer.
#[test]
fn forwarded_proto_is_believed_only_from_trusted_proxies() {
    let set_cookie_of = |server: &Server| {
        let r = server
            .client()
            .call("GET", "/admin/", &[("X-Forwarded-Proto", "https")], None);
        assert_eq!(r.status, 200, "{r:?}");
        r.header("set-cookie").unwrap_or_default().to_string()
    };
    let tmp = temp_dir();
    let trusted = Server::start(&Opts::new(&tmp.path().join("a"), tmp.path()));
    assert!(
        set_cookie_of(&trusted).contains("Secure"),
        "loopback is a trusted proxy by default"
    );
    let untrusted = Server::start(
        &Opts::new(&tmp.path().join("b"), tmp.path())
            .arg("--trusted-proxies")
            .arg("10.9.9.9/32"),
    );
    let cookie = set_cookie_of(&untrusted);
    assert!(!cookie.is_empty());
    assert!(!cookie.contains("Secure"), "{cookie}");
}

/// Every directory under `dir` (and `dir`) is `0700` and every file `0600`.
fn assert_private(dir: &Path) {
    let mut seen = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mode = std::fs::metadata(&d).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", d.display());
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            if meta.is_dir() {
                stack.push(path);
            } else {
                let mode = meta.permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen > 3, "a data dir with files in it");
}

/// A fresh data dir (and its missing parent) is created `0700` and everything the
/// service writes in it (journal, write-ahead log, snapshots, tokens) `0600`, whatever
/// the caller's umask; so is a data dir made by `restore`.
#[test]
fn a_fresh_data_dir_is_private() {
    let tmp = temp_dir();
    let data = tmp.path().join("new").join("data");
    let config = tmp.path().join("slotpool.toml");
    std::fs::write(&config, "snapshot_every = 5\n").expect("config");
    let mut server = Server::start(
        &Opts::new(&data, tmp.path())
            .arg("--config")
            .arg(config.to_str().expect("utf-8")),
    );
    let c = server.client();
    with_product(&c);
    for u in ["bob", "cat", "dan"] {
        c.enrol("p", u);
        c.request("p", u);
    }
    c.release("p", "ann");
    let backup = tmp.path().join("backup");
    let out = slotpool_command()
        .args(["backup", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&backup)
        .arg("--url")
        .arg(&server.base)
        .env("SLOTPOOL_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run backup");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(server.sigterm().code(), Some(0));
    assert_private(&data);
    let mode = std::fs::metadata(&backup)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the backup file is {mode:o}");
    let restored = tmp.path().join("restored");
    let out = slotpool_command()
        .arg("restore")
        .arg("--from")
        .arg(&backup)
        .arg("--data-dir")
        .arg(&restored)
        .output()
        .expect("run restore");
    assert!(out.status.success(), "{out:?}");
    assert_private(&restored);
}

/// A server with extra config lines.
fn server_with(tmp: &Path, config: &str) -> Server {
    let path = tmp.join("slotpool.toml");
    std::fs::write(&path, config).expect("config");
    Server::start(
        &Opts::new(&tmp.join("data"), tmp)
            .arg("--config")
            .arg(path.to_str().expect("utf-8")),
    )
}

/// Sends `head` and then nothing more; returns what the server answered and how long it
/// took to close the connection (`None`: still open after 15 s).
fn stall(port: u16, head: &[u8]) -> (String, Option<Duration>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(head).expect("write");
    let started = Instant::now();
    let mut got = Vec::new();
    let closed = loop {
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => break Some(started.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                break Some(started.elapsed())
            }
            Err(_) => break None,
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// A body announced and never sent (`Content-Length: 100`, one byte), on the admin API
/// and on the dashboard's sign-in, gets 408 `request_timeout` and a closed connection
/// once `request_body_timeout_s` passes; so does a request head that never ends, after
/// `client_request_timeout_s`. The refusals are counted.
#[test]
fn a_stalled_request_is_answered_and_closed() {
    let tmp = temp_dir();
    let server = server_with(
        tmp.path(),
        "request_body_timeout_s = 1\nclient_request_timeout_s = 1\nclient_disconnect_timeout_s = 1\n",
    );
    let heads = [
        format!("PUT /admin/v1/products/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"),
        "POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nt".to_string(),
    ];
    for head in heads {
        let (answer, closed) = stall(server.port, head.as_bytes());
        let closed = closed.unwrap_or_else(|| panic!("still open after 15 s: {head:?}"));
        assert!(closed < Duration::from_secs(5), "{closed:?}");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        assert!(answer.contains("request_timeout"), "{answer:?}");
    }
    let (_, closed) = stall(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    assert!(
        closed.is_some_and(|d| d < Duration::from_secs(5)),
        "a head that never ends: {closed:?}"
    );
    let metrics = server.client().call("GET", "/metrics", &[], None).body;
    assert!(
        metrics.contains("slotpool_http_refused_total{reason=\"request_timeout\"} 2"),
        "{metrics}"
    );
    // The service goes on.
    assert_eq!(
        server.client().call("GET", "/healthz", &[], None).status,
        200
    );
}

/// Opens a notification stream; `Err` with the answer when refused.
fn open_stream(base: &str, user: &str) -> Result<ureq::Response, Resp> {
    match ureq::get(&format!("{base}/api/v1/products/p/notifications"))
        .set("X-Slotpool-User", user)
        .call()
    {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(status, r)) => {
            let content_type = r.content_type().to_string();
            Err(Resp {
                status,
                content_type,
                headers: Vec::new(),
                body: r.into_string().unwrap_or_default(),
            })
        }
        Err(e) => panic!("stream: {e}"),
    }
}

/// Streams are for members: a stranger gets the slot API's 403. A user may keep
/// `max_streams_per_user` open, the service `max_streams`; beyond, 503
/// `too_many_streams`. Counted, the label there from the start.
#[test]
fn notification_streams_are_for_members_and_capped() {
    let tmp = temp_dir();
    let server = server_with(tmp.path(), "max_streams_per_user = 2\nmax_streams = 3\n");
    let c = server.client();
    let metrics = c.call("GET", "/metrics", &[], None).body;
    assert!(
        metrics.contains("slotpool_http_refused_total{reason=\"too_many_streams\"} 0"),
        "{metrics}"
    );
    with_product(&c);
    c.enrol("p", "bob");
    for stranger in ["mallory", "bob-not-enrolled"] {
        let slot_api = c.request("p", stranger);
        let r = open_stream(&server.base, stranger).expect_err("refused");
        assert_eq!(r.status, 403, "{r:?}");
        assert_eq!(r.json()["reason"], slot_api.json()["reason"], "{r:?}");
    }
    // The directory knows bob-gone, who is no member: not_member, as the slot API says.
    let _a1 = open_stream(&server.base, "ann").expect("first tab");
    let _a2 = open_stream(&server.base, "ann").expect("second tab");
    let r = open_stream(&server.base, "ann").expect_err("a third tab");
    assert_problem(&r, 503, "too_many_streams");
    let _b1 = open_stream(&server.base, "bob").expect("bob's tab");
    let r = open_stream(&server.base, "bob").expect_err("over the total");
    assert_problem(&r, 503, "too_many_streams");
    let metrics = c.call("GET", "/metrics", &[], None).body;
    assert!(
        metrics.contains("slotpool_http_refused_total{reason=\"too_many_streams\"} 2"),
        "{metrics}"
    );
}

/// Rates: one user over `user_rate_per_s` gets 429 `rate_limited` with `Retry-After`
/// while another user behind the same proxy goes on; requests naming no user are limited
/// per peer, sign-in attempts per client. Refusals are counted.
#[test]
fn request_rates_are_limited_per_user_and_per_peer() {
    let tmp = temp_dir();
    let server = server_with(
        tmp.path(),
        "user_rate_per_s = 2\nuser_rate_burst = 5\npeer_rate_per_s = 2\npeer_rate_burst = 5\nlogin_rate_per_minute = 1\nlogin_rate_burst = 3\n",
    );
    let c = server.client();
    with_product(&c);
    c.enrol("p", "bob");
    let answers: Vec<Resp> = (0..12).map(|_| c.slot("p", "ann")).collect();
    let limited: Vec<&Resp> = answers.iter().filter(|r| r.status == 429).collect();
    assert!(limited.len() >= 5, "{answers:?}");
    assert!(
        answers.iter().take(5).all(|r| r.status == 200),
        "{answers:?}"
    );
    for r in &limited {
        assert_problem(r, 429, "rate_limited");
        let after: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Retry-After: {r:?}"));
        assert!((1..=60).contains(&after), "{r:?}");
    }
    assert_eq!(
        c.slot("p", "bob").status,
        200,
        "bob has a budget of his own"
    );
    let anonymous: Vec<u16> = (0..12)
        .map(|_| c.call("GET", "/api/v1/products/p/slot", &[], None).status)
        .collect();
    assert!(anonymous.contains(&429), "{anonymous:?}");
    let logins: Vec<u16> = (0..6)
        .map(|_| {
            c.call(
                "POST",
                "/admin/login",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                Some(b"token=wrong"),
            )
            .status
        })
        .collect();
    assert!(logins[..3].iter().all(|s| *s != 429), "{logins:?}");
    assert_eq!(&logins[3..], [429, 429, 429], "{logins:?}");
    // The admin API is not limited.
    assert!((0..20).all(|_| c.product("p")["members"] == 2));
    let metrics = c.call("GET", "/metrics", &[], None).body;
    let refused: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("slotpool_http_refused_total{reason=\"rate_limited\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(refused >= 10.0, "{refused}");
}

/// A connector's `credentials_file` is a name in the connector secrets directory: an
/// absolute path or one with `..` is refused (422 `invalid_settings`, nothing changes),
/// and a file that is missing shows in the connector's status without any path or
/// operating-system error.
#[test]
fn connector_credentials_stay_in_the_secrets_dir() {
    let tmp = temp_dir();
    let secrets = tmp.path().join("secrets");
    let server = server_with(
        tmp.path(),
        &format!(
            "connector_secrets_dir = {:?}\n",
            secrets.display().to_string()
        ),
    );
    let c = server.client();
    // A listener that records nothing: the product's host, were anything sent.
    let host = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = host.local_addr().expect("addr").port();
    let settings = |file: &str| {
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 1,
               "connector": {"kind": "jira", "base_url": format!("http://127.0.0.1:{port}"),
                             "credentials_file": file, "access_group": "g",
                             "timeout_s": 1, "retry_base_ms": 50, "retry_cap_s": 1}})
    };
    for bad in ["/etc/passwd", "../data/admin_token", "a/../../x"] {
        let r = c.admin("PUT", "/admin/v1/products/p", Some(&settings(bad)));
        let j = assert_problem(&r, 422, "invalid_settings");
        assert!(
            j["detail"]
                .as_str()
                .unwrap_or("")
                .contains("credentials_file"),
            "{j}"
        );
    }
    assert_eq!(
        c.admin("GET", "/admin/v1/products/p", None).status,
        404,
        "nothing was created"
    );
    c.put_product("p", settings("missing.cred"));
    c.enrol("p", "ann");
    assert_eq!(c.request("p", "ann").state(), "granted");
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        let r = c.admin("GET", "/admin/v1/products/p/connector", None);
        assert_eq!(r.status, 200, "{r:?}");
        if let Some(e) = r.json()["last_error"]["error"].as_str() {
            break e.to_string();
        }
        assert!(Instant::now() < deadline, "no error reported: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(error.contains("credentials"), "{error}");
    for leak in [
        "/",
        "No such file",
        "os error",
        secrets.to_str().unwrap_or("-"),
    ] {
        assert!(!error.contains(leak), "{leak:?} in {error:?}");
    }
}
