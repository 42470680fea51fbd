//! openraft's own conformance suite for log and state-machine storage, run against
//! [`LogStore`] and [`StateMachine`] on real journals in temporary directories.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use slotpool_cluster::{LogStore, NodeId, StateMachine, TypeConfig};
use slotpool_journal::{Journal, JournalConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = JournalConfig::default();
        let log = Journal::open(&dir.path().join("raft"), config.clone().purged_log())
            .expect("raft journal");
        let copy = Journal::open(dir.path(), config.clone()).expect("journal copy");
        let store = LogStore::open(log).expect("log store");
        let sm = StateMachine::open(dir.path(), config, copy).expect("state machine");
        Ok((dir, store, sm))
    }
}

/// Entries `1..=count` of term 1, each enrolling `per_entry` users into `stream`, chained.
fn enrolments(
    stream: &slotpool_events::StreamId,
    count: u64,
    per_entry: usize,
) -> Vec<openraft::Entry<TypeConfig>> {
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
    use slotpool_cluster::{Proposal, StreamWrite};
    use slotpool_events::{ProductEvent, Timestamp};
    let mut tip = slotpool_journal::StreamTip::default();
    (1..=count)
        .map(|index| {
            let first = tip.next_sequence;
            let events: Vec<ProductEvent> = (0..per_entry)
                .map(|i| ProductEvent::MemberEnrolled {
                    user: format!("u{index}-{i}"),
                })
                .collect();
            let (records, next) = tip.chain(uuid::Uuid::nil(), Timestamp(1), &events);
            tip = next;
            Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
                payload: EntryPayload::Normal(Proposal {
                    writes: vec![StreamWrite {
                        stream: stream.name(),
                        first,
                        records,
                    }],
                }),
            }
        })
        .collect()
}

/// A journal copy in `dir` and the state machine over it.
fn open_copy(dir: &std::path::Path) -> (Journal, StateMachine) {
    let copy = Journal::open(dir, JournalConfig::default()).expect("journal copy");
    let sm =
        StateMachine::open(dir, JournalConfig::default(), copy.clone()).expect("state machine");
    (copy, sm)
}

#[test]
fn log_and_state_machine_pass_openraft_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

/// What was appended, voted and purged is there after the journal is closed and opened
/// again, and a log emptied by a purge beyond its end starts again where the next entry
/// says, across a reopen too.
#[tokio::test(flavor = "multi_thread")]
async fn the_log_and_vote_survive_a_reopen() {
    use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("raft");
    let id = |term, index| LogId::new(CommittedLeaderId::new(term, 1), index);
    let entry = |term, index| Entry::<TypeConfig> {
        log_id: id(term, index),
        payload: EntryPayload::Blank,
    };
    {
        let journal = Journal::open(&path, JournalConfig::default()).expect("open");
        let mut store = LogStore::open(journal.clone()).expect("log store");
        store
            .blocking_append((0..10).map(|i| entry(1, i)))
            .await
            .expect("append");
        store.save_vote(&Vote::new(3, 2)).await.expect("vote");
        store.truncate(id(1, 7)).await.expect("truncate");
        store.purge(id(1, 2)).await.expect("purge");
        journal.shutdown().expect("shutdown");
    }
    let journal = Journal::open(&path, JournalConfig::default()).expect("reopen");
    let mut store = LogStore::open(journal.clone()).expect("log store");
    let state = store.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(id(1, 2)));
    assert_eq!(state.last_log_id, Some(id(1, 6)));
    assert_eq!(
        store.read_vote().await.expect("vote"),
        Some(Vote::new(3, 2))
    );
    let entries = store.try_get_log_entries(0..20).await.expect("read");
    let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, vec![3, 4, 5, 6]);
    // A snapshot covering up to entry 40: the log is emptied and starts again at 41.
    store.purge(id(2, 40)).await.expect("purge beyond the end");
    store
        .blocking_append((41..44).map(|i| entry(2, i)))
        .await
        .expect("append after the gap");
    journal.shutdown().expect("shutdown");
    drop((store, journal));
    let journal = Journal::open(&path, JournalConfig::default()).expect("reopen");
    let mut store = LogStore::open(journal).expect("log store");
    let state = store.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(id(2, 40)));
    assert_eq!(state.last_log_id, Some(id(2, 43)));
    let entries = store.try_get_log_entries(41..=43).await.expect("read");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].log_id, id(2, 41));
}

/// A committed write over records of the copy that it does not repeat (proposed by a
/// leader from a state the cluster had moved past) is refused, and the entry's outcome
/// says so, for the proposer to give up the lead; the copy keeps its one history.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_would_replace_records_is_refused_in_the_entry_outcome() {
    use openraft::storage::RaftStateMachine;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
    use slotpool_cluster::{Proposal, StreamWrite};
    use slotpool_events::{ProductEvent, StreamId, Timestamp};
    use slotpool_journal::StreamTip;

    let records = |from: StreamTip, users: &[&str]| -> Vec<Vec<u8>> {
        let events: Vec<ProductEvent> = users
            .iter()
            .map(|u| ProductEvent::MemberEnrolled { user: (*u).into() })
            .collect();
        from.chain(uuid::Uuid::nil(), Timestamp(1), &events).0
    };
    let entry = |index: u64, first: u64, records: Vec<Vec<u8>>| Entry::<TypeConfig> {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Proposal {
            writes: vec![StreamWrite {
                stream: "product/jira".into(),
                first,
                records,
            }],
        }),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = Journal::open(dir.path(), JournalConfig::default()).expect("journal copy");
    let mut sm = StateMachine::open(dir.path(), JournalConfig::default(), copy.clone())
        .expect("state machine");
    let refusals = sm.refusals();
    let history = records(StreamTip::default(), &["a", "b", "c"]);
    let stale = records(StreamTip::default(), &["x", "y"]);
    let outcomes = sm
        .apply([entry(1, 1, history.clone()), entry(2, 1, stale)])
        .await
        .expect("apply");
    assert!(outcomes[0].refused.is_empty(), "{outcomes:?}");
    assert_eq!(outcomes[1].refused.len(), 1, "{outcomes:?}");
    assert_eq!(refusals.load(std::sync::atomic::Ordering::Relaxed), 1);
    // Applying the first entry again (a restart before the copy flushed) is no refusal.
    let again = sm.apply([entry(3, 1, history)]).await.expect("apply");
    assert!(again[0].refused.is_empty(), "{again:?}");
    assert_eq!(refusals.load(std::sync::atomic::Ordering::Relaxed), 1);
    let stream = StreamId::product("jira").expect("valid id");
    assert_eq!(copy.last_sequence(&stream).expect("last"), 3);
    copy.verify().expect("one intact chain");
    copy.shutdown().expect("shutdown");
}

/// A snapshot is exported while the state machine goes on applying (the export of a
/// large copy takes seconds, and the leader's writes must not wait for it): entries
/// applied after the builder was taken may be in it. A member that installs it and then
/// applies the entries after its last log id again ends with the leader's copy, record
/// for record, with nothing refused, and says it has applied what the leader has.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_built_while_applies_go_on_installs_and_catches_up_to_the_same_copy() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    use openraft::{CommittedLeaderId, LogId};
    use slotpool_events::{ProductEvent, StreamId};

    let jira = StreamId::product("jira").expect("valid id");
    let entries = enrolments(&jira, 8, 3);
    let leader_dir = tempfile::tempdir().expect("temp dir");
    let (leader_copy, mut leader) = open_copy(leader_dir.path());
    leader.apply(entries[..5].to_vec()).await.expect("apply");
    let mut builder = leader.get_snapshot_builder().await;
    // Applies go on before the export has run: the builder holds no lock on them.
    leader.apply(entries[5..].to_vec()).await.expect("apply");
    let snapshot = builder.build_snapshot().await.expect("build");
    let last = |i: u64| Some(LogId::new(CommittedLeaderId::new(1, 1), i));
    assert_eq!(snapshot.meta.last_log_id, last(5));
    let kept = leader
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("kept");
    assert_eq!(kept.meta.snapshot_id, snapshot.meta.snapshot_id);

    let member_dir = tempfile::tempdir().expect("temp dir");
    let (_, mut member) = open_copy(member_dir.path());
    member
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
    assert_eq!(member.applied_state().await.expect("state").0, last(5));
    let member_copy = member.shared_journal().get().expect("the installed copy");
    assert_eq!(
        member_copy.last_sequence(&jira).expect("last"),
        24,
        "exported after entries 6 to 8 were applied: ahead of its last log id"
    );
    let outcomes = member.apply(entries[5..].to_vec()).await.expect("apply");
    assert!(
        outcomes.iter().all(|o| o.refused.is_empty()),
        "{outcomes:?}"
    );
    assert_eq!(member.applied_state().await.expect("state").0, last(8));
    assert_eq!(
        member.refusals().load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    let records = |j: &Journal| {
        let mut out = Vec::new();
        j.replay::<ProductEvent>(&jira, |env| out.push((env.sequence, env.event)))
            .expect("replay");
        out
    };
    assert_eq!(records(&member_copy), records(&leader_copy));
    member_copy.verify().expect("one intact chain");
    let member_kept = member
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("the installed snapshot is kept");
    assert_eq!(member_kept.meta, snapshot.meta);

    // The leader's snapshot is kept in its files: it is there after a restart, whole.
    leader_copy.shutdown().expect("shutdown");
    drop((leader, leader_copy, kept));
    let (_copy, mut leader) = open_copy(leader_dir.path());
    let again = leader
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("kept across a restart");
    assert_eq!(again.meta, snapshot.meta);
    let fresh_dir = tempfile::tempdir().expect("temp dir");
    let (_, mut fresh) = open_copy(fresh_dir.path());
    fresh
        .install_snapshot(&again.meta, again.snapshot)
        .await
        .expect("install after a restart");
    let fresh_copy = fresh.shared_journal().get().expect("the installed copy");
    assert_eq!(fresh_copy.last_sequence(&jira).expect("last"), 24);
}

/// A member stopped while it installed a snapshot from the leader (openraft has purged
/// its log up to the snapshot by then, so the entries before it will never come again)
/// makes its copy again from the snapshot it kept, whether the stop left the old copy
/// in place or a half-imported one (which the journal refuses to open); with no kept
/// snapshot a half-imported copy is refused, with what to do.
#[tokio::test(flavor = "multi_thread")]
async fn an_install_cut_off_is_finished_from_the_kept_snapshot_at_the_next_start() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    use slotpool_cluster::finish_interrupted_install;
    use slotpool_events::StreamId;

    let jira = StreamId::product("jira").expect("valid id");
    let entries = enrolments(&jira, 4, 1);
    let leader_dir = tempfile::tempdir().expect("temp dir");
    let (_leader_copy, mut leader) = open_copy(leader_dir.path());
    leader.apply(entries).await.expect("apply");
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build");
    let kept_files = ["snapshot.meta", "snapshot.data"];

    // Stopped when the snapshot was kept: the member's copy is still its old one (here
    // empty), behind the snapshot.
    let member = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(member.path().join("raft")).expect("raft dir");
    let keep = |to: &std::path::Path| {
        for f in kept_files {
            std::fs::copy(
                leader_dir.path().join("raft").join(f),
                to.join("raft").join(f),
            )
            .expect("kept snapshot");
        }
    };
    keep(member.path());
    assert!(!finish_interrupted_install(member.path()).expect("nothing half-imported"));
    let (_stale, mut sm) = open_copy(member.path());
    assert_eq!(
        sm.applied_state().await.expect("state").0,
        snapshot.meta.last_log_id
    );
    let copy = sm.shared_journal().get().expect("the copy made again");
    assert_eq!(copy.last_sequence(&jira).expect("last"), 4);
    copy.verify().expect("intact");
    copy.shutdown().expect("shutdown");
    drop((copy, sm, _stale));

    // Stopped half-way through the import: the folder says so, and is refused as it is.
    std::fs::write(member.path().join("restore.unfinished"), b"cut off\n").expect("marker");
    assert!(Journal::open(member.path(), JournalConfig::default()).is_err());
    assert!(finish_interrupted_install(member.path()).expect("cleared"));
    let (_empty, mut sm) = open_copy(member.path());
    assert_eq!(
        sm.applied_state().await.expect("state").0,
        snapshot.meta.last_log_id
    );
    let copy = sm.shared_journal().get().expect("the copy made again");
    assert_eq!(copy.last_sequence(&jira).expect("last"), 4);
    copy.shutdown().expect("shutdown");

    // Without a kept snapshot, nothing can finish it.
    let lost = tempfile::tempdir().expect("temp dir");
    std::fs::write(lost.path().join("restore.unfinished"), b"cut off\n").expect("marker");
    let refused = finish_interrupted_install(lost.path()).expect_err("nothing to finish from");
    assert!(refused.contains("no snapshot is kept"), "{refused}");
}
