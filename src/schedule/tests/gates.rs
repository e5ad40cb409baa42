//! Gates: approvals, their timeouts and rejections, clarifications, and the plan summary a
//! gate shows.

use super::*;

#[test]
fn an_approval_gate_suspends_then_continues_when_approved() {
    let mut h = Harness::new(GATED, 4);
    assert_eq!(Harness::names(&h.starts()), vec!["build", "side"]);
    h.succeed("build", 1);
    let effects = h.effects();
    assert_eq!(
        effects,
        vec![Action::ApprovalTimer {
            phase: "gate".into(),
            after: Duration::from_secs(3600)
        }]
    );
    assert_eq!(h.s.state("gate"), Some(&State::Waiting));
    assert!(h.types().contains(&"approval.requested"));
    assert!(!h.types().contains(&"run.suspended"), "`side` still runs");
    h.succeed("side", 1);
    h.effects();
    assert!(h.s.is_suspended());
    assert!(
        matches!(h.last(), EventData::RunSuspended(s) if s.waiting == vec!["gate".to_string()])
    );
    h.record(EventData::ApprovalDecided(ApprovalDecided {
        phase: "gate".into(),
        approved: true,
        comment: None,
        timed_out: false,
    }));
    assert_eq!(Harness::names(&h.starts()), vec!["deploy"]);
    h.succeed("deploy", 1);
    h.starts();
    assert_eq!(h.s.finished(), Some("succeeded"));
}

#[test]
fn a_gate_past_its_timeout_is_decided_by_on_timeout() {
    let mut h = Harness::new(GATED, 4);
    h.starts();
    h.succeed("build", 1);
    h.succeed("side", 1);
    h.effects();
    assert!(h.s.is_suspended());
    h.advance(Duration::from_secs(3601));
    h.starts();
    let decided = h.log.iter().find_map(|e| match &e.data {
        EventData::ApprovalDecided(d) => Some(d.clone()),
        _ => None,
    });
    let decided = decided.expect("decided on timeout");
    assert!(decided.timed_out && !decided.approved);
    assert_eq!(
        h.s.state("deploy"),
        Some(&State::Skipped(SkipReason::UpstreamFailed))
    );
}

#[test]
fn a_rejected_gate_fails_its_branch() {
    let mut h = Harness::new(GATED, 4);
    h.starts();
    h.succeed("build", 1);
    h.succeed("side", 1);
    h.effects();
    h.record(EventData::ApprovalDecided(ApprovalDecided {
        phase: "gate".into(),
        approved: false,
        comment: Some("not today".into()),
        timed_out: false,
    }));
    assert!(h.starts().is_empty());
    assert_eq!(
        h.s.state("deploy"),
        Some(&State::Skipped(SkipReason::UpstreamFailed))
    );
    assert_eq!(h.s.finished(), Some("failed"));
}

const CLARIFIED: &str = "
mission: clarified
phases:
  clarify: { uses: builtin/clarify, with: { spec: spec.md } }
  plan: { uses: builtin/noop, needs: [clarify] }
  gate:
    needs: [plan]
    approval: { reason: approve the plan }
";

#[test]
fn a_clarification_waits_for_every_answer_then_runs_with_them() {
    let mut h = Harness::new(CLARIFIED, 4);
    // The executor asks instead of starting the attempt (as `prepare` does).
    let effects = h.effects();
    assert!(
        matches!(&effects[..], [Action::Start { phase, .. }] if phase == "clarify"),
        "{effects:?}"
    );
    h.record(EventData::ApprovalRequested(ApprovalRequested {
        phase: "clarify".into(),
        reason: "the spec is ambiguous".into(),
        timeout_ms: None,
        questions: vec!["Which database?".into(), "How fast?".into()],
        plan: None,
    }));
    assert!(h.effects().is_empty());
    assert!(h.s.is_suspended());
    let answer = |question: u32, answer: &str| {
        EventData::ClarificationAnswered(ClarificationAnswered {
            phase: "clarify".into(),
            question,
            text: String::new(),
            answer: answer.into(),
        })
    };
    h.record(answer(2, "p95 under 200 ms"));
    h.record(answer(3, "no such question"));
    assert_eq!(h.s.state("clarify"), Some(&State::Waiting));
    assert!(h.s.is_suspended());
    assert!(h.starts().is_empty(), "one question is still open");
    h.record(answer(1, "Postgres"));
    assert!(!h.s.is_suspended());
    assert!(h.s.approved("clarify"));
    let clarified = h.s.clarifications("clarify");
    let pairs: Vec<(u32, &str, &str)> = clarified
        .iter()
        .map(|c| (c.number, c.question.as_str(), c.answer.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            (1, "Which database?", "Postgres"),
            (2, "How fast?", "p95 under 200 ms")
        ]
    );
    assert_eq!(clarified[0].date, h.log.last().unwrap().ts[..10]);
    assert_eq!(h.starts(), vec![("clarify".to_string(), 1)]);
}

#[test]
fn a_gate_after_a_checked_plan_shows_its_summary() {
    let mut h = Harness::new(CLARIFIED, 4);
    h.starts();
    h.succeed("clarify", 1);
    h.starts();
    let report = serde_json::json!({
        "work_packages": [
            {"id": "a", "title": "A", "depends_on": [], "owned_files": ["src/**"],
             "requirement_refs": ["FR-001"], "estimate": "s", "wave": 0},
            {"id": "b", "title": "B", "depends_on": ["a"], "owned_files": ["src/b.rs"],
             "requirement_refs": [], "estimate": "m", "wave": 1}
        ],
        "traceability": [
            {"id": "FR-001", "kind": "requirement", "text": "", "line": 3, "work_packages": ["a"]},
            {"id": "FR-002", "kind": "requirement", "text": "", "line": 4, "work_packages": []}
        ],
        "covered": 1, "to_cover": 2, "overlaps": [], "lanes": [{"work_packages": ["a", "b"]}]
    });
    h.succeed_with(
        "plan",
        1,
        [
            (crate::tasks::REPORT_VALUE.to_string(), report),
            (
                crate::tasks::ESTIMATE_VALUE.to_string(),
                serde_json::json!({"usd": 0.42, "model": "m"}),
            ),
        ]
        .into(),
    );
    h.effects();
    let plan = h
        .log
        .iter()
        .find_map(|e| match &e.data {
            EventData::ApprovalRequested(r) if r.phase == "gate" => r.plan.clone(),
            _ => None,
        })
        .expect("the gate shows the plan");
    assert_eq!(
        *plan,
        PlanSummary {
            phase: "plan".into(),
            work_packages: vec!["a".into(), "b".into()],
            waves: 2,
            lanes: vec![vec!["a".into(), "b".into()]],
            lane_count: 1,
            covered: 1,
            to_cover: 2,
            uncovered: vec!["FR-002".into()],
            estimate_usd: Some(0.42),
            model: Some("m".into()),
            unpriced: false,
        }
    );
}
