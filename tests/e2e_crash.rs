//! kill -9 under load, restart on the same data dir, repeatedly: no acknowledged change is
//! lost, the pool rules hold, and the journal verifies after every kill.

mod common;

use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const USERS: usize = 64;
const SHARED: u64 = 16;
const KILLS: usize = 5;

#[test]
fn kill_9_under_load_loses_no_acknowledged_change() {
    let mut rng = Rng::from_env_or_clock();
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    // Alternate the two durability modes: both promise to survive a killed process.
    let opts = |round: usize| {
        let o = Opts::new(&data, tmp.path());
        if round % 2 == 1 {
            o.arg("--durability").arg("process")
        } else {
            o
        }
    };
    let mut server = Server::start(&opts(0));
    let c = server.client();
    c.put_product(
        "load",
        json!({"kind": "jira", "licence_tier": 20, "shared_slots": SHARED}),
    );
    let users = load_users(USERS);
    for u in &users {
        c.enrol("load", u);
    }
    let settings_before = c.product("load");

    // Even users hammer the server; odd users pause between operations, so that many of
    // them are idle at the kill and their state must then match their last answer exactly.
    let track = |i: usize, u: &String, known: Known| {
        Track::new(u, known).thinking(if i % 2 == 1 { 120 } else { 0 })
    };
    let mut tracks: Vec<Track> = users
        .iter()
        .enumerate()
        .map(|(i, u)| track(i, u, Known::None))
        .collect();
    let mut strict_checks = 0;
    let mut total_acked = 0;
    let mut in_flight_total = 0;
    for round in 0..KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let load = start_load(&server.base, "load", tracks, &stop);
        // Once the load is under way, at a random moment 300-900 ms after its start.
        let started = std::time::Instant::now();
        load.wait_for_acks(USERS as u64, Duration::from_secs(30));
        let kill_after = Duration::from_millis(rng.range(300, 900)).max(started.elapsed());
        std::thread::sleep(kill_after.saturating_sub(started.elapsed()));
        server.kill9();
        stop.store(true, Ordering::SeqCst);
        tracks = load.join();

        let unexpected: Vec<&String> = tracks.iter().flat_map(|t| &t.unexpected).collect();
        assert!(
            unexpected.is_empty(),
            "round {round}: unexpected answers: {unexpected:#?}"
        );
        let acked: u64 = tracks.iter().map(|t| t.acked).sum();
        let in_flight = tracks.iter().filter(|t| t.in_flight.is_some()).count();
        eprintln!(
            "round {round}: killed after {kill_after:?}: {acked} acknowledged, {in_flight} unacknowledged at the kill"
        );
        assert!(acked > 0, "round {round}: no operation was acknowledged");
        total_acked += acked;
        in_flight_total += in_flight;
        strict_checks += USERS - in_flight;

        let v = verify(&data);
        assert_eq!(
            v.code,
            Some(0),
            "round {round}: verify after kill -9: {v:#?}"
        );
        assert!(v.stdout.contains("product/load"), "{v:#?}");

        server = Server::start(&opts(round + 1));
        let c = server.client();
        let pool = check_invariants(&c, "load");
        assert_eq!(
            pool.product,
            {
                let mut p = settings_before.clone();
                p["holders"] = pool.product["holders"].clone();
                p["queued"] = pool.product["queued"].clone();
                p
            },
            "round {round}: settings, members and fixed counts survive"
        );
        assert_eq!(pool.product["members"], USERS, "round {round}: enrolments");
        let observed = check_tracks(&c, "load", &tracks);
        for (user, state) in &observed {
            assert_eq!(pool.holders.contains(user), state == "granted", "{user}");
            assert_eq!(pool.queue.contains(user), state == "queued", "{user}");
        }
        // The next round starts from what the server now says.
        tracks = users
            .iter()
            .enumerate()
            .map(|(i, u)| track(i, u, known(&observed[u])))
            .collect();
    }
    eprintln!(
        "crash: {KILLS} kills, {total_acked} acknowledged operations, {in_flight_total} unacknowledged, {strict_checks} users idle at a kill"
    );
    assert!(
        strict_checks >= KILLS * 2,
        "too few users were idle at the kills ({strict_checks}) for the check to mean much"
    );

    // The service still works after all that, and stops cleanly.
    let c = server.client();
    let free = users
        .iter()
        .find(|u| c.slot("load", u).state() == "none")
        .cloned();
    if let Some(u) = free {
        let s = c.request("load", &u).state();
        assert!(s == "granted" || s == "queued", "{s}");
    }
    check_invariants(&c, "load");
    server.stop();
    assert_verify_ok(&data);
}

/// SIGTERM under load: in-flight requests finish, the process exits 0, and after a
/// restart every acknowledged change is there.
#[test]
fn sigterm_under_load_drains_and_keeps_every_acknowledged_change() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let opts = Opts::new(&data, tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    c.put_product(
        "load",
        json!({"kind": "jira", "licence_tier": 20, "shared_slots": SHARED}),
    );
    let users = load_users(32);
    for u in &users {
        c.enrol("load", u);
    }
    let tracks: Vec<Track> = users.iter().map(|u| Track::new(u, Known::None)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&server.base, "load", tracks, &stop);
    load.wait_for_acks(64, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let status = server.sigterm();
    stop.store(true, Ordering::SeqCst);
    let tracks = load.join();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM under load: {status}\n{}",
        server.logs()
    );
    let unexpected: Vec<&String> = tracks.iter().flat_map(|t| &t.unexpected).collect();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:#?}");
    assert!(tracks.iter().map(|t| t.acked).sum::<u64>() > 0);
    assert_verify_ok(&data);
    let server = Server::start(&opts);
    let c = server.client();
    check_invariants(&c, "load");
    check_tracks(&c, "load", &tracks);
}

/// A stop with event streams open (a user's notifications, an administrator's notices:
/// every open page) ends them and exits, instead of holding the drain for its whole
/// timeout (10 s) waiting for responses that never end. Each stop signal does it, and
/// the journal is flushed and intact after it.
#[test]
fn a_stop_ends_open_event_streams_instead_of_waiting_for_them() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let opts = Opts::new(&data, tmp.path());
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
        let mut server = Server::start(&opts);
        let c = server.client();
        c.put_product(
            "p",
            json!({"kind": "jira", "licence_tier": 20, "shared_slots": 1}),
        );
        c.enrol("p", "ann");
        assert_eq!(c.request("p", "ann").state(), "granted");
        let user = ureq::get(&format!("{}/api/v1/products/p/notifications", server.base))
            .set("X-Slotpool-User", "ann")
            .call()
            .expect("the user's stream opens");
        let user = stream_events(user);
        let (first, _) = user
            .recv_timeout(Duration::from_secs(10))
            .expect("the stream's first event");
        assert_eq!(first, "granted");
        let notices = ureq::get(&format!("{}/admin/v1/notices/stream", server.base))
            .set("Authorization", &format!("Bearer {}", c.token))
            .call()
            .expect("the administrator's stream opens");
        assert_eq!(notices.header("content-type"), Some("text/event-stream"));
        let notices = stream_events(notices);
        let asked = std::time::Instant::now();
        server.signal(signal);
        let status = server.wait_exit(Duration::from_secs(20));
        let took = asked.elapsed();
        assert_eq!(
            status.code(),
            Some(0),
            "signal {signal}: {status}\n{}",
            server.logs()
        );
        assert!(
            took < Duration::from_secs(5),
            "signal {signal}: the stop waited {took:?} for the open streams\n{}",
            server.logs()
        );
        for (name, rx) in [("user", user), ("notices", notices)] {
            // Ended: the reader saw the end of the body and dropped its sender.
            let end = rx.recv_timeout(Duration::from_secs(5));
            assert!(
                matches!(end, Err(std::sync::mpsc::RecvTimeoutError::Disconnected)),
                "{name}: {end:?}"
            );
        }
        assert!(
            server.logs().contains("closing event streams"),
            "{}",
            server.logs()
        );
        assert_verify_ok(&data);
    }
}
