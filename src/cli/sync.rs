//! `spectacular sync status|diagnose|push`: what this project's event queue holds for the
//! control plane, why, and sending it now.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::{Context, Exit, Failure, Outcome};
use crate::sync::{self, Client, ClientError, Cursor, Settings, State};

const EXAMPLES_STATUS: &str = "\
Examples:
  # What is pending, and what the last push met
  spectacular sync status
  # As JSON, for tools
  spectacular sync status --json";
const EXAMPLES_DIAGNOSE: &str = "\
Examples:
  # Why events are pending or rejected (exit code 1 when something is wrong)
  spectacular sync diagnose
  # Of the project whose store is elsewhere
  spectacular sync diagnose --store ../app/.spectacular";
const EXAMPLES_PUSH: &str = "\
Examples:
  # Send what is pending now
  spectacular sync push
  # Then check that nothing is left
  spectacular sync status";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// What is pending, and what the last push met.
    #[command(after_help = EXAMPLES_STATUS)]
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the settings, the token and the control plane, and explain what is pending and why.
    #[command(after_help = EXAMPLES_DIAGNOSE)]
    Diagnose,
    /// Send the pending events now (whatever the backoff says).
    #[command(after_help = EXAMPLES_PUSH)]
    Push,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let store = context.store();
    let settings = Settings::load(&store).map_err(|e| match e {
        sync::Error::Config { .. } => Failure {
            exit: Exit::Invalid,
            message: e.to_string(),
        },
        e => Failure::usage(e.to_string()),
    })?;
    match args.action {
        Action::Status { json } => status(&store, &settings, json),
        Action::Diagnose => diagnose(&store, &settings),
        Action::Push => push(&store, &settings),
    }
}

fn queue_error(e: sync::Error) -> Failure {
    match e {
        sync::Error::Busy(_) => Failure::usage(e.to_string()),
        e => Failure::internal(e.to_string()),
    }
}

/// Pending events per run, and runs whose log cannot be read.
type Queue = (Vec<(String, usize)>, Vec<(String, String)>);

fn queue(store: &crate::record::store::Store, settings: &Settings) -> Result<Queue, Failure> {
    let cursor = Cursor::load(&settings.dir).map_err(queue_error)?;
    let (runs, broken) = sync::pending(store, &cursor, &BTreeMap::new());
    let runs = runs
        .into_iter()
        .filter(|p| !p.events.is_empty())
        .map(|p| (p.run_id, p.events.len()))
        .collect();
    Ok((runs, broken))
}

fn status(store: &crate::record::store::Store, settings: &Settings, as_json: bool) -> Outcome {
    let (runs, broken) = queue(store, settings)?;
    let state = State::load(&settings.dir).map_err(queue_error)?;
    let pending: usize = runs.iter().map(|(_, n)| n).sum();
    if as_json {
        let value = json!({
            "url": settings.url,
            "project": settings.project,
            "team": settings.team,
            "pending": pending,
            "runs": runs.iter().map(|(r, n)| json!({"run_id": r, "pending": n})).collect::<Vec<_>>(),
            "unreadable": broken.iter().map(|(r, e)| json!({"run_id": r, "error": e})).collect::<Vec<_>>(),
            "state": state,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        )?;
        return Ok(Exit::Success);
    }
    let team = settings
        .team
        .as_deref()
        .map(|t| format!(", team `{t}`"))
        .unwrap_or_default();
    outln!(
        "sync to {} as project `{}`{team}",
        settings.url,
        settings.project
    )?;
    outln!("pending: {pending} event(s) in {} run(s)", runs.len())?;
    for (run, n) in &runs {
        outln!("  {run}: {n}")?;
    }
    for (run, e) in &broken {
        outln!("  {run}: its log cannot be read, nothing of it is sent: {e}")?;
    }
    match (&state.last_problem, &state.last_success) {
        (Some(p), _) => outln!(
            "last push failed at {} ({} in a row): {}",
            p.at,
            state.failures,
            first_line(&p.message)
        )?,
        (None, Some(ok)) => outln!("last push succeeded at {ok}")?,
        (None, None) => outln!("nothing pushed yet")?,
    }
    outln!(
        "answered so far: {} accepted, {} duplicate(s), {} rejected",
        state.accepted,
        state.duplicates,
        state.rejected_total
    )?;
    if state.rejected_total > 0 || state.last_problem.is_some() {
        outln!("`spectacular sync diagnose` says why")?;
    }
    Ok(Exit::Success)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

fn diagnose(store: &crate::record::store::Store, settings: &Settings) -> Outcome {
    let mut healthy = true;
    outln!(
        "settings: sync to {} as project `{}`",
        settings.url,
        settings.project
    )?;
    match Client::of(settings, Duration::from_secs(10)).and_then(|c| c.budget(&settings.project)) {
        Ok(b) => {
            outln!(
                "control plane: reachable, and it takes the token in {}",
                settings.token_env
            )?;
            if b.over {
                outln!(
                    "fleet budget: over (${:.4} of ${:.2} in {}){}",
                    b.spent_usd,
                    b.limit_usd.unwrap_or(0.0),
                    b.month,
                    if settings.enforce_budget {
                        "; agent attempts are refused"
                    } else {
                        ""
                    }
                )?;
            }
        }
        Err(e) => {
            healthy = false;
            let what = match &e {
                ClientError::Unreachable { .. } => "control plane: DOWN or unreachable",
                ClientError::NoToken(_) | ClientError::Token { .. } => "token: REFUSED or missing",
                _ => "control plane: FAILING",
            };
            outln!("{what}\n  {e}")?;
        }
    }
    let (runs, broken) = queue(store, settings)?;
    let state = State::load(&settings.dir).map_err(queue_error)?;
    let pending: usize = runs.iter().map(|(_, n)| n).sum();
    if pending > 0 {
        healthy = false;
        let why = match &state.last_problem {
            Some(p) => format!("the last push failed at {}: {}", p.at, p.message),
            None => {
                "not pushed yet (a run pushes every 2 s; `spectacular sync push` sends now)".into()
            }
        };
        outln!(
            "pending: {pending} event(s) in {} run(s): {why}",
            runs.len()
        )?;
        if let Some(t) = state.retry_after_unix {
            outln!(
                "  next automatic try after {} (backoff after {} failure(s))",
                ts(t),
                state.failures
            )?;
        }
    } else {
        outln!("pending: nothing")?;
    }
    for (run, e) in &broken {
        healthy = false;
        outln!("unreadable log of run {run}: nothing of it is sent\n  {e}")?;
    }
    if !state.rejected.is_empty() {
        healthy = false;
        outln!(
            "rejected: {} event(s) the control plane refused (sending them again gives the same answer); the newest:",
            state.rejected_total
        )?;
        for r in state.rejected.iter().rev().take(20) {
            outln!(
                "  run {} seq {} ({}, {}): {}",
                r.run_id,
                r.seq,
                r.kind,
                r.event_id,
                sync::one_line(&r.reason)
            )?;
        }
    }
    Ok(if healthy {
        Exit::Success
    } else {
        Exit::RunFailed
    })
}

fn ts(unix: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(unix);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn push(store: &crate::record::store::Store, settings: &Settings) -> Outcome {
    let report = sync::push(
        store,
        settings,
        Duration::from_secs(30),
        &mut BTreeMap::new(),
    )
    .map_err(queue_error)?;
    outln!(
        "sent: {} accepted, {} duplicate(s), {} rejected; {} pending",
        report.accepted,
        report.duplicates,
        report.rejected,
        report.pending
    )?;
    for (run, e) in &report.unreadable {
        eoutln!("run {run}: its log cannot be read, nothing of it was sent: {e}");
    }
    if let Some(problem) = report.problem {
        return Err(Failure {
            exit: Exit::RunFailed,
            message: problem,
        });
    }
    if report.rejected > 0 {
        eoutln!("`spectacular sync diagnose` lists the rejected events with their reasons");
    }
    Ok(Exit::Success)
}
