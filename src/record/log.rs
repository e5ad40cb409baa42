//! The run log writer: the single, locked writer of a run's `events.jsonl`. It assigns ids,
//! sequence numbers and timestamps, group-commits buffered lines with one write and one
//! `fdatasync`, repairs a torn last line on open, and stops for good after an I/O error.
//!
//! A group can also be committed in the background ([`RunLog::commit_in_background`]): its
//! lines are written at once and made durable on the log's syncer thread while the caller goes
//! on recording in-process work; [`RunLog::durable`] says when they are. Nothing waits for an
//! `fdatasync` but what needs it: [`RunLog::commit`] first waits for the group in flight, so
//! that an effect that follows it always follows durable events.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

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
    /// Length of the file up to the last written line (durable or not).
    written_len: u64,
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
    /// Called by the syncer thread each time a background group is durable.
    waker: Option<Waker>,
    /// The thread that makes background groups durable (started by the first one).
    syncer: Option<Syncer>,
    /// The group written and being made durable in the background, if any.
    in_flight: Option<InFlight>,
}

/// What the syncer calls once a group is durable.
struct Waker(Box<dyn Fn() + Send>);

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// A group written to the file and handed to the syncer.
#[derive(Debug)]
struct InFlight {
    /// Its last seq, and the length of the file once it is durable.
    seq: u64,
    len: u64,
}

/// The log's syncer thread: `fdatasync` on a handle of the same file, one request at a time.
#[derive(Debug)]
struct Syncer {
    requests: mpsc::Sender<()>,
    results: mpsc::Receiver<std::io::Result<()>>,
}

impl Syncer {
    fn start(file: &File, wake: Waker) -> std::io::Result<Syncer> {
        let file = file.try_clone()?;
        let (requests, rx) = mpsc::channel::<()>();
        let (tx, results) = mpsc::channel();
        std::thread::Builder::new()
            .name("log-sync".into())
            .spawn(move || {
                // Ends when the log is dropped (its sender with it).
                for () in rx {
                    if tx.send(file.sync_data()).is_err() {
                        return;
                    }
                    (wake.0)();
                }
            })?;
        Ok(Syncer { requests, results })
    }
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
            written_len: 0,
            last_event_id: None,
            buffer: Vec::new(),
            pending_dir_syncs,
            poisoned: None,
            repaired: None,
            redactor: Redactor::default(),
            waker: None,
            syncer: None,
            in_flight: None,
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
                written_len: parsed.valid_len,
                last_event_id,
                buffer: Vec::new(),
                pending_dir_syncs: Vec::new(),
                poisoned: None,
                repaired,
                redactor: Redactor::default(),
                waker: None,
                syncer: None,
                in_flight: None,
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
            event.write_json_line(&mut self.buffer);
            self.buffer.push(b'\n');
        }
        event
    }

    /// Group commit: write every buffered line in one write, then `fdatasync`. The first
    /// commit of a new run also syncs the directories it created. A group committing in the
    /// background is waited for first. After any write or sync error the log is poisoned:
    /// this commit returns the I/O error and every later one returns [`Error::Poisoned`];
    /// nothing is ever retried as if it had succeeded.
    pub fn commit(&mut self) -> Result<(), Error> {
        self.check_poisoned()?;
        if self.in_flight.is_some() {
            // Its `fdatasync` must have succeeded before anything after it counts as durable:
            // an error it reported is not reported again to a later one.
            self.collect(true)?;
        }
        self.write_buffer()?;
        if self.committed_seq != self.last_seq {
            if let Err(e) = self.file.sync_data() {
                return Err(self.poison("fsync the run log", e));
            }
            self.committed_len = self.written_len;
        }
        self.sync_dirs()?;
        self.committed_seq = self.last_seq;
        Ok(())
    }

    /// Say how to be told that a background group is durable (see
    /// [`RunLog::commit_in_background`]): `wake` is called on the syncer thread.
    pub fn set_waker(&mut self, wake: impl Fn() + Send + 'static) {
        self.waker = Some(Waker(Box::new(wake)));
    }

    /// Start a group commit that does not wait: the buffered lines are written now and made
    /// durable on the syncer thread, which then calls the waker (and [`RunLog::durable`]
    /// tells). Returns `Ok(false)` when nothing was started: nothing buffered, a group already
    /// in flight, no waker, or a first commit (its directories are synced in place, by
    /// [`RunLog::commit`]).
    pub fn commit_in_background(&mut self) -> Result<bool, Error> {
        self.check_poisoned()?;
        if self.buffer.is_empty() || self.in_flight.is_some() || !self.pending_dir_syncs.is_empty()
        {
            return Ok(false);
        }
        if self.syncer.is_none() {
            let Some(wake) = self.waker.take() else {
                return Ok(false);
            };
            match Syncer::start(&self.file, wake) {
                Ok(syncer) => self.syncer = Some(syncer),
                Err(e) => {
                    tracing::warn!("no thread to commit the run log in the background ({e}); committing in place");
                    return Ok(false);
                }
            }
        }
        self.write_buffer()?;
        let requested = self
            .syncer
            .as_ref()
            .is_some_and(|s| s.requests.send(()).is_ok());
        if !requested {
            // The lines are written; `commit` makes them durable.
            return Ok(false);
        }
        self.in_flight = Some(InFlight {
            seq: self.last_seq,
            len: self.written_len,
        });
        Ok(true)
    }

    /// The seq up to which events are durable now, once the group in flight is (without
    /// waiting; `None` while it is not done or when there is none). A failed `fdatasync`
    /// poisons the log and is returned.
    pub fn durable(&mut self) -> Result<Option<u64>, Error> {
        if self.in_flight.is_none() {
            return Ok(None);
        }
        self.collect(false)
    }

    /// Is a group being made durable in the background?
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Take the result of the group in flight (waiting for it with `wait`).
    fn collect(&mut self, wait: bool) -> Result<Option<u64>, Error> {
        let Some(syncer) = &self.syncer else {
            return Ok(None);
        };
        let result = if wait {
            syncer.results.recv().ok()
        } else {
            match syncer.results.try_recv() {
                Ok(result) => Some(result),
                Err(mpsc::TryRecvError::Empty) => return Ok(None),
                Err(mpsc::TryRecvError::Disconnected) => None,
            }
        };
        let Some(flight) = self.in_flight.take() else {
            return Ok(None);
        };
        match result {
            Some(Ok(())) => {
                self.committed_seq = flight.seq;
                self.committed_len = self.committed_len.max(flight.len);
                Ok(Some(flight.seq))
            }
            Some(Err(e)) => Err(self.poison("fsync the run log", e)),
            None => {
                self.syncer = None;
                Err(self.poison(
                    "fsync the run log",
                    std::io::Error::other("the syncer thread stopped"),
                ))
            }
        }
    }

    fn check_poisoned(&self) -> Result<(), Error> {
        match &self.poisoned {
            Some(cause) => Err(Error::Poisoned {
                run_id: self.run_id.clone(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Write the buffered lines (not durable yet: `written_len` grows, `committed_len` not).
    fn write_buffer(&mut self) -> Result<(), Error> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buffer) {
            return Err(self.poison("append to the run log", e));
        }
        self.written_len += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Make the directories a new run created durable.
    fn sync_dirs(&mut self) -> Result<(), Error> {
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
        Ok(())
    }

    fn poison(&mut self, action: &'static str, source: std::io::Error) -> Error {
        self.poisoned = Some(format!("failed to {action}: {source}"));
        self.buffer = Vec::new();
        self.in_flight = None;
        self.written_len = self.committed_len;
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

    /// A background group is on disk at once, durable when the syncer says so, and the
    /// events recorded meanwhile wait for a group of their own.
    #[test]
    fn a_background_group_becomes_durable_without_blocking_the_writer() {
        let (_tmp, store) = store();
        let mut log = RunLog::create(&store, "R1").unwrap();
        let (woken, wakes) = std::sync::mpsc::channel();
        log.set_waker(move || {
            let _ = woken.send(());
        });
        log.append(ready("a"), "engine", None);
        // The first commit of a run syncs its directories: in place.
        assert!(!log.commit_in_background().unwrap());
        log.commit().unwrap();
        log.append(ready("b"), "engine", None);
        assert!(log.commit_in_background().unwrap());
        assert!(log.in_flight());
        // One group at a time: the next waits.
        log.append(ready("c"), "engine", None);
        assert!(!log.commit_in_background().unwrap());
        assert_eq!(store.read_events("R1").unwrap().len(), 2);
        wakes.recv().unwrap();
        assert_eq!(log.durable().unwrap(), Some(2));
        assert_eq!(log.committed_seq(), 2);
        assert!(!log.in_flight());
        assert!(log.commit_in_background().unwrap());
        // A commit in place waits for the group in flight, then makes the rest durable.
        log.append(ready("d"), "engine", None);
        log.commit().unwrap();
        assert!(!log.in_flight());
        assert_eq!(log.committed_seq(), 4);
        let phases: Vec<_> = store
            .read_events("R1")
            .unwrap()
            .into_iter()
            .filter_map(|e| e.data.phase().map(str::to_string))
            .collect();
        assert_eq!(phases, ["a", "b", "c", "d"]);
    }

    /// A write that fails in a background group poisons the log like one in place.
    #[test]
    fn a_failed_background_group_poisons_the_log() {
        let (_tmp, store) = store();
        let mut log = RunLog::create(&store, "R1").unwrap();
        log.set_waker(|| {});
        log.append(ready("a"), "engine", None);
        log.commit().unwrap();
        log.replace_file(File::open(log.path()).unwrap());
        log.append(ready("b"), "engine", None);
        let err = log.commit_in_background().unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(log.is_poisoned());
        assert!(matches!(log.commit(), Err(Error::Poisoned { .. })));
        assert_eq!(store.read_events("R1").unwrap().len(), 1);
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
