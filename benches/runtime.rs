//! Runtime benchmarks (`cargo bench --bench runtime`): whole runs of the release binary with
//! the durable log, side by side with the physical floor (spawning as many `/bin/true`
//! processes and waiting for them). Prints figures; asserts nothing about time.
//!
//! (a) 1,000 no-op built-in phases as a chain and as a fan-out; (b) 1,000 `run: [/bin/true]`
//! phases, serially (`--max-parallel 1`) and 4 at a time (`--max-parallel 4`), each against the
//! floor of spawning 1,000 `/bin/true` the same way (one after the other; from 4 threads),
//! measured in the same round; (d) peak memory of a 10,000-phase run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The binary of this build: Cargo builds it for benchmarks (in the benchmark's profile) and
/// says where.
fn binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_spectacular"));
    assert!(bin.is_file(), "`{}` is missing", bin.display());
    bin
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write mission");
    path
}

fn chain(n: usize) -> String {
    let mut m = String::from("mission: chain\nphases:\n");
    for i in 0..n {
        let needs = if i == 0 {
            String::new()
        } else {
            format!(", needs: [p{}]", i - 1)
        };
        m.push_str(&format!("  p{i}: {{ uses: builtin/noop{needs} }}\n"));
    }
    m
}

fn fan(n: usize, kind: &str) -> String {
    format!("mission: fan\nphases:\n  fan:\n    {kind}\n    for_each: 'range(0, {n})'\n")
}

/// Stores are kept until the end: deleting thousands of attempt files between runs makes the
/// file system busy (and the next measurement noisy).
fn run_once(
    bin: &Path,
    mission: &Path,
    max_parallel: u32,
    keep: &mut Vec<tempfile::TempDir>,
) -> Duration {
    let store = tempfile::tempdir().expect("tempdir");
    let start = Instant::now();
    let status = Command::new(bin)
        .args([
            "run",
            mission.to_str().unwrap(),
            "--max-parallel",
            &max_parallel.to_string(),
        ])
        .arg("--store")
        .arg(store.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run spectacular");
    let elapsed = start.elapsed();
    assert!(status.success(), "the benchmark run failed");
    keep.push(store);
    elapsed
}

/// The floor: spawn `n` `/bin/true` and wait for each, from `parallel` threads at once.
fn floor(n: usize, parallel: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..parallel {
            let share = n / parallel + usize::from(t < n % parallel);
            scope.spawn(move || {
                for _ in 0..share {
                    let status = Command::new("/bin/true")
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status()
                        .expect("/bin/true");
                    assert!(status.success());
                }
            });
        }
    });
    start.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn peak_rss_kib_of_children() -> i64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bin = binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let rounds = 5;

    // (d) first, so that the peak RSS of children is this run's.
    let big = write(dir.path(), "big.yaml", &fan(10_000, "uses: builtin/noop"));
    let mut keep = Vec::new();
    let big_time = run_once(&bin, &big, 16, &mut keep);
    let rss_mib = peak_rss_kib_of_children() as f64 / 1024.0;
    println!(
        "(d) 10,000-phase fan-out: {} , peak RSS {rss_mib:.1} MiB (target < 100 MB)",
        ms(big_time)
    );

    let chain_path = write(dir.path(), "chain.yaml", &chain(1000));
    let fan_path = write(dir.path(), "fan.yaml", &fan(1000, "uses: builtin/noop"));
    let true_path = write(dir.path(), "true.yaml", &fan(1000, "run: [/bin/true]"));
    let a_chain = median(
        (0..rounds)
            .map(|_| run_once(&bin, &chain_path, 4, &mut keep))
            .collect(),
    );
    let a_fan = median(
        (0..rounds)
            .map(|_| run_once(&bin, &fan_path, 16, &mut keep))
            .collect(),
    );
    // Each engine figure beside its own floor, measured in the same round; the ratio is the
    // median of the rounds' ratios, so that one disturbed round does not decide it.
    let mut serial = Round::default();
    let mut parallel = Round::default();
    for _ in 0..rounds {
        serial.floors.push(floor(1000, 1));
        serial.runs.push(run_once(&bin, &true_path, 1, &mut keep));
        parallel.floors.push(floor(1000, 4));
        parallel.runs.push(run_once(&bin, &true_path, 4, &mut keep));
    }
    println!(
        "(a) 1,000 no-op phases, chain:   {} (target < 500 ms)",
        ms(a_chain)
    );
    println!(
        "(a) 1,000 no-op phases, fan-out: {} (target < 500 ms)",
        ms(a_fan)
    );
    for (name, round) in [("one at a time", &serial), ("4 at a time", &parallel)] {
        println!(
            "(b) 1,000 `run: [/bin/true]` phases, {name}: {} against a floor of {} = {:.2}x (target <= 1.3x)",
            ms(median(round.runs.clone())),
            ms(median(round.floors.clone())),
            round.ratio()
        );
    }
}

/// The engine's figures and the floor's, round by round.
#[derive(Default)]
struct Round {
    floors: Vec<Duration>,
    runs: Vec<Duration>,
}

impl Round {
    /// The median of the rounds' ratios (engine / floor).
    fn ratio(&self) -> f64 {
        let mut ratios: Vec<f64> = self
            .runs
            .iter()
            .zip(&self.floors)
            .map(|(run, floor)| run.as_secs_f64() / floor.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios[ratios.len() / 2]
    }
}
