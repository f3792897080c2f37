//! The PostgreSQL adapter: alsy's [`ClientRepository`] and reconcile [`PassLock`] on PostgreSQL,
//! through diesel and diesel-async over a bb8 pool.
//!
//! It sits on the outer ring of the hexagon: it implements ports of `alsy-app` and knows the
//! domain types, and nothing inside knows it. `bin` calls [`migrate`], then
//! [`PostgresRepository::connect`] and [`PostgresRepository::pass_lock`], from
//! [`PostgresSettings`] (the `ALSY__STORAGE__*` settings).
//!
//! [`ClientRepository`]: alsy_app::ClientRepository
//! [`PassLock`]: alsy_app::PassLock

mod connect;
mod error;
mod lock;
mod migrate;
mod pool;
mod queries;
mod repository;
mod retries;
mod rows;
mod schema;
mod settings;
mod switches;

pub use error::PostgresError;
pub use lock::AdvisoryPassLock;
pub use migrate::{MIGRATIONS, migrate};
pub use repository::PostgresRepository;
pub use settings::{MAX_LIFETIME, PostgresSettings, redact_url};
