//! The engine's worktrees: made, reset, listed and removed.

use super::*;
use std::path::{Path, PathBuf};

/// Reset the worktree at `path` (one the engine made, verified by the caller) to `branch`
/// (or a detached HEAD) at `start`, clean: anything the last attempt left (changes,
/// untracked files, a merge in progress) is gone. Ignored files (build caches) stay.
///
/// `branch` is `(name, at)`: the branch, checked out there, and the commit the caller saw it
/// at. It is moved with a compare-and-swap (`update-ref <ref> <start> <at>`): a branch moved
/// since the caller checked it is refused, never reset.
pub fn reset_in_place(path: &Path, branch: Option<(&str, &str)>, start: &str) -> Result<(), Error> {
    let _ = raw(path, &["merge", "--abort"]);
    match branch {
        Some((branch, at)) => {
            let full = format!("refs/heads/{branch}");
            git(
                path,
                &["update-ref", "-m", "spectacular: reset", &full, start, at],
            )?;
            git(path, &["checkout", "--force", "-q", branch])?
        }
        None => git(path, &["checkout", "--force", "--detach", start])?,
    };
    git(path, &["reset", "--hard", start])?;
    git(path, &["clean", "-ffd"])?;
    Ok(())
}

/// Make `path` (which does not exist) a worktree of the repository at `root` with `branch`
/// created or moved to `start`, or detached at `start`.
pub fn add_worktree(
    root: &Path,
    path: &Path,
    branch: Option<&str>,
    start: &str,
) -> Result<(), Error> {
    let path_s = path.display().to_string();
    let _admin = ADMIN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::Failed {
            command: "worktree add".into(),
            dir: parent.display().to_string(),
            stderr: e.to_string(),
        })?;
    }
    match branch {
        Some(branch) => git(
            root,
            &["worktree", "add", "--force", "-B", branch, &path_s, start],
        )?,
        None => git(
            root,
            &["worktree", "add", "--force", "--detach", &path_s, start],
        )?,
    };
    Ok(())
}

/// Forget what git knows of worktrees whose directory is gone.
pub fn prune_worktrees(root: &Path) -> Result<(), Error> {
    let _admin = ADMIN.lock().unwrap_or_else(|e| e.into_inner());
    git(root, &["worktree", "prune"])?;
    Ok(())
}

/// The worktree (other than `except`) that has `branch` checked out, if any.
pub fn checked_out_in(
    root: &Path,
    branch: &str,
    except: Option<&Path>,
) -> Result<Option<PathBuf>, Error> {
    let list = git(root, &["worktree", "list", "--porcelain", "-z"])?;
    let full = format!("branch refs/heads/{branch}");
    let mut current: Option<PathBuf> = None;
    for field in list.split('\0') {
        if let Some(path) = field.strip_prefix("worktree ") {
            current = Some(PathBuf::from(path));
        } else if field == full {
            let Some(path) = current.clone() else {
                continue;
            };
            let same = except.is_some_and(|e| {
                e == path
                    || e.canonicalize()
                        .ok()
                        .zip(path.canonicalize().ok())
                        .is_some_and(|(a, b)| a == b)
            });
            if !same {
                return Ok(Some(path));
            }
        }
    }
    Ok(None)
}

/// Make `path` a detached worktree of the repository at `root` at commit `commit`: a
/// read-only view of the code for an attempt, on no branch. Anything at `path` before (a
/// view a crash left) is replaced.
pub fn add_detached_worktree(root: &Path, path: &Path, commit: &str) -> Result<(), Error> {
    if path.symlink_metadata().is_ok() {
        // `remove_dir_all` removes a link planted here, never what it points at.
        let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
        prune_worktrees(root)?;
    }
    add_worktree(root, path, None, commit)
}

/// Remove the worktree at `path`; when git cannot, remove the directory and prune what git
/// knows of it.
pub fn remove_worktree(root: &Path, path: &Path) -> Result<(), Error> {
    let _admin = ADMIN.lock().unwrap_or_else(|e| e.into_inner());
    // A link planted at the worktree's place (or its run directory's): git would find the
    // worktree its target is, and remove that. Only the link goes; prune forgets ours.
    let link = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    if let Some(at) = [Some(path), path.parent()]
        .into_iter()
        .flatten()
        .find(|p| link(p))
    {
        let _ = std::fs::remove_file(at);
        git(root, &["worktree", "prune"])?;
        return Ok(());
    }
    let path_s = path.display().to_string();
    let removed = raw(root, &["worktree", "remove", "--force", "--force", &path_s])
        .is_ok_and(|o| o.status.success());
    if !removed {
        if path.exists() {
            let _ = std::fs::remove_dir_all(path);
        }
        git(root, &["worktree", "prune"])?;
    }
    Ok(())
}
