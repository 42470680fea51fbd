//! SCIM 2.0 end to end with the real binary: the request sequences Okta and Entra ID send
//! (create, update, deactivate, delete users; push groups), every error case with a
//! SCIM-shaped body, deprovisioning a holder freeing the slot for the queue head,
//! source-group sync with its report, eligibility refusals, and a restart that keeps it all.

mod common;

use common::{assert_scim_error, temp_dir, Opts, Scim, Server};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn okta_user(name: &str, dept: &str) -> Value {
    // Okta's "create user" body (developer.okta.com SCIM 2.0 reference).
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": name,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": name, "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": format!("00u{name}"),
        "groups": [],
        "password": "t1meMa$heen",
        "active": true,
        ENTERPRISE: {"department": dept}
    })
}

#[test]
fn okta_and_entra_sequences_errors_deprovisioning_sync_eligibility_and_restart() {
    let dir = temp_dir();
    let logs = temp_dir();
    let opts = Opts::new(dir.path(), logs.path());
    let mut server = Server::start(&opts);
    assert!(
        server.stdout().contains("SCIM token generated"),
        "{}",
        server.stdout()
    );
    let s = Scim::new(&server);
    let a = server.client();

    // --- Discovery.
    let spc = s.ok("GET", "/ServiceProviderConfig", None, 200);
    assert_eq!(spc["patch"]["supported"], json!(true));
    assert_eq!(spc["filter"]["supported"], json!(true));
    let types = s.ok("GET", "/ResourceTypes", None, 200);
    assert_eq!(types["totalResults"], json!(2));
    let schemas = s.ok("GET", "/Schemas", None, 200);
    let user_schema = schemas["Resources"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["id"] == json!(USER)))
        .cloned()
        .expect("the User schema");
    let attrs: Vec<&str> = user_schema["attributes"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    for a in [
        "userName",
        "externalId",
        "displayName",
        "name",
        "emails",
        "active",
        "groups",
    ] {
        assert!(attrs.contains(&a), "{a} missing from {attrs:?}");
    }
    s.ok("GET", &format!("/Schemas/{ENTERPRISE}"), None, 200);

    // --- Okta: "does the user exist?" then create.
    let found = s.ok(
        "GET",
        "/Users?filter=userName%20eq%20%22ann%40example.com%22&startIndex=1&count=100",
        None,
        200,
    );
    assert_eq!(found["totalResults"], json!(0));
    assert_eq!(found["Resources"], json!([]));
    let ann = s.ok(
        "POST",
        "/Users",
        Some(&okta_user("ann@example.com", "R&D")),
        201,
    );
    let ann_id = ann["id"].as_str().expect("id").to_string();
    assert_eq!(ann["active"], json!(true));
    assert_eq!(ann["meta"]["resourceType"], json!("User"));
    assert!(ann["meta"]["version"]
        .as_str()
        .is_some_and(|v| v.starts_with("W/\"")));
    assert!(ann["meta"]["location"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!("/Users/{ann_id}"))));
    assert!(ann.get("password").is_none());
    assert_eq!(ann[ENTERPRISE]["department"], json!("R&D"));
    let got = s.call("GET", &format!("/Users/{ann_id}"), None);
    assert_eq!(got.status, 200);
    assert_eq!(got.header("etag"), ann["meta"]["version"].as_str());
    // Duplicate userName, any case: 409 uniqueness.
    let dup = s.call("POST", "/Users", Some(&okta_user("ANN@example.com", "R&D")));
    assert_scim_error(&dup, 409, Some("uniqueness"));
    let bob = s.ok(
        "POST",
        "/Users",
        Some(&okta_user("bob@example.com", "Support")),
        201,
    );
    let bob_id = bob["id"].as_str().expect("id").to_string();
    let cy = s.ok(
        "POST",
        "/Users",
        Some(&okta_user("cy@example.com", "Sales")),
        201,
    );
    let cy_id = cy["id"].as_str().expect("id").to_string();

    // Okta: update the profile with PUT (the whole user).
    let mut put = okta_user("ann@example.com", "R&D");
    put["name"]["familyName"] = json!("Renamed");
    put["id"] = json!(ann_id);
    let ann = s.ok("PUT", &format!("/Users/{ann_id}"), Some(&put), 200);
    assert_eq!(ann["name"]["familyName"], json!("Renamed"));
    // If-Match with a stale version: 412; with the current one it passes.
    let stale = s.c.call(
        "PUT",
        &format!("/scim/v2/Users/{ann_id}"),
        &[
            ("Authorization", &format!("Bearer {}", s.token)),
            ("If-Match", "W/\"1\""),
        ],
        Some(put.to_string().as_bytes()),
    );
    assert_scim_error(&stale, 412, None);

    // Filters, pagination, attributes.
    let list = s.ok("GET", "/Users?filter=emails.value%20ew%20%22example.com%22%20and%20not%20(userName%20sw%20%22cy%22)&attributes=userName", None, 200);
    assert_eq!(list["totalResults"], json!(2));
    assert!(list["Resources"][0].get("emails").is_none());
    assert!(list["Resources"][0]["userName"].is_string() && list["Resources"][0]["id"].is_string());
    let page = s.ok("GET", "/Users?startIndex=2&count=1", None, 200);
    assert_eq!(
        (
            page["totalResults"].clone(),
            page["itemsPerPage"].clone(),
            page["startIndex"].clone()
        ),
        (json!(3), json!(1), json!(2))
    );
    let ex = s.ok(
        "GET",
        &format!("/Users/{bob_id}?excludedAttributes=emails,name"),
        None,
        200,
    );
    assert!(ex.get("emails").is_none() && ex.get("name").is_none() && ex["userName"].is_string());
    let active = s.ok(
        "GET",
        "/Users?filter=active%20eq%20true%20and%20(externalId%20pr)",
        None,
        200,
    );
    assert_eq!(active["totalResults"], json!(3));

    // --- A product whose pool is fed by a source group; eligibility by department.
    let r = a.put_product(
        "jira",
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1,
               "source_groups": ["jira-users"],
               "eligibility": {"attribute": "department", "in": ["R&D", "Support"]}}),
    );
    assert!(r.status == 201, "{}", r.body);
    // Bad identity settings are refused and change nothing.
    for bad in [
        json!({"eligibility": {"attribute": "department", "in": []}}),
        json!({"eligibility": {"department": "R&D"}}),
        json!({"sync_interval_s": 5}),
        json!({"source_groups": [""]}),
    ] {
        let mut settings = json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1});
        if let (Some(o), Some(b)) = (settings.as_object_mut(), bad.as_object()) {
            o.extend(b.clone());
        }
        let r = a.admin("PUT", "/admin/v1/products/jira", Some(&settings));
        common::assert_problem(&r, 422, "invalid_settings");
    }
    assert_eq!(a.product("jira")["source_groups"], json!(["jira-users"]));
    // Okta pushes a group: create (empty), then PATCH add members.
    let group = s.ok(
        "POST",
        "/Groups",
        Some(&json!({"schemas": [GROUP], "displayName": "jira-users", "members": []})),
        201,
    );
    let gid = group["id"].as_str().expect("id").to_string();
    let group = s.ok("PATCH", &format!("/Groups/{gid}"), Some(&json!({"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": ann_id, "display": "ann@example.com"}, {"value": bob_id}, {"value": cy_id}]}]})), 200);
    assert_eq!(group["members"].as_array().map(Vec::len), Some(3));
    let user_groups = s.ok("GET", &format!("/Users/{ann_id}"), None, 200);
    assert_eq!(user_groups["groups"][0]["value"], json!(gid));

    // Sync now: ann and bob in; cy skipped (not eligible).
    let report = a.admin("POST", "/admin/v1/products/jira/sync", None);
    assert_eq!(report.status, 200, "{}", report.body);
    let report = report.json();
    assert_eq!(report["trigger"], json!("manual"));
    assert_eq!(
        report["added"],
        json!(["ann@example.com", "bob@example.com"])
    );
    assert_eq!(
        report["skipped"],
        json!([{"user": "cy@example.com", "why": "not_eligible"}])
    );
    assert_eq!(a.product("jira")["members"], json!(2));
    assert_eq!(
        a.admin("GET", "/admin/v1/products/jira/sync", None).json(),
        report
    );

    // ann holds the only slot, bob waits.
    assert_eq!(a.request("jira", "ann@example.com").state(), "granted");
    assert_eq!(a.request("jira", "bob@example.com").state(), "queued");
    // Eligibility at request: cy, enrolled by hand, is refused not_eligible.
    a.enrol("jira", "cy@example.com");
    let refused = a.request("jira", "cy@example.com");
    common::assert_problem(&refused, 403, "not_eligible");
    // Her department changes (Okta PATCH of the enterprise attribute): the very next
    // request reads the new attributes, and a move out again is seen just as soon.
    for (dept, eligible) in [("Support", true), ("Sales", false)] {
        s.ok(
            "PATCH",
            &format!("/Users/{cy_id}"),
            Some(&json!({"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": dept}]})),
            200,
        );
        let r = a.request("jira", "cy@example.com");
        if eligible {
            assert_eq!(r.state(), "queued", "{}", r.body);
            assert_eq!(a.release("jira", "cy@example.com").status, 204);
        } else {
            common::assert_problem(&r, 403, "not_eligible");
        }
    }

    // --- Okta deactivates ann: PATCH replace without a path. Her slot goes to bob at once.
    let ann = s.ok("PATCH", &format!("/Users/{ann_id}"), Some(&json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": false}}]})), 200);
    assert_eq!(ann["active"], json!(false));
    assert_eq!(a.holders("jira"), vec!["bob@example.com".to_string()]);
    common::assert_problem(&a.request("jira", "ann@example.com"), 403, "deactivated");
    // Entra ID reactivates with a string boolean and a capitalised op.
    let ann = s.ok("PATCH", &format!("/Users/{ann_id}"), Some(&json!({"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "True"}]})), 200);
    assert_eq!(ann["active"], json!(true));
    assert_eq!(a.request("jira", "ann@example.com").state(), "queued");

    // --- Entra ID: create, update attributes by path, deactivate with "False", delete.
    let dee = s.ok("POST", "/Users", Some(&json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Dee@contoso.com", "active": true,
        "displayName": "Dee", "emails": [{"primary": true, "type": "work", "value": "Dee@contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": []
    })), 201);
    let dee_id = dee["id"].as_str().expect("id").to_string();
    let entra_get = s.ok(
        "GET",
        "/Users?filter=userName+eq+%22dee%40CONTOSO.com%22",
        None,
        200,
    );
    assert_eq!(entra_get["totalResults"], json!(1));
    let dee = s.ok(
        "PATCH",
        &format!("/Users/{dee_id}"),
        Some(&json!({"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "displayName", "value": "Dee D"},
        {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Support"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "dee@contoso.com"}]})),
        200,
    );
    assert_eq!(dee["displayName"], json!("Dee D"));
    assert_eq!(dee[ENTERPRISE]["department"], json!("Support"));
    assert_eq!(dee["emails"][0]["value"], json!("dee@contoso.com"));
    // Entra's matching query by work e-mail.
    let by_mail = s.ok(
        "GET",
        "/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22DEE%40contoso.com%22",
        None,
        200,
    );
    assert_eq!(by_mail["totalResults"], json!(1));
    assert_eq!(by_mail["Resources"][0]["id"], json!(dee_id));
    // Entra group: create with a member, remove it with a value list, then add again.
    let eg = s.ok("POST", "/Groups", Some(&json!({"schemas": [GROUP], "externalId": "8aa1a0c0", "displayName": "Group1DisplayName", "members": [{"value": dee_id}]})), 201);
    let eg_id = eg["id"].as_str().expect("id").to_string();
    s.ok("PATCH", &format!("/Groups/{eg_id}"), Some(&json!({"schemas": [PATCH], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": dee_id}]}]})), 200);
    let eg = s.ok("GET", &format!("/Groups/{eg_id}"), None, 200);
    assert_eq!(eg["members"], json!([]));
    let filtered = s.ok(
        "GET",
        "/Groups?filter=displayName%20eq%20%22group1displayname%22&excludedAttributes=members",
        None,
        200,
    );
    assert_eq!(filtered["totalResults"], json!(1));
    assert!(filtered["Resources"][0].get("members").is_none());
    s.ok("PATCH", &format!("/Users/{dee_id}"), Some(&json!({"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})), 200);
    // Okta's member removal by filter.
    s.ok("PATCH", &format!("/Groups/{gid}"), Some(&json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": format!("members[value eq \"{cy_id}\"]")}]})), 200);

    // --- Deprovision a holder with DELETE: bob's slot goes to ann, the queue head.
    assert_eq!(a.holders("jira"), vec!["bob@example.com".to_string()]);
    let del = s.call("DELETE", &format!("/Users/{bob_id}"), None);
    assert_eq!(del.status, 204, "{}", del.body);
    assert_eq!(a.holders("jira"), vec!["ann@example.com".to_string()]);
    assert_scim_error(&s.call("GET", &format!("/Users/{bob_id}"), None), 404, None);
    let g = s.ok("GET", &format!("/Groups/{gid}"), None, 200);
    assert_eq!(g["members"].as_array().map(Vec::len), Some(1), "{g}");
    // Sync again: bob is gone from the group, so from the pool; cy is removed (not in group).
    let report = a.admin("POST", "/admin/v1/products/jira/sync", None).json();
    let removed: Vec<&str> = report["removed"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["user"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        removed.contains(&"bob@example.com") && removed.contains(&"cy@example.com"),
        "{report}"
    );

    // --- Errors, all SCIM-shaped.
    assert_scim_error(
        &s.call("GET", "/Users?filter=userName%20eq", None),
        400,
        Some("invalidFilter"),
    );
    assert_scim_error(
        &s.call("GET", "/Users?filter=(((", None),
        400,
        Some("invalidFilter"),
    );
    assert_scim_error(&s.call("GET", "/Users/no-such-id", None), 404, None);
    assert_scim_error(&s.call("GET", "/Groups/no-such-id", None), 404, None);
    assert_scim_error(&s.call("DELETE", "/Users/no-such-id", None), 404, None);
    assert_scim_error(
        &s.call_with("GET", "/Users", Some("wrong-token-wrong-token"), None),
        401,
        None,
    );
    assert_scim_error(&s.call_with("GET", "/Users", None, None), 401, None);
    assert_scim_error(
        &s.call_with("POST", "/Users", Some(&s.token), Some(b"{not json")),
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(
        &s.call("POST", "/Users", Some(&json!({"schemas": [USER]}))),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &s.call(
            "PATCH",
            &format!("/Users/{ann_id}"),
            Some(&json!({"Operations": [{"op": "jump"}]})),
        ),
        400,
        Some("invalidSyntax"),
    );
    // A rename is supported (tests/e2e_scim_rfc.rs); to a name in use it is refused.
    assert_scim_error(&s.call("PATCH", &format!("/Users/{ann_id}"), Some(&json!({"Operations": [{"op": "replace", "path": "userName", "value": "CY@example.com"}]}))), 409, Some("uniqueness"));
    assert_scim_error(
        &s.call(
            "PUT",
            &format!("/Groups/{gid}"),
            Some(&json!({"displayName": "x", "members": [{"value": "ghost"}]})),
        ),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(&s.call("GET", "/Nope", None), 404, None);

    // --- The request log: newest first, with the password redacted.
    let log = a.admin("GET", "/admin/v1/scim/log", None);
    assert_eq!(log.status, 200);
    let log = log.json();
    let entries = log.as_array().cloned().unwrap_or_default();
    assert!(entries.len() > 30);
    assert_eq!(entries[0]["path"], json!("/scim/v2/Nope"));
    assert_eq!(entries[0]["status"], json!(404));
    assert!(entries.iter().any(|e| e["status"] == json!(401)));
    assert!(
        !log.to_string().contains("t1meMa$heen"),
        "a password reached the log"
    );
    assert!(log.to_string().contains("[redacted]"));
    assert_eq!(a.admin("GET", "/admin/v1/scim/log", None).status, 200);
    assert_eq!(
        s.c.call(
            "GET",
            "/admin/v1/scim/log",
            &[("Authorization", &format!("Bearer {}", s.token))],
            None
        )
        .status,
        401
    );

    // --- Restart: users, groups, memberships and the sync report survive.
    let old_base = server.base.clone();
    let before_users = s.ok("GET", "/Users", None, 200).to_string();
    let before_groups = s.ok("GET", "/Groups", None, 200).to_string();
    let before_report = a.admin("GET", "/admin/v1/products/jira/sync", None).json();
    server.stop();
    let server = Server::start(&opts);
    let s = Scim::new(&server);
    let a = server.client();
    // The same resources, versions and times; only the port in `location` differs.
    let moved = |v: Value| v.to_string().replace(&server.base, &old_base);
    assert_eq!(moved(s.ok("GET", "/Users", None, 200)), before_users);
    assert_eq!(moved(s.ok("GET", "/Groups", None, 200)), before_groups);
    assert_eq!(
        a.admin("GET", "/admin/v1/products/jira/sync", None).json(),
        before_report
    );
    // Entra deletes the group; Okta deletes a user.
    assert_eq!(
        s.call("DELETE", &format!("/Groups/{eg_id}"), None).status,
        204
    );
    assert_eq!(
        s.call("DELETE", &format!("/Users/{dee_id}"), None).status,
        204
    );
    assert_eq!(s.ok("GET", "/Users", None, 200)["totalResults"], json!(2));
    // A holder deleted and created again under the same name is active again in the pool.
    assert_eq!(a.holders("jira"), vec!["ann@example.com".to_string()]);
    assert_eq!(
        s.call("DELETE", &format!("/Users/{ann_id}"), None).status,
        204
    );
    assert!(a.holders("jira").is_empty());
    common::assert_problem(&a.request("jira", "ann@example.com"), 403, "deactivated");
    let again = s.ok(
        "POST",
        "/Users",
        Some(&okta_user("ann@example.com", "R&D")),
        201,
    );
    assert_ne!(again["id"].as_str(), Some(ann_id.as_str()));
    assert_eq!(a.request("jira", "ann@example.com").state(), "granted");
}
