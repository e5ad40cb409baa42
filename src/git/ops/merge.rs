//! Merges, conflicts and their markers, fast-forwards.

use super::*;
use std::path::{Path, PathBuf};

/// How a merge went.
#[derive(Clone, Debug, PartialEq)]
pub enum Merged {
    /// Merged: the new head.
    Done(String),
    /// Conflicted: the files and their hunks. The merge is left in progress.
    Conflict(Vec<(String, Vec<String>)>),
}

/// Merge `commit` into what the worktree at `dir` has checked out, with a merge commit
/// titled `message`. On a conflict the merge is left in progress (see [`abort_merge`]).
pub fn merge(dir: &Path, commit: &str, message: &str) -> Result<Merged, Error> {
    let mut args = identity_args(dir);
    args.extend(["merge", "--no-ff", "--no-edit", "-m", message, commit]);
    let out = raw(dir, &args)?;
    if out.status.success() {
        return Ok(Merged::Done(git(dir, &["rev-parse", "HEAD"])?));
    }
    let unmerged = git(dir, &["diff", "--name-only", "--diff-filter=U", "-z"])?;
    let files: Vec<String> = unmerged
        .split('\0')
        .filter(|f| !f.is_empty())
        .take(MAX_FILES)
        .map(str::to_string)
        .collect();
    if files.is_empty() {
        // Not a conflict: something else went wrong.
        return Err(failed(dir, &args, &out));
    }
    let conflicts = files
        .into_iter()
        .map(|file| {
            let hunks = read_regular(&dir.join(&file), 1 << 20)
                .map(|bytes| hunks(&String::from_utf8_lossy(&bytes)))
                .unwrap_or_default();
            (file, hunks)
        })
        .collect();
    Ok(Merged::Conflict(conflicts))
}

/// Give up a merge in progress in the worktree at `dir`.
pub fn abort_merge(dir: &Path) -> Result<(), Error> {
    let _ = raw(dir, &["merge", "--abort"]);
    git(dir, &["reset", "--hard", "HEAD"])?;
    Ok(())
}

/// Is a merge in progress in the worktree at `dir`?
pub fn merging(dir: &Path) -> bool {
    git(dir, &["rev-parse", "--git-path", "MERGE_HEAD"])
        .map(|p| {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { dir.join(p) }.exists()
        })
        .unwrap_or(false)
}

/// The conflict hunks of a file's text: each region from `<<<<<<<` to `>>>>>>>`, at most
/// [`MAX_HUNKS`] of at most [`MAX_HUNK`] bytes.
pub fn hunks(text: &str) -> Vec<String> {
    let mut hunks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.split_inclusive('\n') {
        if line.starts_with("<<<<<<<") {
            current = Some(String::new());
        }
        if let Some(hunk) = current.as_mut() {
            if hunk.len() + line.len() <= MAX_HUNK {
                hunk.push_str(line);
            }
        }
        if line.starts_with(">>>>>>>") {
            if let Some(hunk) = current.take() {
                hunks.push(hunk);
                if hunks.len() == MAX_HUNKS {
                    break;
                }
            }
        }
    }
    hunks
}

/// The first `max` bytes of `path` when it is a regular file: a symbolic link (to a FIFO, a
/// device, a file outside) is never followed, and nothing that can block is opened.
pub(crate) fn read_regular(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read as _;
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Swapped for a FIFO or a link since the check: fail instead of blocking.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let file = options.open(path).ok()?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Files among `files` in the worktree at `dir` that still hold conflict markers (a line
/// opening a conflict, then its separator, then its end). Only regular files are read, and
/// only their first 16 MiB: a link or a FIFO is never opened.
pub fn with_markers(dir: &Path, files: &[String]) -> Vec<String> {
    files
        .iter()
        .filter(|f| {
            let Some(bytes) = read_regular(&dir.join(f), 16 << 20) else {
                return false;
            };
            let text = String::from_utf8_lossy(&bytes);
            let mut stage = 0;
            for line in text.lines() {
                stage = match stage {
                    0 if line.starts_with("<<<<<<< ") || line == "<<<<<<<" => 1,
                    1 if line == "=======" => 2,
                    2 if line.starts_with(">>>>>>> ") || line == ">>>>>>>" => return true,
                    s => s,
                };
            }
            false
        })
        .cloned()
        .collect()
}

/// Every file the index of the worktree at `dir` changes since commit `from` (all of them,
/// never cut: what is checked against `owned_files` and for conflict markers).
pub fn changed_files(dir: &Path, from: &str) -> Vec<String> {
    git(
        dir,
        &[
            "diff",
            "--cached",
            "--name-only",
            "--no-renames",
            "-z",
            from,
        ],
    )
    .map(|out| {
        out.split('\0')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// Fast-forward branch `target` to `to` in the repository at `root`. When `target` is checked
/// out in `root`'s work tree, that tree must be clean and is updated (`merge --ff-only`);
/// when it is checked out in another worktree, nothing moves; otherwise only the branch
/// moves. Refuses anything but a fast-forward.
pub fn fast_forward(root: &Path, target: &str, to: &str) -> Result<(), Error> {
    if let Some(elsewhere) = checked_out_in(root, target, Some(root))? {
        return Err(Error::Failed {
            command: format!("update-ref refs/heads/{target}"),
            dir: root.display().to_string(),
            stderr: format!(
                "`{target}` is checked out in the worktree `{}`; moving it would change that \
                 worktree under it: run `git merge --ff-only {to}` there",
                elsewhere.display()
            ),
        });
    }
    let current = git(root, &["symbolic-ref", "--quiet", "--short", "HEAD"]).unwrap_or_default();
    if current == target {
        let dirty = !git(root, &["status", "--porcelain", "--untracked-files=no"])?.is_empty();
        if dirty {
            return Err(Error::Failed {
                command: format!("merge --ff-only {to}"),
                dir: root.display().to_string(),
                stderr: format!(
                    "`{target}` is checked out with uncommitted changes; commit or stash them, \
                     then apply again"
                ),
            });
        }
        git(root, &["merge", "--ff-only", "-q", to])?;
        return Ok(());
    }
    let from = commit_of(root, target)?;
    if !is_ancestor(root, &from, to)? {
        return Err(Error::Failed {
            command: format!("update-ref refs/heads/{target}"),
            dir: root.display().to_string(),
            stderr: format!("`{target}` has moved on; it cannot be fast-forwarded to `{to}`"),
        });
    }
    let full = format!("refs/heads/{target}");
    git(root, &["update-ref", &full, to, &from])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_are_cut_from_conflict_markers_and_bounded() {
        let text = "a\n<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> b\nc\n";
        assert_eq!(
            hunks(text),
            vec!["<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> b\n"]
        );
        let many = "<<<<<<< a\n=======\n>>>>>>> b\n".repeat(100);
        assert_eq!(hunks(&many).len(), MAX_HUNKS);
        let huge = format!("<<<<<<< a\n{}\n=======\n>>>>>>> b\n", "z".repeat(100_000));
        assert!(hunks(&huge)[0].len() <= MAX_HUNK);
    }
}
