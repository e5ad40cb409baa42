//! `builtin/check`: run the project's checks and read their errors back.
//!
//! `with: { command: <a string, or a list of strings>, workdir: <a directory relative to the
//! project root, default the root> }`. Each command runs with `sh -c` in `workdir`, one after
//! the other (all of them, even after one failed, so that the report is whole), through the
//! engine's process runner: its own process group in the run's ledger, the attempt's timeout
//! shared by all commands, cancellation (SIGINT → SIGTERM → SIGKILL), output capped and
//! redacted. Written into the attempt directory: `check-<n>.stdout.log` and
//! `check-<n>.stderr.log` for each command, `errors.json` (`spectacular schema errors`) and
//! `summary.md`; its stdout log gets one line per command and, under GitHub Actions
//! (`GITHUB_ACTIONS=true`), the errors as annotations. A command that exits non-zero fails the
//! attempt as `checks`, naming the files of its errors.

use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use super::{write, Ctx, Failure};
use crate::check::{self, CommandResult, Errors, Report, Severity};
use crate::execute::process;
use crate::model::FailureKind;

/// The most commands one check runs.
const MAX_COMMANDS: usize = 32;
/// The most error lines in the failure message (`attempt.previous_errors`).
const MESSAGE_ERRORS: usize = 20;
/// The most bytes of the failure message.
const MESSAGE_MAX: usize = 7 * 1024;

pub(super) async fn run(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let commands = commands(ctx.with)?;
    let (workdir, workdir_shown) = workdir(ctx)?;
    crate::execute::make_dir(ctx.attempt_dir).map_err(|e| {
        Failure::new(
            FailureKind::Spawn,
            format!("creating `{}`: {e}", ctx.attempt_dir.display()),
        )
    })?;
    let started = Instant::now();
    let mut workdirs = vec![workdir.clone()];
    if let Ok(real) = workdir.canonicalize() {
        if real != workdir {
            workdirs.push(real);
        }
    }
    let context = check::Context {
        workdirs,
        ..check::Context::default()
    };
    let mut found = Errors::default();
    let mut results = Vec::new();
    let mut outcome = None;
    for (i, command) in commands.iter().enumerate() {
        let timeout = match ctx.process.timeout {
            Some(limit) => match limit.checked_sub(started.elapsed()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => {
                    outcome = Some(timed_out(ctx));
                    break;
                }
            },
            None => None,
        };
        let n = i + 1;
        let (stdout_name, stderr_name) = (
            format!("check-{n}.stdout.log"),
            format!("check-{n}.stderr.log"),
        );
        let spec = process::Spec {
            argv: vec!["sh".into(), "-c".into(), command.clone()],
            cwd: workdir.clone(),
            stdout: ctx.attempt_dir.join(&stdout_name),
            stderr: ctx.attempt_dir.join(&stderr_name),
            timeout,
            ..ctx.process.clone()
        };
        let ended = process::run(spec.clone(), ctx.cancel.clone()).await;
        let (exit_code, passed) = match ended {
            process::Ended::Exited { code, .. } => (code, code == Some(0)),
            process::Ended::TimedOut => {
                outcome = Some(timed_out(ctx));
                (None, false)
            }
            process::Ended::Canceled => {
                return Err(Failure::new(FailureKind::Canceled, "canceled"));
            }
            process::Ended::SpawnFailed(message) => {
                return Err(Failure::new(FailureKind::Spawn, message));
            }
        };
        // Reading (up to the output cap), redacting and parsing are blocking work: off the
        // event loop.
        let (redactor, command_now) = (ctx.redactor.clone(), command.clone());
        let mut context_now = context.clone();
        context_now.base = check::command_dir(command);
        let runs_in = match &context_now.base {
            Some(dir) => workdir.join(dir),
            None => workdir.clone(),
        };
        context_now.go_module = go_module(&runs_in).or_else(|| go_module(&workdir));
        let (out_path, err_path) = (spec.stdout.clone(), spec.stderr.clone());
        let parsed = tokio::task::spawn_blocking(move || {
            let stdout = read_redacted(&out_path, &redactor);
            let stderr = read_redacted(&err_path, &redactor);
            let before = found.list.len();
            let output = check::Output {
                command: &command_now,
                stdout: &stdout,
                stderr: &stderr,
            };
            let parsers = check::parse(&output, &context_now, &mut found);
            let (outcome, reason) =
                check::classify(exit_code, &stdout, &stderr, &found.list[before..]);
            (found, before, parsers, outcome, reason)
        })
        .await;
        let (back, before, parsers, outcome_now, reason) = parsed.map_err(|e| {
            Failure::new(
                FailureKind::Exit,
                format!(
                    "reading the output of `{command}` failed: {e}; this is a bug in spectacular"
                ),
            )
        })?;
        found = back;
        let new = &found.list[before..];
        let outcome_now = if outcome.is_some() {
            check::Outcome::TimedOut
        } else {
            outcome_now
        };
        results.push(CommandResult {
            command: command.clone(),
            passed: passed && outcome_now == check::Outcome::Passed,
            outcome: outcome_now,
            reason,
            exit_code,
            parsers: parsers.iter().map(|p| p.to_string()).collect(),
            errors: new.iter().filter(|e| e.severity == Severity::Error).count(),
            warnings: new
                .iter()
                .filter(|e| e.severity == Severity::Warning)
                .count(),
            stdout: stdout_name,
            stderr: stderr_name,
        });
        if outcome.is_some() {
            break;
        }
    }
    let overall = check::Outcome::worst(results.iter().map(|r| r.outcome));
    let report = Report {
        passed: outcome.is_none() && results.iter().all(|r| r.passed),
        outcome: if outcome.is_some() {
            check::Outcome::TimedOut
        } else {
            overall
        },
        workdir: workdir_shown,
        commands: results,
        errors: found.list,
        dropped: found.dropped,
    };
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    write(&ctx.attempt_dir.join("errors.json"), &(json + "\n"))?;
    write(
        &ctx.attempt_dir.join("summary.md"),
        &check::summary_markdown(&report),
    )?;
    let mut log = String::new();
    for command in &report.commands {
        let result = match (command.outcome, command.exit_code) {
            (check::Outcome::Passed, _) => "passed".to_string(),
            (check::Outcome::NoTests, _) => format!(
                "ran no tests ({})",
                command.reason.as_deref().unwrap_or("no test ran")
            ),
            (check::Outcome::CannotRun, code) => format!(
                "cannot run{}: {}",
                code.map(|c| format!(" (exit {c})")).unwrap_or_default(),
                command.reason.as_deref().unwrap_or("")
            ),
            (check::Outcome::TimedOut, _) => "timed out".to_string(),
            (_, Some(code)) => format!("exited with code {code}"),
            (_, None) => "did not finish".to_string(),
        };
        let plural = |n: usize, word: &str| match n {
            1 => format!("1 {word}"),
            n => format!("{n} {word}s"),
        };
        log.push_str(&format!(
            "`{}`: {result} ({}, {})\n",
            command.command,
            plural(command.errors, "error"),
            plural(command.warnings, "warning")
        ));
    }
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        let annotations = check::annotations(&report);
        log.push_str(&annotations);
        // The command prints these on its own stdout, where GitHub Actions reads them.
        write(&ctx.attempt_dir.join("annotations.txt"), &annotations)?;
    }
    write(ctx.stdout, &log)?;
    if let Some(failure) = outcome {
        return Err(failure);
    }
    if let Some(failure) = cannot_run(&report) {
        return Err(failure);
    }
    if report
        .commands
        .iter()
        .all(|c| matches!(c.outcome, check::Outcome::Passed | check::Outcome::NoTests))
    {
        return Ok(());
    }
    Err(Failure {
        kind: FailureKind::Checks,
        message: failure_message(&report),
        files: report.files(),
    })
}

/// A check that ran past the phase's timeout: the machine's or the command's problem, not the
/// work's (kind `timeout`, which never starts a rework loop).
fn timed_out(ctx: &Ctx<'_>) -> Failure {
    let limit = ctx
        .process
        .timeout
        .map(crate::model::format_duration)
        .unwrap_or_default();
    Failure::new(
        FailureKind::Timeout,
        format!(
            "the checks timed out after {limit}; the work is not sent back for that: raise the \
             phase's `timeout`, or make the check command faster"
        ),
    )
}

/// A command that cannot run at all (a missing manifest, a program that is not installed):
/// the run fails once, as `unavailable`, naming the command, instead of sending every work
/// package back.
fn cannot_run(report: &Report) -> Option<Failure> {
    let broken: Vec<String> = report
        .commands
        .iter()
        .filter(|c| c.outcome == check::Outcome::CannotRun)
        .map(|c| {
            let code = c
                .exit_code
                .map(|code| format!(", exit {code}"))
                .unwrap_or_default();
            format!(
                "`{}` ({}{code})",
                c.command,
                check::cut(c.reason.as_deref().unwrap_or("it could not start"), 300)
            )
        })
        .collect();
    if broken.is_empty() {
        return None;
    }
    Some(Failure::new(
        FailureKind::Unavailable,
        format!(
            "the check command cannot run here: {}; the work is not sent back for that: fix \
             the command (the phase's `with.command`; for `spectacular run <spec>`, the \
             `check_command` input in `.spectacular/config.yaml`) and run again",
            broken.join("; ")
        ),
    ))
}

/// `with.command`: one command or a list of them.
fn commands(with: &Value) -> Result<Vec<String>, Failure> {
    let wrong = || {
        Failure::new(
            FailureKind::Exit,
            "builtin/check needs `with.command`: a shell command, or a list of them",
        )
    };
    let commands: Vec<String> = match with.get("command") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .map(|c| c.as_str().map(str::to_string).ok_or_else(wrong))
            .collect::<Result<_, _>>()?,
        _ => return Err(wrong()),
    };
    if commands.is_empty() || commands.iter().any(|c| c.trim().is_empty()) {
        return Err(wrong());
    }
    if commands.len() > MAX_COMMANDS {
        return Err(Failure::new(
            FailureKind::Exit,
            format!(
                "builtin/check runs at most {MAX_COMMANDS} commands; `with.command` has {}",
                commands.len()
            ),
        ));
    }
    Ok(commands)
}

/// `with.workdir`: a directory inside the project (default its root), and how errors.json
/// names it (relative to the root, `.` for the root).
fn workdir(ctx: &Ctx<'_>) -> Result<(PathBuf, String), Failure> {
    let relative = match ctx.with.get("workdir") {
        None | Some(Value::Null) => ".",
        Some(Value::String(dir)) => dir.as_str(),
        Some(_) => {
            return Err(Failure::new(
                FailureKind::Exit,
                "builtin/check: `with.workdir` must be a path relative to the project root",
            ))
        }
    };
    let path = Path::new(relative);
    if path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::RootDir))
    {
        return Err(Failure::new(
            FailureKind::Exit,
            format!(
                "builtin/check: `with.workdir` `{relative}` must be a path inside the project root"
            ),
        ));
    }
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => p.to_str(),
            _ => None,
        })
        .collect();
    let full = ctx.project_root.join(parts.join("/"));
    if !full.is_dir() {
        return Err(Failure::new(
            FailureKind::Exit,
            format!("builtin/check: `with.workdir` `{relative}` is not a directory of the project"),
        ));
    }
    // A worktree of the run (`.spectacular/worktrees/<run>/<name>/…`) holds a copy of the
    // project: its files are named as the project's own, so that they map to the work
    // packages that own them.
    let parts = match parts.as_slice() {
        [dot, "worktrees", _run, _name, rest @ ..] if *dot == crate::project::DOT_DIR => {
            rest.to_vec()
        }
        _ => parts,
    };
    let shown = if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    };
    Ok((full, shown))
}

/// The `module` line of `go.mod` in `dir`, if there is one.
fn go_module(dir: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(dir.join("go.mod"))
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|l| {
        let module = l.trim().strip_prefix("module")?.trim();
        (!module.is_empty()).then(|| module.trim_matches('"').to_string())
    })
}

/// A captured stream, redacted of the run's secrets (the file too, when it held one).
fn read_redacted(path: &Path, redactor: &crate::record::redact::Redactor) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    match redactor.redact(&text) {
        std::borrow::Cow::Owned(redacted) => {
            let _ = std::fs::write(path, &redacted);
            redacted
        }
        std::borrow::Cow::Borrowed(_) => text.into_owned(),
    }
}

/// The `checks` failure message: which commands failed, then one `- ` line per error (the
/// form `attempt.previous_errors` splits), bounded.
fn failure_message(report: &Report) -> String {
    let failed: Vec<String> = report
        .commands
        .iter()
        .filter(|c| matches!(c.outcome, check::Outcome::Failed))
        .map(|c| match c.exit_code {
            Some(code) => format!("`{}` exited with code {code}", c.command),
            None => format!("`{}` did not finish", c.command),
        })
        .collect();
    let errors = report.count(Severity::Error);
    let files = report.files().len();
    let mut out = format!(
        "checks failed: {}; {errors} error{} in {files} file{} (`errors.json` and `summary.md` list them)",
        failed.join(", "),
        if errors == 1 { "" } else { "s" },
        if files == 1 { "" } else { "s" },
    );
    let listed: Vec<&check::Error> = report
        .errors
        .iter()
        .filter(|e| e.severity == Severity::Error)
        .collect();
    for (shown, error) in listed.iter().enumerate() {
        if shown == MESSAGE_ERRORS {
            out.push_str(&format!("\n- … and {} more errors", listed.len() - shown));
            break;
        }
        let mut line = String::from("\n- ");
        if let Some(file) = &error.file {
            line.push_str(file);
            if let Some(l) = error.line {
                line.push_str(&format!(":{l}"));
                if let Some(c) = error.column {
                    line.push_str(&format!(":{c}"));
                }
            }
            line.push_str(": ");
        }
        if let Some(code) = &error.code {
            line.push_str(&format!("[{code}] "));
        }
        if let Some(test) = &error.test {
            line.push_str(&format!("{test}: "));
        }
        let message: String = error
            .message
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        line.push_str(&check::cut(&message, 300));
        if out.len() + line.len() > MESSAGE_MAX {
            out.push_str(&format!("\n- … and {} more errors", listed.len() - shown));
            break;
        }
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(errors: usize) -> Report {
        Report {
            passed: false,
            outcome: check::Outcome::Failed,
            workdir: ".".into(),
            commands: vec![CommandResult {
                command: "make".into(),
                passed: false,
                outcome: check::Outcome::Failed,
                reason: None,
                exit_code: Some(2),
                parsers: vec!["gcc".into()],
                errors,
                warnings: 0,
                stdout: "check-1.stdout.log".into(),
                stderr: "check-1.stderr.log".into(),
            }],
            errors: (0..errors)
                .map(|i| check::Error {
                    tool: "gcc".into(),
                    file: Some(format!("src/f{}.c", i % 3)),
                    line: Some(i as u32 + 1),
                    column: Some(2),
                    severity: Severity::Error,
                    code: Some("-Wx".into()),
                    message: format!("bad\n  thing {i} {}", "x".repeat(500)),
                    test: None,
                })
                .collect(),
            dropped: 0,
        }
    }

    #[test]
    fn the_failure_message_lists_errors_one_line_each_within_its_bounds() {
        let message = failure_message(&report(2));
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(
            lines[0],
            "checks failed: `make` exited with code 2; 2 errors in 2 files (`errors.json` and `summary.md` list them)"
        );
        assert!(
            lines[1].starts_with("- src/f0.c:1:2: [-Wx] bad thing 0 xxx"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with('…') && lines[1].len() < 400,
            "{}",
            lines[1]
        );
        let message = failure_message(&report(1000));
        assert!(message.len() <= MESSAGE_MAX, "{}", message.len());
        assert_eq!(
            message.lines().filter(|l| l.starts_with("- src/")).count(),
            MESSAGE_ERRORS
        );
        assert!(message.ends_with("- … and 980 more errors"), "{message}");
    }

    #[test]
    fn a_command_is_a_string_or_a_list_of_strings() {
        let one = commands(&serde_json::json!({"command": "make"})).expect("one");
        assert_eq!(one, ["make"]);
        let two = commands(&serde_json::json!({"command": ["make", "make test"]})).expect("two");
        assert_eq!(two, ["make", "make test"]);
        for wrong in [
            serde_json::json!({}),
            serde_json::json!({"command": 3}),
            serde_json::json!({"command": ["make", 3]}),
            serde_json::json!({"command": " "}),
            serde_json::json!({"command": vec!["true"; MAX_COMMANDS + 1]}),
        ] {
            assert!(commands(&wrong).is_err(), "{wrong}");
        }
    }
}
