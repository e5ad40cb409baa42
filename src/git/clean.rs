//! `spectacular clean`: removing the worktrees and branches of finished runs.
//!
//! What goes, for a run that is finished (its log ends with `run.succeeded`, `run.failed` or
//! `run.canceled`):
//!
//! - every worktree under `<store>/worktrees/<run>/` (`git worktree remove --force`; when git
//!   refuses, the directory is removed and `git worktree prune` forgets it), then that
//!   directory;
//! - every work branch `spectacular/<run-short>-<work>` (`git branch -D`, which refuses a branch
//!   checked out anywhere).
//!
//! What stays: the integration branch `spectacular/<run-short>` (the run's result, for review;
//! delete it with `git branch -D` once merged), any branch not named `spectacular/<run-short>-…`,
//! the current branch of the repository, and every path outside `<store>/worktrees/<run>/`.
//! A running, interrupted or suspended run is never touched; a failed or canceled run is kept
//! for inspection unless it is named or `include_failed` is set.
//!
//! Git runs as a process with explicit arguments (`git -C <repo> …`), never through a shell.

use std::path::{Path, PathBuf};

use crate::record::fold::{fold, RunStatus};
use crate::record::store::Store;

use super::{integration_branch, run_worktrees, work_branch, BRANCH_PREFIX};

/// Which runs to clean.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One run, named (failed and canceled runs included).
    Run(String),
    /// Every finished run: succeeded ones, and failed or canceled ones with
    /// `include_failed`.
    Finished { include_failed: bool },
}

/// What happened (or, with `dry_run`, would happen) to one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunClean {
    pub run_id: String,
    pub status: String,
    /// Why the run was left alone (running, suspended, failed and not asked for…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Worktree directories removed.
    pub worktrees: Vec<PathBuf>,
    /// Branches deleted.
    pub branches: Vec<String>,
    /// The integration branch, when it exists (kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
    /// Branches left because they are checked out here (the repository's current branch).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub current: Vec<String>,
    /// What failed (git refused, a directory could not be removed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Why cleaning could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Record(#[from] crate::record::Error),
    #[error(
        "run `{run_id}` is {status}; `spectacular clean` never touches a run that is running, \
         interrupted or suspended (finish it with `spectacular resume` or `spectacular cancel`)"
    )]
    NotFinished { run_id: String, status: String },
    #[error("`{path}` cannot be a run's worktree directory: {reason}")]
    Unsafe { path: String, reason: String },
}

/// Clean the runs of `target` in `store`, whose worktrees belong to the git repository at
/// `repo`. With `dry_run`, only say what would go.
pub fn clean(
    store: &Store,
    repo: &Path,
    target: &Target,
    dry_run: bool,
) -> Result<Vec<RunClean>, Error> {
    let git = Git::new(repo);
    match target {
        Target::Run(query) => {
            let run_id = store.resolve_run(query)?;
            let status = status_of(store, &run_id)?;
            if !status.is_terminal() {
                return Err(Error::NotFinished {
                    run_id,
                    status: status.as_str().to_string(),
                });
            }
            Ok(vec![clean_run(store, &git, &run_id, status, dry_run)?])
        }
        Target::Finished { include_failed } => {
            let mut cleaned = Vec::new();
            for run_id in store.run_ids()? {
                let status = match status_of(store, &run_id) {
                    Ok(status) => status,
                    Err(e) => {
                        cleaned.push(RunClean {
                            run_id,
                            status: "unreadable".into(),
                            skipped: Some(format!("its log cannot be read: {e}")),
                            ..RunClean::default()
                        });
                        continue;
                    }
                };
                let skipped = match status {
                    RunStatus::Running => Some("it is running or was interrupted".to_string()),
                    RunStatus::Suspended => Some("it waits for an approval".to_string()),
                    RunStatus::Failed | RunStatus::Canceled if !include_failed => Some(
                        "kept for inspection (name the run, or add `--include-failed`)".to_string(),
                    ),
                    _ => None,
                };
                if let Some(reason) = skipped {
                    // Only runs that have something to clean are worth a line.
                    if has_work(store, &git, &run_id) {
                        cleaned.push(RunClean {
                            run_id,
                            status: status.as_str().to_string(),
                            skipped: Some(reason),
                            ..RunClean::default()
                        });
                    }
                    continue;
                }
                let run = clean_run(store, &git, &run_id, status, dry_run)?;
                if !run.worktrees.is_empty() || !run.branches.is_empty() || !run.errors.is_empty() {
                    cleaned.push(run);
                }
            }
            Ok(cleaned)
        }
    }
}

fn status_of(store: &Store, run_id: &str) -> Result<RunStatus, crate::record::Error> {
    Ok(fold(&store.read_events(run_id)?).status)
}

/// Does the run have worktrees or work branches left?
fn has_work(store: &Store, git: &Git, run_id: &str) -> bool {
    run_worktrees(store, run_id).is_ok_and(|d| d.exists())
        || !git.branches_under(&work_prefix(run_id)).is_empty()
}

/// `spectacular/<run-short>-`: where the run's work branches are (taken from
/// [`work_branch`], so the two never disagree).
fn work_prefix(run_id: &str) -> String {
    let prefix = work_branch(run_id, "");
    debug_assert!(prefix.starts_with(BRANCH_PREFIX) && prefix.ends_with('-'));
    prefix
}

fn clean_run(
    store: &Store,
    git: &Git,
    run_id: &str,
    status: RunStatus,
    dry_run: bool,
) -> Result<RunClean, Error> {
    let mut run = RunClean {
        run_id: run_id.to_string(),
        status: status.as_str().to_string(),
        ..RunClean::default()
    };
    let dir = run_worktrees(store, run_id).map_err(|e| Error::Unsafe {
        path: run_id.to_string(),
        reason: e.to_string(),
    })?;
    check_not_around_the_repository(&dir, git)?;

    // Worktrees git knows under the run's directory, then what is left of the directory.
    let resolved = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    let registered: Vec<PathBuf> = git
        .worktrees()
        .into_iter()
        .filter(|w| w.starts_with(&resolved) || w.starts_with(&dir))
        .filter(|w| w != &resolved && w != &dir)
        .collect();
    let mut forced = false;
    for worktree in &registered {
        let within = if worktree.starts_with(&resolved) {
            &resolved
        } else {
            &dir
        };
        if !dry_run && super::guard::no_links(within, worktree).is_err() {
            // A link planted where the worktree was: git would act on its target. Only the
            // link goes; prune forgets the worktree.
            if let Err(e) = remove_link_on_the_way(within, worktree) {
                run.errors.push(format!(
                    "cannot remove the link at `{}`: {e}",
                    worktree.display()
                ));
                continue;
            }
            forced = true;
            run.worktrees.push(worktree.clone());
            continue;
        }
        if !dry_run {
            let remove = || {
                git.run(&[
                    "worktree".as_ref(),
                    "remove".as_ref(),
                    "--force".as_ref(),
                    worktree.as_os_str(),
                ])
            };
            // A finished run's worktree is the engine's: a lock (kept while it was in use)
            // does not keep it.
            let removed = remove().or_else(|_| {
                let _ = git.run(&["worktree".as_ref(), "unlock".as_ref(), worktree.as_os_str()]);
                remove()
            });
            if removed.is_err() {
                // Locked, damaged or half-made: remove the directory; prune forgets it.
                if let Err(e) = remove_dir(worktree) {
                    run.errors.push(format!(
                        "cannot remove the worktree `{}`: {e}",
                        worktree.display()
                    ));
                    continue;
                }
                forced = true;
            }
        }
        run.worktrees.push(worktree.clone());
    }
    let leftover = std::fs::symlink_metadata(&dir).is_ok();
    if leftover {
        if !dry_run {
            if let Err(e) = remove_dir(&dir) {
                run.errors
                    .push(format!("cannot remove `{}`: {e}", dir.display()));
            }
            forced = true;
        }
        if registered.is_empty() {
            run.worktrees.push(dir.clone());
        }
    }
    if forced && git.is_repo() {
        if let Err(e) = git.run(&["worktree".as_ref(), "prune".as_ref()]) {
            run.errors.push(e.to_string());
        }
    }

    // Work branches `spectacular/<run-short>-…`; never the integration branch (should it
    // be named under the prefix) nor the current one.
    let current = git.current_branch();
    let integration = integration_branch(run_id);
    let mut doomed = Vec::new();
    for branch in git.branches_under(&work_prefix(run_id)) {
        if branch == integration {
            continue;
        }
        if current.as_deref() == Some(branch.as_str()) {
            run.current.push(branch);
            continue;
        }
        doomed.push(branch);
    }
    // One `git branch -D` for all of them; one by one only to tell which failed.
    let delete = |branches: &[String]| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["branch".as_ref(), "-D".as_ref()];
        args.extend(branches.iter().map(|b| std::ffi::OsStr::new(b.as_str())));
        git.run(&args)
    };
    if dry_run || doomed.is_empty() || delete(&doomed).is_ok() {
        run.branches = doomed;
    } else {
        for branch in doomed {
            match delete(std::slice::from_ref(&branch)) {
                Ok(_) => run.branches.push(branch),
                Err(e) => run
                    .errors
                    .push(format!("cannot delete the branch `{branch}`: {e}")),
            }
        }
    }
    if git.branch_exists(&integration) {
        run.kept = Some(integration);
    }
    Ok(run)
}

/// The run's worktree directory must never contain the repository's own working tree (a
/// store placed oddly): removing it would remove the user's files.
fn check_not_around_the_repository(dir: &Path, git: &Git) -> Result<(), Error> {
    let resolved = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if let Some(top) = git.toplevel() {
        if top.starts_with(&resolved) {
            return Err(Error::Unsafe {
                path: dir.display().to_string(),
                reason: format!("it contains the working tree `{}`", top.display()),
            });
        }
    }
    let repo = git.repo.canonicalize().unwrap_or_else(|_| git.repo.clone());
    if repo.starts_with(&resolved) {
        return Err(Error::Unsafe {
            path: dir.display().to_string(),
            reason: format!("it contains the project `{}`", repo.display()),
        });
    }
    Ok(())
}

/// Remove the first symbolic link on the way from `within` down to `path` (the link, never
/// its target).
fn remove_link_on_the_way(within: &Path, path: &Path) -> std::io::Result<()> {
    let mut at = within.to_path_buf();
    for part in path.strip_prefix(within).unwrap_or(path).components() {
        at.push(part);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return std::fs::remove_file(&at);
        }
    }
    Ok(())
}

/// Remove a directory and what it holds, without following symbolic links out of it (a link
/// is removed, never its target).
fn remove_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `git -C <repo> …` with the engine's settings ([`super::ops`]), for the commands that name
/// paths (which need not be UTF-8).
struct Git {
    repo: PathBuf,
}

impl Git {
    fn new(repo: &Path) -> Git {
        Git {
            repo: repo.to_path_buf(),
        }
    }

    fn run(&self, args: &[&std::ffi::OsStr]) -> Result<String, super::ops::Error> {
        let output = super::ops::run(&self.repo, args)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let command: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
            Err(super::ops::Error::Failed {
                command: command.join(" "),
                dir: self.repo.display().to_string(),
                stderr: crate::knowledge::learn::one_line(&stderr, 300),
            })
        }
    }

    fn is_repo(&self) -> bool {
        self.toplevel().is_some()
    }

    fn toplevel(&self) -> Option<PathBuf> {
        let top = super::ops::toplevel(&self.repo).ok()?;
        Some(top.canonicalize().unwrap_or(top))
    }

    /// The paths of every worktree (`git worktree list --porcelain`), resolved.
    fn worktrees(&self) -> Vec<PathBuf> {
        let Ok(out) = self.run(&["worktree".as_ref(), "list".as_ref(), "--porcelain".as_ref()])
        else {
            return Vec::new();
        };
        out.lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .map(PathBuf::from)
            .collect()
    }

    /// Local branches whose name starts with `prefix` (`spectacular/<run-short>-`).
    fn branches_under(&self, prefix: &str) -> Vec<String> {
        let pattern = format!("refs/heads/{prefix}*");
        let Ok(out) = self.run(&[
            "for-each-ref".as_ref(),
            "--format=%(refname)".as_ref(),
            pattern.as_ref(),
        ]) else {
            return Vec::new();
        };
        out.lines()
            .filter_map(|l| l.strip_prefix("refs/heads/"))
            .filter(|b| b.starts_with(prefix) && b.len() > prefix.len())
            .map(str::to_string)
            .collect()
    }

    fn branch_exists(&self, branch: &str) -> bool {
        super::ops::branch_exists(&self.repo, branch).unwrap_or(false)
    }

    /// The branch checked out in the repository's own working tree.
    fn current_branch(&self) -> Option<String> {
        let out = self
            .run(&[
                "symbolic-ref".as_ref(),
                "--quiet".as_ref(),
                "--short".as_ref(),
                "HEAD".as_ref(),
            ])
            .ok()?;
        Some(out.trim_end_matches('\n').to_string())
    }
}
