//! Script security: keepalived's `enable_script_security` for hooks and exec probes.
//!
//! Owns one decision: may a program at this path be run as root? When vipkeeper runs as
//! root, a script that a non-root user can change (or replace, through any directory
//! above it) is a privilege escalation, so it is refused. When vipkeeper does not run as
//! root there is nothing to escalate to, and every path is accepted.
//!
//! The rule follows keepalived (`check_security` in `lib/notify.c`), applied to the file
//! and to every directory above it up to `/`:
//! - the owner must be root. keepalived refuses any other owner, write bit or not, and so
//!   do we: an owner can always `chmod u+w` its own file or directory;
//! - group-writable is refused unless the group is root (gid 0);
//! - other-writable is refused, *sticky bit included*. A sticky `/tmp` does stop others
//!   from replacing a root-owned file in it, but keepalived refuses it anyway and scripts
//!   do not belong in `/tmp`; following keepalived keeps configurations portable both ways.
//!
//! Symlinks: both the path as written (each directory on it, followed through links, since
//! whoever can change a linked directory's target can change the script) and the fully
//! resolved path (the target file and all its parents) are checked. A symlink's own mode
//! means nothing on Linux; whether it can be replaced is decided by its directory, which is
//! on the path as written.
//!
//! Only `check_path` touches the effective uid; the rule itself ([`check_tree`]) is pure
//! file metadata, so it behaves the same in tests run as root.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a path may not be run as root. Every variant names the offending path.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecurityError {
    #[error("{path} does not exist")]
    Missing { path: PathBuf },
    #[error("cannot inspect {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path} is owned by uid {uid}, not root")]
    NotRootOwned { path: PathBuf, uid: u32 },
    #[error("{path} is writable by group {gid}")]
    GroupWritable { path: PathBuf, gid: u32 },
    #[error("{path} is writable by everyone")]
    WorldWritable { path: PathBuf },
}

impl SecurityError {
    /// The path the error is about (the file, a directory above it, or a link target).
    pub fn path(&self) -> &Path {
        match self {
            SecurityError::Missing { path }
            | SecurityError::Unreadable { path, .. }
            | SecurityError::NotRootOwned { path, .. }
            | SecurityError::GroupWritable { path, .. }
            | SecurityError::WorldWritable { path } => path,
        }
    }
}

const GROUP_WRITE: u32 = 0o020;
const OTHER_WRITE: u32 = 0o002;

/// Refuses `path` when vipkeeper runs as root and a non-root user can write the file or any
/// directory above it (see the module documentation). A missing file is always an error.
pub fn check_path(path: &Path) -> Result<(), SecurityError> {
    if !rustix::process::geteuid().is_root() {
        // Still report a missing file: it is a configuration error whoever we run as.
        return match std::fs::symlink_metadata(path) {
            Ok(_) => Ok(()),
            Err(error) => Err(stat_error(path, error)),
        };
    }
    check_tree(path)
}

/// The rule itself, whatever our uid: the file and every directory above it, as written and
/// as resolved, must be root-owned and not writable by a non-root group or by others.
pub fn check_tree(path: &Path) -> Result<(), SecurityError> {
    let written = absolute(path)?;
    // Missing is told apart from the rest before resolving (canonicalize says only ENOENT).
    std::fs::symlink_metadata(&written).map_err(|error| stat_error(&written, error))?;
    let resolved = written
        .canonicalize()
        .map_err(|error| stat_error(&written, error))?;

    let mut seen = HashSet::new();
    // The resolved target first: the file itself is the likeliest offender to name.
    let candidates = resolved
        .ancestors()
        .chain(written.parent().into_iter().flat_map(Path::ancestors));
    for candidate in candidates {
        if seen.insert(candidate.to_path_buf()) {
            check_one(candidate)?;
        }
    }
    Ok(())
}

/// One file or directory, links followed.
fn check_one(path: &Path) -> Result<(), SecurityError> {
    let metadata = std::fs::metadata(path).map_err(|error| stat_error(path, error))?;
    let path = path.to_path_buf();
    let mode = metadata.mode();
    if metadata.uid() != 0 {
        return Err(SecurityError::NotRootOwned {
            path,
            uid: metadata.uid(),
        });
    }
    if mode & GROUP_WRITE != 0 && metadata.gid() != 0 {
        return Err(SecurityError::GroupWritable {
            path,
            gid: metadata.gid(),
        });
    }
    if mode & OTHER_WRITE != 0 {
        return Err(SecurityError::WorldWritable { path });
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf, SecurityError> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|dir| dir.join(path))
        .map_err(|error| SecurityError::Unreadable {
            path: path.to_path_buf(),
            reason: format!("no current directory: {error}"),
        })
}

fn stat_error(path: &Path, error: io::Error) -> SecurityError {
    if error.kind() == io::ErrorKind::NotFound {
        SecurityError::Missing {
            path: path.to_path_buf(),
        }
    } else {
        SecurityError::Unreadable {
            path: path.to_path_buf(),
            reason: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, symlink, PermissionsExt};

    /// A root-owned 0755 directory under `/run` or the temp dir, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(what: &str) -> Dir {
            let dir = std::env::temp_dir()
                .join(format!("vipkeeper-security-{what}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create the test directory");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                .expect("chmod the test directory");
            Dir(dir)
        }

        fn script(&self, name: &str, mode: u32) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write the script");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .expect("chmod the script");
            path
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn as_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn missing_file_is_its_own_error() {
        let dir = Dir::new("missing");
        let path = dir.0.join("nope");
        assert_eq!(check_path(&path), Err(SecurityError::Missing { path }));
    }

    #[test]
    fn the_directory_holding_a_link_is_checked() {
        if !as_root() {
            return;
        }
        let dir = Dir::new("linkdir");
        let shared = dir.0.join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o775)).expect("chmod");
        chown(&shared, Some(0), Some(1000)).expect("chown");
        // A safe target (root-owned all the way up) behind a link that gid 1000 can replace.
        let target = Path::new("/bin/sh")
            .canonicalize()
            .expect("resolve /bin/sh");
        if check_tree(&target).is_err() {
            return; // An unusual host; the rule is covered by the other tests.
        }
        let link = shared.join("hook");
        symlink(&target, &link).expect("symlink");
        assert_eq!(
            check_tree(&link),
            Err(SecurityError::GroupWritable {
                path: shared,
                gid: 1000
            })
        );
    }

    #[test]
    fn the_directory_of_a_link_target_is_checked() {
        // The temp dir's parents must themselves be safe for the positive case; /tmp is
        // sticky and world-writable, which keepalived (and we) refuse.
        if !as_root() {
            return;
        }
        let dir = Dir::new("link");
        let target_dir = dir.0.join("shared");
        std::fs::create_dir(&target_dir).expect("mkdir");
        std::fs::set_permissions(&target_dir, std::fs::Permissions::from_mode(0o775))
            .expect("chmod");
        chown(&target_dir, Some(0), Some(1000)).expect("chown");
        let target = target_dir.join("hook.sh");
        std::fs::write(&target, "#!/bin/sh\n").expect("write");
        let link = dir.0.join("hook-link");
        symlink(&target, &link).expect("symlink");
        let error = check_tree(&link).expect_err("group-writable target dir");
        assert_eq!(
            error,
            SecurityError::GroupWritable {
                path: target_dir,
                gid: 1000
            }
        );
    }

    #[test]
    fn errors_name_path_and_cause() {
        let error = SecurityError::GroupWritable {
            path: PathBuf::from("/opt/hooks"),
            gid: 1000,
        };
        assert_eq!(error.to_string(), "/opt/hooks is writable by group 1000");
        assert_eq!(error.path(), Path::new("/opt/hooks"));
    }

    #[test]
    fn sticky_world_writable_dir_is_refused_like_keepalived() {
        if !as_root() {
            return;
        }
        let dir = Dir::new("sticky");
        let script = dir.script("hook.sh", 0o755);
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        // Whatever the temp dir's parents are, the first offender found walking up from the
        // file is the sticky directory itself.
        assert_eq!(
            check_tree(&script),
            Err(SecurityError::WorldWritable {
                path: dir.0.clone()
            })
        );
    }
}
