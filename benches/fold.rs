//! Reading and folding a large run log: generates a 1,000,000-event log on disk, then times
//! `Store::read_events` + `fold` (median of several runs). Target: under 2 s in release.
//!
//! `cargo bench --bench fold` (set `FOLD_BENCH_EVENTS` for another size).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use spectacular::record::event::*;
use spectacular::record::{fold, RunLog, Store};

const RUNS: usize = 5;

/// The binary's allocator, so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let total: u64 = std::env::var("FOLD_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let store = Store {
        dir: tmp.path().join(".spectacular"),
    };
    let run_id = ulid::Ulid::new().to_string();

    let started = Instant::now();
    generate(&store, &run_id, total);
    let size = std::fs::metadata(store.events_path(&run_id))
        .expect("the log exists")
        .len();
    println!(
        "generated {total} events ({:.1} MiB) in {:.2?}",
        size as f64 / (1024.0 * 1024.0),
        started.elapsed()
    );

    let mut reads = Vec::new();
    let mut folds = Vec::new();
    let mut totals = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..RUNS {
        let c0 = cpu_time();
        let t0 = Instant::now();
        let events = store.read_events(&run_id).expect("the log reads back");
        let t1 = Instant::now();
        let summary = fold(&events);
        let t2 = Instant::now();
        cpus.push(cpu_time().saturating_sub(c0));
        assert_eq!(summary.last_seq, total);
        std::hint::black_box(&summary);
        reads.push(t1 - t0);
        folds.push(t2 - t1);
        totals.push(t2 - t0);
        drop(events);
    }
    let (read, fold_t, all) = (median(&mut reads), median(&mut folds), median(&mut totals));
    println!("median of {RUNS} runs:");
    println!("  read_events  {read:>10.2?}");
    println!("  fold         {fold_t:>10.2?}");
    println!(
        "  total        {all:>10.2?}  ({:.0} events/s, {:.0} MiB/s)",
        total as f64 / all.as_secs_f64(),
        size as f64 / (1024.0 * 1024.0) / all.as_secs_f64()
    );
    println!(
        "  cpu time     {:>10.2?}  (all threads; wall time suffers when the machine is busy)",
        median(&mut cpus)
    );
    println!(
        "  target < 2 s: {}",
        if all < Duration::from_secs(2) {
            "met"
        } else {
            "MISSED"
        }
    );
}

/// CPU time used by this process so far (all threads).
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A run shaped like a big fan-out: 1,000 work packages, each attempted again and again
/// (ready, started, succeeded or failed, phase done), committed in groups.
fn generate(store: &Store, run_id: &str, total: u64) {
    let mut log = RunLog::create(store, run_id).expect("a new run log");
    log.append(
        EventData::RunStarted(RunStarted {
            mission: "software-dev".into(),
            mission_source: "missions/software-dev/mission.yaml".into(),
            mission_digest: format!("sha256:{}", "ab".repeat(32)),
            mission_text: "mission: software-dev\n".into(),
            files: BTreeMap::new(),
            inputs: BTreeMap::from([("spec".into(), serde_json::json!("specs/auth.md"))]),
            max_parallel: 8,
            engine_version: "0.1.0".into(),
            git_base: None,
        }),
        "engine",
        None,
    );
    let mut i: u64 = 0;
    while log.last_seq() < total {
        let wp = i % 1000;
        let attempt = (i / 1000 + 1) as u32;
        let phase = format!("implement[wp-{wp}]");
        let data = match log.last_seq() % 4 {
            0 => EventData::PhaseReady(PhaseRef {
                phase: phase.clone(),
            }),
            1 => EventData::AttemptStarted(AttemptStarted {
                phase: phase.clone(),
                attempt,
                workdir: format!("worktrees/wp-{wp}"),
                argv: Some(vec!["claude".into(), "-p".into(), "@prompt.md".into()]),
                prompt_digest: None,
                timeout_ms: Some(1_800_000),
                reserved_usd: None,
            }),
            2 if i.is_multiple_of(7) => EventData::AttemptFailed(AttemptFailed {
                files: Vec::new(),
                phase: phase.clone(),
                attempt,
                kind: spectacular::model::FailureKind::Exit,
                message: "exited with status 1".into(),
                exit_code: Some(1),
                duration_ms: 1234,
                agent: None,
                usage: None,
            }),
            2 => EventData::AttemptSucceeded(AttemptSucceeded {
                git: None,
                integration_head: None,
                phase: phase.clone(),
                attempt,
                exit_code: Some(0),
                duration_ms: 4321,
                agent: None,
                usage: None,
                artifacts: BTreeMap::from([("diff".into(), format!("artifacts/wp-{wp}/diff"))]),
                values: BTreeMap::new(),
                result: None,
            }),
            _ => {
                i += 1;
                EventData::PhaseSucceeded(PhaseSucceeded {
                    phase,
                    attempts: attempt,
                    artifacts: BTreeMap::new(),
                })
            }
        };
        let cause = log.last_event_id().map(str::to_owned);
        log.append(data, "engine", cause.as_deref());
        if log.last_seq().is_multiple_of(10_000) {
            log.commit().expect("commit");
        }
    }
    log.commit().expect("commit");
}
