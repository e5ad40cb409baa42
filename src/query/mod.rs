//! Query: the read side. Status tables, run lists and timelines, built from the SQLite
//! projection (kept in step with the logs) or, for one run, from a fold of its log. This
//! module never writes events.

pub mod cost;

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::record::{self, fold, Event, EventData, RunSummary, Store};

/// A run's summary: from the projection, once it is in step with the run's log, else folded
/// from the log. Either way the log is read first, so a log that cannot be read is an error
/// (with its line number and the fix), never hidden behind a cached summary.
pub fn summary(store: &Store, run_id: &str) -> Result<RunSummary, record::Error> {
    match store.projection_of(run_id) {
        Ok(projection) => {
            if let Ok(Some(summary)) = projection.summary(run_id) {
                return Ok(summary);
            }
        }
        Err(record::Error::Sqlite { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(fold(&store.read_events(run_id)?))
}

fn ms(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
    }
}

/// The phase table of `spectacular status`. Fan-out children are summarised under their
/// parent.
pub fn status_text(summary: &RunSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}  mission {}  {}",
        summary.run_id,
        summary.mission,
        summary.status.as_str()
    );
    let width = summary
        .top_level()
        .map(|p| p.phase.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "{:width$}  {:10}  {:>8}  {:>8}  NOTE",
        "PHASE", "STATE", "ATTEMPTS", "TIME"
    );
    let fan_outs = summary.fan_outs();
    for phase in summary.top_level() {
        let mut note = phase
            .last_failure
            .clone()
            .filter(|_| phase.state == record::PhaseState::Failed)
            .unwrap_or_default();
        if let Some(counts) = fan_outs.get(&phase.phase) {
            note = format!(
                "{} items: {} succeeded, {} failed, {} running, {} pending",
                counts.total,
                counts.succeeded,
                counts.failed,
                counts.running,
                counts.pending + counts.ready
            );
        }
        // Logs written before the limits existed may hold megabytes here.
        record::limits::bound_text(&mut note, record::limits::TEXT_MAX, None);
        let _ = writeln!(
            out,
            "{:width$}  {:10}  {:>8}  {:>8}  {}",
            phase.phase,
            phase.state.as_str(),
            phase.attempts,
            ms(phase.duration_ms),
            note
        );
    }
    out
}

pub fn status_json(summary: &RunSummary) -> Value {
    let phases: Vec<Value> = summary
        .phases
        .values()
        .map(|p| {
            json!({
                "phase": p.phase,
                "state": p.state.as_str(),
                "attempts": p.attempts,
                "started_at": p.started_at,
                "ended_at": p.ended_at,
                "duration_ms": p.duration_ms,
                "last_failure": p.last_failure,
                "parent": p.parent,
            })
        })
        .collect();
    json!({
        "run_id": summary.run_id,
        "mission": summary.mission,
        "status": summary.status.as_str(),
        "started_at": summary.started_at,
        "ended_at": summary.ended_at,
        "last_seq": summary.last_seq,
        "inputs": summary.inputs,
        "phases": phases,
    })
}

/// One line of a timeline: `seq  time  type  phase  detail`.
pub fn timeline_line(event: &Event) -> String {
    let time = event.ts.get(11..23).unwrap_or(&event.ts);
    let phase = event.data.phase().unwrap_or("");
    let detail = match &event.data {
        EventData::RunStarted(d) => format!("mission {} ({})", d.mission, d.mission_source),
        EventData::AttemptStarted(d) => format!("attempt {}", d.attempt),
        EventData::AttemptSucceeded(d) => {
            format!("attempt {} in {}", d.attempt, ms(Some(d.duration_ms)))
        }
        EventData::AttemptFailed(d) => {
            format!("attempt {} {}: {}", d.attempt, d.kind.as_str(), d.message)
        }
        EventData::PhaseFailed(d) => format!("{}: {}", d.kind.as_str(), d.message),
        EventData::PhaseSkipped(d) => d.reason.as_str().to_string(),
        EventData::PhaseExpanded(d) => format!("{} items", d.children.len()),
        EventData::LoopStarted(d) => format!("back to {} (loop {})", d.goto, d.iteration),
        EventData::ApprovalDecided(d) => format!(
            "{} by {}",
            if d.approved { "approved" } else { "rejected" },
            event.actor
        ),
        EventData::RunFailed(d) => d.failed.join(", "),
        _ => String::new(),
    };
    let mut detail = detail;
    record::limits::bound_text(&mut detail, record::limits::TEXT_MAX, None);
    format!(
        "{:>5}  {time}  {:<20}  {phase:<20}  {detail}",
        event.seq,
        event.data.type_name()
    )
    .trim_end()
    .to_string()
}
