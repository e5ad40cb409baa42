//! `spectacular plan [run]`: the checked plan of a run (work packages, dependencies, owned
//! files, coverage, lanes, estimated cost), read from what the run recorded.

use serde_json::json;

use super::{Context, Exit, Failure, Outcome};
use crate::model::FailureKind;
use crate::record::event::EventData;
use crate::tasks::{estimated_cost, summary_text, Cost, PlanReport, ESTIMATE_VALUE, REPORT_VALUE};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<PlanCommand>,
    /// The run id (a unique prefix, or `last`).
    #[arg(default_value = "last")]
    pub run: String,
    /// Price the estimate with this catalogue model (default: the model the run used most,
    /// else the first `standard` model of the catalogue).
    #[arg(long)]
    pub model: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the plan beside the run's spec as Spec Kit's `plan.md` and `tasks.md` (a spec in a
    /// Spec Kit feature directory, `specs/NNN-name/spec.md`; a file the team wrote there is kept
    /// as `<name>.orig`).
    #[arg(long, conflicts_with = "json")]
    pub write: bool,
}

/// The last plan the run recorded: its phase and report; else the problems of the last plan
/// that was refused.
enum Found {
    Plan {
        phase: String,
        report: Box<PlanReport>,
        /// The agent that wrote it has no prices.
        unpriced: bool,
    },
    Refused {
        phase: String,
        attempt: u32,
        message: String,
    },
    Nothing,
}

const EXAMPLES_IMPORT: &str = "\
Examples:
  # Print the work packages of a Spec Kit tasks.md, checked against the spec beside it
  spectacular plan import specs/001-greetings/tasks.md
  # Write them as tasks.json
  spectacular plan import specs/001-greetings/tasks.md --out tasks.json";

#[derive(Debug, clap::Subcommand)]
pub enum PlanCommand {
    /// Read a Spec Kit `tasks.md` as the plan, without an agent: one work package per task
    /// not done, dependencies from its phases and `[P]`, checked against the spec beside it.
    #[command(after_help = EXAMPLES_IMPORT)]
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The Spec Kit `tasks.md` (`specs/NNN-name/tasks.md`).
    pub tasks: std::path::PathBuf,
    /// The spec the plan must cover (default: `spec.md` beside the tasks file).
    #[arg(long)]
    pub spec: Option<std::path::PathBuf>,
    /// Write the work packages (`tasks.json`) there instead of printing them.
    #[arg(long, short)]
    pub out: Option<std::path::PathBuf>,
    /// Print the checked plan as JSON (work packages and report).
    #[arg(long)]
    pub json: bool,
    /// Also write there, in Markdown, what was imported: the phases, the open tasks and the
    /// plan summary (the `plan.md` of a run started with `run spec.md --tasks`).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<std::path::PathBuf>,
}

/// `spectacular plan import`: a Spec Kit `tasks.md` as a checked `tasks.json`.
fn import(context: &Context, args: ImportArgs) -> Outcome {
    let path = context.cwd.join(&args.tasks);
    let shown = args.tasks.display().to_string();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::usage(format!("cannot read `{shown}`: {e}")))?;
    let plan = crate::tasks::speckit::import(&shown, &text).map_err(|e| Failure {
        exit: Exit::Invalid,
        message: e.to_string(),
    })?;
    let spec_path = match &args.spec {
        Some(p) => Some(context.cwd.join(p)),
        None => path
            .parent()
            .map(|d| d.join("spec.md"))
            .filter(|p| p.is_file()),
    };
    let refs = match &spec_path {
        Some(p) => {
            let spec_text = std::fs::read_to_string(p).map_err(|e| {
                Failure::usage(format!("cannot read the spec `{}`: {e}", p.display()))
            })?;
            Some(crate::tasks::refs_from_markdown(&spec_text))
        }
        None => None,
    };
    let bytes = serde_json::to_vec_pretty(&plan).map_err(|e| Failure::internal(e.to_string()))?;
    // The team's plan is checked as any plan; what it does not trace to the spec is said,
    // not refused: the team decides whether to add the ids to its tasks.
    let structure = crate::tasks::check(&bytes, None);
    let checked = match (structure, refs.as_deref()) {
        (Err(problems), _) => Err(problems),
        (Ok(report), None) => Ok(report),
        (Ok(report), Some(refs)) => match crate::tasks::check(&bytes, Some(refs)) {
            Ok(traced) => Ok(traced),
            Err(gaps) => {
                eoutln!(
                    "warning: {shown} does not trace everything to the spec ({} gaps):",
                    gaps.len()
                );
                for gap in &gaps {
                    eoutln!("  - {gap}");
                }
                Ok(report)
            }
        },
    };
    if let Some(out) = &args.out {
        write_new(&context.cwd.join(out), &bytes)?;
    }
    match checked {
        Ok(report) => {
            if let Some(summary) = &args.summary {
                let text = import_summary(&shown, &text, &report);
                write_new(&context.cwd.join(summary), text.as_bytes())?;
            }
            if args.json {
                let value = json!({ "tasks": plan, "plan": report });
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&value)
                        .map_err(|e| Failure::internal(e.to_string()))?
                )?;
            } else if args.out.is_none() {
                outln!("{}", String::from_utf8_lossy(&bytes))?;
            } else {
                outln!("{shown} read as a plan")?;
                out!("{}", summary_text(&report, Cost::Unknown))?;
            }
            Ok(Exit::Success)
        }
        Err(problems) => Err(Failure {
            exit: Exit::Invalid,
            message: crate::tasks::problems_message(&shown, &problems),
        }),
    }
}

/// Write `bytes` at `path`, creating its directory.
fn write_new(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::internal(format!("cannot create `{}`: {e}", dir.display())))?;
    }
    std::fs::write(path, bytes)
        .map_err(|e| Failure::internal(format!("cannot write `{}`: {e}", path.display())))
}

/// What a plan imported from `shown` holds, in Markdown: the plan summary, then each phase
/// with its open tasks and how many were done already.
fn import_summary(shown: &str, text: &str, report: &PlanReport) -> String {
    use std::fmt::Write as _;
    let tasks = crate::tasks::speckit::read_tasks(text);
    let done = tasks.iter().filter(|t| t.done).count();
    let mut out = format!(
        "# Plan\n\nThe team's Spec Kit `{shown}`, taken as the plan without a planner agent: \
         {} open tasks, {done} done already (skipped).\n\n```text\n{}```\n",
        tasks.len() - done,
        summary_text(report, Cost::Unknown)
    );
    let mut phase: Option<&str> = None;
    for t in &tasks {
        if phase != Some(t.phase.as_str()) {
            phase = Some(t.phase.as_str());
            let name = if t.phase.is_empty() {
                "Tasks"
            } else {
                &t.phase
            };
            let _ = write!(out, "\n## {name}\n\n");
        }
        let mark = if t.done { "x" } else { " " };
        let _ = writeln!(out, "- [{mark}] {} {}", t.id, t.text);
    }
    out
}

pub fn run(context: &Context, args: Args) -> Outcome {
    if let Some(PlanCommand::Import(import_args)) = args.command {
        return import(context, import_args);
    }
    let store = context.store();
    let (run_id, events) = super::run_events(&store, &args.run)?;
    let mut found = Found::Nothing;
    let mut models: std::collections::BTreeMap<String, usize> = Default::default();
    for event in &events {
        match &event.data {
            EventData::AttemptSucceeded(d) => {
                if let Some(model) = d.usage.as_ref().and_then(|u| u.model.clone()) {
                    *models.entry(model).or_default() += 1;
                }
                if let Some(value) = d.values.get(REPORT_VALUE) {
                    if let Ok(report) = serde_json::from_value::<PlanReport>(value.clone()) {
                        found = Found::Plan {
                            phase: d.phase.clone(),
                            report: Box::new(report),
                            unpriced: d
                                .values
                                .get(ESTIMATE_VALUE)
                                .and_then(|e| e.get("unpriced"))
                                .and_then(serde_json::Value::as_bool)
                                .unwrap_or(false),
                        };
                    }
                }
            }
            EventData::AttemptFailed(d)
                if d.kind == FailureKind::OutputInvalid
                    && d.message.contains("not a valid plan") =>
            {
                found = Found::Refused {
                    phase: d.phase.clone(),
                    attempt: d.attempt,
                    message: d.message.clone(),
                };
            }
            _ => {}
        }
    }
    let (phase, report, unpriced) = match found {
        Found::Plan {
            phase,
            report,
            unpriced,
        } => (phase, report, unpriced),
        Found::Refused {
            phase,
            attempt,
            message,
        } => {
            return Err(Failure {
                exit: Exit::RunFailed,
                message: format!(
                    "run {run_id} has no accepted plan: attempt {attempt} of `{phase}` was \
                     refused: {message}"
                ),
            })
        }
        Found::Nothing => {
            return Err(Failure::usage(format!(
                "run {run_id} has recorded no checked plan\n  help: a plan is checked when the \
                 phase's output has `check: {{ kind: plan }}` (see `spectacular schema mission`)"
            )))
        }
    };
    if args.write {
        let Some(lines) = super::spec_run::export(&store, &run_id, &context.project) else {
            return Err(Failure::usage(format!(
                "run {run_id}'s spec is not in a Spec Kit feature directory \
                 (`specs/NNN-name/spec.md`): there is nowhere to write plan.md and tasks.md"
            )));
        };
        for line in lines {
            outln!("{line}")?;
        }
        return Ok(Exit::Success);
    }
    let dot_dir = context.store().dir;
    let (catalog, _) =
        crate::config::models::load(&dot_dir, crate::project::user_config_dir().as_deref());
    let most_used = models
        .iter()
        .filter(|(m, _)| catalog.get(m).is_some())
        .max_by_key(|(_, n)| **n)
        .map(|(m, _)| m.clone());
    // A plan written by an unpriced agent is priced only when asked (`--model`).
    let fallback = if unpriced { None } else { most_used };
    let model = args.model.clone().or(fallback).or_else(|| {
        if unpriced {
            return None;
        }
        catalog
            .models
            .iter()
            .find(|(_, (m, _))| m.tier == crate::config::models::Tier::Standard)
            .map(|(name, _)| name.clone())
    });
    if let Some(name) = &args.model {
        if catalog.get(name).is_none() {
            return Err(Failure::usage(format!(
                "model `{name}` is not in the model catalogue\n  help: `spectacular schema \
                 models` describes `models.yaml`; the built-in catalogue has {}",
                catalog
                    .models
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let cost = model.as_deref().and_then(|m| {
        catalog.get(m).map(|spec| {
            (
                estimated_cost(&report, spec.price.input, spec.price.output),
                m,
            )
        })
    });
    if args.json {
        let value = json!({
            "run_id": run_id,
            "phase": phase,
            "plan": &*report,
            "estimate": match cost {
                Some((usd, m)) => json!({ "usd": (usd * 100.0).round() / 100.0, "model": m }),
                None if unpriced => json!({ "unpriced": true }),
                None => serde_json::Value::Null,
            },
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| Failure::internal(e.to_string()))?
        )?;
    } else {
        outln!("plan of run {run_id} (phase `{phase}`)")?;
        let cost = match cost {
            Some((usd, model)) => Cost::Priced(usd, model),
            None if unpriced => Cost::Unpriced,
            None => Cost::Unknown,
        };
        out!("{}", super::printable(&summary_text(&report, cost)))?;
    }
    Ok(Exit::Success)
}
