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

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::board::{self, WpState};
use super::cost;
use crate::model::FailureKind;
use crate::record::{fold, Event, EventData};

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

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CheckError {
    /// The phase that recorded it.
    pub phase: String,
    pub tool: Option<String>,
    pub file: Option<String>,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub severity: Option<String>,
    pub code: Option<String>,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CheckFailure {
    pub phase: String,
    pub attempt: u32,
    pub kind: String,
    pub message: String,
    pub files: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Verdict {
    /// The phase that recorded it.
    pub phase: String,
    /// The acceptance criterion (its id or text).
    pub criterion: String,
    /// `pass`, `fail` or `unknown`.
    pub verdict: String,
    /// The work package it is about, when known.
    pub work_package: Option<String>,
    /// The evidence: a file, a test, command output.
    pub evidence: Option<String>,
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

/// The report of a run, from its events.
pub fn report(events: &[Event]) -> Report {
    let summary = fold(events);
    let board = board::board(events);
    let mut run = RunInfo {
        run_id: summary.run_id.clone(),
        mission: summary.mission.clone(),
        mission_source: String::new(),
        status: summary.status.as_str().to_string(),
        started_at: summary.started_at.clone(),
        ended_at: summary.ended_at.clone(),
        duration_ms: None,
        failed: Vec::new(),
        inputs: summary.inputs.clone(),
        engine_version: String::new(),
        last_seq: summary.last_seq,
    };
    if !summary.status.is_terminal() {
        // Written during the run (an `always` report after a failure): what failed so far.
        run.failed = summary
            .top_level()
            .filter(|p| p.state == crate::record::PhaseState::Failed)
            .map(|p| p.phase.clone())
            .collect();
    }
    if let (Some(start), Some(end)) = (&run.started_at, &run.ended_at) {
        run.duration_ms = fold::duration_ms(start, end);
    }
    let mut spec = None;
    let mut plan_report: Option<(String, Value)> = None;
    let mut tasks: Option<(String, Value)> = None;
    let mut checks = Checks::default();
    let mut verdicts = Vec::new();
    let mut merges = Vec::new();
    let mut decisions = Vec::new();
    let mut approvals: Vec<Approval> = Vec::new();
    let mut loops = Vec::new();
    let mut alerts = Vec::new();
    let mut attempts: BTreeMap<&str, Vec<AttemptRow>> = BTreeMap::new();
    let mut gits: BTreeMap<&str, GitSection> = BTreeMap::new();
    let mut merged: BTreeMap<&str, &'static str> = BTreeMap::new();
    let uses = analyse_phases(events);

    for event in events {
        match &event.data {
            EventData::RunStarted(d) => {
                run.mission_source = d.mission_source.clone();
                run.engine_version = d.engine_version.clone();
            }
            EventData::RunFailed(d) => run.failed = d.failed.clone(),
            EventData::AttemptStarted(d) => {
                attempts.entry(&d.phase).or_default().push(AttemptRow {
                    attempt: d.attempt,
                    started_at: Some(event.ts.clone()),
                    outcome: "running".into(),
                    kind: None,
                    message: None,
                    duration_ms: None,
                    agent: None,
                    model: None,
                    cost_usd: None,
                    files: Vec::new(),
                });
            }
            EventData::AttemptSucceeded(d) => {
                let row = attempt_row(&mut attempts, &d.phase, d.attempt);
                row.outcome = "succeeded".into();
                row.duration_ms = Some(d.duration_ms);
                row.agent = d.agent.clone();
                row.model = d.usage.as_ref().and_then(|u| u.model.clone());
                row.cost_usd = d.usage.as_ref().and_then(|u| u.cost_usd);
                if let Some(git) = &d.git {
                    gits.insert(
                        &d.phase,
                        GitSection {
                            branch: git.branch.clone(),
                            base: git.base.clone(),
                            head: git.head.clone(),
                            commits: git.commits.clone(),
                            files: git.files.clone(),
                            insertions: git.insertions,
                            deletions: git.deletions,
                            outside_owned: git.outside_owned.clone(),
                        },
                    );
                }
                for (name, value) in &d.values {
                    match name.as_str() {
                        "analysis" if uses.contains(&parent(&d.phase)) || spec.is_none() => {
                            if let Some(section) = spec_section(&d.phase, value) {
                                spec = Some(section);
                            }
                        }
                        crate::tasks::REPORT_VALUE => {
                            plan_report = Some((d.phase.clone(), value.clone()))
                        }
                        "tasks" => tasks = Some((d.phase.clone(), value.clone())),
                        "errors" => {
                            for e in rows_of(value, "errors") {
                                if checks.errors.len() < ROWS_MAX {
                                    checks.errors.push(check_error(&d.phase, e));
                                }
                            }
                        }
                        "verdicts" => {
                            for v in rows_of(value, "verdicts") {
                                if verdicts.len() < ROWS_MAX {
                                    verdicts.push(verdict(&d.phase, v));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            EventData::AttemptFailed(d) => {
                let row = attempt_row(&mut attempts, &d.phase, d.attempt);
                row.outcome = "failed".into();
                row.kind = Some(d.kind.as_str().to_string());
                row.message = Some(d.message.clone());
                row.duration_ms = Some(d.duration_ms);
                row.agent = d.agent.clone();
                row.model = d.usage.as_ref().and_then(|u| u.model.clone());
                row.cost_usd = d.usage.as_ref().and_then(|u| u.cost_usd);
                row.files = d.files.clone();
                if matches!(d.kind, FailureKind::Checks | FailureKind::Conflict)
                    && checks.failures.len() < ROWS_MAX
                {
                    checks.failures.push(CheckFailure {
                        phase: d.phase.clone(),
                        attempt: d.attempt,
                        kind: d.kind.as_str().to_string(),
                        message: d.message.clone(),
                        files: d.files.clone(),
                    });
                }
            }
            EventData::MergeStep(d) => {
                merged.insert(&d.work, d.outcome.as_str());
                merges.push(MergeRow {
                    phase: d.phase.clone(),
                    attempt: d.attempt,
                    work: d.work.clone(),
                    branch: d.branch.clone(),
                    commit: d.commit.clone(),
                    into: d.into.clone(),
                    outcome: d.outcome.as_str().to_string(),
                    head: d.head.clone(),
                    conflicts: d.conflicts.iter().map(|c| c.file.clone()).collect(),
                });
            }
            EventData::PolicyDecided(d) if !d.result.is_null() && decisions.len() < ROWS_MAX => {
                decisions.push(Decision {
                    seq: event.seq,
                    phase: d.phase.clone(),
                    pack: d.pack.clone(),
                    version: d.version.clone(),
                    hook: d.hook.clone(),
                    decision: super::decision_summary(&d.hook, &d.result, d.reason.as_deref()),
                });
            }
            EventData::ApprovalRequested(d) => approvals.push(Approval {
                phase: d.phase.clone(),
                reason: d.reason.clone(),
                requested_at: event.ts.clone(),
                approved: None,
                decided_at: None,
                by: None,
                comment: None,
                timed_out: false,
            }),
            EventData::ApprovalDecided(d) => {
                let open = approvals
                    .iter_mut()
                    .rev()
                    .find(|a| a.phase == d.phase && a.approved.is_none());
                if let Some(a) = open {
                    a.approved = Some(d.approved);
                    a.decided_at = Some(event.ts.clone());
                    a.by = Some(event.actor.clone());
                    a.comment = d.comment.clone();
                    a.timed_out = d.timed_out;
                }
            }
            EventData::LoopStarted(d) => loops.push(LoopRow {
                at: event.ts.clone(),
                from: d.from.clone(),
                goto: d.goto.clone(),
                iteration: d.iteration,
                reset: d.reset.clone(),
            }),
            EventData::BudgetAlert(d) => alerts.push(format!(
                "{}: {}: {}",
                d.level,
                super::alert_numbers(d),
                d.message
            )),
            _ => {}
        }
    }

    // Verdicts by the package they are about: the recording instance's item, or the one
    // they name.
    let mut verdicts_of: std::collections::HashMap<&str, Vec<&Verdict>> = Default::default();
    for v in &verdicts {
        let own = fold::parent_of(&v.phase).map(|_| crate::git::work_of(&v.phase));
        let named = v.work_package.as_deref().filter(|n| Some(*n) != own);
        for key in own.into_iter().chain(named) {
            verdicts_of.entry(key).or_default().push(v);
        }
    }
    let work_packages = board
        .work_packages
        .iter()
        .map(|card| WorkPackage {
            instance: card.instance.clone(),
            phase: card.phase.clone(),
            work: card.work.clone(),
            title: card.title.clone(),
            lane: card.lane,
            depends_on: card.depends_on.clone(),
            state: card.state,
            note: card.note.clone(),
            agent: card.agent.clone(),
            model: card.model.clone(),
            cost_usd: card.cost_usd,
            loops: card.loops,
            git: gits.get(card.instance.as_str()).cloned(),
            merge: merged.get(card.instance.as_str()).map(|m| m.to_string()),
            attempts: attempts.remove(card.instance.as_str()).unwrap_or_default(),
            verdicts: verdicts_of
                .get(card.work.as_str())
                .map(|v| v.iter().map(|v| (*v).clone()).collect())
                .unwrap_or_default(),
        })
        .collect();

    let plan = plan_section(plan_report, tasks);
    let phases = super::status_rows(&summary, events)
        .into_iter()
        .map(|r| PhaseRow {
            phase: r.phase,
            state: r.state,
            attempts: r.attempts,
            duration_ms: r.duration_ms,
            cost_usd: r.cost_usd,
            note: r.note,
        })
        .collect();
    let calls = cost::calls_of(&summary.run_id, events, None);
    let groups = |by| {
        cost::report(&calls, by, None)
            .groups
            .into_iter()
            .map(|g| CostGroup {
                key: g.key,
                calls: g.calls,
                cost_usd: g.cost_usd,
                input_tokens: g.input_tokens,
                output_tokens: g.output_tokens,
            })
            .collect::<Vec<_>>()
    };
    let cost = CostSection {
        total_usd: calls.iter().map(|c| c.cost_usd).sum(),
        calls: calls.len() as u64,
        by_phase: groups(cost::By::Phase),
        by_agent: groups(cost::By::Agent),
        by_model: groups(cost::By::Model),
        alerts,
    };
    let timeline = events
        .iter()
        .take(TIMELINE_MAX)
        .map(|e| TimelineRow {
            seq: e.seq,
            ts: e.ts.clone(),
            kind: e.data.type_name().to_string(),
            phase: e.data.phase().map(str::to_string),
            detail: super::event_detail(e),
        })
        .collect();
    Report {
        report_version: REPORT_VERSION,
        run,
        spec,
        plan,
        work_packages,
        phases,
        checks,
        verdicts,
        merges,
        cost,
        decisions,
        approvals,
        loops,
        timeline,
        timeline_omitted: events.len().saturating_sub(TIMELINE_MAX) as u64,
    }
}

fn parent(phase: &str) -> String {
    fold::parent_of(phase).unwrap_or(phase).to_string()
}

/// The phases of the mission that `uses: builtin/analyse-spec`.
fn analyse_phases(events: &[Event]) -> Vec<String> {
    super::mission_phases(events)
        .into_iter()
        .filter(|p| p.uses.as_deref() == Some("builtin/analyse-spec"))
        .map(|p| p.id)
        .collect()
}

fn attempt_row<'a, 'k>(
    attempts: &'a mut BTreeMap<&'k str, Vec<AttemptRow>>,
    phase: &'k str,
    attempt: u32,
) -> &'a mut AttemptRow {
    let rows = attempts.entry(phase).or_default();
    if !rows.iter().any(|r| r.attempt == attempt) {
        rows.push(AttemptRow {
            attempt,
            started_at: None,
            outcome: "running".into(),
            kind: None,
            message: None,
            duration_ms: None,
            agent: None,
            model: None,
            cost_usd: None,
            files: Vec::new(),
        });
    }
    let at = rows.iter().rposition(|r| r.attempt == attempt).unwrap_or(0);
    &mut rows[at]
}

fn text_of(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match value.get(*k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    })
}

fn number_of(value: &Value, key: &str) -> Option<u64> {
    value.get(key).and_then(Value::as_u64)
}

/// The rows of a recorded value: the array itself, or the array under `key`.
fn rows_of<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    match value {
        Value::Array(rows) => rows,
        Value::Object(map) => map.get(key).and_then(Value::as_array).map_or(&[], |a| a),
        _ => &[],
    }
}

fn check_error(phase: &str, e: &Value) -> CheckError {
    CheckError {
        phase: phase.to_string(),
        tool: text_of(e, &["tool"]),
        file: text_of(e, &["file", "path"]),
        line: number_of(e, "line"),
        column: number_of(e, "column"),
        severity: text_of(e, &["severity", "level"]),
        code: text_of(e, &["code"]),
        message: text_of(e, &["message"]).unwrap_or_else(|| e.to_string()),
    }
}

fn verdict(phase: &str, v: &Value) -> Verdict {
    Verdict {
        phase: phase.to_string(),
        criterion: text_of(v, &["criterion", "id", "acceptance"]).unwrap_or_default(),
        verdict: text_of(v, &["verdict", "status", "result"]).unwrap_or_else(|| "unknown".into()),
        work_package: text_of(v, &["work_package", "wp"]),
        evidence: text_of(v, &["evidence"]),
    }
}

fn spec_section(phase: &str, value: &Value) -> Option<SpecSection> {
    let complexity = value.get("complexity")?.as_f64()?;
    let dimensions = value
        .get("dimensions")
        .and_then(Value::as_object)
        .map(|dims| {
            dims.iter()
                .map(|(name, d)| Dimension {
                    name: name.clone(),
                    score: d.get("score").and_then(Value::as_f64).unwrap_or(0.0),
                    weight: d.get("weight").and_then(Value::as_f64).unwrap_or(0.0),
                    signals: strings(d.get("signals")),
                })
                .collect()
        })
        .unwrap_or_default();
    let count = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_array)
            .map_or(0, |a| a.len() as u64)
    };
    Some(SpecSection {
        phase: phase.to_string(),
        spec: text_of(value, &["spec"]).unwrap_or_default(),
        title: text_of(value, &["title"]),
        complexity,
        tier: text_of(value, &["tier"]).unwrap_or_default(),
        ambiguity: value.get("ambiguity").and_then(Value::as_f64),
        dimensions,
        risk_areas: strings(value.get("risk_areas")),
        requirements: count("requirements"),
        questions: count("questions"),
    })
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn plan_section(
    plan_report: Option<(String, Value)>,
    tasks: Option<(String, Value)>,
) -> Option<PlanSection> {
    if let Some((phase, value)) = plan_report {
        if let Ok(report) = serde_json::from_value::<crate::tasks::PlanReport>(value) {
            return Some(PlanSection {
                phase,
                work_packages: report
                    .work_packages
                    .iter()
                    .map(|wp| PlannedPackage {
                        id: wp.id.clone(),
                        title: wp.title.clone(),
                        depends_on: wp.depends_on.clone(),
                        owned_files: wp.owned_files.clone(),
                        requirement_refs: wp.requirement_refs.clone(),
                        estimate: serde_json::to_value(wp.estimate)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string)),
                    })
                    .collect(),
                traceability: report
                    .traceability
                    .iter()
                    .map(|t| TraceRow {
                        id: t.id.clone(),
                        kind: serde_json::to_value(t.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        text: t.text.clone(),
                        work_packages: t.work_packages.clone(),
                    })
                    .collect(),
                covered: report.covered as u64,
                to_cover: report.to_cover as u64,
                lanes: report
                    .lanes
                    .iter()
                    .map(|l| l.work_packages.clone())
                    .collect(),
            });
        }
    }
    let (phase, value) = tasks?;
    let items = value.as_array()?;
    Some(PlanSection {
        phase,
        work_packages: items
            .iter()
            .map(|wp| PlannedPackage {
                id: text_of(wp, &["id"]).unwrap_or_default(),
                title: text_of(wp, &["title"]).unwrap_or_default(),
                depends_on: strings(wp.get("depends_on")),
                owned_files: strings(wp.get("owned_files")),
                requirement_refs: strings(wp.get("requirement_refs")),
                estimate: text_of(wp, &["estimate"]),
            })
            .collect(),
        traceability: Vec::new(),
        covered: 0,
        to_cover: 0,
        lanes: Vec::new(),
    })
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

/// A table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out = line.replace('|', "\\|");
    if text.lines().nth(1).is_some() {
        out.push_str(" …");
    }
    out
}

fn usd(value: f64) -> String {
    super::usd(value)
}

fn ms(value: Option<u64>) -> String {
    super::ms(value)
}

fn opt(value: &Option<String>) -> String {
    value.as_deref().map_or_else(|| "-".to_string(), cell)
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// The report as Markdown (`report.md`).
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let run = &report.run;
    let _ = writeln!(out, "# Run {} of `{}`\n", run.run_id, run.mission);
    let _ = writeln!(out, "- status: **{}**", run.status);
    if run.status == "running" {
        let _ = writeln!(
            out,
            "- written while the run was going; `spectacular report {}` prints it again",
            run.run_id
        );
    }
    if !run.failed.is_empty() {
        let failed: Vec<String> = run.failed.iter().map(|f| format!("`{f}`")).collect();
        let _ = writeln!(out, "- failed: {}", failed.join(", "));
    }
    let _ = writeln!(out, "- mission: `{}`", run.mission_source);
    let _ = writeln!(
        out,
        "- started: {}; ended: {}; took {}",
        run.started_at.as_deref().unwrap_or("-"),
        run.ended_at.as_deref().unwrap_or("-"),
        ms(run.duration_ms)
    );
    let _ = writeln!(
        out,
        "- cost: {} over {} agent call{}",
        usd(report.cost.total_usd),
        report.cost.calls,
        plural(report.cost.calls)
    );
    for (name, value) in &run.inputs {
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "- input `{name}`: {}", cell(&shown));
    }

    if let Some(spec) = &report.spec {
        let _ = writeln!(out, "\n## Spec\n");
        let title = spec
            .title
            .as_deref()
            .map(|t| format!(": {t}"))
            .unwrap_or_default();
        let _ = writeln!(out, "`{}`{title}\n", spec.spec);
        let _ = writeln!(
            out,
            "Complexity **{:.2}** ({}), {} requirements, {} questions{}.\n",
            spec.complexity,
            spec.tier,
            spec.requirements,
            spec.questions,
            if spec.risk_areas.is_empty() {
                String::new()
            } else {
                format!(", risk areas: {}", spec.risk_areas.join(", "))
            }
        );
        if !spec.dimensions.is_empty() {
            let _ = writeln!(out, "| dimension | score | weight | signals |");
            let _ = writeln!(out, "|---|---:|---:|---|");
            for d in &spec.dimensions {
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | {:.2} | {} |",
                    d.name,
                    d.score,
                    d.weight,
                    cell(&d.signals.join("; "))
                );
            }
        }
    }

    if let Some(plan) = &report.plan {
        let _ = writeln!(out, "\n## Plan\n");
        let _ = writeln!(
            out,
            "{} work package{} from `{}`{}.\n",
            plan.work_packages.len(),
            plural(plan.work_packages.len() as u64),
            plan.phase,
            if plan.to_cover > 0 {
                format!(
                    "; {} of {} requirements and criteria covered",
                    plan.covered, plan.to_cover
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(out, "| id | title | depends on | requirements | files |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for wp in &plan.work_packages {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&wp.id),
                cell(&wp.title),
                cell(&wp.depends_on.join(", ")),
                cell(&wp.requirement_refs.join(", ")),
                cell(&wp.owned_files.join(", "))
            );
        }
        if !plan.traceability.is_empty() {
            let _ = writeln!(out, "\n### Traceability\n");
            let _ = writeln!(out, "| id | kind | work packages | text |");
            let _ = writeln!(out, "|---|---|---|---|");
            for t in &plan.traceability {
                let wps = if t.work_packages.is_empty() {
                    "**none**".to_string()
                } else {
                    t.work_packages.join(", ")
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    cell(&t.id),
                    t.kind,
                    cell(&wps),
                    cell(&t.text)
                );
            }
        }
    }

    if !report.work_packages.is_empty() {
        let _ = writeln!(out, "\n## Work packages\n");
        let mut states: Vec<(WpState, usize)> = Vec::new();
        for state in WpState::ALL {
            let n = report
                .work_packages
                .iter()
                .filter(|w| w.state == state)
                .count();
            if n > 0 {
                states.push((state, n));
            }
        }
        let states: Vec<String> = states
            .iter()
            .map(|(state, n)| format!("{n} {}", state.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "{} work package{}: {}.\n",
            report.work_packages.len(),
            plural(report.work_packages.len() as u64),
            states.join(", ")
        );
        let _ = writeln!(
            out,
            "| package | state | lane | branch | commits | diff | attempts | agent / model | cost | verdicts |"
        );
        let _ = writeln!(out, "|---|---|---:|---|---:|---|---:|---|---:|---|");
        for wp in &report.work_packages {
            let (branch, commits, diff) = match &wp.git {
                Some(g) => (
                    format!("`{}`", g.branch),
                    g.commits.len().to_string(),
                    format!(
                        "{} file{}, +{} −{}",
                        g.files.len(),
                        plural(g.files.len() as u64),
                        g.insertions,
                        g.deletions
                    ),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let who = [wp.agent.as_deref(), wp.model.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" / ");
            let verdicts = verdict_counts(&wp.verdicts);
            let state = if wp.note.is_empty() {
                wp.state.as_str().to_string()
            } else {
                format!("{}: {}", wp.state.as_str(), cell(&wp.note))
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                wp.instance,
                state,
                wp.lane.map_or_else(|| "-".to_string(), |l| l.to_string()),
                branch,
                commits,
                diff,
                wp.attempts.len(),
                if who.is_empty() {
                    "-".into()
                } else {
                    cell(&who)
                },
                usd(wp.cost_usd),
                if verdicts.is_empty() {
                    "-".into()
                } else {
                    verdicts
                }
            );
        }
        for wp in &report.work_packages {
            let failed: Vec<&AttemptRow> = wp
                .attempts
                .iter()
                .filter(|a| a.outcome == "failed")
                .collect();
            let outside = wp.git.as_ref().map(|g| &g.outside_owned);
            if failed.is_empty() && outside.is_none_or(|o| o.is_empty()) {
                continue;
            }
            let _ = writeln!(out, "\n### `{}`\n", wp.instance);
            if let Some(outside) = outside.filter(|o| !o.is_empty()) {
                let _ = writeln!(out, "- changed outside its files: {}", outside.join(", "));
            }
            for a in failed {
                let _ = writeln!(
                    out,
                    "- attempt {} failed: {}: {}",
                    a.attempt,
                    a.kind.as_deref().unwrap_or("-"),
                    cell(a.message.as_deref().unwrap_or(""))
                );
            }
        }
    }

    let _ = writeln!(out, "\n## Phases\n");
    let _ = writeln!(out, "| phase | state | attempts | time | cost | note |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|---|");
    for p in &report.phases {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            p.phase,
            p.state,
            p.attempts,
            ms(p.duration_ms),
            if p.cost_usd > 0.0 {
                usd(p.cost_usd)
            } else {
                "-".into()
            },
            cell(&p.note)
        );
    }

    if !report.checks.errors.is_empty() || !report.checks.failures.is_empty() {
        let _ = writeln!(out, "\n## Checks and errors\n");
        for f in &report.checks.failures {
            let files = if f.files.is_empty() {
                String::new()
            } else {
                format!(" (files: {})", f.files.join(", "))
            };
            let _ = writeln!(
                out,
                "- `{}` attempt {} failed ({}){files}: {}",
                f.phase,
                f.attempt,
                f.kind,
                cell(&f.message)
            );
        }
        if !report.checks.errors.is_empty() {
            if !report.checks.failures.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "| location | severity | tool | code | message |");
            let _ = writeln!(out, "|---|---|---|---|---|");
            for e in &report.checks.errors {
                let mut at = e.file.clone().unwrap_or_else(|| "-".into());
                if let Some(line) = e.line {
                    let _ = write!(at, ":{line}");
                    if let Some(column) = e.column {
                        let _ = write!(at, ":{column}");
                    }
                }
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    cell(&at),
                    opt(&e.severity),
                    opt(&e.tool),
                    opt(&e.code),
                    cell(&e.message)
                );
            }
        }
    }

    if !report.verdicts.is_empty() {
        let _ = writeln!(out, "\n## Verdicts\n");
        let _ = writeln!(out, "| criterion | verdict | package | evidence | by |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for v in &report.verdicts {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | `{}` |",
                cell(&v.criterion),
                cell(&v.verdict),
                opt(&v.work_package),
                opt(&v.evidence),
                v.phase
            );
        }
    }

    if !report.merges.is_empty() {
        let _ = writeln!(out, "\n## Merges\n");
        for m in &report.merges {
            let conflicts = if m.conflicts.is_empty() {
                String::new()
            } else {
                format!(": {}", m.conflicts.join(", "))
            };
            let _ = writeln!(
                out,
                "- `{}` ({} at {}) into `{}`: {}{conflicts}",
                m.work,
                m.branch,
                short(&m.commit),
                m.into,
                m.outcome
            );
        }
    }

    let _ = writeln!(out, "\n## Cost\n");
    if report.cost.calls == 0 {
        let _ = writeln!(out, "No agent calls.");
    } else {
        for (title, groups) in [
            ("phase", &report.cost.by_phase),
            ("agent", &report.cost.by_agent),
            ("model", &report.cost.by_model),
        ] {
            let _ = writeln!(out, "| {title} | calls | cost | tokens in | tokens out |");
            let _ = writeln!(out, "|---|---:|---:|---:|---:|");
            for g in groups {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    cell(&g.key),
                    g.calls,
                    usd(g.cost_usd),
                    g.input_tokens,
                    g.output_tokens
                );
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "Total {} over {} call{}.",
            usd(report.cost.total_usd),
            report.cost.calls,
            plural(report.cost.calls)
        );
    }
    for alert in &report.cost.alerts {
        let _ = writeln!(out, "- budget alert: {}", cell(alert));
    }

    if !report.decisions.is_empty() {
        let _ = writeln!(out, "\n## Policy decisions\n");
        let _ = writeln!(out, "| phase | pack | hook | decision |");
        let _ = writeln!(out, "|---|---|---|---|");
        for d in &report.decisions {
            let _ = writeln!(
                out,
                "| {} | {} {} | {} | {} |",
                d.phase,
                d.pack,
                d.version,
                d.hook,
                cell(&d.decision)
            );
        }
    }

    if !report.approvals.is_empty() {
        let _ = writeln!(out, "\n## Approvals\n");
        for a in &report.approvals {
            let outcome = match a.approved {
                None => "waiting".to_string(),
                Some(approved) => {
                    let what = match (approved, a.timed_out) {
                        (true, false) => "approved",
                        (false, false) => "rejected",
                        (true, true) => "approved on timeout",
                        (false, true) => "rejected on timeout",
                    };
                    let comment = a.comment.as_deref().map(|c| format!(": {}", cell(c)));
                    format!(
                        "{what} by {}{}",
                        a.by.as_deref().unwrap_or("-"),
                        comment.unwrap_or_default()
                    )
                }
            };
            let _ = writeln!(out, "- `{}` ({}): {outcome}", a.phase, cell(&a.reason));
        }
    }

    if !report.loops.is_empty() {
        let _ = writeln!(out, "\n## Loops\n");
        for l in &report.loops {
            let _ = writeln!(
                out,
                "- loop {} from `{}` back to `{}` at {}: reset {}",
                l.iteration,
                l.from,
                l.goto,
                l.at,
                l.reset.join(", ")
            );
        }
    }

    let _ = writeln!(out, "\n## Timeline\n");
    let _ = writeln!(out, "| seq | time | event | phase | detail |");
    let _ = writeln!(out, "|---:|---|---|---|---|");
    for t in &report.timeline {
        let time = t.ts.get(11..23).unwrap_or(&t.ts);
        let _ = writeln!(
            out,
            "| {} | {time} | {} | {} | {} |",
            t.seq,
            t.kind,
            t.phase.as_deref().unwrap_or(""),
            cell(&t.detail)
        );
    }
    if report.timeline_omitted > 0 {
        let _ = writeln!(
            out,
            "\n{} more events: `spectacular events {}` lists them all.",
            report.timeline_omitted, run.run_id
        );
    }
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `2 pass, 1 fail`.
fn verdict_counts(verdicts: &[Verdict]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in verdicts {
        *counts.entry(v.verdict.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(v, n)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
