//! `slotpool audit`, `analyze` and `simulate` against real data:
//! - audit: a live server is driven through a scenario; at several instants T the test
//!   records what the admin API answered (product, holders, queue), then stops the server
//!   and checks that `audit --at T --format json` says exactly the same; a user's timeline
//!   and the per-day peaks are checked against the scenario; a missing data dir, a corrupt
//!   journal and a running service's (locked) data dir get clear errors and exit codes.
//! - analyze: a generated access log (both formats, with malformed and anonymous lines)
//!   whose answer the test computes independently, second by second.
//! - simulate: a journal of deterministic arrivals where exactly which requests must
//!   queue, and for how long, is worked out by hand.

mod common;

use common::*;
use serde_json::{json, Value};
use slotpool_events::{Command, Mode, ProductKind, ProductState, Settings, StreamId, Timestamp};
use slotpool_journal::{Durability, Journal, JournalConfig, StreamTip};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const P: &str = "jira-prod";

fn run(args: &[&str]) -> Output {
    let out = slotpool_command()
        .args(args)
        .output()
        .expect("run slotpool");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run_json(args: &[&str]) -> Value {
    let out = run(args);
    assert_eq!(out.code, Some(0), "{args:?}: {out:#?}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

fn now_rfc3339() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis() as i64;
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a valid instant")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What the admin API said at one instant.
struct Seen {
    at: String,
    product: Value,
    holders: Value,
    queue: Value,
}

fn observe(c: &Client) -> Seen {
    let product = c.product(P);
    let holders = c.holders_json(P);
    let queue = c.queue_json(P);
    // Every event so far was decided before the answers came back, and the next one is
    // decided after this instant (the pause keeps them on different milliseconds).
    std::thread::sleep(Duration::from_millis(5));
    let at = now_rfc3339();
    std::thread::sleep(Duration::from_millis(5));
    Seen {
        at,
        product,
        holders,
        queue,
    }
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x["user"].as_str().expect("user"))
        .collect()
}

#[test]
fn audit_at_an_instant_equals_what_the_live_service_said() {
    let data = temp_dir();
    let logs = temp_dir();
    let mut server = Server::start(&Opts::new(data.path(), logs.path()));
    let c = server.client();
    let mut seen = Vec::new();

    c.put_product(
        P,
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 2}),
    );
    for u in ["alice", "bob", "carol", "dave"] {
        c.enrol(P, u);
    }
    seen.push(observe(&c));
    assert_eq!(c.request(P, "alice").state(), "granted");
    assert_eq!(c.request(P, "bob").state(), "granted");
    seen.push(observe(&c));
    assert_eq!(c.request(P, "carol").state(), "queued");
    assert_eq!(c.request(P, "dave").state(), "queued");
    seen.push(observe(&c));
    // Grow the pool: carol, the queue head, gets the new slot.
    c.put_product(
        P,
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 3}),
    );
    seen.push(observe(&c));
    // alice leaves: dave gets her slot; an administrator revokes bob.
    assert_eq!(c.release(P, "alice").status, 204);
    let r = c.admin(
        "DELETE",
        &format!("/admin/v1/products/{P}/holders/bob"),
        None,
    );
    assert_eq!(r.status, 204, "{r:?}");
    seen.push(observe(&c));

    // The running service holds the journal: a clear refusal naming the way out.
    let dir = data.path().to_str().expect("utf-8 path");
    let locked = run(&["audit", "--data-dir", dir, "--product", P]);
    assert_eq!(locked.code, Some(4), "{locked:#?}");
    assert!(
        locked.stderr.contains("running slotpool service")
            && locked.stderr.contains("slotpool backup"),
        "{locked:#?}"
    );
    server.stop();

    // The scenario's instants, as the service showed them.
    assert_eq!(names(&seen[1].holders), ["alice", "bob"]);
    assert_eq!(names(&seen[2].queue), ["carol", "dave"]);
    assert_eq!(names(&seen[4].holders), ["carol", "dave"]);
    for s in &seen {
        let audit = run_json(&[
            "audit",
            "--data-dir",
            dir,
            "--product",
            P,
            "--at",
            &s.at,
            "--format",
            "json",
        ]);
        assert_eq!(audit["product"], s.product, "product at {}", s.at);
        assert_eq!(audit["holders"], s.holders, "holders at {}", s.at);
        assert_eq!(audit["queue"], s.queue, "queue at {}", s.at);
    }

    // carol's timeline; the revocation of bob with its reason.
    let audit = run_json(&[
        "audit",
        "--data-dir",
        dir,
        "--product",
        P,
        "--user",
        "carol",
        "--format",
        "json",
    ]);
    let events: Vec<&str> = audit["timeline"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["event"].as_str().expect("event"))
        .collect();
    assert_eq!(events, ["enrolled", "queued", "granted"]);
    assert_eq!(audit["timeline"]["entries"][2]["from_queue"], true);
    assert_eq!(audit["revocations"], json!({"admin": 1}));
    let bob = run(&[
        "audit",
        "--data-dir",
        dir,
        "--product",
        P,
        "--user",
        "bob",
        "--format",
        "csv",
    ]);
    assert_eq!(bob.code, Some(0), "{bob:#?}");
    let lines: Vec<&str> = bob.stdout.lines().collect();
    assert_eq!(lines[0], "at,sequence,event,detail");
    assert!(lines[2].ends_with(",granted,"), "{lines:?}");
    assert!(lines[3].ends_with(",revoked,admin"), "{lines:?}");
    assert_eq!(lines.len(), 4, "{lines:?}");

    // Per-day peaks: three holders at once (after the resize), two queued.
    let peaks = run_json(&[
        "audit",
        "--data-dir",
        dir,
        "--product",
        P,
        "--peaks",
        "day",
        "--format",
        "json",
    ]);
    let days = peaks["peaks"]["periods"].as_array().expect("periods");
    let top = days
        .iter()
        .map(|d| d["peak_holders"].as_u64().expect("peak"))
        .max();
    assert_eq!(top, Some(3), "{days:?}");
    let top_queued = days
        .iter()
        .map(|d| d["peak_queued"].as_u64().expect("queued"))
        .max();
    assert_eq!(top_queued, Some(2), "{days:?}");
    // The table names the holders at the end.
    let table = run(&["audit", "--data-dir", dir, "--product", P]);
    assert_eq!(table.code, Some(0), "{table:#?}");
    assert!(table.stdout.contains("carol") && table.stdout.contains("dave"));
    assert!(
        table.stdout.contains("revocations: admin=1"),
        "{}",
        table.stdout
    );

    // An unknown product and a bad instant are usage errors (exit 2).
    let unknown = run(&["audit", "--data-dir", dir, "--product", "nope"]);
    assert_eq!(unknown.code, Some(2), "{unknown:#?}");
    assert!(unknown.stderr.contains("jira-prod"), "{unknown:#?}");
    let bad_at = run(&[
        "audit",
        "--data-dir",
        dir,
        "--product",
        P,
        "--at",
        "yesterday",
    ]);
    assert_eq!(bad_at.code, Some(2), "{bad_at:#?}");
    assert!(bad_at.stderr.contains("RFC 3339"), "{bad_at:#?}");
}

#[test]
fn audit_refuses_missing_and_corrupt_data_dirs() {
    let tmp = temp_dir();
    let missing = tmp.path().join("nowhere");
    let out = run(&[
        "audit",
        "--data-dir",
        missing.to_str().expect("utf-8"),
        "--product",
        P,
    ]);
    assert_eq!(out.code, Some(4), "{out:#?}");
    assert!(out.stderr.contains("does not exist"), "{out:#?}");
    assert!(!missing.exists(), "audit must not create the data dir");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = run(&[
        "audit",
        "--data-dir",
        empty.to_str().expect("utf-8"),
        "--product",
        P,
    ]);
    assert_eq!(out.code, Some(4), "{out:#?}");
    assert!(
        out.stderr.contains("not a slotpool data directory"),
        "{out:#?}"
    );

    // A journal with one record altered: exit 4 (an unusable data dir, as for `serve`),
    // naming stream and sequence.
    let dir = tmp.path().join("data");
    write_journal(&dir, &arrivals(5, 10, 100));
    {
        let db = sled::Config::new()
            .path(&dir)
            .flush_every_ms(None)
            .open()
            .expect("open sled");
        let tree = db.open_tree("journal").expect("journal tree");
        common::stored::flip(&tree, &format!("product/{P}"), 3, 0x40);
        db.flush().expect("flush");
    }
    let out = run(&[
        "audit",
        "--data-dir",
        dir.to_str().expect("utf-8"),
        "--product",
        P,
    ]);
    assert_eq!(out.code, Some(4), "{out:#?}");
    assert!(
        out.stderr.contains("damaged at sequence 3") && out.stderr.contains("product/jira-prod"),
        "{out:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// simulate

/// Deterministic demand: user i asks at `i * gap_s` and logs out `hold_s` later.
fn arrivals(n: usize, gap_s: i64, hold_s: i64) -> Vec<(i64, String, bool)> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push((i as i64 * gap_s, format!("u{i}"), true));
        out.push((i as i64 * gap_s + hold_s, format!("u{i}"), false));
    }
    out.sort();
    out
}

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// Writes a journal of `P` as the service would: the demand decided by the real rules
/// under a pool big enough for everyone (so every request is granted at once).
fn write_journal(dir: &Path, demand: &[(i64, String, bool)]) {
    write_journal_with_modes(dir, demand, &[]);
}

/// [`write_journal`], with the product's mode switched at the given instants (seconds
/// after T0; issue G's modes), as an administrator's settings change would.
fn write_journal_with_modes(dir: &Path, demand: &[(i64, String, bool)], modes: &[(i64, Mode)]) {
    let journal = Journal::open(
        dir,
        JournalConfig {
            durability: Durability::Process,
            ..JournalConfig::default()
        },
    )
    .expect("open journal");
    let stream = StreamId::product(P).expect("valid id");
    let mut tip = StreamTip::default();
    let mut state = ProductState::new();
    let mut append = |state: &mut ProductState, at: i64, cmd: Command| {
        let at = Timestamp::from_millis(T0 + at * 1000);
        let events = state.decide(&cmd, at).expect("accepted");
        for e in &events {
            state.apply(e);
        }
        if !events.is_empty() {
            journal
                .append(&stream, &mut tip, uuid::Uuid::new_v4(), at, &events)
                .expect("append");
        }
    };
    let settings = Settings::new(ProductKind::Jira, 100, 100);
    append(&mut state, 0, Command::Configure(settings));
    let mut users: Vec<&String> = demand.iter().map(|(_, u, _)| u).collect();
    users.sort();
    users.dedup();
    for u in users {
        append(
            &mut state,
            0,
            Command::Enrol {
                user: u.clone(),
                active: true,
            },
        );
    }
    // Each step: its instant, then a mode switch (Err) or a user's demand (Ok); within
    // an instant a mode switch comes first.
    type Step<'a> = Result<&'a (i64, String, bool), Mode>;
    let mut steps: Vec<(i64, Step)> = demand
        .iter()
        .map(|d| (d.0, Ok(d)))
        .chain(modes.iter().map(|(at, m)| (*at, Err(*m))))
        .collect();
    steps.sort_by_key(|(at, step)| (*at, step.is_ok()));
    for (at, step) in steps {
        let (at, user, asks) = match step {
            Err(mode) => {
                let settings = Settings {
                    mode,
                    ..Settings::new(ProductKind::Jira, 100, 100)
                };
                append(&mut state, at, Command::Configure(settings));
                continue;
            }
            Ok(d) => d,
        };
        let user = user.clone();
        let cmd = if *asks {
            Command::request(user)
        } else {
            Command::Release { user }
        };
        append(&mut state, *at, cmd);
    }
    journal.sync().expect("sync");
    journal.shutdown().expect("shutdown");
}

/// CSV injection (OWASP): a user named like a spreadsheet formula reaches `audit --format
/// csv` as text, its cell led by `'`, in the holders table and in the user's timeline; an
/// ordinary name is unchanged.
#[test]
fn audit_csv_cells_never_start_a_formula() {
    let tmp = temp_dir();
    let dir = tmp.path().join("data");
    let evil = "=cmd|' /C calc'!A0";
    let demand: Vec<(i64, String, bool)> = [evil, "+1+1", "-2+3", "@SUM(A1)", "plain"]
        .iter()
        .map(|u| (1, u.to_string(), true))
        .collect();
    write_journal(&dir, &demand);
    let dir = dir.to_str().expect("utf-8");
    let out = run(&[
        "audit",
        "--data-dir",
        dir,
        "--product",
        P,
        "--format",
        "csv",
    ]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let mut users: Vec<String> = csv::Reader::from_reader(out.stdout.as_bytes())
        .records()
        .map(|r| r.expect("a CSV record")[1].to_string())
        .collect();
    users.sort();
    assert_eq!(
        users,
        [
            "'+1+1",
            "'-2+3",
            "'=cmd|' /C calc'!A0",
            "'@SUM(A1)",
            "plain"
        ],
        "{}",
        out.stdout
    );
    for line in out.stdout.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell that starts a formula: {line:?}"
            );
        }
    }
    let out = run(&[
        "audit",
        "--data-dir",
        dir,
        "--product",
        P,
        "--user",
        evil,
        "--format",
        "csv",
    ]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(!out.stdout.contains(",="), "{}", out.stdout);
}

/// A reader that stops early (`slotpool audit ... | head`) ends the report quietly, as
/// Unix tools do: killed by SIGPIPE or done, never a panic on the closed pipe.
#[test]
fn a_reader_that_stops_early_ends_the_report_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let tmp = temp_dir();
    let dir = tmp.path().join("data");
    // A user a minute for 50 hours: a per-minute table far larger than a pipe's buffer.
    write_journal(&dir, &arrivals(3000, 60, 30));
    let mut child = slotpool_command()
        .args([
            "audit",
            "--data-dir",
            dir.to_str().expect("utf-8"),
            "--product",
            P,
        ])
        .args(["--peaks", "minute"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run slotpool");
    let mut stdout = child.stdout.take().expect("piped");
    let mut head = [0u8; 64];
    stdout.read_exact(&mut head).expect("the report starts");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}: {stderr}",
        out.status
    );
}

#[test]
fn simulate_replays_a_journal_against_other_pool_sizes() {
    let tmp = temp_dir();
    let dir = tmp.path().join("data");
    // Five users arrive 10 s apart and each stays 100 s.
    write_journal(&dir, &arrivals(5, 10, 100));
    let svg = tmp.path().join("curve.svg");
    let out = run_json(&[
        "simulate",
        "--data-dir",
        dir.to_str().expect("utf-8"),
        "--product",
        P,
        "--slots",
        "2,3",
        "--slots",
        "4..5:1",
        "--format",
        "json",
        "--plot",
        svg.to_str().expect("utf-8"),
    ]);
    let by_slots: BTreeMap<u64, &Value> = out["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .map(|s| (s["shared_slots"].as_u64().expect("slots"), s))
        .collect();
    // By hand. slots=2: u0 and u1 get slots at 0 and 10; u2, u3, u4 queue at 20, 30, 40.
    // u0 leaves at 100 -> u2 (waited 80 s); u1 at 110 -> u3 (80 s); u2's own logout is
    // at 120 -> u4 (80 s). 2 of 5 served at once.
    // slots=3: u3 waits 100-30 = 70 s, u4 110-40 = 70 s. slots=4: u4 waits 100-40 = 60 s.
    let expect = [(2u64, 2u64, 80.0), (3, 3, 70.0), (4, 4, 60.0), (5, 5, 0.0)];
    for (slots, at_once, wait) in expect {
        let s = by_slots[&slots];
        assert_eq!(s["requests"], 5, "{s}");
        assert_eq!(s["served_at_once"], at_once, "{s}");
        assert_eq!(s["share_served_at_once"], at_once as f64 / 5.0, "{s}");
        assert_eq!(s["served_after_wait"], 5 - at_once, "{s}");
        assert_eq!(s["never_served"], 0, "{s}");
        for p in ["wait_p50_s", "wait_p95_s", "wait_p99_s"] {
            assert_eq!(s[p], wait, "{p} {s}");
        }
    }
    let drawn = std::fs::read_to_string(&svg).expect("the plot was written");
    assert!(
        drawn.starts_with("<svg") && drawn.contains("<polyline"),
        "{drawn}"
    );

    // A bad range is a usage error.
    let bad = run(&[
        "simulate",
        "--data-dir",
        dir.to_str().expect("utf-8"),
        "--product",
        P,
        "--slots",
        "9..3",
    ]);
    assert_eq!(bad.code, Some(2), "{bad:#?}");
}

/// Issue G: `--mode recorded` replays the journal's queue_all window (requests held
/// back, its end serving the queue in order); the default replays enforced throughout,
/// even when the journal's last setting is queue_all.
#[test]
fn simulate_replays_recorded_mode_switches_or_enforces_throughout() {
    let tmp = temp_dir();
    let dir = tmp.path().join("data");
    // Three users arrive 10 s apart and stay 100 s; maintenance from 5 s to 50 s, and
    // again from 500 s (the journal's last setting).
    write_journal_with_modes(
        &dir,
        &arrivals(3, 10, 100),
        &[
            (5, Mode::QueueAll),
            (50, Mode::Enforce),
            (500, Mode::QueueAll),
        ],
    );
    let dir = dir.to_str().expect("utf-8");
    let sim = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--data-dir",
            dir,
            "--product",
            P,
            "--slots",
            "2,100",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--format", "json"]);
        let out = run_json(&args);
        let by_slots: BTreeMap<u64, Value> = out["settings"]
            .as_array()
            .expect("settings")
            .iter()
            .map(|s| (s["shared_slots"].as_u64().expect("slots"), s.clone()))
            .collect();
        (out, by_slots)
    };
    // Enforced throughout (the default): 2 slots serve u0, u1 at once and u2 after u0's
    // logout (100 - 20 = 80 s); 100 slots serve everyone at once.
    let (out, enforced) = sim(&[]);
    assert_eq!(out["mode"], "enforce");
    assert_eq!(out["mode_switches"], json!([]));
    assert_eq!(
        (
            enforced[&2]["served_at_once"].clone(),
            enforced[&2]["wait_p99_s"].clone()
        ),
        (json!(2), json!(80.0))
    );
    assert_eq!(enforced[&100]["served_at_once"], 3);
    // As recorded: u1 and u2 queue in the maintenance. With 100 slots its end at 50 s
    // serves both (40 s, 30 s); with 2, one free slot goes to u1 (40 s) and u2 waits for
    // u0's logout at 100 s (80 s).
    let (out, recorded) = sim(&["--mode", "recorded"]);
    assert_eq!(out["mode"], "recorded");
    let modes: Vec<&str> = out["mode_switches"]
        .as_array()
        .expect("switches")
        .iter()
        .map(|m| m["mode"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(modes, ["queue_all", "enforce", "queue_all"]);
    let r = &recorded[&100];
    assert_eq!(
        (r["served_at_once"].clone(), r["served_after_wait"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(
        (r["wait_p50_s"].clone(), r["wait_p99_s"].clone()),
        (json!(30.0), json!(40.0))
    );
    let r = &recorded[&2];
    assert_eq!(
        (r["served_at_once"].clone(), r["served_after_wait"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(
        (r["wait_p50_s"].clone(), r["wait_p99_s"].clone()),
        (json!(40.0), json!(80.0))
    );
    // Recorded modes need a journal; an unknown mode is a usage error.
    let log = tmp.path().join("access.log");
    std::fs::write(&log, "").expect("write log");
    let out = run(&[
        "simulate",
        "--log",
        log.to_str().expect("utf-8"),
        "--mode",
        "recorded",
    ]);
    assert_ne!(out.code, Some(0), "{out:#?}");
    assert!(out.stderr.contains("--mode recorded"), "{out:#?}");
    let out = run(&[
        "simulate",
        "--data-dir",
        dir,
        "--product",
        P,
        "--mode",
        "queue_all",
    ]);
    assert_eq!(out.code, Some(2), "{out:#?}");
}

// ---------------------------------------------------------------------------------------
// analyze

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn clf_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("valid")
        .format("%d/%b/%Y:%H:%M:%S +0000")
        .to_string()
}

#[test]
fn analyze_finds_the_peak_heavy_users_and_pool_size_of_a_generated_log() {
    let inactivity = 1800i64;
    let day = T0 / 1000;
    let mut rng = Lcg(7);
    // 20 users; hits at distinct seconds of one day (no two users share a second).
    let mut taken = std::collections::HashSet::new();
    let mut hits: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for u in 0..20 {
        let user = format!("user{u:02}");
        let bursts = 1 + rng.next(4);
        for _ in 0..bursts {
            let mut t = day + rng.next(80_000) as i64;
            for _ in 0..(1 + rng.next(u as u64 * 3 + 5)) {
                if taken.insert(t) {
                    hits.entry(user.clone()).or_default().push(t);
                }
                t += 60 + rng.next(1500) as i64;
            }
        }
    }
    for ts in hits.values_mut() {
        ts.sort_unstable();
    }
    let last = hits.values().flatten().max().copied().expect("some hits");
    let mut lines = Vec::new();
    for (user, ts) in &hits {
        for (i, t) in ts.iter().enumerate() {
            lines.push(if i % 2 == 0 {
                format!(
                    r#"10.0.0.{} - {user} [{}] "GET /browse/X-{i} HTTP/1.1" 200 512 "-" "Mozilla/5.0""#,
                    i % 250,
                    clf_time(*t)
                )
            } else {
                format!(
                    r#"10.0.0.{} {}x{i}x3 {user} [{}] "GET /rest/api/2/issue HTTP/1.1" 200 47 91 "" "Mozilla/5.0 (X11)" "2c0qst""#,
                    i % 250,
                    t % 1440,
                    clf_time(*t)
                )
            });
        }
    }
    lines.push(format!(
        r#"10.0.0.9 - - [{}] "GET /login HTTP/1.1" 200 1 "-" "curl""#,
        clf_time(day)
    ));
    lines.push("this is not an access log line".into());
    lines.push(r#"10.0.0.9 - eve [not a time] "GET / HTTP/1.1" 200 1 "-" "x""#.into());
    lines.push(r#"10.0.0.9 - eve [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1 200 1"#.into());
    // Unsorted, as several files of several nodes would be.
    lines.reverse();
    let tmp = temp_dir();
    let log = tmp.path().join("access.log");
    std::fs::write(&log, lines.join("\n") + "\n").expect("write the log");

    // The expected answer, second by second: a user is active at s when they have a hit
    // in (s - inactivity, s]. A login is a hit with no earlier hit of theirs within the
    // inactivity time.
    let active = |ts: &Vec<i64>, s: i64| ts.iter().any(|h| *h <= s && s < h + inactivity);
    let (mut peak, mut busy) = (0usize, 0i64);
    let mut active_s: BTreeMap<&str, i64> = BTreeMap::new();
    for s in day..=last + inactivity {
        let now: Vec<&str> = hits
            .iter()
            .filter(|(_, ts)| active(ts, s))
            .map(|(u, _)| u.as_str())
            .collect();
        peak = peak.max(now.len());
        busy += i64::from(!now.is_empty());
        for u in now {
            *active_s.entry(u).or_default() += 1;
        }
    }
    let mut others_at_login = Vec::new();
    for (user, ts) in &hits {
        for (i, t) in ts.iter().enumerate() {
            if i == 0 || ts[i - 1] + inactivity <= *t {
                let others = hits
                    .iter()
                    .filter(|(u, o)| *u != user && active(o, *t))
                    .count();
                others_at_login.push(others);
            }
        }
    }
    let target = 0.9;
    let recommended = (0..=peak)
        .find(|s| {
            let served = others_at_login.iter().filter(|o| **o < *s).count();
            served as f64 / others_at_login.len() as f64 >= target
        })
        .expect("peak slots serve everyone");
    let mut heavy: Vec<(&str, i64)> = active_s.into_iter().collect();
    heavy.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));

    let out = run_json(&[
        "analyze",
        "--log",
        log.to_str().expect("utf-8"),
        "--inactivity",
        "30m",
        "--target",
        "0.9",
        "--top",
        "3",
        "--output",
        "json",
    ]);
    assert_eq!(out["malformed"], 3, "{out}");
    assert_eq!(out["anonymous"], 1, "{out}");
    assert_eq!(out["users"], hits.len(), "{out}");
    assert_eq!(out["sessions"], others_at_login.len(), "{out}");
    assert_eq!(out["peak_concurrent_users"], peak, "{out}");
    assert_eq!(out["busy_s"], busy, "{out}");
    assert_eq!(out["recommended_shared_slots"], recommended, "{out}");
    let got: Vec<(&str, i64)> = out["heavy_users"]
        .as_array()
        .expect("heavy users")
        .iter()
        .map(|h| {
            (
                h["user"].as_str().expect("user"),
                h["active_s"].as_i64().expect("s"),
            )
        })
        .collect();
    assert_eq!(got, heavy[..3].to_vec(), "{out}");
    let share = out["heavy_users"][0]["share_of_busy_time"]
        .as_f64()
        .expect("share");
    assert!(
        (share - heavy[0].1 as f64 / busy as f64).abs() < 1e-9,
        "{out}"
    );
    assert!(
        peak >= 3,
        "the generated log should overlap users: peak {peak}"
    );

    // Malformed lines are reported on stderr, never fatal; the table says the same.
    let table = run(&["analyze", "--log", log.to_str().expect("utf-8")]);
    assert_eq!(table.code, Some(0), "{table:#?}");
    assert!(table.stderr.contains("3 of"), "{table:#?}");
    assert!(
        table
            .stdout
            .contains(&format!("peak concurrent users: {peak}")),
        "{}",
        table.stdout
    );
    let missing = run(&["analyze", "--log", "/nonexistent/access.log"]);
    assert_eq!(missing.code, Some(2), "{missing:#?}");
}
