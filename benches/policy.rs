//! Policy decisions per phase: `route` + `budget` + `govern` with three built-in packs
//! (default-routing, budget-guard, security-review) loaded and compiled once, over a mix of
//! phases. Prints the median and 95th percentile of `Packs::decide` over several rounds (the
//! median of the rounds' medians, and their range, so that one disturbed round does not decide
//! the figure), then each pack alone and the engine's own share. Target: median under 50 µs in
//! release.
//!
//! `cargo bench --bench policy` (set `POLICY_BENCH_ITERS` for another count per round).

use std::time::{Duration, Instant};

use spectacular::policy::{
    Layer, ModelInfo, PackFiles, Packs, PhaseContext, RoutingContext, RunContext,
};

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
    let verdict = if median < Duration::from_micros(50) {
        "ok"
    } else {
        "over the 50 µs target"
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
    let trivial = [
        (
            "route",
            "route(\"claude-code\", \"claude-haiku-4-5\", \"fixed\")",
        ),
        ("budget", "allow()"),
        ("govern", "allow()"),
    ];
    let sources = trivial
        .iter()
        .map(|(hook, body)| {
            let dir = tmp.path().join(format!("trivial-{hook}"));
            std::fs::create_dir_all(&dir).expect("create a pack directory");
            let manifest = format!("name: trivial-{hook}\nversion: \"1.0.0\"\nhooks: [{hook}]\n");
            std::fs::write(dir.join("pack.yaml"), manifest).expect("write pack.yaml");
            let script = format!("fn {hook}(ctx) {{ {body} }}\n");
            std::fs::write(dir.join("policy.rhai"), script).expect("write policy.rhai");
            (Layer::Project, PackFiles::dir(&dir, tmp.path()))
        })
        .collect();
    let (trivial_packs, diagnostics) = Packs::from_sources(sources, &[]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let (median, p95) = measure(&trivial_packs, &contexts, iterations);
    println!("  engine overhead (3 packs answering at once): median {median:.2?}, p95 {p95:.2?}");
}

/// The built-in packs `names`, all active.
fn builtin(names: &[&str]) -> Packs {
    let sources = names
        .iter()
        .map(|n| {
            (
                Layer::Builtin,
                PackFiles::Builtin {
                    name: n.to_string(),
                },
            )
        })
        .collect();
    let enabled: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let (packs, diagnostics) = Packs::from_sources(sources, &enabled);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    packs
}

/// Median and 95th percentile of `decide` over `iterations` phases.
fn measure(packs: &Packs, contexts: &[RoutingContext], iterations: usize) -> (Duration, Duration) {
    for ctx in contexts {
        let decisions = packs.decide(ctx);
        assert!(decisions.all.iter().all(|d| !d.is_error()), "{decisions:?}");
    }
    let mut times = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let ctx = &contexts[i % contexts.len()];
        let t0 = Instant::now();
        let decisions = packs.decide(ctx);
        times.push(t0.elapsed());
        std::hint::black_box(&decisions);
    }
    times.sort();
    (times[times.len() / 2], times[times.len() * 95 / 100])
}

/// A realistic mix: analysis, planning, work packages and review, at several spend levels.
fn contexts() -> Vec<RoutingContext> {
    let model = |name: &str, provider: &str, tier: &str, i: f64, o: f64, window: u64| ModelInfo {
        name: name.into(),
        provider: provider.into(),
        tier: tier.into(),
        input_per_mtok: i,
        output_per_mtok: o,
        context_window: window,
    };
    let models = vec![
        model("claude-haiku-4-5", "anthropic", "cheap", 1.0, 5.0, 200_000),
        model("gpt-5-mini", "openai", "cheap", 0.25, 2.0, 400_000),
        model(
            "claude-sonnet-4-5",
            "anthropic",
            "standard",
            3.0,
            15.0,
            200_000,
        ),
        model("gpt-5", "openai", "standard", 1.25, 10.0, 400_000),
        model(
            "claude-opus-4-1",
            "anthropic",
            "strong",
            15.0,
            75.0,
            200_000,
        ),
    ];
    let phases = [
        ("analyse", "analyst", vec!["analysis.json"]),
        ("plan", "planner", vec!["plan.md", "tasks.json"]),
        ("implement[wp-1]", "executor", vec!["src/report.rs"]),
        ("implement[wp-2]", "executor", vec!["src/auth/session.rs"]),
        ("review", "validator", vec!["review.md"]),
    ];
    let mut out = Vec::new();
    for (i, (id, role, paths)) in phases.iter().enumerate() {
        for spent in [2.0, 15.5, 18.6] {
            out.push(
                RoutingContext {
                    phase: PhaseContext {
                        id: id.to_string(),
                        role: Some(role.to_string()),
                        kind: "agent".into(),
                        attempt: 1,
                        prompt_chars: 8_000 + 4_000 * i as u64,
                        paths: paths.iter().map(|p| p.to_string()).collect(),
                        ..PhaseContext::default()
                    },
                    run: RunContext {
                        mission: "software-dev".into(),
                        inputs: [("spec".to_string(), "specs/auth.md".into())].into(),
                        complexity: Some(0.55),
                        tier: Some("medium".into()),
                        risk_areas: vec!["database".into()],
                        spent_usd: spent,
                        budget_usd: Some(20.0),
                        soft_usd: Some(15.0),
                        ..RunContext::default()
                    },
                    agents: vec!["claude-code".into(), "codex".into()],
                    models: models.clone(),
                }
                .normalized(),
            );
        }
    }
    out
}
