//! The store: where a project's runs live (`.spectacular/runs/<run_id>/events.jsonl`), reading
//! run logs (read-only, safe beside a live writer) and opening the SQLite projection.

use std::path::{Component, Path, PathBuf};

use super::event::Event;
use super::projection::Projection;
use super::{Error, EVENTS_FILE};
use crate::project::{Project, DOT_DIR};

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
        if let Some(dir) = override_dir {
            let dir = if dir.is_absolute() {
                dir.to_path_buf()
            } else {
                cwd.join(dir)
            };
            return Store { dir };
        }
        let nearest = cwd
            .ancestors()
            .map(|a| a.join(DOT_DIR))
            .find(|d| d.is_dir());
        let dir = nearest.unwrap_or_else(|| Project::discover(cwd).dot_dir());
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
    /// last line is ignored; a corrupt line before it is an error naming the file and line.
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
    /// or has an older schema) and catch it up with every run log.
    pub fn projection(&self) -> Result<Projection, Error> {
        let mut projection = Projection::open(&self.db_path())?;
        let ids = self.run_ids()?;
        for run_id in &ids {
            let at = projection.last_seq(run_id)?;
            // One damaged log must not hide every other run: skip it (commands that read
            // that run report the damage with its line number).
            let events = match self.read_events(run_id) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!("the projection skips run `{run_id}`: {e}");
                    continue;
                }
            };
            if events.last().is_some_and(|e| e.seq > at) {
                let start = events.partition_point(|e| e.seq <= at);
                projection.apply(&events[start..])?;
            }
        }
        projection.forget_runs_except(&ids)?;
        Ok(projection)
    }
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
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = if bytes.len() < PARALLEL_THRESHOLD {
        1
    } else {
        threads.min(bytes.len() / (PARALLEL_THRESHOLD / 4)).max(1)
    };
    parse_log_in(path, bytes, run_id, n)
}

/// [`parse_log`] on `n` threads (about `n` chunks split on line boundaries).
fn parse_log_in(path: &Path, bytes: &[u8], run_id: &str, n: usize) -> Result<ParsedLog, Error> {
    let chunks = split_chunks(bytes, n);
    let parsed: Vec<Chunk> = if chunks.len() == 1 {
        vec![parse_chunk(bytes, 0, bytes.len())]
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
    let mut line_base = 0usize;
    let mut torn = None;
    let mut valid_len = bytes.len() as u64;
    for chunk in parsed {
        let count = chunk.events.len();
        for (i, event) in chunk.events.into_iter().enumerate() {
            let line = line_base + i + 1;
            let expected = events.last().map_or(1, |e| e.seq + 1);
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
    check_unique_ids(path, &events, 0)?;
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
    let mut seen: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let line = first_line + i + 1;
        if let Some(first) = seen.insert(&event.event_id, line) {
            return Err(Error::DuplicateEvent {
                path: path.to_path_buf(),
                line,
                first_line: first,
                event_id: event.event_id.clone(),
            });
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
            let all = parse_log_in(path, good.as_bytes(), "R", n).unwrap();
            assert_eq!(all.events.len(), 50, "n={n}");
            assert!(all
                .events
                .iter()
                .enumerate()
                .all(|(i, e)| e.seq == i as u64 + 1));
            assert_eq!(all.valid_len, good.len() as u64);

            let t = parse_log_in(path, torn.as_bytes(), "R", n).unwrap();
            assert_eq!(
                (t.events.len(), t.valid_len),
                (50, good.len() as u64),
                "n={n}"
            );
            assert_eq!(t.torn.map(|t| t.line), Some(51));

            let err = parse_log_in(path, corrupt.as_bytes(), "R", n).unwrap_err();
            assert!(
                matches!(err, Error::Corrupt { line: 30, .. }),
                "n={n}: {err:?}"
            );

            let err = parse_log_in(path, gap.as_bytes(), "R", n).unwrap_err();
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
