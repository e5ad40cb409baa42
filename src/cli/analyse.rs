//! `spectacular analyse <spec>`: the structure of a spec, every diagnostic, the complexity
//! with every signal, and the questions for its author.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{Context, Exit, Failure, Outcome};
use crate::diag::{render_text, RenderOptions};
use crate::project::display_path;
use crate::spec::{analyse_file, Analysis, AnalysisConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spec: a Markdown file (Spec Kit `spec.md`, Kiro `requirements.md`, a free-form
    /// brief or issue text).
    pub spec: PathBuf,
    /// Print the analysis as JSON (a stable shape).
    #[arg(long)]
    pub json: bool,
    /// The repository the spec is about (default: the project root).
    #[arg(long, value_name = "DIR", conflicts_with = "no_repo")]
    pub repo: Option<PathBuf>,
    /// Analyse the spec alone, without looking at a repository.
    #[arg(long)]
    pub no_repo: bool,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let path = context.cwd.join(&args.spec);
    if !path.is_file() {
        return Err(Failure::usage(format!(
            "the spec `{}` does not exist or is not a file",
            args.spec.display()
        )));
    }
    let name = display_path(&path, &context.cwd);
    let project = &context.project;
    let (config, config_diagnostics) = AnalysisConfig::load(&project.root, &context.cwd);
    let repo = if args.no_repo {
        None
    } else {
        Some(
            args.repo
                .as_ref()
                .map(|r| context.cwd.join(r))
                .unwrap_or_else(|| project.root.clone()),
        )
    };
    let mut analysis = analyse_file(&path, &name, repo.as_deref(), &config)
        .map_err(|e| Failure::usage(format!("failed to read `{name}`: {e}")))?;
    analysis.add_diagnostics(config_diagnostics);
    if args.json {
        print!("{}", analysis.to_json());
    } else {
        print!(
            "{}",
            render(
                &analysis,
                RenderOptions {
                    color: context.color_stdout
                }
            )
        );
    }
    Ok(if analysis.has_errors() {
        Exit::Invalid
    } else {
        Exit::Success
    })
}

/// The analysis for people: structure, diagnostics, complexity, questions.
pub fn render(a: &Analysis, options: RenderOptions) -> String {
    let mut out = String::new();
    let s = &a.summary;
    let title = a
        .title
        .as_deref()
        .map(|t| format!(" \"{t}\""))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {} spec{title}, {} lines, {} words",
        a.spec,
        a.format.as_str(),
        s.lines,
        s.words
    );
    let mut parts = vec![count(s.requirements, "requirement", "requirements")];
    if s.constraints > 0 {
        parts.push(count(s.constraints, "constraint", "constraints"));
    }
    parts.push(count(s.criteria, "criterion", "criteria"));
    if s.stories > 0 {
        parts.push(count(s.stories, "user story", "user stories"));
    }
    if s.scenarios > 0 {
        parts.push(count(s.scenarios, "scenario", "scenarios"));
    }
    if s.edge_cases > 0 {
        parts.push(count(s.edge_cases, "edge case", "edge cases"));
    }
    parts.push(count(s.clarifications, "question", "questions"));
    let _ = writeln!(out, "  {}", parts.join(", "));
    if s.requirements > 0 {
        let _ = writeln!(
            out,
            "  coverage: {} of {} requirements covered by a criterion",
            s.requirements - s.uncovered,
            s.requirements
        );
    }
    if let Some(r) = &a.repository {
        let _ = writeln!(
            out,
            "  repository: {} files walked{}, {} match the spec",
            r.files,
            r.stopped
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default(),
            r.matched_files
        );
    }
    out.push('\n');
    let diagnostics = render_text(&a.diagnostics_found, options);
    if !diagnostics.is_empty() {
        out.push_str(&diagnostics);
        out.push('\n');
    }
    match &a.tier_hint {
        Some(label) => {
            let _ = writeln!(
                out,
                "complexity {:.2} ({}, from the label `{label}`)",
                a.complexity,
                a.tier.as_str()
            );
        }
        None => {
            let _ = writeln!(out, "complexity {:.2} ({})", a.complexity, a.tier.as_str());
        }
    }
    for (name, d) in &a.dimensions {
        let _ = writeln!(
            out,
            "  {:<15} {:.2} × {:.2}  {}",
            name.replace('_', " "),
            d.score,
            d.weight,
            d.signals.join("; ")
        );
    }
    if !a.questions.is_empty() {
        let _ = writeln!(out, "\nquestions");
        for q in &a.questions {
            let about = q
                .requirement
                .as_deref()
                .map(|r| format!("{r}, "))
                .unwrap_or_default();
            let _ = writeln!(out, "  {} ({about}line {}): {}", q.id, q.line, q.question);
        }
    }
    out
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
