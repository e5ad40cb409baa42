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

mod command;
mod commit;
mod merge;
mod worktree;

pub use command::*;
pub use commit::*;
pub use merge::*;
pub use worktree::*;

use std::sync::Mutex;

/// At most this many files are listed in a diffstat or a conflict.
pub const MAX_FILES: usize = 500;
/// At most this many hunks are kept per conflicting file, each at most [`MAX_HUNK`] bytes.
pub const MAX_HUNKS: usize = 20;
pub const MAX_HUNK: usize = 4096;

/// Worktree additions and removals change the repository's shared administrative files:
/// one at a time within this process.
static ADMIN: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod env_tests {
    use super::command::{bounded_by, raw};
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

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
