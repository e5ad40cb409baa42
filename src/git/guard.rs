//! The engine's git acts only on what it created.
//!
//! Each worktree the engine makes is recorded (its path, the git directory git made for it,
//! the branch it checks out, or none for a detached one) in the run's `worktrees.json`, with
//! a snapshot of the repository's config files taken when the run first worked on branches.
//! Before every reset, clean, commit or merge the engine asks [`Registry::verify`]:
//!
//! - every directory from `<store>/worktrees` down to the worktree is a real directory (no
//!   symbolic link on the way: a link planted where a later worktree goes is refused);
//! - its `.git` is a regular file naming the git directory recorded, and that directory is a
//!   real directory whose own `gitdir` file names the worktree back;
//! - HEAD is the branch recorded, at the commit expected (exactly, or containing the commit
//!   the attempt started from);
//! - the repository's config files are the ones snapshotted (an agent that wrote
//!   `core.fsmonitor`, a filter or an include is named).
//!
//! Anything else is [`Tampered`]: the operation is not done, and the attempt fails naming
//! what changed. A path that exists but was never recorded (a directory planted before the
//! engine made its worktree there, or one left by a crash between `git worktree add` and the
//! record) is adopted only when git's own administrative files agree it is a worktree of the
//! repository at that very path on the expected branch.
//!
//! The registry is generic: a package's worktree, the integration worktree or a detached view
//! of the base are all a [`Recorded`] with or without a branch.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::ops;

/// One worktree the engine made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The worktree's directory.
    pub path: PathBuf,
    /// The git directory git made for it (`<common>/worktrees/<name>`), as `.git` names it.
    pub gitdir: PathBuf,
    /// The branch it checks out; `None` for a detached worktree.
    pub branch: Option<String>,
}

/// What the commit checked out must be.
#[derive(Clone, Copy, Debug)]
pub enum Expect<'a> {
    /// Any commit (the branch is about to be reset by the engine).
    Any,
    /// Exactly this commit (only the engine commits here).
    Exactly(&'a str),
    /// A commit that contains this one (the agent may commit on its own branch).
    Contains(&'a str),
}

/// What an agent (or anyone) changed under the engine: nothing was done.
#[derive(Debug, thiserror::Error)]
pub enum Tampered {
    #[error("`{path}` is a symbolic link (to `{target}`), not the directory the engine made")]
    Symlink { path: String, target: String },
    #[error("`{path}` is not a directory")]
    NotADirectory { path: String },
    #[error("`{path}` was not made by the engine and git does not know it as a worktree of the repository ({why})")]
    Unregistered { path: String, why: String },
    #[error("`{path}/.git` was changed: it names `{found}`, not the git directory the engine created (`{expected}`)")]
    GitFile {
        path: String,
        found: String,
        expected: String,
    },
    #[error("the git directory `{gitdir}` of `{path}` was changed: {why}")]
    GitDir {
        path: String,
        gitdir: String,
        why: String,
    },
    #[error(
        "HEAD of `{path}` is `{found}`, not the branch `{expected}` (an agent switched branches)"
    )]
    Head {
        path: String,
        found: String,
        expected: String,
    },
    #[error("HEAD of `{path}` is the branch `{branch}`, not the detached commit the engine made it (an agent checked out a branch)")]
    Attached { path: String, branch: String },
    #[error("branch `{branch}` is at {found}, not at {expected} (a commit the engine did not make or check)")]
    Moved {
        branch: String,
        found: String,
        expected: String,
    },
    #[error("branch `{branch}` no longer contains {start}, the commit its attempt started from (it is at {found})")]
    Rewound {
        branch: String,
        start: String,
        found: String,
    },
    #[error("branch `{branch}` already exists and is not this run's own; the engine creates it from the run's base (delete it with `git branch -D {branch}` if it is not yours, then start again)")]
    BranchExists { branch: String },
    #[error("the repository's git config `{file}` was changed during the run ({change}); the engine ran none of it, but the setting stays in your repository: look at it and remove it (`git config --file {file} --unset <key>`)")]
    Config { file: String, change: String },
    #[error("branch `{branch}` is checked out in the worktree `{path}`, which the engine did not make; it is never moved")]
    CheckedOut { branch: String, path: String },
    #[error(transparent)]
    Git(#[from] ops::Error),
}

/// The worktrees of one run and the config snapshot, kept in `<run>/worktrees.json`.
#[derive(Debug)]
pub struct Registry {
    file: PathBuf,
    state: Mutex<State>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    worktrees: Vec<Recorded>,
    /// Config file → its bytes (lossy text) when the run first worked on branches; a file
    /// that did not exist is recorded as `None`.
    #[serde(default)]
    config: BTreeMap<PathBuf, Option<String>>,
}

/// The short form of a commit, for messages.
fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

impl Registry {
    /// The registry of the run whose directory is `run_dir`, for the repository at `root`:
    /// what was recorded, or a new one with the config as it is now.
    pub fn open(run_dir: &Path, root: &Path) -> Registry {
        let file = run_dir.join("worktrees.json");
        let mut state: State = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if state.config.is_empty() {
            state.config = with_includes(config_files(root))
                .into_iter()
                .map(|f| {
                    let text = read_config(&f);
                    (f, text)
                })
                .collect();
        }
        let registry = Registry {
            file,
            state: Mutex::new(state),
        };
        registry.save();
        registry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self) {
        let state = self.lock().clone();
        let Ok(bytes) = serde_json::to_vec_pretty(&state) else {
            return;
        };
        let tmp = self.file.with_extension("json.tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &self.file);
        }
    }

    /// The worktree recorded at `path`.
    pub fn get(&self, path: &Path) -> Option<Recorded> {
        self.lock()
            .worktrees
            .iter()
            .find(|w| w.path == path)
            .cloned()
    }

    /// Record a worktree the engine just made at `path`, reading the git directory its
    /// `.git` names.
    pub fn record(&self, path: &Path, branch: Option<&str>) -> Result<Recorded, Tampered> {
        let gitdir = gitdir_named(path)?;
        let recorded = Recorded {
            path: path.to_path_buf(),
            gitdir,
            branch: branch.map(str::to_string),
        };
        {
            let mut state = self.lock();
            state.worktrees.retain(|w| w.path != path);
            state.worktrees.push(recorded.clone());
            // Its own config (`git config --worktree` with `extensions.worktreeConfig`), and
            // what that includes, watched from now on.
            let own = with_includes(vec![recorded.gitdir.join("config.worktree")]);
            for file in own {
                let text = read_config(&file);
                state.config.entry(file).or_insert(text);
            }
        }
        self.save();
        Ok(recorded)
    }

    /// Forget the worktree at `path` (removed by the engine).
    pub fn forget(&self, path: &Path) {
        self.lock().worktrees.retain(|w| w.path != path);
        self.save();
    }

    /// Is `path` safe for the engine to act on? See the module documentation. `within` is the
    /// directory every worktree of the engine is under (`<store>/worktrees`); `root` the
    /// repository. A path not recorded is adopted when git agrees it is the worktree it
    /// should be.
    pub fn verify(
        &self,
        root: &Path,
        within: &Path,
        path: &Path,
        branch: Option<&str>,
        expect: Expect<'_>,
    ) -> Result<Recorded, Tampered> {
        real_dirs(within, path)?;
        let recorded = match self.get(path) {
            Some(r) => r,
            None => {
                let adopted = adoptable(root, path)?;
                let recorded = self.record(path, branch)?;
                debug_assert_eq!(adopted, recorded.gitdir);
                recorded
            }
        };
        let found = gitdir_named(path)?;
        if found != recorded.gitdir {
            return Err(Tampered::GitFile {
                path: shown(path),
                found: shown(&found),
                expected: shown(&recorded.gitdir),
            });
        }
        check_gitdir(path, &recorded.gitdir)?;
        self.check_config()?;
        // Read as a regular file only: a FIFO planted as HEAD would block the engine here.
        let head = read_small(&recorded.gitdir.join("HEAD")).ok_or_else(|| Tampered::GitDir {
            path: shown(path),
            gitdir: shown(&recorded.gitdir),
            why: "its `HEAD` is not a regular file".into(),
        })?;
        let head = head.trim();
        let commit = match &recorded.branch {
            Some(branch) => {
                let want = format!("ref: refs/heads/{branch}");
                if head != want {
                    return Err(Tampered::Head {
                        path: shown(path),
                        found: head.strip_prefix("ref: ").unwrap_or(head).to_string(),
                        expected: branch.clone(),
                    });
                }
                ops::commit_of(root, &format!("refs/heads/{branch}")).ok()
            }
            None => {
                if let Some(branch) = head.strip_prefix("ref: ") {
                    return Err(Tampered::Attached {
                        path: shown(path),
                        branch: branch.trim_start_matches("refs/heads/").to_string(),
                    });
                }
                Some(head.to_string())
            }
        };
        let name = recorded.branch.clone().unwrap_or_else(|| "HEAD".into());
        match (expect, commit) {
            (Expect::Any, _) => {}
            (Expect::Exactly(want), found) if found.as_deref() != Some(want) => {
                return Err(Tampered::Moved {
                    branch: name,
                    found: found.as_deref().map(short).unwrap_or("nothing").to_string(),
                    expected: short(want).to_string(),
                })
            }
            (Expect::Contains(start), Some(found))
                if !ops::is_ancestor(root, start, &found).unwrap_or(false) =>
            {
                return Err(Tampered::Rewound {
                    branch: name,
                    start: short(start).to_string(),
                    found: short(&found).to_string(),
                });
            }
            (Expect::Contains(start), None) => {
                return Err(Tampered::Rewound {
                    branch: name,
                    start: short(start).to_string(),
                    found: "nothing".into(),
                })
            }
            _ => {}
        }
        Ok(recorded)
    }

    /// Make the worktree at `path` on `branch` (or detached) at `start`, or reset the one
    /// the engine made there, after verifying it ([`Registry::verify`], with `expect` for
    /// the commit it must be at before the reset). A directory without `.git` (left by a
    /// crash before git registered it) is removed first; anything else found there is
    /// [`Tampered`], and nothing is done.
    pub fn prepare(
        &self,
        root: &Path,
        within: &Path,
        path: &Path,
        branch: Option<&str>,
        start: &str,
        expect: Expect<'_>,
    ) -> Result<Recorded, Tampered> {
        no_links(within, path)?;
        self.check_config()?;
        if occupied(path) {
            if self.get(path).is_none() && !occupied(&path.join(".git")) {
                real_dirs(within, path)?;
                std::fs::remove_dir_all(path).map_err(|e| ops::Error::Failed {
                    command: "remove a half-made worktree".into(),
                    dir: shown(path),
                    stderr: e.to_string(),
                })?;
                ops::prune_worktrees(root)?;
            } else {
                let recorded = self.verify(root, within, path, branch, expect)?;
                clear_stale_lock(&recorded);
                // The branch is moved only from where it was just checked to be.
                let at = match branch {
                    Some(b) => Some(ops::commit_of(root, &format!("refs/heads/{b}"))?),
                    None => None,
                };
                let branch = branch.zip(at.as_deref());
                ops::reset_in_place(path, branch, start)?;
                return Ok(recorded);
            }
        }
        if let Some(branch) = branch {
            if let Some(other) = ops::checked_out_in(root, branch, Some(path))? {
                return Err(Tampered::CheckedOut {
                    branch: branch.to_string(),
                    path: shown(&other),
                });
            }
        }
        ops::add_worktree(root, path, branch, start)?;
        self.record(path, branch)
    }

    /// The repository's config files are as they were when the run started.
    pub fn check_config(&self) -> Result<(), Tampered> {
        let config = self.lock().config.clone();
        for (file, before) in config {
            let now = read_config(&file);
            if now != before {
                return Err(Tampered::Config {
                    file: shown(&file),
                    change: config_change(before.as_deref(), now.as_deref()),
                });
            }
        }
        Ok(())
    }
}

/// Remove the `index.lock` a killed git (an agent's, or the engine's own before a crash) left
/// in the git directory of a worktree the engine made and verified: nothing else runs git
/// there between attempts, so the lock is stale. Without this, every later attempt fails on
/// it. Returns whether there was one.
pub fn clear_stale_lock(recorded: &Recorded) -> bool {
    let lock = recorded.gitdir.join("index.lock");
    if !std::fs::symlink_metadata(&lock).is_ok_and(|m| m.is_file()) {
        return false;
    }
    tracing::warn!(
        "removing the stale `{}` left by a git that was killed",
        lock.display()
    );
    std::fs::remove_file(&lock).is_ok()
}

/// The repository's config files an agent could write: the common `config` and
/// `config.worktree`.
fn config_files(root: &Path) -> Vec<PathBuf> {
    let Ok(common) = ops::git(
        root,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    ) else {
        return Vec::new();
    };
    let common = PathBuf::from(common);
    vec![common.join("config"), common.join("config.worktree")]
}

/// The most config files watched through includes.
const MAX_CONFIG_FILES: usize = 64;

/// A config file's text (lossy); `None` when it is missing or not a regular file (a FIFO
/// planted there is never opened).
fn read_config(file: &Path) -> Option<String> {
    ops::read_regular(file, 1 << 20).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `files` and every file they include (`include.path`, `includeIf.<condition>.path`,
/// whatever the condition), transitively, at most [`MAX_CONFIG_FILES`]: a setting an agent
/// writes into an included file is as much a change of the repository's config as one in
/// `config` itself.
fn with_includes(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = Vec::new();
    let mut queue = std::collections::VecDeque::from(files);
    while let Some(file) = queue.pop_front() {
        if all.contains(&file) || all.len() >= MAX_CONFIG_FILES {
            continue;
        }
        if let Some(text) = read_config(&file) {
            queue.extend(included(&file, &text));
        }
        all.push(file);
    }
    all
}

/// The files the config file `file` (with text `text`) includes, resolved as git does: `~/`
/// from `$HOME`, a relative path from the including file's directory.
fn included(file: &Path, text: &str) -> Vec<PathBuf> {
    let mut section = String::new();
    let mut found = Vec::new();
    for line in text.lines() {
        let mut line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let Some((header, after)) = rest.split_once(']') else {
                continue;
            };
            section = header
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            // `[include] path = …` on one line.
            line = after.trim();
        }
        if section != "include" && section != "includeif" {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("path") {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        if value.is_empty() {
            continue;
        }
        let path = if let Some(home) = value.strip_prefix("~/") {
            match std::env::var_os("HOME") {
                Some(h) => PathBuf::from(h).join(home),
                None => continue,
            }
        } else if Path::new(value).is_absolute() {
            PathBuf::from(value)
        } else {
            file.parent().unwrap_or(Path::new(".")).join(value)
        };
        found.push(path);
    }
    found
}

/// What changed between two versions of a config file, in a few words: the lines added and
/// removed, each under its section.
fn config_change(before: Option<&str>, now: Option<&str>) -> String {
    let lines = |text: Option<&str>| -> Vec<String> {
        let mut section = String::new();
        let mut out = Vec::new();
        for line in text.unwrap_or_default().lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                section = line.to_string();
                continue;
            }
            out.push(format!("{section} {line}"));
        }
        out
    };
    let (old, new) = (lines(before), lines(now));
    let clean = |s: &str| crate::knowledge::learn::one_line(s, 120);
    let mut parts: Vec<String> = new
        .iter()
        .filter(|l| !old.contains(l))
        .take(5)
        .map(|l| format!("added `{}`", clean(l)))
        .collect();
    parts.extend(
        old.iter()
            .filter(|l| !new.contains(l))
            .take(5)
            .map(|l| format!("removed `{}`", clean(l))),
    );
    match (before, now) {
        (None, Some(_)) if parts.is_empty() => "created".into(),
        (Some(_), None) => "deleted".into(),
        _ if parts.is_empty() => "reformatted".into(),
        _ => parts.join(", "),
    }
}

/// Every directory from `within` down to `path` is a real directory (not a symbolic link).
fn real_dirs(within: &Path, path: &Path) -> Result<(), Tampered> {
    let below = path
        .strip_prefix(within)
        .map_err(|_| Tampered::Unregistered {
            path: shown(path),
            why: format!("it is not under `{}`", within.display()),
        })?;
    let mut at = within.to_path_buf();
    let check = |at: &Path| -> Result<(), Tampered> {
        match std::fs::symlink_metadata(at) {
            Ok(meta) if meta.file_type().is_symlink() => Err(Tampered::Symlink {
                path: shown(at),
                target: std::fs::read_link(at)
                    .map(|t| shown(&t))
                    .unwrap_or_default(),
            }),
            Ok(meta) if !meta.is_dir() => Err(Tampered::NotADirectory { path: shown(at) }),
            Ok(_) => Ok(()),
            Err(e) => Err(Tampered::Git(ops::Error::Failed {
                command: "stat".into(),
                dir: shown(at),
                stderr: e.to_string(),
            })),
        }
    };
    check(&at)?;
    for part in below.components() {
        match part {
            Component::Normal(p) => at.push(p),
            _ => {
                return Err(Tampered::Unregistered {
                    path: shown(path),
                    why: "its path leaves the worktrees directory".into(),
                })
            }
        }
        check(&at)?;
    }
    Ok(())
}

/// The text of a small administrative file of git, read only when it is a regular file (a
/// link, a FIFO or a device an agent put in its place is never opened: nothing can block).
fn read_small(path: &Path) -> Option<String> {
    ops::read_regular(path, 64 * 1024).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Is there anything at `path` (a link counts)?
pub fn occupied(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Check that nothing on the way from `within` to `path` is a symbolic link, for a path the
/// engine is about to create or remove.
pub fn no_links(within: &Path, path: &Path) -> Result<(), Tampered> {
    // The last component may not exist yet: check what does.
    let mut existing = path.to_path_buf();
    while !occupied(&existing) {
        match existing.parent() {
            Some(parent) if parent.starts_with(within) => existing = parent.to_path_buf(),
            _ => return Ok(()),
        }
    }
    real_dirs(within, &existing)
}

/// The git directory the regular file `<path>/.git` names.
fn gitdir_named(path: &Path) -> Result<PathBuf, Tampered> {
    let dotgit = path.join(".git");
    let meta = std::fs::symlink_metadata(&dotgit).map_err(|e| Tampered::Unregistered {
        path: shown(path),
        why: format!("its `.git` cannot be read: {e}"),
    })?;
    if !meta.is_file() {
        return Err(Tampered::GitFile {
            path: shown(path),
            found: if meta.file_type().is_symlink() {
                "a symbolic link".into()
            } else {
                "a directory".into()
            },
            expected: "a `gitdir:` file".into(),
        });
    }
    let text = read_small(&dotgit).unwrap_or_default();
    let Some(named) = text.trim_end().strip_prefix("gitdir: ") else {
        return Err(Tampered::GitFile {
            path: shown(path),
            found: crate::knowledge::learn::one_line(&text, 100),
            expected: "a `gitdir:` file".into(),
        });
    };
    let named = PathBuf::from(named);
    Ok(if named.is_absolute() {
        named
    } else {
        path.join(named)
    })
}

/// The git directory is a real directory whose `gitdir` file names `<path>/.git` back.
fn check_gitdir(path: &Path, gitdir: &Path) -> Result<(), Tampered> {
    let fail = |why: String| Tampered::GitDir {
        path: shown(path),
        gitdir: shown(gitdir),
        why,
    };
    match std::fs::symlink_metadata(gitdir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(fail("it is not a directory".into())),
        Err(e) => return Err(fail(e.to_string())),
    }
    let back = read_small(&gitdir.join("gitdir")).unwrap_or_default();
    let back = PathBuf::from(back.trim_end());
    let same = |a: &Path, b: &Path| {
        a == b
            || a.canonicalize()
                .ok()
                .zip(b.canonicalize().ok())
                .is_some_and(|(a, b)| a == b)
    };
    if !same(&back, &path.join(".git")) {
        return Err(fail(format!(
            "it belongs to the worktree `{}`",
            back.display()
        )));
    }
    Ok(())
}

/// A path the engine did not record: its git directory when git's administrative files
/// agree it is a worktree of the repository at `root`, at this very path.
fn adoptable(root: &Path, path: &Path) -> Result<PathBuf, Tampered> {
    let gitdir = gitdir_named(path)?;
    let common = ops::git(
        root,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    let admin = PathBuf::from(common).join("worktrees");
    let inside = gitdir.parent().is_some_and(|p| {
        p == admin
            || p.canonicalize()
                .ok()
                .zip(admin.canonicalize().ok())
                .is_some_and(|(a, b)| a == b)
    });
    if !inside {
        return Err(Tampered::Unregistered {
            path: shown(path),
            why: format!(
                "its `.git` names `{}`, not a worktree of the repository",
                gitdir.display()
            ),
        });
    }
    check_gitdir(path, &gitdir).map_err(|e| Tampered::Unregistered {
        path: shown(path),
        why: e.to_string(),
    })?;
    Ok(gitdir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_change_names_the_lines_added_under_their_section() {
        let before = "[core]\n\tbare = false\n";
        let now = "[core]\n\tbare = false\n\tfsmonitor = /tmp/x.sh\n";
        assert_eq!(
            config_change(Some(before), Some(now)),
            "added `[core] fsmonitor = /tmp/x.sh`"
        );
        assert_eq!(config_change(None, Some("[a]\n")), "created");
        assert_eq!(config_change(Some(before), None), "deleted");
    }

    #[test]
    fn included_config_files_are_found_as_git_resolves_them() {
        let config = Path::new("/r/.git/config");
        let text = "[core]\n\tbare = false\n[include]\n\tpath = shared.inc\n\
                    [includeIf \"gitdir:/r/\"]\n\tPath = \"/etc/team.inc\"\n\
                    [alias]\n\tpath = not-an-include\n[include] path = ../one-line.inc\n";
        assert_eq!(
            included(config, text),
            [
                PathBuf::from("/r/.git/shared.inc"),
                PathBuf::from("/etc/team.inc"),
                PathBuf::from("/r/.git/../one-line.inc"),
            ]
        );
    }

    #[test]
    fn a_link_on_the_way_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let within = dir.path().join("worktrees");
        std::fs::create_dir_all(within.join("run")).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&elsewhere, within.join("run/wp")).unwrap();
        #[cfg(unix)]
        assert!(matches!(
            real_dirs(&within, &within.join("run/wp")),
            Err(Tampered::Symlink { .. })
        ));
        assert!(real_dirs(&within, &within.join("run")).is_ok());
        assert!(no_links(&within, &within.join("run/new/deeper")).is_ok());
    }
}
