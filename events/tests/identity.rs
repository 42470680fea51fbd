//! The core's rules for the product connector (who should be in the access group, after
//! any history) and for fixed-licence requests (who may ask, duplicates, the tier,
//! approval through the same rule as giving a fixed licence, replay and snapshots).

use slotpool_events::connector::touched_users;
use slotpool_events::{
    Command, ProductEvent, ProductKind, ProductState, Refusal, RequestState, Settings, Timestamp,
};
use std::collections::BTreeSet;

fn t(s: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + s * 1000)
}

/// Decides and applies; checks that replaying everything recorded gives the same views.
struct World {
    state: ProductState,
    log: Vec<ProductEvent>,
    now: i64,
}

impl World {
    fn new(tier: u32, shared: u32) -> World {
        let mut w = World {
            state: ProductState::new(),
            log: Vec::new(),
            now: 0,
        };
        w.run(Command::Configure(Settings::new(
            ProductKind::Jira,
            tier,
            shared,
        )))
        .expect("configure");
        w
    }

    fn run(&mut self, c: Command) -> Result<Vec<ProductEvent>, Refusal> {
        self.now += 1;
        let events = self.state.decide(&c, t(self.now))?;
        for e in &events {
            self.state.apply(e);
        }
        self.log.extend(events.iter().cloned());
        let replayed = ProductState::replay(&self.log);
        assert_eq!(replayed.access_group(), self.state.access_group());
        let back = ProductState::from_image(&self.state.image());
        assert_eq!(
            back.fixed_requests().collect::<Vec<_>>(),
            self.state.fixed_requests().collect::<Vec<_>>()
        );
        Ok(events)
    }

    fn ok(&mut self, c: Command) -> Vec<ProductEvent> {
        let what = format!("{c:?}");
        self.run(c)
            .unwrap_or_else(|r| panic!("{what} refused: {r}"))
    }

    fn enrol(&mut self, u: &str) {
        self.ok(Command::Enrol {
            user: u.into(),
            active: true,
        });
    }

    fn group(&self) -> Vec<String> {
        self.state.access_group().into_iter().collect()
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_access_group_is_the_holders_and_the_active_fixed_users() {
    let mut w = World::new(10, 2);
    for u in ["a", "b", "c"] {
        w.enrol(u);
        w.ok(Command::request(u));
    }
    assert_eq!(
        w.group(),
        names(&["a", "b"]),
        "c is queued, not in the group"
    );
    let released = w.ok(Command::Release { user: "a".into() });
    assert_eq!(touched_users(&released), names(&["a", "c"]));
    assert_eq!(w.group(), names(&["b", "c"]));
    w.ok(Command::GiveFixed {
        user: "f".into(),
        active: true,
    });
    assert_eq!(w.group(), names(&["b", "c", "f"]));
    // A deactivated fixed user loses access; reactivated, regains it.
    let off = w.ok(Command::SetActive {
        user: "f".into(),
        active: false,
    });
    assert_eq!(touched_users(&off), names(&["f"]));
    assert!(!w.state.in_access_group("f"));
    w.ok(Command::SetActive {
        user: "f".into(),
        active: true,
    });
    assert!(w.state.in_access_group("f"));
    // A holder given a fixed licence stays in the group (slot lost, licence gained).
    let fixed = w.ok(Command::GiveFixed {
        user: "b".into(),
        active: true,
    });
    assert_eq!(touched_users(&fixed), names(&["b"]));
    assert!(w.state.in_access_group("b"));
    // Revoked for any reason: out.
    w.ok(Command::Revoke { user: "c".into() });
    w.ok(Command::TakeFixed { user: "b".into() });
    assert_eq!(w.group(), names(&["f"]));
    assert_eq!(
        w.state.access_group(),
        ["f".to_string()].into_iter().collect::<BTreeSet<_>>()
    );
}

#[test]
fn a_member_asks_once_and_an_approval_gives_the_licence_within_the_tier() {
    let mut w = World::new(3, 2);
    for u in ["ann", "bob"] {
        w.enrol(u);
    }
    w.ok(Command::request("ann"));
    let ask = |id: &str, user: &str| Command::RequestFixed {
        id: id.into(),
        user: user.into(),
        reason: "daily".into(),
    };
    assert_eq!(w.run(ask("r0", "zed")), Err(Refusal::NotMember));
    w.ok(ask("r1", "ann"));
    assert_eq!(
        w.run(ask("r2", "ann")),
        Err(Refusal::DuplicateRequest { id: "r1".into() })
    );
    w.ok(ask("r3", "bob"));
    assert_eq!(
        w.run(ask("r3", "ann")),
        Err(Refusal::DuplicateRequest { id: "r1".into() })
    );
    let approved = w.ok(Command::ApproveFixedRequest {
        id: "r1".into(),
        note: "ok".into(),
        active: true,
    });
    assert!(matches!(
        approved[0],
        ProductEvent::FixedRequestApproved { .. }
    ));
    assert!(approved
        .iter()
        .any(|e| matches!(e, ProductEvent::FixedGiven { user } if user == "ann")));
    assert_eq!(w.state.counts().holders, 0, "ann's slot was given up");
    assert!(w.state.user("ann").is_some_and(|e| e.fixed && !e.member));
    assert_eq!(
        w.run(ask("r4", "ann")),
        Err(Refusal::FixedUser),
        "a fixed user has nothing to ask"
    );
    // 2 fixed + 2 shared > 3: refused, and the request stays open.
    let over = w.run(Command::ApproveFixedRequest {
        id: "r3".into(),
        note: String::new(),
        active: true,
    });
    assert!(
        matches!(over, Err(Refusal::TierExceeded { fixed: 2, .. })),
        "{over:?}"
    );
    assert_eq!(
        w.state.fixed_request("r3").map(|r| &r.state),
        Some(&RequestState::Open)
    );
    assert_eq!(
        w.run(Command::ApproveFixedRequest {
            id: "r1".into(),
            note: String::new(),
            active: true,
        }),
        Err(Refusal::RequestClosed { state: "approved" })
    );
    assert_eq!(
        w.run(Command::ApproveFixedRequest {
            id: "r3".into(),
            note: String::new(),
            active: false,
        }),
        Err(Refusal::Deactivated),
        "never a licence for a deactivated user"
    );
    w.ok(Command::RejectFixedRequest {
        id: "r3".into(),
        note: "no".into(),
    });
    assert!(matches!(
        w.state.fixed_request("r3").map(|r| &r.state),
        Some(RequestState::Rejected { note, .. }) if note == "no"
    ));
    assert_eq!(
        w.run(Command::RejectFixedRequest {
            id: "nope".into(),
            note: String::new(),
        }),
        Err(Refusal::UnknownRequest)
    );
    // Closed requests free the member to ask again.
    w.ok(ask("r5", "bob"));
    assert_eq!(w.state.fixed_requests().count(), 3);
}
