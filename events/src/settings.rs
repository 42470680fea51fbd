//! Product settings: what an administrator configures per product, and their validation.

use crate::eligibility::Eligibility;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The kind of web product whose licences are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProductKind {
    /// Jira (Software or Work Management).
    Jira,
    /// Confluence.
    Confluence,
    /// Bitbucket Data Center.
    Bitbucket,
    /// Jira Service Management.
    Jsm,
    /// Any other seat-licensed web application.
    Generic,
}

/// The settings of one product, as `PUT /admin/v1/products/{p}` takes them.
///
/// All but `kind`, `licence_tier` and `shared_slots` have defaults. Unknown fields are
/// refused so that a typo does not silently leave a default in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// What kind of product this is.
    pub kind: ProductKind,
    /// Total seats of the product's licence.
    pub licence_tier: u32,
    /// Slots in the shared pool. `fixed users + shared_slots <= licence_tier`.
    pub shared_slots: u32,
    /// Seconds a holder may be inactive before the slot may be revoked.
    #[serde(default = "defaults::inactivity_s")]
    pub inactivity_s: u32,
    /// Seconds before revocation that the holder is warned.
    #[serde(default = "defaults::warning_lead_s")]
    pub warning_lead_s: u32,
    /// Seconds between sweeps.
    #[serde(default = "defaults::sweep_interval_s")]
    pub sweep_interval_s: u32,
    /// Seconds a user revoked for inactivity must wait before requesting again.
    #[serde(default)]
    pub lock_s: u32,
    /// Seconds a queued member may go without polling or listening before losing the place.
    #[serde(default = "defaults::queue_timer_s")]
    pub queue_timer_s: u32,
    /// When the pool is full, take the slot of the longest-inactive holder past inactivity time.
    #[serde(default)]
    pub reclaim_on_request: bool,
    /// Queue a holder revoked for inactivity again while their browser is still open.
    #[serde(default)]
    pub auto_relogin: bool,
    /// Activity coalescing window in seconds: within it, further activity of a holder who
    /// is not warned is not journaled again. Default: min(60, inactivity_s / 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesce_s: Option<u32>,
    /// What the queue page shows, and where the product lives (for `return_to`).
    /// Not serialized when empty, so the JSON of older settings is unchanged.
    #[serde(default, skip_serializing_if = "QueuePage::is_empty")]
    pub queue_page: QueuePage,
    /// Where to keep the product's access group in step with the pool (none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<crate::connector_settings::ConnectorSettings>,
    /// Directory groups (by name or SCIM id) whose users the source-group sync puts in
    /// the pool (rule 9). Empty: the pool is managed by hand and sync changes nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_groups: Vec<String>,
    /// Directory groups of power users: the sync leaves them out of the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed_groups: Vec<String>,
    /// Seconds between scheduled syncs; 0 (the default): only "run now".
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sync_interval_s: u32,
    /// Who may be in the pool, by user attributes; checked at sync and at every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligibility: Option<Eligibility>,
    /// Reservations and caps per directory group (rule 10); see [`crate::reservation`].
    /// Empty (the default): no group has reserved slots or a cap, and requests pay nothing.
    #[serde(
        default,
        skip_serializing_if = "crate::reservation::Reservations::is_none"
    )]
    pub reservations: crate::reservation::Reservations,
    /// Ordered, named rules that let a page view through the gate without a slot (robots,
    /// integration users, monitoring, REST paths); see [`crate::bypass`]. Empty (the
    /// default): everyone goes through the pool, and the JSON of older settings is unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass: Vec<crate::bypass::BypassRule>,
    /// How the gate treats users: `enforce` (the default), `passthrough` (a shadow run:
    /// nobody waits, the pool records what would have happened) or `queue_all`
    /// (maintenance: nobody new gets a slot); see [`crate::mode`].
    #[serde(default, skip_serializing_if = "crate::mode::Mode::is_enforce")]
    pub mode: crate::mode::Mode,
    /// Path prefixes of the product's API (`/rest/` for Jira, Confluence, Bitbucket): a
    /// refused page view under one gets the queue's JSON answer (429, `Retry-After`)
    /// whatever its `Accept` says; see [`crate::answer`]. Empty (the default): `Accept`
    /// alone decides, and the JSON of older settings is unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_prefixes: Vec<String>,
    /// Licence-use alert rules (held slots, queue length, wait p95, tier in use), fired
    /// and resolved by the sweep; see [`crate::alert`]. Empty (the default): no alerts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<crate::alert::AlertRule>,
    /// Where fired and resolved alerts are delivered (a signed JSON POST); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_webhook: Option<crate::alert::AlertWebhook>,
    /// The product's IANA time zone (`Europe/Berlin`), in which its `schedule` reads;
    /// `None` (the default): UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Scheduled capacity: weekly and dated windows with their own pool sizes
    /// (`shared_slots` is the size otherwise); see [`crate::schedule`]. Empty (the
    /// default): the pool always has `shared_slots`.
    #[serde(default, skip_serializing_if = "crate::schedule::Schedule::is_empty")]
    pub schedule: crate::schedule::Schedule,
}

/// The administrator's text for the queue page of a product, and the product's address.
///
/// Every field is optional; settings written before these existed load with all of them
/// empty. The text is shown escaped (the message as sanitised Markdown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuePage {
    /// Heading of the queue page (plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A message under the heading, in Markdown (rendered sanitised: no HTML of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Address of a logo image (`https://...`, `http://...` or a path on this host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// An uploaded logo as a `data:image/(png|jpeg|gif|webp);base64,...` URL; served by
    /// slotpool itself and preferred over `logo_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Where the product lives (`https://jira.example.com/`): `return_to` addresses of the
    /// queue page must lie under it, so the page never redirects anywhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// What the queue page says while the product is in `queue_all` mode (maintenance),
    /// in Markdown like `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_all_message: Option<String>,
}

/// Longest queue page title accepted, in bytes.
pub const MAX_TITLE_LEN: usize = 200;
/// Longest queue page message accepted, in bytes.
pub const MAX_MESSAGE_LEN: usize = 10_000;
/// Longest address accepted (`logo_url`, `base_url`), in bytes.
pub const MAX_URL_LEN: usize = 2_000;
/// Largest uploaded logo accepted, as a data URL, in bytes.
pub const MAX_LOGO_LEN: usize = 96 * 1024;
/// Image types an uploaded logo may have (no SVG: it can carry script).
pub const LOGO_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

impl QueuePage {
    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        *self == QueuePage::default()
    }

    /// The media type and base64 payload of the uploaded logo, if it is a valid data URL.
    pub fn logo_parts(&self) -> Option<(&str, &str)> {
        let rest = self.logo.as_deref()?.strip_prefix("data:")?;
        let (mime, data) = rest.split_once(";base64,")?;
        LOGO_TYPES.contains(&mime).then_some((mime, data))
    }

    fn validate(&self, problems: &mut Vec<String>) {
        let text_ok = |v: &Option<String>, max: usize| {
            v.as_ref().is_none_or(|t| {
                t.len() <= max
                    && !t
                        .chars()
                        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
            })
        };
        if !text_ok(&self.title, MAX_TITLE_LEN) {
            problems.push(format!(
                "queue_page.title must be at most {MAX_TITLE_LEN} bytes of text"
            ));
        }
        if !text_ok(&self.message, MAX_MESSAGE_LEN) {
            problems.push(format!(
                "queue_page.message must be at most {MAX_MESSAGE_LEN} bytes of text"
            ));
        }
        if !text_ok(&self.queue_all_message, MAX_MESSAGE_LEN) {
            problems.push(format!(
                "queue_page.queue_all_message must be at most {MAX_MESSAGE_LEN} bytes of text"
            ));
        }
        let url_ok = |u: &str, allow_path: bool| {
            let plain = u.len() <= MAX_URL_LEN
                && !u.chars().any(|c| {
                    c.is_whitespace()
                        || c.is_control()
                        || c == '"'
                        || c == '<'
                        || c == '>'
                        || c == '\\'
                });
            let absolute = ["https://", "http://"].iter().any(|s| {
                u.strip_prefix(s)
                    .is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
            });
            let path = allow_path && u.starts_with('/') && !u.starts_with("//");
            plain && (absolute || path)
        };
        if let Some(u) = &self.logo_url {
            if !url_ok(u, true) {
                problems.push(
                    "queue_page.logo_url must be an http(s) address or a path starting with '/'"
                        .to_string(),
                );
            }
        }
        if let Some(u) = &self.base_url {
            if !url_ok(u, false) {
                problems.push("queue_page.base_url must be an absolute http(s) address such as https://jira.example.com/".to_string());
            }
        }
        if let Some(l) = &self.logo {
            let valid = l.len() <= MAX_LOGO_LEN
                && self.logo_parts().is_some_and(|(_, data)| {
                    data.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
                });
            if !valid {
                problems.push(format!(
                    "queue_page.logo must be a base64 data URL of type {} and at most {MAX_LOGO_LEN} bytes",
                    LOGO_TYPES.join(", ")
                ));
            }
        }
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Shortest schedule accepted for the source-group sync, in seconds.
pub const MIN_SYNC_INTERVAL_S: u32 = 60;
/// Most groups a product may name in `source_groups` or `fixed_groups`.
pub const MAX_GROUPS: usize = 100;

mod defaults {
    pub fn inactivity_s() -> u32 {
        1800
    }
    pub fn warning_lead_s() -> u32 {
        60
    }
    pub fn sweep_interval_s() -> u32 {
        300
    }
    pub fn queue_timer_s() -> u32 {
        60
    }
}

/// Largest licence tier accepted: far above any real site, small enough to stay sane.
pub const MAX_LICENCE_TIER: u32 = 10_000_000;
pub use crate::time::MAX_INTERVAL_S;

impl Settings {
    /// The capacity calendar of these settings (their `timezone`, `schedule` and
    /// `shared_slots`, the size otherwise); see [`crate::schedule`].
    pub fn calendar(
        &self,
    ) -> Result<crate::schedule::Calendar, Vec<crate::schedule::ScheduleError>> {
        crate::schedule::Calendar::new(self.timezone.as_deref(), &self.schedule, self.shared_slots)
    }

    /// Settings with the given sizes and every other value at its default.
    pub fn new(kind: ProductKind, licence_tier: u32, shared_slots: u32) -> Self {
        Settings {
            kind,
            licence_tier,
            shared_slots,
            inactivity_s: defaults::inactivity_s(),
            warning_lead_s: defaults::warning_lead_s(),
            sweep_interval_s: defaults::sweep_interval_s(),
            lock_s: 0,
            queue_timer_s: defaults::queue_timer_s(),
            reclaim_on_request: false,
            auto_relogin: false,
            coalesce_s: None,
            queue_page: QueuePage::default(),
            connector: None,
            source_groups: Vec::new(),
            fixed_groups: Vec::new(),
            sync_interval_s: 0,
            eligibility: None,
            reservations: Default::default(),
            bypass: Vec::new(),
            mode: Default::default(),
            api_prefixes: Vec::new(),
            alerts: Vec::new(),
            alert_webhook: None,
            timezone: None,
            schedule: Default::default(),
        }
    }

    /// The activity coalescing window, in milliseconds.
    pub fn coalesce_window_ms(&self) -> i64 {
        let s = self.coalesce_s.unwrap_or((self.inactivity_s / 10).min(60));
        i64::from(s) * 1000
    }

    /// The first sweep at or after `t`. Sweeps run on a fixed grid of `sweep_interval_s`
    /// from the epoch, so the core can tell a holder the exact instant of revocation.
    pub fn sweep_at_or_after(&self, t: Timestamp) -> Timestamp {
        let step = i64::from(self.sweep_interval_s.max(1)) * 1000;
        let ms = t.as_millis();
        let up = if ms.rem_euclid(step) == 0 { 0 } else { step };
        Timestamp::from_millis(ms.div_euclid(step) * step + up)
    }

    /// When a holder last active at `last_activity`, and not warned yet, would lose the
    /// slot: the first sweep after the inactivity time.
    pub fn revoke_deadline(&self, last_activity: Timestamp) -> Timestamp {
        self.sweep_at_or_after(last_activity.plus_secs(self.inactivity_s))
    }

    /// When that holder is due for a warning: the lead before the deadline.
    pub fn warning_due(&self, last_activity: Timestamp) -> Timestamp {
        Timestamp::from_millis(
            self.revoke_deadline(last_activity).as_millis() - i64::from(self.warning_lead_s) * 1000,
        )
    }

    /// Checks the time zone and the schedule (see [`crate::schedule`]), given the
    /// product's current number of fixed users: every window's size, like
    /// `shared_slots`, must fit the licence tier beside the fixed users. The message
    /// lists each problem, naming its window.
    pub fn validate_schedule(&self, fixed_users: u32) -> Result<(), String> {
        let mut problems: Vec<crate::schedule::ScheduleError> =
            self.calendar().err().unwrap_or_default();
        for (at, size) in crate::schedule::Calendar::window_sizes(&self.schedule) {
            if u64::from(fixed_users) + u64::from(size) > u64::from(self.licence_tier) {
                problems.push(crate::schedule::ScheduleError::OverTier {
                    at,
                    fixed: fixed_users,
                    size,
                    tier: self.licence_tier,
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems
                .iter()
                .map(|p| format!("{p} ({})", p.code()))
                .collect::<Vec<_>>()
                .join("; "))
        }
    }

    /// Checks every value on its own and against the others, given the product's current
    /// number of fixed users. The message names each offending field, for the administrator.
    pub fn validate(&self, fixed_users: u32) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.licence_tier == 0 || self.licence_tier > MAX_LICENCE_TIER {
            problems.push(format!(
                "licence_tier must be between 1 and {MAX_LICENCE_TIER}"
            ));
        }
        if u64::from(fixed_users) + u64::from(self.shared_slots) > u64::from(self.licence_tier) {
            problems.push(format!(
                "fixed users ({fixed_users}) + shared_slots ({}) exceed licence_tier ({})",
                self.shared_slots, self.licence_tier
            ));
        }
        let in_range = |name: &str, v: u32, min: u32, problems: &mut Vec<String>| {
            if v < min || v > MAX_INTERVAL_S {
                problems.push(format!("{name} must be between {min} and {MAX_INTERVAL_S}"));
            }
        };
        in_range("inactivity_s", self.inactivity_s, 1, &mut problems);
        in_range("sweep_interval_s", self.sweep_interval_s, 1, &mut problems);
        in_range("queue_timer_s", self.queue_timer_s, 1, &mut problems);
        in_range("lock_s", self.lock_s, 0, &mut problems);
        if self.warning_lead_s >= self.inactivity_s {
            problems.push("warning_lead_s must be less than inactivity_s".to_string());
        }
        if let Some(c) = self.coalesce_s {
            if c >= self.inactivity_s || c > 3600 {
                problems
                    .push("coalesce_s must be less than inactivity_s and at most 3600".to_string());
            }
        }
        self.queue_page.validate(&mut problems);
        if let Some(Err(mut p)) = self.connector.as_ref().map(|c| c.validate()) {
            problems.append(&mut p);
        }
        if self.sync_interval_s != 0
            && !(MIN_SYNC_INTERVAL_S..=MAX_INTERVAL_S).contains(&self.sync_interval_s)
        {
            problems.push(format!(
                "sync_interval_s must be 0 (no schedule) or between {MIN_SYNC_INTERVAL_S} and {MAX_INTERVAL_S}"
            ));
        }
        for (name, groups) in [
            ("source_groups", &self.source_groups),
            ("fixed_groups", &self.fixed_groups),
        ] {
            if groups.len() > MAX_GROUPS
                || groups
                    .iter()
                    .any(|g| g.trim().is_empty() || g.len() > crate::profile::MAX_TEXT_LEN)
            {
                problems.push(format!(
                    "{name} lists at most {MAX_GROUPS} group names of 1 to {} bytes",
                    crate::profile::MAX_TEXT_LEN
                ));
            }
        }
        if let Some(rule) = &self.eligibility {
            if let Err(e) = rule.validate() {
                problems.push(e);
            }
        }
        crate::reservation::validate(&self.reservations, self.shared_slots, &mut problems);
        crate::bypass::validate(&self.bypass, &mut problems);
        crate::answer::validate(&self.api_prefixes, &mut problems);
        crate::alert::validate(&self.alerts, self.alert_webhook.as_ref(), &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Settings travel inside events as JSON text, so that later issues can add fields with
/// defaults without making old journals unreadable (bincode is positional; JSON is not).
pub(crate) mod as_json {
    use super::Settings;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &Settings, ser: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(s).map_err(serde::ser::Error::custom)?;
        ser.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Settings, D::Error> {
        let text = String::deserialize(de)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}
