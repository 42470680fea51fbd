//! Source-group sync (docs/design.md rule 9): which users a product's pool should gain and
//! lose so that it matches its source groups. The report of a sync is plain data in
//! [`crate::sync_report`] (re-exported here).
//!
//! The diff is decided here, pure, from the directory and the product's members, fixed
//! users and settings; the directory actor carries it out with the product's ordinary
//! commands (`Enrol`, `Remove`), so membership changes are ordinary member events.

use crate::directory::DirectoryState;
use crate::settings::Settings;
pub use crate::sync_report::{SkipReason, Skipped, SyncReport};
use std::collections::BTreeSet;

/// What a sync should do to one product's pool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncPlan {
    /// Users to enrol.
    pub add: Vec<String>,
    /// Members to remove, and why.
    pub remove: Vec<Skipped>,
    /// Users of the source groups left out, and why.
    pub skipped: Vec<Skipped>,
    /// Source or fixed groups the directory does not have.
    pub missing_groups: Vec<String>,
}

/// The users of the groups named `names` (by display name without regard to case, or by
/// SCIM id); names that match no group go to `missing`.
fn users_of(
    directory: &DirectoryState,
    names: &[String],
    missing: &mut Vec<String>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for name in names {
        let mut found = false;
        for g in directory.groups_named(name) {
            found = true;
            out.extend(g.members.iter().cloned());
        }
        if !found {
            missing.push(name.clone());
        }
    }
    out
}

/// Plans the sync of a product with `settings`, current `members` and `fixed` users.
///
/// The pool's target is every user of the source groups who is active, has no fixed
/// licence, is in no fixed group and is admitted by the eligibility rule. Members outside
/// the target are removed. A product with no source groups is managed by hand: the plan is
/// empty.
pub fn plan(
    directory: &DirectoryState,
    settings: &Settings,
    members: &BTreeSet<String>,
    fixed: &BTreeSet<String>,
) -> SyncPlan {
    let mut out = SyncPlan::default();
    if settings.source_groups.is_empty() {
        return out;
    }
    let sources = users_of(directory, &settings.source_groups, &mut out.missing_groups);
    let fixed_groups = users_of(directory, &settings.fixed_groups, &mut out.missing_groups);
    let why_not = |user: &str| -> Option<SkipReason> {
        if fixed.contains(user) {
            return Some(SkipReason::Fixed);
        }
        if fixed_groups.contains(user) {
            return Some(SkipReason::FixedGroup);
        }
        let known = directory.user(user);
        if known.is_some_and(|u| !u.active) {
            return Some(SkipReason::Deactivated);
        }
        if let Some(rule) = &settings.eligibility {
            if !rule.admits(known.map(|u| &u.profile.attributes)) {
                return Some(SkipReason::NotEligible);
            }
        }
        None
    };
    let mut target = BTreeSet::new();
    for user in &sources {
        match why_not(user) {
            Some(why) => out.skipped.push(Skipped {
                user: user.clone(),
                why,
            }),
            None => {
                target.insert(user.clone());
            }
        }
    }
    out.add = target.difference(members).cloned().collect();
    for user in members.difference(&target) {
        let why = if sources.contains(user) {
            why_not(user).unwrap_or(SkipReason::NotInSourceGroups)
        } else {
            SkipReason::NotInSourceGroups
        };
        out.remove.push(Skipped {
            user: user.clone(),
            why,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{DirectoryCommand, GroupInput, Profile, UserInput};
    use crate::eligibility::Eligibility;
    use crate::settings::ProductKind;

    fn directory() -> DirectoryState {
        let mut d = DirectoryState::new();
        let mut run = |c: DirectoryCommand| {
            for e in d.decide(&c).expect("accepted") {
                d.apply(&e);
            }
        };
        for (id, name, active, dept) in [
            ("1", "ann", true, "R&D"),
            ("2", "bob", true, "Sales"),
            ("3", "cy", false, "R&D"),
            ("4", "dee", true, "R&D"),
            ("5", "eve", true, "Support"),
        ] {
            run(DirectoryCommand::CreateUser {
                id: id.into(),
                input: UserInput {
                    user: name.into(),
                    active,
                    profile: Profile {
                        attributes: [("department".to_string(), dept.to_string())].into(),
                        ..Profile::default()
                    },
                },
            });
        }
        run(DirectoryCommand::CreateGroup {
            id: "g".into(),
            input: GroupInput {
                display_name: "Jira Users".into(),
                external_id: None,
                members: ["1", "2", "3", "4", "5"].map(String::from).to_vec(),
            },
        });
        run(DirectoryCommand::CreateGroup {
            id: "p".into(),
            input: GroupInput {
                display_name: "power".into(),
                external_id: None,
                members: vec!["4".into()],
            },
        });
        d
    }

    #[test]
    fn the_plan_filters_fixed_deactivated_and_ineligible_users_and_removes_the_rest() {
        let d = directory();
        let settings = Settings {
            source_groups: vec!["jira users".into(), "nope".into()],
            fixed_groups: vec!["power".into()],
            eligibility: Some(Eligibility::In {
                attribute: "department".into(),
                values: vec!["R&D".into(), "Support".into()],
            }),
            ..Settings::new(ProductKind::Jira, 10, 5)
        };
        let members: BTreeSet<String> = ["eve", "zed"].map(String::from).into();
        let fixed: BTreeSet<String> = BTreeSet::new();
        let p = plan(&d, &settings, &members, &fixed);
        assert_eq!(p.add, vec!["ann".to_string()]);
        assert_eq!(
            p.remove,
            vec![Skipped {
                user: "zed".into(),
                why: SkipReason::NotInSourceGroups
            }]
        );
        assert_eq!(
            p.skipped,
            vec![
                Skipped {
                    user: "bob".into(),
                    why: SkipReason::NotEligible
                },
                Skipped {
                    user: "cy".into(),
                    why: SkipReason::Deactivated
                },
                Skipped {
                    user: "dee".into(),
                    why: SkipReason::FixedGroup
                },
            ]
        );
        assert_eq!(p.missing_groups, vec!["nope".to_string()]);
        // A fixed user is left out; no source groups: nothing to do.
        let fixed: BTreeSet<String> = ["ann".to_string()].into();
        let p = plan(&d, &settings, &members, &fixed);
        assert!(p.add.is_empty());
        assert!(p.skipped.contains(&Skipped {
            user: "ann".into(),
            why: SkipReason::Fixed
        }));
        let manual = Settings::new(ProductKind::Jira, 10, 5);
        assert_eq!(plan(&d, &manual, &members, &fixed), SyncPlan::default());
    }
}
