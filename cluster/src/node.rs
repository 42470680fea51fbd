//! [`ClusterNode`]: one member, started: its runtime, Raft, storage and listener; its
//! status and the membership operations an operator runs.

use crate::error::ClusterError;
use crate::log_store::LogStore;
use crate::member::Member;
use crate::network::Network;
use crate::proposal::Proposal;
use crate::state_machine::{SharedJournal, StateMachine};
use crate::types::{NodeId, TypeConfig};
use crate::wire::Auth;
use openraft::{Config, Raft, ServerState, SnapshotPolicy};
use serde::Serialize;
use slotpool_journal::{Journal, JournalConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

/// What a member is started with (the binary's `[cluster]` table, resolved).
#[derive(Clone)]
pub struct NodeSettings {
    /// This node.
    pub node_id: NodeId,
    /// Nodes of other clusters are refused.
    pub cluster_id: String,
    /// Where to listen for other members.
    pub raft_listen: String,
    /// The shared secret's bytes.
    pub secret: Vec<u8>,
    /// Every member, this node included (the initial membership).
    pub peers: BTreeMap<NodeId, Member>,
    /// The node's data directory: its journal copy, and `raft/` for the log.
    pub data_dir: PathBuf,
    /// How the journals are opened (durability, cache).
    pub journal: JournalConfig,
    /// Raft's election timeout (its lower bound; the upper is twice it).
    pub election_timeout_ms: u64,
    /// Entries between two snapshots; the log keeps a tenth of that behind the latest.
    pub snapshot_every: u64,
}

/// One member's line in [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    /// Its node id.
    pub id: NodeId,
    /// Its advertised HTTP address.
    pub http: String,
    /// Its advertised Raft address.
    pub raft: String,
    /// Whether it votes (a learner catching up does not).
    pub voter: bool,
    /// Entries it is behind the leader; known on the leader only.
    pub lag: Option<u64>,
}

/// What `GET /admin/v1/cluster` and `slotpool cluster status` show.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The node answering.
    pub node_id: NodeId,
    /// Its cluster.
    pub cluster_id: String,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub state: &'static str,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    /// The current term.
    pub term: u64,
    /// The last entry in this node's log.
    pub last_log_index: Option<u64>,
    /// The last entry known committed (on a follower: the last it applied).
    pub commit_index: Option<u64>,
    /// The last entry applied to this node's journal copy.
    pub applied_index: Option<u64>,
    /// Every member of the current membership.
    pub members: Vec<MemberStatus>,
    /// Committed writes this node's copy refused since it started
    /// ([`crate::Outcome::refused`]): 0 unless a leader served from a stale state.
    pub refused_writes: u64,
}

impl Status {
    /// Whether this node leads.
    pub fn is_leader(&self) -> bool {
        self.state == "leader"
    }
}

/// A started member.
pub struct ClusterNode {
    runtime: tokio::runtime::Runtime,
    raft: Raft<TypeConfig>,
    journal: SharedJournal,
    log: LogStore,
    settings: NodeSettings,
    changing: tokio::sync::Mutex<()>,
    contacts: crate::network::Contacts,
    refused: Arc<std::sync::atomic::AtomicU64>,
}

/// Entries in one AppendEntries at most (openraft's default is 300); see [`raft_config`].
const MAX_PAYLOAD_ENTRIES: u64 = 32;

fn raft_config(settings: &NodeSettings) -> Result<Config, ClusterError> {
    let et = settings.election_timeout_ms.max(100);
    Config {
        cluster_name: settings.cluster_id.clone(),
        election_timeout_min: et,
        election_timeout_max: et * 2,
        heartbeat_interval: (et / 5).max(20),
        // openraft 0.9 gives every AppendEntries the heartbeat interval as its whole
        // timeout, catch-up batches included: a batch that a slow follower cannot take
        // and answer within it times out, and the same batch is sent again for ever (a
        // restarted leader re-sending ~170 entries to a debug-build follower every 60 ms
        // livelocked the chaos test). Small batches keep every call inside the interval.
        max_payload_entries: MAX_PAYLOAD_ENTRIES,
        install_snapshot_timeout: 10_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_every),
        max_in_snapshot_log_to_keep: settings.snapshot_every / 10,
        ..Config::default()
    }
    .validate()
    .map_err(|e| ClusterError::Config(e.to_string()))
}

fn state_name(s: ServerState) -> &'static str {
    match s {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

impl ClusterNode {
    /// Starts the member: opens its Raft log (`<data_dir>/raft/`), takes `copy` (its
    /// journal, open on `data_dir`) as the state machine, listens, and, on the lowest id
    /// of a cluster never initialised, initialises it with the configured peers.
    pub fn start(settings: NodeSettings, copy: Journal) -> Result<ClusterNode, ClusterError> {
        if !settings.peers.contains_key(&settings.node_id) {
            return Err(ClusterError::Config(format!(
                "node_id {} is not among [[cluster.peers]]",
                settings.node_id
            )));
        }
        let config = Arc::new(raft_config(&settings)?);
        // One worker: Raft's core, the proposer and the connections share it. Measured with
        // three nodes and the load generator on two cores: 16.9k requests/s with one,
        // 13.8k with two (more threads than cores only add context switches).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("raft")
            .max_blocking_threads(8)
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Runtime(e.to_string()))?;
        let log_dir = settings.data_dir.join("raft");
        let log = Journal::open_in_layout(&log_dir, settings.journal.clone().purged_log())
            .map_err(|e| {
                ClusterError::Storage(format!("the Raft log in {}: {e}", log_dir.display()))
            })?;
        let log_store = LogStore::open(log).map_err(|e| {
            ClusterError::Storage(format!(
                "the Raft log in {} is damaged: {e}",
                log_dir.display()
            ))
        })?;
        let sm = StateMachine::open(&settings.data_dir, settings.journal.clone(), copy)
            .map_err(ClusterError::Storage)?;
        let journal = sm.shared_journal();
        let refused = sm.refusals();
        log_store.gate_purges_on(sm.kept_up_to());
        let auth = Arc::new(Auth {
            secret: settings.secret.clone(),
            cluster_id: settings.cluster_id.clone(),
            me: settings.node_id,
        });
        let contacts = crate::network::Contacts::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&settings.raft_listen))
            .map_err(|e| {
                ClusterError::Runtime(format!("cannot listen on {}: {e}", settings.raft_listen))
            })?;
        let raft = runtime
            .block_on(Raft::new(
                settings.node_id,
                config,
                Network::new(Arc::clone(&auth), Arc::clone(&contacts)),
                log_store.clone(),
                sm,
            ))
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        runtime.spawn(crate::server::serve(listener, raft.clone(), auth));
        let node = ClusterNode {
            runtime,
            raft,
            journal,
            log: log_store,
            settings,
            changing: tokio::sync::Mutex::new(()),
            contacts,
            refused,
        };
        node.check_membership()?;
        node.resume_growing();
        Ok(node)
    }

    /// Where the first member notes, before it initialises a cluster from its journal,
    /// that the others are still to be added ([`grow_from_history`]); removed once they
    /// all vote.
    fn growing_marker(&self) -> PathBuf {
        self.settings.data_dir.join("raft").join("growing")
    }

    /// Takes up growing a cluster from this node's journal where a stopped process left
    /// it. Why: the growth runs for as long as the others take to catch up, and once this
    /// node has initialised the cluster nothing else would add the members still missing
    /// (a configured peer the membership lacks is allowed), so they answered `503` for
    /// ever.
    fn resume_growing(&self) {
        let marker = self.growing_marker();
        if !marker.is_file() {
            return;
        }
        // Stopped before the cluster was initialised: `initialise_if_new` starts over.
        let initialised = self.runtime.block_on(self.raft.is_initialized());
        if !initialised.unwrap_or(false) {
            return;
        }
        let configured: BTreeSet<NodeId> = self.settings.peers.keys().copied().collect();
        // Asked of Raft's core, as `check_membership` does (metrics come later).
        let recorded: BTreeSet<NodeId> = self
            .runtime
            .block_on(self.raft.with_raft_state(|st| {
                st.membership_state
                    .effective()
                    .membership()
                    .voter_ids()
                    .collect()
            }))
            .unwrap_or_default();
        if recorded == configured {
            remove_marker(&marker);
            return;
        }
        tracing::info!(
            "growing the cluster from this node's journal was cut off: taking it up again"
        );
        self.spawn_growth(marker);
    }

    fn spawn_growth(&self, marker: PathBuf) {
        let raft = self.raft.clone();
        let others = self.settings.peers.clone();
        self.runtime.spawn(async move {
            match grow_from_history(&raft, others).await {
                Ok(()) => remove_marker(&marker),
                Err(e) => {
                    tracing::error!(error = %e, "the other members could not be added; add them with `slotpool cluster add`")
                }
            }
        });
    }

    /// Refuses to run with a peer list that disagrees with the membership the cluster
    /// has recorded (an operator changed one and not the other): a member the list lacks
    /// or places elsewhere.
    fn check_membership(&self) -> Result<(), ClusterError> {
        // Asked of Raft's core, which loaded it from the log and the state machine (the
        // metrics are published only once the core runs).
        let nodes: BTreeMap<NodeId, Member> = self
            .runtime
            .block_on(self.raft.with_raft_state(|st| {
                st.membership_state
                    .effective()
                    .membership()
                    .nodes()
                    .map(|(id, m)| (*id, m.clone()))
                    .collect()
            }))
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        // Every recorded member must be configured, at the same addresses. A configured
        // peer the membership lacks is allowed: a cluster still growing from one node's
        // journal, or a member removed and not yet dropped from the file.
        let agrees = nodes
            .iter()
            .all(|(id, m)| self.settings.peers.get(id) == Some(m));
        if agrees {
            return Ok(());
        }
        let show = |m: &BTreeMap<NodeId, Member>| {
            m.iter()
                .map(|(id, n)| format!("{id} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(ClusterError::Config(format!(
            "the peer list disagrees with the cluster's recorded membership: [[cluster.peers]] lists {} but the membership is {}; make every node's peer list match the membership (`slotpool cluster status` on a running member shows it)",
            show(&self.settings.peers),
            show(&nodes)
        )))
    }

    /// On the lowest id of a cluster never initialised, initialises it with the
    /// configured peers, or, when this node's journal has history (a single node's folder),
    /// grows the cluster from it. Does nothing on any other node or on a cluster that was
    /// initialised. The caller checks first that no cluster already runs on the peers (a
    /// replaced first member must be added, not start a cluster of its own).
    pub fn initialise_if_new(&self) -> Result<(), ClusterError> {
        let has_history = self
            .journal
            .get()
            .map(|j| {
                j.streams()
                    .map(|s| {
                        s.iter()
                            .any(|s| !matches!(s, slotpool_events::StreamId::Raft(_)))
                    })
                    .unwrap_or(false)
            })
            .unwrap_or(false);
        let lowest = self.settings.peers.keys().next().copied();
        if lowest != Some(self.settings.node_id) {
            return Ok(());
        }
        let initialised = self
            .runtime
            .block_on(self.raft.is_initialized())
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        if initialised {
            return Ok(());
        }
        if !has_history {
            tracing::info!(
                members = self.settings.peers.len(),
                "initialising a new cluster (this node has the lowest id)"
            );
            return self
                .runtime
                .block_on(self.raft.initialize(self.settings.peers.clone()))
                .map_err(|e| ClusterError::Raft(e.to_string()));
        }
        // A single node's folder becoming the first member: the others must start from its
        // journal. The cluster starts as this node alone, its journal goes into a snapshot
        // and the log starts after it, and then the others join as `cluster add` would
        // have them: learners that catch up (by the snapshot), then voters.
        tracing::info!("this node's journal has history: starting the cluster from it; the other members will receive it as a snapshot");
        let me = self.settings.node_id;
        let alone: BTreeMap<NodeId, Member> = self
            .settings
            .peers
            .iter()
            .filter(|(id, _)| **id == me)
            .map(|(id, m)| (*id, m.clone()))
            .collect();
        let marker = self.growing_marker();
        crate::state_machine::write_durably(&marker, b"members still to be added\n")
            .map_err(|e| ClusterError::Storage(format!("{}: {e}", marker.display())))?;
        self.runtime
            .block_on(self.raft.initialize(alone))
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        self.spawn_growth(marker);
        Ok(())
    }

    /// Whether this node must decide whether to initialise a cluster: the lowest id, never
    /// initialised.
    pub fn may_initialise(&self) -> bool {
        let lowest = self.settings.peers.keys().next().copied();
        lowest == Some(self.settings.node_id)
            && !self
                .runtime
                .block_on(self.raft.is_initialized())
                .unwrap_or(true)
    }

    /// The Raft handle.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The cluster's runtime, where the proposer and other cluster tasks run.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Whether a majority confirms, within `within`, that this node leads (a heartbeat
    /// round; not a wait for the state machine): what a leader that proposes nothing
    /// checks now and then, since Raft does not tell a leader cut off from its majority.
    pub async fn confirm_lead(&self, within: std::time::Duration) -> Result<(), String> {
        crate::proposer::confirm_lead(&self.raft, within).await
    }

    /// Whether this node leads with every entry of its log applied to its copy, so that
    /// products restored from the copy now start from everything the cluster will commit
    /// before their own writes. It commits an empty entry of its own and waits, at most
    /// `within`, until that is applied: every entry before it is applied then too.
    ///
    /// Raft's read index (`ensure_linearizable`) does not cover this. A leader that
    /// restarts before another is elected leads again in the same term, and openraft
    /// takes that term's first entry as its read index, while the log may hold later
    /// entries of the term that no follower had yet. Raft commits them now; products
    /// restored before they are applied would write their sequences a second time, and
    /// the copies would commit two histories of one stream.
    pub async fn settle_lead(&self, within: std::time::Duration) -> bool {
        // Asked every 50 ms while following: Raft's state, not the whole `status`.
        if self.raft.metrics().borrow().state != ServerState::Leader {
            return false;
        }
        let raft = self.raft.clone();
        let applied = self.runtime.spawn(async move {
            tokio::time::timeout(within, raft.client_write(Proposal::default())).await
        });
        matches!(applied.await, Ok(Ok(Ok(_))))
    }

    /// This node's journal copy.
    pub fn journal(&self) -> SharedJournal {
        self.journal.clone()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.settings.node_id
    }

    /// The leader this node knows of: what every forwarded request asks, so read from
    /// Raft's metrics without building the whole [`Status`]. None once this node's Raft
    /// core has stopped (a fatal storage error): the core keeps the last leader it knew,
    /// but the node no longer follows it, and must say so (`/readyz`, forwarding).
    pub fn leader(&self) -> Option<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.running_state.is_err() || m.state == ServerState::Shutdown {
            return None;
        }
        m.current_leader
    }

    /// Resolves, with why, when this node's Raft core stops (a fatal error, or the
    /// node's shutdown): the process must then end, not serve on as if it followed.
    pub async fn core_stopped(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            {
                let m = metrics.borrow();
                if let Err(fatal) = &m.running_state {
                    return fatal.to_string();
                }
                if m.state == ServerState::Shutdown {
                    return "Raft's core was shut down".into();
                }
            }
            if metrics.changed().await.is_err() {
                return "Raft's core ended".into();
            }
        }
    }

    /// The HTTP address of member `id` in the current membership.
    pub fn http_of(&self, id: NodeId) -> Option<String> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership().get_node(&id).map(|n| n.http.clone())
    }

    /// Members that answered this node within `within` (the leader hears from every
    /// member at each heartbeat).
    pub fn reachable(&self, within: std::time::Duration) -> BTreeSet<NodeId> {
        let now = std::time::Instant::now();
        self.contacts
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|(_, t)| now.duration_since(**t) < within)
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The election timeout this node runs with.
    pub fn election_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.settings.election_timeout_ms)
    }

    /// What this node knows of the cluster now.
    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last = m.last_log_index;
        let matched = |id: &NodeId| -> Option<u64> {
            m.replication
                .as_ref()
                .and_then(|r| r.get(id).copied())
                .map(|l| l.map(|l| l.index))
                .and_then(|x| x)
        };
        let members = membership
            .nodes()
            .map(|(id, n)| MemberStatus {
                id: *id,
                http: n.http.clone(),
                raft: n.raft.clone(),
                voter: voters.contains(id),
                lag: m
                    .replication
                    .as_ref()
                    .map(|r| match r.get(id).copied().flatten() {
                        Some(l) => last.unwrap_or(0).saturating_sub(l.index),
                        None => last.map(|i| i + 1).unwrap_or(0),
                    }),
            })
            .collect();
        let commit_index = if m.state == ServerState::Leader {
            let mut indexes: Vec<u64> = voters.iter().filter_map(matched).collect();
            indexes.sort_unstable_by(|a, b| b.cmp(a));
            indexes.get(voters.len() / 2).copied()
        } else {
            m.last_applied.map(|l| l.index)
        };
        Status {
            node_id: self.settings.node_id,
            cluster_id: self.settings.cluster_id.clone(),
            state: state_name(m.state),
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: last,
            commit_index,
            applied_index: m.last_applied.map(|l| l.index),
            members,
            refused_writes: self.refused.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Adds member `id` at `member`: first a learner that catches up (by snapshot and
    /// then the log), then a voter through joint consensus. On the leader only.
    pub async fn add_member(&self, id: NodeId, member: Member) -> Result<Status, ClusterError> {
        self.change(move |raft| async move {
            raft.add_learner(id, member, true)
                .await
                .map_err(change_error)?;
            let mut voters = voters(&raft);
            voters.insert(id);
            raft.change_membership(voters, false)
                .await
                .map_err(change_error)?;
            Ok(())
        })
        .await
    }

    /// Removes member `id` through joint consensus. On the leader only.
    pub async fn remove_member(&self, id: NodeId) -> Result<Status, ClusterError> {
        self.change(move |raft| async move {
            let mut voters = voters(&raft);
            if !voters.remove(&id) {
                return Err(ClusterError::Config(format!("node {id} is not a voter")));
            }
            if voters.is_empty() {
                return Err(ClusterError::Config(
                    "the last member cannot be removed".into(),
                ));
            }
            raft.change_membership(voters, false)
                .await
                .map_err(change_error)?;
            Ok(())
        })
        .await
    }

    /// Runs one membership change on the cluster's runtime, refusing a second while it
    /// runs (openraft's rule: one change at a time); answers the status after it.
    async fn change<F, Fut>(&self, change: F) -> Result<Status, ClusterError>
    where
        F: FnOnce(Raft<TypeConfig>) -> Fut,
        Fut: std::future::Future<Output = Result<(), ClusterError>> + Send + 'static,
    {
        let _one = self
            .changing
            .try_lock()
            .map_err(|_| ClusterError::ChangeRunning)?;
        self.runtime
            .spawn(change(self.raft.clone()))
            .await
            .map_err(|e| ClusterError::Runtime(e.to_string()))??;
        Ok(self.status())
    }

    /// Stops Raft and flushes both journals.
    pub fn shutdown(&self) {
        let _ = self.runtime.block_on(self.raft.shutdown());
        if let Some(j) = self.journal.get() {
            let _ = j.shutdown();
        }
        let _ = self.runtime.block_on(self.log.removed());
        let _ = self.log.journal().shutdown();
    }
}

/// Snapshots this (sole) member's journal, drops the log before it, and adds every
/// other peer: the way a single node's folder becomes a cluster.
async fn grow_from_history(
    raft: &Raft<TypeConfig>,
    peers: BTreeMap<NodeId, Member>,
) -> Result<(), ClusterError> {
    let fail = |e: &dyn std::fmt::Display| ClusterError::Raft(e.to_string());
    let mut rx = raft.metrics();
    loop {
        let ready = {
            let m = rx.borrow();
            m.state == ServerState::Leader && m.last_applied.is_some()
        };
        if ready {
            break;
        }
        rx.changed().await.map_err(|e| fail(&e))?;
    }
    raft.trigger().snapshot().await.map_err(|e| fail(&e))?;
    let index = loop {
        let built = rx.borrow().snapshot;
        if let Some(s) = built {
            break s.index;
        }
        rx.changed().await.map_err(|e| fail(&e))?;
    };
    raft.trigger()
        .purge_log(index)
        .await
        .map_err(|e| fail(&e))?;
    loop {
        let purged = rx.borrow().purged;
        if purged.is_some_and(|p| p.index >= index) {
            break;
        }
        rx.changed().await.map_err(|e| fail(&e))?;
    }
    for (id, member) in &peers {
        let known = raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(id)
            .is_some();
        if known {
            continue;
        }
        tracing::info!(
            node = id,
            "adding a member to the cluster grown from this node's journal"
        );
        raft.add_learner(*id, member.clone(), true)
            .await
            .map_err(|e| fail(&e))?;
    }
    raft.change_membership(peers.keys().copied().collect::<BTreeSet<_>>(), false)
        .await
        .map_err(|e| fail(&e))?;
    tracing::info!(
        members = peers.len(),
        "the cluster has every configured member"
    );
    Ok(())
}

/// Removes the growing marker; a failure only means the next start checks again.
fn remove_marker(marker: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(marker) {
        tracing::warn!(file = %marker.display(), error = %e, "could not remove the growing marker");
    }
}

/// The voters of the current membership.
fn voters(raft: &Raft<TypeConfig>) -> BTreeSet<NodeId> {
    raft.metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect()
}

fn change_error(
    e: openraft::error::RaftError<NodeId, openraft::error::ClientWriteError<NodeId, Member>>,
) -> ClusterError {
    match e.forward_to_leader() {
        Some(f) => ClusterError::NotLeader(f.leader_id),
        None => ClusterError::Raft(e.to_string()),
    }
}
