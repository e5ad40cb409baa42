//! One line of `events.jsonl`: the envelope written in one pass from the typed payload, and
//! read in one pass (the payload decoded in place when its type comes first).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Event, EventData, SCHEMA_VERSION};

/// Why a log line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("event schema {found} is newer than this spectacular understands (up to {SCHEMA_VERSION}); upgrade spectacular")]
    TooNew { found: u32 },
    #[error(
        "event type `{kind}` is unknown to this spectacular; it was written by a newer version"
    )]
    UnknownType { kind: String },
}

impl DecodeError {
    /// Was the line written by a newer spectacular (a newer schema or an unknown event type)?
    /// Such a line is intact: it must be kept, never repaired away.
    pub fn is_newer(&self) -> bool {
        matches!(
            self,
            DecodeError::TooNew { .. } | DecodeError::UnknownType { .. }
        )
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    schema: u32,
    run_id: &'a str,
    seq: u64,
    ts: &'a str,
    causation_id: Option<&'a str>,
    actor: &'a str,
    data: Option<PayloadOut<'a>>,
}

/// The payload of an event without its tag: the `data` of the envelope.
pub struct PayloadOut<'a>(pub &'a EventData);

impl Serialize for PayloadOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            EventData::RunStarted(d) => d.serialize(s),
            EventData::RunResumed(d) => d.serialize(s),
            EventData::PhaseReady(d) => d.serialize(s),
            EventData::PhaseExpanded(d) => d.serialize(s),
            EventData::AttemptStarted(d) => d.serialize(s),
            EventData::AttemptSucceeded(d) => d.serialize(s),
            EventData::AttemptFailed(d) => d.serialize(s),
            EventData::PhaseSucceeded(d) => d.serialize(s),
            EventData::PhaseFailed(d) => d.serialize(s),
            EventData::PhaseSkipped(d) => d.serialize(s),
            EventData::LoopStarted(d) => d.serialize(s),
            EventData::ApprovalRequested(d) => d.serialize(s),
            EventData::ApprovalDecided(d) => d.serialize(s),
            EventData::ClarificationAnswered(d) => d.serialize(s),
            EventData::CancelRequested(d) => d.serialize(s),
            EventData::RunSuspended(d) => d.serialize(s),
            EventData::RunSucceeded(d) | EventData::RunFailed(d) | EventData::RunCanceled(d) => {
                d.serialize(s)
            }
            EventData::PolicyDecided(d) => d.serialize(s),
            EventData::FallbackActivated(d) => d.serialize(s),
            EventData::MergeStep(d) => d.serialize(s),
            EventData::BudgetAlert(d) => d.serialize(s),
            EventData::NotificationSent(d) | EventData::NotificationFailed(d) => d.serialize(s),
            EventData::IssueCommented(d) => d.serialize(s),
            EventData::PrOpened(d) | EventData::PrUpdated(d) => d.serialize(s),
            EventData::AttemptRedelivered(d) => d.serialize(s),
            EventData::AttemptRecalled(d) => d.serialize(s),
        }
    }
}

/// The envelope as read: one pass over the line. `data` is decoded in place when `type` (and
/// `schema`) come before it, as this build writes them; otherwise it is kept raw and decoded
/// afterwards.
struct EnvelopeIn<'a> {
    event_id: String,
    kind: String,
    schema: u32,
    run_id: String,
    seq: u64,
    ts: String,
    causation_id: Option<String>,
    actor: String,
    payload: Payload<'a>,
}

enum Payload<'a> {
    Decoded(EventData),
    Raw(&'a RawValue),
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    EventId,
    #[serde(rename = "type")]
    Kind,
    Schema,
    RunId,
    Seq,
    Ts,
    CausationId,
    Actor,
    Data,
    #[serde(other)]
    Other,
}

struct PayloadSeed<'k>(&'k str);

impl<'de> serde::de::DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = EventData;
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<EventData, D::Error> {
        EventData::deserialize_payload(self.0, de)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for EnvelopeIn<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = EnvelopeIn<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let mut event_id = None;
        let mut kind: Option<String> = None;
        let mut schema = None;
        let mut run_id = None;
        let mut seq = None;
        let mut ts = None;
        let mut causation_id = None;
        let mut actor = None;
        let mut data = None;
        let mut raw_data = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::EventId => event_id = Some(map.next_value()?),
                Field::Kind => kind = Some(map.next_value()?),
                Field::Schema => schema = Some(map.next_value()?),
                Field::RunId => run_id = Some(map.next_value()?),
                Field::Seq => seq = Some(map.next_value()?),
                Field::Ts => ts = Some(map.next_value()?),
                Field::CausationId => causation_id = map.next_value()?,
                Field::Actor => actor = Some(map.next_value()?),
                Field::Data => match (&kind, schema) {
                    (Some(kind), Some(schema))
                        if schema <= SCHEMA_VERSION
                            && EventData::TYPE_NAMES.contains(&kind.as_str()) =>
                    {
                        data = Some(map.next_value_seed(PayloadSeed(kind))?);
                    }
                    _ => raw_data = Some(map.next_value::<&'a RawValue>()?),
                },
                Field::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let payload = match (data, raw_data) {
            (Some(data), _) => Payload::Decoded(data),
            (None, Some(raw)) => Payload::Raw(raw),
            (None, None) => return Err(A::Error::missing_field("data")),
        };
        Ok(EnvelopeIn {
            event_id: event_id.ok_or_else(|| A::Error::missing_field("event_id"))?,
            kind: kind.ok_or_else(|| A::Error::missing_field("type"))?,
            schema: schema.ok_or_else(|| A::Error::missing_field("schema"))?,
            run_id: run_id.ok_or_else(|| A::Error::missing_field("run_id"))?,
            seq: seq.ok_or_else(|| A::Error::missing_field("seq"))?,
            ts: ts.ok_or_else(|| A::Error::missing_field("ts"))?,
            causation_id,
            actor: actor.ok_or_else(|| A::Error::missing_field("actor"))?,
            payload,
        })
    }
}

impl Event {
    /// The event as one JSON line (no trailing newline), fields in envelope order.
    pub fn to_json_line(&self) -> String {
        let mut line = Vec::with_capacity(256);
        self.write_json_line(&mut line);
        // serde_json writes UTF-8 only.
        String::from_utf8(line).unwrap_or_default()
    }

    /// Append the event as one JSON line (no trailing newline) to `out`: one pass, straight
    /// from the typed payload.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        let envelope = EnvelopeOut {
            event_id: &self.event_id,
            kind: self.data.type_name(),
            schema: self.schema,
            run_id: &self.run_id,
            seq: self.seq,
            ts: &self.ts,
            causation_id: self.causation_id.as_deref(),
            actor: &self.actor,
            data: Some(PayloadOut(&self.data)),
        };
        let start = out.len();
        if let Err(e) = serde_json::to_writer(&mut *out, &envelope) {
            // Only a map with keys that are not strings could fail, and no payload has one:
            // the envelope is still written, with a `null` payload.
            tracing::error!("this is a bug in spectacular; please report it: the payload of an event could not be written as JSON: {e}");
            out.truncate(start);
            let envelope = EnvelopeOut {
                data: None,
                ..envelope
            };
            let _ = serde_json::to_writer(&mut *out, &envelope);
        }
    }

    /// Read one line of a log, upcasting older schemas.
    pub fn from_json_line(line: &str) -> Result<Event, DecodeError> {
        let envelope: EnvelopeIn<'_> = serde_json::from_str(line)?;
        if envelope.schema > SCHEMA_VERSION {
            return Err(DecodeError::TooNew {
                found: envelope.schema,
            });
        }
        // Schema 1 is current: no upcasting yet. Later versions upcast here, by schema.
        let data = match envelope.payload {
            Payload::Decoded(data) => data,
            Payload::Raw(_) if !EventData::TYPE_NAMES.contains(&envelope.kind.as_str()) => {
                return Err(DecodeError::UnknownType {
                    kind: envelope.kind,
                })
            }
            Payload::Raw(raw) => EventData::from_type_and_data(&envelope.kind, raw.get())?,
        };
        Ok(Event {
            event_id: envelope.event_id,
            schema: envelope.schema,
            run_id: envelope.run_id,
            seq: envelope.seq,
            ts: envelope.ts,
            causation_id: envelope.causation_id,
            actor: envelope.actor,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"event_id":"E1","type":"phase.ready","schema":1,"run_id":"R","seq":1,"ts":"2026-11-21T10:00:00.000Z","causation_id":null,"actor":"engine","data":{"phase":"plan"}}"#;

    #[test]
    fn fields_may_come_in_any_order() {
        let event = Event::from_json_line(LINE).unwrap();
        let reordered = r#"{"data":{"phase":"plan"},"seq":1,"run_id":"R","actor":"engine","ts":"2026-11-21T10:00:00.000Z","schema":1,"type":"phase.ready","event_id":"E1","extra":[1]}"#;
        assert_eq!(Event::from_json_line(reordered).unwrap(), event);
        assert_eq!(event.to_json_line(), LINE);
    }

    /// The line written in one pass is the one the tagged form gives, for the golden sample
    /// of every event type.
    #[test]
    fn payloads_are_written_as_their_tagged_form_says() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        let mut seen = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let event = Event::from_json_line(line).unwrap();
                let tagged = serde_json::to_value(&event.data).unwrap();
                assert_eq!(
                    serde_json::to_string(&PayloadOut(&event.data)).unwrap(),
                    tagged["data"].to_string()
                );
                let again = Event::from_json_line(&event.to_json_line()).unwrap();
                assert_eq!(again, event);
                seen.insert(event.data.type_name());
            }
        }
        assert_eq!(seen.len(), EventData::TYPE_NAMES.len(), "{seen:?}");
    }

    #[test]
    fn bad_envelopes_are_refused() {
        let unknown = LINE.replace("phase.ready", "phase.unknown");
        let err = Event::from_json_line(&unknown).unwrap_err();
        assert!(err.is_newer(), "{err:?}");
        assert!(
            err.to_string().contains("`phase.unknown` is unknown"),
            "{err}"
        );
        let newer = LINE.replace(r#""schema":1"#, r#""schema":2"#);
        assert!(Event::from_json_line(&newer).unwrap_err().is_newer());
        let no_seq = LINE.replace(r#""seq":1,"#, "");
        let err = Event::from_json_line(&no_seq).unwrap_err().to_string();
        assert!(err.contains("missing field `seq`"), "{err}");
        let no_data = LINE.replace(r#","data":{"phase":"plan"}"#, "");
        let err = Event::from_json_line(&no_data).unwrap_err().to_string();
        assert!(err.contains("missing field `data`"), "{err}");
        let bad_payload = LINE.replace(r#""phase":"plan""#, r#""phase":7"#);
        assert!(Event::from_json_line(&bad_payload).is_err());
        let trailing = format!("{LINE} x");
        assert!(Event::from_json_line(&trailing).is_err());
    }
}
