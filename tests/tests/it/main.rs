//! alsy's integration tests: one test binary, one module per area.

mod compose;
mod compose_smoke;
mod deploy_manifests;
mod doc_references;
mod earlier_clients;
mod envtest_harness;
mod harness;
mod http_api;
mod k8s_real_cluster;
mod kube_pod_security;
mod kube_rbac;
mod kube_scenario;
mod kube_server_parity;
mod metrics_openapi;
mod pod_runtime_contract;
mod postgres_faults;
mod postgres_service;
mod postgres_storage;
mod reconciler;
mod repository_contract;
mod scenario;
mod security;
mod sync_state;
mod watching;
