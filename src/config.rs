//! Configuration: flags, then environment, then the TOML file, then defaults.

use crate::http::limits::{LimitSettings, Rate};
use chrono::NaiveTime;
use chrono_tz::Tz;
use ipnet::IpNet;
use serde::Deserialize;
use slotpool_actors::Nightly;
use slotpool_journal::Durability;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

pub mod cluster;
pub use cluster::ClusterConfig;

/// What can be wrong with the configuration.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {message}")]
    Read { path: String, message: String },
    /// The config file is not valid.
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    /// A value (from any source) is invalid.
    #[error("invalid setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
    /// A secret could not be read or written.
    #[error("{0}")]
    Secret(String),
}

/// The config file's contents; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub trusted_proxies: Option<Vec<String>>,
    pub admin_token_file: Option<PathBuf>,
    pub scim_token_file: Option<PathBuf>,
    pub durability: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub log_format: Option<String>,
    pub cache_mb: Option<u64>,
    pub http_workers: Option<usize>,
    pub actor_threads: Option<usize>,
    pub access_log: Option<String>,
    pub access_log_sample: Option<u32>,
    pub nightly_at: Option<String>,
    pub timezone: Option<String>,
    pub snapshot_every: Option<u64>,
    pub client_request_timeout_s: Option<u64>,
    pub request_body_timeout_s: Option<u64>,
    pub client_disconnect_timeout_s: Option<u64>,
    pub keep_alive_s: Option<u64>,
    pub max_streams_per_user: Option<usize>,
    pub max_streams: Option<usize>,
    pub user_rate_per_s: Option<u32>,
    pub user_rate_burst: Option<u32>,
    pub peer_rate_per_s: Option<u32>,
    pub peer_rate_burst: Option<u32>,
    pub login_rate_per_minute: Option<u32>,
    pub login_rate_burst: Option<u32>,
    pub connector_secrets_dir: Option<PathBuf>,
    pub connector_credentials: Option<std::collections::BTreeMap<String, PathBuf>>,
    /// `[cluster]`: absent on a single node.
    pub cluster: Option<cluster::ClusterFile>,
}

impl FileConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Which answered requests get a line in the access log ([`crate::http::observe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    /// Every answer but monitoring probes that succeed; of the successful answers (below
    /// 400), one in `sample` (1: all of them).
    All { sample: u32 },
    /// Only answers with a 4xx or 5xx status.
    Errors,
    /// None: for load tests, or where the proxy in front keeps the access log.
    Off,
}

/// The resolved configuration of `serve`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP API listens (`address:port`).
    pub listen: String,
    /// Where the journal and the generated secrets live.
    pub data_dir: PathBuf,
    /// Peers whose `X-Slotpool-User` and `X-Forwarded-For` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The admin token's file, if the config names one.
    pub admin_token_file: Option<PathBuf>,
    /// The SCIM token's file, if the config names one.
    pub scim_token_file: Option<PathBuf>,
    /// What an acknowledged change survives: a power loss, or a killed process only.
    pub durability: Durability,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How logs are written.
    pub log_format: LogFormat,
    /// The journal's page cache, in MiB.
    pub cache_mb: u64,
    /// actix-web worker threads (default: [`default_threads`]).
    pub http_workers: usize,
    /// Threads running the product actors; 0: on the HTTP workers' threads (default:
    /// [`default_threads`]).
    pub actor_threads: usize,
    /// What the access log says.
    pub access_log: AccessLog,
    /// When the nightly hygiene runs, on the wall clock of `timezone`.
    pub nightly: Nightly,
    /// Events between two snapshots of a product.
    pub snapshot_every: u64,
    /// actix-web's deadlines for a connection: the request head, closing, and idle
    /// keep-alive.
    pub timeouts: HttpTimeouts,
    /// Body deadline, stream caps and request rates.
    pub limits: LimitSettings,
    /// Where connector credentials files may be read from.
    pub credentials: CredentialFiles,
    /// This node's place in a cluster; `None` on a single node.
    pub cluster: Option<ClusterConfig>,
}

/// actix-web's connection deadlines (the body's is in [`LimitSettings`]).
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// The request head must arrive within this (else 408).
    pub client_request: Duration,
    /// A connection being closed gets this long to finish.
    pub client_disconnect: Duration,
    /// An idle keep-alive connection is closed after this.
    pub keep_alive: Duration,
}

/// Where the connector's `credentials_file` names are looked up: a name listed in the
/// config file's `[connector_credentials]` table is that file; any other name is a file
/// under `connector_secrets_dir`. Nothing the admin API says can point elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialFiles {
    /// The directory of credentials files (default `<data_dir>/secrets`).
    pub secrets_dir: PathBuf,
    /// Names the config file gives a path of its own.
    pub named: std::collections::BTreeMap<String, PathBuf>,
}

/// Values from flags or environment (clap has already applied flag-over-env).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub trusted_proxies: Option<String>,
    pub durability: Option<String>,
    pub log_format: Option<String>,
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default request body limit: settings documents are small; anything larger is a mistake.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

impl Config {
    /// Merges overrides over the file over the defaults, and checks every value.
    pub fn resolve(over: Overrides, file: FileConfig) -> Result<Config, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let proxies: Vec<String> = match (over.trusted_proxies, file.trusted_proxies) {
            (Some(s), _) => s
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            (None, Some(v)) => v,
            (None, None) => vec!["127.0.0.0/8".into(), "::1/128".into()],
        };
        let trusted_proxies = proxies
            .iter()
            .map(|p| parse_net(p))
            .collect::<Result<Vec<_>, _>>()?;
        let durability = choose(
            "durability",
            over.durability.or(file.durability),
            DURABILITY,
        )?;
        let log_format = choose(
            "log_format",
            over.log_format.or(file.log_format),
            LOG_FORMAT,
        )?;
        let max_body_bytes = file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
        if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(ConfigError::Invalid {
                name: "max_body_bytes",
                message: "must be between 1024 and 16777216".into(),
            });
        }
        let listen = over
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                name: "listen",
                message: format!("{listen:?} is not an address:port such as 127.0.0.1:8080"),
            });
        }
        let data_dir = over
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let secs = |name: &'static str, value: Option<u64>, default: u64| {
            let v = value.unwrap_or(default);
            if (1..=3600).contains(&v) {
                Ok(Duration::from_secs(v))
            } else {
                Err(ConfigError::Invalid {
                    name,
                    message: "must be between 1 and 3600 seconds".into(),
                })
            }
        };
        let count = |name: &'static str, value: Option<usize>, default: usize| {
            let v = value.unwrap_or(default);
            if (1..=1_000_000).contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError::Invalid {
                    name,
                    message: "must be between 1 and 1000000".into(),
                })
            }
        };
        let rate = |per: Option<u32>, burst: Option<u32>, default: (u32, u32)| {
            let per_period = per.unwrap_or(default.0);
            Rate {
                per_period,
                burst: burst.unwrap_or(if per.is_some() { per_period } else { default.1 }),
            }
        };
        let timeouts = HttpTimeouts {
            client_request: secs("client_request_timeout_s", file.client_request_timeout_s, 5)?,
            client_disconnect: secs(
                "client_disconnect_timeout_s",
                file.client_disconnect_timeout_s,
                5,
            )?,
            keep_alive: secs("keep_alive_s", file.keep_alive_s, 30)?,
        };
        let limits = LimitSettings {
            body_timeout: secs("request_body_timeout_s", file.request_body_timeout_s, 20)?,
            max_streams_per_user: count("max_streams_per_user", file.max_streams_per_user, 4)?,
            max_streams: count("max_streams", file.max_streams, 2000)?,
            user_rate: rate(file.user_rate_per_s, file.user_rate_burst, (1000, 2000)),
            peer_rate: rate(file.peer_rate_per_s, file.peer_rate_burst, (100, 200)),
            login_rate: rate(file.login_rate_per_minute, file.login_rate_burst, (30, 10)),
            trusted_proxies: trusted_proxies.clone(),
        };
        let credentials = CredentialFiles {
            secrets_dir: file
                .connector_secrets_dir
                .unwrap_or_else(|| data_dir.join("secrets")),
            named: file.connector_credentials.unwrap_or_default(),
        };
        if let Some(name) = credentials
            .named
            .keys()
            .find(|n| !slotpool_events::connector::valid_credentials_name(n))
        {
            return Err(ConfigError::Invalid {
                name: "connector_credentials",
                message: format!(
                    "{name:?} is not a name a connector's credentials_file can give (relative, no `..`)"
                ),
            });
        }
        let cluster = file.cluster.map(|c| c.resolve(&data_dir)).transpose()?;
        Ok(Config {
            cluster,
            listen,
            data_dir,
            timeouts,
            limits,
            credentials,
            trusted_proxies,
            admin_token_file: file.admin_token_file,
            scim_token_file: file.scim_token_file,
            durability,
            max_body_bytes,
            log_format,
            cache_mb: file.cache_mb.unwrap_or(64).clamp(8, 64 * 1024),
            http_workers: file
                .http_workers
                .unwrap_or(default_threads(cores).0)
                .clamp(1, 256),
            actor_threads: file
                .actor_threads
                .unwrap_or(default_threads(cores).1)
                .min(256),
            access_log: access_log(file.access_log.as_deref(), file.access_log_sample)?,
            nightly: Nightly {
                at: parse_time(file.nightly_at.as_deref().unwrap_or("02:00"))?,
                tz: parse_tz(
                    file.timezone
                        .or_else(local_timezone)
                        .as_deref()
                        .unwrap_or("UTC"),
                )?,
            },
            snapshot_every: file.snapshot_every.unwrap_or(10_000).clamp(10, 100_000_000),
        })
    }
}

/// HTTP worker and actor threads for a machine of `cores`: half the cores answer HTTP;
/// with one worker the product actors run on its thread (`0`), otherwise a quarter of the
/// cores run them (at least one). The journal's committer, the kernel's network and disk
/// work and the rest of the machine use the remainder.
///
/// Why not one of each per core: every request crosses from its HTTP worker to its
/// product's actor and back through the committer, so those threads and the kernel's
/// network work share the cores, and each crossing to a sleeping thread is a wake-up. On
/// the 2-core development VM under `make load RATE=max` one HTTP worker and one actor
/// thread served as much as two and two (22-25 µs of CPU per request), and the actors on
/// the worker's thread served ~18% more than on one of their own (~19 µs per request:
/// docs/benchmarks.md, "Cost per durable change").
pub fn default_threads(cores: usize) -> (usize, usize) {
    let http = (cores / 2).max(1);
    // One worker: the products run on its thread (0), saving two thread hand-offs per
    // request. Several: threads of their own, so that one product's actor does not slow
    // the HTTP work of the worker it would share.
    let actors = if http == 1 { 0 } else { (cores / 4).max(1) };
    (http, actors)
}

/// The access log setting: `access_log` (`all`, the default; `errors`; `off`) and, with
/// `all`, `access_log_sample` (log one in N successful answers; 1, the default: all).
fn access_log(mode: Option<&str>, sample: Option<u32>) -> Result<AccessLog, ConfigError> {
    let invalid = |name, message: String| Err(ConfigError::Invalid { name, message });
    match (mode.unwrap_or("all"), sample) {
        ("all", None) => Ok(AccessLog::All { sample: 1 }),
        ("all", Some(n)) if (1..=1_000_000).contains(&n) => Ok(AccessLog::All { sample: n }),
        ("all", Some(n)) => invalid(
            "access_log_sample",
            format!("{n} is not between 1 (every answer) and 1000000"),
        ),
        ("errors" | "off", Some(_)) => invalid(
            "access_log_sample",
            "samples only go with access_log = \"all\"".into(),
        ),
        ("errors", None) => Ok(AccessLog::Errors),
        ("off", None) => Ok(AccessLog::Off),
        (other, _) => invalid(
            "access_log",
            format!("{other:?} is none of \"all\", \"errors\", \"off\""),
        ),
    }
}

/// The names `durability` takes, the default first.
const DURABILITY: [(&str, Durability); 2] = [
    ("fsync", Durability::Fsync),
    ("process", Durability::Process),
];

/// The names `log_format` takes, the default first.
const LOG_FORMAT: [(&str, LogFormat); 2] = [("human", LogFormat::Human), ("json", LogFormat::Json)];

/// The setting `name` read as one of two named `choices`: absent is the first (the
/// default), an unknown name is refused naming both.
fn choose<T: Copy>(
    name: &'static str,
    value: Option<String>,
    [(first, default), (second, other)]: [(&str, T); 2],
) -> Result<T, ConfigError> {
    match value.as_deref() {
        None => Ok(default),
        Some(v) if v == first => Ok(default),
        Some(v) if v == second => Ok(other),
        Some(v) => Err(ConfigError::Invalid {
            name,
            message: format!("{v:?} is neither {first:?} nor {second:?}"),
        }),
    }
}

fn parse_time(text: &str) -> Result<NaiveTime, ConfigError> {
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| ConfigError::Invalid {
        name: "nightly_at",
        message: format!("{text:?} is not a time such as 02:00"),
    })
}

fn parse_tz(text: &str) -> Result<Tz, ConfigError> {
    text.parse::<Tz>().map_err(|_| ConfigError::Invalid {
        name: "timezone",
        message: format!("{text:?} is not an IANA time zone such as Europe/Berlin"),
    })
}

/// The server's own time zone, for "02:00 server time": `TZ`, else `/etc/timezone`.
fn local_timezone() -> Option<String> {
    std::env::var("TZ")
        .ok()
        .map(|t| t.trim_start_matches(':').to_string())
        .or_else(|| std::fs::read_to_string("/etc/timezone").ok())
        .map(|t| t.trim().to_string())
        .filter(|t| t.parse::<Tz>().is_ok())
}

fn parse_net(text: &str) -> Result<IpNet, ConfigError> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| ConfigError::Invalid {
            name: "trusted_proxies",
            message: format!("{text:?} is not a CIDR such as 10.0.0.0/8 or an IP address"),
        })
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(toml: &str) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(toml).expect("toml");
        Config::resolve(Overrides::default(), file)
    }

    #[test]
    fn the_access_log_logs_everything_unless_told_otherwise() {
        let of = |toml: &str| resolved(toml).map(|c| c.access_log);
        assert_eq!(of("").expect("default"), AccessLog::All { sample: 1 });
        assert_eq!(
            of("access_log = \"errors\"").expect("errors"),
            AccessLog::Errors
        );
        assert_eq!(of("access_log = \"off\"").expect("off"), AccessLog::Off);
        assert_eq!(
            of("access_log_sample = 100").expect("sampled"),
            AccessLog::All { sample: 100 }
        );
        for bad in [
            "access_log = \"some\"",
            "access_log_sample = 0",
            "access_log = \"off\"\naccess_log_sample = 10",
        ] {
            assert!(
                matches!(of(bad), Err(ConfigError::Invalid { name, .. }) if name.starts_with("access_log")),
                "{bad}"
            );
        }
    }

    #[test]
    fn threads_default_to_half_the_cores_for_http_and_a_quarter_for_actors() {
        assert_eq!(default_threads(1), (1, 0));
        assert_eq!(default_threads(2), (1, 0));
        assert_eq!(default_threads(3), (1, 0));
        assert_eq!(default_threads(8), (4, 2));
        let c = resolved("http_workers = 3\nactor_threads = 2").expect("set");
        assert_eq!((c.http_workers, c.actor_threads), (3, 2));
    }
}
