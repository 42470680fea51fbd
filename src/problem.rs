//! Every error the HTTP surface gives, as RFC 9457 `application/problem+json`, and the one
//! place where library errors become HTTP statuses and stable `reason` codes.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use slotpool_actors::{ActorError, DeliveryError};
use slotpool_events::DirectoryRefusal;
use slotpool_events::Refusal;
use std::fmt;

/// Content type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One HTTP problem: a status, a stable reason code, a title and a detail for people.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// The stable, machine-readable code (`reason`, and the end of `type`).
    pub reason: &'static str,
    /// A short summary for people, the same for every problem of this reason.
    pub title: &'static str,
    /// What went wrong in this case, for people.
    pub detail: String,
}

impl Problem {
    /// A problem with the given parts: private, so that every problem is one of the named
    /// constructors below.
    fn new(
        status: StatusCode,
        reason: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            status,
            reason,
            title,
            detail: detail.into(),
        }
    }

    /// 400: the body is not valid JSON.
    pub fn bad_json(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "Malformed JSON",
            detail,
        )
    }

    /// 422: a well-formed body of the wrong shape or values (takes a `String` so that it
    /// can be the `shape_error` of `http::body::read_json`).
    pub fn invalid_body(detail: String) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "Invalid body",
            detail,
        )
    }

    /// 422: product settings the core (or their JSON shape) refuses; used by the admin API
    /// and the dashboard's forms alike.
    pub fn invalid_settings(detail: String) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_settings",
            "Invalid settings",
            detail,
        )
    }

    /// 400: the request body could not be read.
    pub fn bad_body(detail: String) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            "Unreadable body",
            detail,
        )
    }

    /// 413: a request body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            format!("request bodies are limited to {limit} bytes"),
        )
    }

    /// 403 `unknown_user`: the *calling* user (of the user API) is not known to slotpool
    /// at all (rather than `not_member` of this product), which tells an administrator
    /// more. A refusal of the caller, like `not_member` (docs/contract.md: 403 for "a non-member,
    /// deactivated or unknown user").
    pub fn unknown_user(user: &str) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "unknown_user",
            "Unknown user",
            format!("no user {user:?} is known to slotpool"),
        )
    }

    /// 404 `unknown_user`: the user a path of the admin API (or a directory command)
    /// names does not exist: a missing resource, like `unknown_product`. Same reason as
    /// [`Problem::unknown_user`], another status: there the caller is refused, here the
    /// addressed resource is missing.
    pub fn no_such_user(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "unknown_user",
            "Unknown user",
            detail,
        )
    }

    /// What an actor's answer to a command becomes. `unknown_requester`: the user of a
    /// slot request when the directory has never heard of them: their `not_member`
    /// refusal is then [`Problem::unknown_user`].
    pub fn of_command(e: ActorError, unknown_requester: Option<&str>) -> Problem {
        match (e, unknown_requester) {
            (ActorError::Refused(Refusal::NotMember), Some(user)) => Problem::unknown_user(user),
            (e, _) => e.into(),
        }
    }

    /// 401 `missing_token`: an admin call without `Authorization: Bearer`.
    pub fn missing_token() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "Authentication required",
            "send the admin token as 'Authorization: Bearer <token>'",
        )
    }

    /// 401 `bad_token`: the bearer token is not the admin token.
    pub fn bad_token() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "Bad token",
            "the bearer token is not the admin token",
        )
    }

    /// 401 `missing_user`: a user API call without the user header (`header`).
    pub fn missing_user(header: &str) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "missing_user",
            "Who is calling?",
            format!("requests to the user API carry the {header} header, set by a trusted proxy"),
        )
    }

    /// 401 `untrusted_proxy`: the user header (`header`) from a peer not trusted.
    pub fn untrusted_proxy(header: &str) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "untrusted_proxy",
            "Untrusted proxy",
            format!("{header} is only accepted from the configured trusted_proxies"),
        )
    }

    /// 404 `not_found`: no route, or no such static file (`detail` says which).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    /// 400 `bad_query`: a query parameter out of its values.
    pub fn bad_query(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "bad_query", "Bad query", detail)
    }

    /// 404 `no_sync`: the product has not been synchronised with its source groups yet.
    pub fn no_sync(product: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "no_sync",
            "No sync yet",
            format!("product {product:?} has not been synchronised yet"),
        )
    }

    /// 400 `invalid_return_to`: the queue page never redirects outside the product.
    pub fn invalid_return_to(e: impl fmt::Display) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_return_to",
            "Invalid return_to",
            e.to_string(),
        )
    }

    /// 503 `not_ready`: recovery is not finished, or the service is stopping.
    pub fn not_ready() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "Not ready",
            "recovery is not finished, or the service is stopping",
        )
    }

    /// 503 `journal_unavailable`: the journal refuses writes (`detail`: what that means
    /// for this answer).
    pub fn journal_unavailable(detail: &'static str) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "journal_unavailable",
            "Journal unavailable",
            detail,
        )
    }

    /// 500 `internal_error`: the metrics could not be encoded.
    pub fn metrics_failed(e: impl fmt::Display) -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Metrics failed",
            e.to_string(),
        )
    }

    /// The problem for an error answer that is not one yet (actix's own 404 and 405,
    /// path and header errors), by its status.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Problem::not_found("no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => Problem::new(
                status,
                "method_not_allowed",
                "Method not allowed",
                "this path does not take that method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
                status,
                "payload_too_large",
                "Payload too large",
                "the request body is too large",
            ),
            s if s.is_server_error() => Problem::new(
                status,
                "internal_error",
                "Internal error",
                "an unexpected error occurred",
            ),
            _ => Problem::new(
                status,
                "bad_request",
                "Bad request",
                "the request could not be understood",
            ),
        }
    }

    /// 404: the product does not exist.
    pub fn unknown_product(product: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "unknown_product",
            "Unknown product",
            format!("there is no product {product:?}"),
        )
    }

    /// 400: a path segment is not a valid product id or user name.
    pub fn bad_name(what: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, what, "Invalid name", detail)
    }

    /// 401 from the gate: the caller holds no slot (`state` says why: `none`, `queued`,
    /// `locked`); the queue page is the way in.
    pub fn no_slot(state: &str) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "no_slot",
            "No slot",
            format!("the caller holds no slot ({state}); the queue page is the way in"),
        )
    }

    /// 429: a client that asked the queue page for JSON still waits for a slot (queued,
    /// or locked after an inactivity revocation); `Retry-After` says when to ask again.
    pub fn waiting(state: &str, retry_after_s: u64) -> Self {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "waiting",
            "Waiting for a slot",
            format!("the caller is {state}: no slot yet; ask again in {retry_after_s} s, or follow the notification stream"),
        )
    }

    /// 404: the product's settings name no connector.
    pub fn no_connector(product: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "no_connector",
            "No connector",
            format!("product {product:?} has no connector in its settings"),
        )
    }

    /// 424: a re-sync the product's connector could not complete. Not a 5xx: slotpool
    /// did its part, the product it depends on did not (docs/contract.md keeps 5xx for bugs).
    pub fn connector_failed(e: &DeliveryError) -> Self {
        Problem::new(
            StatusCode::FAILED_DEPENDENCY,
            "connector_failed",
            "Connector failed",
            format!("the re-sync did not complete: {e}; it is retried with the deliveries"),
        )
    }

    /// 404: the product's queue page has no uploaded logo (or one that is not base64).
    pub fn no_logo() -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No logo",
            "this product has no uploaded logo",
        )
    }

    /// 500: a wiring bug or a failure of the server itself (never the client's doing).
    pub fn internal(e: impl fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
            e.to_string(),
        )
    }

    /// 500: the journal could not be read for a page computed from it.
    pub fn journal_error(e: impl fmt::Display) -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "journal_error",
            "Journal unreadable",
            e.to_string(),
        )
    }

    /// 401: a dashboard form posted without a dashboard session.
    pub fn not_signed_in() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "not_signed_in",
            "Not signed in",
            "sign in to the dashboard at /admin/ first",
        )
    }

    /// 403: a form (or a session-authenticated change) whose CSRF token is missing or
    /// does not belong to the session.
    pub fn bad_csrf() -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "bad_csrf",
            "Form refused",
            "the form's CSRF token is missing or does not belong to this session; reload the page and try again",
        )
    }

    /// 503: the backup's exporter thread could not start.
    pub fn backup_unavailable(e: &std::io::Error) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "backup_unavailable",
            "Backup unavailable",
            format!("the backup could not start: {e}"),
        )
    }

    /// 400: a request names its user twice ([`crate::http::auth::USER_HEADER`] more than
    /// once): which one is meant is ambiguous, so neither is believed.
    pub fn duplicate_user_header(header: &str) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "duplicate_user_header",
            "User named twice",
            format!("the request carries {header} more than once; send it exactly once"),
        )
    }

    /// 503: this cluster member knows no leader (an election, or the minority side of a
    /// partition), or lost the lead while answering; the answer carries `Retry-After`.
    /// Nothing was acknowledged; a retry (through any member) is safe.
    pub fn no_leader(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_leader",
            "No cluster leader",
            detail,
        )
    }

    /// 504: a follower forwarded the request and the leader did not answer within the
    /// follower's wait. The leader may still be doing it (a long administrative call):
    /// look before asking again.
    pub fn leader_timeout(wait_s: u64) -> Self {
        Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "leader_timeout",
            "The leader did not answer in time",
            format!(
                "the leader did not answer within {wait_s} s; it may still be doing what was asked"
            ),
        )
    }

    /// 409: a cluster membership change is already running; changes go one at a time.
    pub fn membership_change() -> Self {
        Problem::new(
            StatusCode::CONFLICT,
            "membership_change",
            "Membership change running",
            "a cluster membership change is already running; try again when it has finished",
        )
    }

    /// 422: a cluster membership change the cluster refuses.
    pub fn invalid_membership(detail: String) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_membership",
            "Invalid membership change",
            detail,
        )
    }

    /// 429: this peer or user sent more requests than the configured rate allows; the
    /// answer also carries `Retry-After` (see [`crate::http::limits`]).
    pub fn rate_limited(retry_after_s: u64) -> Self {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
            format!("slow down: try again in {retry_after_s} s"),
        )
    }

    /// 408: the request's body did not arrive within `request_body_timeout_s`; the
    /// connection is closed.
    pub fn request_timeout(limit_s: u64) -> Self {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "Request body too slow",
            format!("the request body did not arrive within {limit_s} s"),
        )
    }

    /// 503: no more notification streams (for this user, or in total) than configured are
    /// open at once; an existing stream already carries what a new one would.
    pub fn too_many_streams(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "Too many notification streams",
            detail,
        )
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "type": format!("urn:slotpool:problem:{}", self.reason),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "reason": self.reason,
        })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.reason, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        // Both pass within moments (an election; the repair after recovery): ask again.
        if matches!(self.reason, "no_leader" | "not_ready") {
            r.insert_header((header::RETRY_AFTER, "1"));
        }
        r.body(self.body().to_string())
    }
}

impl From<Refusal> for Problem {
    fn from(r: Refusal) -> Self {
        let (status, title) = match &r {
            Refusal::UnknownProduct => (StatusCode::NOT_FOUND, "Unknown product"),
            Refusal::InvalidSettings(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid settings"),
            Refusal::TierExceeded { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "Licence tier exceeded")
            }
            Refusal::NotMember => (StatusCode::FORBIDDEN, "Not a member"),
            Refusal::Deactivated => (StatusCode::FORBIDDEN, "User deactivated"),
            Refusal::NotHolder => (StatusCode::CONFLICT, "Not a holder"),
            Refusal::FixedUser => (StatusCode::CONFLICT, "Fixed user"),
            Refusal::Locked { .. } => (StatusCode::FORBIDDEN, "Locked"),
            Refusal::UnknownRequest => (StatusCode::NOT_FOUND, "Unknown request"),
            Refusal::DuplicateRequest { .. } => (StatusCode::CONFLICT, "Duplicate request"),
            Refusal::RequestClosed { .. } => (StatusCode::CONFLICT, "Request closed"),
            Refusal::NotEligible => (StatusCode::FORBIDDEN, "Not eligible"),
            Refusal::UnknownSpace { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Unknown space"),
            Refusal::OperationNotOffered { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "Operation not offered")
            }
            Refusal::NoSpaces => (StatusCode::NOT_FOUND, "No space entitlements"),
            Refusal::InvalidSchedule(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid schedule"),
        };
        Problem::new(status, r.code(), title, r.to_string())
    }
}

impl From<ActorError> for Problem {
    fn from(e: ActorError) -> Self {
        match e {
            ActorError::Refused(r) => r.into(),
            ActorError::Directory(d) => d.into(),
            ActorError::Journal(slotpool_journal::JournalError::NotLeader(why)) => {
                Problem::no_leader(format!("this node no longer leads the cluster ({why})"))
            }
            ActorError::Journal(j) => {
                tracing::error!(error = %j, "journal error");
                Problem::journal_unavailable(
                    "the change could not be made durable; nothing was acknowledged",
                )
            }
            ActorError::Stopped => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "Shutting down",
                "the service is stopping; try again shortly",
            ),
        }
    }
}

impl From<actix::MailboxError> for Problem {
    fn from(e: actix::MailboxError) -> Self {
        ActorError::from(e).into()
    }
}

impl From<DirectoryRefusal> for Problem {
    fn from(r: DirectoryRefusal) -> Self {
        let (status, title, reason) = match &r {
            DirectoryRefusal::Uniqueness(_) => (StatusCode::CONFLICT, "Name taken", "uniqueness"),
            DirectoryRefusal::UnknownUser(_) => return Problem::no_such_user(r.to_string()),
            DirectoryRefusal::UnknownGroup(_) => {
                (StatusCode::NOT_FOUND, "Unknown group", "unknown_group")
            }
            DirectoryRefusal::Mutability(_) => (StatusCode::BAD_REQUEST, "Immutable", "mutability"),
            DirectoryRefusal::InvalidValue(_) => {
                (StatusCode::BAD_REQUEST, "Invalid value", "invalid_value")
            }
            DirectoryRefusal::VersionMismatch { .. } => (
                StatusCode::PRECONDITION_FAILED,
                "Version mismatch",
                "version_mismatch",
            ),
        };
        Problem::new(status, reason, title, r.to_string())
    }
}
