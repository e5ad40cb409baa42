//! Schedule: the pure state machine of a run. Events go in ([`Scheduler::apply`]); actions
//! come out ([`Scheduler::decide`]): events to record (the scheduler's own decisions), attempts
//! to start, timers to set, attempts to cancel. No I/O, no clock reads, no randomness: time is
//! the `ts` of the events applied, `if` and `for_each` are evaluated (sandboxed Rhai) on
//! recorded facts only, so replaying a log gives the same decisions.
//!
//! - `state.rs`: the types: phase instances, their states, the scheduler's data.
//! - `apply.rs`: folding an event into the state ([`Scheduler::apply`]).
//! - `decide.rs`: deciding actions from the state ([`Scheduler::decide`]).
//! - `facts.rs`: what `if`, `for_each` and templates see, and evaluating Rhai over it.
//! - `items.rs`: `for_each` items into children, and the one check of item ids.

mod apply;
mod decide;
mod error;
mod facts;
mod items;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::model::FailureKind;
use crate::plan::{Plan, PlannedPhase};
use crate::record::event::EventData;

pub use crate::model::{is_item_id, MAX_ITEM_ID_LEN};
pub use error::ExpressionError;
use state::Instance;
pub use state::{Scheduler, SettleOutcome, State};

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

/// A question of a clarification and the answer a person recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Clarified {
    /// 1-based, as asked.
    pub number: u32,
    pub question: String,
    pub answer: String,
    /// The day of the answer (`YYYY-MM-DD`, from the event's time).
    pub date: String,
}

/// Run-wide options.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Global limit on attempts running at once.
    pub max_parallel: u32,
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
            .map(|(i, p)| {
                let needs = p
                    .needs
                    .iter()
                    .filter_map(|n| positions.get(n.as_str()).copied())
                    .collect();
                Instance::new(p.id.clone(), i, None, None, needs)
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
            engine: crate::expr::expression_engine(),
            active,
            queued: BTreeMap::new(),
            running_set: BTreeSet::new(),
            valued: BTreeSet::new(),
            recorded: std::sync::OnceLock::new(),
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
        self.running_set
            .iter()
            .map(|&i| &self.instances[i])
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

    /// The clarification of an instance: each question it asked (last request) with its
    /// answer and the day it was answered, for questions answered so far.
    pub fn clarifications(&self, name: &str) -> Vec<Clarified> {
        let Some(&i) = self.index.get(name) else {
            return Vec::new();
        };
        let inst = &self.instances[i];
        inst.questions
            .iter()
            .enumerate()
            .filter_map(|(n, question)| {
                let (answer, date) = inst.answers.get(&(n as u32 + 1))?;
                Some(Clarified {
                    number: n as u32 + 1,
                    question: question.clone(),
                    answer: answer.clone(),
                    date: date.clone(),
                })
            })
            .collect()
    }

    /// The `for_each` item of a child instance.
    pub fn item_of(&self, name: &str) -> Option<&Value> {
        self.index
            .get(name)
            .and_then(|&i| self.instances[i].item.as_ref())
    }

    /// The instances `name` waits for (its `needs`; a child's sibling dependencies).
    pub fn needs_of(&self, name: &str) -> Vec<&str> {
        self.index
            .get(name)
            .map(|&i| {
                self.instances[i]
                    .needs
                    .iter()
                    .map(|&n| self.instances[n].name.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The children of fan-out `name`, dependencies first (item order otherwise).
    pub fn children_in_order(&self, name: &str) -> Vec<&str> {
        let Some(&parent) = self.index.get(name) else {
            return Vec::new();
        };
        let children = &self.instances[parent].children;
        let mut done: std::collections::HashSet<usize> = std::collections::HashSet::new();
        let mut order = Vec::with_capacity(children.len());
        // Repeated passes in item order; each pass takes every child whose needs are taken.
        // Item ids were checked acyclic at expansion, so every pass takes at least one.
        while order.len() < children.len() {
            let before = order.len();
            for &c in children {
                if !done.contains(&c)
                    && self.instances[c]
                        .needs
                        .iter()
                        .all(|n| done.contains(n) || !children.contains(n))
                {
                    done.insert(c);
                    order.push(self.instances[c].name.as_str());
                }
            }
            if order.len() == before {
                break;
            }
        }
        order
    }

    /// A fan-out child's lane, as recorded at expansion.
    pub fn lane_of(&self, name: &str) -> Option<u32> {
        self.index.get(name).and_then(|&i| self.instances[i].lane)
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

    /// The facts templates and expressions see, for an instance at an attempt.
    pub fn context(&self, name: &str, attempt: u32) -> Value {
        let i = self.index.get(name).copied();
        facts::context(self, i, attempt)
    }
}
