//! slotpool's actors: one [`ProductActor`] per product owning its pool and queue, a
//! [`DirectoryActor`] owning users, and the [`Products`] registry that routes to them.
//!
//! Architecture Invariant: this crate knows nothing of HTTP. Rules live in
//! `slotpool-events`; actors only sequence them: decide, append, apply, await durable,
//! answer.

pub mod agenda;
pub mod clock;
pub mod connector;
pub mod directory;
pub mod directory_view;
pub mod durable;
pub mod error;
pub mod metrics;
pub mod product;
pub mod recovery;
pub mod registry;
pub mod scheduler;
pub mod session;

pub use agenda::Job;
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use connector::{
    ConnectorActor, ConnectorSlot, ConnectorStatus, DeliveryError, GroupChange, ResyncReport,
    Transport, TransportFactory,
};
pub use directory::{
    Change, ConfigureProduct, DirectoryActor, ListUsers, LookupUser, Membership, Provision,
    ReadDirectory, Reconcile, SetUserActive, SyncProduct,
};
pub use directory_view::{DirectoryView, UserFacts};
pub use durable::{ask, Pending};
pub use error::ActorError;
pub use metrics::{Metrics, ProductMetrics};
pub use product::{ConnectorOf, Execute, Executed, ListHolders, Poll, ProductActor, Read, Sweep};
pub use recovery::{recover, Services};
pub use registry::{ProductNotice, Products, RequestIndex, Snapshotting};
pub use scheduler::{Nightly, Scheduler, SchedulerActor};
pub use session::{Frame, Notification, SessionActor};
