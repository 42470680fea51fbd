//! Rule 10 end to end with the real binary: reservations and caps configured through the
//! admin API, groups and memberships provisioned through SCIM, requests over HTTP that
//! show a capped member queued (and passed), a reserved slot kept for its group, a
//! membership change taking effect at once, and a kill -9 and restart that keep it all.
//! Bad reservations get 422 `invalid_settings` with a clear message and change nothing.

mod common;

use common::{assert_problem, temp_dir, Client, Opts, Resp, Scim, Server};
use serde_json::{json, Value};

fn state_of(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

fn use_of(c: &Client, group: &str) -> Value {
    let p = c.product("jira");
    p["reservation_use"]
        .as_array()
        .and_then(|a| a.iter().find(|u| u["group"] == json!(group)).cloned())
        .unwrap_or_else(|| panic!("no reservation_use for {group}: {p}"))
}

#[test]
fn reservations_and_caps_over_http_survive_kill_9() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let opts = Opts::new(&data, tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    let settings = json!({"kind": "jira", "licence_tier": 10, "shared_slots": 3,
        "reservations": [{"group": "Contractors", "max": 1}, {"group": "support", "min": 1}]});
    c.put_product("jira", settings.clone());
    let before = c.product("jira");
    assert_eq!(
        before["reservations"],
        json!([{"group": "Contractors", "min": 0, "max": 1}, {"group": "support", "min": 1}])
    );

    // Bad reservations: 422 with a message naming the problem, and nothing changes.
    for (bad, says) in [
        (
            json!([{"group": "a", "min": 2, "max": 1}]),
            "min (2) greater than max (1)",
        ),
        (
            json!([{"group": "a", "max": 4}]),
            "greater than shared_slots",
        ),
        (
            json!([{"group": "a", "min": 2}, {"group": "b", "min": 2}]),
            "sum of min (4) exceeds shared_slots (3)",
        ),
        (
            json!([{"group": "a"}, {"group": "A"}]),
            "listed more than once",
        ),
        (json!([{"group": " "}]), "group must be a name"),
        (json!([{"group": "a", "cap": 1}]), "cap"),
    ] {
        let mut s = settings.clone();
        s["reservations"] = bad;
        let r = c.admin("PUT", "/admin/v1/products/jira", Some(&s));
        let p = assert_problem(&r, 422, "invalid_settings");
        assert!(
            p["detail"].as_str().is_some_and(|d| d.contains(says)),
            "{says}: {p}"
        );
        assert_eq!(c.product("jira"), before);
    }

    // The directory: users and groups through SCIM; members of the pool by admin.
    let scim = Scim::new(&server);
    let ids: Vec<String> = ["c1", "c2", "o1", "o2", "s1"]
        .iter()
        .map(|u| scim.user(u))
        .collect();
    let contractors = scim.group("contractors", &[&ids[0], &ids[1]]);
    scim.group("Support", &[&ids[4]]);
    for u in ["c1", "c2", "o1", "o2", "s1"] {
        c.enrol("jira", u);
    }

    assert_eq!(
        state_of(&c.request("jira", "c1"))["state"],
        json!("granted")
    );
    // The contractors' cap is reached: queued, not refused, and told why.
    let c2 = state_of(&c.request("jira", "c2"));
    assert_eq!(c2["state"], json!("queued"), "{c2}");
    assert_eq!(c2["waiting_for"], json!("group_cap"), "{c2}");
    assert_eq!(c2["group"], json!("Contractors"), "{c2}");
    // The queue page says so too.
    let page = c.user("GET", "/queue/jira", "c2");
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("sp-waiting-for") && page.body.contains("Group: Contractors"),
        "{}",
        page.body
    );
    // Others pass: o1 takes a free slot; then the last one is support's reservation.
    assert_eq!(
        state_of(&c.request("jira", "o1"))["state"],
        json!("granted")
    );
    let o2 = state_of(&c.request("jira", "o2"));
    assert_eq!(o2["state"], json!("queued"), "{o2}");
    assert_eq!(o2["waiting_for"], json!("reserved"), "{o2}");
    // Support's first page view through the gate takes the reserved slot at once (the
    // gate judges by the user's directory groups, not only by what was noted).
    let gate = c.user("GET", "/gate/jira", "s1");
    assert_eq!(gate.status, 204, "{gate:?}");
    assert_eq!(state_of(&c.slot("jira", "s1"))["state"], json!("granted"));
    // o2 is not let in by the gate: no slot is free for it.
    assert_eq!(c.user("GET", "/gate/jira", "o2").status, 401);
    assert_eq!(c.queue("jira"), vec!["c2", "o2"]);
    assert_eq!(
        use_of(&c, "Contractors"),
        json!({"group": "Contractors", "min": 0, "max": 1, "holders": 1, "queued": 1})
    );
    assert_eq!(
        use_of(&c, "support"),
        json!({"group": "support", "min": 1, "holders": 1, "queued": 0})
    );

    // o1 leaves: the head (c2) is capped, so the slot goes to o2 at once.
    assert_eq!(c.release("jira", "o1").status, 204);
    assert_eq!(state_of(&c.slot("jira", "o2"))["state"], json!("granted"));
    assert_eq!(c.queue("jira"), vec!["c2"]);

    // c1 leaves the contractors group in the directory: c2 is no longer capped (the pool
    // is full, so it simply waits for its turn).
    scim.remove_member(&contractors, &ids[0]);
    let c2 = state_of(&c.slot("jira", "c2"));
    assert_eq!(c2["state"], json!("queued"), "{c2}");
    assert!(c2.get("waiting_for").is_none(), "{c2}");
    assert_eq!(use_of(&c, "Contractors")["holders"], json!(0));

    // kill -9 and restart: holders, queue, noted groups and views are the same.
    let holders = c.holders("jira");
    server.kill9();
    let server = Server::start(&opts);
    let c = server.client();
    assert_eq!(c.holders("jira"), holders);
    assert_eq!(c.queue("jira"), vec!["c2"]);
    assert_eq!(
        use_of(&c, "Contractors"),
        json!({"group": "Contractors", "min": 0, "max": 1, "holders": 0, "queued": 1})
    );
    // The support holder's slot stays support's: c2 may not take it.
    assert_eq!(c.release("jira", "s1").status, 204);
    let c2 = state_of(&c.slot("jira", "c2"));
    assert_eq!(c2["waiting_for"], json!("reserved"), "{c2}");
    // A non-support holder leaves: c2 (no longer at a cap) gets a slot.
    assert_eq!(c.release("jira", "c1").status, 204);
    assert_eq!(state_of(&c.slot("jira", "c2"))["state"], json!("granted"));
    // Support takes its reserved slot back.
    assert_eq!(
        state_of(&c.request("jira", "s1"))["state"],
        json!("granted")
    );
    common::check_invariants(&c, "jira");
}

#[test]
fn reservations_added_later_count_the_current_holders_at_once() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let server = Server::start(&Opts::new(&data, tmp.path()));
    let c = server.client();
    let scim = Scim::new(&server);
    let c1 = scim.user("c1");
    let c2 = scim.user("c2");
    scim.group("contractors", &[&c1, &c2]);
    let plain = json!({"kind": "confluence", "licence_tier": 10, "shared_slots": 3});
    c.put_product("jira", plain.clone());
    for u in ["c1", "c2"] {
        c.enrol("jira", u);
    }
    // Without reservations nothing is noted: c1 simply holds.
    assert_eq!(
        state_of(&c.request("jira", "c1"))["state"],
        json!("granted")
    );
    assert!(c.product("jira").get("reservation_use").is_none());
    // A cap configured now counts c1 in its group at once (the directory tells the
    // product the groups of its holders and queued members).
    let mut capped = plain;
    capped["reservations"] = json!([{"group": "contractors", "max": 1}]);
    c.put_product("jira", capped);
    assert_eq!(
        use_of(&c, "contractors"),
        json!({"group": "contractors", "min": 0, "max": 1, "holders": 1, "queued": 0})
    );
    let r = state_of(&c.request("jira", "c2"));
    assert_eq!(r["state"], json!("queued"), "{r}");
    assert_eq!(r["waiting_for"], json!("group_cap"), "{r}");
    common::check_invariants(&c, "jira");
}
