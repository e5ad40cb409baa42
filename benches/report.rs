//! The speed report (`cargo bench --bench report`): every figure of the table in
//! CONTRIBUTING.md ("The speed table"), each beside its floor measured in the same run and
//! printed as a ratio to it, so that a loaded machine slows both and the ratio still shows a
//! regression. Prints; asserts nothing about time. `-- --quick` runs fewer rounds.
//!
//! | figure | floor |
//! |---|---|
//! | 1,000 `run: [/bin/true]` phases, one at a time | a shell loop spawning 1,000 `/bin/true` |
//! | 1,000 no-op phases, fan-out and chain | the same shell loop |
//! | `spectacular --version` | `/bin/true` |
//! | `analyse` of a 2,000-line spec in a 10,000-file repository | reading every file of it, serially |
//! | a policy decision, 3 built-in packs | the same decision with 3 packs that answer at once |
//!
//! Whole runs use the binary Cargo built for the benchmark (release settings); their CPU time
//! (user + system, from `getrusage`) is printed too, which a busy machine moves less than
//! wall-clock time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spectacular::spec::{analyse_file, AnalysisConfig};

#[path = "fixtures/analyse.rs"]
mod analyse_fixture;
#[path = "fixtures/policy.rs"]
mod policy_fixture;

/// The binary's allocator, so that the in-process figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 5 };
    println!("spectacular speed report ({rounds} rounds; each figure is the median of its rounds' ratios)");
    println!(
        "machine: {} logical CPU(s), {} {}, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::OS,
        std::env::consts::ARCH,
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split(' ').next().map(str::to_string))
            .unwrap_or_else(|| "unknown".into())
    );
    println!();
    println!("| figure | measured | floor | ratio | goal |");
    println!("|---|---|---|---|---|");
    processes(rounds);
    version(if quick { 100 } else { 300 });
    analyse(rounds);
    policy(rounds, if quick { 2_000 } else { 10_000 });
}

/// The binary of this build: Cargo builds it for benchmarks (in the benchmark's profile).
fn binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_spectacular"));
    assert!(bin.is_file(), "`{}` is missing", bin.display());
    bin
}

/// Wall-clock and CPU time (user + system) of something run in child processes.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    wall: Duration,
    cpu: Duration,
}

fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Run `command` to its end (it must succeed); what it cost.
fn cost(command: &mut Command) -> Cost {
    let cpu = children_cpu();
    let start = Instant::now();
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("start the command");
    let wall = start.elapsed();
    assert!(status.success(), "{command:?} failed");
    Cost {
        wall,
        cpu: children_cpu() - cpu,
    }
}

fn median<T: Copy + PartialOrd>(mut samples: Vec<T>) -> T {
    samples.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn row(figure: &str, measured: String, floor: String, ratio: f64, goal: &str) {
    println!("| {figure} | {measured} | {floor} | {ratio:.2}× | {goal} |");
}

/// The floor of process phases: a shell loop spawning 1,000 `/bin/true`.
fn spawn_floor() -> Cost {
    cost(Command::new("sh").args([
        "-c",
        "i=0; while [ $i -lt 1000 ]; do /bin/true; i=$((i+1)); done",
    ]))
}

fn fan(kind: &str) -> String {
    format!("mission: fan\nphases:\n  fan:\n    {kind}\n    for_each: 'range(0, 1000)'\n")
}

fn chain() -> String {
    let mut m = String::from("mission: chain\nphases:\n");
    for i in 0..1000 {
        let needs = if i == 0 {
            String::new()
        } else {
            format!(", needs: [p{}]", i - 1)
        };
        m.push_str(&format!("  p{i}: {{ uses: builtin/noop{needs} }}\n"));
    }
    m
}

/// Whole runs against the spawn floor, round by round.
fn processes(rounds: usize) {
    let bin = binary();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missions = [
        (
            "1,000 `/bin/true` phases, one at a time",
            fan("run: [/bin/true]"),
            1,
            "≤ 1.3×",
        ),
        (
            "1,000 no-op phases, fan-out",
            fan("uses: builtin/noop"),
            16,
            "≤ 0.2×",
        ),
        ("1,000 no-op phases, chain", chain(), 4, "≤ 0.2×"),
    ];
    // Stores are kept until the end: deleting thousands of attempt files between runs makes
    // the file system busy, and the next measurement noisy.
    let mut keep = Vec::new();
    for (i, (figure, mission, parallel, goal)) in missions.iter().enumerate() {
        let path = dir.path().join(format!("m{i}.yaml"));
        std::fs::write(&path, mission).expect("write the mission");
        let mut runs = Vec::new();
        let mut floors = Vec::new();
        for _ in 0..rounds {
            floors.push(spawn_floor());
            let store = tempfile::tempdir().expect("a store");
            runs.push(cost(
                Command::new(&bin)
                    .arg("run")
                    .arg(&path)
                    .args(["--max-parallel", &parallel.to_string(), "--store"])
                    .arg(store.path())
                    .env("NO_COLOR", "1"),
            ));
            keep.push(store);
        }
        let ratio = |f: fn(&Cost) -> Duration| {
            median(
                runs.iter()
                    .zip(&floors)
                    .map(|(r, fl)| f(r).as_secs_f64() / f(fl).as_secs_f64())
                    .collect(),
            )
        };
        let wall = median(runs.iter().map(|c| c.wall).collect());
        let floor = median(floors.iter().map(|c| c.wall).collect());
        row(figure, ms(wall), ms(floor), ratio(|c| c.wall), goal);
        let cpu = median(runs.iter().map(|c| c.cpu).collect());
        let floor_cpu = median(floors.iter().map(|c| c.cpu).collect());
        row(
            &format!("{figure} (CPU time)"),
            ms(cpu),
            ms(floor_cpu),
            ratio(|c| c.cpu),
            "",
        );
    }
}

/// Start-up: `spectacular --version` against `/bin/true`, interleaved, in wall-clock and in
/// CPU time (a busy machine delays the start of a process more than it makes it work more).
fn version(n: usize) {
    let bin = binary();
    let mut ours = Vec::with_capacity(n);
    let mut floor = Vec::with_capacity(n);
    for _ in 0..n {
        floor.push(cost(&mut Command::new("/bin/true")));
        ours.push(cost(Command::new(&bin).arg("--version")));
    }
    let size = std::fs::metadata(&bin).map_or(0, |m| m.len());
    let figure = format!(
        "`spectacular --version` ({:.1} MB binary)",
        size as f64 / 1e6
    );
    let us = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let wall = |c: &Cost| c.wall;
    let ratio = |f: &dyn Fn(&Cost) -> Duration| {
        median(
            ours.iter()
                .zip(&floor)
                .map(|(o, fl)| f(o).as_secs_f64() / f(fl).as_secs_f64())
                .collect(),
        )
    };
    let median_of =
        |costs: &[Cost], f: &dyn Fn(&Cost) -> Duration| median(costs.iter().map(f).collect());
    row(
        &figure,
        us(median_of(&ours, &wall)),
        us(median_of(&floor, &wall)),
        ratio(&wall),
        "≤ 2 ms",
    );
    // CPU time of one process is a few clock ticks at most: the mean over all of them.
    let mean_cpu = |costs: &[Cost]| costs.iter().map(|c| c.cpu).sum::<Duration>() / n as u32;
    let (cpu, floor_cpu) = (mean_cpu(&ours), mean_cpu(&floor));
    row(
        &format!("{figure} (CPU time, mean)"),
        us(cpu),
        us(floor_cpu),
        cpu.as_secs_f64() / floor_cpu.as_secs_f64().max(1e-9),
        "",
    );
}

/// Read every file under `dir`, one after the other: the floor of any analysis of it.
fn read_all(dir: &Path) -> usize {
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).expect("read a directory").flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            bytes += read_all(&path);
        } else if let Ok(data) = std::fs::read(&path) {
            bytes += data.len();
        }
    }
    bytes
}

fn analyse(rounds: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("create the repository");
    analyse_fixture::generated_repo(&repo, analyse_fixture::REPO_FILES);
    let spec = dir.path().join("spec.md");
    std::fs::write(
        &spec,
        analyse_fixture::generated_spec(analyse_fixture::SPEC_LINES),
    )
    .expect("write the spec");
    let config = AnalysisConfig::default();
    let mut runs = Vec::new();
    let mut floors = Vec::new();
    // One of each first, so that both find the files in the page cache.
    read_all(&repo);
    analyse_file(&spec, "spec.md", Some(&repo), &config).expect("analyse");
    for _ in 0..rounds {
        let start = Instant::now();
        std::hint::black_box(read_all(&repo));
        floors.push(start.elapsed());
        let start = Instant::now();
        std::hint::black_box(
            analyse_file(&spec, "spec.md", Some(&repo), &config).expect("analyse"),
        );
        runs.push(start.elapsed());
    }
    let ratios = runs
        .iter()
        .zip(&floors)
        .map(|(r, f)| r.as_secs_f64() / f.as_secs_f64())
        .collect();
    row(
        "`analyse`, 2,000-line spec, 10,000-file repository",
        ms(median(runs)),
        ms(median(floors)),
        median(ratios),
        "≤ 100 ms",
    );
}

fn policy(rounds: usize, iterations: usize) {
    let packs = policy_fixture::builtin(&["default-routing", "budget-guard", "security-review"]);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let trivial = policy_fixture::trivial(dir.path());
    let contexts = policy_fixture::contexts();
    let mut runs = Vec::new();
    let mut floors = Vec::new();
    for _ in 0..rounds {
        floors.push(policy_fixture::measure(&trivial, &contexts, iterations).0);
        runs.push(policy_fixture::measure(&packs, &contexts, iterations).0);
    }
    let ratios = runs
        .iter()
        .zip(&floors)
        .map(|(r, f)| r.as_secs_f64() / f.as_secs_f64())
        .collect();
    let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
    row(
        "a policy decision, 3 packs (median)",
        us(median(runs)),
        us(median(floors)),
        median(ratios),
        "≤ 20 µs",
    );
}
