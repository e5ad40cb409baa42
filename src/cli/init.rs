//! `spectacular init`: scaffold `.spectacular/` (knowledge, `.gitignore`, `config.yaml`) in
//! the project, without overwriting anything.

use super::{Context, Exit, Failure, Outcome};
use crate::project::{display_path, Project, DOT_DIR};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(context: &Context, _args: Args) -> Outcome {
    let project = Project::discover(&context.cwd);
    let dot_dir = match &context.store_override {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => context.cwd.join(dir),
        None => project.root.join(DOT_DIR),
    };
    let done = crate::knowledge::init(&project.root, &dot_dir).map_err(|e| {
        Failure::internal(format!("could not scaffold `{}`: {e}", dot_dir.display()))
    })?;
    for item in &done {
        if item.path.is_dir() {
            continue;
        }
        let shown = display_path(&item.path, &project.root);
        if item.created {
            outln!("created {shown}")?;
        } else {
            outln!("kept    {shown} (it exists)")?;
        }
    }
    outln!(
        "\nEdit the knowledge in {}/knowledge/: prompts get it by role (`{{{{ knowledge }}}}`).",
        display_path(&dot_dir, &project.root)
    )?;
    Ok(Exit::Success)
}
