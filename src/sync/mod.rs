//! Event sync to a control plane (`spectacular serve`): the local side.
//!
//! With a `sync:` section in `.spectacular/config.yaml`, the events of this project's runs are
//! sent to a control plane in batches. The queue is durable without a copy of its own: the run
//! logs are the authority and are made durable before anything else happens, and the queue is
//! a cursor over them (`.spectacular/sync/cursor.json`: per run, the last `seq` the control
//! plane answered for), written whole (temporary file, fsync, rename) after each answered
//! batch. A push killed at any point resends at most the batch it was sending, which the
//! control plane answers as `duplicate` (it deduplicates by `event_id`), so nothing is lost and
//! nothing counts twice. `state.json` beside it keeps what the last pushes met (the error, the
//! backoff, rejected events with their reasons) for `spectacular sync status` and `diagnose`.
//!
//! Sending never blocks or fails a run: a run pushes on a thread of its own ([`Background`]),
//! every failure is kept in the state and retried with exponential backoff.

mod background;
mod client;
mod gate;
mod push;
mod queue;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use background::Background;
pub use client::{Client, ClientError};
pub use gate::Gate;
pub use push::{push, PushReport};
pub use queue::{pending, Cursor, Pending, Problem, ProblemKind, Rejected, State};

use crate::record::store::Store;

/// The variable that holds the bearer token when `sync.token_env` names none.
pub const DEFAULT_TOKEN_ENV: &str = "SPECTACULAR_SYNC_TOKEN";

/// The most events in one batch (the control plane refuses more: [`MAX_BATCH_EVENTS`]).
pub const BATCH_EVENTS: usize = 200;
/// The most bytes of events in one batch the client sends.
pub const BATCH_BYTES: usize = 1024 * 1024;
/// The most events the control plane takes in one request.
pub const MAX_BATCH_EVENTS: usize = 500;
/// The largest request body the control plane reads.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The largest event (its JSON) the control plane takes.
pub const MAX_EVENT_BYTES: usize = 512 * 1024;

/// The `sync:` section, resolved: where to send, as whom, and the token.
#[derive(Clone, Debug)]
pub struct Settings {
    pub url: String,
    pub project: String,
    pub team: Option<String>,
    /// The variable the token is read from.
    pub token_env: String,
    /// The token, when that variable is set.
    pub token: Option<String>,
    /// Ask the control plane before each agent attempt whether the project is over its
    /// fleet budget.
    pub enforce_budget: bool,
    /// `.spectacular/sync/`
    pub dir: PathBuf,
}

/// What went wrong with the sync settings or the queue's files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no `sync:` section in `{0}`\n  help: add `sync: {{ url: http://HOST:7420, project: NAME }}` (see the book's page \"A control plane for many projects\")")]
    NotConfigured(String),
    #[error("`{path}` has errors, so sync is off:\n{diagnostics}")]
    Config { path: String, diagnostics: String },
    #[error("failed to {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another push of this project is under way (it holds `{}`); try again in a moment", .0.display())]
    Busy(PathBuf),
}

impl Settings {
    /// The `sync:` settings of the project whose store is `store`, or why there are none.
    pub fn load(store: &Store) -> Result<Settings, Error> {
        let path = store.dir.join("config.yaml");
        let (config, diagnostics) = crate::config::project::load(&store.dir);
        if diagnostics.has_errors() {
            let text =
                crate::diag::render_text(&diagnostics, crate::diag::RenderOptions { color: false });
            return Err(Error::Config {
                path: path.display().to_string(),
                diagnostics: text,
            });
        }
        let Some(section) = config.sync else {
            return Err(Error::NotConfigured(path.display().to_string()));
        };
        let token_env = section
            .token_env
            .clone()
            .unwrap_or_else(|| DEFAULT_TOKEN_ENV.to_string());
        let token = std::env::var(&token_env).ok().filter(|t| !t.is_empty());
        Ok(Settings {
            url: section.url.trim_end_matches('/').to_string(),
            project: section.project,
            team: section.team,
            token_env,
            token,
            enforce_budget: section.enforce_budget,
            dir: store.dir.join("sync"),
        })
    }

    /// [`Settings::load`], `None` when the project does not sync (or its config is broken,
    /// which `sync status` reports).
    pub fn configured(store: &Store) -> Option<Settings> {
        Settings::load(store).ok()
    }
}

/// A project, team or agent name as the control plane takes it: 1 to 64 ASCII letters,
/// digits, `_` and `-`, starting with a letter or digit (it becomes a NATS subject token, so
/// no `.`, `*`, `>` or spaces).
pub fn is_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// One batch, as posted to `POST /v1/events`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Who ran the runs (the local user name), for the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Where they ran (the host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The events, each exactly as its run's log holds it.
    pub events: Vec<Box<serde_json::value::RawValue>>,
}

/// What the control plane did with one event of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Stored for the first time.
    Accepted,
    /// Already stored (same `event_id`): not counted again.
    Duplicate,
    /// Refused; the reason says why. Sending it again gives the same answer.
    Rejected,
}

/// The answer for one event, in the order of the batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventResult {
    /// The event's id, when it had a readable one.
    pub event_id: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to a batch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BatchResponse {
    pub results: Vec<EventResult>,
}

/// `GET /v1/budget/{project}`: where a project stands against its fleet budget this month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetAnswer {
    pub project: String,
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub spent_usd: f64,
    /// `None`: the project has no fleet budget.
    #[serde(default)]
    pub limit_usd: Option<f64>,
    pub over: bool,
}

/// The local user's name, for the audit trail (`USER`, else `LOGNAME`), bounded.
pub fn user_name() -> Option<String> {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()?;
    Some(name.chars().take(64).collect())
}

/// Text from elsewhere (a server's message, a rejection reason) fit for one line of a
/// terminal or a file: control characters become spaces, at most 300 characters.
pub fn one_line(text: &str) -> String {
    text.chars()
        .take(300)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_subject_tokens_never_paths_or_wildcards() {
        for ok in ["payments", "a", "team-1_b", &"x".repeat(64)] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a.b",
            "../x",
            "a/b",
            "*",
            ">",
            "a b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(!is_name(bad), "{bad}");
        }
    }

    #[test]
    fn text_from_elsewhere_is_one_bounded_line() {
        assert_eq!(one_line("a\nb\u{1b}[2Jc"), "a b [2Jc");
        assert_eq!(one_line(&"x".repeat(1000)).len(), 300);
    }
}
