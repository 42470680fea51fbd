//! What a SCIM list or search asks for (RFC 7644 §3.4.2 and §3.4.3): `filter`,
//! `sortBy`/`sortOrder`, `startIndex`/`count`, `attributes`/`excludedAttributes`, read
//! from a GET's query string or from the body of a `POST .search`, and the list response
//! they make of a set of rendered resources.
//!
//! Pagination follows §3.4.2.4: a `startIndex` below 1 is 1, a negative `count` is 0, a
//! `count` above [`MAX_COUNT`] is [`MAX_COUNT`], and a page past the end is empty (with
//! the true `totalResults`). Sorting follows §3.4.2.3: by the first (or `primary`) value
//! of the attribute, strings without regard to case, missing values last in either order.

use super::filter::{self, get_ci, AttrPath, Filter};
use super::{param, scim_ok, ScimError, LIST, MAX_COUNT};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

/// Schema of a `POST .search` body.
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// `count` when the client gives none.
pub const DEFAULT_COUNT: usize = 100;

/// A parsed list or search request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Only resources matching this, if given.
    pub filter: Option<Filter>,
    /// 1-based index of the first resource of the page.
    pub start: usize,
    /// Most resources on the page.
    pub count: usize,
    /// Only these attributes (and the ones always returned), if any.
    pub attributes: Vec<AttrPath>,
    /// Not these attributes.
    pub excluded: Vec<AttrPath>,
    /// Sorted by this attribute, if given.
    pub sort_by: Option<AttrPath>,
    /// `sortOrder=descending`.
    pub descending: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: None,
            start: 1,
            count: DEFAULT_COUNT,
            attributes: Vec::new(),
            excluded: Vec::new(),
            sort_by: None,
            descending: false,
        }
    }
}

fn parse_filter(text: &str) -> Result<Filter, ScimError> {
    filter::parse(text).map_err(|e| ScimError::bad("invalidFilter", e.to_string()))
}

fn parse_paths(what: &str, names: &[&str]) -> Result<Vec<AttrPath>, ScimError> {
    names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .map(|n| {
            filter::parse_path(n)
                .map_err(|_| ScimError::bad("invalidValue", format!("{what}: bad attribute {n:?}")))
        })
        .collect()
}

fn sort_order(text: &str) -> Result<bool, ScimError> {
    if text.eq_ignore_ascii_case("ascending") {
        Ok(false)
    } else if text.eq_ignore_ascii_case("descending") {
        Ok(true)
    } else {
        Err(ScimError::bad(
            "invalidValue",
            "sortOrder is \"ascending\" or \"descending\"",
        ))
    }
}

/// §3.4.2.4: below 1 is 1 (`startIndex`), negative is 0 (`count`), at most [`MAX_COUNT`].
fn paging(start: Option<i64>, count: Option<i64>) -> (usize, usize) {
    let start = start.unwrap_or(1).clamp(1, i64::from(u32::MAX)) as usize;
    let count = count
        .map_or(DEFAULT_COUNT as i64, |c| c.clamp(0, MAX_COUNT as i64))
        .clamp(0, MAX_COUNT as i64) as usize;
    (start, count)
}

fn int_param(req: &HttpRequest, name: &str) -> Result<Option<i64>, ScimError> {
    param(req, name)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ScimError::bad("invalidValue", format!("{name} must be an integer")))
        })
        .transpose()
}

impl ListQuery {
    /// The query of a GET: its query string.
    pub fn from_request(req: &HttpRequest) -> Result<ListQuery, ScimError> {
        let filter = param(req, "filter").map(|f| parse_filter(&f)).transpose()?;
        let (start, count) = paging(int_param(req, "startIndex")?, int_param(req, "count")?);
        let list = |name: &str| -> Result<Vec<AttrPath>, ScimError> {
            let text = param(req, name).unwrap_or_default();
            parse_paths(name, &text.split(',').collect::<Vec<_>>())
        };
        let sort_by = match param(req, "sortBy") {
            Some(s) if !s.trim().is_empty() => parse_paths("sortBy", &[&s])?.pop(),
            _ => None,
        };
        let descending = param(req, "sortOrder")
            .map(|o| sort_order(&o))
            .transpose()?
            .unwrap_or(false);
        Ok(ListQuery {
            filter,
            start,
            count,
            attributes: list("attributes")?,
            excluded: list("excludedAttributes")?,
            sort_by,
            descending,
        })
    }

    /// The query of a `POST .search` (§3.4.3): a `SearchRequest` body, its attribute lists
    /// as JSON arrays (or comma-separated strings), its numbers as JSON numbers.
    pub fn from_search(body: &Value) -> Result<ListQuery, ScimError> {
        if let Some(schemas) = get_ci(body, "schemas") {
            let named = schemas.as_array().is_some_and(|s| {
                s.iter().any(|x| {
                    x.as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(SEARCH_REQUEST))
                })
            });
            if !named {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    format!("a search request's schemas are [\"{SEARCH_REQUEST}\"]"),
                ));
            }
        }
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match get_ci(body, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::bad(
                    "invalidValue",
                    format!("{name} must be a string"),
                )),
            }
        };
        let int = |name: &str| -> Result<Option<i64>, ScimError> {
            match get_ci(body, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                    ScimError::bad("invalidValue", format!("{name} must be an integer"))
                }),
                Some(_) => Err(ScimError::bad(
                    "invalidValue",
                    format!("{name} must be an integer"),
                )),
            }
        };
        let list = |name: &str| -> Result<Vec<AttrPath>, ScimError> {
            match get_ci(body, name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => parse_paths(name, &s.split(',').collect::<Vec<_>>()),
                Some(Value::Array(items)) => {
                    let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                    let names = names.ok_or_else(|| {
                        ScimError::bad("invalidValue", format!("{name} is a list of strings"))
                    })?;
                    parse_paths(name, &names)
                }
                Some(_) => Err(ScimError::bad(
                    "invalidValue",
                    format!("{name} is a list of strings"),
                )),
            }
        };
        let (start, count) = paging(int("startIndex")?, int("count")?);
        let sort_by = match text("sortBy")? {
            Some(s) if !s.trim().is_empty() => parse_paths("sortBy", &[&s])?.pop(),
            _ => None,
        };
        Ok(ListQuery {
            filter: text("filter")?.map(|f| parse_filter(&f)).transpose()?,
            start,
            count,
            attributes: list("attributes")?,
            excluded: list("excludedAttributes")?,
            sort_by,
            descending: text("sortOrder")?
                .map(|o| sort_order(&o))
                .transpose()?
                .unwrap_or(false),
        })
    }

    /// The list response over `resources` (already rendered): filtered, sorted, paged and
    /// projected.
    pub fn respond(&self, resources: Vec<Value>) -> HttpResponse {
        let mut matching: Vec<Value> = resources
            .into_iter()
            .filter(|r| self.filter.as_ref().is_none_or(|f| f.matches(r)))
            .collect();
        if let Some(by) = &self.sort_by {
            matching.sort_by(|a, b| {
                let (ka, kb) = (sort_key(a, by), sort_key(b, by));
                match (ka, kb) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Greater,
                    (Some(_), None) => Ordering::Less,
                    (Some(x), Some(y)) if self.descending => compare_keys(y, x),
                    (Some(x), Some(y)) => compare_keys(x, y),
                }
            });
        }
        let total = matching.len();
        let shown: Vec<Value> = matching
            .into_iter()
            .skip(self.start - 1)
            .take(self.count)
            .map(|r| self.project(r))
            .collect();
        scim_ok(
            StatusCode::OK,
            &json!({
                "schemas": [LIST],
                "totalResults": total,
                "startIndex": self.start,
                "itemsPerPage": shown.len(),
                "Resources": shown,
            }),
        )
    }

    /// Applies `attributes` / `excludedAttributes` to a rendered resource (§3.4.2.5).
    /// `id` and `schemas` are always returned.
    pub fn project(&self, resource: Value) -> Value {
        let Value::Object(map) = resource else {
            return resource;
        };
        let always = |k: &str| k == "id" || k == "schemas";
        // `name` names top-level key `k`, or (URN-qualified) an attribute of extension `k`.
        let top = |k: &str, p: &AttrPath| match &p.urn {
            Some(u) => k.eq_ignore_ascii_case(u),
            None => k.eq_ignore_ascii_case(&p.name),
        };
        let mut out = Map::new();
        for (k, v) in map {
            if always(&k) {
                out.insert(k, v);
                continue;
            }
            if !self.attributes.is_empty() {
                let wanted: Vec<&AttrPath> =
                    self.attributes.iter().filter(|p| top(&k, p)).collect();
                if wanted.is_empty() {
                    continue;
                }
                let inner = inner_names(&wanted);
                if wanted.iter().any(|p| names_whole(p)) || inner.is_empty() {
                    out.insert(k, v);
                } else {
                    out.insert(k, filter_subs(v, &inner, true));
                }
                continue;
            }
            let excluded: Vec<&AttrPath> = self.excluded.iter().filter(|p| top(&k, p)).collect();
            if excluded.iter().any(|p| names_whole(p)) {
                continue;
            }
            let inner = inner_names(&excluded);
            if inner.is_empty() {
                out.insert(k, v);
            } else {
                out.insert(k, filter_subs(v, &inner, false));
            }
        }
        Value::Object(out)
    }
}

/// Whether `p` names a whole top-level attribute (no sub-attribute, no extension).
fn names_whole(p: &AttrPath) -> bool {
    p.urn.is_none() && p.sub.is_none()
}

/// The inner names `paths` name: sub-attributes, or an extension's attributes.
fn inner_names<'a>(paths: &[&'a AttrPath]) -> Vec<&'a str> {
    paths
        .iter()
        .filter_map(|p| match &p.urn {
            Some(_) => Some(p.name.as_str()),
            None => p.sub.as_deref(),
        })
        .collect()
}

/// `v` (an object, or a list of them) with only the sub-attributes `subs` when `keep`,
/// or without them otherwise (`attributes` and `excludedAttributes`).
fn filter_subs(v: Value, subs: &[&str], keep: bool) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| subs.iter().any(|s| k.eq_ignore_ascii_case(s)) == keep)
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| filter_subs(i, subs, keep))
                .collect(),
        ),
        other => other,
    }
}

/// What a resource sorts by: the `primary` value of a multi-valued attribute, else its
/// first; `None` when it has none.
fn sort_key(resource: &Value, by: &AttrPath) -> Option<Value> {
    let whole = AttrPath {
        sub: None,
        ..by.clone()
    };
    let items = filter::values(resource, &whole);
    let item = items
        .iter()
        .find(|i| get_ci(i, "primary") == Some(&Value::Bool(true)))
        .or_else(|| items.first())?;
    let v = match &by.sub {
        Some(sub) => get_ci(item, sub)?,
        None => match item {
            Value::Object(_) => get_ci(item, "value")?,
            v => v,
        },
    };
    (!v.is_null()).then(|| v.clone())
}

fn compare_keys(a: Value, b: Value) -> Ordering {
    match (&a, &b) {
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_edge_cases_follow_the_rfc() {
        assert_eq!(paging(None, None), (1, DEFAULT_COUNT));
        assert_eq!(paging(Some(0), Some(-5)), (1, 0));
        assert_eq!(paging(Some(-3), Some(0)), (1, 0));
        assert_eq!(paging(Some(7), Some(1_000_000)), (7, MAX_COUNT));
    }

    #[test]
    fn search_bodies_are_read_and_bad_ones_refused() {
        let q = ListQuery::from_search(&json!({
            "schemas": [SEARCH_REQUEST], "attributes": ["userName", "name.givenName"],
            "filter": "userName sw \"a\"", "startIndex": 2, "count": 3,
            "sortBy": "userName", "sortOrder": "descending"
        }))
        .expect("a search");
        assert_eq!((q.start, q.count, q.descending), (2, 3, true));
        assert_eq!(q.attributes.len(), 2);
        assert!(q.filter.is_some() && q.sort_by.is_some());
        for (bad, scim_type) in [
            (json!({"schemas": ["x"]}), "invalidSyntax"),
            (json!({"filter": "((("}), "invalidFilter"),
            (json!({"count": "x"}), "invalidValue"),
            (json!({"sortOrder": "up"}), "invalidValue"),
            (json!({"attributes": [1]}), "invalidValue"),
        ] {
            let e = ListQuery::from_search(&bad).expect_err("refused");
            assert_eq!(e.scim_type, Some(scim_type), "{bad}");
        }
    }

    #[test]
    fn sorting_puts_missing_values_last_in_either_order() {
        let rs = vec![
            json!({"id": "1", "userName": "b"}),
            json!({"id": "2"}),
            json!({"id": "3", "userName": "A"}),
        ];
        let ids = |q: &ListQuery| -> Vec<String> {
            let mut rs = rs.clone();
            let by = q.sort_by.clone().expect("sortBy");
            rs.sort_by(|a, b| match (sort_key(a, &by), sort_key(b, &by)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(x), Some(y)) if q.descending => compare_keys(y, x),
                (Some(x), Some(y)) => compare_keys(x, y),
            });
            rs.iter()
                .filter_map(|r| r["id"].as_str().map(String::from))
                .collect()
        };
        let mut q = ListQuery {
            sort_by: filter::parse_path("userName").ok(),
            ..ListQuery::default()
        };
        assert_eq!(ids(&q), ["3", "1", "2"]);
        q.descending = true;
        assert_eq!(ids(&q), ["1", "3", "2"]);
    }

    #[test]
    fn projection_keeps_and_drops_sub_attributes_and_extension_attributes() {
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let r = json!({"id": "1", "schemas": [], "userName": "a",
            "name": {"givenName": "A", "familyName": "B"},
            ext: {"department": "R", "costCenter": "C"}});
        let q = ListQuery {
            attributes: parse_paths("a", &["name.givenName", &format!("{ext}:department")])
                .expect("paths"),
            ..ListQuery::default()
        };
        assert_eq!(
            q.project(r.clone()),
            json!({"id": "1", "schemas": [], "name": {"givenName": "A"}, ext: {"department": "R"}})
        );
        let q = ListQuery {
            excluded: parse_paths("e", &["name.familyName", &format!("{ext}:costCenter")])
                .expect("paths"),
            ..ListQuery::default()
        };
        assert_eq!(
            q.project(r),
            json!({"id": "1", "schemas": [], "userName": "a", "name": {"givenName": "A"}, ext: {"department": "R"}})
        );
    }
}
