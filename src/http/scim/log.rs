//! The SCIM request log: the last requests (method, path, status, duration, body with
//! secrets redacted), so an administrator can see why a provisioning failed
//! (`GET /admin/v1/scim/log`).

use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Requests kept.
pub const KEEP: usize = 200;
/// Longest body kept, in bytes.
const MAX_BODY: usize = 8192;
/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// One logged request.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// When it arrived (RFC 3339).
    pub at: String,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// Milliseconds taken.
    pub duration_ms: f64,
    /// The request body, secrets redacted (JSON when it parsed, else truncated text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The SCIM error's `detail`, when the answer was an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The last [`KEEP`] entries, newest last.
#[derive(Debug, Default)]
pub struct ScimLog {
    entries: Mutex<VecDeque<Entry>>,
}

impl ScimLog {
    /// Adds an entry, dropping the oldest beyond [`KEEP`].
    pub fn push(&self, entry: Entry) {
        if let Ok(mut e) = self.entries.lock() {
            if e.len() >= KEEP {
                e.pop_front();
            }
            e.push_back(entry);
        }
    }

    /// Every entry, newest first.
    pub fn newest_first(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .map(|e| e.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.contains("secret") || k.contains("token")
}

/// Replaces every secret in `v`: values of keys such as `password`, and the `value` of a
/// PATCH operation whose `path` names one.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let path_is_secret = map
                .iter()
                .any(|(k, p)| k.eq_ignore_ascii_case("path") && p.as_str().is_some_and(is_secret));
            for (k, val) in map.iter_mut() {
                if is_secret(k) || (path_is_secret && k.eq_ignore_ascii_case("value")) {
                    *val = Value::String(REDACTED.into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The body as the log keeps it.
pub fn body_for_log(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            redact(&mut v);
            Some(v)
        }
        Err(_) => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BODY)]);
            // Unparsed text may hold a secret anywhere: keep only its start.
            let lowered = text.to_ascii_lowercase();
            let cut = lowered.find("password").unwrap_or(text.len());
            Some(Value::String(text[..cut].to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted() {
        let mut v = json!({"userName": "a", "password": "hunter2", "Operations": [
            {"op": "replace", "path": "password", "value": "p2"},
            {"op": "replace", "value": {"Password": "p3", "active": true}}]});
        redact(&mut v);
        let text = v.to_string();
        assert!(!text.contains("hunter2") && !text.contains("p2") && !text.contains("p3"));
        assert!(text.contains("\"active\":true"));
        let log = ScimLog::default();
        for i in 0..KEEP + 5 {
            log.push(Entry {
                at: String::new(),
                method: "GET".into(),
                path: format!("/{i}"),
                status: 200,
                duration_ms: 0.0,
                body: None,
                error: None,
            });
        }
        let e = log.newest_first();
        assert_eq!(e.len(), KEEP);
        assert_eq!(e[0].path, format!("/{}", KEEP + 4));
        assert_eq!(body_for_log(b"{bad password=x"), Some(json!("{bad ")));
    }
}
