//! Runtime benchmarks (`cargo bench --bench runtime`): whole runs of the release binary with
//! the durable log, side by side with the physical floor (a shell loop spawning `/bin/true`).
//! Prints figures; asserts nothing about time.
//!
//! (a) 1,000 no-op built-in phases as a chain and as a fan-out; (b) 1,000 `run: [/bin/true]`
//! phases against `for i in 1..1000: /bin/true` in sh; (d) peak memory of a 10,000-phase run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("spectacular");
    assert!(
        bin.exists(),
        "build the release binary first: cargo build --release"
    );
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

fn shell_loop(n: usize) -> Duration {
    let start = Instant::now();
    let status = Command::new("sh")
        .args([
            "-c",
            &format!("i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"),
        ])
        .status()
        .expect("sh");
    assert!(status.success());
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
    // The floor and the processes side by side, round by round.
    let mut floors = Vec::new();
    let mut trues = Vec::new();
    for _ in 0..rounds {
        floors.push(shell_loop(1000));
        trues.push(run_once(&bin, &true_path, 4, &mut keep));
    }
    let floor = median(floors);
    let b_true = median(trues);
    println!(
        "    shell loop spawning 1,000 /bin/true (the floor): {}",
        ms(floor)
    );
    println!(
        "(a) 1,000 no-op phases, chain:   {} (target < 500 ms)",
        ms(a_chain)
    );
    println!(
        "(a) 1,000 no-op phases, fan-out: {} (target < 500 ms)",
        ms(a_fan)
    );
    println!(
        "(b) 1,000 `run: [/bin/true]` phases: {} = {:.2}x the shell loop (target <= 1.3x)",
        ms(b_true),
        b_true.as_secs_f64() / floor.as_secs_f64()
    );
}
