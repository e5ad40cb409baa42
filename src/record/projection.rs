//! The SQLite projection (`.spectacular/state.db`): tables `runs`, `phases`, `attempts` and
//! `events` kept in step with the run logs. It is a cache, never an authority: it can be
//! deleted at any time and is rebuilt from the logs, and `verify` compares it with a fresh fold.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use super::event::{Event, EventData, PayloadOut};
use super::fold::{
    failure_kind_str, fold, fold_attempts, AttemptSummary, PhaseState, PhaseSummary, RunStatus,
    RunSummary,
};
use super::Error;

/// The projection's table layout version. A database with another version is dropped and
/// rebuilt from the logs.
pub const PROJECTION_VERSION: u32 = 3;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    mission TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    last_seq INTEGER NOT NULL,
    inputs TEXT NOT NULL
);
CREATE TABLE phases (
    run_id TEXT NOT NULL,
    ord INTEGER NOT NULL,
    phase TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    duration_ms INTEGER,
    last_failure TEXT,
    parent TEXT,
    PRIMARY KEY (run_id, phase)
);
CREATE TABLE attempts (
    run_id TEXT NOT NULL,
    ord INTEGER NOT NULL,
    phase TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    failure_kind TEXT,
    exit_code INTEGER,
    started_at TEXT,
    ended_at TEXT,
    duration_ms INTEGER,
    PRIMARY KEY (run_id, phase, attempt)
);
CREATE TABLE events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    schema INTEGER NOT NULL,
    ts TEXT NOT NULL,
    causation_id TEXT,
    actor TEXT NOT NULL,
    phase TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE logs (
    run_id TEXT PRIMARY KEY,
    len INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    digest TEXT NOT NULL
);
CREATE INDEX events_event_id ON events (event_id);
CREATE INDEX events_type ON events (type);
CREATE INDEX events_ts ON events (ts);
CREATE INDEX events_phase ON events (run_id, phase);
CREATE INDEX phases_ord ON phases (run_id, ord);
";

/// How much of a run's log the projection has indexed: its first `len` bytes, up to event
/// `seq`, whose SHA-256 is `digest`. Compared with the log on every read, so that a log that
/// was cut back, edited or replaced is noticed and its run rebuilt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogMark {
    pub len: u64,
    pub seq: u64,
    pub digest: String,
}

/// The tables with rows per run.
const TABLES: [&str; 5] = ["runs", "phases", "attempts", "events", "logs"];

/// A run, as the projection has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    pub run_id: String,
    pub mission: String,
    pub status: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub last_seq: u64,
}

/// A phase, as the projection has it (mirrors [`PhaseSummary`], state as text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseRow {
    pub phase: String,
    pub state: String,
    pub attempts: u32,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub last_failure: Option<String>,
    pub parent: Option<String>,
}

/// One attempt of a phase, as the projection has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    pub phase: String,
    pub attempt: u32,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    pub failure_kind: Option<String>,
    pub exit_code: Option<i32>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<u64>,
}

impl From<&AttemptSummary> for AttemptRow {
    fn from(a: &AttemptSummary) -> AttemptRow {
        AttemptRow {
            phase: a.phase.clone(),
            attempt: a.attempt,
            state: a.state.to_string(),
            failure_kind: a.failure_kind.clone(),
            exit_code: a.exit_code,
            started_at: a.started_at.clone(),
            ended_at: a.ended_at.clone(),
            duration_ms: a.duration_ms,
        }
    }
}

impl From<&PhaseSummary> for PhaseRow {
    fn from(p: &PhaseSummary) -> PhaseRow {
        PhaseRow {
            phase: p.phase.clone(),
            state: p.state.as_str().to_string(),
            attempts: p.attempts,
            started_at: p.started_at.clone(),
            ended_at: p.ended_at.clone(),
            duration_ms: p.duration_ms,
            last_failure: p.last_failure.clone(),
            parent: p.parent.clone(),
        }
    }
}

/// An open projection database.
#[derive(Debug)]
pub struct Projection {
    conn: Connection,
    path: PathBuf,
}

impl Projection {
    /// Open (or create) the projection at `path`. A file that is not a database, or is
    /// corrupt, is deleted and recreated; a database of another layout version is emptied.
    /// Either way the caller catches up from the logs (see `Store::projection`).
    pub fn open(path: &Path) -> Result<Projection, Error> {
        match Projection::try_open(path) {
            Ok(p) => Ok(p),
            Err(Error::Sqlite { source, .. })
                if matches!(
                    source.sqlite_error_code(),
                    Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
                ) =>
            {
                tracing::warn!(
                    "the projection `{}` is damaged ({source}); rebuilding it from the logs",
                    path.display()
                );
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.as_os_str().to_owned();
                    p.push(suffix);
                    match std::fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io("remove the damaged projection", p, e)),
                    }
                }
                Projection::try_open(path)
            }
            Err(e) => Err(e),
        }
    }

    /// An in-memory projection (for tools and tests).
    pub fn in_memory() -> Result<Projection, Error> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| sql_err(&path, e))?;
        let mut p = Projection { conn, path };
        p.ensure_schema()?;
        Ok(p)
    }

    fn try_open(path: &Path) -> Result<Projection, Error> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("create the directory", parent, e))?;
        }
        let conn = Connection::open(path).map_err(|e| sql_err(path, e))?;
        let mut p = Projection {
            conn,
            path: path.to_path_buf(),
        };
        p.conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| sql_err(path, e))?;
        p.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(|e| sql_err(path, e))?;
        p.ensure_schema()?;
        Ok(p)
    }

    /// Create the tables, or drop and recreate them when the layout version differs.
    fn ensure_schema(&mut self) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |e| sql_err(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        let has_meta: bool = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(e)?
            > 0;
        let version: Option<String> = if has_meta {
            tx.query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?
        } else {
            None
        };
        if version.as_deref() == Some(PROJECTION_VERSION.to_string().as_str()) {
            return tx.commit().map_err(e);
        }
        if version.is_some() || has_meta {
            tracing::warn!(
                "the projection `{}` has layout version {}, this build uses {PROJECTION_VERSION}; rebuilding it from the logs",
                path.display(),
                version.as_deref().unwrap_or("none")
            );
        }
        let tables: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                .map_err(e)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(e)?;
            rows.collect::<Result<_, _>>().map_err(e)?
        };
        for table in tables {
            tx.execute_batch(&format!("DROP TABLE \"{}\";", table.replace('"', "\"\"")))
                .map_err(e)?;
        }
        tx.execute_batch(SCHEMA).map_err(e)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
            [PROJECTION_VERSION.to_string()],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last seq of `run_id` applied (0 if the run is unknown).
    pub fn last_seq(&self, run_id: &str) -> Result<u64, Error> {
        self.conn
            .query_row(
                "SELECT last_seq FROM runs WHERE run_id = ?1",
                [run_id],
                |r| r.get::<_, i64>(0).map(from_i64),
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| sql_err(&self.path, e))
    }

    /// Apply events (of one or several runs, each run's in seq order) in one transaction.
    /// Idempotent per `(run_id, seq)`: events already applied are skipped. A gap is refused.
    pub fn apply(&mut self, events: &[Event]) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |e| sql_err(&path, e);
        let mut by_run: IndexMap<&str, Vec<&Event>> = IndexMap::new();
        for event in events {
            by_run.entry(&event.run_id).or_default().push(event);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        for (run_id, run_events) in by_run {
            // Only the run's row and the phases this batch mentions are read and written, so
            // that a batch costs what it holds, not what the run holds.
            let mut batch = Batch::load(&tx, run_id).map_err(e)?;
            let before = batch.summary.last_seq;
            let mut insert_event = tx
                .prepare_cached(
                    "INSERT INTO events (run_id, seq, event_id, type, schema, ts, causation_id, actor, phase, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(e)?;
            for event in run_events {
                if event.seq <= batch.summary.last_seq {
                    continue;
                }
                if event.seq != batch.summary.last_seq + 1 {
                    return Err(Error::ProjectionGap {
                        path: path.clone(),
                        run_id: run_id.to_string(),
                        at: batch.summary.last_seq,
                        found: event.seq,
                    });
                }
                let data = serde_json::to_string(&PayloadOut(&event.data))
                    .unwrap_or_else(|_| "null".to_string());
                insert_event
                    .execute(params![
                        event.run_id,
                        to_i64(event.seq),
                        event.event_id,
                        event.data.type_name(),
                        event.schema,
                        event.ts,
                        event.causation_id,
                        event.actor,
                        event.data.phase(),
                        data,
                    ])
                    .map_err(e)?;
                apply_attempt(&tx, event).map_err(e)?;
                batch.apply(&tx, event).map_err(e)?;
            }
            drop(insert_event);
            if batch.summary.last_seq != before {
                batch.store(&tx).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRow>, Error> {
        let e = |e| sql_err(&self.path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT run_id, mission, status, started_at, ended_at, last_seq FROM runs ORDER BY run_id",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(RunRow {
                    run_id: r.get(0)?,
                    mission: r.get(1)?,
                    status: r.get(2)?,
                    started_at: r.get(3)?,
                    ended_at: r.get(4)?,
                    last_seq: from_i64(r.get(5)?),
                })
            })
            .map_err(e)?;
        rows.collect::<Result<_, _>>().map_err(e)
    }

    /// The phases of a run, in order of first mention.
    pub fn phases(&self, run_id: &str) -> Result<Vec<PhaseRow>, Error> {
        let summary = load_summary(&self.conn, run_id).map_err(|e| sql_err(&self.path, e))?;
        Ok(summary
            .map(|s| s.phases.values().map(PhaseRow::from).collect())
            .unwrap_or_default())
    }

    /// The attempts of a run, in order of start.
    pub fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRow>, Error> {
        let e = |e| sql_err(&self.path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT phase, attempt, state, failure_kind, exit_code, started_at, ended_at, duration_ms
                 FROM attempts WHERE run_id = ?1 ORDER BY ord, phase, attempt",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(AttemptRow {
                    phase: r.get(0)?,
                    attempt: r.get(1)?,
                    state: r.get(2)?,
                    failure_kind: r.get(3)?,
                    exit_code: r.get(4)?,
                    started_at: r.get(5)?,
                    ended_at: r.get(6)?,
                    duration_ms: r.get::<_, Option<i64>>(7)?.map(from_i64),
                })
            })
            .map_err(e)?;
        rows.collect::<Result<_, _>>().map_err(e)
    }

    /// The run as the projection has it, folded back into a summary (`None` if unknown).
    pub fn summary(&self, run_id: &str) -> Result<Option<RunSummary>, Error> {
        load_summary(&self.conn, run_id).map_err(|e| sql_err(&self.path, e))
    }

    /// How many events of `run_id` the projection holds.
    pub fn event_count(&self, run_id: &str) -> Result<u64, Error> {
        self.conn
            .query_row(
                "SELECT count(*) FROM events WHERE run_id = ?1",
                [run_id],
                |r| r.get::<_, i64>(0).map(from_i64),
            )
            .map_err(|e| sql_err(&self.path, e))
    }

    /// The differences between the projection's rows for `run_id` and a fresh fold of
    /// `events` (the run's whole log). Empty means consistent.
    pub fn verify(&self, run_id: &str, events: &[Event]) -> Result<Vec<String>, Error> {
        let mut diffs = Vec::new();
        let expected = fold(events);
        let Some(actual) = self.summary(run_id)? else {
            if !events.is_empty() {
                diffs.push(format!("run `{run_id}` is missing from the projection"));
            }
            return Ok(diffs);
        };
        let mut field = |what: &str, actual: String, expected: String| {
            if actual != expected {
                diffs.push(format!(
                    "{what} is `{actual}` in the projection but `{expected}` in the log"
                ));
            }
        };
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        field("mission", actual.mission.clone(), expected.mission.clone());
        field(
            "status",
            actual.status.to_string(),
            expected.status.to_string(),
        );
        field(
            "started_at",
            opt(&actual.started_at),
            opt(&expected.started_at),
        );
        field("ended_at", opt(&actual.ended_at), opt(&expected.ended_at));
        field(
            "last_seq",
            actual.last_seq.to_string(),
            expected.last_seq.to_string(),
        );
        field(
            "inputs",
            serde_json::to_string(&actual.inputs).unwrap_or_default(),
            serde_json::to_string(&expected.inputs).unwrap_or_default(),
        );
        field(
            "the number of events",
            self.event_count(run_id)?.to_string(),
            events.len().to_string(),
        );
        let names = |s: &RunSummary| s.phases.keys().cloned().collect::<Vec<_>>().join(", ");
        if actual.phases.keys().ne(expected.phases.keys()) {
            field("the phase list", names(&actual), names(&expected));
        }
        for (name, want) in &expected.phases {
            let Some(have) = actual.phases.get(name) else {
                continue;
            };
            let (have, want) = (PhaseRow::from(have), PhaseRow::from(want));
            compare_phase(&mut diffs, &have, &want);
        }
        let have: Vec<AttemptRow> = self.attempts(run_id)?;
        let want: Vec<AttemptRow> = fold_attempts(events).iter().map(AttemptRow::from).collect();
        if have.len() != want.len() {
            diffs.push(format!(
                "the projection has {} attempts but the log has {}",
                have.len(),
                want.len()
            ));
        }
        for (h, w) in have.iter().zip(&want) {
            if h != w {
                diffs.push(format!(
                    "attempt {} of phase `{}` is {h:?} in the projection but {w:?} in the log",
                    w.attempt, w.phase
                ));
            }
        }
        Ok(diffs)
    }

    /// How much of `run_id`'s log was indexed, if it was.
    pub fn log_mark(&self, run_id: &str) -> Result<Option<LogMark>, Error> {
        self.conn
            .query_row(
                "SELECT len, seq, digest FROM logs WHERE run_id = ?1",
                [run_id],
                |r| {
                    Ok(LogMark {
                        len: from_i64(r.get(0)?),
                        seq: from_i64(r.get(1)?),
                        digest: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| sql_err(&self.path, e))
    }

    /// Record how much of `run_id`'s log is indexed.
    pub fn set_log_mark(&mut self, run_id: &str, mark: &LogMark) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO logs (run_id, len, seq, digest) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run_id) DO UPDATE SET len = excluded.len, seq = excluded.seq,
                   digest = excluded.digest",
                params![run_id, to_i64(mark.len), to_i64(mark.seq), mark.digest],
            )
            .map(drop)
            .map_err(|e| sql_err(&self.path, e))
    }

    /// The `event_id`s of `run_id` from seq `from` on, in seq order.
    pub fn event_ids(&self, run_id: &str, from: u64) -> Result<Vec<String>, Error> {
        let e = |e| sql_err(&self.path, e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT event_id FROM events WHERE run_id = ?1 AND seq >= ?2 ORDER BY seq",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map(params![run_id, to_i64(from)], |r| r.get(0))
            .map_err(e)?;
        rows.collect::<Result<_, _>>().map_err(e)
    }

    /// The seq of the event of `run_id` with this id, if the projection has one.
    pub fn seq_of(&self, run_id: &str, event_id: &str) -> Result<Option<u64>, Error> {
        self.conn
            .prepare_cached("SELECT seq FROM events WHERE run_id = ?1 AND event_id = ?2")
            .and_then(|mut stmt| {
                stmt.query_row([run_id, event_id], |r| r.get::<_, i64>(0).map(from_i64))
                    .optional()
            })
            .map_err(|e| sql_err(&self.path, e))
    }

    /// Remove every row of one run (to rebuild it, or because its log cannot be read).
    pub fn forget_run(&mut self, run_id: &str) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |e| sql_err(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        for table in TABLES {
            tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [run_id])
                .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Remove the rows of runs whose logs are gone.
    pub fn forget_runs_except(&mut self, run_ids: &[String]) -> Result<(), Error> {
        let path = self.path.clone();
        let e = |e| sql_err(&path, e);
        let known: Vec<String> = self.runs()?.into_iter().map(|r| r.run_id).collect();
        let gone: Vec<&String> = known.iter().filter(|id| !run_ids.contains(id)).collect();
        if gone.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        for id in gone {
            for table in TABLES {
                tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [id])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// How many rows this connection has inserted, updated or deleted since it was opened
    /// (tests check that a batch writes rows for what it holds, not for the whole run).
    pub fn rows_written(&self) -> u64 {
        self.conn.total_changes()
    }

    /// Run raw SQL against the projection (maintenance and tests).
    pub fn execute_sql(&self, sql: &str) -> Result<(), Error> {
        self.conn
            .execute_batch(sql)
            .map_err(|e| sql_err(&self.path, e))
    }
}

fn compare_phase(diffs: &mut Vec<String>, have: &PhaseRow, want: &PhaseRow) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
    let num = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |n| n.to_string());
    let fields = [
        ("state", have.state.clone(), want.state.clone()),
        (
            "attempts",
            have.attempts.to_string(),
            want.attempts.to_string(),
        ),
        ("started_at", opt(&have.started_at), opt(&want.started_at)),
        ("ended_at", opt(&have.ended_at), opt(&want.ended_at)),
        ("duration_ms", num(have.duration_ms), num(want.duration_ms)),
        (
            "last_failure",
            opt(&have.last_failure),
            opt(&want.last_failure),
        ),
        ("parent", opt(&have.parent), opt(&want.parent)),
    ];
    for (what, h, w) in fields {
        if h != w {
            diffs.push(format!(
                "phase `{}`: {what} is `{h}` in the projection but `{w}` in the log",
                want.phase
            ));
        }
    }
}

/// SQLite integers are signed; seqs and durations never come near `i64::MAX`.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_i64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn sql_err(path: &Path, source: rusqlite::Error) -> Error {
    Error::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Read a run's summary back from the `runs` and `phases` rows.
fn load_summary(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<RunSummary>> {
    let Some(mut summary) = load_run(conn, run_id)? else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT phase, state, attempts, started_at, ended_at, duration_ms, last_failure, parent
         FROM phases WHERE run_id = ?1 ORDER BY ord",
    )?;
    let rows = stmt.query_map([run_id], |r| phase_summary(r, 0))?;
    for row in rows {
        let row = row?;
        summary.phases.insert(row.phase.clone(), row);
    }
    Ok(Some(summary))
}

/// A run's `runs` row as a summary without phases.
fn load_run(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<RunSummary>> {
    let run = conn
        .prepare_cached(
            "SELECT mission, status, started_at, ended_at, last_seq, inputs FROM runs WHERE run_id = ?1",
        )?
        .query_row([run_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                from_i64(r.get::<_, i64>(4)?),
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    let Some((mission, status, started_at, ended_at, last_seq, inputs)) = run else {
        return Ok(None);
    };
    let inputs: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&inputs).unwrap_or_default();
    Ok(Some(RunSummary {
        run_id: run_id.to_string(),
        mission,
        status: RunStatus::parse(&status).unwrap_or_default(),
        started_at,
        ended_at,
        last_seq,
        inputs,
        phases: IndexMap::new(),
    }))
}

/// A phase row's columns `phase, state, attempts, started_at, ended_at, duration_ms,
/// last_failure, parent`, from column `at` on.
fn phase_summary(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<PhaseSummary> {
    let state: String = r.get(at + 1)?;
    Ok(PhaseSummary {
        phase: r.get(at)?,
        // An unknown state can only come from a hand-edited row; `verify` reports it.
        state: PhaseState::parse(&state).unwrap_or_default(),
        attempts: r.get(at + 2)?,
        started_at: r.get(at + 3)?,
        ended_at: r.get(at + 4)?,
        duration_ms: r.get::<_, Option<i64>>(at + 5)?.map(from_i64),
        last_failure: r.get(at + 6)?,
        parent: r.get(at + 7)?,
    })
}

/// One run's share of a batch being applied: its summary holds the run's fields and only the
/// phases the batch's events name, each read from its row on first mention; [`Batch::store`]
/// writes back the run's row and those phases' rows, nothing else.
struct Batch {
    summary: RunSummary,
    /// The `ord` of each phase read from its row; phases new to the run get the next ones,
    /// in order of first mention.
    ords: HashMap<String, i64>,
    next_ord: i64,
}

impl Batch {
    fn load(conn: &Connection, run_id: &str) -> rusqlite::Result<Batch> {
        let Some(summary) = load_run(conn, run_id)? else {
            return Ok(Batch {
                summary: RunSummary::default(),
                ords: HashMap::new(),
                next_ord: 0,
            });
        };
        let next_ord: i64 = conn
            .prepare_cached("SELECT coalesce(max(ord) + 1, 0) FROM phases WHERE run_id = ?1")?
            .query_row([run_id], |r| r.get(0))?;
        Ok(Batch {
            summary,
            ords: HashMap::new(),
            next_ord,
        })
    }

    /// Read the rows of the phases `event` names that are not read yet, then fold it.
    fn apply(&mut self, conn: &Connection, event: &Event) -> rusqlite::Result<()> {
        let run_id = event.run_id.as_str();
        for name in phases_named(&event.data) {
            if self.summary.phases.contains_key(name.as_ref()) {
                continue;
            }
            let row = conn
                .prepare_cached(
                    "SELECT ord, phase, state, attempts, started_at, ended_at, duration_ms, last_failure, parent
                     FROM phases WHERE run_id = ?1 AND phase = ?2",
                )?
                .query_row(params![run_id, name.as_ref()], |r| {
                    Ok((r.get::<_, i64>(0)?, phase_summary(r, 1)?))
                })
                .optional()?;
            if let Some((ord, phase)) = row {
                self.ords.insert(phase.phase.clone(), ord);
                self.summary.phases.insert(phase.phase.clone(), phase);
            }
        }
        self.summary.apply(event);
        Ok(())
    }

    /// Write the run's row and the rows of the phases the batch named.
    fn store(&self, conn: &Connection) -> rusqlite::Result<()> {
        let s = &self.summary;
        conn.execute(
            "INSERT INTO runs (run_id, mission, status, started_at, ended_at, last_seq, inputs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (run_id) DO UPDATE SET mission = excluded.mission, status = excluded.status,
               started_at = excluded.started_at, ended_at = excluded.ended_at,
               last_seq = excluded.last_seq, inputs = excluded.inputs",
            params![
                s.run_id,
                s.mission,
                s.status.as_str(),
                s.started_at,
                s.ended_at,
                to_i64(s.last_seq),
                serde_json::to_string(&s.inputs).unwrap_or_else(|_| "{}".to_string()),
            ],
        )?;
        let mut upsert = conn.prepare_cached(
            "INSERT INTO phases (run_id, ord, phase, state, attempts, started_at, ended_at, duration_ms, last_failure, parent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (run_id, phase) DO UPDATE SET state = excluded.state,
               attempts = excluded.attempts, started_at = excluded.started_at,
               ended_at = excluded.ended_at, duration_ms = excluded.duration_ms,
               last_failure = excluded.last_failure, parent = excluded.parent",
        )?;
        let mut next_ord = self.next_ord;
        for p in s.phases.values() {
            let ord = match self.ords.get(&p.phase) {
                Some(&ord) => ord,
                None => {
                    next_ord += 1;
                    next_ord - 1
                }
            };
            upsert.execute(params![
                s.run_id,
                ord,
                p.phase,
                p.state.as_str(),
                p.attempts,
                p.started_at,
                p.ended_at,
                p.duration_ms.map(to_i64),
                p.last_failure,
                p.parent,
            ])?;
        }
        Ok(())
    }
}

/// Every phase `RunSummary::apply` touches for this event (it adds the ones it has not seen).
/// No catch-all arm: a new event type must say which phases it names.
fn phases_named(data: &EventData) -> Vec<Cow<'_, str>> {
    match data {
        EventData::PhaseReady(d) => vec![Cow::from(d.phase.as_str())],
        EventData::PhaseExpanded(d) => std::iter::once(Cow::from(d.phase.as_str()))
            .chain(
                d.children
                    .iter()
                    .map(|c| Cow::from(format!("{}[{}]", d.phase, c.key))),
            )
            .collect(),
        EventData::AttemptStarted(d) => vec![Cow::from(d.phase.as_str())],
        EventData::AttemptSucceeded(d) => vec![Cow::from(d.phase.as_str())],
        EventData::AttemptFailed(d) => vec![Cow::from(d.phase.as_str())],
        EventData::PhaseSucceeded(d) => vec![Cow::from(d.phase.as_str())],
        EventData::PhaseFailed(d) => vec![Cow::from(d.phase.as_str())],
        EventData::PhaseSkipped(d) => vec![Cow::from(d.phase.as_str())],
        EventData::LoopStarted(d) => [&d.from, &d.goto]
            .into_iter()
            .chain(&d.reset)
            .map(|n| Cow::from(n.as_str()))
            .collect(),
        EventData::ApprovalRequested(d) => vec![Cow::from(d.phase.as_str())],
        EventData::ApprovalDecided(d) => vec![Cow::from(d.phase.as_str())],
        EventData::ClarificationAnswered(d) => vec![Cow::from(d.phase.as_str())],
        EventData::MergeStep(d) => vec![Cow::from(d.phase.as_str())],
        EventData::RunStarted(_)
        | EventData::RunResumed(_)
        | EventData::CancelRequested(_)
        | EventData::RunSuspended(_)
        | EventData::PolicyDecided(_)
        | EventData::FallbackActivated(_)
        | EventData::AttemptRedelivered(_)
        | EventData::AttemptRecalled(_)
        | EventData::BudgetAlert(_)
        | EventData::NotificationSent(_)
        | EventData::NotificationFailed(_)
        | EventData::IssueCommented(_)
        | EventData::PrOpened(_)
        | EventData::PrUpdated(_)
        | EventData::RunSucceeded(_)
        | EventData::RunFailed(_)
        | EventData::RunCanceled(_) => Vec::new(),
    }
}

/// Keep the `attempts` rows in step with one event (the same rules as `fold_attempts`).
fn apply_attempt(conn: &Connection, event: &Event) -> rusqlite::Result<()> {
    match &event.data {
        EventData::AttemptStarted(d) => {
            conn.prepare_cached(
                "INSERT INTO attempts (run_id, ord, phase, attempt, state, started_at)
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5)
                 ON CONFLICT (run_id, phase, attempt) DO UPDATE SET state = 'running',
                   started_at = excluded.started_at",
            )?
            .execute(params![
                event.run_id,
                to_i64(event.seq),
                d.phase,
                d.attempt,
                event.ts
            ])?;
        }
        EventData::AttemptSucceeded(d) => {
            conn.prepare_cached(
                "INSERT INTO attempts (run_id, ord, phase, attempt, state, exit_code, ended_at, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, 'succeeded', ?5, ?6, ?7)
                 ON CONFLICT (run_id, phase, attempt) DO UPDATE SET state = 'succeeded',
                   exit_code = excluded.exit_code, ended_at = excluded.ended_at,
                   duration_ms = excluded.duration_ms",
            )?
            .execute(params![
                event.run_id,
                to_i64(event.seq),
                d.phase,
                d.attempt,
                d.exit_code,
                event.ts,
                to_i64(d.duration_ms)
            ])?;
        }
        EventData::AttemptFailed(d) => {
            conn.prepare_cached(
                "INSERT INTO attempts (run_id, ord, phase, attempt, state, failure_kind, exit_code, ended_at, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, 'failed', ?5, ?6, ?7, ?8)
                 ON CONFLICT (run_id, phase, attempt) DO UPDATE SET state = 'failed',
                   failure_kind = excluded.failure_kind, exit_code = excluded.exit_code,
                   ended_at = excluded.ended_at, duration_ms = excluded.duration_ms",
            )?
            .execute(params![
                event.run_id,
                to_i64(event.seq),
                d.phase,
                d.attempt,
                failure_kind_str(d.kind),
                d.exit_code,
                event.ts,
                to_i64(d.duration_ms)
            ])?;
        }
        _ => {}
    }
    Ok(())
}
