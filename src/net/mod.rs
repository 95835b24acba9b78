//! The network seam: what the daemon asks of the network, and an in-memory simulation of it.
pub mod sim;
