//! `slotpool-loadgen`: the HTTP load of `make load` (see `benches/load.sh`).
//!
//! Every request is a real, durable state change of one product's pool: each connection
//! owns its users (`u<k>`) and alternates, user by user, `POST /api/v1/products/<p>/slot`
//! (idle -> granted: one event) and `DELETE` (holder -> idle: one event). One request is in
//! flight per connection, so no user ever has two, and no request is a no-op.
//!
//! At a fixed rate (`--rate N`, open loop) it reports the latency the server gives at
//! that load, stalls included; with `--rate max` (closed loop) it reports capacity. See
//! [`pacing`] for how latency is counted. Ends with one machine-readable line:
//!
//! `LOADRESULT requests=.. duration_us=.. p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
//! non2xx=.. connect=.. read=.. write=.. timeout=.. late=.. cpu_us=..` (`late`: requests
//! counted from when they were due; `cpu_us`: the generator's own CPU time; `stalls`,
//! `stalled_us`: how often and how long the machine itself froze, see [`stalls`]).

mod connection;
mod pacing;
mod stalls;

use clap::Parser;
use connection::{Connection, ExchangeError};
use hdrhistogram::Histogram;
use pacing::{latency_start, Pacing};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Drives request/release pairs against a running slotpool.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The server, `http://host:port`.
    #[arg(long)]
    url: String,
    /// The product whose slots are requested and released.
    #[arg(long, default_value = "load")]
    product: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Users per connection (`u<connection * this + j>`); they must be members.
    #[arg(long, default_value_t = 2)]
    users_per_connection: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Requests per second over all connections, or `max` (closed loop).
    #[arg(long, default_value = "max")]
    rate: String,
    /// Threads, each with its own share of the connections.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds before a request without a complete answer counts as timed out.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// Also write every answered request to this file, a line each, in time order:
    /// `<from> <latency>`, both in microseconds, `<from>` counted from the start of the
    /// run (the instant its latency counts from). Shows when the slow ones came: a burst
    /// behind one stall, or a spread.
    #[arg(long)]
    latency_log: Option<std::path::PathBuf>,
}

/// What one connection (and, merged, the whole run) saw.
struct Tally {
    latency_us: Histogram<u64>,
    non2xx: u64,
    connect: u64,
    read: u64,
    write: u64,
    timeout: u64,
    late: u64,
    /// `(from, latency)` of every answered request, in microseconds, when the run keeps a
    /// latency log (see `--latency-log`); `None` otherwise.
    log: Option<Vec<(u64, u64)>>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // 1 us to 1 minute, three significant digits.
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("constant bounds are valid"),
            non2xx: 0,
            connect: 0,
            read: 0,
            write: 0,
            timeout: 0,
            late: 0,
            log: None,
        }
    }

    fn merge(&mut self, other: &Tally) {
        let _ = self.latency_us.add(&other.latency_us);
        self.non2xx += other.non2xx;
        self.connect += other.connect;
        self.read += other.read;
        self.write += other.write;
        self.timeout += other.timeout;
        self.late += other.late;
        if let Some(other) = &other.log {
            self.log
                .get_or_insert_with(Vec::new)
                .extend_from_slice(other);
        }
    }

    fn count(&mut self, error: &ExchangeError) {
        match error {
            ExchangeError::Connect(_) => self.connect += 1,
            ExchangeError::Write(_) => self.write += 1,
            ExchangeError::Read(_) => self.read += 1,
            ExchangeError::Timeout => self.timeout += 1,
        }
    }
}

/// Everything a connection needs to know about the run.
#[derive(Clone)]
struct Plan {
    addr: SocketAddr,
    host: String,
    product: String,
    users_per_connection: usize,
    connections: usize,
    rate: Option<f64>,
    start: Instant,
    end: Instant,
    timeout: Duration,
    keep_log: bool,
}

/// One connection's share of the run.
async fn drive(plan: Plan, index: usize) -> Tally {
    let mut tally = Tally {
        log: plan.keep_log.then(Vec::new),
        ..Tally::new()
    };
    let path = format!("/api/v1/products/{}/slot", plan.product);
    let requests: Vec<[Vec<u8>; 2]> = (0..plan.users_per_connection)
        .map(|j| {
            let user = index * plan.users_per_connection + j;
            let head = |method: &str| {
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-Slotpool-User: u{user}\r\n\
                     Content-Length: 0\r\n\r\n",
                    plan.host
                )
                .into_bytes()
            };
            [head("POST"), head("DELETE")]
        })
        .collect();
    let mut holding = vec![false; requests.len()];
    let pacing = Pacing::new(plan.rate, plan.start, index, plan.connections);
    let mut connection: Option<Connection> = None;
    let mut free = Instant::now();
    let mut k: u64 = 0;
    tokio::time::sleep_until(plan.start.into()).await;
    loop {
        let due = pacing.due(k);
        if due.unwrap_or_else(Instant::now) >= plan.end {
            break;
        }
        if let Some(due) = due {
            tokio::time::sleep_until(due.into()).await;
        }
        let conn = match connection.as_mut() {
            Some(c) => c,
            None => match Connection::open(plan.addr).await {
                Ok(c) => connection.insert(c),
                Err(e) => {
                    tally.count(&e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    free = Instant::now();
                    k += 1;
                    continue;
                }
            },
        };
        let user = (k % requests.len() as u64) as usize;
        let request = &requests[user][usize::from(holding[user])];
        let sent = Instant::now();
        let counts_from = latency_start(due, free, sent);
        if counts_from < sent {
            tally.late += 1;
        }
        match conn.exchange(request, plan.timeout).await {
            Ok(status) => {
                free = Instant::now();
                let micros = u64::try_from((free - counts_from).as_micros()).unwrap_or(u64::MAX);
                tally.latency_us.saturating_record(micros.max(1));
                if let Some(log) = tally.log.as_mut() {
                    let from = counts_from
                        .saturating_duration_since(plan.start)
                        .as_micros();
                    log.push((u64::try_from(from).unwrap_or(u64::MAX), micros));
                }
                if (200..300).contains(&status) {
                    holding[user] = !holding[user];
                } else {
                    tally.non2xx += 1;
                }
            }
            Err(e) => {
                tally.count(&e);
                connection = None;
                free = Instant::now();
            }
        }
        k += 1;
    }
    tally
}

/// The CPU time (user + system) this process used so far, from `/proc/self/stat` (Linux):
/// the generator shares the machine with the server it measures, and says how much of it
/// it took.
fn own_cpu_micros() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after its ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in USER_HZ, 100 per second on every architecture it exports.
    Some(ticks * 10_000)
}

/// Writes the `--latency-log` file: one `<from> <latency>` line per request, by `<from>`.
fn write_latency_log(file: std::fs::File, log: &mut [(u64, u64)]) -> std::io::Result<()> {
    use std::io::Write;
    log.sort_unstable();
    let mut out = std::io::BufWriter::new(file);
    for (from, latency) in log.iter() {
        writeln!(out, "{from} {latency}")?;
    }
    out.flush()
}

fn parse_args(args: &Args) -> Result<(SocketAddr, String, Option<f64>), String> {
    let host = args
        .url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--url must start with http://, not {:?}", args.url))?
        .trim_end_matches('/')
        .to_string();
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let rate = match args.rate.as_str() {
        "max" => None,
        r => match r.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Some(r),
            _ => {
                return Err(format!(
                    "--rate must be a positive number or max, not {r:?}"
                ))
            }
        },
    };
    if args.connections == 0 || args.users_per_connection == 0 || args.threads == 0 {
        return Err(
            "--connections, --users-per-connection and --threads must be at least 1".into(),
        );
    }
    if args.duration == 0 {
        return Err("--duration must be at least 1 second".into());
    }
    Ok((addr, host, rate))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (addr, host, rate) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("slotpool-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    // Created before the run, so that a path that cannot be written fails at once, not
    // after the whole load.
    let latency_log = match &args.latency_log {
        None => None,
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some((path, file)),
            Err(e) => {
                eprintln!("slotpool-loadgen: cannot create {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let threads = args.threads.min(args.connections);
    // Each connection opens at its first request (the connect is not counted as latency);
    // a short lead lets every thread's runtime start before the first request is due.
    let start = Instant::now() + Duration::from_millis(50);
    let plan = Plan {
        addr,
        host,
        product: args.product.clone(),
        users_per_connection: args.users_per_connection,
        connections: args.connections,
        rate,
        start,
        end: start + Duration::from_secs(args.duration),
        timeout: Duration::from_secs(args.timeout),
        keep_log: latency_log.is_some(),
    };
    let monitor = stalls::Monitor::start(plan.end);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let plan = plan.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start a runtime: {e}"))?;
                runtime.block_on(async move {
                    let mut tasks = Vec::new();
                    for index in (t..plan.connections).step_by(threads) {
                        tasks.push(tokio::spawn(drive(plan.clone(), index)));
                    }
                    let mut tally = Tally::new();
                    for task in tasks {
                        let done = task
                            .await
                            .map_err(|e| format!("a connection's task failed: {e}"))?;
                        tally.merge(&done);
                    }
                    Ok::<Tally, String>(tally)
                })
            })
        })
        .collect();
    let mut total = Tally::new();
    for worker in workers {
        match worker.join() {
            Ok(Ok(tally)) => total.merge(&tally),
            Ok(Err(e)) => {
                eprintln!("slotpool-loadgen: {e}");
                return ExitCode::FAILURE;
            }
            Err(_) => {
                eprintln!("slotpool-loadgen: a worker thread panicked");
                return ExitCode::FAILURE;
            }
        }
    }
    let duration = start.elapsed();
    let stalls = monitor.finish();
    let h = &total.latency_us;
    let cpu_us = own_cpu_micros().unwrap_or(0);
    println!(
        "LOADRESULT requests={} duration_us={} p50_us={} p90_us={} p99_us={} p999_us={} \
         max_us={} non2xx={} connect={} read={} write={} timeout={} late={} cpu_us={} \
         stalls={} stalled_us={}",
        h.len(),
        duration.as_micros(),
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.90),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        total.non2xx,
        total.connect,
        total.read,
        total.write,
        total.timeout,
        total.late,
        cpu_us,
        stalls.count,
        stalls.total.as_micros(),
    );
    // After the result line: sorting and writing the log is not part of the generator's
    // CPU time it reports.
    if let (Some((path, file)), Some(log)) = (latency_log, total.log.as_mut()) {
        if let Err(e) = write_latency_log(file, log) {
            eprintln!("slotpool-loadgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
