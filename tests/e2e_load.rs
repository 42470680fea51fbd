//! 64 concurrent clients toggling request/release: the pool rules hold afterwards and
//! every user's state matches what the server last acknowledged to it.

mod common;

use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USERS: usize = 64;
const SHARED: u64 = 16;

#[test]
fn concurrent_clients_keep_the_invariants() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    assert_no_transparent_huge_pages(server.pid());
    let c = server.client();
    c.put_product(
        "load",
        json!({"kind": "jira", "licence_tier": 20, "shared_slots": SHARED}),
    );
    let users = load_users(USERS);
    for u in &users {
        c.enrol("load", u);
    }
    assert_eq!(c.product("load")["members"], USERS);

    let tracks: Vec<Track> = users.iter().map(|u| Track::new(u, Known::None)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let load = start_load(&server.base, "load", tracks, &stop);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let tracks = load.join();
    let took = started.elapsed();

    let acked: u64 = tracks.iter().map(|t| t.acked).sum();
    let failures: Vec<String> = tracks
        .iter()
        .flat_map(|t| {
            t.unexpected
                .iter()
                .cloned()
                .chain(t.transport_error.iter().map(|e| format!("{}: {e}", t.user)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "failed requests:\n{}",
        failures.join("\n")
    );
    eprintln!(
        "load: {acked} acknowledged operations in {took:?} ({:.0}/s)",
        acked as f64 / took.as_secs_f64()
    );
    assert!(
        tracks.iter().all(|t| t.acked > 0),
        "every client got answers"
    );
    let granted_once = tracks.iter().filter(|t| t.acked >= 2).count();
    assert!(granted_once > 0, "the load did toggle");

    let pool = check_invariants(&c, "load");
    let observed = check_tracks(&c, "load", &tracks);
    // The lists agree with what each user sees.
    for (user, state) in &observed {
        assert_eq!(
            pool.holders.contains(user),
            state == "granted",
            "{user} is {state} but holders are {:?}",
            pool.holders
        );
        assert_eq!(
            pool.queue.contains(user),
            state == "queued",
            "{user} is {state} but the queue is {:?}",
            pool.queue
        );
    }
    assert_eq!(pool.product["members"], USERS);

    // Releasing everyone empties the pool and the queue, in any order.
    for u in &users {
        assert_eq!(c.release("load", u).status, 204);
    }
    let pool = check_invariants(&c, "load");
    assert!(pool.holders.is_empty() && pool.queue.is_empty(), "{pool:?}");
    // And a fresh round of requests fills exactly the shared slots, the rest queued in order.
    for (i, u) in users.iter().enumerate() {
        let r = c.request("load", u);
        if (i as u64) < SHARED {
            assert_eq!(r.state(), "granted", "{u}: {r:?}");
        } else {
            assert_eq!(r.state(), "queued", "{u}: {r:?}");
            assert_eq!(r.json()["position"], i as u64 - SHARED + 1, "{u}: {r:?}");
        }
    }
    let pool = check_invariants(&c, "load");
    assert_eq!(pool.holders.len() as u64, SHARED);
    assert_eq!(pool.queue, users[SHARED as usize..].to_vec());
}

/// The service turns transparent huge pages off for itself (a 2 MiB page zeroed inside one
/// page fault stalled every request for milliseconds under load). Linux reports it in
/// `/proc/<pid>/status` since 5.0; an older kernel has no line to check.
fn assert_no_transparent_huge_pages(pid: i32) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return;
    };
    if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert_eq!(
            line.split_whitespace().nth(1),
            Some("0"),
            "the server runs with transparent huge pages on: {line}"
        );
    }
}
