//! The board: each work package's state, derived from a run's events, for people
//! (`spectacular board`) and for the run report.
//!
//! A work package is a fan-out child (`implement[WP01]`, a `for_each` item; usually of a
//! `workspace: worktree` phase). Its state follows the events in log order:
//!
//! | state | entered on |
//! |---|---|
//! | `planned` | `phase.expanded` of its parent (again after a `loop.started` that resets it or its parent) |
//! | `claimed` | `phase.ready` of the package (its dependencies and lane let it go; it waits for a slot), or an approval it asked for was given |
//! | `in_progress` | `attempt.started` of the package (a failed attempt that is retried stays here) |
//! | `for_review` | `attempt.succeeded` of the package: its work (branch) waits for the phases downstream |
//! | `in_review` | `attempt.started` of a phase downstream of its parent (a merge, a check, a review; a downstream fan-out child only for the same key), or a downstream gate approved |
//! | `approved` | a `merge.step` of its branch with outcome `merged` or `already` |
//! | `done` | the package succeeded and every phase downstream of its parent succeeded or was skipped, or `run.succeeded` |
//! | `blocked` | its own `phase.failed`; `phase.skipped` because a dependency failed; a `merge.step` `conflict`; an `approval.requested` for it or for a gate downstream; `phase.failed` of a phase downstream, or `run.failed`, while it waited for review or was merged |
//! | `canceled` | `phase.skipped` for a condition or a cancel; `run.canceled` or `run.failed` before it was done with its work; dropped from a new expansion |
//!
//! Phases that run `always` (a report, a cleanup) are neither review nor needed for `done`.
//! The four columns collapse the states: planned (`planned`), doing (`claimed`,
//! `in_progress`), review (`for_review`, `in_review`), done (`approved`, `done`,
//! `canceled`); a blocked package stays in the column of the state it was blocked in (review for
//! a merged one), and a package the run's end canceled or blocked stays where it stopped: on a
//! failed run, nothing that was not done shows under done.
//!
//! Pure: a function of the events; never writes anything.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::record::event::{MergeOutcome, SkipReason};
use crate::record::{Event, EventData};

/// The state of a work package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WpState {
    Planned,
    Claimed,
    InProgress,
    ForReview,
    InReview,
    Approved,
    Done,
    Blocked,
    Canceled,
}

impl WpState {
    pub const ALL: [WpState; 9] = [
        WpState::Planned,
        WpState::Claimed,
        WpState::InProgress,
        WpState::ForReview,
        WpState::InReview,
        WpState::Approved,
        WpState::Done,
        WpState::Blocked,
        WpState::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WpState::Planned => "planned",
            WpState::Claimed => "claimed",
            WpState::InProgress => "in_progress",
            WpState::ForReview => "for_review",
            WpState::InReview => "in_review",
            WpState::Approved => "approved",
            WpState::Done => "done",
            WpState::Blocked => "blocked",
            WpState::Canceled => "canceled",
        }
    }

    /// The column of a state that is not `blocked` (a blocked package keeps its column).
    fn column(self) -> Column {
        match self {
            WpState::Planned => Column::Planned,
            WpState::Claimed | WpState::InProgress => Column::Doing,
            WpState::ForReview | WpState::InReview => Column::Review,
            WpState::Approved | WpState::Done | WpState::Canceled => Column::Done,
            WpState::Blocked => Column::Doing,
        }
    }
}

/// The four columns of the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    Planned,
    Doing,
    Review,
    Done,
}

impl Column {
    pub const ALL: [Column; 4] = [Column::Planned, Column::Doing, Column::Review, Column::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            Column::Planned => "planned",
            Column::Doing => "doing",
            Column::Review => "review",
            Column::Done => "done",
        }
    }
}

/// One state a work package entered: when, and on which event.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Transition {
    pub state: WpState,
    pub at: String,
    pub seq: u64,
}

/// One work package on the board.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Card {
    /// The instance: `implement[WP01]`.
    pub instance: String,
    /// Its fan-out phase: `implement`.
    pub phase: String,
    /// The work package (the item's key): `WP01`.
    pub work: String,
    /// The item's `title`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    pub state: WpState,
    pub column: Column,
    /// When it entered its state (the `ts` of that event).
    pub since: String,
    /// Why it is where it is (what it waits on, the failure, the conflict).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The agent and model of its last attempt (or of the route chosen for the next one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// What its attempts cost, every loop included.
    pub cost_usd: f64,
    pub attempts: u32,
    /// Time its attempts ran, in milliseconds, every loop included (an attempt still running
    /// is not counted).
    pub work_ms: u64,
    /// Rework loops that sent it back to `planned`.
    pub loops: u32,
    /// Its branch, once an attempt committed work on it (or a merge named it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Every state it entered, in order.
    pub transitions: Vec<Transition>,
    /// Its phase succeeded (the work is there).
    #[serde(skip)]
    succeeded: bool,
    /// The gate it is blocked on, if it waits for one.
    #[serde(skip)]
    gate: Option<String>,
    /// The state before `blocked`, for its column.
    #[serde(skip)]
    before_blocked: WpState,
    /// When its running attempt started.
    #[serde(skip)]
    attempt_since: Option<String>,
}

impl Card {
    fn enter(&mut self, state: WpState, event: &Event, note: impl Into<String>) {
        let note = note.into();
        if state == WpState::Blocked && self.state != WpState::Blocked {
            self.before_blocked = self.state;
        }
        if state != WpState::Blocked {
            self.gate = None;
        }
        if state != self.state {
            self.state = state;
            self.since = event.ts.clone();
            self.transitions.push(Transition {
                state,
                at: event.ts.clone(),
                seq: event.seq,
            });
        }
        self.note = note;
        self.column = match (state, self.before_blocked) {
            // Merged but not yet through the phases after the merge: it stopped in review.
            (WpState::Blocked, WpState::Approved) => Column::Review,
            (WpState::Blocked, before) => before.column(),
            (other, _) => other.column(),
        };
    }

    /// Enter `state` where it stopped: its column stays the one it was in.
    fn stop(&mut self, state: WpState, event: &Event, note: impl Into<String>) {
        let column = self.column;
        self.enter(state, event, note);
        self.column = column;
    }

    /// An attempt of it ended at `event`: its time counts.
    fn attempt_ended(&mut self, event: &Event) {
        if let Some(since) = self.attempt_since.take() {
            let until = humantime::parse_rfc3339_weak(&event.ts).ok();
            if let Some(ms) = until.and_then(|u| age_ms(&since, u)) {
                self.work_ms += ms;
            }
        }
    }

    /// Has it finished its own work, waiting for downstream phases?
    fn awaits_review(&self) -> bool {
        self.succeeded
            && matches!(
                self.state,
                WpState::ForReview | WpState::InReview | WpState::Approved
            )
    }
}

/// The board of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct Board {
    pub run_id: String,
    pub mission: String,
    /// `running`, `succeeded`, `failed`, `canceled`, `suspended`.
    pub status: String,
    /// When the run ended (ages of a finished run are measured up to then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub work_packages: Vec<Card>,
}

impl Board {
    /// The cards of one column, in the order the packages were planned.
    pub fn column(&self, column: Column) -> impl Iterator<Item = &Card> {
        self.work_packages
            .iter()
            .filter(move |c| c.column == column)
    }
}

/// Which top-level phases are downstream of which: `needs`, transitively, from the pinned
/// mission.
struct Graph {
    /// phase → every phase it needs, transitively.
    ancestors: HashMap<String, HashSet<String>>,
    always: HashSet<String>,
    order: Vec<String>,
}

impl Graph {
    fn new(events: &[Event]) -> Graph {
        let phases = super::mission_phases(events);
        let needs: HashMap<&str, &[String]> = phases
            .iter()
            .map(|p| (p.id.as_str(), p.needs.as_slice()))
            .collect();
        let mut ancestors = HashMap::new();
        for p in &phases {
            let mut seen: HashSet<String> = HashSet::new();
            let mut stack: Vec<&str> = p.needs.iter().map(String::as_str).collect();
            while let Some(n) = stack.pop() {
                if seen.insert(n.to_string()) {
                    stack.extend(
                        needs
                            .get(n)
                            .into_iter()
                            .flat_map(|v| v.iter().map(String::as_str)),
                    );
                }
            }
            ancestors.insert(p.id.clone(), seen);
        }
        Graph {
            ancestors,
            always: phases
                .iter()
                .filter(|p| p.always)
                .map(|p| p.id.clone())
                .collect(),
            order: phases.iter().map(|p| p.id.clone()).collect(),
        }
    }

    /// Is `phase` (top level) downstream of `parent`, and not an `always` phase?
    fn reviews(&self, phase: &str, parent: &str) -> bool {
        !self.always.contains(phase)
            && self
                .ancestors
                .get(phase)
                .is_some_and(|a| a.contains(parent))
    }

    /// The phases downstream of `parent` a package waits for before it is done.
    fn downstream<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.order.iter().filter(move |p| self.reviews(p, parent))
    }
}

/// The board of a run: every work package's state, from its events.
pub fn board(events: &[Event]) -> Board {
    let graph = Graph::new(events);
    let mut board = Board {
        status: "running".into(),
        ..Board::default()
    };
    let mut cards: IndexMap<String, Card> = IndexMap::new();
    let mut children: HashMap<String, Vec<usize>> = HashMap::new();
    // Work package (item key) → its cards, one per fan-out it appears in.
    let mut by_work: HashMap<String, Vec<usize>> = HashMap::new();
    // Top-level phases that succeeded or were skipped (not for a failure).
    let mut settled: HashSet<String> = HashSet::new();
    let parent_of = |phase: &str| crate::record::fold::parent_of(phase).map(str::to_string);

    for event in events {
        match &event.data {
            EventData::RunStarted(d) => {
                board.run_id = event.run_id.clone();
                board.mission = d.mission.clone();
            }
            EventData::RunResumed(_) => {
                board.status = "running".into();
                board.ended_at = None;
                for card in cards.values_mut() {
                    if card.state == WpState::Canceled && card.note == CANCELED_RUN {
                        let state = if card.succeeded {
                            WpState::ForReview
                        } else {
                            WpState::Planned
                        };
                        card.enter(state, event, "");
                    }
                }
            }
            EventData::PhaseExpanded(d) => {
                expand(&mut cards, &mut children, &mut by_work, d, event);
            }
            EventData::PhaseReady(d) => {
                if let Some(card) = cards.get_mut(&d.phase) {
                    card.enter(WpState::Claimed, event, "");
                }
            }
            EventData::AttemptStarted(d) => {
                if let Some(card) = cards.get_mut(&d.phase) {
                    card.attempts += 1;
                    card.attempt_since = Some(event.ts.clone());
                    card.succeeded = false;
                    card.enter(WpState::InProgress, event, "");
                }
                start_review(&mut cards, &by_work, &graph, &d.phase, event);
            }
            EventData::AttemptSucceeded(d) => {
                if let Some(card) = cards.get_mut(&d.phase) {
                    card.attempt_ended(event);
                    card.agent = d.agent.clone().or(card.agent.take());
                    if let Some(usage) = &d.usage {
                        card.model = usage.model.clone().or(card.model.take());
                        card.cost_usd += usage.cost_usd.unwrap_or(0.0);
                    }
                    if let Some(git) = &d.git {
                        card.branch = Some(git.branch.clone());
                    }
                    card.enter(WpState::ForReview, event, "");
                }
            }
            EventData::AttemptFailed(d) => {
                if let Some(card) = cards.get_mut(&d.phase) {
                    card.attempt_ended(event);
                    card.agent = d.agent.clone().or(card.agent.take());
                    if let Some(usage) = &d.usage {
                        card.model = usage.model.clone().or(card.model.take());
                        card.cost_usd += usage.cost_usd.unwrap_or(0.0);
                    }
                    card.note = super::undouble(&format!(
                        "attempt {} failed: {}: {}",
                        d.attempt,
                        d.kind.as_str(),
                        first_line(&d.message)
                    ));
                }
            }
            EventData::PhaseSucceeded(d) => {
                if let Some(card) = cards.get_mut(&d.phase) {
                    card.succeeded = true;
                    if card.state != WpState::ForReview {
                        card.enter(WpState::ForReview, event, "");
                    }
                    if graph.downstream(&card.phase).next().is_none() {
                        card.enter(WpState::Done, event, "");
                    }
                } else if parent_of(&d.phase).is_none() {
                    settled.insert(d.phase.clone());
                    finish_reviewed(&mut cards, &graph, &settled, event);
                }
            }
            EventData::PhaseFailed(d) => {
                if let Some(card) = cards.get_mut(&d.phase) {
                    let why = super::undouble(&format!(
                        "failed: {}: {}",
                        d.kind.as_str(),
                        first_line(&d.message)
                    ));
                    card.enter(WpState::Blocked, event, why);
                } else if parent_of(&d.phase).is_none() && !d.continued {
                    for card in cards.values_mut() {
                        let reviewing =
                            matches!(card.state, WpState::ForReview | WpState::InReview);
                        if card.succeeded && reviewing && graph.reviews(&d.phase, &card.phase) {
                            card.enter(WpState::Blocked, event, format!("`{}` failed", d.phase));
                        }
                    }
                }
            }
            EventData::PhaseSkipped(d) => {
                if let Some(card) = cards.get_mut(&d.phase) {
                    let detail = d.detail.as_deref().map(first_line).unwrap_or_default();
                    match d.reason {
                        SkipReason::UpstreamFailed => {
                            let why = if detail.is_empty() {
                                "a phase it needs failed".to_string()
                            } else {
                                format!("a phase it needs failed: {detail}")
                            };
                            card.enter(WpState::Blocked, event, why);
                        }
                        SkipReason::Condition => {
                            card.enter(WpState::Canceled, event, "skipped: its `if` was false")
                        }
                        SkipReason::Canceled => {
                            card.enter(WpState::Canceled, event, "the run was canceled")
                        }
                    }
                } else if parent_of(&d.phase).is_none() && d.reason == SkipReason::Condition {
                    settled.insert(d.phase.clone());
                    finish_reviewed(&mut cards, &graph, &settled, event);
                }
            }
            EventData::LoopStarted(d) => {
                let note = format!("rework: loop {} from `{}`", d.iteration, d.from);
                for name in &d.reset {
                    settled.remove(name);
                    let reset: Vec<usize> = match cards.get_index_of(name) {
                        Some(i) => vec![i],
                        None => children.get(name).cloned().unwrap_or_default(),
                    };
                    for i in reset {
                        let card = &mut cards[i];
                        card.loops += 1;
                        card.succeeded = false;
                        card.enter(WpState::Planned, event, note.clone());
                    }
                }
            }
            EventData::ApprovalRequested(d) => {
                if let Some(card) = cards.get_mut(&d.phase) {
                    let why = format!("waiting for approval: {}", first_line(&d.reason));
                    card.enter(WpState::Blocked, event, why);
                    card.gate = Some(d.phase.clone());
                } else if parent_of(&d.phase).is_none() {
                    for card in cards.values_mut() {
                        let reviewing =
                            matches!(card.state, WpState::ForReview | WpState::InReview);
                        if card.succeeded && reviewing && graph.reviews(&d.phase, &card.phase) {
                            let why = format!("waiting for approval of `{}`", d.phase);
                            card.enter(WpState::Blocked, event, why);
                            card.gate = Some(d.phase.clone());
                        }
                    }
                }
            }
            EventData::ApprovalDecided(d) => {
                for card in cards.values_mut() {
                    if card.state != WpState::Blocked || card.gate.as_deref() != Some(&d.phase) {
                        continue;
                    }
                    if !d.approved {
                        let how = if d.timed_out { "timed out" } else { "rejected" };
                        card.note = format!("`{}` was {how}", d.phase);
                    } else if card.instance == d.phase {
                        card.enter(WpState::Claimed, event, "approved");
                    } else {
                        card.enter(WpState::InReview, event, format!("`{}` approved", d.phase));
                    }
                }
            }
            EventData::MergeStep(d) => {
                if let Some(card) = cards.get_mut(&d.work) {
                    card.branch = Some(d.branch.clone());
                    match d.outcome {
                        MergeOutcome::Merged | MergeOutcome::Already => card.enter(
                            WpState::Approved,
                            event,
                            format!("merged into `{}`", d.into),
                        ),
                        MergeOutcome::Conflict => {
                            let files: Vec<&str> =
                                d.conflicts.iter().map(|c| c.file.as_str()).collect();
                            let why =
                                format!("conflict merging into `{}`: {}", d.into, files.join(", "));
                            card.enter(WpState::Blocked, event, why);
                        }
                    }
                }
            }
            EventData::PolicyDecided(d) if d.hook == "route" => {
                if let Some(card) = cards.get_mut(&d.phase) {
                    let field = |k: &str| d.result.get(k).and_then(Value::as_str);
                    if let Some(agent) = field("agent") {
                        card.agent = Some(agent.to_string());
                    }
                    if let Some(model) = field("model") {
                        card.model = Some(model.to_string());
                    }
                }
            }
            EventData::RunSuspended(_) => board.status = "suspended".into(),
            EventData::RunSucceeded(_) => {
                board.status = "succeeded".into();
                board.ended_at = Some(event.ts.clone());
                for card in cards.values_mut() {
                    if card.succeeded && card.state != WpState::Done {
                        card.enter(WpState::Done, event, "");
                    }
                }
            }
            EventData::RunFailed(d) => {
                board.status = "failed".into();
                board.ended_at = Some(event.ts.clone());
                fail_run(&mut cards, d, event);
            }
            EventData::RunCanceled(_) => {
                board.status = "canceled".into();
                board.ended_at = Some(event.ts.clone());
                for card in cards.values_mut() {
                    if matches!(
                        card.state,
                        WpState::Planned
                            | WpState::Claimed
                            | WpState::InProgress
                            | WpState::ForReview
                            | WpState::InReview
                    ) {
                        card.stop(WpState::Canceled, event, CANCELED_RUN);
                    }
                }
            }
            _ => {}
        }
    }
    add_waiting_notes(&mut cards, &children);
    board.work_packages = cards.into_values().collect();
    board
}

/// A fan-out expanded: packages no longer in the plan are canceled, new ones planned, and the
/// ones planned again start over.
fn expand(
    cards: &mut IndexMap<String, Card>,
    children: &mut HashMap<String, Vec<usize>>,
    by_work: &mut HashMap<String, Vec<usize>>,
    d: &crate::record::event::PhaseExpanded,
    event: &Event,
) {
    let keep: HashSet<&str> = d.children.iter().map(|c| c.key.as_str()).collect();
    let siblings = children.entry(d.phase.clone()).or_default();
    for &i in siblings.iter() {
        let card = &mut cards[i];
        if !keep.contains(card.work.as_str()) && card.state != WpState::Canceled {
            card.enter(WpState::Canceled, event, "no longer in the plan");
        }
    }
    for child in &d.children {
        let instance = format!("{}[{}]", d.phase, child.key);
        let title = match &child.item {
            Value::Object(map) => map.get("title").and_then(Value::as_str),
            _ => None,
        }
        .map(str::to_string);
        let fresh = !cards.contains_key(&instance);
        let card = cards
            .entry(instance.clone())
            .or_insert_with(|| Card::planned(&instance, &d.phase, &child.key, event));
        card.title = title;
        card.lane = child.lane;
        card.depends_on = child.depends_on.clone();
        if !fresh {
            card.succeeded = false;
            let note = card.note.clone();
            card.enter(WpState::Planned, event, note);
        }
        if fresh {
            let index = cards.get_index_of(&instance).unwrap_or_default();
            children.entry(d.phase.clone()).or_default().push(index);
            by_work.entry(child.key.clone()).or_default().push(index);
        }
    }
}

/// The run failed: packages not yet done are canceled, or blocked when their work was done.
fn fail_run(
    cards: &mut IndexMap<String, Card>,
    d: &crate::record::event::RunFinished,
    event: &Event,
) {
    let failed: Vec<String> = d.failed.iter().map(|f| format!("`{f}`")).collect();
    for card in cards.values_mut() {
        match card.state {
            WpState::Planned | WpState::Claimed | WpState::InProgress => {
                card.stop(WpState::Canceled, event, "the run failed first")
            }
            WpState::ForReview | WpState::InReview | WpState::Approved => {
                let why = if failed.is_empty() {
                    "the run failed".to_string()
                } else {
                    format!("the run failed: {}", failed.join(", "))
                };
                card.enter(WpState::Blocked, event, why);
            }
            _ => {}
        }
    }
}

impl Card {
    /// A package just planned by its fan-out.
    fn planned(instance: &str, phase: &str, work: &str, event: &Event) -> Card {
        Card {
            instance: instance.to_string(),
            phase: phase.to_string(),
            work: work.to_string(),
            title: None,
            lane: None,
            depends_on: Vec::new(),
            state: WpState::Planned,
            column: Column::Planned,
            since: event.ts.clone(),
            note: String::new(),
            agent: None,
            model: None,
            cost_usd: 0.0,
            attempts: 0,
            work_ms: 0,
            loops: 0,
            branch: None,
            transitions: vec![Transition {
                state: WpState::Planned,
                at: event.ts.clone(),
                seq: event.seq,
            }],
            succeeded: false,
            gate: None,
            before_blocked: WpState::Planned,
            attempt_since: None,
        }
    }
}

/// An attempt of `phase` started: it also reviews the packages upstream that wait for review
/// (a fan-out child of a review phase is a work package too).
fn start_review(
    cards: &mut IndexMap<String, Card>,
    by_work: &HashMap<String, Vec<usize>>,
    graph: &Graph,
    phase: &str,
    event: &Event,
) {
    let top = crate::record::fold::parent_of(phase).unwrap_or(phase);
    let key = crate::git::work_of(phase);
    // A downstream fan-out child reviews the package of its own item only.
    let candidates: Vec<usize> = if phase != top {
        by_work.get(key).cloned().unwrap_or_default()
    } else {
        (0..cards.len()).collect()
    };
    for i in candidates {
        let card = &mut cards[i];
        if card.awaits_review()
            && card.state == WpState::ForReview
            && graph.reviews(top, &card.phase)
        {
            card.enter(WpState::InReview, event, format!("`{phase}` is running"));
        }
    }
}

const CANCELED_RUN: &str = "the run was canceled";

/// Packages that finished their work and whose downstream phases have all settled are done.
fn finish_reviewed(
    cards: &mut IndexMap<String, Card>,
    graph: &Graph,
    settled: &HashSet<String>,
    event: &Event,
) {
    for card in cards.values_mut() {
        if card.awaits_review() && graph.downstream(&card.phase).all(|p| settled.contains(p)) {
            card.enter(WpState::Done, event, "");
        }
    }
}

/// Why a planned or claimed package waits: its dependencies, else its lane.
fn add_waiting_notes(cards: &mut IndexMap<String, Card>, children: &HashMap<String, Vec<usize>>) {
    let mut notes = Vec::new();
    for (i, card) in cards.values().enumerate() {
        if !card.note.is_empty() || !matches!(card.state, WpState::Planned | WpState::Claimed) {
            continue;
        }
        let siblings = children.get(&card.phase).map(Vec::as_slice).unwrap_or(&[]);
        let sibling = |key: &str| siblings.iter().map(|&j| &cards[j]).find(|c| c.work == key);
        let unmet: Vec<String> = card
            .depends_on
            .iter()
            .filter(|k| sibling(k).is_none_or(|c| !c.succeeded))
            .map(|k| format!("`{k}`"))
            .collect();
        let lane_busy: Vec<String> = siblings
            .iter()
            .map(|&j| &cards[j])
            .filter(|c| {
                c.instance != card.instance
                    && card.lane.is_some()
                    && c.lane == card.lane
                    && c.state == WpState::InProgress
            })
            .map(|c| format!("`{}`", c.work))
            .collect();
        let note = if !unmet.is_empty() {
            format!("waiting on {}", unmet.join(", "))
        } else if let (false, Some(lane)) = (lane_busy.is_empty(), card.lane) {
            format!("lane {lane} busy with {}", lane_busy.join(", "))
        } else if card.state == WpState::Claimed {
            "ready: waiting for a free slot".to_string()
        } else {
            String::new()
        };
        notes.push((i, note));
    }
    for (i, note) in notes {
        cards[i].note = note;
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// Milliseconds from `since` to `until` (RFC 3339 timestamps), if both parse.
pub fn age_ms(since: &str, until: std::time::SystemTime) -> Option<u64> {
    let since = humantime::parse_rfc3339_weak(since).ok()?;
    until
        .duration_since(since)
        .ok()
        .map(|d| d.as_millis() as u64)
}

/// A short age for people: `45s`, `12m`, `3h`, `2d`.
pub fn age_text(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The time ages are measured up to: the run's end if it ended, else `now`.
pub fn reference_time(board: &Board, now: std::time::SystemTime) -> std::time::SystemTime {
    board
        .ended_at
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .unwrap_or(now)
}
