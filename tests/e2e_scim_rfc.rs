//! SCIM 2.0 conformance, RFC 7644 point by point, end to end with the real binary: the
//! read-only discovery endpoints (405), `POST .search`, PATCH of extension attributes
//! and of `active`, user renames (the SCIM id is the stable key), one name rule for
//! SCIM and the user header, filters, projection, sorting, pagination, ETags and the
//! `scimType` of errors.

mod common;

use common::{assert_scim_error, temp_dir, Opts, Scim, Server};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SLOTPOOL: &str = "urn:slotpool:params:scim:schemas:extension:2.0:User";

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

fn user_name(s: &Scim, id: &str) -> String {
    s.ok("GET", &format!("/Users/{id}"), None, 200)["userName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_rename_keeps_id_slot_queue_place_fixed_licence_groups_and_history() {
    let dir = temp_dir();
    let logs = temp_dir();
    let opts = Opts::new(dir.path(), logs.path());
    let mut server = Server::start(&opts);
    let s = Scim::new(&server);
    let a = server.client();
    for p in ["jira", "wiki"] {
        let r = a.put_product(
            p,
            json!({"kind": "generic", "licence_tier": 5, "shared_slots": 1}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let ann = s.user("ann@example.com");
    let bob = s.user("bob@example.com");
    let cy = s.user("cy@example.com");
    let staff = s.group("staff", &[&ann]);
    for u in ["ann@example.com", "bob@example.com"] {
        a.enrol("jira", u);
    }
    a.enrol("wiki", "bob@example.com");
    let r = a.admin("PUT", "/admin/v1/products/jira/fixed/cy@example.com", None);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(a.request("jira", "ann@example.com").state(), "granted");
    assert_eq!(a.request("jira", "bob@example.com").state(), "queued");
    assert_eq!(a.request("wiki", "bob@example.com").state(), "granted");

    // Okta: PATCH replace of userName (an e-mail change). Same id, new name.
    let renamed = s.ok(
        "PATCH",
        &format!("/Users/{ann}"),
        Some(&ops(
            json!([{"op": "replace", "path": "userName", "value": "ann.smith@example.com"}]),
        )),
        200,
    );
    assert_eq!(renamed["id"], json!(ann));
    assert_eq!(renamed["userName"], json!("ann.smith@example.com"));
    // Entra ID: PUT with the new userName; bob waits and holds under the new name.
    let mut put = s.ok("GET", &format!("/Users/{bob}"), None, 200);
    put["userName"] = json!("Bob.Jones@example.com");
    s.ok("PUT", &format!("/Users/{bob}"), Some(&put), 200);
    // A case-only rename of cy: the fixed licence follows.
    s.ok(
        "PATCH",
        &format!("/Users/{cy}"),
        Some(&ops(
            json!([{"op": "replace", "value": {"userName": "CY@example.com"}}]),
        )),
        200,
    );
    let check = |a: &common::Client| {
        assert_eq!(a.holders("jira"), vec!["ann.smith@example.com".to_string()]);
        assert_eq!(a.queue("jira"), vec!["Bob.Jones@example.com".to_string()]);
        assert_eq!(a.holders("wiki"), vec!["Bob.Jones@example.com".to_string()]);
        assert_eq!(a.product("jira")["members"], json!(2));
        assert_eq!(a.product("jira")["fixed"], json!(1));
        assert_eq!(
            a.request("jira", "ann.smith@example.com").state(),
            "granted"
        );
        assert_eq!(a.request("jira", "Bob.Jones@example.com").state(), "queued");
        assert_eq!(a.request("jira", "CY@example.com").state(), "fixed");
        // The old names are nobody's now.
        for old in ["ann@example.com", "bob@example.com", "cy@example.com"] {
            assert_eq!(a.request("jira", old).status, 403, "{old}");
        }
    };
    check(&a);
    let g = s.ok("GET", &format!("/Groups/{staff}"), None, 200);
    assert_eq!(
        g["members"][0]["display"],
        json!("ann.smith@example.com"),
        "{g}"
    );
    let by_name = s.ok(
        "GET",
        "/Users?filter=userName%20eq%20%22ann.smith%40example.com%22",
        None,
        200,
    );
    assert_eq!(by_name["Resources"][0]["id"], json!(ann));
    // A name in use (without regard to case) is 409 uniqueness and changes nothing.
    assert_scim_error(
        &s.call(
            "PATCH",
            &format!("/Users/{ann}"),
            Some(&ops(
                json!([{"op": "replace", "path": "userName", "value": "bob.jones@EXAMPLE.com"}]),
            )),
        ),
        409,
        Some("uniqueness"),
    );
    assert_eq!(user_name(&s, &ann), "ann.smith@example.com");
    // The old name is free for someone new, who is not the renamed user.
    s.user("ann@example.com");
    assert_eq!(a.request("jira", "ann@example.com").status, 403);

    // After a restart (replay), the same.
    server.stop();
    let server = Server::start(&opts);
    let s = Scim::new(&server);
    let a = server.client();
    check(&a);
    assert_eq!(user_name(&s, &bob), "Bob.Jones@example.com");
    // Releasing under the new name gives the slot to the renamed queue head.
    assert_eq!(a.release("jira", "ann.smith@example.com").status, 204);
    assert_eq!(a.holders("jira"), vec!["Bob.Jones@example.com".to_string()]);
    let mut server = server;
    server.stop();

    // Audit finds the history under either name, and shows the rename.
    let dir_s = dir.path().to_str().expect("utf-8 path");
    for name in ["ann@example.com", "ann.smith@example.com"] {
        let out = common::slotpool_command()
            .args([
                "audit",
                "--data-dir",
                dir_s,
                "--product",
                "jira",
                "--user",
                name,
                "--format",
                "json",
            ])
            .output()
            .expect("run slotpool audit");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        let events: Vec<&str> = v["timeline"]["entries"]
            .as_array()
            .map(|e| e.iter().filter_map(|x| x["event"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            events,
            ["enrolled", "granted", "renamed", "released"],
            "{name}: {v}"
        );
        let renamed = v["timeline"]["entries"][2].clone();
        assert_eq!(
            (renamed["from"].clone(), renamed["to"].clone()),
            (json!("ann@example.com"), json!("ann.smith@example.com")),
            "{renamed}"
        );
    }
}

#[test]
fn confusable_names_are_one_user_or_refused_like_the_user_header() {
    let (server, _d, _l) = start();
    let s = Scim::new(&server);
    let a = server.client();
    s.user("bob");
    s.user("alice");
    // Full-width letters normalise (NFKC) to `alice`: the same name, so 409.
    assert_scim_error(
        &s.call(
            "POST",
            "/Users",
            Some(&json!({"schemas": [USER], "userName": "ａｌｉｃｅ"})),
        ),
        409,
        Some("uniqueness"),
    );
    // What NFKC leaves outside the header's charset is refused.
    for bad in ["bob\u{200b}", "\u{feff}bob", "josé", "tab\there"] {
        assert_scim_error(
            &s.call(
                "POST",
                "/Users",
                Some(&json!({"schemas": [USER], "userName": bad})),
            ),
            400,
            Some("invalidValue"),
        );
    }
    // A rename to a confusable name: the same rule.
    let id = s.user("carol");
    assert_scim_error(
        &s.call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(&ops(
                json!([{"op": "replace", "path": "userName", "value": "carol\u{200b}"}]),
            )),
        ),
        400,
        Some("invalidValue"),
    );
    // A new full-width name is stored normalised: the header can carry it.
    let dee = s.ok(
        "POST",
        "/Users",
        Some(&json!({"schemas": [USER], "userName": "ｄｅｅ"})),
        201,
    );
    assert_eq!(dee["userName"], json!("dee"));
    let r = a.put_product(
        "jira",
        json!({"kind": "generic", "licence_tier": 5, "shared_slots": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    a.enrol("jira", "dee");
    assert_eq!(a.request("jira", "dee").state(), "granted");
    assert_eq!(s.ok("GET", "/Users", None, 200)["totalResults"], json!(4));
}

#[test]
fn filters_projection_and_etags() {
    let (server, _d, _l) = start();
    let s = Scim::new(&server);
    let ann = s.user("ann");
    let bob = s.user("bob");
    s.user("cy");
    for (id, dept, mail) in [
        (&ann, "R&D", "ann@work.example"),
        (&bob, "Sales", "bob@home.example"),
    ] {
        s.ok(
            "PATCH",
            &format!("/Users/{id}"),
            Some(&ops(json!([
                {"op": "add", "path": format!("{ENTERPRISE}:department"), "value": dept},
                {"op": "add", "path": "emails", "value": [{"value": mail, "type": if dept == "R&D" { "work" } else { "home" }}]},
            ]))),
            200,
        );
    }
    let names = |filter: &str| -> Vec<String> {
        let q: String = filter
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        ids(&s.ok(
            "GET",
            &format!("/Users?sortBy=userName&filter={q}"),
            None,
            200,
        ))
    };
    assert_eq!(
        names(&format!("{ENTERPRISE}:department eq \"r&d\"")),
        ["ann"]
    );
    assert_eq!(names("userName co \"n\""), ["ann"]);
    assert_eq!(
        names("userName sw \"B\" or userName eq \"cy\""),
        ["bob", "cy"]
    );
    assert_eq!(names("emails pr"), ["ann", "bob"]);
    assert_eq!(names("not (emails pr)"), ["cy"]);
    assert_eq!(
        names("emails[type eq \"work\"].value ew \"example\""),
        ["ann"]
    );
    assert_eq!(
        names("emails[type eq \"home\" and value co \"bob\"]"),
        ["bob"]
    );
    assert_eq!(
        names("active eq true and meta.resourceType eq \"User\""),
        ["ann", "bob", "cy"]
    );
    // Projection of extension attributes and sub-attributes.
    let one = s.ok(
        "GET",
        &format!("/Users/{ann}?attributes={ENTERPRISE}:department,emails.value"),
        None,
        200,
    );
    assert_eq!(one[ENTERPRISE], json!({"department": "R&D"}), "{one}");
    assert_eq!(one["emails"], json!([{"value": "ann@work.example"}]));
    assert!(one.get("userName").is_none() && one["id"] == json!(ann));
    let one = s.ok(
        "GET",
        &format!("/Users/{ann}?excludedAttributes=emails.type,emails.primary,meta"),
        None,
        200,
    );
    assert_eq!(
        one["emails"],
        json!([{"value": "ann@work.example"}]),
        "{one}"
    );
    assert!(one.get("meta").is_none() && one["userName"] == json!("ann"));
    // meta.location is where the resource is; meta.version is its ETag.
    let got = s.call("GET", &format!("/Users/{ann}"), None);
    let body = got.json();
    let tag = got.header("etag").expect("an ETag").to_string();
    assert_eq!(body["meta"]["version"], json!(tag));
    let location = body["meta"]["location"]
        .as_str()
        .expect("location")
        .to_string();
    assert!(
        location.starts_with(&server.base) && location.ends_with(&format!("/scim/v2/Users/{ann}"))
    );
    let with = |method: &str, header: (&str, &str), body: Option<&Value>| {
        let bytes = body.map(|b| b.to_string().into_bytes());
        s.c.call(
            method,
            &format!("/scim/v2/Users/{ann}"),
            &[
                ("Authorization", &format!("Bearer {}", s.token)),
                ("Content-Type", "application/scim+json"),
                header,
            ],
            bytes.as_deref(),
        )
    };
    assert_eq!(with("GET", ("If-None-Match", &tag), None).status, 304);
    let change = ops(json!([{"op": "replace", "path": "displayName", "value": "Ann"}]));
    assert_scim_error(
        &with("PATCH", ("If-Match", "W/\"1\""), Some(&change)),
        412,
        None,
    );
    let r = with("PATCH", ("If-Match", &tag), Some(&change));
    assert_eq!(r.status, 200, "{}", r.body);
    let new_tag = r.header("etag").expect("a new ETag").to_string();
    assert_ne!(new_tag, tag);
    assert_eq!(with("GET", ("If-None-Match", &tag), None).status, 200);
    assert_scim_error(&with("DELETE", ("If-Match", &tag), None), 412, None);
    // scimType of PATCH errors.
    for (op, scim_type) in [
        (json!({"op": "remove"}), "noTarget"),
        (
            json!({"op": "add", "path": "emails[type eq", "value": 1}),
            "invalidPath",
        ),
        (
            json!({"op": "add", "path": "emails[type eqq \"w\"].value", "value": 1}),
            "invalidFilter",
        ),
        (
            json!({"op": "add", "path": "a..b", "value": 1}),
            "invalidPath",
        ),
        (
            json!({"op": "replace", "path": "emails[type co \"x\"].value", "value": "y"}),
            "noTarget",
        ),
        (
            json!({"op": "add", "path": "active", "value": "maybe"}),
            "invalidValue",
        ),
        (
            json!({"op": "copy", "path": "active", "value": true}),
            "invalidSyntax",
        ),
    ] {
        assert_scim_error(
            &s.call(
                "PATCH",
                &format!("/Users/{ann}"),
                Some(&ops(json!([op.clone()]))),
            ),
            400,
            Some(scim_type),
        );
    }
}
