//! The flow every SCIM resource endpoint shares (list, create, get, replace, patch,
//! delete), written once and generic over a [`Resource`]: Users and Groups differ only in
//! how they are rendered and read from a body, and in which directory commands change
//! them.

use super::query::ListQuery;
use super::{base_url, if_match, parse_body, scim_ok, serve, with_retries, ScimError};
use crate::http::auth::app_state;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;
use slotpool_actors::{Change, ReadDirectory};
use slotpool_events::{DirectoryCommand, DirectoryState};
use uuid::Uuid;

/// A SCIM resource type kept in the directory (`/Users`, `/Groups`).
pub trait Resource: 'static {
    /// What a body of this resource is read into.
    type Input;
    /// The resource's name in a 404's detail (`user`, `group`).
    const NOUN: &'static str;
    /// Reads a body (POST, PUT, or the result of a PATCH).
    fn input(body: &Value) -> Result<Self::Input, ScimError>;
    /// The rendered resource `id` and its version, if it exists.
    fn find(d: &DirectoryState, id: &str, base: &str) -> Option<(Value, u64)>;
    /// Every resource of this type, rendered.
    fn all(d: &DirectoryState, base: &str) -> Vec<Value>;
    /// The command creating resource `id` from `input`.
    fn create(id: String, input: Self::Input) -> DirectoryCommand;
    /// The command replacing resource `id` with `input` (only at `if_version`, if given).
    fn replace(id: String, input: Self::Input, if_version: Option<u64>) -> DirectoryCommand;
    /// The command deleting resource `id` (only at `if_version`, if given).
    fn delete(id: String, if_version: Option<u64>) -> DirectoryCommand;
}

/// Answers `question` about the directory's state, given the request's base URL (the
/// resources' `meta.location` is built from it): the one way reads reach the directory.
async fn read_directory<T: Send + 'static>(
    req: &HttpRequest,
    question: impl FnOnce(&DirectoryState, &str) -> T + Send + 'static,
) -> Result<T, ScimError> {
    let state = app_state(req)?;
    let base = base_url(req);
    Ok(state
        .services
        .directory
        .send(ReadDirectory::new(move |d| question(d, &base)))
        .await??)
}

/// The rendered resource `id` and its version; 404 if it does not exist.
async fn read<R: Resource>(req: &HttpRequest, id: String) -> Result<(Value, u64), ScimError> {
    let missing = format!("no {} with id {id:?}", R::NOUN);
    read_directory(req, move |d, base| R::find(d, &id, base))
        .await?
        .ok_or_else(|| ScimError::not_found(missing))
}

/// Runs a directory command; the directory's refusals become SCIM errors.
async fn change(req: &HttpRequest, command: DirectoryCommand) -> Result<(), ScimError> {
    app_state(req)?
        .services
        .directory
        .send(Change {
            command,
            cause: crate::http::observe::cause(),
        })
        .await??;
    Ok(())
}

/// Every resource of type `R`, rendered.
async fn all<R: Resource>(req: &HttpRequest) -> Result<Vec<Value>, ScimError> {
    read_directory(req, |d, base| R::all(d, base)).await
}

/// Runs `command`, then answers `status` with resource `id` as it now is.
async fn change_and_show<R: Resource>(
    req: &HttpRequest,
    command: DirectoryCommand,
    id: String,
    status: StatusCode,
) -> Result<HttpResponse, ScimError> {
    change(req, command).await?;
    let (v, _) = read::<R>(req, id).await?;
    one(req, status, v)
}

/// Replaces resource `id` with `input` (only at `if_version`, if given); 200 with it as
/// it now is: a PUT, and a PATCH once its operations are applied.
async fn replace_and_show<R: Resource>(
    req: &HttpRequest,
    id: String,
    input: R::Input,
    if_version: Option<u64>,
) -> Result<HttpResponse, ScimError> {
    let command = R::replace(id.clone(), input, if_version);
    change_and_show::<R>(req, command, id, StatusCode::OK).await
}

/// `GET /scim/v2/{Users,Groups}`: filtered, sorted, paged, projected.
pub async fn list<R: Resource>(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let query = ListQuery::from_request(&req)?;
        Ok(query.respond(all::<R>(&req).await?))
    })
    .await
}

/// `POST /scim/v2/{Users,Groups}/.search` (RFC 7644 §3.4.3): a list whose query is the
/// body, so that filters need not appear in URLs (and logs).
pub async fn search<R: Resource>(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, body| async move {
        let query = ListQuery::from_search(&parse_body(&body)?)?;
        Ok(query.respond(all::<R>(&req).await?))
    })
    .await
}

/// `POST /scim/v2/.search`: a search over Users and Groups together.
pub async fn search_all(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, body| async move {
        let query = ListQuery::from_search(&parse_body(&body)?)?;
        let mut resources = all::<super::users::Users>(&req).await?;
        resources.extend(all::<super::groups::Groups>(&req).await?);
        Ok(query.respond(resources))
    })
    .await
}

/// A single resource answered, projected by the request's `attributes` /
/// `excludedAttributes` (RFC 7644 §3.9 applies them to every answer with a resource).
fn one(req: &HttpRequest, status: StatusCode, v: Value) -> Result<HttpResponse, ScimError> {
    let query = ListQuery::from_request(req)?;
    Ok(scim_ok(status, &query.project(v)))
}

/// `POST /scim/v2/{Users,Groups}`: 201 with the new resource (409 `uniqueness` for a
/// taken `userName`).
pub async fn create<R: Resource>(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, body| async move {
        let input = R::input(&parse_body(&body)?)?;
        let id = Uuid::new_v4().to_string();
        change_and_show::<R>(&req, R::create(id.clone(), input), id, StatusCode::CREATED).await
    })
    .await
}

/// `GET /scim/v2/{Users,Groups}/{id}`.
pub async fn get<R: Resource>(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let (v, version) = read::<R>(&req, path.into_inner()).await?;
        // RFC 7644 §3.14: a GET with the current version in If-None-Match is a 304.
        let current = super::etag(version);
        let unchanged = req
            .headers()
            .get(actix_web::http::header::IF_NONE_MATCH)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.split(',').any(|t| t.trim() == current || t.trim() == "*"));
        if unchanged {
            return Ok(HttpResponse::NotModified()
                .insert_header((actix_web::http::header::ETAG, current))
                .finish());
        }
        one(&req, StatusCode::OK, v)
    })
    .await
}

/// `PUT /scim/v2/{Users,Groups}/{id}` (honouring `If-Match`).
pub async fn replace<R: Resource>(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    serve(req, payload, |req, body| async move {
        let input = R::input(&parse_body(&body)?)?;
        let if_version = if_match(&req)?;
        replace_and_show::<R>(&req, path.into_inner(), input, if_version).await
    })
    .await
}

/// `PATCH /scim/v2/{Users,Groups}/{id}`: read, patch the SCIM JSON, read it back like a
/// PUT body, replace at the version read; retried when another change got in between
/// (unless `If-Match` pinned a version). For Groups this carries member adds and
/// removals (Okta, Entra ID) and renames.
pub async fn patch<R: Resource>(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    serve(req, payload, |req, body| async move {
        let id = path.into_inner();
        let ops = parse_body(&body)?;
        let pinned = if_match(&req)?;
        with_retries(pinned.is_some(), || {
            let (req, id, ops) = (req.clone(), id.clone(), ops.clone());
            async move {
                let (mut current, version) = read::<R>(&req, id.clone()).await?;
                super::patch::apply(&mut current, &ops)
                    .map_err(|e| ScimError::bad(e.scim_type, e.detail))?;
                // `id` is readOnly (RFC 7643 §3.1): a PATCH may repeat it, not change it.
                if current.get("id").and_then(Value::as_str) != Some(id.as_str()) {
                    return Err(ScimError::bad("mutability", "id cannot change"));
                }
                let input = R::input(&current)?;
                let if_version = Some(pinned.unwrap_or(version));
                replace_and_show::<R>(&req, id, input, if_version).await
            }
        })
        .await
    })
    .await
}

/// `DELETE /scim/v2/{Users,Groups}/{id}` (honouring `If-Match`): 204. A deleted user is
/// deactivated everywhere (slots and queue places lost), dropped from every group, and
/// forgotten.
pub async fn delete<R: Resource>(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let if_version = if_match(&req)?;
        change(&req, R::delete(path.into_inner(), if_version)).await?;
        Ok(HttpResponse::NoContent().finish())
    })
    .await
}
