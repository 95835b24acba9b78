//! The `file` check: an integer in a file (keepalived's `track_file`), watched with inotify.
//!
//! Owns reading the file and noticing that it changed; the weight arithmetic is the
//! tracker's and score's business, not this module's. It must not poll while inotify works,
//! must not block on the file (it is opened non-blocking, read at most [`READ_LIMIT`] bytes:
//! a FIFO or a huge file cannot stall the runtime thread), and reports only changes.
//!
//! The value, as keepalived reads it: the first whitespace-separated word of the file
//! parsed as a decimal `i64` (`"5\n"`, `" -3 "` and `"7 # why"` are 5, -3 and 7). A file
//! that is missing, unreadable, empty or does not start with an integer counts as **0**:
//! keepalived does the same (its `open` failure and `strtol` both leave the status at 0).
//! Unlike keepalived's `strtol(.., 0)`, hexadecimal and octal prefixes are not understood.
//!
//! How changes are seen: an inotify watch on the parent directory for the file's name
//! (`IN_CLOSE_WRITE`, `IN_MOVED_TO`, `IN_CREATE`, `IN_DELETE`, `IN_MOVED_FROM`), so writes,
//! an atomic rename over the file, and delete/recreate are all seen at once. The watch is
//! set before the file is read, so no change can fall between the two. A file written
//! through a symlink or hard link in another directory is not seen until something happens
//! in this directory. If the directory itself does not exist (or vanishes), the file counts
//! as missing and the watch is retried every [`RETRY`].

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc::UnboundedSender;

use super::ProbeOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSettings {
    pub path: PathBuf,
}

/// keepalived reads 127 bytes; an integer never needs more.
pub(super) const READ_LIMIT: u64 = 128;
/// While the directory cannot be watched, how often to try again (and re-read the file).
pub(super) const RETRY: Duration = Duration::from_secs(1);

/// Reports `Value(n)` at start and whenever `n` changes; returns when the receiver is gone.
pub async fn watch(settings: FileSettings, outcomes: UnboundedSender<ProbeOutcome>) {
    let mut watcher: Option<DirWatch> = None;
    let mut last = None;
    loop {
        if watcher.is_none() {
            // Before reading, so a change between the read and the watch is not missed.
            watcher = DirWatch::new(&settings.path).ok();
        }
        let value = read_value(&settings.path);
        if last != Some(value) {
            if outcomes.send(ProbeOutcome::Value(value)).is_err() {
                return;
            }
            last = Some(value);
        }
        let changed = async {
            match watcher.as_mut() {
                Some(watch) => watch.changed().await,
                None => {
                    tokio::time::sleep(RETRY).await;
                    WatchEvent::Lost
                }
            }
        };
        tokio::select! {
            _ = outcomes.closed() => return,
            event = changed => if event == WatchEvent::Lost {
                watcher = None;
            },
        }
    }
}

/// The file's value; see the module documentation for what counts as 0.
pub(super) fn read_value(path: &Path) -> i64 {
    read_head(path)
        .ok()
        .and_then(|text| first_integer(&text))
        .unwrap_or(0)
}

/// The first [`READ_LIMIT`] bytes of a file, opened non-blocking (a FIFO must not block us).
pub(super) fn read_head(path: &Path) -> std::io::Result<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let mut bytes = Vec::new();
    file.take(READ_LIMIT).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The first whitespace-separated word as an `i64`, if it is one.
pub(super) fn first_integer(text: &str) -> Option<i64> {
    text.split_whitespace().next()?.parse().ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WatchEvent {
    /// Something happened to the name: read it again.
    Changed,
    /// The watch is gone (directory deleted or moved, reactor error): make a new one.
    Lost,
}

/// An inotify watch on a file's directory, filtered to the file's name.
pub(super) struct DirWatch {
    inotify: Inotify,
    /// A duplicate of the inotify descriptor, registered with tokio for readiness (nix's
    /// `Inotify` is `AsFd` but not `AsRawFd`); it shares the open file description, so its
    /// readiness is the inotify queue's.
    ready: AsyncFd<OwnedFd>,
    watch: WatchDescriptor,
    name: OsString,
}

impl DirWatch {
    /// Watches `path`'s directory. Fails if the directory cannot be watched (e.g. missing).
    pub(super) fn new(path: &Path) -> std::io::Result<DirWatch> {
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other("the path has no file name"))?
            .to_owned();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let flags = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        let watch = inotify.add_watch(dir, flags)?;
        let fd = std::os::fd::AsFd::as_fd(&inotify).try_clone_to_owned()?;
        // tokio 1.54 deprecates the safe constructors because an arbitrary `T: AsRawFd` may
        // close or swap its descriptor; `OwnedFd` cannot, which is the whole contract of the
        // unsafe replacement, so the deprecated safe one is sound here.
        #[allow(deprecated)]
        let ready = AsyncFd::with_interest(fd, Interest::READABLE)?;
        Ok(DirWatch {
            inotify,
            ready,
            watch,
            name,
        })
    }

    /// Waits for an event about the name (or the loss of the watch), then drains the queue
    /// so one burst of events (truncate, write, close) is one re-read.
    pub(super) async fn changed(&mut self) -> WatchEvent {
        let mut seen = None;
        loop {
            let Ok(mut guard) = self.ready.readable().await else {
                return WatchEvent::Lost;
            };
            loop {
                match self.inotify.read_events() {
                    Ok(events) => {
                        for event in events {
                            if let Some(kind) = self.classify(&event) {
                                // Lost wins over Changed: the caller re-reads either way.
                                if seen != Some(WatchEvent::Lost) {
                                    seen = Some(kind);
                                }
                            }
                        }
                    }
                    Err(Errno::EAGAIN) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(Errno::EINTR) => continue,
                    Err(_) => return WatchEvent::Lost,
                }
            }
            if let Some(kind) = seen {
                return kind;
            }
        }
    }

    fn classify(&self, event: &nix::sys::inotify::InotifyEvent) -> Option<WatchEvent> {
        let gone = AddWatchFlags::IN_IGNORED
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_UNMOUNT;
        if event.mask.intersects(AddWatchFlags::IN_Q_OVERFLOW) {
            // Events were dropped; ours may have been among them.
            return Some(WatchEvent::Changed);
        }
        if event.wd == self.watch && event.mask.intersects(gone) {
            return Some(WatchEvent::Lost);
        }
        (event.name.as_deref() == Some(self.name.as_os_str())).then_some(WatchEvent::Changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_word_is_the_value() {
        assert_eq!(first_integer("5\n"), Some(5));
        assert_eq!(first_integer("  -3  "), Some(-3));
        assert_eq!(first_integer("+4"), Some(4));
        assert_eq!(first_integer("7 # set by deploy"), Some(7));
        assert_eq!(first_integer(""), None);
        assert_eq!(first_integer("ten"), None);
        assert_eq!(first_integer("12abc"), None);
        assert_eq!(first_integer("99999999999999999999"), None);
    }

    #[test]
    fn missing_file_counts_as_zero() {
        assert_eq!(read_value(Path::new("/nonexistent/vipkeeper/value")), 0);
    }
}
