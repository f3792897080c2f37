//! alsy's domain: the centre of the hexagon.
//!
//! Clients and their validated specs, the algorithms they switch on and off (a configured
//! [`Catalogue`] of names), the pods those switches
//! ask for, and the pure reconciliation [`plan`]: what to create, delete and restart so that the pods
//! that run equal the pods that should; when a failed pod operation is retried ([`Backoff`]) and
//! how far each client is from what it asks for ([`ClientSync`]). Nothing here does I/O or is async; the ports and use cases in
//! `alsy-app` move data in and out, adapters talk to the world.

mod algorithm;
mod catalogue;
mod client;
mod image;
mod plan;
mod pod;
mod policy;
mod quantity;
mod retry;
mod sync;

pub use algorithm::{Algorithm, AlgorithmStatus, InvalidAlgorithm, Slug};
pub use catalogue::{Catalogue, CatalogueError};
pub use client::{
    Client, ClientId, ClientName, ClientSpec, ClientSpecInput, Page, PageRequest, Priority,
    SpecError, UnusableClient, Version,
};
pub use image::ImageRef;
pub use plan::{Acknowledgement, DesiredState, Plan, PodAction, RestartCause, plan};
pub use pod::{DesiredPod, ObservedPod, PodName, PodPhase};
pub use policy::{ImagePrefix, Policy, PolicyViolation};
pub use quantity::Quantity;
pub use retry::{Backoff, BackoffError, Failure, Intent, Operation, PodRetry};
pub use sync::{AlgorithmSync, ClientSync, SyncState, SyncSummary};
