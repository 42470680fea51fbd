//! `slotpool_raft_*`: what operators watch a member by.

use crate::failure::Failure;
use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};
use slotpool_cluster::ClusterNode;
use std::sync::Arc;
use std::time::Duration;

/// The gauges, registered once per process.
pub(super) struct RaftGauges {
    is_leader: IntGauge,
    has_leader: IntGauge,
    term: IntGauge,
    last_log: IntGauge,
    commit: IntGauge,
    applied: IntGauge,
    members: IntGauge,
    lag: IntGaugeVec,
    peer_up: IntGaugeVec,
    leader_changes: IntCounter,
    refused_writes: IntCounter,
}

impl RaftGauges {
    pub(super) fn new(registry: &Registry) -> Result<RaftGauges, Failure> {
        let fail = |e: prometheus::Error| Failure::Runtime(e.to_string());
        let gauge = |name: &str, help: &str| -> Result<IntGauge, Failure> {
            let g = IntGauge::new(name, help).map_err(fail)?;
            registry.register(Box::new(g.clone())).map_err(fail)?;
            Ok(g)
        };
        let per_peer = |name: &str, help: &str| -> Result<IntGaugeVec, Failure> {
            let g = IntGaugeVec::new(Opts::new(name, help), &["peer"]).map_err(fail)?;
            registry.register(Box::new(g.clone())).map_err(fail)?;
            Ok(g)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, Failure> {
            let c = IntCounter::new(name, help).map_err(fail)?;
            registry.register(Box::new(c.clone())).map_err(fail)?;
            Ok(c)
        };
        Ok(RaftGauges {
            is_leader: gauge("slotpool_raft_is_leader", "1 while this member leads its cluster.")?,
            has_leader: gauge("slotpool_raft_has_leader", "1 while this member knows a leader.")?,
            term: gauge("slotpool_raft_term", "The current Raft term.")?,
            last_log: gauge("slotpool_raft_last_log_index", "The last entry of this member's Raft log.")?,
            commit: gauge("slotpool_raft_commit_index", "The last entry known committed (on a follower: applied).")?,
            applied: gauge("slotpool_raft_applied_index", "The last entry applied to this member's journal.")?,
            members: gauge("slotpool_raft_members", "Members of the current membership.")?,
            lag: per_peer("slotpool_raft_replication_lag", "Entries a member is behind the leader (exported by the leader).")?,
            peer_up: per_peer("slotpool_raft_peer_up", "1 when the member answered the leader within three election timeouts (exported by the leader).")?,
            leader_changes: counter(
                "slotpool_raft_leader_changes_total",
                "Times this member saw the cluster's leader change.",
            )?,
            refused_writes: counter(
                "slotpool_raft_refused_writes_total",
                "Committed writes this member refused because they would have replaced records of its journal (a leader served from a stale state).",
            )?,
        })
    }
}

/// Updates the gauges four times a second, on the cluster's runtime.
pub(super) fn watch(node: Arc<ClusterNode>, g: RaftGauges) {
    let runtime = node.runtime();
    runtime.spawn(async move {
        let mut leader = None;
        let up_within = node.election_timeout() * 3;
        loop {
            let s = node.status();
            if s.leader != leader {
                if leader.is_some() || s.leader.is_some() {
                    g.leader_changes.inc();
                }
                match s.leader {
                    Some(l) => tracing::info!(
                        leader = l,
                        term = s.term,
                        "the cluster's leader is node {l}"
                    ),
                    None => tracing::warn!(term = s.term, "no cluster leader is known"),
                }
                leader = s.leader;
            }
            let signed = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
            g.is_leader.set(i64::from(s.is_leader()));
            g.has_leader.set(i64::from(s.leader.is_some()));
            g.term.set(signed(Some(s.term)));
            g.last_log.set(signed(s.last_log_index));
            g.commit.set(signed(s.commit_index));
            g.applied.set(signed(s.applied_index));
            g.members.set(s.members.len() as i64);
            g.refused_writes
                .inc_by(s.refused_writes.saturating_sub(g.refused_writes.get()));
            g.lag.reset();
            g.peer_up.reset();
            if s.is_leader() {
                let reachable = node.reachable(up_within);
                for m in &s.members {
                    let peer = m.id.to_string();
                    if let Some(lag) = m.lag {
                        g.lag.with_label_values(&[&peer]).set(signed(Some(lag)));
                    }
                    let up = m.id == s.node_id || reachable.contains(&m.id);
                    g.peer_up.with_label_values(&[&peer]).set(i64::from(up));
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
}
