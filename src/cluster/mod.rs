//! A cluster member's life: start Raft on the node's journal, forward to the leader while
//! following, serve as the single node does while leading, and restart in place when the
//! lead is lost.
//!
//! Only the leader runs the actors, the scheduler and the connectors; they decide as on a
//! single node, and their journal proposes what they append to Raft
//! ([`slotpool_cluster::Proposer`]). A leader that loses the lead may hold events in
//! memory that will never commit; rather than undo them, it re-executes itself (same pid,
//! same arguments) and comes back as a follower whose state is what its journal copy holds:
//! only committed entries. See ARCHITECTURE.md, "The cluster".

pub mod cli;
mod forward;
mod metrics;
pub mod routes;

use crate::config::{ClusterConfig, Config};
use crate::failure::Failure;
use crate::secrets::TokenHash;
use crate::serve::{serve, Ended, Leading, Opened};
use crate::stop::Stop;
use slotpool_cluster::{ClusterNode, Member, NodeSettings, Proposer};
use slotpool_journal::JournalConfig;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs this cluster member until it is told to stop.
pub fn run(
    config: Config,
    cluster: ClusterConfig,
    admin_token: TokenHash,
    scim_token: Option<TokenHash>,
) -> Result<(), Failure> {
    let secret = cluster.read_secret().map_err(Failure::Data)?;
    slotpool_cluster::finish_interrupted_install(&config.data_dir).map_err(|e| {
        Failure::Data(format!(
            "{e}; refusing to start. {}",
            replace_member(cluster.node_id)
        ))
    })?;
    let opened = Opened::open(&config)?;
    let gauges = metrics::RaftGauges::new(&opened.registry)?;
    let settings = NodeSettings {
        node_id: cluster.node_id,
        cluster_id: cluster.cluster_id.clone(),
        raft_listen: cluster.raft_listen.clone(),
        secret,
        peers: cluster
            .peers
            .iter()
            .map(|(id, (http, raft))| {
                (
                    *id,
                    Member {
                        http: http.clone(),
                        raft: raft.clone(),
                    },
                )
            })
            .collect(),
        data_dir: config.data_dir.clone(),
        journal: JournalConfig {
            durability: config.durability,
            cache_bytes: config.cache_mb * 1024 * 1024,
            ..JournalConfig::default()
        },
        election_timeout_ms: cluster.election_timeout_ms,
        snapshot_every: cluster.snapshot_every_entries,
    };
    let node = ClusterNode::start(settings, opened.journal.clone()).map_err(|e| match e {
        slotpool_cluster::ClusterError::Config(m) => Failure::Input(m),
        slotpool_cluster::ClusterError::Storage(m) => Failure::Data(format!(
            "{m}; refusing to start (nothing was changed). {}",
            replace_member(cluster.node_id)
        )),
        e => Failure::Runtime(e.to_string()),
    })?;
    let node = Arc::new(node);
    if node.may_initialise() {
        match running_elsewhere(&cluster) {
            Some(peer) => {
                tracing::warn!(peer = %peer, "a cluster already runs on the peers: not initialising a new one; this node waits to be added (`slotpool cluster add`)")
            }
            None => node
                .initialise_if_new()
                .map_err(|e| Failure::Runtime(e.to_string()))?,
        }
    }
    tracing::info!(node = cluster.node_id, cluster = %cluster.cluster_id, raft = %cluster.raft_listen, "cluster member started");
    println!(
        "slotpool: cluster member {} of {:?}, raft on {}",
        cluster.node_id, cluster.cluster_id, cluster.raft_listen
    );
    metrics::watch(Arc::clone(&node), gauges);
    let ended = actix_web::rt::System::new().block_on(phases(
        config,
        admin_token,
        scim_token,
        opened,
        Arc::clone(&node),
    ));
    node.shutdown();
    match ended? {
        Ended::Stopped => {
            tracing::info!("journals flushed; bye");
            Ok(())
        }
        Ended::SteppedDown(why) => restart_in_place(&why),
    }
}

/// What an operator does with a member whose data cannot be used.
fn replace_member(id: u64) -> String {
    format!("Replace this member: `slotpool cluster remove --id {id}` on a running member, empty this data folder, start the node again and `slotpool cluster add` it; it catches up from the leader")
}

/// A peer whose HTTP says it knows a leader: a cluster runs already, and this node (the
/// lowest id, with an empty log) is a replaced member to be added, not a founder.
fn running_elsewhere(cluster: &ClusterConfig) -> Option<String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(800))
        .build();
    cluster
        .peers
        .iter()
        .filter(|(id, _)| **id != cluster.node_id)
        .map(|(_, (http, _))| http.clone())
        .find(|http| {
            agent
                .get(&format!("http://{http}/readyz"))
                .call()
                .ok()
                .and_then(|r| r.into_string().ok())
                .is_some_and(|body| body.contains("\"leader\""))
        })
}

/// Follows (forwarding) until this node leads, then serves as the leader.
async fn phases(
    config: Config,
    admin_token: TokenHash,
    scim_token: Option<TokenHash>,
    opened: Opened,
    node: Arc<ClusterNode>,
) -> Result<Ended, Failure> {
    let stop = Stop::install()?;
    let follower = forward::start(
        &config,
        Arc::clone(&node),
        admin_token.clone(),
        &opened,
        &stop,
    )?;
    let handle = follower.handle();
    let mut following = actix_web::rt::spawn(follower);
    tokio::select! {
        ended = &mut following => {
            ended
                .map_err(|e| Failure::Runtime(e.to_string()))?
                .map_err(|e| Failure::Runtime(e.to_string()))?;
            return Ok(Ended::Stopped);
        }
        () = until_leading(&node) => {}
        why = node.core_stopped() => {
            // A fatal storage error stopped Raft: this member follows nobody now. Ending
            // (exit 5) lets its supervisor start it again, where a member that went on
            // answering would only look healthy.
            handle.stop(true).await;
            let _ = following.await;
            return Err(Failure::Runtime(format!("this member's Raft stopped: {why}")));
        }
    }
    if stop.requested() {
        // Stopped just as the lead came: the follower's server drains; nothing starts.
        let _ = following.await;
        return Ok(Ended::Stopped);
    }
    tracing::info!("this node leads the cluster: serving");
    handle.stop(false).await;
    let _ = following.await;
    let journal = node
        .journal()
        .get()
        .ok_or_else(|| Failure::Runtime("the journal copy is being replaced".into()))?;
    let (tx, lost) = tokio::sync::oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let tell = move |why: String| {
        if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(why);
        }
    };
    let on_lost = tell.clone();
    let stall = (node.election_timeout() * 4).max(Duration::from_secs(2));
    let proposer = Proposer::start(
        node.raft().clone(),
        &node.runtime(),
        stall,
        Box::new(on_lost),
    );
    journal
        .replicate_through(Arc::new(proposer))
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    watch_lead(&node, tell);
    let opened = Opened { journal, ..opened };
    serve(
        config,
        admin_token,
        scim_token,
        opened,
        Some(Leading { node, lost }),
        stop,
    )
    .await
}

/// Returns once this node leads with every entry of its log applied
/// ([`ClusterNode::settle_lead`]): what its products are restored from then holds
/// everything committed before their first write.
async fn until_leading(node: &ClusterNode) {
    let within = node.election_timeout() * 2;
    while !node.settle_lead(within).await {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Tells `tell` when Raft says this node no longer leads (a higher term seen, a quorum
/// lost), even if no write has failed yet.
fn watch_lead(node: &Arc<ClusterNode>, tell: impl Fn(String) + Send + Sync + 'static) {
    let tell = Arc::new(tell);
    // An idle leader cut off from its majority proposes nothing that could fail: it checks
    // its lead every two election timeouts ([`ClusterNode::confirm_lead`]).
    let every = node.election_timeout() * 2;
    let probe = Arc::clone(&tell);
    let watched = Arc::clone(node);
    node.runtime().spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(why) = watched.confirm_lead(every * 2).await {
                probe(format!(
                    "the lead could not be confirmed by a majority: {why}"
                ));
                return;
            }
        }
    });
    let mut rx = node.raft().metrics();
    node.runtime().spawn(async move {
        loop {
            let state = rx.borrow().state;
            if state != openraft::ServerState::Leader {
                tell(format!("Raft state is now {state:?}"));
                return;
            }
            if rx.changed().await.is_err() {
                tell("Raft stopped".into());
                return;
            }
        }
    });
}

/// Re-executes this program with the same arguments: the one sure way to forget every
/// event in memory that may never commit.
fn restart_in_place(why: &str) -> Result<(), Failure> {
    use std::os::unix::process::CommandExt;
    if crate::stop::requested() {
        // Told to stop while it stepped down (Raft and the journals are shut down): the
        // process ends, as asked.
        tracing::info!(reason = %why, "stepped down and told to stop: not restarting");
        crate::logging::flush();
        return Ok(());
    }
    tracing::warn!(reason = %why, "stepping down: this node no longer leads; restarting in place to serve from what the cluster committed");
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Runtime(format!("cannot restart in place: {e}")))?;
    crate::logging::flush();
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .exec();
    Err(Failure::Runtime(format!("cannot restart in place: {err}")))
}
