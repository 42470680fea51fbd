//! A follower's HTTP: its own health, readiness, metrics and cluster status; every other
//! request forwarded to the leader, whose answer is returned as it comes (event streams
//! included); `503` with `Retry-After` while no leader is known.

use super::routes::ClusterData;
use crate::config::Config;
use crate::failure::Failure;
use crate::problem::Problem;
use crate::secrets::TokenHash;
use crate::serve::Opened;
use actix_web::dev::Server;
use actix_web::http::header::{self, HeaderName};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use prometheus::{Encoder, TextEncoder};
use slotpool_cluster::ClusterNode;
use std::sync::Arc;
use std::time::Duration;

/// How long the leader may take to start answering a forwarded request.
const LEADER_ANSWER: Duration = Duration::from_secs(30);

/// How often, and how far apart, a forward the leader did not take yet is tried again: its
/// connection refused, or a 503 saying to ask again (a new leader opening its port and
/// repairing after recovery: about its recovery time).
const RETRIES: usize = 30;
const RETRY: Duration = Duration::from_millis(100);

/// Answers up to this size are read whole and sent back with their length.
const BUFFERED_ANSWER: usize = 1 << 20;

/// Headers of one connection, not of the request (RFC 9110 §7.6.1), and the lengths the
/// client library sets itself.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

fn hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Whether a leader's answer says it is not serving yet and to ask again (503 with
/// `Retry-After`: `not_ready` while it starts, `no_leader`), rather than refusing the
/// request: the request did nothing there and may be sent again.
fn not_yet_serving(status: awc::http::StatusCode, headers: &awc::http::header::HeaderMap) -> bool {
    status == awc::http::StatusCode::SERVICE_UNAVAILABLE
        && headers.contains_key(awc::http::header::RETRY_AFTER)
}

/// Starts the follower's server on the configured address.
pub(super) fn start(
    config: &Config,
    node: Arc<ClusterNode>,
    admin_token: TokenHash,
    opened: &Opened,
) -> Result<Server, Failure> {
    let cluster = ClusterData::new(node, admin_token);
    let registry = web::Data::new(opened.registry.clone());
    let http_metrics = opened.http_metrics.clone();
    let max_body = config.max_body_bytes;
    let server = HttpServer::new(move || {
        let client = awc::Client::builder()
            .timeout(LEADER_ANSWER)
            .disable_redirects()
            .connector(awc::Connector::new().limit(4096))
            .finish();
        App::new()
            .app_data(web::Data::new(client))
            .app_data(registry.clone())
            .app_data(http_metrics.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .configure(|cfg| cluster.follower_routes(cfg))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(forward))
    })
    .workers(config.http_workers)
    .client_request_timeout(config.timeouts.client_request)
    .keep_alive(config.timeouts.keep_alive)
    .shutdown_timeout(1)
    .bind(&config.listen)
    .map_err(|e| Failure::Runtime(format!("cannot listen on {}: {e}", config.listen)))?
    .run();
    println!(
        "slotpool: listening on http://{} (following)",
        config.listen
    );
    Ok(server)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready while another member leads (requests are forwarded to it); not while this one
/// has just been elected and is about to serve itself.
async fn readyz(data: web::Data<ClusterData>) -> HttpResponse {
    match data.node().leader() {
        Some(leader) if leader == data.node().id() => {
            no_leader("this member was just elected and starts serving in a moment")
        }
        Some(leader) => {
            HttpResponse::Ok().json(serde_json::json!({"status": "ready", "leader": leader}))
        }
        None => no_leader("no cluster leader is known; an election may be running"),
    }
}

async fn metrics(
    registry: web::Data<prometheus::Registry>,
    http: web::Data<crate::http::observe::HttpMetrics>,
    data: web::Data<ClusterData>,
) -> Result<HttpResponse, Problem> {
    // `slotpool_ready` as `/readyz` answers: a follower that knows another leader serves.
    let node = data.node();
    let ready = node.leader().is_some_and(|l| l != node.id());
    http.ready.set(i64::from(ready));
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .map_err(Problem::metrics_failed)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out))
}

fn no_leader(detail: &str) -> HttpResponse {
    Problem::no_leader(detail).error_response()
}

/// Sends the request to the leader and streams its answer back.
async fn forward(
    req: HttpRequest,
    body: web::Bytes,
    data: web::Data<ClusterData>,
    client: web::Data<awc::Client>,
) -> HttpResponse {
    let node = data.node();
    let leader = match node.leader() {
        Some(l) if l != node.id() => l,
        // This node leads but has not started serving yet (catching up), or no leader.
        _ => return no_leader("no cluster leader is serving yet; an election may be running"),
    };
    let Some(http) = node.http_of(leader) else {
        return no_leader("the leader's address is not known yet");
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://{http}{path}");
    let mut forwarded = client.request(req.method().clone(), url).no_decompress();
    for (name, value) in req.headers() {
        if !hop_by_hop(name) && name != header::HOST {
            forwarded = forwarded.append_header((name.clone(), value.clone()));
        }
    }
    if let Some(host) = req.headers().get(header::HOST) {
        forwarded = forwarded.insert_header((header::HOST, host.clone()));
    }
    // The leader sees this follower as the peer: say who the client was.
    if let Some(peer) = req.peer_addr() {
        let chain = match req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(before) => format!("{before}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        forwarded = forwarded.insert_header(("x-forwarded-for", chain));
    }
    // A leader that has just been elected stops following and starts serving (recovery
    // first): its port refuses connections for a moment, then answers product routes 503
    // `not_ready` (with `Retry-After`) while it repairs what a crash kept from its
    // products. Nothing was done with the request either way, so it is tried again, for
    // as long as that node is still the leader.
    let forwarded = match forwarded.freeze() {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "a request could not be forwarded");
            return no_leader("the request could not be forwarded to the leader");
        }
    };
    let mut sent = forwarded.send_body(body.clone()).await;
    for _ in 0..RETRIES {
        let not_taken = match &sent {
            Err(awc::error::SendRequestError::Connect(_)) => true,
            Ok(answer) => not_yet_serving(answer.status(), answer.headers()),
            Err(_) => false,
        };
        if !not_taken || node.leader() != Some(leader) {
            break;
        }
        actix_web::rt::time::sleep(RETRY).await;
        sent = forwarded.send_body(body.clone()).await;
    }
    match sent {
        Ok(mut answer) => {
            let mut out = HttpResponse::build(answer.status());
            for (name, value) in answer.headers() {
                if !hop_by_hop(name) {
                    out.append_header((name.clone(), value.clone()));
                }
            }
            // An answer of known length goes back with its length (what most clients and
            // proxies handle best); one without (an event stream, a backup) streams.
            let length = answer
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            let bodiless = matches!(answer.status().as_u16(), 204 | 304)
                || req.method() == actix_web::http::Method::HEAD;
            if bodiless {
                return out.finish();
            }
            match length {
                Some(n) if n <= BUFFERED_ANSWER => match answer.body().limit(BUFFERED_ANSWER).await
                {
                    Ok(bytes) => out.body(bytes),
                    Err(e) => {
                        tracing::warn!(leader, error = %e, "the leader's answer was cut");
                        no_leader("the leader's answer was cut; a new leader may be being elected")
                    }
                },
                _ => out.streaming(answer),
            }
        }
        Err(e) => {
            tracing::warn!(leader, error = %e, "forwarding to the leader failed");
            no_leader("the leader did not answer; a new one may be being elected")
        }
    }
}
