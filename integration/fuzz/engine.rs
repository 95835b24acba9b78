//! The fuzz loop: seeds in, mutants through a target's property check, a saved input and a
//! replay recipe out when a property breaks or the code under test panics.
//!
//! Owns the run settings (environment variables), the corpus directories, the pool of
//! inputs mutants are drawn from, and failure files. Coverage-less on purpose (the stable
//! toolchain has no sanitizer coverage): the only feedback is the outcome label each check
//! returns, and a mutant whose label was never seen before joins the pool, so inputs that
//! get past one more check of a parser are mutated further.
//!
//! Environment:
//! - `VIPKEEPER_FUZZ_ITERS`: mutants per target (default: the target's own, a few thousand);
//! - `VIPKEEPER_FUZZ_SECS`: stop a target after this many seconds even if iterations remain;
//! - `VIPKEEPER_FUZZ_SEED`: the generator seed, decimal or `0x` hex (default fixed, so CI
//!   runs the same inputs every time);
//! - `VIPKEEPER_FUZZ_VERBOSE`: print how often each outcome came up;
//! - `VIPKEEPER_FUZZ_SAVE_EACH`: write every input to `<target>-in-progress` before checking
//!   it, to catch the one that hangs or exhausts memory (slow);
//! - `VIPKEEPER_FUZZ_INPUT`: run one saved input (`target/fuzz-failures/<target>-<hash>`)
//!   through the target its file name starts with, and nothing else.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::mutate::{dictionary, mutate_bytes, mutate_text, Rng};

/// The seed when `VIPKEEPER_FUZZ_SEED` is not set.
pub const DEFAULT_SEED: u64 = 0x5eed_f022;
/// The largest mutant: past every parser's own limits, and quick enough in a debug build.
const MAX_INPUT: usize = 64 * 1024;
/// Inputs the pool keeps besides the seeds; beyond it, new finds replace random old ones.
const POOL_LIMIT: usize = 1024;

/// How a target's inputs are mutated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Packets: byte mutations only.
    Binary,
    /// Configuration and protocol text: line and token mutations as well.
    Text,
}

/// One fuzz target: its name (also its corpus directory and failure file prefix), how its
/// inputs are mutated, and seeds that live elsewhere in the repository.
pub struct Target {
    pub name: &'static str,
    pub kind: Kind,
    pub extra_seeds: Vec<Vec<u8>>,
    /// Mutants per run when `VIPKEEPER_FUZZ_ITERS` is not set.
    pub default_iterations: u64,
}

/// What a check says of one input: `Ok(label)` names the outcome (`ok:v3`, `err:BadChecksum`)
/// and `Err(message)` is a broken property.
pub type Verdict = Result<String, String>;

/// What a run did, for the caller's own assertions (a run that never reached an accepting
/// outcome proves little).
pub struct Summary {
    pub iterations: u64,
    pub elapsed: Duration,
    /// How often each outcome label came up, seeds included.
    pub outcomes: BTreeMap<String, u64>,
}

impl Summary {
    /// Fails unless some outcome label contains `fragment`: a run that never got an input
    /// accepted only proves the parser's front door. A replay (no mutants) is exempt.
    pub fn assert_reached(&self, fragment: &str) {
        if self.iterations == 0 {
            return;
        }
        assert!(
            self.outcomes.keys().any(|label| label.contains(fragment)),
            "no input reached {fragment:?}; outcomes: {:?}",
            self.outcomes
        );
    }
}

/// Run `check` on every seed, then on mutants until the iteration count or the time limit is
/// reached. Panics (with the saved input's path and the seed) on the first broken property.
pub fn run(target: Target, check: impl Fn(&[u8]) -> Verdict) -> Summary {
    let start = Instant::now();
    let mut outcomes = BTreeMap::new();
    if let Ok(path) = std::env::var("VIPKEEPER_FUZZ_INPUT") {
        return replay(&target, Path::new(&path), &check);
    }
    let seed = env_number("VIPKEEPER_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let iterations = env_number("VIPKEEPER_FUZZ_ITERS").unwrap_or(target.default_iterations);
    let time_limit = std::env::var("VIPKEEPER_FUZZ_SECS")
        .ok()
        .map(|s| {
            s.parse::<f64>()
                .expect("VIPKEEPER_FUZZ_SECS is a number of seconds")
        })
        .map(Duration::from_secs_f64);

    let mut seeds = corpus(target.name);
    seeds.extend(target.extra_seeds.iter().cloned());
    assert!(
        !seeds.is_empty(),
        "fuzz target {}: no seeds in {}",
        target.name,
        corpus_dir(target.name).display()
    );
    // Every seed, unmutated, first: regression inputs kept in the corpus are checked here.
    for input in &seeds {
        let label = judge(&target, seed, None, input, &check);
        *outcomes.entry(label).or_insert(0) += 1;
    }

    // A hang or an out-of-memory kill leaves no panic to save the input from; with this
    // set, the input being checked is always on disk (slow: for replaying a seed only).
    let in_progress = std::env::var_os("VIPKEEPER_FUZZ_SAVE_EACH").map(|_| {
        let dir = target_dir().join("fuzz-failures");
        std::fs::create_dir_all(&dir).expect("create target/fuzz-failures");
        dir.join(format!("{}-in-progress", target.name))
    });
    let words = dictionary(&seeds);
    let mut pool = seeds.clone();
    // Target-specific stream: targets do not share mutants even under the same seed.
    let mut rng = Rng::new(seed ^ fnv1a(target.name.as_bytes()));
    let mut done = 0;
    while done < iterations && time_limit.is_none_or(|limit| start.elapsed() < limit) {
        let input = rng.pick(&pool);
        let other = rng.pick(&pool);
        let mut mutant = match target.kind {
            Kind::Binary => mutate_bytes(&mut rng, input, other),
            Kind::Text => mutate_text(&mut rng, input, other, &words),
        };
        // Stacked insertions would otherwise grow pool entries without bound.
        mutant.truncate(MAX_INPUT);
        if let Some(path) = &in_progress {
            std::fs::write(path, &mutant).expect("write the input in progress");
        }
        let label = judge(&target, seed, Some(done), &mutant, &check);
        let count = outcomes.entry(label).or_insert(0);
        *count += 1;
        if *count == 1 {
            if pool.len() < seeds.len() + POOL_LIMIT {
                pool.push(mutant);
            } else {
                let replaced = seeds.len() + rng.below(POOL_LIMIT);
                pool[replaced] = mutant;
            }
        }
        done += 1;
    }
    let summary = Summary {
        iterations: done,
        elapsed: start.elapsed(),
        outcomes,
    };
    eprintln!(
        "fuzz {}: {} mutants and {} seeds in {:.2?} (seed {seed:#x}), {} distinct outcomes, pool {}",
        target.name,
        summary.iterations,
        seeds.len(),
        summary.elapsed,
        summary.outcomes.len(),
        pool.len(),
    );
    if std::env::var_os("VIPKEEPER_FUZZ_VERBOSE").is_some_and(|v| !v.is_empty()) {
        for (label, count) in &summary.outcomes {
            eprintln!("  {count:>8}  {label}");
        }
    }
    summary
}

/// Check one saved input; targets whose name does not start the file's name skip it.
fn replay(target: &Target, path: &Path, check: &impl Fn(&[u8]) -> Verdict) -> Summary {
    let start = Instant::now();
    let mut outcomes = BTreeMap::new();
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if file_name.starts_with(&format!("{}-", target.name)) {
        let input = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let label = judge(target, 0, None, &input, check);
        eprintln!("fuzz {}: {} is {label}", target.name, path.display());
        outcomes.insert(label, 1);
    }
    Summary {
        iterations: 0,
        elapsed: start.elapsed(),
        outcomes,
    }
}

/// Run the check on one input, turning a panic into a failure like a broken property.
fn judge(
    target: &Target,
    seed: u64,
    iteration: Option<u64>,
    input: &[u8],
    check: &impl Fn(&[u8]) -> Verdict,
) -> String {
    let verdict = catch_unwind(AssertUnwindSafe(|| check(input))).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".to_string());
        Err(format!("panicked: {message}"))
    });
    match verdict {
        Ok(label) => label,
        Err(message) => fail(target, seed, iteration, input, &message),
    }
}

fn fail(target: &Target, seed: u64, iteration: Option<u64>, input: &[u8], message: &str) -> ! {
    let dir = target_dir().join("fuzz-failures");
    let path = dir.join(format!("{}-{:016x}", target.name, fnv1a(input)));
    let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    let at = match iteration {
        Some(iteration) => format!("mutant {iteration}"),
        None => "a seed".to_string(),
    };
    let saved = match saved {
        Ok(()) => format!("input saved to {}", path.display()),
        Err(error) => format!(
            "input NOT saved ({}: {error}): {input:02x?}",
            path.display()
        ),
    };
    panic!(
        "fuzz target {name} failed on {at} (seed {seed:#x}): {message}\n{saved}\n\
         replay: VIPKEEPER_FUZZ_INPUT={path} cargo test --test fuzz {name}\n\
         rerun:  VIPKEEPER_FUZZ_SEED={seed:#x} cargo test --test fuzz {name}",
        name = target.name,
        path = path.display(),
    );
}

fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("integration/fuzz/corpus")
        .join(name)
}

/// The files of the target's corpus directory, in name order (the order seeds get checked).
fn corpus(name: &str) -> Vec<Vec<u8>> {
    files_in(&corpus_dir(name))
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|n| n != "README.md"))
        .map(|path| std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// The regular files directly in `dir`, sorted; none when it does not exist.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

/// FNV-1a, 64 bits: names failure files after their content, so a rerun overwrites.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
