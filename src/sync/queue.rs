//! The queue's files in `.spectacular/sync/`: the cursor over the run logs, the state of the
//! last pushes, and the lock that keeps two pushes of one project apart.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;
use crate::record::event::Event;
use crate::record::store::Store;

const CURSOR: &str = "cursor.json";
const STATE: &str = "state.json";
const LOCK: &str = "lock";
/// The most rejected events `state.json` remembers (the newest).
const MAX_REJECTED: usize = 100;

/// Per run, the last `seq` the control plane answered for (accepted, duplicate or rejected).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(default)]
    pub runs: BTreeMap<String, u64>,
}

/// What kind of trouble the last push met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The control plane could not be reached (down, wrong URL, network).
    Unreachable,
    /// It refused the token (401/403), or there is no token to send.
    Token,
    /// It failed (5xx) or answered something that is not the protocol.
    Server,
    /// It refused the request itself (4xx other than the token: too big, malformed).
    Request,
}

/// The last problem a push met.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
    pub at: String,
}

/// An event the control plane rejected, with its reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub run_id: String,
    pub seq: u64,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
    pub at: String,
}

/// What the pushes so far met (`state.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub last_attempt: Option<String>,
    #[serde(default)]
    pub last_success: Option<String>,
    /// Failed pushes in a row (the backoff's exponent).
    #[serde(default)]
    pub failures: u32,
    /// Unix seconds before which a background push does not try again.
    #[serde(default)]
    pub retry_after_unix: Option<u64>,
    #[serde(default)]
    pub last_problem: Option<Problem>,
    #[serde(default)]
    pub accepted: u64,
    #[serde(default)]
    pub duplicates: u64,
    #[serde(default)]
    pub rejected: Vec<Rejected>,
    /// Rejected events over all time (the list keeps the newest).
    #[serde(default)]
    pub rejected_total: u64,
}

impl State {
    pub(super) fn reject(&mut self, rejected: Rejected) {
        self.rejected.push(rejected);
        self.rejected_total += 1;
        if self.rejected.len() > MAX_REJECTED {
            let extra = self.rejected.len() - MAX_REJECTED;
            self.rejected.drain(..extra);
        }
    }

    /// A push failed: remember why and back off (1 s, 2 s, 4 s … at most 5 minutes).
    pub(super) fn failed(&mut self, kind: ProblemKind, message: String, now_unix: u64) {
        self.failures = self.failures.saturating_add(1);
        let delay = 1u64 << self.failures.saturating_sub(1).min(9);
        self.retry_after_unix = Some(now_unix + delay.min(300));
        self.last_problem = Some(Problem {
            kind,
            message,
            at: crate::record::now_ts(),
        });
    }

    pub(super) fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_after_unix = None;
        self.last_problem = None;
        self.last_success = Some(crate::record::now_ts());
    }
}

/// Read `name` in `dir` as JSON; a missing file is the default. A damaged file is an error
/// (never silently reset: the cursor says what was sent).
fn read_json<T: Default + for<'de> Deserialize<'de>>(dir: &Path, name: &str) -> Result<T, Error> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Io {
            action: "read",
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(Error::Io {
            action: "read",
            path,
            source,
        }),
    }
}

/// Write `value` as `name` in `dir` whole: a temporary file, fsync, rename, fsync of `dir`.
fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), Error> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(&bytes).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("fsync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Cursor {
    pub fn load(dir: &Path) -> Result<Cursor, Error> {
        read_json(dir, CURSOR)
    }

    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        write_json(dir, CURSOR, self)
    }
}

impl State {
    pub fn load(dir: &Path) -> Result<State, Error> {
        read_json(dir, STATE)
    }

    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        write_json(dir, STATE, self)
    }
}

/// The exclusive lock of a push, released when dropped.
pub(super) struct PushLock {
    _file: File,
}

impl PushLock {
    /// Take the lock without waiting: `Busy` when another push holds it.
    pub(super) fn try_take(dir: &Path) -> Result<PushLock, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io {
                action: "open",
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on a descriptor this function owns.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if taken {
            Ok(PushLock { _file: file })
        } else {
            Err(Error::Busy(path))
        }
    }
}

/// The events of one run the control plane has not answered for yet.
#[derive(Debug)]
pub struct Pending {
    pub run_id: String,
    pub events: Vec<Event>,
    /// The log's length when it was read.
    pub log_len: u64,
}

/// The events not yet answered for, run by run (oldest run first), and the runs whose log
/// could not be read (with why). Runs whose log length is in `unchanged` are not read again.
pub fn pending(
    store: &Store,
    cursor: &Cursor,
    unchanged: &BTreeMap<String, u64>,
) -> (Vec<Pending>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut broken = Vec::new();
    let Ok(runs) = store.run_ids() else {
        return (out, broken);
    };
    for run_id in runs {
        let path: PathBuf = store.events_path(&run_id);
        let log_len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if unchanged.get(&run_id) == Some(&log_len) {
            continue;
        }
        let done = cursor.runs.get(&run_id).copied().unwrap_or(0);
        match store.read_events(&run_id) {
            Ok(events) => {
                let events: Vec<Event> = events.into_iter().filter(|e| e.seq > done).collect();
                out.push(Pending {
                    run_id,
                    events,
                    log_len,
                });
            }
            Err(e) => broken.push((run_id, e.to_string())),
        }
    }
    (out, broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_exponentially_up_to_five_minutes_and_a_success_resets() {
        let mut state = State::default();
        let delays: Vec<u64> = (0..12)
            .map(|_| {
                state.failed(ProblemKind::Unreachable, "down".into(), 1000);
                state.retry_after_unix.unwrap() - 1000
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(state.failures, 12);
        state.succeeded();
        assert_eq!((state.failures, state.retry_after_unix), (0, None));
        assert!(state.last_problem.is_none());
    }

    #[test]
    fn rejected_events_keep_the_newest_hundred_and_count_them_all() {
        let mut state = State::default();
        for seq in 1..=150 {
            state.reject(Rejected {
                run_id: "r".into(),
                seq,
                event_id: String::new(),
                kind: "phase.ready".into(),
                reason: "no".into(),
                at: String::new(),
            });
        }
        assert_eq!(state.rejected_total, 150);
        assert_eq!(state.rejected.len(), 100);
        assert_eq!(state.rejected[0].seq, 51);
    }

    #[test]
    fn a_damaged_cursor_is_an_error_never_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CURSOR), "{not json").unwrap();
        assert!(Cursor::load(dir.path()).is_err());
        let mut cursor = Cursor::default();
        cursor.runs.insert("01J".into(), 7);
        cursor.save(dir.path()).unwrap();
        assert_eq!(Cursor::load(dir.path()).unwrap(), cursor);
    }

    #[test]
    fn a_second_push_of_the_project_is_refused_while_one_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let held = PushLock::try_take(dir.path()).unwrap();
        assert!(matches!(
            PushLock::try_take(dir.path()),
            Err(Error::Busy(_))
        ));
        drop(held);
        assert!(PushLock::try_take(dir.path()).is_ok());
    }
}
