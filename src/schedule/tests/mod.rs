//! Scheduler tests: feed events, assert actions. No processes, no clock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Action, Options, Scheduler, State};
use crate::load::{self, Base, Located, Origin};
use crate::model::FailureKind;
use crate::record::event::*;
use crate::record::Event;

fn plan(yaml: &str) -> Arc<crate::plan::Plan> {
    let located = Located {
        display: "test.yaml".into(),
        origin: Origin::Path,
        base: Base::Dir(PathBuf::from(".")),
        path: None,
    };
    let loaded = load::load_bytes(located, yaml.as_bytes());
    let validated = crate::validate::validate(&loaded, &PathBuf::from("."));
    let mission = validated.mission.unwrap_or_else(|| {
        panic!(
            "{}",
            crate::diag::render_text(&validated.diagnostics, Default::default())
        )
    });
    Arc::new(crate::plan::plan(mission))
}

/// Drives a scheduler like the executor does, minus the effects.
struct Harness {
    s: Scheduler,
    seq: u64,
    millis: u64,
    log: Vec<Event>,
}

impl Harness {
    fn new(yaml: &str, max_parallel: u32) -> Harness {
        let mut h = Harness {
            s: Scheduler::new(plan(yaml), Options { max_parallel }),
            seq: 0,
            millis: 0,
            log: Vec::new(),
        };
        h.record(EventData::RunStarted(RunStarted {
            mission: "t".into(),
            mission_source: "test.yaml".into(),
            mission_digest: "sha256:0".into(),
            mission_text: String::new(),
            files: Default::default(),
            inputs: Default::default(),
            max_parallel,
            engine_version: "test".into(),
            git_base: None,
        }));
        h
    }

    fn record(&mut self, data: EventData) {
        self.seq += 1;
        let secs = self.millis / 1000;
        let ts = humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH
                + Duration::from_secs(1_800_000_000 + secs)
                + Duration::from_millis(self.millis % 1000),
        )
        .to_string();
        let event = Event {
            event_id: format!("e{}", self.seq),
            schema: 1,
            run_id: "run".into(),
            seq: self.seq,
            ts,
            causation_id: None,
            actor: "engine".into(),
            data,
        };
        self.s.apply(&event);
        self.log.push(event);
    }

    fn advance(&mut self, d: Duration) {
        self.millis += d.as_millis() as u64;
        self.s.set_now(
            std::time::UNIX_EPOCH
                + Duration::from_secs(1_800_000_000)
                + Duration::from_millis(self.millis),
        );
    }

    /// Record every decision until the scheduler only asks for effects; return those.
    fn effects(&mut self) -> Vec<Action> {
        for _ in 0..1000 {
            let actions = self.s.decide();
            let (records, effects): (Vec<Action>, Vec<Action>) = actions
                .into_iter()
                .partition(|a| matches!(a, Action::Record(_)));
            if records.is_empty() {
                return effects;
            }
            for r in records {
                if let Action::Record(data) = r {
                    self.record(data);
                }
            }
        }
        panic!("the scheduler did not settle");
    }

    fn starts(&mut self) -> Vec<(String, u32)> {
        let effects = self.effects();
        let mut starts = Vec::new();
        for e in effects {
            if let Action::Start { phase, attempt, .. } = e {
                self.record(EventData::AttemptStarted(AttemptStarted {
                    phase: phase.clone(),
                    attempt,
                    workdir: ".".into(),
                    argv: None,
                    prompt_digest: None,
                    timeout_ms: None,
                    reserved_usd: None,
                }));
                starts.push((phase, attempt));
            }
        }
        starts
    }

    fn succeed(&mut self, phase: &str, attempt: u32) {
        self.succeed_with(phase, attempt, Default::default());
    }

    fn succeed_with(
        &mut self,
        phase: &str,
        attempt: u32,
        values: std::collections::BTreeMap<String, serde_json::Value>,
    ) {
        self.record(EventData::AttemptSucceeded(AttemptSucceeded {
            git: None,
            integration_head: None,
            phase: phase.into(),
            attempt,
            exit_code: Some(0),
            duration_ms: 1,
            agent: None,
            usage: None,
            artifacts: Default::default(),
            values,
            result: None,
        }));
    }

    fn fail(&mut self, phase: &str, attempt: u32, kind: FailureKind) {
        self.record(EventData::AttemptFailed(AttemptFailed {
            files: Vec::new(),
            phase: phase.into(),
            attempt,
            kind,
            message: "boom".into(),
            exit_code: Some(1),
            duration_ms: 1,
            agent: None,
            usage: None,
        }));
    }

    fn types(&self) -> Vec<&'static str> {
        self.log.iter().map(|e| e.data.type_name()).collect()
    }

    fn last(&self) -> &EventData {
        &self.log.last().unwrap().data
    }

    fn names(starts: &[(String, u32)]) -> Vec<&str> {
        starts.iter().map(|(p, _)| p.as_str()).collect()
    }
}

const CHAIN: &str = "
mission: chain
phases:
  a: { uses: builtin/noop }
  b: { uses: builtin/noop, needs: [a] }
  c: { uses: builtin/noop, needs: [b] }
";

#[test]
fn a_chain_runs_in_order_and_succeeds() {
    let mut h = Harness::new(CHAIN, 4);
    assert_eq!(h.starts(), vec![("a".to_string(), 1)]);
    h.succeed("a", 1);
    assert_eq!(h.starts(), vec![("b".to_string(), 1)]);
    h.succeed("b", 1);
    assert_eq!(h.starts(), vec![("c".to_string(), 1)]);
    h.succeed("c", 1);
    assert!(h.starts().is_empty());
    assert_eq!(h.s.finished(), Some("succeeded"));
    let succeeded = h
        .types()
        .iter()
        .filter(|t| **t == "phase.succeeded")
        .count();
    assert_eq!(succeeded, 3);
    assert!(matches!(h.last(), EventData::RunSucceeded(_)));
}

#[test]
fn a_skipped_phase_satisfies_needs() {
    let mut h = Harness::new(
        "
mission: skip
phases:
  a: { uses: builtin/noop, if: 'false' }
  b: { uses: builtin/noop, needs: [a] }
",
        4,
    );
    assert_eq!(h.starts(), vec![("b".to_string(), 1)]);
    assert_eq!(h.s.state("a"), Some(&State::Skipped(SkipReason::Condition)));
    h.succeed("b", 1);
    h.starts();
    assert_eq!(h.s.finished(), Some("succeeded"));
}

#[test]
fn conditions_read_recorded_outputs_and_inputs() {
    let mut h = Harness::new(
        "
mission: cond
phases:
  analyse: { uses: builtin/noop, outputs: { analysis: { path: analysis.json } } }
  review: { uses: builtin/noop, needs: [analyse], if: 'run.complexity >= 0.3' }
  deep: { uses: builtin/noop, needs: [analyse], if: 'outputs.analyse.analysis.complexity > 0.9' }
",
        4,
    );
    h.starts();
    let mut values = std::collections::BTreeMap::new();
    values.insert(
        "analysis".to_string(),
        serde_json::json!({"complexity": 0.5}),
    );
    h.succeed_with("analyse", 1, values);
    assert_eq!(Harness::names(&h.starts()), vec!["review"]);
    assert_eq!(
        h.s.state("deep"),
        Some(&State::Skipped(SkipReason::Condition))
    );
}

#[test]
fn a_failure_skips_dependents_but_always_phases_run() {
    let mut h = Harness::new(
        "
mission: fail
phases:
  a: { uses: builtin/noop }
  b: { uses: builtin/noop, needs: [a] }
  c: { uses: builtin/noop, needs: [b] }
  report: { uses: builtin/noop, needs: [c], always: true }
",
        4,
    );
    h.starts();
    h.fail("a", 1, FailureKind::Exit);
    assert_eq!(h.starts(), vec![("report".to_string(), 1)]);
    assert_eq!(
        h.s.state("b"),
        Some(&State::Skipped(SkipReason::UpstreamFailed))
    );
    assert_eq!(
        h.s.state("c"),
        Some(&State::Skipped(SkipReason::UpstreamFailed))
    );
    // Each skip names the upstream that stopped it.
    let details: Vec<(&str, Option<&str>)> = h
        .log
        .iter()
        .filter_map(|e| match &e.data {
            EventData::PhaseSkipped(d) => Some((d.phase.as_str(), d.detail.as_deref())),
            _ => None,
        })
        .collect();
    assert_eq!(
        details,
        [("b", Some("`a` failed")), ("c", Some("`b` was skipped"))]
    );
    h.succeed("report", 1);
    h.starts();
    assert_eq!(h.s.finished(), Some("failed"));
    match h.last() {
        EventData::RunFailed(f) => assert_eq!(f.failed, vec!["a".to_string()]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn continue_on_error_lets_dependents_run() {
    let mut h = Harness::new(
        "
mission: coe
phases:
  a: { uses: builtin/noop, continue_on_error: true }
  b: { uses: builtin/noop, needs: [a] }
",
        4,
    );
    h.starts();
    h.fail("a", 1, FailureKind::Exit);
    assert_eq!(Harness::names(&h.starts()), vec!["b"]);
    h.succeed("b", 1);
    h.starts();
    assert_eq!(h.s.finished(), Some("succeeded"));
}

#[test]
fn retries_back_off_exponentially_and_count_attempts() {
    let mut h = Harness::new(
        "
mission: retry
phases:
  a:
    uses: builtin/noop
    retry: { max_attempts: 3, backoff: { initial: 1s, factor: 3, max: 5s } }
",
        4,
    );
    assert_eq!(h.starts(), vec![("a".to_string(), 1)]);
    h.fail("a", 1, FailureKind::Exit);
    assert_eq!(
        h.effects(),
        vec![Action::RetryAfter {
            phase: "a".into(),
            delay: Duration::from_secs(1)
        }]
    );
    assert!(h.effects().is_empty(), "the timer is requested once");
    h.s.retry_due("a");
    assert_eq!(h.starts(), vec![("a".to_string(), 2)]);
    h.fail("a", 2, FailureKind::Timeout);
    assert_eq!(
        h.effects(),
        vec![Action::RetryAfter {
            phase: "a".into(),
            delay: Duration::from_secs(3)
        }]
    );
    h.s.retry_due("a");
    assert_eq!(h.starts(), vec![("a".to_string(), 3)]);
    h.fail("a", 3, FailureKind::Exit);
    h.starts();
    assert_eq!(h.s.finished(), Some("failed"));
    let failed = h.log.iter().find_map(|e| match &e.data {
        EventData::PhaseFailed(f) => Some(f.clone()),
        _ => None,
    });
    assert_eq!(failed.unwrap().attempts, 3);
}

#[test]
fn non_retryable_kinds_fail_at_once() {
    let mut h = Harness::new(
        "
mission: nr
phases:
  a:
    uses: builtin/noop
    retry: { max_attempts: 5, non_retryable: [timeout] }
",
        4,
    );
    h.starts();
    h.fail("a", 1, FailureKind::Timeout);
    assert!(h.starts().is_empty());
    assert_eq!(h.s.finished(), Some("failed"));
}

#[test]
fn a_deadline_stops_retries_and_bounds_timeouts() {
    let mut h = Harness::new(
        "
mission: dl
phases:
  a:
    uses: builtin/noop
    timeout: 10m
    deadline: 1m
    retry: { max_attempts: 5, backoff: { initial: 20s, factor: 1 } }
",
        4,
    );
    let effects = h.effects();
    assert!(
        matches!(&effects[0], Action::Start { timeout: Some(t), .. } if *t == Duration::from_secs(60))
    );
    h.starts();
    h.advance(Duration::from_secs(30));
    h.fail("a", 1, FailureKind::Exit);
    h.s.retry_due("a");
    h.advance(Duration::from_secs(20));
    let effects = h.effects();
    match &effects[0] {
        Action::Start {
            attempt: 2,
            timeout: Some(t),
            ..
        } => assert!(*t <= Duration::from_secs(10)),
        other => panic!("{other:?}"),
    }
    h.starts();
    h.advance(Duration::from_secs(5));
    h.fail("a", 2, FailureKind::Exit);
    h.starts();
    assert_eq!(h.s.finished(), Some("failed"));
}

#[test]
fn global_max_parallel_limits_starts() {
    let mut h = Harness::new(
        "
mission: wide
phases:
  a: { uses: builtin/noop }
  b: { uses: builtin/noop }
  c: { uses: builtin/noop }
",
        2,
    );
    assert_eq!(Harness::names(&h.starts()), vec!["a", "b"]);
    assert!(h.starts().is_empty());
    h.succeed("b", 1);
    assert_eq!(Harness::names(&h.starts()), vec!["c"]);
}

#[test]
fn for_each_expands_with_sibling_dependencies_and_max_parallel() {
    let mut h = Harness::new(
        "
mission: fan
phases:
  plan: { uses: builtin/noop, outputs: { tasks: { path: tasks.json } } }
  implement:
    needs: [plan]
    uses: builtin/noop
    for_each: outputs.plan.tasks
    max_parallel: 2
  check: { uses: builtin/noop, needs: [implement] }
",
        8,
    );
    h.starts();
    let mut values = std::collections::BTreeMap::new();
    values.insert(
        "tasks".to_string(),
        serde_json::json!([
            {"id": "wp-1"},
            {"id": "wp-2", "depends_on": ["wp-1"]},
            {"id": "wp-3"},
            {"id": "wp-4"},
        ]),
    );
    h.succeed_with("plan", 1, values);
    assert_eq!(
        Harness::names(&h.starts()),
        vec!["implement[wp-1]", "implement[wp-3]"]
    );
    h.succeed("implement[wp-1]", 1);
    assert_eq!(Harness::names(&h.starts()), vec!["implement[wp-2]"]);
    h.succeed("implement[wp-3]", 1);
    assert_eq!(Harness::names(&h.starts()), vec!["implement[wp-4]"]);
    h.succeed("implement[wp-2]", 1);
    h.succeed("implement[wp-4]", 1);
    assert_eq!(Harness::names(&h.starts()), vec!["check"]);
    assert_eq!(h.s.state("implement"), Some(&State::Succeeded));
    assert_eq!(
        h.s.item_of("implement[wp-2]"),
        Some(&serde_json::json!({"id": "wp-2", "depends_on": ["wp-1"]}))
    );
}

/// A slot freed by a package that succeeded goes to the package that waited for it, by plan
/// order, not to one queued behind it: the starts wait until the records that change what is
/// ready are applied, so a replay of the log decides exactly what the engine did.
#[test]
fn starts_wait_for_the_records_decided_with_them() {
    let mut h = Harness::new(
        "
mission: fan
phases:
  fan:
    uses: builtin/noop
    for_each: [{id: a}, {id: b, depends_on: [a]}, {id: c}]
    max_parallel: 1
",
        8,
    );
    assert_eq!(Harness::names(&h.starts()), vec!["fan[a]"]);
    h.succeed("fan[a]", 1);
    let actions = h.s.decide();
    assert!(
        matches!(&actions[..], [Action::Record(EventData::PhaseSucceeded(s))] if s.phase == "fan[a]"),
        "{actions:#?}"
    );
    assert_eq!(Harness::names(&h.starts()), vec!["fan[b]"]);
    h.succeed("fan[b]", 1);
    assert_eq!(Harness::names(&h.starts()), vec!["fan[c]"]);
}

#[test]
fn for_each_refuses_cyclic_items() {
    let mut h = Harness::new(
        "
mission: fan
phases:
  implement:
    uses: builtin/noop
    for_each: [{id: a, depends_on: [b]}, {id: b, depends_on: [a]}]
",
        8,
    );
    assert!(h.starts().is_empty());
    match h.log.iter().find_map(|e| match &e.data {
        EventData::PhaseFailed(f) => Some(f.clone()),
        _ => None,
    }) {
        Some(f) => {
            assert_eq!(f.kind, FailureKind::Expression);
            assert!(f.message.contains("cycle"), "{}", f.message);
        }
        None => panic!("no phase.failed"),
    }
}

#[test]
fn a_rework_loop_reruns_the_loop_and_is_bounded() {
    let mut h = Harness::new(
        "
mission: loop
phases:
  plan: { uses: builtin/noop }
  implement: { uses: builtin/noop, needs: [plan] }
  check:
    uses: builtin/noop
    needs: [implement]
    on_failure: { goto: implement, max_loops: 2 }
",
        4,
    );
    h.starts();
    h.succeed("plan", 1);
    h.starts();
    h.succeed("implement", 1);
    h.starts();
    h.fail("check", 1, FailureKind::Exit);
    assert_eq!(h.starts(), vec![("implement".to_string(), 2)]);
    match h.log.iter().rev().find_map(|e| match &e.data {
        EventData::LoopStarted(l) => Some(l.clone()),
        _ => None,
    }) {
        Some(l) => {
            assert_eq!(l.iteration, 1);
            assert_eq!(l.reset, vec!["implement".to_string(), "check".to_string()]);
        }
        None => panic!("no loop.started"),
    }
    h.succeed("implement", 2);
    assert_eq!(h.starts(), vec![("check".to_string(), 2)]);
    h.fail("check", 2, FailureKind::Exit);
    assert_eq!(h.starts(), vec![("implement".to_string(), 3)]);
    h.succeed("implement", 3);
    assert_eq!(h.starts(), vec![("check".to_string(), 3)]);
    h.fail("check", 3, FailureKind::Exit);
    assert!(h.starts().is_empty(), "max_loops reached");
    assert_eq!(h.s.finished(), Some("failed"));
    assert_eq!(
        h.types().iter().filter(|t| **t == "loop.started").count(),
        2
    );
}

/// A check that timed out, or whose command cannot run, is not the work's fault: the run
/// fails once instead of sending the work back.
#[test]
fn a_timeout_or_an_unavailable_program_starts_no_rework_loop() {
    for kind in [FailureKind::Timeout, FailureKind::Unavailable] {
        let mut h = Harness::new(
            "
mission: loop
phases:
  implement: { uses: builtin/noop }
  check:
    uses: builtin/noop
    needs: [implement]
    retry: { max_attempts: 1 }
    on_failure: { goto: implement, max_loops: 2 }
",
            4,
        );
        h.starts();
        h.succeed("implement", 1);
        h.starts();
        h.fail("check", 1, kind);
        assert!(h.starts().is_empty(), "{kind:?}");
        assert_eq!(h.s.finished(), Some("failed"), "{kind:?}");
        assert!(!h.types().contains(&"loop.started"), "{kind:?}");
    }
}

#[test]
fn cancel_stops_running_attempts_and_resume_reruns_them() {
    let mut h = Harness::new(CHAIN, 4);
    h.starts();
    h.record(EventData::CancelRequested(CancelRequested { reason: None }));
    assert_eq!(
        h.effects(),
        vec![Action::Cancel {
            phase: "a".into(),
            kind: FailureKind::Canceled
        }]
    );
    assert!(h.effects().is_empty(), "cancel is asked once");
    h.fail("a", 1, FailureKind::Canceled);
    h.effects();
    assert_eq!(h.s.finished(), Some("canceled"));
    h.record(EventData::RunResumed(RunResumed {
        interrupted: vec![],
        upgraded: false,
        mission_digest: None,
        mission_text: None,
    }));
    assert_eq!(h.starts(), vec![("a".to_string(), 2)]);
}

#[test]
fn interrupted_attempts_are_retried_without_using_up_retries() {
    let mut h = Harness::new(CHAIN, 4);
    h.starts();
    // The engine died; a new one folds the log and records the interruption.
    let mut fresh = Scheduler::new(h.s.plan().clone(), Options { max_parallel: 4 });
    for e in &h.log {
        fresh.apply(e);
    }
    assert_eq!(fresh.running(), vec![("a".to_string(), 1)]);
    h.s = fresh;
    h.record(EventData::RunResumed(RunResumed {
        interrupted: vec!["a".into()],
        upgraded: false,
        mission_digest: None,
        mission_text: None,
    }));
    h.fail("a", 1, FailureKind::Interrupted);
    assert_eq!(h.starts(), vec![("a".to_string(), 2)]);
    h.succeed("a", 2);
    assert_eq!(h.starts(), vec![("b".to_string(), 1)]);
}

#[test]
fn replaying_a_log_reaches_the_same_state_without_new_decisions() {
    let mut h = Harness::new(GATED, 4);
    h.starts();
    h.succeed("build", 1);
    h.succeed("side", 1);
    h.effects();
    let mut replayed = Scheduler::new(h.s.plan().clone(), Options { max_parallel: 4 });
    for e in &h.log {
        replayed.apply(e);
    }
    let live: Vec<(String, String)> =
        h.s.instances()
            .map(|(n, s, _)| (n.to_string(), s.name().to_string()))
            .collect();
    let again: Vec<(String, String)> = replayed
        .instances()
        .map(|(n, s, _)| (n.to_string(), s.name().to_string()))
        .collect();
    assert_eq!(live, again);
    let records: Vec<Action> = replayed
        .decide()
        .into_iter()
        .filter(|a| matches!(a, Action::Record(_)))
        .collect();
    assert!(records.is_empty(), "{records:?}");
}

#[test]
fn for_each_fails_the_phase_on_an_id_that_could_leave_the_store() {
    let mut h = Harness::new(
        "
mission: fan
phases:
  plan: { uses: builtin/noop, outputs: { tasks: { path: tasks.json } } }
  implement:
    needs: [plan]
    uses: builtin/noop
    for_each: outputs.plan.tasks
",
        8,
    );
    h.starts();
    let mut values = std::collections::BTreeMap::new();
    values.insert(
        "tasks".to_string(),
        serde_json::json!([{"id": "wp-1"}, {"id": "t/../../../../../outside/x"}]),
    );
    h.succeed_with("plan", 1, values);
    assert!(h.starts().is_empty());
    assert!(!h.types().contains(&"phase.expanded"), "{:?}", h.types());
    match h.log.iter().find_map(|e| match &e.data {
        EventData::PhaseFailed(f) => Some(f.clone()),
        _ => None,
    }) {
        Some(f) => {
            assert_eq!(
                (f.phase.as_str(), f.kind),
                ("implement", FailureKind::Expression)
            );
            assert!(
                f.message
                    .starts_with("item 1 has the id `t/../../../../../outside/x`"),
                "{}",
                f.message
            );
        }
        None => panic!("no phase.failed"),
    }
    assert_eq!(h.types().last(), Some(&"run.failed"));
}

#[test]
fn a_retry_sees_the_problems_of_the_attempt_before_it() {
    let mut h = Harness::new(
        "
mission: retry
phases:
  a:
    uses: builtin/noop
    retry: { max_attempts: 3, backoff: { initial: 1s } }
",
        4,
    );
    assert_eq!(h.starts(), vec![("a".to_string(), 1)]);
    let first = h.s.context("a", 1);
    assert_eq!(first["attempt"]["number"], 1);
    assert_eq!(first["attempt"]["previous_errors"], serde_json::json!([]));
    h.record(EventData::AttemptFailed(AttemptFailed {
        files: Vec::new(),
        phase: "a".into(),
        attempt: 1,
        kind: FailureKind::OutputInvalid,
        message: "output `tasks` is not a valid plan (2 problems):\n- one\n- two".into(),
        exit_code: None,
        duration_ms: 1,
        agent: None,
        usage: None,
    }));
    h.effects();
    h.s.retry_due("a");
    assert_eq!(h.starts(), vec![("a".to_string(), 2)]);
    let second = h.s.context("a", 2);
    assert_eq!(
        second["attempt"]["previous_errors"],
        serde_json::json!(["one", "two"])
    );
    h.fail("a", 2, FailureKind::Exit);
    h.effects();
    h.s.retry_due("a");
    h.starts();
    assert_eq!(
        h.s.context("a", 3)["attempt"]["previous_errors"],
        serde_json::json!(["exit: boom"])
    );
}

/// A loop sends back the phase it names with what failed: a plain phase gets the errors, and
/// a fan-out sent back whole passes them to every work package it expands again.
#[test]
fn the_phase_a_loop_sends_back_sees_what_failed() {
    for (goto, redone) in [("fix", vec!["fix"]), ("fan", vec!["fan[a]", "fan[b]"])] {
        let yaml = format!(
            "
mission: loops
phases:
  fix: {{ uses: builtin/noop }}
  fan: {{ uses: builtin/noop, needs: [fix], for_each: [{{id: a}}, {{id: b}}] }}
  check:
    needs: [fan]
    uses: builtin/noop
    on_failure: {{ goto: {goto}, max_loops: 1 }}
"
        );
        let mut h = Harness::new(&yaml, 4);
        h.starts();
        h.succeed("fix", 1);
        h.starts();
        h.succeed("fan[a]", 1);
        h.succeed("fan[b]", 1);
        h.starts();
        h.record(EventData::AttemptFailed(AttemptFailed {
            files: Vec::new(),
            phase: "check".into(),
            attempt: 1,
            kind: FailureKind::Checks,
            message: "checks failed:\n- a.rs:1:1: bad".into(),
            exit_code: Some(1),
            duration_ms: 1,
            agent: None,
            usage: None,
        }));
        assert_eq!(Harness::names(&h.starts()), redone, "{goto}");
        for name in &redone {
            assert_eq!(
                h.s.context(name, 2)["attempt"]["previous_errors"],
                serde_json::json!(["a.rs:1:1: bad"]),
                "{name}"
            );
        }
    }
}

/// `outputs` and `run.complexity` are kept between events and rebuilt only when recorded
/// values change: what a context shows must follow every value recorded after it was read.
#[test]
fn the_context_follows_values_recorded_after_it_was_read() {
    let mut h = Harness::new(
        "
mission: ctx
phases:
  fan: { uses: builtin/noop, for_each: 'range(0, 3)' }
",
        4,
    );
    assert_eq!(
        Harness::names(&h.starts()),
        vec!["fan[0]", "fan[1]", "fan[2]"]
    );
    let before = h.s.context("fan[1]", 1);
    assert_eq!(before["outputs"], serde_json::json!({}));
    assert_eq!(before["run"]["complexity"], serde_json::json!(0.0));
    let mut values = std::collections::BTreeMap::new();
    values.insert("size".to_string(), serde_json::json!({"complexity": 0.7}));
    h.succeed_with("fan[0]", 1, values);
    // Read while `fan[0]` settles: not an output yet.
    assert_eq!(h.s.context("fan[1]", 1)["outputs"], serde_json::json!({}));
    h.starts();
    let after = h.s.context("fan[1]", 1);
    assert_eq!(
        after["outputs"],
        serde_json::json!({"fan[0]": {"size": {"complexity": 0.7}}})
    );
    assert_eq!(after["run"]["complexity"], serde_json::json!(0.7));
    // A child without values leaves them as they were.
    h.succeed("fan[1]", 1);
    h.starts();
    assert_eq!(h.s.context("fan[2]", 1)["outputs"], after["outputs"]);
}

/// A gate between a build and a deploy, beside a phase that needs neither.
const GATED: &str = "
mission: gated
phases:
  build: { uses: builtin/noop }
  gate:
    needs: [build]
    approval: { reason: ship it?, timeout: 1h, on_timeout: reject }
  deploy: { uses: builtin/noop, needs: [gate] }
  side: { uses: builtin/noop }
";

mod gates;
