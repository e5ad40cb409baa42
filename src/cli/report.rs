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
