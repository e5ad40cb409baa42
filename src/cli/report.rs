//! `spectacular report [run]`: a run's report (`report.md`, or `report.json` with `--json`),
//! built again from its log: the same as `builtin/report` writes, at any time.

use super::{Context, Exit, Failure, Outcome};
use crate::query::report;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id (a unique prefix, or `last`); the latest run when omitted.
    pub run: Option<String>,
    /// Print `report.json` (the schema: `spectacular schema report`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let store = context.store();
    let run_id = store
        .resolve_run(args.run.as_deref().unwrap_or("last"))
        .map_err(|e| Failure::usage(e.to_string()))?;
    let events = store
        .read_events(&run_id)
        .map_err(|e| Failure::internal(e.to_string()))?;
    let built = report::report(&events);
    if args.json {
        out!("{}", report::json(&built))?;
    } else {
        out!("{}", super::printable(&report::markdown(&built)))?;
    }
    Ok(Exit::Success)
}

/// After a run ended: the `report.md` and `report.json` its `builtin/report` phases wrote while
/// it ran (their attempt directories and promoted artifacts) are written again from the whole
/// log, so that what is left on disk says how the run ended. Returns the `report.md` to point
/// to (the promoted one, else the attempt's), if there is one.
pub fn finalize(store: &crate::record::Store, run_id: &str) -> Option<std::path::PathBuf> {
    use crate::record::EventData;
    let events = store.read_events(run_id).ok()?;
    // Deliveries to webhooks, comments and pull requests may be recorded after the event
    // that ended the run.
    let ended = events
        .iter()
        .rfind(|e| !e.data.is_after_the_fact())
        .is_some_and(|e| {
            matches!(
                e.data,
                EventData::RunSucceeded(_) | EventData::RunFailed(_) | EventData::RunCanceled(_)
            )
        });
    if !ended {
        return None;
    }
    let steps: std::collections::HashSet<String> = crate::query::mission_phases(&events)
        .into_iter()
        .filter(|p| p.uses.as_deref() == Some("builtin/report"))
        .map(|p| p.id)
        .collect();
    let built = report::report(&events);
    let (markdown, json) = (report::markdown(&built), report::json(&built));
    let run_dir = store.run_dir(run_id);
    let mut shown = None;
    for event in &events {
        let EventData::AttemptSucceeded(d) = &event.data else {
            continue;
        };
        let top = crate::record::fold::parent_of(&d.phase).unwrap_or(&d.phase);
        if !steps.contains(top) {
            continue;
        }
        let attempt = d.attempt.to_string();
        let mut files = Vec::new();
        if let Ok(dir) =
            crate::record::store::join_under(&run_dir, &["attempts", &d.phase, &attempt])
        {
            files.push((dir.join("report.md"), false));
            files.push((dir.join("report.json"), false));
        }
        for path in d.artifacts.values() {
            let parts: Vec<&str> = path.split('/').collect();
            if let Ok(file) = crate::record::store::join_under(&run_dir, &parts) {
                files.push((file, true));
            }
        }
        for (file, promoted) in files {
            let (text, is_markdown) = match file.file_name().and_then(|n| n.to_str()) {
                Some("report.md") => (&markdown, true),
                Some("report.json") => (&json, false),
                _ => continue,
            };
            if !file.is_file() || rewrite(&file, text).is_err() {
                continue;
            }
            if is_markdown && (promoted || shown.is_none()) {
                shown = Some(file);
            }
        }
    }
    shown
}

/// Replace `path` with `text`, whole (a reader never sees half of it).
fn rewrite(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let temp = path.with_extension("final.tmp");
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, path)
}
