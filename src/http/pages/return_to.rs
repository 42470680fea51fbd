//! `return_to`: where the queue page sends a user once the slot is granted. Only
//! addresses under the product's `base_url` (or, without one, paths on the same host) are
//! accepted, so the queue page can never be used as an open redirect.

use url::Url;

/// Why a `return_to` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnToError {
    /// Not an address at all, or not http(s).
    #[error("return_to is not an http(s) address or a path")]
    Malformed,
    /// An address outside the product.
    #[error("return_to must lie under the product's base_url ({0})")]
    Elsewhere(String),
    /// An absolute address for a product without `base_url`.
    #[error("this product has no queue_page.base_url; return_to must be a path starting with '/'")]
    NoBaseUrl,
}

/// Longest `return_to` accepted, in bytes.
pub const MAX_RETURN_TO: usize = 4096;

/// Checks `return_to` against the product's `base_url`. Returns the address to send the
/// user to (normalised), or why it is refused.
pub fn validate(return_to: &str, base_url: Option<&str>) -> Result<String, ReturnToError> {
    if return_to.len() > MAX_RETURN_TO || return_to.chars().any(|c| c.is_control()) {
        return Err(ReturnToError::Malformed);
    }
    // A relative path: the same host as the queue page (the front proxy's host).
    // `//host` and `/\host` are network paths to another host in browsers: refused.
    if return_to.starts_with('/') {
        let second = return_to.as_bytes().get(1).copied();
        if matches!(second, Some(b'/') | Some(b'\\')) {
            return Err(ReturnToError::Malformed);
        }
        let base = Url::parse("http://same-host.invalid/").map_err(|_| ReturnToError::Malformed)?;
        let joined = base.join(return_to).map_err(|_| ReturnToError::Malformed)?;
        if joined.host_str() != Some("same-host.invalid") {
            return Err(ReturnToError::Malformed);
        }
        return match base_url {
            // With a base_url, even a path must lie under the base path.
            Some(b) => check_under(&joined_on(b, return_to)?, b),
            None => Ok(joined[url::Position::BeforePath..].to_string()),
        };
    }
    let Some(base) = base_url else {
        return Err(ReturnToError::NoBaseUrl);
    };
    let url = Url::parse(return_to).map_err(|_| ReturnToError::Malformed)?;
    check_under(&url, base)
}

fn joined_on(base: &str, path: &str) -> Result<Url, ReturnToError> {
    Url::parse(base)
        .and_then(|b| b.join(path))
        .map_err(|_| ReturnToError::Malformed)
}

fn check_under(url: &Url, base: &str) -> Result<String, ReturnToError> {
    let base_parsed = Url::parse(base).map_err(|_| ReturnToError::Elsewhere(base.into()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ReturnToError::Malformed);
    }
    let same_origin = url.scheme() == base_parsed.scheme()
        && url.host_str() == base_parsed.host_str()
        && url.port_or_known_default() == base_parsed.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none();
    let base_path = base_parsed.path();
    let base_dir = if base_path.ends_with('/') {
        base_path.to_string()
    } else {
        format!("{base_path}/")
    };
    let under = url.path() == base_path.trim_end_matches('/') || url.path().starts_with(&base_dir);
    if same_origin && under {
        Ok(url.to_string())
    } else {
        Err(ReturnToError::Elsewhere(base.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Option<&str> = Some("https://jira.example.com/");

    #[test]
    fn addresses_under_the_base_url_pass() {
        assert_eq!(
            validate("https://jira.example.com/browse/X-1?a=b#c", BASE).unwrap(),
            "https://jira.example.com/browse/X-1?a=b#c"
        );
        assert_eq!(
            validate("/browse/X-1", BASE).unwrap(),
            "https://jira.example.com/browse/X-1"
        );
        assert_eq!(validate("/browse/X-1", None).unwrap(), "/browse/X-1");
        let sub = Some("https://example.com/jira");
        assert!(validate("https://example.com/jira/browse", sub).is_ok());
        assert!(validate("https://example.com/jira", sub).is_ok());
        assert!(validate("https://example.com/jiraevil", sub).is_err());
        assert!(validate("https://example.com/other", sub).is_err());
    }

    #[test]
    fn open_redirects_are_refused() {
        for bad in [
            "https://evil.example/",
            "https://jira.example.com.evil.example/",
            "https://jira.example.com@evil.example/",
            "https://user@jira.example.com/",
            "http://jira.example.com/",
            "https://jira.example.com:8443/",
            "//evil.example/",
            "/\\evil.example/",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "https://jira.example.com/\nLocation: https://evil.example/",
        ] {
            assert!(validate(bad, BASE).is_err(), "{bad:?} passed");
        }
        assert_eq!(
            validate("https://jira.example.com/", None),
            Err(ReturnToError::NoBaseUrl)
        );
        assert!(validate("//evil.example/", None).is_err());
        assert!(validate("/\\evil.example", None).is_err());
    }
}
