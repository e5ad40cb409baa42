//! The JSON line of every event type is public API: each is compared with a golden file in
//! `tests/fixtures/events/` (rewrite them with `SPECTACULAR_BLESS=1`, then review the diff).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use spectacular::model::FailureKind;
use spectacular::record::event::*;

const RUN: &str = "01JDQ3ZK6V8X4M2N5P7R9T1W3Y";

/// Every event type, once; a new variant fails to compile here until it gets a sample.
fn golden_index(data: &EventData) -> usize {
    match data {
        EventData::RunStarted(_) => 0,
        EventData::RunResumed(_) => 1,
        EventData::PhaseReady(_) => 2,
        EventData::PhaseExpanded(_) => 3,
        EventData::AttemptStarted(_) => 4,
        EventData::AttemptSucceeded(_) => 5,
        EventData::AttemptFailed(_) => 6,
        EventData::PhaseSucceeded(_) => 7,
        EventData::PhaseFailed(_) => 8,
        EventData::PhaseSkipped(_) => 9,
        EventData::LoopStarted(_) => 10,
        EventData::ApprovalRequested(_) => 11,
        EventData::ApprovalDecided(_) => 12,
        EventData::CancelRequested(_) => 13,
        EventData::RunSuspended(_) => 14,
        EventData::RunSucceeded(_) => 15,
        EventData::RunFailed(_) => 16,
        EventData::RunCanceled(_) => 17,
        EventData::PolicyDecided(_) => 18,
        EventData::FallbackActivated(_) => 19,
        EventData::BudgetAlert(_) => 20,
        EventData::MergeStep(_) => 21,
        EventData::ClarificationAnswered(_) => 22,
        EventData::NotificationSent(_) => 23,
        EventData::NotificationFailed(_) => 24,
        EventData::IssueCommented(_) => 25,
        EventData::PrOpened(_) => 26,
        EventData::PrUpdated(_) => 27,
        EventData::AttemptRedelivered(_) => 28,
        EventData::AttemptRecalled(_) => 29,
    }
}
const TYPE_COUNT: usize = 30;

fn samples() -> Vec<EventData> {
    let s = String::from;
    vec![
        EventData::RunStarted(RunStarted {
            mission: s("software-dev"),
            mission_source: s("missions/software-dev/mission.yaml"),
            mission_digest: s("sha256:0011"),
            mission_text: s("mission: software-dev\n"),
            files: BTreeMap::from([(s("templates/plan.md.j2"), s("sha256:2233"))]),
            inputs: BTreeMap::from([(s("spec"), json!("specs/auth.md"))]),
            max_parallel: 3,
            engine_version: s("0.1.0"),
            git_base: None,
        }),
        EventData::RunResumed(RunResumed {
            interrupted: vec![s("implement[wp-2]#1")],
            upgraded: true,
            mission_digest: Some(s("sha256:4455")),
            mission_text: Some(s("mission: software-dev\n")),
        }),
        EventData::PhaseReady(PhaseRef { phase: s("plan") }),
        EventData::PhaseExpanded(PhaseExpanded {
            phase: s("implement"),
            children: vec![
                Child {
                    lane: Some(0),
                    key: s("wp-1"),
                    item: json!({"id": "wp-1"}),
                    depends_on: vec![],
                },
                Child {
                    lane: Some(1),
                    key: s("wp-2"),
                    item: json!({"id": "wp-2", "depends_on": ["wp-1"]}),
                    depends_on: vec![s("wp-1")],
                },
            ],
        }),
        EventData::AttemptStarted(AttemptStarted {
            phase: s("check"),
            attempt: 1,
            workdir: s("."),
            argv: Some(vec![s("cargo"), s("test")]),
            prompt_digest: None,
            timeout_ms: Some(1_800_000),
            reserved_usd: None,
        }),
        EventData::AttemptSucceeded(AttemptSucceeded {
            git: None,
            integration_head: None,
            phase: s("plan"),
            attempt: 2,
            exit_code: Some(0),
            duration_ms: 88_012,
            agent: None,
            usage: None,
            artifacts: BTreeMap::from([(s("plan"), s("artifacts/plan/plan.md"))]),
            values: BTreeMap::from([(s("tasks"), json!([{"id": "wp-1"}]))]),
            result: None,
        }),
        EventData::AttemptFailed(AttemptFailed {
            files: Vec::new(),
            phase: s("check"),
            attempt: 1,
            kind: FailureKind::Exit,
            message: s("exited with status 101"),
            exit_code: Some(101),
            duration_ms: 45_200,
            agent: None,
            usage: None,
        }),
        EventData::PhaseSucceeded(PhaseSucceeded {
            phase: s("implement[wp-3]"),
            attempts: 2,
            artifacts: BTreeMap::from([(s("diff"), s("artifacts/implement[wp-3]/diff.patch"))]),
        }),
        EventData::PhaseFailed(PhaseFailed {
            phase: s("check"),
            attempts: 2,
            kind: FailureKind::Timeout,
            message: s("the attempt ran past its timeout of 30m"),
            continued: true,
        }),
        EventData::PhaseSkipped(PhaseSkipped {
            phase: s("review"),
            reason: SkipReason::Condition,
            detail: Some(s("`run.complexity >= 0.3` is false")),
        }),
        EventData::LoopStarted(LoopStarted {
            from: s("check"),
            goto: s("implement"),
            iteration: 1,
            reset: vec![s("implement"), s("check")],
        }),
        EventData::ApprovalRequested(ApprovalRequested {
            phase: s("approve_plan"),
            reason: s("approve the plan (`spectacular plan` shows it)"),
            timeout_ms: Some(86_400_000),
            questions: Vec::new(),
            plan: Some(Box::new(PlanSummary {
                phase: s("plan"),
                work_packages: vec![s("wp-greet"), s("wp-bye"), s("wp-docs")],
                waves: 2,
                lanes: vec![vec![s("wp-greet"), s("wp-bye")]],
                lane_count: 2,
                covered: 4,
                to_cover: 5,
                uncovered: vec![s("SC-002")],
                estimate_usd: Some(0.12),
                model: Some(s("claude-sonnet")),
                unpriced: false,
            })),
        }),
        EventData::ApprovalDecided(ApprovalDecided {
            phase: s("approve"),
            approved: false,
            comment: Some(s("token expiry is not tested")),
            timed_out: false,
        }),
        EventData::CancelRequested(CancelRequested {
            reason: Some(s("interrupted by the user")),
        }),
        EventData::RunSuspended(RunSuspended {
            waiting: vec![s("approve")],
        }),
        EventData::RunSucceeded(RunFinished {
            failed: vec![],
            reason: None,
        }),
        EventData::RunFailed(RunFinished {
            failed: vec![s("check")],
            reason: Some(s("phase `check` failed")),
        }),
        EventData::RunCanceled(RunFinished {
            failed: vec![],
            reason: Some(s("canceled by the user")),
        }),
        EventData::PolicyDecided(Box::new(PolicyDecided {
            phase: s("plan"),
            pack: s("default-routing"),
            version: s("1.0.0"),
            hook: s("route"),
            result: json!({
                "agent": "claude-code",
                "model": "claude-opus-4-1",
                "reason": "planner at high complexity needs a strong model"
            }),
            reason: Some(s("planner at high complexity needs a strong model")),
            input_digest: s("sha256:6677"),
            layer: Some(s("builtin")),
            context: Some(json!({
                "phase": {"id": "plan", "role": "planner", "kind": "agent", "attempt": 1},
                "run": {"mission": "software-dev", "complexity": 0.9, "spent_usd": 0.0},
                "agents": ["claude-code"],
                "models": [{"name": "claude-opus", "provider": "anthropic", "tier": "strong",
                            "input_per_mtok": 15.0, "output_per_mtok": 75.0,
                            "context_window": 200000}]
            })),
            ignored: None,
        })),
        EventData::FallbackActivated(FallbackActivated {
            phase: s("implement[wp-2]"),
            attempt: 1,
            from_agent: s("claude-code"),
            from_model: Some(s("claude-sonnet")),
            to_agent: s("codex"),
            to_model: Some(s("gpt")),
            reason: s("rate_limit: 429 Too Many Requests"),
            cost_usd: Some(0.0125),
            reserved_usd: Some(0.04096625),
        }),
        EventData::BudgetAlert(BudgetAlert {
            level: s("soft"),
            spent_usd: 15.2,
            threshold_usd: Some(15.0),
            cap_usd: Some(20.0),
            message: s("spent $15.20 of $20.00: past the $15.00 alert threshold"),
        }),
        EventData::MergeStep(MergeStep {
            phase: s("merge"),
            attempt: 1,
            work: s("implement[WP02]"),
            branch: s("spectacular/7r9t1w3y-WP02"),
            commit: s("4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
            into: s("spectacular/7r9t1w3y"),
            outcome: MergeOutcome::Conflict,
            head: Some(s("a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")),
            conflicts: vec![ConflictFile {
                file: s("src/lib.rs"),
                hunks: vec![s("<<<<<<< HEAD\nfn a() {}\n=======\nfn b() {}\n>>>>>>> spectacular/7r9t1w3y-WP02\n")],
            }],
        }),
        EventData::ClarificationAnswered(ClarificationAnswered {
            phase: s("clarify"),
            question: 1,
            text: s("FR-001: Auth method not specified - email/password, SSO, OAuth?"),
            answer: s("email and password; SSO later"),
        }),
        EventData::NotificationSent(Notification {
            webhook: s("team-slack"),
            kind: s("approval"),
            event_seq: 11,
            attempts: 1,
            status: Some(200),
            error: None,
        }),
        EventData::NotificationFailed(Notification {
            webhook: s("ops"),
            kind: s("failed"),
            event_seq: 16,
            attempts: 4,
            status: Some(503),
            error: Some(s("HTTP 503: upstream unavailable")),
        }),
        EventData::IssueCommented(IssueCommented {
            issue: s("github:octo/shop#123"),
            what: s("end"),
            ended_seq: Some(22),
            url: s("https://github.com/octo/shop/issues/123#issuecomment-1"),
        }),
        EventData::PrOpened(PullRequest {
            project: s("github:octo/shop"),
            number: 7,
            url: s("https://github.com/octo/shop/pull/7"),
            branch: s("spectacular/01jdq3zk6v8x"),
            head: s("9c1d0e5f2a3b4c5d6e7f8091a2b3c4d5e6f70812"),
            base: s("main"),
            issue: Some(s("github:octo/shop#123")),
        }),
        EventData::PrUpdated(PullRequest {
            project: s("gitlab:group/sub/shop"),
            number: 45,
            url: s("https://gitlab.com/group/sub/shop/-/merge_requests/45"),
            branch: s("spectacular/01jdq3zk6v8x"),
            head: s("0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"),
            base: s("main"),
            issue: None,
        }),
        EventData::AttemptRedelivered(AttemptRedelivered {
            phase: s("implement[wp-3]"),
            attempt: 1,
            worker: s("build-7:4121"),
            delivery: 2,
        }),
        EventData::AttemptRecalled(AttemptRecalled {
            phase: s("implement[wp-3]"),
            attempt: 1,
        }),
    ]
}

fn sample_event(seq: u64, data: EventData) -> Event {
    Event {
        event_id: format!("01JDQ4{seq:020}"),
        schema: SCHEMA_VERSION,
        run_id: RUN.to_string(),
        seq,
        ts: format!("2026-11-21T10:15:{:02}.120Z", seq % 60),
        causation_id: (seq > 1).then(|| format!("01JDQ4{:020}", seq - 1)),
        actor: if seq.is_multiple_of(5) {
            "user:alice"
        } else {
            "engine"
        }
        .to_string(),
        data,
    }
}

/// Compare `actual` with the golden file `name`, or write it under `SPECTACULAR_BLESS=1`.
fn check_golden(name: &str, actual: &str) -> Result<(), String> {
    crate::support::golden(&Path::new("tests/fixtures/events").join(name), actual)
}

#[test]
fn every_event_type_has_a_sample() {
    let samples = samples();
    let mut seen = [false; TYPE_COUNT];
    for data in &samples {
        seen[golden_index(data)] = true;
        assert_eq!(EventData::TYPE_NAMES[golden_index(data)], data.type_name());
    }
    assert_eq!(EventData::TYPE_NAMES.len(), TYPE_COUNT);
    assert_eq!(samples.len(), TYPE_COUNT);
    assert!(seen.iter().all(|s| *s), "a type has no sample: {seen:?}");
}

#[test]
fn event_json_lines_match_their_golden_files() {
    let mut failures = Vec::new();
    for (i, data) in samples().into_iter().enumerate() {
        let event = sample_event(i as u64 + 1, data);
        let line = event.to_json_line();
        let name = format!("{}.jsonl", event.data.type_name());
        if let Err(e) = check_golden(&name, &format!("{line}\n")) {
            failures.push(e);
        }
        let back = Event::from_json_line(&line).expect("a written line reads back");
        assert_eq!(back, event, "round trip of {name}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn golden_files_still_decode() {
    let dir = crate::support::repo_root().join("tests/fixtures/events");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let event = Event::from_json_line(text.trim_end())
            .unwrap_or_else(|e| panic!("`{}`: {e}", path.display()));
        assert_eq!(
            format!("{}.jsonl", event.data.type_name()),
            path.file_name().unwrap().to_string_lossy()
        );
        count += 1;
    }
    assert_eq!(count, TYPE_COUNT);
}

#[test]
fn a_newer_schema_is_refused_with_advice() {
    let line = sample_event(1, samples().remove(2))
        .to_json_line()
        .replace("\"schema\":1", "\"schema\":9");
    let err = Event::from_json_line(&line).unwrap_err();
    assert!(err.to_string().contains("upgrade spectacular"), "{err}");
}
