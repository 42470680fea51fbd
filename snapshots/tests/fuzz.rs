//! Fuzzing the snapshot decoder with a fixed budget (fixed case count and seed): random
//! bytes, random bytes with a valid checksum (garbage for bincode itself), and real
//! snapshots torn or altered never panic and always give a clear error.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sha2::{Digest, Sha256};
use slotpool_events::{Command, ProductKind, ProductState, Settings, Timestamp};
use slotpool_snapshots::{decode, encode, Snapshot, FORMAT_VERSION};

const CASES: u32 = 2_000;

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    )
}

/// A real snapshot of a small product with members, holders and a queue.
fn real_snapshot() -> Vec<u8> {
    let mut state = ProductState::new();
    let now = Timestamp::from_millis(1_700_000_000_000);
    let mut run = |cmd: Command| {
        let events = state.decide(&cmd, now).expect("command accepted");
        for e in &events {
            state.apply(e);
        }
    };
    run(Command::Configure(Settings::new(ProductKind::Jira, 10, 2)));
    for u in ["ann", "bob", "cyd"] {
        run(Command::Enrol {
            user: u.into(),
            active: true,
        });
        run(Command::request(u));
    }
    encode(&Snapshot {
        format_version: FORMAT_VERSION,
        stream: "product/p".into(),
        sequence: 9,
        record_hash: [3; 32],
        taken_at: now,
        image: state.image(),
    })
}

#[test]
fn arbitrary_bytes_never_panic_the_snapshot_decoder() {
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..512), |bytes| {
            if let Err(e) = decode(&bytes) {
                prop_assert!(!e.is_empty());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_bytes_with_a_valid_checksum_never_panic_the_snapshot_decoder() {
    runner()
        .run(
            &proptest::collection::vec(any::<u8>(), 0..512),
            |mut body| {
                let hash = Sha256::digest(&body);
                body.extend_from_slice(&hash);
                if let Err(e) = decode(&body) {
                    prop_assert!(!e.is_empty());
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn torn_or_altered_real_snapshots_are_refused() {
    let snapshot = real_snapshot();
    assert!(decode(&snapshot).is_ok(), "the intact snapshot decodes");
    let strategy = (any::<prop::sample::Index>(), 1u8..=255, any::<bool>());
    runner()
        .run(&strategy, |(at, mask, truncate)| {
            let mut bytes = snapshot.clone();
            let i = at.index(bytes.len());
            if truncate {
                bytes.truncate(i);
            } else {
                bytes[i] ^= mask;
            }
            match decode(&bytes) {
                Ok(_) => prop_assert!(false, "a damaged snapshot decoded"),
                Err(e) => prop_assert!(
                    e.contains("checksum") || e.contains("truncated"),
                    "unclear error {e:?}"
                ),
            }
            Ok(())
        })
        .unwrap();
}
