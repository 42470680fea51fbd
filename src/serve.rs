//! `slotpool serve`: wires config, journal, actors and HTTP together, and shuts down
//! cleanly on SIGTERM/SIGINT/SIGQUIT (end event streams, drain in-flight requests, flush
//! and sync, exit 0).

use crate::config::{Config, FileConfig, Overrides};
use crate::failure::Failure;
use crate::http::{self, AppState};
use crate::secrets::{load_token, TokenSource};
use crate::stop::Stop;
use crate::ServeArgs;
use actix_web::{web, App, HttpServer};
use slotpool_actors::Clock;
use slotpool_actors::{restore, Metrics, Placement, Scheduler, SharedClock, SystemClock};
use slotpool_events::Timestamp;
use slotpool_journal::{Journal, JournalConfig};
use slotpool_snapshots::SnapshotStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Runs the service until it is told to stop.
pub fn run(args: ServeArgs) -> Result<(), Failure> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let config = Config::resolve(
        Overrides {
            listen: args.listen,
            data_dir: args.data_dir,
            trusted_proxies: args.trusted_proxies,
            durability: args.durability,
            log_format: args.log_format,
        },
        file,
    )?;
    crate::logging::init(config.log_format);
    exit_on_panic();
    disable_transparent_huge_pages();
    crate::private::create_data_dir(&config.data_dir)?;
    let admin = load_token(
        "SLOTPOOL_ADMIN_TOKEN",
        config.admin_token_file.as_deref(),
        Some(&config.data_dir.join("admin_token")),
    )?;
    let Some((admin_token, admin_source)) = admin else {
        return Err(Failure::Runtime("no admin token could be set up".into()));
    };
    println!("slotpool: admin token {admin_source}");
    if let TokenSource::Generated(p) | TokenSource::Stored(p) = &admin_source {
        tracing::info!(file = %p.display(), "admin token kept in the data dir; set SLOTPOOL_ADMIN_TOKEN or admin_token_file to choose your own");
    }
    let scim = load_token(
        "SLOTPOOL_SCIM_TOKEN",
        config.scim_token_file.as_deref(),
        Some(&config.data_dir.join("scim_token")),
    )?;
    let scim_token = scim.map(|(hash, source)| {
        println!("slotpool: SCIM token {source}");
        hash
    });

    match config.cluster.clone() {
        None => actix_web::rt::System::new()
            .block_on(async {
                // Heard from the start: a stop during recovery ends the process cleanly.
                let stop = Stop::install()?;
                let opened = Opened::open(&config)?;
                serve(config, admin_token, scim_token, opened, None, stop).await
            })
            .map(|_| ()),
        Some(cluster) => crate::cluster::run(config, cluster, admin_token, scim_token),
    }
}

/// What serving needs before it starts: the metrics registry and what registers in it
/// (once per process, though a cluster member may serve in two phases), and the journal.
pub(crate) struct Opened {
    pub(crate) registry: prometheus::Registry,
    pub(crate) metrics: Metrics,
    pub(crate) http_metrics: web::Data<http::observe::HttpMetrics>,
    pub(crate) limits: web::Data<http::limits::Limits>,
    pub(crate) journal: Journal,
}

/// How [`serve`] ended.
pub(crate) enum Ended {
    /// Told to stop (SIGTERM/SIGINT).
    Stopped,
    /// A cluster member that led no longer does.
    SteppedDown(String),
}

/// A cluster member serving as its cluster's leader.
pub(crate) struct Leading {
    pub(crate) node: Arc<slotpool_cluster::ClusterNode>,
    /// Told once, when the lead is lost.
    pub(crate) lost: tokio::sync::oneshot::Receiver<String>,
}

impl Opened {
    /// Creates the registry and the metrics, and opens the journal in the data dir.
    pub(crate) fn open(config: &Config) -> Result<Opened, Failure> {
        let registry = prometheus::Registry::new();
        let metrics = Metrics::new(&registry).map_err(|e| Failure::Runtime(e.to_string()))?;
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            registry
                .register(Box::new(pc))
                .map_err(|e| Failure::Runtime(e.to_string()))?;
        }
        let http_metrics = web::Data::new(
            http::observe::HttpMetrics::new(&registry)
                .map_err(|e| Failure::Runtime(e.to_string()))?,
        );
        let limits = web::Data::new(
            http::limits::Limits::new(config.limits.clone(), &registry)
                .map_err(|e| Failure::Runtime(e.to_string()))?,
        );
        let flush_seconds = metrics.journal_flush.clone();
        let flush_batch = metrics.journal_flush_batch.clone();
        let journal = Journal::open(
            &config.data_dir,
            JournalConfig {
                durability: config.durability,
                cache_bytes: config.cache_mb * 1024 * 1024,
                on_flush: Some(Arc::new(move |took, batch| {
                    flush_seconds.observe(took.as_secs_f64());
                    flush_batch.observe(batch as f64);
                })),
                ..JournalConfig::default()
            },
        )
        .map_err(|e| match e {
            slotpool_journal::JournalError::Damaged { .. } => Failure::Data(format!(
            "{e}; refusing to start. Run `slotpool verify --data-dir {}` and restore from a backup",
            config.data_dir.display()
        )),
            e => Failure::Data(format!(
                "{e} (is another slotpool running on this data dir?)"
            )),
        })?;
        Ok(Opened {
            registry,
            metrics,
            http_metrics,
            limits,
            journal,
        })
    }
}

/// How long a leader that lost its lead goes on answering (503 `not_ready` to all but
/// health, readiness and metrics) before it stops: requests already in its listen queue
/// get an answer to retry on, not a closed connection. Nothing it answers then is
/// acknowledged.
const STEP_DOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Serves until told to stop, or (a cluster's leader) until the lead is lost.
pub(crate) async fn serve(
    config: Config,
    admin_token: crate::secrets::TokenHash,
    scim_token: Option<crate::secrets::TokenHash>,
    opened: Opened,
    leading: Option<Leading>,
    stop: Stop,
) -> Result<Ended, Failure> {
    let Opened {
        registry,
        metrics,
        http_metrics,
        limits,
        journal,
    } = opened;
    let clock: SharedClock = Arc::new(SystemClock);
    let damaged = metrics.journal_damaged.clone();
    // Products start on the HTTP workers' threads once those run (`actor_threads = 0`),
    // or on threads of their own.
    let placement = match config.actor_threads {
        0 => Placement::HttpWorkers(config.http_workers),
        n => Placement::Own(n),
    };
    let services = restore(
        journal.clone(),
        Arc::clone(&clock),
        metrics,
        placement,
        config.snapshot_every,
    )
        .map_err(|e| Failure::Data(format!("{e}; refusing to start. Run `slotpool verify --data-dir {}` and restore the damaged stream from a backup", config.data_dir.display())))?;
    services
        .products
        .set_connector_transport(crate::connector::transport_factory(
            config.credentials.clone(),
        ));
    services
        .products
        .set_alert_sender(crate::alert::sender_factory());
    Scheduler::start(services.clone(), clock, config.nightly).spawn_realtime();
    let journal_damage = check_whole_journal(journal.clone(), damaged);
    let state = web::Data::new(AppState {
        services,
        admin_token: admin_token.clone(),
        scim_token,
        scim_log: Default::default(),
        trusted_proxies: config.trusted_proxies.clone(),
        max_body_bytes: config.max_body_bytes,
        registry,
        ready: AtomicBool::new(false),
        journal_damage,
        stopping: stop.streams(),
        deposed: AtomicBool::new(false),
    });
    let app_state = state.clone();
    let cluster = leading.as_ref().map(|l| {
        crate::cluster::routes::ClusterData::new(Arc::clone(&l.node), admin_token.clone())
    });
    let access_log = web::Data::new(http::observe::AccessLogPolicy::new(config.access_log));
    let workers = state.services.products.clone();
    let server = HttpServer::new(move || {
        // Called on each worker's thread as it starts: the product actors run there.
        workers.run_here();
        App::new()
            .app_data(app_state.clone())
            .configure(|cfg| {
                if let Some(c) = &cluster {
                    c.leader_routes(cfg)
                }
            })
            .app_data(http_metrics.clone())
            .app_data(access_log.clone())
            .app_data(limits.clone())
            .wrap(http::problem_errors())
            .wrap(actix_web::middleware::from_fn(http::around::around))
            .configure(http::routes)
    })
    .workers(config.http_workers)
    .client_request_timeout(config.timeouts.client_request)
    .client_disconnect_timeout(config.timeouts.client_disconnect)
    .keep_alive(config.timeouts.keep_alive)
    .backlog(4096)
    .shutdown_timeout(10)
    .shutdown_signal(stop.signal())
    .bind(&config.listen)
    .map_err(|e| Failure::Runtime(format!("cannot listen on {}: {e}", config.listen)))?
    .run();
    let stepped_down = Arc::new(std::sync::Mutex::new(None::<String>));
    let in_cluster = leading.is_some();
    if let Some(Leading { lost, .. }) = leading {
        let handle = server.handle();
        let stepped = Arc::clone(&stepped_down);
        let serving = state.clone();
        actix_web::rt::spawn(async move {
            if let Ok(why) = lost.await {
                // Under the lock serve takes to say it is ready: a lead lost during
                // recovery is never followed by a ready server.
                {
                    let mut s = stepped.lock().unwrap_or_else(|p| p.into_inner());
                    *s = Some(why);
                    serving.deposed.store(true, Ordering::SeqCst);
                    serving.ready.store(false, Ordering::SeqCst);
                }
                // Every request is answered: those waiting for a write fail (the
                // proposer fails them), every other one is answered 503 `not_ready` with
                // `Retry-After` from now on (`http::around`), for a moment still taken
                // from the listen queue, then a graceful stop. Dropping the connections
                // instead left clients (and nginx, which does not retry a POST) with no
                // answer at all.
                serving.stopping.cancel();
                actix_web::rt::time::sleep(STEP_DOWN_GRACE).await;
                handle.stop(true).await;
            }
        });
    }
    // The server starts its workers (and with them, maybe, the products) when first
    // polled. Products answer no request before the repair of recovery is done: until
    // `ready`, product routes answer 503 (`AppState::product`).
    let handle = server.handle();
    let serving = actix_web::rt::spawn(server);
    if let Err(e) = state.services.reconcile().await {
        handle.stop(false).await;
        return Err(Failure::Data(format!("{e}; refusing to start")));
    }
    {
        let stepped = stepped_down.lock().unwrap_or_else(|p| p.into_inner());
        if stepped.is_none() {
            state.ready.store(true, Ordering::SeqCst);
        }
    }
    tracing::info!(listen = %config.listen, data_dir = %config.data_dir.display(), durability = ?config.durability, "slotpool is serving");
    println!("slotpool: listening on http://{}", config.listen);
    let result = serving
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    state.ready.store(false, Ordering::SeqCst);
    if in_cluster {
        // The cluster member flushes its journals when Raft has stopped.
        result.map_err(|e| Failure::Runtime(e.to_string()))?;
        // Stopped by a signal, the process ends, even if the lead was lost meanwhile.
        if stop.requested() {
            return Ok(Ended::Stopped);
        }
        let why = stepped_down.lock().ok().and_then(|mut s| s.take());
        return Ok(why.map_or(Ended::Stopped, Ended::SteppedDown));
    }
    tracing::info!("stopped accepting requests; flushing the journal");
    journal
        .shutdown()
        .map_err(|e| Failure::Runtime(format!("final flush failed: {e}")))?;
    result.map_err(|e| Failure::Runtime(e.to_string()))?;
    tracing::info!("journal flushed; bye");
    Ok(Ended::Stopped)
}

/// Recovery checks every record it replays, but not those a snapshot stands for. This
/// checks the whole journal and every snapshot in the background, so that start-up stays
/// fast; damage it finds is logged, counted (`slotpool_journal_damaged`) and shown to
/// administrators as a notice. The state being served does not depend on those records.
fn check_whole_journal(
    journal: Journal,
    damaged: prometheus::IntGauge,
) -> Arc<OnceLock<(String, Timestamp)>> {
    let found = Arc::new(OnceLock::new());
    let report = Arc::clone(&found);
    let spawned = std::thread::Builder::new()
        .name("journal-verify".into())
        .spawn(move || {
            let result = journal.verify().map_err(|e| e.to_string()).and_then(|streams| {
                SnapshotStore::open(&journal)
                    .and_then(|store| store.verify(&journal))
                    .map(|snapshots| (streams.len(), snapshots))
                    .map_err(|e| e.to_string())
            });
            match result {
                Ok((streams, snapshots)) => {
                    tracing::info!(streams, snapshots, "background check: the whole journal is intact")
                }
                Err(e) => {
                    tracing::error!(error = %e, "background check: the journal is damaged; run `slotpool verify` on a copy and restore from a backup");
                    damaged.set(1);
                    let _ = report.set((e, SystemClock.now()));
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "background journal check not started");
    }
    found
}

/// A panic in any thread (an actor, the committer) is a bug that may leave state behind
/// the journal: stop the whole process at once, so that a restart recovers from disk,
/// rather than serve on with a dead actor.
fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        tracing::error!(%info, "panic: stopping so that recovery can start clean");
        crate::logging::flush();
        std::process::abort();
    }));
}

/// Turns transparent huge pages off for this process, as Redis does (`disable-thp`), for
/// the tail latency. mimalloc asks the kernel for huge pages on its arenas
/// (`MADV_HUGEPAGE`), so each time the heap grows into a new 2 MiB region, the thread
/// that touches it first zeroes the whole page inside one page fault: measured under
/// `make load` (perf), 7-9 ms on the actor's thread, several times a second while the
/// sled cache fills, with every request waiting behind it. With 4 KiB pages the same work
/// is spread over many faults of microseconds. Failing to turn them off (an old kernel)
/// costs latency, never correctness: it is logged and the service goes on.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag of this
        // process's memory map; no pointer is passed.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            tracing::warn!(error = %e, "transparent huge pages not disabled; tail latency may suffer");
        }
    }
}
