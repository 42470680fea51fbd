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
