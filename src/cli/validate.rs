//! `spectacular validate <mission>`: every diagnostic, as text or JSON.

use super::{Context, Exit, Outcome};
use crate::diag::{render_json, render_text, RenderOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A mission file or directory, or a mission name (project → user → built-in).
    pub mission: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Treat warnings as errors (exit 65 when there are any).
    #[arg(long)]
    pub deny_warnings: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let validated = context.validate(&args.mission)?;
    let diagnostics = &validated.diagnostics;
    let failed =
        diagnostics.has_errors() || (args.deny_warnings && diagnostics.warning_count() > 0);
    match args.format {
        Format::Json => out!("{}", render_json(diagnostics))?,
        Format::Text => {
            out!(
                "{}",
                render_text(
                    diagnostics,
                    RenderOptions {
                        color: context.color_stdout
                    }
                )
            )?;
            if let Some(mission) = &validated.mission {
                if !failed {
                    let plan = crate::plan::plan(mission.clone());
                    outln!(
                        "`{}` is valid: mission `{}`, {} phase{} in {} layer{}",
                        mission.source_name,
                        mission.id,
                        plan.len(),
                        if plan.len() == 1 { "" } else { "s" },
                        plan.layers().len(),
                        if plan.layers().len() == 1 { "" } else { "s" },
                    )?;
                }
            }
        }
    }
    Ok(if failed { Exit::Invalid } else { Exit::Success })
}
