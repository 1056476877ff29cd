//! seccomp-sentinel: reports, container by container, the seccomp profile every pod really runs
//! with, and can label or evict workloads that violate a `SeccompPolicy`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod api;
pub mod audit;
pub mod client;
pub mod controller;
pub mod engine;
pub mod events;
pub mod lean;
pub mod metrics_auth;
pub mod metrics_tls;
pub mod packed;
pub mod policy;
pub mod profile;
pub mod scc;
pub mod serving_cert;
pub mod status;
pub mod telemetry;
pub mod tls_profile;

#[cfg(test)]
mod fuzz;
