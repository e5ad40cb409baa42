//! The control plane's SQLite projection of the fleet stream: events by id (deduplication),
//! agent calls with their cost, and runs with their provenance. It can be deleted at any time
//! and is rebuilt from the stream (`spectacular serve --rebuild`). Every value goes in and out
//! through bound parameters, never through SQL text.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension as _};
use serde::Serialize;

use crate::record::event::{Event, EventData};

/// Who sent an event, as the batch said (checked).
#[derive(Clone, Debug, Default, serde::Deserialize, Serialize)]
pub struct Origin {
    pub project: String,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
}

pub struct Projection {
    db: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  event_id TEXT PRIMARY KEY, stream_seq INTEGER NOT NULL, project TEXT NOT NULL,
  run_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, ts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
  event_id TEXT PRIMARY KEY, project TEXT NOT NULL, team TEXT NOT NULL, run_id TEXT NOT NULL,
  month TEXT NOT NULL, agent TEXT NOT NULL, model TEXT NOT NULL, usd REAL NOT NULL,
  tokens INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  project TEXT NOT NULL, run_id TEXT NOT NULL, team TEXT, mission TEXT, mission_source TEXT,
  mission_digest TEXT, spec TEXT, git_commit TEXT, engine_version TEXT, user TEXT, host TEXT,
  actor TEXT, started TEXT, outcome TEXT, finished TEXT, PRIMARY KEY (project, run_id));
CREATE TABLE IF NOT EXISTS run_agents (
  project TEXT NOT NULL, run_id TEXT NOT NULL, agent TEXT NOT NULL, model TEXT NOT NULL,
  PRIMARY KEY (project, run_id, agent, model));
";

/// One row of a cost view.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct CostRow {
    pub key: String,
    pub calls: u64,
    pub tokens: u64,
    pub usd: f64,
}

/// One run of the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct AuditRun {
    pub project: String,
    pub team: Option<String>,
    pub run_id: String,
    pub mission: Option<String>,
    pub mission_source: Option<String>,
    pub mission_digest: Option<String>,
    pub spec: Option<String>,
    pub git_commit: Option<String>,
    pub engine_version: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    pub actor: Option<String>,
    pub started: Option<String>,
    pub outcome: Option<String>,
    pub finished: Option<String>,
    /// `agent (model)` of every agent call of the run.
    pub agents: Vec<String>,
    pub usd: f64,
}

/// What a cost view groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    Project,
    Team,
    Agent,
    Model,
}

impl By {
    fn column(self) -> &'static str {
        match self {
            By::Project => "project",
            By::Team => "team",
            By::Agent => "agent",
            By::Model => "model",
        }
    }
}

impl Projection {
    pub fn open(path: &Path) -> rusqlite::Result<Projection> {
        let db = Connection::open(path)?;
        db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        db.execute_batch(SCHEMA)?;
        Ok(Projection { db })
    }

    /// The last stream sequence applied.
    pub fn last_seq(&self) -> rusqlite::Result<u64> {
        let v: Option<i64> = self
            .db
            .query_row("SELECT value FROM meta WHERE key = 'last_seq'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    pub fn has(&self, event_id: &str) -> rusqlite::Result<bool> {
        self.db
            .query_row(
                "SELECT 1 FROM events WHERE event_id = ?1",
                [event_id],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
    }

    /// Apply one event stored at `stream_seq`; `false` when its id was there already.
    pub fn apply(
        &mut self,
        stream_seq: u64,
        origin: &Origin,
        event: &Event,
    ) -> rusqlite::Result<bool> {
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('last_seq', ?1)
             ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
            [stream_seq as i64],
        )?;
        let new = tx.execute(
            "INSERT OR IGNORE INTO events (event_id, stream_seq, project, run_id, seq, type, ts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                event.event_id,
                stream_seq as i64,
                origin.project,
                event.run_id,
                event.seq as i64,
                event.data.type_name(),
                event.ts
            ],
        )? == 1;
        if new {
            apply_facts(&tx, origin, event)?;
        }
        tx.commit()?;
        Ok(new)
    }

    /// Cost grouped `by`, for a month (`YYYY-MM`) or all time, biggest first.
    pub fn cost(&self, by: By, month: Option<&str>) -> rusqlite::Result<Vec<CostRow>> {
        let sql = format!(
            "SELECT {col}, count(*), sum(tokens), sum(usd) FROM calls
             WHERE (?1 IS NULL OR month = ?1) GROUP BY {col} ORDER BY sum(usd) DESC, {col}",
            col = by.column()
        );
        let mut stmt = self.db.prepare(&sql)?;
        let rows = stmt.query_map([month], |r| {
            Ok(CostRow {
                key: r.get(0)?,
                calls: r.get::<_, i64>(1)?.max(0) as u64,
                tokens: r.get::<_, i64>(2)?.max(0) as u64,
                usd: r.get(3)?,
            })
        })?;
        rows.collect()
    }

    /// What `project` spent in `month`.
    pub fn spent(&self, project: &str, month: &str) -> rusqlite::Result<f64> {
        self.db.query_row(
            "SELECT coalesce(sum(usd), 0) FROM calls WHERE project = ?1 AND month = ?2",
            [project, month],
            |r| r.get(0),
        )
    }

    /// The projects that have events.
    pub fn projects(&self) -> rusqlite::Result<Vec<String>> {
        let mut stmt = self
            .db
            .prepare("SELECT DISTINCT project FROM events ORDER BY project")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect()
    }

    /// The newest runs (of one project, or all), at most `limit`.
    pub fn audit(&self, project: Option<&str>, limit: u32) -> rusqlite::Result<Vec<AuditRun>> {
        let mut stmt = self.db.prepare(
            "SELECT project, team, run_id, mission, mission_source, mission_digest, spec,
                    git_commit, engine_version, user, host, actor, started, outcome, finished
             FROM runs WHERE (?1 IS NULL OR project = ?1)
             ORDER BY started DESC, run_id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![project, limit], |r| {
            Ok(AuditRun {
                project: r.get(0)?,
                team: r.get(1)?,
                run_id: r.get(2)?,
                mission: r.get(3)?,
                mission_source: r.get(4)?,
                mission_digest: r.get(5)?,
                spec: r.get(6)?,
                git_commit: r.get(7)?,
                engine_version: r.get(8)?,
                user: r.get(9)?,
                host: r.get(10)?,
                actor: r.get(11)?,
                started: r.get(12)?,
                outcome: r.get(13)?,
                finished: r.get(14)?,
                agents: Vec::new(),
                usd: 0.0,
            })
        })?;
        let mut runs = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        for run in &mut runs {
            let mut stmt = self.db.prepare_cached(
                "SELECT agent, model FROM run_agents WHERE project = ?1 AND run_id = ?2
                 ORDER BY agent, model",
            )?;
            let agents = stmt.query_map([&run.project, &run.run_id], |r| {
                let (agent, model): (String, String) = (r.get(0)?, r.get(1)?);
                Ok(if model.is_empty() {
                    agent
                } else {
                    format!("{agent} ({model})")
                })
            })?;
            run.agents = agents.collect::<rusqlite::Result<_>>()?;
            run.usd = self.db.query_row(
                "SELECT coalesce(sum(usd), 0) FROM calls WHERE project = ?1 AND run_id = ?2",
                [&run.project, &run.run_id],
                |r| r.get(0),
            )?;
        }
        Ok(runs)
    }
}

/// The rows an event adds to the views.
fn apply_facts(
    tx: &rusqlite::Transaction<'_>,
    origin: &Origin,
    event: &Event,
) -> rusqlite::Result<()> {
    let team = origin.team.clone().unwrap_or_default();
    match &event.data {
        EventData::RunStarted(d) => {
            let spec = d.inputs.get("spec").and_then(|v| v.as_str());
            let commit = d.git_base.as_ref().map(|g| g.commit.as_str());
            tx.execute(
                "INSERT OR IGNORE INTO runs (project, run_id, team, mission, mission_source,
                   mission_digest, spec, git_commit, engine_version, user, host, actor, started)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    origin.project,
                    event.run_id,
                    origin.team,
                    d.mission,
                    d.mission_source,
                    d.mission_digest,
                    spec,
                    commit,
                    d.engine_version,
                    origin.user,
                    origin.host,
                    event.actor,
                    event.ts
                ],
            )?;
        }
        EventData::AttemptSucceeded(_) | EventData::AttemptFailed(_) => {
            let (agent, usage) = match &event.data {
                EventData::AttemptSucceeded(d) => (&d.agent, &d.usage),
                EventData::AttemptFailed(d) => (&d.agent, &d.usage),
                _ => unreachable!("matched above"),
            };
            let (Some(agent), Some(usage)) = (agent, usage) else {
                return Ok(());
            };
            let model = usage.model.clone().unwrap_or_default();
            let usd = usage.cost_usd.unwrap_or(0.0);
            let usd = if usd.is_finite() && usd >= 0.0 {
                usd
            } else {
                0.0
            };
            tx.execute(
                "INSERT OR IGNORE INTO calls (event_id, project, team, run_id, month, agent,
                   model, usd, tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    event.event_id,
                    origin.project,
                    team,
                    event.run_id,
                    event.ts.get(..7).unwrap_or(""),
                    agent,
                    model,
                    usd,
                    tokens(usage)
                ],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO run_agents (project, run_id, agent, model)
                 VALUES (?1, ?2, ?3, ?4)",
                params![origin.project, event.run_id, agent, model],
            )?;
        }
        data if data.is_terminal() => {
            tx.execute(
                "UPDATE runs SET outcome = ?3, finished = ?4 WHERE project = ?1 AND run_id = ?2",
                params![
                    origin.project,
                    event.run_id,
                    data.type_name().trim_start_matches("run."),
                    event.ts
                ],
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// All tokens of a usage, saturating (hostile figures never overflow).
fn tokens(usage: &crate::record::usage::Usage) -> i64 {
    let total = usage
        .input_tokens
        .saturating_add(usage.output_tokens)
        .saturating_add(usage.cache_read_tokens)
        .saturating_add(usage.cache_write_tokens);
    total.min(i64::MAX as u64) as i64
}
