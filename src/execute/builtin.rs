//! Built-in steps (`uses: builtin/<name>`), run in-process. Each writes only inside its
//! attempt directory; the engine wraps them with the same timeout and cancellation as
//! processes.

use std::fmt::Write as _;
use std::path::{Component, Path};
use std::time::Duration;

use serde_json::{json, Value};

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
        other => Err((
            FailureKind::Spawn,
            format!("unknown built-in step `builtin/{other}`"),
        )),
    }
}

const RISK_WORDS: &[&str] = &[
    "auth",
    "login",
    "password",
    "token",
    "payment",
    "billing",
    "admin",
    "secret",
    "encrypt",
    "migration",
    "database",
    "concurren",
    "security",
    "permission",
    "compliance",
    "privacy",
];
const VAGUE_WORDS: &[&str] = &[
    "maybe",
    "somehow",
    "etc",
    "tbd",
    "todo",
    "probably",
    "some",
    "should probably",
    "as needed",
];

/// Scores a Markdown spec: size, structure, requirements, risky areas and vagueness.
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
    let source = std::fs::read_to_string(&path).map_err(|e| {
        (
            FailureKind::Exit,
            format!("cannot read the spec `{}`: {e}", path.display()),
        )
    })?;
    let lower = source.to_lowercase();
    let words = source.split_whitespace().count();
    let sections = source
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .count();
    let requirements = source
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            l.starts_with("- ")
                || l.starts_with("* ")
                || l.split_once(". ")
                    .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .count();
    let musts = ["must", "shall", "required"]
        .iter()
        .map(|w| lower.matches(w).count())
        .sum::<usize>();
    let risks: Vec<&str> = RISK_WORDS
        .iter()
        .copied()
        .filter(|w| lower.contains(w))
        .collect();
    let vague = VAGUE_WORDS
        .iter()
        .map(|w| lower.matches(w).count())
        .sum::<usize>()
        + lower.matches('?').count();
    let ratio = |n: usize, full: f64| (n as f64 / full).min(1.0);
    let complexity = (0.1
        + 0.25 * ratio(words, 2000.0)
        + 0.25 * ratio(requirements + musts, 40.0)
        + 0.1 * ratio(sections, 12.0)
        + 0.3 * ratio(risks.len(), 4.0))
    .clamp(0.0, 1.0);
    let complexity = (complexity * 100.0).round() / 100.0;
    let ambiguity = (ratio(vague, 10.0) * 100.0).round() / 100.0;
    let tier = if complexity < 0.3 {
        "low"
    } else if complexity < 0.7 {
        "medium"
    } else {
        "high"
    };
    let analysis = json!({
        "spec": spec,
        "words": words,
        "sections": sections,
        "requirements": requirements,
        "musts": musts,
        "risk_areas": risks,
        "ambiguity": ambiguity,
        "complexity": complexity,
        "tier": tier,
    });
    let text = serde_json::to_string_pretty(&analysis).unwrap_or_default();
    write(&ctx.attempt_dir.join("analysis.json"), &format!("{text}\n"))?;
    write(
        ctx.stdout,
        &format!("complexity {complexity} ({tier}), {words} words, {requirements} requirements\n"),
    )
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
