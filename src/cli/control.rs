//! `spectacular approve` and `spectacular cancel`: decisions from people. When an engine runs
//! the run, they go through its inbox (it stays the only writer); otherwise they are recorded
//! directly under the run's lock.

use super::{Context, Exit, Failure, Outcome};
use crate::execute::inbox::{self, Command};
use crate::record::event::{ApprovalDecided, CancelRequested, EventData, RunFinished};
use crate::record::{fold, PhaseState, RunLog, RunStatus};

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The run id (a unique prefix, or `last`).
    pub run: String,
    /// The approval gate.
    pub phase: String,
    /// Reject instead of approve.
    #[arg(long)]
    pub reject: bool,
    /// A comment recorded with the decision.
    #[arg(long)]
    pub comment: Option<String>,
    /// Resume the run right away (when no engine is running it).
    #[arg(long)]
    pub resume: bool,
    /// With --resume: stream events as JSON lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The run id (a unique prefix, or `last`).
    pub run: String,
}

pub fn approve(context: &Context, args: ApproveArgs) -> Outcome {
    let store = context.store();
    let run_id = store
        .resolve_run(&args.run)
        .map_err(|e| Failure::usage(e.to_string()))?;
    if let Some(why) = inbox::inside_attempt(&store) {
        return Err(Failure::usage(format!(
            "approvals come from people, and this one comes from inside a run: {why}; nothing \
             was recorded (approve from your own terminal)"
        )));
    }
    let actor = inbox::actor();
    let verdict = if args.reject { "rejected" } else { "approved" };
    match RunLog::open(&store, &run_id) {
        Err(crate::record::Error::Locked { pid, .. }) => {
            let summary = fold(
                &store
                    .read_events(&run_id)
                    .map_err(|e| Failure::internal(e.to_string()))?,
            );
            check_waiting(&summary, &args.phase)?;
            let command = Command::Approve {
                phase: args.phase.clone(),
                approved: !args.reject,
                comment: args.comment.clone(),
                actor,
            };
            inbox::send(&store.run_dir(&run_id), &command)
                .map_err(|e| Failure::internal(format!("writing to the run's inbox: {e}")))?;
            let holder = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            outln!(
                "{verdict} `{}`; the running engine{holder} continues the run",
                args.phase
            )?;
            Ok(Exit::Success)
        }
        Err(e) => Err(Failure::internal(e.to_string())),
        Ok((mut log, events)) => {
            let summary = fold(&events);
            check_waiting(&summary, &args.phase)?;
            let causation = log.last_event_id().map(str::to_string);
            log.append(
                EventData::ApprovalDecided(ApprovalDecided {
                    phase: args.phase.clone(),
                    approved: !args.reject,
                    comment: args.comment.clone(),
                    timed_out: false,
                }),
                &actor,
                causation.as_deref(),
            );
            log.commit().map_err(|e| Failure::internal(e.to_string()))?;
            drop(log);
            if let Ok(mut projection) = store.projection() {
                let _ = projection.apply(&[]);
            }
            outln!("{verdict} `{}`", args.phase)?;
            if args.resume {
                return super::run::resume(
                    context,
                    super::run::ResumeArgs {
                        run: run_id,
                        upgrade: false,
                        json: args.json,
                        apply: false,
                        interactive: false,
                        nats: std::env::var(crate::execute::distributed::NATS_ENV).ok(),
                    },
                );
            }
            outln!("continue the run with `spectacular resume {run_id}`")?;
            Ok(Exit::Success)
        }
    }
}

/// The gates of a run waiting for a decision.
pub(super) fn waiting_gates(summary: &crate::record::RunSummary) -> Vec<&str> {
    summary
        .phases
        .values()
        .filter(|p| p.state == PhaseState::Waiting)
        .map(|p| p.phase.as_str())
        .collect()
}

fn check_waiting(summary: &crate::record::RunSummary, phase: &str) -> Result<(), Failure> {
    let waiting = waiting_gates(summary);
    let help = match waiting.as_slice() {
        [] => "no gate of this run is waiting".to_string(),
        [gate] => format!(
            "the gate waiting is `{gate}`: `spectacular approve {} {gate}`",
            summary.run_id
        ),
        _ => format!("waiting: {}", crate::diag::one_of(&waiting)),
    };
    match summary.phases.get(phase) {
        Some(p) if p.state == PhaseState::Waiting => Ok(()),
        Some(p) => Err(Failure::usage(format!(
            "phase `{phase}` is not waiting for approval (it is {})\n  help: {help}",
            p.state.as_str()
        ))),
        None => Err(Failure::usage(format!(
            "run `{}` has no phase `{phase}` waiting for approval\n  help: {help}",
            summary.run_id
        ))),
    }
}

pub fn cancel(context: &Context, args: CancelArgs) -> Outcome {
    let store = context.store();
    let run_id = store
        .resolve_run(&args.run)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let actor = inbox::actor();
    match RunLog::open(&store, &run_id) {
        Err(crate::record::Error::Locked { pid, .. }) => {
            inbox::send(
                &store.run_dir(&run_id),
                &Command::Cancel {
                    actor,
                    reason: Some("canceled from the command line".into()),
                },
            )
            .map_err(|e| Failure::internal(format!("writing to the run's inbox: {e}")))?;
            let holder = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            outln!("cancel requested; the running engine{holder} stops the run's attempts")?;
            Ok(Exit::Success)
        }
        Err(e) => Err(Failure::internal(e.to_string())),
        Ok((mut log, events)) => {
            let summary = fold(&events);
            if summary.status.is_terminal() && summary.status != RunStatus::Suspended {
                return Err(Failure::usage(format!(
                    "run `{run_id}` already {}",
                    summary.status.as_str()
                )));
            }
            // No engine: kill what a dead engine may have left running, then record.
            for phase in summary
                .phases
                .values()
                .filter(|p| p.state == PhaseState::Running)
            {
                crate::execute::process::kill_orphan_group(
                    &store.run_dir(&run_id).join("pids"),
                    &crate::execute::process::tag(&phase.phase, phase.attempts),
                );
            }
            let causation = log.last_event_id().map(str::to_string);
            let requested = log.append(
                EventData::CancelRequested(CancelRequested {
                    reason: Some("canceled from the command line".into()),
                }),
                &actor,
                causation.as_deref(),
            );
            log.append(
                EventData::RunCanceled(RunFinished {
                    failed: Vec::new(),
                    reason: Some("canceled while no engine ran it".into()),
                }),
                "engine",
                Some(&requested.event_id),
            );
            log.commit().map_err(|e| Failure::internal(e.to_string()))?;
            drop(log);
            if let Ok(mut projection) = store.projection() {
                let _ = projection.apply(&[]);
            }
            outln!("run {run_id} canceled; `spectacular resume {run_id}` continues it later")?;
            Ok(Exit::Success)
        }
    }
}
