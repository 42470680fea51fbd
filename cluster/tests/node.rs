//! A member's node as the binary sees it: what it says once its Raft core has stopped.

use slotpool_cluster::{ClusterNode, Member, NodeSettings};
use slotpool_journal::{Journal, JournalConfig};
use std::time::{Duration, Instant};

/// A member whose Raft core stopped (here shut down; in production a fatal storage
/// error) knows no leader any more, although openraft keeps the last one it knew: the
/// binary then answers `503 no_leader` and `/readyz` 503 instead of forwarding as if it
/// followed, and `core_stopped` tells it to end.
#[test]
fn a_node_whose_raft_core_stopped_knows_no_leader() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let raft = format!("127.0.0.1:{port}");
    let settings = NodeSettings {
        node_id: 1,
        cluster_id: "test".into(),
        raft_listen: raft.clone(),
        secret: b"a secret of the test cluster, long enough".to_vec(),
        peers: [(
            1,
            Member {
                http: "127.0.0.1:1".into(),
                raft,
            },
        )]
        .into(),
        data_dir: dir.path().to_path_buf(),
        journal: JournalConfig::default(),
        election_timeout_ms: 150,
        snapshot_every: 1000,
    };
    let copy = Journal::open(dir.path(), JournalConfig::default()).expect("copy");
    let node = ClusterNode::start(settings, copy).expect("node");
    assert!(node.may_initialise());
    node.initialise_if_new().expect("initialise");
    let deadline = Instant::now() + Duration::from_secs(20);
    while node.leader() != Some(1) {
        assert!(Instant::now() < deadline, "no leader: {:?}", node.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    let runtime = node.runtime();
    runtime
        .block_on(node.raft().shutdown())
        .expect("Raft shuts down");
    assert_eq!(node.leader(), None);
    let why = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), node.core_stopped()).await })
        .expect("core_stopped resolves once the core has stopped");
    assert!(!why.is_empty(), "says why");
    node.shutdown();
}
