//! How the gate's refusal is answered: the queue page for a browser, the queue's JSON
//! answer (`429`, `Retry-After`, the caller's place) for a REST client or a mobile app.
//!
//! A client says it wants JSON by its `Accept` header (the HTTP layer reads that), or by
//! what it asks for: a path under one of the product's `api_prefixes` (`/rest/` for
//! Jira, Confluence and Bitbucket, whose REST APIs all live there). A script calling
//! `/rest/api/2/search` often sends `Accept: */*` and can do nothing with a redirect to
//! an HTML page, so its path decides. The list is empty by default (every refusal by
//! `Accept` alone, as before the setting existed); an administrator opts in per product.
//!
//! A path that could mean another page to the product (dot segments, encoded slashes,
//! `;` parameters: [`crate::bypass::plain_path`]) is never under a prefix, so
//! `/rest/../secure/Dashboard.jspa` keeps the browser's answer.

/// Most prefixes one product may list in `api_prefixes`.
pub const MAX_PREFIXES: usize = 20;

/// Whether the requested `uri` (path and maybe query, as the proxy passed it) lies under
/// one of `prefixes`: its plain path starts with one of them.
pub fn under_api_prefix(prefixes: &[String], uri: &str) -> bool {
    !prefixes.is_empty()
        && crate::bypass::plain_path(uri)
            .is_some_and(|path| prefixes.iter().any(|p| path.starts_with(p.as_str())))
}

/// Checks a product's `api_prefixes`: at most [`MAX_PREFIXES`], each a plain path
/// prefix starting with `/` (as bypass rules' `paths`), none repeated.
pub fn validate(prefixes: &[String], problems: &mut Vec<String>) {
    if prefixes.len() > MAX_PREFIXES {
        problems.push(format!(
            "api_prefixes lists at most {MAX_PREFIXES} prefixes"
        ));
    }
    for (i, p) in prefixes.iter().enumerate() {
        if p.len() > crate::bypass::MAX_PATH_LEN || crate::bypass::plain_path(p) != Some(p.as_str())
        {
            problems.push(format!(
                "api_prefixes[{i}]: '{p}' must be a plain path prefix starting with '/' such as /rest/ (no query, dot segments, encoded characters, ';' or '\\\\', at most {} bytes)",
                crate::bypass::MAX_PATH_LEN
            ));
        } else if prefixes[..i].contains(p) {
            problems.push(format!("api_prefixes[{i}]: '{p}' is listed twice"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn problems(prefixes: &[String]) -> Vec<String> {
        let mut p = Vec::new();
        validate(prefixes, &mut p);
        p
    }

    #[test]
    fn a_path_under_a_prefix_wants_json_and_nothing_else_does() {
        let rest = list(&["/rest/", "/api/v2/"]);
        assert!(under_api_prefix(&rest, "/rest/api/2/issue/ABC-1"));
        assert!(under_api_prefix(
            &rest,
            "/rest/api/2/search?jql=project%3DABC"
        ));
        assert!(under_api_prefix(&rest, "/api/v2/items"));
        assert!(!under_api_prefix(&rest, "/browse/ABC-1"));
        assert!(
            !under_api_prefix(&rest, "/restricted/page"),
            "a prefix, not a word"
        );
        assert!(!under_api_prefix(&rest, "/secure/Dashboard.jspa?x=/rest/"));
        assert!(!under_api_prefix(&rest, "/"));
        assert!(
            !under_api_prefix(&[], "/rest/api/2/myself"),
            "none by default"
        );
    }

    #[test]
    fn a_path_that_could_mean_another_page_is_never_under_a_prefix() {
        let rest = list(&["/rest/"]);
        for sneaky in [
            "/rest/../secure/Dashboard.jspa",
            "/rest/%2e%2e/secure/Dashboard.jspa",
            "/rest/;x=1/../browse/A-1",
            "//rest/api",
            "/rest\\..\\browse",
            "rest/api",
        ] {
            assert!(!under_api_prefix(&rest, sneaky), "{sneaky}");
        }
    }

    #[test]
    fn validation_names_each_bad_prefix() {
        assert!(problems(&list(&["/rest/", "/status"])).is_empty());
        assert!(problems(&[]).is_empty());
        let p = problems(&list(&["rest/", "/a/../b", "/x?y", "/rest/", "/rest/", ""]));
        for part in [
            "api_prefixes[0]: 'rest/'",
            "api_prefixes[1]: '/a/../b'",
            "api_prefixes[2]: '/x?y'",
            "api_prefixes[4]: '/rest/' is listed twice",
            "api_prefixes[5]: ''",
        ] {
            assert!(p.iter().any(|m| m.contains(part)), "{part} in {p:?}");
        }
        let many: Vec<String> = (0..=MAX_PREFIXES).map(|i| format!("/p{i}/")).collect();
        assert!(
            problems(&many).iter().any(|m| m.contains("at most")),
            "too many"
        );
    }
}
