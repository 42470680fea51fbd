//! One keep-alive HTTP/1.1 connection with at most one request in flight.
//!
//! A load generator needs only what the server under test sends back: a status line,
//! headers and a `Content-Length` body. Writing that by hand keeps the generator's own
//! CPU cost per request small (it shares the machine with the server it measures), which a
//! general-purpose client with connection pools and header maps would not.

use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why an exchange failed; the kinds are counted separately, as wrk does.
#[derive(Debug, Error)]
pub enum ExchangeError {
    /// The TCP connection could not be made.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The request could not be written.
    #[error("write: {0}")]
    Write(std::io::Error),
    /// The answer could not be read, was cut short or did not parse.
    #[error("read: {0}")]
    Read(String),
    /// No complete answer within the timeout.
    #[error("timeout")]
    Timeout,
}

/// A connection to the server under test.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    /// Connects to `addr` (no Nagle delay: requests are small and latency is measured).
    pub async fn open(addr: SocketAddr) -> Result<Connection, ExchangeError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(ExchangeError::Connect)?;
        stream.set_nodelay(true).map_err(ExchangeError::Connect)?;
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one complete request and returns the status code of its answer, once the
    /// whole answer (headers and body) has arrived.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<u16, ExchangeError> {
        match tokio::time::timeout(timeout, self.exchange_inner(request)).await {
            Ok(result) => result,
            Err(_) => Err(ExchangeError::Timeout),
        }
    }

    async fn exchange_inner(&mut self, request: &[u8]) -> Result<u16, ExchangeError> {
        self.stream
            .write_all(request)
            .await
            .map_err(ExchangeError::Write)?;
        self.buf.clear();
        let (status, head_len, body_len) = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            self.read_more().await?;
        };
        while self.buf.len() < head_len + body_len {
            self.read_more().await?;
        }
        if self.buf.len() > head_len + body_len {
            // One request in flight: anything beyond this answer is a protocol error.
            return Err(ExchangeError::Read("bytes after the answer's body".into()));
        }
        Ok(status)
    }

    async fn read_more(&mut self) -> Result<(), ExchangeError> {
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| ExchangeError::Read(e.to_string()))?;
        if n == 0 {
            return Err(ExchangeError::Read(
                "connection closed by the server".into(),
            ));
        }
        Ok(())
    }
}

/// Parses the head of an answer once it is complete: its status, the head's length and
/// the body's length. `None` while the head is still incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, usize)>, ExchangeError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            return Err(ExchangeError::Read("answer head over 64 KiB".into()));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end])
        .map_err(|_| ExchangeError::Read("answer head is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| ExchangeError::Read(format!("bad status line {status_line:?}")))?;
    let mut body_len = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            body_len = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| ExchangeError::Read(format!("bad Content-Length {value:?}")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ExchangeError::Read(
                "chunked answers are not supported by the load generator".into(),
            ));
        }
    }
    // 204 and 304 have no body; everything else the server sends carries a length.
    let body_len = match (status, body_len) {
        (204 | 304, _) => 0,
        (_, Some(n)) => n,
        (_, None) => return Err(ExchangeError::Read("answer without Content-Length".into())),
    };
    Ok(Some((status, end + 4, body_len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_once_complete() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n")
            .expect("no error")
            .is_none());
        let full = b"HTTP/1.1 201 Created\r\nContent-Length: 12\r\nx: y\r\n\r\n{\"a\":1}";
        assert_eq!(
            parse_head(full).expect("parses"),
            Some((201, full.len() - 7, 12))
        );
        let no_content = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            parse_head(no_content).expect("parses"),
            Some((204, no_content.len(), 0))
        );
    }

    #[test]
    fn bad_heads_are_errors_not_panics() {
        for bad in [
            &b"HTTP/1.0 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 2x0 OK\r\ncontent-length: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: many\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
