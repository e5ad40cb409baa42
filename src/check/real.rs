//! Every parser on what the real tools printed (`tests/fixtures/check-outputs/`, each case
//! with the command, version and exit code that produced it): the errors a person reads in
//! each output, and how the check reads the run (failed, passed, no tests, cannot run).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Case {
    command: String,
    cwd: String,
    root: String,
    exit_code: i32,
    #[serde(default)]
    outcome: Option<String>,
    /// The Go module the project's `go.mod` declares (it is not among the outputs).
    #[serde(default)]
    go_module: Option<String>,
    expect: Vec<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check-outputs")
}

/// Every case: `(tool/case, sidecar, stdout, stderr)`.
fn cases() -> Vec<(String, Case, String, String)> {
    let mut cases = Vec::new();
    let mut tools: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("the fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    tools.sort();
    for tool in tools {
        let mut sidecars: Vec<PathBuf> = std::fs::read_dir(&tool)
            .expect("a tool's fixtures")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        sidecars.sort();
        for sidecar in sidecars {
            let name = format!(
                "{}/{}",
                tool.file_name().unwrap_or_default().to_string_lossy(),
                sidecar.file_stem().unwrap_or_default().to_string_lossy()
            );
            let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
            let case: Case =
                serde_json::from_str(&read(&sidecar)).unwrap_or_else(|e| panic!("{name}: {e}"));
            let stdout = read(&sidecar.with_extension("txt"));
            let stderr = read(&sidecar.with_extension("stderr.txt"));
            cases.push((name, case, stdout, stderr));
        }
    }
    cases
}

/// One error as the fixtures write it: `severity file:line:col [code] (test) message's first
/// line`, `-` for what is not known.
fn line_of(e: &Error) -> String {
    let or = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    format!(
        "{} {}:{}:{} [{}] ({}) {}",
        e.severity.as_str(),
        or(e.file.clone()),
        or(e.line.map(|l| l.to_string())),
        or(e.column.map(|c| c.to_string())),
        or(e.code.clone()),
        or(e.test.clone()),
        e.message.lines().next().unwrap_or("")
    )
}

/// The command as the check runs it: from the root, `cd` first when the tool ran below it.
fn command_of(case: &Case) -> String {
    if case.cwd == "." {
        case.command.clone()
    } else {
        format!("cd {} && {}", case.cwd, case.command)
    }
}

#[test]
fn each_real_output_gives_the_errors_a_person_reads_in_it() {
    let mut wrong = Vec::new();
    let all = cases();
    assert!(all.len() >= 50, "{} cases", all.len());
    for (name, case, stdout, stderr) in &all {
        let command = command_of(case);
        let ctx = Context {
            workdirs: vec![PathBuf::from(&case.root)],
            go_module: case
                .go_module
                .clone()
                .or_else(|| go_module_of(&case.root, &case.cwd, &command)),
            base: None,
        };
        let mut found = Errors::default();
        parse(
            &Output {
                command: &command,
                stdout,
                stderr,
            },
            &ctx,
            &mut found,
        );
        let got: Vec<String> = found.list.iter().map(line_of).collect();
        let (outcome, _) = classify(Some(case.exit_code), stdout, stderr, &found.list);
        if got != case.expect {
            wrong.push(format!(
                "{name}: expected\n  {}\ngot\n  {}\nJSON {}",
                case.expect.join("\n  "),
                got.join("\n  "),
                serde_json::to_string(&got).unwrap_or_default()
            ));
        }
        let want = case.outcome.as_deref().unwrap_or("-");
        if want != outcome.as_str() {
            wrong.push(format!(
                "{name}: outcome {} (expected {want})\nOUTCOME {}",
                outcome.as_str(),
                outcome.as_str()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// The Go module the fixtures' projects declare (`go.mod` is not among the outputs).
fn go_module_of(root: &str, cwd: &str, command: &str) -> Option<String> {
    let project = root.rsplit('/').next().unwrap_or_default();
    match (project, cwd, command_dir(command).as_deref()) {
        ("gocalc" | "gobuild", _, _) => Some("example.com/gocalc".into()),
        ("mono", _, Some("services/api")) => Some("example.com/gocalc".into()),
        ("gonotest", _, _) => Some("example.com/gonotest".into()),
        _ => None,
    }
}

/// Each tool has at least three real outputs.
#[test]
fn every_tool_has_three_real_outputs_at_least() {
    let mut counts = std::collections::BTreeMap::new();
    for (name, _, _, _) in cases() {
        let tool = name.split('/').next().unwrap_or_default().to_string();
        *counts.entry(tool).or_insert(0) += 1;
    }
    for tool in [
        "cargo-test",
        "pytest",
        "jest",
        "vitest",
        "eslint",
        "tsc",
        "go",
        "ruff",
        "mypy",
        "gcc",
        "clang",
        "unittest",
        "mocha",
        "nextest",
    ] {
        assert!(
            counts.get(tool).copied().unwrap_or(0) >= 3,
            "{tool}: {counts:?}"
        );
    }
}
