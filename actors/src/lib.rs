//! slotpool's actors: one [`ProductActor`] per product owning its pool and queue, a
//! [`DirectoryActor`] owning users, and the [`Products`] registry that routes to them.
//!
//! Architecture Invariant: this crate knows nothing of HTTP. Rules live in
//! `slotpool-events`; actors only sequence them: decide, append, apply, await durable,
//! answer.

pub mod agenda;
pub mod alert;
pub mod clock;
pub mod connector;
pub mod directory;
pub mod directory_view;
pub mod durable;
pub mod error;
pub mod messages;
pub mod metrics;
pub mod product;
pub mod recovery;
pub mod registry;
pub mod request_index;
pub mod scheduler;
pub mod session;
pub mod transport;
pub mod webhook;

pub use agenda::Job;
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use connector::{ConnectorActor, Owner};
pub use directory::{
    Change, ConfigureProduct, DirectoryActor, ListUsers, LookupUser, Membership, Provision,
    ReadDirectory, Reconcile, SetUserActive, SyncProduct,
};
pub use directory_view::{DirectoryView, UserFacts};
pub use durable::{ask, ask_recipient, Pending};
pub use error::ActorError;
pub use messages::{
    ConnectorStatus, Execute, Executed, ListHolders, Notification, Poll, ProductNotice, Read,
    RefreshSpaces, ResyncReport, Snapshotting, SpaceStatus, Sweep,
};
pub use metrics::{Metrics, ProductMetrics};
pub use product::{ConnectorOf, ProductActor};
pub use recovery::{recover, restore, Services};
pub use registry::{Placement, Products};
pub use request_index::RequestIndex;
pub use scheduler::{Nightly, Scheduler, SchedulerActor};
pub use session::{Frame, SessionActor};
pub use transport::{ConnectorSlot, DeliveryError, GroupChange, Transport, TransportFactory};
