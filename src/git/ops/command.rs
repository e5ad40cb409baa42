//! Running git: the one way the engine runs it (a clean environment, neutral config), bounded
//! by a timeout and by the cancellation of the work it is done for.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
pub(super) fn bounded(
    command: &mut Command,
    dir: &Path,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<Output, Error> {
    bounded_by(command, dir, args, input, timeout())
}

/// [`bounded`], within `limit`.
pub(super) fn bounded_by(
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
pub(super) fn base(command: &mut Command, dir: &Path) {
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
pub(super) fn raw(dir: &Path, args: &[&str]) -> Result<Output, Error> {
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

pub(crate) fn failed(dir: &Path, args: &[&str], out: &Output) -> Error {
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
