//! The rules for names the configuration hands to the kernel or shows to operators:
//! Linux interface names, IPv4 address labels, instance names and the node name.
//!
//! Owns only the rules, as pure functions over `&str`; never asks the kernel whether an
//! interface exists (it may appear later, and `check` must work on another machine).

use thiserror::Error;

/// IFNAMSIZ minus the terminating NUL: the longest interface name or label the kernel takes.
pub const IFNAME_MAX_BYTES: usize = 15;
/// Instance names appear in logs, metric labels, hook environments and control commands.
pub const INSTANCE_NAME_MAX_BYTES: usize = 64;
/// HOST_NAME_MAX on Linux.
pub const NODE_NAME_MAX_BYTES: usize = 64;

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is {0} bytes long; the limit is {1}")]
    TooLong(usize, usize),
    #[error("\".\" and \"..\" are not valid interface names")]
    Dots,
    #[error("contains {0:?}, which Linux does not allow in interface names")]
    ForbiddenInInterface(char),
    #[error("must start with the device name followed by ':', as in \"{0}:1\"")]
    LabelPrefix(String),
    #[error("has nothing after \"{0}:\"")]
    LabelSuffixEmpty(String),
    #[error("contains {0:?}; use letters, digits, '-', '_' and '.'")]
    ForbiddenInInstanceName(char),
    #[error("contains {0:?}; whitespace and control characters are not allowed")]
    ForbiddenInNodeName(char),
}

/// Linux's `dev_valid_name()`: 1..=15 bytes, not "." or "..", and no '/', ':' or
/// whitespace. ':' is refused too because `eth0:1` is label syntax, not a device; control
/// characters because the kernel would cut the name at a NUL.
pub fn check_interface(name: &str) -> Result<(), NameError> {
    check_length(name, IFNAME_MAX_BYTES)?;
    if name == "." || name == ".." {
        return Err(NameError::Dots);
    }
    match name.chars().find(|&c| forbidden_in_ifname(c) || c == ':') {
        Some(c) => Err(NameError::ForbiddenInInterface(c)),
        None => Ok(()),
    }
}

/// An IPv4 address label (`ip addr add ... label eth1:web`): `<dev>:<suffix>`, at most
/// 15 bytes in all. iproute2 insists the label starts with the device name, and
/// ifconfig-era tools rely on the colon.
pub fn check_label(label: &str, dev: &str) -> Result<(), NameError> {
    check_length(label, IFNAME_MAX_BYTES)?;
    let Some(suffix) = label
        .strip_prefix(dev)
        .and_then(|rest| rest.strip_prefix(':'))
    else {
        return Err(NameError::LabelPrefix(dev.to_owned()));
    };
    if suffix.is_empty() {
        return Err(NameError::LabelSuffixEmpty(dev.to_owned()));
    }
    match suffix.chars().find(|&c| forbidden_in_ifname(c)) {
        Some(c) => Err(NameError::ForbiddenInInterface(c)),
        None => Ok(()),
    }
}

/// Instance names go into logs, metric labels, environment variables of hooks and control
/// commands, so they stay in a set that needs no quoting anywhere.
pub fn check_instance_name(name: &str) -> Result<(), NameError> {
    check_length(name, INSTANCE_NAME_MAX_BYTES)?;
    match name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(NameError::ForbiddenInInstanceName(c)),
        None => Ok(()),
    }
}

/// The node name identifies this machine in logs and status; hostnames are the default.
pub fn check_node_name(name: &str) -> Result<(), NameError> {
    check_length(name, NODE_NAME_MAX_BYTES)?;
    match name.chars().find(|&c| c.is_whitespace() || c.is_control()) {
        Some(c) => Err(NameError::ForbiddenInNodeName(c)),
        None => Ok(()),
    }
}

fn check_length(name: &str, max: usize) -> Result<(), NameError> {
    match name.len() {
        0 => Err(NameError::Empty),
        len if len > max => Err(NameError::TooLong(len, max)),
        _ => Ok(()),
    }
}

fn forbidden_in_ifname(c: char) -> bool {
    c == '/' || c.is_whitespace() || c.is_control()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_dev_valid_name() {
        for good in [
            "eth0",
            "ens3f0np0",
            "bond0.100",
            "a",
            "fifteen-bytes-x",
            "br-lan_2",
        ] {
            assert_eq!(check_interface(good), Ok(()), "{good}");
        }
        assert_eq!(check_interface(""), Err(NameError::Empty));
        assert_eq!(
            check_interface("sixteen-bytes-xx"),
            Err(NameError::TooLong(16, 15))
        );
        assert_eq!(check_interface("."), Err(NameError::Dots));
        assert_eq!(check_interface(".."), Err(NameError::Dots));
        assert_eq!(
            check_interface("eth/0"),
            Err(NameError::ForbiddenInInterface('/'))
        );
        assert_eq!(
            check_interface("eth 0"),
            Err(NameError::ForbiddenInInterface(' '))
        );
        assert_eq!(
            check_interface("eth0:1"),
            Err(NameError::ForbiddenInInterface(':'))
        );
        assert_eq!(
            check_interface("eth\u{0}"),
            Err(NameError::ForbiddenInInterface('\u{0}'))
        );
    }

    #[test]
    fn labels_start_with_the_device() {
        assert_eq!(check_label("eth1:web", "eth1"), Ok(()));
        assert_eq!(check_label("eth1:web:2", "eth1"), Ok(()));
        assert_eq!(
            check_label("eth0:web", "eth1"),
            Err(NameError::LabelPrefix("eth1".into()))
        );
        assert_eq!(
            check_label("eth1web", "eth1"),
            Err(NameError::LabelPrefix("eth1".into()))
        );
        assert_eq!(
            check_label("eth1:", "eth1"),
            Err(NameError::LabelSuffixEmpty("eth1".into()))
        );
        assert_eq!(
            check_label("eth1:a b", "eth1"),
            Err(NameError::ForbiddenInInterface(' '))
        );
        assert_eq!(
            check_label("eth1:web-frontend", "eth1"),
            Err(NameError::TooLong(17, 15))
        );
    }

    #[test]
    fn instance_names_need_no_quoting() {
        assert_eq!(check_instance_name("VI_1"), Ok(()));
        assert_eq!(check_instance_name("web-v6.2"), Ok(()));
        assert_eq!(check_instance_name(""), Err(NameError::Empty));
        assert_eq!(
            check_instance_name("web front"),
            Err(NameError::ForbiddenInInstanceName(' '))
        );
        assert_eq!(
            check_instance_name("web\"x"),
            Err(NameError::ForbiddenInInstanceName('"'))
        );
    }

    #[test]
    fn node_names_refuse_whitespace() {
        assert_eq!(check_node_name("lb1.example.net"), Ok(()));
        assert_eq!(
            check_node_name("lb 1"),
            Err(NameError::ForbiddenInNodeName(' '))
        );
        assert_eq!(check_node_name(""), Err(NameError::Empty));
    }
}
