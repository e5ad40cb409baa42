//! Built-in steps (`uses: builtin/<name>`), run in-process. Each writes only inside its
//! attempt directory; the engine wraps them with the same timeout and cancellation as
//! processes.

use std::fmt::Write as _;
use std::path::{Component, Path};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::process;
use crate::model::FailureKind;
use crate::record::redact::Redactor;

mod check;

pub struct Ctx<'a> {
    pub attempt_dir: &'a Path,
    /// The run's directory (its `events.jsonl`), for steps that read the run so far.
    pub run_dir: &'a Path,
    pub project_root: &'a Path,
    /// `with:`, rendered.
    pub with: &'a Value,
    pub stdout: &'a Path,
    pub run_id: &'a str,
    pub mission: &'a str,
    /// How the engine runs a process for this attempt (environment, process ledger, timeout,
    /// grace period); `builtin/check` runs its commands with it.
    pub process: &'a process::Spec,
    /// The attempt's cancellation (see [`process::run`]).
    pub cancel: watch::Receiver<u8>,
    /// The run's secrets, for what a step writes of a command's output.
    pub redactor: &'a Redactor,
    /// `builtin/clarify`: the questions answered so far.
    pub clarifications: &'a [crate::schedule::Clarified],
}

/// Does built-in step `name` honour the attempt's timeout and cancellation itself (it runs
/// processes, which must be stopped through their group, not dropped)?
pub fn stops_itself(name: &str) -> bool {
    name == "check"
}

/// Why a built-in step failed, and the files the failure is about (the files the errors of
/// `builtin/check` name), recorded in `attempt.failed`.
#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub files: Vec<String>,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            files: Vec::new(),
        }
    }
}

impl From<(FailureKind, String)> for Failure {
    fn from((kind, message): (FailureKind, String)) -> Failure {
        Failure::new(kind, message)
    }
}

fn text<'a>(with: &'a Value, key: &str) -> Option<&'a str> {
    with.get(key).and_then(Value::as_str)
}

fn write(path: &Path, content: &str) -> Result<(), Failure> {
    if let Some(parent) = path.parent() {
        super::make_dir(parent).map_err(|e| {
            Failure::new(
                FailureKind::Exit,
                format!("creating `{}`: {e}", parent.display()),
            )
        })?;
    }
    std::fs::write(path, content).map_err(|e| {
        Failure::new(
            FailureKind::Exit,
            format!("writing `{}`: {e}", path.display()),
        )
    })
}

fn inside(ctx: &Ctx<'_>, relative: &str) -> Result<std::path::PathBuf, Failure> {
    let path = Path::new(relative);
    if relative.is_empty()
        || path.is_absolute()
        || path.components().any(|c| matches!(c, Component::ParentDir))
    {
        return Err(Failure::new(
            FailureKind::Exit,
            format!("`{relative}` must be a relative path inside the attempt directory"),
        ));
    }
    let full = super::outputs::relative_under(ctx.attempt_dir, relative)
        .map_err(|e| Failure::new(FailureKind::Exit, e.to_string()))?;
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::new(FailureKind::Exit, e.to_string()))?;
    }
    Ok(full)
}

/// Run built-in step `name`.
pub async fn run(name: &str, ctx: Ctx<'_>) -> Result<(), Failure> {
    match name {
        "noop" => Ok(()),
        "echo" => write(
            ctx.stdout,
            &format!("{}\n", text(ctx.with, "message").unwrap_or("")),
        ),
        "fail" => {
            let message = text(ctx.with, "message").unwrap_or("builtin/fail always fails");
            write(ctx.stdout, &format!("{message}\n"))?;
            Err(Failure::new(FailureKind::Exit, message))
        }
        "sleep" => {
            let duration = match ctx.with.get("duration") {
                Some(Value::String(d)) => crate::model::parse_duration(d)
                    .map_err(|e| Failure::new(FailureKind::Exit, e.to_string()))?,
                _ => Duration::from_secs(1),
            };
            tokio::time::sleep(duration).await;
            write(
                ctx.stdout,
                &format!("slept {}\n", crate::model::format_duration(duration)),
            )
        }
        "write" => {
            let path = text(ctx.with, "path").ok_or_else(|| {
                Failure::new(FailureKind::Exit, "builtin/write needs `with.path`")
            })?;
            let content = match ctx.with.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => serde_json::to_string_pretty(other).unwrap_or_default(),
                None => String::new(),
            };
            write(&inside(&ctx, path)?, &content)
        }
        "analyse-spec" => analyse_spec(&ctx),
        "clarify" => clarify(&ctx),
        "report" => report(&ctx).await,
        "learn" => learn(&ctx).await,
        "check" => check::run(&ctx).await,
        other => Err(Failure::new(
            FailureKind::Spawn,
            format!("unknown built-in step `builtin/{other}`"),
        )),
    }
}

/// Analyses a Markdown spec with `spec::analyse` (looking at the project's repository and
/// its `analysis:` config) into `analysis.json`: `complexity` (what `run.complexity` reads),
/// `tier`, `dimensions`, `requirements`, `questions`, `diagnostics`… A spec with errors
/// fails the step, after writing the analysis.
fn analyse_spec(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let spec = text(ctx.with, "spec").ok_or((
        FailureKind::Exit,
        "builtin/analyse-spec needs `with.spec`".into(),
    ))?;
    analyse_into(ctx, spec, "")
}

/// `builtin/clarify`, once its questions are answered (or it had none to ask): the answers
/// written into the spec (`## Clarifications`, markers replaced; written to a temporary file
/// and renamed, and only when something changed), then the spec analysed again into
/// `analysis.json`. Applying the same answers twice changes nothing, so an attempt that is
/// interrupted and run again writes each answer once.
fn clarify(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let spec = text(ctx.with, "spec").ok_or((
        FailureKind::Exit,
        "builtin/clarify needs `with.spec`".into(),
    ))?;
    let path = ctx.project_root.join(spec);
    let mut note = String::new();
    if !ctx.clarifications.is_empty() {
        let original = std::fs::read_to_string(&path).map_err(|e| {
            (
                FailureKind::Exit,
                format!("cannot read the spec `{}`: {e}", path.display()),
            )
        })?;
        let answered: Vec<crate::spec::clarify::Answered> = ctx
            .clarifications
            .iter()
            .map(|c| crate::spec::clarify::Answered {
                question: c.question.clone(),
                answer: c.answer.clone(),
                date: c.date.clone(),
            })
            .collect();
        let updated = crate::spec::clarify::apply(spec, &original, &answered);
        if updated != original {
            let temp = path.with_extension("clarifying");
            std::fs::write(&temp, &updated)
                .and_then(|()| std::fs::File::open(&temp))
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&temp, &path))
                .map_err(|e| {
                    (
                        FailureKind::Exit,
                        format!("writing the answers into `{}`: {e}", path.display()),
                    )
                })?;
        }
        note = format!(
            "wrote {} answer{} into the spec's `## Clarifications`\n",
            answered.len(),
            if answered.len() == 1 { "" } else { "s" }
        );
    }
    analyse_into(ctx, spec, &note)
}

/// Analyse the spec `spec` into `analysis.json`, printing `note` first.
fn analyse_into(ctx: &Ctx<'_>, spec: &str, note: &str) -> Result<(), Failure> {
    let path = if Path::new(spec).is_absolute() {
        Path::new(spec).to_path_buf()
    } else {
        ctx.project_root.join(spec)
    };
    let (config, config_diagnostics) =
        crate::spec::AnalysisConfig::load(ctx.project_root, ctx.project_root);
    let mut analysis = crate::spec::analyse_file(&path, spec, Some(ctx.project_root), &config)
        .map_err(|e| {
            Failure::new(
                FailureKind::Exit,
                format!("cannot read the spec `{}`: {e}", path.display()),
            )
        })?;
    analysis.add_diagnostics(config_diagnostics);
    write(&ctx.attempt_dir.join("analysis.json"), &analysis.to_json())?;
    let diagnostics = crate::diag::render_text(
        &analysis.diagnostics_found,
        crate::diag::RenderOptions::default(),
    );
    write(
        ctx.stdout,
        &format!(
            "{note}{diagnostics}complexity {} ({}), {} requirements, {} questions\n",
            analysis.complexity,
            analysis.tier.as_str(),
            analysis.summary.requirements,
            analysis.questions.len()
        ),
    )?;
    if analysis.has_errors() {
        return Err(Failure::new(
            FailureKind::Exit,
            format!(
                "the spec `{spec}` has {} error(s); `spectacular analyse {spec}` shows them",
                analysis.diagnostics_found.error_count()
            ),
        ));
    }
    Ok(())
}

/// Writes what failed and what fixed it, read from the run's events so far, into the
/// project's learnings (`knowledge::learn`), off the event loop (a lock, an fsync).
async fn learn(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let (root, run_dir, run_id, mission) = (
        ctx.project_root.to_path_buf(),
        ctx.run_dir.to_path_buf(),
        ctx.run_id.to_string(),
        ctx.mission.to_string(),
    );
    let date = crate::record::now_ts()
        .get(..10)
        .unwrap_or_default()
        .to_string();
    let learned = tokio::task::spawn_blocking(move || {
        crate::knowledge::learn::learn(&root, &run_dir, &run_id, &mission, &date)
    })
    .await
    .map_err(|e| {
        (
            FailureKind::Exit,
            format!("builtin/learn stopped: {e}; this is a bug in spectacular"),
        )
    })?;
    let (written, found) = learned.map_err(|e| Failure::new(FailureKind::Exit, e.to_string()))?;
    let mut out = format!(
        "{found} lesson(s) in this run: {} written, {} already known",
        written.written.len(),
        written.known
    );
    if written.dropped > 0 {
        let _ = write!(out, ", {} left out (too many)", written.dropped);
    }
    if let Some(path) = &written.path {
        let shown = path.strip_prefix(ctx.project_root).unwrap_or(path);
        let _ = write!(out, " into `{}`", shown.display());
    }
    write(ctx.stdout, &format!("{out}\n"))
}

/// Writes `report.md` and `report.json` (see `query::report`) from the run's events: every
/// event recorded before the step started is durable (the engine commits the log before it
/// starts a `builtin/report` job), so the report sees the whole run so far. Reading a long log
/// is blocking work: off the event loop.
async fn report(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let failure = |message: String| Failure::new(FailureKind::Exit, message);
    // The attempt directory is `<store>/runs/<run>/attempts/<instance>/<attempt>`.
    let store = ctx
        .attempt_dir
        .ancestors()
        .nth(5)
        .map(|dir| crate::record::Store {
            dir: dir.to_path_buf(),
        })
        .filter(|store| ctx.attempt_dir.starts_with(store.run_dir(ctx.run_id)))
        .ok_or_else(|| {
            failure(format!(
                "`{}` is not inside the run's directory; this is a bug in spectacular",
                ctx.attempt_dir.display()
            ))
        })?;
    let run_id = ctx.run_id.to_string();
    let (dir, stdout) = (ctx.attempt_dir.to_path_buf(), ctx.stdout.to_path_buf());
    let written = tokio::task::spawn_blocking(move || {
        let events = store
            .read_events(&run_id)
            .map_err(|e| failure(format!("reading the run's events: {e}")))?;
        let report = crate::query::report::report(&events);
        let markdown = crate::query::report::markdown(&report);
        write(
            &dir.join("report.json"),
            &crate::query::report::json(&report),
        )?;
        write(&dir.join("report.md"), &markdown)?;
        let summary = format!(
            "wrote report.md and report.json: run {} {}, {} phases, {} work packages, {}\n",
            report.run.run_id,
            report.run.status,
            report.phases.len(),
            report.work_packages.len(),
            crate::query::usd(report.cost.total_usd)
        );
        write(&stdout, &summary)
    })
    .await;
    written.unwrap_or_else(|e| {
        Err(failure(format!(
            "writing the report failed: {e}; this is a bug in spectacular"
        )))
    })
}
