//! slotpool's core: the events it records, their envelope, and the pure state machines
//! that fold them. The journal that keeps them is the `slotpool-journal` crate.
//!
//! Architecture Invariant: everything here is pure: no I/O, no clock, no randomness, no
//! storage crate among the dependencies. Time comes in as an argument ([`Timestamp`]), so
//! recovery, offline audit and simulation reuse exactly these rules.

pub mod alert;
pub mod answer;
pub mod bypass;
pub mod command;
pub mod connector;
pub mod connector_settings;
pub mod directory;
pub mod eligibility;
pub mod envelope;
pub mod event;
pub mod fixed_request;
pub mod history;
pub mod image;
pub mod json_text;
pub mod mode;
pub mod pool;
pub mod presence;
pub mod product;
pub mod profile;
pub mod queue;
pub mod replication;
pub mod reservation;
pub mod schedule;
pub mod settings;
pub mod shadow;
pub mod space;
pub mod space_book;
pub mod stream;
pub mod sweep;
pub mod sync;
pub mod sync_report;
pub mod time;
pub mod user_name;

pub use alert::{AlertKind, AlertRule, AlertWebhook};
pub use bypass::{BypassRule, GateRequest};
pub use command::{Command, Refusal};
pub use connector::Drift;
pub use connector_settings::{ConnectorKind, ConnectorSettings};
pub use directory::{
    DirectoryCommand, DirectoryGroup, DirectoryRefusal, DirectoryState, DirectoryUser, GroupInput,
    UserInput,
};
pub use eligibility::Eligibility;
pub use envelope::{Envelope, SCHEMA_VERSION};
pub use event::{DirectoryEvent, LeaveReason, ProductEvent, RevokeReason};
pub use fixed_request::{FixedRequest, RequestState};
pub use history::{History, HistoryOptions, Occupancy};
pub use image::{ProductImage, StandingImage, UserImage};
pub use mode::{Mode, Passage};
pub use presence::Presence;
pub use product::{
    Counts, Holder, Notice, ProductState, QueuePlace, SlotView, Standing, UserEntry, Warning,
};
pub use profile::{Email, Profile};
pub use replication::ReplicationRecord;
pub use reservation::{Blocked, GroupBook, Reservation, ReservationUse, Reservations};
pub use schedule::{Calendar, CapacityChange, Schedule, ScheduleError};
pub use settings::{ProductKind, QueuePage, Settings};
pub use space::{Grant, Space, SpaceOperation, SpaceRequest, SpaceWork};
pub use space_book::SpaceBook;
pub use stream::{StreamId, StreamIdError};
pub use sync::SyncPlan;
pub use sync_report::{SkipReason, Skipped, SyncReport};
pub use time::Timestamp;
