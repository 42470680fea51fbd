//! A small fault-injecting TCP proxy in front of each cluster node's Raft port.
//!
//! Every node dials its peers at the address in its `[[cluster.peers]]` list; the tests
//! put one listener of this proxy there per node, which relays to that node's real
//! `raft_listen`. The inter-node wire starts every connection with a 17-byte hello
//! (`SLOTRAFT`, version byte `1`, the dialing node's id as a big-endian u64), so the proxy
//! learns which node a connection comes from, forwards the hello unchanged and relays the
//! rest both ways.
//!
//! Faults are per ordered pair of nodes: [`FaultProxy::block`]`(from, to)` cuts the
//! connections `from` opened to `to` (both byte directions on them: a request and its
//! answer travel on the connection of the node that asked) and refuses new ones until
//! [`FaultProxy::heal`]. [`FaultProxy::isolate`] blocks a node in both directions with
//! every other node, which is a partition of that node from the rest. A connection whose
//! hello is not a valid one is relayed as it is (its source is unknown), unless its
//! destination is isolated: the node then judges the garbage itself.
//!
//! Plain std threads and blocking sockets, as the rest of the test harness.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The bytes every inter-node connection starts with, before the source node's id.
pub const HELLO_MAGIC: &[u8; 8] = b"SLOTRAFT";
/// The wire version in the hello.
pub const HELLO_VERSION: u8 = 1;
/// The hello's length: magic, version, u64 node id.
pub const HELLO_LEN: usize = 17;

/// The hello a node with `id` sends first on every connection it opens.
pub fn hello(id: u64) -> [u8; HELLO_LEN] {
    let mut h = [0u8; HELLO_LEN];
    h[..8].copy_from_slice(HELLO_MAGIC);
    h[8] = HELLO_VERSION;
    h[9..].copy_from_slice(&id.to_be_bytes());
    h
}

/// The source node named by a hello, if it is a valid one.
pub fn parse_hello(h: &[u8]) -> Option<u64> {
    if h.len() != HELLO_LEN || &h[..8] != HELLO_MAGIC || h[8] != HELLO_VERSION {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[9..]);
    Some(u64::from_be_bytes(id))
}

/// One relayed connection: `from` (None: no valid hello) dialed the node `to`.
struct Conn {
    id: u64,
    from: Option<u64>,
    to: u64,
    /// Clones of both sockets, to cut the connection from outside its relay threads.
    client: TcpStream,
    upstream: TcpStream,
}

impl Conn {
    fn cut(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

/// What is blocked, and the live connections.
#[derive(Default)]
struct Faults {
    blocked: HashSet<(u64, u64)>,
    isolated: HashSet<u64>,
    conns: Vec<Conn>,
    /// Connections refused (or cut) because of a fault, per (from, to); for the tests.
    refused: BTreeMap<(Option<u64>, u64), u64>,
}

impl Faults {
    fn is_blocked(&self, from: Option<u64>, to: u64) -> bool {
        if from == Some(to) {
            return false;
        }
        self.isolated.contains(&to)
            || from.is_some_and(|f| self.isolated.contains(&f) || self.blocked.contains(&(f, to)))
    }

    /// Cuts every live connection that is now blocked.
    fn cut_blocked(&mut self) {
        let (cut, keep): (Vec<Conn>, Vec<Conn>) = std::mem::take(&mut self.conns)
            .into_iter()
            .partition(|c| self.is_blocked(c.from, c.to));
        for c in &cut {
            c.cut();
            *self.refused.entry((c.from, c.to)).or_default() += 1;
        }
        self.conns = keep;
    }
}

struct Shared {
    faults: Mutex<Faults>,
    stopping: AtomicBool,
    next_conn: AtomicU64,
}

impl Shared {
    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        // A relay thread that panicked while holding the lock leaves it usable.
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The listener standing in front of one node.
struct Front {
    port: u16,
    target: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

/// The proxy: one listener per node, and the faults shared by all of them.
pub struct FaultProxy {
    shared: Arc<Shared>,
    fronts: BTreeMap<u64, Front>,
}

impl Default for FaultProxy {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultProxy {
    /// A proxy with no node yet.
    pub fn new() -> FaultProxy {
        FaultProxy {
            shared: Arc::new(Shared {
                faults: Mutex::new(Faults::default()),
                stopping: AtomicBool::new(false),
                next_conn: AtomicU64::new(0),
            }),
            fronts: BTreeMap::new(),
        }
    }

    /// Listens on a free loopback port for node `to`, relaying to `target` (its real
    /// `raft_listen`); returns the port, which is what the peers list names as the
    /// node's `raft` address. The target need not listen yet: a connection made while
    /// it does not is closed, and the dialing node reconnects.
    pub fn add_node(&mut self, to: u64, target: SocketAddr) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy listener");
        let port = listener.local_addr().expect("proxy local addr").port();
        let shared = Arc::clone(&self.shared);
        let accept = std::thread::Builder::new()
            .name(format!("fault-proxy-{to}"))
            .spawn(move || accept_loop(listener, to, target, shared))
            .expect("spawn the proxy's accept thread");
        self.fronts.insert(
            to,
            Front {
                port,
                target,
                accept: Some(accept),
            },
        );
        port
    }

    /// The port standing in front of node `id`.
    pub fn port(&self, id: u64) -> u16 {
        self.fronts
            .get(&id)
            .unwrap_or_else(|| panic!("no proxy for node {id}"))
            .port
    }

    /// `127.0.0.1:<port>` of node `id`'s proxy, as the peers list names it.
    pub fn addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.port(id))
    }

    /// The real address the proxy of node `id` relays to.
    pub fn target(&self, id: u64) -> SocketAddr {
        self.fronts
            .get(&id)
            .unwrap_or_else(|| panic!("no proxy for node {id}"))
            .target
    }

    /// The nodes the proxy stands in front of.
    pub fn nodes(&self) -> Vec<u64> {
        self.fronts.keys().copied().collect()
    }

    /// Cuts the connections `from` opened to `to` and refuses new ones until [`heal`].
    ///
    /// [`heal`]: FaultProxy::heal
    pub fn block(&self, from: u64, to: u64) {
        let mut f = self.shared.faults();
        f.blocked.insert((from, to));
        f.cut_blocked();
    }

    /// Cuts `node` off from every other node, both ways, until [`heal`].
    ///
    /// [`heal`]: FaultProxy::heal
    pub fn isolate(&self, node: u64) {
        let mut f = self.shared.faults();
        f.isolated.insert(node);
        f.cut_blocked();
    }

    /// Lifts every fault; the nodes reconnect by themselves.
    pub fn heal(&self) {
        let mut f = self.shared.faults();
        f.blocked.clear();
        f.isolated.clear();
    }

    /// Cuts every live connection without blocking anything (the nodes reconnect).
    pub fn cut_all(&self) {
        let mut f = self.shared.faults();
        for c in f.conns.drain(..) {
            c.cut();
        }
    }

    /// Whether traffic from `from` to `to` is blocked now.
    pub fn is_blocked(&self, from: u64, to: u64) -> bool {
        self.shared.faults().is_blocked(Some(from), to)
    }

    /// Live relayed connections per (source, destination); source `None` = no valid hello.
    pub fn connections(&self) -> BTreeMap<(Option<u64>, u64), usize> {
        let mut m = BTreeMap::new();
        for c in &self.shared.faults().conns {
            *m.entry((c.from, c.to)).or_default() += 1;
        }
        m
    }

    /// Connections refused or cut by a fault so far, per (source, destination).
    pub fn refused(&self) -> BTreeMap<(Option<u64>, u64), u64> {
        self.shared.faults().refused.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for front in self.fronts.values_mut() {
            // Wake the blocking accept so that the thread sees `stopping`.
            let _ = TcpStream::connect(("127.0.0.1", front.port));
            if let Some(h) = front.accept.take() {
                let _ = h.join();
            }
        }
        let mut f = self.shared.faults();
        for c in f.conns.drain(..) {
            c.cut();
        }
    }
}

fn accept_loop(listener: TcpListener, to: u64, target: SocketAddr, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name(format!("fault-proxy-conn-{to}"))
            .spawn(move || handle(stream, to, target, &shared));
    }
}

/// Reads the hello, decides, connects upstream, relays both ways until either side ends.
fn handle(mut client: TcpStream, to: u64, target: SocketAddr, shared: &Arc<Shared>) {
    let _ = client.set_nodelay(true);
    // A node sends its hello at once; one that does not within 10 s is dropped.
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let mut first = Vec::with_capacity(HELLO_LEN);
    let mut buf = [0u8; HELLO_LEN];
    while first.len() < HELLO_LEN {
        match client.read(&mut buf[..HELLO_LEN - first.len()]) {
            Ok(0) => break,
            Ok(n) => first.extend_from_slice(&buf[..n]),
            Err(_) => return,
        }
    }
    if first.is_empty() {
        return;
    }
    let _ = client.set_read_timeout(None);
    let from = parse_hello(&first);
    if shared.faults().is_blocked(from, to) {
        *shared.faults().refused.entry((from, to)).or_default() += 1;
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(mut upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = upstream.set_nodelay(true);
    if upstream.write_all(&first).is_err() {
        return;
    }
    let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = (
        client.try_clone(),
        upstream.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
    ) else {
        return;
    };
    let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
    {
        // Decide and register under one lock, so a block() in between cannot miss it.
        let mut f = shared.faults();
        if f.is_blocked(from, to) || shared.stopping.load(Ordering::SeqCst) {
            *f.refused.entry((from, to)).or_default() += 1;
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
            return;
        }
        f.conns.push(Conn {
            id,
            from,
            to,
            client: c3,
            upstream: u3,
        });
    }
    let back = std::thread::Builder::new()
        .name(format!("fault-proxy-back-{to}"))
        .spawn(move || pump(u2, c2));
    pump(client, upstream);
    if let Ok(h) = back {
        let _ = h.join();
    }
    shared.faults().conns.retain(|c| c.id != id);
}

/// Copies `src` to `dst` until either ends, then ends both.
fn pump(mut src: TcpStream, mut dst: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if dst.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = src.shutdown(Shutdown::Both);
    let _ = dst.shutdown(Shutdown::Both);
}
