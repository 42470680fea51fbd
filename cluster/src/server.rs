//! The listening side of the wire: authenticates each connection, then hands its
//! requests to the local Raft.

use crate::network::{Reply, Request};
use crate::types::TypeConfig;
use crate::wire::{self, Ack, Auth, Session};
use openraft::Raft;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How long a new connection may take to say who it is.
const HELLO: Duration = Duration::from_secs(5);

/// Accepts connections on `listener` for as long as the runtime runs.
pub async fn serve(listener: TcpListener, raft: Raft<TypeConfig>, auth: Arc<Auth>) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let raft = raft.clone();
                let auth = Arc::clone(&auth);
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, raft, &auth).await {
                        if e.kind() == std::io::ErrorKind::PermissionDenied {
                            tracing::error!(peer = %from, reason = %e, "refused a cluster connection");
                        } else if e.kind() != std::io::ErrorKind::UnexpectedEof {
                            tracing::debug!(peer = %from, error = %e, "cluster connection ended");
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a cluster connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(stream: TcpStream, raft: Raft<TypeConfig>, auth: &Auth) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    // A peer that dies (power, a partition that swallows the FIN) is found by the
    // kernel's probes, not never: an idle connection is legitimate (a vote connection
    // between elections), so there is no idle timeout.
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(10))
            .with_interval(Duration::from_secs(5))
            .with_retries(3),
    );
    let (mut session, mut stream) = accept(stream, auth).await?;
    let mut request: Request = first_request(&mut session, &mut stream, HELLO).await?;
    loop {
        let reply = match request {
            Request::Append(r) => Reply::Append(raft.append_entries(r).await),
            Request::Vote(r) => Reply::Vote(raft.vote(r).await),
            Request::Snapshot(r) => Reply::Snapshot(raft.install_snapshot(r).await),
        };
        session.send(&mut stream, &reply).await?;
        request = session.receive(&mut stream).await?;
    }
}

/// The handshake of a new connection: the dialer's opening and hello (within [`HELLO`]),
/// checked, and this node's answer; then the session, over a buffered stream (nothing
/// was read ahead during the handshake: a frame is then one `recv`, not one per part).
async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    auth: &Auth,
) -> std::io::Result<(Session, BufReader<S>)> {
    let (dialer, hello) = tokio::time::timeout(HELLO, async {
        let dialer = wire::read_opening(&mut stream).await?;
        let hello = wire::read_hello(&mut stream, auth).await?;
        Ok::<_, std::io::Error>((dialer, hello))
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no hello in time"))??;
    let refusal = if hello.cluster_id != auth.cluster_id {
        Some(format!(
            "cluster id mismatch: node {} belongs to cluster {:?}, this node to {:?}",
            hello.from, hello.cluster_id, auth.cluster_id
        ))
    } else if hello.to != auth.me {
        Some(format!(
            "node {} dialed node {} but reached node {}: the peer lists disagree",
            hello.from, hello.to, auth.me
        ))
    } else if hello.from != dialer {
        Some("the opening and the hello name different nodes".to_string())
    } else {
        None
    };
    if let Some(reason) = refusal {
        wire::send_ack(
            &mut stream,
            auth,
            &hello.nonce,
            &Ack {
                result: Err(reason.clone()),
            },
        )
        .await?;
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            reason,
        ));
    }
    let ours = wire::nonce();
    wire::send_ack(&mut stream, auth, &hello.nonce, &Ack { result: Ok(ours) }).await?;
    let session = Session::new(auth, &hello.nonce, &ours, false);
    Ok((session, BufReader::new(stream)))
}

/// The connection's first request, which a dialer sends as soon as it has connected (it
/// dials to send one). Why a deadline: a hello is not bound to its connection, so one
/// captured on the wire can be replayed; the replayer cannot make a frame the session
/// accepts, and without the deadline each replay held a connection (and a task) for
/// ever, until the node ran out of descriptors.
async fn first_request<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session,
    stream: &mut BufReader<S>,
    within: Duration,
) -> std::io::Result<Request> {
    // The deadline is on the frame's first bytes, not on all of it: a first request may
    // be a large batch or snapshot chunk on a slow link.
    tokio::time::timeout(within, stream.fill_buf())
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no request after the handshake",
            )
        })??;
    session.receive(stream).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Hello;

    /// A dialer that completes the handshake (or replays a captured hello) and then says
    /// nothing is cut off after the deadline; one that sends a request is heard.
    #[tokio::test]
    async fn a_connection_that_sends_nothing_after_the_handshake_is_closed() {
        let server = Auth {
            secret: b"s3cret-s3cret-s3cret".to_vec(),
            cluster_id: "c".into(),
            me: 2,
        };
        let client = Auth {
            secret: server.secret.clone(),
            cluster_id: "c".into(),
            me: 1,
        };
        for speaks in [false, true] {
            let (mut x, y) = tokio::io::duplex(1 << 16);
            let hello = Hello {
                cluster_id: "c".into(),
                from: 1,
                to: 2,
                nonce: wire::nonce(),
            };
            let dialer = async {
                tokio::io::AsyncWriteExt::write_all(&mut x, &wire::opening(1)).await?;
                wire::send_hello(&mut x, &client, &hello).await?;
                let ack = wire::read_ack(&mut x, &client, &hello.nonce).await?;
                let theirs = ack.result.map_err(std::io::Error::other)?;
                let mut session = Session::new(&client, &hello.nonce, &theirs, true);
                if speaks {
                    let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(1, 1), None);
                    session.send(&mut x, &Request::Vote(vote)).await?;
                }
                Ok::<_, std::io::Error>(x)
            };
            let listener = async {
                let (mut session, mut stream) = accept(y, &server).await?;
                first_request(&mut session, &mut stream, Duration::from_millis(200)).await
            };
            let (dialed, heard) = tokio::join!(dialer, listener);
            let _still_open = dialed.expect("the handshake completes");
            match (speaks, heard) {
                (false, Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
                (true, Ok(Request::Vote(_))) => {}
                (speaks, other) => panic!("speaks {speaks}: {:?}", other.map(|_| "a request")),
            }
        }
    }
}
