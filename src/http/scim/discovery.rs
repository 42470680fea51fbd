//! Discovery (RFC 7644 §4): `ServiceProviderConfig`, `ResourceTypes` and `Schemas`, the
//! last with the real schema of every attribute slotpool keeps.

use super::groups::GROUP;
use super::query::ListQuery;
use super::users::{ENTERPRISE, ENTERPRISE_ATTRIBUTES, MANAGER, SLOTPOOL, USER};
use super::{base_url, scim_ok, serve, ScimError, MAX_COUNT};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

const SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// One attribute definition (RFC 7643 §7).
fn attr(
    name: &str,
    kind: &str,
    multi: bool,
    required: bool,
    mutability: &str,
    uniqueness: &str,
) -> Value {
    json!({
        "name": name, "type": kind, "multiValued": multi, "description": name,
        "required": required, "caseExact": false, "mutability": mutability,
        "returned": "default", "uniqueness": uniqueness,
    })
}

fn complex(name: &str, multi: bool, mutability: &str, subs: Vec<Value>) -> Value {
    let mut a = attr(name, "complex", multi, false, mutability, "none");
    if let Some(o) = a.as_object_mut() {
        o.insert("subAttributes".into(), Value::Array(subs));
    }
    a
}

fn string(name: &str) -> Value {
    attr(name, "string", false, false, "readWrite", "none")
}

fn schema_doc(base: &str, id: &str, name: &str, attributes: Vec<Value>) -> Value {
    json!({
        "schemas": [SCHEMA], "id": id, "name": name, "description": name,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    })
}

/// The sub-attributes of a multi-valued reference (a user's `groups`, a group's
/// `members`): `value`, `$ref` and `type` with `mutability`, `display` read-only.
fn references(mutability: &str) -> Vec<Value> {
    vec![
        attr("value", "string", false, false, mutability, "none"),
        attr("display", "string", false, false, "readOnly", "none"),
        attr("$ref", "reference", false, false, mutability, "none"),
        attr("type", "string", false, false, mutability, "none"),
    ]
}

fn all_schemas(base: &str) -> Vec<Value> {
    let user = schema_doc(
        base,
        USER,
        "User",
        vec![
            attr("userName", "string", false, true, "readWrite", "server"),
            string("externalId"),
            string("displayName"),
            complex(
                "name",
                false,
                "readWrite",
                vec![string("givenName"), string("familyName")],
            ),
            complex(
                "emails",
                true,
                "readWrite",
                vec![
                    string("value"),
                    string("type"),
                    attr("primary", "boolean", false, false, "readWrite", "none"),
                ],
            ),
            attr("active", "boolean", false, false, "readWrite", "none"),
            complex("groups", true, "readOnly", references("readOnly")),
        ],
    );
    let group = schema_doc(
        base,
        GROUP,
        "Group",
        vec![
            attr("displayName", "string", false, true, "readWrite", "none"),
            string("externalId"),
            complex("members", true, "readWrite", references("immutable")),
        ],
    );
    let enterprise = schema_doc(
        base,
        ENTERPRISE,
        "EnterpriseUser",
        ENTERPRISE_ATTRIBUTES
            .iter()
            .map(|a| string(a))
            .chain([complex(
                MANAGER,
                false,
                "readWrite",
                vec![
                    string("value"),
                    attr("$ref", "reference", false, false, "readWrite", "none"),
                    attr("displayName", "string", false, false, "readOnly", "none"),
                ],
            )])
            .collect(),
    );
    let slotpool = schema_doc(
        base,
        SLOTPOOL,
        "SlotpoolUser",
        vec![complex("attributes", false, "readWrite", Vec::new())],
    );
    vec![user, group, enterprise, slotpool]
}

fn resource_type_docs(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE], "id": "User", "name": "User", "endpoint": "/Users",
            "description": "A user of the shared products", "schema": USER,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": false}, {"schema": SLOTPOOL, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": [RESOURCE_TYPE], "id": "Group", "name": "Group", "endpoint": "/Groups",
            "description": "A group (source groups feed products' pools)", "schema": GROUP,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}

/// The document of `docs` whose `id` is `id` (without regard to case); 404 naming `what`
/// otherwise.
fn by_id(docs: Vec<Value>, id: &str, what: &str) -> Result<HttpResponse, ScimError> {
    docs.into_iter()
        .find(|d| d["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
        .map(|d| scim_ok(StatusCode::OK, &d))
        .ok_or_else(|| ScimError::not_found(format!("no {what} {id:?}")))
}

/// `GET /scim/v2/ServiceProviderConfig`.
pub async fn service_provider_config(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let base = base_url(&req);
        Ok(scim_ok(
            StatusCode::OK,
            &json!({
                "schemas": [SPC],
                "documentationUri": "https://github.com/slotpool/slotpool#scim",
                "patch": {"supported": true},
                "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": true, "maxResults": MAX_COUNT},
                "changePassword": {"supported": false},
                "sort": {"supported": true},
                "etag": {"supported": true},
                "authenticationSchemes": [{
                    "type": "oauthbearertoken", "name": "Bearer token", "primary": true,
                    "description": "The SCIM token (SLOTPOOL_SCIM_TOKEN, scim_token_file, or data/scim_token)",
                }],
                "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
            }),
        ))
    })
    .await
}

/// The documents `docs` makes for the request's base URL, as a list response (filtered,
/// sorted, paged like any list): `ResourceTypes` and `Schemas`.
async fn list_docs(
    req: HttpRequest,
    payload: web::Payload,
    docs: fn(&str) -> Vec<Value>,
) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        let docs = docs(&base_url(&req));
        Ok(ListQuery::from_request(&req)?.respond(docs))
    })
    .await
}

/// The document of `docs` with id `id`, 404 naming `what` otherwise: one resource type,
/// one schema.
async fn one_doc(
    req: HttpRequest,
    id: String,
    payload: web::Payload,
    docs: fn(&str) -> Vec<Value>,
    what: &'static str,
) -> HttpResponse {
    serve(req, payload, |req, _| async move {
        by_id(docs(&base_url(&req)), &id, what)
    })
    .await
}

/// `GET /scim/v2/ResourceTypes`.
pub async fn resource_types(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    list_docs(req, payload, resource_type_docs).await
}

/// `GET /scim/v2/ResourceTypes/{name}`.
pub async fn resource_type(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    one_doc(
        req,
        path.into_inner(),
        payload,
        resource_type_docs,
        "resource type",
    )
    .await
}

/// `GET /scim/v2/Schemas`.
pub async fn schemas(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    list_docs(req, payload, all_schemas).await
}

/// `GET /scim/v2/Schemas/{id}`.
pub async fn schema(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    one_doc(req, path.into_inner(), payload, all_schemas, "schema").await
}
