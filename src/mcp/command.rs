//! The `spectacular` binary run as a child, the way a person would type each command: every
//! tool takes the CLI's own code path (and its own output, `--json`). Arguments go as argv,
//! never through a shell; options first with their values attached, then `--`, so a text
//! that starts with `-` stays text. What a command prints is read up to a cap.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

use super::Error;

/// The most a command's stdout or stderr is read (a long log, a big report).
pub const OUTPUT_CAP: u64 = 8 * 1024 * 1024;
/// How long a command that reads or records (not a run) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// How to run the binary for one store.
#[derive(Clone, Debug)]
pub struct Cli {
    /// This binary.
    pub exe: PathBuf,
    /// The store every command is told (`--store`).
    pub store: PathBuf,
    /// The working directory commands run in (missions and specs are relative to it).
    pub cwd: PathBuf,
}

/// How a command ended.
#[derive(Debug)]
pub struct Said {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Said {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The CLI's error message, without its `error: ` prefix.
    pub fn message(&self) -> String {
        let text = self.stderr.trim();
        let text = text.strip_prefix("error: ").unwrap_or(text);
        if text.is_empty() {
            format!("the command ended with exit code {:?}", self.code)
        } else {
            text.to_string()
        }
    }
}

impl Cli {
    /// The command line for `args`, for this store, without colours.
    pub fn command(&self, args: &[String]) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .arg("--color=never")
            .arg("--store")
            .arg(&self.store)
            .args(args)
            .current_dir(&self.cwd)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    /// Run a command to its end (killed after [`COMMAND_TIMEOUT`]).
    pub async fn run(&self, args: &[String]) -> Result<Said, Error> {
        let mut command = self.command(args);
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| Error::Spawn {
            exe: self.exe.clone(),
            source: e,
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let ended = async {
            let (out, err) = tokio::join!(read_capped(stdout), read_capped(stderr));
            let status = child.wait().await;
            (out, err, status)
        };
        let (stdout, stderr, status) =
            tokio::time::timeout(COMMAND_TIMEOUT, ended)
                .await
                .map_err(|_| Error::Timeout {
                    command: args.first().cloned().unwrap_or_default(),
                    after: COMMAND_TIMEOUT,
                })?;
        let status = status.map_err(|e| Error::Spawn {
            exe: self.exe.clone(),
            source: e,
        })?;
        Ok(Said {
            code: status.code(),
            stdout,
            stderr,
        })
    }
}

/// Read a pipe to its end, keeping at most [`OUTPUT_CAP`] bytes (the rest is drained so the
/// child never blocks on a full pipe).
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut kept = Vec::new();
    let _ = (&mut pipe).take(OUTPUT_CAP).read_to_end(&mut kept).await;
    let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
    String::from_utf8_lossy(&kept).into_owned()
}
