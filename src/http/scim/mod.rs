//! SCIM 2.0 (RFC 7643/7644) at `/scim/v2`, for identity providers (Okta, Entra ID,
//! OneLogin): Users and Groups, discovery, filters, PATCH, pagination, and a request log.
//!
//! Authenticated by its own bearer token (kept hashed, like the admin token). Every
//! error is a SCIM error body (`urn:ietf:params:scim:api:messages:2.0:Error`, `status`
//! as a string, `scimType` where one applies) with `application/scim+json`. Handlers
//! stay thin: the rules (uniqueness, membership consistency, deactivation everywhere)
//! are the directory's, in `slotpool-events`.

pub mod discovery;
pub mod filter;
pub mod groups;
pub mod log;
pub mod patch;
pub mod query;
pub mod resource;
pub mod users;

use super::auth::{app_state, bearer};
use super::AppState;
use crate::problem::Problem;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use slotpool_actors::ActorError;
use slotpool_events::DirectoryRefusal;
use std::future::Future;
use std::time::Instant;

/// The media type of every SCIM body.
pub const SCIM_JSON: &str = "application/scim+json";
/// Schema of error bodies.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// Schema of list responses.
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Most resources one page returns.
pub const MAX_COUNT: usize = 1000;
/// Times a PATCH is retried when another change got in between its read and its write.
const PATCH_RETRIES: usize = 5;

/// A SCIM error answer.
#[derive(Debug, Clone)]
pub struct ScimError {
    /// HTTP status.
    pub status: StatusCode,
    /// SCIM `scimType`, where one applies.
    pub scim_type: Option<&'static str>,
    /// For the client.
    pub detail: String,
}

impl ScimError {
    /// An error with a `scimType`.
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 with `scimType`.
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    /// The SCIM error body.
    pub fn body(&self) -> Value {
        let mut v = json!({
            "schemas": [ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(o)) = (self.scim_type, v.as_object_mut()) {
            o.insert("scimType".into(), Value::String(t.into()));
        }
        v
    }

    fn response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"scim\""));
        }
        r.content_type(SCIM_JSON).body(self.body().to_string())
    }
}

impl From<DirectoryRefusal> for ScimError {
    fn from(r: DirectoryRefusal) -> Self {
        let detail = r.to_string();
        match r {
            DirectoryRefusal::Uniqueness(_) => {
                Self::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
            }
            DirectoryRefusal::UnknownUser(_) | DirectoryRefusal::UnknownGroup(_) => {
                Self::not_found(detail)
            }
            DirectoryRefusal::Mutability(_) => Self::bad("mutability", detail),
            DirectoryRefusal::InvalidValue(_) => Self::bad("invalidValue", detail),
            DirectoryRefusal::VersionMismatch { .. } => {
                Self::new(StatusCode::PRECONDITION_FAILED, None, detail)
            }
        }
    }
}

impl From<Problem> for ScimError {
    /// A problem outside SCIM's own vocabulary (a journal failure, shutting down), with
    /// its status and detail.
    fn from(p: Problem) -> Self {
        Self::new(p.status, None, p.detail)
    }
}

impl From<ActorError> for ScimError {
    fn from(e: ActorError) -> Self {
        match e {
            ActorError::Directory(d) => d.into(),
            other => Problem::from(other).into(),
        }
    }
}

impl From<actix::MailboxError> for ScimError {
    fn from(e: actix::MailboxError) -> Self {
        ActorError::from(e).into()
    }
}

/// A SCIM success answer with `body` and, for a single resource, its ETag.
pub fn scim_ok(status: StatusCode, body: &Value) -> HttpResponse {
    let mut r = HttpResponse::build(status);
    if let Some(v) = body.pointer("/meta/version").and_then(Value::as_str) {
        r.insert_header((header::ETAG, v.to_string()));
    }
    if status == StatusCode::CREATED {
        if let Some(l) = body.pointer("/meta/location").and_then(Value::as_str) {
            r.insert_header((header::LOCATION, l.to_string()));
        }
    }
    r.content_type(SCIM_JSON).body(body.to_string())
}

/// A weak ETag for `version`.
pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// The version an `If-Match` header asks for: `None` without one (or with `*`).
pub fn if_match(req: &HttpRequest) -> Result<Option<u64>, ScimError> {
    let Some(v) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let inner = text.trim_start_matches("W/").trim_matches('"');
    inner
        .parse()
        .map(Some)
        .map_err(|_| ScimError::bad("invalidValue", "If-Match is not an ETag of this server"))
}

fn check_token(state: &AppState, req: &HttpRequest) -> Result<(), ScimError> {
    let Some(hash) = &state.scim_token else {
        return Err(ScimError::new(
            StatusCode::UNAUTHORIZED,
            None,
            "SCIM is not set up: no SCIM token",
        ));
    };
    match bearer(req) {
        Some(t) if hash.matches(t) => Ok(()),
        Some(_) => Err(ScimError::new(
            StatusCode::UNAUTHORIZED,
            None,
            "the bearer token is not the SCIM token",
        )),
        None => Err(ScimError::new(
            StatusCode::UNAUTHORIZED,
            None,
            "send the SCIM token as 'Authorization: Bearer <token>'",
        )),
    }
}

async fn read_body(payload: web::Payload, limit: usize) -> Result<web::Bytes, ScimError> {
    let body = super::body::read_limited(
        payload,
        limit,
        |e| ScimError::bad("invalidSyntax", e),
        |limit| {
            ScimError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("tooLarge"),
                format!("the body is larger than {limit} bytes"),
            )
        },
    )
    .await?;
    Ok(body.freeze())
}

/// Parses a JSON body: malformed JSON is 400 `invalidSyntax`.
pub fn parse_body(bytes: &[u8]) -> Result<Value, ScimError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(ScimError::bad(
            "invalidSyntax",
            "the body is not a JSON object",
        ));
    }
    Ok(v)
}

/// Runs a SCIM handler: checks the token, reads the body, answers errors as SCIM errors,
/// and logs the request.
pub async fn serve<F, Fut>(req: HttpRequest, payload: web::Payload, handler: F) -> HttpResponse
where
    F: FnOnce(HttpRequest, web::Bytes) -> Fut,
    Fut: Future<Output = Result<HttpResponse, ScimError>>,
{
    let started = Instant::now();
    let at = super::view::rfc3339(slotpool_actors::Clock::now(&slotpool_actors::SystemClock));
    let Ok(state) = app_state(&req) else {
        return ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "no app state").response();
    };
    let mut body = web::Bytes::new();
    let result = match check_token(state, &req) {
        Err(e) => Err(e),
        Ok(()) => match read_body(payload, state.max_body_bytes).await {
            Err(e) => Err(e),
            Ok(b) => {
                body = b.clone();
                handler(req.clone(), b).await
            }
        },
    };
    let (response, error) = match result {
        Ok(r) => (r, None),
        Err(e) => (e.response(), Some(e.detail)),
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.to_string());
    state.scim_log.push(log::Entry {
        at,
        method: req.method().to_string(),
        path,
        status: response.status().as_u16(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        body: log::body_for_log(&body),
        error,
    });
    response
}

/// The query parameters, decoded.
pub fn query(req: &HttpRequest) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// The query parameter `name` (without regard to case).
pub fn param(req: &HttpRequest, name: &str) -> Option<String> {
    query(req)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The base URL of this server as the client reached it (for `meta.location`).
pub fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}/scim/v2", info.scheme(), info.host())
}

/// A string attribute of a body, without regard to the key's case.
pub fn str_attr(body: &Value, name: &str) -> Result<Option<String>, ScimError> {
    match filter::get_ci(body, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::bad(
            "invalidValue",
            format!("{name} must be a string"),
        )),
    }
}

/// A boolean attribute: JSON booleans, and Entra ID's strings `"True"` / `"False"`.
pub fn bool_attr(body: &Value, name: &str) -> Result<Option<bool>, ScimError> {
    match filter::get_ci(body, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ScimError::bad(
            "invalidValue",
            format!("{name} must be a boolean"),
        )),
    }
}

/// A 404 for any other path under `/scim/v2`.
pub async fn not_found(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        Err(ScimError::not_found(format!(
            "no SCIM endpoint {}",
            req.path()
        )))
    })
    .await
}

/// A 405 (with `Allow`) for a method an endpoint does not have: the discovery endpoints
/// are read-only (RFC 7644 §4), `.search` takes only POST (§3.4.3).
pub async fn method_not_allowed(
    req: HttpRequest,
    payload: web::Payload,
    allow: &'static str,
) -> HttpResponse {
    let mut r = serve(req, payload, move |req, _| async move {
        Err(ScimError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            format!(
                "{} {} is not supported; allowed: {allow}",
                req.method(),
                req.path()
            ),
        ))
    })
    .await;
    if let Ok(v) = header::HeaderValue::from_str(allow) {
        r.headers_mut().insert(header::ALLOW, v);
    }
    r
}

/// A 501 for what slotpool does not implement: `/Me` (RFC 7644 §3.11) and `/Bulk`
/// (§3.7; `bulk.supported` is false).
pub async fn not_implemented(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        Err(ScimError::new(
            StatusCode::NOT_IMPLEMENTED,
            None,
            format!("{} is not implemented by slotpool", req.path()),
        ))
    })
    .await
}

/// Every other method of a path with the methods `allow`: 405.
fn others(allow: &'static str) -> actix_web::Route {
    web::route()
        .to(move |req: HttpRequest, payload: web::Payload| method_not_allowed(req, payload, allow))
}

/// The methods of a search path.
const SEARCH: &str = "POST";

/// Adds to `scope` the endpoints of resource type `R` at `path` (`/Users`, `/Groups`):
/// its search (before `{id}`, which would match `.search`), list and create, and one
/// resource's read, replace, patch and delete.
fn resource_routes<R: resource::Resource>(scope: actix_web::Scope, path: &str) -> actix_web::Scope {
    const LIST: &str = "GET, POST";
    const ONE: &str = "GET, PUT, PATCH, DELETE";
    let (search, one) = (format!("{path}/.search"), format!("{path}/{{id}}"));
    scope
        .route(&search, web::post().to(resource::search::<R>))
        .route(&search, others(SEARCH))
        .route(path, web::get().to(resource::list::<R>))
        .route(path, web::post().to(resource::create::<R>))
        .route(path, others(LIST))
        .route(&one, web::get().to(resource::get::<R>))
        .route(&one, web::put().to(resource::replace::<R>))
        .route(&one, web::patch().to(resource::patch::<R>))
        .route(&one, web::delete().to(resource::delete::<R>))
        .route(&one, others(ONE))
}

/// Registers the SCIM routes. A path's other methods answer 405 with `Allow`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let scope = web::scope("/scim/v2")
        .route("/.search", web::post().to(resource::search_all))
        .route("/.search", others(SEARCH));
    let scope = resource_routes::<users::Users>(scope, "/Users");
    let scope = resource_routes::<groups::Groups>(scope, "/Groups");
    // Discovery (RFC 7644 §4) is read-only.
    let reads = [
        (
            "/ServiceProviderConfig",
            web::get().to(discovery::service_provider_config),
        ),
        ("/ResourceTypes", web::get().to(discovery::resource_types)),
        (
            "/ResourceTypes/{name}",
            web::get().to(discovery::resource_type),
        ),
        ("/Schemas", web::get().to(discovery::schemas)),
        ("/Schemas/{id}", web::get().to(discovery::schema)),
    ];
    let scope = reads.into_iter().fold(scope, |scope, (path, get)| {
        scope.route(path, get).route(path, others("GET"))
    });
    cfg.service(
        scope
            .route("/Me", web::route().to(not_implemented))
            .route("/Bulk", web::route().to(not_implemented))
            .default_service(web::to(not_found)),
    );
}

/// `GET /admin/v1/scim/log`: the last SCIM requests, newest first.
pub async fn admin_log(_: super::auth::Admin, req: HttpRequest) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    Ok(HttpResponse::Ok().json(state.scim_log.newest_first()))
}

/// Retries `attempt` while another change gets in between its read and its write (only
/// when the client did not pin a version with `If-Match`).
pub async fn with_retries<F, Fut>(pinned: bool, mut attempt: F) -> Result<HttpResponse, ScimError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<HttpResponse, ScimError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e)
                if e.status == StatusCode::PRECONDITION_FAILED
                    && !pinned
                    && tries < PATCH_RETRIES =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}
