//! `spectacular schema <name>`: the JSON Schemas of the formats users write.

use super::{Exit, Outcome};
use crate::model::schema::mission_schema_text;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which schema.
    #[arg(value_enum)]
    pub name: Name,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Name {
    /// mission.yaml
    Mission,
    /// pack.yaml of a policy pack
    Policy,
    /// models.yaml (the model catalog)
    Models,
    /// agents.yaml (the configured agents)
    Agents,
    /// tasks.json (the work packages a planner writes)
    Tasks,
    /// .spectacular/config.yaml (the project configuration)
    Config,
    /// report.json (what a run did)
    Report,
    /// errors.json (what `builtin/check` ran and the errors its tools reported)
    Errors,
    /// verdicts.json (a validator's verdict on each acceptance criterion)
    Verdicts,
}

pub fn run(args: Args) -> Outcome {
    match args.name {
        Name::Mission => out!("{}", mission_schema_text())?,
        Name::Policy => out!("{}", crate::policy::pack::policy_schema_text())?,
        Name::Models => out!("{}", crate::config::models::models_schema_text())?,
        Name::Agents => out!("{}", crate::agents::config::agents_schema_text())?,
        Name::Tasks => out!("{}", crate::tasks::tasks_schema_text())?,
        Name::Report => out!("{}", crate::query::report::report_schema_text())?,
        Name::Errors => out!("{}", crate::check::errors_schema_text())?,
        Name::Verdicts => out!("{}", crate::check::verdicts::verdicts_schema_text())?,
        Name::Config => {
            let schema = crate::config::project::project_schema();
            outln!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            )?
        }
    }
    Ok(Exit::Success)
}
