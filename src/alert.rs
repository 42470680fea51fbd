//! The alert webhook's HTTP side: the body of a delivery, its signature, and the POST
//! (awc, actix's client, TLS as the connector's).
//!
//! A delivery is `POST <url>` with the JSON body
//! `{"product","alert","state":"firing"|"resolved","at","value"}` (`at` in RFC 3339) and
//! the headers `X-Slotpool-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes
//! under the secret>` and `X-Slotpool-Delivery: <product>:<journal sequence>` (the same
//! on every retry, so a receiver can drop a repeat). Any 2xx answer acknowledges it.

use awc::Client;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use slotpool_actors::alert::{AlertDelivery, AlertSender, AlertSenderFactory, TIMEOUT_S};
use slotpool_actors::DeliveryError;
use slotpool_events::AlertWebhook;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Most of a receiver's answer read (for the error message of a refusal).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The exact body of a delivery.
pub fn body(d: &AlertDelivery) -> Vec<u8> {
    let v = serde_json::json!({
        "product": d.product,
        "alert": d.alert,
        "state": d.state.code(),
        "at": crate::view::rfc3339(d.at),
        "value": d.value,
    });
    // A `Value` of strings and numbers always serializes.
    serde_json::to_vec(&v).unwrap_or_default()
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`, the `X-Slotpool-Signature` header.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// POSTs alerts over HTTP(S).
struct HttpAlertSender {
    client: Client,
}

impl AlertSender for HttpAlertSender {
    fn send(
        &self,
        webhook: &AlertWebhook,
        delivery: &AlertDelivery,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<(), DeliveryError>> {
        let body = body(delivery);
        let req = self
            .client
            .post(&webhook.url)
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("X-Slotpool-Signature", signature(&webhook.secret, &body)))
            .insert_header(("X-Slotpool-Delivery", delivery.id.clone()));
        Box::pin(async move {
            let mut res = req.send_body(body).await.map_err(|e| match e {
                awc::error::SendRequestError::Timeout => DeliveryError::Timeout(TIMEOUT_S),
                other => DeliveryError::Network(other.to_string()),
            })?;
            let status = res.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(());
            }
            let answer = res.body().limit(MAX_ANSWER_BYTES).await.unwrap_or_default();
            let text: String = String::from_utf8_lossy(&answer).chars().take(200).collect();
            Err(DeliveryError::Status { status, body: text })
        })
    }
}

/// The factory the binary gives the actors: an HTTP sender per alert actor.
pub fn sender_factory() -> AlertSenderFactory {
    Arc::new(|| {
        let client = Client::builder()
            .connector(awc::Connector::new().rustls_0_23(Arc::new(crate::connector::tls_config())))
            .timeout(Duration::from_secs(u64::from(TIMEOUT_S)))
            .disable_redirects()
            .finish();
        Rc::new(HttpAlertSender { client }) as Rc<dyn AlertSender>
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotpool_actors::alert::AlertState;
    use slotpool_events::Timestamp;

    #[test]
    fn the_signature_is_the_hmac_of_the_exact_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let d = AlertDelivery {
            id: "jira:7".into(),
            product: "jira".into(),
            alert: "busy".into(),
            state: AlertState::Firing,
            at: Timestamp::from_millis(1_700_000_000_000),
            value: 85,
        };
        let b = String::from_utf8(body(&d)).expect("utf-8");
        let v: serde_json::Value = serde_json::from_str(&b).expect("json");
        assert_eq!(v["state"], "firing");
        assert_eq!(v["value"], 85);
        assert_eq!(v["at"], "2023-11-14T22:13:20.000Z");
    }
}
