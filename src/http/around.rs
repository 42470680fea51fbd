//! The one middleware around every request. In the order its steps apply: what is observed
//! of the request ([`super::observe`]: cause id, span, metrics, log line, `X-Request-Id`),
//! the rate limits ([`super::limits::rate`]), the body's deadline
//! ([`super::limits::body`]); and on the way out the security headers
//! ([`super::pages::headers`]), on every answer, refusals included.
//!
//! One layer rather than one per concern: each `from_fn` layer boxes the future of
//! everything inside it, so a chain of four allocated, moved and dropped four futures per
//! request (`memcpy` of boxed futures was 3.5% of the HTTP worker's time under `make load`).
//! Each concern keeps its module; this only calls them in order.

use super::limits::{body, rate};
use super::observe::Observed;
use super::pages::headers;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// The middleware (`actix_web::middleware::from_fn(around)`).
pub async fn around(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<EitherBody<impl MessageBody>>>, actix_web::Error> {
    let observed = Observed::begin(&req);
    let mut res = observed
        .run(async move {
            if let Some(refusal) = deposed(&req).or_else(|| rate::refusal(&req)) {
                return Ok(req.into_response(refusal).map_into_right_body());
            }
            let armed = body::arm(&mut req);
            let res = next.call(req).await?;
            Ok::<_, actix_web::Error>(body::judge(armed, res).map_into_left_body())
        })
        .await?;
    headers::secure(res.headers_mut());
    observed.end(&mut res);
    Ok(res)
}

/// `503 not_ready` (with `Retry-After`) for every request but health, readiness and
/// metrics once this member has lost its lead ([`super::AppState::deposed`]): for the
/// moment it still answers before it stops, it must not answer from a state the cluster
/// may have moved past. `not_ready` says nothing was done: a follower may send even a
/// `POST` again.
fn deposed(req: &ServiceRequest) -> Option<actix_web::HttpResponse> {
    use actix_web::ResponseError;
    let state = req.app_data::<actix_web::web::Data<super::AppState>>()?;
    let ops = matches!(req.path(), "/healthz" | "/readyz" | "/metrics");
    (state.deposed.load(std::sync::atomic::Ordering::Relaxed) && !ops)
        .then(|| crate::problem::Problem::not_ready().error_response())
}
