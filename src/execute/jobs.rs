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
use crate::record::limits;
use crate::record::redact::Redactor;

pub(super) async fn run_job(job: Job, cancel: watch::Receiver<u8>) -> EventData {
    // A view of the repository is the attempt's only: removed however the attempt ended.
    let view = job.view.clone();
    let ended = run_attempt(job, cancel).await;
    if let Some(view) = view {
        let checked = tokio::task::spawn_blocking(move || view.remove()).await;
        match (checked, &ended) {
            // The view was changed under the engine: the attempt's work is not trusted.
            (Ok(Err(e)), EventData::AttemptSucceeded(done))
                if !matches!(e, crate::git::guard::Tampered::Git(_)) =>
            {
                return EventData::AttemptFailed(AttemptFailed {
                    phase: done.phase.clone(),
                    attempt: done.attempt,
                    kind: FailureKind::Tampered,
                    message: format!(
                        "the view of the repository was changed under the engine: {e}; only \
                         its directory was removed, nothing of yours was touched"
                    ),
                    exit_code: done.exit_code,
                    duration_ms: done.duration_ms,
                    agent: done.agent.clone(),
                    usage: done.usage.clone(),
                    files: Vec::new(),
                });
            }
            (Ok(Err(e)), _) => tracing::warn!("the view of the repository: {e}"),
            _ => {}
        }
    }
    ended
}

async fn run_attempt(job: Job, mut cancel: watch::Receiver<u8>) -> EventData {
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
            files: Vec::new(),
        })
    };
    let failed_on = |kind, message: String, files: Vec<String>| {
        let mut event = failed(kind, message, None, None);
        if let EventData::AttemptFailed(f) = &mut event {
            f.files = files;
        }
        event
    };
    let limit = job
        .timeout
        .map(crate::model::format_duration)
        .unwrap_or_default();
    let worktree = match prepare_attempt(&job, &cancel).await {
        Ok(worktree) => worktree,
        Err((kind, message)) => return failed(kind, message, None, None),
    };
    let mut exit_code = None;
    let mut usage = None;
    // What `builtin/merge` reports (the integration branch, its head…).
    let mut merge_values = serde_json::Map::new();
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
                match run_plain(&job, spec, &cancel, &limit).await {
                    Ok(code) => exit_code = code,
                    Err((kind, message, code)) => return failed(kind, message, code, None),
                }
            }
        }
        Work::Merge(merge) => {
            tokio::select! {
                ran = merge.clone().run(cancel.clone()) => match ran {
                    Ok(values) => merge_values = values,
                    Err((kind, message, files)) => return failed_on(kind, message, files),
                },
                _ = canceled(cancel.clone()) => {
                    return failed(FailureKind::Canceled, "canceled".into(), None, None)
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
            process,
            clarifications,
        } => {
            let ctx = builtin::Ctx {
                attempt_dir: &job.dir,
                run_dir: &job.run_dir,
                project_root,
                with,
                stdout,
                run_id,
                mission,
                process,
                cancel: cancel.clone(),
                redactor: &job.redactor,
                clarifications,
            };
            // A step that runs processes stops them itself (through their group).
            let limited = !builtin::stops_itself(step);
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
                    if let Err(failure) = result {
                        return with_files(failed(failure.kind, failure.message, None, None), failure.files);
                    }
                }
                _ = tokio::time::sleep(timeout), if limited => {
                    return failed(FailureKind::Timeout, format!("timed out after {limit}"), None, None);
                }
                _ = canceled, if limited => return failed(FailureKind::Canceled, "canceled".into(), None, None),
            }
        }
    }
    let mut promoted = match promote_outputs(&job, usage.as_deref()).await {
        Ok(promoted) => promoted,
        Err((kind, message, files)) => {
            return with_files(failed(kind, message, exit_code, usage), files)
        }
    };
    for (name, value) in merge_values {
        promoted.values.entry(name).or_insert(value);
    }
    // Commit what the attempt left on its branch, with provenance.
    let mut git = None;
    if let Some(worktree) = worktree {
        let agent = agent_name.lock().ok().and_then(|a| a.clone());
        let spent = usage.clone();
        let committed = git_blocking(&cancel, move || {
            worktree.commit(agent.as_deref(), spent.as_deref())
        })
        .await;
        match committed {
            Ok(Ok(work)) => git = Some(Box::new(work)),
            Ok(Err((kind, e))) => return failed(kind, e, exit_code, usage),
            Err(e) => {
                return failed(
                    FailureKind::Exit,
                    format!("committing: {e}"),
                    exit_code,
                    usage,
                )
            }
        }
    }
    // An integration attempt leaves the branch where it found it: what it checked is what
    // `--apply` applies.
    let mut integration_head = None;
    if let Some(guard) = job.integration.clone() {
        let head = guard.head.clone();
        match git_blocking(&cancel, move || guard.verify(true)).await {
            Ok(Ok(())) => integration_head = Some(head),
            Ok(Err((kind, e))) => return failed(kind, e, exit_code, usage),
            Err(e) => {
                return failed(
                    FailureKind::Spawn,
                    format!("worktree: {e}"),
                    exit_code,
                    usage,
                )
            }
        }
    }
    EventData::AttemptSucceeded(AttemptSucceeded {
        phase: job.phase.clone(),
        attempt: job.attempt,
        exit_code,
        duration_ms: began.elapsed().as_millis() as u64,
        artifacts: promoted.artifacts,
        values: promoted.values,
        agent: agent_name.lock().ok().and_then(|a| a.clone()),
        usage,
        result,
        git,
        integration_head,
    })
}

/// Before an attempt runs: the fleet's say, its reservation in the budgets shared with other
/// runs, its workspace made ready (returned for a worktree attempt: it commits what the attempt
/// Collect and promote the attempt's outputs, its plan priced at the model that ran (copying
/// and fsyncing is blocking work: off the event loop); why they are not acceptable, with the
/// files at fault.
async fn promote_outputs(
    job: &Job,
    usage: Option<&crate::agents::Usage>,
) -> Result<outputs::Promoted, (FailureKind, String, Vec<String>)> {
    if job.outputs.is_empty() && job.out_dir.is_none() {
        // Nothing declared, nothing to collect: no trip to the blocking pool.
        return Ok(outputs::Promoted::default());
    }
    let promoted = {
        let out_dir = job.out_dir.clone();
        let (outputs, paths, dir, run_dir, phase, base, redactor) = (
            job.outputs.clone(),
            job.output_paths.clone(),
            job.dir.clone(),
            job.run_dir.clone(),
            job.phase.clone(),
            job.base.clone(),
            job.redactor.clone(),
        );
        let model = usage.and_then(|u| u.model.clone());
        // An agent with no model and no reported cost (a `command` agent) is not priced: its
        // plan gets no estimate from some other model's prices.
        let unpriced = usage.is_some_and(|u| u.model.is_none() && u.cost_usd.is_none());
        tokio::task::spawn_blocking(move || {
            // Written inside the workspace: into the attempt directory, out of the commit.
            if let Some(out) = &out_dir {
                outputs::collect(out, &dir, &paths);
            }
            let mut promoted =
                outputs::promote(&outputs, &paths, &dir, &run_dir, &phase, &base, &redactor);
            if let Ok(promoted) = &mut promoted {
                price_plan(&mut promoted.values, &run_dir, model.as_deref(), unpriced);
            }
            promoted
        })
        .await
    };
    match promoted {
        Ok(Ok(promoted)) => Ok(promoted),
        Ok(Err(e)) => Err((e.failure_kind(), e.to_string(), e.files())),
        Err(e) => Err((
            FailureKind::OutputInvalid,
            format!("promoting the outputs failed: {e}; this is a bug in spectacular"),
            Vec::new(),
        )),
    }
}

/// leaves), and its outputs directory, empty. Off the event loop wherever it blocks.
async fn prepare_attempt(
    job: &Job,
    cancel: &watch::Receiver<u8>,
) -> Result<Option<super::worktree::WorktreeJob>, (FailureKind, String)> {
    if let Some(gate) = job.fleet.clone() {
        // Off the event loop: the control plane may be slow to answer.
        let asked = tokio::task::spawn_blocking(move || gate.check());
        tokio::select! {
            asked = asked => if let Ok(Err(refused)) = asked {
                return Err((FailureKind::Budget, refused.to_string()));
            },
            _ = canceled(cancel.clone()) => {
                return Err((FailureKind::Canceled, "canceled".into()))
            }
        }
    }
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
                Ok(Err(e)) => return Err((FailureKind::Budget, e.to_string())),
                Err(e) => return Err((FailureKind::Budget, format!("budget: {e}"))),
            },
            _ = canceled(cancel.clone()) => {
                return Err((FailureKind::Canceled, "canceled".into()))
            }
        }
    }
    // For a worktree attempt: the worktree, reset, with what the attempt starts from merged in
    // (off the event loop).
    let mut worktree = None;
    if let Some(prepared) = &job.worktree {
        let mut prepared = prepared.clone();
        match git_blocking(cancel, move || prepared.prepare().map(|()| prepared)).await {
            Ok(Ok(ready)) => worktree = Some(ready),
            Ok(Err((kind, e))) => return Err((kind, e)),
            Err(e) => return Err((FailureKind::Spawn, format!("worktree: {e}"))),
        }
    }
    // For an integration attempt: the branch at the head the merge recorded.
    if let Some(guard) = job.integration.clone() {
        match git_blocking(cancel, move || guard.verify(false)).await {
            Ok(Ok(())) => {}
            Ok(Err((kind, e))) => return Err((kind, e)),
            Err(e) => return Err((FailureKind::Spawn, format!("worktree: {e}"))),
        }
    }
    if let Some(view) = &job.view {
        let view = view.clone();
        match git_blocking(cancel, move || view.prepare()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err((FailureKind::Spawn, e.to_string())),
            Err(e) => return Err((FailureKind::Spawn, format!("view: {e}"))),
        }
    }
    // The outputs directory inside a repository workspace, empty.
    if let Some(out) = &job.out_dir {
        let dir = out.clone();
        match tokio::task::spawn_blocking(move || outputs::prepare_out(&dir)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let message = format!("making the outputs directory `{}`: {e}", out.display());
                return Err((FailureKind::Spawn, message));
            }
            Err(e) => return Err((FailureKind::Spawn, format!("outputs: {e}"))),
        }
    }
    Ok(worktree)
}

/// Run a `run:` or `shell:` phase's process: its exit code, or why the attempt failed (with
/// the exit code it failed with). Its captured output is redacted of the run's secrets.
async fn run_plain(
    job: &Job,
    spec: &process::Spec,
    cancel: &watch::Receiver<u8>,
    limit: &str,
) -> Result<Option<i32>, (FailureKind, String, Option<i32>)> {
    let ended = run_process(job, spec.clone(), cancel.clone()).await;
    let printed = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.len() > 0);
    if !job.redactor.is_empty() && (printed(&spec.stdout) || printed(&spec.stderr)) {
        // A phase may print a secret it read elsewhere: its captured output is
        // redacted like the record (off the event loop).
        let (files, redactor) = (
            [spec.stdout.clone(), spec.stderr.clone()],
            job.redactor.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            for file in &files {
                redact_file(file, &redactor);
            }
        })
        .await;
    }
    match ended {
        process::Ended::TimedOut => Err((
            FailureKind::Timeout,
            format!("timed out after {limit}"),
            None,
        )),
        process::Ended::Canceled => Err((FailureKind::Canceled, "canceled".into(), None)),
        process::Ended::SpawnFailed(message) => {
            // A program that is not there will not be there after a backoff.
            let kind = match spec.argv.first() {
                Some(program) if super::preflight::missing(program, &spec.cwd) => {
                    FailureKind::Unavailable
                }
                _ => FailureKind::Spawn,
            };
            Err((kind, message, None))
        }
        process::Ended::Exited { code: Some(0), .. } => Ok(Some(0)),
        process::Ended::Exited {
            code: Some(code), ..
        } => {
            let (stderr, redactor) = (spec.stderr.clone(), job.redactor.clone());
            let full_at = relative_to(&job.run_dir, &spec.stderr);
            // Up to `OUTPUT_CAP` bytes to read: off the event loop.
            let message = tokio::task::spawn_blocking(move || {
                with_tail(
                    format!("exited with code {code}"),
                    &stderr,
                    &redactor,
                    &full_at,
                )
            })
            .await
            .unwrap_or_else(|_| format!("exited with code {code}"));
            Err((FailureKind::Exit, message, Some(code)))
        }
        process::Ended::Exited { signal, .. } => {
            let signal = signal.unwrap_or(0);
            Err((
                FailureKind::Exit,
                format!("killed by signal {signal}"),
                None,
            ))
        }
    }
}

/// Run an attempt's process: here, or with NATS on a worker (the files it leaves in the
/// attempt directory come back there), with the same outcome either way.
pub(super) async fn run_process(
    job: &Job,
    spec: process::Spec,
    cancel: watch::Receiver<u8>,
) -> process::Ended {
    match (&job.remote, &job.worktree) {
        (Some((remote, labels)), Some(worktree)) => {
            distributed::package::run(remote, job, worktree, spec, labels, cancel).await
        }
        (Some((remote, labels)), None) if spec.cwd.starts_with(&job.dir) => {
            remote
                .run(spec, &job.dir, labels, (&job.phase, job.attempt), cancel)
                .await
        }
        _ => process::run(spec, cancel).await,
    }
}

/// An `attempt.failed` naming the files its failure is about.
fn with_files(mut event: EventData, files: Vec<String>) -> EventData {
    if let EventData::AttemptFailed(failed) = &mut event {
        failed.files = files;
    }
    event
}

/// `message`, then `: ` and the last lines of a captured stream: redacted and bounded with
/// the message to [`limits::TEXT_MAX`], with a pointer to the file (`full_at`, relative to
/// the run directory) when cut.
fn with_tail(message: String, path: &Path, redactor: &Redactor, full_at: &str) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return message;
    };
    let text = String::from_utf8_lossy(&bytes);
    let tail = limits::stderr_tail(&text, 3, redactor, Some(full_at));
    if tail.is_empty() {
        return message;
    }
    let prefix = format!("{message}: ");
    let over = (prefix.len() + tail.len()).saturating_sub(limits::TEXT_MAX);
    // A cut tail ends with its marker: make room for the message in front of it, keeping the
    // marker (which gives the size of the whole tail and where it is).
    match tail.rfind("…[truncated:") {
        Some(at) if over > 0 => {
            let mut keep = at.saturating_sub(over);
            while !tail.is_char_boundary(keep) {
                keep -= 1;
            }
            format!("{prefix}{}{}", &tail[..keep], &tail[at..])
        }
        _ => format!("{prefix}{tail}"),
    }
}

/// Redact a captured file in place (rewritten only when a secret was found in it).
fn redact_file(path: &Path, redactor: &Redactor) {
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
    if let std::borrow::Cow::Owned(redacted) = redactor.redact(&text) {
        let _ = std::fs::write(path, redacted);
    }
}

/// `path` relative to the run directory, as events name the files of an attempt.
fn relative_to(run_dir: &Path, path: &Path) -> String {
    path.strip_prefix(run_dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Run blocking work that runs git off the event loop, every git it runs killed as soon as
/// the attempt is canceled (a hung `git` never outlives a Ctrl-C; see [`crate::git::ops`]).
pub(super) fn git_blocking<T, F>(cancel: &watch::Receiver<u8>, f: F) -> tokio::task::JoinHandle<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let cancel = cancel.clone();
    tokio::task::spawn_blocking(move || {
        let stop: crate::git::ops::Stop =
            std::sync::Arc::new(move || *cancel.borrow() >= process::CANCEL);
        crate::git::ops::stopping_when(stop, f)
    })
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

/// Beside a checked plan's report, its estimated cost with the model catalogue (the model the
/// planner used, else the catalogue's first `standard` one): a fact recorded once, so that
/// the approval of the plan shows it without reading the catalogue again. A plan written by an
/// `unpriced` agent is recorded as such (`{"unpriced": true}`).
fn price_plan(
    values: &mut std::collections::BTreeMap<String, serde_json::Value>,
    run_dir: &Path,
    model: Option<&str>,
    unpriced: bool,
) {
    let Some(report) = values
        .get(crate::tasks::REPORT_VALUE)
        .and_then(|v| serde_json::from_value::<crate::tasks::PlanReport>(v.clone()).ok())
    else {
        return;
    };
    if unpriced {
        values.insert(
            crate::tasks::ESTIMATE_VALUE.into(),
            serde_json::json!({ "unpriced": true }),
        );
        return;
    }
    // `.spectacular/runs/<run>` → `.spectacular`.
    let Some(dot_dir) = run_dir.parent().and_then(Path::parent) else {
        return;
    };
    let (catalog, _) =
        crate::config::models::load(dot_dir, crate::project::user_config_dir().as_deref());
    if let Some((usd, model)) = crate::tasks::estimate(&report, &catalog, model) {
        values.insert(
            crate::tasks::ESTIMATE_VALUE.into(),
            serde_json::json!({ "usd": usd, "model": model }),
        );
    }
}
