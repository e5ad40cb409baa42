//! The dashboard's buttons: each runs the `spectacular` command a person would type
//! (`approve`, `answer`, `cancel`), so it takes the same path as the CLI: the inbox of an
//! engine that runs the run, else the run's log under its lock. The dashboard never records
//! an event itself. When no engine runs a run that an approval or the last answer lets go
//! on, it starts `spectacular resume` for it, in a process group of its own so that the run
//! outlives the dashboard.

use std::process::{Command, Stdio};

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, resolve, AppState, Error, Writer};
use crate::record::{self, RunStatus};

#[derive(Deserialize)]
pub(crate) struct ApproveBody {
    phase: String,
    #[serde(default = "yes")]
    approve: bool,
    comment: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
pub(crate) struct AnswerBody {
    phase: String,
    question: u32,
    answer: String,
}

pub(crate) async fn approve(
    _: Writer,
    State(state): State<AppState>,
    Path(run): Path<String>,
    Json(body): Json<ApproveBody>,
) -> Result<Json<Value>, Error> {
    let settings = state.settings.clone();
    blocking(move || {
        let run_id = resolve(&settings.store, &run)?;
        // Options first, values attached, then `--`: a text that starts with `-` stays text.
        let mut args = vec!["approve".to_string()];
        if !body.approve {
            args.push("--reject".into());
        }
        if let Some(comment) = body.comment.filter(|c| !c.trim().is_empty()) {
            args.push(format!("--comment={comment}"));
        }
        args.extend(["--".to_string(), run_id.clone(), body.phase]);
        let said = cli(&settings, &args)?;
        let resumed = resume_if_stopped(&settings, &run_id, false)?;
        let said = if resumed { first_line(&said) } else { said };
        Ok(Json(json!({ "message": said, "resumed": resumed })))
    })
    .await
}

pub(crate) async fn answer(
    _: Writer,
    State(state): State<AppState>,
    Path(run): Path<String>,
    Json(body): Json<AnswerBody>,
) -> Result<Json<Value>, Error> {
    let settings = state.settings.clone();
    blocking(move || {
        let run_id = resolve(&settings.store, &run)?;
        let args = [
            "answer".to_string(),
            format!("--phase={}", body.phase),
            "--".into(),
            run_id.clone(),
            body.question.to_string(),
            body.answer,
        ];
        let said = cli(&settings, &args)?;
        let resumed = resume_if_stopped(&settings, &run_id, true)?;
        let said = if resumed { first_line(&said) } else { said };
        Ok(Json(json!({ "message": said, "resumed": resumed })))
    })
    .await
}

pub(crate) async fn cancel(
    _: Writer,
    State(state): State<AppState>,
    Path(run): Path<String>,
) -> Result<Json<Value>, Error> {
    let settings = state.settings.clone();
    blocking(move || {
        let run_id = resolve(&settings.store, &run)?;
        let said = cli(&settings, &["cancel".into(), "--".into(), run_id])?;
        Ok(Json(json!({ "message": said, "resumed": false })))
    })
    .await
}

/// What the command said, without its advice on how to continue (the dashboard continued).
fn first_line(said: &str) -> String {
    said.lines().next().unwrap_or_default().to_string()
}

/// The `spectacular` command line for the dashboard's store.
fn command(settings: &super::Settings, args: &[String]) -> Command {
    let mut command = Command::new(&settings.exe);
    command
        .arg("--color")
        .arg("never")
        .arg("--store")
        .arg(&settings.store.dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// Run a command to its end: what it printed, or its error (a usage error, like approving a
/// gate that does not wait, is refused with the CLI's own message).
fn cli(settings: &super::Settings, args: &[String]) -> Result<String, Error> {
    let output = command(settings, args)
        .output()
        .map_err(|e| Error::Internal(format!("cannot run `{}`: {e}", settings.exe.display())))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if output.status.success() {
        return Ok(stdout);
    }
    let message = stderr
        .strip_prefix("error: ")
        .unwrap_or(&stderr)
        .to_string();
    match output.status.code() {
        Some(2) => Err(Error::Refused(message)),
        _ => Err(Error::Internal(message)),
    }
}

/// When no engine runs `run_id` and it stopped to wait (suspended, or running with no engine
/// once its gate is decided) with nothing left to wait on (after an answer: no question of the phase still open), start `spectacular
/// resume` for it. Whether it was started.
fn resume_if_stopped(
    settings: &super::Settings,
    run_id: &str,
    after_answer: bool,
) -> Result<bool, Error> {
    let store = &settings.store;
    if record::lock::is_locked(&store.run_dir(run_id)) {
        return Ok(false);
    }
    let events = store.read_events(run_id)?;
    let summary = record::fold(&events);
    // A run that waits is `suspended`; once its last gate is decided it reads `running`,
    // with no engine to run it.
    if !matches!(summary.status, RunStatus::Suspended | RunStatus::Running) {
        return Ok(false);
    }
    if after_answer {
        let open = super::api::waiting(&events).iter().any(|w| {
            w["questions"].as_array().is_some_and(|qs| {
                !qs.is_empty() && qs.iter().any(|q| q["answered"] == json!(false))
            })
        });
        if open {
            return Ok(false);
        }
    }
    let mut resume = command(settings, &["resume".to_string(), run_id.to_string()]);
    resume.stdout(Stdio::null()).stderr(Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        resume.process_group(0);
    }
    let mut child = resume
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot run `{}`: {e}", settings.exe.display())))?;
    // Reap it when it ends; the run's log says how.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(true)
}
