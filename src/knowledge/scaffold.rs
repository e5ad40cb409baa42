//! `spectacular init`: scaffold `.spectacular/` in a repository: the knowledge files
//! (`conventions.md` filled from what [`super::detect`] finds), a `.gitignore` for what must not
//! be committed, and a commented `config.yaml`. A file that exists is never overwritten.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{Detected, DIR, LEARNINGS};

/// One file or directory of the scaffold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub path: PathBuf,
    /// False when it existed already (and was left as it was).
    pub created: bool,
}

/// What must not be committed: the run logs and artifacts, the projection, worktrees, the
/// spend ledger, the issues fetched as specs. Missions, policies, agents, models, budgets, config and knowledge are.
pub const GITIGNORE: &str = "\
# Written by `spectacular init`: what Spectacular keeps locally and must not be committed.
# Missions, policies, agents.yaml, models.yaml, budgets.yaml, config.yaml and knowledge/
# are meant to be committed.
runs/
worktrees/
state.db
state.db-*
spend.jsonl
*.promoting
learnings/
knowledge/learnings/.lock
issues/
";

/// `config.yaml`, every setting commented out at its default but the check command
/// [`config`] fills in.
const CONFIG: &str = "\
# Spectacular project configuration. Settings commented out are shown at their default;
# uncomment to change.
# Schema: `spectacular schema config`.

# The mission `spectacular run <spec.md>` runs, with the Markdown file as its `spec` input
# (a built-in or project mission name, or a path).
# spec_mission: software-dev

{SPEC_INPUTS}
# The spec analysis (`spectacular analyse`): the weights of the complexity dimensions, the
# lowest score of each tier, and how many repository files it looks at.
# analysis:
#   weights: { scope: 0.25, dependencies: 0.20, ambiguity: 0.20, technical_risk: 0.20, integration: 0.15 }
#   tiers: { medium: 0.3, complex: 0.6, critical: 0.8 }
#   max_files: 20000

# Project knowledge (.spectacular/knowledge/) given to prompts, in tokens per role. What does
# not fit is left out, and the prompt says so.
# knowledge:
#   budgets:
#     analyser: 4000     # architecture.md, dependencies.md
#     planner: 8000      # everything, with every learning
#     executor: 4000     # conventions.md, gotchas.md, learnings about its files
#     validator: 2000    # conventions.md

# Issues in, pull requests out (`spectacular run github:owner/repo#123`, `spectacular pr`):
# the APIs (GitHub Enterprise: https://<host>/api/v3), and whether the plan and the end of a
# run are commented on its issue. Tokens come from GITHUB_TOKEN / GITLAB_TOKEN, or gh / glab.
# forge:
#   github: { api_url: https://api.github.com }
#   gitlab: { api_url: https://gitlab.com/api/v4 }
#   comment: false
# Nothing is pushed without this section: the remote the run's integration branch is pushed
# to, and whether a run that succeeds opens (or updates) its pull request.
# pull_requests:
#   remote: origin
#   on_success: false
";

/// `config.yaml` for a repository whose check command is `check` (commented out when init
/// found none).
pub fn config(check: Option<&super::Check>) -> String {
    let inputs = match check {
        Some(check) => format!(
            "# Inputs given to that mission unless `--input` gives them. `spectacular init` chose\n\
             # the check command because {}.\n\
             spec_inputs:\n  check_command: {}\n",
            check.why,
            serde_json::Value::String(check.command.clone())
        ),
        None => "# Inputs given to that mission unless `--input` gives them. `spectacular init` \
                 found no test\n# command: set the one that checks your work.\n\
                 # spec_inputs:\n#   check_command: make test\n"
            .to_string(),
    };
    CONFIG.replace("{SPEC_INPUTS}", &inputs)
}

fn architecture(root: &Path) -> String {
    let mut text = String::from(
        "# Architecture\n\n<!-- How the system is put together: its parts, what each owns, \
         how data flows, and what each part must never do. Analysers and planners read this. -->\n",
    );
    if root.join("ARCHITECTURE.md").exists() {
        text.push_str("\nThe repository describes itself in `ARCHITECTURE.md`; read it first.\n");
    }
    text
}

const GOTCHAS: &str = "# Gotchas\n\n<!-- Traps a newcomer (or an agent) falls into: flaky tests, \
generated files, order-dependent setup, things that look unused but are not. Executors and \
planners read this. -->\n";

const DEPENDENCIES: &str = "# Dependencies\n\n<!-- The libraries and services the project \
relies on, which ones to prefer, and which ones to avoid. Analysers and planners read \
this. -->\n";

/// Create what does not exist yet under `root/.spectacular/` (`dot_dir`); return every path
/// with whether it was created.
pub fn init(root: &Path, dot_dir: &Path) -> std::io::Result<(Detected, Vec<Created>)> {
    let detected: Detected = super::detect(root);
    let knowledge = dot_dir.join(DIR);
    let mut done = Vec::new();
    for dir in [
        dot_dir.to_path_buf(),
        knowledge.clone(),
        knowledge.join(LEARNINGS),
    ] {
        let created = !dir.is_dir();
        std::fs::create_dir_all(&dir)?;
        done.push(Created { path: dir, created });
    }
    let files: Vec<(PathBuf, String)> = vec![
        (dot_dir.join(".gitignore"), GITIGNORE.to_string()),
        (dot_dir.join("config.yaml"), config(detected.check.as_ref())),
        (knowledge.join("architecture.md"), architecture(root)),
        (
            knowledge.join("conventions.md"),
            detected.conventions_markdown(),
        ),
        (knowledge.join("gotchas.md"), GOTCHAS.to_string()),
        (knowledge.join("dependencies.md"), DEPENDENCIES.to_string()),
        (knowledge.join(LEARNINGS).join(".gitkeep"), String::new()),
    ];
    for (path, text) in files {
        let created = write_new(&path, &text)?;
        done.push(Created { path, created });
    }
    Ok((detected, done))
}

/// Write `text` to `path` unless something is there (atomically decided by `create_new`).
fn write_new(path: &Path, text: &str) -> std::io::Result<bool> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(text.as_bytes())?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}
