//! `spectacular init`: scaffold `.spectacular/` (knowledge, `.gitignore`, `config.yaml`) in
//! the project, without overwriting anything.

use super::{Context, Exit, Failure, Outcome};
use crate::project::{display_path, DOT_DIR};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(context: &Context, _args: Args) -> Outcome {
    let project = &context.project;
    let dot_dir = match &context.store_override {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => context.cwd.join(dir),
        None => project.root.join(DOT_DIR),
    };
    let (detected, done) = crate::knowledge::init(&project.root, &dot_dir).map_err(|e| {
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
    let config = dot_dir.join("config.yaml");
    let config_created = done.iter().any(|d| d.path == config && d.created);
    outln!()?;
    outln!("{}", found(&detected))?;
    match (&detected.check, config_created) {
        (Some(check), true) => outln!(
            "Runs of a spec check the work with `{}` ({}); it is `spec_inputs.check_command` in {}.",
            check.command,
            check.why,
            display_path(&config, &project.root)
        )?,
        (Some(check), false) => outln!(
            "The check command this repository suggests is `{}` ({}); {} was kept as it was.",
            check.command,
            check.why,
            display_path(&config, &project.root)
        )?,
        (None, _) => outln!(
            "No test command found: set `spec_inputs.check_command` in {} to the command that \
             checks your work (`make test`, `npm test`…).",
            display_path(&config, &project.root)
        )?,
    }
    outln!(
        "\nEdit the knowledge in {}/knowledge/: prompts get it by role (`{{{{ knowledge }}}}`).",
        display_path(&dot_dir, &project.root)
    )?;
    Ok(Exit::Success)
}

/// "Found Python (12 files), pip (`pyproject.toml`)." or that nothing was recognised.
fn found(detected: &crate::knowledge::Detected) -> String {
    let mut parts: Vec<String> = detected
        .languages
        .iter()
        .take(3)
        .map(|(language, files)| {
            format!(
                "{language} ({files} file{})",
                if *files == 1 { "" } else { "s" }
            )
        })
        .collect();
    parts.extend(
        detected
            .package_managers
            .iter()
            .map(|(name, file)| format!("{name} (`{file}`)")),
    );
    if parts.is_empty() {
        "Found no language or package manager this version knows.".to_string()
    } else {
        format!("Found {}.", parts.join(", "))
    }
}
