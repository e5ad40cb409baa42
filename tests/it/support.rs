//! Shared helpers for the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use spectacular::diag::Diagnostics;
use spectacular::load;
use spectacular::validate::Validated;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built `spectacular` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spectacular"))
}

/// Are we (re)writing goldens instead of comparing against them? Only `SPECTACULAR_BLESS=1`
/// blesses; unset, empty or `0` compares; any other value is refused, so that a typo never
/// rewrites (or silently fails to rewrite) the goldens. Every golden and generated file in the
/// suite goes through this one switch.
pub fn blessing() -> bool {
    bless_mode(std::env::var_os("SPECTACULAR_BLESS").as_deref())
}

/// What a value of `SPECTACULAR_BLESS` means (see [`blessing`]).
pub fn bless_mode(value: Option<&std::ffi::OsStr>) -> bool {
    match value.map(|v| v.to_str()) {
        None => false,
        Some(Some("" | "0")) => false,
        Some(Some("1")) => true,
        Some(other) => panic!(
            "SPECTACULAR_BLESS is `{}`: set it to `1` to rewrite the goldens, or unset it",
            other.unwrap_or("(not UTF-8)")
        ),
    }
}

/// Compare `actual` with the golden file at `path` (relative to the repository root), or
/// write it when `SPECTACULAR_BLESS=1`. Returns a description of the mismatch, if any, so that
/// callers can report every stale golden at once.
pub fn golden(path: &Path, actual: &str) -> Result<(), String> {
    let full = repo_root().join(path);
    if blessing() {
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create golden directory");
        }
        let unchanged = std::fs::read_to_string(&full).is_ok_and(|old| old == actual);
        if !unchanged {
            std::fs::write(&full, actual).expect("write golden");
        }
        return Ok(());
    }
    let expected = std::fs::read_to_string(&full).map_err(|e| {
        format!(
            "golden `{}` cannot be read ({e}); run with SPECTACULAR_BLESS=1 to create it",
            path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    Err(format!(
        "golden `{}` differs (rerun with SPECTACULAR_BLESS=1 to update, then review the diff)\n{}",
        path.display(),
        diff(&expected, actual)
    ))
}

/// Panic with every mismatch when any golden comparison failed.
pub fn assert_goldens(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} golden file(s) differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// A small line diff: `-` expected, `+` actual (enough to read a golden mismatch).
pub fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    let n = e.len().max(a.len());
    for i in 0..n {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("{:>4} - {x}\n", i + 1));
                }
                if let Some(y) = y {
                    out.push_str(&format!("{:>4} + {y}\n", i + 1));
                }
            }
        }
    }
    if out.is_empty() {
        out.push_str("(the texts differ only in trailing newlines)\n");
    }
    out
}

/// Load and validate `bytes` as if they were the file at `relative` (a path relative to the
/// repository root, which is also the working directory for display names).
pub fn validate_bytes(relative: &str, bytes: &[u8]) -> Validated {
    let root = repo_root();
    let located = load::locate(relative, &root).expect("a path always locates");
    let loaded = load::load_bytes(located, bytes);
    spectacular::validate::validate(&loaded, &root)
}

/// Load and validate the file at `relative` (to the repository root).
pub fn validate_file(relative: &str) -> Validated {
    let bytes = std::fs::read(repo_root().join(relative))
        .unwrap_or_else(|e| panic!("failed to read `{relative}`: {e}"));
    validate_bytes(relative, &bytes)
}

/// The codes of some diagnostics, in reading order.
pub fn codes(diagnostics: &Diagnostics) -> Vec<&'static str> {
    diagnostics
        .sorted()
        .iter()
        .map(|d| d.code.as_str())
        .collect()
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The transcript kept as a golden: exit code, stdout, stderr.
    pub fn transcript(&self) -> String {
        let mut out = format!("exit: {}\n--- stdout\n{}", self.code, self.stdout);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("--- stderr\n");
        out.push_str(&self.stderr);
        if !self.stderr.is_empty() && !self.stderr.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

/// Run the binary in `cwd` with a controlled environment: no colour, a private user config
/// dir (`<cwd>/.user-config` unless `env` sets one) and no `RUST_LOG`.
pub fn run_cli(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin());
    command
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("XDG_CONFIG_HOME")
        .env("SPECTACULAR_CONFIG_DIR", cwd.join(".user-config"))
        .env("COLUMNS", "100");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run the spectacular binary");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Every file below `dir` (sorted), or nothing when `dir` does not exist.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `path` relative to the repository root, with `/` separators.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The committed `schemas/<file>` equals what `spectacular schema <name>` prints (the drift
/// test of every generated schema); returns the schema text.
pub fn assert_committed_schema(name: &str, file: &str) -> String {
    let output = run_cli(&repo_root(), &["schema", name], &[]);
    assert_eq!(output.code, 0, "{}", output.transcript());
    let committed = std::fs::read_to_string(repo_root().join("schemas").join(file))
        .unwrap_or_else(|_| panic!("schemas/{file} is committed"));
    assert!(
        output.stdout == committed,
        "schemas/{file} is stale; regenerate it with\n\n    \
         cargo run -q -- schema {name} > schemas/{file}\n\n{}",
        diff(&committed, &output.stdout)
    );
    committed
}

#[test]
fn only_bless_1_rewrites_goldens_and_other_values_are_refused() {
    use std::ffi::OsStr;
    assert!(!bless_mode(None));
    assert!(!bless_mode(Some(OsStr::new(""))));
    assert!(!bless_mode(Some(OsStr::new("0"))));
    assert!(bless_mode(Some(OsStr::new("1"))));
    for typo in ["true", "yes", "2", " 1"] {
        let refused = std::panic::catch_unwind(|| bless_mode(Some(OsStr::new(typo))));
        assert!(refused.is_err(), "`SPECTACULAR_BLESS={typo}` was accepted");
    }
}

/// Make `dir` a git repository with everything in it committed on branch `main` (work on
/// branches starts from a commit).
/// `git -C dir args…` in a repository a test made: a fixed identity, no system config, none of
/// the caller's `GIT_DIR`; panics with git's stderr when it fails. Its stdout, without the
/// trailing newline.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

pub fn git_init(dir: &Path) {
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "--all"],
        &[
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@localhost",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "initial",
        ],
    ] {
        let status = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?} in {}", dir.display());
    }
}

/// A copy of `examples/speckit-greetings` in a temporary directory, without what runs of the
/// example left in the checkout: a project and a git repository of its own.
pub fn greetings() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let from = repo_root().join("examples/speckit-greetings");
    for file in walk(&from) {
        let relative = file.strip_prefix(&from).expect("below the example");
        let local = [
            ".spectacular/runs",
            ".spectacular/state.db",
            ".spectacular/worktrees",
        ];
        if local.iter().any(|l| relative.starts_with(l)) {
            continue;
        }
        let to = dir.path().join(relative);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&file, &to).expect("copy");
    }
    git_init(dir.path());
    dir
}
