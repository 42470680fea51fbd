//! The space-entitlement rules of a product (see [`crate::space`]): who may ask for
//! permissions in a space, approving, rejecting and revoking, and what the connector
//! records once it has granted or removed them.

use super::ProductState;
use crate::command::{Command, Refusal};
use crate::event::ProductEvent;
use crate::settings::Settings;
use crate::space::{SpaceRevokeReason, SpaceWork};
use crate::time::Timestamp;

/// Who a deactivation's revocation is recorded as by.
pub const BY_DIRECTORY: &str = "directory";

impl ProductState {
    /// Decides a space command (the caller matched one): the events, or a refusal.
    pub(super) fn decide_space(
        &self,
        out: &mut Vec<ProductEvent>,
        command: &Command,
        settings: &Settings,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let enabled = settings
            .connector
            .as_ref()
            .is_some_and(|c| c.spaces.is_some());
        match command {
            Command::CatalogueSpaces { spaces } if !self.spaces.same_catalogue(spaces) => {
                out.push(ProductEvent::SpacesCatalogued {
                    spaces: spaces.clone(),
                    at: now,
                });
            }
            Command::RequestSpace {
                id,
                user,
                space,
                operations,
                reason,
            } => {
                if !enabled {
                    return Err(Refusal::NoSpaces);
                }
                let entry = self.entry(user);
                if entry.deactivated {
                    return Err(Refusal::Deactivated);
                }
                if !entry.member && !entry.fixed {
                    return Err(Refusal::NotMember);
                }
                let operations = crate::space::normalise(operations.clone());
                self.spaces.check_request(id, user, space, &operations)?;
                out.push(ProductEvent::SpaceRequested {
                    id: id.clone(),
                    user: user.clone(),
                    space: space.clone(),
                    operations,
                    reason: reason.clone(),
                    at: now,
                });
            }
            Command::ApproveSpaceRequest {
                id,
                by,
                note,
                active,
            } => {
                let r = self.spaces.open(id)?;
                if self.entry(&r.user).deactivated || !active {
                    return Err(Refusal::Deactivated);
                }
                if !self.spaces.catalogue.contains_key(&r.space) {
                    return Err(Refusal::UnknownSpace {
                        space: r.space.clone(),
                    });
                }
                out.push(ProductEvent::SpaceRequestApproved {
                    id: id.clone(),
                    by: by.clone(),
                    note: note.clone(),
                    at: now,
                });
            }
            Command::RejectSpaceRequest { id, by, note } => {
                self.spaces.open(id)?;
                out.push(ProductEvent::SpaceRequestRejected {
                    id: id.clone(),
                    by: by.clone(),
                    note: note.clone(),
                    at: now,
                });
            }
            Command::RevokeSpaceAccess { id, by } => {
                let r = self
                    .spaces
                    .requests
                    .get(id)
                    .ok_or(Refusal::UnknownRequest)?;
                if !r.is_live() {
                    return Err(Refusal::RequestClosed { state: r.state() });
                }
                out.push(ProductEvent::SpaceAccessRevoked {
                    id: id.clone(),
                    reason: SpaceRevokeReason::Admin,
                    by: by.clone(),
                    at: now,
                });
            }
            Command::FulfilSpaceRequest { id, grants } => {
                // Granted while being revoked still counts: what was granted must be
                // removed again, so the grant is recorded and the removal follows.
                let due = self.spaces.requests.get(id).is_some_and(|r| {
                    r.decision.as_ref().is_some_and(|d| d.approved) && r.granted.is_none()
                });
                if due {
                    out.push(ProductEvent::SpaceAccessGranted {
                        id: id.clone(),
                        grants: grants.clone(),
                        at: now,
                    });
                }
            }
            Command::FailSpaceRequest { id, grants, error } => {
                let due = self
                    .spaces
                    .requests
                    .get(id)
                    .and_then(|r| r.work())
                    .is_some_and(|w| matches!(w, SpaceWork::Grant { .. }));
                if due {
                    let mut error = error.clone();
                    if error.len() > crate::fixed_request::MAX_TEXT_LEN {
                        let mut cut = crate::fixed_request::MAX_TEXT_LEN;
                        while !error.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        error.truncate(cut);
                    }
                    out.push(ProductEvent::SpaceAccessFailed {
                        id: id.clone(),
                        grants: grants.clone(),
                        error,
                        at: now,
                    });
                }
            }
            Command::ConfirmSpaceRemoval { id } => {
                let due = self
                    .spaces
                    .requests
                    .get(id)
                    .and_then(|r| r.work())
                    .is_some_and(|w| matches!(w, SpaceWork::Remove { .. }));
                if due {
                    out.push(ProductEvent::SpaceAccessRemoved {
                        id: id.clone(),
                        at: now,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A deactivated user loses every space entitlement that is (or is about to be) in
    /// effect: one revocation per request, by the directory.
    pub(super) fn revoke_spaces_of(&self, out: &mut Vec<ProductEvent>, user: &str, now: Timestamp) {
        for r in self.spaces.live_of(user) {
            out.push(ProductEvent::SpaceAccessRevoked {
                id: r.id.clone(),
                reason: SpaceRevokeReason::Deactivated,
                by: BY_DIRECTORY.to_string(),
                at: now,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector_settings::{ConnectorKind, ConnectorSettings};
    use crate::settings::ProductKind;
    use crate::space::{Grant, Space, SpaceOperation, SpaceSettings};

    const T0: Timestamp = Timestamp::from_millis(1_000_000);

    fn op(k: &str, t: &str) -> SpaceOperation {
        SpaceOperation::new(k, t)
    }

    /// A Confluence product with space entitlements, members `ann` and `bob`, and the
    /// catalogue DOCS (read, create page) and HR (read).
    fn product() -> ProductState {
        let mut settings = Settings::new(ProductKind::Confluence, 10, 5);
        let mut c = ConnectorSettings::new(ConnectorKind::Confluence, "http://c", "g");
        c.credentials_file = Some("c.cred".into());
        c.spaces = Some(SpaceSettings::default());
        settings.connector = Some(c);
        let mut s = ProductState::new();
        let run = |s: &mut ProductState, c: Command| {
            for e in s.decide(&c, T0).expect("decided") {
                s.apply(&e);
            }
        };
        run(&mut s, Command::Configure(settings));
        for u in ["ann", "bob"] {
            run(
                &mut s,
                Command::Enrol {
                    user: u.into(),
                    active: true,
                },
            );
        }
        run(
            &mut s,
            Command::CatalogueSpaces {
                spaces: vec![
                    Space {
                        key: "DOCS".into(),
                        name: "Docs".into(),
                        operations: vec![op("read", "space"), op("create", "page")],
                    },
                    Space {
                        key: "HR".into(),
                        name: "HR".into(),
                        operations: vec![op("read", "space")],
                    },
                ],
            },
        );
        s
    }

    fn run(s: &mut ProductState, c: Command) -> Result<Vec<ProductEvent>, Refusal> {
        let events = s.decide(&c, T0)?;
        for e in &events {
            s.apply(e);
        }
        Ok(events)
    }

    fn ask(id: &str, user: &str, space: &str, ops: &[SpaceOperation]) -> Command {
        Command::RequestSpace {
            id: id.into(),
            user: user.into(),
            space: space.into(),
            operations: ops.to_vec(),
            reason: "work".into(),
        }
    }

    fn approve(id: &str) -> Command {
        Command::ApproveSpaceRequest {
            id: id.into(),
            by: "carol".into(),
            note: String::new(),
            active: true,
        }
    }

    #[test]
    fn a_request_goes_through_approval_grant_revocation_and_removal() {
        let mut s = product();
        run(
            &mut s,
            ask(
                "r1",
                "ann",
                "DOCS",
                &[op("read", "space"), op("create", "page")],
            ),
        )
        .expect("asked");
        let r = s.space_request("r1").expect("kept");
        assert_eq!(r.state(), "open");
        assert_eq!(r.work(), None, "nothing for the connector before approval");
        run(&mut s, approve("r1")).expect("approved");
        let r = s.space_request("r1").expect("kept");
        assert_eq!(r.state(), "approved");
        assert_eq!(r.decision.as_ref().map(|d| d.by.as_str()), Some("carol"));
        let Some(SpaceWork::Grant { operations, .. }) = r.work() else {
            panic!("the connector grants next: {:?}", r.work());
        };
        assert_eq!(operations, vec![op("create", "page"), op("read", "space")]);
        let grants = vec![
            Grant {
                operation: op("create", "page"),
                permission_id: Some(7),
            },
            Grant {
                operation: op("read", "space"),
                permission_id: Some(8),
            },
        ];
        let e = run(
            &mut s,
            Command::FulfilSpaceRequest {
                id: "r1".into(),
                grants: grants.clone(),
            },
        )
        .expect("fulfilled");
        assert_eq!(e.len(), 1);
        assert_eq!(s.space_request("r1").expect("kept").state(), "granted");
        assert_eq!(s.space_request("r1").expect("kept").work(), None);
        // A second fulfilment (a re-delivery) records nothing.
        let again = Command::FulfilSpaceRequest {
            id: "r1".into(),
            grants,
        };
        assert_eq!(run(&mut s, again), Ok(vec![]));
        run(
            &mut s,
            Command::RevokeSpaceAccess {
                id: "r1".into(),
                by: "carol".into(),
            },
        )
        .expect("revoked");
        let r = s.space_request("r1").expect("kept");
        assert_eq!(r.state(), "revoking");
        assert!(
            matches!(r.work(), Some(SpaceWork::Remove { ref grants, .. }) if grants.len() == 2)
        );
        run(&mut s, Command::ConfirmSpaceRemoval { id: "r1".into() }).expect("removed");
        assert_eq!(s.space_request("r1").expect("kept").state(), "revoked");
        assert_eq!(
            run(&mut s, Command::ConfirmSpaceRemoval { id: "r1".into() }),
            Ok(vec![])
        );
        assert!(s.spaces().pending_work().is_empty());
        // The same user may ask again once the last one is over.
        run(&mut s, ask("r2", "ann", "DOCS", &[op("read", "space")])).expect("asked again");
    }

    #[test]
    fn bad_requests_are_refused_with_their_reason() {
        let mut s = product();
        let cases = [
            (
                ask("x", "ann", "NOPE", &[op("read", "space")]),
                "unknown_space",
            ),
            (
                ask("x", "ann", "HR", &[op("create", "page")]),
                "operation_not_offered",
            ),
            (ask("x", "ann", "HR", &[]), "operation_not_offered"),
            (
                ask(
                    "x",
                    "ann",
                    "HR",
                    &[op("read", "space"), op("read", "space")],
                ),
                "operation_not_offered",
            ),
            (ask("x", "zed", "HR", &[op("read", "space")]), "not_member"),
        ];
        for (c, reason) in cases {
            assert_eq!(run(&mut s, c).map_err(|r| r.code()), Err(reason));
        }
        run(&mut s, ask("r1", "ann", "HR", &[op("read", "space")])).expect("asked");
        assert_eq!(
            run(&mut s, ask("r2", "ann", "HR", &[op("read", "space")])),
            Err(Refusal::DuplicateRequest { id: "r1".into() })
        );
        assert_eq!(
            run(&mut s, ask("r1", "bob", "HR", &[op("read", "space")])),
            Err(Refusal::DuplicateRequest { id: "r1".into() }),
            "an id is used once"
        );
        run(&mut s, approve("r1")).expect("approved");
        assert_eq!(
            run(&mut s, ask("r3", "ann", "HR", &[op("read", "space")])).map_err(|r| r.code()),
            Err("duplicate_request"),
            "an entitlement in effect is a duplicate too"
        );
        assert_eq!(
            run(&mut s, approve("r1")),
            Err(Refusal::RequestClosed { state: "approved" })
        );
        assert_eq!(
            run(
                &mut s,
                Command::RejectSpaceRequest {
                    id: "nope".into(),
                    by: "c".into(),
                    note: String::new()
                }
            ),
            Err(Refusal::UnknownRequest)
        );
        run(
            &mut s,
            Command::SetActive {
                user: "bob".into(),
                active: false,
            },
        )
        .expect("deactivated");
        assert_eq!(
            run(&mut s, ask("r4", "bob", "DOCS", &[op("read", "space")])),
            Err(Refusal::Deactivated)
        );
    }

    #[test]
    fn deactivation_revokes_what_is_in_effect_and_nothing_else() {
        let mut s = product();
        run(
            &mut s,
            ask("granted", "ann", "DOCS", &[op("read", "space")]),
        )
        .expect("asked");
        run(&mut s, approve("granted")).expect("approved");
        run(
            &mut s,
            Command::FulfilSpaceRequest {
                id: "granted".into(),
                grants: vec![Grant {
                    operation: op("read", "space"),
                    permission_id: Some(1),
                }],
            },
        )
        .expect("granted");
        run(&mut s, ask("approved", "ann", "HR", &[op("read", "space")])).expect("asked");
        run(&mut s, approve("approved")).expect("approved");
        run(&mut s, ask("open", "bob", "HR", &[op("read", "space")])).expect("asked");
        let events = run(
            &mut s,
            Command::SetActive {
                user: "ann".into(),
                active: false,
            },
        )
        .expect("deactivated");
        let revoked: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                ProductEvent::SpaceAccessRevoked {
                    id,
                    reason: SpaceRevokeReason::Deactivated,
                    ..
                } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(revoked, vec!["approved", "granted"]);
        assert_eq!(
            s.space_request("granted").expect("kept").state(),
            "revoking"
        );
        // Approved but never granted: nothing to remove, nothing to grant.
        assert_eq!(
            s.space_request("approved").expect("kept").state(),
            "revoked"
        );
        assert_eq!(s.space_request("approved").expect("kept").work(), None);
        assert_eq!(s.space_request("open").expect("kept").state(), "open");
        // An approval of a deactivated user's request is refused.
        assert_eq!(
            run(
                &mut s,
                Command::ApproveSpaceRequest {
                    id: "open".into(),
                    by: "c".into(),
                    note: String::new(),
                    active: false
                }
            ),
            Err(Refusal::Deactivated)
        );
    }

    #[test]
    fn a_grant_that_crossed_a_revocation_is_recorded_and_then_removed() {
        let mut s = product();
        run(&mut s, ask("r", "ann", "HR", &[op("read", "space")])).expect("asked");
        run(&mut s, approve("r")).expect("approved");
        run(
            &mut s,
            Command::RevokeSpaceAccess {
                id: "r".into(),
                by: "c".into(),
            },
        )
        .expect("revoked");
        run(
            &mut s,
            Command::FulfilSpaceRequest {
                id: "r".into(),
                grants: vec![Grant {
                    operation: op("read", "space"),
                    permission_id: Some(3),
                }],
            },
        )
        .expect("recorded");
        assert!(matches!(
            s.space_request("r").expect("kept").work(),
            Some(SpaceWork::Remove { .. })
        ));
    }

    #[test]
    fn a_grant_confluence_refuses_for_good_fails_and_revoking_it_removes_what_was_granted() {
        let mut s = product();
        run(
            &mut s,
            ask(
                "r",
                "ann",
                "DOCS",
                &[op("read", "space"), op("create", "page")],
            ),
        )
        .expect("asked");
        run(&mut s, approve("r")).expect("approved");
        let partial = vec![Grant {
            operation: op("create", "page"),
            permission_id: Some(9),
        }];
        let fail = Command::FailSpaceRequest {
            id: "r".into(),
            grants: partial.clone(),
            error: "x".repeat(5000),
        };
        assert_eq!(run(&mut s, fail.clone()).map(|e| e.len()), Ok(1));
        let r = s.space_request("r").expect("kept");
        assert_eq!(r.state(), "failed");
        assert_eq!(r.work(), None, "not retried");
        assert!(r.failed.as_ref().is_some_and(|(_, e)| e.len() <= 2000));
        assert_eq!(run(&mut s, fail), Ok(vec![]), "recorded once");
        assert_eq!(
            run(&mut s, ask("r2", "ann", "DOCS", &[op("read", "space")])).map_err(|r| r.code()),
            Err("duplicate_request"),
            "revoke the failed one first"
        );
        run(
            &mut s,
            Command::RevokeSpaceAccess {
                id: "r".into(),
                by: "c".into(),
            },
        )
        .expect("revoked");
        let r = s.space_request("r").expect("kept");
        assert_eq!(r.state(), "revoking");
        assert_eq!(
            r.work(),
            Some(SpaceWork::Remove {
                id: "r".into(),
                user: "ann".into(),
                space: "DOCS".into(),
                grants: partial,
            })
        );
        // Failed before anything was granted: a deactivation has nothing to remove.
        run(&mut s, ask("h", "bob", "HR", &[op("read", "space")])).expect("asked");
        run(&mut s, approve("h")).expect("approved");
        let fail = Command::FailSpaceRequest {
            id: "h".into(),
            grants: vec![],
            error: "404".into(),
        };
        run(&mut s, fail).expect("failed");
        run(
            &mut s,
            Command::SetActive {
                user: "bob".into(),
                active: false,
            },
        )
        .expect("deactivated");
        let r = s.space_request("h").expect("kept");
        assert_eq!((r.state(), r.work()), ("revoked", None));
    }

    #[test]
    fn the_catalogue_is_recorded_only_when_it_changes_and_survives_an_image() {
        let mut s = product();
        let same = s.spaces().spaces().cloned().collect::<Vec<_>>();
        assert_eq!(
            run(&mut s, Command::CatalogueSpaces { spaces: same }),
            Ok(vec![])
        );
        run(&mut s, ask("r", "ann", "HR", &[op("read", "space")])).expect("asked");
        let back = ProductState::from_image(&s.image());
        assert_eq!(back.spaces(), s.spaces());
        let without_spaces = {
            let mut settings = s.settings().cloned().expect("configured");
            if let Some(c) = settings.connector.as_mut() {
                c.spaces = None;
            }
            settings
        };
        run(&mut s, Command::Configure(without_spaces)).expect("configured");
        assert_eq!(
            run(&mut s, ask("r9", "bob", "HR", &[op("read", "space")])),
            Err(Refusal::NoSpaces)
        );
    }

    #[test]
    fn offered_operations_are_confluence_ones_named_once() {
        assert!(SpaceSettings::default().validate().is_ok());
        let bad = SpaceSettings {
            offered: vec![op("read", "space"), op("read", "space"), op("fly", "space")],
        };
        let problems = bad.validate().expect_err("refused").join("; ");
        assert!(
            problems.contains("named twice") && problems.contains("fly:space"),
            "{problems}"
        );
        assert!(SpaceSettings { offered: vec![] }.validate().is_err());
        let mut jira = ConnectorSettings::new(ConnectorKind::Jira, "http://j", "g");
        jira.credentials_file = Some("j".into());
        jira.spaces = Some(SpaceSettings::default());
        let problems = jira.validate().expect_err("refused").join("; ");
        assert!(problems.contains("confluence only"), "{problems}");
    }
}
