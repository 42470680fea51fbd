//! `/scim/v2/Groups`: a directory group as a SCIM Group (members by user id), and back.

use super::filter::get_ci;
use super::{
    base_url, etag, if_match, list_response, parse_body, project, scim_ok, serve, str_attr,
    with_retries, ScimError,
};
use crate::http::auth::app_state;
use crate::http::view::rfc3339;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use slotpool_actors::{Change, ReadDirectory};
use slotpool_events::{DirectoryCommand, DirectoryGroup, DirectoryState, GroupInput};
use uuid::Uuid;

/// The core Group schema.
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The SCIM JSON of `g`.
pub fn render(d: &DirectoryState, g: &DirectoryGroup, base: &str) -> Value {
    let members: Vec<Value> = g
        .members
        .iter()
        .filter_map(|name| d.user(name))
        .map(|u| json!({"value": u.id, "display": u.user, "$ref": format!("{base}/Users/{}", u.id), "type": "User"}))
        .collect();
    let mut v = json!({
        "schemas": [GROUP],
        "id": g.id,
        "displayName": g.display_name,
        "members": members,
        "meta": {
            "resourceType": "Group",
            "created": rfc3339(g.created),
            "lastModified": rfc3339(g.last_modified),
            "location": format!("{base}/Groups/{}", g.id),
            "version": etag(g.version),
        }
    });
    if let (Some(x), Some(o)) = (&g.external_id, v.as_object_mut()) {
        o.insert("externalId".into(), json!(x));
    }
    v
}

/// Reads a Group body (POST, PUT, or the result of a PATCH).
pub fn input(body: &Value) -> Result<GroupInput, ScimError> {
    let display_name = str_attr(body, "displayName")?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ScimError::bad("invalidValue", "displayName is required"))?;
    let members = match get_ci(body, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|m| {
                str_attr(m, "value")?.ok_or_else(|| {
                    ScimError::bad("invalidValue", "every member has a 'value' (a user id)")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ScimError::bad("invalidValue", "members must be a list")),
    };
    Ok(GroupInput {
        display_name,
        external_id: str_attr(body, "externalId")?,
        members,
    })
}

async fn read(req: &HttpRequest, id: String) -> Result<(Value, u64), ScimError> {
    let state = app_state(req).map_err(|p| ScimError::new(p.status, None, p.detail))?;
    let base = base_url(req);
    let missing = format!("no group with id {id:?}");
    state
        .services
        .directory
        .send(ReadDirectory::new(move |d| {
            d.group(&id).map(|g| (render(d, g, &base), g.version))
        }))
        .await??
        .ok_or_else(|| ScimError::not_found(missing))
}

async fn change(req: &HttpRequest, command: DirectoryCommand) -> Result<(), ScimError> {
    let state = app_state(req).map_err(|p| ScimError::new(p.status, None, p.detail))?;
    state
        .services
        .directory
        .send(Change {
            command,
            cause: crate::http::observe::cause(),
        })
        .await??;
    Ok(())
}

/// `GET /scim/v2/Groups`.
pub async fn list(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let state = app_state(&req).map_err(|p| ScimError::new(p.status, None, p.detail))?;
        let base = base_url(&req);
        let all = state
            .services
            .directory
            .send(ReadDirectory::new(move |d| {
                d.groups().map(|g| render(d, g, &base)).collect::<Vec<_>>()
            }))
            .await??;
        list_response(&req, all)
    })
    .await
}

/// `POST /scim/v2/Groups`: 201.
pub async fn create(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, body| async move {
        let input = input(&parse_body(&body)?)?;
        let id = Uuid::new_v4().to_string();
        change(
            &req,
            DirectoryCommand::CreateGroup {
                id: id.clone(),
                input,
            },
        )
        .await?;
        let (v, _) = read(&req, id).await?;
        Ok(scim_ok(StatusCode::CREATED, &v))
    })
    .await
}

/// `GET /scim/v2/Groups/{id}`.
pub async fn get(req: HttpRequest, path: web::Path<String>, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let (v, _) = read(&req, path.into_inner()).await?;
        Ok(scim_ok(StatusCode::OK, &project(&req, v)))
    })
    .await
}

/// `PUT /scim/v2/Groups/{id}`.
pub async fn replace(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    serve(req, payload, |req, body| async move {
        let id = path.into_inner();
        let input = input(&parse_body(&body)?)?;
        let if_version = if_match(&req)?;
        change(
            &req,
            DirectoryCommand::ReplaceGroup {
                id: id.clone(),
                input,
                if_version,
            },
        )
        .await?;
        let (v, _) = read(&req, id).await?;
        Ok(scim_ok(StatusCode::OK, &v))
    })
    .await
}

/// `PATCH /scim/v2/Groups/{id}`: member adds and removals (Okta, Entra ID) and renames.
pub async fn patch(
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
                let (mut current, version) = read(&req, id.clone()).await?;
                super::patch::apply(&mut current, &ops)
                    .map_err(|e| ScimError::bad(e.scim_type, e.detail))?;
                let input = input(&current)?;
                change(
                    &req,
                    DirectoryCommand::ReplaceGroup {
                        id: id.clone(),
                        input,
                        if_version: Some(pinned.unwrap_or(version)),
                    },
                )
                .await?;
                let (v, _) = read(&req, id).await?;
                Ok(scim_ok(StatusCode::OK, &v))
            }
        })
        .await
    })
    .await
}

/// `DELETE /scim/v2/Groups/{id}`: 204.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let if_version = if_match(&req)?;
        change(
            &req,
            DirectoryCommand::DeleteGroup {
                id: path.into_inner(),
                if_version,
            },
        )
        .await?;
        Ok(HttpResponse::NoContent().finish())
    })
    .await
}
