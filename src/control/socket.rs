//! The control socket: a Unix stream socket carrying one JSON request line and one JSON
//! response line per connection (see [`super::protocol`]).
//!
//! Owns binding the socket safely, serving it, and the blocking client the CLI uses. The
//! server never interprets a request: it hands each one to the daemon loop over a channel
//! together with a oneshot for the answer, and writes back whatever comes.
//!
//! Binding. [`bind`] takes `PATH.lock` (an exclusive `flock`, held as long as the
//! [`ControlListener`] lives), so two daemons starting at once cannot both decide the
//! socket is stale. A socket file that still answers a connect is never replaced; one that
//! refuses is stale and is replaced. The new socket is bound inside a fresh 0700 directory
//! next to `PATH`, chmod'ed to 0600 and only then renamed onto `PATH`: nobody but root can
//! ever connect to it while it has a wider mode (no process-wide umask games, which would
//! race with the hook threads). Dropping the listener removes `PATH` if it is still ours.
//!
//! Serving. [`serve`] runs on the daemon's current-thread runtime inside a
//! `tokio::task::LocalSet`: it `spawn_local`s one task per connection. Each connection gets
//! [`Limits`]: a bounded line (64 KiB) read within a timeout, a peer uid check (root or our
//! own euid, from `SO_PEERCRED`), and a bounded wait for the daemon's answer ("daemon
//! busy" after that).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc::UnboundedSender, oneshot};

use super::protocol::{Request, Response};

/// What the server hands the daemon loop: a request and where to send its answer.
pub type Pending = (Request, oneshot::Sender<Response>);

/// Longest request line accepted, newline excluded.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Longest response line the client accepts (a status of many instances and checks).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Per-connection bounds of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line, newline excluded.
    pub max_request_bytes: usize,
    /// Time a client has to send its request line after connecting.
    pub read_timeout: Duration,
    /// Time the daemon loop has to answer before the client is told "daemon busy".
    pub answer_timeout: Duration,
    /// Time a client has to take the response.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request_bytes: MAX_REQUEST_BYTES,
            read_timeout: Duration::from_secs(5),
            answer_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// A bound control socket. Holds `PATH.lock` while it lives; dropping it removes the
/// socket file if that file is still the one bound here.
#[derive(Debug)]
pub struct ControlListener {
    listener: StdUnixListener,
    path: PathBuf,
    /// (st_dev, st_ino) of the socket file we created.
    identity: (u64, u64),
    _lock: Flock<File>,
}

impl ControlListener {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlListener {
    fn drop(&mut self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

/// Binds the control socket at `path` (mode 0600 from the start), creating its parent
/// directory with mode 0700 when missing.
///
/// Fails with [`io::ErrorKind::AddrInUse`] when another vipkeeper holds `PATH.lock` or
/// anything answers on `path`, and with [`io::ErrorKind::AlreadyExists`] when `path` is
/// not a socket. A socket file nobody listens on is replaced.
pub fn bind(path: &Path) -> io::Result<ControlListener> {
    let name = path
        .file_name()
        .ok_or_else(|| invalid(format!("control socket {}: no file name", path.display())))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .map_err(|e| annotate(e, format!("creating {}", parent.display())))?;
    }

    let mut lock_name = name.to_os_string();
    lock_name.push(".lock");
    let lock_path = parent.join(lock_name);
    let lock_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| annotate(e, format!("opening {}", lock_path.display())))?;
    let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "control socket {} is in use: another vipkeeper holds {}",
                    path.display(),
                    lock_path.display()
                ),
            )
        } else {
            annotate(errno.into(), format!("locking {}", lock_path.display()))
        }
    })?;

    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; not replacing it",
                    path.display()
                ),
            ));
        }
        Ok(_) => match StdUnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "control socket {} is in use: something is listening on it",
                        path.display()
                    ),
                ));
            }
            // Stale: the rename below replaces it.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => {
                return Err(annotate(
                    e,
                    format!("probing the existing socket {}", path.display()),
                ))
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(annotate(e, format!("inspecting {}", path.display()))),
    }

    let staging = Staging::create(&parent)?;
    let staged = staging.0.join("s");
    let listener = StdUnixListener::bind(&staged)
        .map_err(|e| annotate(e, format!("binding {}", staged.display())))?;
    fs::set_permissions(&staged, fs::Permissions::from_mode(0o600))
        .map_err(|e| annotate(e, format!("chmod 0600 {}", staged.display())))?;
    fs::rename(&staged, path).map_err(|e| annotate(e, format!("installing {}", path.display())))?;
    drop(staging);
    let meta = fs::symlink_metadata(path)?;
    Ok(ControlListener {
        listener,
        path: path.to_path_buf(),
        identity: (meta.dev(), meta.ino()),
        _lock: lock,
    })
}

/// A fresh 0700 directory next to the socket, removed on drop.
struct Staging(PathBuf);

impl Staging {
    fn create(parent: &Path) -> io::Result<Staging> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = parent.join(format!(
            ".vk{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| annotate(e, format!("creating {}", dir.display())))?;
        Ok(Staging(dir))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.0.join("s"));
        let _ = fs::remove_dir(&self.0);
    }
}

/// Serves the control socket with the default [`Limits`]. See [`serve_with`].
pub async fn serve(listener: ControlListener, requests: UnboundedSender<Pending>) {
    serve_with(listener, requests, Limits::default()).await
}

/// Accepts connections until the daemon drops the receiving end of `requests` (or this
/// future is dropped); the socket file is removed then.
///
/// Must run inside a `tokio::task::LocalSet`: each connection is a `spawn_local` task, and
/// a connection still in flight when serving stops finishes within its [`Limits`].
pub async fn serve_with(
    listener: ControlListener,
    requests: UnboundedSender<Pending>,
    limits: Limits,
) {
    let accepting = match listener
        .listener
        .try_clone()
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(UnixListener::from_std)
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(path = %listener.path.display(), error = %e, "control socket unusable");
            return;
        }
    };
    loop {
        tokio::select! {
            () = requests.closed() => return,
            accepted = accepting.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::task::spawn_local(connection(stream, requests.clone(), limits));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// One connection: read a line, check the peer, ask the daemon, write the answer.
async fn connection(stream: UnixStream, requests: UnboundedSender<Pending>, limits: Limits) {
    let peer_uid = getsockopt(&stream, PeerCredentials).map(|c| c.uid());
    let mut stream = TokioBufReader::new(stream);
    let line = tokio::time::timeout(
        limits.read_timeout,
        read_line(&mut stream, limits.max_request_bytes),
    )
    .await;
    let response = match line {
        Err(_) => Response::refused(format!(
            "bad request: no request line within {:?}",
            limits.read_timeout
        )),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "control socket read failed");
            return;
        }
        Ok(Ok(Line::Empty)) => return,
        Ok(Ok(Line::TooLong)) => Response::refused(format!(
            "bad request: longer than {} bytes",
            limits.max_request_bytes
        )),
        Ok(Ok(Line::Complete(bytes))) => match peer_uid {
            Err(e) => Response::refused(format!("permission denied: peer credentials: {e}")),
            Ok(uid) if !peer_allowed(uid) => {
                tracing::warn!(uid, "control socket: refused a peer that is not root");
                Response::refused(format!(
                    "permission denied: uid {uid} is neither root nor vipkeeper's user"
                ))
            }
            Ok(_) => match serde_json::from_slice::<Request>(&bytes) {
                Err(e) => Response::refused(format!("bad request: {e}")),
                Ok(request) => ask(request, &requests, limits.answer_timeout).await,
            },
        },
    };
    let mut out = match serde_json::to_vec(&response) {
        Ok(out) => out,
        Err(e) => {
            tracing::error!(error = %e, "control response not serializable");
            return;
        }
    };
    out.push(b'\n');
    let stream = stream.get_mut();
    let written = tokio::time::timeout(limits.write_timeout, async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::debug!("control socket client did not take its response");
    }
}

fn peer_allowed(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

async fn ask(
    request: Request,
    requests: &UnboundedSender<Pending>,
    answer_timeout: Duration,
) -> Response {
    let (reply, answer) = oneshot::channel();
    if requests.send((request, reply)).is_err() {
        return Response::refused("daemon is shutting down");
    }
    match tokio::time::timeout(answer_timeout, answer).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => Response::refused("daemon dropped the request"),
        Err(_) => Response::refused(format!("daemon busy: no answer within {answer_timeout:?}")),
    }
}

enum Line {
    /// The connection closed before sending anything.
    Empty,
    TooLong,
    /// Up to the newline (excluded), or to the end of the stream.
    Complete(Vec<u8>),
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> io::Result<Line> {
    let mut buf = Vec::new();
    // One byte over the limit tells a too-long line from one of exactly `max` bytes.
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut bounded = reader.take(limit);
    bounded.read_until(b'\n', &mut buf).await?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > max {
        return Ok(Line::TooLong);
    } else if buf.is_empty() {
        return Ok(Line::Empty);
    }
    Ok(Line::Complete(buf))
}

/// Why the CLI got no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("is vipkeeper running? no socket at {}", path.display())]
    NoSocket { path: PathBuf },
    #[error("is vipkeeper running? nothing is listening on {}", path.display())]
    NotListening { path: PathBuf },
    #[error("permission denied: run as root (cannot connect to {})", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("timed out after {timeout:?} waiting for vipkeeper on {}", path.display())]
    Timeout { path: PathBuf, timeout: Duration },
    #[error("control socket {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("vipkeeper closed the connection without answering")]
    NoResponse,
    #[error("vipkeeper sent a response over {MAX_RESPONSE_BYTES} bytes")]
    ResponseTooLong,
    #[error("vipkeeper sent a malformed response: {0}")]
    BadResponse(String),
}

/// Sends one request and waits for its response, all within `timeout` (the connect itself
/// is not bounded: it only blocks when the daemon's accept backlog is full).
pub fn request(path: &Path, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
    let deadline = Instant::now() + timeout;
    let io_error = |source: io::Error| {
        if matches!(
            source.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            ClientError::Timeout {
                path: path.to_path_buf(),
                timeout,
            }
        } else {
            ClientError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let stream = StdUnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ClientError::NoSocket {
            path: path.to_path_buf(),
        },
        io::ErrorKind::ConnectionRefused => ClientError::NotListening {
            path: path.to_path_buf(),
        },
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied {
            path: path.to_path_buf(),
        },
        _ => io_error(e),
    })?;
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(ClientError::Timeout {
                path: path.to_path_buf(),
                timeout,
            })
    };

    let mut line = serde_json::to_vec(request).map_err(|e| ClientError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    line.push(b'\n');
    stream
        .set_write_timeout(Some(remaining()?))
        .map_err(io_error)?;
    // A server that refuses early may close before reading; its answer is still readable.
    match (&stream).write_all(&line) {
        Ok(()) => {
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) => {}
        Err(e) => return Err(io_error(e)),
    }

    let mut reader = BufReader::new((&stream).take(MAX_RESPONSE_BYTES as u64 + 1));
    let mut buf = Vec::new();
    loop {
        stream
            .set_read_timeout(Some(remaining()?))
            .map_err(io_error)?;
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        if chunk.is_empty() {
            break;
        }
        if let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            buf.extend_from_slice(&chunk[..end]);
            break;
        }
        let n = chunk.len();
        buf.extend_from_slice(chunk);
        reader.consume(n);
    }
    if buf.len() > MAX_RESPONSE_BYTES {
        return Err(ClientError::ResponseTooLong);
    }
    if buf.is_empty() {
        return Err(ClientError::NoResponse);
    }
    serde_json::from_slice(&buf).map_err(|e| ClientError::BadResponse(e.to_string()))
}

fn annotate(error: io::Error, context: String) -> io::Error {
    io::Error::new(error.kind(), format!("{context}: {error}"))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn read_line_bounds() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"abc\nrest", "abc"),
            (b"abc", "abc"),
            (b"12345\n", "12345"),
            (b"123456\n", "too long"),
            (b"123456", "too long"),
        ];
        for (input, expected) in cases {
            let mut reader = *input;
            let got = match read_line(&mut reader, 5).await.unwrap() {
                Line::Empty => "empty".to_string(),
                Line::TooLong => "too long".to_string(),
                Line::Complete(b) => String::from_utf8(b).unwrap(),
            };
            assert_eq!(&got, expected, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn client_errors_read_well() {
        let path = PathBuf::from("/run/vipkeeper/control.sock");
        assert_eq!(
            ClientError::NoSocket { path: path.clone() }.to_string(),
            "is vipkeeper running? no socket at /run/vipkeeper/control.sock"
        );
        assert!(ClientError::PermissionDenied { path }
            .to_string()
            .starts_with("permission denied: run as root"));
    }
}
