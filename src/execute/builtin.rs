//! Built-in steps (`uses: builtin/<name>`), run in-process. Each writes only inside its
//! attempt directory; the engine wraps them with the same timeout and cancellation as
//! processes.

use std::fmt::Write as _;
use std::path::{Component, Path};
use std::time::Duration;

use serde_json::Value;

use crate::model::FailureKind;

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
    /// The run's directory (its `events.jsonl`), for steps that read the run so far.
    pub run_dir: &'a Path,
    pub project_root: &'a Path,
    /// `with:`, rendered.
    pub with: &'a Value,
    pub stdout: &'a Path,
    pub run_id: &'a str,
    pub mission: &'a str,
    pub report: &'a [ReportRow],
}

pub type Failure = (FailureKind, String);

fn text<'a>(with: &'a Value, key: &str) -> Option<&'a str> {
    with.get(key).and_then(Value::as_str)
}

fn write(path: &Path, content: &str) -> Result<(), Failure> {
    if let Some(parent) = path.parent() {
        super::make_dir(parent).map_err(|e| {
            (
                FailureKind::Exit,
                format!("creating `{}`: {e}", parent.display()),
            )
        })?;
    }
    std::fs::write(path, content).map_err(|e| {
        (
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
        return Err((
            FailureKind::Exit,
            format!("`{relative}` must be a relative path inside the attempt directory"),
        ));
    }
    let full = super::outputs::relative_under(ctx.attempt_dir, relative)
        .map_err(|e| (FailureKind::Exit, e.to_string()))?;
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent).map_err(|e| (FailureKind::Exit, e.to_string()))?;
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
            Err((FailureKind::Exit, message.to_string()))
        }
        "sleep" => {
            let duration = match ctx.with.get("duration") {
                Some(Value::String(d)) => {
                    crate::model::parse_duration(d).map_err(|e| (FailureKind::Exit, e))?
                }
                _ => Duration::from_secs(1),
            };
            tokio::time::sleep(duration).await;
            write(
                ctx.stdout,
                &format!("slept {}\n", crate::model::format_duration(duration)),
            )
        }
        "write" => {
            let path = text(ctx.with, "path")
                .ok_or((FailureKind::Exit, "builtin/write needs `with.path`".into()))?;
            let content = match ctx.with.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => serde_json::to_string_pretty(other).unwrap_or_default(),
                None => String::new(),
            };
            write(&inside(&ctx, path)?, &content)
        }
        "analyse-spec" => analyse_spec(&ctx),
        "report" => report(&ctx),
        "learn" => learn(&ctx).await,
        other => Err((
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
    let path = if Path::new(spec).is_absolute() {
        Path::new(spec).to_path_buf()
    } else {
        ctx.project_root.join(spec)
    };
    let (config, config_diagnostics) =
        crate::spec::AnalysisConfig::load(ctx.project_root, ctx.project_root);
    let mut analysis = crate::spec::analyse_file(&path, spec, Some(ctx.project_root), &config)
        .map_err(|e| {
            (
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
        return Err((
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
    let (written, found) = learned.map_err(|e| (FailureKind::Exit, e))?;
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
