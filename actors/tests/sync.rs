//! The scheduled source-group sync (rule 9) in virtual time: a product with
//! `sync_interval_s` is synchronised with its source groups every interval, fixed-group
//! and deactivated users filtered out, and each run's report is kept in the directory.

use slotpool_actors::{ask, Change, Execute, Job, Nightly, Read, ReadDirectory, Services};
use slotpool_events::{
    Command, DirectoryCommand, GroupInput, ProductKind, Profile, Settings, SkipReason, Skipped,
    SyncReport, Timestamp, UserInput,
};
use std::collections::BTreeSet;
use uuid::Uuid;

mod common;

const T0: i64 = 1_800_000_000_000;

async fn change(services: &Services, command: DirectoryCommand) {
    services
        .directory
        .send(Change {
            command,
            cause: Uuid::new_v4(),
        })
        .await
        .expect("mailbox")
        .expect("accepted");
}

async fn members(services: &Services) -> BTreeSet<String> {
    let addr = services.products.get("p").expect("product");
    ask(&addr, Read::new(|s, _| s.members_and_fixed().0))
        .await
        .expect("read")
}

async fn report(services: &Services) -> Option<SyncReport> {
    services
        .directory
        .send(ReadDirectory::new(|d| d.sync_report("p").cloned()))
        .await
        .expect("mailbox")
        .expect("read")
}

fn group(name: &str, members: &[&str]) -> GroupInput {
    GroupInput {
        display_name: name.into(),
        external_id: None,
        members: members.iter().map(|m| m.to_string()).collect(),
    }
}

#[actix_rt::test]
async fn the_scheduled_sync_runs_every_interval_with_filters_and_reports() {
    let w = common::start(T0, 10_000, Nightly::default()).await;
    let (clock, services, scheduler) = (&w.clock, &w.services, &w.scheduler);

    for (id, name, active) in [
        ("1", "ann", true),
        ("2", "bob", true),
        ("3", "cy", false),
        ("4", "dee", true),
    ] {
        change(
            services,
            DirectoryCommand::CreateUser {
                id: id.into(),
                input: UserInput {
                    user: name.into(),
                    active,
                    profile: Profile::default(),
                },
            },
        )
        .await;
    }
    change(
        services,
        DirectoryCommand::CreateGroup {
            id: "eng".into(),
            input: group("Engineering", &["1", "2", "3", "4"]),
        },
    )
    .await;
    change(
        services,
        DirectoryCommand::CreateGroup {
            id: "pow".into(),
            input: group("power", &["4"]),
        },
    )
    .await;

    let settings = Settings {
        source_groups: vec!["engineering".into()],
        fixed_groups: vec!["power".into()],
        sync_interval_s: 600,
        ..Settings::new(ProductKind::Jira, 10, 2)
    };
    let addr = services.products.get_or_start("p");
    ask(
        &addr,
        Execute {
            command: Command::Configure(settings),
            cause: Uuid::new_v4(),
        },
    )
    .await
    .expect("configured");
    let first = Timestamp::from_millis(T0 + 600_000);
    assert_eq!(
        scheduler.when(Job::Sync("p".into())).await.expect("when"),
        Some(first)
    );

    // Nothing before the interval.
    scheduler
        .advance_to(clock, Timestamp::from_millis(T0 + 599_000))
        .await
        .expect("advance");
    assert!(members(services).await.is_empty());
    assert_eq!(report(services).await, None);

    // At the interval: ann and bob in; cy (deactivated) and dee (fixed group) left out.
    scheduler.advance_to(clock, first).await.expect("advance");
    assert_eq!(
        members(services).await,
        ["ann", "bob"].map(String::from).into()
    );
    let r = report(services).await.expect("a report");
    assert_eq!(r.at, first);
    assert_eq!(r.trigger, "scheduled");
    assert_eq!(r.added, vec!["ann".to_string(), "bob".to_string()]);
    assert_eq!(
        r.skipped,
        vec![
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
    let second = Timestamp::from_millis(T0 + 1_200_000);
    assert_eq!(
        scheduler.when(Job::Sync("p".into())).await.expect("when"),
        Some(second)
    );

    // bob leaves the group: the next run removes him from the pool.
    change(
        services,
        DirectoryCommand::ReplaceGroup {
            id: "eng".into(),
            input: group("Engineering", &["1", "3", "4"]),
            if_version: None,
        },
    )
    .await;
    scheduler.advance_to(clock, second).await.expect("advance");
    assert_eq!(members(services).await, ["ann"].map(String::from).into());
    let r = report(services).await.expect("a report");
    assert_eq!(r.at, second);
    assert!(r.added.is_empty());
    assert_eq!(
        r.removed,
        vec![Skipped {
            user: "bob".into(),
            why: SkipReason::NotInSourceGroups
        }]
    );

    // Hours later: one run per interval, each at its own instant.
    scheduler
        .advance_to(clock, Timestamp::from_millis(T0 + 3 * 3_600_000 + 1))
        .await
        .expect("advance");
    let r = report(services).await.expect("a report");
    assert_eq!(r.at, Timestamp::from_millis(T0 + 3 * 3_600_000));

    // The schedule ends when the setting goes back to 0.
    let manual = Settings {
        sync_interval_s: 0,
        source_groups: vec!["engineering".into()],
        ..Settings::new(ProductKind::Jira, 10, 2)
    };
    ask(
        &addr,
        Execute {
            command: Command::Configure(manual),
            cause: Uuid::new_v4(),
        },
    )
    .await
    .expect("configured");
    scheduler
        .advance_to(clock, Timestamp::from_millis(T0 + 4 * 3_600_000))
        .await
        .expect("advance");
    assert_eq!(
        scheduler.when(Job::Sync("p".into())).await.expect("when"),
        None
    );
    // The entry already on the agenda came due and did nothing: the last report stands.
    let r = report(services).await.expect("a report");
    assert_eq!(r.at, Timestamp::from_millis(T0 + 3 * 3_600_000));
}
