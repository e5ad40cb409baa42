//! The store: where a project's runs live (`.spectacular/runs/<run_id>/events.jsonl`), reading
//! run logs (read-only, safe beside a live writer) and opening the SQLite projection.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::event::Event;
use super::projection::{LogMark, Projection};
use super::{Error, EVENTS_FILE};
use crate::project::Project;

/// A project's store: the `.spectacular` directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    /// Find the store for `cwd`. `override_dir` (from `--store DIR` / `SPECTACULAR_STORE`)
    /// wins; else the nearest `.spectacular/` walking up from `cwd`; else
    /// `<git root>/.spectacular`; else `<cwd>/.spectacular`. Creates nothing.
    pub fn locate(cwd: &Path, override_dir: Option<&Path>) -> Store {
        Store::of(&Project::discover(cwd), cwd, override_dir)
    }

    /// The store of `project`: `override_dir` (relative to `cwd`) when given, else the
    /// project's `.spectacular/`. Creates nothing.
    pub fn of(project: &Project, cwd: &Path, override_dir: Option<&Path>) -> Store {
        let dir = match override_dir {
            Some(dir) if dir.is_absolute() => dir.to_path_buf(),
            Some(dir) => cwd.join(dir),
            None => project.dot_dir(),
        };
        Store { dir }
    }

    /// `<dir>/runs`
    pub fn runs_dir(&self) -> PathBuf {
        self.dir.join("runs")
    }

    /// `<dir>/runs/<run_id>`, or why `run_id` cannot be a run id (it is not one plain path
    /// segment; see [`join_under`]).
    pub fn checked_run_dir(&self, run_id: &str) -> Result<PathBuf, UnsafePath> {
        join_under(&self.runs_dir(), &[run_id])
    }

    /// `<dir>/runs/<run_id>`. Run ids are ULIDs the engine makes or names read from `runs/`
    /// ([`Store::run_ids`], [`Store::resolve_run`]); anything else that is not one plain path
    /// segment (`..`, `a/b`, empty) gets `<dir>/runs/.invalid-run-id`, a directory no run
    /// uses and `run_ids` never lists, so a run id can never lead outside `runs/`.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.checked_run_dir(run_id)
            .unwrap_or_else(|_| self.runs_dir().join(INVALID_RUN_DIR))
    }

    /// `<dir>/runs/<run_id>/events.jsonl`
    pub fn events_path(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join(EVENTS_FILE)
    }

    /// `<dir>/state.db`
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("state.db")
    }

    /// The ids of the runs that have a log, sorted ascending (ULIDs sort by time).
    pub fn run_ids(&self) -> Result<Vec<String>, Error> {
        let runs_dir = self.runs_dir();
        let entries = match std::fs::read_dir(&runs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read the directory", runs_dir, e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read the directory", &runs_dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') || !entry.path().join(EVENTS_FILE).is_file() {
                continue;
            }
            ids.push(name);
        }
        ids.sort();
        Ok(ids)
    }

    /// Resolve what a user typed: an exact run id, a unique prefix of one (case-insensitive),
    /// or `last` / `latest` for the most recent run.
    pub fn resolve_run(&self, prefix_or_id: &str) -> Result<String, Error> {
        let ids = self.run_ids()?;
        let query = prefix_or_id.trim();
        if query == "last" || query == "latest" {
            return ids.last().cloned().ok_or_else(|| Error::UnknownRun {
                query: query.to_string(),
                runs_dir: self.runs_dir(),
                candidates: Vec::new(),
            });
        }
        if let Some(id) = ids.iter().find(|id| id.as_str() == query) {
            return Ok(id.clone());
        }
        let upper = query.to_ascii_uppercase();
        let matches: Vec<String> = if query.is_empty() {
            Vec::new()
        } else {
            ids.iter()
                .filter(|id| id.to_ascii_uppercase().starts_with(&upper))
                .cloned()
                .collect()
        };
        match matches.len() {
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            0 => Err(Error::UnknownRun {
                query: query.to_string(),
                runs_dir: self.runs_dir(),
                candidates: ids,
            }),
            _ => Err(Error::AmbiguousRun {
                query: query.to_string(),
                candidates: matches,
            }),
        }
    }

    /// Read a run's events without changing anything (a live writer may be mid-line): a torn
    /// last line (no trailing newline) is ignored; any complete line that is not an event
    /// this build can read is an error naming the file, the line and the fix (see
    /// `parse_log` for the rules).
    pub fn read_events(&self, run_id: &str) -> Result<Vec<Event>, Error> {
        if self.checked_run_dir(run_id).is_err() {
            return Err(Error::UnknownRun {
                query: run_id.to_string(),
                runs_dir: self.runs_dir(),
                candidates: Vec::new(),
            });
        }
        let path = self.events_path(run_id);
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read the run log", &path, e))?;
        Ok(parse_log(&path, &bytes, run_id)?.events)
    }

    /// Open `<dir>/state.db` (creating it, or rebuilding it when it was deleted, is corrupt
    /// or has an older schema) and catch it up with every run log. A run whose log cannot be
    /// read is left out (with a warning); commands about that run report the damage.
    pub fn projection(&self) -> Result<Projection, Error> {
        let (projection, damaged) = self.projection_checked()?;
        for (run_id, e) in damaged {
            tracing::warn!("the projection leaves out run `{run_id}`: {e}");
        }
        Ok(projection)
    }

    /// [`Store::projection`], also returning the runs whose logs cannot be read, each with
    /// why (its line number and the fix). Their rows are removed, so that nothing cached is
    /// shown for them; one damaged run never keeps the others from being read.
    pub fn projection_checked(&self) -> Result<(Projection, Vec<(String, Error)>), Error> {
        let mut projection = Projection::open(&self.db_path())?;
        let ids = self.run_ids()?;
        let mut damaged = Vec::new();
        for run_id in &ids {
            if let Err(e) = self.sync_run(&mut projection, run_id) {
                if matches!(e, Error::Sqlite { .. }) {
                    return Err(e);
                }
                projection.forget_run(run_id)?;
                damaged.push((run_id.clone(), e));
            }
        }
        projection.forget_runs_except(&ids)?;
        Ok((projection, damaged))
    }

    /// Open the projection and catch it up with the log of one run; a log that cannot be
    /// read is an error (and the run's rows are removed).
    pub fn projection_of(&self, run_id: &str) -> Result<Projection, Error> {
        let mut projection = Projection::open(&self.db_path())?;
        if let Err(e) = self.sync_run(&mut projection, run_id) {
            if !matches!(e, Error::Sqlite { .. }) {
                projection.forget_run(run_id)?;
            }
            return Err(e);
        }
        Ok(projection)
    }

    /// Bring the projection's rows of one run in step with its log. The projection keeps a
    /// [`LogMark`] per run (length, last seq and SHA-256 of what it indexed): when the log
    /// still starts with those bytes, only what follows is read; when it is shorter, or
    /// different, the run's rows are rebuilt from the whole log.
    fn sync_run(&self, projection: &mut Projection, run_id: &str) -> Result<(), Error> {
        let path = self.events_path(run_id);
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read the run log", &path, e))?;
        let at = projection.last_seq(run_id)?;
        let mark = projection.log_mark(run_id)?;
        let mut hasher = Sha256::new();
        // The indexed part of the log, when the log still starts with it.
        let trusted = mark.as_ref().filter(|m| {
            let Some(prefix) = bytes.get(..m.len as usize) else {
                return false;
            };
            hasher.update(prefix);
            hex(hasher.clone().finalize().as_slice()) == m.digest
        });
        let (start, start_seq) = match trusted {
            Some(m) => (m.len as usize, m.seq),
            None => {
                hasher = Sha256::new();
                (0, 0)
            }
        };
        let parsed = parse_log_after(&path, &bytes, run_id, start, start_seq)?;
        let last = parsed.events.last().map_or(start_seq, |e| e.seq);
        // Is what the projection holds beyond the mark still what the log says?
        let mut rebuild = mark.is_some() && trusted.is_none();
        if !rebuild && at > start_seq {
            let known = projection.event_ids(run_id, start_seq + 1)?;
            rebuild = last < at
                || known
                    .iter()
                    .zip(&parsed.events)
                    .any(|(id, e)| *id != e.event_id);
        }
        if rebuild {
            tracing::warn!(
                "the log of run `{run_id}` is shorter than or different from what the projection \
                 indexed; rebuilding the run's rows from it"
            );
            projection.forget_run(run_id)?;
            if trusted.is_some() {
                return self.sync_run(projection, run_id);
            }
        }
        let at = if rebuild { 0 } else { at };
        let new = parsed.events.partition_point(|e| e.seq <= at);
        if trusted.is_some() {
            // The new events' ids must not repeat one of the indexed part.
            for event in &parsed.events[new..] {
                if let Some(first) = projection.seq_of(run_id, &event.event_id)? {
                    return Err(Error::DuplicateEvent {
                        path,
                        line: event.seq as usize,
                        first_line: first as usize,
                        event_id: event.event_id.clone(),
                    });
                }
            }
        }
        projection.apply(&parsed.events[new..])?;
        let unchanged = trusted.is_some() && !rebuild && parsed.valid_len as usize == start;
        if !unchanged {
            hasher.update(&bytes[start..parsed.valid_len as usize]);
            projection.set_log_mark(
                run_id,
                &LogMark {
                    len: parsed.valid_len,
                    seq: last,
                    digest: hex(hasher.finalize().as_slice()),
                },
            )?;
        }
        Ok(())
    }
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// What [`Store::run_dir`] gives for a run id that is not a plain path segment.
const INVALID_RUN_DIR: &str = ".invalid-run-id";

/// A path segment [`join_under`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{segment}` cannot be part of a path under `{}`: {reason}", root.display())]
pub struct UnsafePath {
    pub root: PathBuf,
    /// The refused segment, escaped and cut to 40 characters.
    pub segment: String,
    pub reason: &'static str,
}

/// `root` joined with `parts`, proven to stay under `root`: each part must be exactly one
/// ordinary path segment (not empty, not `.` or `..`, no `/` or `\`, so never absolute,
/// and no NUL or other control character). Every path built from a name that came from
/// outside the engine (a run id, an item id, an instance name, a declared output path split
/// on `/`) goes through here. Touches nothing on disk, so a symlink already under `root` is
/// not seen; the engine never creates one.
pub fn join_under(root: &Path, parts: &[&str]) -> Result<PathBuf, UnsafePath> {
    let mut path = root.to_path_buf();
    for part in parts {
        let refuse = |reason| UnsafePath {
            root: root.to_path_buf(),
            segment: shown(part),
            reason,
        };
        let reason = if part.is_empty() {
            Some("it is empty")
        } else if *part == "." || *part == ".." {
            Some("`.` and `..` are not names")
        } else if part.contains(['/', '\\']) {
            Some("it contains a path separator")
        } else if part.contains('\0') {
            Some("it contains a NUL byte")
        } else if part.chars().any(char::is_control) {
            Some("it contains a control character")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(refuse(reason));
        }
        // The proof, whatever the platform: one normal component, the part itself.
        let mut components = Path::new(part).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(c)), None) if c == *part => path.push(part),
            _ => return Err(refuse("it is not a plain file name")),
        }
    }
    Ok(path)
}

/// `s` for an error message: escaped, at most 40 characters.
fn shown(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == 40 {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

/// A run log, parsed.
#[derive(Debug)]
pub(crate) struct ParsedLog {
    pub events: Vec<Event>,
    /// Bytes up to the end of the last valid line.
    pub valid_len: u64,
    /// What was wrong with the last line, when it was torn.
    pub torn: Option<TornTail>,
}

#[derive(Debug)]
pub(crate) struct TornTail {
    pub line: usize,
    pub bytes: usize,
    pub reason: String,
}

/// Logs larger than this are parsed on several threads.
const PARALLEL_THRESHOLD: usize = 4 << 20;

/// The fix for a complete line written by a newer version.
pub(crate) const HELP_NEWER: &str = "this line was written by a newer version of spectacular \
     and is kept as it is; read and continue this run with that version or a newer one";

/// The fix for a complete last line that is not an event.
pub(crate) const HELP_DAMAGED_LAST: &str = "the line ends with a newline, so it is not a torn \
     write and is not removed automatically; restore the file from a backup, or, if that line \
     is junk, delete it by hand";

/// The fix for a damaged line before the last one.
pub(crate) const HELP_DAMAGED: &str = "the log is damaged before its last line, so it cannot be \
     repaired automatically; restore the file from a backup, or move the run directory aside to \
     start over";

/// Parse a whole log: every line an event, seq gap-free from 1, all of run `run_id`, every
/// `event_id` once. The reader rules:
///
/// - a last line without its trailing newline is *torn* (a write cut short): it is reported,
///   not returned (only the run's writer removes it);
/// - a complete line (it ends with a newline) that does not decode is refused with its line
///   number, wherever it is: a line of a newer version is intact and must be kept, and a
///   damaged line is not something a crash produces.
pub(crate) fn parse_log(path: &Path, bytes: &[u8], run_id: &str) -> Result<ParsedLog, Error> {
    parse_log_in(path, bytes, run_id, threads_for(bytes.len()), 0, 0)
}

/// How many threads to parse `len` bytes of log on.
fn threads_for(len: usize) -> usize {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if len < PARALLEL_THRESHOLD {
        1
    } else {
        threads.min(len / (PARALLEL_THRESHOLD / 4)).max(1)
    }
}

/// [`parse_log`] of the part of a log after its first `start` bytes, which hold events 1 to
/// `first_seq` (already read): the events after them, numbered and checked as in the whole
/// log (except for repeated ids across the two parts, which the caller checks).
pub(crate) fn parse_log_after(
    path: &Path,
    bytes: &[u8],
    run_id: &str,
    start: usize,
    first_seq: u64,
) -> Result<ParsedLog, Error> {
    let n = threads_for(bytes.len() - start);
    parse_log_in(path, bytes, run_id, n, start, first_seq)
}

/// [`parse_log`] of `bytes[start..]` (which follows event `first_seq`) on `n` threads (about
/// `n` chunks split on line boundaries).
fn parse_log_in(
    path: &Path,
    bytes: &[u8],
    run_id: &str,
    n: usize,
    start: usize,
    first_seq: u64,
) -> Result<ParsedLog, Error> {
    let chunks: Vec<(usize, usize)> = split_chunks(&bytes[start..], n)
        .into_iter()
        .map(|(a, b)| (start + a, start + b))
        .collect();
    let parsed: Vec<Chunk> = if chunks.len() == 1 {
        vec![parse_chunk(bytes, start, bytes.len())]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|&(start, end)| scope.spawn(move || parse_chunk(bytes, start, end)))
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(chunk) => chunk,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    };

    let total: usize = parsed.iter().map(|c| c.events.len()).sum();
    let mut events: Vec<Event> = Vec::with_capacity(total);
    let mut line_base = first_seq as usize;
    let mut torn = None;
    let mut valid_len = bytes.len() as u64;
    for chunk in parsed {
        let count = chunk.events.len();
        for (i, event) in chunk.events.into_iter().enumerate() {
            let line = line_base + i + 1;
            let expected = events.last().map_or(first_seq + 1, |e| e.seq + 1);
            if event.seq != expected {
                return Err(Error::SeqGap {
                    path: path.to_path_buf(),
                    line,
                    expected,
                    found: event.seq,
                });
            }
            if event.run_id != run_id {
                return Err(Error::WrongRun {
                    path: path.to_path_buf(),
                    line,
                    expected: run_id.to_string(),
                    found: event.run_id,
                });
            }
            events.push(event);
        }
        line_base += count;
        if let Some(bad) = chunk.bad {
            let line = line_base + 1;
            if bad.complete {
                let help = if bad.newer {
                    HELP_NEWER
                } else if bad.end == bytes.len() {
                    HELP_DAMAGED_LAST
                } else {
                    HELP_DAMAGED
                };
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    line,
                    reason: bad.reason,
                    help,
                });
            }
            valid_len = bad.start as u64;
            torn = Some(TornTail {
                line,
                bytes: bad.end - bad.start,
                reason: bad.reason,
            });
            break;
        }
    }
    check_unique_ids(path, &events, first_seq as usize)?;
    Ok(ParsedLog {
        events,
        valid_len,
        torn,
    })
}

/// Refuse an `event_id` that appears twice, naming both lines (`events[i]` is on line
/// `first_line + i + 1`).
pub(crate) fn check_unique_ids(
    path: &Path,
    events: &[Event],
    first_line: usize,
) -> Result<(), Error> {
    let duplicate = |first: usize, second: usize| Error::DuplicateEvent {
        path: path.to_path_buf(),
        line: first_line + second + 1,
        first_line: first_line + first + 1,
        event_id: events[second].event_id.clone(),
    };
    // Ids are ULIDs, whose first 10 characters are the time: in a log they almost always come
    // in order of those characters. Then equal ids can only sit in one run of equal prefixes,
    // and checking those small runs is enough, without a set of a million ids.
    const PREFIX: usize = 10;
    let prefix = |i: usize| {
        let id = events[i].event_id.as_bytes();
        &id[..id.len().min(PREFIX)]
    };
    if (1..events.len()).all(|i| prefix(i - 1) <= prefix(i)) {
        let mut group: Vec<usize> = Vec::new();
        let mut start = 0;
        while start < events.len() {
            let mut end = start + 1;
            while end < events.len() && prefix(end) == prefix(start) {
                end += 1;
            }
            if end - start > 1 {
                group.clear();
                group.extend(start..end);
                group.sort_by(|&a, &b| events[a].event_id.cmp(&events[b].event_id));
                let found = group
                    .windows(2)
                    .filter(|w| events[w[0]].event_id == events[w[1]].event_id)
                    .map(|w| (w[0].min(w[1]), w[0].max(w[1])))
                    .min_by_key(|&(_, second)| second);
                if let Some((first, second)) = found {
                    return Err(duplicate(first, second));
                }
            }
            start = end;
        }
        return Ok(());
    }
    let mut seen: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        if let Some(first) = seen.insert(&event.event_id, i) {
            return Err(duplicate(first, i));
        }
    }
    Ok(())
}

/// The events of consecutive lines, up to the first line that is not an event.
struct Chunk {
    events: Vec<Event>,
    bad: Option<BadLine>,
}

/// A line that is not an event: bytes `start..end` (with its newline, if any).
struct BadLine {
    start: usize,
    end: usize,
    reason: String,
    /// It ends with a newline (so it is not torn).
    complete: bool,
    /// It is an event of a newer version.
    newer: bool,
}

/// Split `bytes` into about `n` ranges that end on line boundaries.
fn split_chunks(bytes: &[u8], n: usize) -> Vec<(usize, usize)> {
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    for k in 1..n {
        let target = (bytes.len() * k / n).max(start);
        let end = match memchr::memchr(b'\n', &bytes[target..]) {
            Some(i) => target + i + 1,
            None => break,
        };
        if end > start {
            chunks.push((start, end));
            start = end;
        }
    }
    chunks.push((start, bytes.len()));
    chunks
}

fn parse_chunk(bytes: &[u8], start: usize, end: usize) -> Chunk {
    let mut events = Vec::with_capacity((end - start) / 256 + 1);
    let mut pos = start;
    while pos < end {
        let (line, next, complete) = match memchr::memchr(b'\n', &bytes[pos..end]) {
            Some(n) => (&bytes[pos..pos + n], pos + n + 1, true),
            None => (&bytes[pos..end], end, false),
        };
        let parsed = std::str::from_utf8(line)
            .map_err(|e| (format!("not UTF-8 ({e})"), false))
            .and_then(|s| Event::from_json_line(s).map_err(|e| (e.to_string(), e.is_newer())));
        match parsed {
            Ok(event) if complete => events.push(event),
            Ok(_) => {
                return Chunk {
                    events,
                    bad: Some(BadLine {
                        start: pos,
                        end: next,
                        reason: "it has no trailing newline (the write was cut short)".into(),
                        complete,
                        newer: false,
                    }),
                }
            }
            Err((reason, newer)) => {
                return Chunk {
                    events,
                    bad: Some(BadLine {
                        start: pos,
                        end: next,
                        reason,
                        complete,
                        newer,
                    }),
                }
            }
        }
        pos = next;
    }
    Chunk { events, bad: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::event::{EventData, PhaseRef};

    fn log_text(n: u64) -> String {
        let mut text = String::new();
        for seq in 1..=n {
            let event = Event {
                event_id: format!("E{seq}"),
                schema: 1,
                run_id: "R".into(),
                seq,
                ts: "2026-11-21T10:00:00.000Z".into(),
                causation_id: None,
                actor: "engine".into(),
                data: EventData::PhaseReady(PhaseRef {
                    phase: format!("p{seq}"),
                }),
            };
            text += &event.to_json_line();
            text.push('\n');
        }
        text
    }

    fn replace_line(text: &str, line: usize, with: &str) -> String {
        let mut lines: Vec<&str> = text.lines().collect();
        lines[line - 1] = with;
        lines.join("\n") + "\n"
    }

    #[test]
    fn join_under_accepts_plain_segments() {
        let root = Path::new("/store/runs");
        assert_eq!(
            join_under(root, &["R1", "attempts", "implement[wp-1]", "1"]),
            Ok(PathBuf::from("/store/runs/R1/attempts/implement[wp-1]/1"))
        );
        assert_eq!(join_under(root, &[]), Ok(root.to_path_buf()));
        assert_eq!(
            join_under(root, &["a..b", ".x", "v1.2"]),
            Ok(root.join("a..b/.x/v1.2"))
        );
    }

    #[test]
    fn the_part_after_an_indexed_prefix_is_numbered_as_in_the_whole_log() {
        let path = Path::new("events.jsonl");
        let good = log_text(50);
        let start: usize = good.split_inclusive('\n').take(30).map(str::len).sum();
        let rest = parse_log_after(path, good.as_bytes(), "R", start, 30).unwrap();
        assert_eq!(rest.events.len(), 20);
        assert_eq!(rest.events[0].seq, 31);
        assert_eq!(rest.valid_len, good.len() as u64);
        let corrupt = replace_line(&good, 40, "{not json");
        let err = parse_log_after(path, corrupt.as_bytes(), "R", start, 30).unwrap_err();
        assert!(matches!(err, Error::Corrupt { line: 40, .. }), "{err:?}");
        let dup = replace_line(
            &good,
            45,
            &good.lines().nth(44).unwrap().replace("\"E45\"", "\"E41\""),
        );
        let err = parse_log_after(path, dup.as_bytes(), "R", start, 30).unwrap_err();
        assert!(
            matches!(
                err,
                Error::DuplicateEvent {
                    line: 45,
                    first_line: 41,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn join_under_refuses_what_could_leave_the_root() {
        let root = Path::new("/store/runs");
        for (part, reason) in [
            ("..", "`.` and `..` are not names"),
            (".", "`.` and `..` are not names"),
            ("", "it is empty"),
            ("/etc", "it contains a path separator"),
            ("/", "it contains a path separator"),
            ("t/../../x", "it contains a path separator"),
            ("a\\b", "it contains a path separator"),
            ("a\0b", "it contains a NUL byte"),
            ("a\nb", "it contains a control character"),
        ] {
            let err = join_under(root, &["R1", part, "out.txt"]).unwrap_err();
            assert_eq!(err.reason, reason, "{part:?}");
            assert_eq!(err.root, root);
        }
        let err = join_under(root, &["x\ny/..", "a"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`x\\ny/..` cannot be part of a path under `/store/runs`: it contains a path separator"
        );
    }

    #[test]
    fn a_run_id_that_is_not_a_segment_never_leaves_the_runs_directory() {
        let store = Store {
            dir: PathBuf::from("/p/.spectacular"),
        };
        assert_eq!(
            store.run_dir("01J"),
            PathBuf::from("/p/.spectacular/runs/01J")
        );
        for bad in ["..", "../../etc", "/etc", ""] {
            assert_eq!(
                store.run_dir(bad),
                PathBuf::from("/p/.spectacular/runs/.invalid-run-id"),
                "{bad:?}"
            );
            assert!(store.checked_run_dir(bad).is_err());
            assert!(matches!(
                store.read_events(bad),
                Err(Error::UnknownRun { .. })
            ));
        }
    }

    #[test]
    fn repeated_ids_are_found_in_order_or_not() {
        let event = |id: &str| Event {
            event_id: id.to_string(),
            schema: 1,
            run_id: "R".into(),
            seq: 1,
            ts: "2026-11-21T10:00:00.000Z".into(),
            causation_id: None,
            actor: "engine".into(),
            data: EventData::PhaseReady(PhaseRef { phase: "p".into() }),
        };
        let path = Path::new("events.jsonl");
        let lines = |ids: &[&str]| {
            let events: Vec<Event> = ids.iter().map(|id| event(id)).collect();
            match check_unique_ids(path, &events, 10) {
                Ok(()) => None,
                Err(Error::DuplicateEvent {
                    first_line, line, ..
                }) => Some((first_line, line)),
                Err(other) => panic!("{other:?}"),
            }
        };
        // In time order (runs of equal time prefixes), and not.
        let sorted = [
            "01AAAAAAAAX",
            "01AAAAAAAAZ",
            "01AAAAAAAAY",
            "01AAAAAAABX",
            "01AAAAAAABY",
        ];
        assert_eq!(lines(&sorted), None);
        let mut dup = sorted;
        dup[4] = "01AAAAAAABX";
        assert_eq!(lines(&dup), Some((14, 15)));
        dup[2] = "01AAAAAAAAX";
        assert_eq!(lines(&dup), Some((11, 13)));
        let unsorted = ["01B", "01A", "01C", "01A", "01B"];
        assert_eq!(lines(&unsorted), Some((12, 14)));
        assert_eq!(lines(&unsorted[..3]), None);
    }

    #[test]
    fn chunked_parsing_gives_the_same_answers_as_one_thread() {
        let path = Path::new("events.jsonl");
        let good = log_text(50);
        let torn = format!("{good}{{\"event_id\":\"E51\"");
        let corrupt = replace_line(&good, 30, "{not json");
        let gap = replace_line(
            &good,
            41,
            &good
                .lines()
                .nth(41)
                .unwrap()
                .replace("\"seq\":42", "\"seq\":99"),
        );
        for n in [1, 2, 3, 7, 50, 80] {
            let all = parse_log_in(path, good.as_bytes(), "R", n, 0, 0).unwrap();
            assert_eq!(all.events.len(), 50, "n={n}");
            assert!(all
                .events
                .iter()
                .enumerate()
                .all(|(i, e)| e.seq == i as u64 + 1));
            assert_eq!(all.valid_len, good.len() as u64);

            let t = parse_log_in(path, torn.as_bytes(), "R", n, 0, 0).unwrap();
            assert_eq!(
                (t.events.len(), t.valid_len),
                (50, good.len() as u64),
                "n={n}"
            );
            assert_eq!(t.torn.map(|t| t.line), Some(51));

            let err = parse_log_in(path, corrupt.as_bytes(), "R", n, 0, 0).unwrap_err();
            assert!(
                matches!(err, Error::Corrupt { line: 30, .. }),
                "n={n}: {err:?}"
            );

            let err = parse_log_in(path, gap.as_bytes(), "R", n, 0, 0).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::SeqGap {
                        line: 41,
                        expected: 41,
                        found: 99,
                        ..
                    }
                ),
                "n={n}: {err:?}"
            );
        }
    }
}
