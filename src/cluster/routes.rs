//! `/admin/v1/cluster`: the member's view of its cluster, and membership changes.

use crate::http::auth::bearer;
use crate::problem::Problem;
use crate::secrets::TokenHash;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use slotpool_cluster::{ClusterError, ClusterNode, Member};
use std::sync::Arc;

/// What the cluster endpoints need: the node and the admin token (checked here, so that
/// a follower, which has no service state, answers them too).
#[derive(Clone)]
pub struct ClusterData {
    node: Arc<ClusterNode>,
    admin_token: TokenHash,
}

impl ClusterData {
    /// The endpoints' data.
    pub fn new(node: Arc<ClusterNode>, admin_token: TokenHash) -> Self {
        ClusterData { node, admin_token }
    }

    /// The node.
    pub fn node(&self) -> &Arc<ClusterNode> {
        &self.node
    }

    /// The routes a leader serves: status and membership changes.
    pub fn leader_routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .route("/readyz", web::get().to(leader_ready))
            .route("/admin/v1/cluster", web::get().to(status))
            .route("/admin/v1/cluster/members", web::post().to(add))
            .route("/admin/v1/cluster/members/{id}", web::delete().to(remove));
    }

    /// The routes a follower answers itself (membership changes go to the leader).
    pub fn follower_routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .route("/admin/v1/cluster", web::get().to(status));
    }

    fn check(&self, req: &HttpRequest) -> Result<(), Problem> {
        let token = bearer(req).ok_or_else(Problem::missing_token)?;
        if self.admin_token.matches(token) {
            Ok(())
        } else {
            Err(Problem::bad_token())
        }
    }
}

/// `GET /readyz` on the leader: the single node's readiness, and who leads (a new first
/// member probing its peers learns from it that a cluster runs).
async fn leader_ready(
    state: web::Data<crate::http::AppState>,
    data: web::Data<ClusterData>,
) -> Result<HttpResponse, Problem> {
    crate::http::ops::ready(&state)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready", "leader": data.node.id()})))
}

/// `GET /admin/v1/cluster`: leader, term, indexes, members and their lag.
async fn status(req: HttpRequest, data: web::Data<ClusterData>) -> Result<HttpResponse, Problem> {
    data.check(&req)?;
    Ok(HttpResponse::Ok().json(data.node.status()))
}

/// The body of `POST /admin/v1/cluster/members`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    id: u64,
    http: String,
    raft: String,
}

fn problem(e: ClusterError) -> Problem {
    match e {
        ClusterError::ChangeRunning => Problem::membership_change(),
        ClusterError::NotLeader(_) => Problem::no_leader("this node no longer leads; retry"),
        ClusterError::Config(m) => Problem::invalid_membership(m),
        e => Problem::invalid_membership(e.to_string()),
    }
}

/// `POST /admin/v1/cluster/members`: adds a node (a learner that catches up, then a
/// voter through joint consensus).
async fn add(
    req: HttpRequest,
    data: web::Data<ClusterData>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    data.check(&req)?;
    let m: NewMember = crate::http::body::parse_json(&body, Problem::invalid_body)?;
    for (what, a) in [("http", &m.http), ("raft", &m.raft)] {
        if a.rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(Problem::invalid_body(format!(
                "{what} {a:?} is not a host:port"
            )));
        }
    }
    if data.node.status().members.iter().any(|x| x.id == m.id) {
        return Err(Problem::invalid_membership(format!(
            "node {} is already a member",
            m.id
        )));
    }
    let status = data
        .node
        .add_member(
            m.id,
            Member {
                http: m.http,
                raft: m.raft,
            },
        )
        .await
        .map_err(problem)?;
    tracing::info!(node = m.id, "member added");
    Ok(HttpResponse::Ok().json(status))
}

/// `DELETE /admin/v1/cluster/members/{id}`: removes a member through joint consensus.
async fn remove(
    req: HttpRequest,
    data: web::Data<ClusterData>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    data.check(&req)?;
    let id: u64 = id
        .parse()
        .map_err(|_| Problem::invalid_body(format!("{:?} is not a node id", id.as_str())))?;
    let status = data.node.remove_member(id).await.map_err(problem)?;
    tracing::info!(node = id, "member removed");
    Ok(HttpResponse::Ok().json(status))
}
