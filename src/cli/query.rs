//! `spectacular status`, `runs`, `events` and `replay`: reading runs, never changing them.

use std::time::Duration;

use super::{Context, Exit, Failure, Outcome};
use crate::query;
use crate::record::{fold, Event, Store};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The run id (a unique prefix, or `last`); the latest run when omitted.
    pub run: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The run id (a unique prefix, or `last`).
    pub run: String,
    /// Keep printing new events until the run ends or stops.
    #[arg(long)]
    pub follow: bool,
    /// Print each event as a JSON line (the log's own format).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The run id (a unique prefix, or `last`).
    pub run: String,
    /// Check that the SQLite projection equals the fold of the log; exit 1 if it does not.
    #[arg(long)]
    pub verify: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn resolve(store: &Store, run: Option<&str>) -> Result<String, Failure> {
    store
        .resolve_run(run.unwrap_or("last"))
        .map_err(|e| Failure::usage(e.to_string()))
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::internal(e.to_string())
}

pub fn status(context: &Context, args: StatusArgs) -> Outcome {
    let store = context.store();
    let run_id = resolve(&store, args.run.as_deref())?;
    let summary = query::summary(&store, &run_id).map_err(internal)?;
    let engine_running = crate::record::lock::is_locked(&store.run_dir(&run_id));
    if args.json {
        let mut json = query::status_json(&summary);
        json["engine_running"] = serde_json::Value::Bool(engine_running);
        outln!("{}", serde_json::to_string_pretty(&json).map_err(internal)?)?;
    } else {
        out!("{}", query::status_text(&summary))?;
        if summary.status == crate::record::RunStatus::Running && !engine_running {
            outln!(
                "no engine is running this run; continue it with `spectacular resume {run_id}`"
            )?;
        }
    }
    Ok(Exit::Success)
}

/// The runs in the store. A run whose log cannot be read is listed as `damaged`, its error
/// goes to stderr, and the command exits with code 70 after listing every other run.
pub fn runs(context: &Context, args: RunsArgs) -> Outcome {
    let store = context.store();
    let (projection, damaged) = store.projection_checked().map_err(internal)?;
    let rows = projection.runs().map_err(internal)?;
    if args.json {
        let mut list: Vec<(String, serde_json::Value)> = rows
            .iter()
            .map(|r| {
                let row = serde_json::json!({
                    "run_id": r.run_id, "mission": r.mission, "status": r.status,
                    "started_at": r.started_at, "ended_at": r.ended_at, "events": r.last_seq,
                });
                (r.run_id.clone(), row)
            })
            .collect();
        for (run_id, e) in &damaged {
            let row = serde_json::json!({
                "run_id": run_id, "status": "damaged", "error": e.to_string(),
            });
            list.push((run_id.clone(), row));
        }
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let list: Vec<serde_json::Value> = list.into_iter().map(|(_, row)| row).collect();
        outln!("{}", serde_json::to_string_pretty(&list).map_err(internal)?)?;
        return finish_runs(context, &damaged);
    }
    if rows.is_empty() && damaged.is_empty() {
        outln!(
            "no runs yet in `{}`",
            crate::project::display_path(&store.dir, &context.cwd)
        )?;
        return Ok(Exit::Success);
    }
    let mut lines: Vec<(String, String)> = rows
        .into_iter()
        .map(|r| {
            let line = format!(
                "{:26}  {:20}  {:10}  {}",
                r.run_id,
                r.mission,
                r.status,
                r.started_at.unwrap_or_default()
            );
            (r.run_id, line)
        })
        .collect();
    for (run_id, _) in &damaged {
        lines.push((run_id.clone(), format!("{run_id:26}  {:20}  damaged", "?")));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    outln!("{:26}  {:20}  {:10}  STARTED", "RUN", "MISSION", "STATUS")?;
    for (_, line) in lines {
        outln!("{}", line.trim_end())?;
    }
    finish_runs(context, &damaged)
}

/// Report the damaged runs of `runs` on stderr; exit 70 when there is one.
fn finish_runs(context: &Context, damaged: &[(String, crate::record::Error)]) -> Outcome {
    if damaged.is_empty() {
        return Ok(Exit::Success);
    }
    for (run_id, e) in damaged {
        eoutln!(
            "{}",
            context.error_line(&format!("run `{run_id}` cannot be read: {e}"))
        );
    }
    Ok(Exit::Internal)
}

fn print_events(events: &[Event], json: bool) -> Result<(), Failure> {
    let mut text = String::new();
    for e in events {
        if json {
            text.push_str(&e.to_json_line());
        } else {
            text.push_str(&query::timeline_line(e));
        }
        text.push('\n');
        if text.len() >= 64 * 1024 {
            out!("{text}")?;
            text.clear();
        }
    }
    out!("{text}")
}

pub fn events(context: &Context, args: EventsArgs) -> Outcome {
    let store = context.store();
    let run_id = resolve(&store, Some(&args.run))?;
    let mut seen = 0usize;
    loop {
        let events = store.read_events(&run_id).map_err(internal)?;
        if events.len() > seen {
            print_events(&events[seen..], args.json)?;
            seen = events.len();
        }
        if !args.follow {
            return Ok(Exit::Success);
        }
        let ended = events.last().is_some_and(|e| {
            e.data.is_terminal() || matches!(e.data, crate::record::EventData::RunSuspended(_))
        });
        if ended {
            return Ok(Exit::Success);
        }
        if !crate::record::lock::is_locked(&store.run_dir(&run_id)) {
            // The engine stopped: print what it wrote after our last read, then stop too.
            let events = store.read_events(&run_id).map_err(internal)?;
            if events.len() > seen {
                print_events(&events[seen..], args.json)?;
            }
            return Ok(Exit::Success);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn replay(context: &Context, args: ReplayArgs) -> Outcome {
    let store = context.store();
    let run_id = resolve(&store, Some(&args.run))?;
    let events = store.read_events(&run_id).map_err(internal)?;
    let summary = fold(&events);
    if !args.verify {
        if args.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&query::status_json(&summary)).map_err(internal)?
            )?;
        } else {
            print_events(&events, false)?;
            outln!()?;
            out!("{}", query::status_text(&summary))?;
        }
        return Ok(Exit::Success);
    }
    let projection = store.projection().map_err(internal)?;
    let differences = projection.verify(&run_id, &events).map_err(internal)?;
    if differences.is_empty() {
        outln!(
            "run {run_id}: the projection matches the log ({} events)",
            events.len()
        )?;
        Ok(Exit::Success)
    } else {
        outln!("run {run_id}: the projection differs from the log:")?;
        for d in &differences {
            outln!("  {d}")?;
        }
        outln!(
            "delete `{}` to rebuild it from the logs",
            crate::project::display_path(&store.db_path(), &context.cwd)
        )?;
        Ok(Exit::RunFailed)
    }
}
