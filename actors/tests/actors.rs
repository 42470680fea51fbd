//! The actors against a real sled journal: answers come only after durability, the
//! directory carries deactivation into every product, and recovery rebuilds the state.

use slotpool_actors::{
    ask, recover, Execute, ManualClock, Membership, Metrics, Provision, Read, Services,
    SetUserActive,
};
use slotpool_events::{Command, ProductKind, Settings, SlotView, Timestamp};
use slotpool_journal::{Durability, Journal, JournalConfig};
use std::sync::Arc;
use uuid::Uuid;

type Snapshot = (Vec<String>, Vec<String>, usize, usize);

async fn snapshot(services: &Services, product: &str) -> Snapshot {
    let addr = services.products.get(product).expect("product is running");
    ask(
        &addr,
        Read::new(|s, _| {
            let c = s.counts();
            (
                s.holders().into_iter().map(|h| h.user).collect(),
                s.queue().into_iter().map(|q| q.user).collect(),
                c.members,
                c.fixed,
            )
        }),
    )
    .await
    .expect("read")
}

async fn run(
    services: &Services,
    product: &str,
    command: Command,
    journal: &Journal,
) -> Option<SlotView> {
    let addr = services.products.get_or_start(product);
    let done = ask(
        &addr,
        Execute {
            command,
            cause: Uuid::new_v4(),
        },
    )
    .await
    .expect("command accepted");
    assert!(
        journal.durable_ticket() >= journal.latest_ticket(),
        "answered before the events were durable"
    );
    done.view
}

#[actix_rt::test]
async fn answers_after_durable_deactivation_reaches_every_product_and_recovery_agrees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(
        dir.path(),
        JournalConfig {
            durability: Durability::Fsync,
            ..JournalConfig::default()
        },
    )
    .expect("open journal");
    let clock = ManualClock::new(Timestamp::from_millis(1_800_000_000_000));
    let services = recover(
        journal.clone(),
        Arc::new(clock.clone()),
        Metrics::unregistered(),
        2,
        10_000,
    )
    .await
    .expect("recover empty journal");

    for product in ["jira", "wiki"] {
        run(
            &services,
            product,
            Command::Configure(Settings::new(ProductKind::Jira, 5, 2)),
            &journal,
        )
        .await;
        for user in ["ann", "bob", "cyd"] {
            let addr = services.products.get(product).expect("started");
            services
                .directory
                .send(Provision {
                    product: addr,
                    change: Membership::Enrol(user.into()),
                    cause: Uuid::new_v4(),
                })
                .await
                .expect("mailbox")
                .expect("enrol");
        }
        for user in ["ann", "bob", "cyd"] {
            clock.advance_ms(1000);
            run(&services, product, Command::request(user), &journal).await;
        }
    }
    assert_eq!(
        snapshot(&services, "jira").await,
        (vec!["ann".into(), "bob".into()], vec!["cyd".into()], 3, 0)
    );

    // Deactivating bob frees his slot in both products; the queue head gets it at once.
    services
        .directory
        .send(SetUserActive {
            user: "bob".into(),
            active: false,
            cause: Uuid::new_v4(),
        })
        .await
        .expect("mailbox")
        .expect("deactivate");
    for product in ["jira", "wiki"] {
        assert_eq!(
            snapshot(&services, product).await.0,
            vec!["ann".to_string(), "cyd".to_string()]
        );
        let refused = services
            .products
            .get(product)
            .expect("running")
            .send(Execute {
                command: Command::request("bob"),
                cause: Uuid::new_v4(),
            })
            .await
            .expect("mailbox")
            .durable()
            .await;
        assert_eq!(refused.unwrap_err().to_string(), "the user is deactivated");
    }

    // A second set of actors recovered from the same journal sees exactly the same state.
    let before = (
        snapshot(&services, "jira").await,
        snapshot(&services, "wiki").await,
    );
    let again = recover(
        journal.clone(),
        Arc::new(clock.clone()),
        Metrics::unregistered(),
        1,
        10_000,
    )
    .await
    .expect("recover");
    let after = (
        snapshot(&again, "jira").await,
        snapshot(&again, "wiki").await,
    );
    assert_eq!(before, after);
    assert!(journal.verify().is_ok());
}
