//! `spectacular missions list|show|eject|diff`: the missions that can be run by name.

use super::{Context, Exit, Failure, Outcome};
use crate::load::{self, Origin};

const EXAMPLES_LIST: &str = "\
Examples:
  # Missions by name, with their origin
  spectacular missions list
  # As JSON
  spectacular missions list --json";
const EXAMPLES_SHOW: &str = "\
Examples:
  # Print a built-in mission
  spectacular missions show software-dev
  # Keep a copy to read
  spectacular missions show software-dev > software-dev.yaml";
const EXAMPLES_EJECT: &str = "\
Examples:
  # Copy a built-in mission into .spectacular/missions/ to change it
  spectacular missions eject software-dev
  # Copy it again over an earlier copy
  spectacular missions eject software-dev --force";

const EXAMPLES_DIFF: &str = "\
Examples:
  # What changed in the built-in mission since it was ejected
  spectacular missions diff software-dev
  # Keep the diff to read
  spectacular missions diff software-dev > software-dev.diff";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// List missions by name with their origin (project, user, built-in).
    #[command(after_help = EXAMPLES_LIST)]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a mission's file.
    #[command(after_help = EXAMPLES_SHOW)]
    Show {
        /// The mission's name.
        name: String,
    },
    /// Copy a built-in mission into `.spectacular/missions/<name>/` to customise it.
    #[command(after_help = EXAMPLES_EJECT)]
    Eject {
        /// The built-in mission's name.
        name: String,
        /// Overwrite files that already exist.
        #[arg(long)]
        force: bool,
    },
    /// Compare an ejected copy (`.spectacular/missions/<name>/`) with the built-in mission,
    /// after an upgrade: a unified diff per file (`+` lines are the built-in's). Exits 0 when
    /// they are the same, 1 when they differ.
    #[command(after_help = EXAMPLES_DIFF)]
    Diff {
        /// The mission's name.
        name: String,
    },
}

pub fn run(context: &Context, args: Args) -> Outcome {
    match args.command {
        Sub::List { json } => list(context, json),
        Sub::Show { name } => show(context, &name),
        Sub::Eject { name, force } => eject(context, &name, force),
        Sub::Diff { name } => diff(context, &name),
    }
}

fn list(context: &Context, json: bool) -> Outcome {
    let missions = load::list_in(&context.cwd, &context.project);
    if json {
        let text = serde_json::to_string_pretty(&missions)
            .map_err(|e| Failure::internal(e.to_string()))?;
        outln!("{text}")?;
        return Ok(Exit::Success);
    }
    let width = missions
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    outln!("{:width$}  {:8}  LOCATION", "NAME", "ORIGIN")?;
    for m in &missions {
        let note = if m.shadowed { "  (shadowed)" } else { "" };
        outln!(
            "{:width$}  {:8}  {}{note}",
            m.name,
            m.origin.to_string(),
            m.location
        )?;
    }
    Ok(Exit::Success)
}

fn show(context: &Context, name: &str) -> Outcome {
    let located = load::locate_in(name, &context.cwd, &context.project)?;
    let loaded = load::load(located)?;
    out!("{}", loaded.source.text)?;
    Ok(Exit::Success)
}

fn eject(context: &Context, name: &str, force: bool) -> Outcome {
    let files = load::builtin_files(name);
    if files.is_empty() {
        let names: Vec<String> = load::list_in(&context.cwd, &context.project)
            .into_iter()
            .filter(|m| m.origin == Origin::Builtin)
            .map(|m| m.name)
            .collect();
        return Err(Failure::usage(format!(
            "no built-in mission named `{name}` (built-in: {})",
            names.join(", ")
        )));
    }
    let target = context.project.dot_dir().join("missions").join(name);
    for (relative, _) in &files {
        let path = target.join(relative);
        if path.exists() && !force {
            return Err(Failure::usage(format!(
                "`{}` already exists; pass --force to overwrite",
                crate::project::display_path(&path, &context.cwd)
            )));
        }
    }
    for (relative, text) in files {
        let path = target.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                Failure::internal(format!("failed to create `{}`: {e}", parent.display()))
            })?;
        }
        std::fs::write(&path, text)
            .map_err(|e| Failure::internal(format!("failed to write `{}`: {e}", path.display())))?;
    }
    outln!(
        "ejected `{name}` into `{}`; it now shadows the built-in mission",
        crate::project::display_path(&target, &context.cwd)
    )?;
    Ok(Exit::Success)
}

fn diff(context: &Context, name: &str) -> Outcome {
    let dir = context.project.dot_dir().join("missions").join(name);
    let shown = crate::project::display_path(&dir, &context.cwd);
    let diffs = load::diff::compare(name, &dir, &shown).map_err(|e| match e {
        load::diff::Error::Read { .. } => Failure::internal(e.to_string()),
        _ => Failure::usage(e.to_string()),
    })?;
    if diffs.is_empty() {
        outln!("`{shown}` is the same as the built-in mission `{name}`")?;
        return Ok(Exit::Success);
    }
    for file in &diffs {
        out!("{}", file.text)?;
    }
    Ok(Exit::DIFFERENT)
}
