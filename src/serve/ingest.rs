//! `POST /v1/events`: hostile batches checked, events published on the stream (deduplicated
//! by `Nats-Msg-Id`), applied to the projection; and the projection caught up at start.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream::Stream};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::projection::{Origin, Projection};
use super::{authorized, error, error_response, App, Error, Refusal};
use crate::record::event::Event;
use crate::sync::{
    is_name, one_line, Batch, BatchResponse, EventResult, Status, MAX_BATCH_EVENTS, MAX_EVENT_BYTES,
};

/// How long JetStream remembers a message id (a repeat after it is caught by the projection).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// A message of the stream: who sent the event, and the event as it was posted.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    origin: Origin,
    event: Box<RawValue>,
}

/// The fleet stream, made when missing.
pub(super) async fn stream(js: &jetstream::Context, name: &str) -> Result<Stream, Error> {
    let fail = |message: String| Error::Stream {
        stream: name.to_string(),
        message,
    };
    if !is_name(name) {
        return Err(fail(
            "a stream name is letters, digits, `_` and `-` (at most 64)".into(),
        ));
    }
    js.get_or_create_stream(jetstream::stream::Config {
        name: name.to_string(),
        subjects: vec![format!("{name}.events.>")],
        duplicate_window: DUPLICATE_WINDOW,
        max_message_size: (MAX_EVENT_BYTES + 4096) as i32,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| fail(e.to_string()))
}

/// Apply what the stream holds past the projection's last sequence; how many events.
pub(super) async fn catch_up(
    stream: &Stream,
    projection: &mut Projection,
    name: &str,
) -> rusqlite::Result<u64> {
    let mut stream = stream.clone();
    let Ok(info) = stream.info().await else {
        tracing::warn!("stream `{name}`: no info; the projection is not caught up");
        return Ok(0);
    };
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let mut applied = 0;
    for seq in (projection.last_seq()? + 1).max(first)..=last {
        let Ok(message) = stream.get_raw_message(seq).await else {
            continue; // deleted
        };
        let Ok(stored) = serde_json::from_slice::<Stored>(&message.payload) else {
            tracing::warn!("stream `{name}` #{seq}: not an event of ours, skipped");
            continue;
        };
        if let Ok(event) = Event::from_json_line(stored.event.get()) {
            if projection.apply(seq, &stored.origin, &event)? {
                applied += 1;
            }
        }
    }
    Ok(applied)
}

/// Check the batch's names; the origin its events are stored with.
fn origin(batch: &Batch) -> Result<Origin, Refusal> {
    if !is_name(&batch.project) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "`project` {:?} is not a name: 1 to 64 letters, digits, `_` and `-`",
                one_line(&batch.project)
            ),
        ));
    }
    if let Some(team) = batch.team.as_deref().filter(|t| !is_name(t)) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "`team` {:?} is not a name: 1 to 64 letters, digits, `_` and `-`",
                one_line(team)
            ),
        ));
    }
    let bounded = |s: &Option<String>| s.as_deref().map(|s| one_line(s).chars().take(64).collect());
    Ok(Origin {
        project: batch.project.clone(),
        team: batch.team.clone(),
        user: bounded(&batch.user),
        host: bounded(&batch.host),
    })
}

/// Why the control plane rejects one event of a batch (the reason sent back for it).
#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error("the event is {0} bytes, over the limit of {limit} KiB", limit = MAX_EVENT_BYTES / 1024)]
    TooBig(usize),
    #[error("{0}")]
    NotAnEvent(String),
    #[error("`{0}` is not a ULID")]
    NotUlid(&'static str),
    #[error("`ts` is not an RFC 3339 UTC time")]
    BadTime,
    #[error("`seq` starts at 1")]
    ZeroSeq,
}

/// An event as the control plane takes it, or why not.
fn check(raw: &RawValue) -> Result<Event, Rejected> {
    let text = raw.get();
    if text.len() > MAX_EVENT_BYTES {
        return Err(Rejected::TooBig(text.len()));
    }
    let event = Event::from_json_line(text)
        .map_err(|e| Rejected::NotAnEvent(one_line(&format!("not an event: {e}"))))?;
    for (field, id) in [("event_id", &event.event_id), ("run_id", &event.run_id)] {
        if ulid::Ulid::from_string(id).is_err() || id.len() != 26 {
            return Err(Rejected::NotUlid(field));
        }
    }
    if humantime::parse_rfc3339(&event.ts).is_err() {
        return Err(Rejected::BadTime);
    }
    if event.seq == 0 {
        return Err(Rejected::ZeroSeq);
    }
    Ok(event)
}

pub(super) async fn post_events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorized(&app, &headers) {
        return r.into_response();
    }
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                format!("not a batch ({}): {{\"project\", \"team\", \"user\", \"host\", \"events\": [...]}}", one_line(&e.to_string())),
            )
        }
    };
    let origin = match origin(&batch) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    if batch.events.len() > MAX_BATCH_EVENTS {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} events in one batch, over the limit of {MAX_BATCH_EVENTS}",
                batch.events.len()
            ),
        );
    }
    let _one_at_a_time = app.ingest.lock().await;
    let mut results = Vec::with_capacity(batch.events.len());
    for raw in &batch.events {
        match ingest_one(&app, &origin, raw).await {
            Ok(result) => results.push(result),
            Err(r) => return r.into_response(),
        }
    }
    Json(BatchResponse { results }).into_response()
}

/// One event: rejected, duplicate or accepted; `Err` when the stream or the projection
/// failed (the whole batch is answered with it, and sent again later).
async fn ingest_one(app: &App, origin: &Origin, raw: &RawValue) -> Result<EventResult, Refusal> {
    let event = match check(raw) {
        Ok(e) => e,
        Err(reason) => {
            let id = serde_json::from_str::<serde_json::Value>(raw.get())
                .ok()
                .and_then(|v| v.get("event_id").and_then(|i| i.as_str()).map(one_line))
                .unwrap_or_default();
            return Ok(EventResult {
                event_id: id.chars().take(64).collect(),
                status: Status::Rejected,
                reason: Some(reason.to_string()),
            });
        }
    };
    let result = |status| EventResult {
        event_id: event.event_id.clone(),
        status,
        reason: None,
    };
    let known = app
        .projection
        .lock()
        .map_err(super::internal)?
        .has(&event.event_id)
        .map_err(super::internal)?;
    if known {
        return Ok(result(Status::Duplicate));
    }
    let stored = Stored {
        origin: origin.clone(),
        event: raw.to_owned(),
    };
    let payload = serde_json::to_vec(&stored).unwrap_or_default();
    let subject = format!("{}.events.{}", app.stream, origin.project);
    let unavailable = |e: String| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("JetStream did not store the event: {}", one_line(&e)),
        )
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.event_id.as_str());
    let ack = app
        .js
        .publish_with_headers(subject, headers, payload.into())
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let new = app
        .projection
        .lock()
        .map_err(super::internal)?
        .apply(ack.sequence, origin, &event)
        .map_err(super::internal)?;
    Ok(result(if ack.duplicate || !new {
        Status::Duplicate
    } else {
        Status::Accepted
    }))
}
