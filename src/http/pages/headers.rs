//! Security headers on every response: a Content-Security-Policy that allows no inline
//! script or style (every script and style sheet is a file slotpool serves), no framing,
//! no referrer leaks and no MIME sniffing.

use actix_web::middleware::DefaultHeaders;

/// The Content-Security-Policy of every response. Images may also come from an https
/// address (an administrator's `logo_url`); everything else only from slotpool itself.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The middleware that adds them.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
}
