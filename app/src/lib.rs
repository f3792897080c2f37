//! alsy's application layer: the ring around the domain.
//!
//! [`ports`] says what the core needs from the outside (storage, a pod runtime, a reconcile lock);
//! [`Service`] holds the use cases the HTTP API calls; [`Reconciler`] runs one pass
//! (ARCHITECTURE.md, "The path of a pass") and [`Watcher`] decides when passes run, nudged too by
//! the runtime's change feed ([`PodFeed`]) when the pods drift from what the last pass wanted.
//! Adapters plug into the ports; only `bin` wires them together.

mod blocking;
mod drift;
mod feed;
mod observer;
pub mod ports;
mod reconciler;
mod report;
mod retries;
mod service;
mod watcher;

pub use blocking::off_the_workers;
pub use feed::{PodChange, PodChanges, PodFeed};
pub use observer::{PassFigures, PassObserver};
pub use ports::{
    ClientRepository, Clock, ConnectionCounts, HeldPassLock, PassLock, PodRuntime, RepoError,
    Restarted, RuntimeError, StoredClients, SystemClock,
};
pub use reconciler::Reconciler;
pub use report::{
    FailedPart, HeldClient, Operation, PassOutcome, PassReport, PodFailure, PodWaiting, Trigger,
};
pub use service::{PodView, Service, ServiceError, SyncPage, SyncView};
pub use watcher::{
    RECHECK_FIRST, RECHECK_MAX, ShuttingDown, SyncSettings, Watcher, WatcherDead, WatcherHandle,
};
