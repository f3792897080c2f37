//! alsy's HTTP adapter: the API README.md's "HTTP API" describes, on the driving side of the
//! hexagon.
//!
//! [`routes`] turns the app's [`alsy_app::Service`] into warp filters: requests are parsed at the
//! edge into domain types (`ClientSpec`, `AlgorithmStatus`, `ClientId`), answers are wrapped in the
//! JSON envelope, and every failure gets its status in one place. [`serve`] runs those routes on
//! hyper with the read, write and idle timeouts, `X-Request-Id` on every response, one access log
//! line per request, and a graceful shutdown. It depends on the app and domain crates only.
//!
//! Around every request: bearer-token authentication ([`Authenticator`]), Prometheus metrics
//! ([`Metrics`], served on `/metrics`), an audit line per write, and the OpenAPI document of the
//! API on `/api/openapi.json`.

mod audit;
mod auth;
mod body;
mod connection;
mod dto;
mod earlier;
mod envelope;
mod error;
mod exchange;
mod handlers;
mod input;
mod metrics;
mod openapi;
mod request_id;
mod routes;
mod server;
mod sync_state;

pub use auth::{Authenticator, OPEN_PATHS, Role, Tokens, check_name, digest_hex, file_line};
pub use body::BODY_LIMIT;
pub use error::ApiError;
pub use metrics::Metrics;
pub use request_id::{REQUEST_ID_HEADER, RequestId};
pub use routes::{ApiRoute, ROUTES, Routes, routes};
pub use server::{HttpSettings, serve};
