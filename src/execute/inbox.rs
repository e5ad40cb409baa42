//! The inbox of a running engine: `approve` and `cancel` from another terminal drop a command
//! file into `runs/<id>/inbox/`; the engine (the run's only writer) drains it and records the
//! events. Files are written to a temporary name and renamed, so a half-written command is
//! never read.

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
}

fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("inbox")
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

/// Take every waiting command, oldest first.
pub fn drain(run_dir: &Path) -> Vec<Command> {
    let Ok(entries) = std::fs::read_dir(dir(run_dir)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut commands = Vec::new();
    for file in files {
        if let Ok(text) = std::fs::read_to_string(&file) {
            match serde_json::from_str(&text) {
                Ok(command) => commands.push(command),
                Err(e) => {
                    tracing::warn!("ignoring unreadable inbox file `{}`: {e}", file.display())
                }
            }
        }
        let _ = std::fs::remove_file(&file);
    }
    commands
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
