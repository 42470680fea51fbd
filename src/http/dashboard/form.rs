//! The dashboard's forms: urlencoded bodies read into fields, and turned into settings.

use crate::problem::Problem;
use actix_web::HttpRequest;
use slotpool_events::{ProductKind, QueuePage, Settings};
use std::collections::HashMap;

/// The fields of one posted form (the last value of a repeated name wins).
#[derive(Debug, Default)]
pub struct Fields(HashMap<String, String>);

impl Fields {
    /// Reads an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Fields {
        Fields(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// One field's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether a checkbox was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty())
    }

    /// A whole number field: 422 naming the field otherwise.
    pub fn number(&self, name: &str) -> Result<u32, Problem> {
        let v = self.get(name).unwrap_or("").trim();
        v.parse::<u32>().map_err(|_| {
            Problem::invalid_settings(format!("{name} must be a whole number, not {v:?}"))
        })
    }

    /// A text field; empty means "not set".
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| v.trim().replace("\r\n", "\n"))
            .filter(|v| !v.is_empty())
    }
}

/// A product kind from its code.
pub fn kind(code: &str) -> Result<ProductKind, Problem> {
    serde_json::from_value(serde_json::Value::String(code.to_string()))
        .map_err(|_| Problem::invalid_settings(format!("unknown product kind {code:?}")))
}

/// The code of a product kind, as the admin API and [`kind`] spell it (the form's
/// `<select>` values and the index page's table).
pub fn kind_code(kind: ProductKind) -> &'static str {
    match kind {
        ProductKind::Jira => "jira",
        ProductKind::Confluence => "confluence",
        ProductKind::Bitbucket => "bitbucket",
        ProductKind::Jsm => "jsm",
        ProductKind::Generic => "generic",
    }
}

/// The settings form applied to the current settings. Validation is the core's (the
/// `Configure` command); only the shape of each field is checked here.
pub fn apply_settings(current: Settings, f: &Fields) -> Result<Settings, Problem> {
    let logo = if f.checked("remove_logo") {
        None
    } else {
        f.text("logo_data").or(current.queue_page.logo.clone())
    };
    Ok(Settings {
        kind: kind(f.get("kind").unwrap_or("generic"))?,
        licence_tier: f.number("licence_tier")?,
        shared_slots: f.number("shared_slots")?,
        inactivity_s: f.number("inactivity_s")?,
        warning_lead_s: f.number("warning_lead_s")?,
        sweep_interval_s: f.number("sweep_interval_s")?,
        lock_s: f.number("lock_s")?,
        queue_timer_s: f.number("queue_timer_s")?,
        reclaim_on_request: f.checked("reclaim_on_request"),
        auto_relogin: f.checked("auto_relogin"),
        queue_page: QueuePage {
            title: f.text("qp_title"),
            message: f.text("qp_message"),
            logo_url: f.text("qp_logo_url"),
            logo,
            base_url: f.text("qp_base_url"),
            // Not on the form: kept as the admin API set it.
            queue_all_message: current.queue_page.queue_all_message.clone(),
        },
        ..current
    })
}

/// A path segment, percent-encoded.
pub fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One query parameter of a request.
pub fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_codes_are_the_api_codes() {
        for k in [
            ProductKind::Jira,
            ProductKind::Confluence,
            ProductKind::Bitbucket,
            ProductKind::Jsm,
            ProductKind::Generic,
        ] {
            assert_eq!(kind(kind_code(k)).ok(), Some(k));
            assert_eq!(
                serde_json::to_value(k).ok(),
                Some(serde_json::json!(kind_code(k)))
            );
        }
    }

    #[test]
    fn the_settings_form_becomes_settings() {
        let current = Settings::new(ProductKind::Jira, 10, 2);
        let f = Fields::parse(b"kind=confluence&licence_tier=20&shared_slots=5&inactivity_s=600&warning_lead_s=30&sweep_interval_s=60&lock_s=0&queue_timer_s=60&auto_relogin=on&qp_title=Hi+%3Cb%3E&qp_message=&qp_base_url=https%3A%2F%2Fx.example%2F");
        let s = apply_settings(current, &f).unwrap();
        assert_eq!(s.kind, ProductKind::Confluence);
        assert_eq!(
            (s.licence_tier, s.shared_slots, s.inactivity_s),
            (20, 5, 600)
        );
        assert!(s.auto_relogin && !s.reclaim_on_request);
        assert_eq!(s.queue_page.title.as_deref(), Some("Hi <b>"));
        assert_eq!(s.queue_page.message, None);
        assert_eq!(s.queue_page.base_url.as_deref(), Some("https://x.example/"));
    }

    #[test]
    fn a_bad_number_names_its_field() {
        let current = Settings::new(ProductKind::Jira, 10, 2);
        let f = Fields::parse(b"kind=jira&licence_tier=ten");
        let e = apply_settings(current, &f).unwrap_err();
        assert_eq!(e.reason, "invalid_settings");
        assert!(e.detail.contains("licence_tier"), "{}", e.detail);
    }
}
