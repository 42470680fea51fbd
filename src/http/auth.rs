//! Who is calling: the admin (bearer token) or a user (trusted proxy header).

use super::AppState;
use crate::problem::Problem;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use ipnet::IpNet;

/// Header naming the calling user, set by a trusted front proxy.
pub const USER_HEADER: &str = "X-Slotpool-User";

/// Proof that the request carries the admin token.
pub struct Admin;

/// Implements [`FromRequest`] for `$extractor` by the synchronous check `$check`
/// (`fn(&HttpRequest) -> Result<$extractor, Problem>`): every extractor of the HTTP
/// surface is one such check, refused as a problem.
macro_rules! sync_extractor {
    ($extractor:ty, $check:path) => {
        impl actix_web::FromRequest for $extractor {
            type Error = $crate::problem::Problem;
            type Future = std::future::Ready<Result<$extractor, $crate::problem::Problem>>;

            fn from_request(
                req: &actix_web::HttpRequest,
                _: &mut actix_web::dev::Payload,
            ) -> Self::Future {
                std::future::ready($check(req))
            }
        }
    };
}
pub(crate) use sync_extractor;

sync_extractor!(Admin, check_admin);

/// Checks that the request carries the admin token (or a dashboard session, with its
/// CSRF token for anything but a read).
pub(crate) fn check_admin(req: &HttpRequest) -> Result<Admin, Problem> {
    let state = app_state(req)?;
    // The dashboard calls the admin API with its session cookie instead of the token;
    // anything but a read must then carry the session's CSRF token in a header.
    if bearer(req).is_none() {
        if let Some(session) = super::dashboard::session::Session::of(req) {
            if req.method() != actix_web::http::Method::GET {
                let token = req
                    .headers()
                    .get(super::dashboard::session::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok());
                session.check_csrf(token)?;
            }
            return Ok(Admin);
        }
    }
    let token = bearer(req).ok_or_else(Problem::missing_token)?;
    if state.admin_token.matches(token) {
        Ok(Admin)
    } else {
        Err(Problem::bad_token())
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The calling user, taken from [`USER_HEADER`] when the peer is a trusted proxy.
pub struct CallingUser(pub String);

sync_extractor!(CallingUser, calling_user);

/// The calling user of the request, from [`USER_HEADER`], refused unless a trusted proxy
/// set it once with a valid name.
pub(crate) fn calling_user(req: &HttpRequest) -> Result<CallingUser, Problem> {
    let state = app_state(req)?;
    let Some(value) = req.headers().get(USER_HEADER) else {
        return Err(Problem::missing_user(USER_HEADER));
    };
    if !from_trusted_proxy(req, &state.trusted_proxies) {
        return Err(Problem::untrusted_proxy(USER_HEADER));
    }
    if req.headers().get_all(USER_HEADER).nth(1).is_some() {
        return Err(Problem::duplicate_user_header(USER_HEADER));
    }
    let name = value.to_str().map_err(|_| {
        Problem::bad_name(
            "invalid_user",
            format!("{USER_HEADER} is not visible ASCII"),
        )
    })?;
    check_user_name(name.trim())?;
    Ok(CallingUser(name.trim().to_string()))
}

/// Whether the TCP peer is one of the configured `trusted_proxies`: only then are the
/// headers a front proxy sets ([`USER_HEADER`], `X-Forwarded-Proto`) believed.
pub fn from_trusted_proxy(req: &HttpRequest, trusted: &[IpNet]) -> bool {
    req.peer_addr()
        .is_some_and(|peer| trusted.iter().any(|net| net.contains(&peer.ip())))
}

/// Checks a user name from a header or a path with the one name rule
/// ([`slotpool_events::user_name::validate`], which SCIM's `userName` meets too).
pub fn check_user_name(name: &str) -> Result<(), Problem> {
    slotpool_events::user_name::validate(name)
        .map_err(|e| Problem::bad_name("invalid_user", e.to_string()))
}

/// Checks a product id from a path.
pub fn check_product_id(id: &str) -> Result<(), Problem> {
    if slotpool_events::stream::valid_product_id(id) {
        Ok(())
    } else {
        Err(Problem::bad_name(
            "invalid_product_id",
            slotpool_events::StreamIdError.to_string(),
        ))
    }
}

/// The shared state; a missing one is a wiring bug, reported as a problem, not a panic.
pub fn app_state(req: &HttpRequest) -> Result<&AppState, Problem> {
    req.app_data::<web::Data<AppState>>()
        .map(|d| d.get_ref())
        .ok_or_else(|| Problem::internal("no app state"))
}
