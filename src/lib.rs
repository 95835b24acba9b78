//! vipkeeper: a high-availability supervisor for HAProxy pairs.
#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod daemon;
pub mod health;
pub mod net;
pub mod notify;
pub mod systemd;
pub mod telemetry;
pub mod vrrp;
