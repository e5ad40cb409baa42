//! The inbox of a running engine: `approve`, `answer` and `cancel` from another terminal drop a command
//! file into `runs/<id>/inbox/`; the engine (the run's only writer) drains it and records the
//! events. Files are written to a temporary name and renamed, so a half-written command is
//! never read; a command's file is deleted only once the event it led to is durable (see
//! [`Taken::claim`] and [`recover`]), so an engine that dies neither loses a command nor
//! acts on it twice.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Approve {
        phase: String,
        approved: bool,
        comment: Option<String>,
        actor: String,
    },
    Cancel {
        actor: String,
        reason: Option<String>,
    },
    Answer {
        phase: String,
        question: u32,
        text: String,
        answer: String,
        actor: String,
    },
}

fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("inbox")
}

/// What waits in an inbox, as seen by the engine's watcher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Some command waits.
    pub any: bool,
    /// One of them is a `cancel`.
    pub cancel: bool,
}

/// Look into the inbox of `inbox_dir` without taking anything.
pub fn waiting(inbox_dir: &Path) -> Waiting {
    let mut waiting = Waiting::default();
    let Ok(entries) = std::fs::read_dir(inbox_dir) else {
        return waiting;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_some_and(|x| x == "json") {
            waiting.any = true;
            let command = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Command>(&bytes).ok());
            if matches!(command, Some(Command::Cancel { .. })) {
                waiting.cancel = true;
            }
        }
    }
    waiting
}

/// Hand a command to the engine that runs `run_dir`.
pub fn send(run_dir: &Path, command: &Command) -> std::io::Result<()> {
    let dir = dir(run_dir);
    std::fs::create_dir_all(&dir)?;
    let name = ulid::Ulid::new().to_string();
    let temp = dir.join(format!(".{name}.tmp"));
    let text = serde_json::to_string(command).map_err(std::io::Error::other)?;
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, dir.join(format!("{name}.json")))
}

/// A command taken from the inbox. Its file stays until the events it leads to are durable:
/// a command is never lost with an engine that dies before its commit.
#[derive(Debug)]
pub struct Taken {
    pub command: Command,
    path: PathBuf,
}

/// A command the engine has acted on, whose effect (an event, or none) is decided by the
/// events up to a sequence number: its file is `<id>.<seq>.claimed` until that is durable.
#[derive(Debug)]
pub struct Claimed(PathBuf);

/// Take every waiting command, oldest first. Unreadable files are dropped with a warning.
pub fn take(run_dir: &Path) -> Vec<Taken> {
    let Ok(entries) = std::fs::read_dir(dir(run_dir)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut taken = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        match serde_json::from_str(&text) {
            Ok(command) => taken.push(Taken { command, path }),
            Err(e) => {
                tracing::warn!("ignoring unreadable inbox file `{}`: {e}", path.display());
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    taken
}

impl Taken {
    /// The engine acted on this command; what it did is in the events up to `seq` (the
    /// event it recorded, or the state in which it ignored the command).
    pub fn claim(self, seq: u64) -> std::io::Result<Claimed> {
        let id = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let claimed = self.path.with_file_name(format!("{id}.{seq}.claimed"));
        std::fs::rename(&self.path, &claimed)?;
        // The rename must not be lost while the events it stands for survive (power loss).
        if let Some(dir) = claimed.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(Claimed(claimed))
    }
}

impl Claimed {
    /// The events the command led to are durable: forget it.
    pub fn release(self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// After an engine died: commands it claimed whose events became durable (up to
/// `committed_seq`) are done and deleted; the others go back to the inbox, to be acted on
/// again. Call before anything is recorded.
pub fn recover(run_dir: &Path, committed_seq: u64) {
    let Ok(entries) = std::fs::read_dir(dir(run_dir)) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|x| x != "claimed") {
            continue;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some((id, seq)) = stem.rsplit_once('.') else {
            continue;
        };
        match seq.parse::<u64>() {
            Ok(seq) if seq <= committed_seq => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {
                let _ = std::fs::rename(&path, path.with_file_name(format!("{id}.json")));
            }
        }
    }
}

/// Who is acting: `$SPECTACULAR_ACTOR`, else `user:$USER`.
pub fn actor() -> String {
    std::env::var("SPECTACULAR_ACTOR")
        .ok()
        .filter(|a| !a.is_empty())
        .or_else(|| {
            std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .map(|u| format!("user:{u}"))
        })
        .unwrap_or_else(|| "user".into())
}

/// Is this process part of an attempt the engine started (an agent, a check, one of their
/// background processes)? What gives it away, when it is: the variables the engine sets in
/// every attempt's environment, or the process group of an attempt recorded in a run's
/// process-group ledger. Approvals and answers come from people: the commands that record
/// them refuse when this is `Some`.
pub fn inside_attempt(store: &crate::record::Store) -> Option<String> {
    if let Ok(run) = std::env::var("SPECTACULAR_RUN_ID") {
        let phase = std::env::var("SPECTACULAR_PHASE").unwrap_or_default();
        return Some(format!(
            "it runs in the environment of attempt `{}` of run {} (`SPECTACULAR_RUN_ID` is set)",
            crate::knowledge::learn::one_line(&phase, 80),
            crate::knowledge::learn::one_line(&run, 40)
        ));
    }
    // SAFETY: getpgrp(2) cannot fail and touches no memory.
    let own = unsafe { libc::getpgrp() };
    let ancestors = ancestors();
    let mut marks = Vec::new();
    for run_id in store.run_ids().unwrap_or_default() {
        let ledger = store.run_dir(&run_id).join("pids");
        for entry in super::process::entries(&ledger) {
            if entry.verdict() != super::process::Verdict::Ours {
                continue;
            }
            let tag = crate::knowledge::learn::one_line(&entry.tag, 80);
            if entry.pgid == own {
                return Some(format!(
                    "it runs in the process group of attempt `{tag}` of run {run_id}"
                ));
            }
            if let Some((pid, _)) = ancestors.iter().find(|(_, g)| *g == entry.pgid) {
                return Some(format!(
                    "it was started by process {pid}, of the process group of attempt `{tag}` \
                     of run {run_id}"
                ));
            }
        }
        marks.extend(
            super::process::spawn_marks(&ledger)
                .into_iter()
                .map(|(tag, mark)| (run_id.clone(), tag, mark)),
        );
    }
    // A process that left the attempt's group (`setsid`) and scrubbed its own environment
    // still descends from a process the attempt started, which carries its spawn's token.
    let variables: Vec<String> = marks.iter().map(|(_, _, m)| m.clone()).collect();
    for (pid, _) in &ancestors {
        if let Some(found) = super::identity::holds_one_of(*pid, &variables) {
            let (run_id, tag, _) = marks.iter().find(|(_, _, m)| m == found)?;
            return Some(format!(
                "it was started by process {pid}, a process of attempt `{}` of run {run_id}",
                crate::knowledge::learn::one_line(tag, 80)
            ));
        }
    }
    None
}

/// The processes this one descends from (its parent first), each with its process group, up
/// to the first system process (pid 1) or 64 of them.
fn ancestors() -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    let mut pid = i32::try_from(std::process::id()).unwrap_or(0);
    while let Some(parent) = super::identity::parent(pid) {
        if parent <= 1 || out.len() >= 64 || out.iter().any(|(p, _)| *p == parent) {
            break;
        }
        let group = super::identity::process(parent).map_or(0, |p| p.pgid);
        out.push((parent, group));
        pid = parent;
    }
    out
}
