//! Chaos: concurrent users (request, release, activity) and an administrator (enrolments,
//! fixed licences, settings) against the real binary, while the service is killed with
//! SIGKILL at random moments (under load, and now and then during recovery) and restarted
//! on the same data dir. After every restart, every acknowledged change must be there, the
//! pool rules of docs/design.md must hold, and `verify` must find the journal intact.
//!
//! `CYCLES=N` sets the number of kills (5 by default, as in `make test`); `make chaos`
//! runs 100 against the release binary. A failure prints `SLOTPOOL_E2E_SEED` to replay
//! the same kill moments. The last line is
//! `chaos: <cycles> cycles, <acked> acked, <lost> lost, <violations> violations`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PRODUCT: &str = "chaos";
const USERS: usize = 48;
const SHARED: u64 = 16;
const TIER: u64 = 40;
/// The administrator hands out at most this many fixed licences (`fixed + shared <= tier`).
const MAX_FIXED: u64 = 20;

/// What the administrator's changes must have left, and the one change that was in flight
/// (sent, never answered) when the service died, which may or may not have happened.
#[derive(Debug, Clone, Default)]
struct AdminTrack {
    /// Acknowledged enrolments of `extra-<n>` users, over the whole run.
    enrolled: u64,
    /// Acknowledged fixed licences of `fixed-<n>` users, over the whole run.
    fixed: u64,
    /// The last acknowledged `inactivity_s`.
    inactivity_s: u64,
    in_flight: Option<AdminOp>,
    acked: u64,
    unexpected: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum AdminOp {
    Enrol,
    Fix,
    Settings(u64),
}

fn settings(inactivity_s: u64) -> Value {
    json!({"kind": "jira", "licence_tier": TIER, "shared_slots": SHARED, "inactivity_s": inactivity_s})
}

/// The administrator: one change at a time, a short pause between them.
fn start_admin(
    client: Client,
    mut t: AdminTrack,
    stop: &Arc<AtomicBool>,
    acks: &Arc<AtomicU64>,
) -> JoinHandle<AdminTrack> {
    let stop = Arc::clone(stop);
    let acks = Arc::clone(acks);
    std::thread::spawn(move || {
        let auth = format!("Bearer {}", client.token);
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let op = match n % 3 {
                0 if t.fixed < MAX_FIXED => AdminOp::Fix,
                1 => AdminOp::Settings(1800 + (t.inactivity_s + 7) % 600),
                _ => AdminOp::Enrol,
            };
            let (method, path, body, want) = match op {
                AdminOp::Enrol => (
                    "PUT",
                    format!("/admin/v1/products/{PRODUCT}/members/extra-{}", t.enrolled),
                    None,
                    204,
                ),
                AdminOp::Fix => (
                    "PUT",
                    format!("/admin/v1/products/{PRODUCT}/fixed/fixed-{}", t.fixed),
                    None,
                    204,
                ),
                AdminOp::Settings(s) => (
                    "PUT",
                    format!("/admin/v1/products/{PRODUCT}"),
                    Some(settings(s).to_string().into_bytes()),
                    200,
                ),
            };
            match client.try_call(method, &path, &headers, body.as_deref()) {
                Ok(r) if r.status == want => {
                    match op {
                        AdminOp::Enrol => t.enrolled += 1,
                        AdminOp::Fix => t.fixed += 1,
                        AdminOp::Settings(s) => t.inactivity_s = s,
                    }
                    t.acked += 1;
                    acks.fetch_add(1, Ordering::SeqCst);
                }
                Ok(r) if r.status == 503 => {
                    t.in_flight = Some(op);
                    break;
                }
                Ok(r) => {
                    t.unexpected.push(format!("{method} {path}: {r:?}"));
                    break;
                }
                Err(_) => {
                    t.in_flight = Some(op);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(15));
        }
        t
    })
}

/// Compares the product's counts and settings with the administrator's acknowledged
/// changes; returns what was lost, and the track to go on from (with the in-flight change
/// resolved by what the server shows).
fn check_admin(view: &Value, t: &AdminTrack) -> (Vec<String>, AdminTrack) {
    let mut lost = Vec::new();
    let members = view["members"].as_u64().unwrap_or(0);
    let fixed = view["fixed"].as_u64().unwrap_or(0);
    let inactivity = view["inactivity_s"].as_u64().unwrap_or(0);
    let base = USERS as u64;
    let mut next = AdminTrack {
        in_flight: None,
        unexpected: Vec::new(),
        ..t.clone()
    };
    let enrol_in_flight = matches!(t.in_flight, Some(AdminOp::Enrol));
    if members == base + t.enrolled + 1 && enrol_in_flight {
        next.enrolled += 1;
    } else if members != base + t.enrolled {
        lost.push(format!(
            "members: server has {members}, acknowledged {} (+1 in flight: {enrol_in_flight})",
            base + t.enrolled
        ));
    }
    let fix_in_flight = matches!(t.in_flight, Some(AdminOp::Fix));
    if fixed == t.fixed + 1 && fix_in_flight {
        next.fixed += 1;
    } else if fixed != t.fixed {
        lost.push(format!(
            "fixed: server has {fixed}, acknowledged {} (+1 in flight: {fix_in_flight})",
            t.fixed
        ));
    }
    match t.in_flight {
        Some(AdminOp::Settings(s)) if inactivity == s => next.inactivity_s = s,
        _ if inactivity == t.inactivity_s => {}
        other => lost.push(format!(
            "inactivity_s: server has {inactivity}, acknowledged {} (in flight: {other:?})",
            t.inactivity_s
        )),
    }
    (lost, next)
}

fn cycles() -> usize {
    std::env::var("CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(5)
}

#[test]
fn chaos_kill_9_at_random_moments_loses_no_acknowledged_change() {
    let cycles = cycles();
    let started = Instant::now();
    let mut rng = Rng::from_env_or_clock();
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let opts = |cycle: usize| {
        let o = Opts::new(&data, tmp.path());
        if cycle % 2 == 1 {
            o.arg("--durability").arg("process")
        } else {
            o
        }
    };
    let mut server = Server::start(&opts(0));
    let c = server.client();
    c.put_product(PRODUCT, settings(1800));
    let users = load_users(USERS);
    for u in &users {
        c.enrol(PRODUCT, u);
    }
    let mut admin = AdminTrack {
        inactivity_s: 1800,
        ..AdminTrack::default()
    };
    // Even users hammer the server; odd users pause, so that many are idle at a kill and
    // their state must then match their last answer exactly.
    let track = |i: usize, u: &String, k: Known| {
        Track::new(u, k)
            .thinking(if i % 2 == 1 { 80 } else { 0 })
            .active()
    };
    let mut tracks: Vec<Track> = users
        .iter()
        .enumerate()
        .map(|(i, u)| track(i, u, Known::None))
        .collect();
    let mut acked_total = 0u64;
    let mut lost: Vec<String> = Vec::new();
    let mut violations: Vec<String> = Vec::new();
    let mut recovery_kills = 0;

    for cycle in 0..cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let load = start_load(&server.base, PRODUCT, tracks, &stop);
        let admin_thread = start_admin(server.client(), admin.clone(), &stop, &load.acks);
        let t0 = Instant::now();
        load.wait_for_acks(USERS as u64 / 2, Duration::from_secs(30));
        let kill_at = Duration::from_millis(rng.range(150, 1200));
        std::thread::sleep(kill_at.saturating_sub(t0.elapsed()));
        server.kill9();
        stop.store(true, Ordering::SeqCst);
        tracks = load.join();
        let admin_before = admin_thread.join().expect("admin thread panicked");

        let unexpected: Vec<&String> = tracks
            .iter()
            .flat_map(|t| &t.unexpected)
            .chain(&admin_before.unexpected)
            .collect();
        assert!(
            unexpected.is_empty(),
            "cycle {cycle}: unexpected answers: {unexpected:#?}"
        );
        let acked = tracks.iter().map(|t| t.acked).sum::<u64>() + admin_before.acked - admin.acked;
        acked_total += acked;
        // Track counters are per cycle for users (fresh tracks), cumulative for the admin.
        let v = verify(&data);
        if v.code != Some(0) {
            violations.push(format!("cycle {cycle}: verify after kill -9: {v:?}"));
        }

        // Now and then, kill it again while it recovers.
        if rng.range(0, 4) == 0 {
            let mut s = Server::spawn(&opts(cycle + 1));
            std::thread::sleep(Duration::from_millis(rng.range(0, 60)));
            s.kill9();
            recovery_kills += 1;
            let v = verify(&data);
            if v.code != Some(0) {
                violations.push(format!(
                    "cycle {cycle}: verify after a kill in recovery: {v:?}"
                ));
            }
        }

        server = Server::start(&opts(cycle + 1));
        let c = server.client();
        let (pool, broken) = invariant_violations(&c, PRODUCT);
        violations.extend(broken.into_iter().map(|b| format!("cycle {cycle}: {b}")));
        let (observed, bad) = track_mismatches(&c, PRODUCT, &tracks);
        lost.extend(bad.into_iter().map(|b| format!("cycle {cycle}: {b}")));
        for (user, state) in &observed {
            if pool.holders.contains(user) != (state == "granted")
                || pool.queue.contains(user) != (state == "queued")
            {
                violations.push(format!(
                    "cycle {cycle}: {user} is {state:?} but holders {:?} queue {:?}",
                    pool.holders, pool.queue
                ));
            }
        }
        let (admin_lost, next) = check_admin(&pool.product, &admin_before);
        lost.extend(
            admin_lost
                .into_iter()
                .map(|b| format!("cycle {cycle}: {b}")),
        );
        admin = next;
        eprintln!(
            "cycle {cycle}: killed after {:?}: {acked} acknowledged, {} users and {} admin change in flight",
            kill_at.max(Duration::ZERO),
            tracks.iter().filter(|t| t.in_flight.is_some()).count(),
            usize::from(admin_before.in_flight.is_some()),
        );
        if !lost.is_empty() || !violations.is_empty() {
            break;
        }
        tracks = users
            .iter()
            .enumerate()
            .map(|(i, u)| track(i, u, known(&observed[u])))
            .collect();
    }

    println!(
        "chaos: {cycles} cycles, {acked_total} acked, {} lost, {} violations",
        lost.len(),
        violations.len()
    );
    eprintln!(
        "chaos: {recovery_kills} extra kills during recovery, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        lost.is_empty() && violations.is_empty(),
        "lost acknowledged changes:\n{}\nviolations:\n{}",
        lost.join("\n"),
        violations.join("\n")
    );
    server.stop();
    assert_verify_ok(&data);
}
