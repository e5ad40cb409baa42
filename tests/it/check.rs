//! `builtin/check` and verdicts through `spectacular run`: the errors of a failing check in
//! `errors.json` and in `attempt.failed` (kind `checks`, never retried, with the files), a
//! passing check whose report is an output, GitHub annotations, the timeout reaching the
//! commands, and `check: { kind: verdicts }` valid, refused and failing.

use std::path::Path;

use serde_json::Value;
use spectacular::check::{Outcome, Report, Severity};
use spectacular::model::FailureKind;
use spectacular::record::event::AttemptFailed;
use spectacular::record::EventData;

use crate::runtime::{alive, assert_all_dead, code, count, text, wait_for_pids, Project};
use crate::support::*;

fn fixture(path: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures/check").join(path)).expect("fixture")
}

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn failures(p: &Project, phase: &str) -> Vec<AttemptFailed> {
    p.events()
        .into_iter()
        .filter_map(|e| match e.data {
            EventData::AttemptFailed(f) if f.phase == phase => Some(f),
            _ => None,
        })
        .collect()
}

fn attempt_dir(p: &Project, phase: &str, attempt: u32) -> std::path::PathBuf {
    p.store()
        .run_dir(&p.run_id())
        .join("attempts")
        .join(phase)
        .join(attempt.to_string())
}

fn report(p: &Project, phase: &str, attempt: u32) -> Report {
    let path = attempt_dir(p, phase, attempt).join("errors.json");
    let text = std::fs::read_to_string(&path).expect("errors.json is written");
    serde_json::from_str(&text).expect("errors.json is a report")
}

const FAILING: &str = r#"
mission: failing-check
defaults:
  retry: { max_attempts: 3, backoff: { initial: 10ms } }
phases:
  check:
    uses: builtin/check
    with:
      command:
        - sh ci/build.sh
        - sh ci/lint.sh
    outputs:
      errors: { path: errors.json }
"#;

/// A project whose build prints cargo's JSON messages (two errors in `app`, a warning in
/// `calc`) and fails, and whose lint prints a generic warning and passes.
fn failing_project() -> Project {
    let p = Project::new(FAILING);
    let root = p.path();
    write(root, "ci/cargo.jsonl", &fixture("cargo/build.stdout"));
    write(
        root,
        "ci/build.sh",
        "cat ci/cargo.jsonl\necho 'error: could not compile `app` (lib) due to 2 previous errors' >&2\nexit 101\n",
    );
    write(
        root,
        "ci/lint.sh",
        "echo 'ci/build.sh:2: warning: quote this  [quoting]'\n",
    );
    p
}

#[test]
fn a_failing_check_writes_its_errors_and_fails_as_checks_with_the_files_once() {
    let p = failing_project();
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let failed = failures(&p, "check");
    assert_eq!(failed.len(), 1, "`checks` is never retried: {failed:?}");
    let failed = &failed[0];
    assert_eq!(failed.kind, FailureKind::Checks);
    // The files of the errors, not of the warnings.
    assert_eq!(failed.files, ["app/src/lib.rs"]);
    assert!(
        failed.message.starts_with(
            "checks failed: `sh ci/build.sh` exited with code 101; 2 errors in 1 file"
        ),
        "{}",
        failed.message
    );
    for line in [
        "\n- app/src/lib.rs:3:5: [E0308] mismatched types: expected `u32`, found `u64`",
        "\n- app/src/lib.rs:7:5: [E0425] cannot find function `lenght_of` in this scope",
    ] {
        assert!(
            failed.message.contains(line),
            "{line:?} in {}",
            failed.message
        );
    }
    let report = report(&p, "check", 1);
    assert!(!report.passed);
    assert_eq!(report.workdir, ".");
    let found: Vec<(&str, Option<&str>, Option<u32>, Severity)> = report
        .errors
        .iter()
        .map(|e| (e.tool.as_str(), e.file.as_deref(), e.line, e.severity))
        .collect();
    assert_eq!(
        found,
        [
            ("cargo", Some("calc/src/lib.rs"), Some(2), Severity::Warning),
            ("cargo", Some("app/src/lib.rs"), Some(3), Severity::Error),
            ("cargo", Some("app/src/lib.rs"), Some(7), Severity::Error),
            ("generic", Some("ci/build.sh"), Some(2), Severity::Warning),
        ]
    );
    let commands: Vec<(bool, Option<i32>, usize, usize)> = report
        .commands
        .iter()
        .map(|c| (c.passed, c.exit_code, c.errors, c.warnings))
        .collect();
    assert_eq!(commands, [(false, Some(101), 2, 1), (true, Some(0), 0, 1)]);
    assert_eq!(report.commands[0].parsers, ["cargo"]);
    let dir = attempt_dir(&p, "check", 1);
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    assert!(
        summary.contains("## cargo: 2 errors, 1 warning, 0 notes"),
        "{summary}"
    );
    assert!(
        summary.contains("| `sh ci/build.sh` | exit 101 | 2 | 1 |"),
        "{summary}"
    );
    let raw = std::fs::read_to_string(dir.join("check-1.stdout.log")).expect("raw log");
    assert_eq!(raw, fixture("cargo/build.stdout"));
    assert!(std::fs::read_to_string(dir.join("check-1.stderr.log"))
        .expect("raw log")
        .contains("could not compile"));
    let log = std::fs::read_to_string(dir.join("stdout.log")).expect("stdout.log");
    assert!(
        !log.contains("::error"),
        "no annotations outside GitHub Actions: {log}"
    );
}

#[test]
fn under_github_actions_the_errors_are_annotations_in_the_stdout_log() {
    let p = Project::new(
        r#"
mission: annotated
phases:
  typecheck:
    uses: builtin/check
    with: { command: sh typecheck.sh, workdir: web }
"#,
    );
    write(p.path(), "web/tsc.out", &fixture("tsc/pretty.stdout"));
    write(p.path(), "web/typecheck.sh", "cat tsc.out\nexit 2\n");
    let out = p
        .command(&["run", "mission.yaml"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .expect("run");
    assert_eq!(code(&out), 1, "{}", text(&out));
    let log = std::fs::read_to_string(attempt_dir(&p, "typecheck", 1).join("stdout.log"))
        .expect("stdout.log");
    let annotations: Vec<&str> = log.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(
        annotations,
        [
            "::error file=web/src/index.ts,line=2,col=9,title=tsc TS2322::Type 'number' is not assignable to type 'string'.",
            "::error file=web/src/index.ts,line=3,col=3,title=tsc TS2322::Type 'string' is not assignable to type 'number'.",
            "::error file=web/src/index.ts,line=6,col=29,title=tsc TS2304::Cannot find name 'lenghtOf'.",
        ],
        "{log}"
    );
    // And on the command's own stdout, where the GitHub Actions runner reads them.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let printed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(printed, annotations, "{stdout}");
    // The files of the failure are relative to the project root.
    assert_eq!(failures(&p, "typecheck")[0].files, ["web/src/index.ts"]);
}

#[test]
fn a_passing_check_succeeds_in_its_workdir_and_its_report_is_an_output() {
    let p = Project::new(
        r#"
mission: passing
phases:
  check:
    uses: builtin/check
    with: { command: "pwd && echo 'src/a.c:1:1: warning: odd'", workdir: sub }
    outputs:
      errors: { path: errors.json }
      summary: { path: summary.md }
"#,
    );
    std::fs::create_dir_all(p.path().join("sub")).expect("mkdir");
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let succeeded = p
        .events()
        .into_iter()
        .find_map(|e| match e.data {
            EventData::AttemptSucceeded(s) if s.phase == "check" => Some(s),
            _ => None,
        })
        .expect("the check succeeded");
    let value = &succeeded.values["errors"];
    assert_eq!(value["passed"], Value::Bool(true), "{value}");
    assert_eq!(value["workdir"], "sub");
    assert_eq!(value["errors"][0]["severity"], "warning");
    assert!(succeeded.artifacts.contains_key("summary"));
    let raw = std::fs::read_to_string(attempt_dir(&p, "check", 1).join("check-1.stdout.log"))
        .expect("raw log");
    let real = p.path().join("sub").canonicalize().expect("sub");
    assert!(
        raw.lines()
            .next()
            .is_some_and(|l| Path::new(l).canonicalize().ok() == Some(real.clone())),
        "{raw}"
    );
}

/// A check that times out fails the run's check: it is not the work's fault, so no loop
/// sends the work back.
#[test]
fn the_attempt_timeout_stops_the_checks_process_group() {
    let p = Project::new(
        r#"
mission: slow-check
phases:
  implement: { uses: builtin/noop }
  check:
    uses: builtin/check
    needs: [implement]
    timeout: 1s
    retry: { max_attempts: 1 }
    with: { command: "sleep 60 & echo $! > child.pid; echo $$ > shell.pid; wait" }
    on_failure: { goto: implement, max_loops: 2 }
"#,
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let failed = failures(&p, "check");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].kind, FailureKind::Timeout, "{failed:?}");
    assert!(
        failed[0]
            .message
            .starts_with("the checks timed out after 1s; the work is not sent back"),
        "{}",
        failed[0].message
    );
    assert_eq!(count(&p.events(), "loop.started", "check"), 0);
    assert_eq!(report(&p, "check", 1).outcome, Outcome::TimedOut);
    for file in ["child.pid", "shell.pid"] {
        let pid: i32 = std::fs::read_to_string(p.path().join(file))
            .expect("pid")
            .trim()
            .parse()
            .expect("a pid");
        assert!(!alive(pid), "{file} ({pid}) survived the timeout");
    }
}

/// A check command that cannot run (a missing manifest, a program that is not installed)
/// fails the run once, naming the command, and sends no work back.
#[test]
fn a_check_command_that_cannot_run_fails_the_run_once_without_rework() {
    for (command, says) in [
        (
            "cargo test --manifest-path missing/Cargo.toml",
            "manifest path `missing/Cargo.toml` does not exist",
        ),
        ("no-such-test-runner --all", "not found"),
    ] {
        let p = Project::new(&format!(
            r#"
mission: cannot-run
phases:
  implement: {{ uses: builtin/noop }}
  check:
    uses: builtin/check
    needs: [implement]
    with: {{ command: "{command}" }}
    on_failure: {{ goto: implement, max_loops: 2 }}
"#
        ));
        let out = p.run(&["run", "mission.yaml"]);
        assert_eq!(code(&out), 1, "{}", text(&out));
        let failed = failures(&p, "check");
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].kind, FailureKind::Unavailable, "{failed:?}");
        let message = &failed[0].message;
        assert!(
            message.starts_with(&format!("the check command cannot run here: `{command}` (")),
            "{message}"
        );
        assert!(message.contains(says), "{says:?} in {message}");
        assert!(message.contains("the work is not sent back"), "{message}");
        let events = p.events();
        assert_eq!(count(&events, "loop.started", "check"), 0);
        assert_eq!(count(&events, "attempt.started", "implement"), 1);
        let report = report(&p, "check", 1);
        assert_eq!(report.outcome, Outcome::CannotRun);
        assert_eq!(report.commands[0].outcome, Outcome::CannotRun);
        assert!(report.commands[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains(says)));
    }
}

/// A test runner that ran no test does not fail the check (there is nothing to send back),
/// and is not reported as passed.
#[test]
fn a_check_that_ran_no_tests_says_so_and_is_not_a_pass() {
    let p = Project::new(
        r#"
mission: no-tests
phases:
  check:
    uses: builtin/check
    with: { command: ["sh ci/pytest.sh", "true"] }
"#,
    );
    write(
        p.path(),
        "ci/pytest.out",
        &std::fs::read_to_string(
            repo_root().join("tests/fixtures/check-outputs/pytest/no-tests.txt"),
        )
        .expect("fixture"),
    );
    write(p.path(), "ci/pytest.sh", "cat ci/pytest.out\nexit 5\n");
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let report = report(&p, "check", 1);
    assert!(!report.passed);
    assert_eq!(report.outcome, Outcome::NoTests);
    let outcomes: Vec<(Outcome, Option<i32>)> = report
        .commands
        .iter()
        .map(|c| (c.outcome, c.exit_code))
        .collect();
    assert_eq!(
        outcomes,
        [(Outcome::NoTests, Some(5)), (Outcome::Passed, Some(0))]
    );
    let dir = attempt_dir(&p, "check", 1);
    let log = std::fs::read_to_string(dir.join("stdout.log")).expect("stdout.log");
    assert!(
        log.starts_with("`sh ci/pytest.sh`: ran no tests (")
            && log.contains("no tests ran in 0.00s"),
        "{log}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    assert!(summary.starts_with("# Checks ran no tests"), "{summary}");
    assert!(
        summary.contains("| `sh ci/pytest.sh` | no tests (exit 5) | 0 | 0 |"),
        "{summary}"
    );
}

/// Jest's default report of a package that is a directory of the repository: the errors are
/// placed in that directory, and only the work package owning them is sent back.
#[test]
fn real_jest_output_in_a_subdirectory_sends_back_only_the_package_owning_it() {
    let p = Project::new(
        r#"
mission: jest-rework
phases:
  implement:
    uses: builtin/noop
    for_each:
      - { id: web, owned_files: ["web/**"] }
      - { id: api, owned_files: ["api/**"] }
  check:
    uses: builtin/check
    needs: [implement]
    with: { command: "cd web && sh ../ci/jest.sh" }
    on_failure: { goto: implement, max_loops: 1 }
"#,
    );
    let real = repo_root().join("tests/fixtures/check-outputs/jest/default.stderr.txt");
    write(
        p.path(),
        "ci/jest.err",
        &std::fs::read_to_string(real).expect("fixture"),
    );
    write(p.path(), "ci/jest.sh", "cat ../ci/jest.err >&2\nexit 1\n");
    write(p.path(), "web/package.json", "{}\n");
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let failed = failures(&p, "check");
    assert_eq!(failed[0].kind, FailureKind::Checks);
    assert_eq!(
        failed[0].files,
        ["web/src/sum.test.js", "web/src/broken.test.js"]
    );
    assert!(
        failed[0].message.contains(
            "\n- web/src/sum.test.js:5:23: sum › adds 1 + 2: expect(received).toBe(expected)"
        ),
        "{}",
        failed[0].message
    );
    let events = p.events();
    assert_eq!(count(&events, "attempt.started", "implement[web]"), 2);
    assert_eq!(count(&events, "attempt.started", "implement[api]"), 1);
}

#[test]
fn ctrl_c_stops_a_running_check_and_its_children() {
    let p = Project::new(
        r#"
mission: canceled-check
phases:
  check:
    uses: builtin/check
    with: { command: "sleep 30 & echo $! >> pids; echo $$ >> pids; wait" }
"#,
    );
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    let pids = wait_for_pids(&p, 2);
    // SAFETY: sends SIGINT to the engine we started.
    unsafe { libc::kill(engine.id() as i32, libc::SIGINT) };
    let status = engine.wait().expect("the engine ends");
    assert_eq!(status.code(), Some(130));
    assert_all_dead(&pids);
    assert_eq!(failures(&p, "check")[0].kind, FailureKind::Canceled);
}

#[test]
fn a_check_without_a_command_or_outside_the_project_fails_saying_why() {
    for (with, expected) in [
        (
            "{}",
            "builtin/check needs `with.command`: a shell command, or a list of them",
        ),
        ("{ command: [] }", "builtin/check needs `with.command`"),
        (
            "{ command: 'true', workdir: ../elsewhere }",
            "builtin/check: `with.workdir` `../elsewhere` must be a path inside the project root",
        ),
        (
            "{ command: 'true', workdir: missing }",
            "builtin/check: `with.workdir` `missing` is not a directory of the project",
        ),
    ] {
        let p = Project::new(&format!(
            "mission: bad-check\nphases:\n  check:\n    uses: builtin/check\n    with: {with}\n"
        ));
        let out = p.run(&["run", "mission.yaml"]);
        assert_eq!(code(&out), 1, "{}", text(&out));
        let failed = failures(&p, "check");
        assert_eq!(failed.len(), 1, "{with}: not retried: {failed:?}");
        assert_eq!(failed[0].kind, FailureKind::Exit, "{with}");
        assert!(
            failed[0].message.starts_with(expected),
            "{with}: {}",
            failed[0].message
        );
    }
}

#[test]
fn a_secret_a_check_prints_is_redacted_from_its_logs_and_errors() {
    const KEY: &str = "sk-canary-openai-0a1b2c3d4e5f6789";
    let p = Project::new(
        r#"
mission: leaky-check
phases:
  check:
    uses: builtin/check
    with: { command: "cat leak.txt; echo \"key=${OPENAI_API_KEY:-unset}\" >&2; exit 1" }
"#,
    );
    write(
        p.path(),
        "leak.txt",
        &format!("src/a.c:1:1: error: token {KEY} refused\n"),
    );
    let out = p
        .command(&["run", "mission.yaml"])
        .env("OPENAI_API_KEY", KEY)
        .output()
        .expect("run");
    assert_eq!(code(&out), 1, "{}", text(&out));
    let dir = attempt_dir(&p, "check", 1);
    for file in [
        "errors.json",
        "summary.md",
        "check-1.stdout.log",
        "check-1.stderr.log",
    ] {
        let written = std::fs::read_to_string(dir.join(file)).expect(file);
        assert!(!written.contains(KEY), "{file} holds the key: {written}");
    }
    let report = report(&p, "check", 1);
    assert_eq!(report.errors[0].file.as_deref(), Some("src/a.c"));
    // The command did not inherit the key at all.
    let stderr = std::fs::read_to_string(dir.join("check-1.stderr.log")).expect("log");
    assert_eq!(stderr, "key=unset\n");
    assert!(!failures(&p, "check")[0].message.contains(KEY));
}

const PLAN: &str = r#"[
  {"id": "wp-login", "title": "Log in", "description": "d", "owned_files": ["src/login.rs"],
   "requirement_refs": [], "acceptance": ["logs in with a good password", "refuses a bad one"],
   "estimate": "s"},
  {"id": "wp-logout", "title": "Log out", "description": "d", "owned_files": ["src/logout.rs"],
   "requirement_refs": [], "acceptance": ["logs out"], "estimate": "xs"}
]"#;

const VALIDATE: &str = r#"
mission: validate
inputs:
  verdicts: { type: string, required: true }
phases:
  implement:
    uses: builtin/noop
  validate:
    needs: [implement]
    workspace: repo
    shell: cp {{ inputs.verdicts | q }} "$SPECTACULAR_OUTPUT_DIR/verdicts.json"
    retry: { max_attempts: 2, backoff: { initial: 10ms } }
    outputs:
      verdicts: { path: verdicts.json, check: { kind: verdicts, plan: plan/tasks.json } }
    on_failure: { goto: implement, max_loops: 1 }
"#;

fn verdicts_project(verdicts: &str) -> Project {
    let p = Project::new(VALIDATE);
    write(p.path(), "plan/tasks.json", PLAN);
    write(p.path(), "verdicts.json", verdicts);
    p
}

fn verdict(criterion: &str, outcome: &str, file: &str) -> String {
    format!(
        r#"{{"criterion": "{criterion}", "verdict": "{outcome}", "evidence": [{{"kind": "file", "ref": "{file}"}}, {{"kind": "command", "ref": "cargo test login", "detail": "1 failed"}}], "reason": "{outcome} because of {file}"}}"#
    )
}

#[test]
fn verdicts_for_every_criterion_pass() {
    let p = verdicts_project(&format!(
        "[{}, {}, {}]",
        verdict("wp-login/1", "pass", "src/login.rs:10"),
        verdict("wp-login/2", "pass", "src/login.rs:20"),
        r#"{"criterion": "wp-logout/1", "verdict": "unknown", "evidence": [], "reason": "no test covers it"}"#
    ));
    let out = p.run(&["run", "mission.yaml", "--input", "verdicts=verdicts.json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

#[test]
fn an_incomplete_verdicts_file_is_refused_and_retried_with_the_problems() {
    let p = verdicts_project(&format!(
        "[{}, {}]",
        verdict("wp-login/1", "pass", "src/login.rs"),
        verdict("wp-login/3", "pass", "src/login.rs")
    ));
    let out = p.run(&["run", "mission.yaml", "--input", "verdicts=verdicts.json"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let failed = failures(&p, "validate");
    // Retried (`output_invalid`), then the loop sends the work back once and it is retried
    // again.
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(failed.iter().all(|f| f.kind == FailureKind::OutputInvalid));
    assert_eq!(count(&p.events(), "loop.started", "validate"), 1);
    for problem in [
        "- criterion `wp-login/3` is not in the plan: work package `wp-login` has 2 acceptance criteria",
        "- criterion `wp-login/2` (\"refuses a bad one\") has no verdict",
        "- criterion `wp-logout/1` (\"logs out\") has no verdict",
    ] {
        assert!(failed[0].message.contains(problem), "{problem:?} in {}", failed[0].message);
    }
    assert!(failed[0].files.is_empty());
    // A file that is not verdicts at all is refused the same way.
    write(p.path(), "verdicts.json", r#"{"criterion": "wp-login/1"}"#);
    let out = p.run(&["run", "mission.yaml", "--input", "verdicts=verdicts.json"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let failed = failures(&p, "validate");
    assert_eq!(failed[0].kind, FailureKind::OutputInvalid);
    assert!(
        failed[0].message.contains("is not a valid verdicts file"),
        "{}",
        failed[0].message
    );
}

#[test]
fn a_failed_verdict_fails_as_checks_with_its_evidence_files_and_loops_back() {
    let p = verdicts_project(&format!(
        "[{}, {}, {}]",
        verdict("wp-login/1", "pass", "src/login.rs:10"),
        verdict("wp-login/2", "fail", "src/login.rs:42"),
        verdict("wp-logout/1", "fail", "src/logout.rs")
    ));
    let out = p.run(&["run", "mission.yaml", "--input", "verdicts=verdicts.json"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();
    let failed = failures(&p, "validate");
    // Not retried; the loop sends the work back once, and it fails the same way.
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(count(&events, "loop.started", "validate"), 1);
    assert_eq!(count(&events, "attempt.started", "implement"), 2);
    let failed = &failed[0];
    assert_eq!(failed.kind, FailureKind::Checks);
    assert_eq!(failed.files, ["src/login.rs", "src/logout.rs"]);
    assert_eq!(
        failed.message,
        "the verdicts of output `verdicts` fail 2 acceptance criteria:\n\
         - `wp-login/2`: fail because of src/login.rs:42\n\
         - `wp-logout/1`: fail because of src/logout.rs"
    );
}

#[test]
fn committed_errors_and_verdicts_schemas_are_current() {
    let errors: Value =
        serde_json::from_str(&assert_committed_schema("errors", "errors.schema.json"))
            .expect("JSON");
    let required = &errors["$defs"]["Error"]["required"];
    for key in ["tool", "severity", "message"] {
        assert!(
            required
                .as_array()
                .is_some_and(|r| r.iter().any(|k| k == key)),
            "{key}: {required}"
        );
    }
    for key in ["file", "line", "column", "code", "test"] {
        assert!(
            errors["$defs"]["Error"]["properties"].get(key).is_some(),
            "{key}"
        );
    }
    let verdicts: Value =
        serde_json::from_str(&assert_committed_schema("verdicts", "verdicts.schema.json"))
            .expect("JSON");
    assert_eq!(verdicts["type"], "array");
    assert_eq!(
        verdicts["$defs"]["Verdict"]["required"],
        serde_json::json!(["criterion", "verdict", "evidence", "reason"])
    );
}
