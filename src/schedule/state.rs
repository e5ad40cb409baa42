//! The state of a run: every phase instance and its state, and the scheduler's data.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::Options;
use crate::model::FailureKind;
use crate::plan::{Plan, PlannedPhase};
use crate::record::event::SkipReason;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Outcome {
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
pub struct SettleOutcome(pub(super) Outcome);

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

    pub(super) fn is_settled(&self) -> bool {
        matches!(
            self,
            State::Succeeded | State::Failed { .. } | State::Skipped(_)
        )
    }

    /// Settled in a way that lets dependents run.
    pub(super) fn satisfies(&self) -> bool {
        matches!(
            self,
            State::Succeeded
                | State::Failed { continued: true }
                | State::Skipped(SkipReason::Condition)
        )
    }
}

#[derive(Clone, Debug)]
pub(super) struct Instance {
    pub(super) name: String,
    /// Index of the phase in the plan.
    pub(super) phase: usize,
    pub(super) parent: Option<usize>,
    pub(super) key: Option<String>,
    pub(super) item: Option<Value>,
    pub(super) needs: Vec<usize>,
    pub(super) state: State,
    /// Attempts started in all (attempt numbers are never reused).
    pub(super) attempts: u32,
    /// Attempts counted against `max_attempts` in the current round (since the last loop).
    pub(super) round_attempts: u32,
    pub(super) round_started: Option<SystemTime>,
    pub(super) artifacts: BTreeMap<String, String>,
    pub(super) values: BTreeMap<String, Value>,
    pub(super) children: Vec<usize>,
    /// An action for the current state (timer, cancel) has been handed out.
    pub(super) requested: bool,
    /// No longer part of the run (a child of a re-expanded `for_each`).
    pub(super) dropped: bool,
    pub(super) waiting_since: Option<SystemTime>,
    /// This child is counted in its parent's `settled_children`.
    pub(super) counted: bool,
    /// For a fan-out parent: how many of its children are settled.
    pub(super) settled_children: usize,
    /// A person approved this (non-gate) phase after a policy asked for it.
    pub(super) approved: bool,
    /// The problems of its last failed attempt (`attempt.previous_errors`).
    pub(super) previous_errors: Vec<String>,
    /// A fan-out child's lane: no two children of one parent and lane run at once.
    pub(super) lane: Option<u32>,
    /// The files its last failed attempt was about (a check's errors, a merge's conflicts).
    pub(super) failure_files: Vec<String>,
    /// For a merge: the work package whose branch conflicted last (`merge.step`).
    pub(super) conflict_work: Option<String>,
}

/// The scheduler of one run.
pub struct Scheduler {
    pub(super) plan: Arc<Plan>,
    pub(super) phases: Vec<PlannedPhase>,
    pub(super) options: Options,
    pub(super) instances: Vec<Instance>,
    pub(super) index: HashMap<String, usize>,
    pub(super) run_id: String,
    pub(super) inputs: BTreeMap<String, Value>,
    pub(super) loops: HashMap<String, u32>,
    pub(super) cancel_requested: bool,
    pub(super) suspended: bool,
    pub(super) finished: Option<&'static str>,
    pub(super) now: Option<SystemTime>,
    pub(super) engine: rhai::Engine,
    /// Instances that may need a decision (a superset; `decide` looks only at these).
    pub(super) active: BTreeSet<usize>,
    /// Instances that will start as soon as there is room (ready or due for a retry, not a
    /// gate or a fan-out parent), by the fan-out parent whose `max_parallel` also bounds them
    /// (`None`: top-level phases). Not in `active`: `decide` takes from here in index order,
    /// only as many as may start, so that waiting for room costs nothing per event.
    pub(super) queued: BTreeMap<Option<usize>, BTreeSet<usize>>,
    /// Instances with an attempt in flight.
    pub(super) running_set: BTreeSet<usize>,
    /// Instances with recorded output values.
    pub(super) valued: BTreeSet<usize>,
    /// `outputs` and `run.complexity` as templates and expressions see them, built from
    /// `valued` on first use and dropped when an instance in `valued` changes (`touch`), so
    /// that attempts of instances without values do not rebuild them.
    pub(super) recorded: std::sync::OnceLock<super::facts::Recorded>,
    /// For each instance, the instances that need it (siblings, for fan-out children).
    pub(super) dependents: Vec<Vec<usize>>,
}

impl Instance {
    /// A pending instance of phase `phase` (a child of `parent` when `child` has its key and
    /// item).
    pub(super) fn new(
        name: String,
        phase: usize,
        parent: Option<usize>,
        child: Option<(String, Value)>,
        needs: Vec<usize>,
    ) -> Instance {
        let (key, item) = child.unzip();
        Instance {
            name,
            phase,
            parent,
            key,
            item,
            needs,
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
            previous_errors: Vec::new(),
            lane: None,
            failure_files: Vec::new(),
            conflict_work: None,
        }
    }
}
