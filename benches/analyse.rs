//! Spec analysis benchmarks (`cargo bench --bench analyse`), a plain `main` without a harness:
//!
//! - **large**: `spec::analyse_file` of a generated 2,000-line Spec Kit spec in a generated
//!   10,000-file repository (the walk, the symbol search, the checks and the scoring); the
//!   median and the 90th percentile. Goal: a median under 200 ms.
//! - **throughput**: 100 small specs of the four formats analysed one after the other, without
//!   a repository. Goal: 100 specs per second or more.
//!
//! Goals are printed next to the figures, never asserted. `-- --quick` runs fewer rounds.

use std::time::{Duration, Instant};

use spectacular::spec::{analyse, analyse_file, AnalysisConfig};

#[path = "fixtures/analyse.rs"]
mod fixture;
use fixture::{generated_repo, generated_spec, REPO_FILES, SPEC_LINES};

const LARGE_GOAL: Duration = Duration::from_millis(200);
const SPECS_PER_SECOND_GOAL: f64 = 100.0;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, throughput_rounds) = if quick { (5, 3) } else { (20, 10) };
    println!("spectacular spec analysis benchmarks");
    println!(
        "machine: {} logical CPU(s), {} {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!();
    bench_large(rounds);
    println!();
    bench_throughput(throughput_rounds);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench_large(rounds: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("create the repository");
    generated_repo(&repo, REPO_FILES);
    let spec = generated_spec(SPEC_LINES);
    let spec_path = dir.path().join("spec.md");
    std::fs::write(&spec_path, &spec).expect("write the spec");
    let config = AnalysisConfig::default();
    let run = || analyse_file(&spec_path, "spec.md", Some(&repo), &config).expect("analyse");
    let first = run();
    let repo_facts = first.repository.as_ref().expect("a repository summary");
    println!(
        "large: a {}-line spec ({} requirements, {} criteria, {} diagnostics) in a {}-file repository ({} walked, {} matched, complexity {} {})",
        first.summary.lines,
        first.summary.requirements,
        first.summary.criteria,
        first.diagnostics_found.iter().count(),
        REPO_FILES,
        repo_facts.files,
        repo_facts.matched_files,
        first.complexity,
        first.tier.as_str()
    );
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        std::hint::black_box(run());
        times.push(start.elapsed());
    }
    times.sort();
    // The spec alone, to show the share of the repository walk.
    let mut alone = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        std::hint::black_box(analyse("spec.md", &spec, None, &config));
        alone.push(start.elapsed());
    }
    alone.sort();
    let median = percentile(&times, 0.5);
    println!(
        "  median {:.1} ms, p90 {:.1} ms over {rounds} rounds (goal: median under {} ms) {}",
        median.as_secs_f64() * 1e3,
        percentile(&times, 0.9).as_secs_f64() * 1e3,
        LARGE_GOAL.as_millis(),
        if median < LARGE_GOAL {
            "✓"
        } else {
            "✗ over the goal"
        }
    );
    println!(
        "  the spec alone (no repository): median {:.1} ms",
        percentile(&alone, 0.5).as_secs_f64() * 1e3
    );
}

fn small_specs() -> Vec<(String, String)> {
    let mut specs = Vec::new();
    for i in 0..100 {
        let text = match i % 4 {
            0 => format!(
                "# Feature Specification: Thing {i}\n\n### User Story 1 - Do thing {i} (Priority: P1)\n\n**Acceptance Scenarios**:\n\n1. **Given** a user, **When** they do thing {i}, **Then** thing {i} is done\n\n## Requirements\n\n- **FR-001**: System MUST do thing {i} quickly\n- **FR-002**: System MUST log thing {i}\n\n## Success Criteria\n\n- **SC-001**: Thing {i} is done in under 2 seconds\n"
            ),
            1 => format!(
                "# Requirements Document\n\n## Requirements\n\n### Requirement 1\n\n**User Story:** As a user, I want thing {i}, so that I am happy.\n\n#### Acceptance Criteria\n\n1. WHEN a user asks for thing {i} THE SYSTEM SHALL do it\n2. IF thing {i} fails THEN THE SYSTEM SHALL retry once\n"
            ),
            2 => format!(
                "# Thing {i}\n\n## Overview\n\nWe need thing {i} in the billing API.\n\n## Requirements\n\n- Thing {i} is stored in Postgres.\n- Thing {i} is exported as CSV, etc.\n\n## Acceptance Criteria\n\n- [ ] Thing {i} is stored\n- [ ] The CSV export of thing {i} opens\n"
            ),
            _ => format!(
                "Crash in thing {i}\n\nThe app panics when thing {i} is empty. It must report an error instead.\n\n- [ ] Report the error\n- [ ] Add a test\n"
            ),
        };
        specs.push((format!("spec-{i}.md"), text));
    }
    specs
}

fn bench_throughput(rounds: usize) {
    let specs = small_specs();
    let config = AnalysisConfig::default();
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for (name, text) in &specs {
            std::hint::black_box(analyse(name, text, None, &config));
        }
        rates.push(specs.len() as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "throughput: {} small specs (four formats), median {:.0} specs/s over {rounds} rounds (goal: {} specs/s or more) {}",
        specs.len(),
        median,
        SPECS_PER_SECOND_GOAL,
        if median >= SPECS_PER_SECOND_GOAL { "✓" } else { "✗ under the goal" }
    );
}
