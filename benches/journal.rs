//! Journal throughput: what durability costs per event, and how group commit pays for it.
//!
//! Each durability mode (`Durability::Fsync`, the default: sled flush + `fdatasync`;
//! `Durability::Process`: sled flush only) is measured three ways:
//!
//! - `per_event`: append one event, then `sync()` (one flush per event);
//! - `group_64`: 64 appends to 64 streams, then one `sync()` (one flush for all 64);
//! - `concurrent_<n>_threads`: n threads, each the single writer of its own stream (like
//!   one product actor each), append one event and wait for their own ticket through
//!   `when_durable`, as the server does before answering. The committer batches whatever
//!   is waiting; the mean number of appends per flush is printed after each run.
//!
//! `journal_append_only` is the cost of one append with no wait; `sled_baseline_64_then_flush`
//! compares sled's plain `insert` with one-record `apply_batch` calls under one flush.
//!
//! `purge` is `Journal::purge_upto` of the first 18,000 of 20,000 records of 1 KB in a
//! Raft log's layout (`JournalConfig::purged_log`): what a cluster member removes after
//! each snapshot with the default 20,000 entries per snapshot (the Raft log does it in the
//! background, since openraft's core would wait for it).
//!
//! `replay` builds one product stream of 100 000 events once (a real history produced by
//! `ProductState::decide`) and measures `Journal::replay` over it, with and without
//! folding every event into a `ProductState` (what recovery does).
//!
//! Journals live in temporary directories under `$TMPDIR` (default `/tmp`); point
//! `TMPDIR` at the disk you want to measure. Run with
//! `cargo bench -p slotpool-events --bench journal`.

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode,
    Throughput,
};
use slotpool_events::{
    Command, ProductEvent, ProductKind, ProductState, ReplicationRecord, Settings, Standing,
    StreamId, Timestamp,
};
use slotpool_journal::{Durability, Journal, JournalConfig, StreamTip};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use uuid::Uuid;

/// Start of the simulated clock (2025-01-01T00:00:00Z), in ms.
const EPOCH_MS: i64 = 1_735_689_600_000;
const GROUP: usize = 64;
const REPLAY_EVENTS: usize = 100_000;

/// Counts group flushes and the appends they covered, through the journal's observer.
#[derive(Default)]
struct FlushStats {
    flushes: AtomicU64,
    waiters: AtomicU64,
}

impl FlushStats {
    fn reset(&self) {
        self.flushes.store(0, Ordering::SeqCst);
        self.waiters.store(0, Ordering::SeqCst);
    }

    fn report(&self, name: &str) {
        let flushes = self.flushes.load(Ordering::SeqCst);
        let waiters = self.waiters.load(Ordering::SeqCst);
        if flushes > 0 {
            eprintln!(
                "{name}: {flushes} flushes served {waiters} waiters ({:.2} per flush)",
                waiters as f64 / flushes as f64
            );
        }
    }
}

struct Bench {
    _dir: TempDir,
    journal: Journal,
    stats: Arc<FlushStats>,
}

fn open(durability: Durability) -> Bench {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let stats = Arc::new(FlushStats::default());
    let observed = Arc::clone(&stats);
    let config = JournalConfig {
        durability,
        on_flush: Some(Arc::new(move |_took: Duration, waiters: usize| {
            observed.flushes.fetch_add(1, Ordering::Relaxed);
            observed
                .waiters
                .fetch_add(waiters as u64, Ordering::Relaxed);
        })),
        ..JournalConfig::default()
    };
    let journal = Journal::open(dir.path(), config).expect("the journal opens");
    Bench {
        _dir: dir,
        journal,
        stats,
    }
}

fn mode(durability: Durability) -> &'static str {
    match durability {
        Durability::Fsync => "fsync",
        Durability::Process => "process",
    }
}

/// A typical small event (about 130 bytes as a record).
fn event(user: usize, at: i64) -> ProductEvent {
    ProductEvent::ActivityRecorded {
        user: format!("user-{user:05}@example.com"),
        at: Timestamp::from_millis(at),
    }
}

fn stream(i: usize) -> StreamId {
    StreamId::product(&format!("bench-{i}")).expect("a valid product id")
}

fn slow_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

fn bench_per_event(c: &mut Criterion) {
    let mut group = slow_group(c, "journal_per_event");
    group.throughput(Throughput::Elements(1));
    for durability in [Durability::Fsync, Durability::Process] {
        let bench = open(durability);
        let id = stream(0);
        let mut tip = StreamTip::default();
        let cause = Uuid::new_v4();
        let mut now = EPOCH_MS;
        bench.stats.reset();
        group.bench_function(mode(durability), |b| {
            b.iter(|| {
                now += 1;
                let events = [event(now as usize % 10_000, now)];
                bench
                    .journal
                    .append(&id, &mut tip, cause, Timestamp::from_millis(now), &events)
                    .expect("append");
                bench.journal.sync().expect("sync");
            })
        });
        bench
            .stats
            .report(&format!("journal_per_event/{}", mode(durability)));
    }
    group.finish();
}

fn bench_group_commit(c: &mut Criterion) {
    let mut group = slow_group(c, "journal_group_64");
    group.throughput(Throughput::Elements(GROUP as u64));
    for durability in [Durability::Fsync, Durability::Process] {
        let bench = open(durability);
        let ids: Vec<StreamId> = (0..GROUP).map(stream).collect();
        let mut tips = vec![StreamTip::default(); GROUP];
        let cause = Uuid::new_v4();
        let mut now = EPOCH_MS;
        bench.stats.reset();
        group.bench_function(mode(durability), |b| {
            b.iter(|| {
                now += 1;
                let at = Timestamp::from_millis(now);
                for (i, (id, tip)) in ids.iter().zip(tips.iter_mut()).enumerate() {
                    let events = [event(i, now)];
                    bench
                        .journal
                        .append(id, tip, cause, at, &events)
                        .expect("append");
                }
                bench.journal.sync().expect("sync");
            })
        });
        bench
            .stats
            .report(&format!("journal_group_64/{}", mode(durability)));
    }
    group.finish();
}

/// What one append costs before anyone waits for durability: the part group commit
/// cannot share.
fn bench_append_only(c: &mut Criterion) {
    let mut group = slow_group(c, "journal_append_only");
    group.throughput(Throughput::Elements(1));
    let bench = open(Durability::Process);
    let id = stream(0);
    let mut tip = StreamTip::default();
    let cause = Uuid::new_v4();
    let mut now = EPOCH_MS;
    group.bench_function("one_event", |b| {
        b.iter(|| {
            now += 1;
            let events = [event(now as usize % 10_000, now)];
            bench
                .journal
                .append(&id, &mut tip, cause, Timestamp::from_millis(now), &events)
                .expect("append")
        })
    });
    group.finish();
    bench.journal.sync().expect("sync");
}

/// sled alone, for reference: 64 records of journal size written by plain `insert`
/// or by 64 one-record `apply_batch` calls (what `Journal::append` does), then one
/// `flush` (no fdatasync). sled's `apply_batch` rolls its IO buffer, so each batch
/// costs a buffer write of its own.
fn bench_sled_baseline(c: &mut Criterion) {
    let mut group = slow_group(c, "sled_baseline_64_then_flush");
    group.throughput(Throughput::Elements(GROUP as u64));
    let record = vec![0xA5u8; 130];
    for batched in [false, true] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(64 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .expect("sled opens");
        let tree = db.open_tree("journal").expect("a tree");
        let mut seq = 0u64;
        let name = if batched {
            "apply_batch_each"
        } else {
            "insert_each"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                for i in 0..GROUP {
                    seq += 1;
                    let mut key = format!("product/bench-{i}").into_bytes();
                    key.push(0);
                    key.extend_from_slice(&seq.to_be_bytes());
                    if batched {
                        let mut batch = sled::Batch::default();
                        batch.insert(key, record.clone());
                        tree.apply_batch(batch).expect("apply_batch");
                    } else {
                        tree.insert(key, record.clone()).expect("insert");
                    }
                }
                db.flush().expect("flush")
            })
        });
    }
    group.finish();
}

/// `threads` writers, each appending one event at a time to its own stream and waiting
/// for that append's ticket before the next, until `total` events are durable.
fn run_concurrent(
    journal: &Journal,
    ids: &[StreamId],
    tips: &mut [StreamTip],
    total: u64,
    clock: &AtomicU64,
) -> Duration {
    let threads = ids.len() as u64;
    let started = Instant::now();
    std::thread::scope(|s| {
        for (k, (id, tip)) in ids.iter().zip(tips.iter_mut()).enumerate() {
            let share = total / threads + u64::from((k as u64) < total % threads);
            s.spawn(move || {
                let (tx, rx) = mpsc::channel();
                let cause = Uuid::new_v4();
                for _ in 0..share {
                    let now = EPOCH_MS + clock.fetch_add(1, Ordering::Relaxed) as i64;
                    let events = [event(k, now)];
                    let ticket = journal
                        .append(id, tip, cause, Timestamp::from_millis(now), &events)
                        .expect("append");
                    let tx = tx.clone();
                    journal.when_durable(
                        ticket,
                        Box::new(move |r| {
                            let _ = tx.send(r);
                        }),
                    );
                    rx.recv().expect("the committer answers").expect("durable");
                }
            });
        }
    });
    started.elapsed()
}

fn bench_concurrent(c: &mut Criterion) {
    let mut group = slow_group(c, "journal_concurrent");
    // One element per event made durable; `iters` events are spread over the threads.
    group.throughput(Throughput::Elements(1));
    for durability in [Durability::Fsync, Durability::Process] {
        for threads in [4usize, 8] {
            let bench = open(durability);
            let ids: Vec<StreamId> = (0..threads).map(stream).collect();
            let mut tips = vec![StreamTip::default(); threads];
            let clock = AtomicU64::new(0);
            let name = format!("{}/{threads}_threads", mode(durability));
            bench.stats.reset();
            group.bench_function(&name, |b| {
                b.iter_custom(|iters| {
                    run_concurrent(&bench.journal, &ids, &mut tips, iters, &clock)
                })
            });
            bench.stats.report(&format!("journal_concurrent/{name}"));
        }
    }
    group.finish();
}

/// Appends a real history of exactly `n` events to `id`, one append per command, as the
/// product actor would: configure, enrol 10 000 members, then requests, releases,
/// activity and queueing on 5 000 slots.
fn build_history(journal: &Journal, id: &StreamId, n: usize) {
    const MEMBERS: usize = 10_000;
    let names: Vec<String> = (0..MEMBERS)
        .map(|i| format!("user-{i:05}@example.com"))
        .collect();
    let mut state = ProductState::new();
    let mut tip = StreamTip::default();
    let mut written = 0;
    let mut now = EPOCH_MS;
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut commands = vec![Command::Configure(Settings::new(
        ProductKind::Jira,
        10_000,
        5_000,
    ))];
    commands.extend(names.iter().map(|user| Command::Enrol {
        user: user.clone(),
        active: true,
    }));
    let mut scripted = commands.into_iter();
    while written < n {
        now += 1;
        let command = scripted.next().unwrap_or_else(|| {
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            let r = rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
            let user = names[(r % MEMBERS as u64) as usize].clone();
            let roll = (r >> 40) & 0xff;
            match state.user(&user).map(|e| e.standing) {
                Some(Standing::Holding { .. }) if roll < 64 => Command::Release { user },
                Some(Standing::Holding { .. }) => Command::Activity { user },
                Some(Standing::Queued { .. }) => Command::Release { user },
                _ => Command::request(user),
            }
        });
        let at = Timestamp::from_millis(now);
        let Ok(mut events) = state.decide(&command, at) else {
            continue;
        };
        events.truncate(n - written);
        if events.is_empty() {
            continue;
        }
        journal
            .append(id, &mut tip, Uuid::new_v4(), at, &events)
            .expect("append");
        for e in &events {
            state.apply(e);
        }
        written += events.len();
    }
    journal.sync().expect("sync");
    assert_eq!(tip.next_sequence, n as u64 + 1);
}

fn bench_replay(c: &mut Criterion) {
    let bench = open(Durability::Process);
    let id = stream(0);
    build_history(&bench.journal, &id, REPLAY_EVENTS);

    let mut group = slow_group(c, "journal_replay");
    group.throughput(Throughput::Elements(REPLAY_EVENTS as u64));
    group.bench_function("decode_and_verify_100k", |b| {
        b.iter(|| {
            let mut count = 0usize;
            let tip = bench
                .journal
                .replay::<ProductEvent>(&id, |env| {
                    count += 1;
                    black_box(env);
                })
                .expect("replay");
            assert_eq!(count, REPLAY_EVENTS);
            black_box(tip)
        })
    });
    group.bench_function("replay_and_apply_100k", |b| {
        b.iter(|| {
            let mut state = ProductState::new();
            bench
                .journal
                .replay::<ProductEvent>(&id, |env| state.apply(&env.event))
                .expect("replay");
            black_box(state.counts())
        })
    });
    group.finish();
}

/// See the module's doc: a fresh journal for each purge, filled outside the timing.
fn bench_purge(c: &mut Criterion) {
    const RECORDS: u64 = 20_000;
    const PURGED: u64 = 18_000;
    let mut group = slow_group(c, "purge");
    group.throughput(Throughput::Elements(PURGED));
    let id = StreamId::Raft("log".into());
    let record = ReplicationRecord(vec![0x5Au8; 1024]);
    group.bench_function("first_18000_of_20000_records_of_1kb", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let config = JournalConfig {
                    durability: Durability::Process,
                    ..JournalConfig::default()
                }
                .purged_log();
                let journal = Journal::open(dir.path(), config).expect("the journal opens");
                let mut tip = StreamTip::default();
                for _ in 0..RECORDS / 100 {
                    let batch = vec![record.clone(); 100];
                    journal
                        .append(
                            &id,
                            &mut tip,
                            Uuid::nil(),
                            Timestamp::from_millis(0),
                            &batch,
                        )
                        .expect("append");
                }
                journal.sync().expect("sync");
                (dir, journal)
            },
            |(dir, journal)| {
                journal.purge_upto(&id, PURGED).expect("purge");
                (dir, journal)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_per_event,
    bench_group_commit,
    bench_concurrent,
    bench_append_only,
    bench_sled_baseline,
    bench_replay,
    bench_purge
);
criterion_main!(benches);
