//! `spectacular apply <run>`: fast-forward a finished run's base branch to its integration
//! branch, at any time after the run succeeded, through the same code as `run --apply`.

use super::{Context, Exit, Failure, Outcome};
use crate::record::EventData;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id (a unique prefix, or `last`).
    #[arg(default_value = "last")]
    pub run: String,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let store = context.store();
    let (run_id, events) = super::run_events(&store, &args.run)?;
    let ended = events.iter().rev().find_map(|e| match &e.data {
        EventData::RunSucceeded(_) => Some("succeeded"),
        EventData::RunFailed(_) => Some("failed"),
        EventData::RunCanceled(_) => Some("was canceled"),
        _ => None,
    });
    match ended {
        Some("succeeded") => {}
        Some(how) => {
            return Err(Failure::usage(format!(
                "run {run_id} {how}: only the work of a run that succeeded is applied\n  help: \
                 `spectacular status {run_id}` shows what happened"
            )))
        }
        None => {
            return Err(Failure::usage(format!(
                "run {run_id} has not finished: only the work of a run that succeeded is \
                 applied\n  help: `spectacular resume {run_id} --apply` continues it and applies \
                 its work when it succeeds"
            )))
        }
    }
    match super::run::finish_branches(context, &run_id, true) {
        Ok(lines) => {
            for line in lines {
                outln!("{line}")?;
            }
            Ok(Exit::Success)
        }
        Err(error) => Err(Failure {
            exit: Exit::RunFailed,
            message: error.to_string(),
        }),
    }
}
