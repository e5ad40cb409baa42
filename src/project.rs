//! Where things live: the project root (nearest `.spectacular/`, else the git root, else the
//! working directory), the project's `.spectacular/` directory and the user's config directory.

use std::path::{Path, PathBuf};

/// The directory name of a project's store and configuration.
pub const DOT_DIR: &str = ".spectacular";

/// The project a command works in.
#[derive(Clone, Debug)]
pub struct Project {
    pub root: PathBuf,
}

impl Project {
    /// Find the project for `cwd`: the nearest ancestor holding a `.spectacular/` directory,
    /// else the nearest holding `.git` (a directory, or the file of a git worktree), else `cwd`
    /// itself. A command does this once, at its start, and passes the project down.
    pub fn discover(cwd: &Path) -> Project {
        let dot = cwd.ancestors().find(|dir| dir.join(DOT_DIR).is_dir());
        let git = || cwd.ancestors().find(|dir| dir.join(".git").exists());
        let root = dot.or_else(git).unwrap_or(cwd).to_path_buf();
        Project { root }
    }

    /// The project's `.spectacular/` directory (it may not exist yet).
    pub fn dot_dir(&self) -> PathBuf {
        self.root.join(DOT_DIR)
    }
}

/// The user's configuration directory: `$SPECTACULAR_CONFIG_DIR`, else
/// `$XDG_CONFIG_HOME/spectacular`, else `~/.config/spectacular`.
pub fn user_config_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("SPECTACULAR_CONFIG_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("spectacular")))
        .or_else(|| var("HOME").map(|d| d.join(".config").join("spectacular")))
}

/// `path` relative to `base` when it lies below it, for shorter messages.
pub fn display_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}
