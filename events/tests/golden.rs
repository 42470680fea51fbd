//! Golden records: the exact bytes of one envelope of every event variant (and every
//! revoke and leave reason), checked in under `tests/golden/` as hex.
//!
//! The journal keeps these bytes forever and bincode encodes positionally, so an event
//! whose encoding changes makes every journal written before the change unreadable (or,
//! worse, readable as something else). These tests fail on any such change:
//!
//! - `*_encode_as_fixtures`: encoding the fixed envelope gives exactly the fixture bytes;
//! - `*_fixtures_decode`: the fixture bytes decode to exactly the fixed envelope;
//! - `every_variant_has_a_fixture`: every variant the event enums declare (read from their
//!   serde `Deserialize` impls) has a sample here, and every fixture file has a sample.
//!   The exhaustive `match`es in `product_fixture_name` & co. also stop this file from
//!   compiling when a variant is added, until a name (and a sample) is given to it.
//!
//! A new variant (appended at the end of its enum) needs a sample in `product_samples` /
//! `directory_samples` and a fixture. Write the missing fixtures with
//! `SLOTPOOL_BLESS=1 cargo test -p slotpool-events --test golden`; blessing rewrites
//! *changed* fixtures too, which is only right for a change that was meant to be
//! incompatible and comes with a reader for the old bytes.

use serde::de::{self, Deserialize, Visitor};
use slotpool_events::envelope::{self, Envelope, Hash, HASH_LEN};
use slotpool_events::{
    DirectoryEvent, Email, LeaveReason, ProductEvent, ProductKind, Profile, RevokeReason, Settings,
    SkipReason, Skipped, SyncReport, Timestamp, SCHEMA_VERSION,
};
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use uuid::Uuid;

/// The schema version the fixtures were written with.
const FIXTURE_SCHEMA_VERSION: u16 = 1;
/// The envelope's timestamp in every fixture.
const ENVELOPE_AT: Timestamp = Timestamp::from_millis(1_700_000_000_123);
/// The event's own timestamp in every fixture that has one.
const EVENT_AT: Timestamp = Timestamp::from_millis(1_700_000_000_100);
/// The sequence number in every fixture.
const SEQUENCE: u64 = 4_242;

const BLESS_VAR: &str = "SLOTPOOL_BLESS";

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
}

fn blessing() -> bool {
    std::env::var(BLESS_VAR).is_ok_and(|v| v == "1")
}

/// The fixed envelope around `event`.
fn envelope_of<E>(event: E) -> Envelope<E> {
    let prev_hash: Hash = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
    Envelope {
        schema_version: FIXTURE_SCHEMA_VERSION,
        sequence: SEQUENCE,
        timestamp: ENVELOPE_AT,
        cause: Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
        prev_hash,
        event,
    }
}

const USER: &str = "alice@example.com";

/// Settings with every field away from its default, so each one is in the fixture.
fn sample_settings() -> Settings {
    Settings {
        kind: ProductKind::Confluence,
        licence_tier: 500,
        shared_slots: 420,
        inactivity_s: 1_200,
        warning_lead_s: 90,
        sweep_interval_s: 120,
        lock_s: 600,
        queue_timer_s: 45,
        reclaim_on_request: true,
        auto_relogin: true,
        // `None` is not serialized at all: the JSON inside `Configured` (and so the
        // `product_configured` fixture) is what it was before the field existed.
        coalesce_s: None,
        queue_page: Default::default(),
        connector: None,
        // Defaults are not serialized either (issue C's identity settings).
        source_groups: Vec::new(),
        fixed_groups: Vec::new(),
        sync_interval_s: 0,
        eligibility: None,
        // Empty reservations are not serialized either (rule 10).
        reservations: Default::default(),
        // No bypass rules are not serialized either (issue G).
        bypass: Vec::new(),
        mode: Default::default(),
        // No API prefixes are not serialized either (issue G).
        api_prefixes: Vec::new(),
        // No alerts and no webhook are not serialized either (issue G).
        alerts: Vec::new(),
        alert_webhook: None,
        // No time zone and no schedule are not serialized either (scheduled capacity).
        timezone: None,
        schedule: Default::default(),
    }
}

/// The sample settings with bypass rules (issue G).
fn sample_settings_bypass() -> Settings {
    Settings {
        bypass: vec![slotpool_events::BypassRule {
            name: "robots".into(),
            users: vec!["ci-bot".into()],
            groups: vec!["svc".into()],
            cidrs: vec!["10.0.0.0/8".into()],
            paths: vec!["/rest/".into()],
            token_kinds: vec!["bearer".into()],
        }],
        ..sample_settings()
    }
}

/// The sample settings with reservations and caps per group (rule 10).
fn sample_settings_reservations() -> Settings {
    Settings {
        reservations: vec![
            slotpool_events::Reservation {
                group: "Support".into(),
                min: 20,
                max: Some(60),
            },
            slotpool_events::Reservation {
                group: "contractors".into(),
                min: 0,
                max: Some(10),
            },
        ]
        .into(),
        ..sample_settings()
    }
}

/// The sample settings with the identity settings of issue C: sync and eligibility.
fn sample_settings_sync() -> Settings {
    Settings {
        source_groups: vec!["jira-users".into()],
        fixed_groups: vec!["jira-power".into()],
        sync_interval_s: 900,
        eligibility: Some(slotpool_events::Eligibility::In {
            attribute: "department".into(),
            values: vec!["R&D".into(), "Support".into()],
        }),
        ..sample_settings()
    }
}

/// The sample settings with a coalescing window: `coalesce_s` is in the JSON text.
fn sample_settings_coalescing() -> Settings {
    Settings {
        coalesce_s: Some(30),
        ..sample_settings()
    }
}

/// A second instant, for events with two (a warning's revocation time).
const EVENT_LATER: Timestamp = Timestamp::from_millis(1_700_000_060_000);

fn all_revoke_reasons() -> Vec<RevokeReason> {
    vec![
        RevokeReason::Admin,
        RevokeReason::PoolShrunk,
        RevokeReason::Deactivated,
        RevokeReason::Removed,
        RevokeReason::Fixed,
        RevokeReason::Inactivity,
        RevokeReason::Reclaimed,
    ]
}

fn all_leave_reasons() -> Vec<LeaveReason> {
    vec![
        LeaveReason::Released,
        LeaveReason::Deactivated,
        LeaveReason::Removed,
        LeaveReason::Fixed,
        LeaveReason::Expired,
    ]
}

/// One sample of every product event variant, and of every reason.
fn product_samples() -> Vec<ProductEvent> {
    let user = || USER.to_string();
    let mut v = vec![
        ProductEvent::Configured {
            settings: sample_settings(),
        },
        ProductEvent::MemberEnrolled { user: user() },
        ProductEvent::MemberRemoved { user: user() },
        ProductEvent::FixedGiven { user: user() },
        ProductEvent::FixedTaken { user: user() },
        ProductEvent::UserDeactivated { user: user() },
        ProductEvent::UserReactivated { user: user() },
        ProductEvent::SlotGranted {
            user: user(),
            at: EVENT_AT,
        },
        ProductEvent::Queued {
            user: user(),
            at: EVENT_AT,
        },
        ProductEvent::SlotReleased {
            user: user(),
            at: EVENT_AT,
        },
        ProductEvent::ActivityRecorded {
            user: user(),
            at: EVENT_AT,
        },
        ProductEvent::Configured {
            settings: sample_settings_coalescing(),
        },
        ProductEvent::Configured {
            settings: sample_settings_sync(),
        },
        ProductEvent::Configured {
            settings: sample_settings_reservations(),
        },
        ProductEvent::GroupsNoted {
            user: user(),
            groups: vec!["contractors".into(), "support".into()],
        },
        ProductEvent::MemberRenamed {
            from: user(),
            to: "alice.smith@example.com".into(),
        },
        ProductEvent::WarningIssued {
            user: user(),
            at: EVENT_AT,
            revoke_at: EVENT_LATER,
        },
        ProductEvent::Requeued {
            user: user(),
            at: EVENT_AT,
        },
        ProductEvent::TierReconciled {
            at: EVENT_AT,
            fixed: 120,
            licence_tier: 500,
            shared_slots_before: 420,
            shared_slots_after: 380,
        },
        ProductEvent::Configured {
            settings: Settings {
                connector: Some(slotpool_events::ConnectorSettings {
                    credentials_file: Some("/etc/slotpool/jira.cred".into()),
                    timeout_s: 5,
                    retry_base_ms: 250,
                    retry_cap_s: 60,
                    auto_resync: false,
                    ..slotpool_events::ConnectorSettings::new(
                        slotpool_events::ConnectorKind::Jira,
                        "https://jira.example.com",
                        "jira-software-users",
                    )
                }),
                ..sample_settings()
            },
        },
        ProductEvent::FixedRequested {
            id: "8d7e2a3c-4b5f-4e6a-9c1d-2e3f4a5b6c7d".into(),
            user: user(),
            reason: "I use it all day".into(),
            at: EVENT_AT,
        },
        ProductEvent::FixedRequestApproved {
            id: "8d7e2a3c-4b5f-4e6a-9c1d-2e3f4a5b6c7d".into(),
            note: "ok".into(),
            at: EVENT_AT,
        },
        ProductEvent::FixedRequestRejected {
            id: "8d7e2a3c-4b5f-4e6a-9c1d-2e3f4a5b6c7d".into(),
            note: "not this quarter".into(),
            at: EVENT_AT,
        },
        ProductEvent::Configured {
            settings: sample_settings_bypass(),
        },
        ProductEvent::BypassesCounted {
            rule: "robots".into(),
            at: EVENT_AT,
            count: 7,
            users: vec![("ci-bot".into(), 5), (user(), 2)],
        },
        ProductEvent::CapacityScheduled {
            shared_slots: 40,
            at: EVENT_AT,
        },
        ProductEvent::Configured {
            settings: Settings {
                mode: slotpool_events::Mode::QueueAll,
                queue_page: slotpool_events::QueuePage {
                    queue_all_message: Some("Upgrade until **10:00**".into()),
                    ..Default::default()
                },
                ..sample_settings()
            },
        },
        ProductEvent::Configured {
            settings: Settings {
                alerts: vec![slotpool_events::AlertRule {
                    name: "busy".into(),
                    kind: slotpool_events::AlertKind::UsePercent,
                    threshold: 80,
                    for_s: 300,
                }],
                alert_webhook: Some(slotpool_events::AlertWebhook {
                    url: "https://hooks.example/slotpool".into(),
                    secret: "s3cret".into(),
                }),
                ..sample_settings()
            },
        },
        ProductEvent::AlertFired {
            name: "busy".into(),
            kind: slotpool_events::AlertKind::UsePercent,
            threshold: 80,
            at: EVENT_AT,
            value: 85,
        },
        ProductEvent::AlertResolved {
            name: "busy".into(),
            at: EVENT_AT,
            value: 40,
        },
        ProductEvent::Configured {
            settings: Settings {
                timezone: Some("Europe/Berlin".into()),
                schedule: slotpool_events::Schedule {
                    weekly: vec![slotpool_events::schedule::WeeklyWindow {
                        days: vec!["mon".into(), "fri".into()],
                        from: "08:00".into(),
                        to: "18:00".into(),
                        shared_slots: 440,
                    }],
                    dated: vec![slotpool_events::schedule::DatedWindow {
                        from: "2027-01-15T09:00".into(),
                        to: "2027-01-15T12:00".into(),
                        shared_slots: 460,
                    }],
                    shrink_warning_s: Some(120),
                },
                ..sample_settings()
            },
        },
    ];
    let op = |k: &str, t: &str| slotpool_events::SpaceOperation::new(k, t);
    v.extend([
        ProductEvent::SpacesCatalogued {
            spaces: vec![slotpool_events::Space {
                key: "DOCS".into(),
                name: "Documentation".into(),
                operations: vec![op("read", "space"), op("create", "page")],
            }],
            at: EVENT_AT,
        },
        ProductEvent::SpaceRequested {
            id: "6f1c2a4e-0000-4000-8000-000000000001".into(),
            user: user(),
            space: "DOCS".into(),
            operations: vec![op("create", "page"), op("read", "space")],
            reason: "writing the manual".into(),
            at: EVENT_AT,
        },
        ProductEvent::SpaceRequestApproved {
            id: "6f1c2a4e-0000-4000-8000-000000000001".into(),
            by: "carol".into(),
            note: "ok".into(),
            at: EVENT_AT,
        },
        ProductEvent::SpaceRequestRejected {
            id: "6f1c2a4e-0000-4000-8000-000000000002".into(),
            by: "carol".into(),
            note: "not this one".into(),
            at: EVENT_AT,
        },
        ProductEvent::SpaceAccessGranted {
            id: "6f1c2a4e-0000-4000-8000-000000000001".into(),
            grants: vec![
                slotpool_events::Grant {
                    operation: op("read", "space"),
                    permission_id: Some(2154),
                },
                slotpool_events::Grant {
                    operation: op("create", "page"),
                    permission_id: None,
                },
            ],
            at: EVENT_AT,
        },
        ProductEvent::SpaceAccessRevoked {
            id: "6f1c2a4e-0000-4000-8000-000000000001".into(),
            reason: slotpool_events::space::SpaceRevokeReason::Deactivated,
            by: "directory".into(),
            at: EVENT_AT,
        },
        ProductEvent::SpaceAccessRemoved {
            id: "6f1c2a4e-0000-4000-8000-000000000001".into(),
            at: EVENT_AT,
        },
        ProductEvent::SpaceAccessFailed {
            id: "6f1c2a4e-0000-4000-8000-000000000003".into(),
            grants: vec![slotpool_events::Grant {
                operation: op("create", "page"),
                permission_id: Some(2155),
            }],
            error: "the product answered 404: No space with key : GONE".into(),
            at: EVENT_AT,
        },
    ]);
    v.extend(
        all_leave_reasons()
            .into_iter()
            .map(|reason| ProductEvent::QueueLeft {
                user: user(),
                reason,
                at: EVENT_AT,
            }),
    );
    v.extend(
        all_revoke_reasons()
            .into_iter()
            .map(|reason| ProductEvent::SlotRevoked {
                user: user(),
                reason,
                at: EVENT_AT,
            }),
    );
    v
}

/// One sample of every directory event variant.
fn directory_samples() -> Vec<DirectoryEvent> {
    let user = || USER.to_string();
    vec![
        DirectoryEvent::UserCreated { user: user() },
        DirectoryEvent::UserDeactivated { user: user() },
        DirectoryEvent::UserReactivated { user: user() },
        DirectoryEvent::UserProfiled {
            user: user(),
            id: "2819c223-7f76-453a-919d-413861904646".into(),
            profile: Profile {
                external_id: Some("00u1abcd".into()),
                display_name: Some("Ann Example".into()),
                given_name: Some("Ann".into()),
                family_name: Some("Example".into()),
                emails: vec![Email {
                    value: "ann@example.com".into(),
                    kind: Some("work".into()),
                    primary: true,
                }],
                attributes: [("department".to_string(), "R&D".to_string())].into(),
            },
        },
        DirectoryEvent::UserDeleted { user: user() },
        DirectoryEvent::GroupCreated {
            id: "e9e30dba-f08f-4109-8486-d5c6a331660a".into(),
            display_name: "jira-users".into(),
            external_id: Some("00g1".into()),
        },
        DirectoryEvent::GroupRenamed {
            id: "e9e30dba-f08f-4109-8486-d5c6a331660a".into(),
            display_name: "jira-power".into(),
            external_id: None,
        },
        DirectoryEvent::GroupDeleted {
            id: "e9e30dba-f08f-4109-8486-d5c6a331660a".into(),
        },
        DirectoryEvent::GroupMemberAdded {
            group: "e9e30dba-f08f-4109-8486-d5c6a331660a".into(),
            user: user(),
        },
        DirectoryEvent::GroupMemberRemoved {
            group: "e9e30dba-f08f-4109-8486-d5c6a331660a".into(),
            user: user(),
        },
        DirectoryEvent::SyncReported {
            product: "jira".into(),
            report: SyncReport {
                at: EVENT_AT,
                trigger: "manual".into(),
                source_groups: vec!["jira-users".into()],
                added: vec![user()],
                removed: vec![Skipped {
                    user: "bob".into(),
                    why: SkipReason::NotInSourceGroups,
                }],
                skipped: vec![Skipped {
                    user: "cy".into(),
                    why: SkipReason::Refused("tier_exceeded".into()),
                }],
                missing_groups: vec!["gone".into()],
            },
        },
        DirectoryEvent::UserRenamed {
            from: USER.into(),
            to: "alice.smith@example.com".into(),
        },
    ]
}

// These matches are exhaustive on purpose: a new variant or reason stops this file from
// compiling until it has a fixture name (and then a sample and a fixture).

fn revoke_reason_name(r: RevokeReason) -> &'static str {
    match r {
        RevokeReason::Admin => "admin",
        RevokeReason::PoolShrunk => "pool_shrunk",
        RevokeReason::Deactivated => "deactivated",
        RevokeReason::Removed => "removed",
        RevokeReason::Fixed => "fixed",
        RevokeReason::Inactivity => "inactivity",
        RevokeReason::Reclaimed => "reclaimed",
    }
}

fn leave_reason_name(r: LeaveReason) -> &'static str {
    match r {
        LeaveReason::Released => "released",
        LeaveReason::Deactivated => "deactivated",
        LeaveReason::Removed => "removed",
        LeaveReason::Fixed => "fixed",
        LeaveReason::Expired => "expired",
    }
}

fn product_fixture_name(e: &ProductEvent) -> String {
    let name = match e {
        // A second `Configured` sample carries a `coalesce_s`, and so a second fixture.
        ProductEvent::Configured { settings } if !settings.source_groups.is_empty() => {
            "configured_sync"
        }
        ProductEvent::Configured { settings } if settings.coalesce_s.is_some() => {
            "configured_coalesce_s"
        }
        // A third carries a connector (settings are JSON text: no new variant needed).
        ProductEvent::Configured { settings } if settings.connector.is_some() => {
            "configured_connector"
        }
        ProductEvent::Configured { settings } if !settings.reservations.is_empty() => {
            "configured_reservations"
        }
        ProductEvent::Configured { settings } if !settings.bypass.is_empty() => "configured_bypass",
        ProductEvent::Configured { settings } if !settings.mode.is_enforce() => "configured_mode",
        ProductEvent::Configured { settings } if !settings.alerts.is_empty() => "configured_alerts",
        ProductEvent::Configured { settings } if !settings.schedule.is_empty() => {
            "configured_schedule"
        }
        ProductEvent::Configured { .. } => "configured",
        ProductEvent::MemberEnrolled { .. } => "member_enrolled",
        ProductEvent::MemberRemoved { .. } => "member_removed",
        ProductEvent::FixedGiven { .. } => "fixed_given",
        ProductEvent::FixedTaken { .. } => "fixed_taken",
        ProductEvent::UserDeactivated { .. } => "user_deactivated",
        ProductEvent::UserReactivated { .. } => "user_reactivated",
        ProductEvent::SlotGranted { .. } => "slot_granted",
        ProductEvent::Queued { .. } => "queued",
        ProductEvent::QueueLeft { reason, .. } => {
            return format!("product_queue_left_{}", leave_reason_name(*reason))
        }
        ProductEvent::SlotReleased { .. } => "slot_released",
        ProductEvent::SlotRevoked { reason, .. } => {
            return format!("product_slot_revoked_{}", revoke_reason_name(*reason))
        }
        ProductEvent::ActivityRecorded { .. } => "activity_recorded",
        ProductEvent::WarningIssued { .. } => "warning_issued",
        ProductEvent::Requeued { .. } => "requeued",
        ProductEvent::TierReconciled { .. } => "tier_reconciled",
        ProductEvent::FixedRequested { .. } => "fixed_requested",
        ProductEvent::FixedRequestApproved { .. } => "fixed_request_approved",
        ProductEvent::FixedRequestRejected { .. } => "fixed_request_rejected",
        ProductEvent::GroupsNoted { .. } => "groups_noted",
        ProductEvent::MemberRenamed { .. } => "member_renamed",
        ProductEvent::BypassesCounted { .. } => "bypasses_counted",
        ProductEvent::AlertFired { .. } => "alert_fired",
        ProductEvent::AlertResolved { .. } => "alert_resolved",
        ProductEvent::SpacesCatalogued { .. } => "spaces_catalogued",
        ProductEvent::SpaceRequested { .. } => "space_requested",
        ProductEvent::SpaceRequestApproved { .. } => "space_request_approved",
        ProductEvent::SpaceRequestRejected { .. } => "space_request_rejected",
        ProductEvent::SpaceAccessGranted { .. } => "space_access_granted",
        ProductEvent::SpaceAccessRevoked { .. } => "space_access_revoked",
        ProductEvent::SpaceAccessRemoved { .. } => "space_access_removed",
        ProductEvent::SpaceAccessFailed { .. } => "space_access_failed",
        ProductEvent::CapacityScheduled { .. } => "capacity_scheduled",
    };
    format!("product_{name}")
}

fn directory_fixture_name(e: &DirectoryEvent) -> String {
    let name = match e {
        DirectoryEvent::UserCreated { .. } => "user_created",
        DirectoryEvent::UserDeactivated { .. } => "user_deactivated",
        DirectoryEvent::UserReactivated { .. } => "user_reactivated",
        DirectoryEvent::UserProfiled { .. } => "user_profiled",
        DirectoryEvent::UserDeleted { .. } => "user_deleted",
        DirectoryEvent::GroupCreated { .. } => "group_created",
        DirectoryEvent::GroupRenamed { .. } => "group_renamed",
        DirectoryEvent::GroupDeleted { .. } => "group_deleted",
        DirectoryEvent::GroupMemberAdded { .. } => "group_member_added",
        DirectoryEvent::GroupMemberRemoved { .. } => "group_member_removed",
        DirectoryEvent::SyncReported { .. } => "sync_reported",
        DirectoryEvent::UserRenamed { .. } => "user_renamed",
    };
    format!("directory_{name}")
}

fn fixture_path(name: &str) -> PathBuf {
    golden_dir().join(format!("{name}.hex"))
}

fn read_fixture(name: &str) -> Option<Result<Vec<u8>, String>> {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).ok()?;
    Some(hex::decode(text.trim()).map_err(|e| format!("{}: not hex: {e}", path.display())))
}

const WHY: &str = "The journal keeps encoded events forever and bincode encodes positionally: \
changing how an existing event encodes (reordering, removing, renaming or retyping a \
variant or a field, or a reason) makes every journal written before the change \
unreadable, or readable as something else. Events are append-only: add new variants \
at the END of their enum and give them a sample and a fixture. Only if the change is \
deliberate and a reader for the old bytes exists, rewrite the fixtures with \
SLOTPOOL_BLESS=1 cargo test -p slotpool-events --test golden";

/// Checks (or, when blessing, writes) the fixture of every sample; returns the problems.
fn check_encodings<E: serde::Serialize + serde::de::DeserializeOwned + PartialEq + fmt::Debug>(
    samples: Vec<E>,
    name_of: impl Fn(&E) -> String,
) -> Vec<String> {
    let mut problems = Vec::new();
    for event in samples {
        let name = name_of(&event);
        let expected = envelope_of(event);
        let (bytes, hash) = envelope::encode(&expected);
        assert_eq!(
            &bytes[bytes.len() - HASH_LEN..],
            &hash[..],
            "{name}: the record ends with its hash"
        );
        let encoded = hex::encode(&bytes);
        match read_fixture(&name) {
            Some(Ok(fixture)) if fixture == bytes => {}
            _ if blessing() => {
                std::fs::create_dir_all(golden_dir()).expect("create tests/golden");
                std::fs::write(fixture_path(&name), format!("{encoded}\n")).expect("write fixture");
                eprintln!("blessed {}", fixture_path(&name).display());
            }
            None => problems.push(format!(
                "{name}: no fixture at {}; a new variant needs one (run with {BLESS_VAR}=1 to write it)",
                fixture_path(&name).display()
            )),
            Some(Err(e)) => problems.push(e),
            Some(Ok(fixture)) => {
                let old = match envelope::decode::<E>(&fixture) {
                    Ok((env, _)) if env == expected => "the old bytes still decode to the same event".to_string(),
                    Ok((env, _)) => format!("the OLD BYTES NOW DECODE AS {:?}", env.event),
                    Err(e) => format!("the OLD BYTES NO LONGER DECODE: {e}"),
                };
                problems.push(format!(
                    "{name}: encoding changed ({old})\n  fixture: {}\n  now:     {encoded}",
                    hex::encode(&fixture)
                ));
            }
        }
    }
    problems
}

/// Decodes every fixture and compares it with its sample's envelope.
fn check_decodings<E: serde::de::DeserializeOwned + PartialEq + fmt::Debug>(
    samples: Vec<E>,
    name_of: impl Fn(&E) -> String,
) -> Vec<String> {
    let mut problems = Vec::new();
    for event in samples {
        let name = name_of(&event);
        let expected = envelope_of(event);
        let fixture = match read_fixture(&name) {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                problems.push(e);
                continue;
            }
            None => {
                problems.push(format!("{name}: no fixture ({BLESS_VAR}=1 writes it)"));
                continue;
            }
        };
        match envelope::decode::<E>(&fixture) {
            Ok((envelope, hash)) => {
                if envelope != expected {
                    problems.push(format!(
                        "{name}: decodes as {envelope:?}\n  expected {expected:?}"
                    ));
                }
                if hash[..] != fixture[fixture.len() - HASH_LEN..] {
                    problems.push(format!(
                        "{name}: decode returned a hash other than the record's"
                    ));
                }
            }
            Err(e) => problems.push(format!("{name}: does not decode: {e}")),
        }
    }
    problems
}

fn report(problems: Vec<String>) {
    assert!(problems.is_empty(), "\n{}\n\n{WHY}\n", problems.join("\n"));
}

#[test]
fn product_events_encode_as_fixtures() {
    report(check_encodings(product_samples(), product_fixture_name));
}

#[test]
fn directory_events_encode_as_fixtures() {
    report(check_encodings(directory_samples(), directory_fixture_name));
}

#[test]
fn product_fixtures_decode() {
    if blessing() {
        return; // the fixtures are being (re)written by the test above
    }
    report(check_decodings(product_samples(), product_fixture_name));
}

#[test]
fn directory_fixtures_decode() {
    if blessing() {
        return;
    }
    report(check_decodings(directory_samples(), directory_fixture_name));
}

#[test]
fn fixtures_are_tamper_evident() {
    // One flipped bit anywhere in a record is caught by its own hash.
    let (bytes, _) = envelope::encode(&envelope_of(ProductEvent::MemberEnrolled {
        user: USER.to_string(),
    }));
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        assert!(
            envelope::decode::<ProductEvent>(&bad).is_err(),
            "byte {i} flipped went unnoticed"
        );
    }
}

#[test]
fn schema_version_is_the_fixtures() {
    assert_eq!(
        SCHEMA_VERSION, FIXTURE_SCHEMA_VERSION,
        "the envelope schema version changed: keep the version-{FIXTURE_SCHEMA_VERSION} fixtures \
         (old journals hold such records and must still decode) and add fixtures for the new version"
    );
}

// ---------------------------------------------------------------------------------------
// Which variants the enums declare, read from their serde `Deserialize` impls: the derive
// hands the full list of variant names to `deserialize_enum`.
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Captured(Vec<&'static str>);

impl fmt::Display for Captured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "variants {:?}", self.0)
    }
}

impl std::error::Error for Captured {}

impl de::Error for Captured {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        panic!("unexpected deserialization error: {msg}")
    }
}

/// A deserializer that only records the variants of the enum asked for.
struct VariantNames;

impl<'de> de::Deserializer<'de> for VariantNames {
    type Error = Captured;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Captured> {
        panic!("not an enum")
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Captured> {
        Err(Captured(variants.to_vec()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

fn declared_variants<'de, T: Deserialize<'de>>() -> BTreeSet<&'static str> {
    match T::deserialize(VariantNames) {
        Err(Captured(v)) => v.into_iter().collect(),
        Ok(_) => panic!("no variants captured"),
    }
}

/// The variant name of a serialized value: `"Name"` for a unit variant, `{"Name": ..}` for
/// the others.
fn variant_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value).expect("events serialize as JSON") {
        serde_json::Value::String(s) => s,
        serde_json::Value::Object(m) if m.len() == 1 => m.keys().next().cloned().expect("one key"),
        other => panic!("not an externally tagged variant: {other}"),
    }
}

#[test]
fn every_variant_has_a_fixture() {
    let mut problems = Vec::new();
    let mut check = |what: &str, declared: BTreeSet<&'static str>, sampled: BTreeSet<String>| {
        for v in &declared {
            if !sampled.contains(*v) {
                problems.push(format!(
                    "{what}::{v} has no golden sample: add one to this file and write its fixture \
                     with {BLESS_VAR}=1"
                ));
            }
        }
    };
    let product = product_samples();
    check(
        "ProductEvent",
        declared_variants::<ProductEvent>(),
        product.iter().map(variant_name).collect(),
    );
    check(
        "DirectoryEvent",
        declared_variants::<DirectoryEvent>(),
        directory_samples().iter().map(variant_name).collect(),
    );
    check(
        "RevokeReason",
        declared_variants::<RevokeReason>(),
        product
            .iter()
            .filter_map(|e| match e {
                ProductEvent::SlotRevoked { reason, .. } => Some(variant_name(reason)),
                _ => None,
            })
            .collect(),
    );
    check(
        "LeaveReason",
        declared_variants::<LeaveReason>(),
        product
            .iter()
            .filter_map(|e| match e {
                ProductEvent::QueueLeft { reason, .. } => Some(variant_name(reason)),
                _ => None,
            })
            .collect(),
    );

    // Every fixture on disk belongs to a sample: a fixture is never dropped, because the
    // records it stands for are still in old journals.
    let names: BTreeSet<String> = product_samples()
        .iter()
        .map(product_fixture_name)
        .chain(directory_samples().iter().map(directory_fixture_name))
        .collect();
    assert_eq!(
        names.len(),
        product_samples().len() + directory_samples().len(),
        "two samples share a fixture name"
    );
    if let Ok(dir) = std::fs::read_dir(golden_dir()) {
        for entry in dir {
            let path = entry.expect("read tests/golden").path();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            if path.extension().is_some_and(|x| x == "hex") && !names.contains(&stem) {
                problems.push(format!(
                    "{} has no sample: events are append-only, so its sample must stay",
                    path.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}
