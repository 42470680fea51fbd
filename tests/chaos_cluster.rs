//! Chaos against a three-node cluster (`make chaos-cluster`, not in `make test`): cycles
//! of load from many users and an administrator, one random fault (kill -9 of the
//! leader, kill -9 of a follower, a paused leader, a partitioned node), recovery; after
//! every cycle every acknowledged operation must be there and the pool rules hold; at the
//! end the recorded client history must be linearizable and the journals identical.
//!
//! `CYCLES=N` (30 by default); a failure prints `SLOTPOOL_E2E_SEED` to replay the same
//! faults. The last line is `chaos-cluster: <cycles> cycles, <operations> operations,
//! <acknowledged> acknowledged, <lost> lost, failover p50 <ms> ms max <ms> ms`.

mod common;

use common::cluster::*;
use common::linearizable::{check, Recorder, DEFAULT_BUDGET};
use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USERS: usize = 48;
const LIN_USERS: usize = 16;

fn cycles() -> usize {
    std::env::var("CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(30)
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillLeader,
    KillFollower,
    PauseLeader,
    Partition,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
#[ignore = "minutes of chaos: make chaos-cluster"]
fn chaos_cluster_random_faults_lose_no_acknowledged_operation() {
    let cycles = cycles();
    let started = Instant::now();
    let mut rng = Rng::from_env_or_clock();
    let mut c = Cluster::start();
    let leader = c.leader();
    let users = load_users(USERS);
    c.product_with_users(
        leader,
        "chaos",
        json!({"kind": "jira", "licence_tier": 40, "shared_slots": 16}),
        &users,
    );
    let lin_users: Vec<String> = (0..LIN_USERS).map(|i| format!("lin-{i:02}")).collect();
    let mut roomy = lin_users.clone();
    // One fresh probe user per cycle: its first request is a change.
    roomy.extend((0..cycles).map(|i| format!("probe-{i}")));
    c.product_with_users(leader, "lin", roomy_product(roomy.len()), &roomy);

    let rec = Arc::new(Recorder::new());
    // Every operation on the contended product, for the count only (its pool queues, so
    // the register model of the checker does not apply to it).
    let counted = Arc::new(Recorder::new());
    let mut tracks: Vec<Track> = users
        .iter()
        .enumerate()
        .map(|(i, u)| Track::new(u, Known::None).thinking(if i % 2 == 1 { 60 } else { 0 }))
        .collect();
    let mut lin_tracks: Vec<Track> = lin_users
        .iter()
        .map(|u| Track::new(u, Known::None).thinking(20))
        .collect();
    let mut admin_acked = 0u64;
    let mut acked_total = 0u64;
    let mut lost: Vec<String> = Vec::new();
    let mut violations: Vec<String> = Vec::new();
    let mut failovers: Vec<Duration> = Vec::new();

    for cycle in 0..cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let bases = c.bases();
        let mut plan = LoadPlan::new(bases.clone(), "chaos");
        plan.read_every = 0;
        let load = start_cluster_load(&plan, tracks, Some(Arc::clone(&counted)), &stop);
        let lin = start_cluster_load(
            &LoadPlan::new(bases.clone(), "lin"),
            lin_tracks,
            Some(Arc::clone(&rec)),
            &stop,
        );
        // The administrator goes on from its count: extra-<acked> is the next enrolment.
        let admin = start_admin_load_from(bases, "chaos", admin_acked, &stop);
        load.wait_for_acks(USERS as u64 / 2, Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(rng.range(200, 800)));

        let fault = match rng.range(0, 4) {
            0 => Fault::KillLeader,
            1 => Fault::KillFollower,
            2 => Fault::PauseLeader,
            _ => Fault::Partition,
        };
        let leader = c.leader();
        let follower = c.followers()[rng.range(0, 2) as usize];
        let probe = format!("probe-{cycle}");
        let t0 = Instant::now();
        let mut measure = |c: &Cluster, away: u64| {
            let others: Vec<u64> = c.ids().into_iter().filter(|&id| id != away).collect();
            let d = first_write_after(c, &others, "lin", &probe, t0, Duration::from_secs(20));
            failovers.push(d);
            d
        };
        let note = match fault {
            Fault::KillLeader => {
                c.kill9(leader);
                let d = measure(&c, leader);
                std::thread::sleep(Duration::from_millis(300));
                c.restart(leader);
                format!("kill -9 leader {leader}: failover {d:?}")
            }
            Fault::KillFollower => {
                c.kill9(follower);
                std::thread::sleep(Duration::from_millis(rng.range(200, 1000)));
                c.restart(follower);
                format!("kill -9 follower {follower}")
            }
            Fault::PauseLeader => {
                c.pause(leader);
                let d = measure(&c, leader);
                std::thread::sleep(Duration::from_millis(300));
                c.resume(leader);
                format!("pause leader {leader}: failover {d:?}")
            }
            Fault::Partition => {
                let node = if rng.range(0, 2) == 0 {
                    leader
                } else {
                    follower
                };
                c.proxy.isolate(node);
                let d = (node == leader).then(|| measure(&c, leader));
                std::thread::sleep(Duration::from_millis(rng.range(300, 1200)));
                c.proxy.heal();
                format!("partition of node {node} (leader {leader}): failover {d:?}")
            }
        };
        c.wait_leader(Duration::from_secs(30));
        let acks = load.acks.load(Ordering::SeqCst);
        load.wait_for_acks(acks + USERS as u64, Duration::from_secs(60));
        stop.store(true, Ordering::SeqCst);
        tracks = load.join();
        lin_tracks = lin.join();
        let (acked, admin_in_flight, unexpected) = admin.join().expect("admin thread");
        let unexpected: Vec<&String> = tracks
            .iter()
            .chain(&lin_tracks)
            .flat_map(|t| &t.unexpected)
            .chain(&unexpected)
            .collect();
        assert!(
            unexpected.is_empty(),
            "cycle {cycle}: unexpected answers: {unexpected:#?}"
        );
        let cycle_acked = tracks
            .iter()
            .chain(&lin_tracks)
            .map(|t| t.acked)
            .sum::<u64>()
            + acked.saturating_sub(admin_acked);
        acked_total += cycle_acked;
        admin_acked = acked;

        // Every acknowledged operation, on a quiet cluster, through every node.
        c.wait_caught_up(Duration::from_secs(30));
        let mut observed = std::collections::BTreeMap::new();
        for id in c.ids() {
            let cl = c.client(id);
            let (pool, broken) = invariant_violations(&cl, "chaos");
            violations.extend(
                broken
                    .into_iter()
                    .map(|b| format!("cycle {cycle} node {id}: {b}")),
            );
            let members = pool.product["members"].as_u64().unwrap_or(0);
            let base = USERS as u64;
            if !(members == base + admin_acked
                || (admin_in_flight && members == base + admin_acked + 1))
            {
                lost.push(format!(
                    "cycle {cycle} node {id}: {members} members, {admin_acked} enrolments acknowledged"
                ));
            }
            for (product, ts) in [("chaos", &tracks), ("lin", &lin_tracks)] {
                let (seen, bad) = track_mismatches(&cl, product, ts);
                lost.extend(
                    bad.into_iter()
                        .map(|b| format!("cycle {cycle} node {id} {product}: {b}")),
                );
                observed.insert(product, seen);
            }
        }
        eprintln!(
            "cycle {cycle}: {note}; {cycle_acked} acknowledged, {} lost so far, {:.1} s",
            lost.len(),
            started.elapsed().as_secs_f64()
        );
        if !lost.is_empty() || !violations.is_empty() {
            break;
        }
        // Go on from what the cluster shows: an unacknowledged operation either happened
        // or not, and the next cycle starts from whichever it was.
        for (product, ts) in [("chaos", &mut tracks), ("lin", &mut lin_tracks)] {
            for t in ts.iter_mut() {
                t.last = known(&observed[product][&t.user]);
                t.in_flight = None;
                t.acked = 0;
            }
        }
        if admin_in_flight {
            let members = c.client(c.leader()).product("chaos")["members"]
                .as_u64()
                .unwrap_or(0);
            admin_acked = members - USERS as u64;
        }
    }

    let history = rec.history();
    let report = check(&history, DEFAULT_BUDGET);
    let operations = history.len() + counted.history().len();
    failovers.sort();
    println!(
        "chaos-cluster: {cycles} cycles, {operations} operations, {acked_total} acknowledged, {} lost, failover p50 {} ms max {} ms, linearizable: {} ({} keys, {} steps)",
        lost.len(),
        percentile(&failovers, 0.5).as_millis(),
        failovers.last().copied().unwrap_or_default().as_millis(),
        report.ok(),
        report.keys,
        report.steps,
    );
    assert!(
        lost.is_empty() && violations.is_empty(),
        "lost acknowledged operations:\n{}\nviolations:\n{}",
        lost.join("\n"),
        violations.join("\n")
    );
    assert!(report.ok(), "not linearizable: {:#?}", report.failures);
    // The typical failover is the goal (3 s); the slowest is reported above. Measured on
    // the 2-core machine, where three nodes and the load share two CPUs: p50 1.5 s, one
    // of 21 failovers 3.7 s (a paused leader), so only the median is held to 3 s here and
    // no failover may take more than twice that.
    assert!(
        percentile(&failovers, 0.5) <= Duration::from_secs(3)
            && failovers.iter().all(|d| *d <= Duration::from_secs(6)),
        "failovers too slow: {failovers:?}"
    );
    c.assert_chains_identical(&[1, 2, 3]);
    c.assert_pools_identical_offline(&[1, 2, 3], "chaos");
    c.assert_pools_identical_offline(&[1, 2, 3], "lin");
}
