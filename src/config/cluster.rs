//! The `[cluster]` table: which member this node is, where members meet, the secret.

use super::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `[cluster]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub node_id: u64,
    pub raft_listen: String,
    pub secret_file: PathBuf,
    pub cluster_id: Option<String>,
    pub election_timeout_ms: Option<u64>,
    pub snapshot_every_entries: Option<u64>,
    #[serde(default)]
    pub peers: Vec<PeerFile>,
}

/// One `[[cluster.peers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerFile {
    pub id: u64,
    pub http: String,
    pub raft: String,
}

/// The resolved `[cluster]` table.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node.
    pub node_id: u64,
    /// Where this node listens for other members.
    pub raft_listen: String,
    /// The shared secret's file (relative paths are under the data dir).
    pub secret_file: PathBuf,
    /// Members of other clusters are refused.
    pub cluster_id: String,
    /// Raft's election timeout.
    pub election_timeout_ms: u64,
    /// Entries between two snapshots of a member's journal copy (after which the log
    /// before the snapshot is dropped, and a member that lags that far catches up by it).
    pub snapshot_every_entries: u64,
    /// Every member: id -> (http, raft).
    pub peers: BTreeMap<u64, (String, String)>,
}

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid {
        name: "cluster",
        message,
    }
}

fn address(what: &str, a: &str) -> Result<(), ConfigError> {
    // host:port; a name is allowed (docker compose), so only the port is checked.
    match a.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(invalid(format!("{what} {a:?} is not a host:port"))),
    }
}

impl ClusterFile {
    /// Checks the table and resolves the secret's path against `data_dir`.
    pub fn resolve(self, data_dir: &Path) -> Result<ClusterConfig, ConfigError> {
        address("raft_listen", &self.raft_listen)?;
        let mut peers = BTreeMap::new();
        for p in &self.peers {
            address(&format!("peer {} http", p.id), &p.http)?;
            address(&format!("peer {} raft", p.id), &p.raft)?;
            if peers
                .insert(p.id, (p.http.clone(), p.raft.clone()))
                .is_some()
            {
                return Err(invalid(format!("peer id {} is listed twice", p.id)));
            }
        }
        if !peers.contains_key(&self.node_id) {
            return Err(invalid(format!(
                "node_id {} is not among [[cluster.peers]] (list every member, this node included)",
                self.node_id
            )));
        }
        let cluster_id = self.cluster_id.unwrap_or_else(|| "slotpool".into());
        if cluster_id.is_empty() || cluster_id.len() > 64 {
            return Err(invalid("cluster_id must be 1 to 64 characters".into()));
        }
        let election_timeout_ms = self.election_timeout_ms.unwrap_or(300);
        if !(150..=60_000).contains(&election_timeout_ms) {
            return Err(invalid(
                "election_timeout_ms must be between 150 and 60000".into(),
            ));
        }
        let snapshot_every_entries = self.snapshot_every_entries.unwrap_or(20_000);
        if !(10..=100_000_000).contains(&snapshot_every_entries) {
            return Err(invalid(
                "snapshot_every_entries must be between 10 and 100000000".into(),
            ));
        }
        let secret_file = if self.secret_file.is_absolute() {
            self.secret_file
        } else {
            data_dir.join(self.secret_file)
        };
        Ok(ClusterConfig {
            node_id: self.node_id,
            raft_listen: self.raft_listen,
            secret_file,
            cluster_id,
            election_timeout_ms,
            snapshot_every_entries,
            peers,
        })
    }
}

impl ClusterConfig {
    /// Reads the secret: its bytes without surrounding whitespace, at least
    /// [`MIN_SECRET`] of them.
    pub fn read_secret(&self) -> Result<Vec<u8>, String> {
        let bytes = std::fs::read(&self.secret_file).map_err(|e| {
            format!(
                "cannot read the cluster secret {}: {e} (put the same random secret, at least {MIN_SECRET} bytes, on every member)",
                self.secret_file.display()
            )
        })?;
        let text = bytes.trim_ascii();
        if text.len() < MIN_SECRET {
            return Err(format!(
                "the cluster secret {} has {} bytes; at least {MIN_SECRET} are needed",
                self.secret_file.display(),
                text.len()
            ));
        }
        Ok(text.to_vec())
    }
}
