//! Bypass rules: requests the gate lets through without taking a slot.
//!
//! A real site has robots, integration users, monitoring and REST clients that must
//! reach the product whatever the pool looks like (FlexLM's options file has
//! `INCLUDE`/`EXCLUDE` for the same reason). Each product has an ordered list of named
//! [`BypassRule`]s in its settings (`bypass`); the first rule that matches a page view
//! through the gate lets it through, answered 204 with no slot granted and no queue place
//! taken. What a rule may test, all optional, at least one given:
//!
//! - `users`: the caller's user name (without regard to case);
//! - `groups`: the directory groups of the caller (names or SCIM ids, without regard to case);
//! - `cidrs`: the client's network (`10.0.0.0/8`, `2001:db8::/32`, or one address);
//! - `paths`: a prefix of the requested path (`/rest/`, `/status`); a path that could
//!   mean another one to the product (dot segments, encoded slashes or dots, `;`
//!   parameters, backslashes, doubled slashes) never matches;
//! - `token_kinds`: the kind of credential the request carries (the scheme of its
//!   `Authorization` header, `bearer` or `basic`, or what the proxy names in
//!   `X-Slotpool-Token-Kind`).
//!
//! A rule matches when every condition it gives holds (any one value of each list). The
//! rules never let anyone past a deactivated account, and a holder or fixed user never
//! needs one (the gate answers for them as before; a holder keeps the slot).

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;

/// Most rules a product may have.
pub const MAX_RULES: usize = 50;
/// Most values in one condition list of a rule.
pub const MAX_VALUES: usize = 100;
/// Longest rule name, in bytes (it is a metric label).
pub const MAX_NAME_LEN: usize = 64;
/// Longest path prefix, in bytes.
pub const MAX_PATH_LEN: usize = 1_000;
/// Longest token kind, in bytes.
pub const MAX_TOKEN_KIND_LEN: usize = 32;

/// One named rule of a product's `bypass` list. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BypassRule {
    /// The rule's name: shown in the dashboard and audit, and the `rule` label of
    /// `slotpool_gate_bypassed_total`.
    pub name: String,
    /// User names the rule admits (service accounts, integration users, admins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Directory groups (names or SCIM ids) whose members the rule admits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Client networks the rule admits, as CIDRs or single addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// Path prefixes the rule admits (each starts with `/`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Credential kinds the rule admits (`bearer`, `basic`, or a proxy's own name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_kinds: Vec<String>,
}

/// What the gate knows of one page view beyond the user: what bypass rules test.
/// Built by the HTTP layer from the proxy's headers and the directory view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateRequest {
    /// The client's address, as the trusted proxy saw it.
    pub client: Option<IpAddr>,
    /// The requested URI (path and maybe query), as the proxy passed it.
    pub uri: Option<String>,
    /// The kind of credential the request carries, in lower case.
    pub token_kind: Option<String>,
    /// The directory's groups of the user (names and SCIM ids).
    pub groups: Arc<[String]>,
    /// Whether the directory holds the user as active (`None`: it does not know them).
    pub active: Option<bool>,
}

/// A network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a single address; `None` if it is neither,
    /// or if the address has bits set beyond the prefix (a typo more often than not).
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => {
                p.parse::<u8>().ok()?
            }
            Some(_) => return None,
            None => max,
        };
        if prefix > max {
            return None;
        }
        let cidr = Cidr { addr, prefix };
        (cidr.network_bits(addr) == Some(bits(addr))).then_some(cidr)
    }

    /// Whether `ip` lies in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.network_bits(ip) == Some(bits(self.addr))
    }

    /// `ip`'s bits with everything beyond the prefix cleared; `None` for another family.
    fn network_bits(&self, ip: IpAddr) -> Option<u128> {
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return None;
        }
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let host = u32::from(width - self.prefix);
        let mask = if host >= 128 { 0 } else { u128::MAX << host };
        Some(bits(ip) & mask)
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The path of `uri` (before `?` or `#`) if it can mean only itself to the product: no
/// dot segment, no encoded slash, dot, backslash or percent, no `;` parameter, no
/// backslash and no doubled slash. Anything else could reach another page than its
/// prefix says (`/rest/../secure/Dashboard.jspa`), so no path rule matches it.
pub fn plain_path(uri: &str) -> Option<&str> {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    let lower = path.to_ascii_lowercase();
    let sneaky = !path.starts_with('/')
        || path.contains("//")
        || path.contains(['\\', ';'])
        || path.chars().any(|c| c.is_control() || c.is_whitespace())
        || path.split('/').any(|s| s == "." || s == "..")
        || ["%2e", "%2f", "%5c", "%25", "%3b"]
            .iter()
            .any(|e| lower.contains(e));
    (!sneaky).then_some(path)
}

fn same(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

impl BypassRule {
    /// Whether the rule admits this page view of `user`: every condition it gives holds.
    pub fn matches(&self, user: &str, request: &GateRequest) -> bool {
        let users = self.users.is_empty() || self.users.iter().any(|u| same(u, user));
        let groups = self.groups.is_empty()
            || request
                .groups
                .iter()
                .any(|g| self.groups.iter().any(|r| same(r, g)));
        let cidrs = self.cidrs.is_empty()
            || request.client.is_some_and(|ip| {
                self.cidrs
                    .iter()
                    .filter_map(|c| Cidr::parse(c))
                    .any(|c| c.contains(ip))
            });
        let paths = self.paths.is_empty()
            || request
                .uri
                .as_deref()
                .and_then(plain_path)
                .is_some_and(|p| {
                    self.paths
                        .iter()
                        .any(|prefix| p.starts_with(prefix.as_str()))
                });
        let kinds = self.token_kinds.is_empty()
            || request
                .token_kind
                .as_deref()
                .is_some_and(|k| self.token_kinds.iter().any(|t| t.eq_ignore_ascii_case(k)));
        users && groups && cidrs && paths && kinds
    }

    fn conditions(&self) -> usize {
        [
            &self.users,
            &self.groups,
            &self.cidrs,
            &self.paths,
            &self.token_kinds,
        ]
        .iter()
        .filter(|l| !l.is_empty())
        .count()
    }
}

/// The first rule of `rules` that admits this page view of `user`, unless the user is
/// deactivated (`request.active == Some(false)`; the product's own knowledge is checked
/// by the caller too): a rule never lets anyone past a deactivated account.
pub fn first_match<'a>(
    rules: &'a [BypassRule],
    user: &str,
    request: &GateRequest,
) -> Option<&'a BypassRule> {
    if request.active == Some(false) {
        return None;
    }
    rules.iter().find(|r| r.matches(user, request))
}

/// Whether a rule name can be a metric label and a path segment: 1 to 64 of ASCII
/// letters, digits, `-`, `_` and `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks a product's `bypass` list; each problem names the rule and the field.
pub fn validate(rules: &[BypassRule], problems: &mut Vec<String>) {
    if rules.len() > MAX_RULES {
        problems.push(format!("bypass lists at most {MAX_RULES} rules"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("bypass[{i}]");
        if !valid_name(&rule.name) {
            problems.push(format!(
                "{at}.name must be 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.'"
            ));
        } else if rules[..i].iter().any(|r| r.name == rule.name) {
            problems.push(format!("{at}.name '{}' is used twice", rule.name));
        }
        if rule.conditions() == 0 {
            problems.push(format!(
                "{at} ({}) gives no condition: at least one of users, groups, cidrs, paths, token_kinds",
                rule.name
            ));
        }
        for (field, list) in [
            ("users", &rule.users),
            ("groups", &rule.groups),
            ("cidrs", &rule.cidrs),
            ("paths", &rule.paths),
            ("token_kinds", &rule.token_kinds),
        ] {
            if list.len() > MAX_VALUES {
                problems.push(format!("{at}.{field} lists at most {MAX_VALUES} values"));
            }
        }
        for u in &rule.users {
            if crate::user_name::validate(u).is_err() {
                problems.push(format!("{at}.users: '{u}' is not a valid user name"));
            }
        }
        for g in &rule.groups {
            if g.trim().is_empty() || g.len() > crate::profile::MAX_TEXT_LEN {
                problems.push(format!(
                    "{at}.groups: group names are 1 to {} bytes",
                    crate::profile::MAX_TEXT_LEN
                ));
            }
        }
        for c in &rule.cidrs {
            if Cidr::parse(c).is_none() {
                problems.push(format!(
                    "{at}.cidrs: '{c}' is not a network (an address, or address/prefix with no bits set past the prefix, such as 10.0.0.0/8)"
                ));
            }
        }
        for p in &rule.paths {
            if p.len() > MAX_PATH_LEN || plain_path(p) != Some(p.as_str()) {
                problems.push(format!(
                    "{at}.paths: '{p}' must be a plain path prefix starting with '/' (no query, dot segments, encoded characters, ';' or '\\\\', at most {MAX_PATH_LEN} bytes)"
                ));
            }
        }
        for k in &rule.token_kinds {
            let ok = !k.is_empty()
                && k.len() <= MAX_TOKEN_KIND_LEN
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
            if !ok {
                problems.push(format!(
                    "{at}.token_kinds: '{k}' must be 1 to {MAX_TOKEN_KIND_LEN} letters, digits, '-' or '_' (such as bearer or basic)"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> BypassRule {
        BypassRule {
            name: "r".into(),
            users: vec![],
            groups: vec![],
            cidrs: vec![],
            paths: vec![],
            token_kinds: vec![],
        }
    }

    fn problems(rules: &[BypassRule]) -> Vec<String> {
        let mut p = Vec::new();
        validate(rules, &mut p);
        p
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let net = Cidr::parse("10.0.0.0/8").expect("valid");
        assert!(net.contains("10.200.3.4".parse().expect("ip")));
        assert!(!net.contains("11.0.0.1".parse().expect("ip")));
        assert!(net.contains("::ffff:10.1.2.3".parse().expect("ip")));
        let one = Cidr::parse("192.168.1.7").expect("single address");
        assert!(one.contains("192.168.1.7".parse().expect("ip")));
        assert!(!one.contains("192.168.1.8".parse().expect("ip")));
        let v6 = Cidr::parse("2001:db8::/32").expect("v6");
        assert!(v6.contains("2001:db8:1::5".parse().expect("ip")));
        assert!(!v6.contains("10.0.0.1".parse().expect("ip")));
        assert!(Cidr::parse("0.0.0.0/0")
            .expect("all")
            .contains("8.8.8.8".parse().expect("ip")));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.1/8",
            "10.0.0/8",
            "ten",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::/129",
            "",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_that_could_mean_another_page_never_match() {
        assert_eq!(
            plain_path("/rest/api/2/issue?x=1"),
            Some("/rest/api/2/issue")
        );
        for sneaky in [
            "/rest/../secure/Dashboard.jspa",
            "/rest/%2e%2e/secure",
            "/rest/..%2Fsecure",
            "/rest/;jsessionid=1/../x",
            "//evil",
            "/rest\\..\\x",
            "rest/",
            "/rest/./x",
        ] {
            assert_eq!(plain_path(sneaky), None, "{sneaky}");
        }
        let r = BypassRule {
            paths: vec!["/rest/".into()],
            ..rule()
        };
        let via = |uri: &str| GateRequest {
            uri: Some(uri.into()),
            ..GateRequest::default()
        };
        assert!(r.matches("ann", &via("/rest/api/2/myself")));
        assert!(!r.matches("ann", &via("/rest/../secure/Dashboard.jspa")));
        assert!(!r.matches("ann", &via("/secure/Dashboard.jspa")));
        assert!(
            !r.matches("ann", &GateRequest::default()),
            "no URI, no path match"
        );
    }

    #[test]
    fn every_condition_given_must_hold() {
        let r = BypassRule {
            users: vec!["CI-Bot".into()],
            cidrs: vec!["10.0.0.0/8".into()],
            ..rule()
        };
        let inside = GateRequest {
            client: Some("10.1.1.1".parse().expect("ip")),
            ..GateRequest::default()
        };
        assert!(
            r.matches("ci-bot", &inside),
            "user names without regard to case"
        );
        assert!(!r.matches("ann", &inside));
        let outside = GateRequest {
            client: Some("192.0.2.1".parse().expect("ip")),
            ..GateRequest::default()
        };
        assert!(!r.matches("ci-bot", &outside));
        assert!(
            !r.matches("ci-bot", &GateRequest::default()),
            "no address known"
        );
        let g = BypassRule {
            groups: vec!["svc".into()],
            token_kinds: vec!["bearer".into()],
            ..rule()
        };
        let member = GateRequest {
            groups: Arc::from(vec!["SVC".to_string(), "id-1".to_string()]),
            token_kind: Some("bearer".into()),
            ..GateRequest::default()
        };
        assert!(g.matches("x", &member));
        let basic = GateRequest {
            token_kind: Some("basic".into()),
            ..member.clone()
        };
        assert!(!g.matches("x", &basic));
    }

    #[test]
    fn the_first_matching_rule_wins_and_never_for_a_deactivated_user() {
        let rules = vec![
            BypassRule {
                name: "first".into(),
                users: vec!["bot".into()],
                ..rule()
            },
            BypassRule {
                name: "second".into(),
                users: vec!["bot".into(), "ann".into()],
                ..rule()
            },
        ];
        let active = GateRequest {
            active: Some(true),
            ..GateRequest::default()
        };
        assert_eq!(
            first_match(&rules, "bot", &active).map(|r| r.name.as_str()),
            Some("first")
        );
        assert_eq!(
            first_match(&rules, "ann", &active).map(|r| r.name.as_str()),
            Some("second")
        );
        assert_eq!(first_match(&rules, "bob", &active), None);
        let unknown = GateRequest::default();
        assert!(
            first_match(&rules, "bot", &unknown).is_some(),
            "unknown to the directory"
        );
        let off = GateRequest {
            active: Some(false),
            ..GateRequest::default()
        };
        assert_eq!(first_match(&rules, "bot", &off), None);
    }

    #[test]
    fn validation_names_each_bad_rule_and_field() {
        assert!(problems(&[BypassRule {
            name: "robots".into(),
            users: vec!["ci-bot".into()],
            groups: vec!["svc".into()],
            cidrs: vec!["10.0.0.0/8".into()],
            paths: vec!["/rest/".into()],
            token_kinds: vec!["bearer".into()],
        }])
        .is_empty());
        let p = problems(&[rule()]);
        assert!(p.iter().any(|m| m.contains("no condition")), "{p:?}");
        let p = problems(&[BypassRule {
            name: "bad name!".into(),
            cidrs: vec!["10.0.0.0/33".into()],
            paths: vec!["rest".into(), "/a/../b".into()],
            token_kinds: vec!["Bearer token".into()],
            users: vec!["".into()],
            ..rule()
        }]);
        for part in [
            "bypass[0].name",
            "bypass[0].cidrs: '10.0.0.0/33'",
            "bypass[0].paths: 'rest'",
            "bypass[0].paths: '/a/../b'",
            "bypass[0].token_kinds",
            "bypass[0].users",
        ] {
            assert!(p.iter().any(|m| m.contains(part)), "{part} in {p:?}");
        }
        let twice = BypassRule {
            name: "r".into(),
            users: vec!["a".into()],
            ..rule()
        };
        let p = problems(&[twice.clone(), twice]);
        assert!(p.iter().any(|m| m.contains("used twice")), "{p:?}");
    }
}
