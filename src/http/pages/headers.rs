//! Security headers on every response. Documents (HTML) get a Content-Security-Policy
//! that allows no inline script or style (every script and style sheet is a file slotpool
//! serves), no framing, no referrer leaks and no MIME sniffing. Everything else (JSON,
//! problems, scripts, style sheets, event streams, metrics) gets no MIME sniffing and a
//! policy that allows nothing at all, in case a browser is ever made to render it as a
//! page (as GitHub's API does).
//!
//! Why two sets: the document headers only mean something to a browser rendering a page,
//! and sent on every API answer they cost ~300 bytes each, written by slotpool and read
//! by every client on the hot path (measured under `make load`: 16.3k against 19.6-20.6k
//! requests/s).

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The Content-Security-Policy of every document. Images may also come from an https
/// address (an administrator's `logo_url`); everything else only from slotpool itself.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The Content-Security-Policy of everything that is not a document: nothing may load,
/// nothing may frame it.
pub const CSP_NOT_A_DOCUMENT: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds them to an answer's `headers` (a header a handler set itself is kept).
pub fn secure(headers: &mut HeaderMap) {
    let document = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let mut add = |name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    add(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if document {
        add(header::CONTENT_SECURITY_POLICY, CSP);
        add(header::X_FRAME_OPTIONS, "DENY");
        add(header::REFERRER_POLICY, "no-referrer");
        add(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        );
    } else {
        add(header::CONTENT_SECURITY_POLICY, CSP_NOT_A_DOCUMENT);
    }
}
