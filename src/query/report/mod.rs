//! The run report (`report.md` and `report.json`): what a run did, built from its events
//! alone, so that `builtin/report` writes it during the run and `spectacular report` prints
//! it again at any time, the same.
//!
//! Sections: the run; the spec and its complexity with the signals (the recorded `analysis`
//! value of a `builtin/analyse-spec` phase); the plan and its traceability (the recorded
//! `plan_report`, else `tasks`); each work package (branch, commits, diffstat, lane, attempts,
//! verdicts; see [`super::board`] for its state); the phases; checks and errors (recorded
//! `errors` values, `attempt.failed` of kind `checks` with their files); verdicts (recorded
//! `verdicts` values); merges; cost by phase, agent and model; policy decisions; approvals;
//! loops; the timeline.
//!
//! The JSON shape is published (`spectacular schema report`, committed as
//! `schemas/report.schema.json`). Pure: never writes events.

mod build;
mod markdown;

pub use build::report;
pub use markdown::markdown;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::board::WpState;

/// The `$id` of the report's JSON Schema.
pub const REPORT_SCHEMA_ID: &str = "https://spectacular.dev/schemas/report.schema.json";

/// The version of the report's shape: bumped when a field changes meaning or goes away.
pub const REPORT_VERSION: u32 = 1;

/// The most timeline rows a report lists; the rest are counted.
pub const TIMELINE_MAX: usize = 2000;

/// The most rows of the other lists (errors, decisions, verdicts) a report keeps.
pub const ROWS_MAX: usize = 1000;

/// What a run did: a report built from its events.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Report {
    /// The version of this shape (1).
    pub report_version: u32,
    pub run: RunInfo,
    /// The spec and its complexity, when a `builtin/analyse-spec` phase recorded its analysis.
    pub spec: Option<SpecSection>,
    /// The plan and its traceability, when a planner's plan was recorded.
    pub plan: Option<PlanSection>,
    /// Every work package (fan-out child), in the order they were planned.
    pub work_packages: Vec<WorkPackage>,
    /// Every phase of the mission, in its order, with why it ended where it did.
    pub phases: Vec<PhaseRow>,
    pub checks: Checks,
    /// Verdicts per acceptance criterion, from every recorded `verdicts` value.
    pub verdicts: Vec<Verdict>,
    /// The steps of `builtin/merge`.
    pub merges: Vec<MergeRow>,
    pub cost: CostSection,
    /// Policy decisions (every hook answer, abstentions left out).
    pub decisions: Vec<Decision>,
    pub approvals: Vec<Approval>,
    /// Rework loops.
    pub loops: Vec<LoopRow>,
    /// The run's events, one line each (at most 2000).
    pub timeline: Vec<TimelineRow>,
    /// Events left out of `timeline`.
    pub timeline_omitted: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RunInfo {
    pub run_id: String,
    pub mission: String,
    /// Where the mission came from (a path or `builtin:missions/<name>/mission.yaml`).
    pub mission_source: String,
    /// `running`, `succeeded`, `failed`, `canceled`, `suspended`.
    pub status: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<u64>,
    /// Phases that failed the run (`run.failed`), or that failed so far while it runs.
    pub failed: Vec<String>,
    pub inputs: BTreeMap<String, Value>,
    pub engine_version: String,
    /// The last event the report read.
    pub last_seq: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SpecSection {
    /// The phase that analysed it.
    pub phase: String,
    /// The spec's name as given.
    pub spec: String,
    pub title: Option<String>,
    /// The weighted complexity score, 0 to 1 (`run.complexity`).
    pub complexity: f64,
    /// `low`, `medium`, `high`, `critical`.
    pub tier: String,
    pub ambiguity: Option<f64>,
    /// Each dimension of the score with the signals behind it.
    pub dimensions: Vec<Dimension>,
    pub risk_areas: Vec<String>,
    pub requirements: u64,
    pub questions: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Dimension {
    pub name: String,
    pub score: f64,
    pub weight: f64,
    pub signals: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PlanSection {
    /// The planner phase.
    pub phase: String,
    pub work_packages: Vec<PlannedPackage>,
    /// One row per requirement, criterion and story of the spec, with the packages covering it.
    pub traceability: Vec<TraceRow>,
    /// Requirements and criteria covered, of how many.
    pub covered: u64,
    pub to_cover: u64,
    /// Groups of packages whose files may overlap (never run at the same time).
    pub lanes: Vec<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PlannedPackage {
    pub id: String,
    pub title: String,
    pub depends_on: Vec<String>,
    pub owned_files: Vec<String>,
    pub requirement_refs: Vec<String>,
    pub estimate: Option<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TraceRow {
    pub id: String,
    /// `requirement`, `criterion`, `acceptance`, `story`.
    pub kind: String,
    pub text: String,
    pub work_packages: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct WorkPackage {
    pub instance: String,
    pub phase: String,
    pub work: String,
    pub title: Option<String>,
    pub lane: Option<u32>,
    pub depends_on: Vec<String>,
    /// Its state on the board.
    pub state: WpState,
    pub note: String,
    pub agent: Option<String>,
    pub model: Option<String>,
    pub cost_usd: f64,
    pub loops: u32,
    /// The git work of its last successful attempt.
    pub git: Option<GitSection>,
    /// The outcome of its last merge step (`merged`, `already`, `conflict`).
    pub merge: Option<String>,
    pub attempts: Vec<AttemptRow>,
    /// Verdicts about this package (a `verdicts` value of its own instance, or naming it).
    pub verdicts: Vec<Verdict>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct GitSection {
    pub branch: String,
    pub base: String,
    pub head: String,
    pub commits: Vec<String>,
    pub files: Vec<String>,
    pub insertions: u64,
    pub deletions: u64,
    /// Changed files outside the package's `owned_files`.
    pub outside_owned: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct AttemptRow {
    pub attempt: u32,
    pub started_at: Option<String>,
    /// `running`, `succeeded`, `failed`.
    pub outcome: String,
    /// The failure kind (`exit`, `timeout`, `checks`…), for a failed attempt.
    pub kind: Option<String>,
    pub message: Option<String>,
    pub duration_ms: Option<u64>,
    pub agent: Option<String>,
    pub model: Option<String>,
    pub cost_usd: Option<f64>,
    /// The files a failure is about.
    pub files: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PhaseRow {
    pub phase: String,
    pub state: String,
    pub attempts: u32,
    pub duration_ms: Option<u64>,
    pub cost_usd: f64,
    pub note: String,
}

#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct Checks {
    /// Errors the checks reported (recorded `errors` values), at most 1000.
    pub errors: Vec<CheckError>,
    /// Attempts that failed because the work is wrong (kind `checks`) or did not merge
    /// (kind `conflict`), with the files they are about.
    pub failures: Vec<CheckFailure>,
}

/// One error of a recorded `errors` value (`errors.json`, its published schema), and the
/// phase that recorded it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CheckError {
    /// The phase that recorded it.
    pub phase: String,
    pub tool: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// `error`, `warning` or `note`.
    pub severity: String,
    pub code: Option<String>,
    pub message: String,
    /// The failing test, for test runners.
    pub test: Option<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CheckFailure {
    pub phase: String,
    pub attempt: u32,
    pub kind: String,
    pub message: String,
    pub files: Vec<String>,
}

/// One verdict of a recorded `verdicts` value (`verdicts.json`, its published schema), and
/// the phase that recorded it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Verdict {
    /// The phase that recorded it.
    pub phase: String,
    /// The acceptance criterion: `<work package>/<n>`.
    pub criterion: String,
    /// `pass`, `fail` or `unknown`.
    pub verdict: String,
    /// The work package it is about (the criterion's first part).
    pub work_package: Option<String>,
    /// Each piece of evidence, as `<kind> <ref>` (`test tests::greets`, `file src/a.rs:3`).
    pub evidence: Vec<String>,
    /// Why, in the validator's words.
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MergeRow {
    pub phase: String,
    pub attempt: u32,
    pub work: String,
    pub branch: String,
    pub commit: String,
    pub into: String,
    pub outcome: String,
    pub head: Option<String>,
    pub conflicts: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct CostSection {
    pub total_usd: f64,
    /// Agent calls (attempts with usage).
    pub calls: u64,
    pub by_phase: Vec<CostGroup>,
    pub by_agent: Vec<CostGroup>,
    pub by_model: Vec<CostGroup>,
    /// Budget alerts (`soft`, `overshoot`).
    pub alerts: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CostGroup {
    pub key: String,
    pub calls: u64,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Decision {
    pub seq: u64,
    pub phase: String,
    pub pack: String,
    pub version: String,
    /// `route`, `govern`, `budget`.
    pub hook: String,
    /// What was decided and why, in one line.
    pub decision: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Approval {
    pub phase: String,
    pub reason: String,
    pub requested_at: String,
    /// `None` while it waits.
    pub approved: Option<bool>,
    pub decided_at: Option<String>,
    pub by: Option<String>,
    pub comment: Option<String>,
    pub timed_out: bool,
    /// The numbered questions of a clarification (`builtin/clarify`), question 1 first, each
    /// with its answer once given; none for a gate. A clarification whose questions are all
    /// answered goes on without a decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<Question>,
}

/// A clarification's question and its answer.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Question {
    /// 1-based.
    pub number: u32,
    pub text: String,
    /// `None` while it waits for an answer.
    pub answer: Option<String>,
    /// Who answered (`user:alice`).
    pub by: Option<String>,
    pub answered_at: Option<String>,
}

impl Approval {
    /// Every question answered (false for a gate, which has none).
    pub fn answered(&self) -> bool {
        !self.questions.is_empty() && self.questions.iter().all(|q| q.answer.is_some())
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct LoopRow {
    pub at: String,
    pub from: String,
    pub goto: String,
    pub iteration: u32,
    pub reset: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TimelineRow {
    pub seq: u64,
    pub ts: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub phase: Option<String>,
    pub detail: String,
}

/// The report's JSON Schema (draft 2020-12).
pub fn report_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut value = generator.into_root_schema_for::<Report>().to_value();
    if let Value::Object(map) = &mut value {
        map.insert("$id".into(), Value::String(REPORT_SCHEMA_ID.into()));
        map.insert("title".into(), Value::String("report.json".into()));
        map.insert(
            "description".into(),
            Value::String(
                "What a Spectacular run did, built from its events: `report.json`, written by \
                 `builtin/report` and printed by `spectacular report --json`."
                    .into(),
            ),
        );
    }
    value
}

/// The report's JSON Schema as pretty JSON with a trailing newline.
pub fn report_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&report_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The report as pretty JSON with a trailing newline.
pub fn json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}
