//! A rename (`Command::Rename` / `ProductEvent::MemberRenamed`) keeps every invariant
//! and changes nothing but a name: after any history, renaming `ann` to `zed` gives a
//! product that cannot be told apart from one where `zed` had been `zed` all along
//! (holder with its place in the due-time order and its warning, queue ticket, fixed
//! licence, membership, lock, re-login, rule-10 groups, fixed-licence requests), that
//! answers every later command the same, that replays to the same state, and whose
//! snapshot image round-trips.

mod common;

use common::{at, observe, proptest_cases, settings};
use proptest::prelude::*;
use slotpool_events::{Command, Presence, ProductEvent, ProductState, Reservation, Timestamp};
use std::sync::Arc;

const USERS: [&str; 4] = ["ann", "bob", "cy", "dee"];

/// One step of a history: a command over [`USERS`], and how far the clock moves first.
#[derive(Debug, Clone)]
struct Step {
    advance_s: i64,
    command: Command,
}

fn command() -> impl Strategy<Value = Command> {
    let user = prop::sample::select(USERS.to_vec()).prop_map(String::from);
    let groups = prop::sample::subsequence(vec!["eng", "ops"], 0..=2)
        .prop_map(|g| Arc::from(g.into_iter().map(String::from).collect::<Vec<_>>()));
    prop_oneof![
        3 => (user.clone(), any::<bool>()).prop_map(|(user, active)| Command::Enrol { user, active }),
        4 => (user.clone(), groups.clone()).prop_map(|(user, groups)| Command::Request {
            user,
            attributes: None,
            groups: Some(groups),
        }),
        2 => user.clone().prop_map(|user| Command::Release { user }),
        3 => user.clone().prop_map(|user| Command::Activity { user }),
        1 => user.clone().prop_map(|user| Command::Remove { user }),
        1 => (user.clone(), any::<bool>()).prop_map(|(user, active)| Command::GiveFixed { user, active }),
        1 => user.clone().prop_map(|user| Command::TakeFixed { user }),
        1 => (user.clone(), any::<bool>()).prop_map(|(user, active)| Command::SetActive { user, active }),
        1 => user.clone().prop_map(|user| Command::Revoke { user }),
        1 => (user.clone(), groups).prop_map(|(user, groups)| Command::NoteGroups { user, groups }),
        1 => (user.clone(), 0u32..3).prop_map(|(user, n)| Command::RequestFixed {
            id: format!("r{n}"),
            user,
            reason: "daily use".into(),
        }),
        3 => Just(Command::Tick { presence: Presence::default() }),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            prop_oneof![3 => Just(0i64), 2 => 1i64..40, 1 => 40i64..200],
            command(),
        )
            .prop_map(|(advance_s, command)| Step { advance_s, command }),
        1..60,
    )
}

/// `name` with `ann` read as `zed`.
fn renamed(name: &str) -> String {
    if name == "ann" {
        "zed".into()
    } else {
        name.to_string()
    }
}

/// `c` with every user `ann` read as `zed`.
fn rename_command(c: &Command) -> Command {
    match c.clone() {
        Command::Enrol { user, active } => Command::Enrol {
            user: renamed(&user),
            active,
        },
        Command::Request {
            user,
            attributes,
            groups,
        } => Command::Request {
            user: renamed(&user),
            attributes,
            groups,
        },
        Command::Release { user } => Command::Release {
            user: renamed(&user),
        },
        Command::Activity { user } => Command::Activity {
            user: renamed(&user),
        },
        Command::Remove { user } => Command::Remove {
            user: renamed(&user),
        },
        Command::GiveFixed { user, active } => Command::GiveFixed {
            user: renamed(&user),
            active,
        },
        Command::TakeFixed { user } => Command::TakeFixed {
            user: renamed(&user),
        },
        Command::SetActive { user, active } => Command::SetActive {
            user: renamed(&user),
            active,
        },
        Command::Revoke { user } => Command::Revoke {
            user: renamed(&user),
        },
        Command::NoteGroups { user, groups } => Command::NoteGroups {
            user: renamed(&user),
            groups,
        },
        Command::RequestFixed { id, user, reason } => Command::RequestFixed {
            id,
            user: renamed(&user),
            reason,
        },
        other => other,
    }
}

/// Decides and applies `c`; the events (or the refusal's code).
fn run(
    state: &mut ProductState,
    journal: &mut Vec<ProductEvent>,
    c: &Command,
    now: Timestamp,
) -> Result<Vec<ProductEvent>, &'static str> {
    let events = state.decide(c, now).map_err(|r| r.code())?;
    for e in &events {
        state.apply(e);
        journal.push(e.clone());
    }
    Ok(events)
}

fn product() -> slotpool_events::Settings {
    let mut s = settings(2, 60, 10, 10);
    s.lock_s = 30;
    s.auto_relogin = true;
    s.licence_tier = 4;
    s.reservations = vec![Reservation {
        group: "eng".into(),
        min: 1,
        max: Some(1),
    }]
    .into();
    s
}

const SEEN: [&str; 5] = ["ann", "bob", "cy", "dee", "zed"];

proptest! {
    #![proptest_config(ProptestConfig { cases: proptest_cases(300), ..ProptestConfig::default() })]

    #[test]
    fn a_rename_changes_only_the_name(before in steps(), after in steps()) {
        // `a` lives the history as `ann` and is renamed; `b` lives it as `zed` from the start.
        let (mut a, mut b) = (ProductState::new(), ProductState::new());
        let (mut ja, mut jb) = (Vec::new(), Vec::new());
        let mut now = at(0);
        run(&mut a, &mut ja, &Command::Configure(product()), now).expect("configured");
        run(&mut b, &mut jb, &Command::Configure(product()), now).expect("configured");
        for s in &before {
            now = now.plus_secs(s.advance_s as u32);
            let _ = run(&mut a, &mut ja, &s.command, now);
            let _ = run(&mut b, &mut jb, &rename_command(&s.command), now);
        }
        let known = a.user("ann").is_some();
        let rename = Command::Rename { from: "ann".into(), to: "zed".into() };
        let events = run(&mut a, &mut ja, &rename, now).expect("a rename is never refused");
        prop_assert_eq!(events.len(), usize::from(known || !events.is_empty()));
        prop_assert!(a.user("ann").is_none());
        prop_assert_eq!(observe(&a, SEEN, now), observe(&b, SEEN, now));
        prop_assert_eq!(a.fixed_requests().collect::<Vec<_>>(), b.fixed_requests().collect::<Vec<_>>());
        // A second rename of the same name is a no-op.
        prop_assert_eq!(a.decide(&rename, now), Ok(Vec::new()));
        // Replay and the snapshot image give the renamed state back.
        prop_assert_eq!(observe(&ProductState::replay(&ja), SEEN, now), observe(&a, SEEN, now));
        prop_assert_eq!(observe(&ProductState::from_image(&a.image()), SEEN, now), observe(&a, SEEN, now));
        // Every later command is answered the same, and the invariants hold throughout.
        for s in &after {
            now = now.plus_secs(s.advance_s as u32);
            let c = rename_command(&s.command);
            prop_assert_eq!(run(&mut a, &mut ja, &c, now), run(&mut b, &mut jb, &c, now), "{:?}", c);
            let counts = a.counts();
            let shared = a.settings().map_or(0, |s| s.shared_slots as usize);
            prop_assert!(counts.holders <= shared);
            for h in a.holders() {
                let e = a.user(&h.user).expect("a holder is known");
                prop_assert!(e.member && !e.fixed && !e.deactivated, "{:?}", h);
            }
        }
        prop_assert_eq!(observe(&a, SEEN, now), observe(&b, SEEN, now));
    }
}

#[test]
fn a_renamed_holder_keeps_slot_warning_and_lock_and_a_queued_member_keeps_the_place() {
    let mut s = ProductState::new();
    let mut j = Vec::new();
    let mut settings = settings(1, 60, 10, 10);
    settings.lock_s = 300;
    let t = at(0);
    run(&mut s, &mut j, &Command::Configure(settings), t).expect("configured");
    for u in ["ann", "bob", "cy"] {
        run(
            &mut s,
            &mut j,
            &Command::Enrol {
                user: u.into(),
                active: true,
            },
            t,
        )
        .expect("enrolled");
        run(&mut s, &mut j, &Command::request(u), t).expect("requested");
    }
    run(
        &mut s,
        &mut j,
        &Command::Tick {
            presence: Presence::default(),
        },
        at(50),
    )
    .expect("warned");
    assert!(s.holders()[0].warned_at.is_some());
    let renames = [("ann", "ann.smith"), ("bob", "bob.jones")];
    for (from, to) in renames {
        let events = run(
            &mut s,
            &mut j,
            &Command::Rename {
                from: from.into(),
                to: to.into(),
            },
            at(55),
        )
        .expect("renamed");
        assert_eq!(
            events,
            vec![ProductEvent::MemberRenamed {
                from: from.into(),
                to: to.into()
            }]
        );
    }
    let holders = s.holders();
    assert_eq!(holders[0].user, "ann.smith");
    assert!(holders[0].warned_at.is_some());
    let queue: Vec<String> = s.queue().into_iter().map(|q| q.user).collect();
    assert_eq!(queue, ["bob.jones", "cy"]);
    // The warning falls due under the new name; the lock follows the new name too.
    let events = run(
        &mut s,
        &mut j,
        &Command::Tick {
            presence: Presence::default(),
        },
        at(60),
    )
    .expect("revoked");
    assert!(
        events.contains(&ProductEvent::SlotRevoked {
            user: "ann.smith".into(),
            reason: slotpool_events::RevokeReason::Inactivity,
            at: at(60),
        }),
        "{events:?}"
    );
    assert!(s
        .user("ann.smith")
        .is_some_and(|e| e.locked_until.is_some()));
    assert_eq!(s.holders()[0].user, "bob.jones");
    // An unknown name: nothing to record.
    assert_eq!(
        s.decide(
            &Command::Rename {
                from: "nobody".into(),
                to: "x".into()
            },
            at(61)
        ),
        Ok(Vec::new())
    );
}
