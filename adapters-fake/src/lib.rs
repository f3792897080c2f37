//! In-memory adapters for development, demos and tests: a [`ClientRepository`] with the semantics
//! PostgreSQL has, a [`PassLock`] for one process, a [`PodRuntime`] that remembers pods
//! instead of running them, and a [`Clock`] a test moves by hand. Each can be told to fail, so
//! tests can exercise the unhappy paths.
//!
//! [`ClientRepository`]: alsy_app::ClientRepository
//! [`PassLock`]: alsy_app::PassLock
//! [`PodRuntime`]: alsy_app::PodRuntime
//! [`Clock`]: alsy_app::Clock

mod clock;
mod gate;
mod lock;
mod repository;
mod runtime;

pub use clock::ManualClock;
pub use gate::Gate;
pub use lock::LocalPassLock;
pub use repository::InMemoryRepository;
pub use runtime::{
    FakeFailure, FakeOperation, FakePod, FakePodRuntime, HISTORY_LIMIT, THROTTLE_RETRY_AFTER,
};
