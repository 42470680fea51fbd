//! Throughput of the pure core: `ProductState::decide` followed by `apply` of the events
//! it returns, as a product actor does for every command (minus the journal).
//!
//! The product is a large one: licence tier 10 000, 5 000 shared slots, 10 000 members.
//! Setup (configuring, enrolling, filling pool and queue) happens outside the timed
//! closures; each timed iteration runs a batch of commands against a state that stays
//! valid from one iteration to the next (users cycle, time only moves forward).
//!
//! Run with `cargo bench -p slotpool-events --bench core`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use slotpool_events::{
    Command, ProductEvent, ProductKind, ProductState, Settings, Standing, Timestamp,
};
use std::time::Duration;

const TIER: u32 = 10_000;
const SHARED_SLOTS: u32 = 5_000;
const MEMBERS: usize = 10_000;
/// Commands per timed iteration.
const BATCH: usize = 1_000;
/// Start of the simulated clock (2025-01-01T00:00:00Z), in ms.
const EPOCH_MS: i64 = 1_735_689_600_000;

/// The commands of every user, built once so the timed loop allocates none of its own.
struct Users {
    names: Vec<String>,
    request: Vec<Command>,
    release: Vec<Command>,
    activity: Vec<Command>,
}

impl Users {
    fn new(n: usize) -> Self {
        let names: Vec<String> = (0..n).map(|i| format!("user-{i:05}@example.com")).collect();
        let by = |f: fn(String) -> Command| names.iter().cloned().map(f).collect::<Vec<_>>();
        Users {
            request: by(Command::request),
            release: by(|user| Command::Release { user }),
            activity: by(|user| Command::Activity { user }),
            names,
        }
    }
}

/// Decides `command` at `now` and applies what was decided; returns the number of events
/// (a refusal counts as a command that recorded nothing).
#[inline]
fn run(state: &mut ProductState, command: &Command, now: Timestamp) -> usize {
    match state.decide(command, now) {
        Ok(events) => {
            for e in &events {
                state.apply(e);
            }
            events.len()
        }
        Err(_) => 0,
    }
}

/// A configured product with every user enrolled, nobody holding or queued yet.
fn enrolled_product(users: &Users) -> ProductState {
    let mut state = ProductState::new();
    let now = Timestamp::from_millis(EPOCH_MS);
    let configure = Command::Configure(Settings::new(ProductKind::Jira, TIER, SHARED_SLOTS));
    assert!(run(&mut state, &configure, now) > 0);
    for name in &users.names {
        let enrol = Command::Enrol {
            user: name.clone(),
            active: true,
        };
        assert!(run(&mut state, &enrol, now) > 0);
    }
    assert_eq!(state.counts().members, MEMBERS);
    state
}

/// Users `0..holders` hold a slot (granted in that order); then users
/// `holders..holders + queued` wait in the queue (in that order).
fn product_with(users: &Users, holders: usize, queued: usize) -> ProductState {
    let mut state = enrolled_product(users);
    let now = Timestamp::from_millis(EPOCH_MS + 1);
    for u in 0..holders + queued {
        assert_eq!(run(&mut state, &users.request[u], now), 1);
    }
    let c = state.counts();
    assert_eq!((c.holders, c.queued), (holders, queued));
    state
}

/// A small, fast, deterministic generator (xorshift64*), so the mix is the same each run.
struct Rng(u64);

impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Where the mix believes each user stands, kept from the events (as a client would from
/// the answers), so that choosing the next command costs no lookup in the state.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    Idle,
    Holding,
    Queued,
}

/// The index of a user named by [`Users::new`]: the five digits after `user-`.
#[inline]
fn user_index(name: &str) -> usize {
    name.as_bytes()[5..10]
        .iter()
        .fold(0, |n, d| n * 10 + usize::from(d - b'0'))
}

/// The realistic mix: a random member acts according to where they stand.
///
/// - idle: requests a slot (granted, or queued when the pool is full);
/// - holding: reports activity 3 times out of 4, releases the slot otherwise
///   (the freed slot goes to the queue head at once);
/// - queued: gives up the place 1 time out of 8, otherwise requests again (a no-op poll).
///
/// One command per simulated millisecond: a holder is touched about every 10 s and holds
/// for about 40 s, so most activity falls within the coalescing window and records
/// nothing. With 10 000 members on 5 000 slots the pool stays full and thousands wait.
struct Mix {
    state: ProductState,
    seen: Vec<Seen>,
    rng: Rng,
    now: i64,
    commands: u64,
    events: u64,
    kinds: [u64; 5],
}

impl Mix {
    fn new(users: &Users) -> Self {
        Mix {
            state: enrolled_product(users),
            seen: vec![Seen::Idle; users.names.len()],
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            now: EPOCH_MS + 1,
            commands: 0,
            events: 0,
            kinds: [0; 5],
        }
    }

    #[inline]
    fn step(&mut self, users: &Users) {
        let r = self.rng.next();
        let u = (r % MEMBERS as u64) as usize;
        let roll = (r >> 40) & 0xff;
        let (kind, command) = match self.seen[u] {
            Seen::Holding if roll < 64 => (1, &users.release[u]),
            Seen::Holding => (2, &users.activity[u]),
            Seen::Queued if roll < 32 => (3, &users.release[u]),
            Seen::Queued => (4, &users.request[u]),
            Seen::Idle => (0, &users.request[u]),
        };
        self.now += 1;
        let at = Timestamp::from_millis(self.now);
        if let Ok(events) = self.state.decide(command, at) {
            for e in &events {
                self.state.apply(e);
                let (user, seen) = match e {
                    ProductEvent::SlotGranted { user, .. } => (user, Seen::Holding),
                    ProductEvent::Queued { user, .. } => (user, Seen::Queued),
                    ProductEvent::SlotReleased { user, .. }
                    | ProductEvent::SlotRevoked { user, .. }
                    | ProductEvent::QueueLeft { user, .. } => (user, Seen::Idle),
                    _ => continue,
                };
                self.seen[user_index(user)] = seen;
            }
            self.events += events.len() as u64;
        }
        self.commands += 1;
        self.kinds[kind] += 1;
    }

    /// Checks that the mix's view matches the state's.
    fn check(&self, users: &Users) {
        for (name, seen) in users.names.iter().zip(&self.seen) {
            let standing = self.state.user(name).map(|e| e.standing);
            let actual = match standing {
                Some(Standing::Holding { .. }) => Seen::Holding,
                Some(Standing::Queued { .. }) => Seen::Queued,
                _ => Seen::Idle,
            };
            assert!(actual == *seen, "the mix lost track of {name}");
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

fn bench_mix(c: &mut Criterion) {
    let users = Users::new(MEMBERS);
    let mut mix = Mix::new(&users);
    // Reach the steady state (full pool, long queue) before measuring.
    for _ in 0..200_000 {
        mix.step(&users);
    }
    mix.check(&users);
    let counts = mix.state.counts();
    mix.commands = 0;
    mix.events = 0;
    mix.kinds = [0; 5];

    let mut group = c.benchmark_group("product");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("mix", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                mix.step(&users);
            }
        })
    });
    group.finish();
    mix.check(&users);

    if mix.commands == 0 {
        return; // filtered out
    }
    let n = mix.commands as f64;
    let pct = |k: usize| 100.0 * mix.kinds[k] as f64 / n;
    eprintln!(
        "product/mix: steady state {} holders, {} queued; commands: {:.1}% request (idle), \
         {:.1}% release (holder), {:.1}% activity, {:.1}% leave queue, {:.1}% re-request (queued); \
         {:.2} events per command",
        counts.holders,
        counts.queued,
        pct(0),
        pct(1),
        pct(2),
        pct(3),
        pct(4),
        mix.events as f64 / n
    );
}

fn bench_pairs(c: &mut Criterion) {
    let users = Users::new(MEMBERS);
    let mut group = c.benchmark_group("request_release_pair");
    // Two commands per pair: the reported time per element is per command.
    group.throughput(Throughput::Elements(2 * BATCH as u64));

    // Half the pool in use, nobody waiting: Request -> SlotGranted, Release -> SlotReleased.
    {
        let holders = SHARED_SLOTS as usize / 2;
        let mut state = product_with(&users, holders, 0);
        let mut u = holders;
        let mut now = EPOCH_MS + 2;
        group.bench_function("free_slot", |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    now += 1;
                    let at = Timestamp::from_millis(now);
                    black_box(run(&mut state, &users.request[u], at));
                    black_box(run(&mut state, &users.release[u], at));
                    u = if u + 1 == MEMBERS { holders } else { u + 1 };
                }
            })
        });
        assert_eq!(state.counts().holders, holders);
    }

    // Pool full, nobody waiting: Request -> Queued, Release -> QueueLeft.
    {
        let holders = SHARED_SLOTS as usize;
        let mut state = product_with(&users, holders, 0);
        let mut u = holders;
        let mut now = EPOCH_MS + 2;
        group.bench_function("full_pool_queue_and_leave", |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    now += 1;
                    let at = Timestamp::from_millis(now);
                    black_box(run(&mut state, &users.request[u], at));
                    black_box(run(&mut state, &users.release[u], at));
                    u = if u + 1 == MEMBERS { holders } else { u + 1 };
                }
            })
        });
        let c = state.counts();
        assert_eq!((c.holders, c.queued), (holders, 0));
    }

    // Pool full and 5 000 waiting: a holder releases (SlotReleased + SlotGranted to the
    // queue head) and requests again (Queued at the tail). Users 0..5000 hold, 5000..10000
    // wait; cycling through all users in order keeps the user whose turn it is a holder.
    {
        let holders = SHARED_SLOTS as usize;
        let mut state = product_with(&users, holders, MEMBERS - holders);
        let mut u = 0;
        let mut now = EPOCH_MS + 2;
        group.bench_function("handover_to_queue_head", |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    now += 1;
                    let at = Timestamp::from_millis(now);
                    black_box(run(&mut state, &users.release[u], at));
                    black_box(run(&mut state, &users.request[u], at));
                    u = (u + 1) % MEMBERS;
                }
            })
        });
        let c = state.counts();
        assert_eq!((c.holders, c.queued), (holders, MEMBERS - holders));
    }
    group.finish();
}

/// Activity from the 5 000 holders in turn. Activity is coalesced: within the coalescing
/// window (60 s with the default settings) a holder's new activity records nothing.
///
/// - `coalesced`: 1 ms between commands, so each holder comes round every 5 s: mostly
///   decide only, no event (the common case for a busy browser); about 1 in 12 records,
///   once per holder and window, since coalesced activity does not move `last_activity`;
/// - `recorded`: 100 ms between commands, so each holder comes round every 500 s (past
///   the window, well within the 1 800 s inactivity time): every command records
///   `ActivityRecorded`, which is applied.
fn bench_activity(c: &mut Criterion) {
    let users = Users::new(MEMBERS);
    let holders = SHARED_SLOTS as usize;
    let mut group = c.benchmark_group("activity");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, step_ms) in [("coalesced", 1), ("recorded", 100)] {
        let mut state = product_with(&users, holders, 0);
        let mut u = 0;
        // Start one full round later, so even the first round is past the window when
        // `step_ms` says it should be.
        let mut now = EPOCH_MS + 2 + step_ms * holders as i64;
        let (mut commands, mut events) = (0u64, 0u64);
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    now += step_ms;
                    let at = Timestamp::from_millis(now);
                    events += run(&mut state, &users.activity[u], at) as u64;
                    u = (u + 1) % holders;
                }
                commands += BATCH as u64;
            })
        });
        assert_eq!(state.counts().holders, holders);
        if commands > 0 {
            eprintln!(
                "activity/{name}: {:.2} events per command",
                events as f64 / commands as f64
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_mix, bench_pairs, bench_activity
}
criterion_main!(benches);
