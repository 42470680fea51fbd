//! Snapshots: image round trips, "snapshot + tail replay equals full replay" at every cut
//! point of random histories, and a store that skips what it cannot trust.

use proptest::prelude::*;
use slotpool_events::{
    Command, Presence, ProductEvent, ProductKind, ProductState, Settings, StreamId, Timestamp,
};
use slotpool_journal::{Durability, Journal, JournalConfig, StreamTip};
use slotpool_snapshots::{decode, encode, Snapshot, SnapshotError, SnapshotStore, FORMAT_VERSION};
use uuid::Uuid;

const USERS: [&str; 5] = ["ann", "bob", "cyd", "dee", "eve"];

fn user() -> impl Strategy<Value = String> {
    prop::sample::select(USERS.to_vec()).prop_map(str::to_string)
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        2 => (user(), prop::bool::weighted(0.9)).prop_map(|(user, active)| Command::Enrol { user, active }),
        4 => user().prop_map(Command::request),
        2 => user().prop_map(|user| Command::Release { user }),
        3 => user().prop_map(|user| Command::Activity { user }),
        1 => user().prop_map(|user| Command::Revoke { user }),
        1 => (user(), any::<bool>()).prop_map(|(user, active)| Command::SetActive { user, active }),
        1 => (user(), any::<bool>()).prop_map(|(user, active)| Command::GiveFixed { user, active }),
        1 => user().prop_map(|user| Command::TakeFixed { user }),
        3 => prop::collection::vec(user(), 0..3).prop_map(|connected| Command::Tick {
            presence: Presence { connected: connected.into_iter().collect(), ..Presence::default() }
        }),
        1 => (0u32..4).prop_map(|slots| Command::Configure(settings(slots))),
    ]
}

fn settings(shared_slots: u32) -> Settings {
    Settings {
        inactivity_s: 20,
        warning_lead_s: 5,
        sweep_interval_s: 5,
        lock_s: 7,
        queue_timer_s: 15,
        auto_relogin: true,
        reclaim_on_request: true,
        ..Settings::new(ProductKind::Jira, 6, shared_slots)
    }
}

/// Runs a random history; returns every event in order.
fn history(commands: &[(Command, u32)]) -> Vec<ProductEvent> {
    let mut state = ProductState::new();
    let mut events = Vec::new();
    let mut now = 1_800_000_000_000i64;
    let first = Command::Configure(settings(2));
    for (command, step_s) in std::iter::once(&(first, 0)).chain(commands) {
        now += i64::from(*step_s) * 1000;
        if let Ok(new) = state.decide(command, Timestamp::from_millis(now)) {
            for e in &new {
                state.apply(e);
            }
            events.extend(new);
        }
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn snapshot_plus_tail_equals_full_replay_at_every_cut_point(
        commands in prop::collection::vec((command(), 0u32..12), 1..120)
    ) {
        let events = history(&commands);
        let full = ProductState::replay(&events);
        let mut prefix = ProductState::new();
        for cut in 0..=events.len() {
            let image = prefix.image();
            let snapshot = Snapshot {
                format_version: FORMAT_VERSION,
                stream: "product/p".into(),
                sequence: cut as u64,
                record_hash: [7; 32],
                taken_at: Timestamp::from_millis(0),
                image: image.clone(),
            };
            let decoded = decode(&encode(&snapshot)).expect("a fresh snapshot decodes");
            prop_assert_eq!(&decoded, &snapshot);
            let mut restored = ProductState::from_image(&decoded.image);
            prop_assert_eq!(restored.image(), image, "image round trip at cut {}", cut);
            for e in &events[cut..] {
                restored.apply(e);
            }
            prop_assert_eq!(restored.image(), full.image(), "tail replay from cut {}", cut);
            // Decisions after a restore are the decisions of the original.
            let probe = Command::request("ann");
            let at = Timestamp::from_millis(1_900_000_000_000);
            prop_assert_eq!(restored.decide(&probe, at), full.decide(&probe, at));
            if cut < events.len() {
                prefix.apply(&events[cut]);
            }
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes);
    }
}

fn journal_with_events(
    dir: &std::path::Path,
    n: usize,
) -> (Journal, StreamId, Vec<StreamTip>, Vec<ProductState>) {
    let journal = Journal::open(
        dir,
        JournalConfig {
            durability: Durability::Process,
            ..JournalConfig::default()
        },
    )
    .expect("open");
    let stream = StreamId::product("p").expect("valid");
    let mut tip = StreamTip::default();
    let mut state = ProductState::new();
    let mut tips = vec![tip];
    let mut states = vec![state.clone()];
    let mut now = 1_800_000_000_000i64;
    let mut commands = vec![Command::Configure(settings(2))];
    for i in 0..n {
        let u = USERS[i % USERS.len()].to_string();
        commands.push(Command::Enrol {
            user: u.clone(),
            active: true,
        });
        commands.push(Command::request(u));
    }
    for c in commands {
        now += 1000;
        let events = state
            .decide(&c, Timestamp::from_millis(now))
            .expect("accepted");
        if events.is_empty() {
            continue;
        }
        journal
            .append(
                &stream,
                &mut tip,
                Uuid::nil(),
                Timestamp::from_millis(now),
                &events,
            )
            .expect("append");
        for e in &events {
            state.apply(e);
        }
        tips.push(tip);
        states.push(state.clone());
    }
    journal.sync().expect("sync");
    (journal, stream, tips, states)
}

#[test]
fn the_latest_valid_snapshot_wins_and_damaged_or_foreign_ones_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, stream, tips, states) = journal_with_events(dir.path(), 5);
    let store = SnapshotStore::open(&journal).expect("store");
    let now = Timestamp::from_millis(0);
    for i in [2, 4, 6] {
        store
            .save(&stream, tips[i], now, states[i].image())
            .expect("save");
    }
    // Only the latest two are kept.
    assert_eq!(store.verify(&journal).expect("all valid"), 2);
    let (latest, skipped) = store.latest_valid(&stream, &journal);
    let latest = latest.expect("a snapshot");
    assert_eq!(latest.tip(), tips[6]);
    assert!(skipped.is_empty());

    // Damage the latest: recovery falls back to the one before, and says why.
    let raw = journal.snapshot_store().expect("store");
    let sequence = tips[6].next_sequence - 1;
    let (_, mut bytes) = raw
        .newest_first(&stream, sequence)
        .next()
        .expect("present")
        .expect("readable");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    raw.put(&stream, sequence, bytes).expect("insert");
    let (latest, skipped) = store.latest_valid(&stream, &journal);
    assert_eq!(latest.expect("older snapshot").tip(), tips[4]);
    assert_eq!(skipped.len(), 1);
    assert!(
        matches!(&skipped[0], SnapshotError::Corrupt { what, .. } if what.contains("checksum"))
    );
    assert!(
        store.verify(&journal).is_err(),
        "verify reports the damaged snapshot"
    );

    // A snapshot that does not match this journal's record is never trusted.
    store
        .save(&stream, tips[4], now, states[4].image())
        .expect("save");
    let foreign = slotpool_journal::StreamTip {
        last_hash: [9; 32],
        ..tips[5]
    };
    store
        .save(&stream, foreign, now, states[5].image())
        .expect("save");
    let (latest, skipped) = store.latest_valid(&stream, &journal);
    assert_eq!(latest.expect("older snapshot").tip(), tips[4]);
    assert!(skipped
        .iter()
        .any(|e| e.to_string().contains("does not match the journal")));
}

#[test]
fn a_snapshot_ahead_of_the_journal_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, stream, tips, states) = journal_with_events(dir.path(), 2);
    let store = SnapshotStore::open(&journal).expect("store");
    let last = *tips.last().expect("tips");
    let ahead = StreamTip {
        next_sequence: last.next_sequence + 5,
        ..last
    };
    store
        .save(
            &stream,
            ahead,
            Timestamp::from_millis(0),
            states.last().expect("state").image(),
        )
        .expect("save");
    let (latest, skipped) = store.latest_valid(&stream, &journal);
    assert!(latest.is_none());
    assert!(skipped[0]
        .to_string()
        .contains("covers events the journal does not have"));
}
