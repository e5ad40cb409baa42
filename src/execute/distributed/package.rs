//! Work packages (`workspace: worktree`) on workers.
//!
//! The coordinator prepares the package's worktree as it does locally (reset, the work of its
//! dependencies merged in), then sends the branch's history as a git bundle through the object
//! store (`<run>/<phase>/<attempt>/base-<commit>.bundle`, kept for a redelivery). The worker clones it into a private directory beside the attempt's,
//! checks out the branch, runs the process there with the engine's runner, commits what the
//! process left uncommitted (a *snapshot*) and sends the branch's new commits back as a bundle.
//!
//! The coordinator takes them only through [`crate::git::bundle::fetch_checked`] (one ref,
//! descending from the start, git's object checks, paths inside the repository), into
//! `refs/spectacular/incoming/…`, moves the worktree there (undoing the snapshot commit, so
//! that the work is committed with provenance exactly as locally) and goes on as for a local
//! attempt: outputs, the commit and its checks, the merge.

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt as _;
use tokio::sync::watch;

use super::coordinator::{files_store, get_bundle, put_bundle, BundleError, Link, Remote};
use super::wire::{self, PackageBack, PackageItem};
use crate::execute::prepare::Job;
use crate::execute::process::{self, Ended, Spec};
use crate::execute::worktree::WorktreeJob;
use crate::git::bundle::{self, Expected};
use crate::git::guard::Expect;
use crate::git::ops;

/// Why a work package could not travel to a worker or back.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("git: {0}")]
    Git(#[from] ops::Error),
    #[error("the work package's commits were refused: {0}")]
    Refused(#[from] bundle::Error),
    #[error(transparent)]
    Files(#[from] BundleError),
    #[error("the object store, `{key}`: {detail}")]
    Store { key: String, detail: String },
    #[error("`{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the work package's worktree changed under the engine: {0}")]
    Tampered(String),
    #[error("the work package's commits were refused: {0}")]
    Snapshot(&'static str),
    #[error("`{0}` is not a branch name or commit this worker accepts")]
    Name(String),
    #[error("the work package's git work stopped: {0}")]
    Task(String),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
    move |source| PackageError::Io {
        path: path.display().to_string(),
        source,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PackageError> + Send + 'static,
) -> Result<T, PackageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PackageError::Task(e.to_string()))?
}

/// A file removed when dropped.
struct Temporary(PathBuf);

impl Temporary {
    fn new(what: &str) -> Temporary {
        let name = format!("spectacular-{what}-{}.bundle", ulid::Ulid::new());
        Temporary(std::env::temp_dir().join(name))
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Put the file at `path` in the object store under `key` (left as it is when an object of
/// that name is already there and `shared`).
async fn put_file(link: &Link, key: &str, path: &Path, shared: bool) -> Result<(), PackageError> {
    let store = files_store(link).await?;
    if shared && store.info(key).await.is_ok_and(|info| !info.deleted) {
        return Ok(());
    }
    let mut file = tokio::fs::File::open(path).await.map_err(io_at(path))?;
    store
        .put(key, &mut file)
        .await
        .map_err(|e| PackageError::Store {
            key: key.to_string(),
            detail: e.to_string(),
        })?;
    Ok(())
}

/// Write the object `key` to `path`, refusing one over [`bundle::BUNDLE_MAX`].
async fn get_file(link: &Link, key: &str, path: &Path) -> Result<(), PackageError> {
    let store = files_store(link).await?;
    let store_error = |e: &dyn std::fmt::Display| PackageError::Store {
        key: key.to_string(),
        detail: e.to_string(),
    };
    let object = store.get(key).await.map_err(|e| store_error(&e))?;
    let mut file = tokio::fs::File::create(path).await.map_err(io_at(path))?;
    let copied = tokio::io::copy(&mut object.take(bundle::BUNDLE_MAX + 1), &mut file)
        .await
        .map_err(|e| store_error(&e))?;
    if copied > bundle::BUNDLE_MAX {
        return Err(bundle::Error::TooBig { size: copied }.into());
    }
    Ok(())
}

/// The coordinator's side: run a work package's process on a worker with `labels`, its
/// commits brought back onto the package's branch and its outputs into its outputs directory.
/// A package left with a conflict to resolve runs here (a merge in progress does not travel).
pub(in crate::execute) async fn run(
    remote: &Remote,
    job: &Job,
    worktree: &WorktreeJob,
    spec: Spec,
    labels: &[String],
    cancel: watch::Receiver<u8>,
) -> Ended {
    if worktree.resolve.is_some() || ops::merging(&worktree.path) {
        return process::run(spec, cancel).await;
    }
    match run_remote(remote, job, worktree, spec, labels, cancel).await {
        Ok(ended) => ended,
        Err(e) => Ended::SpawnFailed(e.to_string()),
    }
}

async fn run_remote(
    remote: &Remote,
    job: &Job,
    worktree: &WorktreeJob,
    mut spec: Spec,
    labels: &[String],
    cancel: watch::Receiver<u8>,
) -> Result<Ended, PackageError> {
    let link = remote.link();
    let base = Temporary::new("base");
    let (path, branch, file) = (
        worktree.path.clone(),
        worktree.branch.clone(),
        base.0.clone(),
    );
    let start = blocking(move || {
        let name = format!("refs/heads/{branch}");
        let start = ops::commit_of(&path, &name)?;
        bundle::create(&path, &file, &[&name])?;
        Ok(start)
    })
    .await?;
    // One object per attempt: concurrent puts of one name race in the object store (one
    // put's clean-up removes the other's chunks). A redelivery or a coordinator taking the
    // run over finds it again.
    let key = format!(
        "{}/{}/{}/base-{start}.bundle",
        remote.run_id(),
        job.phase,
        job.attempt
    );
    put_file(link, &key, &base.0, true).await?;
    drop(base);
    let cwd = spec
        .cwd
        .strip_prefix(&worktree.path)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    spec.cwd = job.dir.clone();
    let mut item = remote
        .item(&spec, &job.dir, labels, &job.phase, job.attempt)
        .await?;
    item.package = Some(PackageItem {
        branch: worktree.branch.clone(),
        start: start.clone(),
        bundle: key,
        worktree: worktree.path.to_string_lossy().into_owned(),
        cwd,
    });
    let (ended, files, back) = match remote.send(item, labels, cancel).await {
        Ok(reported) => reported,
        Err(ended) => return Ok(ended),
    };
    remote.unpack(&job.dir, files).await?;
    let back = back.unwrap_or_default();
    if let Some(key) = &back.bundle {
        let file = Temporary::new("back");
        get_file(link, key, &file.0).await?;
        if let Ok(store) = files_store(link).await {
            let _ = store.delete(key.as_str()).await;
        }
        let (worktree, path, snapshot) = (worktree.clone(), file.0.clone(), back.snapshot);
        blocking(move || take_back(&worktree, &start, &path, snapshot)).await?;
    }
    if let Some(out) = &job.out_dir {
        let files = get_bundle(link, back.out).await?;
        let out = out.clone();
        blocking(move || {
            wire::unpack(&out, &files)
                .map_err(BundleError::from)
                .map_err(Into::into)
        })
        .await?;
    }
    Ok(ended.into())
}

/// Bring the package's commits from the bundle at `file` onto its branch, checked, and undo
/// the worker's snapshot commit (its work stays in the worktree, for the engine to commit).
fn take_back(
    worktree: &WorktreeJob,
    start: &str,
    file: &Path,
    snapshot: bool,
) -> Result<(), PackageError> {
    worktree
        .registry
        .verify(
            &worktree.root,
            &worktree.within,
            &worktree.path,
            Some(&worktree.branch),
            Expect::Exactly(start),
        )
        .map_err(|e| PackageError::Tampered(e.to_string()))?;
    let into = format!("refs/spectacular/incoming/{}", ulid::Ulid::new());
    let expected = Expected {
        name: &format!("refs/heads/{}", worktree.branch),
        start,
        into: &into,
    };
    let tip = bundle::fetch_checked(&worktree.root, file, expected)?;
    let moved = (|| {
        if snapshot {
            let parents = ops::git(&worktree.root, &["rev-list", "--parents", "-n", "1", &tip])?;
            let parents: Vec<&str> = parents.split(' ').skip(1).collect();
            match parents[..] {
                [parent] if ops::is_ancestor(&worktree.root, start, parent)? => {}
                _ => {
                    return Err(PackageError::Snapshot(
                        "the snapshot commit is not one commit on the work",
                    ))
                }
            }
        }
        ops::git(&worktree.path, &["reset", "-q", "--hard", &tip])?;
        if snapshot {
            ops::git(&worktree.path, &["reset", "-q", "--soft", "HEAD~1"])?;
        }
        Ok(())
    })();
    let _ = ops::git(&worktree.root, &["update-ref", "-d", &into]);
    moved
}

/// The worker's side: the package's branch checked out in a clone at `repo` (made here, never
/// anyone's checkout) at the commit it starts from; the process's working directory in it.
pub(super) async fn checkout(
    link: &Link,
    package: &PackageItem,
    repo: &Path,
) -> Result<PathBuf, PackageError> {
    let start_ok =
        package.start.len() == 40 && package.start.bytes().all(|b| b.is_ascii_hexdigit());
    if !start_ok {
        return Err(PackageError::Name(wire::cut(&package.start, 80)));
    }
    let cwd = if package.cwd.is_empty() {
        repo.to_path_buf()
    } else {
        repo.join(wire::safe_relative(&package.cwd).map_err(BundleError::from)?)
    };
    std::fs::create_dir_all(repo).map_err(io_at(repo))?;
    let file = Temporary::new("clone");
    get_file(link, &package.bundle, &file.0).await?;
    let (repo, package, path) = (repo.to_path_buf(), package.clone(), file.0.clone());
    blocking(move || {
        ops::git(&repo, &["init", "-q"])?;
        let name = format!("refs/heads/{}", package.branch);
        if ops::git(&repo, &["check-ref-format", &name]).is_err() {
            return Err(PackageError::Name(wire::cut(&package.branch, 80)));
        }
        // One ref at the start commit, needing nothing.
        let header = bundle::read_header(&path)?;
        let from = match &header.refs[..] {
            [(commit, from)] if *commit == package.start && header.prerequisites.is_empty() => {
                from.clone()
            }
            _ => {
                let found: Vec<&str> = header.refs.iter().map(|(_, n)| n.as_str()).collect();
                return Err(bundle::Error::Refs {
                    found: found.join(", "),
                    expected: format!("one ref at {}", package.start),
                }
                .into());
            }
        };
        bundle::fetch_into(&repo, &path, &from, &name)?;
        ops::git(&repo, &["checkout", "-q", &package.branch])?;
        if ops::commit_of(&repo, "HEAD")? != package.start {
            return Err(PackageError::Name(wire::cut(&package.start, 80)));
        }
        Ok(())
    })
    .await?;
    // The outputs directory, as the engine makes it for a local attempt (never committed).
    let out = cwd.join(crate::execute::outputs::WORKSPACE_OUT);
    std::fs::create_dir_all(&out).map_err(io_at(&out))?;
    Ok(cwd)
}

/// The worker's side, after the process: the outputs directory's files, what the process left
/// uncommitted committed as a snapshot, and the branch's new commits as a bundle in the
/// object store.
pub(super) async fn send_back(
    link: &Link,
    item: &wire::WorkItem,
    package: &PackageItem,
    repo: &Path,
    cwd: &Path,
) -> Result<PackageBack, PackageError> {
    let out_dir = cwd.join(crate::execute::outputs::WORKSPACE_OUT);
    let out = if std::fs::symlink_metadata(&out_dir).is_ok_and(|m| m.is_dir()) {
        wire::pack(&out_dir, &[]).map_err(BundleError::from)?
    } else {
        Vec::new()
    };
    let name = format!("{}/{}/package-out", item.phase, item.attempt);
    let out = put_bundle(link, &item.run_id, out, &name).await?;
    let file = Temporary::new("back");
    let (repo, package_, path) = (repo.to_path_buf(), package.clone(), file.0.clone());
    let (snapshot, moved) = blocking(move || {
        let name = format!("refs/heads/{}", package_.branch);
        let on_branch = ops::git(&repo, &["symbolic-ref", "-q", "HEAD"]).is_ok_and(|h| h == name);
        let snapshot = on_branch && {
            ops::stage_all(&repo, &package_.start)?;
            ops::commit_staged(&repo, "Work left uncommitted by the attempt\n")?
        };
        let tip = ops::commit_of(&repo, &name)?;
        if tip == package_.start {
            return Ok((false, false));
        }
        bundle::create(&repo, &path, &[&format!("^{}", package_.start), &name])?;
        Ok((snapshot, true))
    })
    .await?;
    let bundle = if moved {
        let key = format!(
            "{}/{}/{}/back-{}.bundle",
            item.run_id,
            item.phase,
            item.attempt,
            ulid::Ulid::new()
        );
        put_file(link, &key, &file.0, false).await?;
        Some(key)
    } else {
        None
    };
    Ok(PackageBack {
        bundle,
        snapshot,
        out,
    })
}
