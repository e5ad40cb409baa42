//! Policy decisions per phase: `route` + `budget` + `govern` with three built-in packs
//! (default-routing, budget-guard, security-review) loaded and compiled once, over a mix of
//! phases. Prints the median and 95th percentile of `Packs::decide` over several rounds (the
//! median of the rounds' medians, and their range, so that one disturbed round does not decide
//! the figure), then each pack alone and the engine's own share. Target: median under 20 µs in
//! release.
//!
//! `cargo bench --bench policy` (set `POLICY_BENCH_ITERS` for another count per round).
//! `-- --decisions N` makes only N decisions with the three packs and prints nothing else: for
//! counting instructions per decision under `valgrind --tool=callgrind`, which load does not
//! move (run it with two counts and divide the difference).

use std::time::{Duration, Instant};

#[path = "fixtures/policy.rs"]
mod fixture;
use fixture::{builtin, contexts, measure, trivial};

/// The binary's allocator, so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 5;

fn main() {
    let iterations: usize = std::env::var("POLICY_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let names = ["default-routing", "budget-guard", "security-review"];
    if let Some(count) = decisions_only() {
        let packs = builtin(&names);
        let contexts = contexts();
        for i in 0..count {
            std::hint::black_box(packs.decide(&contexts[i % contexts.len()]));
        }
        return;
    }
    let started = Instant::now();
    let packs = builtin(&names);
    println!(
        "loaded and compiled {} packs in {:.2?}",
        names.len(),
        started.elapsed()
    );

    let contexts = contexts();
    let rounds: Vec<(Duration, Duration)> = (0..ROUNDS)
        .map(|_| measure(&packs, &contexts, iterations))
        .collect();
    let mut medians: Vec<Duration> = rounds.iter().map(|r| r.0).collect();
    medians.sort();
    let median = medians[ROUNDS / 2];
    let mut p95s: Vec<Duration> = rounds.iter().map(|r| r.1).collect();
    p95s.sort();
    let verdict = if median <= Duration::from_micros(20) {
        "ok"
    } else {
        "over the 20 µs target"
    };
    println!(
        "decide (route+budget+govern, 3 packs), {ROUNDS} rounds of {iterations} phases: median {median:.2?} (rounds {:.2?} to {:.2?}), p95 {:.2?} ({verdict})",
        medians[0],
        medians[ROUNDS - 1],
        p95s[ROUNDS / 2]
    );
    for name in names {
        let (median, _) = measure(&builtin(&[name]), &contexts, iterations);
        println!("  {name} alone: median {median:.2?}");
    }

    // The engine's own share: the same three hooks, each answering at once.
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let trivial_packs = trivial(tmp.path());
    let (median, p95) = measure(&trivial_packs, &contexts, iterations);
    println!("  engine overhead (3 packs answering at once): median {median:.2?}, p95 {p95:.2?}");
}

/// The count after `--decisions`, if given.
fn decisions_only() -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--decisions")?;
    args.get(at + 1).and_then(|n| n.parse().ok())
}
