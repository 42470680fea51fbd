//! Scheduled capacity (issue G, part 3) against the real binary, in real time on minute
//! boundaries (the server has no virtual clock; the calendar's daylight-saving rules are
//! the pure core's unit and property tests): a dated window grows the pool at its start
//! (the queue is served in order) and shrinks it at its end (the holders who lose their
//! slot are warned `shrink_warning_s` before, then the longest-inactive are revoked,
//! reason `pool_shrunk`); `effective_shared_slots` and `next_capacity_change` before and
//! after; a weekly window in Europe/Berlin and America/New_York announces the instant
//! chrono-tz computes; a server stopped across a boundary applies the size that holds
//! when it starts; bad schedules are refused (`invalid_schedule`) and change nothing.

mod common;

use chrono::{DateTime, Datelike, Duration as Minutes, NaiveTime, TimeZone, Timelike, Utc};
use common::{assert_problem, check_invariants, temp_dir, Client, Opts, Server};
use serde_json::{json, Value};
use std::sync::mpsc;
use std::time::Duration;

/// The first whole minute at least `lead_s` seconds from now (UTC).
fn minute_after(lead_s: i64) -> DateTime<Utc> {
    let t = Utc::now() + Minutes::seconds(lead_s + 59);
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("a whole minute")
}

fn local(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

fn rfc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Sleeps until `t` plus `extra` seconds.
fn sleep_until(t: DateTime<Utc>, extra: i64) {
    let wait = (t + Minutes::seconds(extra)) - Utc::now();
    if let Ok(d) = wait.to_std() {
        std::thread::sleep(d);
    }
}

fn listen(base: &str, product: &str, user: &str) -> mpsc::Receiver<(String, Value)> {
    let resp = ureq::get(&format!("{base}/api/v1/products/{product}/notifications"))
        .set("X-Slotpool-User", user)
        .call()
        .expect("stream opens");
    common::stream_events(resp)
}

/// The events of a stream until `until` (name, reason).
fn heard(rx: &mpsc::Receiver<(String, Value)>, until: DateTime<Utc>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        // What has arrived is read even once `until` has passed.
        let left = (until - Utc::now())
            .to_std()
            .unwrap_or(Duration::from_millis(50));
        match rx.recv_timeout(left) {
            Ok((e, data)) => out.push((e, data["reason"].as_str().unwrap_or("").to_string())),
            Err(_) => break,
        }
    }
    out
}

fn base_settings() -> Value {
    // No inactivity warnings in the test's minutes; queue places kept without polling.
    json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1,
           "inactivity_s": 3600, "queue_timer_s": 3600, "sweep_interval_s": 5})
}

fn with_schedule(mut v: Value, timezone: Option<&str>, schedule: Value) -> Value {
    if let Some(tz) = timezone {
        v["timezone"] = json!(tz);
    }
    v["schedule"] = schedule;
    v
}

fn state(c: &Client, product: &str, user: &str) -> String {
    c.slot(product, user).state()
}

#[test]
fn a_dated_window_grows_the_pool_then_warns_and_shrinks_it() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    let start = minute_after(20);
    let end = start + Minutes::minutes(1);
    c.put_product(
        "t",
        with_schedule(
            base_settings(),
            None,
            json!({"dated": [{"from": local(start), "to": local(end), "shared_slots": 3}],
                   "shrink_warning_s": 25}),
        ),
    );
    for u in ["ann", "bob", "cat", "dan"] {
        c.enrol("t", u);
    }
    for (u, s) in [
        ("ann", "granted"),
        ("bob", "queued"),
        ("cat", "queued"),
        ("dan", "queued"),
    ] {
        assert_eq!(c.request("t", u).state(), s, "{u}");
    }
    let p = c.product("t");
    assert_eq!(p["shared_slots"], 1);
    assert_eq!(p["effective_shared_slots"], 1);
    assert_eq!(
        p["next_capacity_change"],
        json!({"at": rfc(start), "shared_slots": 3})
    );

    // Growth at the start serves the queue in order: bob and cat, dan still waits.
    sleep_until(start, 3);
    assert_eq!(c.holders("t"), ["ann", "bob", "cat"]);
    assert_eq!(c.queue("t"), ["dan"]);
    let p = c.product("t");
    assert_eq!(
        (
            p["shared_slots"].as_u64(),
            p["effective_shared_slots"].as_u64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(
        p["next_capacity_change"],
        json!({"at": rfc(end), "shared_slots": 1})
    );
    check_invariants(&c, "t");

    // bob is the most recently active: the shrink warns and then revokes ann and cat.
    let streams: Vec<_> = ["ann", "bob", "cat"]
        .iter()
        .map(|u| (*u, listen(&server.base, "t", u)))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        c.user("POST", "/api/v1/products/t/activity", "bob").status,
        204
    );
    let before_warning = end - Minutes::seconds(25);
    sleep_until(before_warning, -4);
    assert!(c
        .holders_json("t")
        .as_array()
        .expect("holders")
        .iter()
        .all(|h| h["warned_at"].is_null()));
    sleep_until(before_warning, 3);
    let warned: Vec<String> = c
        .holders_json("t")
        .as_array()
        .expect("holders")
        .iter()
        .filter(|h| !h["warned_at"].is_null())
        .map(|h| h["user"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        warned,
        ["ann", "cat"],
        "the two longest-inactive are warned first"
    );
    assert_eq!(
        c.holders("t").len(),
        3,
        "nobody revoked before the boundary"
    );

    sleep_until(end, 3);
    assert_eq!(c.holders("t"), ["bob"]);
    assert_eq!(c.queue("t"), ["dan"]);
    for (u, s) in [("ann", "none"), ("cat", "none"), ("bob", "granted")] {
        assert_eq!(state(&c, "t", u), s, "{u}");
    }
    let p = c.product("t");
    assert_eq!(p["effective_shared_slots"], 1);
    assert_eq!(p["next_capacity_change"], Value::Null);
    check_invariants(&c, "t");
    let stop = Utc::now() + Minutes::seconds(1);
    for (u, rx) in streams {
        let events = heard(&rx, stop);
        let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
        if u == "bob" {
            assert!(
                !names.contains(&"warning") && !names.contains(&"revoked"),
                "{u}: {events:?}"
            );
        } else {
            let w = names
                .iter()
                .position(|e| *e == "warning")
                .unwrap_or_else(|| panic!("{u} warned: {events:?}"));
            let r = events
                .iter()
                .position(|(e, reason)| e == "revoked" && reason == "pool_shrunk")
                .unwrap_or_else(|| panic!("{u} revoked: {events:?}"));
            assert!(w < r, "{u}: warned before revoked: {events:?}");
        }
    }
}

#[test]
fn a_server_down_across_a_boundary_applies_the_size_that_holds_when_it_starts() {
    let tmp = temp_dir();
    let opts = Opts::new(&tmp.path().join("data"), tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    let start = minute_after(10);
    c.put_product(
        "r",
        with_schedule(
            base_settings(),
            Some("UTC"),
            json!({"dated": [{"from": local(start), "to": local(start + Minutes::hours(2)), "shared_slots": 2}]}),
        ),
    );
    for u in ["ann", "bob", "cat"] {
        c.enrol("r", u);
        c.request("r", u);
    }
    assert_eq!(c.queue("r"), ["bob", "cat"]);
    server.sigterm();
    sleep_until(start, 3);
    let server = Server::start(&opts);
    let c = server.client();
    let p = c.product("r");
    assert_eq!(p["effective_shared_slots"], 2, "{p}");
    assert_eq!(c.holders("r"), ["ann", "bob"]);
    assert_eq!(c.queue("r"), ["cat"]);
    assert_eq!(
        p["next_capacity_change"],
        json!({"at": rfc(start + Minutes::hours(2)), "shared_slots": 1})
    );
    check_invariants(&c, "r");

    // simulate replays this journal under another schedule (the same calendar code), and
    // refuses a bad schedule file naming the window.
    let mut server = server;
    server.sigterm();
    let file = tmp.path().join("schedule.json");
    let simulate = |file: &std::path::Path| {
        common::slotpool_command()
            .args(["simulate", "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(["--product", "r", "--format", "json", "--schedule"])
            .arg(file)
            .output()
            .expect("simulate runs")
    };
    std::fs::write(
        &file,
        json!({"timezone": "Europe/Berlin",
               "schedule": {"weekly": [{"days": ["mon"], "from": "18:00", "to": "08:00", "shared_slots": 3}]}})
        .to_string(),
    )
    .expect("write");
    let out = simulate(&file);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("schedule.weekly[0]"), "{err}");
    std::fs::write(
        &file,
        json!({"schedule": {"dated": [{"from": "2000-01-01T00:00", "to": "2000-01-02T00:00", "shared_slots": 3}]}})
            .to_string(),
    )
    .expect("write");
    let out = simulate(&file);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["settings"][0]["revoked_pool_shrunk"], 0, "{report}");
    assert_eq!(report["settings"][0]["shared_slots"], 1, "{report}");
    // audit reads the applied size from the journal.
    let out = common::slotpool_command()
        .args(["audit", "--data-dir"])
        .arg(tmp.path().join("data"))
        .args(["--product", "r", "--format", "json"])
        .output()
        .expect("audit runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let audit: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(audit["product"]["effective_shared_slots"], 2, "{audit}");
    assert_eq!(audit["product"]["shared_slots"], 1, "{audit}");
}

/// The next instant after `now` at which a Mon-Fri 08:00-18:00 window in `tz` begins or
/// ends, and the size then, computed with chrono-tz directly.
fn office_change(tz: chrono_tz::Tz, now: DateTime<Utc>) -> (DateTime<Utc>, u64) {
    let mut day = now.with_timezone(&tz).date_naive();
    loop {
        if day.weekday().num_days_from_monday() < 5 {
            for (h, size) in [(8, 40), (18, 15)] {
                let at = tz
                    .from_local_datetime(
                        &day.and_time(NaiveTime::from_hms_opt(h, 0, 0).expect("time")),
                    )
                    .earliest()
                    .expect("08:00 and 18:00 exist")
                    .with_timezone(&Utc);
                if at > now {
                    return (at, size);
                }
            }
        }
        day = day.succ_opt().expect("a next day");
    }
}

#[test]
fn weekly_business_hours_announce_the_instant_of_their_time_zone() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    for (product, zone) in [("berlin", "Europe/Berlin"), ("nyc", "America/New_York")] {
        let settings = with_schedule(
            json!({"kind": "confluence", "licence_tier": 50, "shared_slots": 15}),
            Some(zone),
            json!({"weekly": [{"days": ["mon","tue","wed","thu","fri"], "from": "08:00", "to": "18:00", "shared_slots": 40}]}),
        );
        let got = c.put_product(product, settings.clone()).json();
        let tz: chrono_tz::Tz = zone.parse().expect("zone");
        let (at, size) = office_change(tz, Utc::now());
        assert_eq!(
            got["next_capacity_change"],
            json!({"at": rfc(at), "shared_slots": size}),
            "{zone}"
        );
        let expected_now = if size == 40 { 15 } else { 40 };
        assert_eq!(got["effective_shared_slots"], expected_now, "{zone}");
        // GET, edit, PUT: the read-only fields are ignored, the schedule round-trips.
        let again = c.put_product(product, got.clone()).json();
        assert_eq!(again["schedule"], settings["schedule"]);
        assert_eq!(again["timezone"], zone);
    }
}

#[test]
fn bad_schedules_are_refused_and_change_nothing() {
    let tmp = temp_dir();
    let server = Server::start(&Opts::new(&tmp.path().join("data"), tmp.path()));
    let c = server.client();
    c.put_product("b", base_settings());
    let before = c.product("b");
    let cases = [
        (
            Some("Europe/Berlin"),
            json!({"weekly": [
                {"days": ["mon","tue"], "from": "08:00", "to": "18:00", "shared_slots": 4},
                {"days": ["tue"], "from": "17:00", "to": "20:00", "shared_slots": 2}]}),
            "schedule.weekly[1]",
        ),
        (Some("Mars/Olympus_Mons"), json!({}), "Mars/Olympus_Mons"),
        (
            None,
            json!({"weekly": [{"days": ["mon"], "from": "8:00", "to": "18:00", "shared_slots": 2}]}),
            "schedule.weekly[0].from",
        ),
        (
            None,
            json!({"weekly": [{"days": ["mon"], "from": "22:00", "to": "06:00", "shared_slots": 2}]}),
            "cross midnight",
        ),
        (
            None,
            json!({"weekly": [{"days": ["moon"], "from": "08:00", "to": "09:00", "shared_slots": 2}]}),
            "moon",
        ),
        (
            None,
            json!({"dated": [
                {"from": "2030-01-15T09:00", "to": "2030-01-15T12:00", "shared_slots": 2},
                {"from": "2030-01-15T11:00", "to": "2030-01-15T13:00", "shared_slots": 3}]}),
            "schedule.dated[1]",
        ),
        (
            None,
            json!({"dated": [{"from": "2030-01-15T09:00", "to": "2030-01-15T12:00", "shared_slots": 11}]}),
            "exceed licence_tier",
        ),
    ];
    for (zone, schedule, named) in cases {
        let r = c.admin(
            "PUT",
            "/admin/v1/products/b",
            Some(&with_schedule(base_settings(), zone, schedule.clone())),
        );
        let body = assert_problem(&r, 422, "invalid_schedule");
        let detail = body["detail"].as_str().unwrap_or("");
        assert!(detail.contains(named), "{named:?} not in {detail:?}");
        assert_eq!(c.product("b"), before, "nothing changed by {schedule}");
    }
    // An unknown field of a window is a shape error of the settings.
    let r = c.admin(
        "PUT",
        "/admin/v1/products/b",
        Some(&with_schedule(
            base_settings(),
            None,
            json!({"weekly": [{"days": ["mon"], "from": "08:00", "to": "09:00", "slots": 2}]}),
        )),
    );
    assert_problem(&r, 422, "invalid_settings");
    assert_eq!(c.product("b"), before);
}
