//! The sweep at scale, and what a member costs in memory.
//!
//! - `sweep_1m_holders`: `ProductState::decide(&Command::Tick { .. }, now)` (decide only,
//!   never apply) and `ProductState::next_tick` over a product whose 1 000 000 members all
//!   hold a slot. Targets: a sweep with nothing due ≤ 10 µs, a sweep that warns 1 %
//!   (10 000 holders) ≤ 5 ms: its cost must follow the due holders, not the pool.
//! - `memory_per_member`: the heap a `ProductState` of 1 000 000 members takes (half of
//!   them holders, 100 000 queued), measured by the counting allocator of this binary and
//!   printed as bytes per member. Target: ≤ 512 B.
//!
//! Besides the two targets, the group times `next_tick` (the actor calls it after every
//! command that records something), a sweep between the warnings and their revocation,
//! the revocation of the 10 000 warned holders, and a sweep with nothing due but 10 000
//! members waiting in the queue. Decided events are dropped outside the timing
//! (`iter_with_large_drop`): what is timed is `decide` alone.
//!
//! The states are built by applying events directly (`Configured`, `MemberEnrolled`,
//! `SlotGranted`, `Queued`), once per group and outside the timed closures.
//!
//! Holders' last activity is spread 30 ms apart from a point of the sweep grid (default
//! settings: inactivity 1 800 s, warning lead 60 s, sweeps every 300 s), in an order
//! unrelated to their names (and so to where their entries sit in memory). One grid step
//! (300 s) thus holds exactly 10 000 holders: the first 10 000 fall due for a warning at
//! `BASE + 2 040 s`, the next 10 000 one grid step later.
//!
//! Run with `cargo bench -p slotpool-events --bench sweep`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use slotpool_events::{
    Command, ProductEvent, ProductKind, ProductState, Settings, Timestamp, UserEntry,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts the bytes the program holds on the heap (and the highest that reached), for
/// `memory_per_member`. A relaxed atomic add per allocation: noise next to the allocation.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = HELD.fetch_add(bytes, Ordering::Relaxed) + bytes;
    // Not an atomic maximum: the measurement is single-threaded, a lost race costs nothing.
    if now > PEAK.load(Ordering::Relaxed) {
        PEAK.store(now, Ordering::Relaxed);
    }
}

fn shrank(bytes: usize) {
    HELD.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const HOLDERS: usize = 1_000_000;
/// Holders due per grid step, and in the 1 % case.
const DUE: usize = 10_000;
/// Between consecutive holders' last activity.
const SPREAD_MS: i64 = 30;
/// 2025-01-01T00:00:00Z, in ms: a point of the 300 s sweep grid.
const BASE_MS: i64 = 1_735_689_600_000;
/// When the first 10 000 holders fall due for a warning (see the module documentation).
const WARN_AT_MS: i64 = BASE_MS + 2_040_000;
/// When those holders, once warned then, lose their slot.
const REVOKE_AT_MS: i64 = BASE_MS + 2_100_000;

fn name(i: usize) -> String {
    format!("user-{i:07}@example.com")
}

/// A bijection of `0..n` (for `n` a power of ten times small factors, as here: the
/// multiplier is odd and not a multiple of 5), so grant order is unrelated to names.
fn scatter(j: usize, n: usize) -> usize {
    (j as u64 * 611_953 % n as u64) as usize
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// The `j`-th holder's last activity: 30 ms apart, starting 1 ms after `BASE_MS`.
fn granted_at(j: usize) -> Timestamp {
    at(BASE_MS + 1 + j as i64 * SPREAD_MS)
}

fn configured(licence_tier: u32, shared_slots: u32) -> ProductState {
    let mut state = ProductState::new();
    state.apply(&ProductEvent::Configured {
        settings: Settings::new(ProductKind::Jira, licence_tier, shared_slots),
    });
    state
}

/// 1 000 000 members, every one a holder.
fn million_holders() -> ProductState {
    let mut state = configured(HOLDERS as u32, HOLDERS as u32);
    for i in 0..HOLDERS {
        state.apply(&ProductEvent::MemberEnrolled { user: name(i) });
    }
    for j in 0..HOLDERS {
        state.apply(&ProductEvent::SlotGranted {
            user: name(scatter(j, HOLDERS)),
            at: granted_at(j),
        });
    }
    let c = state.counts();
    assert_eq!((c.members, c.holders, c.queued), (HOLDERS, HOLDERS, 0));
    state
}

fn decide(state: &ProductState, command: &Command, now: i64) -> Vec<ProductEvent> {
    state
        .decide(command, at(now))
        .expect("a tick is never refused")
}

fn count(events: &[ProductEvent], f: fn(&ProductEvent) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

fn bench_sweep(c: &mut Criterion) {
    let started = Instant::now();
    let mut state = million_holders();
    eprintln!(
        "sweep_1m_holders: state of {HOLDERS} holders built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let tick = Command::Tick {
        presence: Default::default(),
    };
    let quiet = WARN_AT_MS - 1;

    // The expectations the timings rely on.
    assert!(decide(&state, &tick, quiet).is_empty());
    let warnings = decide(&state, &tick, WARN_AT_MS);
    assert_eq!(warnings.len(), DUE);
    assert_eq!(
        count(
            &warnings,
            |e| matches!(e, ProductEvent::WarningIssued { revoke_at, .. }
            if *revoke_at == at(REVOKE_AT_MS))
        ),
        DUE
    );
    assert_eq!(state.next_tick(at(quiet)), Some(at(WARN_AT_MS)));

    let mut group = c.benchmark_group("sweep_1m_holders");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);

    // Nothing due: the first holder of each index is not due; nothing is queued.
    group.bench_function("tick_nothing_due", |b| {
        b.iter_with_large_drop(|| decide(&state, black_box(&tick), black_box(quiet)))
    });
    group.bench_function("next_tick_nothing_due", |b| {
        b.iter(|| state.next_tick(black_box(at(quiet))))
    });

    // 1 %: 10 000 holders due for a warning, none warned yet.
    group.throughput(Throughput::Elements(DUE as u64));
    group.bench_function("tick_warn_1pct", |b| {
        b.iter_with_large_drop(|| decide(&state, black_box(&tick), black_box(WARN_AT_MS)))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("next_tick_1pct_due", |b| {
        b.iter(|| state.next_tick(black_box(at(WARN_AT_MS))))
    });

    // Fold those warnings in: 10 000 warned holders now lead the activity index.
    for e in &warnings {
        state.apply(e);
    }
    assert_eq!(state.next_tick(at(WARN_AT_MS)), Some(at(REVOKE_AT_MS)));
    group.bench_function("next_tick_1pct_warned", |b| {
        b.iter(|| state.next_tick(black_box(at(WARN_AT_MS))))
    });
    // A sweep after the warnings, before their revocation: nothing is due, but the warned
    // holders lead the activity index.
    assert!(decide(&state, &tick, REVOKE_AT_MS - 1).is_empty());
    group.bench_function("tick_nothing_due_1pct_warned", |b| {
        b.iter_with_large_drop(|| decide(&state, black_box(&tick), black_box(REVOKE_AT_MS - 1)))
    });
    // Their revocation: 10 000 `SlotRevoked { reason: Inactivity }`.
    let revocations = decide(&state, &tick, REVOKE_AT_MS);
    assert_eq!(
        count(&revocations, |e| matches!(
            e,
            ProductEvent::SlotRevoked { .. }
        )),
        DUE
    );
    group.throughput(Throughput::Elements(DUE as u64));
    group.bench_function("tick_revoke_1pct", |b| {
        b.iter_with_large_drop(|| decide(&state, black_box(&tick), black_box(REVOKE_AT_MS)))
    });
    group.finish();

    // For comparison: nothing due for a warning or a revocation, but 10 000 members
    // waiting (kept alive, none expired). Set up on a fresh state, without the warnings.
    drop(state);
    let mut state = million_holders();
    let waiting: Vec<String> = (HOLDERS..HOLDERS + DUE).map(name).collect();
    for user in &waiting {
        state.apply(&ProductEvent::MemberEnrolled { user: user.clone() });
        state.apply(&ProductEvent::Queued {
            user: user.clone(),
            at: at(quiet - 10_000),
        });
    }
    assert_eq!(state.counts().queued, DUE);
    assert!(decide(&state, &tick, quiet).is_empty());
    let mut group = c.benchmark_group("sweep_1m_holders");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    group.bench_function("tick_nothing_due_10k_queued", |b| {
        b.iter_with_large_drop(|| decide(&state, black_box(&tick), black_box(quiet)))
    });
    group.finish();
}

/// Heap bytes the closure's result holds once built, and the peak above the start.
fn measure<T>(build: impl FnOnce() -> T) -> (T, usize, usize) {
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let value = build();
    let held = HELD.load(Ordering::Relaxed).saturating_sub(before);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    (value, held, peak)
}

fn bench_memory(_: &mut Criterion) {
    const MEMBERS: usize = 1_000_000;
    const SLOTS: usize = MEMBERS / 2;
    const QUEUED: usize = 100_000;
    let per = |bytes: usize| bytes as f64 / MEMBERS as f64;

    let (state, held, peak) = measure(|| {
        let mut state = configured(MEMBERS as u32, SLOTS as u32);
        for i in 0..MEMBERS {
            state.apply(&ProductEvent::MemberEnrolled { user: name(i) });
        }
        state
    });
    let enrolled = held;
    let mut peak_total = peak;

    let (state, held, peak) = measure(move || {
        let mut state = state;
        for j in 0..SLOTS {
            state.apply(&ProductEvent::SlotGranted {
                user: name(scatter(j, MEMBERS)),
                at: granted_at(j),
            });
        }
        state
    });
    let pool = held;
    peak_total = peak_total.max(enrolled + peak);

    let (state, held, peak) = measure(move || {
        let mut state = state;
        for j in SLOTS..SLOTS + QUEUED {
            state.apply(&ProductEvent::Queued {
                user: name(scatter(j, MEMBERS)),
                at: granted_at(j),
            });
        }
        state
    });
    let queue = held;
    peak_total = peak_total.max(enrolled + pool + peak);

    let c = state.counts();
    assert_eq!(
        (c.members, c.holders, c.queued),
        (MEMBERS, SLOTS, QUEUED),
        "the product is as described"
    );
    let total = enrolled + pool + queue;
    eprintln!(
        "memory_per_member: {:.1} B/member ({total} B for {MEMBERS} members: {SLOTS} holders, \
         {QUEUED} queued; target <= 512 B); peak while building {:.1} B/member",
        per(total),
        per(peak_total),
    );
    eprintln!(
        "memory_per_member: users map and names {:.1} B/member; pool {:.1} B/holder; \
         queue {:.1} B/queued member (size_of (Arc<str>, UserEntry) = {} B)",
        per(enrolled),
        pool as f64 / SLOTS as f64,
        queue as f64 / QUEUED as f64,
        std::mem::size_of::<(Arc<str>, UserEntry)>(),
    );
}

criterion_group!(benches, bench_sweep, bench_memory);
criterion_main!(benches);
