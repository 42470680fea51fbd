//! A deadline on the request body: a client that announces a body and then stalls
//! (`Content-Length: 100`, one byte sent) would otherwise hold a connection and a worker's
//! attention for ever. Whatever reads the body (the JSON bodies, the sign-in form, SCIM)
//! reads it through this deadline; past it the request is answered 408
//! `request_timeout` and the connection is closed. The head of a request has actix-web's
//! own deadline (`client_request_timeout_s`).

use super::Limits;
use crate::problem::Problem;
use actix_web::body::EitherBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, ResponseError};
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// A body stream that fails once its deadline has passed.
struct Deadline<S> {
    inner: S,
    sleep: Pin<Box<tokio::time::Sleep>>,
    passed: Arc<AtomicBool>,
}

impl<S> Stream for Deadline<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.passed.store(true, Ordering::Relaxed);
            let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body too slow");
            return Poll::Ready(Some(Err(PayloadError::Io(e))));
        }
        Poll::Pending
    }
}

/// Whether the request announces a body.
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// A request whose body runs against its deadline ([`arm`]), and what [`judge`] needs to
/// know whether it passed.
pub struct Armed {
    limits: web::Data<Limits>,
    passed: Arc<AtomicBool>,
}

/// Puts the request's body, if it announces one, behind `request_body_timeout_s`: whatever
/// reads it (the JSON bodies, the sign-in form, SCIM) reads it through the deadline.
pub fn arm(req: &mut ServiceRequest) -> Option<Armed> {
    let limits = req
        .app_data::<web::Data<Limits>>()
        .filter(|_| has_body(req))?
        .clone();
    let passed = Arc::new(AtomicBool::new(false));
    let inner = req.take_payload();
    let stream = Deadline {
        inner,
        sleep: Box::pin(tokio::time::sleep(limits.settings.body_timeout)),
        passed: Arc::clone(&passed),
    };
    req.set_payload(Payload::from(
        Box::pin(stream) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
    ));
    Some(Armed { limits, passed })
}

/// The answer to an [`arm`]ed request: as the handler gave it, or, if the deadline passed
/// while the body was read, 408 `request_timeout` and the connection closed.
pub fn judge<B>(armed: Option<Armed>, res: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    let limits = match armed {
        Some(Armed { limits, passed }) if passed.load(Ordering::Relaxed) => limits,
        _ => return res.map_into_left_body(),
    };
    limits.refused("request_timeout");
    let problem = Problem::request_timeout(limits.settings.body_timeout.as_secs());
    let mut answer = problem.error_response();
    answer
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    res.into_response(answer).map_into_right_body()
}
