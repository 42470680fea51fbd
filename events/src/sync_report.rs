//! The report of a source-group sync (docs/design.md rule 9), and why a user was left out:
//! plain data, which the directory keeps (one report per product) and the events record,
//! apart from the planning in [`crate::sync`].

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Why a user of a source group is not (or no longer) in the pool.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The user has a fixed licence in this product.
    Fixed,
    /// The user is in one of the product's `fixed_groups`.
    FixedGroup,
    /// The user is deactivated.
    Deactivated,
    /// The product's eligibility rule does not admit the user.
    NotEligible,
    /// The user is in no source group (any more).
    NotInSourceGroups,
    /// The product refused the change; the text is its reason code.
    Refused(String),
}

/// One user and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Skipped {
    /// The user.
    pub user: String,
    /// Why.
    pub why: SkipReason,
}

/// What a sync did: kept (journaled) and shown by `GET /admin/v1/products/{p}/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncReport {
    /// When it ran.
    pub at: Timestamp,
    /// `manual` (run now) or `scheduled`.
    pub trigger: String,
    /// The source groups it read.
    pub source_groups: Vec<String>,
    /// Users enrolled.
    pub added: Vec<String>,
    /// Members removed, and why.
    pub removed: Vec<Skipped>,
    /// Users left out, and why.
    pub skipped: Vec<Skipped>,
    /// Groups named in the settings that the directory does not have.
    #[serde(default)]
    pub missing_groups: Vec<String>,
}
