//! Record: events, the append-only JSONL log per run (the authority), and the SQLite
//! projection (rebuildable from the logs at any time).
//!
//! - [`event`]: the envelope and the typed payloads (a durable format).
//! - [`store`]: where runs live on disk, reading logs, opening the projection.
//! - [`log`]: [`RunLog`], the single writer of a run (group commit, torn-tail repair).
//! - [`lock`]: one writer per run (an `flock` on `<run_dir>/lock`).
//! - [`limits`]: the size limits of what goes into an event, applied on the append path.
//! - [`redact`]: the secrets replaced in every event before it is written.
//! - [`fold`]: a pure fold of events into a [`RunSummary`].
//! - [`projection`]: the SQLite tables kept in step with the logs.
//!
//! This module never decides what happens next (that is the scheduler's job): it only keeps
//! what happened, durably, and answers questions about it.

use std::path::PathBuf;
use std::time::SystemTime;

pub mod event;
pub mod fold;
pub mod limits;
pub mod lock;
pub mod log;
pub mod projection;
pub mod redact;
pub mod store;
pub mod usage;

pub use event::{Event, EventData};
pub use fold::{fold, ChildCounts, PhaseState, PhaseSummary, RunStatus, RunSummary};
pub use log::RunLog;
pub use projection::{AttemptRow, PhaseRow, Projection, RunRow};
pub use redact::Redactor;
pub use store::Store;

/// The name of a run's log file inside its run directory.
pub const EVENTS_FILE: &str = "events.jsonl";

/// The current time as RFC 3339 UTC with milliseconds (`2026-11-21T10:15:03.120Z`).
pub fn now_ts() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Why the record could not be read or written. Each message says what went wrong, where,
/// and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A complete line (it ends with a newline) that is not an event this build can read.
    /// `help` says what to do: it differs for a line written by a newer version, a damaged
    /// last line and a damaged line before it.
    #[error("`{}` line {line} is not a valid event: {reason}\nhelp: {help}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
        help: &'static str,
    },

    #[error(
        "`{}` line {line} repeats the event_id `{event_id}` of line {first_line}\n\
         help: every event has its own id, so lines were copied or edited; restore the file \
         from a backup, or move the run directory aside to start over",
        path.display()
    )]
    DuplicateEvent {
        path: PathBuf,
        line: usize,
        first_line: usize,
        event_id: String,
    },

    #[error(
        "`{}` line {line} has seq {found} but seq {expected} was expected (seq must be gap-free)\n\
         help: the log was edited or damaged; restore it from a backup",
        path.display()
    )]
    SeqGap {
        path: PathBuf,
        line: usize,
        expected: u64,
        found: u64,
    },

    #[error(
        "`{}` line {line} belongs to run `{found}`, not `{expected}`\n\
         help: an events file was copied between runs; put it back in `runs/{found}/`",
        path.display()
    )]
    WrongRun {
        path: PathBuf,
        line: usize,
        expected: String,
        found: String,
    },

    #[error("{}", locked_message(run_id, *pid, host.as_deref()))]
    Locked {
        run_id: String,
        pid: Option<u32>,
        host: Option<String>,
    },

    #[error(
        "the log of run `{run_id}` can no longer be written: an earlier write or fsync failed \
         ({cause})\n\
         help: the engine must stop; fix the cause (disk full? read-only file system?), then \
         `spectacular resume {run_id}`"
    )]
    Poisoned { run_id: String, cause: String },

    #[error(
        "run `{run_id}` already exists at `{}`\n\
         help: run ids must be new; use `RunLog::open` to continue a run",
        path.display()
    )]
    RunExists { run_id: String, path: PathBuf },

    #[error("no run matches `{query}` in `{}`{}", runs_dir.display(), candidates_help(candidates))]
    UnknownRun {
        query: String,
        runs_dir: PathBuf,
        candidates: Vec<String>,
    },

    #[error(
        "`{query}` matches {} runs: {}\nhelp: type more characters of the run id",
        candidates.len(),
        candidates.join(", ")
    )]
    AmbiguousRun {
        query: String,
        candidates: Vec<String>,
    },

    #[error(
        "the projection `{}` failed: {source}\n\
         help: the projection can be rebuilt from the logs: delete `{}` and run the command again",
        path.display(),
        path.display()
    )]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "the projection `{}` is at seq {at} of run `{run_id}` but was given seq {found}\n\
         help: apply the events of a run in order; to start over, delete `{}`",
        path.display(),
        path.display()
    )]
    ProjectionGap {
        path: PathBuf,
        run_id: String,
        at: u64,
        found: u64,
    },
}

fn locked_message(run_id: &str, pid: Option<u32>, host: Option<&str>) -> String {
    let holder = match (pid, host) {
        (Some(pid), Some(host)) => format!("process {pid} on host `{host}`"),
        (Some(pid), None) => format!("process {pid}"),
        (None, Some(host)) => format!("a process on host `{host}`"),
        (None, None) => "another process".to_string(),
    };
    format!(
        "run `{run_id}` is being written by {holder}\n\
         help: only one engine may write a run; wait for it to finish, stop it \
         (`spectacular cancel {run_id}`), or check that process"
    )
}

fn candidates_help(candidates: &[String]) -> String {
    if candidates.is_empty() {
        "\nhelp: there are no runs yet; start one with `spectacular run <mission>`".to_string()
    } else {
        let shown: Vec<&str> = candidates
            .iter()
            .rev()
            .take(5)
            .map(String::as_str)
            .collect();
        format!(
            "\nhelp: the latest runs are: {} (or use `last`)",
            shown.join(", ")
        )
    }
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
