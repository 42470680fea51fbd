//! `/scim/v2/Groups`: a directory group as a SCIM Group (members by user id), and back.

use super::filter::get_ci;
use super::resource::Resource;
use super::{etag, str_attr, ScimError};
use crate::http::view::rfc3339;
use serde_json::{json, Value};
use slotpool_events::{DirectoryCommand, DirectoryGroup, DirectoryState, GroupInput};

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

/// SCIM Groups: the directory's groups (`/scim/v2/Groups`), members by user id.
pub struct Groups;

impl Resource for Groups {
    type Input = GroupInput;
    const NOUN: &'static str = "group";

    fn input(body: &Value) -> Result<GroupInput, ScimError> {
        input(body)
    }

    fn find(d: &DirectoryState, id: &str, base: &str) -> Option<(Value, u64)> {
        d.group(id).map(|g| (render(d, g, base), g.version))
    }

    fn all(d: &DirectoryState, base: &str) -> Vec<Value> {
        d.groups().map(|g| render(d, g, base)).collect()
    }

    fn create(id: String, input: GroupInput) -> DirectoryCommand {
        DirectoryCommand::CreateGroup { id, input }
    }

    fn replace(id: String, input: GroupInput, if_version: Option<u64>) -> DirectoryCommand {
        DirectoryCommand::ReplaceGroup {
            id,
            input,
            if_version,
        }
    }

    fn delete(id: String, if_version: Option<u64>) -> DirectoryCommand {
        DirectoryCommand::DeleteGroup { id, if_version }
    }
}
