//! The process exit codes: one table, used by every command.

use std::process::ExitCode;

/// Exit codes (DESIGN §8). Scripts rely on them; they never change meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success (a valid mission; a run that succeeded).
    Success = 0,
    /// The run failed.
    RunFailed = 1,
    /// Usage error: bad arguments, or a mission that cannot be found.
    Usage = 2,
    /// The run is suspended, waiting for an approval.
    Suspended = 3,
    /// Invalid input: a mission, policy, spec or config with errors.
    Invalid = 65,
    /// Internal error: a bug, or the machine refused (disk full, fsync failed).
    Internal = 70,
    /// Canceled by the user.
    Canceled = 130,
}

/// (code, name, meaning) for the book and `--help`.
pub const EXIT_CODES: &[(u8, &str, &str)] = &[
    (
        0,
        "success",
        "the command succeeded (a valid mission, a successful run); also when the reader of its \
         output went away (`spectacular replay last | head -1`): the command stops writing and \
         ends quietly, without the 141 of a process killed by SIGPIPE",
    ),
    (
        1,
        "run failed",
        "the run failed; for `missions diff`, the ejected copy differs from the built-in \
         mission (as `diff` exits)",
    ),
    (
        2,
        "usage",
        "bad arguments, or a mission that cannot be found",
    ),
    (
        3,
        "suspended",
        "the run waits for an approval; `spectacular approve` continues it",
    ),
    (
        65,
        "invalid input",
        "a mission, policy, spec or config has errors",
    ),
    (
        70,
        "internal error",
        "a bug in spectacular, the machine refused (disk full, fsync failed), or a run log \
         cannot be read (a damaged line, a line written by a newer version, a repeated \
         `event_id`): the message names the file, the line and the fix",
    ),
    (
        130,
        "canceled",
        "the user canceled (Ctrl-C or `spectacular cancel`)",
    ),
];

impl Exit {
    /// `missions diff`: the files differ (as `diff` does, 1; never a run's outcome).
    pub const DIFFERENT: Exit = Exit::RunFailed;
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
