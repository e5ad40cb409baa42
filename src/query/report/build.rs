//! Building the report from a run's events.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::model::FailureKind;
use crate::query::board;
use crate::query::cost;
use crate::record::{fold, Event, EventData};

/// The report of a run, from its events.
pub fn report(events: &[Event]) -> Report {
    let summary = fold(events);
    let board = board::board(events);
    let mut run = run_info(&summary);
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
                        // Rows of the published shapes; anything else is not a check's
                        // errors or a validator's verdicts, whatever its name.
                        "errors" => {
                            let room = ROWS_MAX.saturating_sub(checks.errors.len());
                            checks.errors.extend(
                                rows_of(value, "errors")
                                    .iter()
                                    .filter_map(|e| check_error(&d.phase, e))
                                    .take(room),
                            );
                        }
                        "verdicts" => {
                            let room = ROWS_MAX.saturating_sub(verdicts.len());
                            verdicts.extend(
                                rows_of(value, "verdicts")
                                    .iter()
                                    .filter_map(|v| verdict(&d.phase, v))
                                    .take(room),
                            );
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
                    decision: crate::query::decision_summary(
                        &d.hook,
                        &d.result,
                        d.reason.as_deref(),
                    ),
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
                questions: d
                    .questions
                    .iter()
                    .zip(1..)
                    .map(|(text, number)| Question {
                        number,
                        text: text.clone(),
                        answer: None,
                        by: None,
                        answered_at: None,
                    })
                    .collect(),
            }),
            EventData::ClarificationAnswered(d) => {
                let open = approvals
                    .iter_mut()
                    .rev()
                    .find(|a| a.phase == d.phase && a.approved.is_none());
                let question =
                    open.and_then(|a| a.questions.iter_mut().find(|q| q.number == d.question));
                if let Some(q) = question {
                    q.answer = Some(d.answer.clone());
                    q.by = Some(event.actor.clone());
                    q.answered_at = Some(event.ts.clone());
                }
            }
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
                crate::query::alert_numbers(d),
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
    let phases = crate::query::status_rows(&summary, events)
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
            detail: crate::query::event_detail(e),
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

/// The run's row of the report as its events fold: what failed so far while it runs, and how
/// long it took once it ended.
fn run_info(summary: &crate::record::RunSummary) -> RunInfo {
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
    run
}

fn parent(phase: &str) -> String {
    fold::parent_of(phase).unwrap_or(phase).to_string()
}

/// The phases of the mission that `uses: builtin/analyse-spec`.
fn analyse_phases(events: &[Event]) -> Vec<String> {
    crate::query::mission_phases(events)
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

/// The rows of a recorded value: the array itself, or the array under `key`.
fn rows_of<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    match value {
        Value::Array(rows) => rows,
        Value::Object(map) => map.get(key).and_then(Value::as_array).map_or(&[], |a| a),
        _ => &[],
    }
}

fn check_error(phase: &str, e: &Value) -> Option<CheckError> {
    let e: crate::check::Error = serde_json::from_value(e.clone()).ok()?;
    Some(CheckError {
        phase: phase.to_string(),
        tool: e.tool,
        file: e.file,
        line: e.line,
        column: e.column,
        severity: e.severity.as_str().to_string(),
        code: e.code,
        message: e.message,
        test: e.test,
    })
}

fn verdict(phase: &str, v: &Value) -> Option<Verdict> {
    let v: crate::check::verdicts::Verdict = serde_json::from_value(v.clone()).ok()?;
    Some(Verdict {
        phase: phase.to_string(),
        work_package: v.criterion.split_once('/').map(|(wp, _)| wp.to_string()),
        criterion: v.criterion,
        verdict: v.verdict.as_str().to_string(),
        evidence: v
            .evidence
            .iter()
            .map(|e| {
                let kind = serde_json::to_value(e.kind).unwrap_or_default();
                format!("{} {}", kind.as_str().unwrap_or("?"), e.reference)
            })
            .collect(),
        reason: v.reason,
    })
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
