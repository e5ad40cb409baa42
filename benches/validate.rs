//! Foundation benchmarks (`cargo bench --bench validate`), a plain `main` without a harness:
//!
//! - **validate+plan**: parse, validate and plan a generated 500-phase mission in-process, many
//!   times; report the median and the 90th percentile. Goal: a median under 50 ms.
//! - **start-up**: spawn the release `spectacular --version` many times, side by side with
//!   `/bin/true`; report the medians. Goal: a median under 5 ms.
//!
//! Goals are printed next to the figures, never asserted: a slow machine must not fail a build.
//! `cargo bench --bench validate -- --quick` runs fewer iterations.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PHASES: usize = 500;
const VALIDATE_GOAL: Duration = Duration::from_millis(50);
const STARTUP_GOAL: Duration = Duration::from_millis(5);

/// The binary's allocator, so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `cargo bench` passes `--bench`; ignore it and anything else but `--quick`.
    let quick = std::env::args().any(|a| a == "--quick");
    let (validate_iterations, spawn_iterations) = if quick { (20, 20) } else { (200, 200) };

    println!("spectacular foundation benchmarks");
    println!(
        "machine: {} logical CPU(s), {} {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!();
    bench_validate(validate_iterations);
    println!();
    bench_startup(spawn_iterations);
}

// ---------------------------------------------------------------------------------------------
// validate + plan of a generated mission

fn bench_validate(iterations: usize) {
    let dir = tempfile::tempdir().expect("failed to create a temporary directory");
    let text = generated_mission(PHASES);
    write_support_files(dir.path());
    let path = dir.path().join("mission.yaml");
    std::fs::write(&path, &text).expect("failed to write the generated mission");
    let cwd = dir.path();

    let run_once = || {
        let located = spectacular::load::locate("mission.yaml", cwd).expect("locate");
        let loaded = spectacular::load::load_bytes(located, text.as_bytes());
        let validated = spectacular::validate::validate(&loaded, cwd);
        let clean = validated.diagnostics.is_empty();
        let Some(mission) = validated.mission.filter(|_| clean) else {
            let rendered = spectacular::diag::render_text(
                &validated.diagnostics,
                spectacular::diag::RenderOptions { color: false },
            );
            panic!(
                "the generated mission is not clean; this is a bug in the benchmark:\n{rendered}"
            );
        };
        let plan = spectacular::plan::plan(mission);
        assert_eq!(plan.len(), PHASES);
        plan.layers().len()
    };

    let layers = run_once();
    for _ in 0..iterations.min(10) {
        std::hint::black_box(run_once());
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        std::hint::black_box(run_once());
        samples.push(start.elapsed());
    }
    samples.sort();

    // Where the time goes: the same work, one stage at a time.
    let located = spectacular::load::locate("mission.yaml", cwd).expect("locate");
    let mut load_samples = Vec::with_capacity(iterations);
    let mut validate_samples = Vec::with_capacity(iterations);
    let mut plan_samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let loaded = spectacular::load::load_bytes(located.clone(), text.as_bytes());
        load_samples.push(start.elapsed());
        let start = Instant::now();
        let validated = spectacular::validate::validate(&loaded, cwd);
        validate_samples.push(start.elapsed());
        let mission = validated.mission.expect("checked above");
        let start = Instant::now();
        std::hint::black_box(spectacular::plan::plan(mission));
        plan_samples.push(start.elapsed());
    }
    for stage in [&mut load_samples, &mut validate_samples, &mut plan_samples] {
        stage.sort();
    }

    println!(
        "validate+plan: {PHASES} phases, {layers} layers, {} lines of YAML, {iterations} iterations",
        text.lines().count()
    );
    println!(
        "  median {}   p90 {}   min {}   (goal: median < {})",
        ms(percentile(&samples, 50)),
        ms(percentile(&samples, 90)),
        ms(samples[0]),
        ms(VALIDATE_GOAL),
    );
    println!(
        "  median by stage: load {}   validate {}   plan {}",
        ms(percentile(&load_samples, 50)),
        ms(percentile(&validate_samples, 50)),
        ms(percentile(&plan_samples, 50)),
    );
}

/// A mission shaped like real ones: inputs and vars, defaults with retries, and phases of every
/// kind with `needs` on up to three earlier phases, some `if` conditions, `{{ }}` templates in
/// commands and arguments, per-phase retries and timeouts, outputs, and a few fan-outs.
fn generated_mission(phases: usize) -> String {
    let mut out = String::new();
    out.push_str(
        "mission: bench\n\
         description: A generated mission for benchmarks\n\
         inputs:\n  \
           spec: { type: string, default: spec.md, description: The spec }\n  \
           base_branch: { type: string, default: main }\n  \
           strict: { type: bool, default: false }\n\
         vars:\n  max_parallel: 4\n  greeting: hello\n\
         budget: { max_usd: 50, soft_usd: 40 }\n\
         defaults:\n  \
           timeout: 30m\n  \
           retry: { max_attempts: 2, backoff: { initial: 10s, factor: 2, max: 2m } }\n\
         phases:\n",
    );
    // A small deterministic generator, so every run benchmarks the same mission.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % bound as u64) as usize
    };
    for i in 0..phases {
        let _ = writeln!(out, "  p{i:03}:");
        let _ = writeln!(out, "    description: Step {i} of the generated mission");
        if i > 0 {
            let mut needs: Vec<usize> = (0..1 + next(3)).map(|_| i - 1 - next(i.min(8))).collect();
            if i % 15 == 3 {
                // A fan-out reads the tasks of the phase before it, so it needs it.
                needs.push(i - 1);
            }
            needs.sort();
            needs.dedup();
            let needs: Vec<String> = needs.iter().map(|n| format!("p{n:03}")).collect();
            let _ = writeln!(out, "    needs: [{}]", needs.join(", "));
        }
        match i % 5 {
            0 => {
                let _ = writeln!(
                    out,
                    "    run: [cargo, test, \"--package\", \"{{{{ inputs.spec }}}}-{i}\"]"
                );
            }
            1 => {
                let _ = writeln!(
                    out,
                    "    shell: \"git diff {{{{ inputs.base_branch }}}} && echo {{{{ vars.greeting }}}}\""
                );
            }
            2 => {
                out.push_str("    uses: builtin/echo\n");
                let _ = writeln!(
                    out,
                    "    with: {{ message: \"{{{{ vars.greeting }}}} from {{{{ phase.id }}}} ({i})\" }}"
                );
                if i % 15 == 2 {
                    // The next phase fans out over these tasks.
                    out.push_str("    outputs:\n      tasks: { path: tasks.json }\n");
                }
            }
            3 => {
                out.push_str("    role: executor\n");
                if i % 15 == 3 {
                    let _ = writeln!(out, "    for_each: outputs.p{:03}.tasks", i - 1);
                    out.push_str("    max_parallel: 3\n    prompt: templates/fan-out.md.j2\n");
                } else {
                    out.push_str("    prompt: templates/step.md.j2\n");
                }
            }
            _ => {
                out.push_str("    role: validator\n    prompt: templates/review.md.j2\n");
                out.push_str("    outputs:\n      report: { path: report.json, schema: schemas/report.schema.json }\n");
            }
        }
        if i % 4 == 1 {
            let _ = writeln!(
                out,
                "    if: run.complexity >= 0.{} || inputs.strict",
                i % 10
            );
        }
        if i % 6 == 0 {
            out.push_str("    retry: { max_attempts: 3, non_retryable: [timeout] }\n");
        }
        if i % 7 == 0 {
            out.push_str("    timeout: 5m\n");
        }
    }
    out
}

fn write_support_files(dir: &Path) {
    let write = |relative: &str, text: &str| {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create_dir_all");
        std::fs::write(path, text).expect("failed to write a support file");
    };
    write(
        "templates/step.md.j2",
        "Work on {{ inputs.spec }} in {{ phase.id }}.\n\
         {% for name in outputs %}- {{ name }}\n{% endfor %}",
    );
    write(
        "templates/fan-out.md.j2",
        "Implement {{ item.title }} for {{ inputs.spec }}.\n",
    );
    write(
        "templates/review.md.j2",
        "Review the change on {{ inputs.base_branch }} ({{ vars.greeting }}).\n",
    );
    write(
        "schemas/report.schema.json",
        r#"{"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}"#,
    );
}

// ---------------------------------------------------------------------------------------------
// Process start-up

fn bench_startup(iterations: usize) {
    let Some(binary) = release_binary() else {
        println!(
            "start-up: skipped, no release binary found (run `cargo build --release` or use \
             `cargo bench`, which builds it)"
        );
        return;
    };
    let spectacular = spawn_median(&binary, &["--version"], iterations);
    let baseline = spawn_median(Path::new("/bin/true"), &[], iterations);
    println!("start-up: {iterations} spawns each, median wall time");
    if let Some(median) = spectacular {
        println!(
            "  spectacular --version  {}   (goal: < {})",
            ms(median),
            ms(STARTUP_GOAL)
        );
    }
    match baseline {
        Some(median) => println!("  /bin/true              {}   (baseline)", ms(median)),
        None => println!("  /bin/true              not available"),
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

fn spawn_median(program: &Path, args: &[&str], iterations: usize) -> Option<Duration> {
    let spawn = || {
        let start = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        let elapsed = start.elapsed();
        status.success().then_some(elapsed)
    };
    for _ in 0..iterations.min(5) {
        spawn()?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        samples.push(spawn()?);
    }
    samples.sort();
    Some(percentile(&samples, 50))
}

// ---------------------------------------------------------------------------------------------

/// The `p`th percentile of sorted samples (nearest rank).
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}
