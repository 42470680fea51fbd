//! A product's `connector` setting, as data: which REST API to speak, where, and the
//! timeouts and retry bounds, with their validation. Part of [`crate::Settings`]; what the
//! connector does with recorded events is in [`crate::connector`].

use serde::{Deserialize, Serialize};

/// Which REST API the connector speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// Jira Data Center: `/rest/api/2/group/user`.
    Jira,
    /// Confluence Data Center: `/rest/api/user/{u}/group/{g}`.
    Confluence,
    /// Bitbucket Data Center: `/rest/api/latest/admin/users/add-groups`, `remove-group`.
    Bitbucket,
    /// Any other product: a JSON POST per change, with an idempotency key.
    Webhook,
}

impl ConnectorKind {
    /// The lowercase name used in settings and the admin API.
    pub fn code(self) -> &'static str {
        match self {
            ConnectorKind::Jira => "jira",
            ConnectorKind::Confluence => "confluence",
            ConnectorKind::Bitbucket => "bitbucket",
            ConnectorKind::Webhook => "webhook",
        }
    }
}

/// A product's `connector` setting: where and how to keep its access group in step with
/// the pool. The credentials stay in the file; only its path is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// Which REST API to speak.
    pub kind: ConnectorKind,
    /// The product's base URL (`https://jira.example.com`, with any context path).
    pub base_url: String,
    /// A file holding `user:password` (basic authentication) or a bearer token. Read by
    /// the delivering side at each round, never recorded or shown. Optional for webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// The product group that grants access (`jira-software-users`).
    pub access_group: String,
    /// Seconds one call to the product may take before it counts as failed.
    #[serde(default = "defaults::timeout_s")]
    pub timeout_s: u32,
    /// First retry delay after a failure, in milliseconds; doubles with each failure.
    #[serde(default = "defaults::retry_base_ms")]
    pub retry_base_ms: u32,
    /// Longest retry delay, in seconds.
    #[serde(default = "defaults::retry_cap_s")]
    pub retry_cap_s: u32,
    /// Re-sync the group at start and when deliveries recover after failures.
    #[serde(default = "defaults::auto_resync")]
    pub auto_resync: bool,
    /// Space entitlements (Confluence only): fetch the spaces and offer their permissions
    /// for members to request (see [`crate::space`]). Absent: no space entitlements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spaces: Option<crate::space::SpaceSettings>,
}

mod defaults {
    pub fn timeout_s() -> u32 {
        10
    }
    pub fn retry_base_ms() -> u32 {
        500
    }
    pub fn retry_cap_s() -> u32 {
        300
    }
    pub fn auto_resync() -> bool {
        true
    }
}

/// Whether `name` may be a connector's `credentials_file`: a relative name (one or more
/// `/`-separated parts, none empty, `.` or `..`; no `\\`, no control character; at most
/// 255 bytes), which the service looks up in its configured secrets directory or in the
/// names its config file lists. So settings given through the admin API can never make
/// the service read an arbitrary file and send it to the connector's host.
pub fn valid_credentials_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

impl ConnectorSettings {
    /// Settings with every optional value at its default.
    pub fn new(kind: ConnectorKind, base_url: &str, access_group: &str) -> Self {
        ConnectorSettings {
            kind,
            base_url: base_url.to_string(),
            credentials_file: None,
            access_group: access_group.to_string(),
            timeout_s: defaults::timeout_s(),
            retry_base_ms: defaults::retry_base_ms(),
            retry_cap_s: defaults::retry_cap_s(),
            auto_resync: defaults::auto_resync(),
            spaces: None,
        }
    }

    /// Checks every value; each problem names its field (prefixed `connector.`).
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let url = self.base_url.as_str();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with('/') => {}
            _ => problems.push("connector.base_url must be an http:// or https:// URL".into()),
        }
        if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems
                .push("connector.base_url must be at most 2048 characters, without spaces".into());
        }
        let group = self.access_group.as_str();
        if group.trim().is_empty() || group.len() > 255 || group.chars().any(char::is_control) {
            problems.push("connector.access_group must be 1 to 255 printable characters".into());
        }
        if let Some(f) = &self.credentials_file {
            if !valid_credentials_name(f) {
                problems.push(
                    "connector.credentials_file must be the name of a file in the service's connector secrets directory (relative, without `..`), or a name the config file lists, such as jira.cred".into(),
                );
            }
        } else if self.kind != ConnectorKind::Webhook {
            problems.push(format!(
                "connector.credentials_file is required for kind {}",
                self.kind.code()
            ));
        }
        if !(1..=300).contains(&self.timeout_s) {
            problems.push("connector.timeout_s must be between 1 and 300".into());
        }
        if !(10..=600_000).contains(&self.retry_base_ms) {
            problems.push("connector.retry_base_ms must be between 10 and 600000".into());
        }
        if !(1..=86_400).contains(&self.retry_cap_s)
            || u64::from(self.retry_cap_s) * 1000 < u64::from(self.retry_base_ms)
        {
            problems.push(
                "connector.retry_cap_s must be between 1 and 86400, and not below retry_base_ms"
                    .into(),
            );
        }
        if let Some(spaces) = &self.spaces {
            if self.kind != ConnectorKind::Confluence {
                problems.push(format!(
                    "connector.spaces is for kind confluence only, not {}",
                    self.kind.code()
                ));
            }
            if let Err(p) = spaces.validate() {
                problems.extend(p);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated_field_by_field() {
        let mut s = ConnectorSettings::new(ConnectorKind::Jira, "https://jira.example.com", "g");
        assert!(s.validate().is_err(), "jira needs credentials");
        s.credentials_file = Some("jira.cred".into());
        assert!(s.validate().is_ok());
        let bad = ConnectorSettings {
            base_url: "ftp://x".into(),
            access_group: " ".into(),
            timeout_s: 0,
            retry_base_ms: 1,
            ..s.clone()
        };
        let problems = bad.validate().expect_err("bad").join("; ");
        for field in ["base_url", "access_group", "timeout_s", "retry_base_ms"] {
            assert!(problems.contains(field), "{problems}");
        }
        let hook = ConnectorSettings::new(ConnectorKind::Webhook, "http://127.0.0.1:9/h", "g");
        assert!(
            hook.validate().is_ok(),
            "a webhook may go without credentials"
        );
    }

    #[test]
    fn credentials_files_are_names_in_the_secrets_dir_never_paths_elsewhere() {
        for good in ["jira.cred", "prod/jira.cred", "a..b", ".hidden"] {
            assert!(valid_credentials_name(good), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../data/admin_token",
            "a/../../x",
            "./x",
            "a//b",
            "a/",
            "a\\b",
            "a\nb",
            &"x".repeat(256),
        ] {
            assert!(!valid_credentials_name(bad), "{bad:?}");
            let mut s = ConnectorSettings::new(ConnectorKind::Jira, "https://j", "g");
            s.credentials_file = Some(bad.to_string());
            let problems = s.validate().expect_err("refused").join("; ");
            assert!(problems.contains("credentials_file"), "{problems}");
        }
    }

    #[test]
    fn old_settings_without_the_optional_values_still_load() {
        let s: ConnectorSettings = serde_json::from_str(
            r#"{"kind":"bitbucket","base_url":"http://b","credentials_file":"/c","access_group":"g"}"#,
        )
        .expect("parse");
        assert_eq!(s.timeout_s, 10);
        assert!(s.auto_resync);
    }
}
