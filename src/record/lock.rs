//! One writer per run: an exclusive `flock` on `<run_dir>/lock`, holding the writer's pid,
//! host and start time. The kernel releases it when the process dies, so a lock left by a
//! crashed or killed engine is taken over without ceremony.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::{now_ts, Error};

/// The name of the lock file inside a run directory.
pub const LOCK_FILE: &str = "lock";

/// A held run lock; released when dropped (the file stays, its content is stale then).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

/// Who holds (or last held) a run lock, as written in the lock file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub host: Option<String>,
    pub since: Option<String>,
}

impl RunLock {
    /// Take the lock of run `run_id` in `run_dir` without waiting.
    pub fn acquire(run_dir: &Path, run_id: &str) -> Result<RunLock, Error> {
        let path = run_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open the lock file", &path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                // Best effort: the holder may be writing it right now.
                let _ = file.read_to_string(&mut text);
                let holder = parse_holder(&text);
                return Err(Error::Locked {
                    run_id: run_id.to_string(),
                    pid: holder.pid,
                    host: holder.host,
                });
            }
            return Err(Error::io("lock", &path, err));
        }
        let text = format!(
            "pid={}\nhost={}\nsince={}\n",
            std::process::id(),
            hostname(),
            now_ts()
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .map_err(|e| Error::io("write the lock file", &path, e))?;
        Ok(RunLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file descriptor holding the lock (for diagnostics).
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Read who holds (or last held) the lock of a run directory, without taking it.
pub fn read_holder(run_dir: &Path) -> Option<Holder> {
    std::fs::read_to_string(run_dir.join(LOCK_FILE))
        .ok()
        .map(|t| parse_holder(&t))
}

/// Is the run's lock held by a live process right now? (Probes with a non-blocking shared
/// lock, released at once.) Used to tell a running run from an interrupted one.
pub fn is_locked(run_dir: &Path) -> bool {
    let Ok(file) = File::open(run_dir.join(LOCK_FILE)) else {
        return false;
    };
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    rc != 0
}

fn parse_holder(text: &str) -> Holder {
    let mut holder = Holder::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("pid", v)) => holder.pid = v.trim().parse().ok(),
            Some(("host", v)) if !v.trim().is_empty() => holder.host = Some(v.trim().to_string()),
            Some(("since", v)) if !v.trim().is_empty() => holder.since = Some(v.trim().to_string()),
            _ => {}
        }
    }
    holder
}

/// This machine's host name (`unknown` if it cannot be read).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname NUL-terminates on success
    // when the name fits, and we stop at the first NUL or the end of the buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_same_process_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path(), "R1").unwrap();
        assert!(is_locked(dir.path()));
        let err = RunLock::acquire(dir.path(), "R1").unwrap_err();
        match &err {
            Error::Locked { run_id, pid, host } => {
                assert_eq!(run_id, "R1");
                assert_eq!(*pid, Some(std::process::id()));
                assert_eq!(host.as_deref(), Some(hostname().as_str()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
        drop(first);
        assert!(!is_locked(dir.path()));
        RunLock::acquire(dir.path(), "R1").unwrap();
    }

    #[test]
    fn holder_is_parsed_from_the_lock_file() {
        let h = parse_holder("pid=42\nhost=box\nsince=2026-01-01T00:00:00.000Z\n");
        assert_eq!(h.pid, Some(42));
        assert_eq!(h.host.as_deref(), Some("box"));
        assert_eq!(parse_holder("").pid, None);
    }
}
