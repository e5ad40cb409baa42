//! Child processes: each attempt in its own process group, stdout/stderr captured to files
//! with a size cap, a timeout, and cancellation by SIGINT → SIGTERM → SIGKILL to the whole
//! group, so that no process of the phase survives.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Captured output larger than this is truncated (with a marker line).
pub const OUTPUT_CAP: u64 = 8 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Spec {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// The run's process-group ledger (`runs/<id>/pids`): each started group is appended as
    /// `<pgid> <tag>`, so that a later engine can kill what a dead one left running.
    pub pid_file: PathBuf,
    /// How this process is named in the ledger (`<phase> <attempt>`).
    pub tag: String,
    pub timeout: Option<Duration>,
    /// Time between SIGINT, SIGTERM and SIGKILL.
    pub grace: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    TimedOut,
    Canceled,
    SpawnFailed(String),
}

impl From<&Ended> for crate::agents::ProcessEnd {
    fn from(ended: &Ended) -> crate::agents::ProcessEnd {
        use crate::agents::ProcessEnd;
        match ended {
            Ended::Exited { code, .. } => ProcessEnd::Exited(*code),
            Ended::TimedOut => ProcessEnd::TimedOut,
            Ended::Canceled => ProcessEnd::Canceled,
            Ended::SpawnFailed(message) => ProcessEnd::SpawnFailed(message.clone()),
        }
    }
}

fn signal_group(pgid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// The ledger's tag for an attempt.
pub fn tag(phase: &str, attempt: u32) -> String {
    format!("{phase} {attempt}")
}

/// Kill what is left of the process groups the ledger records for `tag` (orphans of a dead
/// engine).
pub fn kill_orphan_group(pid_file: &std::path::Path, tag: &str) {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return;
    };
    for line in text.lines() {
        let Some((pgid, rest)) = line.split_once(' ') else {
            continue;
        };
        if rest == tag {
            if let Ok(pgid) = pgid.parse::<i32>() {
                if pgid > 1 {
                    signal_group(pgid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Copy a child's pipe into a file, keeping at most `OUTPUT_CAP` bytes. The pipe is read
/// asynchronously; the file is written directly (small writes to the page cache), which keeps
/// the thread pool out of every attempt.
async fn copy_capped(
    reader: Option<impl AsyncRead + Unpin>,
    path: PathBuf,
) -> std::io::Result<u64> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(&path)?;
    let Some(mut reader) = reader else {
        return Ok(0);
    };
    let mut buffer = vec![0u8; 64 * 1024];
    let mut written: u64 = 0;
    let mut truncated = false;
    loop {
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        if truncated {
            continue;
        }
        let room = OUTPUT_CAP.saturating_sub(written) as usize;
        if n <= room {
            file.write_all(&buffer[..n])?;
            written += n as u64;
        } else {
            file.write_all(&buffer[..room])?;
            written += room as u64;
            let marker = format!("\n[spectacular: output truncated at {OUTPUT_CAP} bytes]\n");
            file.write_all(marker.as_bytes())?;
            truncated = true;
        }
    }
    Ok(written)
}

/// Cancellation levels sent on the watch channel: stop politely, or kill at once.
pub const CANCEL: u8 = 1;
pub const KILL: u8 = 2;

/// Run a process to its end, its timeout, or cancellation (`CANCEL`: SIGINT, SIGTERM,
/// SIGKILL with a grace period between them; `KILL`: SIGKILL now).
pub async fn run(spec: Spec, mut cancel: watch::Receiver<u8>) -> Ended {
    let Some(program) = spec.argv.first() else {
        return Ended::SpawnFailed("empty command".into());
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(&spec.argv[1..])
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!("`{program}` was not found on PATH (`spectacular agents doctor` shows what can run here)")
            } else {
                format!("could not start `{program}`: {e}")
            };
            return Ended::SpawnFailed(hint);
        }
    };
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    {
        use std::io::Write as _;
        let entry = format!("{pgid} {}\n", spec.tag);
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.pid_file)
            .and_then(|mut f| f.write_all(entry.as_bytes()));
    }
    let out = tokio::spawn(copy_capped(child.stdout.take(), spec.stdout.clone()));
    let err = tokio::spawn(copy_capped(child.stderr.take(), spec.stderr.clone()));
    if let (Some(mut stdin), Some(data)) = (child.stdin.take(), spec.stdin.clone()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
            let _ = stdin.shutdown().await;
        });
    }
    let timeout = spec.timeout.unwrap_or(Duration::from_secs(u64::MAX / 4));
    let force = cancel.clone();
    let ended = {
        let wait = child.wait();
        tokio::pin!(wait);
        let canceled = async {
            loop {
                if *cancel.borrow() >= CANCEL {
                    return;
                }
                if cancel.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            status = &mut wait => match status {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    Ended::Exited { code: status.code(), signal: status.signal() }
                }
                Err(e) => Ended::SpawnFailed(format!("waiting for `{program}` failed: {e}")),
            },
            _ = tokio::time::sleep(timeout) => {
                stop(pgid, &mut wait, &[libc::SIGTERM, libc::SIGKILL], spec.grace, force.clone()).await;
                Ended::TimedOut
            }
            _ = canceled => {
                stop(pgid, &mut wait, &[libc::SIGINT, libc::SIGTERM, libc::SIGKILL], spec.grace, force.clone()).await;
                Ended::Canceled
            }
        }
    };
    // Whatever the leader did, nothing of its group outlives the attempt.
    if pgid > 1 {
        signal_group(pgid, libc::SIGKILL);
    }
    let drain = Duration::from_secs(2);
    let _ = tokio::time::timeout(drain, out).await;
    let _ = tokio::time::timeout(drain, err).await;
    ended
}

async fn stop<F>(
    pgid: i32,
    wait: &mut std::pin::Pin<&mut F>,
    signals: &[i32],
    grace: Duration,
    mut force: watch::Receiver<u8>,
) where
    F: std::future::Future<Output = std::io::Result<std::process::ExitStatus>>,
{
    for &signal in signals {
        if *force.borrow() >= KILL {
            break;
        }
        if pgid > 1 {
            signal_group(pgid, signal);
        }
        let forced = async {
            while *force.borrow() < KILL {
                if force.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            ended = tokio::time::timeout(grace, wait.as_mut()) => {
                if ended.is_ok() {
                    return;
                }
            }
            _ = forced => break,
        }
    }
    if pgid > 1 {
        signal_group(pgid, libc::SIGKILL);
    }
    let _ = wait.as_mut().await;
}
