//! The run log writer: the single, locked writer of a run's `events.jsonl`. It assigns ids,
//! sequence numbers and timestamps, group-commits buffered lines with one write and one
//! `fdatasync`, repairs a torn last line on open, and stops for good after an I/O error.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::event::{Event, EventData, SCHEMA_VERSION};
use super::limits;
use super::lock::RunLock;
use super::redact::Redactor;
use super::store::{parse_log, Store};
use super::{now_ts, Error, EVENTS_FILE};

/// The single writer of one run's log. Holds the run lock for its lifetime.
#[derive(Debug)]
pub struct RunLog {
    run_id: String,
    path: PathBuf,
    run_dir: PathBuf,
    file: File,
    _lock: RunLock,
    /// Seq of the last appended event (committed or buffered).
    last_seq: u64,
    /// Seq of the last event known to be durable.
    committed_seq: u64,
    /// Length of the file up to the last durable line.
    committed_len: u64,
    last_event_id: Option<String>,
    /// Lines appended since the last commit, each ending with `\n`.
    buffer: Vec<u8>,
    /// Directories whose new entries must be made durable by the next commit.
    pending_dir_syncs: Vec<PathBuf>,
    /// Set by the first failed write or sync; the log is never written again.
    poisoned: Option<String>,
    repaired: Option<String>,
    /// The secrets replaced in every event before it is written.
    redactor: Redactor,
}

impl RunLog {
    /// Start the log of a new run: creates the run directory and `events.jsonl` and takes the
    /// run lock. Fails if the run already has a log.
    pub fn create(store: &Store, run_id: &str) -> Result<RunLog, Error> {
        let runs_dir = store.runs_dir();
        let run_dir = store.run_dir(run_id);
        let mut pending_dir_syncs = Vec::new();
        if !runs_dir.is_dir() {
            std::fs::create_dir_all(&runs_dir)
                .map_err(|e| Error::io("create the directory", &runs_dir, e))?;
            pending_dir_syncs.push(store.dir.clone());
            if let Some(parent) = store.dir.parent() {
                pending_dir_syncs.push(parent.to_path_buf());
            }
        }
        match std::fs::create_dir(&run_dir) {
            Ok(()) => pending_dir_syncs.push(runs_dir.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create the run directory", &run_dir, e)),
        }
        let lock = RunLock::acquire(&run_dir, run_id)?;
        let path = run_dir.join(EVENTS_FILE);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::RunExists {
                        run_id: run_id.to_string(),
                        path: path.clone(),
                    }
                } else {
                    Error::io("create the run log", &path, e)
                }
            })?;
        pending_dir_syncs.push(run_dir.clone());
        Ok(RunLog {
            run_id: run_id.to_string(),
            path,
            run_dir,
            file,
            _lock: lock,
            last_seq: 0,
            committed_seq: 0,
            committed_len: 0,
            last_event_id: None,
            buffer: Vec::new(),
            pending_dir_syncs,
            poisoned: None,
            repaired: None,
            redactor: Redactor::default(),
        })
    }

    /// Continue the log of an existing run: takes the run lock and reads every event. A torn
    /// last line (one without its trailing newline) is truncated away (with a warning, see
    /// [`RunLog::repaired`]); a complete line that does not decode (damaged, or written by a
    /// newer version), a gap in `seq`, a repeated `event_id` or an event of another run is
    /// refused, never skipped or removed.
    pub fn open(store: &Store, run_id: &str) -> Result<(RunLog, Vec<Event>), Error> {
        let run_dir = store.run_dir(run_id);
        let path = run_dir.join(EVENTS_FILE);
        if !path.is_file() {
            return Err(Error::UnknownRun {
                query: run_id.to_string(),
                runs_dir: store.runs_dir(),
                candidates: store.run_ids().unwrap_or_default(),
            });
        }
        let lock = RunLock::acquire(&run_dir, run_id)?;
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read the run log", &path, e))?;
        let parsed = parse_log(&path, &bytes, run_id)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io("open the run log", &path, e))?;
        let mut repaired = None;
        if let Some(torn) = &parsed.torn {
            let message = format!(
                "`{}` line {}: removed a torn last line ({} bytes): {}",
                path.display(),
                torn.line,
                torn.bytes,
                torn.reason
            );
            tracing::warn!("{message}");
            file.set_len(parsed.valid_len)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io("truncate the torn last line of", &path, e))?;
            repaired = Some(message);
        }
        let events = parsed.events;
        let last_seq = events.last().map_or(0, |e| e.seq);
        let last_event_id = events.last().map(|e| e.event_id.clone());
        Ok((
            RunLog {
                run_id: run_id.to_string(),
                path,
                run_dir,
                file,
                _lock: lock,
                last_seq,
                committed_seq: last_seq,
                committed_len: parsed.valid_len,
                last_event_id,
                buffer: Vec::new(),
                pending_dir_syncs: Vec::new(),
                poisoned: None,
                repaired,
                redactor: Redactor::default(),
            },
            events,
        ))
    }

    /// Install the secrets of this run: `(ENV_NAME, value)` pairs. From now on every
    /// appended event has each occurrence of a value (of at least
    /// [`MIN_SECRET_LEN`](super::redact::MIN_SECRET_LEN) bytes) replaced with
    /// `[redacted:ENV_NAME]`. Call it right after [`RunLog::create`] or [`RunLog::open`].
    pub fn set_secrets<N, V>(&mut self, secrets: impl IntoIterator<Item = (N, V)>)
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        self.redactor = Redactor::new(secrets);
    }

    /// The run's redactor, for text recorded or shown outside the log (it is cheap to clone).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Add an event to the pending group: assigns its id (a ULID), seq (last + 1) and
    /// timestamp, and passes its payload through the redactor and the size limits
    /// ([`limits::sanitize`]): the event returned is the one written. Nothing is durable
    /// until [`RunLog::commit`] returns `Ok`. On a poisoned log the event is still returned
    /// but will never be written (the next commit fails).
    pub fn append(&mut self, data: EventData, actor: &str, causation_id: Option<&str>) -> Event {
        let event = Event {
            event_id: ulid::Ulid::new().to_string(),
            schema: SCHEMA_VERSION,
            run_id: self.run_id.clone(),
            seq: self.last_seq + 1,
            ts: now_ts(),
            causation_id: causation_id.map(str::to_owned),
            actor: actor.to_string(),
            data,
        };
        self.append_event(event)
    }

    /// Buffer an already-built event (its seq must be the next one), redacted and bounded
    /// like every other; returns it as written. For tools that copy or generate logs; the
    /// engine uses [`RunLog::append`].
    pub fn append_event(&mut self, mut event: Event) -> Event {
        debug_assert_eq!(event.seq, self.last_seq + 1);
        limits::sanitize(&mut event.data, &self.redactor);
        self.last_seq = event.seq;
        self.last_event_id = Some(event.event_id.clone());
        if self.poisoned.is_none() {
            self.buffer
                .extend_from_slice(event.to_json_line().as_bytes());
            self.buffer.push(b'\n');
        }
        event
    }

    /// Group commit: write every buffered line in one write, then `fdatasync`. The first
    /// commit of a new run also syncs the directories it created. After any write or sync
    /// error the log is poisoned: this commit returns the I/O error and every later one
    /// returns [`Error::Poisoned`]; nothing is ever retried as if it had succeeded.
    pub fn commit(&mut self) -> Result<(), Error> {
        if let Some(cause) = &self.poisoned {
            return Err(Error::Poisoned {
                run_id: self.run_id.clone(),
                cause: cause.clone(),
            });
        }
        if !self.buffer.is_empty() {
            if let Err(e) = self.file.write_all(&self.buffer) {
                return Err(self.poison("append to the run log", e));
            }
            if let Err(e) = self.file.sync_data() {
                return Err(self.poison("fsync the run log", e));
            }
            self.committed_len += self.buffer.len() as u64;
            self.buffer.clear();
        }
        while let Some(dir) = self.pending_dir_syncs.pop() {
            if let Err(e) = sync_dir(&dir) {
                self.pending_dir_syncs.push(dir.clone());
                let err = self.poison("fsync the directory", e);
                return Err(match err {
                    Error::Io { action, source, .. } => Error::Io {
                        action,
                        path: dir,
                        source,
                    },
                    other => other,
                });
            }
        }
        self.committed_seq = self.last_seq;
        Ok(())
    }

    fn poison(&mut self, action: &'static str, source: std::io::Error) -> Error {
        self.poisoned = Some(format!("failed to {action}: {source}"));
        self.buffer = Vec::new();
        // Best effort: take back the lines of the failed group that did reach the file, so
        // that what the caller was told failed does not reappear on the next open. If this
        // fails too, the next open still truncates a torn last line.
        let _ = self.file.set_len(self.committed_len);
        Error::io(action, &self.path, source)
    }

    /// Has a write or sync failed? A poisoned log refuses every commit.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// The warning about a torn last line removed by [`RunLog::open`], if any.
    pub fn repaired(&self) -> Option<String> {
        self.repaired.clone()
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Seq of the last appended event (0 for an empty log), committed or not.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Seq of the last event known to be durable.
    pub fn committed_seq(&self) -> u64 {
        self.committed_seq
    }

    /// Id of the last appended event, to use as the next event's `causation_id`.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Replace the file handle (tests only: to make writes fail for real).
    #[cfg(test)]
    fn replace_file(&mut self, file: File) {
        self.file = file;
    }
}

/// Make a directory's entries durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::event::{CancelRequested, PhaseRef};

    fn store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store {
            dir: tmp.path().join(".spectacular"),
        };
        (tmp, store)
    }

    fn ready(phase: &str) -> EventData {
        EventData::PhaseReady(PhaseRef {
            phase: phase.to_string(),
        })
    }

    #[test]
    fn appended_events_are_written_only_on_commit() {
        let (_tmp, store) = store();
        let mut log = RunLog::create(&store, "R1").unwrap();
        let a = log.append(ready("a"), "engine", None);
        let b = log.append(ready("b"), "engine", Some(&a.event_id));
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(b.causation_id.as_deref(), Some(a.event_id.as_str()));
        assert_eq!(log.last_event_id(), Some(b.event_id.as_str()));
        assert_eq!(std::fs::read(log.path()).unwrap().len(), 0);
        assert_eq!(log.committed_seq(), 0);
        log.commit().unwrap();
        assert_eq!(log.committed_seq(), 2);
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(
            text,
            format!("{}\n{}\n", a.to_json_line(), b.to_json_line())
        );
        assert_eq!(store.read_events("R1").unwrap(), vec![a, b]);
    }

    #[test]
    fn create_refuses_an_existing_run() {
        let (_tmp, store) = store();
        let log = RunLog::create(&store, "R1").unwrap();
        drop(log);
        let err = RunLog::create(&store, "R1").unwrap_err();
        assert!(matches!(err, Error::RunExists { .. }), "{err:?}");
    }

    /// The first commit makes the new directories durable too; a directory that cannot be
    /// (here: moved away) fails the commit, naming it, rather than leaving the run's entry
    /// to chance on a crash.
    #[test]
    fn the_first_commit_fails_when_a_new_directory_cannot_be_made_durable() {
        let (tmp, store) = store();
        let mut log = RunLog::create(&store, "R1").unwrap();
        std::fs::rename(store.runs_dir(), tmp.path().join("elsewhere")).unwrap();
        log.append(ready("a"), "engine", None);
        let err = log.commit().unwrap_err();
        match &err {
            Error::Io { action, path, .. } => {
                assert_eq!(*action, "fsync the directory");
                assert_eq!(path, &store.run_dir("R1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_write_poisons_the_log_for_good() {
        let (_tmp, store) = store();
        let mut log = RunLog::create(&store, "R1").unwrap();
        log.append(ready("a"), "engine", None);
        log.commit().unwrap();
        assert!(!log.is_poisoned());
        // A read-only handle on the same file: the kernel refuses the write (EBADF).
        log.replace_file(File::open(log.path()).unwrap());
        log.append(ready("b"), "engine", None);
        let err = log.commit().unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(log.is_poisoned());
        // Even with a good handle back, nothing is written again.
        let good = OpenOptions::new().append(true).open(log.path()).unwrap();
        log.replace_file(good);
        log.append(
            EventData::CancelRequested(CancelRequested { reason: None }),
            "engine",
            None,
        );
        let err = log.commit().unwrap_err();
        assert!(matches!(err, Error::Poisoned { .. }), "{err:?}");
        assert!(err.to_string().contains("can no longer be written"));
        let err = log.commit().unwrap_err();
        assert!(matches!(err, Error::Poisoned { .. }), "{err:?}");
        assert_eq!(store.read_events("R1").unwrap().len(), 1);
        assert_eq!(log.committed_seq(), 1);
    }
}
