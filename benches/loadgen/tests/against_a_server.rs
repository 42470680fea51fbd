//! The load generator against a small recording HTTP server: it sends exactly the
//! requests its schedule makes due, each user alternates POST and DELETE starting with
//! POST, and its report counts what the server answered.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Seen = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// Serves `HTTP/1.1 200` with a small JSON body to every request, recording per
/// `X-Slotpool-User` the methods in order; answers 404 to any other path.
async fn serve(listener: TcpListener, seen: Seen) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                buf.drain(..end + 4);
                let mut lines = head.split("\r\n");
                let request_line = lines.next().unwrap_or_default().to_string();
                let user = lines
                    .filter_map(|l| l.split_once(':'))
                    .find(|(n, _)| n.eq_ignore_ascii_case("x-slotpool-user"))
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default();
                let mut parts = request_line.split(' ');
                let method = parts.next().unwrap_or_default().to_string();
                let path = parts.next().unwrap_or_default();
                let answer: &[u8] = if path == "/api/v1/products/p/slot" {
                    seen.lock()
                        .expect("lock")
                        .entry(user)
                        .or_default()
                        .push(method);
                    b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\n{\"state\":\"x\"}"
                } else {
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
                };
                if socket.write_all(answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_what_is_due_alternating_per_user_and_reports_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Seen = Arc::default();
    tokio::spawn(serve(listener, Arc::clone(&seen)));

    // 4 connections, 3 users each, 200 requests/s for 1 s: each connection's requests
    // are 20 ms apart and offset by 0, 5, 10 and 15 ms, so exactly 50 are due each.
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("latency.log");
    let log_arg = log_path.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_slotpool-loadgen"))
            .args(["--url", &format!("http://{addr}"), "--product", "p"])
            .args(["--connections", "4", "--users-per-connection", "3"])
            .args(["--rate", "200", "--duration", "1", "--threads", "2"])
            .arg("--latency-log")
            .arg(&log_arg)
            .output()
            .expect("run the generator")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("LOADRESULT "))
        .expect("a LOADRESULT line");

    let seen = seen.lock().expect("lock").clone();
    let total: usize = seen.values().map(Vec::len).sum();
    assert_eq!(total, 200, "requests the server saw");
    assert_eq!(field(line, "requests"), 200);
    for counter in ["non2xx", "connect", "read", "write", "timeout"] {
        assert_eq!(field(line, counter), 0, "{counter} in {line}");
    }
    let mut users: Vec<_> = seen.keys().cloned().collect();
    users.sort();
    let mut expected: Vec<String> = (0..12).map(|u| format!("u{u}")).collect();
    expected.sort();
    assert_eq!(users, expected);
    for (user, methods) in &seen {
        for (i, m) in methods.iter().enumerate() {
            let want = if i % 2 == 0 { "POST" } else { "DELETE" };
            assert_eq!(m, want, "request {i} of {user}: {methods:?}");
        }
    }
    // Each connection's 50 requests go round its 3 users: 17, 17 and 16.
    let mut counts: Vec<usize> = seen.values().map(Vec::len).collect();
    counts.sort();
    assert_eq!(counts, [vec![16; 4], vec![17; 8]].concat());

    // The latency log: a line per request, in time order, each within the run, its
    // latencies those the report summarises. A request counts from when it was due or,
    // when the generator's timer woke late, from when it was sent: the last is due at
    // 995 ms, so a line may start a little after 1 s on a busy machine, never 250 ms after it.
    let log = std::fs::read_to_string(&log_path).expect("the latency log");
    let lines: Vec<(u64, u64)> = log
        .lines()
        .map(|l| {
            let (from, latency) = l.split_once(' ').expect("two fields");
            (
                from.parse().expect("a number"),
                latency.parse().expect("a number"),
            )
        })
        .collect();
    assert_eq!(lines.len(), 200);
    assert!(lines.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
    assert!(lines.iter().all(|&(from, _)| from < 1_250_000), "{lines:?}");
    let max = lines.iter().map(|&(_, l)| l).max().unwrap_or(0);
    let reported = field(line, "max_us");
    assert!(
        reported.abs_diff(max) <= max / 500 + 1,
        "max {max} us in the log, {reported} in the report"
    );
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    for args in [
        vec!["--url", "127.0.0.1:1"],
        vec!["--url", "http://127.0.0.1:1", "--rate", "0"],
        vec!["--url", "http://127.0.0.1:1", "--rate", "fast"],
        vec!["--url", "http://127.0.0.1:1", "--connections", "0"],
        vec![
            "--url",
            "http://127.0.0.1:1",
            "--latency-log",
            "/nonexistent-dir/latency.log",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_slotpool-loadgen"))
            .args(&args)
            .output()
            .expect("run the generator");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("slotpool-loadgen:"),
            "{args:?}"
        );
    }
}
