//! `spectacular clean [run|--finished]`: remove the worktrees and branches of finished runs
//! (the logic is `git::clean`).

use super::{Context, Exit, Failure, Outcome};
use crate::git::clean::{self, RunClean, Target};
use crate::project::display_path;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["run", "finished"]))]
pub struct Args {
    /// The run to clean (an id, a unique prefix, or `last`); a failed or canceled run too.
    pub run: Option<String>,
    /// Every finished run: those that succeeded (add `--include-failed` for failed and
    /// canceled ones, which are otherwise kept for inspection).
    #[arg(long)]
    pub finished: bool,
    /// With `--finished`: failed and canceled runs too.
    #[arg(long, requires = "finished")]
    pub include_failed: bool,
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let store = context.store();
    let repo = context.project.root.clone();
    let target = match args.run {
        Some(run) => Target::Run(run),
        None => Target::Finished {
            include_failed: args.include_failed,
        },
    };
    let runs = clean::clean(&store, &repo, &target, args.dry_run).map_err(|e| match e {
        clean::Error::Record(crate::record::Error::UnknownRun { .. })
        | clean::Error::Record(crate::record::Error::AmbiguousRun { .. })
        | clean::Error::NotFinished { .. } => Failure::usage(e.to_string()),
        e => Failure::internal(e.to_string()),
    })?;
    let failed = runs.iter().any(|r| !r.errors.is_empty());
    if args.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "dry_run": args.dry_run,
            "runs": runs,
        }))
        .map_err(|e| Failure::internal(e.to_string()))?;
        outln!("{text}")?;
    } else {
        print(context, &runs, args.dry_run)?;
    }
    Ok(if failed {
        Exit::Internal
    } else {
        Exit::Success
    })
}

fn print(context: &Context, runs: &[RunClean], dry_run: bool) -> Result<(), Failure> {
    if runs.is_empty() {
        outln!("nothing to clean")?;
        return Ok(());
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    let cwd = context
        .cwd
        .canonicalize()
        .unwrap_or_else(|_| context.cwd.clone());
    for run in runs {
        outln!("run {} ({})", run.run_id, run.status)?;
        if let Some(reason) = &run.skipped {
            outln!("  skipped: {reason}")?;
            continue;
        }
        for worktree in &run.worktrees {
            outln!("  {verb} worktree {}", display_path(worktree, &cwd))?;
        }
        for branch in &run.branches {
            outln!("  {verb} branch {branch}")?;
        }
        if run.worktrees.is_empty() && run.branches.is_empty() && run.errors.is_empty() {
            outln!("  nothing to remove")?;
        }
        for branch in &run.current {
            outln!("  kept branch {branch} (it is the current branch)")?;
        }
        if let Some(branch) = &run.kept {
            outln!("  kept branch {branch} (the integration branch)")?;
        }
        for error in &run.errors {
            eoutln!("{}", context.error_line(error));
        }
    }
    Ok(())
}
