//! A damaged journal record is found by `verify` and refused by `serve` (exit 4), which
//! leaves the data dir untouched; restoring the byte brings everything back.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Every key and value of every sled tree of a stopped service's data dir.
type Dump = BTreeMap<(Vec<u8>, Vec<u8>), Vec<u8>>;

/// Opens a stopped service's sled database. A `Db` this test dropped a moment ago may
/// still hold the file lock from sled's background threads, so a lock held is waited for
/// (a few seconds at most); any other error fails the test.
fn open_db(dir: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
            Ok(db) => return db,
            // sled reports a held lock as an `Other` I/O error naming it.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("open sled at {}: {e}", dir.display()),
        }
    }
}

fn dump(dir: &Path) -> Dump {
    let db = open_db(dir);
    let mut out = Dump::new();
    for name in db.tree_names() {
        let tree = db.open_tree(&name).expect("open tree");
        for item in tree.iter() {
            let (k, v) = item.expect("read");
            out.insert((name.to_vec(), k.to_vec()), v.to_vec());
        }
    }
    out
}

/// XORs one byte of record `seq` of `stream` with `mask`, wherever the journal keeps it
/// ([`stored::locate`]); returns the key whose value changed.
fn flip(dir: &Path, stream: &str, seq: u64, mask: u8) -> Vec<u8> {
    let db = open_db(dir);
    let tree = db.open_tree("journal").expect("journal tree");
    let key = stored::flip(&tree, stream, seq, mask);
    db.flush().expect("flush");
    key
}

/// Whether the journal tree of a stopped service holds record `seq` of `stream`.
fn holds(dir: &Path, stream: &str, seq: u64) -> bool {
    let db = open_db(dir);
    let tree = db.open_tree("journal").expect("journal tree");
    stored::locate(&tree, stream, seq).is_some()
}

/// What the API shows of product `demo`.
fn state(c: &Client, users: &[&str]) -> Value {
    let mut slots = serde_json::Map::new();
    for u in users {
        slots.insert(u.to_string(), c.slot("demo", u).json()["state"].clone());
    }
    json!({
        "product": c.product("demo"),
        "holders": c.holders_json("demo"),
        "queue": c.queue_json("demo"),
        "users": c.admin("GET", "/admin/v1/users", None).json(),
        "slots": slots,
    })
}

#[test]
fn damaged_record_is_found_refused_and_left_alone() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let opts = Opts::new(&data, tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    let users = ["alice", "bob", "carol", "dave"];
    c.put_product(
        "demo",
        json!({"kind": "confluence", "licence_tier": 5, "shared_slots": 2}),
    );
    for u in users {
        c.enrol("demo", u);
    }
    for u in users {
        c.request("demo", u);
    }
    assert_eq!(c.release("demo", "alice").status, 204);
    assert_eq!(c.slot("demo", "carol").state(), "granted");
    let before = state(&c, &users);
    server.stop();
    assert_verify_ok(&data);

    let intact = dump(&data);
    assert!(
        holds(&data, "product/demo", 3),
        "sequence 3 of product/demo is in the journal tree"
    );
    assert!(
        holds(&data, "product/demo", 8),
        "the damage is in the middle of the stream"
    );

    // Damage: one flipped bit in the middle of record 3.
    let at = flip(&data, "product/demo", 3, 0x40);
    let damaged = dump(&data);
    let differs: Vec<_> = intact
        .iter()
        .filter(|(k, v)| damaged.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(differs.len(), 1, "exactly one record changed");
    assert_eq!(intact.len(), damaged.len());

    let v = verify(&data);
    assert_eq!(v.code, Some(1), "verify on damage: {v:#?}");
    assert!(
        v.stderr.contains("product/demo") && v.stderr.contains("sequence 3"),
        "verify names stream and sequence: {v:#?}"
    );

    let mut refused = Server::spawn(&opts);
    let status = refused.wait_exit(Duration::from_secs(20));
    assert_eq!(
        status.code(),
        Some(4),
        "serve on a damaged journal: {status}\n{}",
        refused.logs()
    );
    let err = refused.stderr();
    assert!(
        err.contains("product/demo") && err.contains("sequence 3"),
        "serve names stream and sequence:\n{}",
        refused.logs()
    );
    drop(refused);
    assert!(
        dump(&data) == damaged,
        "a refused start changed the data dir"
    );
    // Still damaged, still the same answer.
    assert_eq!(verify(&data).code, Some(1));

    // Restore the byte: intact again, and the service shows what it showed before.
    flip(&data, "product/demo", 3, 0x40);
    assert!(dump(&data) == intact, "restored the byte of {at:?}");
    assert_verify_ok(&data);
    let mut server = Server::start(&opts);
    let c = server.client();
    assert_eq!(state(&c, &users), before);
    check_invariants(&c, "demo");
    // And it keeps working: the journal continues from the restored chain.
    assert_eq!(c.release("demo", "bob").status, 204);
    assert_eq!(c.slot("demo", "dave").state(), "granted");
    server.stop();
    assert_verify_ok(&data);
}

/// Other damage `verify` and `serve` must name: a record missing from the middle of a
/// stream, and a record of the directory stream.
#[test]
fn missing_record_and_damaged_directory_are_named() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let opts = Opts::new(&data, tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    c.put_product(
        "demo",
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 2}),
    );
    for u in ["alice", "bob", "carol"] {
        c.enrol("demo", u);
    }
    server.stop();
    let intact = dump(&data);

    // A record taken out of product/demo.
    let key = {
        let db = open_db(&data);
        let tree = db.open_tree("journal").unwrap();
        let key = stored::take_out(&tree, "product/demo", 2);
        db.flush().unwrap();
        key
    };
    let v = verify(&data);
    assert_eq!(v.code, Some(1), "{v:#?}");
    assert!(
        v.stderr.contains("product/demo") && v.stderr.contains("sequence 2"),
        "{v:#?}"
    );
    let mut refused = Server::spawn(&opts);
    let status = refused.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(4), "{}", refused.logs());
    assert!(
        refused.stderr().contains("product/demo") && refused.stderr().contains("sequence 2"),
        "{}",
        refused.logs()
    );
    drop(refused);
    {
        let db = open_db(&data);
        let tree = db.open_tree("journal").unwrap();
        tree.insert(&key, intact[&(b"journal".to_vec(), key.clone())].clone())
            .unwrap();
        db.flush().unwrap();
    }
    assert!(dump(&data) == intact);
    assert_verify_ok(&data);

    // A flipped byte in the directory stream's first record.
    flip(&data, "directory", 1, 0x01);
    let v = verify(&data);
    assert_eq!(v.code, Some(1), "{v:#?}");
    assert!(
        v.stderr.contains("directory") && v.stderr.contains("sequence 1"),
        "{v:#?}"
    );
    let mut refused = Server::spawn(&opts);
    let status = refused.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(4), "{}", refused.logs());
    assert!(
        refused.stderr().contains("directory") && refused.stderr().contains("sequence 1"),
        "{}",
        refused.logs()
    );
    drop(refused);
    flip(&data, "directory", 1, 0x01);
    assert!(dump(&data) == intact);
    let server = Server::start(&opts);
    assert_eq!(server.client().product("demo")["members"], 3);
}

/// A data dir in use is refused: a second `serve` and `verify` exit 4, and the running
/// service is unharmed.
#[test]
fn a_data_dir_in_use_is_refused() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let opts = Opts::new(&data, tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    c.put_product(
        "demo",
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 2}),
    );
    c.enrol("demo", "alice");
    let mut second = Server::spawn(&opts);
    let status = second.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(4), "second serve: {}", second.logs());
    let v = verify(&data);
    assert_eq!(v.code, Some(4), "verify of a data dir in use: {v:#?}");
    assert_eq!(c.request("demo", "alice").state(), "granted");
    server.stop();
    assert_verify_ok(&data);
    let v = verify(&tmp.path().join("nothing-here"));
    assert_eq!(v.code, Some(4), "verify of a missing data dir: {v:#?}");
}

/// With snapshots, a damaged record that a snapshot already covers is still damage:
/// `verify` names it and `serve` refuses to start, as on any damaged journal.
#[test]
fn damage_a_snapshot_covers_is_found_by_the_background_check() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let config = tmp.path().join("slotpool.toml");
    std::fs::write(&config, "snapshot_every = 10\n").unwrap();
    let opts = Opts::new(&data, tmp.path())
        .arg("--config")
        .arg(config.to_str().unwrap());
    let mut server = Server::start(&opts);
    let c = server.client();
    c.put_product(
        "demo",
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 2}),
    );
    for u in ["alice", "bob", "carol"] {
        c.enrol("demo", u);
    }
    // 1 + 3 + 2 * 15 = 34 events: snapshots at 10, 20 and 30.
    for _ in 0..15 {
        assert_eq!(c.request("demo", "alice").state(), "granted");
        assert_eq!(c.release("demo", "alice").status, 204);
    }
    server.stop();
    let intact = dump(&data);
    let snapshots = intact
        .keys()
        .filter(|(tree, _)| tree.as_slice() != b"journal" && !tree.starts_with(b"__sled"))
        .count();
    assert!(
        snapshots > 0,
        "snapshots were written: {:?}",
        intact
            .keys()
            .map(|(t, _)| String::from_utf8_lossy(t).into_owned())
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert_verify_ok(&data);

    flip(&data, "product/demo", 3, 0x40);
    let v = verify(&data);
    assert_eq!(v.code, Some(1), "verify on damage: {v:#?}");
    assert!(
        v.stderr.contains("product/demo") && v.stderr.contains("sequence 3"),
        "{v:#?}"
    );
    // Recovery starts from the latest snapshot (fast), so this record is not replayed; the
    // background check of the whole journal finds it and says so: a metric, a log line and
    // a notice naming stream and sequence.
    let server = Server::start(&opts);
    let c = server.client();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = c.call("GET", "/metrics", &[], None).body;
        if metrics.lines().any(|l| l == "slotpool_journal_damaged 1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the background check did not report the damage\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let notices = c.admin("GET", "/admin/v1/notices", None).json();
    let first = &notices[0];
    assert_eq!(first["kind"], "journal_damaged", "{notices}");
    let message = first["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("product/demo") && message.contains("sequence 3"),
        "{message}"
    );
    assert!(
        server.logs().contains("the journal is damaged"),
        "{}",
        server.logs()
    );
    // The served state is the one the intact records and the snapshot give.
    assert_eq!(c.request("demo", "alice").state(), "granted");
}
