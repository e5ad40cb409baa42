//! Deciding what to do next from the state.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::ops::Bound;
use std::time::Duration;

use serde_json::Value;

use super::state::Outcome;
use super::{facts, items, Action, ExpressionError, Scheduler, SettleOutcome, State};
use crate::model::{FailureKind, ForEach, OnTimeout, PhaseKind};
use crate::record::event::{
    ApprovalDecided, ApprovalRequested, Child, EventData, LoopStarted, PhaseExpanded, PhaseFailed,
    PhaseRef, PhaseSkipped, PhaseSucceeded, RunFinished, RunSuspended, SkipReason,
};

impl Scheduler {
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

    /// Why a phase is skipped for its upstream: which of its needs failed (`` `plan` failed``)
    /// or were skipped, in the order of its `needs`.
    fn upstream_detail(&self, i: usize) -> String {
        let mut parts = Vec::new();
        for &n in &self.instances[i].needs {
            let need = &self.instances[n];
            if !need.state.is_settled() || need.state.satisfies() {
                continue;
            }
            let what = match need.state {
                State::Skipped(_) => "was skipped",
                _ => "failed",
            };
            parts.push(format!("`{}` {what}", need.name));
        }
        parts.join("; ")
    }

    /// The queued instances to start now, in index order (the order of the plan, then of
    /// expansion), as many as the run's and each fan-out's `max_parallel` leave room for.
    /// Costs the number started plus the number of queues, whatever is waiting.
    fn next_starts(&self) -> Vec<usize> {
        let (running, mut per_parent) = self.running_count();
        let mut room = self.options.max_parallel.saturating_sub(running);
        let group_room = |group: Option<usize>, per_parent: &HashMap<usize, u32>| match group {
            None => u32::MAX,
            Some(p) => self.phases[self.instances[p].phase]
                .max_parallel
                .unwrap_or(u32::MAX)
                .saturating_sub(per_parent.get(&p).copied().unwrap_or(0)),
        };
        // The head of every queue with room, smallest index first.
        let mut heads: BinaryHeap<Reverse<(usize, Option<usize>)>> = BinaryHeap::new();
        if room > 0 {
            for (&group, queue) in &self.queued {
                if let (Some(&first), true) = (queue.first(), group_room(group, &per_parent) > 0) {
                    heads.push(Reverse((first, group)));
                }
            }
        }
        // Lanes (parent, lane) with a child running: their other children wait.
        let mut busy_lanes: HashSet<(usize, u32)> = self
            .running_set
            .iter()
            .filter_map(|&i| Some((self.instances[i].parent?, self.instances[i].lane?)))
            .collect();
        let mut starts = Vec::new();
        while room > 0 {
            let Some(Reverse((i, group))) = heads.pop() else {
                break;
            };
            let lane = self.instances[i].parent.zip(self.instances[i].lane);
            let free = match lane {
                Some(lane) => busy_lanes.insert(lane),
                None => true,
            };
            if free {
                starts.push(i);
                room -= 1;
                if let Some(p) = group {
                    *per_parent.entry(p).or_insert(0) += 1;
                }
            }
            if group_room(group, &per_parent) > 0 {
                let next = self.queued[&group]
                    .range((Bound::Excluded(i), Bound::Unbounded))
                    .next();
                if let Some(&next) = next {
                    heads.push(Reverse((next, group)));
                }
            }
        }
        starts
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
                        let detail = self.upstream_detail(i);
                        actions.push(Action::Record(EventData::PhaseSkipped(PhaseSkipped {
                            phase: name,
                            reason: SkipReason::UpstreamFailed,
                            detail: Some(detail),
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
                        Some(Err(error)) => {
                            actions.push(Action::Record(EventData::PhaseFailed(PhaseFailed {
                                phase: name,
                                attempts: 0,
                                kind: FailureKind::Expression,
                                message: error.to_string(),
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
                                questions: Vec::new(),
                                plan: facts::plan_summary(self),
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
                            Err(error) => {
                                actions.push(Action::Record(EventData::PhaseFailed(PhaseFailed {
                                    phase: name,
                                    attempts: 0,
                                    kind: FailureKind::Expression,
                                    message: error.to_string(),
                                    continued: false,
                                })))
                            }
                        }
                    }
                    // Anything else that is ready waits in `queued`, not here.
                }
                State::RetryDue => {}
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
        // Records first: what they change (a dependency settled, a package now ready) may
        // change which instances should take the free slots, so the starts wait for the next
        // call. Each start is then what the log up to it decides, on replay as in the engine.
        let starts = if actions.iter().any(|a| matches!(a, Action::Record(_))) {
            Vec::new()
        } else {
            self.next_starts()
        };
        for i in starts {
            let inst = &self.instances[i];
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
    /// `i` is the instance settling.
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
                if kind == FailureKind::Conflict && on_conflict(phase) == Some("approval") {
                    // A person resolves the conflict where the merge left it, then approves:
                    // the merge runs again and goes on from there.
                    return Action::Record(EventData::ApprovalRequested(ApprovalRequested {
                        phase: inst.name.clone(),
                        reason: message,
                        timeout_ms: None,
                        questions: Vec::new(),
                        plan: None,
                    }));
                }
                if let (Some(on_failure), None) = (&phase.on_failure, inst.parent) {
                    let done = self.loops.get(&inst.name).copied().unwrap_or(0);
                    // A loop sends the work back: not for what the work cannot fix (a
                    // cancel, a timeout, a program that is not there).
                    let about_the_work = !matches!(
                        kind,
                        FailureKind::Canceled | FailureKind::Timeout | FailureKind::Unavailable
                    );
                    if done < on_failure.max_loops && about_the_work {
                        // Checks and conflicts name what is wrong: only the work packages
                        // concerned are redone (all of them when none can be told).
                        let redo = self.work_to_redo(i, kind, &on_failure.goto);
                        let mut reset = if redo.is_empty() {
                            vec![on_failure.goto.clone()]
                        } else {
                            redo
                        };
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

    /// The children of fan-out `goto` that a failure of instance `i` is about: for a conflict,
    /// the work package whose branch conflicted; for failed checks, those owning a file the
    /// errors name. Empty when `goto` is not a fan-out or nothing can be told.
    fn work_to_redo(&self, i: usize, kind: FailureKind, goto: &str) -> Vec<String> {
        let Some(&parent) = self.index.get(goto) else {
            return Vec::new();
        };
        let children = self.instances[parent]
            .children
            .iter()
            .map(|&c| &self.instances[c]);
        let failed = &self.instances[i];
        match kind {
            FailureKind::Conflict => failed
                .conflict_work
                .iter()
                .filter(|work| children.clone().any(|c| &c.name == *work))
                .cloned()
                .collect(),
            FailureKind::Checks if !failed.failure_files.is_empty() => children
                .filter(|c| {
                    let globs: Vec<&str> = match c.item.as_ref().and_then(|i| i.get("owned_files"))
                    {
                        Some(Value::Array(globs)) => {
                            globs.iter().filter_map(Value::as_str).collect()
                        }
                        Some(Value::String(one)) => vec![one.as_str()],
                        _ => Vec::new(),
                    };
                    failed.failure_files.iter().any(|file| {
                        globs
                            .iter()
                            .any(|glob| crate::tasks::globs::may_overlap(glob, file))
                    })
                })
                .map(|c| c.name.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Nothing else to do: end or suspend the run, if that is where it is.
    fn finish(&mut self, actions: &mut Vec<Action>) {
        let live = || self.instances.iter().filter(|i| !i.dropped);
        // Everything not settled is in `active`, `queued` or `running_set`: look only there.
        let busy = !self.running_set.is_empty()
            || !self.queued.is_empty()
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

    fn eval_condition(&self, i: usize, expression: &str) -> Result<bool, ExpressionError> {
        let value = facts::eval(self, i, expression)?;
        value.as_bool().ok_or_else(|| ExpressionError::NotBool {
            expression: expression.to_string(),
            value: value.to_string(),
        })
    }

    fn expand_items(&self, i: usize) -> Result<Vec<Child>, ExpressionError> {
        let phase = &self.phases[self.instances[i].phase];
        let items = match &phase.for_each {
            Some(ForEach::Items(items)) => items.clone(),
            Some(ForEach::Expression(e)) => match facts::eval(self, i, e)? {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                other => {
                    return Err(ExpressionError::NotList {
                        expression: e.clone(),
                        value: other.to_string(),
                    })
                }
            },
            None => Vec::new(),
        };
        items::children(items)
    }
}

/// A `builtin/merge` phase's `with.on_conflict` (`rework`, `approval` or `fail`), if written
/// as a literal.
fn on_conflict(phase: &crate::plan::PlannedPhase) -> Option<&str> {
    match &phase.kind {
        PhaseKind::Uses { with, .. } => with.get("on_conflict").and_then(Value::as_str),
        _ => None,
    }
}
