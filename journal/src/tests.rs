//! The journal's own tests: appends, replay, damage, the write-ahead log, compaction.

use crate::chunk::chunk_key;
use crate::compaction::compact_stream;
use crate::files::open_sled;
use crate::keys::{record_key, SEPARATOR};
use crate::*;
use slotpool_events::{envelope, ProductEvent, StreamId, Timestamp};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn open(dir: &Path, on_flush: Option<FlushObserver>) -> Journal {
    Journal::open(
        dir,
        JournalConfig {
            on_flush,
            ..JournalConfig::default()
        },
    )
    .expect("open")
}

fn enrol(user: &str) -> ProductEvent {
    ProductEvent::MemberEnrolled { user: user.into() }
}

fn stream() -> StreamId {
    StreamId::product("jira").expect("valid id")
}

#[test]
fn appends_replay_in_order_and_continue_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tip = StreamTip::default();
    {
        let j = open(dir.path(), None);
        j.append(
            &stream(),
            &mut tip,
            Uuid::nil(),
            Timestamp(1),
            &[enrol("a"), enrol("b")],
        )
        .expect("append");
        j.shutdown().expect("shutdown");
    }
    let j = open(dir.path(), None);
    let mut seen = Vec::new();
    let mut reread = j
        .replay::<ProductEvent>(&stream(), |e| seen.push((e.sequence, e.event)))
        .expect("replay");
    assert_eq!(reread, tip);
    assert_eq!(seen, vec![(1, enrol("a")), (2, enrol("b"))]);
    j.append(
        &stream(),
        &mut reread,
        Uuid::nil(),
        Timestamp(2),
        &[enrol("c")],
    )
    .expect("append");
    j.sync().expect("sync");
    assert_eq!(j.streams().expect("streams"), vec![stream()]);
    assert_eq!(j.verify().expect("verify")[0].records, 3);
}

/// The watermark is written at most every [`WATERMARK_EVERY`], but it still catches
/// up once appends pause, and it is complete when the journal closes.
#[test]
fn the_watermark_catches_up_when_appends_pause_and_at_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let named = |dir: &Path| {
        watermark::load(dir)
            .expect("readable")
            .and_then(|t| t.get(&stream().name()).copied())
    };
    let mut tip = StreamTip::default();
    let j = open(dir.path(), None);
    let burst = |j: &Journal, tip: &mut StreamTip, n: usize| {
        for i in 0..n {
            let ticket = j
                .append(
                    &stream(),
                    tip,
                    Uuid::nil(),
                    Timestamp(1),
                    &[enrol(&format!("u{i}"))],
                )
                .expect("append");
            j.when_durable(ticket, Box::new(|r| r.expect("durable")));
        }
        j.sync().expect("sync");
    };
    burst(&j, &mut tip, 500);
    // A pause: the committer writes what it held back (poll, no timing assumption
    // beyond "eventually").
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while named(dir.path()) != Some(500) {
        assert!(
            Instant::now() < deadline,
            "watermark stuck at {:?}",
            named(dir.path())
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    burst(&j, &mut tip, 300);
    j.shutdown().expect("shutdown");
    assert_eq!(named(dir.path()), Some(800));
}

/// A torn `conf` is damage, named as such, not the "unsupported version" sled would
/// otherwise make of it.
#[test]
fn a_torn_sled_settings_file_is_reported_as_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = open(dir.path(), None);
    j.shutdown().expect("shutdown");
    drop(j);
    let conf = dir.path().join("conf");
    let intact = std::fs::read(&conf).expect("sled wrote its conf");
    let mut flipped = intact.clone();
    flipped[2] ^= 0x20;
    for damaged in [intact[..intact.len() - 2].to_vec(), flipped] {
        std::fs::write(&conf, &damaged).expect("write");
        match Journal::open(dir.path(), JournalConfig::default()) {
            Err(JournalError::Damaged { message, .. }) => {
                assert!(message.contains("checksum"), "{message}")
            }
            Err(other) => panic!("not reported as damage: {other}"),
            Ok(_) => panic!("opened a journal with a torn conf"),
        }
    }
    std::fs::write(&conf, &intact).expect("write");
    let j = Journal::open(dir.path(), JournalConfig::default()).expect("intact again");
    j.shutdown().expect("shutdown");
}

#[test]
fn a_flipped_byte_or_a_missing_record_is_found_with_stream_and_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = open(dir.path(), None);
    let mut tip = StreamTip::default();
    let events: Vec<_> = (0..5).map(|i| enrol(&format!("u{i}"))).collect();
    j.append(&stream(), &mut tip, Uuid::nil(), Timestamp(1), &events)
        .expect("append");
    let key = record_key("product/jira", 3);
    let original = j.inner.tree.get(&key).expect("get").expect("present");
    let mut flipped = original.to_vec();
    flipped[4] ^= 0x40;
    j.inner.tree.insert(&key, flipped).expect("insert");
    let err = j.verify().expect_err("damage must be found");
    assert!(
        matches!(&err, JournalError::Corrupt { stream, sequence: 3, .. } if stream == "product/jira"),
        "{err}"
    );
    let err = j
        .replay::<ProductEvent>(&stream(), |_| {})
        .expect_err("replay refuses");
    assert!(matches!(err, JournalError::Corrupt { sequence: 3, .. }));

    j.inner.tree.insert(&key, original).expect("restore");
    assert!(j.verify().is_ok());
    j.inner.tree.remove(&key).expect("remove");
    let err = j.verify().expect_err("a gap must be found");
    assert!(err.to_string().contains("records are missing"), "{err}");
}

fn open_fast(dir: &Path) -> Journal {
    Journal::open(
        dir,
        JournalConfig {
            durability: Durability::Process,
            ..JournalConfig::default()
        },
    )
    .expect("open")
}

/// Appends `n` single-event records to `stream()`, as the product actor does.
fn fill(j: &Journal, tip: &mut StreamTip, n: u64) {
    for i in 0..n {
        let user = format!("u{}", tip.next_sequence);
        j.append(
            &stream(),
            tip,
            Uuid::nil(),
            Timestamp(i as i64),
            &[enrol(&user)],
        )
        .expect("append");
    }
}

fn replayed(j: &Journal, from: StreamTip) -> Vec<(u64, ProductEvent)> {
    let mut seen = Vec::new();
    j.replay_from::<ProductEvent>(&stream(), from, |e| {
        seen.push((e.sequence, e.event));
        true
    })
    .expect("replay");
    seen
}

/// Copies a data directory as a crash would leave it: what its files hold, not what
/// the process keeps in memory (sled writes its buffers only when asked or full).
///
/// The journal's background threads (and sled's) may replace a file between the listing
/// and its copy; a copy that met one is not a state a crash could leave, so it is made
/// again from the start.
fn copy_dir(from: &Path, to: &Path) {
    for _ in 0..100 {
        match try_copy_dir(from, to) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::remove_dir_all(to).expect("remove a partial copy");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("copy {}: {e}", from.display()),
        }
    }
    panic!("{} kept changing while it was copied", from.display());
}

fn try_copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            try_copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Records in sled's own files, read without the journal (and so without its log).
fn records_in_sled_files(dir: &Path) -> usize {
    let db = open_sled(dir, 1 << 20, 512 * 1024).expect("sled opens");
    let tree = db.open_tree("journal").expect("tree");
    let mut prefix = stream().name().into_bytes();
    prefix.push(SEPARATOR);
    tree.scan_prefix(prefix).count()
}

/// Waits until the checkpointer has prepared the next segment: no checkpoint is under
/// way, so a copy of the directory is a state a crash could leave.
fn until_quiet(j: &Journal) {
    while j.inner.checkpointer.spare_is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn durable_appends_survive_a_crash_through_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = open(dir.path(), None);
    let mut tip = StreamTip::default();
    j.append(
        &stream(),
        &mut tip,
        Uuid::nil(),
        Timestamp(0),
        &[enrol("a"), enrol("b")],
    )
    .expect("append");
    fill(&j, &mut tip, 200);
    j.sync().expect("sync");
    until_quiet(&j);
    let crashed = tempfile::tempdir().expect("tempdir");
    copy_dir(dir.path(), crashed.path());
    // The point of the test: sled's files alone do not have them.
    assert!(records_in_sled_files(crashed.path()) < 202);
    // A crash within WATERMARK_EVERY of the last flush leaves no watermark (or an old
    // one): the log's replay brings it up to date.
    let _ = std::fs::remove_file(crashed.path().join(watermark::FILE));

    let k = open(crashed.path(), None);
    let tips = watermark::load(crashed.path()).expect("readable");
    assert_eq!(tips.and_then(|t| t.get("product/jira").copied()), Some(202));
    let seen = replayed(&k, StreamTip::default());
    assert_eq!(seen.len(), 202);
    assert_eq!(seen[..2], [(1, enrol("a")), (2, enrol("b"))]);
    assert_eq!(seen[201], (202, enrol("u202")));
    assert_eq!(k.streams().expect("streams"), vec![stream()]);
    assert_eq!(k.verify().expect("verify")[0].records, 202);
    // Opening made sled durable and started a new log: closing removes it.
    k.shutdown().expect("shutdown");
    drop(k);
    assert_eq!(records_in_sled_files(crashed.path()), 202);
    assert!(wal::segments(&crashed.path().join(wal::DIR))
        .expect("list")
        .is_empty());
    j.shutdown().expect("shutdown");
}

/// The log's segment files: generation and contents.
fn segment_files(log_dir: &Path) -> Vec<(u64, Vec<u8>)> {
    wal::segments(log_dir)
        .expect("list")
        .into_iter()
        .map(|(generation, path)| (generation, std::fs::read(path).expect("read")))
        .collect()
}

#[test]
fn synced_segments_are_zero_filled_and_a_crash_leaves_files_the_next_open_reuses() {
    const SEGMENT: u64 = 64 * 1024;
    let config = JournalConfig {
        log_segment_bytes: SEGMENT,
        ..JournalConfig::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let j = Journal::open(dir.path(), config.clone()).expect("open");
    until_quiet(&j);
    let log_dir = dir.path().join(wal::DIR);
    // The log and the spare, both written with zeros to the segment's size.
    let files = segment_files(&log_dir);
    assert_eq!(files.len(), 2);
    for (_, bytes) in &files {
        assert_eq!(bytes.len() as u64, SEGMENT);
        assert!(bytes.iter().all(|&b| b == 0));
    }
    let mut tip = StreamTip::default();
    fill(&j, &mut tip, 100);
    j.sync().expect("sync");
    until_quiet(&j);
    let crashed = tempfile::tempdir().expect("tempdir");
    copy_dir(dir.path(), crashed.path());
    let crashed_log = crashed.path().join(wal::DIR);
    let before = segment_files(&crashed_log);

    let k = Journal::open(crashed.path(), config).expect("reopen");
    until_quiet(&k);
    assert_eq!(k.verify().expect("verify")[0].records, 100);
    // Nothing written since: the new log and spare are the old files, renamed.
    let after = segment_files(&crashed_log);
    let newest_before = before.iter().map(|(g, _)| *g).max().expect("segments");
    assert!(after.iter().all(|(g, _)| *g > newest_before));
    let contents = |files: Vec<(u64, Vec<u8>)>| {
        let mut c: Vec<Vec<u8>> = files.into_iter().map(|(_, bytes)| bytes).collect();
        c.sort();
        c
    };
    let old_contents = contents(before);
    assert!(old_contents.iter().any(|c| c.iter().any(|&b| b != 0)));
    assert!(
        contents(after) == old_contents,
        "the old segments were not reused"
    );
    k.shutdown().expect("shutdown");
    j.shutdown().expect("shutdown");

    // A log that is never synced gains nothing from allocated blocks.
    let unsynced = tempfile::tempdir().expect("tempdir");
    let p = open_fast(unsynced.path());
    until_quiet(&p);
    let files = segment_files(&unsynced.path().join(wal::DIR));
    assert!(files.iter().all(|(_, bytes)| bytes.is_empty()));
    p.shutdown().expect("shutdown");
}

#[test]
fn full_segments_are_checkpointed_and_recycled_without_losing_a_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = Journal::open(
        dir.path(),
        JournalConfig {
            log_segment_bytes: 4096,
            ..JournalConfig::default()
        },
    )
    .expect("open");
    let log_dir = dir.path().join(wal::DIR);
    let mut tip = StreamTip::default();
    let mut most_files = 0;
    for _ in 0..60 {
        // A committer that finds no spare keeps writing to its segment: waiting for
        // the checkpointer keeps the count of segments below independent of timing.
        until_quiet(&j);
        fill(&j, &mut tip, 20);
        j.sync().expect("sync");
        most_files = most_files.max(wal::segments(&log_dir).expect("list").len());
    }
    until_quiet(&j);
    let segments = wal::segments(&log_dir).expect("list");
    // Written: about 1,200 records of ~150 bytes, in 4 KiB segments.
    assert!(segments.last().expect("a segment").0 > 20, "{segments:?}");
    assert!(
        most_files <= 3,
        "segments are recycled: {most_files} at once"
    );
    let crashed = tempfile::tempdir().expect("tempdir");
    copy_dir(dir.path(), crashed.path());
    let k = open(crashed.path(), None);
    assert_eq!(k.verify().expect("verify")[0].records, 1200);
    j.shutdown().expect("shutdown");
    assert!(wal::segments(&log_dir).expect("list").is_empty());
}

#[test]
fn a_log_that_skips_records_sled_lacks_is_damage_named_by_stream_and_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join(wal::DIR);
    std::fs::create_dir_all(&log_dir).expect("mkdir");
    let mut segment = wal::Segment::prepare(&log_dir, 1, None, 0).expect("segment");
    let key = record_key(&stream().name(), 3);
    let mut frame = Vec::new();
    wal::push_record(&mut frame, std::iter::once((&key[..], &b"a record"[..])));
    segment.write_frame(&mut frame, true).expect("write");
    drop(segment);
    match Journal::open(dir.path(), JournalConfig::default()).err() {
        Some(JournalError::Damaged { message, .. }) => {
            assert!(
                message.contains("stream product/jira is missing sequence 1"),
                "{message}"
            );
        }
        other => panic!("a gap must be damage, got {other:?}"),
    }
    // Nothing was removed: the log is still there for an operator.
    assert_eq!(wal::segments(&log_dir).expect("list").len(), 1);
}

#[test]
fn compaction_moves_old_records_into_chunks_without_changing_what_replay_sees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = open_fast(dir.path());
    j.inner.tail.hold_nothing();
    let mut tip = StreamTip::default();
    fill(&j, &mut tip, 5_000);
    // Ask the background compactor, as the nightly job does, and let it finish.
    j.compact_in_background(&stream());
    j.inner.compactor.stop();
    // 5,000 records: the compactor packed 1..=3072 and left the newest 1,928 loose.
    assert_eq!(
        j.inner
            .tree
            .get(record_key("product/jira", 1))
            .expect("get"),
        None
    );
    let before: Vec<_> = (1..=5_000u64).collect();
    let hashes: Vec<_> = [1u64, 1_000, 1_024, 1_025, 3_072, 3_073, 5_000]
        .iter()
        .map(|s| {
            j.record_hash(&stream(), *s)
                .expect("hash")
                .expect("present")
        })
        .collect();
    // Explicit compaction takes what is left beyond the loose tail: nothing here.
    assert_eq!(j.compact(&stream()).expect("compact"), 0);
    let seen = replayed(&j, StreamTip::default());
    assert_eq!(seen.iter().map(|(s, _)| *s).collect::<Vec<_>>(), before);
    assert_eq!(seen[4_999].1, enrol("u5000"));
    let mut raw = Vec::new();
    j.raw_records(&stream(), |sequence, record| {
        raw.push((
            sequence,
            record[record.len() - envelope::HASH_LEN..].to_vec(),
        ));
        true
    })
    .expect("raw records");
    assert_eq!(raw.iter().map(|(s, _)| *s).collect::<Vec<_>>(), before);
    assert_eq!(raw[1_023].1, hashes[2].to_vec(), "record 1024 as stored");
    assert_eq!(j.verify().expect("verify")[0].records, 5_000);

    // Replay from the middle of a chunk continues the chain exactly there.
    let mut mid = StreamTip::default();
    j.replay_from::<ProductEvent>(&stream(), StreamTip::default(), |e| {
        mid = StreamTip {
            next_sequence: e.sequence + 1,
            last_hash: [0; 32],
        };
        e.sequence < 1_500
    })
    .expect("partial");
    mid.last_hash = j
        .record_hash(&stream(), 1_500)
        .expect("hash")
        .expect("present");
    let tail = replayed(&j, mid);
    assert_eq!(tail.first().map(|(s, _)| *s), Some(1_501));
    assert_eq!(tail.len(), 3_500);

    // Hashes do not depend on where a record lives; more appends continue the chain.
    assert_eq!(j.record_hash(&stream(), 5_001).expect("hash"), None);
    fill(&j, &mut tip, 10);
    let again: Vec<_> = [1u64, 1_000, 1_024, 1_025, 3_072, 3_073, 5_000]
        .iter()
        .map(|s| {
            j.record_hash(&stream(), *s)
                .expect("hash")
                .expect("present")
        })
        .collect();
    assert_eq!(hashes, again);
    j.shutdown().expect("shutdown");
    drop(j);
    let j = open_fast(dir.path());
    assert_eq!(j.verify().expect("verify")[0].records, 5_010);
}

#[test]
fn damage_inside_a_chunk_is_named_by_stream_and_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = open_fast(dir.path());
    j.inner.tail.hold_nothing();
    let mut tip = StreamTip::default();
    fill(&j, &mut tip, 2_100);
    j.compact(&stream()).expect("compact");
    let key = chunk_key("product/jira", 1);
    let chunk = j.inner.tree.get(&key).expect("get").expect("a chunk");
    // Flip a byte inside record 3: header (5) + two length-prefixed records + 4 + 2.
    let mut offset = 5;
    for _ in 0..2 {
        let len = u32::from_le_bytes(chunk[offset..offset + 4].try_into().expect("4"));
        offset += 4 + len as usize;
    }
    let mut damaged = chunk.to_vec();
    damaged[offset + 6] ^= 0x10;
    j.inner.tree.insert(&key, damaged).expect("insert");
    let err = j.verify().expect_err("damage must be found");
    assert!(
        matches!(&err, JournalError::Corrupt { stream, sequence: 3, .. } if stream == "product/jira"),
        "{err}"
    );
    // A chunk cut short names the first record it lost.
    j.inner
        .tree
        .insert(&key, &chunk[..offset + 2])
        .expect("insert");
    let err = j.verify().expect_err("a torn chunk must be found");
    assert!(
        matches!(&err, JournalError::Corrupt { sequence: 3, what, .. } if what.contains("cut short")),
        "{err}"
    );
    // A missing chunk is a gap like any other.
    j.inner.tree.remove(&key).expect("remove");
    let err = j.verify().expect_err("a gap must be found");
    assert!(err.to_string().contains("records are missing"), "{err}");
    // Compaction never packs damage away: a bad loose record stops it there.
    let bad = record_key("product/jira", 1_030);
    let mut bytes = j
        .inner
        .tree
        .get(&bad)
        .expect("get")
        .expect("present")
        .to_vec();
    bytes[3] ^= 0x01;
    j.inner.tree.insert(&bad, bytes).expect("insert");
    assert_eq!(
        compact_stream(&j.inner.tree, &j.inner.compactor.moving, "product/jira").expect("compact"),
        0
    );
    assert!(j.inner.tree.get(&bad).expect("get").is_some());
}

#[test]
fn a_reader_sees_every_record_once_while_the_compactor_moves_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = open_fast(dir.path());
    let mut tip = StreamTip::default();
    fill(&j, &mut tip, 2_047);
    let writer = {
        let j = j.clone();
        std::thread::spawn(move || {
            for _ in 0..6 {
                fill(&j, &mut tip, 1_000);
                j.compact_in_background(&stream());
            }
        })
    };
    let mut rounds = 0;
    while !writer.is_finished() || rounds == 0 {
        let seen = replayed(&j, StreamTip::default());
        let in_order = seen
            .iter()
            .enumerate()
            .all(|(i, (s, _))| *s == i as u64 + 1);
        assert!(in_order, "a record was skipped or seen twice");
        assert!(seen.len() >= 2_047);
        rounds += 1;
    }
    writer.join().expect("writer");
    assert_eq!(replayed(&j, StreamTip::default()).len(), 8_047);
    j.verify().expect("verify");
}

#[test]
fn concurrent_appends_share_flushes_and_all_become_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flushes = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&flushes);
    let j = open(
        dir.path(),
        Some(Arc::new(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
        })),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let j = j.clone();
            std::thread::spawn(move || {
                let s = StreamId::product(&format!("p{t}")).expect("valid");
                let mut tip = StreamTip::default();
                for i in 0..50 {
                    let ticket = j
                        .append(&s, &mut tip, Uuid::nil(), Timestamp(i), &[enrol("x")])
                        .expect("append");
                    let (tx, rx) = std::sync::mpsc::channel();
                    j.when_durable(ticket, Box::new(move |r| tx.send(r).expect("send")));
                    rx.recv().expect("told").expect("durable");
                    assert!(j.durable_ticket() >= ticket);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(j.latest_ticket(), 400);
    let n = flushes.load(Ordering::SeqCst);
    assert!(n < 400, "expected shared flushes, got {n} for 400 appends");
    assert_eq!(j.verify().expect("verify").len(), 8);
}

/// Appends wait in the tail (crate::tail), not in sled; any read finds them all, in
/// order, and afterwards sled holds them packed in chunks, not loose.
#[test]
fn appended_records_wait_in_the_tail_and_every_read_finds_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = open_fast(dir.path());
    let mut tip = StreamTip::default();
    fill(&j, &mut tip, 3_000);
    assert!(!j.inner.tail.is_empty());
    // The first record of a stream goes into sled with its index entry; the rest wait.
    assert!(j
        .inner
        .tree
        .get(record_key("product/jira", 1))
        .expect("get")
        .is_some());
    assert!(j
        .inner
        .tree
        .get(record_key("product/jira", 2))
        .expect("get")
        .is_none());
    // The stream's end is known without moving anything; a read moves everything.
    assert_eq!(j.last_sequence(&stream()).expect("last"), 3_000);
    assert!(!j.inner.tail.is_empty());
    let seen = replayed(&j, StreamTip::default());
    assert!(j.inner.tail.is_empty());
    assert_eq!(seen.len(), 3_000);
    assert!(seen.iter().zip(1..).all(|((s, _), want)| *s == want));
    // 2..=3000 in chunks of at most CHUNK_RECORDS.
    assert_eq!(
        j.layout(&stream()).expect("layout"),
        crate::StreamLayout {
            chunks: 3,
            chunked: 2_999,
            loose: 1,
        }
    );
    // Appends go on after the settle, and a second read sees both parts.
    fill(&j, &mut tip, 10);
    assert_eq!(replayed(&j, StreamTip::default()).len(), 3_010);
    assert_eq!(j.verify().expect("verify")[0].records, 3_010);
}

/// A record that does not continue its stream's run is not held: written into sled as
/// before, after what the tail holds, so that nothing is reordered or lost.
#[test]
fn an_append_that_does_not_continue_the_tail_goes_into_sled_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = open_fast(dir.path());
    let mut tip = StreamTip::default();
    fill(&j, &mut tip, 50);
    // A cut settles first, then drops the tail's last records; appends continue after.
    let mut tip = j.truncate_after(&stream(), 40).expect("truncate");
    fill(&j, &mut tip, 5);
    let seen = replayed(&j, StreamTip::default());
    assert_eq!(seen.len(), 45);
    assert!(seen.iter().zip(1..).all(|((s, _), want)| *s == want));
    assert_eq!(j.verify().expect("verify")[0].records, 45);
}

/// The write-ahead log covers what the tail held when the process died; segments are
/// recycled only after a checkpoint wrote the tail into sled, so small segments that
/// cycle many times lose nothing either.
#[test]
fn a_crash_while_records_wait_in_the_tail_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || JournalConfig {
        durability: Durability::Fsync,
        log_segment_bytes: 64 << 10,
        ..JournalConfig::default()
    };
    let j = Journal::open(dir.path(), config()).expect("open");
    let mut tip = StreamTip::default();
    fill(&j, &mut tip, 4_000);
    j.sync().expect("sync");
    let hashes: Vec<_> = (1..=4_000u64)
        .map(|s| j.record_hash(&stream(), s).expect("hash"))
        .collect();
    fill(&j, &mut tip, 500);
    j.sync().expect("sync");
    // A copy of the files as they are: what sled has not made durable is not in them.
    let crashed = tempfile::tempdir().expect("tempdir");
    copy_dir(dir.path(), crashed.path());
    j.shutdown().expect("shutdown");
    let j = Journal::open(crashed.path(), config()).expect("reopen");
    assert_eq!(j.last_sequence(&stream()).expect("last"), 4_500);
    let again: Vec<_> = (1..=4_000u64)
        .map(|s| j.record_hash(&stream(), s).expect("hash"))
        .collect();
    assert_eq!(hashes, again);
    assert_eq!(j.verify().expect("verify")[0].records, 4_500);
    j.shutdown().expect("shutdown");
}

/// A read that starts inside the tail's run (the connector's, just behind the stream's
/// end) is answered from the tail, checked like any other, without moving it into sled;
/// one that starts before it settles and reads sled.
#[test]
fn a_read_of_the_newest_records_comes_from_the_tail_and_moves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = open_fast(dir.path());
    let mut tip = StreamTip::default();
    fill(&j, &mut tip, 100);
    let all = replayed(&j, StreamTip::default());
    assert!(j.inner.tail.is_empty());
    let at_90 = StreamTip {
        next_sequence: 91,
        last_hash: j
            .record_hash(&stream(), 90)
            .expect("hash")
            .expect("present"),
    };
    let from_tail = tip;
    fill(&j, &mut tip, 20);
    // 101..=120 wait in the tail; a read from 101 takes them from there.
    let newest = replayed(&j, from_tail);
    assert_eq!(newest.len(), 20);
    assert!(newest.iter().zip(101..).all(|((s, _), want)| *s == want));
    assert!(!j.inner.tail.is_empty(), "nothing moved into sled");
    // The end of the stream reads as nothing, and a wrong tip is damage, as from sled.
    assert!(replayed(&j, tip).is_empty());
    let wrong = StreamTip {
        next_sequence: 101,
        last_hash: [9; 32],
    };
    assert!(matches!(
        j.replay_from::<ProductEvent>(&stream(), wrong, |_| true),
        Err(JournalError::Corrupt { sequence: 101, .. })
    ));
    // From before the run: settled, then read from sled.
    let from_sled = replayed(&j, at_90);
    assert_eq!(from_sled.len(), 30);
    assert!(j.inner.tail.is_empty());
    assert_eq!(all[..].len() + 20, replayed(&j, StreamTip::default()).len());
}
