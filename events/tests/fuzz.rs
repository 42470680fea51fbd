//! Fuzzing with a fixed budget (a fixed case count and seed, so `make test` is
//! repeatable): arbitrary bytes into the record decoder never panic and always give a
//! clear error, whether they are random, random with a valid checksum (so the bincode
//! decoder itself is fed garbage), or a real record torn or altered.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sha2::{Digest, Sha256};
use slotpool_events::envelope::{self, DecodeError, HASH_LEN};
use slotpool_events::{DirectoryEvent, ProductEvent};

/// Cases per property: enough to walk every decoder branch, small enough for `make test`.
const CASES: u32 = 2_000;

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[42; 32]),
    )
}

/// Every golden record (one real record of every event variant).
fn golden_records() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("golden dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("read fixture");
        let hex: String = text.split_whitespace().collect();
        out.push((name, hex::decode(hex).expect("fixture is hex")));
    }
    assert!(out.len() > 10, "golden fixtures found: {}", out.len());
    out.sort();
    out
}

/// Decodes as both event kinds; the error (if any) must render as a non-empty message.
fn decode_both(bytes: &[u8]) -> (bool, bool) {
    let p = envelope::decode::<ProductEvent>(bytes);
    let d = envelope::decode::<DirectoryEvent>(bytes);
    for e in [p.as_ref().err(), d.as_ref().err()].into_iter().flatten() {
        assert!(!e.to_string().is_empty());
    }
    (p.is_ok(), d.is_ok())
}

fn with_checksum(body: &[u8]) -> Vec<u8> {
    let mut v = body.to_vec();
    v.extend_from_slice(&Sha256::digest(body));
    v
}

#[test]
fn arbitrary_bytes_never_panic_the_record_decoder() {
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..512), |bytes| {
            decode_both(&bytes);
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_bytes_with_a_valid_checksum_never_panic_the_decoder() {
    // Past the checksum, bincode reads lengths and tags from the bytes: huge lengths,
    // unknown variants and short input must all be errors.
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..256), |body| {
            let record = with_checksum(&body);
            let p = envelope::decode::<ProductEvent>(&record);
            if let Err(e) = &p {
                prop_assert!(
                    matches!(e, DecodeError::Malformed(_) | DecodeError::Version(_)),
                    "a record with a valid checksum fails only as malformed: {e:?}"
                );
            }
            decode_both(&record);
            Ok(())
        })
        .unwrap();
}

#[test]
fn torn_or_altered_real_records_are_refused_with_a_clear_error() {
    let records = golden_records();
    let strategy = (
        0..records.len(),
        any::<prop::sample::Index>(),
        1u8..=255,
        any::<bool>(),
    );
    runner()
        .run(&strategy, |(which, at, mask, truncate)| {
            let (name, record) = &records[which];
            let product = name.starts_with("product");
            let mut bytes = record.clone();
            if truncate {
                bytes.truncate(at.index(record.len()));
            } else {
                let i = at.index(record.len());
                bytes[i] ^= mask;
            }
            let result = if product {
                envelope::decode::<ProductEvent>(&bytes).map(|_| ())
            } else {
                envelope::decode::<DirectoryEvent>(&bytes).map(|_| ())
            };
            match result {
                Ok(()) => prop_assert!(false, "{name}: a damaged record decoded"),
                Err(DecodeError::Truncated(n)) => prop_assert!(n < HASH_LEN),
                Err(DecodeError::Checksum) => {}
                Err(e) => prop_assert!(false, "{name}: unexpected error {e:?}"),
            }
            Ok(())
        })
        .unwrap();
    // And the intact records still decode, so the test above is not vacuous.
    for (name, record) in &records {
        let ok = if name.starts_with("product") {
            envelope::decode::<ProductEvent>(record).is_ok()
        } else {
            envelope::decode::<DirectoryEvent>(record).is_ok()
        };
        assert!(ok, "{name} decodes");
    }
}
