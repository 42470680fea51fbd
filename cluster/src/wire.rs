//! The inter-node wire: a hello that names the dialing node, a mutual handshake over the
//! shared secret, then length-prefixed frames each carrying an HMAC-SHA256 tag.
//!
//! Every connection opens with 17 bytes in the clear: `SLOTRAFT`, the version, and the
//! dialing node's id (big-endian u64), so that a fault-injecting proxy in a test can tell
//! who talks to whom. The hello then proves that both ends hold the secret (each tags the
//! other's fresh nonce) and agree on the cluster id; the session key derived from both
//! nonces tags every later frame with its direction and sequence number, so a frame
//! cannot be forged, replayed or reflected by a process without the secret.

use crate::codec::{decode, encode};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type HmacSha256 = Hmac<Sha256>;

/// The clear-text start of every connection.
pub const MAGIC: &[u8; 8] = b"SLOTRAFT";
/// The wire's version.
pub const VERSION: u8 = 1;
/// Largest frame accepted (a snapshot chunk, a batch of entries), and sent: a larger one
/// is refused before it is written ([`FrameTooLarge`]), for the caller to send less.
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// A frame over [`MAX_FRAME`] was not sent (the peer would refuse it): the error inside
/// the `io::Error` a send returns, told apart by [`too_large`].
#[derive(Debug, thiserror::Error)]
#[error("a frame of {0} bytes is over the wire's {MAX_FRAME}")]
pub(crate) struct FrameTooLarge(pub usize);

/// Whether a send failed because its frame was over [`MAX_FRAME`] (nothing was written).
pub(crate) fn too_large(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<FrameTooLarge>())
}
/// Largest hello accepted.
const MAX_HELLO: usize = 4096;

/// What the two ends share.
pub struct Auth {
    /// The cluster secret's bytes.
    pub secret: Vec<u8>,
    /// The cluster id both ends must agree on.
    pub cluster_id: String,
    /// This node's id.
    pub me: u64,
}

/// The dialer's hello.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub cluster_id: String,
    pub from: u64,
    pub to: u64,
    pub nonce: [u8; 16],
}

/// The answer to a hello: the listener's nonce, or why it refuses.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ack {
    pub result: Result<[u8; 16], String>,
}

fn tag(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn verify(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.verify_slice(expected).is_ok()
}

/// A fresh random nonce.
pub(crate) fn nonce() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// The 17 clear-text bytes a node opens its connections with.
pub(crate) fn opening(from: u64) -> [u8; 17] {
    let mut b = [0u8; 17];
    b[..8].copy_from_slice(MAGIC);
    b[8] = VERSION;
    b[9..].copy_from_slice(&from.to_be_bytes());
    b
}

/// Reads and checks the opening; returns the dialer's id.
pub(crate) async fn read_opening<S: AsyncReadExt + Unpin>(s: &mut S) -> io::Result<u64> {
    let mut b = [0u8; 17];
    s.read_exact(&mut b).await?;
    if &b[..8] != MAGIC {
        return Err(bad("not a slotpool cluster connection"));
    }
    if b[8] != VERSION {
        return Err(bad(format!(
            "wire version {} (this node speaks {VERSION})",
            b[8]
        )));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&b[9..]);
    Ok(u64::from_be_bytes(id))
}

async fn write_raw<S: AsyncWriteExt + Unpin>(
    s: &mut S,
    payload: &[u8],
    mac: &[u8; 32],
) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| bad("frame too large"))?;
    let mut buf = Vec::with_capacity(4 + payload.len() + 32);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    buf.extend_from_slice(mac);
    s.write_all(&buf).await?;
    s.flush().await
}

async fn read_raw<S: AsyncReadExt + Unpin>(
    s: &mut S,
    max: usize,
) -> io::Result<(Vec<u8>, [u8; 32])> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(bad(format!("a frame of {len} bytes (at most {max})")));
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await?;
    let mut mac = [0u8; 32];
    s.read_exact(&mut mac).await?;
    Ok((payload, mac))
}

/// Sends the hello, tagged with the secret.
pub(crate) async fn send_hello<S: AsyncWriteExt + Unpin>(
    s: &mut S,
    auth: &Auth,
    hello: &Hello,
) -> io::Result<()> {
    let payload = encode(hello).map_err(bad)?;
    let mac = tag(&auth.secret, &[b"hello", &payload]);
    write_raw(s, &payload, &mac).await
}

/// Reads a hello; `Err` with a reason a log line can show when it is not from a holder of
/// the secret.
pub(crate) async fn read_hello<S: AsyncReadExt + Unpin>(
    s: &mut S,
    auth: &Auth,
) -> io::Result<Hello> {
    let (payload, mac) = read_raw(s, MAX_HELLO).await?;
    if !verify(&auth.secret, &[b"hello", &payload], &mac) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the peer does not hold this cluster's secret",
        ));
    }
    decode(&payload).map_err(bad)
}

/// Sends the answer to a hello, tagged over the dialer's nonce.
pub(crate) async fn send_ack<S: AsyncWriteExt + Unpin>(
    s: &mut S,
    auth: &Auth,
    their: &[u8; 16],
    ack: &Ack,
) -> io::Result<()> {
    let payload = encode(ack).map_err(bad)?;
    let mac = tag(&auth.secret, &[b"ack", their, &payload]);
    write_raw(s, &payload, &mac).await
}

/// Reads the answer to our hello.
pub(crate) async fn read_ack<S: AsyncReadExt + Unpin>(
    s: &mut S,
    auth: &Auth,
    ours: &[u8; 16],
) -> io::Result<Ack> {
    let (payload, mac) = read_raw(s, MAX_HELLO).await?;
    if !verify(&auth.secret, &[b"ack", ours, &payload], &mac) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the peer does not hold this cluster's secret",
        ));
    }
    decode(&payload).map_err(bad)
}

/// One authenticated direction-aware channel after the handshake.
pub(crate) struct Session {
    key: [u8; 32],
    /// 0 on the dialer's side, 1 on the listener's: the direction this end sends in.
    send_dir: u8,
    sent: u64,
    received: u64,
}

impl Session {
    /// The session of a handshake with nonces `dialer` and `listener`.
    pub(crate) fn new(
        auth: &Auth,
        dialer: &[u8; 16],
        listener: &[u8; 16],
        is_dialer: bool,
    ) -> Session {
        Session {
            key: tag(&auth.secret, &[b"session", dialer, listener]),
            send_dir: if is_dialer { 0 } else { 1 },
            sent: 0,
            received: 0,
        }
    }

    /// Sends `value` as the next frame.
    pub(crate) async fn send<S: AsyncWriteExt + Unpin, T: Serialize>(
        &mut self,
        s: &mut S,
        value: &T,
    ) -> io::Result<()> {
        let payload = encode(value).map_err(bad)?;
        if payload.len() > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                FrameTooLarge(payload.len()),
            ));
        }
        let seq = self.sent.to_be_bytes();
        let mac = tag(&self.key, &[&[self.send_dir], &seq, &payload]);
        self.sent += 1;
        write_raw(s, &payload, &mac).await
    }

    /// Reads the next frame; a frame whose tag fails ends the connection.
    pub(crate) async fn receive<S: AsyncReadExt + Unpin, T: serde::de::DeserializeOwned>(
        &mut self,
        s: &mut S,
    ) -> io::Result<T> {
        let (payload, mac) = read_raw(s, MAX_FRAME).await?;
        let seq = self.received.to_be_bytes();
        if !verify(&self.key, &[&[1 - self.send_dir], &seq, &payload], &mac) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "a frame failed its authentication tag",
            ));
        }
        self.received += 1;
        decode(&payload).map_err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(secret: &str, cluster: &str, me: u64) -> Auth {
        Auth {
            secret: secret.as_bytes().to_vec(),
            cluster_id: cluster.into(),
            me,
        }
    }

    fn hello(from: &Auth, to: u64) -> Hello {
        Hello {
            cluster_id: from.cluster_id.clone(),
            from: from.me,
            to,
            nonce: nonce(),
        }
    }

    #[tokio::test]
    async fn a_holder_of_the_secret_is_heard_and_frames_round_trip() {
        let (a, b) = (
            auth("s3cret-s3cret-s3cret", "c", 1),
            auth("s3cret-s3cret-s3cret", "c", 2),
        );
        let (mut x, mut y) = tokio::io::duplex(1 << 16);
        let h = hello(&a, 2);
        send_hello(&mut x, &a, &h).await.expect("send");
        let got = read_hello(&mut y, &b)
            .await
            .expect("a holder's hello is read");
        assert_eq!((got.from, got.to, got.cluster_id.as_str()), (1, 2, "c"));
        let theirs = nonce();
        send_ack(&mut y, &b, &got.nonce, &Ack { result: Ok(theirs) })
            .await
            .expect("ack");
        let ack = read_ack(&mut x, &a, &h.nonce).await.expect("ack read");
        assert_eq!(ack.result, Ok(theirs));
        let mut dialer = Session::new(&a, &h.nonce, &theirs, true);
        let mut listener = Session::new(&b, &h.nonce, &theirs, false);
        dialer
            .send(&mut x, &"ping".to_string())
            .await
            .expect("send");
        let ping: String = listener.receive(&mut y).await.expect("receive");
        listener
            .send(&mut y, &"pong".to_string())
            .await
            .expect("send");
        let pong: String = dialer.receive(&mut x).await.expect("receive");
        assert_eq!((ping.as_str(), pong.as_str()), ("ping", "pong"));
    }

    #[tokio::test]
    async fn a_hello_without_the_secret_is_refused() {
        let (a, b) = (
            auth("wrong-secret-wrong", "c", 1),
            auth("s3cret-s3cret-s3cret", "c", 2),
        );
        let (mut x, mut y) = tokio::io::duplex(1 << 16);
        send_hello(&mut x, &a, &hello(&a, 2)).await.expect("send");
        let e = read_hello(&mut y, &b).await.expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }

    #[tokio::test]
    async fn an_answer_without_the_secret_is_refused() {
        // A listener that does not hold the secret cannot pretend to accept.
        let (a, impostor) = (
            auth("s3cret-s3cret-s3cret", "c", 1),
            auth("other-other-other-x", "c", 2),
        );
        let (mut x, mut y) = tokio::io::duplex(1 << 16);
        let ours = nonce();
        send_ack(
            &mut y,
            &impostor,
            &ours,
            &Ack {
                result: Ok(nonce()),
            },
        )
        .await
        .expect("send");
        let e = read_ack(&mut x, &a, &ours).await.expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }

    #[tokio::test]
    async fn a_tampered_replayed_or_reflected_frame_is_refused() {
        let a = auth("s3cret-s3cret-s3cret", "c", 1);
        let (n1, n2) = (nonce(), nonce());
        // Tampered: one payload byte flipped.
        let (mut x, mut y) = tokio::io::duplex(1 << 16);
        let mut dialer = Session::new(&a, &n1, &n2, true);
        dialer
            .send(&mut x, &"grant".to_string())
            .await
            .expect("send");
        drop(x);
        let mut raw = Vec::new();
        y.read_to_end(&mut raw).await.expect("read");
        raw[5] ^= 1;
        let mut listener = Session::new(&a, &n1, &n2, false);
        let e = listener
            .receive::<_, String>(&mut raw.as_slice())
            .await
            .expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        // Replayed: the same valid frame twice; the second has the wrong sequence.
        let (mut x, mut y) = tokio::io::duplex(1 << 16);
        let mut dialer = Session::new(&a, &n1, &n2, true);
        dialer
            .send(&mut x, &"grant".to_string())
            .await
            .expect("send");
        drop(x);
        let mut frame = Vec::new();
        y.read_to_end(&mut frame).await.expect("read");
        let twice = [frame.clone(), frame].concat();
        let mut listener = Session::new(&a, &n1, &n2, false);
        let mut input = twice.as_slice();
        let first: String = listener.receive(&mut input).await.expect("first is fine");
        assert_eq!(first, "grant");
        let e = listener
            .receive::<_, String>(&mut input)
            .await
            .expect_err("replay refused");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        // Reflected: a frame sent back to its own sender.
        let (mut x, mut y) = tokio::io::duplex(1 << 16);
        let mut dialer = Session::new(&a, &n1, &n2, true);
        dialer
            .send(&mut x, &"grant".to_string())
            .await
            .expect("send");
        drop(x);
        let mut frame = Vec::new();
        y.read_to_end(&mut frame).await.expect("read");
        let mut same = Session::new(&a, &n1, &n2, true);
        let e = same
            .receive::<_, String>(&mut frame.as_slice())
            .await
            .expect_err("reflection refused");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }

    #[tokio::test]
    async fn the_opening_names_the_dialer_and_refuses_strangers() {
        let bytes = opening(7);
        assert_eq!(&bytes[..8], MAGIC);
        assert_eq!(read_opening(&mut bytes.as_slice()).await.expect("ours"), 7);
        let e = read_opening(&mut &b"GET / HTTP/1.1\r\n\r\n"[..])
            .await
            .expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
