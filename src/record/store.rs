//! The store: where a project's runs live (`.spectacular/runs/<run_id>/events.jsonl`), reading
//! run logs (read-only, safe beside a live writer) and opening the SQLite projection.

use std::path::{Path, PathBuf};

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

    /// `<dir>/runs/<run_id>`
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.runs_dir().join(run_id)
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
            let events = self.read_events(run_id)?;
            if events.last().is_some_and(|e| e.seq > at) {
                let start = events.partition_point(|e| e.seq <= at);
                projection.apply(&events[start..])?;
            }
        }
        projection.forget_runs_except(&ids)?;
        Ok(projection)
    }
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

/// Parse a whole log: every line an event, seq gap-free from 1, all of run `run_id`. The last
/// line may be torn (no trailing newline, or not an event): it is reported, not returned.
pub(crate) fn parse_log(path: &Path, bytes: &[u8], run_id: &str) -> Result<ParsedLog, Error> {
    let mut events = Vec::with_capacity(bytes.len() / 256 + 1);
    let mut pos = 0usize;
    let mut line_no = 0usize;
    let mut torn = None;
    while pos < bytes.len() {
        line_no += 1;
        let (line, next, complete) = match bytes[pos..].iter().position(|&b| b == b'\n') {
            Some(n) => (&bytes[pos..pos + n], pos + n + 1, true),
            None => (&bytes[pos..], bytes.len(), false),
        };
        let is_last = next >= bytes.len();
        let parsed = std::str::from_utf8(line)
            .map_err(|e| format!("not UTF-8 ({e})"))
            .and_then(|s| Event::from_json_line(s).map_err(|e| e.to_string()));
        match (parsed, complete) {
            (Ok(event), true) => {
                let expected = events.last().map_or(1, |e: &Event| e.seq + 1);
                if event.seq != expected {
                    return Err(Error::SeqGap {
                        path: path.to_path_buf(),
                        line: line_no,
                        expected,
                        found: event.seq,
                    });
                }
                if event.run_id != run_id {
                    return Err(Error::WrongRun {
                        path: path.to_path_buf(),
                        line: line_no,
                        expected: run_id.to_string(),
                        found: event.run_id,
                    });
                }
                events.push(event);
                pos = next;
            }
            (Ok(_), false) => {
                torn = Some(TornTail {
                    line: line_no,
                    bytes: line.len(),
                    reason: "it has no trailing newline (the write was cut short)".to_string(),
                });
                break;
            }
            (Err(reason), _) if is_last => {
                torn = Some(TornTail {
                    line: line_no,
                    bytes: next - pos,
                    reason,
                });
                break;
            }
            (Err(reason), _) => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    line: line_no,
                    reason,
                })
            }
        }
    }
    Ok(ParsedLog {
        events,
        valid_len: pos as u64,
        torn,
    })
}
