//! Schedule: the pure state machine of a run. Events go in ([`Scheduler::apply`]); actions
//! come out ([`Scheduler::decide`]): events to record (the scheduler's own decisions), attempts
//! to start, timers to set, attempts to cancel. No I/O, no clock reads, no randomness: time is
//! the `ts` of the events applied, `if` and `for_each` are evaluated (sandboxed Rhai) on
//! recorded facts only, so replaying a log gives the same decisions.

mod facts;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::model::{FailureKind, ForEach, OnTimeout, PhaseKind};
use crate::plan::{Plan, PlannedPhase};
use crate::record::event::{
    ApprovalDecided, ApprovalRequested, Child, EventData, LoopStarted, PhaseExpanded, PhaseFailed,
    PhaseRef, PhaseSkipped, PhaseSucceeded, RunFinished, RunSuspended, SkipReason,
};
use crate::record::Event;

/// What the executor should do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Record this event (then apply it and ask again).
    Record(EventData),
    /// Start attempt `attempt` of `phase`: record `attempt.started`, then run it.
    Start {
        phase: String,
        attempt: u32,
        timeout: Option<Duration>,
    },
    /// Call [`Scheduler::retry_due`] for `phase` after `delay`.
    RetryAfter { phase: String, delay: Duration },
    /// Stop the running attempt of `phase`; it ends as an `attempt.failed` of `kind`.
    Cancel { phase: String, kind: FailureKind },
    /// Wake the scheduler after `after`, when the gate `phase` times out.
    ApprovalTimer { phase: String, after: Duration },
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Ok,
    Failed { kind: FailureKind, message: String },
}

/// The state of one phase instance (a phase, or a child of a `for_each` phase).
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    Pending,
    Ready,
    Running {
        attempt: u32,
    },
    /// Waiting for the backoff of a retry.
    RetryWait {
        delay: Duration,
    },
    /// The backoff passed; start the next attempt when there is room.
    RetryDue,
    /// An approval gate waiting for a decision.
    Waiting,
    /// A `for_each` phase whose children are running.
    FanOut,
    /// The last attempt ended; the phase outcome is not recorded yet.
    Settling(SettleOutcome),
    Succeeded,
    Failed {
        continued: bool,
    },
    Skipped(SkipReason),
}

/// Opaque to callers: how a settling phase ended.
#[derive(Clone, Debug, PartialEq)]
pub struct SettleOutcome(Outcome);

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Ready => "ready",
            State::Running { .. } => "running",
            State::RetryWait { .. } | State::RetryDue => "retrying",
            State::Waiting => "waiting",
            State::FanOut => "running",
            State::Settling(_) => "running",
            State::Succeeded => "succeeded",
            State::Failed { .. } => "failed",
            State::Skipped(_) => "skipped",
        }
    }

    fn is_settled(&self) -> bool {
        matches!(
            self,
            State::Succeeded | State::Failed { .. } | State::Skipped(_)
        )
    }

    /// Settled in a way that lets dependents run.
    fn satisfies(&self) -> bool {
        matches!(
            self,
            State::Succeeded
                | State::Failed { continued: true }
                | State::Skipped(SkipReason::Condition)
        )
    }
}

#[derive(Clone, Debug)]
struct Instance {
    name: String,
    /// Index of the phase in the plan.
    phase: usize,
    parent: Option<usize>,
    key: Option<String>,
    item: Option<Value>,
    needs: Vec<usize>,
    state: State,
    /// Attempts started in all (attempt numbers are never reused).
    attempts: u32,
    /// Attempts counted against `max_attempts` in the current round (since the last loop).
    round_attempts: u32,
    round_started: Option<SystemTime>,
    artifacts: BTreeMap<String, String>,
    values: BTreeMap<String, Value>,
    children: Vec<usize>,
    /// An action for the current state (timer, cancel) has been handed out.
    requested: bool,
    /// No longer part of the run (a child of a re-expanded `for_each`).
    dropped: bool,
    waiting_since: Option<SystemTime>,
    /// This child is counted in its parent's `settled_children`.
    counted: bool,
    /// For a fan-out parent: how many of its children are settled.
    settled_children: usize,
    /// A person approved this (non-gate) phase after a policy asked for it.
    approved: bool,
}

/// Run-wide options.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Global limit on attempts running at once.
    pub max_parallel: u32,
}

/// The scheduler of one run.
pub struct Scheduler {
    plan: Arc<Plan>,
    phases: Vec<PlannedPhase>,
    options: Options,
    instances: Vec<Instance>,
    index: HashMap<String, usize>,
    run_id: String,
    inputs: BTreeMap<String, Value>,
    loops: HashMap<String, u32>,
    cancel_requested: bool,
    suspended: bool,
    finished: Option<&'static str>,
    now: Option<SystemTime>,
    engine: rhai::Engine,
    /// Instances that may need a decision (a superset; `decide` looks only at these).
    active: BTreeSet<usize>,
    /// Instances with an attempt in flight.
    running_set: BTreeSet<usize>,
    /// Instances with recorded output values.
    valued: BTreeSet<usize>,
    /// For each instance, the instances that need it (siblings, for fan-out children).
    dependents: Vec<Vec<usize>>,
}

impl Scheduler {
    pub fn new(plan: Arc<Plan>, options: Options) -> Scheduler {
        let phases: Vec<PlannedPhase> = plan.phases().cloned().collect();
        let positions: HashMap<&str, usize> = phases
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        let instances: Vec<Instance> = phases
            .iter()
            .enumerate()
            .map(|(i, p)| Instance {
                name: p.id.clone(),
                phase: i,
                parent: None,
                key: None,
                item: None,
                needs: p
                    .needs
                    .iter()
                    .filter_map(|n| positions.get(n.as_str()).copied())
                    .collect(),
                state: State::Pending,
                attempts: 0,
                round_attempts: 0,
                round_started: None,
                artifacts: BTreeMap::new(),
                values: BTreeMap::new(),
                children: Vec::new(),
                requested: false,
                dropped: false,
                waiting_since: None,
                counted: false,
                settled_children: 0,
                approved: false,
            })
            .collect();
        let index = instances
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.name.clone(), i))
            .collect();
        let mut dependents = vec![Vec::new(); instances.len()];
        for (i, inst) in instances.iter().enumerate() {
            for &n in &inst.needs {
                dependents[n].push(i);
            }
        }
        let active = (0..instances.len()).collect();
        Scheduler {
            plan,
            phases,
            options: Options {
                max_parallel: options.max_parallel.max(1),
            },
            instances,
            index,
            run_id: String::new(),
            inputs: BTreeMap::new(),
            loops: HashMap::new(),
            cancel_requested: false,
            suspended: false,
            finished: None,
            now: None,
            engine: crate::policy::expression_engine(),
            active,
            running_set: BTreeSet::new(),
            valued: BTreeSet::new(),
            dependents,
        }
    }

    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// `Some("succeeded" | "failed" | "canceled")` once the run has ended.
    pub fn finished(&self) -> Option<&'static str> {
        self.finished
    }

    pub fn is_suspended(&self) -> bool {
        self.suspended
    }

    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested
    }

    /// The state of an instance by name.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.index.get(name).map(|&i| &self.instances[i].state)
    }

    /// Every live instance: (name, state, attempts).
    pub fn instances(&self) -> impl Iterator<Item = (&str, &State, u32)> {
        self.instances
            .iter()
            .filter(|i| !i.dropped)
            .map(|i| (i.name.as_str(), &i.state, i.attempts))
    }

    /// The whole folded state, for replay checks: every instance (dropped ones too) with its
    /// state, attempts, outputs, timer origins and children, the loop counters and the run's
    /// flags. It leaves out what only the executor's side sets (the clock, which timers and
    /// cancels were already handed out) and the candidate cache `decide` prunes.
    pub fn snapshot(&self) -> String {
        let instances: Vec<Instance> = self
            .instances
            .iter()
            .map(|i| Instance {
                requested: false,
                ..i.clone()
            })
            .collect();
        let loops: BTreeMap<&String, &u32> = self.loops.iter().collect();
        format!(
            "{:#?}",
            (
                &self.run_id,
                &self.inputs,
                self.options.max_parallel,
                self.cancel_requested,
                self.suspended,
                self.finished,
                loops,
                &self.running_set,
                &self.valued,
                instances,
            )
        )
    }

    /// Instances with an attempt in flight (for resume: they become interrupted).
    pub fn running(&self) -> Vec<(String, u32)> {
        self.instances
            .iter()
            .filter(|i| !i.dropped)
            .filter_map(|i| match i.state {
                State::Running { attempt } => Some((i.name.clone(), attempt)),
                _ => None,
            })
            .collect()
    }

    /// The planned phase behind an instance (a child's is its parent's).
    pub fn phase_of(&self, name: &str) -> Option<&PlannedPhase> {
        self.index
            .get(name)
            .map(|&i| &self.phases[self.instances[i].phase])
    }

    /// Did a person approve this phase after a policy required it?
    pub fn approved(&self, name: &str) -> bool {
        self.index
            .get(name)
            .is_some_and(|&i| self.instances[i].approved)
    }

    /// The `for_each` item of a child instance.
    pub fn item_of(&self, name: &str) -> Option<&Value> {
        self.index
            .get(name)
            .and_then(|&i| self.instances[i].item.as_ref())
    }

    /// Artifacts recorded for an instance.
    pub fn artifacts_of(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.index.get(name).map(|&i| &self.instances[i].artifacts)
    }

    /// Tell the scheduler the time, as read by the executor (the scheduler never reads a
    /// clock). Applied events move it too, to their `ts`.
    pub fn set_now(&mut self, now: SystemTime) {
        self.now = Some(now);
    }

    /// The backoff passed for `phase`: its next attempt may start.
    pub fn retry_due(&mut self, phase: &str) {
        if let Some(&i) = self.index.get(phase) {
            if matches!(self.instances[i].state, State::RetryWait { .. }) {
                self.instances[i].state = State::RetryDue;
                self.instances[i].requested = false;
                self.touch(i);
            }
        }
    }

    /// Fold one event into the state.
    pub fn apply(&mut self, event: &Event) {
        self.apply_inner(event);
        if let Some(i) = event.data.phase().and_then(|p| self.index.get(p)).copied() {
            self.touch(i);
        }
    }

    /// Bring the bookkeeping sets in line with instance `i`'s state.
    fn touch(&mut self, i: usize) {
        let inst = &self.instances[i];
        if inst.dropped {
            self.active.remove(&i);
            self.running_set.remove(&i);
            self.valued.remove(&i);
            return;
        }
        if matches!(inst.state, State::Running { .. }) {
            self.running_set.insert(i);
        } else {
            self.running_set.remove(&i);
        }
        if inst.values.is_empty() {
            self.valued.remove(&i);
        } else {
            self.valued.insert(i);
        }
        let settled = inst.state.is_settled();
        if settled || matches!(inst.state, State::Running { .. }) {
            self.active.remove(&i);
        } else {
            self.active.insert(i);
        }
        if settled {
            for &d in &self.dependents[i] {
                self.active.insert(d);
            }
            if let Some(p) = inst.parent {
                if !inst.counted {
                    self.instances[i].counted = true;
                    self.instances[p].settled_children += 1;
                }
                self.active.insert(p);
            }
        }
    }

    fn apply_inner(&mut self, event: &Event) {
        if let Ok(ts) = humantime::parse_rfc3339_weak(&event.ts) {
            self.now = Some(ts);
        }
        match &event.data {
            EventData::RunStarted(d) => {
                self.run_id = event.run_id.clone();
                self.inputs = d.inputs.clone();
                self.options.max_parallel = d.max_parallel.max(1);
            }
            EventData::RunResumed(_) => {
                self.cancel_requested = false;
                self.suspended = false;
                self.finished = None;
                for inst in &mut self.instances {
                    inst.requested = false;
                }
            }
            EventData::PhaseReady(d) => self.set_state(&d.phase, State::Ready),
            EventData::PhaseExpanded(d) => self.expand(d),
            EventData::AttemptStarted(d) => {
                let now = self.now;
                if let Some(inst) = self.instance_mut(&d.phase) {
                    inst.state = State::Running { attempt: d.attempt };
                    inst.attempts = inst.attempts.max(d.attempt);
                    inst.round_attempts += 1;
                    inst.requested = false;
                    if inst.round_started.is_none() {
                        inst.round_started = now;
                    }
                }
            }
            EventData::AttemptSucceeded(d) => {
                if let Some(inst) = self.instance_mut(&d.phase) {
                    inst.artifacts = d.artifacts.clone();
                    inst.values = d.values.clone();
                    inst.state = State::Settling(SettleOutcome(Outcome::Ok));
                    inst.requested = false;
                }
            }
            EventData::AttemptFailed(d) => self.attempt_failed(&d.phase, d.kind, &d.message),
            EventData::PhaseSucceeded(d) => self.set_state(&d.phase, State::Succeeded),
            EventData::PhaseFailed(d) => self.set_state(
                &d.phase,
                State::Failed {
                    continued: d.continued,
                },
            ),
            EventData::PhaseSkipped(d) => self.set_state(&d.phase, State::Skipped(d.reason)),
            EventData::LoopStarted(d) => self.start_loop(d),
            EventData::ApprovalRequested(_) => {
                let now = self.now;
                if let Some(phase) = event.data.phase() {
                    if let Some(inst) = self.instance_mut(phase) {
                        inst.state = State::Waiting;
                        inst.requested = false;
                        inst.waiting_since = now;
                    }
                }
            }
            EventData::ApprovalDecided(d) => {
                self.suspended = false;
                let gate = self.index.get(&d.phase).is_some_and(|&i| {
                    matches!(
                        self.phases[self.instances[i].phase].kind,
                        PhaseKind::Approval { .. }
                    )
                });
                if let Some(inst) = self.instance_mut(&d.phase) {
                    if inst.state == State::Waiting && !gate && d.approved {
                        // A policy asked for this approval: now the phase may run.
                        inst.approved = true;
                        inst.state = State::Ready;
                    } else if inst.state == State::Waiting {
                        inst.state = State::Settling(SettleOutcome(if d.approved {
                            Outcome::Ok
                        } else {
                            // The failure kind says "rejected"; the message says why.
                            let why = d.comment.clone().unwrap_or_else(|| "no comment".into());
                            let message = if d.timed_out {
                                format!("timed out: {why}")
                            } else {
                                why
                            };
                            Outcome::Failed {
                                kind: FailureKind::Rejected,
                                message,
                            }
                        }));
                    }
                }
            }
            EventData::CancelRequested(_) => self.cancel_requested = true,
            EventData::RunSuspended(_) => self.suspended = true,
            EventData::RunSucceeded(_) => self.finished = Some("succeeded"),
            EventData::RunFailed(_) => self.finished = Some("failed"),
            EventData::RunCanceled(_) => self.finished = Some("canceled"),
            // Decisions are facts for explain and replay; the engine acts on them itself.
            EventData::PolicyDecided(_)
            | EventData::FallbackActivated(_)
            | EventData::BudgetAlert(_) => {}
        }
    }

    fn instance_mut(&mut self, name: &str) -> Option<&mut Instance> {
        let i = *self.index.get(name)?;
        Some(&mut self.instances[i])
    }

    fn set_state(&mut self, name: &str, state: State) {
        if let Some(inst) = self.instance_mut(name) {
            inst.state = state;
            inst.requested = false;
        }
    }

    fn attempt_failed(&mut self, name: &str, kind: FailureKind, message: &str) {
        let now = self.now;
        let cancel = self.cancel_requested;
        let Some(&i) = self.index.get(name) else {
            return;
        };
        let phase = &self.phases[self.instances[i].phase];
        let retry = phase.retry.clone();
        let deadline = phase.deadline;
        let inst = &mut self.instances[i];
        inst.requested = false;
        if kind == FailureKind::Canceled && cancel {
            // Stopped by a cancel: run it again, uncounted, when the run resumes.
            inst.round_attempts = inst.round_attempts.saturating_sub(1);
            inst.state = State::Ready;
            return;
        }
        if kind == FailureKind::Interrupted {
            // The engine died under it: retry at once; interruptions do not use up retries.
            inst.round_attempts = inst.round_attempts.saturating_sub(1);
            inst.state = State::RetryDue;
            return;
        }
        let retryable = !matches!(
            kind,
            FailureKind::Canceled
                | FailureKind::Expression
                | FailureKind::Rejected
                | FailureKind::Budget
                | FailureKind::Denied
        ) && !retry.non_retryable.contains(&kind);
        let next = inst.round_attempts + 1;
        let delay = retry.backoff(next);
        let past_deadline = match (deadline, inst.round_started, now) {
            (Some(deadline), Some(started), Some(now)) => now + delay >= started + deadline,
            _ => false,
        };
        if retryable && inst.round_attempts < retry.max_attempts && !past_deadline {
            inst.state = State::RetryWait { delay };
        } else {
            let message = if past_deadline && retryable && inst.round_attempts < retry.max_attempts
            {
                format!("{message} (no retry: the phase deadline would pass)")
            } else {
                message.to_string()
            };
            inst.state = State::Settling(SettleOutcome(Outcome::Failed { kind, message }));
        }
    }

    fn expand(&mut self, d: &PhaseExpanded) {
        let Some(&parent) = self.index.get(&d.phase) else {
            return;
        };
        self.drop_children(parent);
        let phase = self.instances[parent].phase;
        let mut created = Vec::new();
        for child in &d.children {
            let name = format!("{}[{}]", d.phase, child.key);
            let i = self.instances.len();
            self.instances.push(Instance {
                name: name.clone(),
                phase,
                parent: Some(parent),
                key: Some(child.key.clone()),
                item: Some(child.item.clone()),
                needs: Vec::new(),
                state: State::Pending,
                attempts: 0,
                round_attempts: 0,
                round_started: None,
                artifacts: BTreeMap::new(),
                values: BTreeMap::new(),
                children: Vec::new(),
                requested: false,
                dropped: false,
                waiting_since: None,
                counted: false,
                settled_children: 0,
                approved: false,
            });
            self.index.insert(name, i);
            self.dependents.push(Vec::new());
            created.push((i, child));
        }
        for (i, child) in &created {
            let needs: Vec<usize> = child
                .depends_on
                .iter()
                .filter_map(|key| self.index.get(&format!("{}[{key}]", d.phase)).copied())
                .collect();
            for &n in &needs {
                self.dependents[n].push(*i);
            }
            self.instances[*i].needs = needs;
        }
        self.instances[parent].children = created.iter().map(|(i, _)| *i).collect();
        self.instances[parent].settled_children = 0;
        self.instances[parent].state = State::FanOut;
        for (i, _) in &created {
            self.touch(*i);
        }
        self.touch(parent);
    }

    fn drop_children(&mut self, parent: usize) {
        let children = std::mem::take(&mut self.instances[parent].children);
        for c in children {
            self.instances[c].dropped = true;
            self.touch(c);
            let name = self.instances[c].name.clone();
            if self.index.get(&name) == Some(&c) {
                self.index.remove(&name);
            }
        }
    }

    fn start_loop(&mut self, d: &LoopStarted) {
        self.loops.insert(d.from.clone(), d.iteration);
        for name in &d.reset {
            let Some(&i) = self.index.get(name) else {
                continue;
            };
            self.drop_children(i);
            let inst = &mut self.instances[i];
            inst.state = State::Pending;
            inst.round_attempts = 0;
            inst.round_started = None;
            inst.requested = false;
            inst.values.clear();
            inst.artifacts.clear();
            self.touch(i);
        }
    }

    fn need_states(&self, i: usize) -> (bool, bool) {
        let mut all_settled = true;
        let mut any_bad = false;
        for &n in &self.instances[i].needs {
            let state = &self.instances[n].state;
            if !state.is_settled() {
                all_settled = false;
            } else if !state.satisfies() {
                any_bad = true;
            }
        }
        (all_settled, any_bad)
    }

    fn running_count(&self) -> (u32, HashMap<usize, u32>) {
        let mut per_parent = HashMap::new();
        for &i in &self.running_set {
            if let Some(p) = self.instances[i].parent {
                *per_parent.entry(p).or_insert(0) += 1;
            }
        }
        (self.running_set.len() as u32, per_parent)
    }

    /// What to do now. Calling it again without applying anything returns the same records.
    pub fn decide(&mut self) -> Vec<Action> {
        if self.finished.is_some() {
            return Vec::new();
        }
        let mut actions = Vec::new();
        if self.cancel_requested {
            let running = !self.running_set.is_empty();
            for &i in &self.running_set {
                let inst = &mut self.instances[i];
                {
                    if !inst.requested {
                        inst.requested = true;
                        actions.push(Action::Cancel {
                            phase: inst.name.clone(),
                            kind: FailureKind::Canceled,
                        });
                    }
                }
            }
            if !running {
                actions.push(Action::Record(EventData::RunCanceled(RunFinished {
                    failed: Vec::new(),
                    reason: Some("canceled by the user".into()),
                })));
            }
            return actions;
        }
        let mut startable = Vec::new();
        let candidates: Vec<usize> = self.active.iter().copied().collect();
        for i in candidates {
            if self.instances[i].dropped
                || matches!(
                    self.instances[i].state,
                    State::Running { .. }
                        | State::Succeeded
                        | State::Failed { .. }
                        | State::Skipped(_)
                )
            {
                continue;
            }
            let name = self.instances[i].name.clone();
            match self.instances[i].state.clone() {
                State::Pending => {
                    let (all_settled, any_bad) = self.need_states(i);
                    if !all_settled {
                        // Looked at again when one of its needs settles.
                        self.active.remove(&i);
                        continue;
                    }
                    let phase = &self.phases[self.instances[i].phase];
                    if any_bad && !phase.always {
                        actions.push(Action::Record(EventData::PhaseSkipped(PhaseSkipped {
                            phase: name,
                            reason: SkipReason::UpstreamFailed,
                            detail: None,
                        })));
                        continue;
                    }
                    let condition = if self.instances[i].parent.is_none() {
                        phase.condition.clone()
                    } else {
                        None
                    };
                    match condition.map(|c| self.eval_condition(i, &c)) {
                        None | Some(Ok(true)) => {
                            actions.push(Action::Record(EventData::PhaseReady(PhaseRef {
                                phase: name,
                            })))
                        }
                        Some(Ok(false)) => {
                            actions.push(Action::Record(EventData::PhaseSkipped(PhaseSkipped {
                                phase: name,
                                reason: SkipReason::Condition,
                                detail: phase.condition.clone(),
                            })))
                        }
                        Some(Err(message)) => {
                            actions.push(Action::Record(EventData::PhaseFailed(PhaseFailed {
                                phase: name,
                                attempts: 0,
                                kind: FailureKind::Expression,
                                message,
                                continued: false,
                            })))
                        }
                    }
                }
                State::Ready => {
                    let inst = &self.instances[i];
                    let phase = &self.phases[inst.phase];
                    if let PhaseKind::Approval {
                        reason, timeout, ..
                    } = &phase.kind
                    {
                        actions.push(Action::Record(EventData::ApprovalRequested(
                            ApprovalRequested {
                                phase: name,
                                reason: reason.clone(),
                                timeout_ms: timeout.map(|t| t.as_millis() as u64),
                            },
                        )));
                    } else if phase.for_each.is_some() && inst.parent.is_none() {
                        match self.expand_items(i) {
                            Ok(children) => actions.push(Action::Record(EventData::PhaseExpanded(
                                PhaseExpanded {
                                    phase: name,
                                    children,
                                },
                            ))),
                            Err(message) => {
                                actions.push(Action::Record(EventData::PhaseFailed(PhaseFailed {
                                    phase: name,
                                    attempts: 0,
                                    kind: FailureKind::Expression,
                                    message,
                                    continued: false,
                                })))
                            }
                        }
                    } else {
                        startable.push(i);
                    }
                }
                State::RetryDue => startable.push(i),
                State::RetryWait { delay } => {
                    if !self.instances[i].requested {
                        self.instances[i].requested = true;
                        actions.push(Action::RetryAfter { phase: name, delay });
                    }
                }
                State::Waiting => {
                    let phase = &self.phases[self.instances[i].phase];
                    if let PhaseKind::Approval {
                        timeout: Some(timeout),
                        on_timeout,
                        ..
                    } = &phase.kind
                    {
                        let waited = match (self.now, self.instances[i].waiting_since) {
                            (Some(now), Some(since)) => {
                                now.duration_since(since).unwrap_or_default()
                            }
                            _ => Duration::ZERO,
                        };
                        if waited >= *timeout {
                            actions.push(Action::Record(EventData::ApprovalDecided(
                                ApprovalDecided {
                                    phase: name,
                                    approved: *on_timeout == OnTimeout::Approve,
                                    comment: Some(format!(
                                        "no decision within {}",
                                        crate::model::format_duration(*timeout)
                                    )),
                                    timed_out: true,
                                },
                            )));
                        } else if !self.instances[i].requested {
                            self.instances[i].requested = true;
                            actions.push(Action::ApprovalTimer {
                                phase: name,
                                after: *timeout - waited,
                            });
                        }
                    }
                }
                State::FanOut => {
                    let children = &self.instances[i].children;
                    if self.instances[i].settled_children == children.len() {
                        let failed: Vec<String> = children
                            .iter()
                            .filter(|&&c| !self.instances[c].state.satisfies())
                            .map(|&c| self.instances[c].name.clone())
                            .collect();
                        let outcome = if failed.is_empty() {
                            Outcome::Ok
                        } else {
                            Outcome::Failed {
                                kind: FailureKind::Exit,
                                message: format!(
                                    "{} of {} items failed: {}",
                                    failed.len(),
                                    children.len(),
                                    failed.join(", ")
                                ),
                            }
                        };
                        actions.push(self.settle(i, outcome));
                    }
                }
                State::Settling(SettleOutcome(outcome)) => actions.push(self.settle(i, outcome)),
                State::Running { .. }
                | State::Succeeded
                | State::Failed { .. }
                | State::Skipped(_) => {}
            }
        }
        let (mut running, mut per_parent) = self.running_count();
        for i in startable {
            if running >= self.options.max_parallel {
                break;
            }
            let inst = &self.instances[i];
            if let Some(p) = inst.parent {
                let limit = self.phases[self.instances[p].phase]
                    .max_parallel
                    .unwrap_or(u32::MAX);
                let count = per_parent.entry(p).or_insert(0);
                if *count >= limit {
                    continue;
                }
                *count += 1;
            }
            running += 1;
            let phase = &self.phases[inst.phase];
            let remaining = match (phase.deadline, inst.round_started, self.now) {
                (Some(deadline), Some(started), Some(now)) => Some(
                    (started + deadline)
                        .duration_since(now)
                        .unwrap_or(Duration::ZERO),
                ),
                (Some(deadline), None, _) => Some(deadline),
                _ => None,
            };
            let timeout = match (phase.timeout, remaining) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            actions.push(Action::Start {
                phase: inst.name.clone(),
                attempt: inst.attempts + 1,
                timeout,
            });
        }
        if !actions
            .iter()
            .any(|a| matches!(a, Action::Record(_) | Action::Start { .. }))
        {
            self.finish(&mut actions);
        }
        actions
    }

    /// The phase-level outcome of a settled attempt (or fan-out, or gate).
    fn settle(&self, i: usize, outcome: Outcome) -> Action {
        let inst = &self.instances[i];
        let phase = &self.phases[inst.phase];
        match outcome {
            Outcome::Ok => Action::Record(EventData::PhaseSucceeded(PhaseSucceeded {
                phase: inst.name.clone(),
                attempts: inst.attempts,
                artifacts: inst.artifacts.clone(),
            })),
            Outcome::Failed { kind, message } => {
                if let (Some(on_failure), None) = (&phase.on_failure, inst.parent) {
                    let done = self.loops.get(&inst.name).copied().unwrap_or(0);
                    if done < on_failure.max_loops && kind != FailureKind::Canceled {
                        let mut reset = vec![on_failure.goto.clone()];
                        for id in self.plan.downstream(&on_failure.goto) {
                            let running = self.index.get(id).is_some_and(|&j| {
                                matches!(self.instances[j].state, State::Running { .. })
                            });
                            if !running {
                                reset.push(id.to_string());
                            }
                        }
                        return Action::Record(EventData::LoopStarted(LoopStarted {
                            from: inst.name.clone(),
                            goto: on_failure.goto.clone(),
                            iteration: done + 1,
                            reset,
                        }));
                    }
                }
                Action::Record(EventData::PhaseFailed(PhaseFailed {
                    phase: inst.name.clone(),
                    attempts: inst.attempts,
                    kind,
                    message,
                    continued: phase.continue_on_error,
                }))
            }
        }
    }

    /// Nothing else to do: end or suspend the run, if that is where it is.
    fn finish(&mut self, actions: &mut Vec<Action>) {
        let live = || self.instances.iter().filter(|i| !i.dropped);
        // Everything not settled is in `active` or `running_set`: look only there.
        let busy = !self.running_set.is_empty()
            || self.active.iter().any(|&i| {
                matches!(
                    self.instances[i].state,
                    State::RetryWait { .. } | State::RetryDue | State::Settling(_)
                )
            });
        if busy {
            return;
        }
        let waiting: Vec<String> = self
            .active
            .iter()
            .map(|&i| &self.instances[i])
            .filter(|i| i.state == State::Waiting)
            .map(|i| i.name.clone())
            .collect();
        if !waiting.is_empty() {
            if !self.suspended {
                actions.push(Action::Record(EventData::RunSuspended(RunSuspended {
                    waiting,
                })));
            }
            return;
        }
        let failed: Vec<String> = live()
            .filter(|i| i.parent.is_none() && matches!(i.state, State::Failed { continued: false }))
            .map(|i| i.name.clone())
            .collect();
        let unsettled: Vec<String> = live()
            .filter(|i| !i.state.is_settled())
            .map(|i| i.name.clone())
            .collect();
        if !unsettled.is_empty() {
            actions.push(Action::Record(EventData::RunFailed(RunFinished {
                failed,
                reason: Some(format!(
                    "no progress possible for {}; this is a bug in spectacular, please report it",
                    unsettled.join(", ")
                )),
            })));
        } else if failed.is_empty() {
            actions.push(Action::Record(EventData::RunSucceeded(RunFinished {
                failed,
                reason: None,
            })));
        } else {
            actions.push(Action::Record(EventData::RunFailed(RunFinished {
                failed,
                reason: None,
            })));
        }
    }

    /// The facts templates and expressions see, for an instance at an attempt.
    pub fn context(&self, name: &str, attempt: u32) -> Value {
        let i = self.index.get(name).copied();
        facts::context(self, i, attempt)
    }

    fn eval_condition(&self, i: usize, expression: &str) -> Result<bool, String> {
        let value = facts::eval(self, i, expression)?;
        value
            .as_bool()
            .ok_or_else(|| format!("`if: {expression}` gave {value}, not true or false"))
    }

    fn expand_items(&self, i: usize) -> Result<Vec<Child>, String> {
        let phase = &self.phases[self.instances[i].phase];
        let items = match &phase.for_each {
            Some(ForEach::Items(items)) => items.clone(),
            Some(ForEach::Expression(e)) => match facts::eval(self, i, e)? {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                other => return Err(format!("`for_each: {e}` gave {other}, not a list")),
            },
            None => Vec::new(),
        };
        facts::children(items)
    }
}
