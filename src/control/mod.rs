//! The operator's side: the control socket, the status snapshot, and Prometheus metrics.
//!
//! Owns what an operator asks of a running daemon (`vipkeeper status`, `switchover`,
//! `resume`, `maintenance`, `reload`) and what monitoring reads (`/metrics`, `/healthz`).
//! The daemon loop publishes a [`status::Status`] snapshot after every change and answers
//! [`protocol::Request`]s through an event; these modules never touch routers.

pub mod metrics;
pub mod protocol;
pub mod render;
pub mod socket;
pub mod status;
