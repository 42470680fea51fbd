//! A user's profile as the directory records it: plain data, kept apart from the
//! directory's rules so that the events (which record profiles) and the settings (which
//! bound group names by the same length) need nothing of `directory`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest user name, group name, id or attribute value accepted.
pub const MAX_TEXT_LEN: usize = 256;

/// One e-mail address of a user.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Email {
    /// The address.
    pub value: String,
    /// Its kind (`work`, `home`, ...), if given.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether it is the primary address.
    #[serde(default)]
    pub primary: bool,
}

/// What the directory knows of a user beyond their name and active state: the SCIM
/// profile. Recorded as JSON text inside events, so fields with defaults can be added
/// later without making old journals unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Profile {
    /// The identity provider's own id for the user (SCIM `externalId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The name to show (SCIM `displayName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Given name (SCIM `name.givenName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name (SCIM `name.familyName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// E-mail addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Email>,
    /// Free-form attributes (department, costCenter...), what eligibility rules read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}
