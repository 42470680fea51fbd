//! The cluster tests' own tools, tested without slotpool: the fault-injecting proxy over
//! plain sockets, and the linearizability checker on hand-made and generated histories.

mod common;

use common::fault_proxy::{hello, parse_hello, FaultProxy, HELLO_LEN};
use common::linearizable::{check, check_key, Call, Operation, Verdict, DEFAULT_BUDGET};
use common::Rng;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// The fault proxy

/// A stand-in for a node's Raft port: echoes every byte back on every connection.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let addr = l.local_addr().expect("echo addr");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Dials node `to`'s proxy as node `from`: sends the hello and a message.
fn dial(proxy: &FaultProxy, from: u64, to: u64, message: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port(to))).expect("connect to the proxy");
    // A guard against a hang, not a timing assertion: every read below ends well before.
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    // A refused connection may be closed under the writes: that shows in the reads.
    let _ = s.write_all(&hello(from));
    let _ = s.write_all(message);
    s
}

/// Reads exactly `n` bytes, or what came before the connection ended.
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; n];
    while out.len() < n {
        match s.read(&mut buf[..n - out.len()]) {
            Ok(0) => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                panic!("no answer within the guard timeout")
            }
            Err(_) => break,
        }
    }
    out
}

/// Whether the proxy relays `from -> to` now: the echo comes back, hello first.
fn relays(proxy: &FaultProxy, from: u64, to: u64) -> bool {
    let mut s = dial(proxy, from, to, b"ping");
    let got = read_n(&mut s, HELLO_LEN + 4);
    if got.is_empty() {
        return false;
    }
    let mut want = hello(from).to_vec();
    want.extend_from_slice(b"ping");
    assert_eq!(
        got, want,
        "the proxy must forward the hello and the bytes unchanged"
    );
    true
}

/// Whether a connection is dead: a read ends (EOF or reset) instead of echoing.
fn is_cut(s: &mut TcpStream) -> bool {
    let _ = s.write_all(b"x");
    read_n(s, 1).is_empty()
}

fn three_node_proxy() -> FaultProxy {
    let mut proxy = FaultProxy::new();
    for id in 1..=3 {
        proxy.add_node(id, echo_server());
    }
    proxy
}

#[test]
fn hello_round_trips_and_rejects_garbage() {
    let h = hello(0x0102_0304_0506_0708);
    assert_eq!(&h[..9], b"SLOTRAFT\x01");
    assert_eq!(&h[9..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(parse_hello(&h), Some(0x0102_0304_0506_0708));
    let mut bad_version = h;
    bad_version[8] = 2;
    assert_eq!(parse_hello(&bad_version), None);
    assert_eq!(parse_hello(b"GET / HTTP/1.1\r\n\r"), None);
    assert_eq!(parse_hello(&h[..16]), None);
}

#[test]
fn proxy_relays_both_ways_and_learns_the_source() {
    let proxy = three_node_proxy();
    let mut s = dial(&proxy, 2, 1, b"hello node one");
    assert_eq!(read_n(&mut s, HELLO_LEN)[..], hello(2)[..]);
    assert_eq!(read_n(&mut s, 14), b"hello node one");
    // A larger message, in pieces, comes back whole.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    s.write_all(&big).expect("write big");
    assert_eq!(read_n(&mut s, big.len()), big);
    assert_eq!(proxy.connections().get(&(Some(2), 1)), Some(&1));
    drop(s);
}

#[test]
fn block_cuts_that_pair_only_and_refuses_new_connections_until_heal() {
    let proxy = three_node_proxy();
    let mut one_to_two = dial(&proxy, 1, 2, b"a");
    let mut two_to_one = dial(&proxy, 2, 1, b"b");
    let mut three_to_two = dial(&proxy, 3, 2, b"c");
    for s in [&mut one_to_two, &mut two_to_one, &mut three_to_two] {
        assert_eq!(read_n(s, HELLO_LEN + 1).len(), HELLO_LEN + 1);
    }

    proxy.block(1, 2);
    assert!(proxy.is_blocked(1, 2));
    assert!(!proxy.is_blocked(2, 1));
    assert!(
        is_cut(&mut one_to_two),
        "the blocked pair's connection must be cut"
    );
    assert!(!is_cut(&mut two_to_one), "the other direction stays");
    assert!(!is_cut(&mut three_to_two), "other sources stay");
    assert!(!relays(&proxy, 1, 2), "a new connection 1 -> 2 is refused");
    assert!(relays(&proxy, 2, 1));
    assert!(relays(&proxy, 3, 2));
    assert!(proxy.refused().get(&(Some(1), 2)).copied().unwrap_or(0) >= 2);

    proxy.heal();
    assert!(!proxy.is_blocked(1, 2));
    assert!(relays(&proxy, 1, 2), "after heal 1 -> 2 relays again");
}

#[test]
fn isolate_cuts_a_node_from_every_other_both_ways() {
    let proxy = three_node_proxy();
    let mut to_three = dial(&proxy, 1, 3, b"a");
    let mut from_three = dial(&proxy, 3, 2, b"b");
    let mut unrelated = dial(&proxy, 1, 2, b"c");
    for s in [&mut to_three, &mut from_three, &mut unrelated] {
        assert_eq!(read_n(s, HELLO_LEN + 1).len(), HELLO_LEN + 1);
    }
    proxy.isolate(3);
    assert!(is_cut(&mut to_three));
    assert!(is_cut(&mut from_three));
    assert!(!is_cut(&mut unrelated), "the majority keeps its links");
    for (from, to) in [(1, 3), (2, 3), (3, 1), (3, 2)] {
        assert!(proxy.is_blocked(from, to), "{from} -> {to}");
        assert!(!relays(&proxy, from, to), "{from} -> {to} must be refused");
    }
    assert!(relays(&proxy, 1, 2) && relays(&proxy, 2, 1));
    proxy.heal();
    for (from, to) in [(1, 3), (2, 3), (3, 1), (3, 2)] {
        assert!(relays(&proxy, from, to), "{from} -> {to} after heal");
    }
}

#[test]
fn a_connection_without_a_valid_hello_is_relayed_as_it_is() {
    let proxy = three_node_proxy();
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port(1))).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let garbage = b"NOTRAFT-garbage-bytes";
    s.write_all(garbage).expect("write");
    assert_eq!(read_n(&mut s, garbage.len()), garbage);
    assert_eq!(proxy.connections().get(&(None, 1)), Some(&1));
    // An isolated destination refuses even an unknown source.
    proxy.isolate(1);
    assert!(is_cut(&mut s));
}

#[test]
fn a_target_that_does_not_listen_closes_the_connection() {
    let mut proxy = FaultProxy::new();
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    proxy.add_node(1, dead);
    assert!(!relays(&proxy, 2, 1));
    assert_eq!(proxy.target(1), dead);
}

// ---------------------------------------------------------------------------------------
// The linearizability checker

const U: &str = "p/alice";

fn ok(call: Call, inv: u64, ret: u64, state: &str) -> Operation {
    Operation::ok(U, call, inv, ret, state)
}

fn lost(call: Call, inv: u64) -> Operation {
    Operation::indeterminate(U, call, inv)
}

fn verdict(ops: &[Operation]) -> Verdict {
    check_key(ops, DEFAULT_BUDGET).0
}

fn not_linearizable(v: &Verdict) -> bool {
    matches!(v, Verdict::NotLinearizable { .. })
}

#[test]
fn sequential_histories_follow_the_register() {
    use Call::*;
    let good = [
        ok(Read, 0, 1, "none"),
        ok(Request, 2, 3, "granted"),
        ok(Read, 4, 5, "granted"),
        ok(Request, 6, 7, "granted"),
        ok(Release, 8, 9, "none"),
        ok(Read, 10, 11, "none"),
        ok(Release, 12, 13, "none"),
    ];
    assert_eq!(verdict(&good), Verdict::Linearizable);
    assert_eq!(verdict(&[]), Verdict::Linearizable);

    // A stale read after an acknowledged release: a lost change.
    let stale = [
        ok(Request, 0, 1, "granted"),
        ok(Release, 2, 3, "none"),
        ok(Read, 4, 5, "granted"),
    ];
    let v = verdict(&stale);
    assert!(not_linearizable(&v), "{v:?}");
    if let Verdict::NotLinearizable { detail } = v {
        assert!(detail.contains("Read"), "{detail}");
    }
    // A grant nobody asked for.
    assert!(not_linearizable(&verdict(&[ok(Read, 0, 1, "granted")])));
    // The model's pool always grants: a queued answer does not fit.
    assert!(not_linearizable(&verdict(&[ok(Request, 0, 1, "queued")])));
}

#[test]
fn concurrent_operations_may_take_effect_in_either_order() {
    use Call::*;
    // The read overlaps the request: it may come first.
    assert_eq!(
        verdict(&[ok(Request, 0, 10, "granted"), ok(Read, 5, 6, "none")]),
        Verdict::Linearizable
    );
    assert_eq!(
        verdict(&[ok(Request, 0, 10, "granted"), ok(Read, 5, 6, "granted")]),
        Verdict::Linearizable
    );
    // After the request's answer, it cannot.
    assert!(not_linearizable(&verdict(&[
        ok(Request, 0, 10, "granted"),
        ok(Read, 11, 12, "none"),
    ])));
    // Two overlapping reads that disagree, both inside the request: none then granted.
    assert_eq!(
        verdict(&[
            ok(Request, 0, 10, "granted"),
            ok(Read, 1, 3, "none"),
            ok(Read, 4, 6, "granted"),
        ]),
        Verdict::Linearizable
    );
    // But granted then none within one request is impossible.
    assert!(not_linearizable(&verdict(&[
        ok(Request, 0, 10, "granted"),
        ok(Read, 1, 3, "granted"),
        ok(Read, 4, 6, "none"),
    ])));
}

#[test]
fn an_indeterminate_operation_takes_effect_once_or_never_after_its_invocation() {
    use Call::*;
    let base = [ok(Request, 0, 2, "granted"), lost(Release, 3)];
    // Never took effect.
    let mut h = base.to_vec();
    h.push(ok(Read, 10, 11, "granted"));
    assert_eq!(verdict(&h), Verdict::Linearizable);
    // Took effect.
    let mut h = base.to_vec();
    h.push(ok(Read, 10, 11, "none"));
    assert_eq!(verdict(&h), Verdict::Linearizable);
    // Took effect late, after a read that still saw the grant.
    let mut h = base.to_vec();
    h.extend([ok(Read, 10, 11, "granted"), ok(Read, 12, 13, "none")]);
    assert_eq!(verdict(&h), Verdict::Linearizable);
    // Once only: it cannot take the slot away a second time.
    h.push(ok(Read, 14, 15, "granted"));
    assert!(not_linearizable(&verdict(&h)));
    // Not before its invocation: a read that ended before it cannot see its effect.
    assert!(not_linearizable(&verdict(&[
        ok(Request, 0, 2, "granted"),
        ok(Read, 3, 4, "none"),
        lost(Release, 5),
    ])));
    // Two lost requests and a lost release explain granted, none, granted.
    assert_eq!(
        verdict(&[
            lost(Request, 0),
            lost(Release, 1),
            lost(Request, 2),
            ok(Read, 10, 11, "granted"),
            ok(Read, 12, 13, "none"),
            ok(Read, 14, 15, "granted"),
        ]),
        Verdict::Linearizable
    );
    // One lost request cannot grant twice.
    assert!(not_linearizable(&verdict(&[
        lost(Request, 0),
        lost(Release, 1),
        ok(Read, 10, 11, "granted"),
        ok(Read, 12, 13, "none"),
        ok(Read, 14, 15, "granted"),
    ])));
    // An unanswered read constrains nothing.
    assert_eq!(verdict(&[lost(Read, 0)]), Verdict::Linearizable);
}

#[test]
fn users_are_checked_independently_and_the_culprit_is_named() {
    use Call::*;
    let h = vec![
        Operation::ok("p/alice", Request, 0, 1, "granted"),
        Operation::ok("p/bob", Read, 0, 1, "none"),
        Operation::ok("p/bob", Read, 2, 3, "granted"),
        Operation::ok("p/alice", Read, 2, 3, "granted"),
        Operation::ok("q/alice", Read, 2, 3, "none"),
    ];
    let r = check(&h, DEFAULT_BUDGET);
    assert_eq!(r.keys, 3);
    assert_eq!(r.operations, 5);
    assert!(!r.ok());
    assert_eq!(r.failures.keys().collect::<Vec<_>>(), ["p/bob"]);
}

/// A history as one client of one user would record it against a correct register:
/// operations one after another, some answered, some never (taking effect a little
/// later, or not at all), reads now and then. Returns the history and how many were
/// indeterminate.
fn generated_history(rng: &mut Rng, ops: usize) -> (Vec<Operation>, usize) {
    use Call::*;
    // The register's true history: instants at which it changed, and to what.
    let mut effects: Vec<(u64, bool)> = vec![(0, false)];
    let state_at = |effects: &[(u64, bool)], t: u64| {
        effects
            .iter()
            .filter(|(at, _)| *at <= t)
            .max_by_key(|(at, _)| *at)
            .is_some_and(|(_, s)| *s)
    };
    let mut h = Vec::new();
    let mut t = 10u64;
    let mut holding_known = false;
    let mut lost_count = 0;
    for _ in 0..ops {
        let inv = t;
        let ret = inv + rng.range(1, 50);
        let at = rng.range(inv, ret + 1);
        let call = match rng.range(0, 3) {
            0 => Read,
            _ if holding_known => Release,
            _ => Request,
        };
        if call == Read {
            h.push(Operation::ok(
                U,
                Read,
                inv,
                ret,
                if state_at(&effects, at) {
                    "granted"
                } else {
                    "none"
                },
            ));
        } else if rng.range(0, 6) == 0 {
            // Indeterminate: takes effect up to 200 units later, or never.
            lost_count += 1;
            if rng.range(0, 2) == 0 {
                effects.push((inv + rng.range(0, 200), call == Request));
            }
            h.push(Operation::indeterminate(U, call, inv));
        } else {
            effects.push((at, call == Request));
            holding_known = call == Request;
            let state = if call == Request { "granted" } else { "none" };
            h.push(Operation::ok(U, call, inv, ret, state));
        }
        t = ret + rng.range(0, 5);
    }
    (h, lost_count)
}

#[test]
fn generated_correct_histories_pass_within_the_budget() {
    let mut rng = Rng::seeded(7);
    for round in 0..20 {
        let (h, lost_count) = generated_history(&mut rng, 300);
        assert!(
            lost_count > 20,
            "round {round}: the generator must produce lost ops"
        );
        let (v, stats) = check_key(&h, DEFAULT_BUDGET);
        assert_eq!(v, Verdict::Linearizable, "round {round}");
        // Far below the budget: no blow-up with dozens of indeterminate operations.
        assert!(
            stats.steps < DEFAULT_BUDGET / 10,
            "round {round}: {} steps",
            stats.steps
        );
    }
}

#[test]
fn generated_histories_with_impossible_reads_fail_within_the_budget() {
    let mut rng = Rng::seeded(11);
    for round in 0..10 {
        let (mut h, _) = generated_history(&mut rng, 300);
        // After the history, a release and then more grants than the lost requests can
        // explain (each `granted` after a `none` needs one more request to take effect):
        // the search must try every way of spending the lost operations, and must still
        // decide within the budget.
        let lost_requests = h
            .iter()
            .filter(|o| o.call == Call::Request && o.ret.is_none())
            .count();
        assert!(lost_requests > 5, "round {round}");
        let mut t = h
            .iter()
            .filter_map(|o| o.ret.as_ref().map(|r| r.0))
            .max()
            .unwrap_or(0)
            + 1000;
        h.push(Operation::ok(U, Call::Release, t, t + 1, "none"));
        t += 2;
        let good = h.clone();
        for _ in 0..=lost_requests {
            h.push(Operation::ok(U, Call::Read, t, t + 1, "granted"));
            h.push(Operation::ok(U, Call::Read, t + 2, t + 3, "none"));
            t += 4;
        }
        let (v, stats) = check_key(&h, DEFAULT_BUDGET);
        assert!(
            not_linearizable(&v),
            "round {round}: {v:?} after {} steps",
            stats.steps
        );
        // The same history with a read of `none` after the release is fine.
        let mut fine = good;
        fine.push(Operation::ok(U, Call::Read, t, t + 1, "none"));
        assert_eq!(
            check_key(&fine, DEFAULT_BUDGET).0,
            Verdict::Linearizable,
            "round {round}"
        );
    }
}

#[test]
fn the_search_gives_up_at_its_budget_instead_of_running_away() {
    let mut rng = Rng::seeded(3);
    let (h, _) = generated_history(&mut rng, 300);
    let (v, stats) = check_key(&h, 10);
    assert_eq!(v, Verdict::Unknown { steps: 11 });
    assert_eq!(stats.steps, 11);
}

/// The definition, by brute force: some subset of the indeterminate operations and some
/// order of those and all acknowledged ones, respecting real time, obeys the register.
fn brute_force_linearizable(ops: &[Operation]) -> bool {
    let ops: Vec<&Operation> = ops
        .iter()
        .filter(|o| !(o.call == Call::Read && o.ret.is_none()))
        .collect();
    let lost: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    let acked: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_some()).collect();
    let ret = |o: &Operation| o.ret.as_ref().map_or(u64::MAX, |r| r.0);
    fn permutations(items: &mut Vec<usize>, k: usize, f: &mut dyn FnMut(&[usize]) -> bool) -> bool {
        if k == items.len() {
            return f(items);
        }
        for i in k..items.len() {
            items.swap(k, i);
            if permutations(items, k + 1, f) {
                return true;
            }
            items.swap(k, i);
        }
        false
    }
    for mask in 0..(1u32 << lost.len()) {
        let mut chosen = acked.clone();
        chosen.extend(
            lost.iter()
                .enumerate()
                .filter(|(b, _)| mask & (1 << b) != 0)
                .map(|(_, &i)| i),
        );
        let found = permutations(&mut chosen, 0, &mut |order| {
            for (x, &a) in order.iter().enumerate() {
                for &b in &order[x + 1..] {
                    if ret(ops[b]) < ops[a].invoked {
                        return false;
                    }
                }
            }
            let mut holding = false;
            for &i in order {
                let o = ops[i];
                match (o.call, o.ret.as_ref().map(|r| r.1.as_str())) {
                    (Call::Request, Some(s)) if s != "granted" => return false,
                    (Call::Request, _) => holding = true,
                    (Call::Release, _) => holding = false,
                    (Call::Read, Some(s)) => {
                        if s != if holding { "granted" } else { "none" } {
                            return false;
                        }
                    }
                    (Call::Read, None) => {}
                }
            }
            true
        });
        if found {
            return true;
        }
    }
    false
}

#[test]
fn the_checker_agrees_with_the_definition_on_small_random_histories() {
    let mut rng = Rng::seeded(5);
    let (mut yes, mut no) = (0, 0);
    for round in 0..3000 {
        let n = rng.range(1, 7) as usize;
        let h: Vec<Operation> = (0..n)
            .map(|_| {
                let inv = rng.range(0, 20);
                let call = [Call::Request, Call::Release, Call::Read][rng.range(0, 3) as usize];
                if rng.range(0, 4) == 0 {
                    return Operation::indeterminate(U, call, inv);
                }
                let state = match call {
                    Call::Release => "none",
                    Call::Request if rng.range(0, 20) == 0 => "queued",
                    Call::Request => "granted",
                    Call::Read if rng.range(0, 2) == 0 => "granted",
                    Call::Read => "none",
                };
                Operation::ok(U, call, inv, inv + rng.range(1, 10), state)
            })
            .collect();
        let want = brute_force_linearizable(&h);
        let got = check_key(&h, DEFAULT_BUDGET).0;
        assert_eq!(
            got == Verdict::Linearizable,
            want,
            "round {round}: {h:#?} -> {got:?}"
        );
        if want {
            yes += 1;
        } else {
            no += 1;
        }
    }
    // Both kinds came up plenty of times.
    assert!(yes > 300 && no > 300, "{yes} linearizable, {no} not");
}

// ---------------------------------------------------------------------------------------
// The cluster harness's own parsing (no process started)

#[test]
fn node_configs_follow_the_cluster_contract() {
    use common::cluster::{Cluster, ClusterOpts, CLUSTER_ID};
    let c = Cluster::build(ClusterOpts::default());
    assert_eq!(c.ids(), [1, 2, 3]);
    for id in c.ids() {
        let spec = &c.node(id).spec;
        let text = std::fs::read_to_string(&spec.config_path).expect("config written");
        let v: toml::Value = toml::from_str(&text).expect("the config is TOML");
        assert_eq!(
            v["listen"].as_str(),
            Some(format!("127.0.0.1:{}", spec.http_port).as_str())
        );
        assert_eq!(v["data_dir"].as_str(), spec.data_dir.to_str());
        let cl = &v["cluster"];
        assert_eq!(cl["node_id"].as_integer(), Some(id as i64));
        assert_eq!(
            cl["raft_listen"].as_str(),
            Some(format!("127.0.0.1:{}", spec.raft_port).as_str())
        );
        assert_eq!(cl["secret_file"].as_str(), Some("cluster_secret"));
        assert_eq!(cl["cluster_id"].as_str(), Some(CLUSTER_ID));
        let peers = cl["peers"].as_array().expect("peers");
        assert_eq!(peers.len(), 3);
        for p in peers {
            let pid = p["id"].as_integer().expect("id") as u64;
            // Every node dials its peers through their proxy listener, never directly.
            assert_eq!(p["raft"].as_str(), Some(c.proxy.addr(pid).as_str()));
            assert_ne!(c.proxy.port(pid), c.node(pid).spec.raft_port);
            assert_eq!(
                c.proxy.target(pid).port(),
                c.node(pid).spec.raft_port,
                "the proxy relays to the real raft_listen"
            );
        }
        let secret = std::fs::read_to_string(spec.data_dir.join("cluster_secret")).expect("secret");
        assert!(secret.len() >= 16);
    }
}

#[test]
fn verify_lines_and_metrics_are_parsed_as_the_contract_prints_them() {
    use common::cluster::{metric, parse_chains};
    let tip = "ab".repeat(32);
    let out = format!(
        "directory: 12 records, tip {tip}, hash chain intact\n\
         product/jira: 40 records, tip {tip}, hash chain intact\n\
         raft/log: 99 records, tip {tip}, hash chain intact\n\
         verify: 3 streams, 151 records, 0 snapshots, all intact\n"
    );
    let chains = parse_chains(&out);
    assert_eq!(
        chains.keys().collect::<Vec<_>>(),
        ["directory", "product/jira"]
    );
    assert_eq!(chains["directory"], format!("12 records, tip {tip}"));
    let m = "# HELP slotpool_raft_is_leader x\n# TYPE slotpool_raft_is_leader gauge\n\
             slotpool_raft_is_leader 1\nslotpool_raft_peer_up{peer=\"3\"} 0\n\
             slotpool_raft_peer_up{peer=\"2\"} 1\n";
    assert_eq!(metric(m, "slotpool_raft_is_leader"), Some(1.0));
    assert_eq!(metric(m, "slotpool_raft_peer_up{peer=\"3\"}"), Some(0.0));
    assert_eq!(metric(m, "slotpool_raft_peer_up{peer=\"2\"}"), Some(1.0));
    assert_eq!(metric(m, "slotpool_raft_term"), None);
}

/// The cluster load, its recorder and the checker against the real binary, on one node
/// killed with `kill -9` and restarted on the same port: clients retry through the
/// outage, every acknowledged operation is kept, and the recorded history (with the
/// operations the kill left unanswered) is linearizable. This is what the cluster tests
/// rely on, shown where it already holds.
#[test]
fn a_recorded_load_through_a_kill_9_and_restart_is_linearizable() {
    use common::cluster::{roomy_product, start_cluster_load, LoadPlan};
    use common::linearizable::Recorder;
    use common::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let tmp = temp_dir();
    let opts = Opts::new(&tmp.path().join("data"), tmp.path());
    let port = free_port();
    let mut server = Server::spawn_on(&opts, port);
    server.wait_ready(Duration::from_secs(15));
    let users: Vec<String> = (0..12).map(|i| format!("lin-{i:02}")).collect();
    let c = server.client();
    c.put_product("lin", roomy_product(users.len()));
    for u in &users {
        c.enrol("lin", u);
    }
    let rec = Arc::new(Recorder::new());
    let stop = Arc::new(AtomicBool::new(false));
    let tracks: Vec<Track> = users
        .iter()
        .map(|u| Track::new(u, Known::None).thinking(4))
        .collect();
    let load = start_cluster_load(
        &LoadPlan::new(vec![server.base.clone()], "lin"),
        tracks,
        Some(Arc::clone(&rec)),
        &stop,
    );
    load.wait_for_acks(200, Duration::from_secs(30));
    server.kill9();
    std::thread::sleep(Duration::from_millis(200));
    let mut server = Server::spawn_on(&opts, port);
    server.wait_ready(Duration::from_secs(15));
    let acks = load.acks.load(Ordering::SeqCst);
    load.wait_for_acks(acks + 200, Duration::from_secs(30));
    stop.store(true, Ordering::SeqCst);
    let tracks = load.join();
    let unexpected: Vec<&String> = tracks.iter().flat_map(|t| &t.unexpected).collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    check_tracks(&server.client(), "lin", &tracks);
    let report = check(&rec.history(), DEFAULT_BUDGET);
    eprintln!(
        "{} operations, {} unanswered, {} steps",
        report.operations, report.indeterminate, report.steps
    );
    assert!(report.ok(), "{:#?}", report.failures);
    assert_eq!(report.keys, users.len());
    assert!(report.operations > 400, "{report:?}");
    assert!(
        report.indeterminate > 0,
        "the kill left no operation unanswered: {report:?}"
    );
    server.stop();
}
