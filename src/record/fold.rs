//! A pure fold of a run's events into a summary (run status, phases in order of first mention,
//! attempts) for `status`, `replay` and `replay --verify`. No I/O, no clock: the same events
//! always give the same summary.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use crate::model::FailureKind;

use super::event::{Event, EventData};

/// Where a run stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// The last event is neither terminal nor `run.suspended`: the run is running, or was
    /// interrupted (the caller tells them apart by checking the run lock).
    #[default]
    Running,
    /// Waiting for approvals (`run.suspended`).
    Suspended,
    Succeeded,
    Failed,
    Canceled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Suspended => "suspended",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "running" => RunStatus::Running,
            "suspended" => RunStatus::Suspended,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "canceled" => RunStatus::Canceled,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Canceled
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a phase stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PhaseState {
    #[default]
    Pending,
    Ready,
    Running,
    /// An approval was requested and not decided yet.
    Waiting,
    Succeeded,
    Failed,
    Skipped,
}

impl PhaseState {
    pub const ALL: [PhaseState; 7] = [
        PhaseState::Pending,
        PhaseState::Ready,
        PhaseState::Running,
        PhaseState::Waiting,
        PhaseState::Succeeded,
        PhaseState::Failed,
        PhaseState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PhaseState::Pending => "pending",
            PhaseState::Ready => "ready",
            PhaseState::Running => "running",
            PhaseState::Waiting => "waiting",
            PhaseState::Succeeded => "succeeded",
            PhaseState::Failed => "failed",
            PhaseState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<PhaseState> {
        PhaseState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Succeeded, failed or skipped.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            PhaseState::Succeeded | PhaseState::Failed | PhaseState::Skipped
        )
    }
}

impl std::fmt::Display for PhaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One phase of a run, folded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhaseSummary {
    pub phase: String,
    pub state: PhaseState,
    /// The highest attempt number seen (attempts keep counting across loops and resumes).
    pub attempts: u32,
    /// When the phase started (its first attempt, expansion or approval request since it was
    /// last reset by a loop).
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// `ended_at - started_at`, when both are known.
    pub duration_ms: Option<u64>,
    /// `<kind>: <message>` of the last failure (kept across a loop reset).
    pub last_failure: Option<String>,
    /// For fan-out children (`impl[wp-1]`), the parent phase (`impl`).
    pub parent: Option<String>,
}

/// One attempt of a phase, folded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptSummary {
    pub phase: String,
    pub attempt: u32,
    /// `running`, `succeeded` or `failed`.
    pub state: &'static str,
    /// The failure kind (`exit`, `timeout`, …) of a failed attempt.
    pub failure_kind: Option<String>,
    pub exit_code: Option<i32>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<u64>,
}

/// A run, folded from its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSummary {
    pub run_id: String,
    pub mission: String,
    pub status: RunStatus,
    pub started_at: Option<String>,
    /// When the run ended (a terminal event); cleared by a resume.
    pub ended_at: Option<String>,
    pub last_seq: u64,
    pub inputs: BTreeMap<String, serde_json::Value>,
    /// Phases in order of first mention.
    pub phases: IndexMap<String, PhaseSummary>,
}

/// How many fan-out children are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildCounts {
    pub total: u32,
    pub pending: u32,
    pub ready: u32,
    pub running: u32,
    pub waiting: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub skipped: u32,
}

impl ChildCounts {
    pub fn add(&mut self, state: PhaseState) {
        self.total += 1;
        *match state {
            PhaseState::Pending => &mut self.pending,
            PhaseState::Ready => &mut self.ready,
            PhaseState::Running => &mut self.running,
            PhaseState::Waiting => &mut self.waiting,
            PhaseState::Succeeded => &mut self.succeeded,
            PhaseState::Failed => &mut self.failed,
            PhaseState::Skipped => &mut self.skipped,
        } += 1;
    }

    /// Children that are done (succeeded, failed or skipped).
    pub fn done(&self) -> u32 {
        self.succeeded + self.failed + self.skipped
    }
}

/// Fold a run's events (in seq order) into its summary.
pub fn fold(events: &[Event]) -> RunSummary {
    let mut summary = RunSummary::default();
    for event in events {
        summary.apply(event);
    }
    summary
}

/// Fold a run's events into its attempts, in order of start.
pub fn fold_attempts(events: &[Event]) -> Vec<AttemptSummary> {
    let mut attempts: IndexMap<(String, u32), AttemptSummary> = IndexMap::new();
    for event in events {
        match &event.data {
            EventData::AttemptStarted(d) => {
                let a = attempts
                    .entry((d.phase.clone(), d.attempt))
                    .or_insert_with(|| AttemptSummary {
                        phase: d.phase.clone(),
                        attempt: d.attempt,
                        ..AttemptSummary::default()
                    });
                a.state = "running";
                a.started_at = Some(event.ts.clone());
            }
            EventData::AttemptSucceeded(d) => {
                let a = attempt_entry(&mut attempts, &d.phase, d.attempt);
                a.state = "succeeded";
                a.exit_code = d.exit_code;
                a.duration_ms = Some(d.duration_ms);
                a.ended_at = Some(event.ts.clone());
            }
            EventData::AttemptFailed(d) => {
                let a = attempt_entry(&mut attempts, &d.phase, d.attempt);
                a.state = "failed";
                a.failure_kind = Some(failure_kind_str(d.kind).to_string());
                a.exit_code = d.exit_code;
                a.duration_ms = Some(d.duration_ms);
                a.ended_at = Some(event.ts.clone());
            }
            _ => {}
        }
    }
    attempts.into_values().collect()
}

fn attempt_entry<'a>(
    attempts: &'a mut IndexMap<(String, u32), AttemptSummary>,
    phase: &str,
    attempt: u32,
) -> &'a mut AttemptSummary {
    attempts
        .entry((phase.to_string(), attempt))
        .or_insert_with(|| AttemptSummary {
            phase: phase.to_string(),
            attempt,
            state: "running",
            ..AttemptSummary::default()
        })
}

/// The snake_case name of a failure kind, as in the log.
pub fn failure_kind_str(kind: crate::model::FailureKind) -> &'static str {
    kind.as_str()
}

/// The parent of a fan-out child: `impl[wp-1]` → `impl`.
pub fn parent_of(phase: &str) -> Option<&str> {
    if !phase.ends_with(']') {
        return None;
    }
    let open = phase.rfind('[')?;
    (open > 0).then(|| &phase[..open])
}

impl RunSummary {
    /// Fold one more event into the summary (events must come in seq order).
    pub fn apply(&mut self, event: &Event) {
        let ts = &event.ts;
        if self.run_id.is_empty() {
            self.run_id = event.run_id.clone();
        }
        self.last_seq = event.seq;
        if event.data.is_after_the_fact() {
            // A delivery record, a comment or a pull request may follow the end of a run; it
            // changes nothing.
            return;
        }
        self.status = match &event.data {
            EventData::RunSucceeded(_) => RunStatus::Succeeded,
            EventData::RunFailed(_) => RunStatus::Failed,
            EventData::RunCanceled(_) => RunStatus::Canceled,
            EventData::RunSuspended(_) => RunStatus::Suspended,
            _ => RunStatus::Running,
        };
        match &event.data {
            EventData::RunStarted(d) => {
                self.mission = d.mission.clone();
                self.inputs = d.inputs.clone();
                self.started_at = Some(ts.clone());
                self.ended_at = None;
            }
            EventData::RunResumed(_) => self.ended_at = None,
            EventData::PhaseReady(d) => self.phase(&d.phase).state = PhaseState::Ready,
            EventData::PhaseExpanded(d) => {
                let parent = self.phase(&d.phase);
                if matches!(parent.state, PhaseState::Pending | PhaseState::Ready) {
                    parent.state = PhaseState::Running;
                }
                parent.started_at.get_or_insert_with(|| ts.clone());
                for child in &d.children {
                    let name = format!("{}[{}]", d.phase, child.key);
                    let c = self.phase(&name);
                    c.parent = Some(d.phase.clone());
                }
            }
            EventData::AttemptStarted(d) => {
                let p = self.phase(&d.phase);
                p.state = PhaseState::Running;
                p.attempts = p.attempts.max(d.attempt);
                p.started_at.get_or_insert_with(|| ts.clone());
                p.ended_at = None;
                p.duration_ms = None;
            }
            EventData::AttemptSucceeded(d) => {
                let p = self.phase(&d.phase);
                p.attempts = p.attempts.max(d.attempt);
            }
            EventData::AttemptFailed(d) => {
                let p = self.phase(&d.phase);
                p.attempts = p.attempts.max(d.attempt);
                p.last_failure = Some(format!("{}: {}", failure_kind_str(d.kind), d.message));
                // A canceled or interrupted attempt runs again when the run resumes.
                if matches!(d.kind, FailureKind::Canceled | FailureKind::Interrupted) {
                    p.state = PhaseState::Pending;
                }
            }
            EventData::PhaseSucceeded(d) => {
                let p = self.phase(&d.phase);
                p.attempts = p.attempts.max(d.attempts);
                p.finish(PhaseState::Succeeded, ts);
            }
            EventData::PhaseFailed(d) => {
                let p = self.phase(&d.phase);
                p.attempts = p.attempts.max(d.attempts);
                p.last_failure = Some(format!("{}: {}", failure_kind_str(d.kind), d.message));
                p.finish(PhaseState::Failed, ts);
            }
            EventData::PhaseSkipped(d) => self.phase(&d.phase).finish(PhaseState::Skipped, ts),
            EventData::LoopStarted(d) => {
                self.phase(&d.from);
                self.phase(&d.goto);
                for name in &d.reset {
                    let p = self.phase(name);
                    p.state = PhaseState::Pending;
                    p.started_at = None;
                    p.ended_at = None;
                    p.duration_ms = None;
                }
            }
            EventData::ApprovalRequested(d) => {
                let p = self.phase(&d.phase);
                p.state = PhaseState::Waiting;
                p.started_at.get_or_insert_with(|| ts.clone());
                p.ended_at = None;
                p.duration_ms = None;
            }
            EventData::ApprovalDecided(d) => {
                let p = self.phase(&d.phase);
                if d.approved {
                    p.finish(PhaseState::Succeeded, ts);
                } else {
                    let why = d.comment.as_deref().unwrap_or("no comment");
                    let how = if d.timed_out { "timed out" } else { "rejected" };
                    p.last_failure = Some(format!("{how}: {why}"));
                    p.finish(PhaseState::Failed, ts);
                }
            }
            EventData::ClarificationAnswered(d) => {
                // The phase keeps waiting until the engine takes the answers up.
                self.phase(&d.phase);
            }
            EventData::CancelRequested(_)
            | EventData::RunSuspended(_)
            | EventData::PolicyDecided(_)
            | EventData::FallbackActivated(_)
            | EventData::AttemptRedelivered(_)
            | EventData::AttemptRecalled(_)
            | EventData::MergeStep(_)
            | EventData::BudgetAlert(_)
            | EventData::NotificationSent(_)
            | EventData::NotificationFailed(_) => {}
            EventData::IssueCommented(_) | EventData::PrOpened(_) | EventData::PrUpdated(_) => {}
            EventData::RunSucceeded(_) | EventData::RunFailed(_) | EventData::RunCanceled(_) => {
                self.ended_at = Some(ts.clone());
            }
        }
    }

    /// The phase named `name`, added (pending) on first mention.
    fn phase(&mut self, name: &str) -> &mut PhaseSummary {
        let index = match self.phases.get_index_of(name) {
            Some(index) => index,
            None => {
                let summary = PhaseSummary {
                    phase: name.to_string(),
                    parent: parent_of(name).map(str::to_owned),
                    ..PhaseSummary::default()
                };
                self.phases.insert_full(name.to_string(), summary).0
            }
        };
        &mut self.phases[index]
    }

    /// The fan-out children of `parent`, in order of first mention.
    pub fn children<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a PhaseSummary> {
        self.phases
            .values()
            .filter(move |p| p.parent.as_deref() == Some(parent))
    }

    /// How many children of `parent` are in each state.
    pub fn child_counts(&self, parent: &str) -> ChildCounts {
        let mut counts = ChildCounts::default();
        for child in self.children(parent) {
            counts.add(child.state);
        }
        counts
    }

    /// Every fan-out parent with its children's counts, in order of the first child.
    pub fn fan_outs(&self) -> IndexMap<String, ChildCounts> {
        let mut out: IndexMap<String, ChildCounts> = IndexMap::new();
        for p in self.phases.values() {
            if let Some(parent) = &p.parent {
                out.entry(parent.clone()).or_default().add(p.state);
            }
        }
        out
    }

    /// Phases that are not fan-out children, in order.
    pub fn top_level(&self) -> impl Iterator<Item = &PhaseSummary> {
        self.phases.values().filter(|p| p.parent.is_none())
    }
}

impl PhaseSummary {
    fn finish(&mut self, state: PhaseState, ts: &str) {
        self.state = state;
        self.ended_at = Some(ts.to_string());
        self.duration_ms = self
            .started_at
            .as_deref()
            .and_then(|start| duration_ms(start, ts));
    }
}

/// Milliseconds from `start` to `end` (RFC 3339), or `None` if either cannot be read.
pub fn duration_ms(start: &str, end: &str) -> Option<u64> {
    let start = humantime::parse_rfc3339_weak(start).ok()?;
    let end = humantime::parse_rfc3339_weak(end).ok()?;
    Some(
        end.duration_since(start)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::event::{ApprovalDecided, ApprovalRequested, PhaseRef};

    fn event(seq: u64, ts: &str, data: EventData) -> Event {
        Event {
            event_id: format!("E{seq}"),
            schema: 1,
            run_id: "R".into(),
            seq,
            ts: ts.into(),
            causation_id: None,
            actor: "engine".into(),
            data,
        }
    }

    #[test]
    fn fan_out_children_know_their_parent() {
        assert_eq!(parent_of("impl[wp-1]"), Some("impl"));
        assert_eq!(parent_of("impl[a][b]"), Some("impl[a]"));
        assert_eq!(parent_of("impl"), None);
        assert_eq!(parent_of("[x]"), None);
    }

    #[test]
    fn a_rejected_approval_fails_the_gate_with_the_comment() {
        let events = [
            event(
                1,
                "2026-11-21T10:00:00.000Z",
                EventData::PhaseReady(PhaseRef {
                    phase: "gate".into(),
                }),
            ),
            event(
                2,
                "2026-11-21T10:00:01.000Z",
                EventData::ApprovalRequested(ApprovalRequested {
                    phase: "gate".into(),
                    reason: "critical".into(),
                    timeout_ms: None,
                    questions: Vec::new(),
                    plan: None,
                }),
            ),
            event(
                3,
                "2026-11-21T10:00:03.500Z",
                EventData::ApprovalDecided(ApprovalDecided {
                    phase: "gate".into(),
                    approved: false,
                    comment: Some("no tests".into()),
                    timed_out: false,
                }),
            ),
        ];
        let s = fold(&events);
        let gate = &s.phases["gate"];
        assert_eq!(gate.state, PhaseState::Failed);
        assert_eq!(gate.last_failure.as_deref(), Some("rejected: no tests"));
        assert_eq!(gate.duration_ms, Some(2_500));
        assert_eq!(s.status, RunStatus::Running);
        assert_eq!(fold(&events[..2]).phases["gate"].state, PhaseState::Waiting);
    }

    #[test]
    fn states_round_trip_through_text() {
        for state in PhaseState::ALL {
            assert_eq!(PhaseState::parse(state.as_str()), Some(state));
        }
        assert_eq!(RunStatus::parse("canceled"), Some(RunStatus::Canceled));
    }
}
