//! `spectacular plan [run]`: the checked plan of a run (work packages, dependencies, owned
//! files, coverage, lanes, estimated cost), read from what the run recorded.

use serde_json::json;

use super::{Context, Exit, Failure, Outcome};
use crate::model::FailureKind;
use crate::record::event::EventData;
use crate::tasks::{estimated_cost, summary_text, PlanReport, REPORT_VALUE};

#[derive(Debug, clap::Args)]
pub struct Args {
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
}

/// The last plan the run recorded: its phase and report; else the problems of the last plan
/// that was refused.
enum Found {
    Plan {
        phase: String,
        report: Box<PlanReport>,
    },
    Refused {
        phase: String,
        attempt: u32,
        message: String,
    },
    Nothing,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let store = context.store();
    let run_id = store
        .resolve_run(&args.run)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let events = store
        .read_events(&run_id)
        .map_err(|e| Failure::internal(e.to_string()))?;
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
    let (phase, report) = match found {
        Found::Plan { phase, report } => (phase, report),
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
    let dot_dir = context.store().dir;
    let (catalog, _) =
        crate::config::models::load(&dot_dir, crate::project::user_config_dir().as_deref());
    let most_used = models
        .iter()
        .filter(|(m, _)| catalog.get(m).is_some())
        .max_by_key(|(_, n)| **n)
        .map(|(m, _)| m.clone());
    let model = args.model.clone().or(most_used).or_else(|| {
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
            "estimate": cost.map(|(usd, m)| json!({ "usd": (usd * 100.0).round() / 100.0, "model": m })),
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| Failure::internal(e.to_string()))?
        )?;
    } else {
        outln!("plan of run {run_id} (phase `{phase}`)")?;
        out!("{}", super::printable(&summary_text(&report, cost)))?;
    }
    Ok(Exit::Success)
}
