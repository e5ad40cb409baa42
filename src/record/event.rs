//! Events: immutable, schema-versioned records of every transition of a run. The JSON shape
//! of each event is public API (snapshot-tested; old logs are fixtures that must keep loading).
//!
//! One line of `events.jsonl`:
//!
//! ```json
//! {"event_id":"01J…","type":"phase.succeeded","schema":1,"run_id":"01J…","seq":42,
//!  "ts":"2026-11-21T10:15:03.120Z","causation_id":"01J…","actor":"engine","data":{…}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::FailureKind;

/// The envelope schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One event: the envelope and its typed payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub schema: u32,
    pub run_id: String,
    /// Gap-free, starting at 1, per run.
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// The event that led to this one.
    pub causation_id: Option<String>,
    /// Who caused it: `engine`, `user:<name>`, `policy:<pack>`.
    pub actor: String,
    pub data: EventData,
}

/// The payloads, one variant per event type. Types are additive: new variants may appear;
/// a changed shape gets a new `schema` and an upcaster in [`Event::from_json_line`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventData {
    #[serde(rename = "run.started")]
    RunStarted(RunStarted),
    #[serde(rename = "run.resumed")]
    RunResumed(RunResumed),
    #[serde(rename = "phase.ready")]
    PhaseReady(PhaseRef),
    #[serde(rename = "phase.expanded")]
    PhaseExpanded(PhaseExpanded),
    #[serde(rename = "attempt.started")]
    AttemptStarted(AttemptStarted),
    #[serde(rename = "attempt.succeeded")]
    AttemptSucceeded(AttemptSucceeded),
    #[serde(rename = "attempt.failed")]
    AttemptFailed(AttemptFailed),
    #[serde(rename = "phase.succeeded")]
    PhaseSucceeded(PhaseSucceeded),
    #[serde(rename = "phase.failed")]
    PhaseFailed(PhaseFailed),
    #[serde(rename = "phase.skipped")]
    PhaseSkipped(PhaseSkipped),
    #[serde(rename = "loop.started")]
    LoopStarted(LoopStarted),
    #[serde(rename = "approval.requested")]
    ApprovalRequested(ApprovalRequested),
    #[serde(rename = "approval.decided")]
    ApprovalDecided(ApprovalDecided),
    #[serde(rename = "run.cancel_requested")]
    CancelRequested(CancelRequested),
    #[serde(rename = "run.suspended")]
    RunSuspended(RunSuspended),
    #[serde(rename = "run.succeeded")]
    RunSucceeded(RunFinished),
    #[serde(rename = "run.failed")]
    RunFailed(RunFinished),
    #[serde(rename = "run.canceled")]
    RunCanceled(RunFinished),
}

impl EventData {
    /// The event type, as written in the log (`phase.succeeded`).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventData::RunStarted(_) => "run.started",
            EventData::RunResumed(_) => "run.resumed",
            EventData::PhaseReady(_) => "phase.ready",
            EventData::PhaseExpanded(_) => "phase.expanded",
            EventData::AttemptStarted(_) => "attempt.started",
            EventData::AttemptSucceeded(_) => "attempt.succeeded",
            EventData::AttemptFailed(_) => "attempt.failed",
            EventData::PhaseSucceeded(_) => "phase.succeeded",
            EventData::PhaseFailed(_) => "phase.failed",
            EventData::PhaseSkipped(_) => "phase.skipped",
            EventData::LoopStarted(_) => "loop.started",
            EventData::ApprovalRequested(_) => "approval.requested",
            EventData::ApprovalDecided(_) => "approval.decided",
            EventData::CancelRequested(_) => "run.cancel_requested",
            EventData::RunSuspended(_) => "run.suspended",
            EventData::RunSucceeded(_) => "run.succeeded",
            EventData::RunFailed(_) => "run.failed",
            EventData::RunCanceled(_) => "run.canceled",
        }
    }

    /// The phase this event is about, if any.
    pub fn phase(&self) -> Option<&str> {
        match self {
            EventData::PhaseReady(d) => Some(&d.phase),
            EventData::PhaseExpanded(d) => Some(&d.phase),
            EventData::AttemptStarted(d) => Some(&d.phase),
            EventData::AttemptSucceeded(d) => Some(&d.phase),
            EventData::AttemptFailed(d) => Some(&d.phase),
            EventData::PhaseSucceeded(d) => Some(&d.phase),
            EventData::PhaseFailed(d) => Some(&d.phase),
            EventData::PhaseSkipped(d) => Some(&d.phase),
            EventData::LoopStarted(d) => Some(&d.from),
            EventData::ApprovalRequested(d) => Some(&d.phase),
            EventData::ApprovalDecided(d) => Some(&d.phase),
            _ => None,
        }
    }

    /// Does this event end the run (for now: a suspended run can continue later)?
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventData::RunSucceeded(_) | EventData::RunFailed(_) | EventData::RunCanceled(_)
        )
    }
}

/// The first event of a run: pins the mission (its source, digest and the digests of the
/// files it references) and the inputs, so that resume and replay never read a drifted file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    pub mission: String,
    /// Where the mission came from (a path or `builtin:missions/<name>/mission.yaml`).
    pub mission_source: String,
    /// `sha256:<hex>` of the mission file and every file it references.
    pub mission_digest: String,
    /// The mission file's text, exactly as validated.
    pub mission_text: String,
    /// Referenced files (templates, schemas), relative path → `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Inputs after defaults and type conversion.
    #[serde(default)]
    pub inputs: BTreeMap<String, serde_json::Value>,
    /// Global concurrency limit (`--max-parallel`).
    pub max_parallel: u32,
    /// The spectacular version that started the run.
    pub engine_version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResumed {
    /// Attempts that were running when the engine stopped; recorded as interrupted next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interrupted: Vec<String>,
    /// The mission was upgraded to a changed file (`resume --upgrade`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upgraded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission_text: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseRef {
    /// Phase id; fan-out children are `parent[key]`.
    pub phase: String,
}

/// A `for_each` phase expanded into children, from recorded facts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseExpanded {
    pub phase: String,
    pub children: Vec<Child>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Child {
    /// The child's key (the item's `id`, else its index).
    pub key: String,
    pub item: serde_json::Value,
    /// Keys of sibling children this one waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptStarted {
    pub phase: String,
    /// 1-based, counted across retries, loops and resumes.
    pub attempt: u32,
    /// The attempt's working directory, relative to the run directory (or `.` for the repo).
    pub workdir: String,
    /// The argv started, if a process was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Digest of the rendered prompt, for agent phases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_digest: Option<String>,
    /// Deadline of this attempt in milliseconds from its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptSucceeded {
    pub phase: String,
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// Declared outputs: name → artifact path relative to the run directory.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, String>,
    /// Outputs that are JSON (or text under 64 KiB), recorded so that `if`, `for_each` and
    /// templates read recorded facts only: name → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptFailed {
    pub phase: String,
    pub attempt: u32,
    pub kind: FailureKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub duration_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseSucceeded {
    pub phase: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseFailed {
    pub phase: String,
    pub attempts: u32,
    pub kind: FailureKind,
    pub message: String,
    /// The failure was tolerated (`continue_on_error`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseSkipped {
    pub phase: String,
    pub reason: SkipReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Its `if` was false.
    Condition,
    /// A phase it needs failed (or was rejected) and it is not `always`.
    UpstreamFailed,
    /// The run was canceled before it started.
    Canceled,
}

/// A rework loop: `from` failed and the run goes back to `goto`; `reset` phases run again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopStarted {
    pub from: String,
    pub goto: String,
    /// 1 for the first loop.
    pub iteration: u32,
    pub reset: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    pub phase: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalDecided {
    pub phase: String,
    pub approved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The decision was taken by the gate's `on_timeout`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelRequested {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSuspended {
    /// Gates waiting for a decision.
    pub waiting: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    /// Phases that failed (for `run.failed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a log line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a valid event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("event schema {found} is newer than this spectacular understands (up to {SCHEMA_VERSION}); upgrade spectacular")]
    TooNew { found: u32 },
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
    data: &'a serde_json::Value,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    schema: u32,
    run_id: String,
    seq: u64,
    ts: String,
    #[serde(default)]
    causation_id: Option<String>,
    actor: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

impl Event {
    /// The event as one JSON line (no trailing newline), fields in envelope order.
    pub fn to_json_line(&self) -> String {
        let tagged = serde_json::to_value(&self.data).unwrap_or_default();
        let data = tagged
            .get("data")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let out = EnvelopeOut {
            event_id: &self.event_id,
            kind: self.data.type_name(),
            schema: self.schema,
            run_id: &self.run_id,
            seq: self.seq,
            ts: &self.ts,
            causation_id: self.causation_id.as_deref(),
            actor: &self.actor,
            data: &data,
        };
        serde_json::to_string(&out).unwrap_or_default()
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
        let tagged = format!(
            "{{\"type\":{},\"data\":{}}}",
            serde_json::to_string(&envelope.kind)?,
            envelope.data.get()
        );
        let data: EventData = serde_json::from_str(&tagged)?;
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
