//! Run reports: `builtin/report` writes `report.md` and `report.json` from the run's events,
//! also when the run fails; `spectacular report` prints the same from the log at any time;
//! the JSON follows the published schema (`schemas/report.schema.json`).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use spectacular::model::FailureKind;
use spectacular::record::event::*;

use crate::board::{
    expanded, failed, merge_step, phase_ok, ready, s, started, succeeded, usage, Log,
};
use crate::support::*;

const RUN: &str = "01JDQ3ZK6V8X4M2N5P7R9T1W3D";

#[test]
fn committed_report_schema_is_current() {
    let text = assert_committed_schema("report", "report.schema.json");
    let schema: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        schema["$id"],
        "https://spectacular.dev/schemas/report.schema.json"
    );
    let required = schema["required"].as_array().expect("required keys");
    for key in [
        "run",
        "work_packages",
        "phases",
        "checks",
        "cost",
        "timeline",
    ] {
        assert!(required.iter().any(|r| r == key), "{key} is not required");
    }
}

/// Check `value` against the committed report schema; every error, listed.
fn assert_valid(value: &Value) {
    let text = std::fs::read_to_string(repo_root().join("schemas/report.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}\n{value:#}", errors.join("\n"));
}

const MISSION: &str = "\
mission: report-demo
phases:
  analyse: { uses: builtin/analyse-spec, with: { spec: spec.md } }
  plan: { needs: [analyse], role: planner }
  implement: { needs: [plan], for_each: outputs.plan.tasks, role: executor, workspace: worktree }
  merge: { needs: [implement], uses: builtin/merge }
  check: { needs: [merge], uses: builtin/check, on_failure: { goto: implement, max_loops: 1 } }
  review: { needs: [check], role: validator }
  gate: { needs: [review], approval: { reason: ship it? } }
  report: { needs: [gate], uses: builtin/report, always: true }
";

/// A whole spec pipeline, by hand: analysis, plan, two work packages on branches, a merge,
/// a check that fails once and loops, verdicts, a policy decision, a budget alert, a gate.
fn pipeline_log() -> Log {
    let mut log = Log::new(RUN, MISSION);
    log.push(ready("analyse")).push(started("analyse", 1));
    let mut analysed = succeeded("analyse", 1);
    analysed.values.insert(
        s("analysis"),
        json!({
            "spec": "spec.md", "title": "Greetings", "complexity": 0.42, "tier": "medium",
            "ambiguity": 0.1,
            "dimensions": {
                "scope": { "score": 0.5, "weight": 0.3, "signals": ["3 requirements", "2 modules"] },
                "risk": { "score": 0.2, "weight": 0.2, "signals": [] }
            },
            "risk_areas": ["auth"],
            "requirements": [{"id": "FR-001"}, {"id": "FR-002"}],
            "questions": []
        }),
    );
    log.push(EventData::AttemptSucceeded(analysed))
        .push(phase_ok("analyse"));
    log.push(ready("plan")).push(started("plan", 1));
    let mut planned = succeeded("plan", 1);
    planned.agent = Some(s("claude"));
    planned.usage = usage("sonnet", 0.5);
    planned.values.insert(
        s("plan_report"),
        json!({
            "work_packages": [
                {"id": "WP01", "title": "Greeter", "depends_on": [], "owned_files": ["src/greet.rs"],
                 "requirement_refs": ["FR-001"], "estimate": "s", "wave": 0},
                {"id": "WP02", "title": "CLI", "depends_on": ["WP01"], "owned_files": ["src/main.rs"],
                 "requirement_refs": ["FR-002"], "estimate": "m", "wave": 1}
            ],
            "traceability": [
                {"id": "FR-001", "kind": "requirement", "text": "Greet by name", "line": 3, "work_packages": ["WP01"]},
                {"id": "FR-002", "kind": "requirement", "text": "A command line", "line": 4, "work_packages": ["WP02"]}
            ],
            "covered": 2, "to_cover": 2, "overlaps": [], "lanes": [{"work_packages": ["WP01"]}, {"work_packages": ["WP02"]}]
        }),
    );
    log.push(EventData::AttemptSucceeded(planned))
        .push(phase_ok("plan"));
    log.push(expanded(
        "implement",
        &[("WP01", &[], Some(0)), ("WP02", &["WP01"], Some(1))],
    ));
    for (wp, cost, files) in [
        ("WP01", 0.25, vec!["src/greet.rs"]),
        ("WP02", 0.125, vec!["src/main.rs", "README.md"]),
    ] {
        let instance = format!("implement[{wp}]");
        log.push(ready(&instance))
            .push(EventData::PolicyDecided(Box::new(PolicyDecided {
                phase: instance.clone(),
                pack: s("cost-routing"),
                version: s("1.0.0"),
                hook: s("route"),
                result: json!({"decision": "route", "agent": "codex", "model": "gpt-5"}),
                reason: Some(s("standard package")),
                input_digest: s("sha256:22"),
                layer: Some(s("builtin")),
                context: None,
                ignored: None,
            })))
            .push(started(&instance, 1));
        let mut ok = succeeded(&instance, 1);
        ok.agent = Some(s("codex"));
        ok.usage = usage("gpt-5", cost);
        ok.git = Some(Box::new(GitWork {
            branch: format!("spectacular/5r9t1w3d/{wp}"),
            worktree: format!(".spectacular/worktrees/{RUN}/{instance}"),
            base: s("1111111111111111111111111111111111111111"),
            head: s("2222222222222222222222222222222222222222"),
            commits: vec![s("2222222222222222222222222222222222222222")],
            files: files.iter().map(|f| s(f)).collect(),
            insertions: 12,
            deletions: 3,
            outside_owned: if wp == "WP02" {
                vec![s("README.md")]
            } else {
                vec![]
            },
        }));
        log.push(EventData::AttemptSucceeded(ok))
            .push(phase_ok(&instance));
    }
    log.push(phase_ok("implement"))
        .push(ready("merge"))
        .push(started("merge", 1))
        .push(merge_step("implement[WP01]", MergeOutcome::Merged, &[]))
        .push(merge_step("implement[WP02]", MergeOutcome::Merged, &[]))
        .push(phase_ok("merge"))
        .push(ready("check"))
        .push(started("check", 1));
    let mut checks = failed("check", 1, FailureKind::Checks, "1 error in src/greet.rs");
    checks.files = vec![s("src/greet.rs")];
    log.push(EventData::AttemptFailed(checks))
        .push(EventData::LoopStarted(LoopStarted {
            from: s("check"),
            goto: s("implement"),
            iteration: 1,
            reset: vec![s("implement[WP01]"), s("merge"), s("check")],
        }))
        .push(ready("implement[WP01]"))
        .push(started("implement[WP01]", 2));
    let mut again = succeeded("implement[WP01]", 2);
    again.agent = Some(s("codex"));
    again.usage = usage("gpt-5", 0.0625);
    log.push(EventData::AttemptSucceeded(again))
        .push(phase_ok("implement[WP01]"))
        .push(ready("merge"))
        .push(started("merge", 2))
        .push(merge_step("implement[WP01]", MergeOutcome::Merged, &[]))
        .push(merge_step("implement[WP02]", MergeOutcome::Already, &[]))
        .push(phase_ok("merge"))
        .push(ready("check"))
        .push(started("check", 2));
    let mut checked = succeeded("check", 2);
    checked.values.insert(
        s("errors"),
        json!({"passed": true, "workdir": ".", "commands": [], "dropped": 0, "errors": [
            {"tool": "cargo", "file": "src/main.rs", "line": 7, "column": 5,
             "severity": "warning", "code": "clippy::needless_return", "message": "unneeded `return`"},
            // Not the published shape (no severity): not a check's error.
            {"tool": "cargo", "message": "half an error"}
        ]}),
    );
    log.push(EventData::AttemptSucceeded(checked))
        .push(phase_ok("check"))
        .push(ready("review"))
        .push(started("review", 1));
    let mut reviewed = succeeded("review", 1);
    reviewed.agent = Some(s("claude"));
    reviewed.usage = usage("opus", 1.0);
    reviewed.values.insert(
        s("verdicts"),
        json!([
            {"criterion": "WP01/1", "verdict": "pass", "reason": "the test greets Ada",
             "evidence": [{"kind": "test", "ref": "tests::greets_by_name"}, {"kind": "file", "ref": "src/greet.rs:3"}]},
            {"criterion": "WP02/1", "verdict": "unknown", "reason": "no test prints the usage", "evidence": []},
            // Not the published shape: not a verdict.
            {"criterion": "WP02: prints usage", "verdict": "pass", "work_package": "WP02"}
        ]),
    );
    log.push(EventData::AttemptSucceeded(reviewed))
        .push(phase_ok("review"))
        .push(EventData::BudgetAlert(BudgetAlert {
            level: s("soft"),
            spent_usd: 1.9375,
            threshold_usd: Some(1.5),
            cap_usd: Some(5.0),
            message: s("the run passed its soft budget"),
        }))
        .push(ready("gate"))
        .push(EventData::ApprovalRequested(ApprovalRequested {
            questions: Vec::new(),
            plan: None,
            phase: s("gate"),
            reason: s("ship it?"),
            timeout_ms: None,
        }))
        .push_as(
            EventData::ApprovalDecided(ApprovalDecided {
                phase: s("gate"),
                approved: true,
                comment: Some(s("looks good")),
                timed_out: false,
            }),
            "user:alice",
        )
        .push(phase_ok("gate"))
        .push(ready("report"))
        .push(started("report", 1))
        .push(EventData::AttemptSucceeded(succeeded("report", 1)))
        .push(phase_ok("report"))
        .push(EventData::RunSucceeded(RunFinished {
            failed: vec![],
            reason: None,
        }));
    log
}

#[test]
fn the_report_of_a_whole_pipeline_follows_the_schema_and_tells_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    pipeline_log().write(dir.path());
    let out = run_cli(dir.path(), &["report", RUN, "--json"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let report: Value = serde_json::from_str(&out.stdout).expect("report --json is JSON");
    assert_valid(&report);

    assert_eq!(report["run"]["status"], "succeeded");
    // The spec, its complexity and signals, from the recorded analysis.
    assert_eq!(report["spec"]["complexity"], 0.42);
    assert_eq!(report["spec"]["tier"], "medium");
    assert_eq!(report["spec"]["dimensions"][0]["signals"][1], "2 modules");
    assert_eq!(report["spec"]["requirements"], 2);
    // The plan and its traceability.
    assert_eq!(report["plan"]["covered"], 2);
    assert_eq!(
        report["plan"]["traceability"][1]["work_packages"],
        json!(["WP02"])
    );
    // Each work package: branch, commits, diffstat, lane, attempts, verdicts, state.
    let wp = |i: usize| report["work_packages"][i].clone();
    assert_eq!(wp(0)["instance"], "implement[WP01]");
    assert_eq!(wp(0)["git"]["branch"], "spectacular/5r9t1w3d/WP01");
    assert_eq!(wp(0)["git"]["insertions"], 12);
    assert_eq!(wp(0)["lane"], 0);
    assert_eq!(wp(0)["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(wp(0)["loops"], 1);
    assert_eq!(wp(0)["state"], "done");
    assert_eq!(wp(0)["verdicts"][0]["verdict"], "pass");
    assert_eq!(
        wp(0)["verdicts"][0]["evidence"],
        json!(["test tests::greets_by_name", "file src/greet.rs:3"])
    );
    assert_eq!(wp(0)["verdicts"][0]["reason"], "the test greets Ada");
    assert_eq!(wp(1)["verdicts"][0]["verdict"], "unknown");
    assert_eq!(
        wp(1)["verdicts"].as_array().unwrap().len(),
        1,
        "a row of another shape is no verdict"
    );
    assert_eq!(wp(1)["git"]["outside_owned"], json!(["README.md"]));
    assert_eq!(wp(1)["merge"], "already");
    // Checks: the failure with its files, the errors of the check phase.
    assert_eq!(
        report["checks"]["failures"][0]["files"],
        json!(["src/greet.rs"])
    );
    assert_eq!(report["checks"]["failures"][0]["kind"], "checks");
    assert_eq!(
        report["checks"]["errors"][0]["code"],
        "clippy::needless_return"
    );
    assert_eq!(report["checks"]["errors"][0]["line"], 7);
    assert_eq!(report["checks"]["errors"][0]["severity"], "warning");
    assert_eq!(
        report["checks"]["errors"].as_array().unwrap().len(),
        1,
        "a row of another shape is no check error"
    );
    // Cost by phase, agent and model, summed from the attempts' usage above.
    let total = 0.5 + 0.25 + 0.125 + 0.0625 + 1.0;
    assert_eq!(report["cost"]["total_usd"], total);
    assert_eq!(report["cost"]["calls"], 5);
    let group = |by: &str, key: &str| {
        report["cost"][by]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == key)
            .unwrap_or_else(|| panic!("no {by} {key}"))["cost_usd"]
            .clone()
    };
    assert_eq!(group("by_phase", "implement"), 0.25 + 0.125 + 0.0625);
    assert_eq!(group("by_agent", "claude"), 1.5);
    assert_eq!(group("by_model", "opus"), 1.0);
    assert_eq!(report["cost"]["alerts"].as_array().unwrap().len(), 1);
    // Decisions, approvals, loops, merges, the timeline.
    assert_eq!(report["decisions"].as_array().unwrap().len(), 2);
    assert_eq!(report["approvals"][0]["by"], "user:alice");
    assert_eq!(report["approvals"][0]["approved"], true);
    assert_eq!(report["loops"][0]["goto"], "implement");
    assert_eq!(report["merges"].as_array().unwrap().len(), 4);
    let events = std::fs::read_to_string(
        dir.path()
            .join(".spectacular/runs")
            .join(RUN)
            .join("events.jsonl"),
    )
    .unwrap();
    assert_eq!(
        report["timeline"].as_array().unwrap().len(),
        events.lines().count()
    );

    // The Markdown says the same for people.
    let md = run_cli(dir.path(), &["report", RUN], &[]);
    assert_eq!(md.code, 0, "{}", md.transcript());
    golden(Path::new("tests/fixtures/report/pipeline.md"), &md.stdout)
        .unwrap_or_else(|e| panic!("{e}"));
}

fn attempt_file(root: &Path, phase: &str, name: &str) -> PathBuf {
    let store = spectacular::record::Store::locate(root, None);
    let run = store.run_ids().unwrap().pop().expect("a run");
    store
        .run_dir(&run)
        .join("attempts")
        .join(phase)
        .join("1")
        .join(name)
}

#[test]
fn a_failed_run_still_writes_its_report_from_every_event_before_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".spectacular")).unwrap();
    std::fs::write(
        dir.path().join("mission.yaml"),
        "\
mission: failing
phases:
  build: { run: [echo, built] }
  implement: { needs: [build], for_each: '[\"a\", \"b\"]', run: [echo, '{{ item }}'] }
  check: { needs: [implement], run: [sh, -c, 'echo broken; exit 3'] }
  report: { needs: [check], uses: builtin/report, always: true }
",
    )
    .unwrap();
    let out = run_cli(dir.path(), &["run", "mission.yaml"], &[]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    let json = std::fs::read_to_string(attempt_file(dir.path(), "report", "report.json"))
        .expect("report.json was written");
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_valid(&report);
    // Written during the run, after the failure (its summary says the run was running), then
    // again once the run ended: the files left on disk are final and saw every event.
    let summary =
        std::fs::read_to_string(attempt_file(dir.path(), "report", "stdout.log")).unwrap();
    assert!(summary.contains(" running, "), "{summary}");
    assert_eq!(report["run"]["status"], "failed");
    assert_eq!(report["run"]["failed"], json!(["check"]));
    let timeline = report["timeline"].as_array().unwrap();
    assert_eq!(timeline.last().unwrap()["type"], "run.failed");
    assert!(timeline
        .iter()
        .any(|t| t["type"] == "phase.failed" && t["phase"] == "check"));
    let store = spectacular::record::Store::locate(dir.path(), None);
    let run = store.run_ids().unwrap().pop().expect("a run");
    assert_eq!(
        out.stderr.lines().last(),
        Some(format!("report: .spectacular/runs/{run}/attempts/report/1/report.md").as_str()),
        "{}",
        out.stderr
    );
    let states: Vec<&str> = report["work_packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["blocked", "blocked"], "{report:#}");
    assert_eq!(report["work_packages"][0]["note"], "`check` failed");
    let md = std::fs::read_to_string(attempt_file(dir.path(), "report", "report.md")).unwrap();
    assert!(md.contains("- status: **failed**"), "{md}");
    assert!(md.contains("- failed: `check`"), "{md}");
    assert!(md.contains("| check | failed | 1 |"), "{md}");

    // `spectacular report` prints the same from the whole log.
    let again = run_cli(dir.path(), &["report", "--json"], &[]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_valid(&again);
    assert_eq!(again["run"]["status"], "failed");
    assert_eq!(again["run"]["failed"], json!(["check"]));
    assert_eq!(again["work_packages"][0]["state"], "blocked");
    assert_eq!(again["timeline"], report["timeline"]);
}

#[test]
fn report_names_a_run_it_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    pipeline_log().write(dir.path());
    let out = run_cli(dir.path(), &["report", "01NOPE"], &[]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert!(out.stderr.contains("01NOPE"), "{}", out.stderr);
}

#[test]
fn an_answered_clarification_is_reported_as_answered_with_its_answers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".spectacular")).unwrap();
    std::fs::write(
        root.join("mission.yaml"),
        "\
mission: asks
inputs:
  spec: { type: file }
phases:
  clarify:
    uses: builtin/clarify
    with: { spec: '{{ inputs.spec }}' }
  after: { needs: [clarify], run: [echo, done] }
",
    )
    .unwrap();
    std::fs::write(
        root.join("spec.md"),
        "# Feature: greetings\n\n## Requirements\n\n- **FR-001**: The tool MUST greet the user by name.\n- **FR-002**: The README MUST show [NEEDS CLARIFICATION: which examples?]\n",
    )
    .unwrap();
    let actor = [("SPECTACULAR_ACTOR", "user:ana")];
    let out = run_cli(
        root,
        &["run", "mission.yaml", "--input", "spec=spec.md"],
        &[],
    );
    assert_eq!(out.code, 3, "{}", out.transcript());
    let report = |root: &Path| {
        let out = run_cli(root, &["report", "last"], &[]);
        assert_eq!(out.code, 0, "{}", out.transcript());
        out.stdout
    };
    let before = report(root);
    assert!(before.contains("): waiting\n"), "{before}");
    assert!(
        before.contains("  1. FR-002: Which examples? → not answered"),
        "{before}"
    );

    let out = run_cli(root, &["answer", "last", "1", "one per command"], &actor);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let partly = report(root);
    assert!(
        partly.contains("waiting (1 of 2 questions answered)"),
        "{partly}"
    );

    let out = run_cli(root, &["answer", "last", "2", "the tests pass"], &actor);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let out = run_cli(root, &["resume", "last"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let after = report(root);
    assert!(after.contains("): answered by user:ana\n"), "{after}");
    assert!(!after.contains("): waiting"), "{after}");
    assert!(
        after.contains("1. FR-002: Which examples? → one per command"),
        "{after}"
    );
    assert!(after.contains("→ the tests pass"), "{after}");
}
