//! The dashboard's forms: urlencoded bodies read into fields, and turned into settings.

use crate::problem::Problem;
use actix_web::HttpRequest;
use slotpool_events::{BypassRule, Mode, ProductKind, QueuePage, Settings};
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
            // On the gate policies form ([`apply_gate_policies`]): kept here.
            queue_all_message: current.queue_page.queue_all_message.clone(),
        },
        ..current
    })
}

/// The gate policies form applied to the current settings: `mode` (a select),
/// `queue_all_message` (Markdown), `bypass` (the rules as a JSON list, as the admin
/// API takes them; empty for none) and `api_prefixes` (separated by spaces, commas or
/// lines); and, where the form has them, `timezone`, `schedule` (scheduled capacity, JSON
/// as the admin API takes it) and `alerts` (licence-use alert rules, a JSON list; the
/// webhook and its secret stay with the admin API, so the page never holds the secret).
/// Only the shape is checked here; the rules' validation is the core's, as for the admin
/// API's `PUT`, so a bad rule is refused with the same message.
pub fn apply_gate_policies(current: Settings, f: &Fields) -> Result<Settings, Problem> {
    let code = f.get("mode").unwrap_or("enforce").trim();
    let mode: Mode =
        serde_json::from_value(serde_json::Value::String(code.to_string())).map_err(|_| {
            Problem::invalid_settings(format!(
                "mode must be enforce, passthrough or queue_all, not {code:?}"
            ))
        })?;
    let bypass: Vec<BypassRule> = match f.text("bypass") {
        None => Vec::new(),
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            Problem::invalid_settings(format!(
                "bypass must be a JSON list of rules such as [{{\"name\": \"robots\", \"users\": [\"ci-bot\"]}}]: {e}"
            ))
        })?,
    };
    let api_prefixes = f
        .get("api_prefixes")
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let mut queue_page = current.queue_page.clone();
    queue_page.queue_all_message = f.text("queue_all_message");
    // Fields a form may lack (one rendered before they existed): absent keeps the setting.
    let timezone = match f.get("timezone") {
        Some(_) => f.text("timezone"),
        None => current.timezone.clone(),
    };
    let schedule = match f.get("schedule") {
        None => current.schedule.clone(),
        Some(_) => match f.text("schedule") {
            None => Default::default(),
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                Problem::invalid_settings(format!(
                    "schedule must be a JSON object such as {{\"weekly\": [{{\"days\": [\"mon\"], \"from\": \"08:00\", \"to\": \"18:00\", \"shared_slots\": 40}}]}}: {e}"
                ))
            })?,
        },
    };
    let alerts = match f.get("alerts") {
        None => current.alerts.clone(),
        Some(_) => match f.text("alerts") {
            None => Vec::new(),
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                Problem::invalid_settings(format!(
                    "alerts must be a JSON list of rules such as [{{\"name\": \"busy\", \"kind\": \"use_percent\", \"threshold\": 80, \"for_s\": 300}}]: {e}"
                ))
            })?,
        },
    };
    Ok(Settings {
        mode,
        bypass,
        api_prefixes,
        queue_page,
        timezone,
        schedule,
        alerts,
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
    fn the_gate_policies_form_becomes_mode_rules_prefixes_and_message() {
        let mut current = Settings::new(ProductKind::Jira, 10, 2);
        current.queue_page.title = Some("kept".into());
        let f = Fields::parse(
            b"mode=queue_all&queue_all_message=Upgrade+**now**\r\n&api_prefixes=%2Frest%2F%2C+%2Fapi%2F%0A&bypass=%5B%7B%22name%22%3A%22robots%22%2C%22users%22%3A%5B%22ci-bot%22%5D%7D%5D",
        );
        let s = apply_gate_policies(current, &f).unwrap();
        assert_eq!(s.mode, Mode::QueueAll);
        assert_eq!(
            s.queue_page.queue_all_message.as_deref(),
            Some("Upgrade **now**")
        );
        assert_eq!(
            s.queue_page.title.as_deref(),
            Some("kept"),
            "the rest is kept"
        );
        assert_eq!(
            s.api_prefixes,
            vec!["/rest/".to_string(), "/api/".to_string()]
        );
        assert_eq!(s.bypass.len(), 1);
        assert_eq!(s.bypass[0].name, "robots");
        assert_eq!(s.bypass[0].users, vec!["ci-bot".to_string()]);
        // Empty fields: no rules, no prefixes, no message.
        let s = apply_gate_policies(
            s,
            &Fields::parse(b"mode=enforce&bypass=&api_prefixes=&queue_all_message="),
        )
        .unwrap();
        assert_eq!(
            (s.mode, s.bypass.len(), s.api_prefixes.len()),
            (Mode::Enforce, 0, 0)
        );
        assert_eq!(s.queue_page.queue_all_message, None);
    }

    #[test]
    fn the_gate_form_sets_schedule_and_alerts_and_keeps_them_when_absent() {
        let current = Settings::new(ProductKind::Jira, 60, 15);
        let f = Fields::parse(
            b"mode=enforce&timezone=Europe%2FBerlin&schedule=%7B%22weekly%22%3A%5B%7B%22days%22%3A%5B%22mon%22%5D%2C%22from%22%3A%2208%3A00%22%2C%22to%22%3A%2218%3A00%22%2C%22shared_slots%22%3A40%7D%5D%7D&alerts=%5B%7B%22name%22%3A%22busy%22%2C%22kind%22%3A%22use_percent%22%2C%22threshold%22%3A80%2C%22for_s%22%3A300%7D%5D",
        );
        let s = apply_gate_policies(current, &f).expect("applied");
        assert_eq!(s.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(s.schedule.weekly.len(), 1);
        assert_eq!(s.schedule.weekly[0].shared_slots, 40);
        assert_eq!(s.alerts.len(), 1);
        assert_eq!(s.alerts[0].name, "busy");
        // A form without the fields keeps them; empty fields clear them.
        let kept = apply_gate_policies(s.clone(), &Fields::parse(b"mode=enforce")).expect("kept");
        assert_eq!((kept.schedule.weekly.len(), kept.alerts.len()), (1, 1));
        let cleared = apply_gate_policies(
            s,
            &Fields::parse(b"mode=enforce&timezone=&schedule=&alerts="),
        )
        .expect("cleared");
        assert!(cleared.schedule.is_empty() && cleared.alerts.is_empty());
        assert_eq!(cleared.timezone, None);
        let bad = apply_gate_policies(
            Settings::new(ProductKind::Jira, 60, 15),
            &Fields::parse(b"mode=enforce&alerts=%7Bnope"),
        )
        .expect_err("refused");
        assert!(
            bad.detail.starts_with("alerts must be a JSON list"),
            "{}",
            bad.detail
        );
    }

    #[test]
    fn a_bad_mode_or_rule_list_is_a_clear_problem() {
        let current = Settings::new(ProductKind::Jira, 10, 2);
        let e = apply_gate_policies(current.clone(), &Fields::parse(b"mode=open_all")).unwrap_err();
        assert_eq!(e.reason, "invalid_settings");
        assert!(e.detail.contains("open_all"), "{}", e.detail);
        for bad in [
            &b"mode=enforce&bypass=%7Bnot+json"[..],
            b"mode=enforce&bypass=%5B%7B%22name%22%3A%22r%22%2C%22hosts%22%3A%5B%5D%7D%5D",
        ] {
            let e = apply_gate_policies(current.clone(), &Fields::parse(bad)).unwrap_err();
            assert_eq!(e.reason, "invalid_settings");
            assert!(
                e.detail.starts_with("bypass must be a JSON list"),
                "{}",
                e.detail
            );
        }
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
