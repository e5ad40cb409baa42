//! The validated mission: ids checked, kinds resolved, durations parsed. Only the validate
//! stage constructs these types, so holding a [`Mission`] means it passed every check.

pub mod builtins;
pub mod raw;
pub mod schema;

use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;

pub use raw::{FailureKind, InputType, OnTimeout, OutputCheckKind, Workspace};

use crate::load::Base;

#[derive(Clone, Debug, Serialize)]
pub struct Mission {
    pub id: String,
    pub description: Option<String>,
    pub inputs: IndexMap<String, Input>,
    pub vars: IndexMap<String, serde_json::Value>,
    pub budget: Budget,
    pub policies: Vec<String>,
    /// Params set for enabled packs (`policies: [{approved-models: {models: [gpt]}}]`).
    pub policy_params: IndexMap<String, serde_json::Map<String, serde_json::Value>>,
    pub defaults: Defaults,
    pub phases: IndexMap<String, Phase>,
    /// The MCP servers this mission declares for its agents.
    pub mcp_servers: std::collections::BTreeMap<String, crate::config::mcp::McpServer>,
    /// Which of their tools (and of the project's) each role and agent may call.
    pub mcp_tools: crate::config::mcp::McpTools,
    /// The mission's source text, exactly as read.
    #[serde(skip)]
    pub source_text: String,
    /// The display name of the mission file.
    pub source_name: String,
    /// Where relative paths resolve.
    #[serde(skip)]
    pub base: Base,
}

#[derive(Clone, Debug, Serialize)]
pub struct Input {
    pub kind: InputType,
    pub required: bool,
    pub default: Option<serde_json::Value>,
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Budget {
    pub max_usd: Option<f64>,
    pub soft_usd: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Defaults {
    pub agent: Option<String>,
    pub model: Option<String>,
    #[serde(with = "humantime_serde_opt")]
    pub timeout: Option<Duration>,
    #[serde(with = "humantime_serde_opt")]
    pub deadline: Option<Duration>,
    pub retry: Retry,
    pub workspace: Option<Workspace>,
    pub continue_on_error: Option<bool>,
}

/// Retry settings as written; `None` fields inherit.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Retry {
    pub max_attempts: Option<u32>,
    #[serde(with = "humantime_serde_opt")]
    pub initial: Option<Duration>,
    pub factor: Option<f64>,
    #[serde(with = "humantime_serde_opt")]
    pub max: Option<Duration>,
    pub non_retryable: Option<Vec<FailureKind>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    pub id: String,
    pub description: Option<String>,
    pub kind: PhaseKind,
    pub needs: Vec<String>,
    /// The `if` expression (Rhai).
    pub condition: Option<String>,
    pub for_each: Option<ForEach>,
    pub max_parallel: Option<u32>,
    pub retry: Retry,
    #[serde(with = "humantime_serde_opt")]
    pub timeout: Option<Duration>,
    #[serde(with = "humantime_serde_opt")]
    pub deadline: Option<Duration>,
    pub continue_on_error: Option<bool>,
    pub always: bool,
    pub outputs: IndexMap<String, Output>,
    pub workspace: Option<Workspace>,
    /// Labels a NATS worker must have to run the phase (sorted, unique).
    pub runs_on: Vec<String>,
    pub on_failure: Option<OnFailure>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PhaseKind {
    Agent {
        role: Option<String>,
        agent: Option<String>,
        model: Option<String>,
        prompt: Option<String>,
    },
    Run {
        argv: Vec<String>,
    },
    Shell {
        script: String,
    },
    Uses {
        step: String,
        with: IndexMap<String, serde_json::Value>,
    },
    Approval {
        reason: String,
        #[serde(with = "humantime_serde_opt")]
        timeout: Option<Duration>,
        on_timeout: OnTimeout,
    },
}

impl PhaseKind {
    /// The kind's name as used in messages and graphs.
    pub fn name(&self) -> &'static str {
        match self {
            PhaseKind::Agent { .. } => "agent",
            PhaseKind::Run { .. } => "run",
            PhaseKind::Shell { .. } => "shell",
            PhaseKind::Uses { .. } => "uses",
            PhaseKind::Approval { .. } => "approval",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForEach {
    Expression(String),
    Items(Vec<serde_json::Value>),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Output {
    pub path: String,
    pub schema: Option<String>,
    pub check: Option<OutputCheck>,
}

/// A check the engine runs on an output beyond its schema.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputCheck {
    pub kind: raw::OutputCheckKind,
    /// The spec (a template) a plan is traced to.
    pub spec: Option<String>,
    /// The plan (a template) verdicts are about.
    pub plan: Option<String>,
    /// Set by the engine when it prepares an attempt: the copy of the spec taken when the run
    /// started, which coverage is checked against (the spec on disk may have changed since).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_spec: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OnFailure {
    pub goto: String,
    pub max_loops: u32,
}

/// The longest item id accepted.
pub const MAX_ITEM_ID_LEN: usize = 64;

/// Is `id` a valid item id: 1 to [`MAX_ITEM_ID_LEN`] ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter, a digit or `_`, without `..` and not ending with `.` or `.lock`?
/// Such an id is a single, ordinary path segment (never `.`, `..`, hidden, an option, or a
/// separator), fits on one line, and ends a git branch name git accepts
/// (`spectacular/<run>-<id>`).
pub fn is_item_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ITEM_ID_LEN
        && (id.as_bytes()[0].is_ascii_alphanumeric() || id.as_bytes()[0] == b'_')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.contains("..")
        && !id.ends_with('.')
        && !id.to_ascii_lowercase().ends_with(".lock")
}

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DurationError {
    /// A bare number: mission files always name the unit.
    #[error("`{0}` has no unit")]
    NoUnit(String),
    #[error(transparent)]
    Invalid(#[from] humantime::DurationError),
}

/// Parse a humantime duration as mission files write them.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(DurationError::NoUnit(trimmed.to_string()));
    }
    Ok(humantime::parse_duration(trimmed)?)
}

/// Format a duration the way users write them (`1h 30m`).
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

mod humantime_serde_opt {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}
