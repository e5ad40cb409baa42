//! The payload of each event type: what the `data` of a log line holds. Their JSON shape is
//! public API (golden samples in `tests/fixtures/events/`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Usage;
use crate::model::FailureKind;

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

/// After a coordinator failover (`resume --nats`), the new coordinator asked the NATS workers
/// to stop an attempt the previous coordinator had published and the run records as
/// interrupted: its outcome would be dropped, so a worker still running it stops, and one
/// that has not taken it yet never runs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecalled {
    pub phase: String,
    pub attempt: u32,
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
