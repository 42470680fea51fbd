//! A linearizability checker of a recorded concurrent client history, in the style of
//! Wing & Gong with Lowe's memoisation (as Porcupine does it), for the cluster tests.
//!
//! The model: per user and product, one slot register in a pool large enough that a
//! request always grants. `POST .../slot` answers `granted` and leaves the user holding;
//! `DELETE .../slot` leaves them holding nothing; `GET .../slot` reads `granted` or
//! `none`. A history is linearizable when every acknowledged operation can be placed at
//! one instant between its invocation and its response so that the sequence obeys the
//! model. An operation without a response (a 503, a lost connection) is indeterminate:
//! it may have taken effect at any instant after its invocation, or never. Users are
//! independent of each other in this model, so each user's sub-history is checked on its
//! own (P-compositionality), which keeps the search small.
//!
//! The search is bounded: it gives up (verdict `Unknown`) after a budget of steps rather
//! than run away. Two facts keep it far below that budget on real histories: a user's
//! acknowledged operations come from one client, one at a time, and indeterminate
//! operations of one kind are interchangeable (no answer to match, the same effect
//! whatever the state), so only the earliest-invoked one not yet placed is ever tried.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

/// What a client asked of its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Call {
    /// `POST .../slot`.
    Request,
    /// `DELETE .../slot`.
    Release,
    /// `GET .../slot`.
    Read,
}

/// One operation of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Whose register: `product/user`.
    pub key: String,
    pub call: Call,
    /// Nanoseconds since the recorder's epoch when the request was sent.
    pub invoked: u64,
    /// When the answer came, and the state it said (`granted`, `none`, ...; an
    /// acknowledged release says `none`); `None`: indeterminate.
    pub ret: Option<(u64, String)>,
}

impl Operation {
    /// An acknowledged operation.
    pub fn ok(key: &str, call: Call, invoked: u64, returned: u64, state: &str) -> Operation {
        Operation {
            key: key.to_string(),
            call,
            invoked,
            ret: Some((returned, state.to_string())),
        }
    }

    /// An operation that never got an answer.
    pub fn indeterminate(key: &str, call: Call, invoked: u64) -> Operation {
        Operation {
            key: key.to_string(),
            call,
            invoked,
            ret: None,
        }
    }
}

/// Collects a history from many client threads: invocation and response instants on one
/// clock.
pub struct Recorder {
    epoch: Instant,
    ops: Mutex<Vec<Operation>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty history whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            epoch: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    fn ops(&self) -> std::sync::MutexGuard<'_, Vec<Operation>> {
        self.ops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Nanoseconds since the epoch.
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The nanoseconds of `at` on this recorder's clock (0 before the epoch).
    pub fn at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// Records an invocation, just before the request is sent; returns its handle.
    pub fn invoke(&self, key: &str, call: Call) -> usize {
        let mut ops = self.ops();
        let invoked = self.now();
        ops.push(Operation::indeterminate(key, call, invoked));
        ops.len() - 1
    }

    /// Records the answer of invocation `id`, just after it came. Without this call the
    /// operation stays indeterminate.
    pub fn answer(&self, id: usize, state: &str) {
        let returned = self.now();
        if let Some(op) = self.ops().get_mut(id) {
            op.ret = Some((returned, state.to_string()));
        }
    }

    /// The history so far.
    pub fn history(&self) -> Vec<Operation> {
        self.ops().clone()
    }
}

/// The verdict on one user's sub-history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order fits; `detail` shows where the search got stuck.
    NotLinearizable {
        detail: String,
    },
    /// The search ran out of its step budget.
    Unknown {
        steps: u64,
    },
}

/// The verdict on a whole history.
#[derive(Debug, Clone)]
pub struct Report {
    /// Keys checked.
    pub keys: usize,
    /// Operations checked (indeterminate reads are dropped: they constrain nothing).
    pub operations: usize,
    /// Indeterminate writes among them.
    pub indeterminate: usize,
    /// Search steps over all keys.
    pub steps: u64,
    /// Keys that are not linearizable, or not decided within the budget.
    pub failures: BTreeMap<String, Verdict>,
}

impl Report {
    /// Whether every key is linearizable.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The default step budget per key: far above what a few thousand operations of one
/// client need, far below a runaway search.
pub const DEFAULT_BUDGET: u64 = 2_000_000;

/// Checks every key's sub-history, each from `none`, with `budget` steps per key.
pub fn check(history: &[Operation], budget: u64) -> Report {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut report = Report {
        keys: by_key.len(),
        operations: 0,
        indeterminate: 0,
        steps: 0,
        failures: BTreeMap::new(),
    };
    for (key, ops) in by_key {
        let ops: Vec<Operation> = ops.into_iter().cloned().collect();
        let (verdict, stats) = check_key(&ops, budget);
        report.operations += stats.operations;
        report.indeterminate += stats.indeterminate;
        report.steps += stats.steps;
        if verdict != Verdict::Linearizable {
            report.failures.insert(key.to_string(), verdict);
        }
    }
    report
}

/// What the search did on one key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub operations: usize,
    pub indeterminate: usize,
    pub steps: u64,
}

/// The model's step: whether `op` may take effect in state `holding`, and the state after.
fn step(holding: bool, op: &Operation) -> Option<bool> {
    match (op.call, &op.ret) {
        (Call::Request, None) => Some(true),
        (Call::Request, Some((_, s))) => (s == "granted").then_some(true),
        (Call::Release, _) => Some(false),
        (Call::Read, Some((_, s))) => {
            let expected = if holding { "granted" } else { "none" };
            (s == expected).then_some(holding)
        }
        (Call::Read, None) => Some(holding),
    }
}

fn response(op: &Operation) -> u64 {
    op.ret.as_ref().map_or(u64::MAX, |(t, _)| *t)
}

fn describe(op: &Operation) -> String {
    match &op.ret {
        Some((t, s)) => format!(
            "{:?} -> {s:?} [{:.3} ms, {:.3} ms]",
            op.call,
            op.invoked as f64 / 1e6,
            *t as f64 / 1e6
        ),
        None => format!(
            "{:?} -> ? [{:.3} ms, never answered]",
            op.call,
            op.invoked as f64 / 1e6
        ),
    }
}

/// Checks one key's operations (all of the same key), starting from `none`.
pub fn check_key(ops: &[Operation], budget: u64) -> (Verdict, Stats) {
    // Indeterminate reads constrain nothing: drop them.
    let mut ops: Vec<&Operation> = ops
        .iter()
        .filter(|o| !(o.call == Call::Read && o.ret.is_none()))
        .collect();
    ops.sort_by_key(|o| (o.invoked, response(o)));
    let n = ops.len();
    let determinate = ops.iter().filter(|o| o.ret.is_some()).count();
    let mut stats = Stats {
        operations: n,
        indeterminate: n - determinate,
        steps: 0,
    };
    // For an indeterminate operation, the previous indeterminate one of the same kind:
    // it must be placed first (they are interchangeable, so only one order is tried).
    let mut previous_of_kind: Vec<Option<usize>> = vec![None; n];
    let mut last: BTreeMap<Call, usize> = BTreeMap::new();
    for (i, o) in ops.iter().enumerate() {
        if o.ret.is_none() {
            previous_of_kind[i] = last.insert(o.call, i);
        }
    }

    // The acknowledged operations by response instant, and each one's place there: the
    // earliest pending response is the first unplaced one in this order. Below `by_ret_from`
    // and `by_inv_from` everything is placed (hints kept on placing and unplacing), so
    // neither scan walks the placed prefix again at every step.
    let mut by_ret: Vec<usize> = (0..n).filter(|&i| ops[i].ret.is_some()).collect();
    by_ret.sort_by_key(|&i| response(ops[i]));
    let mut ret_pos = vec![usize::MAX; n];
    for (p, &i) in by_ret.iter().enumerate() {
        ret_pos[i] = p;
    }
    let mut by_ret_from = 0usize;
    let mut by_inv_from = 0usize;

    let words = n.div_ceil(64).max(1);
    let mut placed = vec![0u64; words];
    let is_placed = |p: &[u64], i: usize| p[i / 64] & (1 << (i % 64)) != 0;
    let mut cache: HashSet<(Vec<u64>, bool)> = HashSet::new();
    // Each frame: the operation placed and the state before it.
    let mut stack: Vec<(usize, bool)> = Vec::new();
    let mut holding = false;
    let mut done = 0usize;
    let mut start = 0usize;
    let mut deepest = 0usize;
    let mut stuck = String::new();
    loop {
        if done == determinate {
            return (Verdict::Linearizable, stats);
        }
        stats.steps += 1;
        if stats.steps > budget {
            return (Verdict::Unknown { steps: stats.steps }, stats);
        }
        // Only operations invoked before the earliest pending answer may come next.
        while by_ret_from < by_ret.len() && is_placed(&placed, by_ret[by_ret_from]) {
            by_ret_from += 1;
        }
        let min_ret = by_ret
            .get(by_ret_from)
            .map_or(u64::MAX, |&i| response(ops[i]));
        while by_inv_from < n && is_placed(&placed, by_inv_from) {
            by_inv_from += 1;
        }
        let mut next = None;
        for j in start.max(by_inv_from)..n {
            let o = ops[j];
            if o.invoked > min_ret {
                break;
            }
            if is_placed(&placed, j) {
                continue;
            }
            if o.ret.is_none() && previous_of_kind[j].is_some_and(|p| !is_placed(&placed, p)) {
                continue;
            }
            let Some(after) = step(holding, o) else {
                continue;
            };
            placed[j / 64] |= 1 << (j % 64);
            if cache.insert((placed.clone(), after)) {
                next = Some((j, after));
                break;
            }
            placed[j / 64] &= !(1 << (j % 64));
        }
        match next {
            Some((j, after)) => {
                stack.push((j, holding));
                holding = after;
                if ops[j].ret.is_some() {
                    done += 1;
                }
                start = 0;
            }
            None => {
                if done > deepest || (done == deepest && stuck.is_empty()) {
                    deepest = done;
                    let first_pending = (0..n)
                        .filter(|&i| !is_placed(&placed, i) && ops[i].ret.is_some())
                        .min_by_key(|&i| response(ops[i]));
                    let placed_before: Vec<String> = stack
                        .iter()
                        .rev()
                        .take(4)
                        .rev()
                        .map(|&(i, _)| describe(ops[i]))
                        .collect();
                    stuck = format!(
                        "{deepest} of {determinate} acknowledged operations fit; the state is {:?} after [{}]; then {} cannot be placed",
                        if holding { "granted" } else { "none" },
                        placed_before.join(", "),
                        first_pending.map_or("nothing".to_string(), |i| describe(ops[i]))
                    );
                }
                let Some((j, before)) = stack.pop() else {
                    return (Verdict::NotLinearizable { detail: stuck }, stats);
                };
                placed[j / 64] &= !(1 << (j % 64));
                by_inv_from = by_inv_from.min(j);
                by_ret_from = by_ret_from.min(ret_pos[j]);
                holding = before;
                if ops[j].ret.is_some() {
                    done -= 1;
                }
                start = j + 1;
            }
        }
    }
}
