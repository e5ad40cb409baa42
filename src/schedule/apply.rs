//! Folding an event into the state.

use super::state::{Instance, Outcome};
use super::{Scheduler, SettleOutcome, State};
use crate::model::{FailureKind, PhaseKind};
use crate::record::event::{EventData, LoopStarted, MergeOutcome, PhaseExpanded};
use crate::record::Event;

impl Scheduler {
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
        let group = inst.parent;
        if !inst.values.is_empty() || self.valued.contains(&i) {
            // What `outputs` and `run.complexity` show may have changed.
            self.recorded.take();
        }
        if inst.dropped {
            self.active.remove(&i);
            self.running_set.remove(&i);
            self.valued.remove(&i);
            self.unqueue(group, i);
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
        if self.waits_for_room(i) {
            self.active.remove(&i);
            self.queued.entry(group).or_default().insert(i);
        } else {
            self.unqueue(group, i);
            if settled || matches!(self.instances[i].state, State::Running { .. }) {
                self.active.remove(&i);
            } else {
                self.active.insert(i);
            }
        }
        let inst = &self.instances[i];
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

    /// Will instance `i` start as soon as there is room? (Ready or due for a retry, and not a
    /// gate or a fan-out parent, which `decide` handles otherwise.)
    fn waits_for_room(&self, i: usize) -> bool {
        let inst = &self.instances[i];
        match inst.state {
            State::RetryDue => true,
            State::Ready => {
                let phase = &self.phases[inst.phase];
                let gate = matches!(phase.kind, PhaseKind::Approval { .. });
                let fan_out = phase.for_each.is_some() && inst.parent.is_none();
                !gate && !fan_out
            }
            _ => false,
        }
    }

    fn unqueue(&mut self, group: Option<usize>, i: usize) {
        if let Some(queue) = self.queued.get_mut(&group) {
            if queue.remove(&i) && queue.is_empty() {
                self.queued.remove(&group);
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
                    inst.previous_errors.clear();
                }
            }
            EventData::AttemptFailed(d) => {
                if let Some(inst) = self.instance_mut(&d.phase) {
                    inst.failure_files = d.files.clone();
                }
                self.attempt_failed(&d.phase, d.kind, &d.message)
            }
            EventData::MergeStep(d) => {
                if let Some(inst) = self.instance_mut(&d.phase) {
                    inst.conflict_work =
                        (d.outcome == MergeOutcome::Conflict).then(|| d.work.clone());
                }
            }
            EventData::PhaseSucceeded(d) => self.set_state(&d.phase, State::Succeeded),
            EventData::PhaseFailed(d) => self.set_state(
                &d.phase,
                State::Failed {
                    continued: d.continued,
                },
            ),
            EventData::PhaseSkipped(d) => self.set_state(&d.phase, State::Skipped(d.reason)),
            EventData::LoopStarted(d) => self.start_loop(d),
            EventData::ApprovalRequested(d) => {
                let now = self.now;
                if let Some(inst) = self.instance_mut(&d.phase) {
                    inst.state = State::Waiting;
                    inst.requested = false;
                    inst.waiting_since = now;
                    inst.questions = d.questions.clone();
                    inst.answers.clear();
                }
            }
            EventData::ClarificationAnswered(d) => {
                let date = event.ts.get(..10).unwrap_or_default().to_string();
                let gate = self.index.get(&d.phase).is_some_and(|&i| {
                    matches!(
                        self.phases[self.instances[i].phase].kind,
                        PhaseKind::Approval { .. }
                    )
                });
                let mut resumed = false;
                if let Some(inst) = self.instance_mut(&d.phase) {
                    let known = (1..=inst.questions.len() as u32).contains(&d.question);
                    if inst.state == State::Waiting && known && !gate {
                        inst.answers.insert(d.question, (d.answer.clone(), date));
                        if inst.answers.len() == inst.questions.len() {
                            // Every question is answered: the phase runs with the answers.
                            inst.approved = true;
                            inst.state = State::Ready;
                            resumed = true;
                        }
                    }
                }
                if resumed {
                    self.suspended = false;
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
            | EventData::AttemptRedelivered(_)
            | EventData::AttemptRecalled(_)
            | EventData::BudgetAlert(_) => {}
            // What was done outside the run (a webhook told, an issue commented, a pull request
            // opened).
            EventData::NotificationSent(_)
            | EventData::NotificationFailed(_)
            | EventData::IssueCommented(_)
            | EventData::PrOpened(_)
            | EventData::PrUpdated(_) => {}
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
        inst.previous_errors = previous_errors(kind, message);
        let retryable = !matches!(
            kind,
            FailureKind::Canceled
                | FailureKind::Expression
                | FailureKind::Rejected
                | FailureKind::Budget
                | FailureKind::Denied
                | FailureKind::Unavailable
                | FailureKind::Checks
                | FailureKind::Conflict
                | FailureKind::Tampered
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
            self.instances.push(Instance::new(
                name.clone(),
                phase,
                Some(parent),
                Some((child.key.clone(), child.item.clone())),
                Vec::new(),
            ));
            self.instances[i].lane = child.lane;
            // A fan-out sent back as a whole: each of its work packages gets what failed.
            self.instances[i].previous_errors = self.instances[parent].previous_errors.clone();
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
        // What sent the work back, for the prompts of the work packages redone.
        let errors = self
            .index
            .get(&d.from)
            .map(|&i| self.instances[i].previous_errors.clone())
            .unwrap_or_default();
        for name in &d.reset {
            let Some(&i) = self.index.get(name) else {
                continue;
            };
            // A work package redone on its own: its parent goes back to waiting for it.
            if let Some(p) = self.instances[i].parent {
                if std::mem::take(&mut self.instances[i].counted) {
                    self.instances[p].settled_children =
                        self.instances[p].settled_children.saturating_sub(1);
                }
                self.instances[p].state = State::FanOut;
                self.instances[p].requested = false;
                self.instances[i].previous_errors = errors.clone();
                self.touch(p);
            } else if *name == d.goto {
                // The phase sent back gets what failed (a fan-out passes it to its children).
                self.instances[i].previous_errors = errors.clone();
            }
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
}

/// The problems a failed attempt leaves for the next one: each `- ` line of its message (the
/// way output checks list them), else the message itself, prefixed by the failure kind.
fn previous_errors(kind: FailureKind, message: &str) -> Vec<String> {
    let listed: Vec<String> = message
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .map(str::to_string)
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    vec![format!("{}: {message}", kind.as_str())]
}
