//! Replay equivalence, as a property: drive the scheduler like the engine does (records its
//! decisions, starts attempts, sets timers, cancels, crashes and resumes) with outcomes drawn
//! from a fixed seed, over every fixture mission and a generated set; then fold every prefix
//! of the log it recorded into a fresh scheduler and check that it holds the same whole state
//! (`Scheduler::snapshot`: attempts, outputs, timers' origins, loop counters, flags) and decides
//! the same next events and attempt starts as the live scheduler did at that point.
//!
//! More runs: `SPECTACULAR_REPLAY_RUNS=200 cargo test --test it replay::`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use spectacular::model::FailureKind;
use spectacular::plan::Plan;
use spectacular::record::event::*;
use spectacular::record::Event;
use spectacular::schedule::{Action, Options, Scheduler, State};

use crate::support::{diff, validate_bytes, validate_file};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the live scheduler held when the driver asked it what to do.
struct Decision {
    /// Events applied before it.
    at: usize,
    now: SystemTime,
    /// Instances whose retry timer had fired (not an event: the executor's input).
    due: Vec<String>,
    snapshot: String,
    /// The events to record and the attempts to start it asked for.
    actions: Vec<Action>,
}

enum Timer {
    Retry(String),
    Approval,
}

/// Plays the engine around a scheduler: effects are simulated, decisions are the real ones.
struct Driver {
    plan: Arc<Plan>,
    s: Scheduler,
    rng: Rng,
    clock_ms: u64,
    log: Vec<Event>,
    /// The live scheduler's snapshot (and fired retry timers) after each event.
    after: Vec<(String, Vec<String>)>,
    decisions: Vec<Decision>,
    running: Vec<(String, u32)>,
    to_cancel: Vec<String>,
    timers: Vec<(u64, Timer)>,
    crashes_left: u32,
    cancels_left: u32,
}

fn is_kept(action: &Action) -> bool {
    matches!(action, Action::Record(_) | Action::Start { .. })
}

fn due(s: &Scheduler) -> Vec<String> {
    s.instances()
        .filter(|(_, state, _)| **state == State::RetryDue)
        .map(|(name, _, _)| name.to_string())
        .collect()
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(ms)
}

impl Driver {
    fn new(plan: Arc<Plan>, seed: u64) -> Driver {
        let s = Scheduler::new(plan.clone(), Options { max_parallel: 1 });
        Driver {
            plan,
            s,
            rng: Rng::new(seed),
            clock_ms: 0,
            log: Vec::new(),
            after: Vec::new(),
            decisions: Vec::new(),
            running: Vec::new(),
            to_cancel: Vec::new(),
            timers: Vec::new(),
            crashes_left: 2,
            cancels_left: 1,
        }
    }

    fn record(&mut self, data: EventData) {
        let seq = self.log.len() as u64 + 1;
        let event = Event {
            event_id: format!("e{seq}"),
            schema: 1,
            run_id: "run".into(),
            seq,
            ts: humantime::format_rfc3339_millis(at(self.clock_ms)).to_string(),
            causation_id: None,
            actor: "engine".into(),
            data,
        };
        self.s.apply(&event);
        self.log.push(event);
        self.after.push((self.s.snapshot(), due(&self.s)));
    }

    fn values(&mut self, phase: &str) -> std::collections::BTreeMap<String, Value> {
        let outputs: Vec<String> = self
            .s
            .phase_of(phase)
            .map(|p| p.outputs.keys().cloned().collect())
            .unwrap_or_default();
        let mut values = std::collections::BTreeMap::new();
        for name in outputs {
            let value = if name == "tasks" {
                let n = self.rng.below(4);
                Value::Array(
                    (0..n)
                        .map(|i| {
                            if i > 0 && self.rng.chance(50) {
                                json!({ "id": format!("t{i}"), "depends_on": [format!("t{}", i - 1)] })
                            } else {
                                json!({ "id": format!("t{i}") })
                            }
                        })
                        .collect(),
                )
            } else {
                json!({ "complexity": self.rng.below(100) as f64 / 100.0, "path": format!("{name}.out") })
            };
            values.insert(name, value);
        }
        values
    }

    fn finish_attempt(&mut self, index: usize) {
        let (phase, attempt) = self.running.remove(index);
        self.clock_ms += 1 + self.rng.below(2000);
        if let Some(i) = self.to_cancel.iter().position(|p| *p == phase) {
            self.to_cancel.remove(i);
            self.record(failed(&phase, attempt, FailureKind::Canceled));
        } else if self.rng.chance(70) {
            let values = self.values(&phase);
            self.record(EventData::AttemptSucceeded(AttemptSucceeded {
                git: None,
                integration_head: None,
                phase,
                attempt,
                exit_code: Some(0),
                duration_ms: 1,
                agent: None,
                usage: None,
                artifacts: Default::default(),
                values,
                result: None,
            }));
        } else {
            let kinds = [
                FailureKind::Exit,
                FailureKind::Timeout,
                FailureKind::OutputInvalid,
                FailureKind::Spawn,
                FailureKind::Unavailable,
            ];
            let kind = kinds[self.rng.below(kinds.len() as u64) as usize];
            self.record(failed(&phase, attempt, kind));
        }
    }

    /// The engine dies and a new one takes over, as `Engine::resume` does.
    fn crash(&mut self) {
        let mut fresh = Scheduler::new(self.plan.clone(), Options { max_parallel: 1 });
        for e in &self.log {
            fresh.apply(e);
        }
        let interrupted = fresh.running();
        self.s = fresh;
        self.running.clear();
        self.timers.clear();
        self.to_cancel.clear();
        self.record(resumed(
            interrupted.iter().map(|(p, _)| p.clone()).collect(),
        ));
        for (phase, attempt) in interrupted {
            self.record(failed(&phase, attempt, FailureKind::Interrupted));
        }
    }

    /// Let the world do one thing: an attempt ends, a timer fires, a person decides, the user
    /// cancels, or the engine crashes. Returns false when nothing can happen.
    fn world(&mut self) -> bool {
        let waiting: Vec<String> = self
            .s
            .instances()
            .filter(|(_, state, _)| **state == State::Waiting)
            .map(|(name, _, _)| name.to_string())
            .collect();
        if self.crashes_left > 0 && !self.running.is_empty() && self.rng.chance(6) {
            self.crashes_left -= 1;
            self.crash();
            return true;
        }
        if self.cancels_left > 0 && !self.running.is_empty() && self.rng.chance(4) {
            self.cancels_left -= 1;
            self.record(EventData::CancelRequested(CancelRequested { reason: None }));
            return true;
        }
        let mut choices = Vec::new();
        if !self.running.is_empty() {
            choices.extend([0, 0, 0]);
        }
        if !self.timers.is_empty() {
            choices.push(1);
        }
        if !waiting.is_empty() {
            choices.push(2);
        }
        if choices.is_empty() {
            return false;
        }
        match choices[self.rng.below(choices.len() as u64) as usize] {
            0 => {
                let i = self.rng.below(self.running.len() as u64) as usize;
                self.finish_attempt(i);
            }
            1 => {
                let first = (0..self.timers.len())
                    .min_by_key(|&i| self.timers[i].0)
                    .unwrap();
                let (when, timer) = self.timers.remove(first);
                self.clock_ms = self.clock_ms.max(when);
                if let Timer::Retry(phase) = timer {
                    self.s.retry_due(&phase);
                }
            }
            _ => {
                let phase = waiting[self.rng.below(waiting.len() as u64) as usize].clone();
                let suspended = self.s.is_suspended();
                self.clock_ms += 1 + self.rng.below(5000);
                let approved = self.rng.chance(70);
                self.record(EventData::ApprovalDecided(ApprovalDecided {
                    phase,
                    approved,
                    comment: Some("decided by the test".into()),
                    timed_out: false,
                }));
                if suspended {
                    // `approve --resume`: a new engine continues the run.
                    self.record(resumed(Vec::new()));
                }
            }
        }
        true
    }

    fn drive(&mut self, max_parallel: u32) {
        let inputs = [
            ("flag", json!(self.rng.chance(50))),
            ("dry_run", json!(self.rng.chance(50))),
            ("strict", json!(self.rng.chance(50))),
            ("version", json!("1.2.3")),
            ("spec", json!("spec.md")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        self.record(EventData::RunStarted(RunStarted {
            mission: self.plan.mission.id.clone(),
            mission_source: "mission.yaml".into(),
            mission_digest: "sha256:0".into(),
            mission_text: String::new(),
            files: Default::default(),
            inputs,
            max_parallel,
            engine_version: "test".into(),
            git_base: None,
        }));
        let mut resumes_left = 2;
        for _ in 0..20_000 {
            self.s.set_now(at(self.clock_ms));
            let snapshot = self.s.snapshot();
            let due = due(&self.s);
            let actions = self.s.decide();
            self.decisions.push(Decision {
                at: self.log.len(),
                now: at(self.clock_ms),
                due,
                snapshot,
                actions: actions.iter().filter(|a| is_kept(a)).cloned().collect(),
            });
            let mut progressed = false;
            for action in actions {
                match action {
                    Action::Record(data) => {
                        self.record(data);
                        progressed = true;
                    }
                    Action::Start { phase, attempt, .. } => {
                        self.record(EventData::AttemptStarted(AttemptStarted {
                            phase: phase.clone(),
                            attempt,
                            workdir: ".".into(),
                            argv: None,
                            prompt_digest: None,
                            timeout_ms: None,
                            reserved_usd: None,
                        }));
                        self.running.push((phase, attempt));
                        progressed = true;
                    }
                    Action::RetryAfter { phase, delay } => self.timers.push((
                        self.clock_ms + delay.as_millis() as u64,
                        Timer::Retry(phase),
                    )),
                    Action::ApprovalTimer { after, .. } => self
                        .timers
                        .push((self.clock_ms + after.as_millis() as u64, Timer::Approval)),
                    Action::Cancel { phase, .. } => self.to_cancel.push(phase),
                }
            }
            if progressed {
                self.clock_ms += 1;
                continue;
            }
            match self.s.finished() {
                Some("canceled") if resumes_left > 0 => {
                    resumes_left -= 1;
                    self.timers.clear();
                    self.record(resumed(Vec::new()));
                    continue;
                }
                Some(_) => {
                    let bug = self.log.iter().find_map(|e| match &e.data {
                        EventData::RunFailed(f) => f.reason.clone().filter(|r| r.contains("bug")),
                        _ => None,
                    });
                    assert!(bug.is_none(), "the scheduler gave up: {bug:?}");
                    return;
                }
                None => {}
            }
            if !self.world() {
                panic!(
                    "the run is stuck: nothing runs, nothing waits, and it has not ended\n{:#?}",
                    self.log.iter().map(|e| &e.data).collect::<Vec<_>>()
                );
            }
        }
        panic!("the run did not end in 20,000 steps");
    }

    /// The property: every prefix of the log, folded, is the live state; at every point the
    /// driver asked, it decides what the live scheduler decided.
    fn check(&self, name: &str) {
        // One scheduler folds the log event by event: after event i it *is* the fold of
        // events 1..=i. Where a retry timer had fired, a fresh fold gets it too.
        let mut incremental = Scheduler::new(self.plan.clone(), Options { max_parallel: 1 });
        for (i, (snapshot, due)) in self.after.iter().enumerate() {
            incremental.apply(&self.log[i]);
            let again = if due.is_empty() {
                incremental.snapshot()
            } else {
                fold(&self.plan, &self.log[..=i], due, None).snapshot()
            };
            assert!(
                again == *snapshot,
                "{name}: the fold of events 1..={} differs from the live state\n{}",
                i + 1,
                diff(snapshot, &again)
            );
        }
        for d in &self.decisions {
            let mut folded = fold(&self.plan, &self.log[..d.at], &d.due, Some(d.now));
            let again = folded.snapshot();
            assert!(
                again == d.snapshot,
                "{name}: the fold of events 1..={} differs from the live state\n{}",
                d.at,
                diff(&d.snapshot, &again)
            );
            let actions: Vec<Action> = folded.decide().into_iter().filter(is_kept).collect();
            assert_eq!(
                actions, d.actions,
                "{name}: after events 1..={}, the fold decides differently",
                d.at
            );
        }
    }
}

fn failed(phase: &str, attempt: u32, kind: FailureKind) -> EventData {
    EventData::AttemptFailed(AttemptFailed {
        files: Vec::new(),
        phase: phase.into(),
        attempt,
        kind,
        message: format!("{} by the test", kind.as_str()),
        exit_code: None,
        duration_ms: 1,
        agent: None,
        usage: None,
    })
}

fn resumed(interrupted: Vec<String>) -> EventData {
    EventData::RunResumed(RunResumed {
        interrupted,
        upgraded: false,
        mission_digest: None,
        mission_text: None,
    })
}

/// A fresh scheduler that folded `events`, was told the time, and whose fired retry timers
/// were handed to it, as a resumed engine would.
fn fold(plan: &Arc<Plan>, events: &[Event], due: &[String], now: Option<SystemTime>) -> Scheduler {
    let mut s = Scheduler::new(plan.clone(), Options { max_parallel: 1 });
    for e in events {
        s.apply(e);
    }
    if let Some(now) = now {
        s.set_now(now);
    }
    for phase in due {
        s.retry_due(phase);
    }
    s
}

fn plan_of(validated: spectacular::validate::Validated, name: &str) -> Arc<Plan> {
    let mission = validated.mission.unwrap_or_else(|| {
        panic!(
            "`{name}` does not validate:\n{}",
            spectacular::diag::render_text(&validated.diagnostics, Default::default())
        )
    });
    Arc::new(spectacular::plan::plan(mission))
}

fn runs_per_mission() -> u64 {
    std::env::var("SPECTACULAR_REPLAY_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2)
}

/// Every mission the project ships (`missions/`, `examples/`) or keeps as a valid fixture.
const FIXTURE_MISSIONS: &[&str] = &[
    "missions/bugfix/mission.yaml",
    "missions/documentation/mission.yaml",
    "missions/research/mission.yaml",
    "missions/software-dev/mission.yaml",
    "examples/quickstart/mission.yaml",
    "tests/fixtures/valid/approvals/mission.yaml",
    "tests/fixtures/valid/fan-out/mission.yaml",
    "tests/fixtures/valid/minimal/mission.yaml",
];

#[test]
fn the_mission_list_is_every_shipped_mission_and_valid_fixture() {
    let root = crate::support::repo_root();
    let mut found = 0;
    for parent in ["missions", "examples", "tests/fixtures/valid"] {
        for dir in std::fs::read_dir(root.join(parent)).unwrap() {
            let path = dir.unwrap().path().join("mission.yaml");
            if !path.is_file() {
                continue;
            }
            let relative = crate::support::relative(&path);
            assert!(
                FIXTURE_MISSIONS.contains(&relative.as_str()),
                "add `{relative}` to FIXTURE_MISSIONS"
            );
            found += 1;
        }
    }
    assert_eq!(found, FIXTURE_MISSIONS.len());
}

#[test]
fn every_prefix_of_a_fixture_mission_run_folds_to_the_same_state_and_decisions() {
    for (m, file) in FIXTURE_MISSIONS.iter().enumerate() {
        let plan = plan_of(validate_file(file), file);
        for run in 0..runs_per_mission() {
            let seed = 1000 * m as u64 + run;
            let mut driver = Driver::new(plan.clone(), seed);
            driver.drive(1 + (seed % 4) as u32);
            driver.check(&format!("{file} (seed {seed})"));
        }
    }
}

/// A random mission: needs, approval gates (some with timeouts), `for_each` over items or
/// over an upstream output, retries, conditions, `always`, `continue_on_error` and rework
/// loops.
fn generate(rng: &mut Rng) -> String {
    let n = 3 + rng.below(7);
    let mut y = String::from(
        "mission: generated\ninputs:\n  flag: { type: bool, default: false }\nphases:\n",
    );
    let mut with_tasks: Vec<usize> = Vec::new();
    for i in 0..n as usize {
        let needs: Vec<usize> = (0..i).filter(|_| rng.chance(35)).collect();
        let mut fields: Vec<String> = Vec::new();
        if !needs.is_empty() {
            let names: Vec<String> = needs.iter().map(|j| format!("p{j}")).collect();
            fields.push(format!("needs: [{}]", names.join(", ")));
        }
        if rng.chance(12) {
            let timeout = if rng.chance(50) {
                let on = if rng.chance(50) { "approve" } else { "reject" };
                format!(", timeout: {}s, on_timeout: {on}", 1 + rng.below(5))
            } else {
                String::new()
            };
            fields.push(format!("approval: {{ reason: go?{timeout} }}"));
        } else {
            fields.push("run: [work]".into());
            let upstream: Vec<usize> = needs
                .iter()
                .copied()
                .filter(|j| with_tasks.contains(j))
                .collect();
            if rng.chance(25) {
                if !upstream.is_empty() && rng.chance(60) {
                    let j = upstream[rng.below(upstream.len() as u64) as usize];
                    fields.push(format!("for_each: outputs.p{j}.tasks"));
                } else {
                    fields.push(
                        "for_each: [{ id: a }, { id: b, depends_on: [a] }, { id: c }]".into(),
                    );
                }
                if rng.chance(50) {
                    fields.push(format!("max_parallel: {}", 1 + rng.below(2)));
                }
            } else if rng.chance(40) {
                fields.push("outputs: { tasks: { path: tasks.json } }".into());
                with_tasks.push(i);
            }
            if rng.chance(40) {
                fields.push(format!(
                    "retry: {{ max_attempts: {}, backoff: {{ initial: 1s, factor: 2, max: 4s }} }}",
                    1 + rng.below(3)
                ));
            }
            if !needs.is_empty() && rng.chance(35) {
                let goto = needs[rng.below(needs.len() as u64) as usize];
                fields.push(format!(
                    "on_failure: {{ goto: p{goto}, max_loops: {} }}",
                    1 + rng.below(2)
                ));
            }
        }
        if rng.chance(20) {
            let condition = if rng.chance(50) {
                "inputs.flag == true"
            } else {
                "run.complexity >= 0.5"
            };
            fields.push(format!("if: {condition}"));
        }
        if rng.chance(10) {
            fields.push("always: true".into());
        }
        if rng.chance(10) {
            fields.push("continue_on_error: true".into());
        }
        y.push_str(&format!("  p{i}: {{ {} }}\n", fields.join(", ")));
    }
    y
}

#[test]
fn every_prefix_of_a_generated_mission_run_folds_to_the_same_state_and_decisions() {
    let missions = 6 * runs_per_mission();
    for seed in 0..missions {
        let mut rng = Rng::new(0xC0FFEE + seed);
        let text = generate(&mut rng);
        let name = format!("generated mission {seed}");
        let plan = plan_of(validate_bytes("generated.yaml", text.as_bytes()), &text);
        let mut driver = Driver::new(plan, seed);
        driver.drive(1 + (seed % 3) as u32);
        driver.check(&format!("{name}:\n{text}"));
    }
}

// ---------------------------------------------------------------- logs the engine recorded

/// The same property over a log the real engine recorded (processes, crashes, resumes): at
/// every point where the engine recorded one of the scheduler's decisions, or started an
/// attempt, the fold of everything before it decides that too.
pub(crate) fn assert_the_log_replays(plan: &Arc<Plan>, events: &[Event]) {
    const DECISIONS: &[&str] = &[
        "phase.ready",
        "phase.skipped",
        "phase.expanded",
        "phase.succeeded",
        "phase.failed",
        "loop.started",
        "run.suspended",
        "run.succeeded",
        "run.failed",
        "run.canceled",
    ];
    let mut checked = 0;
    for (i, event) in events.iter().enumerate() {
        let kind = event.data.type_name();
        let gate = |phase: &str| plan.phases().any(|p| p.id == phase && p.is_approval());
        let decided = DECISIONS.contains(&kind)
            || matches!(&event.data, EventData::ApprovalRequested(r) if gate(&r.phase))
            || matches!(&event.data, EventData::ApprovalDecided(d) if d.timed_out);
        let started = match &event.data {
            EventData::AttemptStarted(s) => Some((s.phase.clone(), s.attempt)),
            _ => None,
        };
        if !decided && started.is_none() {
            continue;
        }
        let now = humantime::parse_rfc3339_weak(&event.ts).unwrap();
        let mut folded = fold(plan, &events[..i], &[], Some(now));
        if let Some((phase, _)) = &started {
            // A retry waits for a timer, which is not an event: it had fired.
            folded.retry_due(phase);
        }
        let actions = folded.decide();
        let found = match &started {
            Some((phase, attempt)) => actions.iter().any(|a| {
                matches!(a, Action::Start { phase: p, attempt: n, .. } if p == phase && n == attempt)
            }),
            None => actions.contains(&Action::Record(event.data.clone())),
        };
        assert!(
            found,
            "event {} ({kind}) of the recorded log: the fold of the events before it decides \
             {actions:#?}\ninstead of {:#?}",
            event.seq, event.data
        );
        checked += 1;
    }
    assert!(checked > 0, "the log holds no decision to check");
}

/// Runs of the binary whose every decision the fold must reproduce: retries, a `for_each`
/// with sibling dependencies, a rework loop, a condition, a gate decided by its timeout on
/// resume, and a failure that skips its dependents while an `always` phase runs.
#[test]
fn every_decision_the_engine_recorded_is_what_the_fold_of_the_log_before_it_decides() {
    let mission = "
mission: recorded
inputs:
  flag: { type: bool, default: false }
phases:
  flaky:
    shell: 'if [ -f marker ]; then exit 0; else touch marker; exit 3; fi'
    workspace: repo
    retry: { max_attempts: 3, backoff: { initial: 10ms, max: 10ms } }
  fan:
    needs: [flaky]
    for_each: [{ id: a }, { id: b, depends_on: [a] }, { id: c }]
    max_parallel: 2
    run: [sh, -c, 'true']
  implement: { shell: 'echo attempt >> attempts.log', workspace: repo, needs: [fan] }
  check:
    needs: [implement]
    shell: 'if [ -f fixed ]; then exit 0; else touch fixed; exit 1; fi'
    workspace: repo
    on_failure: { goto: implement, max_loops: 2 }
  skipped: { uses: builtin/noop, needs: [check], if: inputs.flag == true }
  gate: { needs: [check], approval: { reason: go?, timeout: 1s, on_timeout: approve } }
  broken: { uses: builtin/fail, needs: [gate] }
  never: { uses: builtin/noop, needs: [broken] }
  report: { uses: builtin/report, needs: [never], always: true }
";
    let p = crate::runtime::Project::new(mission);
    let out = p.run(&["run", "mission.yaml", "--max-parallel", "3"]);
    assert_eq!(
        crate::runtime::code(&out),
        3,
        "{}",
        crate::runtime::text(&out)
    );
    poll_until_past(&p.events(), Duration::from_secs(1));
    let out = p.run(&["resume", &p.run_id()]);
    assert_eq!(
        crate::runtime::code(&out),
        1,
        "{}",
        crate::runtime::text(&out)
    );
    let events = p.events();
    for kind in [
        "loop.started",
        "phase.expanded",
        "approval.decided",
        "run.resumed",
        "run.failed",
    ] {
        assert!(
            events.iter().any(|e| e.data.type_name() == kind),
            "the run recorded no {kind}"
        );
    }
    let plan = plan_of(validate_bytes("mission.yaml", mission.as_bytes()), mission);
    assert_the_log_replays(&plan, &events);
}

/// Wait until the wall clock is `wait` past the last event (a gate's timeout is measured
/// against the time of the events, which a resumed engine reads from the clock).
fn poll_until_past(events: &[Event], wait: Duration) {
    let last = humantime::parse_rfc3339_weak(&events.last().unwrap().ts).unwrap();
    while SystemTime::now() < last + wait {
        std::thread::sleep(Duration::from_millis(10));
    }
}
