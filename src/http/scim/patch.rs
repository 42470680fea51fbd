//! SCIM PATCH (RFC 7644 §3.5.2) over a resource's SCIM JSON: `add`, `remove` and
//! `replace`, with and without `path`, in the forms Okta and Entra ID send
//! (capitalised op names, `{"op":"replace","value":{"active":false}}`,
//! `members[value eq "id"]`, member removal by a `value` list).
//!
//! The patched JSON is then read back exactly as a PUT body is, so PATCH and PUT share
//! every validation.

use super::filter::{self, get_ci, AttrPath, Filter};
use serde_json::{Map, Value};

/// Why a PATCH could not be applied, with its SCIM `scimType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    /// `invalidSyntax`, `invalidPath`, `noTarget`, `invalidValue` or `invalidFilter`.
    pub scim_type: &'static str,
    /// For the client.
    pub detail: String,
}

fn err(scim_type: &'static str, detail: impl Into<String>) -> PatchError {
    PatchError {
        scim_type,
        detail: detail.into(),
    }
}

/// A parsed `path`: attribute, optional value filter, optional sub-attribute.
struct Target {
    attr: AttrPath,
    filter: Option<Filter>,
    sub: Option<String>,
}

/// The schema extensions a resource may carry: a path naming one of them exactly names
/// the whole extension object (`remove` it, `add`/`replace` some of its attributes).
const EXTENSIONS: [&str; 2] = [super::users::ENTERPRISE, super::users::SLOTPOOL];

fn parse_target(path: &str) -> Result<Target, PatchError> {
    let path = path.trim();
    if let Some(ext) = EXTENSIONS.iter().find(|e| e.eq_ignore_ascii_case(path)) {
        return Ok(Target {
            attr: AttrPath {
                urn: None,
                name: (*ext).to_string(),
                sub: None,
            },
            filter: None,
            sub: None,
        });
    }
    if let Some(open) = path.find('[') {
        let close = path
            .rfind(']')
            .filter(|c| *c > open)
            .ok_or_else(|| err("invalidPath", format!("bad path {path:?}")))?;
        let attr = filter::parse_path(&path[..open]).map_err(|e| err("invalidPath", e.0))?;
        let inner = filter::parse(&path[open + 1..close]).map_err(|e| err("invalidFilter", e.0))?;
        let rest = &path[close + 1..];
        let sub = match rest.strip_prefix('.') {
            Some(s) if !s.is_empty() => Some(s.to_string()),
            None if rest.is_empty() => None,
            _ => return Err(err("invalidPath", format!("bad path {path:?}"))),
        };
        return Ok(Target {
            attr,
            filter: Some(inner),
            sub,
        });
    }
    let mut attr = filter::parse_path(path).map_err(|e| err("invalidPath", e.0))?;
    let sub = attr.sub.take();
    Ok(Target {
        attr,
        filter: None,
        sub,
    })
}

/// The object holding `attr` (the resource, or its extension object), created if needed.
fn container<'a>(
    resource: &'a mut Value,
    attr: &AttrPath,
) -> Result<&'a mut Map<String, Value>, PatchError> {
    let root = resource
        .as_object_mut()
        .ok_or_else(|| err("invalidSyntax", "resource is not an object"))?;
    let Some(urn) = &attr.urn else {
        return Ok(root);
    };
    let key = root
        .keys()
        .find(|k| k.eq_ignore_ascii_case(urn))
        .cloned()
        .unwrap_or_else(|| urn.clone());
    let ext = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !ext.is_object() {
        *ext = Value::Object(Map::new());
    }
    ext.as_object_mut()
        .ok_or_else(|| err("invalidSyntax", "extension is not an object"))
}

/// The existing key matching `name` without regard to case, or `name`.
fn key_of(map: &Map<String, Value>, name: &str) -> String {
    map.keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

/// Whether two multi-valued elements are the same (by `value` when both have one).
fn same_element(a: &Value, b: &Value) -> bool {
    match (get_ci(a, "value"), get_ci(b, "value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Sets the members of `new` in `old`; an object set over an object is merged the same
/// way (an extension's complex attribute keeps what the value does not name).
fn merge(old: &mut Map<String, Value>, new: &Map<String, Value>) {
    for (k, v) in new {
        let k = key_of(old, k);
        match (old.get_mut(&k), v) {
            (Some(Value::Object(o)), Value::Object(n)) => merge(o, n),
            _ => {
                old.insert(k, v.clone());
            }
        }
    }
}

fn add_values(slot: &mut Value, value: Value) {
    let incoming = match value {
        Value::Array(a) => a,
        v => vec![v],
    };
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    if let Value::Array(items) = slot {
        for v in incoming {
            if !items.iter().any(|i| same_element(i, &v)) {
                items.push(v);
            }
        }
    }
}

/// Sets attribute `key` of `map` to `value`: added to what a multi-valued attribute holds
/// (when `add`), merged into a complex attribute or a whole extension (the sub-attributes
/// given are set, the others kept: RFC 7644 §3.5.2.1 and §3.5.2.3), else replaced.
fn set_value(map: &mut Map<String, Value>, key: String, value: Value, add: bool) {
    if add && (map.get(&key).is_some_and(Value::is_array) || value.is_array()) {
        add_values(map.entry(key).or_insert(Value::Null), value);
    } else if let (Some(Value::Object(old)), Value::Object(new)) = (map.get_mut(&key), &value) {
        merge(old, new);
    } else {
        map.insert(key, value);
    }
}

/// Sets sub-attribute `sub` of the complex attribute `key` of `map` to `value` (the
/// attribute becomes an object if it is not one).
fn set_sub_value(map: &mut Map<String, Value>, key: String, sub: &str, value: Value) {
    let obj = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    if let Value::Object(o) = obj {
        let k = key_of(o, sub);
        o.insert(k, value);
    }
}

/// Sets `name` (maybe dotted `a.b`, maybe URN-prefixed) in `resource` for a path-less op.
fn set_attribute(
    resource: &mut Value,
    name: &str,
    value: Value,
    add: bool,
) -> Result<(), PatchError> {
    let t = parse_target(name)?;
    let map = container(resource, &t.attr)?;
    let key = key_of(map, &t.attr.name);
    match t.sub {
        Some(sub) => set_sub_value(map, key, &sub, value),
        None => set_value(map, key, value, add),
    }
    Ok(())
}

/// Applies one operation.
fn apply_op(
    resource: &mut Value,
    op: &str,
    path: Option<&str>,
    value: Option<Value>,
) -> Result<(), PatchError> {
    let op = op.to_ascii_lowercase();
    if !matches!(op.as_str(), "add" | "remove" | "replace") {
        return Err(err("invalidSyntax", format!("unknown op {op:?}")));
    }
    let Some(path) = path.filter(|p| !p.trim().is_empty()) else {
        if op == "remove" {
            return Err(err("noTarget", "remove needs a path"));
        }
        let Some(Value::Object(fields)) = value else {
            return Err(err(
                "invalidValue",
                "an op without a path takes an object value",
            ));
        };
        for (name, v) in fields {
            set_attribute(resource, &name, v, op == "add")?;
        }
        return Ok(());
    };
    let t = parse_target(path)?;
    let map = container(resource, &t.attr)?;
    let key = key_of(map, &t.attr.name);
    match (op.as_str(), &t.filter, &t.sub) {
        ("remove", None, None) => {
            match (value, map.get_mut(&key)) {
                // Entra: {"op":"Remove","path":"members","value":[{"value":"id"}]}.
                (Some(v), Some(Value::Array(items))) => {
                    let gone = match v {
                        Value::Array(a) => a,
                        v => vec![v],
                    };
                    items.retain(|i| !gone.iter().any(|g| same_element(i, g)));
                }
                // A removed `active` is unassigned: not active (RFC 7643 §4.1.1 gives it no
                // default, and a licence service fails closed).
                _ if t.attr.urn.is_none() && key.eq_ignore_ascii_case("active") => {
                    map.insert(key, Value::Bool(false));
                }
                _ => {
                    map.remove(&key);
                }
            }
        }
        ("remove", None, Some(sub)) => {
            if let Some(Value::Object(o)) = map.get_mut(&key) {
                let k = key_of(o, sub);
                o.remove(&k);
            }
        }
        ("remove", Some(f), sub) => {
            if let Some(Value::Array(items)) = map.get_mut(&key) {
                match sub {
                    None => items.retain(|i| !f.matches(i)),
                    Some(sub) => {
                        for i in items.iter_mut().filter(|i| f.matches(i)) {
                            if let Value::Object(o) = i {
                                let k = key_of(o, sub);
                                o.remove(&k);
                            }
                        }
                    }
                }
            }
        }
        (_, None, None) => {
            let value = value.ok_or_else(|| err("invalidValue", format!("{op} needs a value")))?;
            set_value(map, key, value, op == "add");
        }
        (_, None, Some(sub)) => {
            let value = value.ok_or_else(|| err("invalidValue", format!("{op} needs a value")))?;
            set_sub_value(map, key, sub, value);
        }
        (_, Some(f), sub) => {
            let value = value.ok_or_else(|| err("invalidValue", format!("{op} needs a value")))?;
            let slot = map.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else {
                return Err(err("noTarget", format!("{path:?} matches nothing")));
            };
            // Entra ID sets `emails[type eq "work"].value` on a user with no work address:
            // an element with that `type` is created.
            if !items.iter().any(|i| f.matches(i)) {
                if let Filter::Compare(by, filter::Op::Eq, Value::String(v)) = f {
                    let mut element = Map::new();
                    element.insert(by.name.clone(), Value::String(v.clone()));
                    match (sub, &value) {
                        (Some(sub), _) => {
                            element.insert(sub.clone(), value.clone());
                        }
                        (None, Value::Object(fields)) => element.extend(fields.clone()),
                        (None, _) => {}
                    }
                    items.push(Value::Object(element));
                    return Ok(());
                }
            }
            let mut hit = false;
            for i in items.iter_mut().filter(|i| f.matches(i)) {
                hit = true;
                match (sub, i) {
                    (Some(sub), Value::Object(o)) => {
                        let k = key_of(o, sub);
                        o.insert(k, value.clone());
                    }
                    (None, Value::Object(o)) => {
                        if let Value::Object(new) = &value {
                            for (k, v) in new {
                                let k = key_of(o, k);
                                o.insert(k, v.clone());
                            }
                        }
                    }
                    (_, other) => *other = value.clone(),
                }
            }
            if !hit {
                return Err(err("noTarget", format!("{path:?} matches nothing")));
            }
        }
    }
    Ok(())
}

/// Applies a PATCH request body to `resource`.
pub fn apply(resource: &mut Value, body: &Value) -> Result<(), PatchError> {
    let ops = get_ci(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| err("invalidSyntax", "a PATCH body has an 'Operations' list"))?;
    if ops.is_empty() {
        return Err(err("invalidSyntax", "'Operations' is empty"));
    }
    for op in ops {
        let name = get_ci(op, "op")
            .and_then(Value::as_str)
            .ok_or_else(|| err("invalidSyntax", "every operation has an 'op'"))?;
        let path = match get_ci(op, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p.as_str()),
            Some(_) => return Err(err("invalidPath", "'path' is a string")),
        };
        apply_op(resource, name, path, get_ci(op, "value").cloned())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(mut r: Value, ops: Value) -> Value {
        apply(&mut r, &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})).expect("applies");
        r
    }

    #[test]
    fn okta_and_entra_forms() {
        let user = json!({"userName": "ann", "active": true, "name": {"givenName": "A"}});
        let r = patch(
            user.clone(),
            json!([{"op": "replace", "value": {"active": false}}]),
        );
        assert_eq!(r["active"], json!(false));
        let r = patch(
            user.clone(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        );
        assert_eq!(r["active"], json!("False"));
        let r = patch(
            user.clone(),
            json!([{"op": "Add", "path": "name.familyName", "value": "E"}]),
        );
        assert_eq!(r["name"], json!({"givenName": "A", "familyName": "E"}));
        let r = patch(
            user.clone(),
            json!([{"op": "replace", "value": {"name.givenName": "B", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D"}}]),
        );
        assert_eq!(r["name"]["givenName"], json!("B"));
        assert_eq!(
            r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            json!("R&D")
        );
        let r = patch(
            user,
            json!([
                {"op": "add", "path": "emails", "value": [{"value": "a@b", "type": "work"}]},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x@y"}
            ]),
        );
        assert_eq!(r["emails"], json!([{"value": "x@y", "type": "work"}]));
        let r = patch(
            json!({"userName": "dee"}),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "d@c"}]),
        );
        assert_eq!(r["emails"], json!([{"type": "work", "value": "d@c"}]));

        let group = json!({"displayName": "g", "members": [{"value": "1"}, {"value": "2"}]});
        let r = patch(
            group.clone(),
            json!([{"op": "remove", "path": "members[value eq \"1\"]"}]),
        );
        assert_eq!(r["members"], json!([{"value": "2"}]));
        let r = patch(
            group.clone(),
            json!([{"op": "Remove", "path": "members", "value": [{"value": "2"}]}]),
        );
        assert_eq!(r["members"], json!([{"value": "1"}]));
        let r = patch(
            group.clone(),
            json!([{"op": "add", "path": "members", "value": [{"value": "2"}, {"value": "3"}]}]),
        );
        assert_eq!(
            r["members"],
            json!([{"value": "1"}, {"value": "2"}, {"value": "3"}])
        );
        let r = patch(
            group.clone(),
            json!([{"op": "replace", "path": "members", "value": [{"value": "9"}]}]),
        );
        assert_eq!(r["members"], json!([{"value": "9"}]));
        let r = patch(
            group,
            json!([{"op": "replace", "value": {"id": "g", "displayName": "h"}}]),
        );
        assert_eq!(r["displayName"], json!("h"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 1000, ..Default::default() })]

        /// Any path, op and value: an answer, never a panic.
        #[test]
        fn arbitrary_patches_never_panic(
            op in "(?i)(add|remove|replace|[a-z]{0,6})",
            path in proptest::option::of("[a-zA-Z.:\\[\\] \"]{0,30}"),
            value in proptest::option::of(proptest::prop_oneof![
                proptest::strategy::Just(json!(true)),
                proptest::strategy::Just(json!("x")),
                proptest::strategy::Just(json!([{"value": "1"}])),
                proptest::strategy::Just(json!({"active": "False", "name.givenName": "a"})),
            ]),
        ) {
            let mut r = json!({"userName": "ann", "emails": [{"value": "a@b", "type": "work"}], "members": [{"value": "1"}]});
            let mut o = json!({"op": op});
            if let Some(p) = path { o["path"] = json!(p); }
            if let Some(v) = value { o["value"] = v; }
            let _ = apply(&mut r, &json!({"Operations": [o]}));
        }
    }

    #[test]
    fn bad_patches_are_errors() {
        let mut r = json!({"userName": "ann"});
        for body in [
            json!({}),
            json!({"Operations": []}),
            json!({"Operations": [{"op": "move", "path": "a", "value": 1}]}),
            json!({"Operations": [{"op": "remove"}]}),
            json!({"Operations": [{"op": "replace", "value": 3}]}),
            json!({"Operations": [{"op": "add", "path": "emails[type eq", "value": 3}]}),
            json!({"Operations": [{"op": "replace", "path": "emails[type co \"x\"].value", "value": 3}]}),
            json!({"Operations": [{"op": "add", "path": "userName"}]}),
        ] {
            assert!(apply(&mut r, &body).is_err(), "{body}");
        }
    }
}
