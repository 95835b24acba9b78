//! Lab names and the namespace registry in `/run/netns`.
//!
//! Every name the lab creates is `vkl-<owner pid>-<counter>-<test tag>-<role>`: the owner pid
//! makes names unique across test processes and lets a later build recognise leftovers of a
//! process that died without tearing down (SIGKILL, power loss); the counter makes them unique
//! between labs of one process. Nothing here touches a namespace whose name does not start
//! with the prefix, or whose owner is still alive.

use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use super::command;

const PREFIX: &str = "vkl-";

/// `ip netns add` mounts /run/netns on first use; concurrent first uses from parallel test
/// threads can stack that mount. One lock per process serialises add and delete.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// A fresh lab id `vkl-<pid>-<n>-<tag>`; `tag` is the test name cut to 16 safe characters so
/// `ip netns list` shows which test a namespace belongs to.
pub fn next_lab_id(test_name: &str) -> String {
    let tag: String = test_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(16)
        .collect();
    let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}-{n}-{tag}", std::process::id())
}

/// The owner pid encoded in a lab name, `None` for names the lab did not make.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

fn owner_is_gone(name: &str) -> bool {
    match owner_pid(name) {
        // A reused pid keeps the leftovers alive until it exits too: better than deleting a
        // live lab's namespaces.
        Some(pid) => {
            pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
        }
        None => false,
    }
}

pub fn list_netns() -> io::Result<Vec<String>> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "list"]);
    let output = command::checked(cmd, b"")?;
    // Lines are `name` or `name (id: 3)`.
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect())
}

pub fn add_netns(name: &str) -> io::Result<()> {
    let _guard = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "add", name]);
    command::checked(cmd, b"").map(drop)
}

pub fn del_netns(name: &str) -> io::Result<()> {
    let _guard = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "del", name]);
    command::checked(cmd, b"").map(drop)
}

/// Removes namespaces and lab directories under `dir_base` left by lab processes that no
/// longer exist. The processes still inside such a namespace were started by that dead lab
/// (its node inits and their children); they are killed first, or they would keep the
/// namespace alive after its name is gone. Failures are reported, never fatal: another
/// process may be cleaning the same leftovers.
pub fn remove_stale(dir_base: &Path) {
    let names = match list_netns() {
        Ok(names) => names,
        Err(e) => {
            eprintln!("lab: cannot list namespaces for stale cleanup: {e}");
            return;
        }
    };
    for name in names.iter().filter(|n| owner_is_gone(n)) {
        let mut pids = Command::new("ip");
        pids.args(["netns", "pids", name]);
        if let Ok(output) = command::checked(pids, b"") {
            for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                let mut kill = Command::new("kill");
                kill.args(["-s", "KILL", pid]);
                let _ = command::output_within(kill, b"", command::SETUP_TIMEOUT);
            }
        }
        match del_netns(name) {
            Ok(()) => eprintln!("lab: removed stale namespace {name}"),
            Err(e) => eprintln!("lab: cannot remove stale namespace {name}: {e}"),
        }
    }
    if let Ok(entries) = fs::read_dir(dir_base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if owner_is_gone(&name) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_owner_pid_and_differ() {
        let a = next_lab_id("some test::name with spaces and more");
        let b = next_lab_id("some test::name with spaces and more");
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id()));
        assert!(a.ends_with("some_test__name_"), "{a}");
        assert!(
            !owner_is_gone(&format!("{a}-sw")),
            "our own labs are never stale"
        );
        assert_eq!(owner_pid("vkltest-sw"), None);
        assert!(!owner_is_gone("cni-1234"));
    }
}
