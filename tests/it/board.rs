//! `spectacular board`: each work package's state derived from hand-written event logs (the
//! events of worktrees, merges and checks as the engine records them), every state covered,
//! the four columns for people at two widths, and `--json`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use spectacular::model::FailureKind;
use spectacular::record::event::*;

use crate::support::*;

/// A run log written by hand: events get gap-free seqs and one second per event from
/// `2026-11-21T10:00:00Z`.
pub(crate) struct Log {
    run: String,
    lines: Vec<String>,
}

impl Log {
    pub(crate) fn new(run: &str, mission_text: &str) -> Log {
        let mut log = Log {
            run: run.to_string(),
            lines: Vec::new(),
        };
        let mission = mission_text
            .lines()
            .find_map(|l| l.strip_prefix("mission: "))
            .unwrap_or("demo")
            .to_string();
        log.push(EventData::RunStarted(RunStarted {
            mission,
            mission_source: "mission.yaml".into(),
            mission_digest: "sha256:00".into(),
            mission_text: mission_text.into(),
            files: BTreeMap::new(),
            inputs: BTreeMap::new(),
            max_parallel: 4,
            engine_version: "0.1.0".into(),
            git_base: None,
        }));
        log
    }

    pub(crate) fn push(&mut self, data: EventData) -> &mut Log {
        self.push_as(data, "engine")
    }

    pub(crate) fn push_as(&mut self, data: EventData, actor: &str) -> &mut Log {
        let seq = self.lines.len() as u64 + 1;
        let event = Event {
            event_id: format!("{}{:06}", &self.run[..20], seq),
            schema: 1,
            run_id: self.run.clone(),
            seq,
            ts: format!("2026-11-21T10:{:02}:{:02}.000Z", seq / 60, seq % 60),
            causation_id: None,
            actor: actor.into(),
            data,
        };
        self.lines.push(event.to_json_line());
        self
    }

    /// Write the log into the store under `root`.
    pub(crate) fn write(&self, root: &Path) {
        let dir = root.join(".spectacular/runs").join(&self.run);
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = self.lines.join("\n");
        text.push('\n');
        std::fs::write(dir.join("events.jsonl"), text).unwrap();
    }
}

pub(crate) fn s(text: &str) -> String {
    text.to_string()
}

pub(crate) fn expanded(phase: &str, children: &[(&str, &[&str], Option<u32>)]) -> EventData {
    EventData::PhaseExpanded(PhaseExpanded {
        phase: s(phase),
        children: children
            .iter()
            .map(|(key, deps, lane)| Child {
                key: s(key),
                item: json!({ "id": key, "title": format!("Package {key}") }),
                depends_on: deps.iter().map(|d| s(d)).collect(),
                lane: *lane,
            })
            .collect(),
    })
}

pub(crate) fn ready(phase: &str) -> EventData {
    EventData::PhaseReady(PhaseRef { phase: s(phase) })
}

pub(crate) fn started(phase: &str, attempt: u32) -> EventData {
    EventData::AttemptStarted(AttemptStarted {
        phase: s(phase),
        attempt,
        workdir: format!("attempts/{phase}/{attempt}"),
        argv: None,
        prompt_digest: None,
        timeout_ms: None,
        reserved_usd: None,
    })
}

pub(crate) fn usage(model: &str, cost: f64) -> Option<Box<Usage>> {
    Some(Box::new(Usage {
        input_tokens: 1000,
        output_tokens: 200,
        cost_usd: Some(cost),
        model: Some(s(model)),
        ..Usage::default()
    }))
}

pub(crate) fn succeeded(phase: &str, attempt: u32) -> AttemptSucceeded {
    AttemptSucceeded {
        phase: s(phase),
        attempt,
        exit_code: Some(0),
        duration_ms: 1000,
        artifacts: BTreeMap::new(),
        values: BTreeMap::new(),
        agent: None,
        usage: None,
        result: None,
        git: None,
        integration_head: None,
    }
}

pub(crate) fn failed(phase: &str, attempt: u32, kind: FailureKind, message: &str) -> AttemptFailed {
    AttemptFailed {
        phase: s(phase),
        attempt,
        kind,
        message: s(message),
        exit_code: None,
        duration_ms: 500,
        agent: None,
        usage: None,
        files: Vec::new(),
    }
}

pub(crate) fn phase_ok(phase: &str) -> EventData {
    EventData::PhaseSucceeded(PhaseSucceeded {
        phase: s(phase),
        attempts: 1,
        artifacts: BTreeMap::new(),
    })
}

pub(crate) fn phase_failed(phase: &str, kind: FailureKind, message: &str) -> EventData {
    EventData::PhaseFailed(PhaseFailed {
        phase: s(phase),
        attempts: 1,
        kind,
        message: s(message),
        continued: false,
    })
}

pub(crate) fn skipped(phase: &str, reason: SkipReason, detail: Option<&str>) -> EventData {
    EventData::PhaseSkipped(PhaseSkipped {
        phase: s(phase),
        reason,
        detail: detail.map(s),
    })
}

pub(crate) fn merge_step(work: &str, outcome: MergeOutcome, conflicts: &[&str]) -> EventData {
    EventData::MergeStep(MergeStep {
        phase: s("merge"),
        attempt: 1,
        work: s(work),
        branch: format!("spectacular/5r9t1w3a/{}", spectacular::git::work_of(work)),
        commit: s("4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
        into: s("spectacular/5r9t1w3a"),
        outcome,
        head: Some(s("a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")),
        conflicts: conflicts
            .iter()
            .map(|f| ConflictFile {
                file: s(f),
                hunks: vec![s("<<<<<<< HEAD\na\n=======\nb\n>>>>>>> theirs\n")],
            })
            .collect(),
    })
}

/// Succeed one attempt of `phase` through the events the engine records, by `agent`/`model`.
pub(crate) fn work(log: &mut Log, phase: &str, agent: &str, model: &str, cost: f64) {
    log.push(ready(phase)).push(started(phase, 1));
    let mut ok = succeeded(phase, 1);
    ok.agent = Some(s(agent));
    ok.usage = usage(model, cost);
    log.push(EventData::AttemptSucceeded(ok))
        .push(phase_ok(phase));
}

const MISSION: &str = "\
mission: board-demo
phases:
  implement: { for_each: outputs.plan.tasks, role: executor, workspace: worktree }
  docs: { for_each: '[1, 2, 3]', run: [echo, docs] }
  merge: { needs: [docs], uses: builtin/merge }
  publish: { needs: [merge], run: [echo, publish] }
  lint: { for_each: '[1]', run: [echo, lint] }
  check: { needs: [implement], run: [cargo, test] }
  report: { needs: [check, publish, lint], uses: builtin/report, always: true }
";

const RUNNING: &str = "01JDQ3ZK6V8X4M2N5P7R9T1W3A";
const FAILED: &str = "01JDQ3ZK6V8X4M2N5P7R9T1W3B";

/// A run caught in the middle: every state of a work package at once.
fn running_log() -> Log {
    let mut log = Log::new(RUNNING, MISSION);
    log.push(expanded(
        "implement",
        &[
            ("plan", &["prog"], Some(0)),
            ("lane", &[], Some(0)),
            ("ready", &[], Some(1)),
            ("prog", &[], Some(0)),
            ("review", &[], Some(2)),
            ("fail", &[], Some(3)),
            ("dep", &["fail"], Some(4)),
            ("skip", &[], Some(5)),
            ("ask", &[], Some(6)),
        ],
    ));
    log.push(expanded(
        "docs",
        &[("d1", &[], None), ("d2", &[], None), ("d3", &[], None)],
    ));
    log.push(expanded("lint", &[("l1", &[], None)]));
    log.push(ready("implement[ready]"));
    log.push(ready("implement[prog]"))
        .push(started("implement[prog]", 1))
        .push(EventData::PolicyDecided(Box::new(PolicyDecided {
            phase: s("implement[prog]"),
            pack: s("cost-routing"),
            version: s("1.0.0"),
            hook: s("route"),
            result: json!({"decision": "route", "agent": "codex", "model": "gpt-5-mini"}),
            reason: Some(s("small package")),
            input_digest: s("sha256:11"),
            layer: Some(s("builtin")),
            context: None,
            ignored: None,
        })));
    work(&mut log, "implement[review]", "claude", "sonnet", 0.25);
    log.push(ready("implement[fail]"))
        .push(started("implement[fail]", 1));
    let mut f = failed(
        "implement[fail]",
        1,
        FailureKind::Exit,
        "exited with code 2",
    );
    f.agent = Some(s("codex"));
    f.usage = usage("gpt-5", 0.5);
    log.push(EventData::AttemptFailed(f))
        .push(phase_failed(
            "implement[fail]",
            FailureKind::Exit,
            "exited with code 2",
        ))
        .push(skipped(
            "implement[dep]",
            SkipReason::UpstreamFailed,
            Some("`implement[fail]` failed"),
        ))
        .push(skipped("implement[skip]", SkipReason::Canceled, None))
        .push(ready("implement[ask]"))
        .push(EventData::ApprovalRequested(ApprovalRequested {
            questions: Vec::new(),
            plan: None,
            phase: s("implement[ask]"),
            reason: s("policy `security-review`: touches auth"),
            timeout_ms: None,
        }));
    for d in ["docs[d1]", "docs[d2]", "docs[d3]"] {
        work(&mut log, d, "command", "-", 0.0);
    }
    log.push(phase_ok("docs"))
        .push(ready("merge"))
        .push(started("merge", 1))
        .push(merge_step("docs[d2]", MergeOutcome::Merged, &[]))
        .push(merge_step(
            "docs[d3]",
            MergeOutcome::Conflict,
            &["src/a.rs", "src/b.rs"],
        ));
    work(&mut log, "lint[l1]", "command", "-", 0.0);
    log
}

/// A run that failed: merged, conflicting, failed, blocked and never-started packages, one
/// loop of rework behind them.
fn failed_log() -> Log {
    let mission = "\
mission: board-failed
phases:
  implement: { for_each: outputs.plan.tasks, role: executor, workspace: worktree }
  merge: { needs: [implement], uses: builtin/merge }
  check: { needs: [merge], run: [cargo, test], on_failure: { goto: implement, max_loops: 1 } }
  report: { needs: [check], uses: builtin/report, always: true }
";
    let mut log = Log::new(FAILED, mission);
    let keys: &[(&str, &[&str], Option<u32>)] = &[
        ("a", &[], Some(0)),
        ("b", &[], Some(1)),
        ("c", &[], Some(2)),
        ("d", &["c"], Some(2)),
        ("e", &["d"], Some(3)),
    ];
    log.push(expanded("implement", keys));
    work(&mut log, "implement[a]", "claude", "sonnet", 0.5);
    log.push(phase_ok("implement"))
        .push(ready("merge"))
        .push(started("merge", 1))
        .push(merge_step("implement[a]", MergeOutcome::Merged, &[]))
        .push(phase_ok("merge"))
        .push(ready("check"))
        .push(started("check", 1));
    let mut checks = failed("check", 1, FailureKind::Checks, "2 errors in src/a.rs");
    checks.files = vec![s("src/a.rs")];
    log.push(EventData::AttemptFailed(checks))
        .push(EventData::LoopStarted(LoopStarted {
            from: s("check"),
            goto: s("implement"),
            iteration: 1,
            reset: vec![s("implement[a]"), s("merge"), s("check")],
        }));
    // Round two: `a` again, `b` conflicts, `c` fails, `d` waits on it, `e` never starts.
    work(&mut log, "implement[a]", "claude", "sonnet", 0.25);
    work(&mut log, "implement[b]", "codex", "gpt-5", 0.125);
    log.push(ready("implement[c]"))
        .push(started("implement[c]", 1));
    let mut f = failed(
        "implement[c]",
        1,
        FailureKind::Timeout,
        "timed out after 30m",
    );
    f.agent = Some(s("codex"));
    f.usage = usage("gpt-5", 1.0);
    log.push(EventData::AttemptFailed(f))
        .push(phase_failed(
            "implement[c]",
            FailureKind::Timeout,
            "timed out after 30m",
        ))
        .push(skipped(
            "implement[d]",
            SkipReason::UpstreamFailed,
            Some("`implement[c]` failed"),
        ))
        .push(phase_ok("implement"))
        .push(ready("merge"))
        .push(started("merge", 2))
        .push(merge_step("implement[a]", MergeOutcome::Already, &[]))
        .push(merge_step(
            "implement[b]",
            MergeOutcome::Conflict,
            &["src/lib.rs"],
        ))
        .push(phase_failed(
            "merge",
            FailureKind::Conflict,
            "conflict in src/lib.rs",
        ))
        .push(EventData::RunFailed(RunFinished {
            failed: vec![s("merge")],
            reason: None,
        }));
    log
}

fn board_json(root: &Path, run: &str) -> Value {
    let out = run_cli(root, &["board", run, "--json"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    serde_json::from_str(&out.stdout).expect("board --json is JSON")
}

/// instance → (state, column, note)
fn states(board: &Value) -> BTreeMap<String, (String, String, String)> {
    board["work_packages"]
        .as_array()
        .expect("work packages")
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (
                text("instance"),
                (text("state"), text("column"), text("note")),
            )
        })
        .collect()
}

#[test]
fn every_work_package_state_is_derived_from_the_events() {
    let dir = tempfile::tempdir().unwrap();
    running_log().write(dir.path());
    let board = board_json(dir.path(), RUNNING);
    let got = states(&board);
    let want: BTreeMap<String, (String, String, String)> = [
        ("implement[plan]", "planned", "planned", "waiting on `prog`"),
        (
            "implement[lane]",
            "planned",
            "planned",
            "lane 0 busy with `prog`",
        ),
        (
            "implement[ready]",
            "claimed",
            "doing",
            "ready: waiting for a free slot",
        ),
        ("implement[prog]", "in_progress", "doing", ""),
        ("implement[review]", "for_review", "review", ""),
        (
            "implement[fail]",
            "blocked",
            "doing",
            "failed: exit: exited with code 2",
        ),
        (
            "implement[dep]",
            "blocked",
            "planned",
            "a phase it needs failed: `implement[fail]` failed",
        ),
        (
            "implement[skip]",
            "canceled",
            "done",
            "the run was canceled",
        ),
        (
            "implement[ask]",
            "blocked",
            "doing",
            "waiting for approval: policy `security-review`: touches auth",
        ),
        ("docs[d1]", "in_review", "review", "`merge` is running"),
        (
            "docs[d2]",
            "approved",
            "done",
            "merged into `spectacular/5r9t1w3a`",
        ),
        (
            "docs[d3]",
            "blocked",
            "review",
            "conflict merging into `spectacular/5r9t1w3a`: src/a.rs, src/b.rs",
        ),
        ("lint[l1]", "done", "done", ""),
    ]
    .into_iter()
    .map(|(i, st, col, note)| (s(i), (s(st), s(col), s(note))))
    .collect();
    assert_eq!(got, want, "{board:#}");

    // Every state of the documented set appears at least once in this log.
    let seen: std::collections::BTreeSet<&str> = got.values().map(|v| v.0.as_str()).collect();
    for state in [
        "planned",
        "claimed",
        "in_progress",
        "for_review",
        "in_review",
        "approved",
        "done",
        "blocked",
        "canceled",
    ] {
        assert!(seen.contains(state), "no package is {state}");
    }
    // The columns count the cards; cards carry their lane, agent, model, cost and age.
    assert_eq!(
        board["columns"],
        json!({"planned": 3, "doing": 4, "review": 3, "done": 3})
    );
    let card = |instance: &str| {
        board["work_packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["instance"] == instance)
            .unwrap()
            .clone()
    };
    // The route chosen for the running attempt names its agent and model.
    assert_eq!(card("implement[prog]")["agent"], "codex");
    assert_eq!(card("implement[prog]")["model"], "gpt-5-mini");
    assert_eq!(card("implement[review]")["cost_usd"], 0.25);
    assert_eq!(card("implement[fail]")["model"], "gpt-5");
    assert_eq!(card("implement[fail]")["lane"], 3);
    assert_eq!(
        card("docs[d2]")["branch"],
        "spectacular/5r9t1w3a/d2",
        "a merge names the branch"
    );
    // A running run's ages run up to now: the log is from 2026-11-21.
    assert!(card("lint[l1]")["age_ms"].as_u64().unwrap() > 0);
    let d1 = card("docs[d1]");
    let transitions: Vec<&str> = d1["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        transitions,
        [
            "planned",
            "claimed",
            "in_progress",
            "for_review",
            "in_review"
        ]
    );
}

#[test]
fn a_failed_run_leaves_its_packages_where_they_stopped_and_loops_count() {
    let dir = tempfile::tempdir().unwrap();
    failed_log().write(dir.path());
    let board = board_json(dir.path(), FAILED);
    let got = states(&board);
    let state = |i: &str| got[i].0.as_str();
    // Merged, but the run failed before its work was checked: blocked in review, not done.
    assert_eq!(state("implement[a]"), "blocked", "{board:#}");
    assert_eq!(got["implement[a]"].1, "review");
    assert_eq!(state("implement[b]"), "blocked");
    assert_eq!(got["implement[b]"].1, "review");
    assert_eq!(state("implement[c]"), "blocked");
    assert_eq!(state("implement[d]"), "blocked");
    assert_eq!(state("implement[e]"), "canceled");
    assert_eq!(got["implement[e]"].2, "the run failed first");
    // Never started: it stays under planned. Nothing of a failed run is under done.
    assert_eq!(got["implement[e]"].1, "planned");
    assert!(
        got.values().all(|(_, column, _)| column != "done"),
        "{got:#?}"
    );
    let a = &board["work_packages"][0];
    assert_eq!(a["loops"], 1);
    // Both rounds' attempts are paid for, and their time counts.
    assert_eq!(a["cost_usd"], 0.75);
    assert!(a["work_ms"].as_u64().is_some_and(|ms| ms > 0), "{a:#}");
    // A finished run's ages end with the run: `b` conflicted two events before it failed.
    let b = &board["work_packages"][1];
    assert_eq!(b["age_ms"], 2000);
}

#[test]
fn the_board_for_people_fits_the_width_and_never_colours_without_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    failed_log().write(dir.path());
    let wide = run_cli(dir.path(), &["board", FAILED], &[("COLUMNS", "120")]);
    assert_eq!(wide.code, 0, "{}", wide.transcript());
    let narrow = run_cli(dir.path(), &["board", FAILED], &[("COLUMNS", "60")]);
    assert_eq!(narrow.code, 0, "{}", narrow.transcript());
    for (out, width) in [(&wide.stdout, 120), (&narrow.stdout, 60)] {
        for line in out.lines() {
            assert!(
                unicode_width::UnicodeWidthStr::width(line) <= width,
                "wider than {width}: {line:?}\n{out}"
            );
            assert!(
                !line.contains('\u{1b}'),
                "colour without a terminal: {line:?}"
            );
        }
    }
    // Colour only when asked for.
    let coloured = run_cli(dir.path(), &["board", FAILED, "--color", "always"], &[]);
    assert!(coloured.stdout.contains('\u{1b}'), "{}", coloured.stdout);
    assert_goldens(
        [
            golden(
                Path::new("tests/fixtures/board/failed-120.txt"),
                &wide.stdout,
            ),
            golden(
                Path::new("tests/fixtures/board/failed-60.txt"),
                &narrow.stdout,
            ),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect(),
    );
}

#[test]
fn a_run_without_fan_out_has_an_empty_board_and_the_latest_run_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    failed_log().write(dir.path());
    let mut plain = Log::new(
        "01JDQ3ZK6V8X4M2N5P7R9T1W3C",
        "mission: plain\nphases:\n  a: { run: [echo] }\n",
    );
    plain.push(ready("a"));
    plain.write(dir.path());
    let out = run_cli(dir.path(), &["board"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(
        out.stdout,
        "run 01JDQ3ZK6V8X4M2N5P7R9T1W3C  mission plain  running\n\
         no work packages: no fan-out phase has expanded\n"
    );
}

#[test]
fn a_downstream_fan_out_reviews_only_its_own_item_and_status_shows_lanes() {
    let dir = tempfile::tempdir().unwrap();
    let mission = "\
mission: per-item-review
phases:
  implement: { for_each: outputs.plan.tasks, role: executor, workspace: worktree }
  review: { needs: [implement], for_each: outputs.plan.tasks, role: validator }
";
    let run = "01JDQ3ZK6V8X4M2N5P7R9T1W3E";
    let mut log = Log::new(run, mission);
    log.push(expanded(
        "implement",
        &[("x", &[], Some(0)), ("y", &[], Some(1))],
    ));
    work(&mut log, "implement[x]", "codex", "gpt-5", 0.5);
    work(&mut log, "implement[y]", "codex", "gpt-5", 0.5);
    log.push(phase_ok("implement"))
        .push(expanded("review", &[("x", &[], None), ("y", &[], None)]))
        .push(ready("review[x]"))
        .push(started("review[x]", 1));
    log.write(dir.path());
    let got = states(&board_json(dir.path(), run));
    assert_eq!(got["implement[x]"].0, "in_review");
    assert_eq!(got["implement[x]"].2, "`review[x]` is running");
    assert_eq!(got["implement[y]"].0, "for_review");
    assert_eq!(got["review[x]"].0, "in_progress");
    assert_eq!(got["review[y]"].0, "planned");

    let out = run_cli(dir.path(), &["status", run, "--json"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let status: Value = serde_json::from_str(&out.stdout).unwrap();
    let lane = |phase: &str| {
        status["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["phase"] == phase)
            .unwrap_or_else(|| panic!("no {phase} in {status:#}"))
            .get("lane")
            .cloned()
    };
    assert_eq!(lane("implement[y]"), Some(json!(1)));
    assert_eq!(
        lane("review[y]"),
        None,
        "items that own no files have no lane"
    );
}

#[test]
fn long_titles_wrap_to_the_terminal_instead_of_being_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mission = "\
mission: long-titles
phases:
  implement: { for_each: outputs.plan.tasks, role: executor, workspace: worktree }
";
    let run = "01JDQ3ZK6V8X4M2N5P7R9T1W3F";
    let title = "Greet every person by the name they give, in their own language, \
                 and remember it for the next visit";
    let mut log = Log::new(run, mission);
    log.push(EventData::PhaseExpanded(PhaseExpanded {
        phase: s("implement"),
        children: vec![Child {
            key: s("wp-greet"),
            item: json!({ "id": "wp-greet", "title": title }),
            depends_on: Vec::new(),
            lane: Some(0),
        }],
    }));
    work(&mut log, "implement[wp-greet]", "command", "-", 0.0);
    log.push(EventData::RunSucceeded(RunFinished {
        failed: Vec::new(),
        reason: None,
    }));
    log.write(dir.path());
    for columns in ["100", "60"] {
        let out = run_cli(dir.path(), &["board", run], &[("COLUMNS", columns)]);
        assert_eq!(out.code, 0, "{}", out.transcript());
        let words: Vec<&str> = out.stdout.split_whitespace().collect();
        for word in title.split_whitespace() {
            assert!(
                words.contains(&word),
                "`{word}` missing at {columns}:\n{}",
                out.stdout
            );
        }
        assert!(
            !out.stdout.contains('…'),
            "cut at {columns}:\n{}",
            out.stdout
        );
        // A finished run shows how long the package worked, not `0s` in its last state.
        assert!(out.stdout.contains("done · worked 1s"), "{}", out.stdout);
    }
}
