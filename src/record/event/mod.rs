//! Events: immutable, schema-versioned records of every transition of a run. The JSON shape
//! of each event is public API (snapshot-tested; old logs are fixtures that must keep loading).
//!
//! One line of `events.jsonl`:
//!
//! ```json
//! {"event_id":"01J…","type":"phase.succeeded","schema":1,"run_id":"01J…","seq":42,
//!  "ts":"2026-11-21T10:15:03.120Z","causation_id":"01J…","actor":"engine","data":{…}}
//! ```
//!
//! - this module: the envelope ([`Event`]) and the payload enum ([`EventData`]), with what
//!   every type is called in the log;
//! - [`payloads`]: the payload of each event type;
//! - [`json`]: one line of the log written and read (the envelope, [`DecodeError`]).

use serde::{Deserialize, Serialize};

pub use super::usage::{CostSource, Usage};
pub use json::{DecodeError, PayloadOut};
pub use payloads::*;

pub mod json;
pub mod payloads;

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
    #[serde(rename = "clarification.answered")]
    ClarificationAnswered(ClarificationAnswered),
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
    #[serde(rename = "policy.decided")]
    PolicyDecided(Box<PolicyDecided>),
    #[serde(rename = "fallback.activated")]
    FallbackActivated(FallbackActivated),
    #[serde(rename = "merge.step")]
    MergeStep(MergeStep),
    #[serde(rename = "budget.alert")]
    BudgetAlert(BudgetAlert),
    #[serde(rename = "notification.sent")]
    NotificationSent(Notification),
    #[serde(rename = "notification.failed")]
    NotificationFailed(Notification),
    #[serde(rename = "issue.commented")]
    IssueCommented(IssueCommented),
    #[serde(rename = "pr.opened")]
    PrOpened(PullRequest),
    #[serde(rename = "pr.updated")]
    PrUpdated(PullRequest),
    #[serde(rename = "attempt.redelivered")]
    AttemptRedelivered(AttemptRedelivered),
    #[serde(rename = "attempt.recalled")]
    AttemptRecalled(AttemptRecalled),
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
            EventData::ClarificationAnswered(_) => "clarification.answered",
            EventData::CancelRequested(_) => "run.cancel_requested",
            EventData::RunSuspended(_) => "run.suspended",
            EventData::RunSucceeded(_) => "run.succeeded",
            EventData::RunFailed(_) => "run.failed",
            EventData::RunCanceled(_) => "run.canceled",
            EventData::PolicyDecided(_) => "policy.decided",
            EventData::FallbackActivated(_) => "fallback.activated",
            EventData::MergeStep(_) => "merge.step",
            EventData::BudgetAlert(_) => "budget.alert",
            EventData::NotificationSent(_) => "notification.sent",
            EventData::NotificationFailed(_) => "notification.failed",
            EventData::IssueCommented(_) => "issue.commented",
            EventData::PrOpened(_) => "pr.opened",
            EventData::PrUpdated(_) => "pr.updated",
            EventData::AttemptRedelivered(_) => "attempt.redelivered",
            EventData::AttemptRecalled(_) => "attempt.recalled",
        }
    }

    /// Every event type name, in declaration order.
    pub const TYPE_NAMES: &'static [&'static str] = &[
        "run.started",
        "run.resumed",
        "phase.ready",
        "phase.expanded",
        "attempt.started",
        "attempt.succeeded",
        "attempt.failed",
        "phase.succeeded",
        "phase.failed",
        "phase.skipped",
        "loop.started",
        "approval.requested",
        "approval.decided",
        "run.cancel_requested",
        "run.suspended",
        "run.succeeded",
        "run.failed",
        "run.canceled",
        "policy.decided",
        "fallback.activated",
        "budget.alert",
        "merge.step",
        "clarification.answered",
        "notification.sent",
        "notification.failed",
        "issue.commented",
        "pr.opened",
        "pr.updated",
        "attempt.redelivered",
        "attempt.recalled",
    ];

    /// Decode a payload from its type name and its `data` JSON: the same result as reading
    /// the tagged form `{"type":…,"data":…}`, without assembling it and parsing twice.
    pub fn from_type_and_data(kind: &str, data: &str) -> Result<EventData, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(data);
        let value = EventData::deserialize_payload(kind, &mut de)?;
        de.end()?;
        Ok(value)
    }

    /// Decode the payload of an event of type `kind` from any deserializer.
    fn deserialize_payload<'de, D: serde::Deserializer<'de>>(
        kind: &str,
        de: D,
    ) -> Result<EventData, D::Error> {
        macro_rules! read {
            ($variant:ident) => {
                EventData::$variant(Deserialize::deserialize(de)?)
            };
        }
        Ok(match kind {
            "run.started" => read!(RunStarted),
            "run.resumed" => read!(RunResumed),
            "phase.ready" => read!(PhaseReady),
            "phase.expanded" => read!(PhaseExpanded),
            "attempt.started" => read!(AttemptStarted),
            "attempt.succeeded" => read!(AttemptSucceeded),
            "attempt.failed" => read!(AttemptFailed),
            "phase.succeeded" => read!(PhaseSucceeded),
            "phase.failed" => read!(PhaseFailed),
            "phase.skipped" => read!(PhaseSkipped),
            "loop.started" => read!(LoopStarted),
            "approval.requested" => read!(ApprovalRequested),
            "approval.decided" => read!(ApprovalDecided),
            "run.cancel_requested" => read!(CancelRequested),
            "run.suspended" => read!(RunSuspended),
            "run.succeeded" => read!(RunSucceeded),
            "run.failed" => read!(RunFailed),
            "run.canceled" => read!(RunCanceled),
            "policy.decided" => read!(PolicyDecided),
            "fallback.activated" => read!(FallbackActivated),
            "budget.alert" => read!(BudgetAlert),
            "attempt.redelivered" => read!(AttemptRedelivered),
            "attempt.recalled" => read!(AttemptRecalled),
            "merge.step" => read!(MergeStep),
            "clarification.answered" => read!(ClarificationAnswered),
            "notification.sent" => read!(NotificationSent),
            "notification.failed" => read!(NotificationFailed),
            "issue.commented" => read!(IssueCommented),
            "pr.opened" => read!(PrOpened),
            "pr.updated" => read!(PrUpdated),
            other => {
                return Err(serde::de::Error::unknown_variant(
                    other,
                    EventData::TYPE_NAMES,
                ))
            }
        })
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
            EventData::ClarificationAnswered(d) => Some(&d.phase),
            EventData::PolicyDecided(d) => Some(&d.phase),
            EventData::FallbackActivated(d) => Some(&d.phase),
            EventData::AttemptRedelivered(d) => Some(&d.phase),
            EventData::AttemptRecalled(d) => Some(&d.phase),
            EventData::MergeStep(d) => Some(&d.phase),
            _ => None,
        }
    }

    /// Is this the record of a webhook delivery? Such events may follow the event that ended
    /// or suspended the run, and change nothing about its state.
    pub fn is_notification(&self) -> bool {
        matches!(
            self,
            EventData::NotificationSent(_) | EventData::NotificationFailed(_)
        )
    }

    /// Is this a record of something done outside the run, possibly after it stopped (a
    /// webhook told, an issue commented, a pull request opened)? Such events never change how
    /// the run ended.
    pub fn is_after_the_fact(&self) -> bool {
        self.is_notification()
            || matches!(
                self,
                EventData::IssueCommented(_) | EventData::PrOpened(_) | EventData::PrUpdated(_)
            )
    }

    /// Does this event end the run (for now: a suspended run can continue later)?
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventData::RunSucceeded(_) | EventData::RunFailed(_) | EventData::RunCanceled(_)
        )
    }
}
