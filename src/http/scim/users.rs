//! `/scim/v2/Users`: a directory user as a SCIM User (with the enterprise extension for
//! attributes such as `department`), and back.

use super::filter::get_ci;
use super::{
    base_url, bool_attr, etag, if_match, list_response, parse_body, project, scim_ok, serve,
    str_attr, with_retries, ScimError,
};
use crate::http::auth::app_state;
use crate::http::view::rfc3339;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use slotpool_actors::{Change, ReadDirectory};
use slotpool_events::{DirectoryCommand, DirectoryState, DirectoryUser, Email, Profile, UserInput};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The core User schema.
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// slotpool's extension: free-form attributes beyond the enterprise ones.
pub const SLOTPOOL: &str = "urn:slotpool:params:scim:schemas:extension:2.0:User";
/// The enterprise extension's string attributes, kept as user attributes.
pub const ENTERPRISE_ATTRIBUTES: [&str; 5] = [
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
];

/// The SCIM JSON of `u`.
pub fn render(d: &DirectoryState, u: &DirectoryUser, base: &str) -> Value {
    let mut v = Map::new();
    let mut schemas = vec![json!(USER)];
    v.insert("id".into(), json!(u.id));
    v.insert("userName".into(), json!(u.user));
    let p = &u.profile;
    if let Some(x) = &p.external_id {
        v.insert("externalId".into(), json!(x));
    }
    if let Some(x) = &p.display_name {
        v.insert("displayName".into(), json!(x));
    }
    let mut name = Map::new();
    if let Some(x) = &p.given_name {
        name.insert("givenName".into(), json!(x));
    }
    if let Some(x) = &p.family_name {
        name.insert("familyName".into(), json!(x));
    }
    if !name.is_empty() {
        v.insert("name".into(), Value::Object(name));
    }
    if !p.emails.is_empty() {
        v.insert(
            "emails".into(),
            serde_json::to_value(&p.emails).unwrap_or_default(),
        );
    }
    v.insert("active".into(), json!(u.active));
    let groups: Vec<Value> = d
        .groups_of(&u.user)
        .into_iter()
        .map(|g| json!({"value": g.id, "display": g.display_name, "$ref": format!("{base}/Groups/{}", g.id), "type": "direct"}))
        .collect();
    if !groups.is_empty() {
        v.insert("groups".into(), Value::Array(groups));
    }
    let mut enterprise = Map::new();
    let mut other = Map::new();
    for (k, val) in &p.attributes {
        match ENTERPRISE_ATTRIBUTES
            .iter()
            .find(|e| e.eq_ignore_ascii_case(k))
        {
            Some(e) => enterprise.insert((*e).to_string(), json!(val)),
            None => other.insert(k.clone(), json!(val)),
        };
    }
    if !enterprise.is_empty() {
        schemas.push(json!(ENTERPRISE));
        v.insert(ENTERPRISE.into(), Value::Object(enterprise));
    }
    if !other.is_empty() {
        schemas.push(json!(SLOTPOOL));
        v.insert(SLOTPOOL.into(), json!({ "attributes": other }));
    }
    v.insert("schemas".into(), Value::Array(schemas));
    v.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": rfc3339(u.created),
            "lastModified": rfc3339(u.last_modified),
            "location": format!("{base}/Users/{}", u.id),
            "version": etag(u.version),
        }),
    );
    Value::Object(v)
}

fn emails(body: &Value) -> Result<Vec<Email>, ScimError> {
    match get_ci(body, "emails") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| {
                let value = match str_attr(i, "value") {
                    Ok(Some(v)) => v,
                    Ok(None) => return None,
                    Err(e) => return Some(Err(e)),
                };
                Some(Ok(Email {
                    value,
                    kind: str_attr(i, "type").ok().flatten(),
                    primary: bool_attr(i, "primary").ok().flatten().unwrap_or(false),
                }))
            })
            .collect(),
        Some(_) => Err(ScimError::bad("invalidValue", "emails must be a list")),
    }
}

/// Reads a User body (POST, PUT, or the result of a PATCH).
pub fn input(body: &Value) -> Result<UserInput, ScimError> {
    let user = str_attr(body, "userName")?
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ScimError::bad("invalidValue", "userName is required"))?;
    let name = get_ci(body, "name").cloned().unwrap_or(Value::Null);
    let mut attributes = BTreeMap::new();
    if let Some(Value::Object(ext)) = get_ci(body, ENTERPRISE) {
        for (k, v) in ext {
            if let (Some(e), Value::String(s)) = (
                ENTERPRISE_ATTRIBUTES
                    .iter()
                    .find(|e| e.eq_ignore_ascii_case(k)),
                v,
            ) {
                attributes.insert((*e).to_string(), s.clone());
            }
        }
    }
    if let Some(Value::Object(ext)) = get_ci(body, SLOTPOOL).and_then(|e| get_ci(e, "attributes")) {
        for (k, v) in ext {
            if let Value::String(s) = v {
                attributes.insert(k.clone(), s.clone());
            }
        }
    }
    Ok(UserInput {
        user,
        active: bool_attr(body, "active")?.unwrap_or(true),
        profile: Profile {
            external_id: str_attr(body, "externalId")?,
            display_name: str_attr(body, "displayName")?,
            given_name: str_attr(&name, "givenName")?,
            family_name: str_attr(&name, "familyName")?,
            emails: emails(body)?,
            attributes,
        },
    })
}

/// The rendered user `id` and its version, if it exists.
pub async fn read(req: &HttpRequest, id: String) -> Result<(Value, u64), ScimError> {
    let state = app_state(req).map_err(|p| ScimError::new(p.status, None, p.detail))?;
    let base = base_url(req);
    let missing = format!("no user with id {id:?}");
    state
        .services
        .directory
        .send(ReadDirectory::new(move |d| {
            d.user_by_id(&id).map(|u| (render(d, u, &base), u.version))
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

/// `GET /scim/v2/Users`.
pub async fn list(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let state = app_state(&req).map_err(|p| ScimError::new(p.status, None, p.detail))?;
        let base = base_url(&req);
        let all = state
            .services
            .directory
            .send(ReadDirectory::new(move |d| {
                d.users()
                    .into_iter()
                    .map(|u| render(d, u, &base))
                    .collect::<Vec<_>>()
            }))
            .await??;
        list_response(&req, all)
    })
    .await
}

/// `POST /scim/v2/Users`: 201, or 409 `uniqueness` for a taken userName.
pub async fn create(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, body| async move {
        let input = input(&parse_body(&body)?)?;
        let id = Uuid::new_v4().to_string();
        change(
            &req,
            DirectoryCommand::CreateUser {
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

/// `GET /scim/v2/Users/{id}`.
pub async fn get(req: HttpRequest, path: web::Path<String>, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let (v, _) = read(&req, path.into_inner()).await?;
        Ok(scim_ok(StatusCode::OK, &project(&req, v)))
    })
    .await
}

/// `PUT /scim/v2/Users/{id}`.
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
            DirectoryCommand::ReplaceUser {
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

/// `PATCH /scim/v2/Users/{id}`.
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
                    DirectoryCommand::ReplaceUser {
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

/// `DELETE /scim/v2/Users/{id}`: the user is deactivated everywhere (slots and queue
/// places lost), dropped from every group, and forgotten. 204.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let if_version = if_match(&req)?;
        change(
            &req,
            DirectoryCommand::DeleteUser {
                id: path.into_inner(),
                if_version,
            },
        )
        .await?;
        Ok(HttpResponse::NoContent().finish())
    })
    .await
}
