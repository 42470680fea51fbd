//! The listening side of the wire: authenticates each connection, then hands its
//! requests to the local Raft.

use crate::network::{Reply, Request};
use crate::types::TypeConfig;
use crate::wire::{self, Ack, Auth, Session};
use openraft::Raft;
use std::sync::Arc;
use std::time::Duration;
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

async fn connection(
    mut stream: TcpStream,
    raft: Raft<TypeConfig>,
    auth: &Auth,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
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
    let mut session = Session::new(auth, &hello.nonce, &ours, false);
    // Buffered from here on (nothing was read ahead during the handshake): a frame is then
    // one `recv`, not one per part (length, payload, tag).
    let mut stream = tokio::io::BufReader::new(stream);
    loop {
        let request: Request = session.receive(&mut stream).await?;
        let reply = match request {
            Request::Append(r) => Reply::Append(raft.append_entries(r).await),
            Request::Vote(r) => Reply::Vote(raft.vote(r).await),
            Request::Snapshot(r) => Reply::Snapshot(raft.install_snapshot(r).await),
        };
        session.send(&mut stream, &reply).await?;
    }
}
