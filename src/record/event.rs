//! Events: immutable, schema-versioned records of every transition of a run. The JSON shape
//! of each event is public API (snapshot-tested; old logs are fixtures that must keep loading).
//!
//! One line of `events.jsonl`:
//!
//! ```json
//! {"event_id":"01J…","type":"phase.succeeded","schema":1,"run_id":"01J…","seq":42,
//!  "ts":"2026-11-21T10:15:03.120Z","causation_id":"01J…","actor":"engine","data":{…}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use super::usage::{CostSource, Usage};
use crate::model::FailureKind;

/// The envelope schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One event: the envelope and its typed payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub schema: u32,
    pub run_id: String,
    /// Gap-free, starting at 1, per run.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// The event that led to this one.
    pub causation_id: Option<String>,
    /// Who caused it: `engine`, `user:<name>`, `policy:<pack>`.
    pub actor: String,
    pub data: EventData,
}

/// The payloads, one variant per event type. Types are additive: new variants may appear;
/// a changed shape gets a new `schema` and an upcaster in [`Event::from_json_line`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventData {
    #[serde(rename = "run.started")]
    RunStarted(RunStarted),
    #[serde(rename = "run.resumed")]
    RunResumed(RunResumed),
    #[serde(rename = "phase.ready")]
    PhaseReady(PhaseRef),
    #[serde(rename = "phase.expanded")]
    PhaseExpanded(PhaseExpanded),
    #[serde(rename = "attempt.started")]
    AttemptStarted(AttemptStarted),
    #[serde(rename = "attempt.succeeded")]
    AttemptSucceeded(AttemptSucceeded),
    #[serde(rename = "attempt.failed")]
    AttemptFailed(AttemptFailed),
    #[serde(rename = "phase.succeeded")]
    PhaseSucceeded(PhaseSucceeded),
    #[serde(rename = "phase.failed")]
    PhaseFailed(PhaseFailed),
    #[serde(rename = "phase.skipped")]
    PhaseSkipped(PhaseSkipped),
    #[serde(rename = "loop.started")]
    LoopStarted(LoopStarted),
    #[serde(rename = "approval.requested")]
    ApprovalRequested(ApprovalRequested),
    #[serde(rename = "approval.decided")]
    ApprovalDecided(ApprovalDecided),
    #[serde(rename = "clarification.answered")]
    ClarificationAnswered(ClarificationAnswered),
    #[serde(rename = "run.cancel_requested")]
    CancelRequested(CancelRequested),
    #[serde(rename = "run.suspended")]
    RunSuspended(RunSuspended),
    #[serde(rename = "run.succeeded")]
    RunSucceeded(RunFinished),
    #[serde(rename = "run.failed")]
    RunFailed(RunFinished),
    #[serde(rename = "run.canceled")]
    RunCanceled(RunFinished),
    #[serde(rename = "policy.decided")]
    PolicyDecided(Box<PolicyDecided>),
    #[serde(rename = "fallback.activated")]
    FallbackActivated(FallbackActivated),
    #[serde(rename = "merge.step")]
    MergeStep(MergeStep),
    #[serde(rename = "budget.alert")]
    BudgetAlert(BudgetAlert),
    #[serde(rename = "notification.sent")]
    NotificationSent(Notification),
    #[serde(rename = "notification.failed")]
    NotificationFailed(Notification),
    #[serde(rename = "issue.commented")]
    IssueCommented(IssueCommented),
    #[serde(rename = "pr.opened")]
    PrOpened(PullRequest),
    #[serde(rename = "pr.updated")]
    PrUpdated(PullRequest),
    #[serde(rename = "attempt.redelivered")]
    AttemptRedelivered(AttemptRedelivered),
}

impl EventData {
    /// The event type, as written in the log (`phase.succeeded`).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventData::RunStarted(_) => "run.started",
            EventData::RunResumed(_) => "run.resumed",
            EventData::PhaseReady(_) => "phase.ready",
            EventData::PhaseExpanded(_) => "phase.expanded",
            EventData::AttemptStarted(_) => "attempt.started",
            EventData::AttemptSucceeded(_) => "attempt.succeeded",
            EventData::AttemptFailed(_) => "attempt.failed",
            EventData::PhaseSucceeded(_) => "phase.succeeded",
            EventData::PhaseFailed(_) => "phase.failed",
            EventData::PhaseSkipped(_) => "phase.skipped",
            EventData::LoopStarted(_) => "loop.started",
            EventData::ApprovalRequested(_) => "approval.requested",
            EventData::ApprovalDecided(_) => "approval.decided",
            EventData::ClarificationAnswered(_) => "clarification.answered",
            EventData::CancelRequested(_) => "run.cancel_requested",
            EventData::RunSuspended(_) => "run.suspended",
            EventData::RunSucceeded(_) => "run.succeeded",
            EventData::RunFailed(_) => "run.failed",
            EventData::RunCanceled(_) => "run.canceled",
            EventData::PolicyDecided(_) => "policy.decided",
            EventData::FallbackActivated(_) => "fallback.activated",
            EventData::MergeStep(_) => "merge.step",
            EventData::BudgetAlert(_) => "budget.alert",
            EventData::NotificationSent(_) => "notification.sent",
            EventData::NotificationFailed(_) => "notification.failed",
            EventData::IssueCommented(_) => "issue.commented",
            EventData::PrOpened(_) => "pr.opened",
            EventData::PrUpdated(_) => "pr.updated",
            EventData::AttemptRedelivered(_) => "attempt.redelivered",
        }
    }

    /// Every event type name, in declaration order.
    pub const TYPE_NAMES: &'static [&'static str] = &[
        "run.started",
        "run.resumed",
        "phase.ready",
        "phase.expanded",
        "attempt.started",
        "attempt.succeeded",
        "attempt.failed",
        "phase.succeeded",
        "phase.failed",
        "phase.skipped",
        "loop.started",
        "approval.requested",
        "approval.decided",
        "run.cancel_requested",
        "run.suspended",
        "run.succeeded",
        "run.failed",
        "run.canceled",
        "policy.decided",
        "fallback.activated",
        "budget.alert",
        "merge.step",
        "clarification.answered",
        "notification.sent",
        "notification.failed",
        "issue.commented",
        "pr.opened",
        "pr.updated",
        "attempt.redelivered",
    ];

    /// Decode a payload from its type name and its `data` JSON: the same result as reading
    /// the tagged form `{"type":…,"data":…}`, without assembling it and parsing twice.
    pub fn from_type_and_data(kind: &str, data: &str) -> Result<EventData, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(data);
        let value = EventData::deserialize_payload(kind, &mut de)?;
        de.end()?;
        Ok(value)
    }

    /// Decode the payload of an event of type `kind` from any deserializer.
    fn deserialize_payload<'de, D: serde::Deserializer<'de>>(
        kind: &str,
        de: D,
    ) -> Result<EventData, D::Error> {
        macro_rules! read {
            ($variant:ident) => {
                EventData::$variant(Deserialize::deserialize(de)?)
            };
        }
        Ok(match kind {
            "run.started" => read!(RunStarted),
            "run.resumed" => read!(RunResumed),
            "phase.ready" => read!(PhaseReady),
            "phase.expanded" => read!(PhaseExpanded),
            "attempt.started" => read!(AttemptStarted),
            "attempt.succeeded" => read!(AttemptSucceeded),
            "attempt.failed" => read!(AttemptFailed),
            "phase.succeeded" => read!(PhaseSucceeded),
            "phase.failed" => read!(PhaseFailed),
            "phase.skipped" => read!(PhaseSkipped),
            "loop.started" => read!(LoopStarted),
            "approval.requested" => read!(ApprovalRequested),
            "approval.decided" => read!(ApprovalDecided),
            "run.cancel_requested" => read!(CancelRequested),
            "run.suspended" => read!(RunSuspended),
            "run.succeeded" => read!(RunSucceeded),
            "run.failed" => read!(RunFailed),
            "run.canceled" => read!(RunCanceled),
            "policy.decided" => read!(PolicyDecided),
            "fallback.activated" => read!(FallbackActivated),
            "budget.alert" => read!(BudgetAlert),
            "attempt.redelivered" => read!(AttemptRedelivered),
            "merge.step" => read!(MergeStep),
            "clarification.answered" => read!(ClarificationAnswered),
            "notification.sent" => read!(NotificationSent),
            "notification.failed" => read!(NotificationFailed),
            "issue.commented" => read!(IssueCommented),
            "pr.opened" => read!(PrOpened),
            "pr.updated" => read!(PrUpdated),
            other => {
                return Err(serde::de::Error::unknown_variant(
                    other,
                    EventData::TYPE_NAMES,
                ))
            }
        })
    }

    /// The phase this event is about, if any.
    pub fn phase(&self) -> Option<&str> {
        match self {
            EventData::PhaseReady(d) => Some(&d.phase),
            EventData::PhaseExpanded(d) => Some(&d.phase),
            EventData::AttemptStarted(d) => Some(&d.phase),
            EventData::AttemptSucceeded(d) => Some(&d.phase),
            EventData::AttemptFailed(d) => Some(&d.phase),
            EventData::PhaseSucceeded(d) => Some(&d.phase),
            EventData::PhaseFailed(d) => Some(&d.phase),
            EventData::PhaseSkipped(d) => Some(&d.phase),
            EventData::LoopStarted(d) => Some(&d.from),
            EventData::ApprovalRequested(d) => Some(&d.phase),
            EventData::ApprovalDecided(d) => Some(&d.phase),
            EventData::ClarificationAnswered(d) => Some(&d.phase),
            EventData::PolicyDecided(d) => Some(&d.phase),
            EventData::FallbackActivated(d) => Some(&d.phase),
            EventData::AttemptRedelivered(d) => Some(&d.phase),
            EventData::MergeStep(d) => Some(&d.phase),
            _ => None,
        }
    }

    /// Is this the record of a webhook delivery? Such events may follow the event that ended
    /// or suspended the run, and change nothing about its state.
    pub fn is_notification(&self) -> bool {
        matches!(
            self,
            EventData::NotificationSent(_) | EventData::NotificationFailed(_)
        )
    }

    /// Is this a record of something done outside the run, possibly after it stopped (a
    /// webhook told, an issue commented, a pull request opened)? Such events never change how
    /// the run ended.
    pub fn is_after_the_fact(&self) -> bool {
        self.is_notification()
            || matches!(
                self,
                EventData::IssueCommented(_) | EventData::PrOpened(_) | EventData::PrUpdated(_)
            )
    }

    /// Does this event end the run (for now: a suspended run can continue later)?
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventData::RunSucceeded(_) | EventData::RunFailed(_) | EventData::RunCanceled(_)
        )
    }
}

/// The first event of a run: pins the mission (its source, digest and the digests of the
/// files it references) and the inputs, so that resume and replay never read a drifted file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    pub mission: String,
    /// Where the mission came from (a path or `builtin:missions/<name>/mission.yaml`).
    pub mission_source: String,
    /// `sha256:<hex>` of the mission file and every file it references.
    pub mission_digest: String,
    /// The mission file's text, exactly as validated.
    pub mission_text: String,
    /// Referenced files (templates, schemas), relative path → `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Inputs after defaults and type conversion.
    #[serde(default)]
    pub inputs: BTreeMap<String, serde_json::Value>,
    /// Global concurrency limit (`--max-parallel`).
    pub max_parallel: u32,
    /// The spectacular version that started the run.
    pub engine_version: String,
    /// The commit the run's work packages start from (input `base_branch`, else the
    /// project's `HEAD`), for missions with `workspace: worktree` phases or `builtin/merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_base: Option<Box<GitBase>>,
}

/// Where a run's work on branches starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GitBase {
    /// The branch named (`main`), or `HEAD`.
    pub branch: String,
    pub commit: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResumed {
    /// Attempts that were running when the engine stopped; recorded as interrupted next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interrupted: Vec<String>,
    /// The mission was upgraded to a changed file (`resume --upgrade`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upgraded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission_text: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseRef {
    /// Phase id; fan-out children are `parent[key]`.
    pub phase: String,
}

/// A `for_each` phase expanded into children, from recorded facts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseExpanded {
    pub phase: String,
    pub children: Vec<Child>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Child {
    /// The child's key (the item's `id`, else its index).
    pub key: String,
    pub item: serde_json::Value,
    /// Keys of sibling children this one waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// The lane of a work package: children whose `owned_files` may overlap share a lane, and
    /// two children of one lane never run at the same time. `None` when items own no files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptStarted {
    pub phase: String,
    /// 1-based, counted across retries, loops and resumes.
    pub attempt: u32,
    /// The attempt's working directory, relative to the run directory (or `.` for the repo).
    pub workdir: String,
    /// The argv started, if a process was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Digest of the rendered prompt, for agent phases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_digest: Option<String>,
    /// Deadline of this attempt in milliseconds from its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Dollars reserved against the run's hard cap for this attempt (agent phases of a
    /// mission with a budget); released when the attempt ends, replaced by its actual cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_usd: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptSucceeded {
    pub phase: String,
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// Declared outputs: name → artifact path relative to the run directory.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, String>,
    /// Outputs that are JSON (or text under 64 KiB), recorded so that `if`, `for_each` and
    /// templates read recorded facts only: name → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, serde_json::Value>,
    /// The agent that ran the attempt (agent phases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Tokens, model, session and cost of an agent attempt, and where the cost came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Box<Usage>>,
    /// The agent's answer (Claude Code's `result`, Codex's last message, an HTTP API's text…),
    /// redacted, at most 64 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// What a `workspace: worktree` attempt left on its branch, committed by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<Box<GitWork>>,
    /// For a `workspace: integration` attempt (checks, a validator): the integration
    /// branch's commit it ran on, the same before and after it. `--apply` applies exactly
    /// this commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_head: Option<String>,
}

/// The work an attempt committed on its work package's branch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GitWork {
    /// `spectacular/<run-short>-<work package>`.
    pub branch: String,
    /// The worktree, relative to the project root
    /// (`.spectacular/worktrees/<run>/<instance>`).
    pub worktree: String,
    /// The commit the attempt started from.
    pub base: String,
    /// The branch's commit after the attempt (its last commit, or `base` when it changed
    /// nothing).
    pub head: String,
    /// The commits the attempt added, oldest first (the agent's own and the engine's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<String>,
    /// Files changed between `base` and `head`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default)]
    pub insertions: u64,
    #[serde(default)]
    pub deletions: u64,
    /// Changed files outside the work package's `owned_files` (reported; a governance policy
    /// can deny them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside_owned: Vec<String>,
}

/// One step of `builtin/merge`: a work package's branch merged (or found merged already, or
/// conflicting) into the run's integration branch. Recorded before the next step starts, so
/// a merge killed at any point resumes where it stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergeStep {
    /// The merge phase.
    pub phase: String,
    pub attempt: u32,
    /// The work package's instance (`implement[WP01]`).
    pub work: String,
    /// Its branch and the commit merged.
    pub branch: String,
    pub commit: String,
    /// The integration branch (`spectacular/<run-short>`).
    pub into: String,
    pub outcome: MergeOutcome,
    /// The integration branch's commit after the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The conflicting files and their hunks (`conflict` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<ConflictFile>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeOutcome {
    /// Merged with a merge commit (or fast-forwarded).
    Merged,
    /// Already contained in the integration branch (a resumed merge): nothing done.
    Already,
    /// Conflicted: nothing merged; see `conflicts`.
    Conflict,
}

impl MergeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeOutcome::Merged => "merged",
            MergeOutcome::Already => "already",
            MergeOutcome::Conflict => "conflict",
        }
    }
}

/// A file that conflicted, with its conflict hunks (bounded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConflictFile {
    pub file: String,
    /// Each hunk as git leaves it: `<<<<<<<` … `=======` … `>>>>>>>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hunks: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptFailed {
    pub phase: String,
    pub attempt: u32,
    pub kind: FailureKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub duration_ms: u64,
    /// The agent that ran the attempt (agent phases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What the agent used before it failed (failed calls can cost money too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Box<Usage>>,
    /// The files the failure is about (a check's errors, a merge's conflicts): a loop back to
    /// a fan-out redoes only the work packages that own them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseSucceeded {
    pub phase: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseFailed {
    pub phase: String,
    pub attempts: u32,
    pub kind: FailureKind,
    pub message: String,
    /// The failure was tolerated (`continue_on_error`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseSkipped {
    pub phase: String,
    pub reason: SkipReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Its `if` was false.
    Condition,
    /// A phase it needs failed (or was rejected) and it is not `always`.
    UpstreamFailed,
    /// The run was canceled before it started.
    Canceled,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Condition => "condition",
            SkipReason::UpstreamFailed => "upstream_failed",
            SkipReason::Canceled => "canceled",
        }
    }
}

/// A rework loop: `from` failed and the run goes back to `goto`; `reset` phases run again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopStarted {
    pub from: String,
    pub goto: String,
    /// 1 for the first loop.
    pub iteration: u32,
    pub reset: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    pub phase: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The numbered questions of a clarification (`builtin/clarify`), question 1 first:
    /// `spectacular answer <run> <n> "…"` answers them, and the phase runs once every one is
    /// answered (or a person approves it with questions left open).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<String>,
    /// The checked plan a gate approves, summarised when the request was recorded (a gate
    /// downstream of a phase whose output has `check: { kind: plan }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Box<PlanSummary>>,
}

/// A checked plan as an approval shows it: its work packages, the lanes (packages whose
/// `owned_files` may overlap, run one after another), coverage and an estimated cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// The phase that wrote the plan.
    pub phase: String,
    /// The work packages' ids, in the plan's order.
    pub work_packages: Vec<String>,
    /// Waves of packages that can run together (dependency depth).
    pub waves: u32,
    /// The lanes with more than one package, each in the order its packages run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lanes: Vec<Vec<String>>,
    /// How many lanes in all (one per package that shares no file).
    pub lane_count: u32,
    /// Requirements and success criteria covered, of how many.
    pub covered: u32,
    pub to_cover: u32,
    /// Requirements and success criteria no package covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncovered: Vec<String>,
    /// The estimated cost in dollars with `model`'s catalogue prices, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The plan was written by an agent with no prices (a `command` agent): no estimate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unpriced: bool,
}

/// A person answered question `question` (1-based) of the clarification `phase` waits for.
/// The answer is one line of text, bounded; the clarification step writes it into the spec's
/// `## Clarifications` section when the phase runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClarificationAnswered {
    pub phase: String,
    pub question: u32,
    /// The question, as it was asked.
    pub text: String,
    pub answer: String,
}

/// A comment written on the issue a run came from (`github:owner/repo#123`): the checked
/// plan (`what: plan`) or how the run ended (`what: end`, with the `seq` of the event that
/// ended it, so that a run resumed and ended again comments again).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssueCommented {
    pub issue: String,
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_seq: Option<u64>,
    /// Where the comment is (its address, or GitLab's note id).
    pub url: String,
}

/// The pull (GitHub) or merge (GitLab) request of a run's integration branch, opened or
/// updated: where (`project`, `github:owner/repo`), its number and address, the branch
/// pushed and the commit it was at, and the branch it asks to merge into.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullRequest {
    pub project: String,
    pub number: u64,
    pub url: String,
    pub branch: String,
    pub head: String,
    pub base: String,
    /// The issue it closes, if the run came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalDecided {
    pub phase: String,
    pub approved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The decision was taken by the gate's `on_timeout`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelRequested {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSuspended {
    /// Gates waiting for a decision.
    pub waiting: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    /// Phases that failed (for `run.failed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An agent attempt moved to the next entry of a fallback chain: the agent (or model) it used
/// failed in a way worth another try (unavailable, rate limit, overload, server error,
/// timeout). The failed one cools down for a while.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FallbackActivated {
    pub phase: String,
    pub attempt: u32,
    pub from_agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_model: Option<String>,
    pub to_agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_model: Option<String>,
    /// The failure class and message that triggered the hop.
    pub reason: String,
    /// What the failed candidate cost (also part of the attempt's usage when it ends): spent
    /// now, for the budgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// What the next candidate reserves against the budgets, at its own model's price (in
    /// place of the failed candidate's reservation); absent when the run has no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_usd: Option<f64>,
}

/// A NATS worker took a running attempt after the worker that had it went silent for longer
/// than the work queue's ack wait (killed, or cut off): the earlier worker's interruption. The
/// attempt goes on; only one outcome is recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptRedelivered {
    pub phase: String,
    pub attempt: u32,
    /// The worker that took it now (`--name`, else its host name and process id).
    pub worker: String,
    /// How many times the attempt was delivered to a worker (2 or more).
    pub delivery: u64,
}

/// The run's spending crossed a threshold: `soft` (the mission's `soft_usd`, once per run) or
/// `overshoot` (a client spent more than it reserved; no more agent work under the cap).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetAlert {
    pub level: String,
    pub spent_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_usd: Option<f64>,
    pub message: String,
}

/// A webhook of the project's `notify:` configuration was told about an event of the run
/// (`notification.sent`), or could not be (`notification.failed`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The webhook's `name`.
    pub webhook: String,
    /// What it was told: `approval`, `question`, `failed`, `succeeded` or `budget`.
    pub kind: String,
    /// The `seq` of the event it was about.
    pub event_seq: u64,
    /// Requests made (1 plus the retries).
    pub attempts: u32,
    /// The HTTP status of the last answer, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed (`notification.failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A policy hook's decision about a phase: who decided (pack and version), which hook, on
/// what input (a digest of the context, params and route it saw), what and why. `result` is
/// the hook's answer as JSON: `null` when it abstained, `{"decision":"error",…}` when it
/// failed (which counts as a deny).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyDecided {
    pub phase: String,
    pub pack: String,
    pub version: String,
    /// `route`, `govern` or `budget`.
    pub hook: String,
    pub result: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `sha256:<hex>` of the hook's input.
    pub input_digest: String,
    /// The layer of the pack (`builtin`, `user`, `project`, `mission`): which route wins
    /// depends on it. Absent in logs written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// The routing context the hooks saw (`phase`, `run`, `agents`, `models`), on the first
    /// decision of each phase attempt only; the decisions after it in the same attempt saw the
    /// same context. What-if replay evaluates other packs on it. Absent in logs written before
    /// it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// On a winning route the engine did not (wholly) apply: why (`not applied: model
    /// `claude-haiku`: the phase pins model `claude-sonnet-4-5``).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

/// Why a log line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("event schema {found} is newer than this spectacular understands (up to {SCHEMA_VERSION}); upgrade spectacular")]
    TooNew { found: u32 },
    #[error(
        "event type `{kind}` is unknown to this spectacular; it was written by a newer version"
    )]
    UnknownType { kind: String },
}

impl DecodeError {
    /// Was the line written by a newer spectacular (a newer schema or an unknown event type)?
    /// Such a line is intact: it must be kept, never repaired away.
    pub fn is_newer(&self) -> bool {
        matches!(
            self,
            DecodeError::TooNew { .. } | DecodeError::UnknownType { .. }
        )
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    schema: u32,
    run_id: &'a str,
    seq: u64,
    ts: &'a str,
    causation_id: Option<&'a str>,
    actor: &'a str,
    data: Option<PayloadOut<'a>>,
}

/// The payload of an event without its tag: the `data` of the envelope.
pub struct PayloadOut<'a>(pub &'a EventData);

impl Serialize for PayloadOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            EventData::RunStarted(d) => d.serialize(s),
            EventData::RunResumed(d) => d.serialize(s),
            EventData::PhaseReady(d) => d.serialize(s),
            EventData::PhaseExpanded(d) => d.serialize(s),
            EventData::AttemptStarted(d) => d.serialize(s),
            EventData::AttemptSucceeded(d) => d.serialize(s),
            EventData::AttemptFailed(d) => d.serialize(s),
            EventData::PhaseSucceeded(d) => d.serialize(s),
            EventData::PhaseFailed(d) => d.serialize(s),
            EventData::PhaseSkipped(d) => d.serialize(s),
            EventData::LoopStarted(d) => d.serialize(s),
            EventData::ApprovalRequested(d) => d.serialize(s),
            EventData::ApprovalDecided(d) => d.serialize(s),
            EventData::ClarificationAnswered(d) => d.serialize(s),
            EventData::CancelRequested(d) => d.serialize(s),
            EventData::RunSuspended(d) => d.serialize(s),
            EventData::RunSucceeded(d) | EventData::RunFailed(d) | EventData::RunCanceled(d) => {
                d.serialize(s)
            }
            EventData::PolicyDecided(d) => d.serialize(s),
            EventData::FallbackActivated(d) => d.serialize(s),
            EventData::MergeStep(d) => d.serialize(s),
            EventData::BudgetAlert(d) => d.serialize(s),
            EventData::NotificationSent(d) | EventData::NotificationFailed(d) => d.serialize(s),
            EventData::IssueCommented(d) => d.serialize(s),
            EventData::PrOpened(d) | EventData::PrUpdated(d) => d.serialize(s),
            EventData::AttemptRedelivered(d) => d.serialize(s),
        }
    }
}

/// The envelope as read: one pass over the line. `data` is decoded in place when `type` (and
/// `schema`) come before it, as this build writes them; otherwise it is kept raw and decoded
/// afterwards.
struct EnvelopeIn<'a> {
    event_id: String,
    kind: String,
    schema: u32,
    run_id: String,
    seq: u64,
    ts: String,
    causation_id: Option<String>,
    actor: String,
    payload: Payload<'a>,
}

enum Payload<'a> {
    Decoded(EventData),
    Raw(&'a RawValue),
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    EventId,
    #[serde(rename = "type")]
    Kind,
    Schema,
    RunId,
    Seq,
    Ts,
    CausationId,
    Actor,
    Data,
    #[serde(other)]
    Other,
}

struct PayloadSeed<'k>(&'k str);

impl<'de> serde::de::DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = EventData;
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<EventData, D::Error> {
        EventData::deserialize_payload(self.0, de)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for EnvelopeIn<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = EnvelopeIn<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let mut event_id = None;
        let mut kind: Option<String> = None;
        let mut schema = None;
        let mut run_id = None;
        let mut seq = None;
        let mut ts = None;
        let mut causation_id = None;
        let mut actor = None;
        let mut data = None;
        let mut raw_data = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::EventId => event_id = Some(map.next_value()?),
                Field::Kind => kind = Some(map.next_value()?),
                Field::Schema => schema = Some(map.next_value()?),
                Field::RunId => run_id = Some(map.next_value()?),
                Field::Seq => seq = Some(map.next_value()?),
                Field::Ts => ts = Some(map.next_value()?),
                Field::CausationId => causation_id = map.next_value()?,
                Field::Actor => actor = Some(map.next_value()?),
                Field::Data => match (&kind, schema) {
                    (Some(kind), Some(schema))
                        if schema <= SCHEMA_VERSION
                            && EventData::TYPE_NAMES.contains(&kind.as_str()) =>
                    {
                        data = Some(map.next_value_seed(PayloadSeed(kind))?);
                    }
                    _ => raw_data = Some(map.next_value::<&'a RawValue>()?),
                },
                Field::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let payload = match (data, raw_data) {
            (Some(data), _) => Payload::Decoded(data),
            (None, Some(raw)) => Payload::Raw(raw),
            (None, None) => return Err(A::Error::missing_field("data")),
        };
        Ok(EnvelopeIn {
            event_id: event_id.ok_or_else(|| A::Error::missing_field("event_id"))?,
            kind: kind.ok_or_else(|| A::Error::missing_field("type"))?,
            schema: schema.ok_or_else(|| A::Error::missing_field("schema"))?,
            run_id: run_id.ok_or_else(|| A::Error::missing_field("run_id"))?,
            seq: seq.ok_or_else(|| A::Error::missing_field("seq"))?,
            ts: ts.ok_or_else(|| A::Error::missing_field("ts"))?,
            causation_id,
            actor: actor.ok_or_else(|| A::Error::missing_field("actor"))?,
            payload,
        })
    }
}

impl Event {
    /// The event as one JSON line (no trailing newline), fields in envelope order.
    pub fn to_json_line(&self) -> String {
        let mut line = Vec::with_capacity(256);
        self.write_json_line(&mut line);
        // serde_json writes UTF-8 only.
        String::from_utf8(line).unwrap_or_default()
    }

    /// Append the event as one JSON line (no trailing newline) to `out`: one pass, straight
    /// from the typed payload.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        let envelope = EnvelopeOut {
            event_id: &self.event_id,
            kind: self.data.type_name(),
            schema: self.schema,
            run_id: &self.run_id,
            seq: self.seq,
            ts: &self.ts,
            causation_id: self.causation_id.as_deref(),
            actor: &self.actor,
            data: Some(PayloadOut(&self.data)),
        };
        let start = out.len();
        if let Err(e) = serde_json::to_writer(&mut *out, &envelope) {
            // Only a map with keys that are not strings could fail, and no payload has one:
            // the envelope is still written, with a `null` payload.
            tracing::error!("this is a bug in spectacular; please report it: the payload of an event could not be written as JSON: {e}");
            out.truncate(start);
            let envelope = EnvelopeOut {
                data: None,
                ..envelope
            };
            let _ = serde_json::to_writer(&mut *out, &envelope);
        }
    }

    /// Read one line of a log, upcasting older schemas.
    pub fn from_json_line(line: &str) -> Result<Event, DecodeError> {
        let envelope: EnvelopeIn<'_> = serde_json::from_str(line)?;
        if envelope.schema > SCHEMA_VERSION {
            return Err(DecodeError::TooNew {
                found: envelope.schema,
            });
        }
        // Schema 1 is current: no upcasting yet. Later versions upcast here, by schema.
        let data = match envelope.payload {
            Payload::Decoded(data) => data,
            Payload::Raw(_) if !EventData::TYPE_NAMES.contains(&envelope.kind.as_str()) => {
                return Err(DecodeError::UnknownType {
                    kind: envelope.kind,
                })
            }
            Payload::Raw(raw) => EventData::from_type_and_data(&envelope.kind, raw.get())?,
        };
        Ok(Event {
            event_id: envelope.event_id,
            schema: envelope.schema,
            run_id: envelope.run_id,
            seq: envelope.seq,
            ts: envelope.ts,
            causation_id: envelope.causation_id,
            actor: envelope.actor,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"event_id":"E1","type":"phase.ready","schema":1,"run_id":"R","seq":1,"ts":"2026-11-21T10:00:00.000Z","causation_id":null,"actor":"engine","data":{"phase":"plan"}}"#;

    #[test]
    fn fields_may_come_in_any_order() {
        let event = Event::from_json_line(LINE).unwrap();
        let reordered = r#"{"data":{"phase":"plan"},"seq":1,"run_id":"R","actor":"engine","ts":"2026-11-21T10:00:00.000Z","schema":1,"type":"phase.ready","event_id":"E1","extra":[1]}"#;
        assert_eq!(Event::from_json_line(reordered).unwrap(), event);
        assert_eq!(event.to_json_line(), LINE);
    }

    /// The line written in one pass is the one the tagged form gives, for the golden sample
    /// of every event type.
    #[test]
    fn payloads_are_written_as_their_tagged_form_says() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        let mut seen = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let event = Event::from_json_line(line).unwrap();
                let tagged = serde_json::to_value(&event.data).unwrap();
                assert_eq!(
                    serde_json::to_string(&PayloadOut(&event.data)).unwrap(),
                    tagged["data"].to_string()
                );
                let again = Event::from_json_line(&event.to_json_line()).unwrap();
                assert_eq!(again, event);
                seen.insert(event.data.type_name());
            }
        }
        assert_eq!(seen.len(), EventData::TYPE_NAMES.len(), "{seen:?}");
    }

    #[test]
    fn bad_envelopes_are_refused() {
        let unknown = LINE.replace("phase.ready", "phase.unknown");
        let err = Event::from_json_line(&unknown).unwrap_err();
        assert!(err.is_newer(), "{err:?}");
        assert!(
            err.to_string().contains("`phase.unknown` is unknown"),
            "{err}"
        );
        let newer = LINE.replace(r#""schema":1"#, r#""schema":2"#);
        assert!(Event::from_json_line(&newer).unwrap_err().is_newer());
        let no_seq = LINE.replace(r#""seq":1,"#, "");
        let err = Event::from_json_line(&no_seq).unwrap_err().to_string();
        assert!(err.contains("missing field `seq`"), "{err}");
        let no_data = LINE.replace(r#","data":{"phase":"plan"}"#, "");
        let err = Event::from_json_line(&no_data).unwrap_err().to_string();
        assert!(err.contains("missing field `data`"), "{err}");
        let bad_payload = LINE.replace(r#""phase":"plan""#, r#""phase":7"#);
        assert!(Event::from_json_line(&bad_payload).is_err());
        let trailing = format!("{LINE} x");
        assert!(Event::from_json_line(&trailing).is_err());
    }
}
