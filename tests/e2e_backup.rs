//! `slotpool backup` of a live server under load, `slotpool restore` into a new dir:
//! `verify` passes, and a server on the restored dir has every change acknowledged before
//! the backup started. Restore refuses a non-empty dir and an altered backup.

mod common;

use common::*;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn run(args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = slotpool_command();
    cmd.args(args);
    if let Some(t) = token {
        cmd.env("SLOTPOOL_ADMIN_TOKEN", t);
    }
    let out = cmd.output().expect("run slotpool");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn backup_of_a_live_server_under_load_restores_every_acknowledged_change() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let server = Server::start(&Opts::new(&data, tmp.path()).arg("--config").arg(s(&{
        // Snapshots every 10 events, so that the backup carries some.
        let c = tmp.path().join("slotpool.toml");
        std::fs::write(&c, "snapshot_every = 10\n").expect("config");
        c
    })));
    let c = server.client();
    c.put_product(
        "live",
        json!({"kind": "jira", "licence_tier": 30, "shared_slots": 8}),
    );
    let users = load_users(24);
    for u in &users {
        c.enrol("live", u);
    }
    // Users toggle their slots while an administrator enrols new members one by one.
    let stop = Arc::new(AtomicBool::new(false));
    let tracks = users.iter().map(|u| Track::new(u, Known::None)).collect();
    let load = start_load(&server.base, "live", tracks, &stop);
    let enrolled = Arc::new(AtomicU64::new(0));
    let admin = {
        let c = server.client();
        let stop = Arc::clone(&stop);
        let enrolled = Arc::clone(&enrolled);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                c.enrol("live", &format!("extra-{n}"));
                n += 1;
                enrolled.store(n, Ordering::SeqCst);
            }
        })
    };
    load.wait_for_acks(200, Duration::from_secs(30));

    // The backup, while the load goes on.
    let acked_before = enrolled.load(Ordering::SeqCst);
    let file = tmp.path().join("live.backup");
    let b = run(
        &[
            "backup",
            "--data-dir",
            s(&data),
            "--out",
            s(&file),
            "--url",
            &server.base,
        ],
        Some(ADMIN_TOKEN),
    );
    assert_eq!(b.code, Some(0), "backup: {b:?}");
    assert!(b.stdout.contains("backup: 2 streams"), "{b:?}");
    let acked_after = enrolled.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let tracks = load.join();
    admin.join().expect("admin thread");
    assert!(tracks.iter().all(|t| t.unexpected.is_empty()));
    assert!(
        acked_after > acked_before,
        "the administrator kept writing during the backup"
    );
    drop(server);

    // Restore into a new dir: it verifies, and a server on it has every enrolment
    // acknowledged before the backup started, and the pool rules hold.
    let restored = tmp.path().join("restored");
    let r = run(
        &["restore", "--from", s(&file), "--data-dir", s(&restored)],
        None,
    );
    assert_eq!(r.code, Some(0), "restore: {r:?}");
    assert!(r.stdout.contains("all intact"), "{r:?}");
    assert_verify_ok(&restored);
    let v = verify(&restored);
    assert!(
        !v.stdout.contains(" 0 snapshots"),
        "snapshots in the backup: {v:?}"
    );
    let server = Server::start(&Opts::new(&restored, tmp.path()));
    let c = server.client();
    let pool = check_invariants(&c, "live");
    let members = pool.product["members"].as_u64().expect("members");
    let base = users.len() as u64;
    assert!(
        members >= base + acked_before && members <= base + acked_after + 1,
        "members {members}: acknowledged before the backup {}, after {}",
        base + acked_before,
        base + acked_after
    );
    for n in 0..acked_before {
        let u = format!("extra-{n}");
        let st = c.slot("live", &u);
        assert_eq!(st.status, 200, "{u} is a member after the restore: {st:?}");
    }

    // Restore refuses a non-empty dir (4) and an altered backup (1).
    let again = run(
        &["restore", "--from", s(&file), "--data-dir", s(&restored)],
        None,
    );
    assert_eq!(again.code, Some(4), "{again:?}");
    assert!(again.stderr.contains("not empty"), "{again:?}");
    let mut bytes = std::fs::read(&file).expect("read backup");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    let altered = tmp.path().join("altered.backup");
    std::fs::write(&altered, &bytes).expect("write");
    let bad = run(
        &[
            "restore",
            "--from",
            s(&altered),
            "--data-dir",
            s(&tmp.path().join("other")),
        ],
        None,
    );
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(
        bad.stderr.contains("checksum") || bad.stderr.contains("not a complete"),
        "{bad:?}"
    );
    assert!(
        !tmp.path().join("other").join("db").exists(),
        "nothing written"
    );
}
