//! The JSON the pages read: one more projection of the logs, built with the read side's own
//! functions (`query`), so that the pages show what `status`, `board`, `cost` and `report`
//! print. Nothing here writes.

use serde_json::{json, Value};

use super::graph;
use crate::query::{self, board, cost, report};
use crate::record::fold::fold_attempts;
use crate::record::{self, Event, EventData, Store};

/// The most timeline entries a run page gets (the latest ones).
pub const TIMELINE_MAX: usize = 2_000;
/// The most bytes of an attempt's log a page gets (its end).
pub const LOG_TAIL_MAX: u64 = 64 * 1024;

/// Each run's cost by the length of its log when it was summed, so that the list of runs
/// reads again only the logs that grew.
#[derive(Debug, Default)]
pub struct CostCache(std::sync::Mutex<std::collections::HashMap<String, (u64, f64)>>);

impl CostCache {
    /// What the agent calls of `run_id` cost, from its log.
    fn cost(&self, store: &Store, run_id: &str) -> f64 {
        let len = std::fs::metadata(store.events_path(run_id)).map_or(0, |m| m.len());
        let mut cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, cost)) = cache.get(run_id) {
            if *seen == len {
                return *cost;
            }
        }
        let events = store.read_events(run_id).unwrap_or_default();
        let cost = cost::calls_of(run_id, &events, None)
            .iter()
            .map(|c| c.cost_usd)
            .sum();
        cache.insert(run_id.to_string(), (len, cost));
        cost
    }
}

/// The runs of the store, as `spectacular runs --json` lists them, with each run's cost. A
/// run whose log cannot be read is listed as `damaged` with its error.
pub fn runs(store: &Store, costs: &CostCache) -> Result<Value, record::Error> {
    if !store.dir.is_dir() {
        return Ok(json!([]));
    }
    let (projection, damaged) = store.projection_checked()?;
    let rows = projection.runs()?;
    let mut list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "run_id": r.run_id, "mission": r.mission, "status": r.status,
                "started_at": r.started_at, "ended_at": r.ended_at, "events": r.last_seq,
                "cost_usd": costs.cost(store, &r.run_id),
            })
        })
        .collect();
    for (run_id, e) in &damaged {
        list.push(json!({ "run_id": run_id, "status": "damaged", "error": e.to_string() }));
    }
    list.sort_by(|a, b| b["run_id"].as_str().cmp(&a["run_id"].as_str()));
    Ok(Value::Array(list))
}

/// Everything the page of one run shows, from its log.
pub fn run(store: &Store, run_id: &str, read_only: bool) -> Result<Value, record::Error> {
    let summary = query::summary(store, run_id)?;
    let events = store.read_events(run_id)?;
    let engine_running = record::lock::is_locked(&store.run_dir(run_id));
    let mut status = query::status_json(&summary, &events);
    status["engine_running"] = json!(engine_running);
    let calls = cost::calls_of(run_id, &events, None);
    Ok(json!({
        "status": status,
        "graph": graph::layout(&query::mission_phases(&events)),
        "timeline": timeline(&events),
        "attempts": attempts(store, run_id, &events),
        "outputs": outputs(&events),
        "decisions": decisions(&events),
        "waiting": waiting(&events),
        "budget": budget(&events),
        "cost": cost::report(&calls, cost::By::Phase, None),
        "read_only": read_only,
    }))
}

/// The board of a run's work packages, as `spectacular board --json` prints it, with the
/// checks' errors, verdicts and merges of the report.
pub fn board(store: &Store, run_id: &str) -> Result<Value, record::Error> {
    let events = store.read_events(run_id)?;
    let board = board::board(&events);
    let built = report::report(&events);
    Ok(json!({
        "board": board,
        "columns": ["planned", "doing", "review", "done"],
        "plan": built.plan,
        "work_packages": built.work_packages,
        "checks": built.checks,
        "verdicts": built.verdicts,
        "merges": built.merges,
        "loops": built.loops,
    }))
}

/// A run's report: `report.json` and `report.md`, as `spectacular report` prints them.
pub fn report(store: &Store, run_id: &str) -> Result<Value, record::Error> {
    let events = store.read_events(run_id)?;
    let built = report::report(&events);
    Ok(json!({
        "markdown": report::markdown(&built),
        "report": built,
    }))
}

/// What agent calls cost, grouped every way `spectacular cost --by` groups them, with the
/// project's day and month budgets.
pub fn costs(store: &Store, since: Option<&str>) -> Result<Value, record::Error> {
    let calls = cost::calls(store, since)?;
    let by = [
        ("day", cost::By::Day),
        ("agent", cost::By::Agent),
        ("model", cost::By::Model),
        ("mission", cost::By::Mission),
        ("phase", cost::By::Phase),
    ];
    let mut reports = serde_json::Map::new();
    for (name, by) in by {
        let report = cost::report(&calls, by, since.map(str::to_string));
        reports.insert(name.into(), json!(report));
    }
    let (budgets, _) = crate::config::budgets::load(&store.dir);
    Ok(json!({
        "reports": reports,
        "budgets": budgets,
    }))
}

/// The tail of an attempt's log (`stdout` or `stderr`), from `offset` when given (the
/// length the page already has), with secrets of this environment redacted.
pub fn log_tail(
    store: &Store,
    run_id: &str,
    instance: &str,
    attempt: u32,
    stream: &str,
    offset: Option<u64>,
) -> Result<Value, super::Error> {
    let file = match stream {
        "stdout" => "stdout.log",
        "stderr" => "stderr.log",
        _ => {
            return Err(super::Error::BadRequest(format!(
                "no log `{stream}`: stdout or stderr"
            )))
        }
    };
    let attempt_text = attempt.to_string();
    let run_dir = store
        .checked_run_dir(run_id)
        .map_err(|e| super::Error::BadRequest(e.to_string()))?;
    let path = record::store::join_under(&run_dir, &["attempts", instance, &attempt_text, file])
        .map_err(|e| super::Error::BadRequest(e.to_string()))?;
    let (text, len, start) = read_tail(&path, offset).unwrap_or_default();
    let redacted = redactor().redact(&text).into_owned();
    Ok(json!({ "text": redacted, "length": len, "from": start }))
}

/// The end of a file from `offset` (at most [`LOG_TAIL_MAX`] bytes): its text, the file's
/// length and where the text starts.
fn read_tail(path: &std::path::Path, offset: Option<u64>) -> std::io::Result<(String, u64, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let from = offset.filter(|o| *o <= len).unwrap_or(0);
    let start = from.max(len.saturating_sub(LOG_TAIL_MAX));
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(LOG_TAIL_MAX).read_to_end(&mut bytes)?;
    Ok((String::from_utf8_lossy(&bytes).into_owned(), len, start))
}

/// The secrets of this process's environment (the same variables the engine redacts), so an
/// attempt's log read here shows none of them.
fn redactor() -> record::Redactor {
    let env = crate::agents::secret::process_env();
    record::Redactor::new(
        env.into_iter()
            .filter(|(name, _)| crate::agents::secret::is_secret_env_name(name)),
    )
}

fn timeline(events: &[Event]) -> Vec<Value> {
    let skip = events.len().saturating_sub(TIMELINE_MAX);
    events[skip..]
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq, "ts": e.ts, "type": e.data.type_name(),
                "phase": e.data.phase(), "actor": e.actor,
                "detail": query::event_detail(e),
            })
        })
        .collect()
}

fn attempts(store: &Store, run_id: &str, events: &[Event]) -> Vec<Value> {
    let run_dir = store.run_dir(run_id);
    fold_attempts(events)
        .into_iter()
        .map(|a| {
            let dir = record::store::join_under(
                &run_dir,
                &["attempts", &a.phase, &a.attempt.to_string()],
            )
            .ok();
            let has = |file: &str| dir.as_ref().is_some_and(|d| d.join(file).is_file());
            json!({
                "phase": a.phase, "attempt": a.attempt, "state": a.state,
                "failure_kind": a.failure_kind, "exit_code": a.exit_code,
                "started_at": a.started_at, "ended_at": a.ended_at,
                "duration_ms": a.duration_ms,
                "stdout": has("stdout.log"), "stderr": has("stderr.log"),
            })
        })
        .collect()
}

fn outputs(events: &[Event]) -> Vec<Value> {
    let mut out = Vec::new();
    for e in events {
        if let EventData::AttemptSucceeded(d) = &e.data {
            for (name, path) in &d.artifacts {
                let value = d.values.get(name).map(|v| match v {
                    Value::String(s) => query::answer::excerpt(s, 12, 200).0.join("\n"),
                    other => query::cut(&other.to_string(), 400),
                });
                out.push(json!({
                    "phase": d.phase, "attempt": d.attempt, "name": name,
                    "path": path, "value": value,
                }));
            }
        }
    }
    out
}

fn decisions(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::PolicyDecided(d) => Some(json!({
                "seq": e.seq, "phase": d.phase, "pack": d.pack, "version": d.version,
                "hook": d.hook, "layer": d.layer, "reason": d.reason,
                "summary": query::decision_summary(&d.hook, &d.result, d.reason.as_deref()),
            })),
            _ => None,
        })
        .collect()
}

/// The phases that wait for a person: each gate's reason, its questions (numbered from 1,
/// with which are answered) and the plan it approves.
pub fn waiting(events: &[Event]) -> Vec<Value> {
    let summary = record::fold(events);
    let mut found: indexmap::IndexMap<String, Value> = indexmap::IndexMap::new();
    for event in events {
        match &event.data {
            EventData::ApprovalRequested(d) => {
                let questions: Vec<Value> = d
                    .questions
                    .iter()
                    .enumerate()
                    .map(|(i, q)| json!({ "n": i + 1, "text": q, "answered": false }))
                    .collect();
                found.insert(
                    d.phase.clone(),
                    json!({
                        "phase": d.phase, "reason": d.reason, "questions": questions,
                        "plan": d.plan, "requested_at": event.ts,
                    }),
                );
            }
            EventData::ClarificationAnswered(d) => {
                let index = d.question.checked_sub(1).map(|i| i as usize);
                if let Some(q) = found
                    .get_mut(&d.phase)
                    .zip(index)
                    .and_then(|(w, i)| w["questions"].get_mut(i))
                {
                    q["answered"] = json!(true);
                    q["answer"] = json!(d.answer);
                }
            }
            _ => {}
        }
    }
    found
        .into_iter()
        .filter(|(phase, _)| {
            summary
                .phases
                .get(phase)
                .is_some_and(|p| p.state == record::PhaseState::Waiting)
        })
        .map(|(_, w)| w)
        .collect()
}

/// The run's budget: the pinned mission's `budget` (cap and soft threshold) and the last
/// alert recorded.
fn budget(events: &[Event]) -> Value {
    let text = events.iter().rev().find_map(|e| match &e.data {
        EventData::RunStarted(s) => Some(s.mission_text.as_str()),
        EventData::RunResumed(r) => r.mission_text.as_deref(),
        _ => None,
    });
    let declared = text
        .and_then(|t| crate::load::yaml::parse(t, "").root)
        .and_then(|root| root.get("budget").map(|b| b.to_json()))
        .unwrap_or(Value::Null);
    let alert = events.iter().rev().find_map(|e| match &e.data {
        EventData::BudgetAlert(a) => Some(json!({
            "level": a.level, "spent_usd": a.spent_usd, "threshold_usd": a.threshold_usd,
            "cap_usd": a.cap_usd, "message": a.message,
        })),
        _ => None,
    });
    json!({
        "max_usd": declared.get("max_usd").and_then(Value::as_f64),
        "soft_usd": declared.get("soft_usd").and_then(Value::as_f64),
        "alert": alert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::event::{ApprovalRequested, ClarificationAnswered};

    fn event(seq: u64, data: EventData) -> Event {
        Event {
            event_id: format!("E{seq}"),
            schema: 1,
            run_id: "R".into(),
            seq,
            ts: "2026-12-07T10:00:00.000Z".into(),
            causation_id: None,
            actor: "engine".into(),
            data,
        }
    }

    #[test]
    fn what_waits_says_which_questions_are_answered() {
        let answer = |seq, question| {
            event(
                seq,
                EventData::ClarificationAnswered(ClarificationAnswered {
                    phase: "clarify".into(),
                    question,
                    text: "q".into(),
                    answer: format!("answer {question}"),
                }),
            )
        };
        let events = [
            event(
                1,
                EventData::ApprovalRequested(ApprovalRequested {
                    phase: "clarify".into(),
                    reason: "the spec is ambiguous".into(),
                    timeout_ms: None,
                    questions: vec!["Which examples?".into(), "Done when?".into()],
                    plan: None,
                }),
            ),
            answer(2, 2),
            // Numbers that were never asked change nothing.
            answer(3, 0),
            answer(4, 9),
        ];
        let waiting = waiting(&events);
        assert_eq!(waiting.len(), 1);
        let questions = &waiting[0]["questions"];
        assert_eq!(questions[0]["answered"], false);
        assert_eq!(questions[1]["answered"], true);
        assert_eq!(questions[1]["answer"], "answer 2");
        assert_eq!(questions.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_log_tail_starts_where_the_page_left_off_and_keeps_only_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout.log");
        std::fs::write(&path, "first\nsecond\n").unwrap();
        assert_eq!(
            read_tail(&path, None).unwrap(),
            ("first\nsecond\n".to_string(), 13, 0)
        );
        assert_eq!(
            read_tail(&path, Some(6)).unwrap(),
            ("second\n".to_string(), 13, 6)
        );
        // An offset past the end (the file was replaced) starts again.
        assert_eq!(read_tail(&path, Some(99)).unwrap().2, 0);
        let big = "x".repeat(LOG_TAIL_MAX as usize + 10);
        std::fs::write(&path, &big).unwrap();
        let (text, len, from) = read_tail(&path, None).unwrap();
        assert_eq!(
            (text.len() as u64, len, from),
            (LOG_TAIL_MAX, LOG_TAIL_MAX + 10, 10)
        );
    }
}
