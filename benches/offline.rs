//! The offline commands at scale, run as the real release binary (what an operator runs).
//!
//! - `audit_10m`: `slotpool audit --peaks day --format json` over a product stream of
//!   10 000 000 events (every record decoded and checked against its hash and the chain,
//!   every event folded by `ProductState::apply`). Target: < 10 s.
//!   `SLOTPOOL_AUDIT_BENCH_EVENTS=1000000` runs a smaller journal for a quick look.
//! - `simulate_year`: `slotpool simulate` of a year of access-log demand (150 users on
//!   weekdays, 1-2 sessions a day, a request every few minutes: ~1.4 M requests) at ten
//!   pool sizes. Target: < 60 s.
//!
//! The journal is a realistic history: 10 000 members on 5 000 shared slots, a random
//! member at a time requesting, releasing, using the product or leaving the queue, a
//! sweep every 5 minutes of simulated time, decided by `ProductState::decide` and folded
//! by `apply` (10 ms between commands), appended in batches of 1 000 events stamped with
//! the batch's last instant (larger batches make sled 0.34 hold gigabytes). Journal and log are built once under
//! `target/bench-data/` (or `$SLOTPOOL_BENCH_DATA`) and reused; building the 10M journal
//! takes a few minutes.
//!
//! Run with `cargo bench -p slotpool --bench offline`.
//!
//! Measured 2026-11-23 on the 2-core development machine while four other builds ran
//! (load average ~15): `SLOTPOOL_AUDIT_BENCH_EVENTS=1000000`: audit of 1M events 4.16 s
//! median (3.64-4.63 s; the journal: 374 MB, built in 35 s); simulate of a year (2.03 M
//! log lines, 150 users) at 10 pool sizes 11.95 s median. The 10M audit was not run there:
//! its journal (~3.7 GB) did not fit the disk left. `slotpool verify` of the same 1M
//! journal took longer than the audit (11.3 s vs 8.4 s in one loaded run), so reading and
//! checking the records, not the fold, is what the audit's time is made of.
//!
//! Measured 2026-11-23 ~19:00 UTC on the 10M journal (2.6 GB `db` + 5.1 GB sled blobs,
//! 9,766 chunks), same machine, others building and load-testing beside it:
//! `slotpool audit --data-dir target/bench-data/audit-10000000 --product bench --peaks day
//! --format json`: at load ~2.5, 8.8 / 8.9 / 12.4 s (the binary before this work: 11.5 s
//! in between, 15.4-16.5 s at load ~3); this bench at load ~3.8: 14.7 s median
//! (13.6-15.7 s); ~19:15, with another job's I/O beside it, new and old interleaved:
//! 12.1, 13.8, 19.1, 18.6, 21.9 s against 22.3, 21.6 s (the same work then cost 17-20 s
//! of CPU where it had cost 10-13 s at 19:00: a shared machine). Where the CPU goes
//! (perf, per thread, 10M): opening sled ~1.3 s
//! (snapshot load, segment scan; before anything is read); the reader ~3.7 s, nearly all
//! sled pulling the nodes that hold the chunks (read the blob, crc32, copy each value into
//! fresh memory: RSS grows to 1.9 GB whatever `cache_bytes` says, so the kernel zeroes
//! ~2 GB of pages); the checkers ~2.5 s each (SHA-256 about a third, bincode decode and
//! the event's `String` the rest); the fold on the main thread ~5-7 s (`ProductState::apply`:
//! user lookups, and the pool's B-tree `touch` at ~1,200 instructions per activity; callgrind:
//! `History::push_event` 1,200 instructions per event after the switch to foldhash,
//! 1,650 before). Reading, checking and folding now overlap on every core, so the wall
//! time is about the fold plus opening when a core is free for the checkers, and the
//! CPU total (~13 s user+sys) divided among whatever cores the machine leaves.
//!
//! Measured 2026-11-23 ~22:00-22:30 UTC (branch audit2), same machine, a load test
//! beside it (load 1.3-3, so wall times are only indicative): the CPU of the 10M audit
//! (perf, sampling) 16.3 s -> ~9.5 s. Three changes: the report keeps freed memory for
//! reuse (mimalloc `purge_delay = -1`: page faults 6,000-8,300 -> 1,840; what faults
//! remain is RSS growing to 1.9 GB while sled keeps what it read, ~1.9 s of the kernel
//! zeroing pages in the reader); the envelope's fixed fields decoded by bincode itself
//! (callgrind, 1M: checking 1,700 -> 1,350 instructions per record besides SHA-256);
//! `apply` finding a user once per event (callgrind, 1M: 1,124 -> 604 instructions per
//! event). Interleaved old/new at load ~2.5: 17.1 / 7.7 s (old) against 9.6 / 6.5 s (new).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use slotpool_events::{ProductEvent, StreamId, Timestamp};
use slotpool_journal::{Durability, Journal, JournalConfig, StreamTip};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

#[path = "common/history.rs"]
mod history;

use history::{History, EPOCH_MS};

const MEMBERS: usize = 10_000;
const SHARED_SLOTS: u32 = 5_000;
const STEP_MS: i64 = 10;
const SWEEP_MS: i64 = 300_000;
const BATCH: usize = 1_000;
const GENERATOR: &str = "v1";
const PRODUCT: &str = "bench";

fn data_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLOTPOOL_BENCH_DATA") {
        return PathBuf::from(dir);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| workspace.join("target"), |t| workspace.join(t));
    target.join("bench-data")
}

/// The journal of `events` events, built once.
fn journal_of(events: u64) -> PathBuf {
    let root = data_root();
    let name = format!("audit-{events}");
    let dir = root.join(&name);
    let marker = dir.join("bench-complete");
    let expected = format!("generator={GENERATOR} events={events} batch={BATCH}\n");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == expected) {
        return dir;
    }
    let partial = root.join(format!("{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).expect("the bench data directory can be created");
    eprintln!("{name}: building a journal of {events} events (once; reused later)");
    let started = Instant::now();
    {
        let journal = Journal::open(
            &partial,
            JournalConfig {
                durability: Durability::Process,
                ..JournalConfig::default()
            },
        )
        .expect("open the bench journal");
        let stream = StreamId::product(PRODUCT).expect("a valid product id");
        let cause = uuid::Uuid::new_v4();
        let mut g = History::new(MEMBERS, SHARED_SLOTS, STEP_MS, Some(SWEEP_MS));
        let mut tip = StreamTip::default();
        let mut pending: Vec<ProductEvent> = Vec::new();
        let mut written = 0u64;
        let mut last = Timestamp::from_millis(EPOCH_MS);
        while written < events {
            let (at, decided) = g.next();
            last = at;
            for e in decided {
                if written == events {
                    break;
                }
                g.state.apply(&e);
                pending.push(e);
                written += 1;
            }
            // One sled batch per ~1 000 events, stamped with its last command's instant
            // (at most 10 s later than its first): the record count and the work of
            // reading them are what the bench is about.
            if pending.len() >= BATCH {
                journal
                    .append(&stream, &mut tip, cause, at, &pending)
                    .expect("append");
                pending.clear();
            }
            if written % 1_000_000 == 0 {
                eprintln!(
                    "{name}: {written} events after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        if !pending.is_empty() {
            journal
                .append(&stream, &mut tip, cause, last, &pending)
                .expect("append");
        }
        // Packed into chunks, as the nightly job would have done by the time of an audit.
        journal.compact(&stream).expect("compact");
        journal.sync().expect("sync");
        eprintln!(
            "{name}: written in {:.0} s, {:.1} h of simulated time",
            started.elapsed().as_secs_f64(),
            (last.as_millis() - EPOCH_MS) as f64 / 3_600_000.0
        );
        journal.shutdown().expect("shutdown");
    }
    std::fs::write(partial.join("bench-complete"), expected).expect("the marker is written");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&partial, &dir).expect("the journal is moved in place");
    dir
}

/// A year of access log: 150 users, weekdays, 1-2 sessions a day, a request every 1-6
/// minutes for 10-60 requests; half the users in Atlassian's format, half in combined.
fn year_log() -> PathBuf {
    let path = data_root().join("simulate-year-v1.log");
    if path.is_file() {
        return path;
    }
    std::fs::create_dir_all(data_root()).expect("the bench data directory can be created");
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&partial).expect("create"));
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |n: u64| {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) % n
    };
    let start = EPOCH_MS / 1000;
    let mut lines = 0u64;
    for day in 0..365i64 {
        // 2025-01-01 was a Wednesday.
        if matches!((day + 2) % 7, 5 | 6) {
            continue;
        }
        for u in 0..150u64 {
            for _ in 0..1 + next(2) {
                let mut t = start + day * 86_400 + 7 * 3600 + next(11 * 3600) as i64;
                for i in 0..10 + next(50) {
                    let time = chrono::DateTime::from_timestamp(t, 0)
                        .expect("valid")
                        .format("%d/%b/%Y:%H:%M:%S +0000");
                    if u % 2 == 0 {
                        writeln!(
                            out,
                            "10.1.{}.{} {}x{i}x7 user{u:03} [{time}] \"GET /browse/P-{i} HTTP/1.1\" 200 5120 42 \"-\" \"Mozilla/5.0\" \"s{u}\"",
                            u / 250,
                            u % 250,
                            t % 86_400 / 60
                        )
                    } else {
                        writeln!(
                            out,
                            "10.1.{}.{} - user{u:03} [{time}] \"GET /wiki/P-{i} HTTP/1.1\" 200 5120 \"-\" \"Mozilla/5.0\"",
                            u / 250,
                            u % 250
                        )
                    }
                    .expect("write");
                    lines += 1;
                    t += 60 + next(300) as i64;
                }
            }
        }
    }
    out.flush().expect("flush");
    drop(out);
    std::fs::rename(&partial, &path).expect("the log is moved in place");
    eprintln!("simulate_year: wrote {lines} lines to {}", path.display());
    path
}

fn run(args: &[&str]) {
    let status = Process::new(env!("CARGO_BIN_EXE_slotpool"))
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run slotpool");
    assert!(status.success(), "slotpool {args:?}: {status}");
}

fn timed(args: &[&str]) -> Duration {
    let started = Instant::now();
    run(args);
    started.elapsed()
}

fn offline(c: &mut Criterion) {
    let events: u64 = std::env::var("SLOTPOOL_AUDIT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = journal_of(events);
    let dir = dir.to_str().expect("a UTF-8 path").to_string();
    let audit = [
        "audit",
        "--data-dir",
        &dir,
        "--product",
        PRODUCT,
        "--peaks",
        "day",
        "--format",
        "json",
    ];
    eprintln!("audit over {events} events: first run {:?}", timed(&audit));
    let mut group = c.benchmark_group("offline");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    group.bench_function(format!("audit_{events}_events"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| timed(&audit)).sum())
    });

    let log = year_log();
    let log = log.to_str().expect("a UTF-8 path").to_string();
    let simulate = [
        "simulate",
        "--log",
        &log,
        "--slots",
        "10..100:10",
        "--inactivity",
        "30m",
    ];
    eprintln!(
        "simulate a year at 10 settings: first run {:?}",
        timed(&simulate)
    );
    group.bench_function("simulate_year_10_settings", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| timed(&simulate)).sum())
    });
    group.finish();
}

criterion_group!(benches, offline);
criterion_main!(benches);
