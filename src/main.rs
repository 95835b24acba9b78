//! The `vipkeeper` command line: parses arguments, hands off to the library, and turns the
//! outcome into an exit code (0 ok, 1 configuration error, 2 runtime error).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use vipkeeper::config::{self, Config, ConfigErrors};

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
    Run(ConfigFile),
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
        Command::Run(file) => run(&file.config),
    }
    .into()
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

fn run(path: &Path) -> Exit {
    let Some(config) = load(path, "run") else {
        return Exit::ConfigError;
    };
    vipkeeper::telemetry::init();
    match vipkeeper::daemon::run(config, path) {
        Ok(()) => Exit::Ok,
        Err(error) => {
            eprintln!("vipkeeper run: {}: {error}", path.display());
            Exit::RuntimeError
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
