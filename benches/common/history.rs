//! The realistic product history the journal benches write: configure, enrol every member,
//! then a random member at a time acts according to where they stand (a holder mostly
//! uses the product and sometimes leaves, a queued member gives up, anyone else asks),
//! decided by `ProductState::decide`, optionally with a sweep at a fixed interval.
//! Deterministic (a fixed xorshift seed), so a cached journal can be rebuilt identically.
//!
//! Shared by `recovery.rs` and `offline.rs` through `#[path]`: the benches are separate
//! crates of separate packages.

use slotpool_events::{
    Command, Presence, ProductEvent, ProductKind, ProductState, Settings, Standing, Timestamp,
};

/// 2025-01-01T00:00:00Z, in ms: where simulated time starts.
pub const EPOCH_MS: i64 = 1_735_689_600_000;

/// The history generator; `state` is the caller's to fold the returned events into.
pub struct History {
    /// The product as the returned events leave it, once the caller applied them.
    pub state: ProductState,
    names: Vec<String>,
    scripted: std::vec::IntoIter<Command>,
    rng: u64,
    now: i64,
    step_ms: i64,
    sweep: Option<(i64, i64)>,
}

impl History {
    /// `members` users on `shared_slots` slots, one command every `step_ms` of simulated
    /// time, and a sweep every `sweep_ms` if given.
    pub fn new(members: usize, shared_slots: u32, step_ms: i64, sweep_ms: Option<i64>) -> Self {
        let names: Vec<String> = (0..members)
            .map(|i| format!("user-{i:05}@example.com"))
            .collect();
        let mut scripted = vec![Command::Configure(Settings::new(
            ProductKind::Jira,
            members as u32,
            shared_slots,
        ))];
        scripted.extend(names.iter().map(|user| Command::Enrol {
            user: user.clone(),
            active: true,
        }));
        History {
            state: ProductState::new(),
            names,
            scripted: scripted.into_iter(),
            rng: 0x9E37_79B9_7F4A_7C15,
            now: EPOCH_MS,
            step_ms,
            sweep: sweep_ms.map(|every| (every, EPOCH_MS + every)),
        }
    }

    /// The next command that records something: its time and its events (not applied).
    pub fn next(&mut self) -> (Timestamp, Vec<ProductEvent>) {
        loop {
            self.now += self.step_ms;
            let command = match &mut self.sweep {
                Some((every, next)) if self.now >= *next => {
                    *next += *every;
                    Command::Tick {
                        presence: Presence::default(),
                    }
                }
                _ => match self.scripted.next() {
                    Some(c) => c,
                    None => self.random_command(),
                },
            };
            let at = Timestamp::from_millis(self.now);
            if let Ok(events) = self.state.decide(&command, at) {
                if !events.is_empty() {
                    return (at, events);
                }
            }
        }
    }

    fn random_command(&mut self) -> Command {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let user = self.names[(r % self.names.len() as u64) as usize].clone();
        let roll = (r >> 40) & 0xff;
        match self.state.user(&user).map(|e| e.standing) {
            Some(Standing::Holding { .. }) if roll < 64 => Command::Release { user },
            Some(Standing::Holding { .. }) => Command::Activity { user },
            Some(Standing::Queued { .. }) => Command::Release { user },
            _ => Command::request(user),
        }
    }
}
