//! `spectacular graph <mission>`: the phase graph as DOT or Mermaid.

use super::{Context, Exit, Outcome};
use crate::plan;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A mission file or directory, or a mission name.
    pub mission: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let validated = context.validate(&args.mission)?;
    let Some(mission) = validated.mission else {
        eout!("{}", context.render_stderr(&validated.diagnostics));
        return Ok(Exit::Invalid);
    };
    if !validated.diagnostics.is_empty() {
        eout!("{}", context.render_stderr(&validated.diagnostics));
    }
    let plan = plan::plan(mission);
    match args.format {
        Format::Dot => out!("{}", plan::to_dot(&plan))?,
        Format::Mermaid => out!("{}", plan::to_mermaid(&plan))?,
    }
    Ok(Exit::Success)
}
