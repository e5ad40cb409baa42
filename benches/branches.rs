//! Work on branches (`cargo bench --bench branches`): a 20-work-package plan run end to end by
//! the engine (worktree add, the work, commit with provenance, merge into the integration
//! branch, cleanup) against a script doing the same git commands by hand, measured in the same
//! round. Prints figures; asserts nothing about time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PACKAGES: usize = 20;
const ROUNDS: usize = 5;

fn binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_spectacular"));
    assert!(bin.is_file(), "`{}` is missing", bin.display());
    bin
}

fn sh(dir: &Path, script: &str) {
    let status = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("sh");
    assert!(status.success(), "{script}");
}

/// A repository with one commit and the mission.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let items: Vec<String> = (0..PACKAGES)
        .map(|i| format!("#{{id: \"w{i}\", title: \"Part {i}\", owned_files: [\"p{i}.txt\"]}}"))
        .collect();
    let mission = format!(
        "mission: bench\nphases:\n  implement:\n    for_each: '[{}]'\n    workspace: worktree\n    shell: 'echo {{{{ item.id }}}} > {{{{ item.id }}}}.txt'\n  merge:\n    needs: [implement]\n    uses: builtin/merge\n    with: {{ work: implement }}\n",
        items.join(", ")
    );
    std::fs::write(dir.path().join("mission.yaml"), mission).unwrap();
    std::fs::write(dir.path().join(".gitignore"), ".spectacular/\n").unwrap();
    sh(
        dir.path(),
        "git init -q -b main && git add -A && git -c user.name=b -c user.email=b@b commit -qm init",
    );
    dir
}

fn engine(bin: &Path, max_parallel: u32) -> Duration {
    let dir = project();
    let start = Instant::now();
    let status = Command::new(bin)
        .args([
            "run",
            "mission.yaml",
            "--max-parallel",
            &max_parallel.to_string(),
        ])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run spectacular");
    let elapsed = start.elapsed();
    assert!(status.success(), "the benchmark run failed");
    elapsed
}

/// The floor: the same git commands, by hand, one after the other: per package a worktree on
/// its own branch, the work (`sh -c`), `git add`, `git commit`; then an integration worktree,
/// one `git merge --no-ff` per package, and the cleanup (worktrees removed, branches deleted).
fn by_hand() -> Duration {
    let dir = project();
    let mut script = String::from("set -e\nid='-c user.name=b -c user.email=b@b'\n");
    for i in 0..PACKAGES {
        script.push_str(&format!(
            "git worktree add -q -B bench-w{i} wt/w{i} main\n\
             (cd wt/w{i} && sh -c 'echo w{i} > w{i}.txt' && git add --all && git $id commit -q -m 'w{i}: Part {i}')\n"
        ));
    }
    script.push_str("git worktree add -q -B bench wt/integration main\n");
    for i in 0..PACKAGES {
        script.push_str(&format!(
            "git -C wt/integration $id merge -q --no-ff --no-edit -m 'Merge bench-w{i}' bench-w{i}\n"
        ));
    }
    for i in 0..PACKAGES {
        script.push_str(&format!("git worktree remove --force wt/w{i}\n"));
    }
    script.push_str("git worktree remove --force wt/integration\n");
    let branches: Vec<String> = (0..PACKAGES).map(|i| format!("bench-w{i}")).collect();
    script.push_str(&format!("git branch -D -q {}\n", branches.join(" ")));
    let start = Instant::now();
    sh(dir.path(), &script);
    start.elapsed()
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let bin = binary();
    let (mut serial, mut parallel, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        floor.push(by_hand());
        serial.push(engine(&bin, 1));
        parallel.push(engine(&bin, 4));
    }
    let (serial, parallel, floor) = (median(serial), median(parallel), median(floor));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{PACKAGES} work packages, median of {ROUNDS} rounds:");
    println!("  git by hand, serially:            {:8.1} ms", ms(floor));
    println!(
        "  engine, --max-parallel 1:         {:8.1} ms  ({:.2}x the floor)",
        ms(serial),
        ms(serial) / ms(floor)
    );
    println!(
        "  engine, --max-parallel 4:         {:8.1} ms  ({:.2}x the serial floor)",
        ms(parallel),
        ms(parallel) / ms(floor)
    );
}
