//! SCIM 2.0 conformance, RFC 7644 point by point, end to end with the real binary: the
//! read-only discovery endpoints (405), `POST .search`, PATCH of extension attributes
//! and of `active`, user renames (the SCIM id is the stable key), one name rule for
//! SCIM and the user header, filters, projection, sorting, pagination, ETags and the
//! `scimType` of errors.

mod common;

use common::{temp_dir, Opts, Resp, Scim, Server};
use serde_json::{json, Value};

const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SLOTPOOL: &str = "urn:slotpool:params:scim:schemas:extension:2.0:User";

/// A SCIM error: status, `status` as a string, schema, content type and `scimType`.
fn assert_scim_error(r: &Resp, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.content_type.starts_with("application/scim+json"),
        "{}",
        r.content_type
    );
    let b = r.json();
    assert_eq!(b["schemas"], json!([ERROR]), "{b}");
    assert_eq!(b["status"], json!(status.to_string()), "{b}");
    assert_eq!(b["scimType"].as_str(), scim_type, "{b}");
    assert!(b["detail"].is_string(), "{b}");
}

fn ops(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

fn start() -> (Server, tempfile::TempDir, tempfile::TempDir) {
    let dir = temp_dir();
    let logs = temp_dir();
    let server = Server::start(&Opts::new(dir.path(), logs.path()));
    (server, dir, logs)
}

fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x["userName"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn discovery_endpoints_are_read_only_and_unknown_methods_are_405() {
    let (server, _d, _l) = start();
    let s = Scim::new(&server);
    let id = s.user("ann");
    for path in [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/Schemas",
        "/ResourceTypes/User",
        &format!("/Schemas/{USER}"),
    ] {
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let r = s.call(method, path, Some(&json!({})));
            assert_scim_error(&r, 405, None);
            assert_eq!(r.header("allow"), Some("GET"), "{method} {path}");
        }
        assert_eq!(s.call("GET", path, None).status, 200, "{path}");
    }
    for (method, path, allow) in [
        ("DELETE", "/Users".to_string(), "GET, POST"),
        ("POST", format!("/Users/{id}"), "GET, PUT, PATCH, DELETE"),
        ("GET", "/Users/.search".to_string(), "POST"),
        ("GET", "/.search".to_string(), "POST"),
    ] {
        let r = s.call(method, &path, None);
        assert_scim_error(&r, 405, None);
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    // `/Me` and `/Bulk` are not implemented (RFC 7644 §3.11, §3.7).
    assert_scim_error(&s.call("GET", "/Me", None), 501, None);
    assert_scim_error(&s.call("POST", "/Bulk", Some(&json!({}))), 501, None);
    // What the service provider config advertises is true.
    let spc = s.ok("GET", "/ServiceProviderConfig", None, 200);
    assert_eq!(spc["sort"]["supported"], json!(true));
    assert_eq!(spc["bulk"]["supported"], json!(false));
    assert_eq!(spc["etag"]["supported"], json!(true));
}

#[test]
fn search_by_post_filters_sorts_pages_and_projects() {
    let (server, _d, _l) = start();
    let s = Scim::new(&server);
    for name in ["cy", "ann", "Bob", "dee"] {
        s.user(name);
    }
    s.group("staff", &[]);
    let found = s.ok(
        "POST",
        "/Users/.search",
        Some(
            &json!({"schemas": [SEARCH], "filter": "userName ne \"dee\"",
            "sortBy": "userName", "sortOrder": "descending",
            "attributes": ["userName"], "startIndex": 1, "count": 2}),
        ),
        200,
    );
    assert_eq!(found["totalResults"], json!(3), "{found}");
    assert_eq!(ids(&found), ["cy", "Bob"]);
    assert!(found["Resources"][0].get("meta").is_none(), "{found}");
    assert!(found["Resources"][0]["id"].is_string());
    // The root search spans Users and Groups.
    let all = s.ok(
        "POST",
        "/.search",
        Some(&json!({"schemas": [SEARCH], "count": 100})),
        200,
    );
    assert_eq!(all["totalResults"], json!(5), "{all}");
    let groups = s.ok(
        "POST",
        "/Groups/.search",
        Some(&json!({"filter": "displayName eq \"STAFF\""})),
        200,
    );
    assert_eq!(groups["totalResults"], json!(1));
    // Bad searches: SCIM errors with their scimType.
    assert_scim_error(
        &s.call(
            "POST",
            "/Users/.search",
            Some(&json!({"schemas": [SEARCH], "filter": "userName eq"})),
        ),
        400,
        Some("invalidFilter"),
    );
    assert_scim_error(
        &s.call("POST", "/Users/.search", Some(&json!({"count": "ten"}))),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &s.call_with("POST", "/Users/.search", Some(&s.token), Some(b"{no")),
        400,
        Some("invalidSyntax"),
    );
    // GET lists sort too, ascending by default, without regard to case.
    let sorted = s.ok("GET", "/Users?sortBy=userName", None, 200);
    assert_eq!(ids(&sorted), ["ann", "Bob", "cy", "dee"]);
    assert_scim_error(
        &s.call("GET", "/Users?sortBy=userName&sortOrder=sideways", None),
        400,
        Some("invalidValue"),
    );
}

#[test]
fn pagination_edge_cases() {
    let (server, _d, _l) = start();
    let s = Scim::new(&server);
    for name in ["a1", "a2", "a3"] {
        s.user(name);
    }
    let page = |q: &str| s.ok("GET", &format!("/Users?{q}"), None, 200);
    // startIndex below 1 is 1; a negative count is 0 (RFC 7644 §3.4.2.4).
    let p = page("startIndex=0&count=2");
    assert_eq!(
        (p["startIndex"].clone(), ids(&p)),
        (json!(1), vec!["a1".to_string(), "a2".into()])
    );
    let p = page("startIndex=-4");
    assert_eq!(p["startIndex"], json!(1));
    let p = page("count=-1");
    assert_eq!(
        (
            p["totalResults"].clone(),
            p["itemsPerPage"].clone(),
            p["Resources"].clone()
        ),
        (json!(3), json!(0), json!([]))
    );
    let p = page("count=0");
    assert_eq!(
        (p["totalResults"].clone(), p["itemsPerPage"].clone()),
        (json!(3), json!(0))
    );
    // Past the end: an empty page with the true total.
    let p = page("startIndex=10&count=5");
    assert_eq!(
        (
            p["totalResults"].clone(),
            p["itemsPerPage"].clone(),
            p["startIndex"].clone()
        ),
        (json!(3), json!(0), json!(10))
    );
    let p = page("startIndex=3&count=5");
    assert_eq!(ids(&p), ["a3"]);
    assert_scim_error(
        &s.call("GET", "/Users?count=many", None),
        400,
        Some("invalidValue"),
    );
}

#[test]
fn patch_of_extension_attributes_and_of_active_is_kept_and_returned() {
    let (server, _d, _l) = start();
    let s = Scim::new(&server);
    let id = s.user("ann");
    let manager = s.user("boss");
    let path = format!("/Users/{id}");
    // Path-less add of a whole extension object (Okta), every enterprise attribute.
    let r = s.ok(
        "PATCH",
        &path,
        Some(&ops(json!([{"op": "add", "value": {ENTERPRISE: {
            "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
            "division": "Theme Park", "department": "Tour Operations",
            "manager": {"value": manager}}}}]))),
        200,
    );
    let want = json!({"employeeNumber": "701984", "costCenter": "4130",
        "organization": "Universal Studios", "division": "Theme Park",
        "department": "Tour Operations", "manager": {"value": manager}});
    assert_eq!(r[ENTERPRISE], want, "{r}");
    assert!(r["schemas"]
        .as_array()
        .is_some_and(|s| s.contains(&json!(ENTERPRISE))));
    assert_eq!(s.ok("GET", &path, None, 200)[ENTERPRISE], want);
    // Replace by path, one attribute each; manager as Entra ID sends it (the id alone).
    let r = s.ok(
        "PATCH",
        &path,
        Some(&ops(json!([
            {"op": "replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "1"},
            {"op": "Replace", "path": format!("{ENTERPRISE}:costCenter"), "value": "2"},
            {"op": "replace", "path": format!("{ENTERPRISE}:organization"), "value": "3"},
            {"op": "replace", "path": format!("{ENTERPRISE}:division"), "value": "4"},
            {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "5"},
            {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": id},
        ]))),
        200,
    );
    assert_eq!(
        r[ENTERPRISE],
        json!({"employeeNumber": "1", "costCenter": "2", "organization": "3",
            "division": "4", "department": "5", "manager": {"value": id}}),
        "{r}"
    );
    // Path-less replace with the extension object: only the attributes given change.
    let r = s.ok(
        "PATCH",
        &path,
        Some(&ops(
            json!([{"op": "replace", "value": {ENTERPRISE: {"department": "6"}}}]),
        )),
        200,
    );
    assert_eq!(r[ENTERPRISE]["department"], json!("6"));
    assert_eq!(r[ENTERPRISE]["costCenter"], json!("2"));
    // Remove one attribute, then the whole extension.
    let r = s.ok(
        "PATCH",
        &path,
        Some(&ops(
            json!([{"op": "remove", "path": format!("{ENTERPRISE}:costCenter")}]),
        )),
        200,
    );
    assert!(r[ENTERPRISE].get("costCenter").is_none(), "{r}");
    let r = s.ok(
        "PATCH",
        &path,
        Some(&ops(json!([{"op": "remove", "path": ENTERPRISE}]))),
        200,
    );
    assert!(r.get(ENTERPRISE).is_none(), "{r}");
    assert!(!r["schemas"]
        .as_array()
        .is_some_and(|s| s.contains(&json!(ENTERPRISE))));
    assert!(s.ok("GET", &path, None, 200).get(ENTERPRISE).is_none());
    // slotpool's own extension: add by sub-path, by object, remove it whole.
    let r = s.ok(
        "PATCH",
        &path,
        Some(&ops(json!([
            {"op": "add", "path": format!("{SLOTPOOL}:attributes.site"), "value": "Oslo"},
            {"op": "add", "value": {SLOTPOOL: {"attributes": {"floor": "3"}}}},
        ]))),
        200,
    );
    assert_eq!(
        r[SLOTPOOL]["attributes"],
        json!({"floor": "3", "site": "Oslo"}),
        "{r}"
    );
    let r = s.ok(
        "PATCH",
        &path,
        Some(&ops(json!([{"op": "remove", "path": SLOTPOOL}]))),
        200,
    );
    assert!(r.get(SLOTPOOL).is_none(), "{r}");
    // A non-string extension value is refused and changes nothing.
    let before = s.ok("GET", &path, None, 200);
    assert_scim_error(
        &s.call(
            "PATCH",
            &path,
            Some(&ops(
                json!([{"op": "add", "path": format!("{ENTERPRISE}:department"), "value": 7}]),
            )),
        ),
        400,
        Some("invalidValue"),
    );
    assert_eq!(s.ok("GET", &path, None, 200), before);
    // Removing `active` deactivates (it is not ignored).
    let r = s.ok(
        "PATCH",
        &path,
        Some(&ops(json!([{"op": "remove", "path": "active"}]))),
        200,
    );
    assert_eq!(r["active"], json!(false), "{r}");
    assert_eq!(s.ok("GET", &path, None, 200)["active"], json!(false));
    // `id` may be repeated, not changed.
    s.ok(
        "PATCH",
        &path,
        Some(&ops(
            json!([{"op": "replace", "value": {"id": id, "active": true}}]),
        )),
        200,
    );
    assert_scim_error(
        &s.call(
            "PATCH",
            &path,
            Some(&ops(
                json!([{"op": "replace", "path": "id", "value": "other"}]),
            )),
        ),
        400,
        Some("mutability"),
    );
}
