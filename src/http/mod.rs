//! The HTTP surface: routes, shared state and the error handling every route shares.
//!
//! Handlers are thin: parse, authorise, send a message to an actor, map the answer.
//! Rules live in `slotpool-events`; error mapping lives in [`crate::problem`].

pub mod admin;
pub mod alerts;
pub mod around;
pub mod auth;
pub mod backup;
pub mod body;
pub mod bypass;
pub mod call;
pub mod connector;
pub mod dashboard;
pub mod fixed_request;
pub mod gate;
pub mod limits;
pub mod observe;
pub mod ops;
pub mod pages;
pub mod scim;
pub mod space;
pub mod sse;
pub mod user;
/// The JSON shapes live outside `http` (the offline tools print them too); SCIM still names
/// them `http::view`.
pub(crate) use crate::view;

use crate::problem::{Problem, PROBLEM_JSON};
use crate::secrets::TokenHash;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::web;
use ipnet::IpNet;
use slotpool_actors::{ask, ConfigureProduct, Execute, Executed, ProductActor, Services};
use slotpool_events::{Command, Settings};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

/// What every handler can reach.
pub struct AppState {
    /// The actors.
    pub services: Services,
    /// Hash of the admin token.
    pub admin_token: TokenHash,
    /// Hash of the SCIM token, if SCIM is set up.
    pub scim_token: Option<TokenHash>,
    /// The last SCIM requests, for `GET /admin/v1/scim/log`.
    pub scim_log: scim::log::ScimLog,
    /// Peers whose `X-Slotpool-User` header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// The Prometheus registry `/metrics` exposes.
    pub registry: prometheus::Registry,
    /// Set once recovery is done; cleared when shutting down.
    pub ready: AtomicBool,
    /// Damage the background check of the whole journal found, if any.
    pub journal_damage: Arc<OnceLock<(String, slotpool_events::Timestamp)>>,
    /// Cancelled when the server is told to stop. Event streams never end on their own,
    /// so they end on this: the drain then waits for requests, not for open browsers
    /// (which reconnect, in a cluster to the new leader).
    pub stopping: tokio_util::sync::CancellationToken,
    /// Set when this cluster member has lost its lead: every request but the operational
    /// ones is answered `503 not_ready` until it stops (`http::around`).
    pub deposed: AtomicBool,
}

impl AppState {
    /// The actor of product `id`: 400 for an id that cannot name a product, 404 for one
    /// that does not exist, 503 until recovery is done (the server takes connections
    /// while it repairs what a crash kept from the products, see `serve`).
    pub fn product(&self, id: &str) -> Result<actix::Addr<slotpool_actors::ProductActor>, Problem> {
        auth::check_product_id(id)?;
        if !self.ready.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Problem::not_ready());
        }
        self.services
            .products
            .get(id)
            .ok_or_else(|| Problem::unknown_product(id))
    }
}

/// Sends `command` to the product with the request's cause ([`observe::cause`]) and
/// waits until its events are durable: the one way every HTTP surface (user API, gate,
/// admin API, dashboard, fixed-licence requests) has a product decide something. What
/// a refusal becomes is [`Problem::of_command`]'s decision; this only tells it whether
/// the user of a slot request is unknown to the directory.
pub(crate) async fn execute(
    state: &AppState,
    addr: &actix::Addr<ProductActor>,
    command: Command,
) -> Result<Executed, Problem> {
    let requester = match &command {
        Command::Request { user, .. } => Some(user.clone()),
        _ => None,
    };
    let cause = observe::cause();
    ask(addr, Execute { command, cause })
        .await
        .map_err(|e| refused(state, e, requester.as_deref()))
}

/// What a product's answer `e` to `requester`'s slot request (or stream) becomes: the
/// directory view tells [`Problem::of_command`] whether that user is unknown to it.
pub(crate) fn refused(
    state: &AppState,
    e: slotpool_actors::ActorError,
    requester: Option<&str>,
) -> Problem {
    let unknown = requester.filter(|u| state.services.directory_view.facts(u).is_none());
    Problem::of_command(e, unknown)
}

/// Creates product `id` or changes its settings, through the directory actor, which
/// starts a new product only for settings the core accepts and notes the groups of
/// holders and queued members when the settings have reservations (rule 10): the admin
/// API's `PUT` and the dashboard's forms alike.
pub(crate) async fn configure(
    state: &AppState,
    id: &str,
    settings: Settings,
) -> Result<Executed, Problem> {
    Ok(state
        .services
        .directory
        .send(ConfigureProduct {
            id: id.to_string(),
            settings,
            cause: observe::cause(),
        })
        .await??)
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/products/{product}")
            .route("/slot", web::post().to(user::request))
            .route("/slot", web::get().to(user::slot))
            .route("/slot", web::delete().to(user::release))
            .route("/activity", web::post().to(user::activity))
            .route("/notifications", web::get().to(user::notifications))
            .route("/fixed-request", web::post().to(fixed_request::request))
            .route("/spaces", web::get().to(space::user_list))
            .route("/space-requests", web::post().to(space::request)),
    )
    .service(
        web::scope("/admin/v1")
            .route("/products", web::get().to(admin::list_products))
            .route("/products/{product}", web::put().to(admin::put_product))
            .route("/products/{product}", web::get().to(admin::get_product))
            .route(
                "/products/{product}/members/{user}",
                web::put().to(admin::enrol),
            )
            .route(
                "/products/{product}/members/{user}",
                web::delete().to(admin::remove),
            )
            .route(
                "/products/{product}/fixed/{user}",
                web::put().to(admin::give_fixed),
            )
            .route(
                "/products/{product}/fixed/{user}",
                web::delete().to(admin::take_fixed),
            )
            .route("/products/{product}/holders", web::get().to(admin::holders))
            .route(
                "/products/{product}/holders/{user}",
                web::delete().to(admin::revoke),
            )
            .route("/products/{product}/queue", web::get().to(admin::queue))
            .route("/products/{product}/bypass", web::get().to(bypass::list))
            .route("/products/{product}/alerts", web::get().to(alerts::list))
            .route(
                "/products/{product}/connector",
                web::get().to(connector::status),
            )
            .route(
                "/products/{product}/connector/resync",
                web::post().to(connector::resync),
            )
            .route(
                "/products/{product}/spaces",
                web::get().to(space::admin_list),
            )
            .route(
                "/products/{product}/spaces/refresh",
                web::post().to(space::refresh),
            )
            .route("/space-requests", web::get().to(space::list))
            .route(
                "/products/{product}/space-requests/{id}/approve",
                web::post().to(space::approve),
            )
            .route(
                "/products/{product}/space-requests/{id}/reject",
                web::post().to(space::reject),
            )
            .route(
                "/products/{product}/space-requests/{id}/revoke",
                web::post().to(space::revoke),
            )
            .route("/fixed-requests", web::get().to(fixed_request::list))
            .route(
                "/fixed-requests/{id}/approve",
                web::post().to(fixed_request::approve),
            )
            .route(
                "/fixed-requests/{id}/reject",
                web::post().to(fixed_request::reject),
            )
            .route("/notices", web::get().to(admin::notices))
            .route("/notices/stream", web::get().to(admin::notices_stream))
            .route("/users", web::get().to(admin::list_users))
            .route("/users/{user}", web::get().to(admin::get_user))
            .route("/users/{user}", web::put().to(admin::put_user))
            .route("/scim/log", web::get().to(scim::admin_log))
            .route("/products/{product}/sync", web::post().to(admin::run_sync))
            .route(
                "/products/{product}/sync",
                web::get().to(admin::sync_report),
            )
            .route("/backup", web::post().to(backup::backup)),
    )
    .configure(scim::routes)
    .route("/healthz", web::get().to(ops::healthz))
    .route("/healthz", web::head().to(ops::healthz))
    .route("/readyz", web::get().to(ops::readyz))
    .route("/readyz", web::head().to(ops::readyz))
    .route("/metrics", web::get().to(ops::metrics))
    .route("/openapi.json", web::get().to(ops::openapi))
    .route("/gate/{product}", web::get().to(gate::gate))
    .route("/queue/{product}", web::get().to(pages::queue::queue_page))
    .route("/queue/{product}/logo", web::get().to(pages::queue::logo))
    .route("/static/{name}", web::get().to(pages::assets::asset))
    .configure(dashboard::routes)
    .default_service(web::to(ops::not_found));
}

/// Turns every error response that is not already a problem (actix's own 404/405, path
/// and header errors) into `application/problem+json`, so clients see one error shape.
pub fn problem_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        // Problems pass as they are, and so do the pages' deliberate HTML answers (the
        // dashboard's refusals, the gate's 401 for proxies that show it to the browser).
        // SCIM errors keep their own media type.
        let is_problem = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes().starts_with(PROBLEM_JSON.as_bytes())
                || v.as_bytes().starts_with(b"text/html")
                || v.as_bytes().starts_with(scim::SCIM_JSON.as_bytes())
        });
        if is_problem {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let problem = Problem::for_status(res.status());
        let (req, _) = res.into_parts();
        let resp = actix_web::ResponseError::error_response(&problem).map_into_boxed_body();
        let res: ServiceResponse<EitherBody<B, BoxBody>> =
            ServiceResponse::new(req, resp).map_into_right_body();
        Ok(ErrorHandlerResponse::Response(res))
    })
}
