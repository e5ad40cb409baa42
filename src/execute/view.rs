//! `workspace: view`: a throw-away view of the repository at the run's base commit, for the
//! phases that read the code without changing it (research, planning). Each attempt gets a
//! detached git worktree of its own, made before its process starts and removed when it ends,
//! so that a client confined to its working directory sees the code while the user's
//! checkout (its branch, index and working tree) is never the place it works in.
//!
//! Views are recorded in the run's worktree registry like every worktree the engine makes
//! ([`guard::Registry`]): one a crash left is checked before it is reused, and when the
//! attempt ends the view is checked the same way (no link on the way, its `.git` and git
//! directory the ones git made, HEAD still detached) before it is removed. A view an agent
//! tampered with fails its attempt (kind `tampered`); only its directory is removed then.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::git::guard::{self, Expect};
use crate::git::{self, ops};
use crate::model::{FailureKind, InputType};

/// The view of one attempt: where it is made and from what.
#[derive(Clone, Debug)]
pub(super) struct ViewJob {
    /// The repository's top level.
    pub(super) root: PathBuf,
    /// The view worktree.
    pub(super) path: PathBuf,
    /// Where the project is in it (the same path unless the project is a directory of a
    /// larger repository): the attempt's working directory.
    pub(super) cwd: PathBuf,
    /// The run's base commit.
    pub(super) commit: String,
    /// The run's input files (`type: file` inputs inside the project, a spec not committed
    /// yet): copied into the view at the same place, relative to `cwd`, from where they are.
    pub(super) files: Vec<(PathBuf, PathBuf)>,
    /// The run's worktree registry, and the directory every worktree of the engine is under.
    pub(super) registry: Arc<guard::Registry>,
    pub(super) within: PathBuf,
}

/// Why a view could not be made.
#[derive(Debug, thiserror::Error)]
pub(super) enum ViewError {
    #[error("preparing the view of the repository: {0}")]
    Prepare(guard::Tampered),
    #[error("copying `{}` into the view: {source}", relative.display())]
    Copy {
        relative: PathBuf,
        source: std::io::Error,
    },
}

impl ViewJob {
    /// Make the view (blocking).
    pub(super) fn prepare(&self) -> Result<(), ViewError> {
        self.registry
            .prepare(
                &self.root,
                &self.within,
                &self.path,
                None,
                &self.commit,
                Expect::Any,
            )
            .map_err(ViewError::Prepare)?;
        for (relative, source) in &self.files {
            let target = self.cwd.join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|source| ViewError::Copy {
                    relative: relative.clone(),
                    source,
                })?;
            }
            std::fs::copy(source, &target).map_err(|source| ViewError::Copy {
                relative: relative.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Remove the view, whatever the attempt left in it (blocking), after checking it as
    /// every worktree of the engine is checked: what an agent changed of it (its `.git`, its
    /// git directory, a link on the way, a branch checked out) is returned, and then only
    /// its directory is removed (git is never asked to act on what it points at). A view
    /// that cannot be removed is left for `spectacular clean`, never an attempt's failure.
    pub(super) fn remove(&self) -> Result<(), guard::Tampered> {
        let checked = self
            .registry
            .verify(&self.root, &self.within, &self.path, None, Expect::Any);
        let removed = match &checked {
            Ok(_) => ops::remove_worktree(&self.root, &self.path),
            Err(_) => {
                // `remove_dir_all` removes a link itself, never what it points at.
                let _ = std::fs::remove_dir_all(&self.path)
                    .or_else(|_| std::fs::remove_file(&self.path));
                ops::prune_worktrees(&self.root)
            }
        };
        if let Err(e) = removed {
            tracing::warn!("removing the view `{}`: {e}", self.path.display());
        }
        self.registry.forget(&self.path);
        // `.views/<instance>/` once its last attempt's view is gone.
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        checked.map(|_| ())
    }
}

impl Engine {
    /// The view an attempt of `instance` reads the repository in.
    pub(super) fn view_job(
        &self,
        instance: &str,
        attempt: u32,
        context: &Value,
    ) -> Result<ViewJob, (FailureKind, String)> {
        let root = self.git_root()?;
        let commit = self.base_commit()?;
        let path = git::view_dir(&self.store, self.log.run_id(), instance, attempt)
            .map_err(|e| (FailureKind::Spawn, format!("view: {e}")))?;
        Ok(ViewJob {
            cwd: path.join(self.subdir()),
            root,
            path,
            commit,
            files: self.input_files(context),
            registry: self.registry()?,
            within: git::worktrees_dir(&self.store),
        })
    }

    /// The run's `type: file` inputs that are regular files inside the project, each as (its
    /// path relative to the project, where it is).
    fn input_files(&self, context: &Value) -> Vec<(PathBuf, PathBuf)> {
        let Ok(project) = self.project_root.canonicalize() else {
            return Vec::new();
        };
        let mut files = Vec::new();
        for (name, input) in &self.plan.mission.inputs {
            if input.kind != InputType::File {
                continue;
            }
            let Some(given) = context
                .pointer(&format!("/inputs/{name}"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let Ok(real) = self.project_root.join(given).canonicalize() else {
                continue;
            };
            // Only the project's own files, and never the store (runs, worktrees).
            let Ok(relative) = real.strip_prefix(&project) else {
                continue;
            };
            if relative.starts_with(crate::project::DOT_DIR) || !real.is_file() {
                continue;
            }
            files.push((relative.to_path_buf(), real));
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn git(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }

    #[test]
    fn a_view_shows_the_base_commit_and_leaves_the_checkout_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(&root).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("a.txt"), "base\n").unwrap();
        git(&root, &["add", "a.txt"]);
        git(&root, &["commit", "-q", "-m", "base"]);
        let commit = ops::commit_of(&root, "HEAD").unwrap();
        // The user's work in progress is not what the view shows.
        std::fs::write(root.join("a.txt"), "changed, not committed\n").unwrap();
        let within = root.join(".spectacular/worktrees");
        let path = within.join("r/.views/research/1");
        std::fs::create_dir_all(within.join("r")).unwrap();
        let view = ViewJob {
            root: root.clone(),
            cwd: path.clone(),
            path: path.clone(),
            commit: commit.clone(),
            files: Vec::new(),
            registry: Arc::new(guard::Registry::open(&within.join("r"), &root)),
            within,
        };
        view.prepare().unwrap();
        assert_eq!(
            std::fs::read_to_string(path.join("a.txt")).unwrap(),
            "base\n"
        );
        // Detached: no branch was created or moved.
        let branches = ops::git(&root, &["branch", "--list"]).unwrap();
        assert_eq!(branches.trim(), "* main");
        assert!(view.registry.get(&path).is_some(), "the view is recorded");
        std::fs::write(path.join("scratch.txt"), "left by the agent").unwrap();
        view.remove().unwrap();
        assert!(view.registry.get(&path).is_none());
        assert!(!path.exists());
        assert!(!root
            .join(".spectacular/worktrees/r/.views/research")
            .exists());
        assert_eq!(
            std::fs::read_to_string(root.join("a.txt")).unwrap(),
            "changed, not committed\n"
        );
        assert_eq!(ops::commit_of(&root, "HEAD").unwrap(), commit);
        let listed = ops::git(&root, &["worktree", "list", "--porcelain"]).unwrap();
        assert_eq!(listed.matches("worktree ").count(), 1, "{listed}");
    }
}
