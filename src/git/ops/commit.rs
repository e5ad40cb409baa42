//! The engine's commits, and what changed between two commits.

use super::*;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The identity of the engine's commits when the repository has none configured. Asked once
/// per directory of worktrees (a run's) and process: one `git config` call per run, not two
/// per commit.
pub(super) fn identity_args(dir: &Path) -> Vec<&'static str> {
    type Known = Vec<(PathBuf, (bool, bool))>;
    static KNOWN: Mutex<Known> = Mutex::new(Vec::new());
    let key = dir.parent().unwrap_or(dir).to_path_buf();
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let (name, email) = match known.iter().find(|(d, _)| *d == key) {
        Some((_, found)) => *found,
        None => {
            let set = raw(dir, &["config", "--get-regexp", "^user[.](name|email)$"])
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let found = (set.contains("user.name "), set.contains("user.email "));
            if known.len() > 64 {
                known.clear();
            }
            known.push((key, found));
            found
        }
    };
    let mut args = Vec::new();
    if !name {
        args.extend(["-c", concat!("user.name=", crate::git::identity!(name))]);
    }
    if !email {
        args.extend(["-c", concat!("user.email=", crate::git::identity!(email))]);
    }
    args
}

/// What clients leave in their working directory and the engine never commits (pathspecs):
/// Aider's tag cache and history files, and the outputs directory of an attempt.
pub const NEVER_COMMITTED: &[&str] = &[
    ":(exclude,glob)**/.aider.tags.cache.v*/**",
    ":(exclude,glob)**/.aider.*.history*",
    ":(exclude,glob)**/.spectacular/out/**",
];

/// [`NEVER_COMMITTED`] as paths whose index entries are put back as they were at the start of
/// the work: what an agent staged or committed there itself is never committed by the engine.
const NEVER_COMMITTED_STAGED: &[&str] = &[
    ":(glob)**/.aider.tags.cache.v*/**",
    ":(glob)**/.aider.*.history*",
    ":(glob)**/.spectacular/out/**",
];

/// Commit everything in the worktree at `dir` (new, changed and deleted files; a merge in
/// progress is concluded) with `message`, but for [`NEVER_COMMITTED`]. Whether there was
/// anything to commit.
pub fn commit_all(dir: &Path, message: &str) -> Result<bool, Error> {
    stage_all(dir, "HEAD")?;
    commit_staged(dir, message)
}

/// Stage everything in the worktree at `dir` (new, changed and deleted files) but for
/// [`NEVER_COMMITTED`], whose index entries are put back as they were at `start` (the commit
/// the work started from): what an agent staged or committed there itself never reaches the
/// branch, and what the repository had there stays.
pub fn stage_all(dir: &Path, start: &str) -> Result<(), Error> {
    let mut add = vec!["add", "--all", "--", "."];
    add.extend(NEVER_COMMITTED);
    git(dir, &add)?;
    let mut reset = vec!["reset", "-q", start, "--"];
    reset.extend(NEVER_COMMITTED_STAGED);
    git(dir, &reset)?;
    Ok(())
}

/// Commit what is staged in the worktree at `dir` (a merge in progress is concluded).
/// Whether there was anything to commit.
pub fn commit_staged(dir: &Path, message: &str) -> Result<bool, Error> {
    let mut args = identity_args(dir);
    args.extend(["commit", "--no-verify", "-q", "-F", "-"]);
    let out = bounded(
        command(dir).args(&args),
        dir,
        &args,
        Some(message.as_bytes()),
    )?;
    if !out.status.success() {
        // `git commit` says so on stdout when the index has nothing new (and no merge is
        // being concluded): nothing to commit is not a failure.
        let said = String::from_utf8_lossy(&out.stdout);
        if said.contains("nothing to commit") || said.contains("nothing added to commit") {
            return Ok(false);
        }
        return Err(failed(dir, &args, &out));
    }
    Ok(true)
}

/// The work on the branch checked out in `dir` since commit `start`: its head, the commits
/// added (oldest first, at most [`MAX_FILES`]) and what changed. One `git log` when the branch
/// gained one ordinary commit (the usual case); one `git diff` more otherwise (line counts of
/// several commits, or of a merge, do not add up).
pub fn work_since(dir: &Path, start: &str) -> Result<(String, Vec<String>, DiffStat), Error> {
    let range = format!("{start}..HEAD");
    let max = format!("--max-count={MAX_FILES}");
    let args = [
        "log",
        "--format=%x00%H %P",
        "--numstat",
        "--no-renames",
        &max,
        &range,
    ];
    let out = git(dir, &args)?;
    let mut commits = Vec::new();
    let mut stat = DiffStat::default();
    let mut merge = false;
    for record in out.split('\0').filter(|r| !r.trim().is_empty()) {
        let mut lines = record.lines();
        let ids: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
        merge |= ids.len() > 2;
        commits.push(ids[0].to_string());
        if commits.len() > 1 {
            continue;
        }
        for line in lines.filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(3, '\t');
            let (Some(add), Some(del), Some(file)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            stat.insertions += add.parse::<u64>().unwrap_or(0);
            stat.deletions += del.parse::<u64>().unwrap_or(0);
            if stat.files.len() < MAX_FILES {
                stat.files.push(file.to_string());
            }
        }
    }
    let Some(head) = commits.first().cloned() else {
        return Ok((start.to_string(), Vec::new(), DiffStat::default()));
    };
    if commits.len() > 1 || merge {
        stat = diffstat(dir, start, &head)?;
    }
    commits.reverse();
    Ok((head, commits, stat))
}

/// What changed between two commits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiffStat {
    pub files: Vec<String>,
    pub insertions: u64,
    pub deletions: u64,
}

/// The files changed between `base` and `head`, with line counts (at most [`MAX_FILES`]
/// files listed; the counts cover all of them).
pub fn diffstat(dir: &Path, base: &str, head: &str) -> Result<DiffStat, Error> {
    let out = git(
        dir,
        &["diff", "--numstat", "--no-renames", "-z", base, head],
    )?;
    let mut stat = DiffStat::default();
    for entry in out.split('\0').filter(|e| !e.is_empty()) {
        let mut parts = entry.splitn(3, '\t');
        let (Some(add), Some(del), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        stat.insertions += add.parse::<u64>().unwrap_or(0);
        stat.deletions += del.parse::<u64>().unwrap_or(0);
        if stat.files.len() < MAX_FILES {
            stat.files.push(file.to_string());
        }
    }
    Ok(stat)
}
