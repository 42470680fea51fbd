//! `slotpool`: the service and its offline tools.
//!
//! This file is the one place where errors become exit codes (see [`Failure`], defined in
//! `failure.rs`).

mod alert;
mod backup;
mod cluster;
mod config;
mod connector;
mod failure;
mod http;
mod logging;
mod offline;
mod private;
mod problem;
mod secrets;
mod serve;
mod stop;
mod verify;
mod view;

use clap::{Parser, Subcommand};
/// Kept at the crate root for modules that name it `crate::Failure`.
pub use failure::Failure;

/// mimalloc, not glibc's malloc: measured under load, allocation was a tenth of the
/// server's CPU time, and mimalloc's thread-local free lists cut most of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

/// Shares a pool of product licences among occasional users.
#[derive(Debug, Parser)]
#[command(name = "slotpool", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the service.
    Serve(ServeArgs),
    /// Check every stream's hash chain; exit 0 when intact, 1 naming the first bad record.
    Verify {
        /// The data directory of a stopped service, or a copy of it.
        #[arg(long, env = "SLOTPOOL_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Offline: a product's holders, queue and settings at an instant, a user's timeline,
    /// per-day peaks, from the journal of a stopped service (or a backup).
    Audit(offline::audit::AuditArgs),
    /// Offline: peak concurrent users, heavy users and the pool size a target needs, from
    /// web access logs (nginx/Apache combined, Atlassian).
    Analyze(offline::analyze::AnalyzeArgs),
    /// Offline: replay recorded demand (journal or access logs) against other pool sizes,
    /// inactivity times and reclaim; share served at once and queue waits per setting.
    Simulate(offline::simulate::SimulateArgs),
    /// Write a consistent backup of a data dir's journal and snapshots to a file: asks
    /// the service running on it (`POST /admin/v1/backup`), or reads it when stopped.
    Backup {
        /// The data directory of a running or stopped service.
        #[arg(long, env = "SLOTPOOL_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The backup file to write (written as FILE.partial, renamed when complete).
        #[arg(long)]
        out: PathBuf,
        /// Where the running service listens, when it is running.
        #[arg(long, env = "SLOTPOOL_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
    },
    /// A cluster's membership: status, add a member, remove one.
    #[command(subcommand)]
    Cluster(cluster::cli::ClusterCmd),
    /// Restore a backup into a new data dir (refuses a non-empty one), then verify it.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The new data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// Flags of `serve`; each also reads its environment variable.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, env = "SLOTPOOL_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SLOTPOOL_LISTEN")]
    listen: Option<String>,
    /// Where the journal lives [default: ./data].
    #[arg(long, env = "SLOTPOOL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Comma-separated CIDRs whose X-Slotpool-User header is believed [default: 127.0.0.0/8,::1/128].
    #[arg(long, env = "SLOTPOOL_TRUSTED_PROXIES")]
    trusted_proxies: Option<String>,
    /// "fsync" (default: survives power loss) or "process" (survives a killed process only).
    #[arg(long, env = "SLOTPOOL_DURABILITY")]
    durability: Option<String>,
    /// "human" (default) or "json".
    #[arg(long, env = "SLOTPOOL_LOG_FORMAT")]
    log_format: Option<String>,
}

/// The report commands stop quietly when their reader goes away (`slotpool audit ... |
/// head`), as Unix tools do, instead of panicking in `println!` on a closed pipe: Rust
/// ignores SIGPIPE, so they restore its default. Only for commands that write nothing but
/// stdout; `serve` and `backup` keep ignoring it (a closed socket is an error to handle).
fn stop_quietly_when_stdout_closes() {
    // SAFETY: called once, first thing in `main`, before any thread exists; it only
    // restores the signal's default action.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Cmd::Verify { .. } | Cmd::Audit(_) | Cmd::Analyze(_) | Cmd::Simulate(_)
    ) {
        stop_quietly_when_stdout_closes();
    }
    if matches!(
        cli.command,
        Cmd::Serve(_) | Cmd::Backup { .. } | Cmd::Restore { .. }
    ) {
        private::restrict_new_files();
    }
    let result = match cli.command {
        Cmd::Serve(args) => serve::run(args),
        Cmd::Verify { data_dir } => verify::run(&data_dir),
        Cmd::Audit(args) => offline::audit::run(&args),
        Cmd::Analyze(args) => offline::analyze::run(&args),
        Cmd::Simulate(args) => offline::simulate::run(&args),
        Cmd::Cluster(cmd) => cluster::cli::run(&cmd),
        Cmd::Backup { data_dir, out, url } => backup::run_backup(&data_dir, &out, &url),
        Cmd::Restore { from, data_dir } => {
            private::create_data_dir(&data_dir).and_then(|()| backup::run_restore(&from, &data_dir))
        }
    };
    logging::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slotpool: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
