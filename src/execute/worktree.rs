//! Work on branches: the git worktree of each `workspace: worktree` attempt (created or reset
//! before it runs, committed with provenance trailers after it succeeds) and the steps of
//! `builtin/merge`. Git itself does the work (`git::ops`); this module decides what to ask
//! it from recorded facts only, so an attempt after a resume starts from the same commit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::git::guard::{self, Expect, Tampered};
use crate::git::{self, ops};
use crate::model::{FailureKind, PhaseKind, Workspace};
use crate::record::event::*;

/// What the engine knows of a run's branches, folded from its events.
#[derive(Default)]
pub(super) struct Branches {
    /// The git top level of the project, and the commit the run started from.
    pub(super) root: Option<PathBuf>,
    pub(super) base: Option<GitBase>,
    /// Each instance's last committed work (`attempt.succeeded`'s `git`).
    pub(super) heads: HashMap<String, GitWork>,
    /// Work packages whose branch conflicted in a merge, and the branch they conflicted with:
    /// their next attempt starts with that branch merged in, conflicts and all.
    pub(super) conflicts: HashMap<String, String>,
    /// The integration branch's head after the last recorded merge step, and whether that
    /// step conflicted (a person may have committed a resolution on top of it).
    pub(super) integration_head: Option<String>,
    pub(super) integration_conflicted: bool,
    /// Every worktree the engine made for the run ([`git::guard`]).
    pub(super) registry: Option<Arc<guard::Registry>>,
}

impl Branches {
    pub(super) fn observe(&mut self, data: &EventData) {
        match data {
            EventData::RunStarted(d) => self.base = d.git_base.as_deref().cloned(),
            EventData::AttemptSucceeded(d) => {
                if let Some(git) = &d.git {
                    self.heads.insert(d.phase.clone(), (**git).clone());
                    self.conflicts.remove(&d.phase);
                }
            }
            EventData::MergeStep(d) => {
                if d.outcome == MergeOutcome::Conflict {
                    self.conflicts.insert(d.work.clone(), d.into.clone());
                }
                if d.head.is_some() {
                    self.integration_head = d.head.clone();
                }
                self.integration_conflicted = d.outcome == MergeOutcome::Conflict;
            }
            _ => {}
        }
    }
}

/// Does the mission work on branches or read the repository at its base (a worktree or view
/// phase, or a merge)? Such a run records the commit it starts from.
pub(super) fn works_on_branches(mission: &crate::model::Mission) -> bool {
    let from_base = |w: Option<Workspace>| matches!(w, Some(Workspace::Worktree | Workspace::View));
    mission.phases.values().any(|p| {
        from_base(p.workspace)
            || matches!(&p.kind, PhaseKind::Uses { step, .. } if step == "builtin/merge")
    }) || from_base(mission.defaults.workspace)
}

/// Why a run that works on branches has no base to start from.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error(transparent)]
    Git(#[from] ops::Error),
    #[error(
        "the repository at `{}` has no commit yet; commit something first (work packages start \
         from a commit)",
        root.display()
    )]
    NoCommit { root: PathBuf },
    #[error(
        "input `base_branch` is `{branch}`, which is not a branch or commit of the repository at \
         `{}`; pass `--input base_branch=<branch>`",
        root.display()
    )]
    NotABranch { branch: String, root: PathBuf },
}

/// The run's base: input `base_branch` when set, else `HEAD`, resolved to a commit.
pub(super) fn resolve_base(
    project_root: &Path,
    inputs: &std::collections::BTreeMap<String, Value>,
) -> Result<(PathBuf, GitBase), BaseError> {
    let root = ops::toplevel(project_root)?;
    let branch = match inputs.get("base_branch").and_then(Value::as_str) {
        Some(b) if !b.trim().is_empty() => b.trim().to_string(),
        // The branch checked out, or `HEAD` when it is detached.
        _ => ops::git(&root, &["symbolic-ref", "--quiet", "--short", "HEAD"])
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "HEAD".to_string()),
    };
    let commit = ops::commit_of(&root, &branch).map_err(|_| {
        if branch == "HEAD" {
            BaseError::NoCommit { root: root.clone() }
        } else {
            BaseError::NotABranch {
                branch: branch.clone(),
                root: root.clone(),
            }
        }
    })?;
    Ok((root, GitBase { branch, commit }))
}

/// A worktree attempt: where it runs and what it starts from.
#[derive(Clone, Debug)]
pub(super) struct WorktreeJob {
    pub(super) root: PathBuf,
    /// The worktree, and where the project is in it (the same path unless the project is a
    /// directory of a larger repository).
    pub(super) path: PathBuf,
    pub(super) cwd: PathBuf,
    /// The project's directory in the repository (`owned_files` are relative to it).
    pub(super) subdir: PathBuf,
    /// Relative to the project root, for the event.
    pub(super) shown_path: String,
    pub(super) branch: String,
    /// The commit the branch is reset to.
    pub(super) start: String,
    /// Branches and commits merged in on top of `start` before the agent runs (the work of
    /// its dependencies after the first, whose head is `start`).
    pub(super) merges: Vec<(String, String)>,
    /// A branch to merge in and leave conflicting for the agent to resolve.
    pub(super) resolve: Option<String>,
    /// The work package's `owned_files` globs.
    pub(super) owned: Vec<String>,
    /// The commit message's title and the trailers known before the attempt.
    pub(super) title: String,
    pub(super) run_id: String,
    pub(super) instance: String,
    /// The worktrees the engine made, and the directory they are all under.
    pub(super) registry: Arc<guard::Registry>,
    pub(super) within: PathBuf,
}

/// A failure of the engine's git: `tampered` when what it was about to act on is not what
/// it made, else `kind`.
pub(super) fn git_failure(kind: FailureKind, doing: &str, e: Tampered) -> (FailureKind, String) {
    match e {
        Tampered::Git(e) => (kind, format!("{doing}: {e}")),
        e => (
            FailureKind::Tampered,
            format!("{doing}: refused, nothing was touched: {e}"),
        ),
    }
}

/// One line of hostile text for a commit title: no control characters, at most 72 chars.
fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.chars().count() == max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim().to_string()
}

impl WorktreeJob {
    /// Reset the worktree and merge in what the attempt starts from (blocking).
    pub(super) fn prepare(&mut self) -> Result<(), (FailureKind, String)> {
        self.registry
            .prepare(
                &self.root,
                &self.within,
                &self.path,
                Some(&self.branch),
                &self.start,
                Expect::Any,
            )
            .map_err(|e| git_failure(FailureKind::Spawn, "preparing the worktree", e))?;
        for (name, commit) in &self.merges {
            match ops::merge(
                &self.path,
                commit,
                &format!("Merge {name} into {}", self.branch),
            )
            .map_err(|e| {
                (
                    FailureKind::Spawn,
                    format!("merging dependency `{name}`: {e}"),
                )
            })? {
                ops::Merged::Done(_) => {}
                ops::Merged::Conflict(files) => {
                    let _ = ops::abort_merge(&self.path);
                    let names: Vec<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
                    return Err((
                        FailureKind::Spawn,
                        format!(
                            "the work of dependency `{name}` conflicts with the others in {}; \
                             give the work packages disjoint `owned_files` or make one depend \
                             on the other",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Some(branch) = &self.resolve {
            let title = format!("Merge {branch} into {}", self.branch);
            // A conflict stays in the worktree: resolving it is the attempt's work.
            ops::merge(&self.path, branch, &title).map_err(|e| {
                (
                    FailureKind::Spawn,
                    format!("merging `{branch}` to resolve the conflict: {e}"),
                )
            })?;
        }
        Ok(())
    }

    /// Commit what the attempt left, with provenance, and describe the branch's new work
    /// (blocking).
    pub(super) fn commit(
        &self,
        agent: Option<&str>,
        usage: Option<&crate::record::usage::Usage>,
    ) -> Result<GitWork, (FailureKind, String)> {
        // The agent may not point the worktree elsewhere, switch its branch or rewind it.
        let recorded = self
            .registry
            .verify(
                &self.root,
                &self.within,
                &self.path,
                Some(&self.branch),
                Expect::Contains(&self.start),
            )
            .map_err(|e| git_failure(FailureKind::Exit, "committing the attempt's work", e))?;
        // The attempt's processes are gone: a lock one of them left is stale.
        guard::clear_stale_lock(&recorded);
        let git_err = |e: ops::Error| (FailureKind::Exit, format!("committing: {e}"));
        let merged = self.resolve.is_some() || ops::merging(&self.path);
        ops::stage_all(&self.path, &self.start).map_err(git_err)?;
        if merged {
            // Whatever the index says (an agent's `git add -A` marks a conflict resolved).
            let left = ops::with_markers(&self.path, &ops::changed_files(&self.path, &self.start));
            if !left.is_empty() {
                return Err((
                    FailureKind::Exit,
                    format!(
                        "conflict markers are left in {}; resolve every conflict",
                        left.join(", ")
                    ),
                ));
            }
        }
        let mut message = format!("{}\n\n", one_line(&self.title, 72));
        message.push_str(&format!("Spectacular-Run: {}\n", self.run_id));
        message.push_str(&format!("Spectacular-Phase: {}\n", self.instance));
        if let Some(agent) = agent {
            message.push_str(&format!("Spectacular-Agent: {}\n", one_line(agent, 100)));
        }
        if let Some(model) = usage.and_then(|u| u.model.as_deref()) {
            message.push_str(&format!("Spectacular-Model: {}\n", one_line(model, 100)));
        }
        if let Some(cost) = usage.and_then(|u| u.cost_usd) {
            message.push_str(&format!("Spectacular-Cost: ${cost:.4}\n"));
        }
        ops::commit_staged(&self.path, &message).map_err(git_err)?;
        let (head, commits, stat) = ops::work_since(&self.path, &self.start).map_err(git_err)?;
        // On every file changed, before any list is cut.
        let outside_owned = if self.owned.is_empty() {
            Vec::new()
        } else {
            let owned = crate::tasks::globs::Owned::new(&self.owned);
            ops::changed_files(&self.path, &self.start)
                .into_iter()
                .filter(|f| {
                    let in_project = Path::new(f.as_str())
                        .strip_prefix(&self.subdir)
                        .ok()
                        .and_then(Path::to_str);
                    !in_project.is_some_and(|f| owned.matches(f))
                })
                .take(ops::MAX_FILES)
                .collect()
        };
        Ok(GitWork {
            branch: self.branch.clone(),
            worktree: self.shown_path.clone(),
            base: self.start.clone(),
            head,
            commits,
            files: stat.files,
            insertions: stat.insertions,
            deletions: stat.deletions,
            outside_owned,
        })
    }
}

/// A `workspace: integration` attempt (checks, a validator): it runs on the integration
/// branch at the head the merge recorded, and must leave it there.
#[derive(Clone)]
pub(super) struct IntegrationGuard {
    pub(super) root: PathBuf,
    pub(super) path: PathBuf,
    pub(super) branch: String,
    pub(super) head: String,
    pub(super) registry: Arc<guard::Registry>,
    pub(super) within: PathBuf,
}

impl IntegrationGuard {
    /// The integration worktree is the engine's, on its branch at the recorded head
    /// (blocking). `after`: the attempt has run.
    pub(super) fn verify(&self, after: bool) -> Result<(), (FailureKind, String)> {
        let doing = if after {
            "after the attempt, the integration branch"
        } else {
            "before the attempt, the integration branch"
        };
        self.registry
            .verify(
                &self.root,
                &self.within,
                &self.path,
                Some(&self.branch),
                Expect::Exactly(&self.head),
            )
            .map(|_| ())
            .map_err(|e| git_failure(FailureKind::Spawn, doing, e))
    }
}

/// `builtin/merge`: the branches of a fan-out's work packages merged into the integration
/// branch, one recorded step at a time.
#[derive(Clone)]
pub(super) struct MergeJob {
    pub(super) root: PathBuf,
    pub(super) path: PathBuf,
    pub(super) shown_path: String,
    /// The project's directory in the integration worktree, relative to the project root.
    pub(super) project_path: String,
    pub(super) into: String,
    pub(super) base: String,
    /// (instance, branch, commit), dependencies first.
    pub(super) steps: Vec<(String, String, String)>,
    pub(super) on_conflict: String,
    pub(super) phase: String,
    pub(super) attempt: u32,
    pub(super) run_id: String,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
    pub(super) registry: Arc<guard::Registry>,
    pub(super) within: PathBuf,
    /// The integration branch's head after the last recorded step, and whether that step
    /// conflicted.
    pub(super) recorded_head: Option<String>,
    pub(super) conflicted: bool,
}

/// How a merge attempt ended: its outputs, or a failure (with the files it is about).
pub(super) type MergeEnd =
    Result<serde_json::Map<String, Value>, (FailureKind, String, Vec<String>)>;

impl MergeJob {
    /// Record one step and wait until it is durable, so the next one starts after it.
    async fn record(&self, step: MergeStep) {
        let (durable, committed) = tokio::sync::oneshot::channel();
        let _ = self.tx.send(Msg::Record {
            data: Box::new(EventData::MergeStep(step)),
            durable,
        });
        let _ = committed.await;
    }

    /// Merge the steps, every git killed as soon as `cancel` says so.
    pub(super) async fn run(self, cancel: watch::Receiver<u8>) -> MergeEnd {
        let spawn = |f: Box<dyn FnOnce() -> Result<ops::Merged, Tampered> + Send>| {
            super::jobs::git_blocking(&cancel, f)
        };
        let fail = |e: String| (FailureKind::Exit, e, Vec::new());
        let refuse = |doing: &str, e: Tampered| {
            let (kind, message) = git_failure(FailureKind::Exit, doing, e);
            (kind, message, Vec::new())
        };
        // The integration worktree, made once and kept: a resumed merge goes on from the head
        // its last recorded step left (a merge killed half-way is abandoned and done again).
        // The branch is the engine's, made from the run's base: one that exists before the
        // engine made it is refused.
        let job = self.clone();
        let ready = super::jobs::git_blocking(&cancel, move || -> Result<String, Tampered> {
            let exists = ops::branch_exists(&job.root, &job.into)?;
            let start = match &job.recorded_head {
                Some(head) => {
                    // A person resolved the conflict the last step left and committed it.
                    let resolved = if job.conflicted && job.on_conflict == "approval" && exists {
                        let now = ops::commit_of(&job.root, &job.into)?;
                        ops::is_ancestor(&job.root, head, &now)?.then_some(now)
                    } else {
                        None
                    };
                    resolved.unwrap_or_else(|| head.clone())
                }
                None if exists && job.registry.get(&job.path).is_none() => {
                    return Err(Tampered::BranchExists {
                        branch: job.into.clone(),
                    })
                }
                None => job.base.clone(),
            };
            job.registry.prepare(
                &job.root,
                &job.within,
                &job.path,
                Some(&job.into),
                &start,
                Expect::Any,
            )?;
            Ok(start)
        })
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| refuse("preparing the integration worktree", e))?;
        let mut head = ready;
        let mut merged = Vec::new();
        for (work, branch, commit) in &self.steps {
            let mut step = MergeStep {
                phase: self.phase.clone(),
                attempt: self.attempt,
                work: work.clone(),
                branch: branch.clone(),
                commit: commit.clone(),
                into: self.into.clone(),
                outcome: MergeOutcome::Already,
                head: Some(head.clone()),
                conflicts: Vec::new(),
            };
            let (path, c) = (self.path.clone(), commit.clone());
            let (job, expected) = (self.clone(), head.clone());
            let title = format!(
                "Merge {branch} into {}\n\nSpectacular-Run: {}\nSpectacular-Phase: {}\n",
                self.into, self.run_id, self.phase
            );
            let done = spawn(Box::new(move || {
                // Nothing but the engine commits here (a phase in the integration worktree
                // that committed or switched branches is refused).
                let recorded = job.registry.verify(
                    &job.root,
                    &job.within,
                    &path,
                    Some(&job.into),
                    Expect::Exactly(&expected),
                )?;
                guard::clear_stale_lock(&recorded);
                let merged = ops::merge(&path, &c, &title)?;
                // The merge commit sits on the head just verified: a branch moved in between
                // (by a process an attempt left) is refused, never built on.
                if let ops::Merged::Done(new) = merged.clone() {
                    let parent = match new == expected {
                        true => expected.clone(),
                        false => ops::commit_of(&path, &format!("{new}^1"))?,
                    };
                    if parent != expected {
                        return Err(Tampered::Moved {
                            branch: job.into.clone(),
                            found: parent.get(..12).unwrap_or(&parent).to_string(),
                            expected: expected.get(..12).unwrap_or(&expected).to_string(),
                        });
                    }
                }
                Ok(merged)
            }))
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| refuse(&format!("merging `{branch}`"), e))?;
            match done {
                // Already in the integration branch (a resumed merge): git did nothing.
                ops::Merged::Done(new_head) if new_head == head => {
                    self.record(step).await;
                    merged.push(work.clone());
                }
                ops::Merged::Done(new_head) => {
                    head = new_head;
                    step.outcome = MergeOutcome::Merged;
                    step.head = Some(head.clone());
                    self.record(step).await;
                    merged.push(work.clone());
                }
                ops::Merged::Conflict(files) => {
                    step.outcome = MergeOutcome::Conflict;
                    step.conflicts = files
                        .iter()
                        .map(|(file, hunks)| ConflictFile {
                            file: file.clone(),
                            hunks: hunks.clone(),
                        })
                        .collect();
                    let names: Vec<String> = files.into_iter().map(|(f, _)| f).collect();
                    let keep = self.on_conflict == "approval";
                    if !keep {
                        let path = self.path.clone();
                        let _ = tokio::task::spawn_blocking(move || ops::abort_merge(&path)).await;
                    }
                    self.record(step).await;
                    let message = match self.on_conflict.as_str() {
                        "approval" => format!(
                            "merging `{branch}` into `{}` conflicts in {}; resolve the conflict \
                             in `{}` and commit it (`git -C {} commit --no-edit`), then approve \
                             this phase to go on",
                            self.into,
                            names.join(", "),
                            self.shown_path,
                            self.shown_path
                        ),
                        "rework" => format!(
                            "merging `{branch}` into `{}` conflicts in {}; `{work}` is sent back \
                             to resolve it on its branch",
                            self.into,
                            names.join(", ")
                        ),
                        _ => format!(
                            "merging `{branch}` into `{}` conflicts in {}",
                            self.into,
                            names.join(", ")
                        ),
                    };
                    return Err((FailureKind::Conflict, message, names));
                }
            }
        }
        let mut outputs = serde_json::Map::new();
        outputs.insert("branch".into(), Value::String(self.into.clone()));
        outputs.insert("head".into(), Value::String(head));
        outputs.insert("worktree".into(), Value::String(self.project_path.clone()));
        outputs.insert(
            "merged".into(),
            Value::Array(merged.into_iter().map(Value::String).collect()),
        );
        Ok(outputs)
    }
}

impl Engine {
    /// The project's git root, or why there is none.
    pub(super) fn git_root(&self) -> Result<PathBuf, (FailureKind, String)> {
        self.branches.root.clone().ok_or_else(|| {
            (
                FailureKind::Spawn,
                format!(
                    "`{}` is not inside a git repository; work on branches needs one (run \
                     `git init` and commit)",
                    self.project_root.display()
                ),
            )
        })
    }

    /// The worktrees the engine made for the run.
    pub(super) fn registry(&self) -> Result<Arc<guard::Registry>, (FailureKind, String)> {
        self.git_root()?;
        self.branches.registry.clone().ok_or_else(|| {
            (
                FailureKind::Spawn,
                "this run does not work on branches; no worktree was recorded".to_string(),
            )
        })
    }

    pub(super) fn base_commit(&self) -> Result<String, (FailureKind, String)> {
        self.branches
            .base
            .as_ref()
            .map(|b| b.commit.clone())
            .ok_or_else(|| {
                (
                    FailureKind::Spawn,
                    "this run recorded no base commit (it started before work on branches \
                 existed); start a new run"
                        .to_string(),
                )
            })
    }

    /// The run's integration worktree, for `workspace: integration`; it must exist.
    pub(super) fn integration_dir(&self) -> Result<PathBuf, (FailureKind, String)> {
        let dir = git::integration_dir(&self.store, self.log.run_id())
            .map_err(|e| (FailureKind::Spawn, format!("worktree: {e}")))?;
        if !dir.join(".git").is_file() {
            return Err((
                FailureKind::Spawn,
                "`workspace: integration` needs the run's integration worktree, which \
                 `builtin/merge` makes: put a merge phase upstream of this one"
                    .to_string(),
            ));
        }
        Ok(dir.join(self.subdir()))
    }

    /// What a `workspace: integration` attempt runs on and must leave as it found it.
    pub(super) fn integration_guard(&self) -> Result<IntegrationGuard, (FailureKind, String)> {
        let run_id = self.log.run_id();
        Ok(IntegrationGuard {
            root: self.git_root()?,
            path: git::integration_dir(&self.store, run_id)
                .map_err(|e| (FailureKind::Spawn, format!("worktree: {e}")))?,
            branch: git::integration_branch(run_id),
            head: match &self.branches.integration_head {
                Some(head) => head.clone(),
                None => self.base_commit()?,
            },
            registry: self.registry()?,
            within: git::worktrees_dir(&self.store),
        })
    }

    /// The project's directory inside the repository (empty when the project is its top).
    pub(super) fn subdir(&self) -> PathBuf {
        let Some(root) = &self.branches.root else {
            return PathBuf::new();
        };
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        canonical(&self.project_root)
            .strip_prefix(canonical(root))
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// `path` relative to the project root, for events and messages.
    fn shown(&self, path: &Path) -> String {
        path.strip_prefix(&self.project_root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Where and from what a `workspace: worktree` attempt of `instance` starts.
    pub(super) fn worktree_job(
        &self,
        instance: &str,
    ) -> Result<WorktreeJob, (FailureKind, String)> {
        let root = self.git_root()?;
        let run_id = self.log.run_id();
        let path = git::worktree_dir(&self.store, run_id, instance)
            .map_err(|e| (FailureKind::Spawn, format!("worktree: {e}")))?;
        let work = git::work_of(instance);
        let branch = git::work_branch(run_id, work);
        let item = self.scheduler.item_of(instance);
        let (start, merges) = match self.branches.heads.get(instance) {
            // Sent back (a check or a conflict): go on from the work it committed.
            Some(previous) => (previous.head.clone(), Vec::new()),
            // From the run's base, or from the work of its dependencies: the first one's
            // head, the others merged in.
            None => {
                let mut deps = self
                    .scheduler
                    .needs_of(instance)
                    .into_iter()
                    .filter_map(|dep| self.branches.heads.get(dep))
                    .map(|work| (work.branch.clone(), work.head.clone()));
                match deps.next() {
                    Some((_, first)) => (first, deps.collect()),
                    None => (self.base_commit()?, Vec::new()),
                }
            }
        };
        let owned = match item.and_then(|i| i.get("owned_files")) {
            Some(Value::Array(globs)) => globs
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let title = match item.and_then(|i| i.get("title")).and_then(Value::as_str) {
            Some(t) => format!("{work}: {t}"),
            None => format!("{instance}: work of run {run_id}"),
        };
        let subdir = self.subdir();
        Ok(WorktreeJob {
            shown_path: self.shown(&path),
            root,
            cwd: path.join(&subdir),
            subdir,
            path,
            branch,
            start,
            merges,
            resolve: self.branches.conflicts.get(instance).cloned(),
            owned,
            title,
            run_id: run_id.to_string(),
            instance: instance.to_string(),
            registry: self.registry()?,
            within: git::worktrees_dir(&self.store),
        })
    }

    /// What `builtin/merge` of `instance` merges, from `with.work` (a fan-out or a phase).
    pub(super) fn merge_job(
        &self,
        instance: &str,
        attempt: u32,
        with: &Value,
    ) -> Result<MergeJob, (FailureKind, String)> {
        let root = self.git_root()?;
        let run_id = self.log.run_id();
        let work = with.get("work").and_then(Value::as_str).ok_or((
            FailureKind::Spawn,
            "builtin/merge needs `with.work`: the phase whose work packages to merge".to_string(),
        ))?;
        let on_conflict = match with.get("on_conflict").and_then(Value::as_str) {
            None => "fail".to_string(),
            Some(m @ ("rework" | "approval" | "fail")) => m.to_string(),
            Some(other) => {
                return Err((
                    FailureKind::Spawn,
                    format!("`with.on_conflict` is `{other}`; use `rework`, `approval` or `fail`"),
                ))
            }
        };
        let children = self.scheduler.children_in_order(work);
        let instances: Vec<&str> = if children.is_empty() {
            vec![work]
        } else {
            children
        };
        let steps = instances
            .into_iter()
            .filter_map(|i| {
                let head = self.branches.heads.get(i)?;
                Some((i.to_string(), head.branch.clone(), head.head.clone()))
            })
            .collect();
        let path = git::integration_dir(&self.store, run_id)
            .map_err(|e| (FailureKind::Spawn, format!("worktree: {e}")))?;
        Ok(MergeJob {
            shown_path: self.shown(&path),
            project_path: self.shown(&path.join(self.subdir())),
            root,
            path,
            into: git::integration_branch(run_id),
            base: self.base_commit()?,
            steps,
            on_conflict,
            phase: instance.to_string(),
            attempt,
            run_id: run_id.to_string(),
            tx: self.tx.clone(),
            registry: self.registry()?,
            within: git::worktrees_dir(&self.store),
            recorded_head: self.branches.integration_head.clone(),
            conflicted: self.branches.integration_conflicted,
        })
    }
}
