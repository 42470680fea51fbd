//! SCIM filters (RFC 7644 §3.4.2.2): a hand-written parser and an evaluator over a
//! resource's SCIM JSON.
//!
//! Written by hand: the crates that exist (`scim-filter`, `scim_v2`'s filter module)
//! either evaluate only over their own models or are thinly documented and unmaintained,
//! and this one must never panic on any input (the property tests below feed it arbitrary
//! strings and well-formed-ish filters), bound its recursion, and compare attribute
//! names without regard to case.
//!
//! Grammar: `filter := and ("or" and)*`, `and := unary ("and" unary)*`,
//! `unary := "not"? "(" filter ")" | attrPath "pr" | attrPath op value | attrPath "[" filter "]"`,
//! with `op` one of `eq ne co sw ew gt ge lt le` and `value` a JSON string, number,
//! `true`, `false` or `null`.

use serde_json::Value;
use std::cmp::Ordering;

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses, brackets and `not` accepted.
pub const MAX_DEPTH: usize = 32;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// An attribute path: an optional schema URN, a name and an optional sub-attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    /// The schema URN before the name, if given (`urn:...:enterprise:2.0:User`).
    pub urn: Option<String>,
    /// The attribute's name.
    pub name: String,
    /// The sub-attribute's name (`emails.value`).
    pub sub: Option<String>,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `not (a)`.
    Not(Box<Filter>),
    /// `attr pr`.
    Present(AttrPath),
    /// `attr op value`.
    Compare(AttrPath, Op, Value),
    /// `attr[filter]`: some element of the multi-valued `attr` matches `filter`.
    ValuePath(AttrPath, Box<Filter>),
}

/// Why a filter could not be parsed (SCIM `invalidFilter`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter: {0}")]
pub struct FilterError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Word(String),
    Str(String),
}

fn tokenize(input: &str) -> Result<Vec<Token>, FilterError> {
    let mut out = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | '[' | ']' => {
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenBracket,
                    _ => Token::CloseBracket,
                });
                i += 1
            }
            '"' => {
                // A JSON string: find its end, honouring escapes, and let serde decode it.
                let start = i;
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    match chars[i] {
                        '\\' => i += 2,
                        '"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                if !closed {
                    return Err(FilterError("unterminated string".into()));
                }
                let raw: String = chars[start..i.min(chars.len())].iter().collect();
                let s: String = serde_json::from_str(&raw)
                    .map_err(|_| FilterError(format!("bad string {raw}")))?;
                out.push(Token::Str(s));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '(' | ')' | '[' | ']' | '"')
                {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError(format!("nested deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn filter(&mut self) -> Result<Filter, FilterError> {
        self.enter()?;
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn group(&mut self) -> Result<Filter, FilterError> {
        match self.next() {
            Some(Token::Open) => {}
            _ => return Err(FilterError("expected '('".into())),
        }
        let inner = self.filter()?;
        match self.next() {
            Some(Token::Close) => Ok(inner),
            _ => Err(FilterError("expected ')'".into())),
        }
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.peek_word("not") {
            self.pos += 1;
            self.enter()?;
            let inner = self.group()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Token::Open) {
            return self.group();
        }
        let path = match self.next() {
            Some(Token::Word(w)) => parse_path(&w)?,
            Some(t) => return Err(FilterError(format!("expected an attribute, found {t:?}"))),
            None => return Err(FilterError("unexpected end".into())),
        };
        if self.peek() == Some(&Token::OpenBracket) {
            self.pos += 1;
            self.enter()?;
            let inner = self.filter()?;
            self.depth -= 1;
            if self.next() != Some(Token::CloseBracket) {
                return Err(FilterError("expected ']'".into()));
            }
            // Entra ID's `emails[type eq "work"].value eq "x"`: a sub-attribute of the
            // matching element, compared.
            let sub = match self.peek() {
                Some(Token::Word(w)) if w.starts_with('.') => Some(w[1..].to_string()),
                _ => None,
            };
            let Some(sub) = sub else {
                return Ok(Filter::ValuePath(path, Box::new(inner)));
            };
            self.pos += 1;
            let sub = parse_path(&sub)?;
            if sub.urn.is_some() || sub.sub.is_some() {
                return Err(FilterError("bad sub-attribute after ']'".into()));
            }
            let test = self.comparison(sub)?;
            return Ok(Filter::ValuePath(
                path,
                Box::new(Filter::And(Box::new(inner), Box::new(test))),
            ));
        }
        self.comparison(path)
    }

    /// `op value` or `pr` after an attribute path.
    fn comparison(&mut self, path: AttrPath) -> Result<Filter, FilterError> {
        let op = match self.next() {
            Some(Token::Word(w)) => w.to_ascii_lowercase(),
            _ => return Err(FilterError("expected an operator".into())),
        };
        let op = match op.as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            other => return Err(FilterError(format!("unknown operator {other:?}"))),
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Value::String(s),
            Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => serde_json::from_str::<serde_json::Number>(&w)
                    .map(Value::Number)
                    .map_err(|_| FilterError(format!("bad value {w:?}")))?,
            },
            _ => return Err(FilterError("expected a value".into())),
        };
        Ok(Filter::Compare(path, op, value))
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

/// Parses an attribute path (`userName`, `emails.value`,
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`).
pub fn parse_path(text: &str) -> Result<AttrPath, FilterError> {
    let (urn, rest) = if text
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        match text.rfind(':') {
            Some(i) => (Some(text[..i].to_string()), &text[i + 1..]),
            None => (None, text),
        }
    } else {
        (None, text)
    };
    let (name, sub) = match rest.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    if !valid_name(name) || sub.is_some_and(|s| !valid_name(s)) {
        return Err(FilterError(format!("bad attribute path {text:?}")));
    }
    Ok(AttrPath {
        urn,
        name: name.to_string(),
        sub: sub.map(str::to_string),
    })
}

/// Parses a filter. Never panics; refuses over-long or too deeply nested input.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(FilterError(format!("longer than {MAX_FILTER_LEN} bytes")));
    }
    let tokens = tokenize(input)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let f = p.filter()?;
    if p.pos < p.tokens.len() {
        return Err(FilterError("unexpected text after the filter".into()));
    }
    Ok(f)
}

/// The value of key `name` of `obj`, without regard to case.
pub fn get_ci<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The values `path` names in `resource` (a multi-valued attribute gives one per element).
pub fn values<'a>(resource: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let base = match &path.urn {
        Some(urn) => get_ci(resource, urn).unwrap_or(resource),
        None => resource,
    };
    let Some(v) = get_ci(base, &path.name) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    match &path.sub {
        None => items,
        Some(sub) => items.into_iter().filter_map(|i| get_ci(i, sub)).collect(),
    }
}

fn compare(actual: &Value, op: Op, expected: &Value) -> bool {
    // Multi-valued complex attributes without a sub-attribute compare their `value`.
    let actual = match actual {
        Value::Object(_) => match get_ci(actual, "value") {
            Some(v) => v,
            None => return false,
        },
        v => v,
    };
    match (actual, expected) {
        (Value::String(a), Value::String(e)) => {
            let (a, e) = (a.to_lowercase(), e.to_lowercase());
            match op {
                Op::Eq => a == e,
                Op::Ne => a != e,
                Op::Co => a.contains(&e),
                Op::Sw => a.starts_with(&e),
                Op::Ew => a.ends_with(&e),
                Op::Gt => a > e,
                Op::Ge => a >= e,
                Op::Lt => a < e,
                Op::Le => a <= e,
            }
        }
        (Value::Bool(a), Value::Bool(e)) => match op {
            Op::Eq => a == e,
            Op::Ne => a != e,
            _ => false,
        },
        (Value::Number(a), Value::Number(e)) => {
            let (Some(a), Some(e)) = (a.as_f64(), e.as_f64()) else {
                return false;
            };
            let ord = a.partial_cmp(&e);
            match op {
                Op::Eq => ord == Some(Ordering::Equal),
                Op::Ne => ord != Some(Ordering::Equal),
                Op::Gt => ord == Some(Ordering::Greater),
                Op::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                Op::Lt => ord == Some(Ordering::Less),
                Op::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                _ => false,
            }
        }
        (_, Value::Null) => matches!(op, Op::Ne),
        _ => matches!(op, Op::Ne),
    }
}

impl Filter {
    /// Whether `resource` (a SCIM JSON object) matches.
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::Or(a, b) => a.matches(resource) || b.matches(resource),
            Filter::And(a, b) => a.matches(resource) && b.matches(resource),
            Filter::Not(a) => !a.matches(resource),
            Filter::Present(p) => values(resource, p).iter().any(|v| match v {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            }),
            Filter::Compare(p, op, expected) => {
                let found = values(resource, p);
                if found.is_empty() {
                    // An absent attribute equals nothing and differs from everything.
                    return matches!(op, Op::Ne) && !expected.is_null()
                        || matches!(op, Op::Eq) && expected.is_null();
                }
                if matches!(op, Op::Ne) {
                    found.iter().all(|v| compare(v, *op, expected))
                } else {
                    found.iter().any(|v| compare(v, *op, expected))
                }
            }
            Filter::ValuePath(p, inner) => {
                let whole = AttrPath {
                    sub: None,
                    ..p.clone()
                };
                values(resource, &whole).iter().any(|v| inner.matches(v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "1", "userName": "Ann@Example.com", "externalId": "00u1", "displayName": "Ann E",
            "active": true,
            "emails": [{"value": "ann@example.com", "type": "work", "primary": true},
                       {"value": "ann@home.org", "type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
            "meta": {"lastModified": "2026-11-23T10:00:00Z"}
        })
    }

    fn ok(f: &str) -> bool {
        parse(f)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .matches(&user())
    }

    #[test]
    fn operators_and_grouping() {
        assert!(ok(r#"userName eq "ann@example.com""#));
        assert!(ok(r#"USERNAME Eq "ANN@EXAMPLE.COM""#));
        assert!(!ok(r#"userName ne "ann@example.com""#));
        assert!(ok(r#"displayName co "n e""#));
        assert!(ok(r#"userName sw "ann""#));
        assert!(ok(r#"userName ew ".com""#));
        assert!(ok("externalId pr"));
        assert!(!ok("title pr"));
        assert!(ok("active eq true"));
        assert!(!ok("active eq false"));
        assert!(ok(r#"emails.value eq "ann@home.org""#));
        assert!(ok(r#"emails[type eq "work" and value co "example"]"#));
        assert!(ok(r#"emails[type eq "work"].value eq "ANN@example.com""#));
        assert!(!ok(r#"emails[type eq "home"].value eq "ann@example.com""#));
        assert!(ok(r#"emails[type eq "home"].value pr and active eq true"#));
        assert!(!ok(r#"emails[type eq "other"]"#));
        assert!(ok(r#"meta.lastModified gt "2026-01-01T00:00:00Z""#));
        assert!(ok(r#"meta.lastModified le "2026-11-23T10:00:00Z""#));
        assert!(!ok(r#"meta.lastModified lt "2026-11-23T10:00:00Z""#));
        assert!(ok(r#"meta.lastModified ge "2026-11-23T10:00:00Z""#));
        assert!(ok(
            r#"not (userName eq "bob") and (active eq false or externalId eq "00u1")"#
        ));
        assert!(ok(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d""#
        ));
        assert!(ok(r#"title ne "x""#));
    }

    #[test]
    fn bad_filters_are_errors() {
        for f in [
            "",
            "userName",
            "userName eq",
            "userName zz \"a\"",
            "(userName eq \"a\"",
            "userName eq \"a",
            "userName eq \"a\" and",
            "userName eq \"a\" extra",
            "emails[type eq \"work\"",
            "emails[type eq \"work\"].value",
            "emails[type eq \"work\"].a.b eq \"x\"",
            "not userName eq \"a\"",
            "1abc eq \"a\"",
            "userName eq bareword",
        ] {
            assert!(parse(f).is_err(), "{f:?} parsed");
        }
        let deep = format!("{}userName pr{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err());
        let long = format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN));
        assert!(parse(&long).is_err());
    }

    fn attr() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("userName".to_string()),
            Just("emails.value".to_string()),
            Just("ACTIVE".to_string()),
            Just("externalId".to_string()),
            Just(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department".to_string()
            ),
            "[a-zA-Z.:\\[\\]$_-]{0,12}",
        ]
    }

    fn wellformedish() -> impl Strategy<Value = String> {
        let leaf = (
            attr(),
            prop_oneof![
                Just("eq"),
                Just("ne"),
                Just("co"),
                Just("sw"),
                Just("ew"),
                Just("gt"),
                Just("ge"),
                Just("lt"),
                Just("le"),
                Just("pr"),
                Just("EQ"),
                Just("xx"),
                Just("")
            ],
            prop_oneof![
                Just("\"ann\"".to_string()),
                Just("true".to_string()),
                Just("null".to_string()),
                Just("12.5e3".to_string()),
                Just("\"\\u00e9\\\"x\"".to_string()),
                Just("\"unterminated".to_string()),
                Just(String::new()),
            ],
        )
            .prop_map(|(a, op, v)| format!("{a} {op} {v}"));
        leaf.prop_recursive(6, 64, 4, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or {b}")),
                inner.clone().prop_map(|a| format!("not ({a})")),
                inner.clone().prop_map(|a| format!("emails[{a}]")),
                inner.clone().prop_map(|a| format!("(({a})")),
            ]
        })
    }

    proptest! {
        // The "fuzz the SCIM filter parser" of issue E, with a fixed case budget.
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            if let Ok(f) = parse(&s) {
                let _ = f.matches(&user());
            }
        }

        #[test]
        fn wellformedish_filters_never_panic(s in wellformedish()) {
            if let Ok(f) = parse(&s) {
                let _ = f.matches(&user());
            }
        }

        #[test]
        fn filter_like_bytes_never_panic(s in "[ ()\\[\\]\"a-zA-Z.:\\\\ ]{0,80}") {
            let _ = parse(&s).map(|f| f.matches(&user()));
        }
    }
}
