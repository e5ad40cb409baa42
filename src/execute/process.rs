//! Child processes: each attempt in its own process group, stdout/stderr captured to files
//! with a size cap, a timeout, and cancellation by SIGINT → SIGTERM → SIGKILL to the whole
//! group, so that no process of the phase survives.

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
    /// The run's process-group ledger (`runs/<id>/pids`): the engine records each group it
    /// starts there (a [`Line`]), so that a later engine can kill what a dead one left running.
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

/// The variable every started process carries, naming its spawn (`<token>`, a ULID): until the
/// ledger holds its pid, the token is how a later engine finds it.
pub const SPAWN_VAR: &str = "SPECTACULAR_SPAWN";

/// One line of the process-group ledger, a JSON object so that no tag can inject a line. The
/// engine writes two for every process it starts, each with one `write` on an `O_APPEND` file:
///
/// - before the spawn, the intent: `{"tag": "<phase> <attempt>", "boot": "<boot id>",
///   "spawn": "<token>"}`, the token also set in the child's environment ([`SPAWN_VAR`]);
/// - after it, the group: the same with `"pgid": 123, "start": 456` (the leader's start time,
///   see `identity`).
///
/// An engine that dies between the two leaves an intent without its group; a later engine
/// finds the group by its token ([`kill_orphan_group`]). Ledgers of older versions hold
/// `<pgid> <tag>` lines, without an identity, and groups that recorded themselves (no token).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
struct Line {
    tag: String,
    boot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spawn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pgid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<u64>,
}

impl Line {
    fn parse(line: &str) -> Option<Line> {
        if line.starts_with('{') {
            return serde_json::from_str(line).ok();
        }
        let (pgid, tag) = line.split_once(' ')?;
        Some(Line {
            tag: tag.to_string(),
            pgid: Some(pgid.parse().ok()?),
            ..Line::default()
        })
    }

    fn entry(&self) -> Option<Entry> {
        Some(Entry {
            tag: self.tag.clone(),
            pgid: self.pgid?,
            boot: self.boot.clone(),
            start: self.start,
        })
    }
}

/// A process group the ledger records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub tag: String,
    pub pgid: i32,
    /// The boot the group was started in (`None`: unknown, or an older ledger).
    pub boot: Option<String>,
    /// The start time of the group's leader (see `identity`).
    pub start: Option<u64>,
}

impl Entry {
    /// Is this group provably the one the engine started?
    pub fn verdict(&self) -> Verdict {
        if self.pgid <= 1 {
            return Verdict::Gone;
        }
        let (Some(boot), Some(start)) = (&self.boot, self.start) else {
            return self.unproven();
        };
        if !this_boot(boot) {
            return Verdict::Gone;
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

/// Was `boot` recorded in the running boot? (`false` when that cannot be known: nothing is
/// proven then.)
fn this_boot(boot: &str) -> bool {
    identity::boot_id() == Some(boot)
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

/// The lines of a ledger (unreadable lines are skipped: a line is only ever torn by a write
/// the disk refused).
fn lines(pid_file: &Path) -> Vec<Line> {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return Vec::new();
    };
    text.lines().filter_map(Line::parse).collect()
}

/// The spawns of the running boot a ledger records: each as its tag and the variable its
/// processes carry (`SPECTACULAR_SPAWN=<token>`).
pub fn spawn_marks(pid_file: &Path) -> Vec<(String, String)> {
    lines(pid_file)
        .into_iter()
        .filter(|line| line.boot.as_deref().is_some_and(this_boot))
        .filter_map(|line| Some((line.tag, format!("{SPAWN_VAR}={}", line.spawn?))))
        .collect()
}

/// The process groups a ledger records.
pub fn entries(pid_file: &Path) -> Vec<Entry> {
    lines(pid_file).iter().filter_map(Line::entry).collect()
}

/// The groups started by spawns of `tag` whose intent the ledger holds but whose group it does
/// not (the engine died in between): the leaders of their own group that carry the spawn's
/// token. The token is only ever in the environment of that spawn's processes, so each group
/// found is one the run started; spawns of an earlier boot left nothing.
fn unrecorded_groups(lines: &[Line], tag: &str) -> Vec<i32> {
    let recorded: std::collections::HashSet<&str> = lines
        .iter()
        .filter(|l| l.pgid.is_some())
        .filter_map(|l| l.spawn.as_deref())
        .collect();
    let mut groups = Vec::new();
    for line in lines.iter().filter(|l| l.tag == tag && l.pgid.is_none()) {
        let (Some(token), Some(boot)) = (&line.spawn, &line.boot) else {
            continue;
        };
        if recorded.contains(token.as_str()) || !this_boot(boot) {
            continue;
        }
        for pid in identity::carriers(&format!("{SPAWN_VAR}={token}")) {
            if identity::process(pid).is_some_and(|p| p.pgid == pid) && !groups.contains(&pid) {
                groups.push(pid);
            }
        }
    }
    groups
}

/// Kill what is left of the process groups the ledger records for `tag` (orphans of a dead
/// engine), when they are provably the groups the engine started; warn about the others and
/// leave them. Returns each recorded group with its verdict.
pub fn kill_orphan_group(pid_file: &Path, tag: &str) -> Vec<(i32, Verdict)> {
    let lines = lines(pid_file);
    let mut seen = Vec::new();
    for pgid in unrecorded_groups(&lines, tag) {
        signal_group(pgid, libc::SIGKILL);
        seen.push((pgid, Verdict::Ours));
    }
    for entry in lines
        .iter()
        .filter_map(Line::entry)
        .filter(|e| e.tag == tag)
    {
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

/// The ledger last appended to, kept open: a run appends two lines for every process it
/// starts, to the one ledger in its run directory (which is not removed while its engine runs).
static OPEN_LEDGER: std::sync::Mutex<Option<(PathBuf, std::fs::File)>> =
    std::sync::Mutex::new(None);

/// Append `line` to the ledger with one `write` on an `O_APPEND` file (whole, whatever other
/// engines append at the same time). Not synced: a ledger outlives a dead engine in the page
/// cache, and after a crash of the machine its groups are of an earlier boot.
fn append(pid_file: &Path, line: &Line) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut text = serde_json::to_vec(line).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let mut open = OPEN_LEDGER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((path, file)) = open.as_mut() {
        if path == pid_file && file.write_all(&text).is_ok() {
            return Ok(());
        }
    }
    // Another ledger, or the open one refused the write: open it (again) and write there. A
    // refused `write` of a line this size on an `O_APPEND` file wrote nothing.
    *open = None;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(pid_file)?;
    file.write_all(&text)?;
    *open = Some((pid_file.to_path_buf(), file));
    Ok(())
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
    // Reserved, not zeroed: most phases print nothing, and their pages are never touched.
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut written: u64 = 0;
    let mut truncated = false;
    loop {
        buffer.clear();
        let n = reader.read_buf(&mut buffer).await?;
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
    // The intent first: whatever the spawn does, a later engine knows to look for its token.
    let mut line = Line {
        tag: spec.tag.clone(),
        boot: identity::boot_id().map(str::to_string),
        spawn: Some(ulid::Ulid::new().to_string()),
        ..Line::default()
    };
    command.env(SPAWN_VAR, line.spawn.as_deref().unwrap_or_default());
    if let Err(e) = append(&spec.pid_file, &line) {
        return Ended::SpawnFailed(format!(
            "could not start `{program}`: its process ledger `{}` cannot be written: {e}",
            spec.pid_file.display()
        ));
    }
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
    // Until its group is recorded, a later engine finds it by its token.
    crash::point("process.spawned");
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    // The leader has not been waited for yet: even if it has exited, its start time is there.
    line.pgid = Some(pgid);
    line.start = identity::process(pgid).map(|p| p.start);
    if let Err(e) = append(&spec.pid_file, &line) {
        tracing::warn!(
            "the process ledger `{}` cannot be written ({e}); a later engine finds `{}` by its token",
            spec.pid_file.display(),
            spec.tag
        );
    }
    crash::point("process.recorded");
    // Both streams in one task: one task to schedule for each process, not two.
    let (out, err) = (
        copy_capped(child.stdout.take(), spec.stdout.clone()),
        copy_capped(child.stderr.take(), spec.stderr.clone()),
    );
    let streams = tokio::spawn(async move { tokio::join!(out, err) });
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
    let _ = tokio::time::timeout(drain, streams).await;
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
    fn a_group_the_engine_started_is_recorded_and_killed_as_ours() {
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
            let entry = loop {
                if let Some(entry) = entries(&ledger).pop() {
                    break entry;
                }
                tokio::task::yield_now().await;
            };
            assert_eq!(entries(&ledger).len(), 1);
            assert_eq!(lines(&ledger).len(), 2, "an intent, then the group");
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

    #[test]
    fn a_spawn_whose_group_was_never_recorded_is_found_by_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("pids");
        let boot = identity::boot_id().unwrap();
        let token = ulid::Ulid::new().to_string();
        // What a spawn leaves when its engine dies before recording the group.
        let mut command = std::process::Command::new("sleep");
        command.arg("1000").env(SPAWN_VAR, &token).process_group(0);
        let child = command.spawn().unwrap();
        let pgid = child.id() as i32;
        let unrelated = unrelated_group();
        let lines = [
            format!(r#"{{"tag":"p 1","boot":"{boot}","spawn":"{token}"}}"#),
            // An intent of an earlier boot, with the same token: nothing of it is left.
            format!(r#"{{"tag":"p 2","boot":"another-boot","spawn":"{token}"}}"#),
            // An intent whose spawn never happened.
            format!(
                r#"{{"tag":"p 3","boot":"{boot}","spawn":"{}"}}"#,
                ulid::Ulid::new()
            ),
        ];
        std::fs::write(&ledger, lines.join("\n") + "\n").unwrap();
        assert_eq!(kill_orphan_group(&ledger, "p 2"), []);
        assert_eq!(kill_orphan_group(&ledger, "p 3"), []);
        assert_eq!(kill_orphan_group(&ledger, "p 1"), [(pgid, Verdict::Ours)]);
        assert_eq!(stop(child), Some(libc::SIGKILL), "the spawn was not killed");
        assert_eq!(
            stop(unrelated),
            Some(libc::SIGTERM),
            "the unrelated group was killed"
        );
        // Once its group is recorded, the intent is settled: the group is judged by identity.
        let mut text = std::fs::read_to_string(&ledger).unwrap();
        text.push_str(&format!(
            r#"{{"tag":"p 1","boot":"{boot}","spawn":"{token}","pgid":{pgid},"start":1}}"#
        ));
        std::fs::write(&ledger, text + "\n").unwrap();
        assert!(unrecorded_groups(&super::lines(&ledger), "p 1").is_empty());
    }
}
