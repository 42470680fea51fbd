//! Reading a JSON request body with a size limit and clear errors.

use crate::problem::Problem;
use actix_web::web;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// Reads the whole body (refusing more than `limit` bytes) and parses it as JSON.
///
/// Syntax errors are 400 `bad_json`; well-formed JSON of the wrong shape or types is
/// `shape_error` (the caller picks the status and reason, e.g. 422 `invalid_settings`).
pub async fn read_json<T: DeserializeOwned>(
    payload: web::Payload,
    limit: usize,
    shape_error: fn(String) -> Problem,
) -> Result<T, Problem> {
    parse_json(&read_bytes(payload, limit).await?, shape_error)
}

/// Reads the whole body, refusing more than `limit` bytes (413); a body that cannot be
/// read is 400 `bad_body`.
pub async fn read_bytes(payload: web::Payload, limit: usize) -> Result<web::BytesMut, Problem> {
    read_limited(payload, limit, Problem::bad_body, Problem::too_large).await
}

/// Reads the whole body, refusing more than `limit` bytes: the one reading loop, with
/// the errors of the caller's vocabulary (problems here, SCIM errors under `/scim/v2`):
/// `unreadable` for a body that cannot be read, `too_large` (given the limit) for one
/// over the limit, as soon as it is.
pub async fn read_limited<E>(
    mut payload: web::Payload,
    limit: usize,
    unreadable: impl Fn(String) -> E,
    too_large: impl Fn(usize) -> E,
) -> Result<web::BytesMut, E> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| unreadable(e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Parses JSON bytes; see [`read_json`] for the errors.
pub fn parse_json<T: DeserializeOwned>(
    bytes: &[u8],
    shape_error: fn(String) -> Problem,
) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => shape_error(e.to_string()),
        _ => Problem::bad_json(if bytes.is_empty() {
            "the request needs a JSON body".to_string()
        } else {
            e.to_string()
        }),
    })
}

/// A free-text field of a request body (a reason, a note, a name), trimmed, its line
/// breaks made `\n` (a browser's form or a Windows client sends `\r\n`): refused as
/// `invalid_body` naming `what` when longer than `max` bytes, or holding a control
/// character other than a line break or a tab (each with its own message).
pub fn check_text(what: &str, text: &str, max: usize) -> Result<String, Problem> {
    let text = text.trim().replace("\r\n", "\n").replace('\r', "\n");
    if text.len() > max {
        return Err(Problem::invalid_body(format!(
            "{what} must be at most {max} bytes of text"
        )));
    }
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Problem::invalid_body(format!(
            "{what} holds the control character U+{:04X}; only line breaks and tabs may be in a text",
            u32::from(c)
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_keep_line_breaks_and_tabs_and_refuse_other_control_characters() {
        assert_eq!(
            check_text("reason", " needed for\r\nQ3\rreports\t(all) ", 100).unwrap(),
            "needed for\nQ3\nreports\t(all)"
        );
        let e = check_text("reason", "a\u{7}b", 100).unwrap_err();
        assert_eq!(e.reason, "invalid_body");
        assert!(e.detail.contains("U+0007"), "{}", e.detail);
        let e = check_text("note", &"x".repeat(101), 100).unwrap_err();
        assert!(e.detail.contains("at most 100 bytes"), "{}", e.detail);
    }
}
