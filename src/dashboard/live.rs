//! Live updates: Server-Sent Events fed from the logs. Every quarter of a second the stream
//! looks at the length of the logs it watches (one run's `events.jsonl` and its attempts'
//! output, or every run's log for the list of runs) and, when one grew, sends what is new:
//! the new events of the run (read back from its log), the attempts whose output grew, or a
//! `runs` message. The logs stay the only source of truth: the page reads the JSON again.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::json;

use super::{resolve, AppState, Authorized, Error};
use crate::record::{Store, EVENTS_FILE};

/// How often the logs are looked at.
const POLL: Duration = Duration::from_millis(250);
/// The most events one message carries (a page that falls behind reads the run again).
const BATCH_MAX: usize = 200;

#[derive(Deserialize)]
pub(crate) struct StreamQuery {
    run: Option<String>,
}

/// What a stream last saw.
#[derive(Default)]
struct Seen {
    /// The run's log length and how many events it held.
    log_len: u64,
    last_seq: u64,
    /// Each attempt output file's length (`<instance>/<attempt>/<file>`).
    outputs: BTreeMap<String, u64>,
    /// Every run's log length (the list of runs).
    runs: BTreeMap<String, u64>,
    first: bool,
}

pub(crate) async fn stream(
    _: Authorized,
    State(state): State<AppState>,
    Query(q): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Error> {
    let store = state.settings.store.clone();
    let run_id = match q.run {
        Some(run) => {
            let store = store.clone();
            Some(super::blocking(move || resolve(&store, &run)).await?)
        }
        None => None,
    };
    let seen = Seen {
        first: true,
        ..Seen::default()
    };
    let events = stream::unfold(
        (store, run_id, seen),
        |(store, run_id, mut seen)| async move {
            loop {
                if !std::mem::take(&mut seen.first) {
                    tokio::time::sleep(POLL).await;
                }
                let (s, r) = (store.clone(), run_id.clone());
                let looked = tokio::task::spawn_blocking(move || {
                    let mut seen = seen;
                    let messages = match &r {
                        Some(run_id) => look_at_run(&s, run_id, &mut seen),
                        None => look_at_runs(&s, &mut seen),
                    };
                    (seen, messages)
                })
                .await;
                let Ok((next, messages)) = looked else {
                    return None;
                };
                seen = next;
                if !messages.is_empty() {
                    let batch: Vec<Result<SseEvent, Infallible>> =
                        messages.into_iter().map(Ok).collect();
                    return Some((stream::iter(batch), (store, run_id, seen)));
                }
            }
        },
    );
    use futures_util::StreamExt as _;
    Ok(Sse::new(events.flatten()).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The new events of a run, and the attempts whose output grew.
fn look_at_run(store: &Store, run_id: &str, seen: &mut Seen) -> Vec<SseEvent> {
    let mut messages = Vec::new();
    let run_dir = store.run_dir(run_id);
    let len = std::fs::metadata(run_dir.join(EVENTS_FILE)).map_or(0, |m| m.len());
    if len != seen.log_len {
        seen.log_len = len;
        if let Ok(events) = store.read_events(run_id) {
            let new: Vec<_> = events.iter().filter(|e| e.seq > seen.last_seq).collect();
            let skip = new.len().saturating_sub(BATCH_MAX);
            let batch: Vec<_> = new[skip..]
                .iter()
                .map(|e| {
                    json!({
                        "seq": e.seq, "ts": e.ts, "type": e.data.type_name(),
                        "phase": e.data.phase(),
                        "detail": crate::query::event_detail(e),
                    })
                })
                .collect();
            seen.last_seq = events.last().map_or(0, |e| e.seq);
            if !batch.is_empty() {
                let data = json!({ "last_seq": seen.last_seq, "events": batch });
                messages.push(SseEvent::default().event("events").data(data.to_string()));
            }
        }
    }
    let outputs = output_lengths(&run_dir.join("attempts"));
    let grown: Vec<&String> = outputs
        .iter()
        .filter(|(k, v)| seen.outputs.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    if !grown.is_empty() {
        messages.push(
            SseEvent::default()
                .event("output")
                .data(json!({ "files": grown }).to_string()),
        );
    }
    seen.outputs = outputs;
    messages
}

/// `runs` when a run appeared or its log grew.
fn look_at_runs(store: &Store, seen: &mut Seen) -> Vec<SseEvent> {
    let mut runs = BTreeMap::new();
    for run_id in store.run_ids().unwrap_or_default() {
        let len = std::fs::metadata(store.events_path(&run_id)).map_or(0, |m| m.len());
        runs.insert(run_id, len);
    }
    if runs == seen.runs {
        return Vec::new();
    }
    seen.runs = runs;
    vec![SseEvent::default()
        .event("runs")
        .data(json!({ "runs": seen.runs.len() }).to_string())]
}

/// The length of each `stdout.log` and `stderr.log` under `attempts/<instance>/<attempt>/`.
fn output_lengths(attempts: &std::path::Path) -> BTreeMap<String, u64> {
    let mut lengths = BTreeMap::new();
    let Ok(instances) = std::fs::read_dir(attempts) else {
        return lengths;
    };
    for instance in instances.flatten() {
        let Ok(numbers) = std::fs::read_dir(instance.path()) else {
            continue;
        };
        for number in numbers.flatten() {
            for file in ["stdout.log", "stderr.log"] {
                if let Ok(meta) = std::fs::metadata(number.path().join(file)) {
                    let key = format!(
                        "{}/{}/{file}",
                        instance.file_name().to_string_lossy(),
                        number.file_name().to_string_lossy()
                    );
                    lengths.insert(key, meta.len());
                }
            }
        }
    }
    lengths
}
