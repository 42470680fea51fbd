//! Eligibility: a product's rule on user attributes that decides who may be in its pool
//! (evaluated at sync and at every request).
//!
//! The rule is a small expression, written in JSON in the product's settings:
//!
//! - `{"attribute": "department", "in": ["R&D", "Support"]}`: the user's attribute
//!   (name and values compared without regard to case) is one of the values;
//! - `{"all": [rule, ...]}`, `{"any": [rule, ...]}`, `{"not": rule}`.
//!
//! A user the directory does not know, or without the attribute, fails an `in` test.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Deepest nesting of `all`/`any`/`not` accepted.
pub const MAX_DEPTH: usize = 8;

/// An eligibility rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Eligibility {
    /// The attribute's value is one of `values`.
    In {
        /// The attribute's name (`department`, `costCenter`...).
        attribute: String,
        /// The accepted values.
        #[serde(rename = "in")]
        values: Vec<String>,
    },
    /// Every rule holds.
    All {
        /// The rules.
        all: Vec<Eligibility>,
    },
    /// At least one rule holds.
    Any {
        /// The rules.
        any: Vec<Eligibility>,
    },
    /// The rule does not hold.
    Not {
        /// The rule.
        not: Box<Eligibility>,
    },
}

impl Eligibility {
    /// Whether a user with `attributes` may be in the pool. `None`: the directory does not
    /// know the user, who has no attributes at all.
    pub fn admits(&self, attributes: Option<&BTreeMap<String, String>>) -> bool {
        match self {
            Eligibility::In { attribute, values } => attributes
                .and_then(|a| {
                    a.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
                        .map(|(_, v)| v)
                })
                .is_some_and(|v| values.iter().any(|w| w.to_lowercase() == v.to_lowercase())),
            Eligibility::All { all } => all.iter().all(|r| r.admits(attributes)),
            Eligibility::Any { any } => any.iter().any(|r| r.admits(attributes)),
            Eligibility::Not { not } => !not.admits(attributes),
        }
    }

    /// Checks the rule's shape: names not empty, lists not empty, nesting not too deep.
    pub fn validate(&self) -> Result<(), String> {
        self.check(0)
    }

    fn check(&self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("eligibility nests deeper than {MAX_DEPTH}"));
        }
        match self {
            Eligibility::In { attribute, values } => {
                if attribute.trim().is_empty() {
                    return Err("eligibility: attribute must not be empty".into());
                }
                if values.is_empty() {
                    return Err("eligibility: 'in' must list at least one value".into());
                }
                Ok(())
            }
            Eligibility::All { all: rules } | Eligibility::Any { any: rules } => {
                if rules.is_empty() {
                    return Err("eligibility: 'all'/'any' must list at least one rule".into());
                }
                rules.iter().try_for_each(|r| r.check(depth + 1))
            }
            Eligibility::Not { not } => not.check(depth + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_json_forms_parse_and_evaluate() {
        let rule: Eligibility = serde_json::from_str(
            r#"{"all":[{"attribute":"department","in":["R&D","Support"]},{"not":{"attribute":"userType","in":["Contractor"]}}]}"#,
        )
        .expect("parses");
        assert!(rule.validate().is_ok());
        assert!(rule.admits(Some(&attrs(&[("Department", "r&d")]))));
        assert!(rule.admits(Some(&attrs(&[
            ("department", "Support"),
            ("userType", "Employee")
        ]))));
        assert!(!rule.admits(Some(&attrs(&[
            ("department", "Support"),
            ("userType", "contractor")
        ]))));
        assert!(!rule.admits(Some(&attrs(&[("department", "Sales")]))));
        assert!(!rule.admits(None));
        let any: Eligibility = serde_json::from_str(
            r#"{"any":[{"attribute":"a","in":["1"]},{"attribute":"b","in":["2"]}]}"#,
        )
        .expect("parses");
        assert!(any.admits(Some(&attrs(&[("b", "2")]))));
        assert!(!any.admits(Some(&attrs(&[("b", "1")]))));
    }

    #[test]
    fn empty_and_deep_rules_are_invalid() {
        let empty: Eligibility =
            serde_json::from_str(r#"{"attribute":"d","in":[]}"#).expect("parses");
        assert!(empty.validate().is_err());
        let mut deep = Eligibility::In {
            attribute: "d".into(),
            values: vec!["x".into()],
        };
        for _ in 0..=MAX_DEPTH {
            deep = Eligibility::Not {
                not: Box::new(deep),
            };
        }
        assert!(deep.validate().is_err());
        assert!(serde_json::from_str::<Eligibility>(r#"{"department":"x"}"#).is_err());
    }
}
