//! The administrator's dashboard session: after sign-in with the admin token, a signed,
//! expiring cookie (HttpOnly, SameSite=Strict, Secure over https) stands for the token,
//! and every form carries a CSRF token derived from the session, checked on the server.
//!
//! Cookie value: `v1.<expires ms>.<session id>.<mac>`, mac = HMAC-SHA256 over the rest
//! with a key drawn at start (so a restart signs everyone out). The CSRF token is
//! HMAC(key, "csrf" ++ session id): it cannot be derived without the key, and a form from
//! another site neither knows it nor (SameSite=Strict) sends the cookie.

use crate::problem::Problem;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "slotpool_admin";
/// Name of the cookie that binds the sign-in form's CSRF token before there is a session.
pub const LOGIN_COOKIE: &str = "slotpool_login";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Header the dashboard's scripts send the CSRF token in (for the admin API).
pub const CSRF_HEADER: &str = "X-CSRF-Token";

type HmacSha256 = Hmac<Sha256>;

fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        k[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        k[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        k
    })
}

fn mac(parts: &[&str]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key()).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p.as_bytes());
        m.update(b"\x00");
    }
    B64.encode(m.finalize().into_bytes())
}

fn verify_mac(parts: &[&str], tag: &str) -> bool {
    let Ok(tag) = B64.decode(tag) else {
        return false;
    };
    let mut m = <HmacSha256 as Mac>::new_from_slice(key()).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p.as_bytes());
        m.update(b"\x00");
    }
    m.verify_slice(&tag).is_ok()
}

/// Sessions signed out before they expired: id -> expiry. Pruned as they expire, so it
/// holds at most the sessions of the last [`SESSION_TTL`].
fn signed_out() -> &'static Mutex<HashMap<String, i64>> {
    static OUT: OnceLock<Mutex<HashMap<String, i64>>> = OnceLock::new();
    OUT.get_or_init(|| Mutex::new(HashMap::new()))
}

fn is_signed_out(id: &str) -> bool {
    signed_out().lock().map_or(true, |out| out.contains_key(id))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A valid dashboard session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Random id of the session.
    pub id: String,
    /// When it ends, ms since the epoch.
    pub expires_ms: i64,
}

impl Session {
    /// A new session.
    pub fn new() -> Session {
        Session {
            id: uuid::Uuid::new_v4().simple().to_string(),
            expires_ms: now_ms() + SESSION_TTL.as_millis() as i64,
        }
    }

    /// The signed cookie value.
    pub fn cookie_value(&self) -> String {
        let exp = self.expires_ms.to_string();
        format!("v1.{exp}.{}.{}", self.id, mac(&["session", &exp, &self.id]))
    }

    /// The session a cookie value stands for, if it is genuine and not expired.
    pub fn from_cookie_value(v: &str) -> Option<Session> {
        let mut it = v.split('.');
        let (Some("v1"), Some(exp), Some(id), Some(tag), None) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return None;
        };
        if !verify_mac(&["session", exp, id], tag) {
            return None;
        }
        let expires_ms: i64 = exp.parse().ok()?;
        (expires_ms > now_ms() && !is_signed_out(id)).then(|| Session {
            id: id.to_string(),
            expires_ms,
        })
    }

    /// The session of a request, if it has a valid one.
    pub fn of(req: &HttpRequest) -> Option<Session> {
        Session::from_cookie_value(req.cookie(SESSION_COOKIE)?.value())
    }

    /// Ends the session on the server too: its cookie is refused from now on, even if a
    /// copy of it survives in some browser.
    pub fn sign_out(&self) {
        if let Ok(mut out) = signed_out().lock() {
            let now = now_ms();
            out.retain(|_, expires| *expires > now);
            out.insert(self.id.clone(), self.expires_ms);
        }
    }

    /// The CSRF token of this session.
    pub fn csrf(&self) -> String {
        mac(&["csrf", &self.id])
    }

    /// Checks a CSRF token sent with a form or header: 403 `bad_csrf` otherwise.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), Problem> {
        match token {
            Some(t) if verify_mac(&["csrf", &self.id], t) => Ok(()),
            _ => Err(Problem::bad_csrf()),
        }
    }

    /// The cookie to set after sign-in.
    pub fn cookie(&self, secure: bool) -> Cookie<'static> {
        Cookie::build(SESSION_COOKIE, self.cookie_value())
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .max_age(actix_web::cookie::time::Duration::seconds(
                SESSION_TTL.as_secs() as i64,
            ))
            .finish()
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

/// A cookie that removes `name`.
pub fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build(name, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    c.make_removal();
    c
}

/// The pre-session nonce of the sign-in form: a cookie and the form's CSRF token for it.
pub fn login_nonce(secure: bool) -> (Cookie<'static>, String) {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let token = mac(&["login", &nonce]);
    let cookie = Cookie::build(LOGIN_COOKIE, nonce)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish();
    (cookie, token)
}

/// Checks the sign-in form's CSRF token against the request's nonce cookie.
pub fn check_login_csrf(req: &HttpRequest, token: &str) -> Result<(), Problem> {
    let nonce = req.cookie(LOGIN_COOKIE).ok_or_else(Problem::bad_csrf)?;
    if verify_mac(&["login", nonce.value()], token) {
        Ok(())
    } else {
        Err(Problem::bad_csrf())
    }
}

/// Whether the request came over https (directly, or per `X-Forwarded-Proto` /
/// `Forwarded` through a front proxy in `trusted_proxies`; from any other peer those
/// headers are not believed): the cookies are then marked Secure.
pub fn is_https(req: &HttpRequest) -> bool {
    if req.app_config().secure() {
        return true;
    }
    let trusted = crate::http::auth::app_state(req)
        .is_ok_and(|s| crate::http::auth::from_trusted_proxy(req, &s.trusted_proxies));
    trusted && req.connection_info().scheme() == "https"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_round_trips_and_a_forged_one_does_not() {
        let s = Session::new();
        let v = s.cookie_value();
        assert_eq!(Session::from_cookie_value(&v).unwrap().id, s.id);
        let forged = v.replace(&s.id, "0000");
        assert!(Session::from_cookie_value(&forged).is_none());
        let longer = v.replacen(
            &s.expires_ms.to_string(),
            &(s.expires_ms + 1).to_string(),
            1,
        );
        assert!(Session::from_cookie_value(&longer).is_none());
        assert!(Session::from_cookie_value("v1.1.2").is_none());
    }

    #[test]
    fn an_expired_session_is_refused() {
        let s = Session {
            id: "abc".into(),
            expires_ms: now_ms() - 1,
        };
        assert!(Session::from_cookie_value(&s.cookie_value()).is_none());
    }

    #[test]
    fn a_signed_out_session_is_refused() {
        let s = Session::new();
        let v = s.cookie_value();
        assert!(Session::from_cookie_value(&v).is_some());
        s.sign_out();
        assert!(Session::from_cookie_value(&v).is_none());
    }

    #[test]
    fn csrf_tokens_are_per_session() {
        let a = Session::new();
        let b = Session::new();
        assert!(a.check_csrf(Some(&a.csrf())).is_ok());
        assert!(a.check_csrf(Some(&b.csrf())).is_err());
        assert!(a.check_csrf(None).is_err());
        assert!(a.check_csrf(Some("")).is_err());
    }
}
