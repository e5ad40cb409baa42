//! `--apply`: the run's base branch fast-forwarded to exactly the commit its checks ran on.
//!
//! The commit applied is the integration branch's head after the last recorded merge step;
//! every `workspace: integration` attempt (checks, a validator) that succeeded after it
//! recorded that same head (`integration_head`). The integration branch must still be there:
//! a commit added after the checks (by a validator, by anyone) is refused, never applied. A
//! base branch checked out in another worktree is never moved; one checked out here is moved
//! only when its tree is clean ([`ops::fast_forward`]).

use std::path::Path;

use crate::record::event::{EventData, MergeOutcome};
use crate::record::store::Store;

use super::ops;

/// What `--apply` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The base branch moved, the integration branch, and the commit applied.
    pub branch: String,
    pub integration: String,
    pub commit: String,
}

/// Why `--apply` did nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Record(#[from] crate::record::Error),
    #[error("`--apply` has nothing to apply: the mission does not merge work on branches")]
    NothingToApply,
    #[error("`--apply` cannot move a detached HEAD; the work is on branch `{integration}`")]
    Detached { integration: String },
    #[error("the integration branch `{integration}` is gone; nothing was applied")]
    NoBranch { integration: String },
    #[error("the integration branch `{integration}` is at {found}, but the checks ran on {checked}: a commit was added after the checks; nothing was applied (look at `git log {checked}..{integration}`)")]
    MovedAfterChecks {
        integration: String,
        found: String,
        checked: String,
    },
    #[error(
        "the phase `{phase}` ran on {found}, not on the merged work {checked}; nothing was applied"
    )]
    CheckedElsewhere {
        phase: String,
        found: String,
        checked: String,
    },
    #[error("`{branch}` was not fast-forwarded: {source}; the work is on branch `{integration}`")]
    Git {
        branch: String,
        integration: String,
        source: ops::Error,
    },
}

fn short(commit: &str) -> String {
    commit.get(..12).unwrap_or(commit).to_string()
}

/// Fast-forward the base branch of run `run_id` (in `store`) in the repository at `root` to
/// the commit its checks ran on. The one entry point of applying a run's work.
pub fn apply(store: &Store, root: &Path, run_id: &str) -> Result<Applied, Error> {
    let events = store.read_events(run_id)?;
    let integration = super::integration_branch(run_id);
    let mut base = None;
    let mut checked: Option<String> = None;
    let mut ran_on: Vec<(String, String)> = Vec::new();
    for event in &events {
        match &event.data {
            EventData::RunStarted(s) => base = s.git_base.as_deref().cloned(),
            EventData::MergeStep(step) => {
                if let Some(head) = &step.head {
                    checked = Some(head.clone());
                }
                if step.outcome != MergeOutcome::Conflict {
                    // Checks before this step ran on other work.
                    ran_on.clear();
                }
            }
            EventData::AttemptSucceeded(done) => {
                if let Some(head) = &done.integration_head {
                    ran_on.push((done.phase.clone(), head.clone()));
                }
            }
            _ => {}
        }
    }
    let base = base.ok_or(Error::NothingToApply)?;
    if base.branch == "HEAD" {
        return Err(Error::Detached { integration });
    }
    let found = ops::commit_of(root, &format!("refs/heads/{integration}")).map_err(|_| {
        Error::NoBranch {
            integration: integration.clone(),
        }
    })?;
    // A run whose merge recorded no step merged nothing: its branch is the base.
    let checked = checked.unwrap_or_else(|| base.commit.clone());
    if let Some((phase, head)) = ran_on.iter().find(|(_, h)| *h != checked) {
        return Err(Error::CheckedElsewhere {
            phase: phase.clone(),
            found: short(head),
            checked: short(&checked),
        });
    }
    if found != checked {
        return Err(Error::MovedAfterChecks {
            integration,
            found: short(&found),
            checked: short(&checked),
        });
    }
    ops::fast_forward(root, &base.branch, &checked).map_err(|source| Error::Git {
        branch: base.branch.clone(),
        integration: integration.clone(),
        source,
    })?;
    Ok(Applied {
        branch: base.branch,
        integration,
        commit: checked,
    })
}
