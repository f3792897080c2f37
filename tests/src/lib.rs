//! Support for alsy's integration tests: starting the real service on a random port and reading
//! its replies and JSON logs, per-test PostgreSQL databases, a test server that speaks the
//! Kubernetes pods API over real HTTP, and a real API server (envtest) with a stand-in kubelet.
//! The tests themselves live in `tests/it/`, one test binary for the whole workspace.

pub mod app;
pub mod envtest;
pub mod fixtures;
pub mod kube_server;
pub mod logs;
pub mod postgres;
pub mod process;
pub mod reply;
pub mod tcp_proxy;
