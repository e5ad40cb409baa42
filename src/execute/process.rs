//! Child processes: each attempt in its own process group, stdout/stderr captured to files
//! with a size cap, a timeout, and cancellation by SIGINT → SIGTERM → SIGKILL to the whole
//! group, so that no process of the phase survives.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::{crash, identity};

/// Captured output larger than this is truncated (with a marker line).
pub const OUTPUT_CAP: u64 = 8 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Spec {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// Variables of the engine's environment the child must not inherit (the secrets it
    /// does not need), removed before `env` is applied.
    pub env_remove: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// The run's process-group ledger (`runs/<id>/pids`): each started group records itself
    /// there (an [`Entry`]) before it runs, so that a later engine can kill what a dead one
    /// left running.
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

/// One line of the process-group ledger, a JSON object so that no tag can inject a line:
/// `{"tag": "<phase> <attempt>", "boot": "<boot id>", "pgid": 123, "start": 456}`. The
/// process writes it itself, between `fork` and `exec`, so that nothing the engine starts can
/// run unrecorded. Ledgers of older versions hold `<pgid> <tag>` lines, without an identity.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Entry {
    pub tag: String,
    pub pgid: i32,
    /// The boot the group was started in (`None`: unknown, or an older ledger).
    #[serde(default)]
    pub boot: Option<String>,
    /// The start time of the group's leader (see `identity`).
    #[serde(default)]
    pub start: Option<u64>,
}

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        if line.starts_with('{') {
            return serde_json::from_str(line).ok();
        }
        let (pgid, tag) = line.split_once(' ')?;
        Some(Entry {
            tag: tag.to_string(),
            pgid: pgid.parse().ok()?,
            boot: None,
            start: None,
        })
    }

    /// Is this group provably the one the engine started?
    pub fn verdict(&self) -> Verdict {
        if self.pgid <= 1 {
            return Verdict::Gone;
        }
        let (Some(boot), Some(start)) = (&self.boot, self.start) else {
            return self.unproven();
        };
        match identity::boot_id() {
            // Started in an earlier boot: whatever has this number now is someone else's.
            Some(current) if current != boot => return Verdict::Gone,
            Some(_) => {}
            None => return self.unproven(),
        }
        match identity::process(self.pgid) {
            Some(leader) if leader.start == start && leader.pgid == self.pgid => Verdict::Ours,
            Some(_) => Verdict::Foreign,
            // The leader is gone; its number cannot say whether what is left is ours.
            None => self.unproven(),
        }
    }

    fn unproven(&self) -> Verdict {
        if group_exists(self.pgid) {
            Verdict::Unproven
        } else {
            Verdict::Gone
        }
    }
}

/// What a later engine may do with a recorded process group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its leader is the process the engine started: kill the group.
    Ours,
    /// Nothing of it is left (or it ran in an earlier boot).
    Gone,
    /// Its number now belongs to another process: leave it.
    Foreign,
    /// Something runs under its number that cannot be proven ours (an older ledger without
    /// identities, a leader that exited before its group, a system without `/proc`): leave
    /// it, with a warning.
    Unproven,
}

fn group_exists(pgid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the group exists.
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The entries of a ledger (unreadable lines are skipped: a line is only ever torn by a
/// process that died before it could exec).
pub fn entries(pid_file: &Path) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return Vec::new();
    };
    text.lines().filter_map(Entry::parse).collect()
}

/// Kill what is left of the process groups the ledger records for `tag` (orphans of a dead
/// engine), when they are provably the groups the engine started; warn about the others and
/// leave them. Returns each recorded group with its verdict.
pub fn kill_orphan_group(pid_file: &Path, tag: &str) -> Vec<(i32, Verdict)> {
    let mut seen = Vec::new();
    for entry in entries(pid_file).into_iter().filter(|e| e.tag == tag) {
        let verdict = entry.verdict();
        match verdict {
            Verdict::Ours => {
                signal_group(entry.pgid, libc::SIGKILL);
            }
            Verdict::Unproven => tracing::warn!(
                "process group {} of `{tag}` is still there, but cannot be proven to be the one this run started; it is left running (kill it yourself if it is)",
                entry.pgid
            ),
            Verdict::Gone | Verdict::Foreign => {}
        }
        seen.push((entry.pgid, verdict));
    }
    seen
}

/// The first part of the entry a started process writes for itself (up to `"pgid":`).
fn entry_prefix(tag: &str) -> Vec<u8> {
    let text = format!(
        "{{\"tag\":{},\"boot\":{},\"pgid\":",
        serde_json::Value::from(tag),
        identity::boot_id().map_or(serde_json::Value::Null, serde_json::Value::from)
    );
    text.into_bytes()
}

/// Append this process's entry to the ledger: called in the child between `fork` and `exec`,
/// so it only makes system calls and writes the line with one `writev` on an `O_APPEND` file
/// (whole, whatever other processes append at the same time).
fn record_self(pid_file: &CStr, prefix: &[u8]) -> std::io::Result<()> {
    let mut suffix = [0u8; 64];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        suffix[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    // SAFETY: getpid cannot fail. Our group was made with `process_group(0)`: pgid == pid.
    let pid = unsafe { libc::getpid() };
    let mut digits = [0u8; 20];
    put(decimal(pid.unsigned_abs() as u64, &mut digits));
    put(b",\"start\":");
    match identity::own_start() {
        Some(start) => put(decimal(start, &mut digits)),
        None => put(b"null"),
    }
    put(b"}\n");
    let parts = [
        libc::iovec {
            iov_base: prefix.as_ptr() as *mut libc::c_void,
            iov_len: prefix.len(),
        },
        libc::iovec {
            iov_base: suffix.as_ptr() as *mut libc::c_void,
            iov_len: n,
        },
    ];
    // SAFETY: open/writev/close with a NUL-terminated path and buffers that outlive the
    // calls; all are async-signal-safe.
    unsafe {
        let fd = libc::open(
            pid_file.as_ptr(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            0o644,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::writev(fd, parts.as_ptr(), 2);
        let error = std::io::Error::last_os_error();
        libc::close(fd);
        if written != (prefix.len() + n) as isize {
            return Err(if written < 0 {
                error
            } else {
                std::io::Error::other("short write")
            });
        }
    }
    Ok(())
}

/// `value` in decimal, in `buffer`, without allocating.
fn decimal(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut i = buffer.len();
    loop {
        i -= 1;
        buffer[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[i..];
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
    for name in &spec.env_remove {
        command.env_remove(name);
    }
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
    let Ok(pid_file) = CString::new(spec.pid_file.as_os_str().as_bytes()) else {
        return Ended::SpawnFailed(format!(
            "the process ledger `{}` has an unusable name",
            spec.pid_file.display()
        ));
    };
    let prefix = entry_prefix(&spec.tag);
    // SAFETY: `record_self` only makes async-signal-safe system calls and allocates nothing.
    unsafe {
        command.pre_exec(move || record_self(&pid_file, &prefix));
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let ledger_missing = spec.pid_file.parent().is_some_and(|d| !d.is_dir());
            let hint = if ledger_missing {
                format!(
                    "could not start `{program}`: its process ledger `{}` cannot be written: {e}",
                    spec.pid_file.display()
                )
            } else if e.kind() == std::io::ErrorKind::NotFound {
                format!("`{program}` was not found on PATH (`spectacular agents doctor` shows what can run here)")
            } else {
                format!("could not start `{program}`: {e}")
            };
            return Ended::SpawnFailed(hint);
        }
    };
    // The group recorded itself before it could run (`record_self`).
    crash::point("process.spawned");
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};

    use super::*;

    /// An unrelated process group: `sleep` in a session (and group) of its own.
    fn unrelated_group() -> std::process::Child {
        let mut command = std::process::Command::new("sleep");
        command.arg("1000");
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        command.spawn().unwrap()
    }

    /// How `child` ended once we stop it ourselves: SIGKILL if someone killed it before.
    fn stop(mut child: std::process::Child) -> Option<i32> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap().signal()
    }

    #[test]
    fn groups_that_cannot_be_proven_ours_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("pids");
        let child = unrelated_group();
        let pgid = child.id() as i32;
        let boot = identity::boot_id().unwrap();
        let start = identity::process(pgid).unwrap().start;
        let lines = [
            // An older ledger: no identity.
            format!("{pgid} old 1"),
            // Our group once had this number; the process that has it now started later.
            format!(
                r#"{{"tag":"reused 1","boot":"{boot}","pgid":{pgid},"start":{}}}"#,
                start.saturating_sub(1)
            ),
            // Recorded in an earlier boot.
            format!(
                r#"{{"tag":"rebooted 1","boot":"another-boot","pgid":{pgid},"start":{start}}}"#
            ),
        ];
        std::fs::write(&ledger, lines.join("\n") + "\n").unwrap();
        assert_eq!(
            kill_orphan_group(&ledger, "old 1"),
            [(pgid, Verdict::Unproven)]
        );
        assert_eq!(
            kill_orphan_group(&ledger, "reused 1"),
            [(pgid, Verdict::Foreign)]
        );
        assert_eq!(
            kill_orphan_group(&ledger, "rebooted 1"),
            [(pgid, Verdict::Gone)]
        );
        assert_eq!(
            stop(child),
            Some(libc::SIGTERM),
            "the unrelated group was killed"
        );
    }

    #[test]
    fn a_group_the_engine_started_records_itself_and_is_killed_as_ours() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("pids");
        // A tag with a newline cannot inject a line.
        let tag = "p\n4242 injected 1";
        let spec = Spec {
            argv: vec!["sleep".into(), "1000".into()],
            cwd: dir.path().to_path_buf(),
            env: Vec::new(),
            env_remove: Vec::new(),
            stdin: None,
            stdout: dir.path().join("stdout.log"),
            stderr: dir.path().join("stderr.log"),
            pid_file: ledger.clone(),
            tag: tag.into(),
            timeout: None,
            grace: Duration::from_millis(10),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_cancel, cancel_rx) = watch::channel(0u8);
        let ended = runtime.block_on(async {
            let run = tokio::spawn(run(spec, cancel_rx));
            // The entry is written before the program runs.
            let entry = loop {
                if let Some(entry) = entries(&ledger).pop() {
                    break entry;
                }
                tokio::task::yield_now().await;
            };
            assert_eq!(entries(&ledger).len(), 1);
            assert_eq!(entry.tag, tag);
            assert_eq!(entry.boot.as_deref(), identity::boot_id());
            assert!(entry.start.is_some());
            assert_eq!(kill_orphan_group(&ledger, "4242 injected 1"), []);
            assert_eq!(
                kill_orphan_group(&ledger, tag),
                [(entry.pgid, Verdict::Ours)]
            );
            run.await.unwrap()
        });
        assert_eq!(
            ended,
            Ended::Exited {
                code: None,
                signal: Some(libc::SIGKILL)
            }
        );
    }
}
