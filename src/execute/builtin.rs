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

/// One line of the run summary given to `builtin/report`.
#[derive(Clone, Debug)]
pub struct ReportRow {
    pub phase: String,
    pub state: String,
    pub attempts: u32,
    pub artifacts: Vec<String>,
}

pub struct Ctx<'a> {
    pub attempt_dir: &'a Path,
    pub project_root: &'a Path,
    /// `with:`, rendered.
    pub with: &'a Value,
    pub stdout: &'a Path,
    pub run_id: &'a str,
    pub mission: &'a str,
    pub report: &'a [ReportRow],
    /// How the engine runs a process for this attempt (environment, process ledger, timeout,
    /// grace period); `builtin/check` runs its commands with it.
    pub process: &'a process::Spec,
    /// The attempt's cancellation (see [`process::run`]).
    pub cancel: watch::Receiver<u8>,
    /// The run's secrets, for what a step writes of a command's output.
    pub redactor: &'a Redactor,
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
                    .map_err(|e| Failure::new(FailureKind::Exit, e))?,
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
        "report" => report(&ctx),
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
    let spec = text(ctx.with, "spec")
        .ok_or_else(|| Failure::new(FailureKind::Exit, "builtin/analyse-spec needs `with.spec`"))?;
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
            "{diagnostics}complexity {} ({}), {} requirements, {} questions\n",
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

fn report(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let mut out = String::new();
    let _ = writeln!(out, "# Run {} of `{}`\n", ctx.run_id, ctx.mission);
    let _ = writeln!(out, "| phase | state | attempts | artifacts |");
    let _ = writeln!(out, "|---|---|---|---|");
    for row in ctx.report {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.phase,
            row.state,
            row.attempts,
            row.artifacts.join(", ")
        );
    }
    write(&ctx.attempt_dir.join("report.md"), &out)?;
    write(ctx.stdout, &out)
}
