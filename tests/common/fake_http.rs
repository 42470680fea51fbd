//! The reading half of the fake products the tests talk to (Jira, Confluence, webhooks):
//! one HTTP/1.1 request at a time from a keep-alive connection, and a JSON answer back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One request as the fake received it.
#[derive(Debug, Clone, Default)]
pub struct FakeRequest {
    pub method: String,
    pub target: String,
    /// Header names in lower case, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FakeRequest {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Serves the requests of one connection with `answer` (status, JSON text; no body for
/// 204), until the peer closes it, a read fails or `stop` is set. `answer` returning
/// `None` drops the connection without an answer (a product that hangs up).
pub fn serve_connection(
    conn: TcpStream,
    stop: &AtomicBool,
    mut answer: impl FnMut(&FakeRequest) -> Option<(u16, String)>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut writer = conn;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                continue;
            }
        }
        let mut parts = line.split_whitespace();
        let mut request = FakeRequest {
            method: parts.next().unwrap_or("").to_string(),
            target: parts.next().unwrap_or("").to_string(),
            ..FakeRequest::default()
        };
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                if k == "content-length" {
                    length = v.trim().parse().unwrap_or(0);
                }
                request.headers.push((k, v.trim().to_string()));
            }
        }
        request.body = vec![0; length];
        if reader.read_exact(&mut request.body).is_err() {
            return;
        }
        let Some((status, text)) = answer(&request) else {
            return;
        };
        let text = if status == 204 { String::new() } else { text };
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A fake product on a free loopback port: its state, and a thread accepting connections,
/// each served on a thread of its own by `serve`. Dropping it stops accepting.
pub struct FakeServer<S> {
    pub port: u16,
    pub state: std::sync::Arc<std::sync::Mutex<S>>,
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<S: Send + 'static> FakeServer<S> {
    /// Starts the fake with `state`; `serve` answers one connection (see
    /// [`serve_connection`]) until it ends or the fake stops.
    pub fn start(state: S, serve: fn(TcpStream, &std::sync::Mutex<S>, &AtomicBool)) -> Self {
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let state = Arc::new(Mutex::new(state));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, st) = (Arc::clone(&s), Arc::clone(&st));
                        std::thread::spawn(move || serve(conn, &s, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeServer {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Runs `f` on the fake's state.
    pub fn with<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        f(&mut self.state.lock().expect("fake state"))
    }
}

impl<S> Drop for FakeServer<S> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
