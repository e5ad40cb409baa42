//! `spectacular pr <run>`: push a run's integration branch to the configured remote and open
//! its pull or merge request (or update the one it has), with the run's report as the body.
//! Also what `run` and `resume` do with the forge when a run stops: comment on its issue, and
//! open its pull request at the end of a success when `pull_requests.on_success` says so.

use super::{Context, Exit, Failure, Outcome};
use crate::config::project;
use crate::forge::publish::{self, PublishError};
use crate::forge::ForgeConfig;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id (a unique prefix, or `last`).
    #[arg(default_value = "last")]
    pub run: String,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let store = context.store();
    let run_id = store
        .resolve_run(&args.run)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let config = context.project_config()?;
    let published = open(context, &config, &run_id).map_err(super::spec_run::publish_failure)?;
    outln!("{}", said(&published))?;
    Ok(Exit::Success)
}

fn open(
    context: &Context,
    config: &project::ProjectConfig,
    run_id: &str,
) -> Result<publish::Published, PublishError> {
    let settings = config
        .pull_requests
        .as_ref()
        .ok_or(PublishError::NotConfigured)?;
    let forge = ForgeConfig::from_project(config);
    let root = crate::project::Project::discover(&context.cwd).root;
    let repo = crate::git::ops::toplevel(&root).unwrap_or(root);
    publish::pull_request(&context.store(), &repo, run_id, settings, &|kind| {
        crate::forge::connect(kind, &forge)
    })
}

fn said(p: &publish::Published) -> String {
    let number = match p.kind {
        crate::forge::Kind::Github => format!("#{}", p.request.number),
        crate::forge::Kind::Gitlab => format!("!{}", p.request.number),
    };
    format!(
        "{} {} {number}: {}",
        if p.updated { "updated" } else { "opened" },
        p.kind.request_noun(),
        p.request.url
    )
}

/// After `run` or `resume` drove a run until it stopped: comment on its issue what is new
/// (when `forge.comment` is set), and, when it succeeded and `pull_requests.on_success` is
/// set, open or update its pull request. Lines to show, and an error when the pull request
/// that was asked for could not be opened.
pub fn after_run(
    context: &Context,
    run_id: &str,
    succeeded: bool,
) -> (Vec<String>, Option<String>) {
    let mut lines = Vec::new();
    let Ok(config) = context.project_config() else {
        return (lines, None);
    };
    let forge = ForgeConfig::from_project(&config);
    let store = context.store();
    match publish::comment(&store, run_id, &forge, &|kind| {
        crate::forge::connect(kind, &forge)
    }) {
        Ok(said) => lines.extend(said),
        Err(e) => lines.push(format!("warning: commenting on the run's issue: {e}")),
    }
    let wanted = config.pull_requests.as_ref().is_some_and(|p| p.on_success);
    if !succeeded || !wanted {
        return (lines, None);
    }
    match open(context, &config, run_id) {
        Ok(p) => {
            lines.push(said(&p));
            (lines, None)
        }
        Err(e) => (
            lines,
            Some(format!(
                "run {run_id} succeeded, but its pull request was not opened: {e}\n  \
                 `spectacular pr {run_id}` tries again"
            )),
        ),
    }
}
