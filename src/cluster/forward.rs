//! A follower's HTTP: its own health, readiness, metrics and cluster status; every other
//! request forwarded to the leader, whose answer is returned as it comes (event streams
//! included); `503` with `Retry-After` while no leader is known.

use super::routes::ClusterData;
use crate::config::Config;
use crate::failure::Failure;
use crate::http::auth::{from_trusted_proxy, USER_HEADER};
use crate::http::body::read_bytes;
use crate::http::limits::rate::user_route;
use crate::problem::Problem;
use crate::secrets::TokenHash;
use crate::serve::Opened;
use crate::stop::Stop;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::Next;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use ipnet::IpNet;
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

/// Whether a leader's answer says to ask again (503 with `Retry-After`: `not_ready`
/// while it starts or steps down, `no_leader`), rather than refusing the request.
fn ask_again(status: awc::http::StatusCode, headers: &awc::http::header::HeaderMap) -> bool {
    status == awc::http::StatusCode::SERVICE_UNAVAILABLE
        && headers.contains_key(awc::http::header::RETRY_AFTER)
}

/// Whether a request may be sent to the leader again after an answer that says to ask
/// again (`problem`, its body). `not_ready` did nothing (products refuse before they
/// decide). `no_leader` may come after a write was proposed, which may still commit:
/// sent again, a `POST` (a SCIM create, a fixed-licence request) could take effect
/// twice, so only methods whose repetition changes nothing more are.
fn may_send_again(method: &actix_web::http::Method, problem: &[u8]) -> bool {
    method.is_idempotent()
        || serde_json::from_slice::<serde_json::Value>(problem)
            .is_ok_and(|p| p["reason"] == Problem::not_ready().reason)
}

/// Largest body of a "ask again" answer read to decide on a retry (a problem is small).
const ASK_AGAIN_BODY: usize = 64 * 1024;

/// Starts the follower's server on the configured address.
pub(super) fn start(
    config: &Config,
    node: Arc<ClusterNode>,
    admin_token: TokenHash,
    opened: &Opened,
    stop: &Stop,
) -> Result<Server, Failure> {
    let cluster = ClusterData::new(node, admin_token);
    let registry = web::Data::new(opened.registry.clone());
    let http_metrics = opened.http_metrics.clone();
    let limits = opened.limits.clone();
    let front = web::Data::new(Front {
        trusted_proxies: config.trusted_proxies.clone(),
        max_body: config
            .max_body_bytes
            .max(crate::http::dashboard::FORM_BYTES),
    });
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
            .app_data(limits.clone())
            .app_data(front.clone())
            .wrap(actix_web::middleware::from_fn(body_deadline))
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
    .shutdown_signal(stop.signal())
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

/// What the follower's front door knows of the request's way in.
struct Front {
    /// The peers whose proxy headers are believed, as the leader believes them.
    trusted_proxies: Vec<IpNet>,
    /// The largest body forwarded: the largest the leader takes on any route (its
    /// `max_body_bytes` for JSON, the dashboard's forms), which then judges it itself.
    max_body: usize,
}

/// Headers only a trusted front proxy may set: the leader believes them from this
/// follower (a member is one of its trusted proxies), so they are passed on only when the
/// follower's own peer is trusted. Otherwise any client that reached a follower directly
/// could act as any user (`X-Slotpool-User`) or choose the address the rate limits and
/// the gate's bypass rules see.
const PROXY_ONLY: [&str; 9] = [
    "x-slotpool-user",
    "x-slotpool-token-kind",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-uri",
    "forwarded",
    "x-real-ip",
    "x-original-uri",
];

/// The follower's side of the body deadline the leader keeps (`request_body_timeout_s`):
/// the follower reads the body before it forwards it, so a client that announces a body
/// and stalls is answered 408 here, as the leader would answer it.
async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let armed = crate::http::limits::body::arm(&mut req);
    let res = next.call(req).await?;
    Ok(crate::http::limits::body::judge(armed, res))
}

/// Sends the request to the leader and streams its answer back.
async fn forward(
    req: HttpRequest,
    payload: web::Payload,
    front: web::Data<Front>,
    data: web::Data<ClusterData>,
    client: web::Data<awc::Client>,
) -> HttpResponse {
    let trusted = from_trusted_proxy(&req, &front.trusted_proxies);
    if !trusted && req.headers().contains_key(USER_HEADER) && user_route(req.path()) {
        // What the leader answers a peer it does not trust, on the routes that read the
        // user; elsewhere the header is dropped (the leader ignores it there).
        return Problem::untrusted_proxy(USER_HEADER).error_response();
    }
    let body = match read_bytes(payload, front.max_body).await {
        Ok(body) => body.freeze(),
        Err(problem) => return problem.error_response(),
    };
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
        let passed = !hop_by_hop(name)
            && name != header::HOST
            && (trusted || !PROXY_ONLY.contains(&name.as_str()));
        if passed {
            forwarded = forwarded.append_header((name.clone(), value.clone()));
        }
    }
    if let Some(host) = req.headers().get(header::HOST) {
        forwarded = forwarded.insert_header((header::HOST, host.clone()));
    }
    // The leader sees this follower as the peer: say who the client was. A trusted
    // proxy's `X-Forwarded-For` already ends with the client it saw (the address the
    // leader keys its limits on), and the follower is no hop of its own: it is passed on
    // as it is. For any other peer the client is the peer.
    let said = trusted && req.headers().contains_key("x-forwarded-for");
    if let (false, Some(peer)) = (said, req.peer_addr()) {
        forwarded = forwarded.insert_header(("x-forwarded-for", peer.ip().to_string()));
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
    for tries_left in (0..RETRIES).rev() {
        match &mut sent {
            Err(awc::error::SendRequestError::Connect(_)) => {}
            Ok(answer) if ask_again(answer.status(), answer.headers()) => {
                // Read to decide; once read, this answer is the one returned unless the
                // request goes again.
                let problem = answer
                    .body()
                    .limit(ASK_AGAIN_BODY)
                    .await
                    .unwrap_or_default();
                let again = tries_left > 0
                    && node.leader() == Some(leader)
                    && may_send_again(req.method(), &problem);
                if !again {
                    return answered(answer, problem);
                }
            }
            _ => break,
        }
        if node.leader() != Some(leader) {
            break;
        }
        actix_web::rt::time::sleep(RETRY).await;
        sent = forwarded.send_body(body.clone()).await;
    }
    match sent {
        Ok(mut answer) => {
            let mut out = answer_head(&answer);
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
        Err(awc::error::SendRequestError::Timeout) => {
            tracing::warn!(
                leader,
                "the leader did not answer a forwarded request in time"
            );
            Problem::leader_timeout(LEADER_ANSWER.as_secs()).error_response()
        }
        Err(e) => {
            tracing::warn!(leader, error = %e, "forwarding to the leader failed");
            no_leader("the leader did not answer; a new one may be being elected")
        }
    }
}

/// The leader's answer whose body was read already, as the client gets it.
fn answered(answer: &awc::ClientResponse<impl Sized>, body: web::Bytes) -> HttpResponse {
    answer_head(answer).body(body)
}

/// The status and end-to-end headers of the leader's answer.
fn answer_head(answer: &awc::ClientResponse<impl Sized>) -> actix_web::HttpResponseBuilder {
    let mut out = HttpResponse::build(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            out.append_header((name.clone(), value.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    /// A follower sends a request again only when that cannot make it take effect twice.
    #[test]
    fn only_what_did_nothing_or_changes_nothing_more_is_sent_again() {
        let no_leader = Problem::no_leader("lost the lead").body().to_string();
        let not_ready = Problem::not_ready().body().to_string();
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            assert!(may_send_again(&method, no_leader.as_bytes()), "{method}");
        }
        for method in [Method::POST, Method::PATCH] {
            assert!(!may_send_again(&method, no_leader.as_bytes()), "{method}");
            assert!(may_send_again(&method, not_ready.as_bytes()), "{method}");
            assert!(!may_send_again(&method, b"<html>busy</html>"), "{method}");
        }
    }
}
