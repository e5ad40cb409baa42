//! The task of one attempt, spawned by the event loop: it runs the process, the built-in step or
//! the agent's fallback chain, checks and promotes the declared outputs, and reports the
//! attempt's `attempt.succeeded` or `attempt.failed`.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::fallback::run_agent;
use super::prepare::{Job, Work};
use super::*;
use crate::model::FailureKind;
use crate::record::event::*;

pub(super) async fn run_job(job: Job, mut cancel: watch::Receiver<u8>) -> EventData {
    let began = Instant::now();
    // The agent that ran: the chain's first, or the one a fallback moved to.
    let agent_name = std::sync::Mutex::new(
        job.agent
            .as_ref()
            .and_then(|a| a.candidates.first())
            .map(|c| c.agent.clone()),
    );
    let failed = |kind, message: String, exit_code, usage: Option<Box<crate::agents::Usage>>| {
        EventData::AttemptFailed(AttemptFailed {
            phase: job.phase.clone(),
            attempt: job.attempt,
            kind,
            message,
            exit_code,
            duration_ms: began.elapsed().as_millis() as u64,
            agent: agent_name.lock().ok().and_then(|a| a.clone()),
            usage,
        })
    };
    let limit = job
        .timeout
        .map(crate::model::format_duration)
        .unwrap_or_default();
    if let Some(reservation) = &job.reservation {
        // Off the event loop: another run may hold the ledger's lock for a while.
        let super::prepare::Reservation {
            shared,
            run_id,
            key,
            estimate,
        } = reservation;
        let (shared, run_id, key, estimate) =
            (shared.clone(), run_id.clone(), key.clone(), *estimate);
        let reserved = tokio::task::spawn_blocking(move || shared.reserve(&run_id, &key, estimate));
        tokio::select! {
            reserved = reserved => match reserved {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return failed(FailureKind::Budget, e.to_string(), None, None),
                Err(e) => return failed(FailureKind::Budget, format!("budget: {e}"), None, None),
            },
            _ = canceled(cancel.clone()) => {
                return failed(FailureKind::Canceled, "canceled".into(), None, None)
            }
        }
    }
    let mut exit_code = None;
    let mut usage = None;
    // The agent's answer (its result text), for agent phases.
    let mut result = None;
    match &job.work {
        Work::Process(spec) => {
            if let Some(agent) = &job.agent {
                match run_agent(&job, agent, spec, &cancel, &limit).await {
                    Ok(ran) => {
                        exit_code = ran.exit_code;
                        usage = ran.usage;
                        result = ran.text.map(|t| cap_result(&t));
                        if let Ok(mut a) = agent_name.lock() {
                            *a = Some(ran.agent);
                        }
                    }
                    Err(f) => {
                        if let Ok(mut a) = agent_name.lock() {
                            *a = Some(f.agent.clone());
                        }
                        return failed(f.kind, f.message, f.exit_code, f.usage);
                    }
                }
            } else {
                match process::run(spec.clone(), cancel.clone()).await {
                    process::Ended::TimedOut => {
                        return failed(
                            FailureKind::Timeout,
                            format!("timed out after {limit}"),
                            None,
                            None,
                        )
                    }
                    process::Ended::Canceled => {
                        return failed(FailureKind::Canceled, "canceled".into(), None, None)
                    }
                    process::Ended::SpawnFailed(message) => {
                        return failed(FailureKind::Spawn, message, None, None)
                    }
                    process::Ended::Exited { code: Some(0), .. } => exit_code = Some(0),
                    process::Ended::Exited {
                        code: Some(code), ..
                    } => {
                        let stderr = spec.stderr.clone();
                        // Up to `OUTPUT_CAP` bytes to read: off the event loop.
                        let tail = tokio::task::spawn_blocking(move || tail(&stderr))
                            .await
                            .unwrap_or_default();
                        return failed(
                            FailureKind::Exit,
                            format!("exited with code {code}{tail}"),
                            Some(code),
                            None,
                        );
                    }
                    process::Ended::Exited { signal, .. } => {
                        let signal = signal.unwrap_or(0);
                        return failed(
                            FailureKind::Exit,
                            format!("killed by signal {signal}"),
                            None,
                            None,
                        );
                    }
                }
            }
        }
        Work::Builtin {
            step,
            with,
            project_root,
            stdout,
            run_id,
            mission,
            report,
        } => {
            let ctx = builtin::Ctx {
                attempt_dir: &job.dir,
                project_root,
                with,
                stdout,
                run_id,
                mission,
                report,
            };
            let timeout = job.timeout.unwrap_or(Duration::from_secs(u64::MAX / 4));
            let canceled = async {
                loop {
                    if *cancel.borrow() >= process::CANCEL {
                        return;
                    }
                    if cancel.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                result = builtin::run(step, ctx) => {
                    if let Err((kind, message)) = result {
                        return failed(kind, message, None, None);
                    }
                }
                _ = tokio::time::sleep(timeout) => {
                    return failed(FailureKind::Timeout, format!("timed out after {limit}"), None, None);
                }
                _ = canceled => return failed(FailureKind::Canceled, "canceled".into(), None, None),
            }
        }
    }
    // Copying and fsyncing outputs is blocking work: off the event loop.
    let promoted = {
        let (outputs, paths, dir, run_dir, phase, base) = (
            job.outputs.clone(),
            job.output_paths.clone(),
            job.dir.clone(),
            job.run_dir.clone(),
            job.phase.clone(),
            job.base.clone(),
        );
        tokio::task::spawn_blocking(move || {
            outputs::promote(&outputs, &paths, &dir, &run_dir, &phase, &base)
        })
        .await
    };
    let promoted = match promoted {
        Ok(promoted) => promoted,
        Err(e) => {
            return failed(
                FailureKind::OutputInvalid,
                format!("promoting the outputs failed: {e}; this is a bug in spectacular"),
                exit_code,
                usage,
            )
        }
    };
    match promoted {
        Ok(promoted) => EventData::AttemptSucceeded(AttemptSucceeded {
            phase: job.phase.clone(),
            attempt: job.attempt,
            exit_code,
            duration_ms: began.elapsed().as_millis() as u64,
            artifacts: promoted.artifacts,
            values: promoted.values,
            agent: agent_name.lock().ok().and_then(|a| a.clone()),
            usage,
            result,
        }),
        Err(e) => failed(FailureKind::OutputInvalid, e.to_string(), exit_code, usage),
    }
}

/// The last lines of a captured stream, for failure messages.
fn tail(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(3);
    format!(": {}", lines[start..].join(" / "))
}

/// Resolves once the attempt is asked to stop.
async fn canceled(mut cancel: watch::Receiver<u8>) {
    while *cancel.borrow() < process::CANCEL {
        if cancel.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The most of an agent's answer recorded in `attempt.succeeded`.
pub const RESULT_CAP: usize = 64 * 1024;

/// An agent's answer, cut at [`RESULT_CAP`] bytes (on a character boundary) with a note.
fn cap_result(text: &str) -> String {
    if text.len() <= RESULT_CAP {
        return text.to_string();
    }
    let mut end = RESULT_CAP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[spectacular: answer truncated at {RESULT_CAP} bytes]",
        &text[..end]
    )
}
