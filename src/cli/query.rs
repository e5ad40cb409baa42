//! `spectacular status`, `runs`, `events` and `replay`: reading runs, never changing them.

use std::io::Write;
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
        println!("{}", serde_json::to_string_pretty(&json).map_err(internal)?);
    } else {
        print!("{}", query::status_text(&summary));
        if summary.status == crate::record::RunStatus::Running && !engine_running {
            println!(
                "no engine is running this run; continue it with `spectacular resume {run_id}`"
            );
        }
    }
    Ok(Exit::Success)
}

pub fn runs(context: &Context, args: RunsArgs) -> Outcome {
    let store = context.store();
    let rows = match store.projection() {
        Ok(projection) => projection.runs().map_err(internal)?,
        Err(e) => return Err(internal(e)),
    };
    if args.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "run_id": r.run_id, "mission": r.mission, "status": r.status,
                    "started_at": r.started_at, "ended_at": r.ended_at, "events": r.last_seq,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list).map_err(internal)?);
        return Ok(Exit::Success);
    }
    if rows.is_empty() {
        println!(
            "no runs yet in `{}`",
            crate::project::display_path(&store.dir, &context.cwd)
        );
        return Ok(Exit::Success);
    }
    println!("{:26}  {:20}  {:10}  STARTED", "RUN", "MISSION", "STATUS");
    for r in rows {
        println!(
            "{:26}  {:20}  {:10}  {}",
            r.run_id,
            r.mission,
            r.status,
            r.started_at.unwrap_or_default()
        );
    }
    Ok(Exit::Success)
}

fn print_events(events: &[Event], json: bool) {
    let mut out = std::io::stdout().lock();
    for e in events {
        let line = if json {
            e.to_json_line()
        } else {
            query::timeline_line(e)
        };
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

pub fn events(context: &Context, args: EventsArgs) -> Outcome {
    let store = context.store();
    let run_id = resolve(&store, Some(&args.run))?;
    let mut seen = 0usize;
    loop {
        let events = store.read_events(&run_id).map_err(internal)?;
        if events.len() > seen {
            print_events(&events[seen..], args.json);
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
                print_events(&events[seen..], args.json);
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
            println!(
                "{}",
                serde_json::to_string_pretty(&query::status_json(&summary)).map_err(internal)?
            );
        } else {
            print_events(&events, false);
            println!();
            print!("{}", query::status_text(&summary));
        }
        return Ok(Exit::Success);
    }
    let projection = store.projection().map_err(internal)?;
    let differences = projection.verify(&run_id, &events).map_err(internal)?;
    if differences.is_empty() {
        println!(
            "run {run_id}: the projection matches the log ({} events)",
            events.len()
        );
        Ok(Exit::Success)
    } else {
        println!("run {run_id}: the projection differs from the log:");
        for d in &differences {
            println!("  {d}");
        }
        println!(
            "delete `{}` to rebuild it from the logs",
            crate::project::display_path(&store.db_path(), &context.cwd)
        );
        Ok(Exit::RunFailed)
    }
}
