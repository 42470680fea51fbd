//! Operations: `/metrics` after a scripted scenario passes `promtool check metrics` and
//! matches what the admin API shows; the alert rules pass `promtool check rules` and their
//! unit tests; the Grafana dashboard parses and uses only metrics that exist; and the
//! cause id of a request is one uuid in the `X-Request-Id` header, the JSON log line and
//! the journal's envelope.
//!
//! Needs `promtool` (Debian package `prometheus`; `.ci/run` installs it).

mod common;

use common::*;
use serde_json::{json, Value};
use slotpool_events::ProductEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs promtool; fails the test (with how to get it) when it is missing.
fn promtool(args: &[&str], stdin: Option<&str>, cwd: &Path) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool not found ({e}): apt-get install prometheus (.ci/run does)")
        });
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("write to promtool");
    }
    drop(input);
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The samples of a text exposition: `name{labels}` (labels sorted as exposed) -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The metric family names declared by `# TYPE` lines.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Metric names used in PromQL expressions (histogram series suffixes removed).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &expr[i..];
        let starts = (rest.starts_with("slotpool_") || rest.starts_with("process_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            out.insert(base.to_string());
            i += end;
        } else {
            i += 1;
        }
    }
    out
}

fn value(s: &BTreeMap<String, f64>, key: &str) -> f64 {
    *s.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in /metrics"))
}

#[test]
fn metrics_pass_promtool_match_the_admin_api_and_carry_the_cause_id() {
    let tmp = temp_dir();
    let data = tmp.path().join("data");
    let config = tmp.path().join("slotpool.toml");
    // A snapshot every 10 events, so that the snapshot age is shown.
    std::fs::write(&config, "snapshot_every = 10\n").expect("write config");
    let opts = Opts::new(&data, tmp.path())
        .arg("--log-format")
        .arg("json")
        .arg("--config")
        .arg(config.to_str().expect("utf-8 path"));
    let mut server = Server::start(&opts);
    let c = server.client();

    // The scenario: 3 shared slots, 5 members, one fixed user; 3 granted, 2 queued; an
    // administrator revokes one holder; the pool shrinks by one; a user is deactivated.
    c.put_product(
        "jira",
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 3}),
    );
    let users = ["alice", "bob", "carol", "dave", "erin"];
    for u in users {
        c.enrol("jira", u);
    }
    assert_eq!(
        c.admin("PUT", "/admin/v1/products/jira/fixed/frank", None)
            .status,
        204
    );
    for u in users {
        c.request("jira", u);
    }
    assert_eq!(
        c.admin("DELETE", "/admin/v1/products/jira/holders/alice", None)
            .status,
        204
    );
    c.put_product(
        "jira",
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 2}),
    );
    let r = c.admin(
        "PUT",
        "/admin/v1/users/erin",
        Some(&json!({"active": false})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let view = c.product("jira");
    let holders = c.holders("jira");
    let queue = c.queue("jira");

    let m = c.call("GET", "/metrics", &[], None);
    assert_eq!(m.status, 200);
    let text = m.body;

    // A real Prometheus parser and linter.
    let (ok, out) = promtool(&["check", "metrics"], Some(&text), tmp.path());
    assert!(
        ok,
        "promtool check metrics:\n{out}\n--- metrics ---\n{text}"
    );

    // Values match the admin API.
    let s = samples(&text);
    let p = |name: &str| value(&s, &format!("{name}{{product=\"jira\"}}"));
    assert_eq!(p("slotpool_slots_held"), holders.len() as f64);
    assert_eq!(p("slotpool_slots_held"), view["holders"].as_f64().unwrap());
    assert_eq!(p("slotpool_queue_length"), queue.len() as f64);
    assert_eq!(p("slotpool_queue_length"), view["queued"].as_f64().unwrap());
    assert_eq!(p("slotpool_fixed_users"), view["fixed"].as_f64().unwrap());
    assert_eq!(p("slotpool_fixed_users"), 1.0);
    assert_eq!(p("slotpool_members"), view["members"].as_f64().unwrap());
    assert_eq!(p("slotpool_shared_slots"), 2.0);
    assert_eq!(p("slotpool_licence_tier"), 10.0);
    let revoked = |reason: &str| {
        s.get(&format!(
            "slotpool_revocations_total{{product=\"jira\",reason=\"{reason}\"}}"
        ))
        .copied()
        .unwrap_or(0.0)
    };
    assert_eq!(revoked("admin"), 1.0, "alice revoked by the administrator");
    assert_eq!(revoked("pool_shrunk"), 1.0, "one holder lost to the resize");
    // erin was queued (never a holder) when deactivated: no revocation for her.
    assert_eq!(revoked("deactivated"), 0.0);
    let outcome = |o: &str| {
        value(
            &s,
            &format!("slotpool_requests_total{{outcome=\"{o}\",product=\"jira\"}}"),
        )
    };
    assert_eq!(outcome("granted"), 3.0);
    assert_eq!(outcome("queued"), 2.0);

    // HTTP metrics by route pattern, never by raw path.
    assert_eq!(
        value(
            &s,
            "slotpool_http_requests_total{method=\"POST\",route=\"/api/v1/products/{product}/slot\",status=\"200\"}"
        ),
        5.0
    );
    assert!(
        !text.contains("route=\"/api/v1/products/jira"),
        "raw paths in labels"
    );
    assert!(s.contains_key(
        "slotpool_http_request_duration_seconds_count{method=\"PUT\",route=\"/admin/v1/products/{product}/members/{user}\"}"
    ));
    // Process metrics, readiness, snapshot age (a snapshot was taken after 10 events).
    assert!(value(&s, "process_resident_memory_bytes") > 0.0);
    assert_eq!(value(&s, "slotpool_ready"), 1.0);
    let age = p("slotpool_snapshot_age_seconds");
    assert!((0.0..600.0).contains(&age), "snapshot age {age}");

    // The dashboard and the alerts use only metrics that exist (the connector's outbox
    // metrics come with the connector, the cluster's with `[cluster]`).
    let exposed = families(&text);
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/slotpool.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            used.extend(metric_names(target["expr"].as_str().expect("expr")));
        }
    }
    assert!(used.len() > 15, "dashboard uses {used:?}");
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !exposed.contains(*n) && !comes_with_a_cluster(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "dashboard uses unknown metrics {missing:?}"
    );
    let rules =
        std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).expect("rules");
    // The connector's series come with a connector; a product's alert gauges with its
    // alert rules.
    let connector = [
        "slotpool_connector_deliveries_total",
        "slotpool_outbox_backlog",
        "slotpool_alerts_firing",
    ];
    let missing: Vec<String> = metric_names(&rules)
        .into_iter()
        .filter(|n| {
            !exposed.contains(n)
                && !connector.contains(&n.as_str())
                && !comes_with_a_cluster(n.as_str())
        })
        .collect();
    assert!(missing.is_empty(), "alerts use unknown metrics {missing:?}");

    // The cause id: the header of an answer, the JSON log line, the journal.
    let r = c.admin("PUT", "/admin/v1/products/jira/members/zed", None);
    assert_eq!(r.status, 204);
    let id = r.header("x-request-id").expect("X-Request-Id").to_string();
    uuid::Uuid::parse_str(&id).expect("a uuid");
    // A caller's own id (a proxy's) is kept.
    let own = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f";
    let r = c.call(
        "POST",
        "/api/v1/products/jira/slot",
        &[("X-Slotpool-User", "zed"), ("X-Request-Id", own)],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some(own));
    server.stop();

    let log_lines: Vec<Value> = server
        .stderr()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let logged = |cause: &str| {
        log_lines.iter().any(|l| {
            l["span"]["cause"] == json!(cause)
                && l["fields"]["message"] == json!("answered")
                && l["fields"]["route"].as_str().is_some()
        })
    };
    assert!(logged(&id), "no JSON log line with cause {id}");
    assert!(logged(own), "no JSON log line with cause {own}");

    let journal = slotpool_journal::Journal::open(&data, Default::default()).expect("open");
    let mut by_cause: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let jira = slotpool_events::StreamId::product("jira").expect("a stream");
    journal
        .replay::<ProductEvent>(&jira, |env| {
            by_cause
                .entry(env.cause.to_string())
                .or_default()
                .push(format!("{:?}", env.event));
        })
        .expect("replay");
    journal.shutdown().expect("shutdown");
    let enrolled = by_cause
        .get(&id)
        .unwrap_or_else(|| panic!("no event with cause {id}"));
    assert!(enrolled.iter().all(|e| e.contains("zed")), "{enrolled:?}");
    let requested = by_cause
        .get(own)
        .unwrap_or_else(|| panic!("no event with cause {own}"));
    assert!(requested.iter().all(|e| e.contains("zed")), "{requested:?}");
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = repo().join("deploy/prometheus");
    let (ok, out) = promtool(&["check", "rules", "alerts.yml"], None, &dir);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = promtool(&["test", "rules", "alerts_test.yml"], None, &dir);
    assert!(ok, "promtool test rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// A metric of the cluster (`slotpool_raft_*`, docs/operations.md "Running a cluster"),
/// which a single node without `[cluster]` need not export: the dashboard's cluster panels
/// and the cluster's alert rules use them.
fn comes_with_a_cluster(name: &str) -> bool {
    name.starts_with("slotpool_raft_")
}

/// The value of the series `series` (name and labels exactly as exposed), if present.
fn series_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Series with labels that dashboards and alert rules use exist, at 0, from the start
/// (per product from its creation, and for products recovered at a restart), so that
/// `rate()` and `increase()` see the first event.
#[test]
fn labelled_series_exist_from_the_start() {
    let tmp = temp_dir();
    let opts = Opts::new(&tmp.path().join("data"), tmp.path());
    let mut server = Server::start(&opts);
    let c = server.client();
    let scrape = |c: &Client| c.call("GET", "/metrics", &[], None).body;
    let m = scrape(&c);
    for reason in ["rate_limited", "too_many_streams", "request_timeout"] {
        let s = format!("slotpool_http_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(series_value(&m, &s), Some(0.0), "{s} in\n{m}");
    }
    c.put_product(
        "p",
        json!({"kind": "jira", "licence_tier": 5, "shared_slots": 1}),
    );
    let expect_zero = |m: &str| {
        for reason in [
            "admin",
            "pool_shrunk",
            "deactivated",
            "removed",
            "fixed",
            "inactivity",
            "reclaimed",
        ] {
            let s = format!("slotpool_revocations_total{{product=\"p\",reason=\"{reason}\"}}");
            assert_eq!(series_value(m, &s), Some(0.0), "{s} in\n{m}");
        }
        for outcome in [
            "granted",
            "queued",
            "fixed",
            "locked",
            "unchanged",
            "not_member",
        ] {
            let s = format!("slotpool_requests_total{{outcome=\"{outcome}\",product=\"p\"}}");
            assert_eq!(series_value(m, &s), Some(0.0), "{s} in\n{m}");
        }
        for outcome in ["delivered", "error", "timeout"] {
            let s = format!(
                "slotpool_connector_deliveries_total{{outcome=\"{outcome}\",product=\"p\"}}"
            );
            assert_eq!(series_value(m, &s), Some(0.0), "{s} in\n{m}");
        }
    };
    expect_zero(&scrape(&c));
    assert_eq!(server.sigterm().code(), Some(0));
    let server = Server::start(&opts);
    expect_zero(&scrape(&server.client()));
}

/// `access_log = "errors"` writes a line for a refused call and none for a successful
/// one; the default writes both. Every line is in the log by the time the process ends
/// (the log's writer thread is flushed on the way out).
#[test]
fn the_access_log_says_what_its_setting_asks_and_nothing_is_left_unwritten() {
    let answered = |server: &Server| {
        server
            .stderr()
            .lines()
            .filter(|l| l.contains("answered"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    for (setting, success_logged) in [("errors", false), ("all", true)] {
        let tmp = temp_dir();
        let config = tmp.path().join("slotpool.toml");
        std::fs::write(&config, format!("access_log = \"{setting}\"\n")).expect("config");
        let opts = Opts::new(&tmp.path().join("data"), tmp.path())
            .arg("--config")
            .arg(config.to_str().expect("utf-8"));
        let mut server = Server::start(&opts);
        let c = server.client();
        c.put_product(
            "p",
            json!({"kind": "jira", "licence_tier": 5, "shared_slots": 1}),
        );
        let ok = c.admin("GET", "/admin/v1/products/p", None);
        assert_eq!(ok.status, 200);
        let missing = c.admin("GET", "/admin/v1/products/nope", None);
        assert_eq!(missing.status, 404);
        server.stop();
        let lines = answered(&server);
        let line_of = |id: Option<&str>| {
            let id = id.expect("X-Request-Id");
            lines.iter().any(|l| l.contains(id))
        };
        assert!(
            line_of(missing.header("x-request-id")),
            "{setting}: {lines:#?}"
        );
        assert_eq!(
            line_of(ok.header("x-request-id")),
            success_logged,
            "{setting}: {lines:#?}"
        );
        assert!(
            server.stderr().contains("bye"),
            "the last line is written: {}",
            server.stderr()
        );
    }
}
