//! `/scim/v2/Users`: a directory user as a SCIM User (with the enterprise extension for
//! attributes such as `department`), and back.

use super::filter::get_ci;
use super::resource::Resource;
use super::{bool_attr, etag, str_attr, ScimError};
use crate::http::view::rfc3339;
use serde_json::{json, Map, Value};
use slotpool_events::{DirectoryCommand, DirectoryState, DirectoryUser, Email, Profile, UserInput};
use std::collections::BTreeMap;

/// The core User schema.
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// slotpool's extension: free-form attributes beyond the enterprise ones.
pub const SLOTPOOL: &str = "urn:slotpool:params:scim:schemas:extension:2.0:User";
/// The enterprise extension's `manager` (complex: `value` is the manager's id), kept as
/// the user attribute `manager` with that id.
pub const MANAGER: &str = "manager";
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
            None if k.eq_ignore_ascii_case(MANAGER) => {
                enterprise.insert(MANAGER.to_string(), json!({ "value": val }))
            }
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

/// `{k: v}`, to read `v` with [`str_attr`] (which names `k` in its error).
fn ext_value(k: &str, v: &Value) -> Value {
    let mut m = Map::new();
    m.insert(k.to_string(), v.clone());
    Value::Object(m)
}

/// Reads a User body (POST, PUT, or the result of a PATCH).
pub fn input(body: &Value) -> Result<UserInput, ScimError> {
    let user = str_attr(body, "userName")?
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ScimError::bad("invalidValue", "userName is required"))?;
    // The one name rule (NFKC, then the user header's charset): a confusable name is the
    // same user or refused, never a second one.
    let user = slotpool_events::user_name::normalise(&user)
        .map_err(|e| ScimError::bad("invalidValue", format!("userName: {e}")))?;
    let name = get_ci(body, "name").cloned().unwrap_or(Value::Null);
    let mut attributes = BTreeMap::new();
    match get_ci(body, ENTERPRISE) {
        None | Some(Value::Null) => {}
        Some(Value::Object(ext)) => {
            for (k, v) in ext {
                if let Some(e) = ENTERPRISE_ATTRIBUTES
                    .iter()
                    .find(|e| e.eq_ignore_ascii_case(k))
                {
                    if let Some(s) = str_attr(&ext_value(k, v), k)? {
                        attributes.insert((*e).to_string(), s);
                    }
                } else if k.eq_ignore_ascii_case(MANAGER) {
                    // `{"value": "id", ...}`, or (Entra ID) the id alone.
                    let id = match v {
                        Value::Object(_) => str_attr(v, "value")?,
                        other => str_attr(&ext_value(k, other), k)?,
                    };
                    if let Some(id) = id.filter(|i| !i.is_empty()) {
                        attributes.insert(MANAGER.to_string(), id);
                    }
                }
            }
        }
        Some(_) => {
            return Err(ScimError::bad(
                "invalidValue",
                format!("{ENTERPRISE} is an object"),
            ))
        }
    }
    match get_ci(body, SLOTPOOL).map(|e| (e, get_ci(e, "attributes"))) {
        None | Some((Value::Null, _)) | Some((Value::Object(_), None | Some(Value::Null))) => {}
        Some((_, Some(Value::Object(ext)))) => {
            for (k, v) in ext {
                if let Some(s) = str_attr(&ext_value(k, v), k)? {
                    attributes.insert(k.clone(), s);
                }
            }
        }
        Some(_) => {
            return Err(ScimError::bad(
                "invalidValue",
                format!("{SLOTPOOL} is an object whose 'attributes' map names to strings"),
            ))
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

/// SCIM Users: the directory's users (`/scim/v2/Users`).
pub struct Users;

impl Resource for Users {
    type Input = UserInput;
    const NOUN: &'static str = "user";

    fn input(body: &Value) -> Result<UserInput, ScimError> {
        input(body)
    }

    fn find(d: &DirectoryState, id: &str, base: &str) -> Option<(Value, u64)> {
        d.user_by_id(id).map(|u| (render(d, u, base), u.version))
    }

    fn all(d: &DirectoryState, base: &str) -> Vec<Value> {
        d.users().into_iter().map(|u| render(d, u, base)).collect()
    }

    fn create(id: String, input: UserInput) -> DirectoryCommand {
        DirectoryCommand::CreateUser { id, input }
    }

    fn replace(id: String, input: UserInput, if_version: Option<u64>) -> DirectoryCommand {
        DirectoryCommand::ReplaceUser {
            id,
            input,
            if_version,
        }
    }

    fn delete(id: String, if_version: Option<u64>) -> DirectoryCommand {
        DirectoryCommand::DeleteUser { id, if_version }
    }
}
