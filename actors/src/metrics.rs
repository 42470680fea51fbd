//! The Prometheus metrics the actors keep: pool gauges, request and revocation counters,
//! journal and queue-wait histograms. Names and labels are part of the public contract (docs/contract.md).

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Every outcome a slot request is counted by (`slotpool_requests_total{outcome}`): the
/// answers, and the refusals a request of an existing product can get.
pub const REQUEST_OUTCOMES: [&str; 8] = [
    "granted",
    "queued",
    "fixed",
    "locked",
    "unchanged",
    "not_member",
    "deactivated",
    "not_eligible",
];

/// Every outcome of a connector's call (`slotpool_connector_deliveries_total{outcome}`).
pub const DELIVERY_OUTCOMES: [&str; 3] = ["delivered", "error", "timeout"];

/// Every metric the actors update, registered once in a [`Registry`].
#[derive(Clone)]
pub struct Metrics {
    pub licence_tier: IntGaugeVec,
    pub shared_slots: IntGaugeVec,
    pub slots_held: IntGaugeVec,
    pub fixed_users: IntGaugeVec,
    pub queue_length: IntGaugeVec,
    pub members: IntGaugeVec,
    pub requests: IntCounterVec,
    pub revocations: IntCounterVec,
    pub journal_events: IntCounter,
    pub journal_flush: Histogram,
    pub journal_flush_batch: Histogram,
    pub queue_wait: HistogramVec,
    pub snapshots_written: IntCounter,
    pub snapshots_skipped: IntCounter,
    pub sse_connections: IntGauge,
    pub journal_damaged: IntGauge,
    // Connector (product access groups).
    pub connector_backlog: IntGaugeVec,
    pub connector_deliveries: IntCounterVec,
    /// Page views the gate let through by a bypass rule, by product and rule.
    pub gate_bypassed: IntCounterVec,
    /// When each product's latest snapshot was taken (Unix seconds); `/metrics` turns it
    /// into `slotpool_snapshot_age_seconds` at scrape time.
    pub snapshot_taken: IntGaugeVec,
    /// 1 while a licence-use alert fires, by product and alert.
    pub alerts_firing: IntGaugeVec,
    /// Failed attempts to deliver an alert to the product's webhook.
    pub alert_webhook_failures: IntCounterVec,
    /// Alerts the product's webhook acknowledged.
    pub alert_webhook_deliveries: IntCounterVec,
}

/// Metric handles of one product, looked up once so the hot path does no label hashing.
#[derive(Clone)]
pub struct ProductMetrics {
    pub licence_tier: IntGauge,
    pub shared_slots: IntGauge,
    pub slots_held: IntGauge,
    pub fixed_users: IntGauge,
    pub queue_length: IntGauge,
    pub members: IntGauge,
    pub queue_wait: Histogram,
    pub journal_events: IntCounter,
    pub snapshots_written: IntCounter,
    pub sse_connections: IntGauge,
    pub snapshot_taken: IntGauge,
    product: String,
    requests: IntCounterVec,
    revocations: IntCounterVec,
    /// Access-group changes recorded and not yet confirmed by the product.
    pub connector_backlog: IntGauge,
    connector_deliveries: IntCounterVec,
    gate_bypassed: IntCounterVec,
    alerts_firing: IntGaugeVec,
    /// Failed attempts to deliver an alert to the webhook.
    pub alert_webhook_failures: IntCounter,
    /// Alerts the webhook acknowledged.
    pub alert_webhook_delivered: IntCounter,
}

/// Registers `metric` in `registry` and gives it back, so that each metric is created and
/// registered in one expression (a name clash is an error, not a silent second metric).
pub fn register<M>(registry: &Registry, metric: M) -> Result<M, prometheus::Error>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Metrics, prometheus::Error> {
        let gauge = |name: &str, help: &str| {
            register(
                registry,
                IntGaugeVec::new(Opts::new(name, help), &["product"])?,
            )
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            register(registry, Histogram::with_opts(opts)?)
        };
        let queue_wait_opts = HistogramOpts::new(
            "slotpool_queue_wait_seconds",
            "Time from joining the queue to being granted a slot.",
        )
        .buckets(vec![
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0,
        ]);
        Ok(Metrics {
            licence_tier: gauge("slotpool_licence_tier", "Seats of the product's licence.")?,
            shared_slots: gauge(
                "slotpool_shared_slots",
                "Slots in the product's shared pool.",
            )?,
            slots_held: gauge("slotpool_slots_held", "Shared slots currently held.")?,
            fixed_users: gauge("slotpool_fixed_users", "Users with a fixed licence.")?,
            queue_length: gauge("slotpool_queue_length", "Members waiting for a slot.")?,
            members: gauge("slotpool_members", "Members enrolled in the pool.")?,
            requests: counter(
                "slotpool_requests_total",
                "Slot requests by outcome: granted, queued, fixed, locked, unchanged (a holder or queued member asking again) or the refusal reason.",
                &["product", "outcome"],
            )?,
            revocations: counter(
                "slotpool_revocations_total",
                "Slots revoked, by reason.",
                &["product", "reason"],
            )?,
            journal_events: register(
                registry,
                IntCounter::new(
                    "slotpool_journal_events_total",
                    "Events appended to the journal.",
                )?,
            )?,
            journal_flush: histogram(
                "slotpool_journal_flush_seconds",
                "Duration of one group flush of the journal (write-ahead log write and fdatasync).",
                &[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ],
            )?,
            journal_flush_batch: histogram(
                "slotpool_journal_flush_batch_size",
                "Appends made durable by one group flush.",
                &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0],
            )?,
            queue_wait: register(registry, HistogramVec::new(queue_wait_opts, &["product"])?)?,
            snapshots_written: register(
                registry,
                IntCounter::new(
                    "slotpool_snapshots_written_total",
                    "Product snapshots written.",
                )?,
            )?,
            snapshots_skipped: register(
                registry,
                IntCounter::new(
                    "slotpool_snapshots_skipped_total",
                    "Snapshots found damaged or not matching the journal at recovery, and skipped.",
                )?,
            )?,
            sse_connections: register(
                registry,
                IntGauge::new("slotpool_sse_connections", "Open notification streams.")?,
            )?,
            journal_damaged: register(
                registry,
                IntGauge::new(
                    "slotpool_journal_damaged",
                    "1 when the background check of the whole journal found a damaged record.",
                )?,
            )?,
            connector_backlog: gauge(
                "slotpool_outbox_backlog",
                "Access-group changes recorded and not yet confirmed by the product.",
            )?,
            connector_deliveries: counter(
                "slotpool_connector_deliveries_total",
                "Calls of the connector to the product, by outcome (delivered, error, timeout).",
                &["product", "outcome"],
            )?,
            gate_bypassed: counter(
                "slotpool_gate_bypassed_total",
                "Page views the gate let through without a slot, by the bypass rule that admitted them.",
                &["product", "rule"],
            )?,
            snapshot_taken: gauge(
                "slotpool_snapshot_timestamp_seconds",
                "Unix time at which the product's latest snapshot was taken (absent before the first).",
            )?,
            alerts_firing: register(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "slotpool_alerts_firing",
                        "1 while the product's licence-use alert fires, 0 otherwise (one series per alert rule).",
                    ),
                    &["product", "alert"],
                )?,
            )?,
            alert_webhook_failures: counter(
                "slotpool_alert_webhook_failures_total",
                "Failed attempts to deliver an alert to the product's webhook (each is retried).",
                &["product"],
            )?,
            alert_webhook_deliveries: counter(
                "slotpool_alert_webhook_deliveries_total",
                "Alerts the product's webhook acknowledged.",
                &["product"],
            )?,
        })
    }

    /// Metrics registered in a throwaway registry: for tests and offline tools.
    pub fn unregistered() -> Metrics {
        // A fresh registry has no name clashes, so this cannot fail.
        Metrics::new(&Registry::new()).expect("fresh registry")
    }

    /// The handles of one product. Every series of the product with a known label value
    /// exists from here on, at 0 until its first event, so that `rate()`, `increase()`
    /// and alert rules see a series from the product's creation (or the service's start).
    pub fn product(&self, product: &str) -> ProductMetrics {
        for reason in slotpool_events::RevokeReason::ALL {
            self.revocations
                .with_label_values(&[product, reason.code()]);
        }
        for outcome in REQUEST_OUTCOMES {
            self.requests.with_label_values(&[product, outcome]);
        }
        for outcome in DELIVERY_OUTCOMES {
            self.connector_deliveries
                .with_label_values(&[product, outcome]);
        }
        ProductMetrics {
            licence_tier: self.licence_tier.with_label_values(&[product]),
            shared_slots: self.shared_slots.with_label_values(&[product]),
            slots_held: self.slots_held.with_label_values(&[product]),
            fixed_users: self.fixed_users.with_label_values(&[product]),
            queue_length: self.queue_length.with_label_values(&[product]),
            members: self.members.with_label_values(&[product]),
            queue_wait: self.queue_wait.with_label_values(&[product]),
            journal_events: self.journal_events.clone(),
            snapshots_written: self.snapshots_written.clone(),
            sse_connections: self.sse_connections.clone(),
            snapshot_taken: self.snapshot_taken.with_label_values(&[product]),
            product: product.to_string(),
            requests: self.requests.clone(),
            revocations: self.revocations.clone(),
            connector_backlog: self.connector_backlog.with_label_values(&[product]),
            connector_deliveries: self.connector_deliveries.clone(),
            gate_bypassed: self.gate_bypassed.clone(),
            alerts_firing: self.alerts_firing.clone(),
            alert_webhook_failures: self.alert_webhook_failures.with_label_values(&[product]),
            alert_webhook_delivered: self.alert_webhook_deliveries.with_label_values(&[product]),
        }
    }
}

impl ProductMetrics {
    /// Counts one slot request with its outcome.
    pub fn request(&self, outcome: &str) {
        self.requests
            .with_label_values(&[&self.product, outcome])
            .inc();
    }

    /// Counts one revocation with its reason.
    pub fn revocation(&self, reason: &str) {
        self.revocations
            .with_label_values(&[&self.product, reason])
            .inc();
    }

    /// Makes the series of each named bypass rule exist (at 0 until it lets a view
    /// through), so `rate()` and alert rules see a rule from its creation.
    pub fn bypass_rules<'a>(&self, rules: impl IntoIterator<Item = &'a str>) {
        for rule in rules {
            self.gate_bypassed.with_label_values(&[&self.product, rule]);
        }
    }

    /// Counts one page view the gate let through by bypass rule `rule`.
    pub fn bypassed(&self, rule: &str) {
        self.gate_bypassed
            .with_label_values(&[&self.product, rule])
            .inc();
    }

    /// Sets `slotpool_alerts_firing` of each alert rule (1 firing, 0 not), and drops the
    /// series of rules that are gone, so every rule has a series from its creation.
    pub fn alerts(&self, rules: &[String], firing: &dyn Fn(&str) -> bool, gone: &[String]) {
        for name in gone {
            let _ = self
                .alerts_firing
                .remove_label_values(&[&self.product, name]);
        }
        for name in rules {
            self.alerts_firing
                .with_label_values(&[&self.product, name])
                .set(i64::from(firing(name)));
        }
    }

    /// Counts one call of the connector to the product with its outcome.
    pub fn connector_delivery(&self, outcome: &str) {
        self.connector_deliveries
            .with_label_values(&[&self.product, outcome])
            .inc();
    }
}
