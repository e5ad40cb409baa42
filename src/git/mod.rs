//! Git for work packages: the names of a run's branches and worktrees, and the git operations
//! the engine performs (worktrees, commits with provenance, merges), through the `git` CLI.
//!
//! Layout, for run `01JDQ3ZK6V8X4M2N5P7R9T1W3Y` (its short name is the last eight characters,
//! lowercased: `7r9t1w3y`, see [`run_short`]):
//!
//! - each `workspace: worktree` phase instance works in
//!   `<store>/worktrees/<run>/<instance>` on branch `spectacular/<run-short>-<work package>`
//!   (the `for_each` item's key, else the phase id);
//! - `builtin/merge` merges those branches into the integration branch
//!   `spectacular/<run-short>`, in `<store>/worktrees/<run>/.integration`;
//! - each attempt of a `workspace: view` phase reads the repository in a detached worktree at
//!   the run's base commit, `<store>/worktrees/<run>/.views/<instance>/<attempt>`, removed
//!   when the attempt ends (no branch).
//!
//! Work-package branches are `<integration>-<work>`, not `<integration>/<work>`: git keeps
//! refs as paths, so `spectacular/7r9t1w3y` and `spectacular/7r9t1w3y/WP01` cannot both
//! exist.
//!
//! The user's own working tree and current branch are never touched.

pub mod apply;
pub mod bundle;
pub mod clean;
pub mod guard;
pub mod ops;

use std::path::PathBuf;

use crate::record::store::{join_under, Store, UnsafePath};

/// The identity the engine commits with where git knows none (a fresh HOME, a CI runner),
/// given on the command line, never written to any config: `identity!(name)`,
/// `identity!(email)`.
macro_rules! identity {
    (name) => {
        "Spectacular"
    };
    (email) => {
        "spectacular@localhost"
    };
}
pub(crate) use identity;
/// See [`identity`].
pub const IDENTITY_NAME: &str = identity!(name);
/// See [`identity`].
pub const IDENTITY_EMAIL: &str = identity!(email);

/// The prefix of every branch the engine creates.
pub const BRANCH_PREFIX: &str = "spectacular/";

/// The directory of the integration worktree of a run, under `worktrees/<run>/` (hidden, so
/// that no phase instance can have its name).
pub const MERGE_DIR: &str = ".integration";

/// The directory of a run's view worktrees, under `worktrees/<run>/` (hidden, like
/// [`MERGE_DIR`]).
pub const VIEWS_DIR: &str = ".views";

/// A run's short name for branches: the last eight characters of its id (the random part of
/// a ULID), lowercased.
pub fn run_short(run_id: &str) -> String {
    let start = run_id.len().saturating_sub(8);
    run_id.get(start..).unwrap_or(run_id).to_ascii_lowercase()
}

/// `spectacular/<run-short>`: the branch every work package of the run is merged into.
pub fn integration_branch(run_id: &str) -> String {
    format!("{BRANCH_PREFIX}{}", run_short(run_id))
}

/// `spectacular/<run-short>-<work>`: the branch of one work package.
pub fn work_branch(run_id: &str, work: &str) -> String {
    format!("{BRANCH_PREFIX}{}-{work}", run_short(run_id))
}

/// The work package an instance stands for: a `for_each` child's key (`implement[WP01]` →
/// `WP01`), else the phase id.
pub fn work_of(instance: &str) -> &str {
    match instance.split_once('[') {
        Some((_, key)) => key.strip_suffix(']').unwrap_or(key),
        None => instance,
    }
}

/// `<store>/worktrees`
pub fn worktrees_dir(store: &Store) -> PathBuf {
    store.dir.join("worktrees")
}

/// `<store>/worktrees/<run>`: every worktree of a run.
pub fn run_worktrees(store: &Store, run_id: &str) -> Result<PathBuf, UnsafePath> {
    join_under(&worktrees_dir(store), &[run_id])
}

/// `<store>/worktrees/<run>/.integration`: the run's integration worktree.
pub fn integration_dir(store: &Store, run_id: &str) -> Result<PathBuf, UnsafePath> {
    join_under(&worktrees_dir(store), &[run_id, MERGE_DIR])
}

/// `<store>/worktrees/<run>/<instance>`: the worktree of one phase instance.
pub fn worktree_dir(store: &Store, run_id: &str, instance: &str) -> Result<PathBuf, UnsafePath> {
    join_under(&worktrees_dir(store), &[run_id, instance])
}

/// `<store>/worktrees/<run>/.views/<instance>/<attempt>`: the view worktree of one attempt.
pub fn view_dir(
    store: &Store,
    run_id: &str,
    instance: &str,
    attempt: u32,
) -> Result<PathBuf, UnsafePath> {
    join_under(
        &worktrees_dir(store),
        &[run_id, VIEWS_DIR, instance, &attempt.to_string()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_layout() {
        let run = "01JDQ3ZK6V8X4M2N5P7R9T1W3Y";
        assert_eq!(run_short(run), "7r9t1w3y");
        assert_eq!(integration_branch(run), "spectacular/7r9t1w3y");
        assert_eq!(work_branch(run, "WP01"), "spectacular/7r9t1w3y-WP01");
        assert_eq!(work_of("implement[WP01]"), "WP01");
        assert_eq!(work_of("merge"), "merge");
        let store = Store {
            dir: PathBuf::from("/p/.spectacular"),
        };
        assert_eq!(
            worktree_dir(&store, run, "implement[WP01]").unwrap(),
            PathBuf::from("/p/.spectacular/worktrees/01JDQ3ZK6V8X4M2N5P7R9T1W3Y/implement[WP01]")
        );
        assert!(worktree_dir(&store, run, "..").is_err());
        assert_eq!(
            view_dir(&store, run, "research", 2).unwrap(),
            PathBuf::from("/p/.spectacular/worktrees/01JDQ3ZK6V8X4M2N5P7R9T1W3Y/.views/research/2")
        );
        assert!(view_dir(&store, run, "..", 1).is_err());
    }
}
