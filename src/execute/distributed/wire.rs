//! What travels between a coordinator and its workers, as JSON. Everything read here came from
//! another machine: sizes are bounded and paths are checked before anything is written.

use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The most bytes of files an attempt sends a worker, or a worker sends back (after the
/// process's output, itself capped at `process::OUTPUT_CAP` per stream).
pub const FILES_MAX: u64 = 24 * 1024 * 1024;
/// The most files in either direction.
pub const FILES_COUNT_MAX: usize = 4096;
/// Bundles over this travel through the object store, not inside the message (NATS's
/// default `max_payload` is 1 MiB).
pub const INLINE_MAX: usize = 512 * 1024;

/// An attempt's process, as a worker runs it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkItem {
    pub run_id: String,
    pub phase: String,
    pub attempt: u32,
    pub labels: Vec<String>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub env_remove: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    pub timeout_ms: Option<u64>,
    pub grace_ms: u64,
    /// The attempt directory on the coordinator: the worker puts its own in its place in
    /// `argv` and `env`.
    pub dir: String,
    /// The working directory, the captured streams: relative to the attempt directory.
    pub cwd: String,
    pub stdout: String,
    pub stderr: String,
    /// The attempt directory's files before the process runs.
    pub files: Bundle,
    /// A work package (`workspace: worktree`): the worker runs the process in its own clone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<PackageItem>,
}

/// A work package on a worker: the repository up to the commit the package starts from, as a
/// git bundle in the object store, and where the process works in it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackageItem {
    /// The package's branch: the bundle's one ref is `refs/heads/<branch>`.
    pub branch: String,
    /// The commit the package starts from (its branch's head on the coordinator).
    pub start: String,
    /// The bundle's name in the object store.
    pub bundle: String,
    /// The worktree on the coordinator: the worker puts its clone in its place in `argv` and
    /// `env`.
    pub worktree: String,
    /// The working directory, relative to the worktree.
    pub cwd: String,
}

/// What a worker sends back of a work package.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PackageBack {
    /// The bundle of the branch's commits since the start, in the object store; none when the
    /// branch did not move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// The bundle's tip is the worker's commit of what the process left uncommitted (the
    /// coordinator commits that work itself, with provenance, as it does locally).
    #[serde(default)]
    pub snapshot: bool,
    /// The files of the outputs directory (`.spectacular/out`), which are never committed.
    #[serde(default)]
    pub out: Bundle,
}

/// Files, relative to a directory: inline, or a name in the object store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Bundle {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<File>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct File {
    pub path: String,
    /// Base64.
    pub data: String,
    #[serde(default)]
    pub executable: bool,
}

/// What a worker reports about an attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    /// A worker took the attempt (`delivery` > 1: an earlier worker went silent).
    Claimed {
        phase: String,
        attempt: u32,
        worker: String,
        delivery: u64,
    },
    /// The process ended; `files` are the attempt directory's files after it.
    Ended {
        phase: String,
        attempt: u32,
        worker: String,
        delivery: u64,
        ended: Ended,
        files: Bundle,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package: Option<PackageBack>,
    },
}

/// `process::Ended`, on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum Ended {
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    TimedOut,
    Canceled,
    SpawnFailed {
        message: String,
    },
}

impl From<&crate::execute::process::Ended> for Ended {
    fn from(ended: &crate::execute::process::Ended) -> Ended {
        use crate::execute::process::Ended as P;
        match ended {
            P::Exited { code, signal } => Ended::Exited {
                code: *code,
                signal: *signal,
            },
            P::TimedOut => Ended::TimedOut,
            P::Canceled => Ended::Canceled,
            P::SpawnFailed(message) => Ended::SpawnFailed {
                message: message.clone(),
            },
        }
    }
}

impl From<Ended> for crate::execute::process::Ended {
    fn from(ended: Ended) -> crate::execute::process::Ended {
        use crate::execute::process::Ended as P;
        match ended {
            Ended::Exited { code, signal } => P::Exited { code, signal },
            Ended::TimedOut => P::TimedOut,
            Ended::Canceled => P::Canceled,
            Ended::SpawnFailed { message } => {
                P::SpawnFailed(cut(&message, crate::record::limits::TEXT_MAX))
            }
        }
    }
}

/// Why files could not be packed or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("the attempt's files are over {FILES_MAX} bytes")]
    TooBig,
    #[error("the attempt has over {FILES_COUNT_MAX} files")]
    TooMany,
    #[error("`{0}` is not a path inside the attempt directory; refused")]
    Path(String),
    #[error("`{0}` is not base64")]
    Encoding(String),
    #[error("`{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The regular files under `dir` (symbolic links and other kinds are left out), except
/// `skip`, relative to it.
pub fn pack(dir: &Path, skip: &[&str]) -> Result<Vec<File>, FilesError> {
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let entries = std::fs::read_dir(&here).map_err(|source| FilesError::Io {
            path: here.display().to_string(),
            source,
        })?;
        for entry in entries.flatten() {
            let rel = rel.join(entry.file_name());
            let Some(name) = rel.to_str().map(str::to_string) else {
                continue;
            };
            if skip.contains(&name.as_str()) {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(rel);
            } else if kind.is_file() {
                let path = entry.path();
                let data = std::fs::read(&path).map_err(|source| FilesError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                total += data.len() as u64;
                if total > FILES_MAX {
                    return Err(FilesError::TooBig);
                }
                if files.len() >= FILES_COUNT_MAX {
                    return Err(FilesError::TooMany);
                }
                use std::os::unix::fs::PermissionsExt;
                let executable = entry
                    .metadata()
                    .is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
                files.push(File {
                    path: name,
                    data: base64::engine::general_purpose::STANDARD.encode(&data),
                    executable,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// `rel` as a path inside a directory: relative, with normal components only.
pub fn safe_relative(rel: &str) -> Result<PathBuf, FilesError> {
    let path = Path::new(rel);
    let ok = !rel.is_empty()
        && rel.len() <= 1024
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && !rel.contains('\0');
    if ok {
        Ok(path.to_path_buf())
    } else {
        Err(FilesError::Path(cut(rel, 200)))
    }
}

/// Write `files` under `dir`, refusing any path that would leave it and never writing
/// through a symbolic link (an existing link is replaced, not followed).
pub fn unpack(dir: &Path, files: &[File]) -> Result<(), FilesError> {
    if files.len() > FILES_COUNT_MAX {
        return Err(FilesError::TooMany);
    }
    let mut total = 0u64;
    for file in files {
        let rel = safe_relative(&file.path)?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(&file.data)
            .map_err(|_| FilesError::Encoding(cut(&file.path, 200)))?;
        total += data.len() as u64;
        if total > FILES_MAX {
            return Err(FilesError::TooBig);
        }
        let target = dir.join(&rel);
        let io = |source| FilesError::Io {
            path: target.display().to_string(),
            source,
        };
        // No directory on the way may be a link out of `dir`.
        let mut at = dir.to_path_buf();
        for part in rel.parent().into_iter().flat_map(Path::components) {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                    return Err(FilesError::Path(file.path.clone()))
                }
                Ok(_) => {}
                Err(_) => std::fs::create_dir(&at).map_err(io)?,
            }
        }
        if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_file()) {
            return Err(FilesError::Path(file.path.clone()));
        }
        let _ = std::fs::remove_file(&target);
        std::fs::write(&target, &data).map_err(io)?;
        if file.executable {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755));
        }
    }
    Ok(())
}

/// `text`, bounded to `max` bytes with a marker.
pub fn cut(text: &str, max: usize) -> String {
    let mut text = text.to_string();
    crate::record::limits::bound_text(&mut text, max, None);
    text
}
