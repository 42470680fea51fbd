//! A cluster of real `slotpool serve` processes on loopback, for the cluster tests.
//!
//! Each node gets its own data dir (with the cluster secret in it), HTTP port, real Raft
//! port (`raft_listen`) and a [`FaultProxy`] listener in front of that port; the peers
//! list every node is started with names the proxy's address as each node's `raft`
//! address, so all inter-node traffic crosses the proxy and a test can cut it. The
//! config files follow the cluster contract of issue F (`[cluster]`, `[[cluster.peers]]`). All nodes
//! share [`ADMIN_TOKEN`], since a follower forwards the caller's headers to the leader.
//!
//! Nodes can be killed (`kill -9`), paused (`SIGSTOP`) and resumed (`SIGCONT`), and
//! restarted on the same data dir and ports. After a run, [`Cluster::assert_chains_identical`]
//! stops every node and compares `slotpool verify`'s streams (all but the node-local
//! `raft/` ones) across nodes.
//!
//! The load generator here differs from [`super::start_load`] in what a cluster needs:
//! a client retries an unacknowledged operation (503 or a lost connection) on the next
//! node instead of stopping, so one load runs through a failover; and it may record every
//! operation into a [`Recorder`] for the linearizability checker.

use super::fault_proxy::FaultProxy;
use super::linearizable::{Call, Recorder};
use super::{
    slotpool_command, verify, Client, Known, Load, Op, Opts, Output, Resp, Rng, Server, Track,
    ADMIN_TOKEN,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The secret every node of a test cluster shares (>= 16 bytes).
pub const CLUSTER_SECRET: &str = "e2e-cluster-secret-0123456789abcdef";

/// The cluster id the nodes use unless a test says otherwise (the default of the config).
pub const CLUSTER_ID: &str = "slotpool";

/// One member as a peers list names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    /// `127.0.0.1:<http port>`.
    pub http: String,
    /// `127.0.0.1:<proxy port>`: where the others dial this node.
    pub raft: String,
}

/// Everything that makes up one node's start.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: u64,
    pub http_port: u16,
    /// The node's real `raft_listen` port (the proxy relays to it).
    pub raft_port: u16,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    pub log_dir: PathBuf,
    /// The content written to `<data_dir>/cluster_secret` before each start.
    pub secret: String,
    pub cluster_id: String,
    pub election_timeout_ms: u64,
    /// The `[[cluster.peers]]` of this node's config.
    pub peers: Vec<Peer>,
    /// More top-level config lines (before `[cluster]`).
    pub extra: String,
    /// More lines of the `[cluster]` table.
    pub cluster_extra: String,
}

impl NodeSpec {
    /// `http://127.0.0.1:<http port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// This node as a peers list names it.
    pub fn peer(&self, proxy: &FaultProxy) -> Peer {
        Peer {
            id: self.id,
            http: format!("127.0.0.1:{}", self.http_port),
            raft: proxy.addr(self.id),
        }
    }

    /// The TOML config file's text.
    pub fn config_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "listen = \"127.0.0.1:{}\"", self.http_port);
        let _ = writeln!(t, "data_dir = {:?}", self.data_dir.display().to_string());
        t.push_str(&self.extra);
        let _ = writeln!(t, "\n[cluster]");
        let _ = writeln!(t, "node_id = {}", self.id);
        let _ = writeln!(t, "raft_listen = \"127.0.0.1:{}\"", self.raft_port);
        let _ = writeln!(t, "secret_file = \"cluster_secret\"");
        let _ = writeln!(t, "cluster_id = {:?}", self.cluster_id);
        let _ = writeln!(t, "election_timeout_ms = {}", self.election_timeout_ms);
        t.push_str(&self.cluster_extra);
        for p in &self.peers {
            let _ = writeln!(
                t,
                "\n[[cluster.peers]]\nid = {}\nhttp = {:?}\nraft = {:?}",
                p.id, p.http, p.raft
            );
        }
        t
    }

    /// Writes the config file and the secret file (the data dir is created if needed).
    pub fn write_files(&self) {
        std::fs::create_dir_all(&self.data_dir).expect("create the node's data dir");
        std::fs::write(&self.config_path, self.config_text()).expect("write node config");
        std::fs::write(self.data_dir.join("cluster_secret"), &self.secret)
            .expect("write cluster secret");
    }

    /// How [`Server`] starts this node.
    pub fn opts(&self) -> Opts {
        Opts::new(&self.data_dir, &self.log_dir)
            .arg("--config")
            .arg(&self.config_path.display().to_string())
    }
}

/// A node: its spec and, while it runs, its process.
pub struct Node {
    pub spec: NodeSpec,
    pub server: Option<Server>,
    pub paused: bool,
}

impl Node {
    /// Whether the process runs and is not paused (it can answer).
    pub fn live(&self) -> bool {
        self.server.is_some() && !self.paused
    }
}

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOpts {
    pub size: u64,
    pub election_timeout_ms: u64,
    /// More top-level config lines for every node.
    pub extra: String,
    /// More lines of every node's `[cluster]` table.
    pub cluster_extra: String,
}

impl Default for ClusterOpts {
    fn default() -> Self {
        ClusterOpts {
            size: 3,
            election_timeout_ms: 300,
            extra: String::new(),
            cluster_extra: String::new(),
        }
    }
}

/// The test cluster. Every process is killed when it is dropped (as [`Server`]s are).
pub struct Cluster {
    // Fields drop in this order: the processes first, the proxy, then their files.
    pub nodes: BTreeMap<u64, Node>,
    pub proxy: FaultProxy,
    pub opts: ClusterOpts,
    /// Holds every node's data dir, config and logs.
    pub dir: tempfile::TempDir,
}

/// Ports that nobody listens on right now, all different.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

impl Cluster {
    /// Starts a three-node cluster and waits for one leader all nodes agree on.
    pub fn start() -> Cluster {
        Cluster::start_with(ClusterOpts::default())
    }

    /// Starts a cluster as `opts` says and waits for its leader.
    pub fn start_with(opts: ClusterOpts) -> Cluster {
        let mut c = Cluster::build(opts);
        let ids = c.ids();
        for &id in &ids {
            c.spawn(id);
        }
        for &id in &ids {
            c.wait_node_ready(id, Duration::from_secs(30));
        }
        c.wait_leader(Duration::from_secs(20));
        c.wait_formed(Duration::from_secs(20));
        c
    }

    /// Waits until every live node is a voter in one term of one cluster: each names
    /// the same term and lists every node as a member. A leader is elected before its
    /// first entry (the membership) reaches every follower: a node whose Raft listener
    /// opened a moment after the leader's first append waits out openraft's 500 ms
    /// backoff as a learner that knows the leader but no members.
    pub fn wait_formed(&self, timeout: Duration) {
        let size = self.ids().len();
        self.wait_for(timeout, "the cluster did not form", || {
            let statuses: Option<Vec<Value>> =
                self.live().iter().map(|&id| self.status(id)).collect();
            statuses
                .is_some_and(|ss| {
                    ss.iter().all(|s| {
                        s["term"] == ss[0]["term"]
                            && matches!(s["state"].as_str(), Some("leader" | "follower"))
                            && s["members"].as_array().is_some_and(|m| m.len() == size)
                    })
                })
                .then_some(())
        })
    }

    /// Polls `probe` every 50 ms until it answers; after `timeout`, fails saying `what`
    /// with every node's status and logs (the one shape of every `wait_*` that must not
    /// come back empty-handed).
    fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut probe: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = probe() {
                return found;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what} after {timeout:?}: {}\n{}",
                    self.statuses(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lays out the nodes (ports, proxy, data dirs, configs) without starting them.
    pub fn build(opts: ClusterOpts) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("slotpool-cluster-")
            .tempdir()
            .expect("temp dir");
        let mut proxy = FaultProxy::new();
        let mut nodes = BTreeMap::new();
        let ports = free_ports(2 * opts.size as usize);
        for id in 1..=opts.size {
            let i = (id - 1) as usize;
            let (http_port, raft_port) = (ports[2 * i], ports[2 * i + 1]);
            proxy.add_node(id, SocketAddr::from(([127, 0, 0, 1], raft_port)));
            let node_dir = dir.path().join(format!("n{id}"));
            std::fs::create_dir_all(&node_dir).expect("node dir");
            nodes.insert(
                id,
                Node {
                    spec: NodeSpec {
                        id,
                        http_port,
                        raft_port,
                        data_dir: node_dir.join("data"),
                        config_path: node_dir.join("slotpool.toml"),
                        log_dir: node_dir.clone(),
                        secret: CLUSTER_SECRET.to_string(),
                        cluster_id: CLUSTER_ID.to_string(),
                        election_timeout_ms: opts.election_timeout_ms,
                        peers: Vec::new(),
                        extra: opts.extra.clone(),
                        cluster_extra: opts.cluster_extra.clone(),
                    },
                    server: None,
                    paused: false,
                },
            );
        }
        let peers: Vec<Peer> = nodes.values().map(|n| n.spec.peer(&proxy)).collect();
        for n in nodes.values_mut() {
            n.spec.peers = peers.clone();
            n.spec.write_files();
        }
        Cluster {
            dir,
            proxy,
            nodes,
            opts,
        }
    }

    /// A spec for a new node `id` (ports, proxy listener, data dir) whose peers list is
    /// the current members plus itself; not started, not a member yet.
    pub fn new_node_spec(&mut self, id: u64) -> NodeSpec {
        assert!(!self.nodes.contains_key(&id), "node {id} exists");
        let ports = free_ports(2);
        self.proxy
            .add_node(id, SocketAddr::from(([127, 0, 0, 1], ports[1])));
        let node_dir = self.dir.path().join(format!("n{id}"));
        std::fs::create_dir_all(&node_dir).expect("node dir");
        let mut spec = NodeSpec {
            id,
            http_port: ports[0],
            raft_port: ports[1],
            data_dir: node_dir.join("data"),
            config_path: node_dir.join("slotpool.toml"),
            log_dir: node_dir,
            secret: CLUSTER_SECRET.to_string(),
            cluster_id: CLUSTER_ID.to_string(),
            election_timeout_ms: self.opts.election_timeout_ms,
            peers: self.peers(),
            extra: self.opts.extra.clone(),
            cluster_extra: self.opts.cluster_extra.clone(),
        };
        let me = spec.peer(&self.proxy);
        spec.peers.push(me);
        spec.write_files();
        spec
    }

    /// Adds a node made by [`Cluster::new_node_spec`] (or another spec) to the set the
    /// cluster manages, without starting it.
    pub fn insert_node(&mut self, spec: NodeSpec) {
        spec.write_files();
        self.nodes.insert(
            spec.id,
            Node {
                spec,
                server: None,
                paused: false,
            },
        );
    }

    /// The peers list the nodes were built with.
    pub fn peers(&self) -> Vec<Peer> {
        self.nodes
            .values()
            .map(|n| n.spec.peer(&self.proxy))
            .collect()
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// The ids of the nodes that run and are not paused.
    pub fn live(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.live())
            .map(|(id, _)| *id)
            .collect()
    }

    /// A node.
    pub fn node(&self, id: u64) -> &Node {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// A node, to change its spec before a (re)start.
    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// `http://127.0.0.1:<port>` of node `id`.
    pub fn base(&self, id: u64) -> String {
        self.node(id).spec.base()
    }

    /// Every node's base URL, in id order.
    pub fn bases(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.spec.base()).collect()
    }

    /// A client of node `id` with the admin token.
    pub fn client(&self, id: u64) -> Client {
        Client::new(&self.base(id), ADMIN_TOKEN)
    }

    /// A client of node `id` that gives up after `timeout`.
    pub fn quick_client(&self, id: u64, timeout: Duration) -> Client {
        Client::with_timeout(&self.base(id), ADMIN_TOKEN, timeout)
    }

    /// Writes node `id`'s files (config, secret) from its spec and starts it, without
    /// waiting.
    pub fn spawn(&mut self, id: u64) {
        let node = self.node_mut(id);
        assert!(node.server.is_none(), "node {id} already runs");
        node.spec.write_files();
        let server = Server::spawn_on(&node.spec.opts(), node.spec.http_port);
        node.server = Some(server);
        node.paused = false;
    }

    /// Waits until node `id`'s `/readyz` answers 200 (it knows a leader); fails with its
    /// logs if it exits first.
    pub fn wait_node_ready(&mut self, id: u64, timeout: Duration) {
        self.node_mut(id)
            .server
            .as_mut()
            .unwrap_or_else(|| panic!("node {id} is not running"))
            .wait_ready(timeout);
    }

    /// Node `id`'s `GET /admin/v1/cluster`, or `None` if it does not answer 200 in 2 s.
    pub fn status(&self, id: u64) -> Option<Value> {
        let r = self
            .quick_client(id, Duration::from_secs(2))
            .try_call(
                "GET",
                "/admin/v1/cluster",
                &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
                None,
            )
            .ok()?;
        (r.status == 200).then(|| r.json())
    }

    /// The leader all live nodes agree on right now, if they do: every live node answers,
    /// names the same leader, and that leader is live, says it is the leader and serves
    /// (`/readyz`: a member just elected answers 503 until it has switched to serving).
    pub fn agreed_leader(&self) -> Option<u64> {
        self.agreed_leader_among(&self.live())
    }

    /// Like [`Cluster::agreed_leader`], asking only the nodes `live` (the majority side
    /// of a partition, say).
    pub fn agreed_leader_among(&self, live: &[u64]) -> Option<u64> {
        let mut leader = None;
        for &id in live {
            let s = self.status(id)?;
            let l = s["leader"].as_u64()?;
            if leader.is_some_and(|x| x != l) {
                return None;
            }
            leader = Some(l);
        }
        let l = leader?;
        if !live.contains(&l) {
            return None;
        }
        let serving = self
            .quick_client(l, Duration::from_secs(2))
            .try_call("GET", "/readyz", &[], None)
            .ok()
            .is_some_and(|r| r.status == 200);
        (serving && self.status(l)?["state"] == "leader").then_some(l)
    }

    /// Waits for a leader all live nodes agree on; fails with every node's logs after
    /// `timeout`.
    pub fn wait_leader(&self, timeout: Duration) -> u64 {
        self.wait_for(timeout, "no agreed leader", || self.agreed_leader())
    }

    /// Waits for a leader the nodes `among` agree on; fails after `timeout`.
    pub fn wait_leader_among(&self, among: &[u64], timeout: Duration) -> u64 {
        let what = format!("nodes {among:?} agree on no leader");
        self.wait_for(timeout, &what, || self.agreed_leader_among(among))
    }

    /// Waits until node `id`'s output (stdout and stderr) satisfies `pred`; returns
    /// whether it did within `timeout`.
    pub fn wait_output(&self, id: u64, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.output(id)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for an agreed leader other than `old`.
    pub fn wait_new_leader(&self, old: u64, timeout: Duration) -> u64 {
        let what = format!("no new leader (other than {old})");
        self.wait_for(timeout, &what, || {
            self.agreed_leader().filter(|&l| l != old)
        })
    }

    /// The current agreed leader (waiting up to 20 s).
    pub fn leader(&self) -> u64 {
        self.wait_leader(Duration::from_secs(20))
    }

    /// The live nodes other than the leader.
    pub fn followers(&self) -> Vec<u64> {
        let l = self.leader();
        self.live().into_iter().filter(|&id| id != l).collect()
    }

    /// Every live node's status, for failure messages.
    pub fn statuses(&self) -> String {
        self.nodes
            .iter()
            .map(|(id, n)| {
                let s = if n.live() {
                    self.status(*id)
                        .map_or("no answer".to_string(), |v| v.to_string())
                } else if n.paused {
                    "paused".to_string()
                } else {
                    "not running".to_string()
                };
                format!("\n  node {id}: {s}")
            })
            .collect()
    }

    /// Every node's log tails.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .filter_map(|(id, n)| {
                n.server
                    .as_ref()
                    .map(|s| format!("=== node {id} ===\n{}\n", s.logs()))
            })
            .collect()
    }

    /// Everything node `id` wrote (stdout and stderr) in its current run.
    pub fn output(&self, id: u64) -> String {
        self.node(id)
            .server
            .as_ref()
            .map(|s| format!("{}\n{}", s.stdout(), s.stderr()))
            .unwrap_or_default()
    }

    /// Everything every node wrote in its current run.
    pub fn all_output(&self) -> String {
        self.ids().into_iter().map(|id| self.output(id)).collect()
    }

    /// `kill -9` node `id` (resuming it first if paused, so that it can be reaped).
    pub fn kill9(&mut self, id: u64) {
        let node = self.node_mut(id);
        let mut s = node
            .server
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        // SIGKILL ends a stopped (paused) process too.
        node.paused = false;
        s.kill9();
    }

    /// `SIGSTOP` node `id`.
    pub fn pause(&mut self, id: u64) {
        let node = self.node_mut(id);
        node.server
            .as_mut()
            .unwrap_or_else(|| panic!("node {id} is not running"))
            .signal(libc::SIGSTOP);
        node.paused = true;
    }

    /// `SIGCONT` node `id`.
    pub fn resume(&mut self, id: u64) {
        let node = self.node_mut(id);
        node.server
            .as_mut()
            .unwrap_or_else(|| panic!("node {id} is not running"))
            .signal(libc::SIGCONT);
        node.paused = false;
    }

    /// Starts a stopped node again on the same data dir and ports and waits until it is
    /// ready (it knows the leader).
    pub fn restart(&mut self, id: u64) {
        self.spawn(id);
        self.wait_node_ready(id, Duration::from_secs(30));
    }

    /// SIGTERM node `id` and wait for its exit; returns the exit status.
    pub fn sigterm(&mut self, id: u64) -> ExitStatus {
        if self.node(id).paused {
            self.resume(id);
        }
        let mut s = self
            .node_mut(id)
            .server
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        s.sigterm()
    }

    /// Waits until every live node has applied everything the leader committed, and the
    /// leader has committed everything it appended, with the same indexes for 200 ms.
    pub fn wait_caught_up(&self, timeout: Duration) {
        let mut stable = 0;
        let mut last = None;
        self.wait_for(timeout, "the nodes did not catch up", || {
            let now = self.applied_indexes();
            stable = if now.is_some() && now == last {
                stable + 1
            } else {
                0
            };
            last = now;
            // The same readings over four polls in a row, 50 ms apart.
            (stable >= 4).then_some(())
        })
    }

    /// Every live node's applied index, if all agree with the leader's commit index and
    /// every one is ready.
    fn applied_indexes(&self) -> Option<Vec<u64>> {
        let leader = self.agreed_leader()?;
        let ls = self.status(leader)?;
        let commit = ls["commit_index"].as_u64()?;
        if ls["last_log_index"].as_u64()? != commit {
            return None;
        }
        let mut v = Vec::new();
        for id in self.live() {
            let applied = self.status(id)?["applied_index"].as_u64()?;
            // Applied, and serving: not a leader stepping down (503) or restarting.
            let ready =
                self.quick_client(id, Duration::from_secs(2))
                    .call("GET", "/readyz", &[], None);
            if applied != commit || ready.status != 200 {
                return None;
            }
            v.push(applied);
        }
        Some(v)
    }

    /// Stops every running node: all get SIGTERM at once (so that none commits more
    /// while another is already down), then each must exit 0.
    pub fn stop_all(&mut self) {
        let ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.server.is_some())
            .map(|(id, _)| *id)
            .collect();
        for &id in &ids {
            if self.node(id).paused {
                self.resume(id);
            }
        }
        for &id in &ids {
            self.node_mut(id)
                .server
                .as_mut()
                .expect("running")
                .signal(libc::SIGTERM);
        }
        for &id in &ids {
            let mut s = self.node_mut(id).server.take().expect("running");
            let status = s.wait_exit(Duration::from_secs(30));
            assert_eq!(
                status.code(),
                Some(0),
                "node {id} should exit 0 on SIGTERM, got {status}\n{}",
                s.logs()
            );
        }
    }

    /// Starts every node of `ids` that is not running and waits for an agreed leader.
    pub fn start_all(&mut self, ids: &[u64]) {
        let stopped: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| self.node(*id).server.is_none())
            .collect();
        for &id in &stopped {
            self.spawn(id);
        }
        for &id in &stopped {
            self.wait_node_ready(id, Duration::from_secs(30));
        }
        self.wait_leader(Duration::from_secs(20));
    }

    /// `slotpool verify` of stopped node `id`: stream -> "<n> records, tip <hex>", all
    /// streams but the node-local `raft/` ones. Fails unless verify exits 0.
    pub fn chains(&self, id: u64) -> BTreeMap<String, String> {
        let dir = &self.node(id).spec.data_dir;
        let v = verify(dir);
        assert_eq!(
            v.code,
            Some(0),
            "verify of node {id} ({}): {v:#?}",
            dir.display()
        );
        parse_chains(&v.stdout)
    }

    /// Stops every node and asserts that every node in `ids` has the same journal: the
    /// same streams, record counts and tips. When the record counts differ (a node had
    /// not applied the last entries yet), the nodes are started again, allowed to catch
    /// up and compared again, up to three times; a tip that differs at the same record
    /// count is a divergence and fails at once. Leaves the nodes stopped.
    pub fn assert_chains_identical(&mut self, ids: &[u64]) {
        for attempt in 0..3 {
            if !self.live().is_empty() {
                self.wait_caught_up(Duration::from_secs(30));
            }
            self.stop_all();
            let chains: BTreeMap<u64, BTreeMap<String, String>> =
                ids.iter().map(|&id| (id, self.chains(id))).collect();
            let first = &chains[&ids[0]];
            assert!(
                first.keys().any(|s| s == "directory"),
                "verify lists no `directory` stream: {first:?}"
            );
            for (s, line) in first {
                assert!(
                    line.contains(" tip "),
                    "verify must print each stream's tip (the cluster contract): {s}: {line}"
                );
            }
            let mut lagging = false;
            for (&id, c) in &chains {
                for (stream, line) in c.iter().chain(first.iter()) {
                    let (a, b) = (first.get(stream), c.get(stream));
                    if a == b {
                        continue;
                    }
                    let count = |l: Option<&String>| {
                        l.and_then(|l| l.split_whitespace().next().map(str::to_string))
                    };
                    assert!(
                        count(a) != count(b),
                        "node {id} diverges from node {} on {stream}: {b:?} vs {a:?} ({line})",
                        ids[0]
                    );
                    lagging = true;
                }
            }
            if !lagging {
                return;
            }
            eprintln!("chains differ in length (attempt {attempt}): {chains:#?}; catching up");
            self.start_all(ids);
        }
        panic!("the nodes' journals still differ in length after three catch-ups");
    }

    /// `slotpool audit --format json` of product `p` on stopped node `id`'s data dir:
    /// the node's own state, read from its journal alone.
    pub fn audit(&self, id: u64, product: &str) -> Value {
        let dir = self.node(id).spec.data_dir.display().to_string();
        let out = run_cli(&[
            "audit",
            "--data-dir",
            &dir,
            "--product",
            product,
            "--format",
            "json",
        ]);
        assert_eq!(out.code, Some(0), "audit of node {id}: {out:#?}");
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("audit of node {id} is not JSON ({e}): {}", out.stdout))
    }

    /// On stopped nodes: every node's own journal shows the same holders and queue of
    /// `product`, and they obey the pool rules (holders <= shared slots, each user in one
    /// place). Returns node 1's (or the first id's) audit.
    pub fn assert_pools_identical_offline(&self, ids: &[u64], product: &str) -> Value {
        let audits: Vec<(u64, Value)> = ids
            .iter()
            .map(|&id| (id, self.audit(id, product)))
            .collect();
        let (first_id, first) = &audits[0];
        for (id, a) in &audits {
            assert_eq!(
                a["holders"], first["holders"],
                "holders of {product} on node {id} vs node {first_id}"
            );
            assert_eq!(
                a["queue"], first["queue"],
                "queue of {product} on node {id} vs node {first_id}"
            );
            let holders = user_names(&a["holders"]);
            let queue = user_names(&a["queue"]);
            let shared = a["product"]["shared_slots"].as_u64().unwrap_or(0) as usize;
            assert!(
                holders.len() <= shared,
                "node {id}: {} holders > {shared} shared slots",
                holders.len()
            );
            let mut seen = HashSet::new();
            for u in holders.iter().chain(&queue) {
                assert!(
                    seen.insert(u.clone()),
                    "node {id}: {u} is in two places: {a}"
                );
            }
        }
        first.clone()
    }

    /// Node `id`'s `/metrics` text.
    pub fn metrics(&self, id: u64) -> String {
        self.quick_client(id, Duration::from_secs(5))
            .call("GET", "/metrics", &[], None)
            .body
    }

    /// An admin call through node `via`, as a client would make it: a 503 (no leader
    /// known yet, an election on a busy machine) is retried after its `Retry-After`, for
    /// up to 15 s; any other status must be one of `ok` at once. Returns the answer.
    pub fn admin_retrying(
        &self,
        via: u64,
        method: &str,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Resp {
        let c = self.client(via);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = c.admin(method, path, body);
            if ok.contains(&r.status) {
                return r;
            }
            assert!(
                r.status == 503 && Instant::now() < deadline,
                "{method} {path}: {r:?}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Creates a product through node `via` (any node: followers forward) and enrols
    /// `users`.
    pub fn product_with_users(&self, via: u64, product: &str, settings: Value, users: &[String]) {
        self.admin_retrying(
            via,
            "PUT",
            &format!("/admin/v1/products/{product}"),
            Some(&settings),
            &[200, 201],
        );
        for u in users {
            let path = format!("/admin/v1/products/{product}/members/{u}");
            self.admin_retrying(via, "PUT", &path, None, &[204]);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Resume paused processes so that the servers' drop can kill and reap them.
        for n in self.nodes.values_mut() {
            if n.paused {
                if let Some(s) = n.server.as_mut() {
                    if s.try_wait().is_none() {
                        // SAFETY: plain syscall on the pid of our own child.
                        unsafe { libc::kill(s.pid(), libc::SIGCONT) };
                    }
                }
            }
        }
        if std::thread::panicking() {
            eprintln!("=== cluster at failure: {}", self.statuses());
        }
    }
}

/// The user names of an admin list (`[{"user": ...}]`).
fn user_names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["user"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses `slotpool verify`'s stream lines (`<stream>: <rest>, hash chain intact`) into
/// stream -> rest, leaving out the summary and the node-local `raft/` streams.
pub fn parse_chains(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter(|l| !l.starts_with("verify:"))
        .filter_map(|l| l.split_once(": "))
        .filter(|(stream, _)| !stream.starts_with("raft/"))
        .map(|(stream, rest)| {
            (
                stream.to_string(),
                rest.trim_end_matches(", hash chain intact").to_string(),
            )
        })
        .collect()
}

/// Runs `slotpool <args>` and collects its output.
pub fn run_cli(args: &[&str]) -> Output {
    run_cli_env(args, &[])
}

/// Runs `slotpool <args>` with more environment variables.
pub fn run_cli_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = slotpool_command();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run slotpool");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A big pool: every request grants (the linearizability checker's model).
pub fn roomy_product(users: usize) -> Value {
    let n = users as u64 + 8;
    json!({"kind": "jira", "licence_tier": n, "shared_slots": n})
}

// ---------------------------------------------------------------------------------------
// Load across the cluster

/// How one cluster load client behaves.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Every node's base URL; client `i` starts on node `i % len` and moves to the next
    /// node after an unacknowledged operation.
    pub bases: Vec<String>,
    pub product: String,
    /// A read (`GET .../slot`, on a random node) after about one in `read_every`
    /// acknowledged writes; 0: no reads.
    pub read_every: u64,
    /// Per-call timeout of the clients (a paused node never answers).
    pub timeout: Duration,
    /// Pause after an unacknowledged operation before the retry.
    pub retry_pause: Duration,
}

impl LoadPlan {
    /// Writes and a read now and then, on every node of `bases`.
    pub fn new(bases: Vec<String>, product: &str) -> LoadPlan {
        LoadPlan {
            bases,
            product: product.to_string(),
            read_every: 3,
            timeout: Duration::from_secs(5),
            retry_pause: Duration::from_millis(50),
        }
    }
}

/// The fault tests' checked load: every one of `users` toggles request/release on product
/// `lin` through every node, 20 ms apart, each operation recorded in `rec` (for the
/// linearizability check); returns once 50 operations were acknowledged.
pub fn start_lin_load(
    bases: Vec<String>,
    users: &[String],
    rec: &Arc<Recorder>,
    stop: &Arc<AtomicBool>,
) -> Load {
    let tracks = users
        .iter()
        .map(|u| Track::new(u, Known::None).thinking(20))
        .collect();
    let load = start_cluster_load(
        &LoadPlan::new(bases, "lin"),
        tracks,
        Some(Arc::clone(rec)),
        stop,
    );
    load.wait_for_acks(50, Duration::from_secs(60));
    load
}

/// Starts one client per track that toggles request/release for its user until `stop`,
/// through every node of the plan, retrying an unacknowledged operation (503, lost
/// connection, timeout) on the next node: the track's `in_flight` is the operation
/// that was unacknowledged when `stop` came, if any. Every answer other than 200
/// (request), 204 (release), 200 (read) or 503 is `unexpected` and ends that client.
/// With a recorder, every operation is recorded (key `product/user`).
pub fn start_cluster_load(
    plan: &LoadPlan,
    tracks: Vec<Track>,
    recorder: Option<Arc<Recorder>>,
    stop: &Arc<AtomicBool>,
) -> Load {
    let acks = Arc::new(AtomicU64::new(0));
    let handles = tracks
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let plan = plan.clone();
            let stop = Arc::clone(stop);
            let acks = Arc::clone(&acks);
            let recorder = recorder.clone();
            std::thread::spawn(move || {
                cluster_worker(&plan, i, t, recorder.as_deref(), &stop, &acks)
            })
        })
        .collect();
    Load { handles, acks }
}

fn cluster_worker(
    plan: &LoadPlan,
    index: usize,
    mut t: Track,
    rec: Option<&Recorder>,
    stop: &AtomicBool,
    acks: &AtomicU64,
) -> Track {
    let clients: Vec<Client> = plan
        .bases
        .iter()
        .map(|b| Client::with_timeout(b, "", plan.timeout))
        .collect();
    let path = format!("/api/v1/products/{}/slot", plan.product);
    let key = format!("{}/{}", plan.product, t.user);
    let mut rng = Rng::seeded(t.user.bytes().fold(0x9E37_79B9_7F4A_7C15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    }));
    let mut node = index % clients.len();
    let headers = [("X-Slotpool-User", t.user.as_str())];
    while !stop.load(Ordering::SeqCst) {
        let op = if t.last == Known::None {
            Op::Request
        } else {
            Op::Release
        };
        let (method, call) = match op {
            Op::Request => ("POST", Call::Request),
            Op::Release => ("DELETE", Call::Release),
        };
        let id = rec.map(|r| r.invoke(&key, call));
        let answer = clients[node].try_call(method, &path, &headers, None);
        let outcome = match (&answer, op) {
            (Ok(r), Op::Request) if r.status == 200 => match r.state().as_str() {
                "granted" => Some((Known::Granted, "granted")),
                "queued" => Some((Known::Queued, "queued")),
                _ => None,
            },
            (Ok(r), Op::Release) if r.status == 204 => Some((Known::None, "none")),
            _ => None,
        };
        match (outcome, &answer) {
            (Some((known, state)), _) => {
                if let (Some(r), Some(id)) = (rec, id) {
                    r.answer(id, state);
                }
                t.last = known;
                t.in_flight = None;
                t.acked += 1;
                acks.fetch_add(1, Ordering::SeqCst);
            }
            (None, Ok(r)) if r.status == 503 => {
                t.in_flight = Some(op);
                t.transport_error = Some(format!("{r:?}"));
                node = (node + 1) % clients.len();
                std::thread::sleep(plan.retry_pause);
                continue;
            }
            (None, Err(e)) => {
                t.in_flight = Some(op);
                t.transport_error = Some(e.0.clone());
                node = (node + 1) % clients.len();
                std::thread::sleep(plan.retry_pause);
                continue;
            }
            (None, Ok(r)) => {
                t.in_flight = Some(op);
                t.unexpected
                    .push(format!("{method} {path} on {}: {r:?}", plan.bases[node]));
                break;
            }
        }
        if plan.read_every > 0 && rng.next() % plan.read_every == 0 {
            let on = rng.range(0, clients.len() as u64) as usize;
            let id = rec.map(|r| r.invoke(&key, Call::Read));
            match clients[on].try_call("GET", &path, &headers, None) {
                Ok(r) if r.status == 200 => {
                    if let (Some(rec), Some(id)) = (rec, id) {
                        rec.answer(id, &r.state());
                    }
                }
                Ok(r) if r.status == 503 => {}
                Err(_) => {}
                Ok(r) => {
                    t.unexpected
                        .push(format!("GET {path} on {}: {r:?}", plan.bases[on]));
                    break;
                }
            }
        }
        if t.think_ms > 0 {
            let ms = rng.range(t.think_ms / 2, t.think_ms + 1);
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
    t
}

/// Sends a request (`POST .../slot`) for `user`, who must hold nothing yet (so that the
/// answer is a change that went through the log), to the nodes `to` in turn until one
/// is answered 200; returns the time from `since` to that answer. Fails after `timeout`.
pub fn first_write_after(
    cluster: &Cluster,
    to: &[u64],
    product: &str,
    user: &str,
    since: Instant,
    timeout: Duration,
) -> Duration {
    let path = format!("/api/v1/products/{product}/slot");
    let clients: Vec<Client> = to
        .iter()
        .map(|&id| cluster.quick_client(id, Duration::from_millis(500)))
        .collect();
    let mut i = 0;
    loop {
        let r =
            clients[i % clients.len()].try_call("POST", &path, &[("X-Slotpool-User", user)], None);
        if let Ok(r) = &r {
            if r.status == 200 {
                return since.elapsed();
            }
            assert!(
                r.status == 503,
                "a write during a failover answers 200 or 503, got {r:?}"
            );
        }
        assert!(
            since.elapsed() < timeout,
            "no write was served within {timeout:?} of the fault: {}",
            cluster.statuses()
        );
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The administrator of the cluster tests: enrols `extra-<n>` users one at a time
/// through the nodes in turn, retrying an unacknowledged enrolment on the next node.
/// Returns (acknowledged, in flight at the stop, unexpected answers).
pub fn start_admin_load(
    bases: Vec<String>,
    product: &str,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, bool, Vec<String>)> {
    start_admin_load_from(bases, product, 0, stop)
}

/// Like [`start_admin_load`], going on after `from` acknowledged enrolments (the next
/// is `extra-<from>`); the count it returns includes them.
pub fn start_admin_load_from(
    bases: Vec<String>,
    product: &str,
    from: u64,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, bool, Vec<String>)> {
    let stop = Arc::clone(stop);
    let product = product.to_string();
    std::thread::spawn(move || {
        let clients: Vec<Client> = bases
            .iter()
            .map(|b| Client::with_timeout(b, ADMIN_TOKEN, Duration::from_secs(5)))
            .collect();
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let (mut acked, mut in_flight, mut unexpected) = (from, false, Vec::new());
        let mut node = 0;
        while !stop.load(Ordering::SeqCst) {
            let path = format!("/admin/v1/products/{product}/members/extra-{acked}");
            match clients[node].try_call("PUT", &path, &[("Authorization", &auth)], None) {
                Ok(r) if r.status == 204 => {
                    acked += 1;
                    in_flight = false;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(r) if r.status == 503 => {
                    in_flight = true;
                    node = (node + 1) % clients.len();
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(_) => {
                    in_flight = true;
                    node = (node + 1) % clients.len();
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(r) => {
                    unexpected.push(format!("PUT {path}: {r:?}"));
                    break;
                }
            }
        }
        (acked, in_flight, unexpected)
    })
}

/// Asserts that the administrator's acknowledged enrolments are all there: the product
/// has `base + acked` members, or one more when an enrolment was in flight at the stop.
#[track_caller]
pub fn assert_admin_changes_kept(view: &Value, base: u64, acked: u64, in_flight: bool) {
    let members = view["members"].as_u64().unwrap_or(0);
    let ok = members == base + acked || (in_flight && members == base + acked + 1);
    assert!(
        ok,
        "acknowledged enrolments lost: {members} members, expected {} (+1 in flight: {in_flight}): {view}",
        base + acked
    );
}

/// The newest regular file under `dir` (recursively), by modification time then name.
pub fn newest_file(dir: &Path) -> Option<PathBuf> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() && m.len() > 0 {
                let t = m.modified().unwrap_or(std::time::UNIX_EPOCH);
                if best.as_ref().is_none_or(|(bt, bp)| (t, &p) > (*bt, bp)) {
                    best = Some((t, p));
                }
            }
        }
    }
    best.map(|(_, p)| p)
}

/// The value of one sample in a Prometheus text exposition: `name` is the metric name
/// with its labels as exposed (`slotpool_raft_is_leader`, `slotpool_raft_peer_up{peer="3"}`).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k.trim() == name).then(|| v.trim().parse().ok()).flatten()
    })
}
