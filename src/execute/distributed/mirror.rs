//! A run's log mirrored to JetStream (one subject per run), and read back from it.
//!
//! A message holds one or more consecutive events as JSON lines (the events committed while
//! the previous message waited for its acknowledgement). Each is published with
//! `Nats-Msg-Id` = its last event's `event_id` (a publish retried after a lost
//! acknowledgement is not a second copy) and `Nats-Expected-Last-Subject-Sequence` = the
//! stream sequence of the run's last message: two coordinators that both think they own a run
//! cannot both append; the second learns it at its first message and stops.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{
    consumer, context::PublishErrorKind, message::PublishMessage as Publish,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::coordinator::Link;
use super::{jetstream_error, Error};
use crate::record::Event;

/// Where the mirror of a run stands: the stream sequence and event `seq` of its last event.
#[derive(Clone, Debug, Default)]
pub struct Tip {
    pub stream_seq: u64,
    pub event_seq: u64,
    pub event_id: String,
}

/// The tip of a run's mirror (`None`: nothing mirrored yet).
pub async fn tip(link: &Link, run_id: &str) -> Result<Option<Tip>, Error> {
    let stream = link
        .js
        .get_stream(link.config.run_stream())
        .await
        .map_err(|e| jetstream_error("the run stream", e))?;
    match stream
        .get_last_raw_message_by_subject(&link.config.run_subject(run_id))
        .await
    {
        Ok(message) => {
            let event = decode(run_id, message.sequence, &message.payload)?
                .pop()
                .ok_or_else(|| Error::Damaged {
                    run_id: run_id.into(),
                    sequence: message.sequence,
                    detail: "the message holds no event".into(),
                })?;
            Ok(Some(Tip {
                stream_seq: message.sequence,
                event_seq: event.seq,
                event_id: event.event_id,
            }))
        }
        Err(e)
            if e.kind()
                == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
        {
            Ok(None)
        }
        Err(e) => Err(jetstream_error("the run stream", e)),
    }
}

/// The events of one message of the run's subject: one or more JSON lines.
fn decode(run_id: &str, sequence: u64, payload: &[u8]) -> Result<Vec<Event>, Error> {
    let damaged = |detail: String| Error::Damaged {
        run_id: run_id.into(),
        sequence,
        detail,
    };
    let text = std::str::from_utf8(payload).map_err(|e| damaged(e.to_string()))?;
    let mut events = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event = Event::from_json_line(line).map_err(|e| damaged(e.to_string()))?;
        if event.run_id != run_id {
            return Err(damaged(format!("it belongs to run `{}`", event.run_id)));
        }
        events.push(event);
    }
    Ok(events)
}

/// Every event of a run in the stream, in order.
pub async fn read(link: &Link, run_id: &str) -> Result<Vec<Event>, Error> {
    let Some(tip) = tip(link, run_id).await? else {
        return Err(Error::NoSuchRun(run_id.into()));
    };
    let stream = link
        .js
        .get_stream(link.config.run_stream())
        .await
        .map_err(|e| jetstream_error("the run stream", e))?;
    let mut messages = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: link.config.run_subject(run_id),
            ..Default::default()
        })
        .await
        .map_err(|e| jetstream_error("the run consumer", e))?
        .messages()
        .await
        .map_err(|e| jetstream_error("the run consumer", e))?;
    let mut events = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| jetstream_error("the run consumer", e))?;
        let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
        events.extend(decode(run_id, sequence, &message.payload)?);
        if sequence >= tip.stream_seq {
            break;
        }
    }
    Ok(events)
}

/// Write a run's log from the stream into the store, keeping a local log that differs as
/// `events.jsonl.local-<ulid>` beside it: with NATS, the local log is a cache of the stream.
pub fn write_local(run_dir: &Path, events: &[Event]) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io(format!("{}: {e}", run_dir.display()));
    std::fs::create_dir_all(run_dir).map_err(io)?;
    let mut text = String::new();
    for event in events {
        text.push_str(&event.to_json_line());
        text.push('\n');
    }
    let path = run_dir.join(crate::record::EVENTS_FILE);
    match std::fs::read(&path) {
        Ok(local) if local == text.as_bytes() => return Ok(()),
        Ok(_) => {
            let aside = run_dir.join(format!("events.jsonl.local-{}", ulid::Ulid::new()));
            std::fs::rename(&path, &aside).map_err(io)?;
        }
        Err(_) => {}
    }
    let temporary = run_dir.join("events.jsonl.from-nats");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&temporary).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&temporary, &path).map_err(io)?;
    Ok(())
}

/// The mirror of one run: committed events are sent to it in order.
pub struct Mirror {
    tx: mpsc::UnboundedSender<Vec<Event>>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

/// The longest a coordinator waits, when its run ends, for NATS to take the events it has
/// not mirrored yet.
pub const DRAIN: Duration = Duration::from_secs(60);

impl Mirror {
    /// Start mirroring `run_id`, whose committed log is `local`: the events past the stream's
    /// tip are published first. `lost` is called once if another coordinator appended first.
    pub async fn start(
        link: Arc<Link>,
        run_id: &str,
        local: Vec<Event>,
        lost: impl FnOnce(Error) + Send + 'static,
    ) -> Result<Mirror, Error> {
        let tip = tip(&link, run_id).await?.unwrap_or_default();
        // The stream's last event must be ours: else another coordinator appended since this
        // one read the run, and this one must not go on.
        let ours = tip.event_seq == 0
            || local
                .iter()
                .any(|e| e.seq == tip.event_seq && e.event_id == tip.event_id);
        if !ours {
            return Err(Error::Superseded {
                run_id: run_id.to_string(),
                expected: tip.stream_seq,
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(local);
        let task = tokio::spawn(run(link, run_id.to_string(), tip, rx, lost));
        Ok(Mirror { tx, task })
    }

    /// Wait until every event sent is in the stream (at most [`DRAIN`]): a coordinator that
    /// lost the run to another learns it here at the latest.
    pub async fn finish(self) -> Result<(), Error> {
        let Mirror { tx, task } = self;
        drop(tx);
        match tokio::time::timeout(DRAIN, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(Error::Io(format!("the mirror stopped: {e}"))),
            Err(_) => Err(Error::Io(format!(
                "NATS did not take the run's last events within {}s; the local log has them",
                DRAIN.as_secs()
            ))),
        }
    }

    /// Mirror these committed events (those already in the stream are passed over).
    pub fn send(&self, events: Vec<Event>) {
        let _ = self.tx.send(events);
    }
}

/// The most bytes of events one mirror message carries (NATS's default `max_payload` is
/// 1 MiB); an event larger than this travels alone.
pub const GROUP_MAX: usize = 256 * 1024;

/// Mirror what the engine commits, one conditional publish at a time: while one waits for
/// its acknowledgement, the events committed meanwhile gather, and the next message carries
/// them all (a group commit). The expected last subject sequence of each message is the
/// previous one's, so two coordinators still never both append; a message's id is its last
/// event's `event_id`, and a publish retried after a lost acknowledgement resends the very
/// same message, which the stream deduplicates.
async fn run(
    link: Arc<Link>,
    run_id: String,
    mut tip: Tip,
    mut rx: mpsc::UnboundedReceiver<Vec<Event>>,
    lost: impl FnOnce(Error),
) -> Result<(), Error> {
    let subject = link.config.run_subject(&run_id);
    let mut pending: VecDeque<Event> = VecDeque::new();
    let mut open = true;
    while open || !pending.is_empty() {
        if pending.is_empty() {
            match rx.recv().await {
                Some(events) => pending.extend(events),
                None => open = false,
            }
        }
        while let Ok(events) = rx.try_recv() {
            pending.extend(events);
        }
        pending.retain(|e| e.seq > tip.event_seq);
        let Some((payload, last)) = group(&mut pending) else {
            continue;
        };
        match append(&link, &subject, &run_id, &tip, &last, payload).await {
            Ok(stream_seq) => {
                tip = Tip {
                    stream_seq,
                    event_seq: last.seq,
                    event_id: last.event_id,
                }
            }
            Err(e) => {
                let again = Error::Superseded {
                    run_id: run_id.clone(),
                    expected: tip.stream_seq,
                };
                lost(e);
                return Err(again);
            }
        }
    }
    Ok(())
}

/// The next message: the first pending events up to [`GROUP_MAX`] bytes (at least one), as
/// JSON lines, and its last event.
fn group(pending: &mut VecDeque<Event>) -> Option<(Vec<u8>, Event)> {
    let mut payload = Vec::new();
    let mut last = None;
    while let Some(event) = pending.front() {
        let line = event.to_json_line();
        if last.is_some() && payload.len() + line.len() + 1 > GROUP_MAX {
            break;
        }
        if !payload.is_empty() {
            payload.push(b'\n');
        }
        payload.extend_from_slice(line.as_bytes());
        last = pending.pop_front();
    }
    last.map(|last| (payload, last))
}

/// Append one message to the run's subject after `tip`, retrying (the same message) while
/// the server is away; its stream sequence, or `Superseded` if another coordinator appended.
async fn append(
    link: &Link,
    subject: &str,
    run_id: &str,
    tip: &Tip,
    last: &Event,
    payload: Vec<u8>,
) -> Result<u64, Error> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let publish = Publish::build()
            .message_id(&last.event_id)
            .expected_last_subject_sequence(tip.stream_seq)
            .payload(payload.clone().into());
        let acked = match link.js.send_publish(subject.to_string(), publish).await {
            Ok(ack) => ack.await.map_err(|e| e.kind()),
            Err(e) => Err(e.kind()),
        };
        match acked {
            Ok(ack) => return Ok(ack.sequence),
            Err(PublishErrorKind::WrongLastSequence) => {
                return Err(Error::Superseded {
                    run_id: run_id.to_string(),
                    expected: tip.stream_seq,
                })
            }
            Err(kind) => {
                // The server is away: the local log is durable, the mirror catches up.
                tracing::warn!("mirroring run {run_id} to NATS: {kind}; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
