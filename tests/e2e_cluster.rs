//! The three-node cluster (issue F) end to end: real `slotpool serve` processes on
//! loopback, their Raft traffic through the fault proxy of `tests/common/fault_proxy.rs`.
//!
//! - formation and forwarding: one leader all agree on; a write on a follower is seen on
//!   the leader and the other follower; status, metrics and `slotpool cluster status`;
//! - `kill -9` of the leader under load: a new leader serves a write within 3 s, nothing
//!   acknowledged is lost, the pool rules hold, the journals are identical afterwards;
//! - a paused leader (`SIGSTOP`, `SIGCONT`) steps down and acknowledges nothing from its
//!   stale term; a partitioned leader answers 503 `no_leader`, the majority serves on;
//! - a leader killed with an entry no follower has, back before another is elected: it
//!   leads again in its term and serves only once that entry is applied;
//! - bad input: a wrong secret, another cluster id, a corrupt Raft log tail, a peer list
//!   that disagrees; membership: a fourth node joins as a voter and is removed;
//! - a follower that was down while the leader's log moved past it catches up by a
//!   snapshot sent over the network, built while the leader kept serving;
//! - `make cluster`'s script (`tools/cluster.sh`) stops the nodes it started, however
//!   its folder was spelled; a leader stopped after its followers exits.
//!
//! The tests run one at a time (a lock): each runs three processes that fsync, and the
//! failover bound is measured. Every test ends by comparing the nodes' journals
//! (`slotpool verify`, all streams but `raft/`) and their pools read offline (`audit`).

mod common;

use common::cluster::*;
use common::linearizable::{check, Call, Recorder, DEFAULT_BUDGET};
use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// One cluster test at a time.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The failover bound of issue F: from the fault to the first acknowledged write.
const FAILOVER_BOUND: Duration = Duration::from_secs(3);

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:02}")).collect()
}

/// Asserts a history linearizable (see `tests/common/linearizable.rs`).
#[track_caller]
fn assert_linearizable(rec: &Recorder) {
    let report = check(&rec.history(), DEFAULT_BUDGET);
    eprintln!(
        "linearizability: {} keys, {} operations ({} indeterminate), {} steps",
        report.keys, report.operations, report.indeterminate, report.steps
    );
    assert!(
        report.ok(),
        "the history is not linearizable: {:#?}",
        report.failures
    );
}

/// Asserts that no load client met an answer outside the contract.
#[track_caller]
fn assert_no_unexpected(tracks: &[Track]) {
    let unexpected: Vec<&String> = tracks.iter().flat_map(|t| &t.unexpected).collect();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:#?}");
}

/// An acknowledged operation of a recorded, hand-made call.
/// The checks after a fault, once the load is told to stop: no unexpected answer, every
/// acknowledged operation of `product` seen from every node, the recorded history
/// linearizable, then (stopping the nodes) the same chains and pools everywhere.
fn after_the_fault(c: &mut Cluster, load: Load, rec: &Recorder, product: &str) {
    let tracks = load.join();
    assert_no_unexpected(&tracks);
    for id in c.ids() {
        check_tracks(&c.client(id), product, &tracks);
    }
    assert_linearizable(rec);
    c.assert_chains_identical(&[1, 2, 3]);
    c.assert_pools_identical_offline(&[1, 2, 3], product);
}

fn recorded(rec: &Recorder, c: &Client, call: Call, product: &str, user: &str) -> Resp {
    let id = rec.invoke(&format!("{product}/{user}"), call);
    let r = match call {
        Call::Request => c.try_call(
            "POST",
            &format!("/api/v1/products/{product}/slot"),
            &[("X-Slotpool-User", user)],
            None,
        ),
        Call::Release => c.try_call(
            "DELETE",
            &format!("/api/v1/products/{product}/slot"),
            &[("X-Slotpool-User", user)],
            None,
        ),
        Call::Read => c.try_call(
            "GET",
            &format!("/api/v1/products/{product}/slot"),
            &[("X-Slotpool-User", user)],
            None,
        ),
    };
    let r = r.unwrap_or_else(|e| Resp {
        status: 0,
        content_type: String::new(),
        headers: Vec::new(),
        body: e.0,
    });
    match (call, r.status) {
        (Call::Request | Call::Read, 200) => rec.answer(id, &r.state()),
        (Call::Release, 204) => rec.answer(id, "none"),
        _ => {}
    }
    r
}

/// Formation, status, forwarding of user, admin and gate calls, metrics and the CLI.
#[test]
fn three_nodes_form_one_cluster_and_followers_forward() {
    let _serial = serial();
    let mut c = Cluster::start();
    let leader = c.leader();
    let followers = c.followers();
    assert_eq!(followers.len(), 2, "{}", c.statuses());
    let (f1, f2) = (followers[0], followers[1]);

    // Every node's own status: the same leader and term, every member as configured.
    let peers = c.peers();
    let term = c.status(leader).expect("leader status")["term"].clone();
    assert!(term.as_u64().is_some_and(|t| t >= 1), "term {term}");
    for id in c.ids() {
        let s = c.status(id).expect("status");
        assert_eq!(s["node_id"], json!(id), "{s}");
        assert_eq!(s["cluster_id"], json!(CLUSTER_ID), "{s}");
        assert_eq!(s["leader"], json!(leader), "{s}");
        assert_eq!(s["term"], term, "{s}");
        let want = if id == leader { "leader" } else { "follower" };
        assert_eq!(s["state"], json!(want), "{s}");
        let members = s["members"].as_array().expect("members");
        assert_eq!(members.len(), 3, "{s}");
        for p in &peers {
            let m = members
                .iter()
                .find(|m| m["id"] == json!(p.id))
                .unwrap_or_else(|| panic!("member {} missing: {s}", p.id));
            assert_eq!(m["http"], json!(p.http), "{s}");
            assert_eq!(m["raft"], json!(p.raft), "{s}");
            assert_eq!(m["voter"], json!(true), "{s}");
            if id == leader {
                assert!(m["lag"].is_u64(), "the leader knows every lag: {s}");
            } else {
                assert!(m["lag"].is_null(), "only the leader knows lags: {s}");
            }
        }
        let cl = c.client(id);
        assert_eq!(cl.call("GET", "/healthz", &[], None).status, 200);
        assert_eq!(cl.call("GET", "/readyz", &[], None).status, 200);
        // The status is for the administrator only.
        let anon = cl.call("GET", "/admin/v1/cluster", &[], None);
        assert_problem(&anon, 401, "missing_token");
    }

    // Admin calls through the followers, user calls through all three.
    c.product_with_users(
        f1,
        "fwd",
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 2}),
        &["alice".into(), "bob".into(), "carol".into()],
    );
    assert_eq!(c.client(f1).request("fwd", "alice").state(), "granted");
    for id in c.ids() {
        assert_eq!(
            c.client(id).slot("fwd", "alice").state(),
            "granted",
            "node {id} must see the write made on follower {f1}"
        );
    }
    assert_eq!(c.client(f2).holders("fwd"), ["alice"]);
    assert_eq!(c.client(f2).request("fwd", "bob").state(), "granted");
    assert_eq!(c.client(leader).request("fwd", "carol").state(), "queued");
    assert_eq!(c.client(f1).queue("fwd"), ["carol"]);
    // The gate through a follower: a holder passes, a queued member does not.
    let gate = |id: u64, user: &str| c.client(id).user("GET", "/gate/fwd", user).status;
    assert_eq!(gate(f2, "alice"), 204);
    assert_eq!(gate(f1, "carol"), 401);
    // alice leaves on one follower: carol, the queue head, is granted, seen on the other.
    assert_eq!(c.client(f2).release("fwd", "alice").status, 204);
    assert_eq!(c.client(f1).slot("fwd", "carol").state(), "granted");
    assert_eq!(c.client(leader).slot("fwd", "alice").state(), "none");
    for id in c.ids() {
        let view = check_invariants(&c.client(id), "fwd");
        assert_eq!(view.holders, ["bob", "carol"], "node {id}");
    }
    // A refusal made by the leader reaches the caller through a follower as it is.
    assert_problem(&c.client(f1).request("fwd", "mallory"), 403, "unknown_user");

    // Metrics on every node.
    for id in c.ids() {
        let is_leader = if id == leader { 1.0 } else { 0.0 };
        // The gauges are refreshed four times a second: wait for a refresh that shows
        // this cluster (a first one may predate the leader, or the leader's first answer
        // from a follower: 0 is also what a gauge says before it is set).
        let peers_up = |m: &str| {
            id != leader
                || [f1, f2].iter().all(|f| {
                    metric(m, &format!("slotpool_raft_peer_up{{peer=\"{f}\"}}")) == Some(1.0)
                })
        };
        let settled = |m: &str| {
            metric(m, "slotpool_raft_is_leader") == Some(is_leader)
                && metric(m, "slotpool_raft_has_leader") == Some(1.0)
                && peers_up(m)
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut m = c.metrics(id);
        while !settled(&m) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            m = c.metrics(id);
        }
        assert_eq!(
            metric(&m, "slotpool_raft_is_leader"),
            Some(is_leader),
            "node {id}"
        );
        assert_eq!(
            metric(&m, "slotpool_raft_has_leader"),
            Some(1.0),
            "node {id}"
        );
        assert_eq!(metric(&m, "slotpool_raft_members"), Some(3.0), "node {id}");
        assert_eq!(
            metric(&m, "slotpool_raft_refused_writes_total"),
            Some(0.0),
            "node {id}"
        );
        assert!(metric(&m, "slotpool_raft_term").is_some_and(|t| t >= 1.0));
        for name in [
            "slotpool_raft_commit_index",
            "slotpool_raft_applied_index",
            "slotpool_raft_last_log_index",
            "slotpool_raft_leader_changes_total",
        ] {
            assert!(metric(&m, name).is_some(), "node {id} lacks {name}");
        }
    }
    let lm = c.metrics(leader);
    for f in [f1, f2] {
        assert_eq!(
            metric(&lm, &format!("slotpool_raft_peer_up{{peer=\"{f}\"}}")),
            Some(1.0),
            "{lm}"
        );
        assert!(metric(
            &lm,
            &format!("slotpool_raft_replication_lag{{peer=\"{f}\"}}")
        )
        .is_some());
    }

    // The CLI asks the node of its config.
    let config = c.node(f1).spec.config_path.display().to_string();
    let out = run_cli_env(
        &["cluster", "status", "--config", &config],
        &[("SLOTPOOL_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    let s: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("cluster status prints JSON ({e}): {out:#?}"));
    assert_eq!(s["node_id"], json!(f1), "{s}");
    assert_eq!(s["leader"], json!(leader), "{s}");
    let bad = run_cli_env(
        &["cluster", "status", "--config", &config],
        &[("SLOTPOOL_ADMIN_TOKEN", "not-the-token-0123456789")],
    );
    assert_ne!(bad.code, Some(0), "a wrong token must fail: {bad:#?}");

    c.assert_chains_identical(&[1, 2, 3]);
    c.assert_pools_identical_offline(&[1, 2, 3], "fwd");
}

/// `kill -9` of the leader under load from many users and an administrator.
#[test]
fn kill_9_of_the_leader_under_load_fails_over_within_3_s_and_loses_nothing() {
    let _serial = serial();
    let mut c = Cluster::start();
    let leader = c.leader();
    const USERS: usize = 48;
    let contended = users("user", USERS);
    c.product_with_users(
        leader,
        "load",
        json!({"kind": "jira", "licence_tier": 40, "shared_slots": 16}),
        &contended,
    );
    let lin_users = users("lin", 16);
    let mut roomy_members = lin_users.clone();
    roomy_members.push("probe".into());
    c.product_with_users(
        leader,
        "lin",
        roomy_product(roomy_members.len()),
        &roomy_members,
    );

    // A queue nobody touches during the run: its order must survive the failover.
    let waiting = users("wait", 6);
    c.product_with_users(
        leader,
        "queue",
        json!({"kind": "jira", "licence_tier": 4, "shared_slots": 2, "queue_timer_s": 3600}),
        &waiting,
    );
    for (i, u) in waiting.iter().enumerate() {
        let want = if i < 2 { "granted" } else { "queued" };
        assert_eq!(c.client(leader).request("queue", u).state(), want);
    }
    let queue_before = c.client(leader).queue("queue");
    assert_eq!(queue_before, waiting[2..]);

    let bases = c.bases();
    let stop = Arc::new(AtomicBool::new(false));
    let rec = Arc::new(Recorder::new());
    let tracks: Vec<Track> = contended
        .iter()
        .enumerate()
        .map(|(i, u)| Track::new(u, Known::None).thinking(if i % 2 == 1 { 60 } else { 0 }))
        .collect();
    let mut plan = LoadPlan::new(bases.clone(), "load");
    plan.read_every = 0;
    let load = start_cluster_load(&plan, tracks, None, &stop);
    let lin = start_lin_load(bases.clone(), &lin_users, &rec, &stop);
    let admin = start_admin_load(bases.clone(), "load", &stop);
    load.wait_for_acks(300, Duration::from_secs(60));

    let killed_at = Instant::now();
    c.kill9(leader);
    let survivors = c.live();
    let failover = first_write_after(
        &c,
        &survivors,
        "lin",
        "probe",
        killed_at,
        Duration::from_secs(15),
    );
    eprintln!("kill -9 of leader {leader}: a new leader served a write after {failover:?}");
    let new_leader = c.wait_new_leader(leader, Duration::from_secs(10));
    assert!(
        failover <= FAILOVER_BOUND,
        "failover took {failover:?} (bound {FAILOVER_BOUND:?})"
    );
    // The load goes on against the new leader for a while.
    let acks = load.acks.load(Ordering::SeqCst);
    load.wait_for_acks(acks + 200, Duration::from_secs(30));
    stop.store(true, Ordering::SeqCst);
    let tracks = load.join();
    let lin_tracks = lin.join();
    let (admin_acked, admin_in_flight, admin_unexpected) = admin.join().expect("admin thread");
    assert_no_unexpected(&tracks);
    assert_no_unexpected(&lin_tracks);
    assert!(admin_unexpected.is_empty(), "{admin_unexpected:#?}");
    assert!(admin_acked > 0, "the administrator got nothing done");

    // Everything acknowledged is there, seen from every surviving node.
    for &id in &survivors {
        let cl = c.client(id);
        check_tracks(&cl, "load", &tracks);
        check_tracks(&cl, "lin", &lin_tracks);
        let view = check_invariants(&cl, "load");
        assert_admin_changes_kept(&view.product, USERS as u64, admin_acked, admin_in_flight);
        assert_eq!(
            cl.queue("queue"),
            queue_before,
            "node {id}: the queue order"
        );
    }
    assert_linearizable(&rec);

    // The killed node comes back, catches up, and holds the same journal.
    c.restart(leader);
    c.wait_leader(Duration::from_secs(20));
    eprintln!("node {leader} restarted; the leader was {new_leader}");
    c.wait_caught_up(Duration::from_secs(30));
    check_tracks(&c.client(leader), "load", &tracks);
    c.assert_chains_identical(&[1, 2, 3]);
    c.assert_pools_identical_offline(&[1, 2, 3], "load");
    c.assert_pools_identical_offline(&[1, 2, 3], "lin");
    let queue = c.assert_pools_identical_offline(&[1, 2, 3], "queue");
    let offline: Vec<&str> = queue["queue"]
        .as_array()
        .expect("queue")
        .iter()
        .filter_map(|q| q["user"].as_str())
        .collect();
    assert_eq!(
        offline, queue_before,
        "every node's journal keeps the queue order"
    );
}

/// A paused leader, resumed after the others elected a new one, steps down and
/// acknowledges nothing from its stale term: writes and reads sent to it right after
/// `SIGCONT` are refused (503, never a dropped connection) or are the new leader's
/// answers.
#[test]
fn a_paused_leader_steps_down_and_acknowledges_nothing_from_its_stale_term() {
    let _serial = serial();
    let mut c = Cluster::start();
    let old = c.leader();
    let lin_users = users("lin", 12);
    let stale_users = users("stale", 8);
    let flip_users = users("flip", 8);
    let mut members: Vec<String> = lin_users.clone();
    members.extend(stale_users.iter().cloned());
    members.extend(flip_users.iter().cloned());
    members.push("probe".into());
    c.product_with_users(old, "lin", roomy_product(members.len()), &members);

    let rec = Arc::new(Recorder::new());
    // The flip users hold a slot when the leader stops.
    for f in &flip_users {
        let r = recorded(&rec, &c.client(old), Call::Request, "lin", f);
        assert_eq!(r.state(), "granted", "{r:?}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_lin_load(c.bases(), &lin_users, &rec, &stop);

    let paused_at = Instant::now();
    c.pause(old);
    let others: Vec<u64> = c.live();
    let failover = first_write_after(
        &c,
        &others,
        "lin",
        "probe",
        paused_at,
        Duration::from_secs(15),
    );
    let new = c.wait_new_leader(old, Duration::from_secs(10));
    eprintln!("paused leader {old}: leader {new} served a write after {failover:?}");
    assert!(failover <= FAILOVER_BOUND, "failover took {failover:?}");
    // While the old leader sleeps, the flip users release through the new one.
    for f in &flip_users {
        let r = recorded(&rec, &c.client(new), Call::Release, "lin", f);
        assert_eq!(r.status, 204, "{r:?}");
    }
    // Writes and reads sent straight to the old leader, waiting in its sockets.
    let stale_calls: Vec<_> = stale_users
        .iter()
        .map(|u| (u.clone(), Call::Request))
        .chain(flip_users.iter().map(|u| (u.clone(), Call::Read)))
        .map(|(u, call)| {
            let rec = Arc::clone(&rec);
            let cl = c.quick_client(old, Duration::from_secs(15));
            std::thread::spawn(move || {
                let r = recorded(&rec, &cl, call, "lin", &u);
                (u, call, r)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    c.resume(old);
    let answers: Vec<(String, Call, Resp)> = stale_calls
        .into_iter()
        .map(|h| h.join().expect("stale call thread"))
        .collect();

    // It says it steps down, and comes back as a follower of the new leader.
    assert!(
        c.wait_output(old, Duration::from_secs(15), |o| o
            .contains("stepping down")),
        "the old leader must log \"stepping down\"\n{}",
        c.logs()
    );
    // It cannot win an election with the log it has: the leader is another node.
    assert_ne!(c.wait_leader(Duration::from_secs(20)), old);
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.status(old).map(|s| s["state"].clone()) != Some(json!("follower")) {
        assert!(
            Instant::now() < deadline,
            "the old leader did not come back as a follower: {}",
            c.statuses()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Nothing it answered contradicts the new leader's history.
    for (u, call, r) in &answers {
        match (call, r.status) {
            (Call::Request, 200) => {
                assert_eq!(r.state(), "granted", "{u}: {r:?}");
                assert_eq!(
                    c.client(new).slot("lin", u).state(),
                    "granted",
                    "{u}: the old leader acknowledged a request the cluster does not have"
                );
            }
            (Call::Read, 200) => assert_eq!(
                r.state(),
                "none",
                "{u}: a stale read of a slot released on the new leader"
            ),
            // Refused: not acknowledged (whatever the reason while it steps down). A
            // dropped connection (status 0) is not an answer: it steps down gracefully.
            (_, 503) => {}
            (_, other) => panic!("{u}: {call:?} answered {other}: {r:?}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    after_the_fault(&mut c, load, &rec, "lin");
}

/// A leader killed with an entry in its log that no follower has yet, and started again
/// before the followers give up on it, leads again in the same term, and Raft commits
/// that entry. The leader must serve only once it has applied it: otherwise its products
/// start from a state without it, propose the same sequences again, and the cluster
/// commits two histories of one stream (the second's acknowledged changes dropped when
/// applied, the hash chain broken on every copy).
#[test]
fn a_leader_restarted_within_its_term_serves_only_after_applying_its_whole_log() {
    let _serial = serial();
    // The followers wait 5 to 10 s for a leader before they elect one of their own: time
    // enough for the leader to start again.
    let mut c = Cluster::start_with(ClusterOpts {
        election_timeout_ms: 5000,
        ..ClusterOpts::default()
    });
    let leader = c.leader();
    let members = users("own", 6);
    c.product_with_users(leader, "own", roomy_product(members.len()), &members);
    let term = |c: &Cluster| c.status(leader).map(|s| s["term"].clone());
    let before = term(&c);

    // An entry only the leader has: its links to the followers are cut, and it appends a
    // request it cannot commit (the caller gets no answer: it is not acknowledged).
    for f in c.followers() {
        c.proxy.block(leader, f);
    }
    let unanswered = {
        let cl = c.quick_client(leader, Duration::from_secs(2));
        let user = members[0].clone();
        std::thread::spawn(move || {
            cl.try_call(
                "POST",
                "/api/v1/products/own/slot",
                &[("X-Slotpool-User", &user)],
                None,
            )
            .map(|r| r.status)
        })
    };
    // Long enough for the entry to be appended and fsynced in the leader's log.
    std::thread::sleep(Duration::from_millis(700));
    c.kill9(leader);
    let answered = unanswered.join().expect("the request's thread");
    assert!(
        !matches!(answered, Ok(s) if (200..300).contains(&s)),
        "precondition: a leader cut off from its followers acknowledged a change: {answered:?}"
    );
    c.proxy.heal();
    c.spawn(leader);
    let back = c.wait_leader(Duration::from_secs(30));
    assert!(
        back == leader && term(&c) == before,
        "precondition: the restarted node was to lead again in its term ({before:?}) before \
         the followers elected another: {}",
        c.statuses()
    );

    // Raft keeps the entry only the leader had: it commits with the leader's term, so the
    // request nobody answered took effect.
    let r = c.client(leader).slot("own", &members[0]);
    assert_eq!(r.state(), "granted", "{}: {r:?}", members[0]);
    // Changes acknowledged after the restart, then seen from every node.
    for u in &members[1..] {
        let r = c.client(leader).request("own", u);
        assert_eq!(r.state(), "granted", "{u}: {r:?}");
    }
    for id in c.ids() {
        for u in &members[1..] {
            let r = c.client(id).slot("own", u);
            assert_eq!(r.state(), "granted", "node {id}, {u}: {r:?}");
        }
    }
    // No member had to refuse a write: the leader proposed from the committed state.
    for id in c.ids() {
        let s = c.status(id).unwrap_or_default();
        assert_eq!(s["refused_writes"], json!(0), "node {id}: {s}");
    }
    // One history on every copy (`slotpool verify` checks each chain), the same pools;
    // and every node starts again from it, with every acknowledged change.
    c.assert_chains_identical(&[1, 2, 3]);
    c.assert_pools_identical_offline(&[1, 2, 3], "own");
    c.start_all(&[1, 2, 3]);
    let now = c.leader();
    for u in &members[1..] {
        let r = c.client(now).slot("own", u);
        assert_eq!(r.state(), "granted", "after a restart of all, {u}: {r:?}");
    }
}

/// A partition made by the proxy: the isolated leader (the minority) answers 503
/// `no_leader` to writes and gate reads and acknowledges nothing; the majority elects a
/// leader and keeps serving; after healing, one history.
#[test]
fn a_partitioned_minority_answers_503_and_the_majority_keeps_serving() {
    let _serial = serial();
    let mut c = Cluster::start();
    let old = c.leader();
    let lin_users = users("lin", 12);
    let mut members = lin_users.clone();
    members.extend(["probe", "gatekeeper", "minority", "majority"].map(String::from));
    c.product_with_users(old, "lin", roomy_product(members.len()), &members);
    let rec = Arc::new(Recorder::new());
    let r = recorded(&rec, &c.client(old), Call::Request, "lin", "gatekeeper");
    assert_eq!(r.state(), "granted");
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_lin_load(c.bases(), &lin_users, &rec, &stop);

    let isolated_at = Instant::now();
    c.proxy.isolate(old);
    let majority: Vec<u64> = c.ids().into_iter().filter(|&id| id != old).collect();
    let failover = first_write_after(
        &c,
        &majority,
        "lin",
        "probe",
        isolated_at,
        Duration::from_secs(15),
    );
    let new = c.wait_leader_among(&majority, Duration::from_secs(10));
    eprintln!("partitioned leader {old}: leader {new} served a write after {failover:?}");

    // The minority: no write sent to it after the cut is acknowledged; within a few
    // seconds it says no_leader, with Retry-After, to writes, reads and the gate.
    let minority = c.quick_client(old, Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(15);
    let refusal = loop {
        let r = recorded(&rec, &minority, Call::Request, "lin", "minority");
        assert_ne!(r.status, 200, "the minority acknowledged a write: {r:?}");
        if r.status == 503 && r.json()["reason"] == "no_leader" {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the minority never answered 503 no_leader; last: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_problem(&refusal, 503, "no_leader");
    assert_eq!(refusal.header("retry-after"), Some("1"), "{refusal:?}");
    // That answer may be the stepping-down leader's own: it then restarts in place, its
    // port closed for a moment. Back, it follows (and forwards) again.
    assert!(
        c.wait_output(old, Duration::from_secs(15), |o| o
            .matches("(following)")
            .count()
            >= 2),
        "the minority did not restart as a follower\n{}",
        c.logs()
    );
    assert_eq!(minority.call("GET", "/healthz", &[], None).status, 200);
    let r = recorded(&rec, &minority, Call::Release, "lin", "gatekeeper");
    assert_problem(&r, 503, "no_leader");
    let r = minority.user("GET", "/gate/lin", "gatekeeper");
    assert_problem(&r, 503, "no_leader");
    assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    let r = recorded(&rec, &minority, Call::Read, "lin", "gatekeeper");
    assert_problem(&r, 503, "no_leader");
    let admin = minority.admin("PUT", "/admin/v1/products/lin/members/late", None);
    assert_problem(&admin, 503, "no_leader");
    assert_eq!(minority.call("GET", "/readyz", &[], None).status, 503);
    // The majority serves, on both its nodes.
    for &id in &majority {
        let r = recorded(&rec, &c.client(id), Call::Request, "lin", "majority");
        assert_eq!(r.state(), "granted", "node {id}: {r:?}");
        assert_eq!(
            c.client(id).user("GET", "/gate/lin", "gatekeeper").status,
            204
        );
    }

    c.proxy.heal();
    // One leader again, from the majority (the old one's log lacks the majority's writes).
    assert_ne!(
        c.wait_leader(Duration::from_secs(20)),
        old,
        "after healing, one leader"
    );
    assert!(
        c.wait_output(old, Duration::from_secs(15), |o| o
            .contains("stepping down")),
        "the partitioned leader must step down\n{}",
        c.logs()
    );
    assert_eq!(c.client(old).slot("lin", "majority").state(), "granted");

    // Now a follower alone: once it stops hearing from the leader it knows none, and
    // says so; the other two serve on. (Until then it may still forward to the leader,
    // whose answers are acknowledged by a majority: those are fine.)
    let leader = c.leader();
    let lonely = c.followers()[0];
    c.proxy.isolate(lonely);
    let cut = c.quick_client(lonely, Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = recorded(&rec, &cut, Call::Request, "lin", "minority");
        if r.status == 503 && r.json()["reason"] == "no_leader" {
            assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
            break;
        }
        assert!(
            r.status == 200 || r.status == 503 || r.status == 0,
            "an isolated follower answers 200 (forwarded) or 503: {r:?}"
        );
        assert!(
            Instant::now() < deadline,
            "the isolated follower never answered 503 no_leader; last: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_problem(
        &cut.user("GET", "/gate/lin", "gatekeeper"),
        503,
        "no_leader",
    );
    let r = recorded(&rec, &c.client(leader), Call::Release, "lin", "majority");
    assert_eq!(r.status, 204, "the majority serves: {r:?}");
    c.proxy.heal();
    c.wait_leader(Duration::from_secs(20));

    stop.store(true, Ordering::SeqCst);
    after_the_fault(&mut c, load, &rec, "lin");
}

/// A node started with the wrong secret, then with another cluster id, cannot join:
/// the other two serve without it, it answers 503 `no_leader`, a log says why; started
/// right, it joins and catches up. Garbage on the Raft port changes nothing.
#[test]
fn a_node_with_the_wrong_secret_or_cluster_id_cannot_join() {
    let _serial = serial();
    let mut c = Cluster::build(ClusterOpts::default());
    c.node_mut(3).spec.secret = "not-the-cluster-secret-0123456789".into();
    for id in [1, 2, 3] {
        c.spawn(id);
    }
    c.wait_node_ready(1, Duration::from_secs(30));
    c.wait_node_ready(2, Duration::from_secs(30));
    let leader = c.wait_leader_among(&[1, 2], Duration::from_secs(20));
    let names = users("user", 4);
    c.product_with_users(leader, "p", roomy_product(4), &names);

    let assert_outsider = |c: &Cluster, what: &str, words: &[&str]| {
        // The two serve.
        assert_eq!(c.client(1).request("p", &names[0]).state(), "granted");
        assert_eq!(c.client(2).release("p", &names[0]).status, 204);
        // The outsider knows no leader and serves nothing.
        let s = c.status(3).expect("node 3 status");
        assert!(s["leader"].is_null(), "{what}: node 3 follows {s}");
        let r = c
            .quick_client(3, Duration::from_secs(5))
            .request("p", &names[1]);
        assert_problem(&r, 503, "no_leader");
        assert_eq!(c.client(3).call("GET", "/readyz", &[], None).status, 503);
        let lm = c.metrics(leader);
        assert_eq!(
            metric(&lm, "slotpool_raft_peer_up{peer=\"3\"}"),
            Some(0.0),
            "{what}: the leader must see node 3 down"
        );
        assert!(
            c.ids().iter().any(|&id| {
                let o = c.output(id).to_lowercase();
                words.iter().any(|w| o.contains(w))
            }),
            "{what}: no node logs any of {words:?}\n{}",
            c.logs()
        );
    };
    std::thread::sleep(Duration::from_secs(3));
    assert_outsider(&c, "wrong secret", &["secret", "authenticat"]);

    // Garbage after a valid hello on the leader's real Raft port: nobody's term moves.
    let term = c.status(leader).expect("status")["term"].clone();
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", c.node(leader).spec.raft_port))
            .expect("connect to the raft port");
        let mut bytes = common::fault_proxy::hello(3).to_vec();
        bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let _ = s.write_all(&bytes);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.status(leader).expect("status")["term"], term);
    assert_eq!(c.agreed_leader_among(&[1, 2]), Some(leader));

    c.kill9(3);
    c.node_mut(3).spec.secret = CLUSTER_SECRET.into();
    c.node_mut(3).spec.cluster_id = "another-cluster".into();
    c.spawn(3);
    std::thread::sleep(Duration::from_secs(3));
    assert_outsider(&c, "another cluster id", &["cluster id"]);

    c.kill9(3);
    c.node_mut(3).spec.cluster_id = CLUSTER_ID.into();
    c.restart(3);
    // Its campaigns with higher terms may cause one election; then one leader again, and
    // node 3 a member that knows every member's address (until then it knows the leader's
    // id but cannot forward to it, and answers 503 `no_leader`).
    c.wait_leader(Duration::from_secs(20));
    c.wait_formed(Duration::from_secs(20));
    assert_eq!(c.client(3).request("p", &names[2]).state(), "granted");
    c.assert_chains_identical(&[1, 2, 3]);
    c.assert_pools_identical_offline(&[1, 2, 3], "p");
}

/// A corrupt tail of a stopped follower's Raft log (a flipped byte, then a truncation
/// of the newest file under `<data_dir>/raft/wal/`): the node either refuses to start
/// naming the file, or starts, drops the tail and catches up. It never diverges.
#[test]
fn a_corrupt_raft_log_tail_is_refused_or_dropped_never_applied() {
    let _serial = serial();
    let mut c = Cluster::start();
    let leader = c.leader();
    let names = users("user", 8);
    c.product_with_users(leader, "p", roomy_product(8), &names);
    let follower = c.followers()[0];
    let toggle = |c: &Cluster, via: u64, rounds: usize| {
        let cl = c.client(via);
        for _ in 0..rounds {
            for u in &names {
                assert_eq!(cl.request("p", u).state(), "granted");
            }
            for u in &names {
                assert_eq!(cl.release("p", u).status, 204);
            }
        }
    };
    let mut refused = false;
    for (round, damage) in ["flip", "truncate"].into_iter().enumerate() {
        toggle(&c, leader, 3);
        c.wait_caught_up(Duration::from_secs(30));
        c.kill9(follower);
        let data = c.node(follower).spec.data_dir.clone();
        let wal = data.join("raft").join("wal");
        let file = newest_file(&wal)
            .or_else(|| newest_file(&data.join("raft")))
            .unwrap_or_else(|| panic!("no Raft log file under {}", data.join("raft").display()));
        let mut bytes = std::fs::read(&file).expect("read the log file");
        match damage {
            "flip" => {
                let at = bytes.len().saturating_sub(8);
                bytes[at] ^= 0x5A;
            }
            _ => {
                let cut = (bytes.len() / 3).clamp(1, 37);
                bytes.truncate(bytes.len() - cut);
            }
        }
        std::fs::write(&file, &bytes).expect("damage the log file");
        eprintln!("round {round}: {damage} in {}", file.display());
        // The cluster goes on without it; the follower must catch up on this later.
        toggle(&c, leader, 1);
        assert_eq!(
            c.client(leader).request("p", &names[round]).state(),
            "granted"
        );

        c.spawn(follower);
        let deadline = Instant::now() + Duration::from_secs(30);
        let started = loop {
            let node = c.node_mut(follower);
            let server = node.server.as_mut().expect("spawned");
            if let Some(status) = server.try_wait() {
                break Err(status);
            }
            if c.agreed_leader()
                .is_some_and(|l| c.status(follower).is_some_and(|s| s["leader"] == json!(l)))
            {
                break Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "node {follower} neither refused nor rejoined\n{}",
                c.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        match started {
            Err(status) => {
                let out = c.output(follower);
                let name = file
                    .file_name()
                    .expect("file name")
                    .to_string_lossy()
                    .to_string();
                assert_ne!(status.code(), Some(0), "a refusal exits non-zero");
                assert!(
                    out.contains(&name),
                    "the refusal must name the damaged file {name}: {out}"
                );
                eprintln!("round {round}: node {follower} refused to start ({status})");
                c.node_mut(follower).server = None;
                refused = true;
                break;
            }
            Ok(()) => {
                c.wait_caught_up(Duration::from_secs(30));
                assert_eq!(
                    c.client(follower).slot("p", &names[round]).state(),
                    "granted"
                );
                eprintln!("round {round}: node {follower} dropped the tail and caught up");
            }
        }
    }
    let live = c.ids();
    let compared: Vec<u64> = if refused {
        live.into_iter().filter(|&id| id != follower).collect()
    } else {
        live
    };
    c.assert_chains_identical(&compared);
    c.assert_pools_identical_offline(&compared, "p");
}

/// A follower restarted with a peers list that disagrees with the cluster's membership
/// (two members' addresses swapped) gets a clear error; the cluster serves on; started
/// with the right list, it rejoins without divergence.
#[test]
fn a_node_whose_peer_list_disagrees_gets_a_clear_error() {
    let _serial = serial();
    let mut c = Cluster::start();
    let leader = c.leader();
    let names = users("user", 4);
    c.product_with_users(leader, "p", roomy_product(4), &names);
    let follower = c.followers()[0];
    c.wait_caught_up(Duration::from_secs(30));
    assert_eq!(c.sigterm(follower).code(), Some(0));
    let right = c.node(follower).spec.peers.clone();
    let mut wrong = right.clone();
    let others: Vec<usize> = (0..wrong.len())
        .filter(|&i| wrong[i].id != follower)
        .collect();
    let (a, b) = (others[0], others[1]);
    let (ha, ra) = (wrong[a].http.clone(), wrong[a].raft.clone());
    wrong[a].http = wrong[b].http.clone();
    wrong[a].raft = wrong[b].raft.clone();
    wrong[b].http = ha;
    wrong[b].raft = ra;
    c.node_mut(follower).spec.peers = wrong;
    c.spawn(follower);

    let clear = |o: &str| {
        let o = o.to_lowercase();
        o.lines().any(|l| {
            l.contains("peer")
                && [
                    "disagree",
                    "mismatch",
                    "differ",
                    "does not match",
                    "do not match",
                ]
                .iter()
                .any(|w| l.contains(w))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let exited = c
            .node_mut(follower)
            .server
            .as_mut()
            .expect("spawned")
            .try_wait();
        let out = c.output(follower);
        if let Some(status) = exited {
            assert_ne!(status.code(), Some(0), "{out}");
            assert!(
                out.to_lowercase().contains("peer"),
                "the error must be about the peers list: {out}"
            );
            c.node_mut(follower).server = None;
            break;
        }
        if clear(&out) {
            c.kill9(follower);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no clear error about the peers list\n{out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing changed for the others.
    assert_eq!(c.client(leader).request("p", &names[0]).state(), "granted");
    c.node_mut(follower).spec.peers = right;
    c.restart(follower);
    c.wait_leader(Duration::from_secs(20));
    assert_eq!(c.client(follower).slot("p", &names[0]).state(), "granted");
    c.assert_chains_identical(&[1, 2, 3]);
}

/// Membership: a fourth node added through a follower's `POST /admin/v1/cluster/members`
/// catches up and becomes a voter; `DELETE` removes it; the three serve on.
#[test]
fn a_fourth_node_joins_as_a_voter_and_is_removed() {
    let _serial = serial();
    let mut c = Cluster::start();
    let leader = c.leader();
    let names = users("user", 8);
    c.product_with_users(leader, "p", roomy_product(8), &names);
    for u in &names {
        assert_eq!(c.client(leader).request("p", u).state(), "granted");
    }
    // A follower of the three (a new node knows no leader until it is added).
    let follower = c.followers()[0];
    let spec = c.new_node_spec(4);
    let peer = spec.peer(&c.proxy);
    c.insert_node(spec);
    c.spawn(4);
    let body = json!({"id": 4, "http": peer.http, "raft": peer.raft});
    // A follower that only just heard of the leader answers 503 with Retry-After: retried.
    let r = c.admin_retrying(
        follower,
        "POST",
        "/admin/v1/cluster/members",
        Some(&body),
        &[200],
    );
    assert!(
        r.json()["members"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["id"] == json!(4))),
        "{r:?}"
    );
    // It catches up and votes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.status(leader).expect("leader status");
        let four = s["members"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["id"] == json!(4)).cloned());
        if four
            .as_ref()
            .is_some_and(|m| m["voter"] == json!(true) && m["lag"] == json!(0))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 4 never became an up-to-date voter: {s}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.wait_node_ready(4, Duration::from_secs(30));
    let leader = c.wait_leader(Duration::from_secs(20));
    c.wait_caught_up(Duration::from_secs(30));
    assert_eq!(
        metric(&c.metrics(leader), "slotpool_raft_members"),
        Some(4.0)
    );
    // It serves, and what it had to catch up on is there.
    for u in &names {
        assert_eq!(c.client(4).slot("p", u).state(), "granted");
    }
    assert_eq!(c.client(4).release("p", &names[0]).status, 204);
    assert_eq!(c.client(1).slot("p", &names[0]).state(), "none");

    c.admin_retrying(
        leader,
        "DELETE",
        "/admin/v1/cluster/members/4",
        None,
        &[200],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.status(leader).expect("leader status");
        let mut ids: Vec<u64> = s["members"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["id"].as_u64()).collect())
            .unwrap_or_default();
        ids.sort_unstable();
        if ids == [1, 2, 3] {
            break;
        }
        assert!(Instant::now() < deadline, "node 4 was not removed: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    c.kill9(4);
    assert_eq!(c.client(follower).release("p", &names[1]).status, 204);
    // The gauges are refreshed four times a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&c.metrics(leader), "slotpool_raft_members") != Some(3.0) {
        assert!(
            Instant::now() < deadline,
            "slotpool_raft_members never became 3"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.assert_chains_identical(&[1, 2, 3]);
    c.assert_pools_identical_offline(&[1, 2, 3], "p");
}

/// Time rules run once: holders warned by the old leader are revoked by the new one after
/// a kill -9 of the leader, each exactly once (one warning, one revocation in every
/// member's journal), none missed.
#[test]
fn time_rules_run_once_across_a_failover() {
    let _serial = serial();
    let mut c = Cluster::start();
    let leader = c.leader();
    let names = users("idle", 4);
    let settings = json!({"kind": "jira", "licence_tier": 20, "shared_slots": 10,
        "inactivity_s": 8, "warning_lead_s": 4, "sweep_interval_s": 1});
    c.product_with_users(leader, "t", settings, &names);
    for u in &names {
        assert_eq!(c.client(leader).request("t", u).state(), "granted");
    }
    // The old leader's scheduler warns them (about 4 s after the grant).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let holders = c
            .client(leader)
            .admin("GET", "/admin/v1/products/t/holders", None)
            .json();
        let warned = holders.as_array().map_or(0, |h| {
            h.iter().filter(|h| !h["warned_at"].is_null()).count()
        });
        if warned == names.len() {
            break;
        }
        assert!(Instant::now() < deadline, "never warned: {holders}");
        std::thread::sleep(Duration::from_millis(100));
    }
    c.kill9(leader);
    let new = c.wait_leader(Duration::from_secs(10));
    assert_ne!(new, leader);
    // The new leader's scheduler revokes them, from the replicated state.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let holders = c
            .client(new)
            .admin("GET", "/admin/v1/products/t/holders", None);
        if holders.status == 200 && holders.json().as_array().is_some_and(|h| h.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "never revoked: {holders:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    c.restart(leader);
    c.wait_caught_up(Duration::from_secs(30));
    c.assert_chains_identical(&[1, 2, 3]);
    for id in [1, 2, 3] {
        let dir = c.node(id).spec.data_dir.display().to_string();
        for u in &names {
            let out = run_cli(&[
                "audit",
                "--data-dir",
                &dir,
                "--product",
                "t",
                "--user",
                u,
                "--format",
                "json",
            ]);
            assert_eq!(out.code, Some(0), "{out:#?}");
            let a: serde_json::Value = serde_json::from_str(&out.stdout).expect("audit JSON");
            let events: Vec<&str> = a["timeline"]["entries"]
                .as_array()
                .map(|e| e.iter().filter_map(|e| e["event"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(
                events,
                ["enrolled", "granted", "warned", "revoked"],
                "node {id}, {u}: one warning and one revocation, by whichever leader: {a}"
            );
        }
    }
}

/// Opens `user`'s notification stream on `base` (retrying 503s, as the page's script
/// does) and forwards each event (name, data) to a channel ([`stream_events`]).
fn listen(
    base: &str,
    product: &str,
    user: &str,
) -> std::sync::mpsc::Receiver<(String, serde_json::Value)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let resp = loop {
        match ureq::get(&format!("{base}/api/v1/products/{product}/notifications"))
            .set("X-Slotpool-User", user)
            .call()
        {
            Ok(r) => break r,
            Err(e) => {
                assert!(Instant::now() < deadline, "the stream never opened: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    stream_events(resp)
}

/// The next event that is not a keep-alive, within `secs`.
fn next_event(
    rx: &std::sync::mpsc::Receiver<(String, serde_json::Value)>,
    secs: u64,
) -> Option<(String, serde_json::Value)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok((name, _)) if name.is_empty() || name == "ping" => continue,
            Ok(e) => return Some(e),
            Err(_) => return None,
        }
    }
}

/// A product of one shared slot on the cluster, held by one member while another
/// queues for it; returns the two.
fn one_holder_one_queued(c: &Cluster, leader: u64, product: &str) -> (String, String) {
    let names = users(product, 2);
    c.product_with_users(
        leader,
        product,
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 1}),
        &names,
    );
    assert_eq!(
        c.client(leader).request(product, &names[0]).state(),
        "granted"
    );
    assert_eq!(
        c.client(leader).request(product, &names[1]).state(),
        "queued"
    );
    (names[0].clone(), names[1].clone())
}

/// Live sessions move: a queued member's event stream, held through a follower, ends
/// when the leader dies; reconnected, it finds its place in the queue kept, and the grant
/// made by the new leader reaches it.
#[test]
fn a_queued_members_stream_reconnects_after_a_failover_and_gets_its_grant() {
    let _serial = serial();
    let mut c = Cluster::start();
    let leader = c.leader();
    let (holder, waiting) = one_holder_one_queued(&c, leader, "s");
    let (holder, waiting) = (&holder, &waiting);
    let follower = c.followers()[0];
    let base = c.client(follower).base.clone();
    let stream = listen(&base, "s", waiting);
    let (name, data) = next_event(&stream, 10).expect("the stream's first event");
    assert_eq!(
        (name.as_str(), &data["position"]),
        ("queue", &json!(1)),
        "{data}"
    );
    c.kill9(leader);
    // The stream went through the dead leader: it ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream.recv_timeout(Duration::from_millis(200)).is_ok() {
        assert!(Instant::now() < deadline, "the stream outlived its leader");
    }
    c.wait_leader(Duration::from_secs(10));
    let stream = listen(&base, "s", waiting);
    let (name, data) = next_event(&stream, 10).expect("the reconnected stream's first event");
    assert_eq!(
        (name.as_str(), &data["position"]),
        ("queue", &json!(1)),
        "the place is kept: {data}"
    );
    assert_eq!(c.client(follower).release("s", holder).status, 204);
    let (name, _) = next_event(&stream, 10).expect("the grant reaches the stream");
    assert_eq!(name, "granted");
}

/// A follower down while the others wrote on, snapshotted and purged their logs past it
/// cannot catch up from the log: the leader sends it a snapshot (an export of its copy,
/// streamed from its file in chunks), built while the leader kept applying. The follower
/// installs it, applies the entries after it (some of which the snapshot may hold
/// already), and ends with the same journal as the others.
#[test]
fn a_follower_behind_the_purged_log_catches_up_by_a_snapshot() {
    let _serial = serial();
    let mut c = Cluster::start_with(ClusterOpts {
        cluster_extra: "snapshot_every_entries = 10\n".into(),
        ..ClusterOpts::default()
    });
    let leader = c.leader();
    let members = users("snap", 8);
    c.product_with_users(leader, "snap", roomy_product(members.len()), &members);
    let behind = c.followers()[0];
    assert_eq!(c.sigterm(behind).code(), Some(0));
    let cl = c.client(leader);
    for round in 0..8 {
        for u in &members {
            assert_eq!(
                cl.request("snap", u).state(),
                "granted",
                "round {round}, {u}"
            );
            assert_eq!(cl.release("snap", u).status, 204, "round {round}, {u}");
        }
    }
    c.restart(behind);
    c.wait_caught_up(Duration::from_secs(30));
    assert!(
        c.wait_output(behind, Duration::from_secs(10), |out| out
            .contains("installing a snapshot from the leader")),
        "node {behind} caught up without a snapshot: {}",
        c.output(behind)
    );
    for id in c.ids() {
        assert_eq!(
            c.client(id).holders("snap"),
            Vec::<String>::new(),
            "node {id}"
        );
        assert_eq!(c.status(id).expect("status")["refused_writes"], json!(0));
    }
    let ids = c.ids();
    c.assert_chains_identical(&ids);
}

/// Three consecutive free ports after a base (`tools/cluster.sh` gives node i the port
/// `base + i`).
fn free_base() -> u16 {
    for _ in 0..50 {
        let base = free_port().saturating_sub(1);
        if !(1024..=65_000).contains(&base) {
            continue;
        }
        let taken: Vec<_> = (1..=3)
            .map_while(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if taken.len() == 3 {
            return base;
        }
    }
    panic!("no three consecutive free ports");
}

/// Whether `pid` is a live process (a zombie, waiting for a parent to reap it, is not).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// `make cluster`'s script stops the nodes it started, whichever way the folder was
/// spelled each time (`./data-cluster` then the default once left three nodes running,
/// their pid files removed).
#[test]
fn the_cluster_script_stops_the_nodes_it_started_however_the_folder_is_spelled() {
    let _serial = serial();
    let dir = temp_dir();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/cluster.sh");
    let http_base = free_base();
    let raft_base = std::iter::repeat_with(free_base)
        .find(|b| b.abs_diff(http_base) > 3)
        .expect("a second block of ports");
    let run = |spelled: String, command: &str| {
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg(command)
            .env("CLUSTER_DIR", spelled)
            .env("NGINX", "0")
            .env("HTTP_BASE", http_base.to_string())
            .env("RAFT_BASE", raft_base.to_string())
            .env("SLOTPOOL_BIN", bin())
            .env("SLOTPOOL_LOG", "warn")
            .output()
            .expect("run tools/cluster.sh");
        assert!(
            out.status.success(),
            "tools/cluster.sh {command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let folder = dir.path().join("c");
    run(format!("{}/./c", dir.path().display()), "start");
    let pids: Vec<String> = (1..=3)
        .map(|i| {
            std::fs::read_to_string(folder.join(format!("n{i}/pid")))
                .expect("pid file")
                .trim()
                .to_string()
        })
        .collect();
    assert!(pids.iter().all(|p| alive(p)), "nodes {pids:?} run");
    // Whatever the outcome, no node outlives the test.
    struct Reap(Vec<String>);
    impl Drop for Reap {
        fn drop(&mut self) {
            for pid in self.0.iter().filter(|p| alive(p)) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", pid])
                    .status();
            }
        }
    }
    let _reap = Reap(pids.clone());
    run(format!("{}/", folder.display()), "stop");
    let gone = Instant::now();
    while pids.iter().any(|p| alive(p)) && gone.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !pids.iter().any(|p| alive(p)),
        "the nodes {pids:?} still run after `stop`"
    );
}

/// A leader stopped (SIGTERM) right after its followers, as when a whole cluster is shut
/// down, exits. While it drains its open requests (here a queued member's notification
/// stream holds the drain) its lead check finds no majority, and the step-down it decides
/// (a restart in place, to serve from what the cluster committed) once won over the
/// signal: the process ran on, the stop forgotten.
#[test]
fn a_leader_stopped_after_its_followers_exits() {
    let _serial = serial();
    let mut c = Cluster::start();
    let leader = c.leader();
    let (_, waiting) = one_holder_one_queued(&c, leader, "q");
    let stream = listen(&c.client(leader).base, "q", &waiting);
    assert!(next_event(&stream, 10).is_some(), "the stream is open");
    for f in c.followers() {
        assert!(c.sigterm(f).success(), "follower {f} exits cleanly");
    }
    let status = c.sigterm(leader);
    assert!(
        status.success(),
        "the leader exits cleanly: {status:?}\n{}",
        c.logs()
    );
    drop(stream);
}

/// Sends `request` (whole, with `Connection: close`) to `port` from the local address
/// `source`, and returns the answer as text, or what had come when `within` ran out.
fn http_from(source: &str, port: u16, request: &str, within: Duration) -> String {
    use std::io::{Read, Write};
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let from: std::net::SocketAddr = format!("{source}:0").parse().expect("source");
    socket.bind(&from.into()).expect("bind the source address");
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    socket.connect(&to.into()).expect("connect");
    let mut s: std::net::TcpStream = socket.into();
    s.set_read_timeout(Some(within)).expect("timeout");
    s.write_all(request.as_bytes()).expect("write");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

/// A follower is a front door of the leader, not a way around its rules. A client it does
/// not trust cannot act as a user through it (401 `untrusted_proxy`, as the leader
/// answers it directly; without the check the leader, which trusts its members, believed
/// whatever user such a client named); a trusted proxy's client address reaches the
/// leader's limits as it was sent (sign-ins from two clients are not one budget); a body
/// over every limit is a problem, not plain text; a body that stalls is answered 408
/// `request_timeout` as on the leader.
#[test]
fn a_follower_forwards_only_what_the_leader_would_take_from_the_client() {
    let _serial = serial();
    let c = Cluster::start_with(ClusterOpts {
        extra: "trusted_proxies = [\"127.0.0.1/32\"]\nrequest_body_timeout_s = 1\nlogin_rate_per_minute = 1\nlogin_rate_burst = 1\n".into(),
        ..ClusterOpts::default()
    });
    let leader = c.leader();
    let follower = c.followers()[0];
    c.product_with_users(
        leader,
        "door",
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 2}),
        &["alice".into()],
    );
    let port = |id: u64| c.node(id).spec.http_port;
    let as_alice = "POST /api/v1/products/door/slot HTTP/1.1\r\nHost: x\r\nX-Slotpool-User: alice\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    for id in [follower, leader] {
        let answer = http_from("127.0.0.2", port(id), as_alice, Duration::from_secs(10));
        assert!(answer.starts_with("HTTP/1.1 401"), "node {id}: {answer}");
        assert!(answer.contains("untrusted_proxy"), "node {id}: {answer}");
    }
    assert_eq!(c.client(leader).slot("door", "alice").state(), "none");
    // From a trusted peer the user is believed, through the follower too.
    assert_eq!(
        c.client(follower).request("door", "alice").state(),
        "granted"
    );

    // Sign-ins from two clients behind the trusted proxy: two budgets of one.
    let login = |client: &str| {
        let r = format!("POST /admin/login HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {client}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\nConnection: close\r\n\r\ntoken=x");
        let answer = http_from("127.0.0.1", port(follower), &r, Duration::from_secs(10));
        answer.get(9..12).unwrap_or("").to_string()
    };
    let first = login("10.1.1.1");
    assert_ne!(first, "429", "the first sign-in of 10.1.1.1");
    assert_ne!(
        login("10.1.1.2"),
        "429",
        "another client has its own budget"
    );
    assert_eq!(login("10.1.1.1"), "429", "the limit holds per client");

    // Too large for any route: refused by the follower as the leader refuses, a problem.
    let admin = c.client(follower);
    let big = vec![b'x'; 300 * 1024];
    let r = admin.admin_raw("PUT", "/admin/v1/products/door", &big);
    assert_problem(&r, 413, "payload_too_large");
    // Over the JSON limit only: forwarded, and the leader's own answer comes back.
    let r = admin.admin_raw("PUT", "/admin/v1/products/door", &vec![b' '; 70 * 1024]);
    assert_problem(&r, 413, "payload_too_large");

    // A body that stalls.
    let stalled = format!("PUT /admin/v1/products/door HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{");
    let started = Instant::now();
    let answer = http_from(
        "127.0.0.1",
        port(follower),
        &stalled,
        Duration::from_secs(15),
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("request_timeout"), "{answer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.client(leader).holders("door"), ["alice"]);
}

/// The documented way into a cluster (docs/operations.md): a single node's folder
/// becomes node 1, whose journal the others receive as a snapshot; node 1 killed while
/// the cluster grows (before the others even started) and started again, then the
/// others started: every configured member ends a voter holding node 1's history.
#[test]
fn a_single_nodes_folder_becomes_node_1_of_a_cluster_even_across_a_kill() {
    let _serial = serial();
    let mut c = Cluster::build(ClusterOpts::default());
    let data = c.node(1).spec.data_dir.clone();
    let logs = temp_dir();
    {
        let mut single = Server::start(&Opts::new(&data, logs.path()));
        let cl = single.client();
        cl.put_product(
            "solo",
            json!({"kind": "jira", "licence_tier": 5, "shared_slots": 1}),
        );
        cl.enrol("solo", "ann");
        cl.enrol("solo", "bob");
        assert_eq!(cl.request("solo", "ann").state(), "granted");
        assert_eq!(cl.request("solo", "bob").state(), "queued");
        single.stop();
    }
    c.spawn(1);
    assert!(
        c.wait_output(1, Duration::from_secs(30), |o| o
            .contains("starting the cluster from it")),
        "{}",
        c.logs()
    );
    c.kill9(1);
    c.spawn(1);
    for id in [2, 3] {
        c.spawn(id);
    }
    c.wait_formed(Duration::from_secs(60));
    for id in c.ids() {
        c.wait_node_ready(id, Duration::from_secs(30));
        let cl = c.client(id);
        assert_eq!(cl.holders("solo"), ["ann"], "node {id}");
        assert_eq!(cl.queue("solo"), ["bob"], "node {id}");
    }
}
