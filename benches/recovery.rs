//! Replay and recovery at scale, from sled.
//!
//! - `replay_1m`: `Journal::replay` of one product stream of 1 000 000 events, checking
//!   every record's hash and the chain, with and without folding each event into a
//!   `ProductState` (what recovery without a snapshot does). Target: ≥ 1 M events/s.
//! - `recovery_10m`: what recovery does for a product stream of 10 000 000 events with a
//!   snapshot at 9 990 000: `SnapshotStore::latest_valid` (decode, hash, check against
//!   the journal), `ProductState::from_image`, then `Journal::replay_from` of the
//!   10 000 events after it, applying each (as `slotpool_actors::recovery::recover` does
//!   per product). Target: < 1 s.
//!
//! The histories are real: 10 000 members on 5 000 shared slots, a random member at a
//! time requesting, releasing, using the product or leaving the queue, decided by
//! `ProductState::decide` and folded by `apply` (10 ms between commands, so most activity
//! is past the coalescing window and recorded), appended with `Durability::Process`. The
//! 1M journal is written as the product actor writes, one append per command; the 10M one
//! in appends of 1 000 events (one sled batch each), which changes neither the records nor
//! the keys, only how fast the journal is written (sled's on-disk layout differs a little:
//! a cold replay of a journal written one command at a time was measured ~10 % slower).
//!
//! Both journals are built once and kept under `target/bench-data/` (or
//! `$SLOTPOOL_BENCH_DATA`), marked complete only after a full build and sync; a later run
//! reuses them. Building the 10M journal takes minutes; delete the directory to rebuild.
//!
//! Run with `cargo bench -p slotpool-snapshots --bench recovery`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use slotpool_events::{ProductEvent, ProductState, StreamId, Timestamp};
use slotpool_journal::{Durability, Journal, JournalConfig, StreamTip};
use slotpool_snapshots::SnapshotStore;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[path = "common/history.rs"]
mod history;

use history::{History, EPOCH_MS};

const MEMBERS: usize = 10_000;
const SHARED_SLOTS: u32 = 5_000;
/// Simulated time between commands.
const STEP_MS: i64 = 10;
/// Events per append (one sled batch) while building the 10M journal. Much larger batches
/// make sled 0.34 hold gigabytes (10 000: 2.8 GB after 1M events, killed by the OOM
/// killer before 10M); 1 000 keeps it near 150 MB and writes 1M events in about 10 s.
const BATCH: usize = 1_000;
const REPLAY_EVENTS: u64 = 1_000_000;
const RECOVERY_EVENTS: u64 = 10_000_000;
const SNAPSHOT_AT: u64 = 9_990_000;
/// Bumped whenever the history generator changes, so stale journals are rebuilt.
const GENERATOR: &str = "v2";

fn product() -> StreamId {
    StreamId::product("bench").expect("a valid product id")
}

/// Where the bench journals are kept.
fn data_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLOTPOOL_BENCH_DATA") {
        return PathBuf::from(dir);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| workspace.join("target"), |t| workspace.join(t));
    target.join("bench-data")
}

fn open(dir: &Path, durability: Durability) -> Journal {
    let config = JournalConfig {
        durability,
        ..JournalConfig::default()
    };
    Journal::open(dir, config).unwrap_or_else(|e| {
        panic!(
            "{e} (another bench run may have it open; delete {} to rebuild)",
            dir.display()
        )
    })
}

/// A journal of `events` events of the history, with a snapshot after `snapshot_at`
/// events if given, appended `batch` events at a time (or one append per command, as the
/// product actor does, for `None`); built once, then reused. Returns its directory.
fn journal_of(name: &str, events: u64, snapshot_at: Option<u64>, batch: Option<usize>) -> PathBuf {
    let root = data_root();
    let dir = root.join(name);
    let marker = dir.join("bench-complete");
    // A new snapshot format makes a cached journal's snapshot unreadable: rebuild then.
    let snapshot_format = slotpool_snapshots::FORMAT_VERSION;
    let expected = format!(
        "generator={GENERATOR} events={events} snapshot_at={snapshot_at:?} batch={batch:?} \
         members={MEMBERS} snapshot_format={snapshot_format}\n"
    );
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == expected) {
        return dir;
    }
    remove_abandoned_builds(&root, name);
    let partial = root.join(format!("{name}.partial-{}", std::process::id()));
    std::fs::create_dir_all(&partial).expect("the bench data directory can be created");
    eprintln!(
        "{name}: building a journal of {events} events in {} (once; reused later)",
        dir.display()
    );
    let started = Instant::now();
    {
        let journal = open(&partial, Durability::Process);
        let store = SnapshotStore::open(&journal).expect("the snapshot store opens");
        let stream = product();
        let cause = Uuid::new_v4();
        let mut history = History::new(MEMBERS, SHARED_SLOTS, STEP_MS, None);
        let mut tip = StreamTip::default();
        let mut pending: Vec<ProductEvent> = Vec::new();
        let mut written = 0u64;
        let mut progress_at = 1_000_000;
        let mut last_at = Timestamp::from_millis(EPOCH_MS);
        while written < events {
            let (at, decided) = history.next();
            last_at = at;
            for e in decided {
                if written == events {
                    break;
                }
                history.state.apply(&e);
                pending.push(e);
                written += 1;
                let snapshot_now = snapshot_at == Some(written);
                if snapshot_now || written == events || batch.is_some_and(|b| pending.len() >= b) {
                    journal
                        .append(&stream, &mut tip, cause, at, &pending)
                        .expect("append");
                    pending.clear();
                }
                if snapshot_now {
                    store
                        .save(&stream, tip, at, history.state.image())
                        .expect("the snapshot is saved");
                }
                if written == progress_at {
                    progress_at += 1_000_000;
                    journal.sync().expect("sync");
                    eprintln!(
                        "{name}: {written} events after {:.0} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            if batch.is_none() && !pending.is_empty() {
                journal
                    .append(&stream, &mut tip, cause, at, &pending)
                    .expect("append");
                pending.clear();
            }
        }
        assert!(pending.is_empty());
        assert_eq!(tip.next_sequence, events + 1);
        journal.sync().expect("sync");
        let c = history.state.counts();
        eprintln!(
            "{name}: {events} events written in {:.0} s; final state {} holders, {} queued, \
             {} members; simulated time {:.1} h",
            started.elapsed().as_secs_f64(),
            c.holders,
            c.queued,
            c.members,
            (last_at.as_millis() - EPOCH_MS) as f64 / 3_600_000.0
        );
        journal.shutdown().expect("shutdown");
    }
    std::fs::write(partial.join("bench-complete"), expected).expect("the marker is written");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&partial, &dir).expect("the journal is moved in place");
    dir
}

/// Packs whatever the background compactor has not packed yet (a journal cached by an
/// older bench, or the tail it leaves for the next appends), as a long-running service
/// would have by the time it restarts.
fn compacted(journal: &Journal, stream: &StreamId, name: &str) {
    let started = Instant::now();
    let moved = journal.compact(stream).expect("the journal compacts");
    journal.sync().expect("sync");
    if moved > 0 {
        eprintln!(
            "{name}: compacted {moved} loose records into chunks in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// Removes what builds of `name` left behind when their process died (killed mid-build).
fn remove_abandoned_builds(root: &Path, name: &str) {
    let prefix = format!("{name}.partial-");
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let alive = pid != std::process::id().to_string() && Path::new("/proc").join(pid).exists();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn du(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => du(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn slow_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group
}

fn bench_replay(c: &mut Criterion) {
    let dir = journal_of("replay-1m", REPLAY_EVENTS, None, None);
    let journal = open(&dir, Durability::Process);
    let stream = product();
    compacted(&journal, &stream, "replay_1m");
    eprintln!(
        "replay_1m: journal of {REPLAY_EVENTS} events, {:.0} MB on disk",
        du(&dir) as f64 / 1e6
    );

    let mut group = slow_group(c, "replay_1m");
    group.throughput(Throughput::Elements(REPLAY_EVENTS));
    group.bench_function("decode_and_verify", |b| {
        b.iter(|| {
            let mut count = 0u64;
            let tip = journal
                .replay::<ProductEvent>(&stream, |env| {
                    count += 1;
                    black_box(env);
                })
                .expect("replay");
            assert_eq!(count, REPLAY_EVENTS);
            tip
        })
    });
    group.bench_function("replay_and_apply", |b| {
        b.iter_with_large_drop(|| {
            let mut state = ProductState::new();
            let tip = journal
                .replay::<ProductEvent>(&stream, |env| state.apply(&env.event))
                .expect("replay");
            assert_eq!(tip.next_sequence, REPLAY_EVENTS + 1);
            state
        })
    });
    group.finish();
}

/// What recovery does for one product stream (see `slotpool_actors::recovery::recover`),
/// with the time of each step: finding the snapshot, rebuilding the state, the tail.
struct Recovered {
    state: ProductState,
    tip: StreamTip,
    replayed: u64,
    steps: [Duration; 3],
}

fn recover(journal: &Journal, stream: &StreamId) -> Recovered {
    let started = Instant::now();
    let store = SnapshotStore::open(journal).expect("the snapshot store opens");
    assert!(journal.streams().expect("streams").contains(stream));
    let (latest, skipped) = store.latest_valid(stream, journal);
    assert!(skipped.is_empty(), "no snapshot is skipped: {skipped:?}");
    let snapshot = latest.expect("a valid snapshot");
    let found = started.elapsed();
    let mut state = ProductState::from_image(&snapshot.image);
    let rebuilt = started.elapsed();
    let from = snapshot.tip();
    let tip = journal
        .replay_from::<ProductEvent>(stream, from, |env| {
            state.apply(&env.event);
            true
        })
        .expect("replay");
    let done = started.elapsed();
    Recovered {
        state,
        tip,
        replayed: tip.next_sequence - from.next_sequence,
        steps: [found, rebuilt - found, done - rebuilt],
    }
}

fn steps(r: &Recovered) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "latest_valid {:.1} ms, from_image {:.1} ms, replay_from of {} events {:.1} ms",
        ms(r.steps[0]),
        ms(r.steps[1]),
        r.replayed,
        ms(r.steps[2])
    )
}

fn bench_recovery(c: &mut Criterion) {
    let dir = journal_of(
        "recovery-10m",
        RECOVERY_EVENTS,
        Some(SNAPSHOT_AT),
        Some(BATCH),
    );
    let stream = product();
    let started = Instant::now();
    let journal = open(&dir, Durability::Fsync);
    let opened = started.elapsed();
    compacted(&journal, &stream, "recovery_10m");
    let first = recover(&journal, &stream);
    assert_eq!(first.tip.next_sequence, RECOVERY_EVENTS + 1);
    assert_eq!(first.replayed, RECOVERY_EVENTS - SNAPSHOT_AT);
    let counts = first.state.counts();
    eprintln!(
        "recovery_10m: journal of {RECOVERY_EVENTS} events, {:.0} MB on disk; Journal::open \
         {:.3} s; first recovery: {} ({} members, {} holders, {} queued)",
        du(&dir) as f64 / 1e6,
        opened.as_secs_f64(),
        steps(&first),
        counts.members,
        counts.holders,
        counts.queued,
    );
    drop(first);

    let mut group = slow_group(c, "recovery_10m");
    group.bench_function("snapshot_at_9_990_000_then_tail", |b| {
        b.iter_with_large_drop(|| recover(&journal, &stream))
    });
    group.finish();
    eprintln!(
        "recovery_10m: once more: {}",
        steps(&recover(&journal, &stream))
    );
}

criterion_group!(benches, bench_replay, bench_recovery);
criterion_main!(benches);
