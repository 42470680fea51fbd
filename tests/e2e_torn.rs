//! Torn writes: a copy of a data dir whose database files are truncated at random offsets
//! (several seeds; after a clean stop and after `kill -9`). Either `verify` reports the
//! damage (exit 1) and `serve` refuses with a clear message (exit 4), or the truncation
//! cut nothing sled needs and then every acknowledged change is still served: never a
//! silent loss. A cut at the end of sled's log, which sled recovers from as from an
//! interrupted write, is caught by the journal's watermark (`journal.tips`).

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SEEDS: u64 = 8;
/// Bytes cut from the end of the written part of the db file.
const TAIL_CUTS: [u64; 5] = [100, 300, 1000, 3000, 10000];

/// Everything the admin and user APIs show of product `torn`.
fn state(c: &Client, users: &[String]) -> Value {
    let slots: serde_json::Map<String, Value> = users
        .iter()
        .map(|u| (u.clone(), c.slot("torn", u).json()["state"].clone()))
        .collect();
    json!({
        "product": c.product("torn"),
        "holders": c.holders_json("torn"),
        "queue": c.queue_json("torn"),
        "slots": slots,
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The journal's files in a data dir (sled's and the watermark; not the admin and SCIM
/// tokens, which are configuration: a cut token is refused as such), non-empty ones only.
fn sled_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(sled_files(&path));
        } else if path
            .file_name()
            .is_some_and(|n| n != "admin_token" && n != "scim_token")
            && std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) > 0
        {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A data dir with a product, members, holders and a queue; returns it, what the API
/// showed last, and the users.
fn build(tmp: &Path, name: &str, kill: bool) -> (PathBuf, Value, Vec<String>) {
    let data = tmp.join(name);
    let mut server = Server::start(&Opts::new(&data, tmp));
    let c = server.client();
    c.put_product(
        "torn",
        json!({"kind": "jira", "licence_tier": 50, "shared_slots": 20}),
    );
    let users = load_users(60);
    for u in &users {
        c.enrol("torn", u);
    }
    for u in &users[..40] {
        c.request("torn", u);
    }
    for u in &users[..10] {
        assert_eq!(c.release("torn", u).status, 204);
    }
    let before = state(&c, &users);
    if kill {
        server.kill9();
    } else {
        server.stop();
    }
    assert_verify_ok(&data);
    (data, before, users)
}

#[test]
fn truncated_database_files_are_reported_or_lose_nothing() {
    let mut rng = Rng::from_env_or_clock();
    let tmp = temp_dir();
    let mut reported = 0;
    let mut harmless = 0;
    for (name, kill) in [("stopped", false), ("killed", true)] {
        let (data, before, users) = build(tmp.path(), name, kill);
        let files = sled_files(&data);
        assert!(
            files.iter().any(|f| f.ends_with("db")),
            "sled's db file in {files:?}"
        );
        // Random cuts, then cuts of the last few written bytes of the db file: the tail
        // of sled's log, which sled itself would take for an interrupted write.
        for seed in 0..SEEDS + TAIL_CUTS.len() as u64 {
            let copy = tmp.path().join(format!("{name}-{seed}"));
            copy_dir(&data, &copy);
            // Mostly the main data file, sometimes any other of sled's files.
            let tail_cut = seed.checked_sub(SEEDS).map(|i| TAIL_CUTS[i as usize]);
            let file = if seed % 3 == 2 && tail_cut.is_none() {
                let i = rng.range(0, files.len() as u64) as usize;
                files[i].clone()
            } else {
                data.join("db")
            };
            let target = copy.join(file.strip_prefix(&data).expect("inside the data dir"));
            let bytes = std::fs::read(&target).expect("read");
            let len = bytes.len() as u64;
            // sled preallocates its segments: most cuts land in the written part (up to
            // the last non-zero byte), some anywhere.
            let used = bytes
                .iter()
                .rposition(|b| *b != 0)
                .map_or(1, |i| i as u64 + 1);
            let at = if let Some(k) = tail_cut {
                used.saturating_sub(k)
            } else if seed % 2 == 0 {
                rng.range(0, used)
            } else {
                rng.range(0, len)
            };
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .expect("open for truncation");
            f.set_len(at).expect("truncate");
            drop(f);
            let what = format!(
                "{name}: {} truncated to {at} of {len} bytes",
                target.display()
            );

            let v = verify(&copy);
            eprintln!("{what}: verify exits {:?}", v.code);
            match v.code {
                Some(1) => {
                    reported += 1;
                    assert!(
                        v.stderr.contains("damaged"),
                        "{what}: verify names the damage: {v:?}"
                    );
                    let mut s = Server::spawn(&Opts::new(&copy, tmp.path()));
                    let status = s.wait_exit(Duration::from_secs(30));
                    assert_eq!(
                        status.code(),
                        Some(4),
                        "{what}: serve refuses\n{}",
                        s.logs()
                    );
                    assert!(
                        s.stderr().contains("damaged") && s.stderr().contains("refusing to start"),
                        "{what}: serve says why\n{}",
                        s.logs()
                    );
                }
                Some(0) => {
                    // verify found everything intact: then nothing acknowledged may be
                    // missing.
                    harmless += 1;
                    let server = Server::start(&Opts::new(&copy, tmp.path()));
                    let after = state(&server.client(), &users);
                    assert_eq!(
                        after, before,
                        "{what}: verify said intact, but changes are lost"
                    );
                }
                other => panic!("{what}: verify exited {other:?}: {v:?}"),
            }
            std::fs::remove_dir_all(&copy).expect("clean up the copy");
        }
    }
    eprintln!("torn: {reported} truncations reported, {harmless} harmless");
    assert!(reported > 0, "no truncation was detected at all");
}

/// A process killed while sled writes its page-table snapshot leaves
/// `snap.<lsn>.generating` behind, which sled 0.34 then takes for its latest snapshot
/// and refuses as corrupt (found by `make chaos`). The journal removes such unfinished
/// temporaries before opening: the data dir opens and serves every change.
#[test]
fn an_unfinished_sled_snapshot_left_by_a_kill_does_not_brick_the_data_dir() {
    let tmp = temp_dir();
    let (data, before, users) = build(tmp.path(), "generating", true);
    for (name, bytes) in [
        ("snap.00000000FFFFFFFF.generating", &b""[..]),
        ("snap.00000000FFFFFFFE.generating", &b"partial"[..]),
    ] {
        std::fs::write(data.join(name), bytes).expect("write");
    }
    assert_verify_ok(&data);
    let server = Server::start(&Opts::new(&data, tmp.path()));
    assert_eq!(state(&server.client(), &users), before);
    let left: Vec<_> = std::fs::read_dir(&data)
        .expect("read dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".generating"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
