//! STUB (issue 3): VIPs and link state through rtnetlink.
//!
//! Agreed API, filled in by the netlink work:
//! - `Netlink::connect() -> Result<Netlink, NetlinkError>` (spawns the rtnetlink connection
//!   task on the current tokio runtime).
//! - `Netlink::add_vip(&self, vip: &config::Vip) / del_vip(...)`: idempotent, IPv6 with
//!   nodad, label set, every address tagged with our IFA_PROTO value so that ours are known.
//! - `Netlink::remove_stale_vips(&self) -> Result<Vec<IpAddr>, NetlinkError>`: removes every
//!   address carrying our tag (left by a crashed run), nothing else.
//! - `Netlink::link(&self, name) -> Result<LinkInfo { index, up, mac }, NetlinkError>` and
//!   `Netlink::addresses(&self, name, family) -> Result<Vec<IpAddr>, NetlinkError>`.
//! - `Netlink::monitor() -> Result<impl Stream<Item = NetlinkEvent>, NetlinkError>` with
//!   `NetlinkEvent::{Link { name, index, up }, AddressRemoved { index, address },
//!   AddressAdded { index, address }}`.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetlinkError {}
