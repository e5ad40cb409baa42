//! `start_run`: `spectacular run` started as a child in a process group of its own (the run
//! outlives the server and its client), answered as soon as the run has an id; then the run's
//! log (the authority, not the child's output) is followed and each event becomes a
//! notification to the client.

// Log notifications are deprecated by the protocol's SEP-2577 but are what clients show today
// (the Python SDK's `logging_callback`, the Inspector's notification pane).
#![allow(deprecated)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{
    LoggingLevel, LoggingMessageNotificationParam, ResourceUpdatedNotificationParam,
};
use rmcp::{Peer, RoleServer};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

use super::command::Cli;
use super::Error;

/// How long a run may take to get its id (validation, preflight) before the tool gives up.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a followed log is read again.
const POLL: Duration = Duration::from_millis(250);
/// The longest line of a log that is turned into a notification (a longer one is named only).
const LINE_CAP: usize = 256 * 1024;

/// Start `spectacular run <mission> [--input k=v]…`; the run id once the run has one, or the
/// command's own error (invalid mission: its located diagnostics, as the CLI renders them).
pub async fn start(cli: &Cli, args: &[String]) -> Result<String, Error> {
    let mut command = cli.command(args);
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command.spawn().map_err(|e| Error::Spawn {
        exe: cli.exe.clone(),
        source: e,
    })?;
    let stderr = child.stderr.take().ok_or(Error::NoRunId {
        said: String::new(),
    })?;
    let mut lines = BufReader::new(stderr);
    let mut said = String::new();
    let found = tokio::time::timeout(START_TIMEOUT, async {
        loop {
            let mut line = String::new();
            let read = (&mut lines)
                .take(LINE_CAP as u64)
                .read_line(&mut line)
                .await;
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            if let Some(id) = run_id_of(&line) {
                return Some(id);
            }
            if said.len() < 64 * 1024 {
                said.push_str(&line);
            }
        }
    })
    .await;
    match found {
        Ok(Some(id)) => {
            // The run goes on: its stderr is drained (the server may go away first: a write
            // to a closed stderr is ignored by the CLI), and the child reaped when it ends.
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut lines, &mut tokio::io::sink()).await;
                let _ = child.wait().await;
            });
            Ok(id)
        }
        Ok(None) => {
            let _ = child.wait().await;
            let said = said.trim();
            Err(Error::NoRunId {
                said: said.strip_prefix("error: ").unwrap_or(said).to_string(),
            })
        }
        Err(_) => {
            let _ = child.start_kill();
            Err(Error::Timeout {
                command: "run".into(),
                after: START_TIMEOUT,
            })
        }
    }
}

/// The run id in the CLI's first line about a run: "run <ID> of `<mission>`".
fn run_id_of(line: &str) -> Option<String> {
    let rest = line.strip_prefix("run ")?;
    let (id, tail) = rest.split_once(' ')?;
    (tail.starts_with("of `") && id.len() == 26 && id.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| id.to_string())
}

/// Follow a run's log and tell the client about each event: a log message
/// (`notifications/message`, logger `spectacular`) with the run, sequence, type and phase, and
/// `notifications/resources/updated` for the run's resource. Ends when the run stops (it
/// succeeded, failed, was canceled or suspended) or the client goes away.
/// `from`: the length of the log already told (0 for a new run; its length when a stopped run
/// is resumed).
pub async fn follow(peer: Peer<RoleServer>, log: PathBuf, run_id: String, from: usize) {
    let uri = format!("spectacular://runs/{run_id}");
    let mut offset = from;
    let mut pending = Vec::new();
    loop {
        let from = offset;
        let path = log.clone();
        let bytes = tokio::task::spawn_blocking(move || read_from(&path, from))
            .await
            .unwrap_or_default();
        offset += bytes.len();
        pending.extend_from_slice(&bytes);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Some(note) = notification(&run_id, &line) else {
                continue;
            };
            let stop = is_stop(&note);
            let level = level_of(&note);
            let sent = peer
                .notify_logging_message(
                    LoggingMessageNotificationParam::new(level, note).with_logger("spectacular"),
                )
                .await;
            let updated = peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri.clone()))
                .await;
            // Stop at the event that stopped the run, even when more follows in what was read:
            // what a resumed run appends is told by the follower its resume starts.
            if sent.is_err() || updated.is_err() || stop {
                return;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What the log holds past `offset` (nothing when it cannot be read yet).
fn read_from(path: &std::path::Path, offset: usize) -> Vec<u8> {
    use std::io::{Read as _, Seek as _};
    let mut bytes = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        if file.seek(std::io::SeekFrom::Start(offset as u64)).is_ok() {
            let _ = file.take(16 * 1024 * 1024).read_to_end(&mut bytes);
        }
    }
    bytes
}

/// What a client is told of one line of the log.
fn notification(run_id: &str, line: &[u8]) -> Option<Value> {
    if line.len() > LINE_CAP {
        return Some(json!({ "run_id": run_id, "type": "event.too_long" }));
    }
    let event: Value = serde_json::from_slice(line).ok()?;
    let kind = event.get("type")?.as_str()?;
    let mut note = json!({
        "run_id": run_id,
        "seq": event.get("seq"),
        "type": kind,
        "message": format!("{kind}"),
    });
    if let Some(phase) = event.pointer("/data/phase").and_then(Value::as_str) {
        note["phase"] = json!(phase);
        note["message"] = json!(format!("{kind} {phase}"));
    }
    Some(note)
}

fn is_stop(note: &Value) -> bool {
    matches!(
        note["type"].as_str(),
        Some("run.succeeded" | "run.failed" | "run.canceled" | "run.suspended")
    )
}

fn level_of(note: &Value) -> LoggingLevel {
    let kind = note["type"].as_str().unwrap_or_default();
    if kind.ends_with(".failed") || kind == "run.canceled" {
        LoggingLevel::Warning
    } else {
        LoggingLevel::Info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_id_is_read_from_the_cli_line_only() {
        assert_eq!(
            run_id_of("run 01JDQ3ZK6V8X4M2N5P7R9T1W3Y of `quickstart`\n").as_deref(),
            Some("01JDQ3ZK6V8X4M2N5P7R9T1W3Y")
        );
        assert_eq!(run_id_of("run ../../etc of `x`"), None);
        assert_eq!(
            run_id_of("note: run 01JDQ3ZK6V8X4M2N5P7R9T1W3Y of `x`"),
            None
        );
    }

    #[test]
    fn an_event_line_becomes_a_note_with_its_phase() {
        let line = br#"{"type":"phase.ready","seq":2,"data":{"phase":"build"}}"#;
        let note = notification("R", line).unwrap();
        assert_eq!(note["message"], "phase.ready build");
        assert_eq!(note["seq"], 2);
        assert!(notification("R", b"not json").is_none());
        assert!(is_stop(&json!({ "type": "run.suspended" })));
    }
}
