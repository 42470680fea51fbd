//! Licence-use alerts through the actors in virtual time: the scheduler's sweeps fire
//! the alert exactly when its condition held for `for_s`, the webhook actor delivers it
//! through the journal outbox (a refused attempt retried with the same id), and the
//! resolving follows; the firing gauge follows both.

use futures_util::future::LocalBoxFuture;
use slotpool_actors::alert::{AlertDelivery, AlertSender, AlertState};
use slotpool_actors::{DeliveryError, Nightly};
use slotpool_events::alert::{AlertKind, AlertRule, AlertWebhook};
use slotpool_events::{Command, ProductKind, Settings, Timestamp};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

const T0: i64 = 1_800_000_000_000; // on the 60 s grid

/// Records every attempt (and whether it was acknowledged); refuses the first `fail`.
#[derive(Clone, Default)]
struct Fake {
    got: Arc<Mutex<Vec<(AlertDelivery, bool)>>>,
    fail: Arc<AtomicUsize>,
}

impl AlertSender for Fake {
    fn send(
        &self,
        webhook: &AlertWebhook,
        delivery: &AlertDelivery,
    ) -> LocalBoxFuture<'static, Result<(), DeliveryError>> {
        assert_eq!(webhook.secret, "s3cret");
        let refuse = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        self.got
            .lock()
            .expect("lock")
            .push((delivery.clone(), !refuse));
        Box::pin(async move {
            if refuse {
                Err(DeliveryError::Status {
                    status: 503,
                    body: "busy".into(),
                })
            } else {
                Ok(())
            }
        })
    }
}

impl Fake {
    fn got(&self) -> Vec<(AlertDelivery, bool)> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits (in real time: deliveries and their retries run on the actors' runtime)
    /// until `n` attempts were acknowledged.
    async fn acknowledged(&self, n: usize) -> Vec<AlertDelivery> {
        for _ in 0..100 {
            let ok: Vec<_> = self
                .got()
                .into_iter()
                .filter(|(_, ok)| *ok)
                .map(|(d, _)| d)
                .collect();
            if ok.len() >= n {
                return ok;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} deliveries not acknowledged: {:?}", self.got());
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(T0 + secs * 1000)
}

#[actix_rt::test]
async fn the_sweep_fires_after_for_s_and_the_webhook_gets_each_change_once() {
    let w = common::start(T0, 10_000, Nightly::default()).await;
    let fake = Fake::default();
    fake.fail.store(1, Ordering::SeqCst);
    let sender = fake.clone();
    w.services.products.set_alert_sender(Arc::new(move || {
        Rc::new(sender.clone()) as Rc<dyn AlertSender>
    }));
    let mut s = Settings::new(ProductKind::Jira, 10, 1);
    s.sweep_interval_s = 60;
    s.alerts = vec![AlertRule {
        name: "busy".into(),
        kind: AlertKind::UsePercent,
        threshold: 100,
        for_s: 600,
    }];
    s.alert_webhook = Some(AlertWebhook {
        url: "http://hooks.invalid/slotpool".into(),
        secret: "s3cret".into(),
    });
    w.execute(Command::Configure(s)).await.expect("configure");
    w.enrol("ann").await;
    w.execute(Command::request("ann")).await.expect("granted");
    let firing = || {
        w.metrics
            .alerts_firing
            .with_label_values(&["p", "busy"])
            .get()
    };

    // The first sweep to see the pool full is at 60 s: it fires ten minutes later.
    w.advance_to(at(659)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fake.got().is_empty(), "{:?}", fake.got());
    assert_eq!(firing(), 0);
    w.advance_to(at(660)).await;
    let ok = fake.acknowledged(1).await;
    assert_eq!(firing(), 1);
    let fired = &ok[0];
    assert_eq!(
        (fired.alert.as_str(), fired.state, fired.at, fired.value),
        ("busy", AlertState::Firing, at(660), 100)
    );
    let attempts = fake.got();
    assert_eq!(attempts.len(), 2, "one refused, one acknowledged");
    assert_eq!(attempts[0].0, attempts[1].0, "a retry is the same delivery");

    // Still full: no second firing.
    w.advance_to(at(1200)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.got().len(), 2);

    w.execute(Command::Release { user: "ann".into() })
        .await
        .expect("released");
    w.advance_to(at(1260)).await;
    let ok = fake.acknowledged(2).await;
    assert_eq!(
        (ok[1].state, ok[1].at, ok[1].value),
        (AlertState::Resolved, at(1260), 0)
    );
    assert_ne!(ok[1].id, ok[0].id);
    assert_eq!(firing(), 0);
    w.advance_to(at(2000)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.got().len(), 3, "resolved once");
}
