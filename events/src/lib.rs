//! slotpool's core: the events it records, the pure state machines that fold them, and
//! the sled journal that keeps them.
//!
//! Architecture Invariant: everything but [`journal`] and [`envelope`] is pure: no I/O, no
//! clock, no randomness. Time comes in as an argument ([`Timestamp`]), so recovery,
//! offline audit and simulation reuse exactly these rules.

pub mod command;
pub mod connector;
pub mod directory;
pub mod eligibility;
pub mod envelope;
pub mod event;
pub mod fixed_request;
pub mod history;
pub mod image;
pub mod journal;
pub mod json_text;
pub mod pool;
pub mod presence;
pub mod product;
pub mod queue;
pub mod reservation;
pub mod settings;
pub mod stream;
pub mod sweep;
pub mod sync;
pub mod time;
pub mod user_name;

pub use command::{Command, Refusal};
pub use connector::{ConnectorKind, ConnectorSettings, Drift};
pub use directory::{
    DirectoryCommand, DirectoryGroup, DirectoryRefusal, DirectoryState, DirectoryUser, Email,
    GroupInput, Profile, UserInput,
};
pub use eligibility::Eligibility;
pub use envelope::{Envelope, SCHEMA_VERSION};
pub use event::{DirectoryEvent, LeaveReason, ProductEvent, RevokeReason};
pub use fixed_request::{FixedRequest, RequestState};
pub use history::{History, HistoryOptions, Occupancy};
pub use image::{ProductImage, StandingImage, UserImage};
pub use journal::{Durability, Journal, JournalConfig, JournalError, StreamTip};
pub use presence::Presence;
pub use product::{
    Counts, Holder, Notice, ProductState, QueuePlace, SlotView, Standing, UserEntry, Warning,
};
pub use reservation::{Blocked, GroupBook, Reservation, ReservationUse, Reservations};
pub use settings::{ProductKind, QueuePage, Settings};
pub use stream::{StreamId, StreamIdError};
pub use sync::{SkipReason, Skipped, SyncPlan, SyncReport};
pub use time::Timestamp;
