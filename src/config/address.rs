//! Address syntax: a VIP as `ADDRESS[/PREFIX]` and a peer or source as a bare address.
//!
//! Owns the textual forms and the per-address rules (a usable unicast address, a prefix
//! length that fits the family). Cross-address rules (one family per instance, no VIP
//! twice) belong to `validate`.

use std::net::IpAddr;

use thiserror::Error;

/// Why an address string was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("{0:?} is not an IPv4 or IPv6 address")]
    NotAnAddress(String),
    #[error("prefix length {0:?} is not a number")]
    PrefixNotANumber(String),
    #[error("prefix length /{len} is out of range for {family} (1..={max})")]
    PrefixOutOfRange {
        len: u32,
        family: &'static str,
        max: u8,
    },
    #[error("{0} is not a unicast address (unspecified, multicast or broadcast)")]
    NotUnicast(IpAddr),
    #[error("{0:?} carries a prefix length, but this key takes a bare address")]
    UnexpectedPrefix(String),
}

/// `"192.0.2.50/24"` → (192.0.2.50, 24); `"192.0.2.50"` → /32 and `"2001:db8::50"` →
/// /128, keepalived's defaults for `virtual_ipaddress`.
pub fn parse_vip(text: &str) -> Result<(IpAddr, u8), AddressError> {
    let (address_text, prefix_text) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address = parse_unicast(address_text)?;
    let max = max_prefix(&address);
    let prefix_len = match prefix_text {
        None => max,
        Some(prefix) => {
            // Digits only: u32's parser would also take "+24".
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(AddressError::PrefixNotANumber(prefix.to_owned()));
            }
            match prefix.parse::<u32>() {
                Ok(len) if (1..=u32::from(max)).contains(&len) => len as u8,
                Ok(len) => return Err(out_of_range(len, &address)),
                // More digits than u32 holds: out of range all the same.
                Err(_) => return Err(out_of_range(u32::MAX, &address)),
            }
        }
    };
    Ok((address, prefix_len))
}

/// A peer or source address: bare, and usable as the source or destination of an advert.
pub fn parse_host(text: &str) -> Result<IpAddr, AddressError> {
    if text.contains('/') {
        return Err(AddressError::UnexpectedPrefix(text.to_owned()));
    }
    parse_unicast(text)
}

fn parse_unicast(text: &str) -> Result<IpAddr, AddressError> {
    let address: IpAddr = text
        .parse()
        .map_err(|_| AddressError::NotAnAddress(text.to_owned()))?;
    let unusable = address.is_unspecified()
        || address.is_multicast()
        || matches!(address, IpAddr::V4(v4) if v4.is_broadcast());
    if unusable {
        return Err(AddressError::NotUnicast(address));
    }
    Ok(address)
}

fn max_prefix(address: &IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn out_of_range(len: u32, address: &IpAddr) -> AddressError {
    let family = match address {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    };
    AddressError::PrefixOutOfRange {
        len,
        family,
        max: max_prefix(address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn vip_prefix_defaults_to_a_host_route() {
        assert_eq!(parse_vip("192.0.2.50"), Ok((ip("192.0.2.50"), 32)));
        assert_eq!(parse_vip("2001:db8::50"), Ok((ip("2001:db8::50"), 128)));
    }

    #[test]
    fn vip_takes_an_explicit_prefix() {
        assert_eq!(parse_vip("192.0.2.50/24"), Ok((ip("192.0.2.50"), 24)));
        assert_eq!(parse_vip("2001:db8::50/64"), Ok((ip("2001:db8::50"), 64)));
        assert_eq!(parse_vip("192.0.2.50/32"), Ok((ip("192.0.2.50"), 32)));
    }

    #[test]
    fn vip_refuses_bad_prefixes() {
        assert_eq!(
            parse_vip("192.0.2.50/33"),
            Err(AddressError::PrefixOutOfRange {
                len: 33,
                family: "IPv4",
                max: 32
            })
        );
        assert_eq!(
            parse_vip("2001:db8::50/129"),
            Err(AddressError::PrefixOutOfRange {
                len: 129,
                family: "IPv6",
                max: 128
            })
        );
        assert!(matches!(
            parse_vip("192.0.2.50/0"),
            Err(AddressError::PrefixOutOfRange { len: 0, .. })
        ));
        assert!(matches!(
            parse_vip("192.0.2.50/99999999999"),
            Err(AddressError::PrefixOutOfRange { .. })
        ));
        for bad in ["", "+24", "24 ", "x", "-1"] {
            assert_eq!(
                parse_vip(&format!("192.0.2.50/{bad}")),
                Err(AddressError::PrefixNotANumber(bad.into()))
            );
        }
    }

    #[test]
    fn vip_refuses_what_is_not_a_unicast_address() {
        assert_eq!(
            parse_vip("192.0.2.500/24"),
            Err(AddressError::NotAnAddress("192.0.2.500".into()))
        );
        assert_eq!(
            parse_vip("lb-vip/24"),
            Err(AddressError::NotAnAddress("lb-vip".into()))
        );
        assert_eq!(
            parse_vip(" 192.0.2.50"),
            Err(AddressError::NotAnAddress(" 192.0.2.50".into()))
        );
        for bad in ["0.0.0.0", "224.0.0.18", "255.255.255.255", "::", "ff02::12"] {
            assert_eq!(parse_vip(bad), Err(AddressError::NotUnicast(ip(bad))));
        }
    }

    #[test]
    fn hosts_are_bare_addresses() {
        assert_eq!(parse_host("192.0.2.12"), Ok(ip("192.0.2.12")));
        assert_eq!(parse_host("fe80::2"), Ok(ip("fe80::2")));
        assert_eq!(
            parse_host("192.0.2.12/24"),
            Err(AddressError::UnexpectedPrefix("192.0.2.12/24".into()))
        );
        assert_eq!(
            parse_host("224.0.0.18"),
            Err(AddressError::NotUnicast(ip("224.0.0.18")))
        );
    }
}
