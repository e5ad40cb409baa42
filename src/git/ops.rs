//! The git operations of the engine, through the `git` CLI: explicit arguments (never a
//! shell), a fixed locale, no prompts, no user hooks for the engine's own commits, and every
//! failure a typed error naming the command and what git said.
//!
//! Every git the engine runs is bounded: it is killed when it takes longer than [`timeout`],
//! or when the attempt it works for is canceled ([`stopping_when`]): a hung `git` never blocks
//! a run or its Ctrl-C. Working for an attempt, it runs in a process group of its own (the
//! engine, not the terminal, decides when it stops, and the whole group is killed); outside
//! one (`apply`, `clean`), it stays in the engine's group, so a Ctrl-C at the terminal reaches
//! it as it reaches the engine. A lock a killed git leaves is recovered by the next attempt
//! ([`super::guard::clear_stale_lock`]).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most this many files are listed in a diffstat or a conflict.
pub const MAX_FILES: usize = 500;
/// At most this many hunks are kept per conflicting file, each at most [`MAX_HUNK`] bytes.
pub const MAX_HUNKS: usize = 20;
pub const MAX_HUNK: usize = 4096;

/// Worktree additions and removals change the repository's shared administrative files:
/// one at a time within this process.
static ADMIN: Mutex<()> = Mutex::new(());

/// A git command that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`git` could not be started ({0}); install git, it is needed for `workspace: worktree` and `builtin/merge`")]
    Missing(std::io::Error),
    #[error("`git {command}` failed in `{dir}`: {stderr}")]
    Failed {
        command: String,
        dir: String,
        stderr: String,
    },
    #[error("`{0}` is not inside a git repository; run `git init` and commit, or use `workspace: attempt`")]
    NotARepo(String),
    #[error("`{rev}` is not a commit of the repository at `{dir}`")]
    UnknownRev { rev: String, dir: String },
    #[error("`git {command}` in `{dir}` took longer than {seconds}s and was stopped (set `SPECTACULAR_GIT_TIMEOUT` to allow longer)")]
    TimedOut {
        command: String,
        dir: String,
        seconds: u64,
    },
    #[error("`git {command}` in `{dir}` was stopped: the attempt was canceled")]
    Canceled { command: String, dir: String },
}

/// How long one git command of the engine may run: `SPECTACULAR_GIT_TIMEOUT` seconds (a
/// whole number above zero), else 600.
pub fn timeout() -> Duration {
    let seconds = std::env::var("SPECTACULAR_GIT_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(600);
    Duration::from_secs(seconds)
}

/// Whether the work a git command is done for was canceled.
pub type Stop = Arc<dyn Fn() -> bool + Send + Sync>;

thread_local! {
    static STOP: RefCell<Option<Stop>> = const { RefCell::new(None) };
}

/// Puts back the [`Stop`] that was watched before, when dropped.
struct Restore(Option<Stop>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        STOP.with(|s| *s.borrow_mut() = previous);
    }
}

/// Run `f` (on this thread) with every git it runs stopped as soon as `stop` says so: the
/// running one killed, the next ones not started ([`Error::Canceled`]).
pub fn stopping_when<T>(stop: Stop, f: impl FnOnce() -> T) -> T {
    let _restore = Restore(STOP.with(|s| s.replace(Some(stop))));
    f()
}

fn stopped() -> bool {
    STOP.with(|s| s.borrow().as_ref().is_some_and(|stop| stop()))
}

/// Run a git `command` (made by [`command`]) for `args` in `dir` to its end, feeding it
/// `input`: in a process group of its own, killed with it on [`timeout`] or when the watched
/// [`Stop`] says so.
fn bounded(
    command: &mut Command,
    dir: &Path,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<Output, Error> {
    bounded_by(command, dir, args, input, timeout())
}

/// [`bounded`], within `limit`.
fn bounded_by(
    command: &mut Command,
    dir: &Path,
    args: &[&str],
    input: Option<&[u8]>,
    limit: Duration,
) -> Result<Output, Error> {
    use std::io::{Read as _, Write as _};
    use std::process::Stdio;
    let what = || (args.join(" "), dir.display().to_string());
    if stopped() {
        let (command, dir) = what();
        return Err(Error::Canceled { command, dir });
    }
    let watched = STOP.with(|s| s.borrow().is_some());
    #[cfg(unix)]
    if watched {
        use std::os::unix::process::CommandExt as _;
        command.process_group(0);
    }
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::Missing)?;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // Fed from a thread: a git that never reads its input cannot block the engine here.
        // One that ends without reading it fails the write: its status says why.
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(Error::Missing)? {
            break status;
        }
        let canceled = stopped();
        if canceled || started.elapsed() >= limit {
            kill(&mut child, watched);
            let _ = child.wait();
            let _ = (stdout.join(), stderr.join());
            let (command, dir) = what();
            return Err(if canceled {
                Error::Canceled { command, dir }
            } else {
                Error::TimedOut {
                    command,
                    dir,
                    seconds: limit.as_secs(),
                }
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Kill a git, and every process of its group when it leads one (`group`).
fn kill(child: &mut std::process::Child, group: bool) {
    #[cfg(unix)]
    if group {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: a signal to the process group this child leads (it was started with
            // `process_group(0)`); no memory is involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
    let _ = child.kill();
}

/// The variables of the engine's environment git may see: where programs and the user's
/// global config are, and the identity of commits. Nothing else (no API key, no token, no
/// `GIT_*` variable that redirects git or adds config) reaches the engine's git.
const KEPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "SYSTEMROOT",
];

/// Config keys that run a command, neutralised on every invocation of the engine (`-c`
/// wins over every config file): fsmonitor, hooks, ssh, pagers and editors, credential
/// helpers, external diffs, signing programs.
const NEUTRAL: &[&str] = &[
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.sshCommand=ssh",
    "core.pager=cat",
    "core.editor=true",
    "core.askPass=",
    "core.alternateRefsCommand=",
    "sequence.editor=true",
    "credential.helper=",
    "diff.external=",
    "commit.gpgsign=false",
    "tag.gpgSign=false",
    "gpg.program=false",
    "protocol.allow=never",
    "core.quotepath=off",
];

/// Per-driver keys that run a command (`filter.<name>.clean`, `diff.<name>.textconv`,
/// `merge.<name>.driver`…) and their neutral values, for every driver some config file
/// defines: a filter does nothing and is not required, a diff driver has no program, a merge
/// driver fails (a conflict, never a silent merge).
fn driver_overrides(dir: &Path) -> Vec<String> {
    let mut command = Command::new("git");
    base(&mut command, dir);
    let args = ["config", "--list", "--name-only", "-z"];
    let Ok(out) = bounded(command.args(args), dir, &args, None) else {
        return Vec::new();
    };
    let mut overrides = Vec::new();
    for key in String::from_utf8_lossy(&out.stdout).split('\0') {
        if key.is_empty() || key.contains('=') {
            continue;
        }
        let lower = key.to_ascii_lowercase();
        let value = if lower.starts_with("filter.") {
            match lower.rsplit('.').next() {
                Some("clean" | "smudge" | "process") => "",
                Some("required") => "false",
                _ => continue,
            }
        } else if lower.starts_with("diff.") {
            match lower.rsplit('.').next() {
                Some("textconv" | "command") => "",
                _ => continue,
            }
        } else if lower.starts_with("merge.") && lower.ends_with(".driver") {
            "false"
        } else {
            continue;
        };
        let set = format!("{key}={value}");
        if !overrides.contains(&set) {
            overrides.push(set);
        }
    }
    overrides
}

/// What every git the engine runs gets: `-C dir`, the neutral config, a clean environment.
fn base(command: &mut Command, dir: &Path) {
    command.arg("-C").arg(dir);
    for setting in NEUTRAL {
        command.args(["-c", setting]);
    }
    command.env_clear();
    for key in KEPT_ENV {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_EDITOR", "true")
        .env("GIT_MERGE_AUTOEDIT", "no")
        .env("GIT_OPTIONAL_LOCKS", "0");
}

/// `git -C dir` with the engine's settings: a clean environment (see [`KEPT_ENV`]), a fixed
/// locale, no prompts, and every config key that can run a command neutralised (see
/// [`NEUTRAL`] and [`driver_overrides`]). The one way the engine runs git.
pub(super) fn command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    base(&mut command, dir);
    for setting in driver_overrides(dir) {
        command.args(["-c", &setting]);
    }
    command
}

/// Run `git -C dir args…`, returning its output whatever its status.
fn raw(dir: &Path, args: &[&str]) -> Result<Output, Error> {
    bounded(command(dir).args(args), dir, args, None)
}

/// Run `git -C dir args…` with the engine's settings, bounded (see [`bounded`]): for the
/// engine's own git commands outside this module.
pub fn run(dir: &Path, args: &[&std::ffi::OsStr]) -> Result<Output, Error> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
    bounded(command(dir).args(args), dir, &shown, None)
}

/// Run `git -C dir args…`; its stdout, trimmed, or an error with its stderr.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let out = raw(dir, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(failed(dir, args, &out))
    }
}

fn failed(dir: &Path, args: &[&str], out: &Output) -> Error {
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if stderr.is_empty() {
        stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    if stderr.len() > 2000 {
        let mut cut = 2000;
        while !stderr.is_char_boundary(cut) {
            cut -= 1;
        }
        stderr.truncate(cut);
        stderr.push('…');
    }
    Error::Failed {
        command: args.join(" "),
        dir: dir.display().to_string(),
        stderr,
    }
}

/// The top of the work tree holding `dir`.
pub fn toplevel(dir: &Path) -> Result<PathBuf, Error> {
    match git(dir, &["rev-parse", "--show-toplevel"]) {
        Ok(top) => Ok(PathBuf::from(top)),
        Err(Error::Failed { .. }) => Err(Error::NotARepo(dir.display().to_string())),
        Err(e) => Err(e),
    }
}

/// The commit `rev` names.
pub fn commit_of(dir: &Path, rev: &str) -> Result<String, Error> {
    let spec = format!("{rev}^{{commit}}");
    git(dir, &["rev-parse", "--verify", "--quiet", &spec]).map_err(|_| Error::UnknownRev {
        rev: rev.to_string(),
        dir: dir.display().to_string(),
    })
}

/// Does branch `name` exist?
pub fn branch_exists(dir: &Path, name: &str) -> Result<bool, Error> {
    let full = format!("refs/heads/{name}");
    let out = raw(dir, &["show-ref", "--verify", "--quiet", &full])?;
    Ok(out.status.success())
}

/// Is commit `a` an ancestor of (or equal to) `b`?
pub fn is_ancestor(dir: &Path, a: &str, b: &str) -> Result<bool, Error> {
    let args = ["merge-base", "--is-ancestor", a, b];
    let out = raw(dir, &args)?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(failed(dir, &args, &out)),
    }
}

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

/// The identity of the engine's commits when the repository has none configured. Asked once
/// per directory of worktrees (a run's) and process: one `git config` call per run, not two
/// per commit.
fn identity_args(dir: &Path) -> Vec<&'static str> {
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
        args.extend(["-c", concat!("user.name=", super::identity!(name))]);
    }
    if !email {
        args.extend(["-c", concat!("user.email=", super::identity!(email))]);
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

#[cfg(test)]
mod env_tests {
    use super::*;

    #[test]
    fn what_an_agent_staged_of_a_client_cache_is_never_committed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        git(repo, &["init", "-q"]).unwrap();
        std::fs::write(repo.join("a.txt"), "a\n").unwrap();
        assert!(commit_all(repo, "first").unwrap());
        std::fs::create_dir_all(repo.join(".aider.tags.cache.v4")).unwrap();
        std::fs::write(repo.join(".aider.tags.cache.v4/cache.db"), "x").unwrap();
        std::fs::create_dir_all(repo.join(".spectacular/out")).unwrap();
        std::fs::write(repo.join(".spectacular/out/verdicts.json"), "{}").unwrap();
        std::fs::write(repo.join("hello.txt"), "hello\n").unwrap();
        // The agent's own `git add -A` staged all of it.
        git(repo, &["add", "-A"]).unwrap();
        stage_all(repo, "HEAD").unwrap();
        assert!(commit_staged(repo, "work").unwrap());
        let files = git(repo, &["ls-tree", "-r", "--name-only", "HEAD"]).unwrap();
        assert_eq!(files.lines().collect::<Vec<_>>(), ["a.txt", "hello.txt"]);
    }

    /// A git that blocks (reading a FIFO nobody writes) is killed when the work is canceled
    /// or its time is up, and the engine goes on.
    #[cfg(unix)]
    #[test]
    fn a_hung_git_is_stopped_by_cancellation_and_by_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        git(repo, &["init", "-q"]).unwrap();
        let fifo = repo.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let args = ["hash-object", "fifo"];
        let asked = Instant::now();
        let stop: Stop = Arc::new(move || asked.elapsed() > Duration::from_millis(200));
        let canceled = stopping_when(stop, || raw(repo, &args));
        assert!(
            matches!(canceled, Err(Error::Canceled { .. })),
            "{canceled:?}"
        );
        // Once canceled, no other git starts.
        let stop: Stop = Arc::new(|| true);
        let next = stopping_when(stop, || git(repo, &["status"]));
        assert!(matches!(next, Err(Error::Canceled { .. })), "{next:?}");
        let timed_out = bounded_by(
            command(repo).args(args),
            repo,
            &args,
            None,
            Duration::from_millis(200),
        );
        let Err(Error::TimedOut { command, .. }) = timed_out else {
            panic!("{timed_out:?}")
        };
        assert_eq!(command, "hash-object fifo");
        // Nothing was left watching: the next git runs.
        assert!(git(repo, &["status", "--porcelain"]).is_ok());
    }

    #[test]
    fn a_branch_moved_since_it_was_checked_is_never_reset() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        git(repo, &["init", "-q", "-b", "main"]).unwrap();
        std::fs::write(repo.join("a.txt"), "a\n").unwrap();
        assert!(commit_all(repo, "first").unwrap());
        let first = commit_of(repo, "HEAD").unwrap();
        std::fs::write(repo.join("a.txt"), "b\n").unwrap();
        assert!(commit_all(repo, "second").unwrap());
        let second = commit_of(repo, "HEAD").unwrap();
        // Checked at `first`, but someone moved it to `second` since: refused.
        let moved = reset_in_place(repo, Some(("main", &first)), &first);
        assert!(matches!(moved, Err(Error::Failed { .. })), "{moved:?}");
        assert_eq!(commit_of(repo, "main").unwrap(), second);
        // Checked where it is: reset.
        reset_in_place(repo, Some(("main", &second)), &first).unwrap();
        assert_eq!(commit_of(repo, "main").unwrap(), first);
        assert_eq!(std::fs::read_to_string(repo.join("a.txt")).unwrap(), "a\n");
    }

    #[test]
    fn the_engines_git_sees_no_secret_and_runs_no_configured_command() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        let mark = repo.join("ran");
        git(repo, &["init", "-q"]).unwrap();
        let hook = format!("touch '{}'", mark.display());
        git(repo, &["config", "core.fsmonitor", &hook]).unwrap();
        git(repo, &["config", "filter.evil.clean", &hook]).unwrap();
        git(repo, &["config", "filter.evil.required", "true"]).unwrap();
        std::fs::write(repo.join(".gitattributes"), "* filter=evil\n").unwrap();
        std::fs::write(repo.join("a.txt"), "a\n").unwrap();
        // A variable no other test reads.
        std::env::set_var("SPECTACULAR_ENV_TEST_API_KEY", "sk-not-for-git");
        git(repo, &["add", "--all"]).unwrap();
        git(repo, &["status", "--porcelain"]).unwrap();
        assert!(!mark.exists(), "a configured command ran");
        let env = git(repo, &["-c", "alias.e=!env", "e"]).unwrap();
        assert!(!env.contains("sk-not-for-git"), "{env}");
        assert!(env.contains("PATH="), "{env}");
    }
}
