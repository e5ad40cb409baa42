//! One push: the pending events, in batches, to the control plane; the cursor moved after
//! each answered batch.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;

use super::queue::PushLock;
use super::{
    pending, Batch, Client, ClientError, Cursor, Error, Rejected, Settings, State, Status,
    BATCH_BYTES, BATCH_EVENTS,
};
use crate::record::event::Event;
use crate::record::store::Store;

/// What one push did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PushReport {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Events still pending after it.
    pub pending: u64,
    /// Why it stopped before the end, if it did.
    pub problem: Option<String>,
    /// Runs whose log could not be read, with why.
    pub unreadable: Vec<(String, String)>,
}

pub(super) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Send every pending event of the project now. `unchanged` (run → log length with nothing
/// pending) lets a caller that pushes often skip logs that did not grow; it is updated.
///
/// Errors are only about the queue's own files or the lock; a control plane that is down or
/// refuses is a [`PushReport::problem`], kept in `state.json` with the backoff.
pub fn push(
    store: &Store,
    settings: &Settings,
    timeout: Duration,
    unchanged: &mut BTreeMap<String, u64>,
) -> Result<PushReport, Error> {
    let _lock = PushLock::try_take(&settings.dir)?;
    let mut cursor = Cursor::load(&settings.dir)?;
    let mut state = State::load(&settings.dir)?;
    let (runs, unreadable) = pending(store, &cursor, unchanged);
    let mut report = PushReport {
        unreadable,
        ..PushReport::default()
    };
    state.last_attempt = Some(crate::record::now_ts());
    let client = match Client::of(settings, timeout) {
        Ok(c) => Some(c),
        Err(e) => {
            report.problem = Some(e.to_string());
            state.failed(e.kind(), e.to_string(), now_unix());
            None
        }
    };
    let mut failed = client.is_none();
    for run in &runs {
        if failed {
            report.pending += run.events.len() as u64;
            continue;
        }
        let client = client.as_ref().expect("a client when nothing failed");
        let mut rest: &[Event] = &run.events;
        while !rest.is_empty() {
            let (lines, taken) = batch_lines(rest);
            match send(client, settings, &lines) {
                Ok(results) => {
                    let batch = &rest[..taken];
                    for (event, result) in batch.iter().zip(results) {
                        match result.status {
                            Status::Accepted => report.accepted += 1,
                            Status::Duplicate => report.duplicates += 1,
                            Status::Rejected => {
                                report.rejected += 1;
                                state.reject(Rejected {
                                    run_id: run.run_id.clone(),
                                    seq: event.seq,
                                    event_id: event.event_id.clone(),
                                    kind: event.data.type_name().to_string(),
                                    reason: super::one_line(&result.reason.unwrap_or_default()),
                                    at: crate::record::now_ts(),
                                });
                            }
                        }
                    }
                    let last = batch.last().map(|e| e.seq).unwrap_or(0);
                    cursor.runs.insert(run.run_id.clone(), last);
                    cursor.save(&settings.dir)?;
                    rest = &rest[taken..];
                }
                Err(e) => {
                    report.problem = Some(e.to_string());
                    state.failed(e.kind(), e.to_string(), now_unix());
                    report.pending += rest.len() as u64;
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            unchanged.insert(run.run_id.clone(), run.log_len);
        }
    }
    state.accepted += report.accepted;
    state.duplicates += report.duplicates;
    if !failed {
        state.succeeded();
    }
    state.save(&settings.dir)?;
    Ok(report)
}

/// The JSON lines of the longest prefix of `events` that fits one batch (at least one event).
fn batch_lines(events: &[Event]) -> (Vec<String>, usize) {
    let mut lines = Vec::new();
    let mut bytes = 0;
    for event in events {
        let line = event.to_json_line();
        let line = line.trim_end().to_string();
        if !lines.is_empty() && (lines.len() >= BATCH_EVENTS || bytes + line.len() > BATCH_BYTES) {
            break;
        }
        bytes += line.len();
        lines.push(line);
    }
    let n = lines.len();
    (lines, n)
}

fn send(
    client: &Client,
    settings: &Settings,
    lines: &[String],
) -> Result<Vec<super::EventResult>, ClientError> {
    let events = lines
        .iter()
        .filter_map(|l| RawValue::from_string(l.clone()).ok())
        .collect::<Vec<_>>();
    let batch = Batch {
        project: settings.project.clone(),
        team: settings.team.clone(),
        user: super::user_name(),
        host: Some(crate::record::lock::hostname().chars().take(64).collect()),
        events,
    };
    Ok(client.post_batch(&batch)?.results)
}
