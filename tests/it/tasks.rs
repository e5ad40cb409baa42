//! The planning contract: the published tasks schema, and plans checked by the engine.

use crate::support::*;

#[test]
fn committed_tasks_schema_is_current() {
    let text = assert_committed_schema("tasks", "tasks.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let required = schema["$defs"]["WorkPackage"]["required"]
        .as_array()
        .expect("required keys");
    for key in [
        "id",
        "title",
        "description",
        "owned_files",
        "requirement_refs",
        "acceptance",
        "estimate",
    ] {
        assert!(required.iter().any(|r| r == key), "{key} is not required");
    }
}

use std::path::{Path, PathBuf};

use spectacular::model::FailureKind;
use spectacular::record::{EventData, Store};

/// A copy of `examples/speckit-greetings`: a project and git repository of its own.
fn greetings() -> tempfile::TempDir {
    crate::support::greetings()
}

fn store(dir: &Path) -> Store {
    Store::locate(dir, None)
}

fn last_run(dir: &Path) -> (String, PathBuf) {
    let store = store(dir);
    let run = store.run_ids().expect("runs").pop().expect("a run");
    let run_dir = store.run_dir(&run);
    (run, run_dir)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn a_spec_kit_spec_runs_offline_and_gets_spec_kit_plan_and_tasks() {
    let dir = greetings();
    let root = dir.path();
    let out = run_cli(root, &["run", "specs/001-greetings/spec.md"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (run, run_dir) = last_run(root);
    // The run leaves the checkout as it was, and says how to get Spec Kit's files.
    assert!(
        out.stderr.contains(&format!(
            "`spectacular plan {run} --write` writes them into specs/001-greetings"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(git_status(root), "", "the checkout is not clean");
    // The report left on disk is final, and the run's last line says where it is.
    let report_md = run_dir.join("artifacts/report/report.md");
    let report = read(&report_md);
    assert!(report.contains("- status: **succeeded**"), "{report}");
    assert_eq!(
        out.stderr.lines().last(),
        Some(format!("report: .spectacular/runs/{run}/artifacts/report/report.md").as_str()),
        "{}",
        out.stderr
    );
    // Every acceptance scenario shows what covers it: its packages, or its story's.
    assert!(!report.contains("**none**"), "{report}");
    // The built-in software-dev mission ran, with the spec, the Spec Kit context and the
    // configured check command as inputs.
    let events = store(root).read_events(&run).expect("events");
    let EventData::RunStarted(started) = &events[0].data else {
        panic!("the first event starts the run")
    };
    assert_eq!(started.mission, "software-dev");
    assert_eq!(started.inputs["context"], "specs/001-greetings/research.md");
    assert_eq!(started.inputs["check_command"], "sh scripts/check.sh");
    assert!(started.inputs["spec"]
        .as_str()
        .is_some_and(|s| s.ends_with("specs/001-greetings/spec.md")));
    // The planner's prompt has the project knowledge and the context files.
    let prompt = read(&run_dir.join("attempts/plan/1/prompt.md"));
    assert!(prompt.contains("POSIX shell only"), "{prompt}");
    assert!(
        prompt.contains("specs/001-greetings/research.md"),
        "{prompt}"
    );
    // Traceability beside the plan.
    let trace = read(&run_dir.join("artifacts/plan/traceability.md"));
    assert!(
        trace.contains("5 of 5 requirements and success criteria are covered"),
        "{trace}"
    );
    assert!(
        trace.contains("| FR-002 | requirement | 40 |"),
        "the spec line is given: {trace}"
    );
    // Spec Kit's files next to the spec, on request.
    assert!(!root.join("specs/001-greetings/tasks.md").exists());
    let wrote = run_cli(root, &["plan", &run, "--write"], &[]);
    assert_eq!(wrote.code, 0, "{}", wrote.transcript());
    assert!(
        wrote.stdout.contains("wrote specs/001-greetings/tasks.md"),
        "{}",
        wrote.stdout
    );
    let tasks = read(&root.join("specs/001-greetings/tasks.md"));
    let lines: Vec<&str> = tasks.lines().filter(|l| l.starts_with("- [ ] T")).collect();
    assert_eq!(
        lines,
        [
            "- [ ] T001 [P] [US1] Greet a person by name in src/greet.sh",
            "- [ ] T002 [P] Document both commands in README.md",
            "- [ ] T003 [US2] Say goodbye in src/bye.sh (depends on T001)",
        ],
        "{tasks}"
    );
    let plan = read(&root.join("specs/001-greetings/plan.md"));
    assert!(plan.contains("# Implementation Plan: Greetings"), "{plan}");
    assert!(plan.contains("The greeting comes first"), "{plan}");
    // What Spectacular wrote there is not the next run's context; the team's files are.
    let again = run_cli(root, &["run", "specs/001-greetings/spec.md"], &[]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    let (second, _) = last_run(root);
    let events = store(root).read_events(&second).expect("events");
    let EventData::RunStarted(started) = &events[0].data else {
        panic!("the first event starts the run")
    };
    assert_eq!(started.inputs["context"], "specs/001-greetings/research.md");
}

/// `git status --porcelain` of the checkout at `root`.
fn git_status(root: &Path) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["status", "--porcelain"])
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn git(root: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_finished_run_is_applied_later_with_apply_or_resume_apply() {
    let dir = greetings();
    let root = dir.path();
    let out = run_cli(root, &["run", "specs/001-greetings/spec.md"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (run, _) = last_run(root);
    let integration = spectacular::git::integration_branch(&run);
    let merged = git(root, &["rev-parse", &integration]);
    assert_ne!(git(root, &["rev-parse", "main"]), merged);
    // `resume` has nothing to resume, but `--apply` applies.
    let resumed = run_cli(root, &["resume", &run], &[]);
    assert_eq!(resumed.code, 2, "{}", resumed.transcript());
    let applied = run_cli(root, &["resume", &run, "--apply"], &[]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    assert!(
        applied.stdout.contains("`main` fast-forwarded to"),
        "{}",
        applied.transcript()
    );
    assert_eq!(git(root, &["rev-parse", "main"]), merged);
    assert_eq!(git_status(root), "", "the checkout is not clean");
    // Applying again changes nothing and says so the same way.
    let again = run_cli(root, &["apply", "last"], &[]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(git(root, &["rev-parse", "main"]), merged);
    // A run that did not succeed is not applied.
    let failed = run_cli(
        root,
        &[
            "run",
            "specs/001-greetings/spec.md",
            "--input",
            "check_command=false",
        ],
        &[],
    );
    assert_eq!(failed.code, 1, "{}", failed.transcript());
    let refused = run_cli(root, &["apply", "last"], &[]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    assert!(
        refused
            .stderr
            .contains("failed: only the work of a run that succeeded is applied"),
        "{}",
        refused.stderr
    );
    assert_eq!(git(root, &["rev-parse", "main"]), merged);
}

#[test]
fn spectacular_plan_prints_the_checked_plan_with_lanes_coverage_and_cost() {
    let dir = greetings();
    let root = dir.path();
    let out = run_cli(root, &["run", "specs/001-greetings/spec.md"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let text = run_cli(root, &["plan", "last", "--model", "claude-sonnet"], &[]);
    assert_eq!(text.code, 0, "{}", text.transcript());
    for expected in [
        "3 work packages in 2 waves, 3 lanes",
        "coverage: 5 of 5 requirements and success criteria",
        "estimated cost: $0.27 with `claude-sonnet`",
        "wp-bye [xs] Say goodbye\n    after: wp-greet\n    files: src/bye.sh\n    covers: FR-002, US2, SC-001",
    ] {
        assert!(text.stdout.contains(expected), "{expected:?} in\n{}", text.stdout);
    }
    // What people read, without the first line (it names the run).
    let shown: String = text
        .stdout
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_goldens(
        golden(Path::new("tests/fixtures/cli/plan-greetings.txt"), &shown)
            .err()
            .into_iter()
            .collect(),
    );
    // `cost` takes a run like every read command; free calls still have their share.
    let cost = run_cli(root, &["cost", "last", "--by", "agent"], &[]);
    assert_eq!(cost.code, 0, "{}", cost.transcript());
    assert!(cost.stdout.contains("100.0%"), "{}", cost.stdout);
    assert!(
        cost.stdout.contains("shares are of the calls"),
        "{}",
        cost.stdout
    );
    let nosuch = run_cli(root, &["cost", "nosuchrun"], &[]);
    assert_eq!(nosuch.code, 2, "{}", nosuch.transcript());
    // The example's agents are shell scripts: without `--model` the plan is not priced.
    let unpriced = run_cli(root, &["plan", "last"], &[]);
    assert!(
        unpriced
            .stdout
            .contains("estimated cost: unpriced (its agents have no prices"),
        "{}",
        unpriced.stdout
    );
    assert!(!unpriced.stdout.contains('$'), "{}", unpriced.stdout);
    let json = run_cli(root, &["plan", "--json"], &[]);
    assert_eq!(json.code, 0, "{}", json.transcript());
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        value["plan"]["work_packages"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(value["plan"]["covered"], 5);
    assert_eq!(value["plan"]["work_packages"][1]["wave"], 1);
    assert_eq!(value["estimate"]["unpriced"], true);
}

/// A planner that forgets requirements on its first attempt and plans them all once its
/// prompt lists what was wrong.
const FORGETFUL: &str = r##"#!/bin/sh
set -eu
if [ "$SPECTACULAR_PHASE" = plan ] && ! grep -q "Your previous plan was refused" "$1"; then
  echo "# Plan" > "$SPECTACULAR_OUTPUT_DIR/plan.md"
  cat > "$SPECTACULAR_OUTPUT_DIR/tasks.json" <<'TASKS'
[{"id": "wp-greet", "title": "Greet", "description": "d", "depends_on": ["wp-setup"],
  "owned_files": ["src/greet.sh"], "requirement_refs": ["FR-001", "FR-01"],
  "acceptance": ["it greets"], "estimate": "xs"}]
TASKS
  exit 0
fi
if [ "$SPECTACULAR_PHASE" = plan ] && [ -n "${NEVER_LEARNS:-}" ]; then
  echo "# Plan" > "$SPECTACULAR_OUTPUT_DIR/plan.md"
  echo '[]' > "$SPECTACULAR_OUTPUT_DIR/tasks.json"
  exit 0
fi
exec sh "$(dirname "$0")/scribe.sh" "$@"
"##;

fn forgetful(root: &Path) {
    std::fs::write(root.join(".spectacular/agents/forgetful.sh"), FORGETFUL).expect("write");
    let agents = read(&root.join(".spectacular/agents.yaml")).replace("scribe.sh", "forgetful.sh");
    std::fs::write(root.join(".spectacular/agents.yaml"), agents).expect("write");
}

#[test]
fn an_invalid_plan_fails_its_attempt_and_the_retry_fixes_it_from_the_listed_problems() {
    let dir = greetings();
    let root = dir.path();
    forgetful(root);
    let out = run_cli(root, &["run", "specs/001-greetings/spec.md"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (run, run_dir) = last_run(root);
    let events = store(root).read_events(&run).expect("events");
    let refused = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptFailed(f) if f.phase == "plan" => Some(f.clone()),
            _ => None,
        })
        .expect("the first plan was refused");
    assert_eq!(refused.attempt, 1);
    assert_eq!(refused.kind, FailureKind::OutputInvalid);
    for problem in [
        "depends on `wp-setup`, which is not a work package of this plan",
        "refers to `FR-01`, which the spec does not define; did you mean `FR-001`?",
        "requirement `FR-002`",
        "requirement `FR-003`",
        "success criterion `SC-001`",
        "success criterion `SC-002`",
    ] {
        assert!(
            refused.message.contains(problem),
            "{problem:?} in {}",
            refused.message
        );
    }
    // The retry's prompt lists every problem, one per line.
    let prompt = read(&run_dir.join("attempts/plan/2/prompt.md"));
    assert!(
        prompt.contains("Your previous plan was refused"),
        "{prompt}"
    );
    let listed = prompt
        .lines()
        .filter(|l| l.starts_with("- ") && l.contains("covered by no work package"))
        .count();
    assert_eq!(listed, 4, "{prompt}");
    assert!(events.iter().any(|e| matches!(
        &e.data,
        EventData::AttemptSucceeded(s) if s.phase == "plan" && s.attempt == 2
    )));
}

#[test]
fn a_plan_that_stays_invalid_fails_the_run_and_plan_says_why() {
    let dir = greetings();
    let root = dir.path();
    forgetful(root);
    let out = run_cli(
        root,
        &["run", "specs/001-greetings/spec.md"],
        &[("NEVER_LEARNS", "1")],
    );
    assert_eq!(out.code, 1, "{}", out.transcript());
    assert!(
        !root.join("specs/001-greetings/tasks.md").exists(),
        "no plan, no tasks.md"
    );
    let plan = run_cli(root, &["plan"], &[]);
    assert_eq!(plan.code, 1, "{}", plan.transcript());
    assert!(
        plan.stderr
            .contains("has no accepted plan: attempt 3 of `plan` was refused"),
        "{}",
        plan.stderr
    );
    assert!(
        plan.stderr.contains("covered by no work package"),
        "{}",
        plan.stderr
    );
}

#[test]
fn prompts_get_the_knowledge_of_their_role_and_executors_the_learnings_about_their_files() {
    let dir = greetings();
    let root = dir.path();
    let knowledge = root.join(".spectacular/knowledge");
    std::fs::create_dir_all(knowledge.join("learnings")).expect("mkdir");
    std::fs::write(
        knowledge.join("learnings/2026-11-29.md"),
        "# Learnings\n\n## Farewell quoting\n`src/bye.sh` must quote the name.\n\n\
         ## Docs\nREADME.md examples need a `$` prompt.\n",
    )
    .expect("write");
    std::fs::write(
        knowledge.join("architecture.md"),
        format!(
            "# Architecture\n{}\n",
            "One script per command. ".repeat(200)
        ),
    )
    .expect("write");
    // The planner's budget is too small for the architecture: it is left out, and said so.
    let config = read(&root.join(".spectacular/config.yaml"));
    std::fs::write(
        root.join(".spectacular/config.yaml"),
        format!("{config}knowledge:\n  budgets: {{ planner: 600 }}\n"),
    )
    .expect("write");
    let out = run_cli(root, &["run", "specs/001-greetings/spec.md"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (_, run_dir) = last_run(root);
    let planner = read(&run_dir.join("attempts/plan/1/prompt.md"));
    assert!(planner.contains("POSIX shell only"), "{planner}");
    assert!(
        planner.contains("left out to stay within 600 tokens: architecture.md"),
        "{planner}"
    );
    assert!(
        planner.contains("must quote the name"),
        "all learnings: {planner}"
    );
    let bye = read(&run_dir.join("attempts/implement[wp-bye]/1/prompt.md"));
    assert!(bye.contains("must quote the name"), "{bye}");
    assert!(!bye.contains("need a `$` prompt"), "{bye}");
    assert!(bye.contains("POSIX shell only"), "{bye}");
    let greet = read(&run_dir.join("attempts/implement[wp-greet]/1/prompt.md"));
    assert!(!greet.contains("must quote the name"), "{greet}");
}

#[test]
fn a_markdown_target_runs_the_configured_spec_mission_with_its_inputs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join(".spectacular")).expect("mkdir");
    std::fs::write(
        root.join(".spectacular/config.yaml"),
        "spec_mission: echo.yaml\nspec_inputs:\n  greeting: hi\n  undeclared: dropped\n",
    )
    .expect("write");
    std::fs::write(
        root.join("echo.yaml"),
        "mission: echo\ninputs:\n  spec: { type: file, required: true }\n  greeting: { type: string, default: none }\n  tone: { type: string, default: flat }\nphases:\n  say:\n    uses: builtin/echo\n    with: { message: \"{{ inputs.greeting }} {{ inputs.tone }}\" }\n",
    )
    .expect("write");
    std::fs::write(root.join("notes.md"), "# Notes\n\n- A requirement.\n").expect("write");
    let out = run_cli(root, &["run", "notes.md", "--input", "tone=warm"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (run, _) = last_run(root);
    let events = store(root).read_events(&run).expect("events");
    let EventData::RunStarted(started) = &events[0].data else {
        panic!("the first event starts the run")
    };
    assert_eq!(started.mission, "echo");
    assert_eq!(started.inputs["greeting"], "hi");
    assert_eq!(started.inputs["tone"], "warm");
    assert!(!started.inputs.contains_key("undeclared"));
    assert!(started.inputs["spec"]
        .as_str()
        .is_some_and(|s| s.ends_with("notes.md")));
    let missing = run_cli(root, &["run", "nosuch.md"], &[]);
    assert_eq!(missing.code, 2, "{}", missing.transcript());
    assert!(
        missing.stderr.contains("no such file: `nosuch.md`"),
        "{}",
        missing.stderr
    );
    let twice = run_cli(root, &["run", "notes.md", "--input", "spec=notes.md"], &[]);
    assert_eq!(twice.code, 2, "{}", twice.transcript());
    assert!(
        twice.stderr.contains("is the spec already"),
        "{}",
        twice.stderr
    );
}

#[test]
fn the_optional_plan_gate_waits_with_the_plan_readable_and_continues_when_approved() {
    let dir = greetings();
    let root = dir.path();
    let out = run_cli(
        root,
        &[
            "run",
            "specs/001-greetings/spec.md",
            "--input",
            "approve_plan=true",
        ],
        &[],
    );
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(
        out.stderr.contains("unpriced (its agents have no prices)"),
        "the gate shows no price for shell agents: {}",
        out.stderr
    );
    let (run, _) = last_run(root);
    assert!(
        out.stderr.contains(&format!(
            "continue with `spectacular approve {run} approve_plan --resume`"
        )),
        "the suspend line names the gate: {}",
        out.stderr
    );
    // A phase that is not waiting: the hint names the gate that is.
    let wrong = run_cli(root, &["approve", "last", "plan"], &[]);
    assert_eq!(wrong.code, 2, "{}", wrong.transcript());
    assert!(
        wrong.stderr.contains(&format!(
            "phase `plan` is not waiting for approval (it is succeeded)\n  help: the gate \
             waiting is `approve_plan`: `spectacular approve {run} approve_plan`"
        )),
        "{}",
        wrong.stderr
    );
    // The plan is checked before the gate: Spec Kit's files can be written to review it.
    let wrote = run_cli(root, &["plan", "--write"], &[]);
    assert_eq!(wrote.code, 0, "{}", wrote.transcript());
    assert!(read(&root.join("specs/001-greetings/tasks.md")).contains("T003"));
    let plan = run_cli(root, &["plan"], &[]);
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    assert!(plan.stdout.contains("coverage: 5 of 5"), "{}", plan.stdout);
    let approved = run_cli(root, &["approve", &run, "approve_plan", "--resume"], &[]);
    assert_eq!(approved.code, 0, "{}", approved.transcript());
    let events = store(root).read_events(&run).expect("events");
    assert!(events.iter().any(|e| matches!(
        &e.data,
        EventData::AttemptSucceeded(s) if s.phase == "implement[wp-bye]"
    )));
    assert!(read(&root.join("specs/001-greetings/tasks.md")).contains("T003"));
}

#[test]
fn a_spec_becomes_checked_merged_code_and_a_failed_check_sends_back_only_its_package() {
    let dir = greetings();
    // The stand-in agent gets the farewell wrong the first time.
    let out = run_cli(
        dir.path(),
        &["run", "specs/001-greetings/spec.md"],
        &[("SCRIBE_SLIP", "1")],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (run, run_dir) = last_run(dir.path());
    let events = store(dir.path()).read_events(&run).expect("events");
    let attempts = |phase: &str| {
        events
            .iter()
            .filter(|e| matches!(&e.data, EventData::AttemptStarted(s) if s.phase == phase))
            .count()
    };
    // The check failed on the farewell, named its file, and only its package was redone.
    let failed = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptFailed(f) if f.phase == "check" => Some(f.clone()),
            _ => None,
        })
        .expect("the first check failed");
    assert_eq!(failed.kind, FailureKind::Checks);
    assert_eq!(failed.files, vec!["src/bye.sh".to_string()]);
    assert_eq!(attempts("implement[wp-bye]"), 2);
    assert_eq!(attempts("implement[wp-greet]"), 1);
    assert_eq!(attempts("implement[wp-docs]"), 1);
    let bye_prompt = read(&run_dir.join("attempts/implement[wp-bye]/2/prompt.md"));
    assert!(
        bye_prompt.contains("src/bye.sh:1:1: farewell is not"),
        "the redone package got the error: {bye_prompt}"
    );
    // The merged code is on the integration branch, and it works.
    let into = spectacular::git::integration_branch(&run);
    let bye = git(dir.path(), &["show", &format!("{into}:src/bye.sh")]);
    assert!(bye.contains("Goodbye"), "{bye}");
    let checked = events.iter().rev().find_map(|e| match &e.data {
        EventData::AttemptSucceeded(s) if s.phase == "check" => s.values.get("errors").cloned(),
        _ => None,
    });
    assert_eq!(checked.expect("errors.json recorded")["passed"], true);
    // A verdict per acceptance criterion, each a pass with evidence.
    let verdicts = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptSucceeded(s) if s.phase == "review" => {
                s.values.get("verdicts").cloned()
            }
            _ => None,
        })
        .expect("verdicts recorded");
    let verdicts = verdicts.as_array().expect("a list");
    let criteria: Vec<&str> = verdicts
        .iter()
        .filter_map(|v| v["criterion"].as_str())
        .collect();
    assert_eq!(criteria, ["wp-greet/1", "wp-bye/1", "wp-docs/1"]);
    assert!(
        verdicts.iter().all(|v| v["verdict"] == "pass"),
        "{verdicts:?}"
    );
    // The report, the board, the lesson, and nothing left behind but the integration branch.
    let report = read(&run_dir.join("artifacts/report/report.md"));
    assert!(
        report.contains("wp-bye") && report.contains(&into),
        "{report}"
    );
    let board = run_cli(dir.path(), &["board", &run, "--json"], &[]);
    assert_eq!(board.code, 0, "{}", board.transcript());
    let board: serde_json::Value = serde_json::from_str(&board.stdout).expect("board JSON");
    assert_eq!(board["columns"]["done"], 3, "{board}");
    let learned: Vec<_> = walk(&dir.path().join(".spectacular/learnings"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md"))
        .collect();
    assert_eq!(learned.len(), 1);
    assert!(read(&learned[0]).contains("src/bye.sh"));
    // The lesson is this machine's: the checkout is as clean as before the run (the
    // example's `.spectacular/.gitignore` predates the learnings folder).
    assert_eq!(
        git_status(dir.path()),
        "",
        "the run left files in the checkout"
    );
    let worktrees = git(dir.path(), &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 1, "{worktrees}");
    let branches = git(dir.path(), &["branch", "--format=%(refname:short)"]);
    assert_eq!(
        branches.lines().collect::<Vec<_>>(),
        ["main", into.as_str()]
    );
}

/// The team's own Spec Kit `tasks.md`: a done task, phase names and wording of their own.
const TEAM_TASKS: &str = "# Tasks: Greetings (ours)\n\n\
## Phase 1: Skeleton we already have\n\n\
- [x] T001 Create the project skeleton\n\n\
## Phase 2: User Story 1 - Hello first (Priority: P1)\n\n\
- [ ] T002 [US1] Greet people by name in `src/greet.sh` (FR-001, SC-001)\n\
- [ ] T003 [P] Keep the README's two examples in `README.md` (FR-003, SC-002)\n\n\
## Phase 3: User Story 2 - Then goodbye\n\n\
- [ ] T004 [US2] Say goodbye in `src/bye.sh` (FR-002)\n";

/// A stand-in team: its planner imports the team's `tasks.md` (`spectacular plan import`),
/// its executors write each task's file.
const TEAM_AGENT: &str = r##"#!/bin/sh
set -eu
out="$SPECTACULAR_OUTPUT_DIR"
case "$SPECTACULAR_PHASE" in
  research) echo "# Research" > "$out/research.md"; echo "none" > "$out/context.md" ;;
  plan)
    "$SPECTACULAR_BIN" plan import specs/001-greetings/tasks.md --out "$out/tasks.json" > /dev/null
    printf '# Plan\n\nThe team'"'"'s tasks.md, as they wrote it.\n' > "$out/plan.md" ;;
  "implement[T002]")
    mkdir -p src
    cat > src/greet.sh <<'CODE'
if [ "${1:-}" = "--bye" ]; then . "$(dirname "$0")/bye.sh"; bye "$2"; else echo "Hello, $1!"; fi
CODE
    ;;
  "implement[T003]") printf '# Greetings\n\n    sh src/greet.sh Ada\n    sh src/greet.sh --bye Ada\n' > README.md ;;
  "implement[T004]") mkdir -p src; printf 'bye() {\n  echo "Goodbye, $1!"\n}\n' > src/bye.sh ;;
  review)
    printf '[{"criterion":"T002/1","verdict":"pass","evidence":[{"kind":"file","ref":"src/greet.sh"}],"reason":"ok"},{"criterion":"T003/1","verdict":"pass","evidence":[{"kind":"file","ref":"README.md"}],"reason":"ok"},{"criterion":"T004/1","verdict":"pass","evidence":[{"kind":"file","ref":"src/bye.sh"}],"reason":"ok"}]' > "$out/verdicts.json" ;;
  *) echo "unknown phase $SPECTACULAR_PHASE" >&2; exit 2 ;;
esac
"##;

#[test]
fn a_run_with_the_teams_imported_tasks_md_ticks_only_what_it_did_in_their_own_file() {
    let dir = greetings();
    let root = dir.path();
    let tasks = root.join("specs/001-greetings/tasks.md");
    std::fs::write(&tasks, TEAM_TASKS).expect("write tasks.md");
    std::fs::write(root.join(".spectacular/agents/team.sh"), TEAM_AGENT).expect("agent");
    std::fs::write(
        root.join(".spectacular/agents.yaml"),
        "agents:\n  team:\n    adapter: command\n    argv: [sh, \"{{ project_dir }}/.spectacular/agents/team.sh\"]\n    roles: [planner, executor, validator]\n",
    )
    .expect("agents.yaml");
    git(root, &["add", "-A"]);
    git(
        root,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "the team's tasks",
        ],
    );
    let bin = env!("CARGO_BIN_EXE_spectacular");
    let out = run_cli(
        root,
        &["run", "specs/001-greetings/spec.md"],
        &[("SPECTACULAR_BIN", bin)],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (run, _) = last_run(root);
    // The imported plan ran: one package per open task, T001 (done) skipped.
    let events = store(root).read_events(&run).expect("events");
    let mut merged: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::MergeStep(s) => Some(s.work.clone()),
            _ => None,
        })
        .collect();
    merged.sort();
    assert_eq!(
        merged,
        ["implement[T002]", "implement[T003]", "implement[T004]"]
    );
    let into = spectacular::git::integration_branch(&run);
    assert!(git(root, &["show", &format!("{into}:src/bye.sh")]).contains("Goodbye"));
    assert_eq!(git_status(root), "", "the run left the checkout as it was");
    // Written back on request: the team's file, with only the tasks the run did ticked.
    let wrote = run_cli(root, &["plan", &run, "--write"], &[]);
    assert_eq!(wrote.code, 0, "{}", wrote.transcript());
    assert!(
        wrote
            .stdout
            .contains("ticked T002, T003, T004 in specs/001-greetings/tasks.md"),
        "{}",
        wrote.stdout
    );
    let expected = TEAM_TASKS
        .replace("- [ ] T002", "- [x] T002")
        .replace("- [ ] T003", "- [x] T003")
        .replace("- [ ] T004", "- [x] T004");
    assert_eq!(read(&tasks), expected);
    assert!(!root.join("specs/001-greetings/tasks.md.orig").exists());
}

/// A stand-in team without a planner: `run spec.md --tasks` takes its tasks.md as the plan.
const TEAM_WITHOUT_PLANNER: &str = r##"#!/bin/sh
set -eu
out="$SPECTACULAR_OUTPUT_DIR"
case "$SPECTACULAR_PHASE" in
  "implement[T002]")
    mkdir -p src
    cat > src/greet.sh <<'CODE'
if [ "${1:-}" = "--bye" ]; then . "$(dirname "$0")/bye.sh"; bye "$2"; else echo "Hello, $1!"; fi
CODE
    ;;
  "implement[T003]") printf '# Greetings\n\n    sh src/greet.sh Ada\n    sh src/greet.sh --bye Ada\n' > README.md ;;
  "implement[T004]") mkdir -p src; printf 'bye() {\n  echo "Goodbye, $1!"\n}\n' > src/bye.sh ;;
  review)
    printf '[{"criterion":"T002/1","verdict":"pass","evidence":[{"kind":"file","ref":"src/greet.sh"}],"reason":"ok"},{"criterion":"T003/1","verdict":"pass","evidence":[{"kind":"file","ref":"README.md"}],"reason":"ok"},{"criterion":"T004/1","verdict":"pass","evidence":[{"kind":"file","ref":"src/bye.sh"}],"reason":"ok"}]' > "$out/verdicts.json" ;;
  *) echo "no planning here: asked for phase $SPECTACULAR_PHASE" >&2; exit 2 ;;
esac
"##;

/// A project with `agents` as its only agents, `tasks` as the greetings' tasks.md, committed.
fn team_project(agents: &str, tasks: &str) -> tempfile::TempDir {
    let dir = greetings();
    let root = dir.path();
    std::fs::write(root.join("specs/001-greetings/tasks.md"), tasks).expect("write tasks.md");
    std::fs::write(root.join(".spectacular/agents/team.sh"), agents).expect("agent");
    std::fs::write(
        root.join(".spectacular/agents.yaml"),
        "agents:\n  team:\n    adapter: command\n    argv: [sh, \"{{ project_dir }}/.spectacular/agents/team.sh\"]\n    roles: [executor, validator]\n",
    )
    .expect("agents.yaml");
    git(root, &["add", "-A"]);
    git(
        root,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "the team's tasks",
        ],
    );
    dir
}

/// The checked plan the run recorded, and the instances of the phases that ran.
fn recorded_plan(root: &Path, run: &str) -> (serde_json::Value, Vec<String>) {
    let events = store(root).read_events(run).expect("events");
    let report = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptSucceeded(d) => {
                d.values.get(spectacular::tasks::REPORT_VALUE).cloned()
            }
            _ => None,
        })
        .expect("a checked plan");
    let started = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AttemptStarted(d) => Some(d.phase.clone()),
            _ => None,
        })
        .collect();
    (report, started)
}

#[test]
fn run_with_tasks_takes_the_teams_tasks_md_as_the_plan_without_a_planner() {
    let dir = team_project(TEAM_WITHOUT_PLANNER, TEAM_TASKS);
    let root = dir.path();
    let out = run_cli(
        root,
        &[
            "run",
            "specs/001-greetings/spec.md",
            "--tasks",
            "specs/001-greetings/tasks.md",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stderr
            .contains("planning with the team's specs/001-greetings/tasks.md: 3 open tasks"),
        "{}",
        out.stderr
    );
    let (run, run_dir) = last_run(root);
    let (report, started) = recorded_plan(root, &run);
    assert_eq!(report["imported"], true, "{report}");
    let ids: Vec<&str> = report["work_packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|w| w["id"].as_str())
        .collect();
    assert_eq!(ids, ["T002", "T003", "T004"]);
    // No agent planned or researched: the planning phase was the import.
    assert!(!started.iter().any(|p| p == "research"), "{started:?}");
    let plan_md = read(&run_dir.join("artifacts/plan/plan.md"));
    assert!(
        plan_md.contains("- [x] T001 Create the project skeleton"),
        "{plan_md}"
    );
    let shown = run_cli(root, &["plan", &run], &[]);
    assert!(
        shown
            .stdout
            .contains("imported from the team's Spec Kit tasks.md"),
        "{}",
        shown.transcript()
    );
    let into = spectacular::git::integration_branch(&run);
    assert!(git(root, &["show", &format!("{into}:src/bye.sh")]).contains("Goodbye"));
    let wrote = run_cli(root, &["plan", &run, "--write"], &[]);
    assert!(
        wrote
            .stdout
            .contains("ticked T002, T003, T004 in specs/001-greetings/tasks.md"),
        "{}",
        wrote.transcript()
    );
}

#[test]
fn run_with_tasks_refuses_a_tasks_md_that_cannot_be_a_plan_at_its_line() {
    let tasks = format!("{TEAM_TASKS}- [ ] T003 Twice the same id\n");
    let dir = team_project(TEAM_WITHOUT_PLANNER, &tasks);
    let root = dir.path();
    let args = [
        "run",
        "specs/001-greetings/spec.md",
        "--tasks",
        "specs/001-greetings/tasks.md",
    ];
    let out = run_cli(root, &args, &[]);
    assert_eq!(out.code, 65, "{}", out.transcript());
    assert!(
        out.stderr.contains(
            "specs/001-greetings/tasks.md:15: task `T003` is listed twice (first at line 10)"
        ),
        "{}",
        out.stderr
    );
    let missing = run_cli(
        root,
        &["run", "specs/001-greetings/spec.md", "--tasks", "nope.md"],
        &[],
    );
    assert_eq!(missing.code, 2, "{}", missing.transcript());
    assert!(
        missing.stderr.contains("--tasks: cannot read `nope.md`"),
        "{}",
        missing.stderr
    );
    let not_a_spec = run_cli(root, &["run", "software-dev", "--tasks", "x.md"], &[]);
    assert_eq!(not_a_spec.code, 2, "{}", not_a_spec.transcript());
    assert!(store(root).run_ids().expect("runs").is_empty());
}

/// A real Spec Kit feature (spec-kit's own `converge-command`: 25 open tasks in six phases)
/// planned from its tasks.md; the run stops at the plan approval to show it.
#[test]
fn a_real_spec_kit_tasks_md_is_the_plan_of_its_spec() {
    let dir = team_project(TEAM_WITHOUT_PLANNER, TEAM_TASKS);
    let root = dir.path();
    let feature = root.join("specs/002-converge-command");
    std::fs::create_dir_all(&feature).expect("mkdir");
    let from = repo_root().join("tests/fixtures/corpus/spec-kit/converge-command");
    for name in ["spec.md", "plan.md", "tasks.md"] {
        std::fs::copy(from.join(name), feature.join(name)).expect("copy");
    }
    let out = run_cli(
        root,
        &[
            "run",
            "specs/002-converge-command/spec.md",
            "--tasks",
            "specs/002-converge-command/tasks.md",
            "--input",
            "approve_plan=true",
        ],
        &[],
    );
    let (run, _) = last_run(root);
    let (report, started) = recorded_plan(root, &run);
    assert_eq!(out.code, 3, "{}", out.transcript());
    assert!(!started.iter().any(|p| p == "research"), "{started:?}");
    let packages = report["work_packages"].as_array().expect("packages");
    assert_eq!(packages.len(), 25, "{report}");
    let by_id = |id: &str| {
        packages
            .iter()
            .find(|w| w["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {report}"))
    };
    // Phase 2's [P] tasks wait for phase 1, T011 (not [P]) for all of them.
    let phase_1 = serde_json::json!(["T001", "T002"]);
    assert_eq!(by_id("T003")["depends_on"], phase_1);
    assert_eq!(by_id("T004")["depends_on"], phase_1);
    assert_eq!(
        by_id("T011")["depends_on"].as_array().map(Vec::len),
        Some(8),
        "{}",
        by_id("T011")
    );
    assert_eq!(
        by_id("T003")["owned_files"],
        serde_json::json!(["src/specify_cli/__init__.py"])
    );
    assert!(
        by_id("T012")["requirement_refs"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "US1")),
        "{}",
        by_id("T012")
    );
}
