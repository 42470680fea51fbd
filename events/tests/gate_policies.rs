//! Property tests of the gate policies' pure parts (issue G): networks contain exactly
//! the addresses that share their prefix, a path rule never matches a path that could
//! mean another page, and the first matching rule is the one the gate names.

use proptest::prelude::*;
use slotpool_events::bypass::{first_match, plain_path, BypassRule, Cidr, GateRequest};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn rule(name: &str, paths: Vec<String>) -> BypassRule {
    BypassRule {
        name: name.into(),
        users: vec![],
        groups: vec![],
        cidrs: vec![],
        paths,
        token_kinds: vec![],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn an_ipv4_network_contains_exactly_its_prefix(net in any::<u32>(), ip in any::<u32>(), prefix in 0u8..=32) {
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
        let text = format!("{}/{prefix}", Ipv4Addr::from(net & mask));
        let cidr = Cidr::parse(&text).expect("a network with no host bits parses");
        prop_assert_eq!(cidr.contains(IpAddr::V4(Ipv4Addr::from(ip))), ip & mask == net & mask);
        // With host bits set it is refused, never silently widened.
        if net & !mask != 0 {
            let loose = format!("{}/{prefix}", Ipv4Addr::from(net));
            prop_assert!(Cidr::parse(&loose).is_none(), "{} parsed", loose);
        }
    }

    #[test]
    fn an_ipv6_network_contains_exactly_its_prefix(net in any::<u128>(), ip in any::<u128>(), prefix in 0u8..=128) {
        let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
        let text = format!("{}/{prefix}", Ipv6Addr::from(net & mask));
        let cidr = Cidr::parse(&text).expect("parses");
        prop_assert_eq!(cidr.contains(IpAddr::V6(Ipv6Addr::from(ip))), ip & mask == net & mask);
    }

    #[test]
    fn a_path_rule_never_matches_a_dot_segment_or_an_encoded_one(
        prefix in "/[a-z]{1,6}/",
        before in "[a-z/]{0,8}",
        sneak in prop::sample::select(vec!["/../", "/./", "%2e%2e/", "%2F", "..%5c", ";x=1/", "//", "\\"]),
        after in "[a-z/]{0,8}",
    ) {
        let uri = format!("{prefix}{before}{sneak}{after}");
        prop_assert_eq!(plain_path(&uri), None);
        let rules = vec![rule("r", vec![prefix.clone()])];
        let request = GateRequest { uri: Some(uri), ..GateRequest::default() };
        prop_assert!(first_match(&rules, "u", &request).is_none());
    }

    #[test]
    fn the_first_rule_that_matches_is_named(paths in prop::collection::vec("/[a-c]{1,3}", 1..6), uri in "/[a-c]{1,5}") {
        let rules: Vec<BypassRule> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| rule(&format!("r{i}"), vec![p.clone()]))
            .collect();
        let request = GateRequest { uri: Some(uri.clone()), ..GateRequest::default() };
        let expected = paths.iter().position(|p| uri.starts_with(p.as_str())).map(|i| format!("r{i}"));
        prop_assert_eq!(first_match(&rules, "u", &request).map(|r| r.name.clone()), expected);
        let deactivated = GateRequest { active: Some(false), ..request };
        prop_assert!(first_match(&rules, "u", &deactivated).is_none());
    }
}
