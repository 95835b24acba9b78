//! Bounded execution of host-side helper commands (`ip`, `nsenter`, `kill`).
//!
//! Every command the lab runs goes through here so that none can hang a test: output is
//! collected on reader threads and the wait is polled against a deadline.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long setup and teardown commands (`ip ...`) may take before the lab gives up.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// After the command exits, how long to wait for its pipes to reach EOF. A command that left
/// a background child holding stdout open would otherwise block the reader forever.
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// `program arg1 arg2 ...`, for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` with `stdin` as its input, collecting stdout and stderr, killing it (only it:
/// it is our child) if it has not exited within `timeout`.
pub fn output_within(mut cmd: Command, stdin: &[u8], timeout: Duration) -> io::Result<Output> {
    let what = describe(&cmd);
    let mut child = cmd
        .stdin(if stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("{what}: cannot start: {e}")))?;
    if let Some(mut input) = child.stdin.take() {
        // Batch scripts are a few hundred bytes, far below the pipe buffer: no writer thread.
        input.write_all(stdin)?;
    }
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let status = match wait_within(&mut child, timeout)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what}: still running after {timeout:?}, killed"),
            ));
        }
    };
    Ok(Output {
        status,
        stdout: stdout.take_within(PIPE_GRACE),
        stderr: stderr.take_within(PIPE_GRACE),
    })
}

/// Like [`output_within`] with the setup timeout, but a non-zero exit is an error that
/// carries the command line and its stderr.
pub fn checked(cmd: Command, stdin: &[u8]) -> io::Result<Output> {
    let what = describe(&cmd);
    let output = output_within(cmd, stdin, SETUP_TIMEOUT)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(io::Error::other(format!(
            "{what}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Polls `child` until it exits or `timeout` passes (`Ok(None)`). Polling starts at 1 ms so
/// that the many short `ip` commands of a build do not each pay a long sleep.
pub fn wait_within(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Bytes read from a pipe on a background thread, and whether EOF was reached.
#[derive(Default)]
struct Pipe {
    bytes: Mutex<(Vec<u8>, bool)>,
    eof: Condvar,
}

struct Collected {
    pipe: Arc<Pipe>,
}

fn collect<R: Read + Send + 'static>(source: Option<R>) -> Collected {
    let pipe = Arc::new(Pipe::default());
    match source {
        None => pipe.bytes.lock().unwrap_or_else(|p| p.into_inner()).1 = true,
        Some(mut source) => {
            let shared = Arc::clone(&pipe);
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    let n = source.read(&mut buf).unwrap_or(0);
                    let mut guard = shared.bytes.lock().unwrap_or_else(|p| p.into_inner());
                    if n == 0 {
                        guard.1 = true;
                        shared.eof.notify_all();
                        return;
                    }
                    guard.0.extend_from_slice(&buf[..n]);
                }
            });
        }
    }
    Collected { pipe }
}

impl Collected {
    /// What was read once EOF is reached, or after `grace` whatever arrived by then.
    fn take_within(self, grace: Duration) -> Vec<u8> {
        let guard = self.pipe.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let (mut guard, _) = self
            .pipe
            .eof
            .wait_timeout_while(guard, grace, |(_, eof)| !*eof)
            .unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut guard.0)
    }
}
