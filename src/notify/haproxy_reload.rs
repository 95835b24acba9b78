//! The `haproxy_reload` action: check the configuration, reload HAProxy through its master
//! CLI, and verify that a new worker took over.
//!
//! Owns: the exchange with the master CLI (`-S <socket>`, one command per connection, read
//! to EOF, through [`crate::health::haproxy::exchange`]), the parser of `show proc`, the
//! parser of the `reload` reply, the optional `haproxy -c -f CONFIG` run, and the verdict.
//!
//! Steps, all within `settings.timeout` (shared reference §2.5):
//! 1. `show proc`: the master's reload count R and the current worker pid(s) P. Done first
//!    so a missing or dead master fails at once, before anything is changed.
//! 2. With `check_config`: `haproxy -c -f CONFIG`; a failure stops here, with HAProxy's
//!    alert lines, and nothing is reloaded. A reload with a broken file would leave the
//!    master in its wait mode with the old worker, which serves but is not what was asked.
//! 3. `reload`. HAProxy 2.7+ answers synchronously `Success=1|0`, `--`, the startup log.
//!    HAProxy 2.6 answers nothing and closes (verified: 0 bytes), so:
//! 4. on an empty reply, poll `show proc` every 100 ms until the reload count passes R,
//!    then judge: `[failed: N>0]` or only old pids under `# workers` is a failure, a new
//!    pid under `# workers` is success.
//!
//! Framing, checked on 2.6: unlike the stats socket, the master CLI keeps the connection
//! open after a command until the client leaves, so `show proc` is sent as
//! `show proc;quit` and the reply still ends at EOF. `reload` needs no `quit`: 2.6 closes
//! at once (the master re-executes itself) and 2.7+ closes after its answer. While the
//! master re-executes, connecting is refused for a moment; the polling rides over that.
//!
//! Must not: send any command but `show proc`, `reload` and `quit`; trust the CLI's output (no
//! panics, no unwraps on what the socket says, fixed byte bound); wait past the timeout
//! (the config check child is killed when its time runs out).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::time::{timeout_at, Instant};

use super::HaproxyReloadSettings;
use crate::health::haproxy::{exchange, ExchangeError, StatsTarget};

/// The most a master CLI reply may weigh: `show proc` is a line per process and the
/// startup log of a reload a few KiB; more is not HAProxy.
const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// How often `show proc` is polled while a 2.6 master reloads (reference §2.5: 100–200 ms).
const POLL_EVERY: Duration = Duration::from_millis(100);

/// How many of HAProxy's own lines an error carries at most.
const MAX_LOG_LINES: usize = 6;

/// Reloads HAProxy and verifies the result: Ok with what was verified ("reload 3: new
/// worker 8380"), or why it failed, naming the master socket.
pub async fn reload(settings: &HaproxyReloadSettings) -> Result<String, String> {
    let deadline = Instant::now() + settings.timeout;
    let socket = settings.master_socket.display();
    // The steps share the deadline; this outer bound is the promise whatever a step does.
    match timeout_at(deadline, reload_steps(settings, deadline)).await {
        Ok(Ok(note)) => Ok(note),
        Ok(Err(reason)) => Err(format!("haproxy_reload {socket}: {reason}")),
        Err(_) => Err(format!(
            "haproxy_reload {socket}: not finished within {:?}",
            settings.timeout
        )),
    }
}

async fn reload_steps(
    settings: &HaproxyReloadSettings,
    deadline: Instant,
) -> Result<String, String> {
    let target = StatsTarget::Unix(settings.master_socket.clone());
    let before = show_proc(&target, deadline, settings.timeout)
        .await
        .map_err(|e| format!("show proc before the reload: {e}"))?;

    if let Some(config) = &settings.check_config {
        check_config(&settings.haproxy_binary, config, deadline).await?;
    }

    let reply = match exchange(
        &target,
        b"reload\n",
        deadline,
        settings.timeout,
        MAX_REPLY_BYTES,
    )
    .await
    {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        // A 2.6 master re-executes itself right after reading `reload`; a reset instead of
        // a clean close says no more than the empty reply does, and the polling decides.
        Err(ExchangeError::Read(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            String::new()
        }
        Err(e) => return Err(format!("sending reload: {e}")),
    };

    match parse_reload_reply(&reply) {
        ReloadReply::Success(_) => {
            // Synchronous answer (2.7+): the new worker is forked already. Name it when the
            // master says so; the reload itself is confirmed either way.
            let note = match show_proc(&target, deadline, settings.timeout).await {
                Ok(after) => describe_success(&before, &after),
                Err(_) => None,
            };
            Ok(note.unwrap_or_else(|| "reload: Success=1".to_owned()))
        }
        ReloadReply::Failure(log) => Err(format!(
            "reload failed: Success=0{}",
            log_excerpt(&log)
                .map(|lines| format!(": {lines}"))
                .unwrap_or_default()
        )),
        ReloadReply::Empty => verify_by_polling(&target, &before, deadline, settings.timeout).await,
        ReloadReply::Other(text) => Err(format!(
            "unexpected answer to reload: {}",
            first_line(&text)
        )),
    }
}

/// 2.6: polls `show proc` until the master's reload count passes the one seen before, and
/// judges that state. Errors of single polls are remembered, not fatal: the master is busy
/// re-executing itself for a moment.
async fn verify_by_polling(
    target: &StatsTarget,
    before: &ShowProc,
    deadline: Instant,
    limit: Duration,
) -> Result<String, String> {
    loop {
        let last_error = match show_proc(target, deadline, limit).await {
            Ok(now) if now.master.reloads > before.master.reloads => {
                return judge_reload(before, &now);
            }
            Ok(_) => None,
            Err(e) => Some(e),
        };
        if Instant::now() + POLL_EVERY >= deadline {
            return Err(format!(
                "reload not confirmed within {limit:?}: the master's reload count is still {}{}",
                before.master.reloads,
                last_error
                    .map(|e| format!(" (last show proc: {e})"))
                    .unwrap_or_default()
            ));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The verdict on a `show proc` taken after the reload count moved past `before`'s:
/// `[failed: N>0]` or no new pid under `# workers` is a failure, a new pid is success.
pub fn judge_reload(before: &ShowProc, after: &ShowProc) -> Result<String, String> {
    let old = pids(&before.workers);
    let failed = after.master.failed.unwrap_or(0);
    if failed > 0 {
        return Err(format!(
            "reload failed: the master reports [failed: {failed}] after reload {}; {}",
            after.master.reloads,
            serving(&after.workers)
        ));
    }
    match describe_success(before, after) {
        Some(note) => Ok(note),
        None if after.workers.is_empty() => Err(format!(
            "reload failed: no worker running after reload {}",
            after.master.reloads
        )),
        None => Err(format!(
            "reload failed: reload {} left the old worker {} as the only worker",
            after.master.reloads,
            listed(&old)
        )),
    }
}

/// "reload R: new worker P" when `after` lists a current worker that `before` did not.
fn describe_success(before: &ShowProc, after: &ShowProc) -> Option<String> {
    let old = pids(&before.workers);
    let new: Vec<u32> = pids(&after.workers)
        .into_iter()
        .filter(|pid| !old.contains(pid))
        .collect();
    if new.is_empty() {
        return None;
    }
    let noun = if new.len() == 1 { "worker" } else { "workers" };
    Some(format!(
        "reload {}: new {noun} {}",
        after.master.reloads,
        listed(&new)
    ))
}

fn serving(workers: &[ProcEntry]) -> String {
    if workers.is_empty() {
        "no worker running".to_owned()
    } else {
        format!("worker {} still serving", listed(&pids(workers)))
    }
}

fn pids(entries: &[ProcEntry]) -> Vec<u32> {
    entries.iter().map(|entry| entry.pid).collect()
}

fn listed(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One `show proc` exchange, parsed.
async fn show_proc(
    target: &StatsTarget,
    deadline: Instant,
    limit: Duration,
) -> Result<ShowProc, String> {
    let bytes = exchange(
        target,
        b"show proc;quit\n",
        deadline,
        limit,
        MAX_REPLY_BYTES,
    )
    .await
    .map_err(|e| e.to_string())?;
    parse_show_proc(&String::from_utf8_lossy(&bytes))
}

/// Runs `haproxy -c -f CONFIG` until the deadline (killed past it). Err carries HAProxy's
/// last alert lines.
async fn check_config(binary: &Path, config: &Path, deadline: Instant) -> Result<(), String> {
    let what = format!(
        "config check ({} -c -f {})",
        binary.display(),
        config.display()
    );
    let child = tokio::process::Command::new(binary)
        .arg("-c")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropped when the deadline passes: the check must not outlive the action.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let output = match timeout_at(deadline, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(format!("{what}: {e}")),
        Err(_) => return Err(format!("{what}: not finished in time, killed")),
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    Err(format!(
        "{what} failed ({}), not reloaded{}",
        output.status,
        log_excerpt(&text)
            .map(|lines| format!(": {lines}"))
            .unwrap_or_default()
    ))
}

/// HAProxy's alert lines (or, without any, its last lines), cut to [`MAX_LOG_LINES`] and
/// joined with " | " so an error stays one line.
fn log_excerpt(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let alerts: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| line.starts_with("[ALERT]"))
        .collect();
    let chosen = if alerts.is_empty() { lines } else { alerts };
    let start = chosen.len().saturating_sub(MAX_LOG_LINES);
    let tail = chosen.get(start..).unwrap_or_default();
    if tail.is_empty() {
        return None;
    }
    let mut joined = String::new();
    for (i, line) in tail.iter().enumerate() {
        if i > 0 {
            joined.push_str(" | ");
        }
        let _ = write!(joined, "{}", printable(line));
    }
    Some(joined)
}

/// A line made safe for a log: control characters replaced, length bounded.
fn printable(line: &str) -> String {
    line.chars()
        .take(300)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn first_line(text: &str) -> String {
    printable(text.lines().next().unwrap_or_default().trim())
}

// ===== parsers =====

/// One process line of `show proc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcEntry {
    pub pid: u32,
    /// `master`, `worker`, `program` (as HAProxy names it).
    pub kind: String,
    /// Reloads this process went through (the master: the reloads of HAProxy).
    pub reloads: u32,
    /// The master's `[failed: N]`: failed reloads since the last good one (2.6).
    pub failed: Option<u32>,
    pub uptime: String,
    pub version: String,
}

/// `show proc` on the master CLI: the master, the current workers, the old workers still
/// draining. Programs are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShowProc {
    pub master: ProcEntry,
    pub workers: Vec<ProcEntry>,
    pub old_workers: Vec<ProcEntry>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Master,
    Workers,
    OldWorkers,
    Programs,
}

/// Parses `show proc` (2.6 sample, columns aligned with spaces or tabs):
///
/// ```text
/// #<PID>          <type>          <reloads>       <uptime>        <version>
/// 5740            master          2 [failed: 1]   0d00h01m28s     2.6.12-1+deb12u4
/// # workers
/// 8380            worker          1               0d00h00m11s     2.6.12-1+deb12u4
/// # old workers
/// 8961            worker          1               0d00h00m05s     2.6.12-1+deb12u4
/// # programs
/// ```
///
/// A worker line before any `# ...` marker counts as current. Err without a master line or
/// on a line that is not a process line.
pub fn parse_show_proc(text: &str) -> Result<ShowProc, String> {
    let mut master = None;
    let mut workers = Vec::new();
    let mut old_workers = Vec::new();
    let mut section = Section::Master;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(marker) = line.strip_prefix('#') {
            let marker = marker.trim().to_ascii_lowercase();
            section = match marker.as_str() {
                "workers" => Section::Workers,
                "old workers" => Section::OldWorkers,
                "programs" | "old programs" => Section::Programs,
                // The column header, `#<PID> <type> ...`.
                _ if marker.starts_with("<pid>") => Section::Master,
                _ => section,
            };
            continue;
        }
        let entry = parse_proc_line(line)
            .ok_or_else(|| format!("unexpected line in show proc: {}", printable(line)))?;
        match (entry.kind.as_str(), section) {
            ("master", _) => master = Some(entry),
            ("worker", Section::OldWorkers) => old_workers.push(entry),
            ("worker", Section::Master | Section::Workers) => workers.push(entry),
            _ => {}
        }
    }
    let master = master.ok_or_else(|| {
        if text.trim().is_empty() {
            "empty answer to show proc".to_owned()
        } else {
            format!(
                "no master line in show proc (is this a master CLI?): {}",
                first_line(text)
            )
        }
    })?;
    Ok(ShowProc {
        master,
        workers,
        old_workers,
    })
}

/// `PID TYPE RELOADS [failed: N] UPTIME VERSION`, any whitespace between the columns.
fn parse_proc_line(line: &str) -> Option<ProcEntry> {
    // Take the bracket out first: it holds a space, and only the master has it.
    let (rest, failed) = match line.find('[') {
        Some(open) => {
            let close = open + line.get(open..)?.find(']')?;
            let inside = line.get(open + 1..close)?;
            let count = inside.split_once(':')?.1.trim().parse().ok()?;
            let without = format!("{} {}", line.get(..open)?, line.get(close + 1..)?);
            (without, Some(count))
        }
        None => (line.to_owned(), None),
    };
    let mut fields = rest.split_whitespace();
    let pid = fields.next()?.parse().ok()?;
    let kind = fields.next()?.to_owned();
    let reloads = fields.next()?.parse().ok()?;
    let uptime = fields.next().unwrap_or_default().to_owned();
    let version = fields.collect::<Vec<_>>().join(" ");
    Some(ProcEntry {
        pid,
        kind,
        reloads,
        failed,
        uptime,
        version,
    })
}

/// What the master CLI answered to `reload`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadReply {
    /// Nothing, the connection closed: HAProxy 2.6 (verify with `show proc`).
    Empty,
    /// `Success=1`, with the startup log after the `--` line (2.7+).
    Success(String),
    /// `Success=0`, with the startup log.
    Failure(String),
    /// Anything else (e.g. `Unknown command` from a CLI that is not the master's).
    Other(String),
}

/// Parses the answer to `reload`: `Success=1|0`, `--`, the startup log (2.7+), or nothing.
pub fn parse_reload_reply(text: &str) -> ReloadReply {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return ReloadReply::Empty;
    }
    let (first, rest) = trimmed.split_once('\n').unwrap_or((trimmed, ""));
    // The log follows a `--` line; without one, whatever follows is the log.
    let log = match rest.split_once("--\n") {
        Some((_, log)) if rest.trim_start().starts_with("--") => log,
        _ => rest.trim_start_matches("--"),
    }
    .trim()
    .to_owned();
    match first.trim() {
        "Success=1" => ReloadReply::Success(log),
        "Success=0" => ReloadReply::Failure(log),
        _ => ReloadReply::Other(trimmed.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real `show proc` output of haproxy 2.6.12-1+deb12u4 (reference §2.2, re-checked
    // locally; column padding as HAProxy prints it, trailing spaces included).
    const AT_START: &str = "\
#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
5740            master          0 [failed: 0]   0d00h01m12s     2.6.12-1+deb12u4\n\
# workers\n\
5743            worker          0               0d00h01m12s     2.6.12-1+deb12u4\n\
# programs\n\
\n";

    const AFTER_GOOD: &str = "\
#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
5740            master          1 [failed: 0]   0d00h01m20s     2.6.12-1+deb12u4\n\
# workers\n\
8380            worker          0               0d00h00m03s     2.6.12-1+deb12u4\n\
# programs\n\
\n";

    const AFTER_FAILED: &str = "\
#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
5740            master          2 [failed: 1]   0d00h01m28s     2.6.12-1+deb12u4\n\
# workers\n\
8380            worker          1               0d00h00m11s     2.6.12-1+deb12u4\n\
# programs\n\
\n";

    const OLD_WORKERS: &str = "\
#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
5740            master          5 [failed: 0]   0d00h01m45s     2.6.12-1+deb12u4\n\
# workers\n\
9057            worker          0               0d00h00m02s     2.6.12-1+deb12u4\n\
# old workers\n\
8961            worker          1               0d00h00m05s     2.6.12-1+deb12u4\n\
# programs\n\
\n";

    fn entry(pid: u32, kind: &str, reloads: u32, failed: Option<u32>, uptime: &str) -> ProcEntry {
        ProcEntry {
            pid,
            kind: kind.to_owned(),
            reloads,
            failed,
            uptime: uptime.to_owned(),
            version: "2.6.12-1+deb12u4".to_owned(),
        }
    }

    #[test]
    fn parses_the_verified_samples() {
        let start = parse_show_proc(AT_START).expect("start");
        assert_eq!(
            start.master,
            entry(5740, "master", 0, Some(0), "0d00h01m12s")
        );
        assert_eq!(
            start.workers,
            vec![entry(5743, "worker", 0, None, "0d00h01m12s")]
        );
        assert!(start.old_workers.is_empty());

        let good = parse_show_proc(AFTER_GOOD).expect("after a good reload");
        assert_eq!((good.master.reloads, good.master.failed), (1, Some(0)));
        assert_eq!(pids(&good.workers), vec![8380]);

        let failed = parse_show_proc(AFTER_FAILED).expect("after a failed reload");
        assert_eq!((failed.master.reloads, failed.master.failed), (2, Some(1)));
        assert_eq!(
            failed.workers,
            vec![entry(8380, "worker", 1, None, "0d00h00m11s")]
        );

        let old = parse_show_proc(OLD_WORKERS).expect("with old workers");
        assert_eq!(pids(&old.workers), vec![9057]);
        assert_eq!(pids(&old.old_workers), vec![8961]);
        assert_eq!(old.master.reloads, 5);
    }

    #[test]
    fn tolerates_other_spacing_and_no_section_markers() {
        // Tabs, single spaces, `[failed:0]` without a space, the trimmed form of the
        // reference (no `# workers` line), and a version with a space.
        let text = "#<PID>\t<type>\t<reloads>\t<uptime>\t<version>\n\
                    5740 master 3 [failed:2] 0d00h01m20s 2.6.12 custom\n\
                    8380\tworker\t0\t0d00h00m03s\t2.6.12\n";
        let parsed = parse_show_proc(text).expect("parse");
        assert_eq!(parsed.master.failed, Some(2));
        assert_eq!(parsed.master.reloads, 3);
        assert_eq!(parsed.master.version, "2.6.12 custom");
        assert_eq!(pids(&parsed.workers), vec![8380]);
        // A master line without the bracket (versions that drop it).
        let plain = parse_show_proc("1 master 4 0d00h00m01s 3.2.0\n").expect("parse");
        assert_eq!((plain.master.reloads, plain.master.failed), (4, None));
    }

    #[test]
    fn programs_are_not_workers() {
        let text = format!("{AT_START}# programs\n6000 program 0 0d00h00m01s 2.6.12\n");
        let parsed = parse_show_proc(&text).expect("parse");
        assert_eq!(pids(&parsed.workers), vec![5743]);
    }

    #[test]
    fn refuses_what_is_not_show_proc() {
        assert!(parse_show_proc("").unwrap_err().contains("empty"));
        assert!(parse_show_proc("Unknown command: 'show proc'\n")
            .unwrap_err()
            .contains("unexpected line"));
        let no_master = "# workers\n8380 worker 0 0d00h00m03s 2.6\n";
        assert!(parse_show_proc(no_master)
            .unwrap_err()
            .contains("no master line"));
        // Broken brackets and numbers are errors, not panics.
        for bad in [
            "5740 master 1 [failed: x] 0d 2.6\n",
            "5740 master 1 [failed: 0 0d 2.6\n",
            "5740 master one 0d 2.6\n",
            "-1 master 0 0d 2.6\n",
            "[]\n",
        ] {
            assert!(parse_show_proc(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn judges_the_verified_transitions() {
        let start = parse_show_proc(AT_START).expect("start");
        let good = parse_show_proc(AFTER_GOOD).expect("good");
        let failed = parse_show_proc(AFTER_FAILED).expect("failed");
        let old = parse_show_proc(OLD_WORKERS).expect("old");

        assert_eq!(
            judge_reload(&start, &good),
            Ok("reload 1: new worker 8380".to_owned())
        );
        let reason = judge_reload(&good, &failed).unwrap_err();
        assert!(reason.contains("[failed: 1]"), "{reason}");
        assert!(reason.contains("worker 8380 still serving"), "{reason}");
        // The old worker draining under `# old workers` does not hide the new one.
        let before = ShowProc {
            workers: vec![entry(8961, "worker", 0, None, "0d")],
            ..old.clone()
        };
        assert_eq!(
            judge_reload(&before, &old),
            Ok("reload 5: new worker 9057".to_owned())
        );
        // Count moved, nothing failed, but the same worker: not a success.
        let same = ShowProc {
            master: entry(5740, "master", 1, Some(0), "0d"),
            ..start.clone()
        };
        let reason = judge_reload(&start, &same).unwrap_err();
        assert!(reason.contains("old worker 5743"), "{reason}");
        let none = ShowProc {
            workers: Vec::new(),
            ..same
        };
        assert!(judge_reload(&start, &none)
            .unwrap_err()
            .contains("no worker running"));
    }

    #[test]
    fn parses_reload_replies() {
        assert_eq!(parse_reload_reply(""), ReloadReply::Empty);
        assert_eq!(parse_reload_reply("\n"), ReloadReply::Empty);
        // management.txt (2.7+): Success=, `--`, then the startup log.
        let ok = "Success=1\n--\n[NOTICE]   (482713) : haproxy version is 2.7.0\n\
                  [NOTICE]   (482713) : path to executable is ./haproxy\n";
        match parse_reload_reply(ok) {
            ReloadReply::Success(log) => assert!(log.starts_with("[NOTICE]"), "{log}"),
            other => panic!("{other:?}"),
        }
        let failed = "Success=0\n--\n[NOTICE]   (1) : haproxy version is 2.7.0\n\
                      [ALERT]    (1) : config : parsing [h.cfg:10] : unknown keyword 'x'\n\
                      [ALERT]    (1) : config : Fatal errors found in configuration.\n";
        match parse_reload_reply(failed) {
            ReloadReply::Failure(log) => {
                let excerpt = log_excerpt(&log).expect("excerpt");
                assert!(excerpt.contains("unknown keyword 'x'"), "{excerpt}");
                assert!(!excerpt.contains("NOTICE"), "{excerpt}");
            }
            other => panic!("{other:?}"),
        }
        // Without a log (built without USE_SHM_OPEN).
        assert_eq!(
            parse_reload_reply("Success=1\n"),
            ReloadReply::Success(String::new())
        );
        assert!(matches!(
            parse_reload_reply("Unknown command: 'reload'\n"),
            ReloadReply::Other(_)
        ));
    }

    #[test]
    fn log_excerpt_bounds_and_cleans() {
        let many: String = (0..20).map(|i| format!("line {i}\n")).collect();
        let excerpt = log_excerpt(&many).expect("excerpt");
        assert_eq!(excerpt.matches(" | ").count(), MAX_LOG_LINES - 1);
        assert!(excerpt.ends_with("line 19"), "{excerpt}");
        assert_eq!(log_excerpt(" \n\n"), None);
        assert_eq!(log_excerpt("a\u{1b}[31mb"), Some("a?[31mb".to_owned()));
    }
}
