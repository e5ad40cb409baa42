//! Query: the read side. Status tables, run lists and timelines, built from the SQLite
//! projection (kept in step with the logs) or, for one run, from a fold of its log; cost
//! reports, what-if replay, the board of work packages and the run report. This module never
//! writes events.

pub mod answer;
pub mod board;
pub mod cost;
pub mod report;
pub mod whatif;

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

/// A phase of the pinned mission: its id, what it needs, whether it is a gate, whether it
/// runs `always` (a finally), and its `uses:` step.
#[derive(Clone, Debug, Default)]
pub(crate) struct MissionPhase {
    pub(crate) id: String,
    pub(crate) needs: Vec<String>,
    pub(crate) gate: bool,
    pub(crate) always: bool,
    pub(crate) uses: Option<String>,
}

/// The phases of the mission the run pinned (the latest text: `resume --upgrade` may have
/// replaced it), in the mission's order. Read from the pinned text itself, so that `status`
/// needs nothing but the log.
pub(crate) fn mission_phases(events: &[Event]) -> Vec<MissionPhase> {
    let text = events.iter().rev().find_map(|e| match &e.data {
        EventData::RunStarted(s) => Some((s.mission_text.as_str(), s.mission_source.as_str())),
        EventData::RunResumed(r) => r.mission_text.as_deref().map(|t| (t, "")),
        _ => None,
    });
    let Some((text, source)) = text else {
        return Vec::new();
    };
    let parsed = crate::load::yaml::parse(text, source);
    let Some(phases) = parsed.root.as_ref().and_then(|r| r.get("phases")) else {
        return Vec::new();
    };
    phases
        .entries()
        .iter()
        .map(|entry| {
            let needs = match entry.value.get("needs") {
                Some(n) if n.as_str().is_some() => vec![n.as_str().unwrap_or_default().into()],
                Some(n) => n
                    .items()
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
                None => Vec::new(),
            };
            MissionPhase {
                id: entry.key.clone(),
                needs,
                gate: entry.value.get("approval").is_some(),
                always: entry
                    .value
                    .get("always")
                    .is_some_and(|a| matches!(a.value, crate::load::yaml::Value::Bool(true))),
                uses: entry
                    .value
                    .get("uses")
                    .and_then(|u| u.as_str())
                    .map(str::to_string),
            }
        })
        .collect()
}

/// A row of `spectacular status`: a top-level phase (a fan-out parent stands for its
/// children), with why it is where it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusRow {
    pub phase: String,
    pub state: String,
    /// Attempts (of the children too, for a fan-out parent).
    pub attempts: u32,
    pub duration_ms: Option<u64>,
    /// What its agent attempts cost (and its children's).
    pub cost_usd: f64,
    /// Why it is in this state: what it waits on, the gate's reason and who asked, the
    /// failure, the children's states.
    pub note: String,
    /// For a fan-out parent, how many children are in each state.
    pub children: Option<record::ChildCounts>,
}

/// `kind: kind: message` → `kind: message` (a message that already names its kind).
pub fn undouble(text: &str) -> String {
    if let Some((kind, rest)) = text.split_once(": ") {
        if let Some(rest) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix(": ")) {
            return format!("{kind}: {rest}");
        }
    }
    text.to_string()
}

/// The rows of `spectacular status`: every phase of the mission, those not reached yet too,
/// in the mission's order.
pub fn status_rows(summary: &RunSummary, events: &[Event]) -> Vec<StatusRow> {
    use record::PhaseState;
    let mut costs: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    let mut approvals: std::collections::HashMap<&str, (&str, bool)> =
        std::collections::HashMap::new();
    let mut skipped: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    for e in events {
        match &e.data {
            EventData::AttemptSucceeded(d) => {
                let cost = d.usage.as_ref().and_then(|u| u.cost_usd).unwrap_or(0.0);
                *costs.entry(d.phase.as_str()).or_default() += cost;
            }
            EventData::AttemptFailed(d) => {
                let cost = d.usage.as_ref().and_then(|u| u.cost_usd).unwrap_or(0.0);
                *costs.entry(d.phase.as_str()).or_default() += cost;
            }
            EventData::ApprovalRequested(d) => {
                approvals.insert(
                    d.phase.as_str(),
                    (d.reason.as_str(), !d.questions.is_empty()),
                );
            }
            EventData::PhaseSkipped(d) => {
                let why = match d.reason {
                    record::event::SkipReason::Condition => "its `if` was false",
                    record::event::SkipReason::UpstreamFailed => "a phase it needs failed",
                    record::event::SkipReason::Canceled => "the run was canceled",
                };
                let detail = d.detail.as_deref().map(|x| format!(": {x}"));
                skipped.insert(
                    d.phase.as_str(),
                    format!("{why}{}", detail.unwrap_or_default()),
                );
            }
            _ => {}
        }
    }
    let mission = mission_phases(events);
    let fan_outs = summary.fan_outs();
    let state_of = |id: &str| {
        summary
            .phases
            .get(id)
            .map_or(PhaseState::Pending, |p| p.state)
    };
    let terminal = summary.status.is_terminal();
    let mut ids: Vec<&str> = mission.iter().map(|m| m.id.as_str()).collect();
    for p in summary.top_level() {
        if !ids.contains(&p.phase.as_str()) {
            ids.push(&p.phase);
        }
    }
    let mut rows = Vec::new();
    for id in ids {
        let known = summary.phases.get(id);
        let spec = mission.iter().find(|m| m.id == id);
        let state = state_of(id);
        let mut row = StatusRow {
            phase: id.to_string(),
            state: state.as_str().to_string(),
            attempts: known.map_or(0, |p| p.attempts),
            duration_ms: known.and_then(|p| p.duration_ms),
            cost_usd: costs.get(id).copied().unwrap_or(0.0),
            ..StatusRow::default()
        };
        let children: Vec<&record::PhaseSummary> = summary
            .phases
            .values()
            .filter(|c| c.parent.as_deref() == Some(id))
            .collect();
        for child in &children {
            row.attempts += child.attempts;
            row.cost_usd += costs.get(child.phase.as_str()).copied().unwrap_or(0.0);
        }
        let unmet: Vec<String> = spec
            .map(|m| {
                m.needs
                    .iter()
                    .filter(|n| !state_of(n).is_done())
                    .map(|n| format!("`{n}`"))
                    .collect()
            })
            .unwrap_or_default();
        row.note = match state {
            PhaseState::Failed => known
                .and_then(|p| p.last_failure.as_deref())
                .map(undouble)
                .unwrap_or_default(),
            PhaseState::Waiting => {
                let (reason, questions) = approvals.get(id).copied().unwrap_or(("", false));
                if questions {
                    format!("waiting for answers: {reason}")
                } else if reason.starts_with("policy `") {
                    format!("waiting for approval, asked by {reason}")
                } else if reason.is_empty() {
                    "waiting for approval".to_string()
                } else {
                    format!("waiting for approval (gate): {reason}")
                }
            }
            PhaseState::Skipped => skipped.get(id).cloned().unwrap_or_default(),
            PhaseState::Pending | PhaseState::Ready if terminal => {
                format!("not reached: the run {}", summary.status.as_str())
            }
            PhaseState::Pending if !unmet.is_empty() => {
                format!("waiting on {}", unmet.join(", "))
            }
            PhaseState::Pending if spec.is_some_and(|m| m.gate) => {
                "a gate: asks for approval when it is reached".to_string()
            }
            PhaseState::Pending => "about to start".to_string(),
            PhaseState::Ready => "ready: waiting for a free slot (`max_parallel`)".to_string(),
            PhaseState::Running | PhaseState::Succeeded => String::new(),
        };
        if let Some(counts) = fan_outs.get(id) {
            let parts: Vec<String> = [
                (counts.succeeded, "succeeded"),
                (counts.failed, "failed"),
                (counts.skipped, "skipped"),
                (counts.running, "running"),
                (counts.waiting, "waiting"),
                (counts.pending + counts.ready, "pending"),
            ]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
            row.note = format!(
                "{} item{}: {}",
                counts.total,
                if counts.total == 1 { "" } else { "s" },
                parts.join(", ")
            );
            row.children = Some(*counts);
        }
        // Logs written before the limits existed may hold megabytes here.
        record::limits::bound_text(&mut row.note, record::limits::TEXT_MAX, None);
        rows.push(row);
    }
    rows
}

/// Dollars for people: four decimals under a dollar, two above; never `-0.0000`.
pub fn usd(value: f64) -> String {
    whatif::usd(value)
}

/// The phase table of `spectacular status`: every phase of the mission, in its order, with
/// why each unfinished one is where it is. Fan-out children are summarised under their parent.
/// Columns are aligned by display width.
pub fn status_text(summary: &RunSummary, events: &[Event]) -> String {
    status_text_fitted(summary, events, None)
}

/// [`status_text`] for a terminal `columns` wide: when the table is wider, each phase's note
/// goes on lines of its own under its row, and phase names are cut to fit (see [`Fit`]).
pub fn status_text_fitted(
    summary: &RunSummary,
    events: &[Event],
    columns: Option<usize>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}  mission {}  {}",
        summary.run_id,
        summary.mission,
        summary.status.as_str()
    );
    let rows = status_rows(summary, events);
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.phase.clone(),
                r.state.clone(),
                r.attempts.to_string(),
                ms(r.duration_ms),
                if r.cost_usd > 0.0 {
                    usd(r.cost_usd)
                } else {
                    "-".into()
                },
                r.note.clone(),
            ]
        })
        .collect();
    let header = [
        "PHASE".to_string(),
        "STATE".into(),
        "ATTEMPTS".into(),
        "TIME".into(),
        "COST".into(),
        "NOTE".into(),
    ];
    let fit = Fit {
        columns,
        notes_below: true,
        shrink: &[0],
    };
    out.push_str(&fit.table(&header, &cells, &[false, false, true, true, true, false]));
    // What the agents answered, phase by phase (fan-out children: `status --json`).
    let phases: Vec<&str> = rows.iter().map(|r| r.phase.as_str()).collect();
    out.push_str(&answer::answers_text(
        &summary.run_id,
        &phases,
        &answer::answers(events),
    ));
    out
}

/// How a table fits a terminal of `columns` (none: a pipe or a file, where nothing is cut).
/// When the table is wider, its last column moves under each row (`notes_below`), indented and
/// wrapped at word boundaries; then the `shrink` columns, in order, are cut with `…`, down to
/// their header's width. A table never takes more than `columns` unless no cut can make it fit.
#[derive(Clone, Copy, Debug)]
pub struct Fit<'a> {
    pub columns: Option<usize>,
    pub notes_below: bool,
    pub shrink: &'a [usize],
}

impl Fit<'_> {
    pub fn table<const N: usize>(
        &self,
        header: &[String; N],
        rows: &[[String; N]],
        right: &[bool],
    ) -> String {
        let Some(columns) = self.columns else {
            return table(header, rows, right);
        };
        let widths = column_widths(
            std::iter::once(header.as_slice()).chain(rows.iter().map(|r| r.as_slice())),
        );
        if total_width(&widths) <= columns || N < 2 {
            return table(header, rows, right);
        }
        let shown = if self.notes_below { N - 1 } else { N };
        let mut widths = widths[..shown].to_vec();
        let mut excess = total_width(&widths).saturating_sub(columns);
        for &column in self.shrink.iter().filter(|&&c| c < shown) {
            let floor = width(&header[column]).max(4);
            let cut = excess.min(widths[column].saturating_sub(floor));
            widths[column] -= cut;
            excess -= cut;
        }
        let mut out = String::new();
        for (i, row) in std::iter::once(header).chain(rows).enumerate() {
            let mut line = String::new();
            for (c, cell) in row[..shown].iter().enumerate() {
                let cell = cut(cell, widths[c]);
                let gap = " ".repeat(widths[c].saturating_sub(width(&cell)));
                if right.get(c).copied().unwrap_or(false) {
                    line.push_str(&gap);
                    line.push_str(&cell);
                } else {
                    line.push_str(&cell);
                    line.push_str(&gap);
                }
                line.push_str("  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if self.notes_below && i > 0 {
                for note_line in wrap(&row[N - 1], columns.saturating_sub(4).max(20)) {
                    out.push_str("    ");
                    out.push_str(&note_line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

fn column_widths<'a>(rows: impl Iterator<Item = &'a [String]>) -> Vec<usize> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        widths.resize(widths.len().max(row.len()), 0);
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    widths
}

/// The width of a table with these columns, two spaces between them.
fn total_width(widths: &[usize]) -> usize {
    widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)
}

/// `text` cut to `columns` terminal columns, ending with `…` when it was cut.
pub fn cut(text: &str, columns: usize) -> String {
    if width(text) <= columns {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > columns {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `text` in lines of at most `columns` terminal columns, broken at spaces (a word longer than
/// a line is cut); nothing for an empty text.
pub fn wrap(text: &str, columns: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let needed = if line.is_empty() {
            width(word)
        } else {
            width(&line) + 1 + width(word)
        };
        if needed > columns && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        if width(&line) > columns {
            lines.push(cut(&line, columns));
            line.clear();
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Rows of cells as a table: columns separated by two spaces and aligned by display width
/// (`right` says which are right-aligned); trailing spaces trimmed.
pub fn table<const N: usize>(header: &[String; N], rows: &[[String; N]], right: &[bool]) -> String {
    let mut widths = [0usize; N];
    for row in std::iter::once(header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let gap = " ".repeat(widths[i].saturating_sub(width(cell)));
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&gap);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&gap);
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn status_json(summary: &RunSummary, events: &[Event]) -> Value {
    let rows = status_rows(summary, events);
    let mut lanes: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for e in events {
        if let EventData::PhaseExpanded(d) = &e.data {
            for child in &d.children {
                if let Some(lane) = child.lane {
                    lanes.insert(format!("{}[{}]", d.phase, child.key), lane);
                }
            }
        }
    }
    let answers = answer::answers(events);
    let phases: Vec<Value> = summary
        .phases
        .values()
        .map(|p| {
            let row = rows.iter().find(|r| r.phase == p.phase);
            let mut value = json!({
                "phase": p.phase,
                "state": p.state.as_str(),
                "attempts": p.attempts,
                "started_at": p.started_at,
                "ended_at": p.ended_at,
                "duration_ms": p.duration_ms,
                "last_failure": p.last_failure,
                "parent": p.parent,
            });
            if let Some(row) = row {
                add_row(&mut value, row);
            }
            if let Some(lane) = lanes.get(&p.phase) {
                value["lane"] = json!(lane);
            }
            if let Some(answer) = answers.get(&p.phase) {
                value["answer"] = answer.to_json();
            }
            value
        })
        .chain(
            rows.iter()
                .filter(|r| !summary.phases.contains_key(&r.phase))
                .map(|r| {
                    let mut value = json!({
                        "phase": r.phase, "state": r.state, "attempts": 0,
                        "started_at": null, "ended_at": null, "duration_ms": null,
                        "last_failure": null, "parent": null,
                    });
                    add_row(&mut value, r);
                    value
                }),
        )
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

/// The parts of a status row that JSON adds to a phase: its note, cost and children.
fn add_row(value: &mut Value, row: &StatusRow) {
    value["note"] = json!(row.note);
    value["cost_usd"] = json!(row.cost_usd);
    if let Some(c) = row.children {
        value["children"] = json!({
            "total": c.total, "succeeded": c.succeeded, "failed": c.failed,
            "skipped": c.skipped, "running": c.running, "waiting": c.waiting,
            "pending": c.pending + c.ready, "attempts": row.attempts,
            "cost_usd": row.cost_usd,
        });
    }
}

/// One line for a policy decision: what was decided and why (`→ codex / gpt: reason`,
/// `deny: reason`, `abstained`).
pub fn decision_summary(hook: &str, result: &Value, reason: Option<&str>) -> String {
    if result.is_null() {
        return "abstained".into();
    }
    let field = |k: &str| result.get(k).and_then(Value::as_str).unwrap_or("");
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    match (hook, field("decision")) {
        (_, "error") => format!("error (counts as deny){why}"),
        ("route", _) => {
            let target = match (field("agent"), field("model")) {
                ("", m) => m.to_string(),
                (a, "") => a.to_string(),
                (a, m) => format!("{a} / {m}"),
            };
            format!("→ {target}{why}")
        }
        (_, "downgrade") => format!("downgrade to {}{why}", field("model")),
        (_, "alert") => format!("alert ({}){why}", field("level")),
        (_, decision) => format!("{decision}{why}"),
    }
}

/// What an agent attempt used: `codex / gpt, 24885 tokens, $0.0047`.
fn usage_text(agent: Option<&str>, usage: Option<&record::usage::Usage>) -> String {
    let mut parts = Vec::new();
    let who = [agent, usage.and_then(|u| u.model.as_deref())]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" / ");
    if !who.is_empty() {
        parts.push(who);
    }
    if let Some(u) = usage {
        if u.total_tokens() > 0 {
            parts.push(format!("{} tokens", u.total_tokens()));
        }
        if let Some(cost) = u.cost_usd {
            parts.push(usd(cost));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", {}", parts.join(", "))
    }
}

/// The essential data of an event, for its timeline line.
pub fn event_detail(event: &Event) -> String {
    let optional = |label: &str, v: Option<f64>| v.map(|v| format!(", {label} {}", usd(v)));
    let mut detail = match &event.data {
        EventData::RunStarted(d) => format!("mission {} ({})", d.mission, d.mission_source),
        EventData::RunResumed(d) if !d.interrupted.is_empty() => {
            format!("interrupted: {}", d.interrupted.join(", "))
        }
        EventData::AttemptStarted(d) => {
            let reserved = optional("reserved", d.reserved_usd).unwrap_or_default();
            format!("attempt {}{reserved}", d.attempt)
        }
        EventData::AttemptSucceeded(d) => format!(
            "attempt {} in {}{}",
            d.attempt,
            ms(Some(d.duration_ms)),
            usage_text(d.agent.as_deref(), d.usage.as_deref())
        ),
        EventData::AttemptFailed(d) => format!(
            "attempt {} {}{}",
            d.attempt,
            undouble(&format!("{}: {}", d.kind.as_str(), d.message)),
            usage_text(d.agent.as_deref(), d.usage.as_deref())
        ),
        EventData::PhaseSucceeded(d) if d.attempts == 0 => String::new(),
        EventData::PhaseSucceeded(d) => format!(
            "{} attempt{}",
            d.attempts,
            if d.attempts == 1 { "" } else { "s" }
        ),
        EventData::PhaseFailed(d) => undouble(&format!("{}: {}", d.kind.as_str(), d.message)),
        EventData::PhaseSkipped(d) => match &d.detail {
            Some(detail) => format!("{}: {detail}", d.reason.as_str()),
            None => d.reason.as_str().to_string(),
        },
        EventData::PhaseExpanded(d) => {
            let keys: Vec<&str> = d.children.iter().map(|c| c.key.as_str()).collect();
            format!("{} items: {}", keys.len(), keys.join(", "))
        }
        EventData::LoopStarted(d) => format!("back to {} (loop {})", d.goto, d.iteration),
        EventData::ApprovalRequested(d) => d.reason.clone(),
        EventData::ClarificationAnswered(d) => {
            format!(
                "question {} answered by {}: {}",
                d.question, event.actor, d.answer
            )
        }
        EventData::ApprovalDecided(d) => {
            let verdict = if d.timed_out { "timed out, " } else { "" };
            let comment = d
                .comment
                .as_deref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            format!(
                "{verdict}{} by {}{comment}",
                if d.approved { "approved" } else { "rejected" },
                event.actor
            )
        }
        EventData::CancelRequested(d) => d.reason.clone().unwrap_or_default(),
        EventData::RunSuspended(d) => format!("waiting: {}", d.waiting.join(", ")),
        EventData::RunFailed(d) => {
            let reason = d.reason.as_deref().map(|r| format!(": {r}"));
            format!("{}{}", d.failed.join(", "), reason.unwrap_or_default())
        }
        EventData::RunSucceeded(d) | EventData::RunCanceled(d) => {
            d.reason.clone().unwrap_or_default()
        }
        EventData::PolicyDecided(d) => format!(
            "{} {} {}: {}",
            d.pack,
            d.version,
            d.hook,
            decision_summary(&d.hook, &d.result, d.reason.as_deref())
        ),
        EventData::FallbackActivated(d) => {
            let side = |agent: &str, model: &Option<String>| match model {
                Some(m) => format!("{agent} / {m}"),
                None => agent.to_string(),
            };
            format!(
                "attempt {}: {} → {}: {}{}{}",
                d.attempt,
                side(&d.from_agent, &d.from_model),
                side(&d.to_agent, &d.to_model),
                d.reason,
                optional("spent", d.cost_usd).unwrap_or_default(),
                optional("reserved", d.reserved_usd).unwrap_or_default()
            )
        }
        EventData::AttemptRedelivered(d) => format!(
            "attempt {}: taken again by {} (delivery {})",
            d.attempt, d.worker, d.delivery
        ),
        EventData::AttemptRecalled(d) => format!(
            "attempt {}: the workers were asked to stop the previous coordinator's copy",
            d.attempt
        ),
        EventData::BudgetAlert(d) => format!("{}: {}: {}", d.level, alert_numbers(d), d.message),
        EventData::NotificationSent(d) => format!(
            "{} told of event {} ({}) after {} request(s){}",
            d.webhook,
            d.event_seq,
            d.kind,
            d.attempts,
            d.status.map(|s| format!(", HTTP {s}")).unwrap_or_default()
        ),
        EventData::NotificationFailed(d) => format!(
            "{} not told of event {} ({}): {}",
            d.webhook,
            d.event_seq,
            d.kind,
            d.error.as_deref().unwrap_or("failed")
        ),
        EventData::MergeStep(d) => {
            let files: Vec<&str> = d.conflicts.iter().map(|c| c.file.as_str()).collect();
            let conflicts = if files.is_empty() {
                String::new()
            } else {
                format!(": {}", files.join(", "))
            };
            format!(
                "{} {} into {}{conflicts}",
                d.work,
                d.outcome.as_str(),
                d.into
            )
        }
        EventData::IssueCommented(d) => format!("{} on {}: {}", d.what, d.issue, d.url),
        EventData::PrOpened(d) | EventData::PrUpdated(d) => {
            format!(
                "{} #{} ({} into {}): {}",
                d.project, d.number, d.branch, d.base, d.url
            )
        }
        _ => String::new(),
    };
    record::limits::bound_text(&mut detail, record::limits::TEXT_MAX, None);
    detail
}

/// The figures of a budget alert: `spent $0.0842, threshold $0.0500, cap $10.00`.
pub fn alert_numbers(d: &record::event::BudgetAlert) -> String {
    let optional = |label: &str, v: Option<f64>| {
        v.map(|v| format!(", {label} {}", usd(v)))
            .unwrap_or_default()
    };
    format!(
        "spent {}{}{}",
        usd(d.spent_usd),
        optional("threshold", d.threshold_usd),
        optional("cap", d.cap_usd)
    )
}

/// One line of a timeline: `seq  time  type  phase  detail`, aligned by display width.
pub fn timeline_line(event: &Event) -> String {
    let time = event.ts.get(11..23).unwrap_or(&event.ts);
    let phase = event.data.phase().unwrap_or("");
    format!(
        "{:>5}  {time}  {}  {}  {}",
        event.seq,
        pad(event.data.type_name(), 20),
        pad(phase, 20),
        event_detail(event)
    )
    .trim_end()
    .to_string()
}

/// Does `phase` (an event's phase) belong to `wanted`: the phase itself or one of its
/// fan-out children?
pub fn phase_matches(phase: &str, wanted: &str) -> bool {
    phase == wanted
        || phase
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('['))
}

/// Does an event type match a `--type` filter: the full name (`policy.decided`) or the part
/// before the dot (`attempt`, for every `attempt.*`)?
pub fn type_matches(type_name: &str, wanted: &str) -> bool {
    type_name == wanted || type_name.split('.').next() == Some(wanted)
}

/// How many terminal columns `text` takes (wide characters count two), for aligning columns.
pub fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// `text` padded with spaces to `columns` terminal columns.
pub fn pad(text: &str, columns: usize) -> String {
    let mut out = text.to_string();
    out.push_str(&" ".repeat(columns.saturating_sub(width(text))));
    out
}

#[cfg(test)]
mod fit_tests {
    use super::{cut, wrap, Fit};

    fn cells<const N: usize>(row: [&str; N]) -> [String; N] {
        row.map(str::to_string)
    }

    #[test]
    fn cut_and_wrap_count_display_columns() {
        assert_eq!(cut("prepare-the-workspace", 10), "prepare-t…");
        assert_eq!(cut("short", 10), "short");
        // Wide characters take two columns each.
        assert_eq!(cut("日本語のフェーズ", 7), "日本語…");
        assert_eq!(
            wrap(
                "waiting for approval, asked by policy `security-review`",
                20
            ),
            [
                "waiting for",
                "approval, asked by",
                "policy",
                "`security-review`"
            ]
        );
        assert!(wrap("", 20).is_empty());
    }

    #[test]
    fn a_wide_table_moves_notes_below_and_cuts_the_names() {
        let header = cells(["PHASE", "STATE", "NOTE"]);
        let rows = [
            cells([
                "a-very-long-phase-name-indeed",
                "waiting",
                "waiting for approval: ship it?",
            ]),
            cells(["b", "done", ""]),
        ];
        let fit = Fit {
            columns: Some(24),
            notes_below: true,
            shrink: &[0],
        };
        let text = fit.table(&header, &rows, &[]);
        assert_eq!(
            text,
            "PHASE            STATE\n\
             a-very-long-ph…  waiting\n    waiting for\n    approval: ship it?\n\
             b                done\n"
        );
        assert!(text.lines().all(|l| super::width(l) <= 24), "{text}");
        // Wide enough, or not a terminal: the plain table.
        for columns in [Some(200), None] {
            let fit = Fit { columns, ..fit };
            assert_eq!(
                fit.table(&header, &rows, &[]),
                super::table(&header, &rows, &[])
            );
        }
    }
}
