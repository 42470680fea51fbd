//! The dialing side of the wire: openraft's network traits over authenticated TCP.

use crate::member::Member;
use crate::types::{NodeId, TypeConfig};
use crate::wire::{self, Ack, Auth, Hello, Session};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::TcpStream;

/// How long a connection and its handshake may take.
const CONNECT: Duration = Duration::from_secs(2);

/// A request from one node to another.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The answer to a [`Request`], as the remote Raft gave it.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum Reply {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
}

/// When each member last answered this node: whether a peer is up, for operators.
pub type Contacts = Arc<std::sync::Mutex<std::collections::BTreeMap<NodeId, std::time::Instant>>>;

/// Makes a [`Peer`] per target for openraft.
#[derive(Clone)]
pub struct Network {
    auth: Arc<Auth>,
    contacts: Contacts,
}

impl Network {
    /// The network of a node holding `auth`, noting answers in `contacts`.
    pub fn new(auth: Arc<Auth>, contacts: Contacts) -> Network {
        Network { auth, contacts }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Peer {
        Peer {
            target,
            addr: node.raft.clone(),
            auth: Arc::clone(&self.auth),
            contacts: Arc::clone(&self.contacts),
            conn: None,
            dialing: None,
            last_refusal: None,
        }
    }
}

/// One connection (made when first needed, remade after a failure) to one member.
pub struct Peer {
    target: NodeId,
    addr: String,
    auth: Arc<Auth>,
    contacts: Contacts,
    conn: Option<Connection>,
    /// The connection being made, in a task of its own ([`Peer::connected`]).
    dialing: Option<tokio::task::JoinHandle<Result<Connection, CallError>>>,
    /// The last refusal logged, so that a misconfigured peer is reported once, not on
    /// every retry.
    last_refusal: Option<String>,
}

/// A connection after its handshake: reads buffered, so that a frame is one `recv`, not
/// one per part (length, payload, tag).
type Connection = (BufReader<TcpStream>, Session);

/// Why a call failed: the other node is not reachable, or talked nonsense.
enum CallError {
    Unreachable(io::Error),
    Network(io::Error),
}

impl Peer {
    /// A connection to the peer, made in a task of its own that the call's deadline does
    /// not cancel: openraft gives an AppendEntries one heartbeat interval (60 ms by
    /// default) for everything, and a handshake (two round trips) that took longer
    /// would be dropped and begun again at every call, never to complete, on a slow
    /// link or a slow machine. The next call takes up the connection the task made.
    async fn connected(&mut self) -> Result<Connection, CallError> {
        let dialing = self.dialing.get_or_insert_with(|| {
            tokio::spawn(dial(self.addr.clone(), Arc::clone(&self.auth), self.target))
        });
        let made = dialing.await;
        self.dialing = None;
        made.unwrap_or_else(|e| Err(CallError::Unreachable(io::Error::other(e.to_string()))))
    }

    fn report(&mut self, e: &io::Error) {
        if e.kind() == io::ErrorKind::PermissionDenied {
            let text = e.to_string();
            if self.last_refusal.as_deref() != Some(text.as_str()) {
                tracing::error!(peer = self.target, addr = %self.addr, reason = %text, "cluster peer refused: check the cluster secret, cluster_id and the peer list");
                self.last_refusal = Some(text);
            }
        }
    }

    async fn call(&mut self, request: Request, ttl: Duration) -> Result<Reply, CallError> {
        let exchange = async {
            let (mut stream, mut session) = match self.conn.take() {
                Some(c) => c,
                None => self.connected().await?,
            };
            if let Err(e) = session.send(&mut stream, &request).await {
                if wire::too_large(&e) {
                    // Nothing was written: the connection is as good as before.
                    self.conn = Some((stream, session));
                }
                return Err(CallError::Network(e));
            }
            let reply: Reply = session
                .receive(&mut stream)
                .await
                .map_err(CallError::Network)?;
            self.conn = Some((stream, session));
            self.last_refusal = None;
            if let Ok(mut c) = self.contacts.lock() {
                c.insert(self.target, std::time::Instant::now());
            }
            Ok(reply)
        };
        let result = match tokio::time::timeout(ttl, exchange).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Network(io::Error::new(
                io::ErrorKind::TimedOut,
                "no answer in time",
            ))),
        };
        if let Err(CallError::Unreachable(e) | CallError::Network(e)) = &result {
            let e = io::Error::new(e.kind(), e.to_string());
            self.report(&e);
        }
        result
    }
}

/// Connects to the peer at `addr` and runs the handshake, within [`CONNECT`].
async fn dial(addr: String, auth: Arc<Auth>, target: NodeId) -> Result<Connection, CallError> {
    let connecting = async {
        let mut stream = TcpStream::connect(&addr)
            .await
            .map_err(CallError::Unreachable)?;
        let _ = stream.set_nodelay(true);
        use tokio::io::AsyncWriteExt;
        stream
            .write_all(&wire::opening(auth.me))
            .await
            .map_err(CallError::Unreachable)?;
        let ours = wire::nonce();
        let hello = Hello {
            cluster_id: auth.cluster_id.clone(),
            from: auth.me,
            to: target,
            nonce: ours,
        };
        wire::send_hello(&mut stream, &auth, &hello)
            .await
            .map_err(CallError::Unreachable)?;
        let Ack { result } = wire::read_ack(&mut stream, &auth, &ours)
            .await
            .map_err(CallError::Unreachable)?;
        match result {
            // Buffered from here on: nothing was read ahead during the handshake.
            Ok(theirs) => Ok((
                BufReader::new(stream),
                Session::new(&auth, &ours, &theirs, true),
            )),
            Err(reason) => Err(CallError::Unreachable(io::Error::new(
                io::ErrorKind::PermissionDenied,
                reason,
            ))),
        }
    };
    match tokio::time::timeout(CONNECT, connecting).await {
        Ok(r) => r,
        Err(_) => Err(CallError::Unreachable(io::Error::new(
            io::ErrorKind::TimedOut,
            "connecting timed out",
        ))),
    }
}

fn rpc_error<E: std::error::Error>(e: CallError) -> RPCError<NodeId, Member, E> {
    match e {
        CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
        CallError::Network(e) => RPCError::Network(NetworkError::new(&e)),
    }
}

fn unexpected<E: std::error::Error>() -> RPCError<NodeId, Member, E> {
    RPCError::Network(NetworkError::new(&io::Error::new(
        io::ErrorKind::InvalidData,
        "the peer answered another kind of request",
    )))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let entries = rpc.entries.len() as u64;
        match self.call(Request::Append(rpc), option.hard_ttl()).await {
            Ok(Reply::Append(r)) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unexpected()),
            // A batch over the wire's frame limit (catch-up batches of large entries):
            // openraft sends fewer entries at once from then on. One entry alone over it
            // cannot be sent at all; it is reported, and openraft tries again later.
            Err(CallError::Network(e)) if wire::too_large(&e) && entries > 1 => Err(
                RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(entries / 2)),
            ),
            Err(CallError::Network(e)) if wire::too_large(&e) => {
                tracing::error!(peer = self.target, error = %e, "a Raft entry is larger than the wire carries; it cannot be replicated");
                Err(rpc_error(CallError::Network(e)))
            }
            Err(e) => Err(rpc_error(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .call(Request::Snapshot(rpc), option.hard_ttl())
            .await
            .map_err(rpc_error)?
        {
            Reply::Snapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        match self
            .call(Request::Vote(rpc), option.hard_ttl())
            .await
            .map_err(rpc_error)?
        {
            Reply::Vote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::Vote;
    use tokio::net::TcpListener;

    fn auth(me: u64) -> Arc<Auth> {
        Arc::new(Auth {
            secret: b"s3cret-s3cret-s3cret".to_vec(),
            cluster_id: "c".into(),
            me,
        })
    }

    /// A peer (node 2) that takes `slow` to answer each handshake, then grants every vote.
    async fn slow_peer(slow: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let me = auth(2);
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(answer_slowly(s, Arc::clone(&me), slow));
            }
        });
        addr
    }

    async fn answer_slowly(mut s: TcpStream, me: Arc<Auth>, slow: Duration) -> io::Result<()> {
        wire::read_opening(&mut s).await?;
        let hello = wire::read_hello(&mut s, &me).await?;
        tokio::time::sleep(slow).await;
        let ours = wire::nonce();
        wire::send_ack(&mut s, &me, &hello.nonce, &Ack { result: Ok(ours) }).await?;
        let mut session = Session::new(&me, &hello.nonce, &ours, false);
        loop {
            if let Request::Vote(v) = session.receive(&mut s).await? {
                let granted = VoteResponse::new(v.vote, None, true);
                session.send(&mut s, &Reply::Vote(Ok(granted))).await?;
            }
        }
    }

    /// Node 1's peer for node 2 at `addr`, not connected yet.
    fn peer_of_node_1(addr: String) -> Peer {
        Peer {
            target: 2,
            addr,
            auth: auth(1),
            contacts: Contacts::default(),
            conn: None,
            dialing: None,
            last_refusal: None,
        }
    }

    fn vote() -> Request {
        Request::Vote(VoteRequest::new(Vote::new(1, 1), None))
    }

    /// A handshake slower than a call's deadline: the first calls time out, but the
    /// connection is made all the same, and a later call is answered on it.
    #[tokio::test]
    async fn a_handshake_slower_than_a_call_deadline_still_connects() {
        let addr = slow_peer(Duration::from_millis(300)).await;
        let mut peer = peer_of_node_1(addr);
        let ttl = Duration::from_millis(50);
        assert!(matches!(
            peer.call(vote(), ttl).await,
            Err(CallError::Network(e)) if e.kind() == io::ErrorKind::TimedOut
        ));
        let mut answered = None;
        for _ in 0..40 {
            match peer.call(vote(), ttl).await {
                Ok(reply) => {
                    answered = Some(reply);
                    break;
                }
                Err(_) => tokio::time::sleep(ttl).await,
            }
        }
        assert!(
            matches!(answered, Some(Reply::Vote(Ok(ref r))) if r.vote_granted),
            "no call was answered within 2 s"
        );
        // The connection stays: the next call needs no handshake.
        assert!(matches!(
            peer.call(vote(), ttl).await,
            Ok(Reply::Vote(Ok(_)))
        ));
    }

    /// A batch of entries over the wire's frame limit is not sent: openraft is told to
    /// send half as many; a single entry over it is a network error (never a hint of 0).
    #[tokio::test]
    async fn a_batch_over_the_frame_limit_asks_for_fewer_entries() {
        use crate::proposal::{Proposal, StreamWrite};
        use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
        let addr = slow_peer(Duration::ZERO).await;
        let mut peer = peer_of_node_1(addr);
        let entry = |index: u64, bytes: usize| Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Proposal {
                writes: vec![StreamWrite {
                    stream: "product/jira".into(),
                    first: 1,
                    records: vec![vec![7u8; bytes]],
                }],
            }),
        };
        let append = |entries: Vec<Entry<TypeConfig>>| AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            entries,
            leader_commit: None,
        };
        let option = RPCOption::new(Duration::from_secs(5));
        let batch = (1..=40).map(|i| entry(i, 2 << 20)).collect();
        match peer.append_entries(append(batch), option.clone()).await {
            Err(RPCError::PayloadTooLarge(e)) => assert_eq!(e.entries_hint(), 20),
            other => panic!("{:?}", other.map(|_| "answered")),
        }
        let alone = vec![entry(1, wire::MAX_FRAME + 1)];
        assert!(matches!(
            peer.append_entries(append(alone), option).await,
            Err(RPCError::Network(_))
        ));
    }
}
