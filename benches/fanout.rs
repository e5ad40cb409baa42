//! `for_each` at scale (`cargo bench --bench fanout`): a mission whose `for_each` expands into
//! 10,000, 30,000 and 100,000 `builtin/noop` children (`--max-parallel 16`), the growth curve
//! of the cost per item. Goal: the 100,000-item run under 10 s. Prints figures; asserts
//! nothing about time.
//!
//! (a) the scheduler alone, in process: expansion, then every child made ready, started and
//! succeeded through `apply`/`decide`, as the engine drives it, minus the effects;
//! (b) whole runs of the release binary (log, projection, attempts), each stopped after
//! `FANOUT_BENCH_TIMEOUT` seconds (default 120) so that a quadratic build still reports.
//!
//! `FANOUT_BENCH_ITEMS=10000,30000` runs other sizes.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spectacular::record::event::*;
use spectacular::record::Event;
use spectacular::schedule::{Action, Options, Scheduler};

/// The binary's allocator, so that the in-process figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MAX_PARALLEL: u32 = 16;
const GOAL: Duration = Duration::from_secs(10);

fn mission(n: usize) -> String {
    format!(
        "mission: fan\nphases:\n  fan:\n    uses: builtin/noop\n    for_each: 'range(0, {n})'\n"
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("FANOUT_BENCH_ITEMS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 30_000, 100_000]);
    let timeout = Duration::from_secs(
        std::env::var("FANOUT_BENCH_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120),
    );

    println!("(a) the scheduler alone, in process:");
    for &n in &sizes {
        let elapsed = drive_scheduler(n);
        println!(
            "    {n:>7} items: {:>8.0} ms ({:.1} µs per item)",
            elapsed.as_secs_f64() * 1e3,
            elapsed.as_secs_f64() * 1e6 / n as f64
        );
    }

    let Some(bin) = release_binary() else {
        println!("(b) skipped: build the release binary first (cargo build --release)");
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!(
        "(b) whole runs of `{}`, --max-parallel {MAX_PARALLEL}:",
        bin.display()
    );
    for &n in &sizes {
        let path = dir.path().join(format!("fan{n}.yaml"));
        std::fs::write(&path, mission(n)).expect("write the mission");
        let store = dir.path().join(format!("store{n}"));
        let goal = if n == 100_000 {
            format!(" (target < {} s)", GOAL.as_secs())
        } else {
            String::new()
        };
        match run_binary(&bin, &path, &store, timeout) {
            Ok(elapsed) => println!(
                "    {n:>7} items: {:>8.2} s ({:.1} µs per item){goal}",
                elapsed.as_secs_f64(),
                elapsed.as_secs_f64() * 1e6 / n as f64
            ),
            Err(why) => println!("    {n:>7} items: {why}{goal}"),
        }
        // Thousands of attempt directories: free the disk before the next size.
        let _ = std::fs::remove_dir_all(&store);
    }
}

/// Drive a scheduler through a whole fan-out of `n` no-op children, recording every decision
/// and succeeding every start in order, like the engine does.
fn drive_scheduler(n: usize) -> Duration {
    let plan = plan(&mission(n));
    let start = Instant::now();
    let mut driver = Driver {
        s: Scheduler::new(
            plan,
            Options {
                max_parallel: MAX_PARALLEL,
            },
        ),
        seq: 0,
    };
    driver.record(EventData::RunStarted(RunStarted {
        mission: "fan".into(),
        mission_source: "fan.yaml".into(),
        mission_digest: "sha256:0".into(),
        mission_text: String::new(),
        files: Default::default(),
        inputs: Default::default(),
        max_parallel: MAX_PARALLEL,
        engine_version: "bench".into(),
        git_base: None,
    }));
    let mut running: VecDeque<(String, u32)> = VecDeque::new();
    loop {
        // Ask until the scheduler has nothing more to record, as the engine's step does.
        loop {
            let mut recorded = false;
            for action in driver.s.decide() {
                match action {
                    Action::Record(data) => {
                        driver.record(data);
                        recorded = true;
                    }
                    Action::Start { phase, attempt, .. } => {
                        driver.record(EventData::AttemptStarted(AttemptStarted {
                            phase: phase.clone(),
                            attempt,
                            workdir: ".".into(),
                            argv: None,
                            prompt_digest: None,
                            timeout_ms: None,
                            reserved_usd: None,
                        }));
                        running.push_back((phase, attempt));
                    }
                    _ => {}
                }
            }
            if !recorded {
                break;
            }
        }
        if driver.s.finished().is_some() {
            break;
        }
        let Some((phase, attempt)) = running.pop_front() else {
            panic!("the scheduler stopped with nothing running");
        };
        driver.record(EventData::AttemptSucceeded(AttemptSucceeded {
            phase,
            attempt,
            exit_code: Some(0),
            duration_ms: 0,
            agent: None,
            usage: None,
            artifacts: Default::default(),
            values: Default::default(),
            result: None,
            git: None,
            integration_head: None,
        }));
    }
    let elapsed = start.elapsed();
    assert_eq!(driver.s.finished(), Some("succeeded"));
    elapsed
}

struct Driver {
    s: Scheduler,
    seq: u64,
}

impl Driver {
    fn record(&mut self, data: EventData) {
        self.seq += 1;
        let event = Event {
            event_id: format!("e{}", self.seq),
            schema: 1,
            run_id: "bench".into(),
            seq: self.seq,
            ts: "2026-11-30T00:00:00.000Z".into(),
            causation_id: None,
            actor: "engine".into(),
            data,
        };
        self.s.apply(&event);
    }
}

fn plan(yaml: &str) -> Arc<spectacular::plan::Plan> {
    let cwd = Path::new(".");
    let located = spectacular::load::Located {
        display: "fan.yaml".into(),
        origin: spectacular::load::Origin::Path,
        base: spectacular::load::Base::Dir(PathBuf::from(".")),
        path: None,
    };
    let loaded = spectacular::load::load_bytes(located, yaml.as_bytes());
    let validated = spectacular::validate::validate(&loaded, cwd);
    let mission = validated.mission.expect("the benchmark mission is valid");
    Arc::new(spectacular::plan::plan(mission))
}

/// One run of `mission` in a fresh store; the wall-clock time of the whole process.
fn run_binary(
    bin: &Path,
    mission: &Path,
    store: &Path,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .arg("run")
        .arg(mission)
        .args(["--max-parallel", &MAX_PARALLEL.to_string()])
        .arg("--store")
        .arg(store)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start `{}`: {e}", bin.display()))?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(start.elapsed()),
            Ok(Some(status)) => return Err(format!("the run failed ({status})")),
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {} s (stopped)",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for the run: {e}")),
        }
    }
}

/// The release binary. Cargo builds it for benchmarks and says where through
/// `CARGO_BIN_EXE_spectacular`; otherwise look beside the benchmark executable, which lives
/// in `target/release/deps/`.
fn release_binary() -> Option<PathBuf> {
    let name = format!("spectacular{}", std::env::consts::EXE_SUFFIX);
    let candidates = option_env!("CARGO_BIN_EXE_spectacular")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.parent()?.join(&name))),
        );
    candidates.into_iter().find(|p| p.is_file())
}
