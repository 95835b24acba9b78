//! The `vipkeeper` command line: parses arguments, hands off to the library, and turns the
//! outcome into an exit code (0 ok, 1 configuration error, 2 runtime error).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use vipkeeper::config::{self, Config, ConfigErrors};
use vipkeeper::control::protocol::Request;
use vipkeeper::control::{render, socket};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (check: the configuration is valid)
  1  configuration error: the file or the command line is wrong; fix it, retrying will not help
  2  runtime error: the configuration is valid but vipkeeper could not do its work";

/// High-availability supervisor for HAProxy pairs: VRRP v2/v3 virtual IPs.
#[derive(Parser)]
#[command(name = "vipkeeper", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and print the effective settings of every instance.
    #[command(after_help = EXIT_CODES)]
    Check(ConfigFile),
    /// Validate the configuration and run the daemon until SIGTERM or SIGINT.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Convert a keepalived.conf (and its includes) into vipkeeper TOML on stdout; what
    /// could not be converted, and why, goes to stderr.
    #[command(after_help = EXIT_CODES)]
    ImportKeepalived(ImportArgs),
    /// Show the running daemon's instances, priorities, checks and hooks.
    #[command(after_help = EXIT_CODES)]
    Status(StatusArgs),
    /// Planned failover: the Master hands over (keeping its VIPs until the peer is heard)
    /// and does not preempt until `resume` or switchover_hold.
    #[command(after_help = EXIT_CODES)]
    Switchover(InstanceArgs),
    /// Let an instance preempt again after a switchover.
    #[command(after_help = EXIT_CODES)]
    Resume(InstanceArgs),
    /// Drain the whole node (on) or undrain it (off).
    #[command(after_help = EXIT_CODES)]
    Maintenance(MaintenanceArgs),
    /// Make the running daemon re-read its configuration (as SIGHUP does).
    #[command(after_help = EXIT_CODES)]
    Reload(Target),
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    file: ConfigFile,
    /// Log lines as text (default) or as one JSON object per line.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Args)]
struct ImportArgs {
    /// The keepalived configuration, e.g. /etc/keepalived/keepalived.conf.
    file: PathBuf,
}

/// Which daemon to talk to.
#[derive(Args)]
struct Target {
    /// The configuration file, read to find its control socket.
    #[arg(short, long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// The control socket, instead of the configuration's `control_socket`.
    #[arg(short, long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// The status as JSON (the same document `vipkeeper status` renders).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InstanceArgs {
    /// The instance's name.
    instance: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
struct MaintenanceArgs {
    /// `on` or `off`.
    #[arg(value_parser = ["on", "off"])]
    mode: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
struct ConfigFile {
    /// The configuration file.
    #[arg(short, long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

/// The documented exit codes; nothing else leaves this process.
#[derive(Clone, Copy)]
enum Exit {
    Ok = 0,
    ConfigError = 1,
    RuntimeError = 2,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version come here too, on stdout, and are not errors.
            let _ = error.print();
            return if error.use_stderr() {
                Exit::ConfigError
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    match cli.command {
        Command::Check(file) => check(&file.config),
        Command::Run(args) => run(&args.file.config, &args.log_format),
        Command::ImportKeepalived(args) => import_keepalived(&args.file),
        Command::Status(args) => control(&args.target, Request::Status, args.json),
        Command::Switchover(args) => control(
            &args.target,
            Request::Switchover {
                instance: args.instance,
            },
            false,
        ),
        Command::Resume(args) => control(
            &args.target,
            Request::Resume {
                instance: args.instance,
            },
            false,
        ),
        Command::Maintenance(args) => control(
            &args.target,
            Request::Maintenance {
                on: args.mode == "on",
            },
            false,
        ),
        Command::Reload(target) => control(&target, Request::Reload, false),
    }
    .into()
}

/// How long the CLI waits for the daemon: a switchover is answered once the handover
/// resolved, up to the instance's Master_Down_Interval (at most about 2 minutes).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(150);

/// Send one request to the running daemon and print its answer.
fn control(target: &Target, request: Request, json: bool) -> Exit {
    let socket = target.socket.clone().unwrap_or_else(|| {
        config::load(&target.config)
            .map(|config| config.global.control_socket)
            .unwrap_or_else(|_| PathBuf::from(config::DEFAULT_CONTROL_SOCKET))
    });
    let response = match socket::request(&socket, &request, CONTROL_TIMEOUT) {
        Ok(response) => response,
        Err(error) => {
            eprintln!("vipkeeper: {error}");
            return Exit::RuntimeError;
        }
    };
    let text = match (&response.status, json) {
        (Some(status), true) => match serde_json::to_string_pretty(status) {
            Ok(text) => text + "\n",
            Err(error) => format!("cannot render the status: {error}\n"),
        },
        (Some(status), false) => render::status_text(status, unix_ms()),
        (None, _) => render::command_response_text(&response),
    };
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
    if response.ok {
        Exit::Ok
    } else {
        Exit::RuntimeError
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

fn check(path: &Path) -> Exit {
    let Some(config) = load(path, "check") else {
        return Exit::ConfigError;
    };
    let text = format!(
        "# {}: valid, {}, {}.\n\
         # Effective settings: every key with its default; '#' lines are derived.\n\n{}",
        path.display(),
        plural(config.instances.len(), "instance"),
        plural(config.warnings.len(), "warning"),
        config::effective_settings(&config),
    );
    // Written by hand rather than println!: `vipkeeper check | head` closes the pipe
    // early, which is not an error worth a panic.
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
    Exit::Ok
}

fn run(path: &Path, log_format: &str) -> Exit {
    let Some(config) = load(path, "run") else {
        return Exit::ConfigError;
    };
    let format = if log_format == "json" {
        vipkeeper::telemetry::LogFormat::Json
    } else {
        vipkeeper::telemetry::LogFormat::Text
    };
    vipkeeper::telemetry::init_with(format);
    match vipkeeper::daemon::run(config, path) {
        Ok(()) => Exit::Ok,
        Err(error) => {
            eprintln!("vipkeeper run: {}: {error}", path.display());
            Exit::RuntimeError
        }
    }
}

/// keepalived.conf → TOML on stdout, notes on stderr; exit 1 when nothing converts.
fn import_keepalived(path: &Path) -> Exit {
    match config::keepalived::import(path) {
        Ok(import) => {
            for note in &import.notes {
                eprintln!("{note}");
            }
            use std::io::Write;
            let _ = std::io::stdout().write_all(import.toml.as_bytes());
            Exit::Ok
        }
        Err(error) => {
            eprintln!("vipkeeper import-keepalived: {error}");
            Exit::ConfigError
        }
    }
}

/// Load and validate, printing every error or warning on stderr, one per line.
fn load(path: &Path, command: &str) -> Option<Config> {
    match config::load(path) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("{warning}");
            }
            Some(config)
        }
        Err(errors) => {
            report(&errors, path, command);
            None
        }
    }
}

fn report(errors: &ConfigErrors, path: &Path, command: &str) {
    for error in errors {
        eprintln!("{error}");
    }
    eprintln!(
        "vipkeeper {command}: {} in {}",
        plural(errors.len(), "error"),
        path.display()
    );
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
