//! `spectacular status`, `runs`, `events` and `replay`: reading runs, never changing them.

use std::time::Duration;

use super::{Context, Exit, Failure, Outcome};
use crate::query;
use crate::record::{Event, Store};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The run id (a unique prefix, or `last`); the latest run when omitted.
    pub run: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub nats: super::from_nats::NatsArgs,
}

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The run id (a unique prefix, or `last`); the latest run when omitted.
    pub run: Option<String>,
    /// Keep printing new events until the run ends or stops.
    #[arg(long)]
    pub follow: bool,
    /// Only events of these types: a full name (`policy.decided`) or its first part
    /// (`attempt` for every `attempt.*`); repeat or separate with commas.
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only events of this phase (a fan-out parent includes its children).
    #[arg(long, value_name = "PHASE")]
    pub phase: Option<String>,
    /// Print each event as a JSON line (the log's own format).
    #[arg(long)]
    pub json: bool,
}

/// Which events `spectacular events` prints.
struct Filter {
    types: Vec<String>,
    phase: Option<String>,
}

impl Filter {
    /// Check the `--type` values against the event types.
    fn new(types: Vec<String>, phase: Option<String>) -> Result<Filter, Failure> {
        let names = crate::record::EventData::TYPE_NAMES;
        for wanted in &types {
            if !names.iter().any(|n| query::type_matches(n, wanted)) {
                let help = crate::diag::did_you_mean(wanted, names.iter().copied())
                    .unwrap_or_else(|| format!("event types: {}", names.join(", ")));
                return Err(Failure::usage(format!(
                    "there is no event type `{wanted}`\n  help: {help}"
                )));
            }
        }
        Ok(Filter { types, phase })
    }

    fn keeps(&self, event: &Event) -> bool {
        let type_ok = self.types.is_empty()
            || self
                .types
                .iter()
                .any(|t| query::type_matches(event.data.type_name(), t));
        let phase_ok = match &self.phase {
            None => true,
            Some(want) => event
                .data
                .phase()
                .is_some_and(|p| query::phase_matches(p, want)),
        };
        type_ok && phase_ok
    }
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
    let wanted: Vec<&str> = args.run.as_deref().into_iter().collect();
    super::from_nats::fetch_missing(&store, args.nats.nats.as_deref(), &wanted)?;
    let run_id = resolve(&store, args.run.as_deref())?;
    let summary = query::summary(&store, &run_id).map_err(internal)?;
    let events = store.read_events(&run_id).map_err(internal)?;
    let engine_running = crate::record::lock::is_locked(&store.run_dir(&run_id));
    if args.json {
        let mut json = query::status_json(&summary, &events);
        json["engine_running"] = serde_json::Value::Bool(engine_running);
        outln!("{}", serde_json::to_string_pretty(&json).map_err(internal)?)?;
    } else {
        let columns = context.stdout_columns();
        out!("{}", query::status_text_fitted(&summary, &events, columns))?;
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
    // Outside a project there is nothing to list, and nothing is created.
    if !store.dir.is_dir() {
        if args.json {
            outln!("[]")?;
        } else {
            outln!(
                "no runs yet in `{}`",
                crate::project::display_path(&store.dir, &context.cwd)
            )?;
        }
        return Ok(Exit::Success);
    }
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
    let mut lines: Vec<[String; 4]> = rows
        .into_iter()
        .map(|r| {
            [
                r.run_id,
                r.mission,
                r.status,
                r.started_at.unwrap_or_default(),
            ]
        })
        .collect();
    for (run_id, _) in &damaged {
        lines.push([run_id.clone(), "?".into(), "damaged".into(), String::new()]);
    }
    lines.sort_by(|a, b| a[0].cmp(&b[0]));
    let header = [
        "RUN".to_string(),
        "MISSION".into(),
        "STATUS".into(),
        "STARTED".into(),
    ];
    let fit = query::Fit {
        columns: context.stdout_columns(),
        notes_below: false,
        shrink: &[1, 3],
    };
    out!("{}", fit.table(&header, &lines, &[]))?;
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

pub(super) fn print_events(events: &[Event], json: bool) -> Result<(), Failure> {
    print_filtered(events, json, &Filter::new(Vec::new(), None)?)
}

fn print_filtered(events: &[Event], json: bool, filter: &Filter) -> Result<(), Failure> {
    let mut text = String::new();
    for e in events.iter().filter(|e| filter.keeps(e)) {
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
    let filter = Filter::new(args.types, args.phase)?;
    let run_id = resolve(&store, args.run.as_deref())?;
    let mut seen = 0usize;
    loop {
        let events = store.read_events(&run_id).map_err(internal)?;
        if events.len() > seen {
            print_filtered(&events[seen..], args.json, &filter)?;
            seen = events.len();
        }
        if !args.follow {
            return Ok(Exit::Success);
        }
        let ended = events
            .iter()
            .rfind(|e| !e.data.is_after_the_fact())
            .is_some_and(|e| {
                e.data.is_terminal() || matches!(e.data, crate::record::EventData::RunSuspended(_))
            });
        let locked = crate::record::lock::is_locked(&store.run_dir(&run_id));
        if ended && locked {
            // The engine may still record its last deliveries and comments: follow until it stops.
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        if ended || !locked {
            // The engine stopped: print what it wrote after our last read, then stop too.
            let events = store.read_events(&run_id).map_err(internal)?;
            if events.len() > seen {
                print_filtered(&events[seen..], args.json, &filter)?;
            }
            return Ok(Exit::Success);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
