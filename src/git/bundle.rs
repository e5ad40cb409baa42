//! Git bundles: how a work package's repository travels to a worker and its commits come back.
//!
//! A bundle from another machine is hostile input. [`fetch_checked`] takes one only when:
//!
//! - it is at most [`BUNDLE_MAX`] bytes, with a readable header of at most [`HEADER_MAX`];
//! - it names exactly one ref, the one expected, and needs no commit but ancestors of the
//!   commit the work started from;
//! - git's own checks of every object pass (`fetch.fsckObjects`, with `.git`, `..` and empty
//!   or absolute names in any tree of any commit made errors);
//! - the tip descends from the start, and so does every commit it brings (no history grafted
//!   from elsewhere), at most [`COMMITS_MAX`] of them;
//! - what changed from the start to the tip stays inside the repository: relative paths with
//!   no `.git` component in any case, no submodule, no symbolic link pointing out of it.
//!
//! The tip is fetched into a ref of the engine's own namespace, removed again when any check
//! fails. Nothing else of the repository changes (objects a refused bundle brought are left
//! for `git gc`).

use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use super::ops;

/// The most bytes a bundle has, either way.
pub const BUNDLE_MAX: u64 = 256 * 1024 * 1024;
/// The most bytes of a bundle's header (its refs and prerequisites).
pub const HEADER_MAX: usize = 64 * 1024;
/// The most commits a work package brings back.
pub const COMMITS_MAX: usize = 1000;

/// Why a bundle was not made or not taken.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Git(#[from] ops::Error),
    #[error("`{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the bundle is {size} bytes, over the {BUNDLE_MAX} allowed")]
    TooBig { size: u64 },
    #[error("the bundle's header is not a git bundle's: {0}")]
    Header(String),
    #[error("the bundle names the refs [{found}]; only `{expected}` is accepted")]
    Refs { found: String, expected: String },
    #[error(
        "the bundle needs commit {0}, which is not an ancestor of the commit the work started from"
    )]
    Prerequisite(String),
    #[error(
        "the bundle's tip {tip} does not descend from {start}, the commit the work started from"
    )]
    NotDescending { tip: String, start: String },
    #[error("the bundle brings commits that do not descend from {start} (history from elsewhere)")]
    Grafted { start: String },
    #[error("the bundle brings {count} commits, over the {COMMITS_MAX} allowed")]
    TooManyCommits { count: usize },
    #[error("the bundle changes `{path}`: {why}")]
    Path { path: String, why: &'static str },
}

/// A bundle's header: the commits it needs and the refs it carries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub prerequisites: Vec<String>,
    /// (commit, ref name).
    pub refs: Vec<(String, String)>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `git bundle create file revs…` in `dir`.
pub fn create(dir: &Path, file: &Path, revs: &[&str]) -> Result<(), Error> {
    let file_arg = file.as_os_str();
    let mut args: Vec<&std::ffi::OsStr> = vec!["bundle".as_ref(), "create".as_ref(), "-q".as_ref()];
    args.push(file_arg);
    args.extend(revs.iter().map(|r| std::ffi::OsStr::new(*r)));
    let out = ops::run(dir, &args)?;
    if !out.status.success() {
        return Err(ops::failed(dir, &["bundle create", &revs.join(" ")], &out).into());
    }
    let size = std::fs::metadata(file).map_err(io(file))?.len();
    if size > BUNDLE_MAX {
        return Err(Error::TooBig { size });
    }
    Ok(())
}

fn is_sha(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Read the header of the bundle `file` (v2 or v3), bounded.
pub fn read_header(file: &Path) -> Result<Header, Error> {
    let size = std::fs::metadata(file).map_err(io(file))?.len();
    if size > BUNDLE_MAX {
        return Err(Error::TooBig { size });
    }
    let mut head = Vec::new();
    std::fs::File::open(file)
        .map_err(io(file))?
        .take(HEADER_MAX as u64)
        .read_to_end(&mut head)
        .map_err(io(file))?;
    let end = head
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or_else(|| Error::Header(format!("no end within {HEADER_MAX} bytes")))?;
    let text = std::str::from_utf8(&head[..end]).map_err(|_| Error::Header("not UTF-8".into()))?;
    let mut lines = text.lines();
    match lines.next() {
        Some("# v2 git bundle" | "# v3 git bundle") => {}
        _ => return Err(Error::Header("no `# v2 git bundle` line".into())),
    }
    let mut header = Header::default();
    for line in lines {
        if let Some(capability) = line.strip_prefix('@') {
            // Only the default object format is accepted.
            if capability != "object-format=sha1" {
                return Err(Error::Header(format!("capability `{capability}`")));
            }
        } else if let Some(rest) = line.strip_prefix('-') {
            let sha = rest.split(' ').next().unwrap_or_default();
            if !is_sha(sha) {
                return Err(Error::Header("a prerequisite is not a commit id".into()));
            }
            header.prerequisites.push(sha.to_string());
        } else {
            let (sha, name) = line
                .split_once(' ')
                .ok_or_else(|| Error::Header("a ref line has no name".into()))?;
            if !is_sha(sha) {
                return Err(Error::Header("a ref is not a commit id".into()));
            }
            header.refs.push((sha.to_string(), name.to_string()));
        }
    }
    Ok(header)
}

/// What a bundle must be to be taken.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The one ref it carries.
    pub name: &'a str,
    /// The commit the work started from: the tip descends from it.
    pub start: &'a str,
    /// The engine's ref the tip is fetched into.
    pub into: &'a str,
}

/// Check the bundle `file` (see the module's documentation) and fetch its tip into
/// `expected.into` in the repository at `root`: the tip.
pub fn fetch_checked(root: &Path, file: &Path, expected: Expected) -> Result<String, Error> {
    let header = read_header(file)?;
    let names: Vec<&str> = header.refs.iter().map(|(_, n)| n.as_str()).collect();
    if names != [expected.name] {
        let mut found: Vec<String> = names
            .iter()
            .take(8)
            .map(|n| format!("`{}`", cut(n)))
            .collect();
        if names.len() > 8 {
            found.push("…".into());
        }
        return Err(Error::Refs {
            found: found.join(", "),
            expected: expected.name.to_string(),
        });
    }
    for prerequisite in &header.prerequisites {
        let known = ops::commit_of(root, prerequisite).is_ok();
        if !known || !ops::is_ancestor(root, prerequisite, expected.start)? {
            return Err(Error::Prerequisite(prerequisite.clone()));
        }
    }
    let _ = ops::git(root, &["update-ref", "-d", expected.into]);
    let fetched = fetch_into(root, file, expected.name, expected.into).and_then(|tip| {
        check_work(root, expected.start, &tip)?;
        Ok(tip)
    });
    if fetched.is_err() {
        let _ = ops::git(root, &["update-ref", "-d", expected.into]);
    }
    fetched
}

/// Fetch ref `name` of the bundle `file` into ref `into` of the repository at `root`, with
/// git's checks of every object it brings (see the module's documentation): the commit.
pub fn fetch_into(root: &Path, file: &Path, name: &str, into: &str) -> Result<String, Error> {
    let refspec = format!("{name}:{into}");
    let args: Vec<&std::ffi::OsStr> = vec![
        "-c".as_ref(),
        "protocol.file.allow=always".as_ref(),
        "-c".as_ref(),
        "fetch.fsckObjects=true".as_ref(),
        "-c".as_ref(),
        "fetch.fsck.hasDotgit=error".as_ref(),
        "-c".as_ref(),
        "fetch.fsck.hasDotdot=error".as_ref(),
        "-c".as_ref(),
        "fetch.fsck.hasDot=error".as_ref(),
        "-c".as_ref(),
        "fetch.fsck.fullPathname=error".as_ref(),
        "-c".as_ref(),
        "fetch.fsck.emptyName=error".as_ref(),
        "fetch".as_ref(),
        "-q".as_ref(),
        "--no-tags".as_ref(),
        "--no-write-fetch-head".as_ref(),
        "--no-auto-gc".as_ref(),
        file.as_os_str(),
        refspec.as_ref(),
    ];
    let out = ops::run(root, &args)?;
    if !out.status.success() {
        return Err(ops::failed(root, &["fetch", "<bundle>"], &out).into());
    }
    Ok(ops::commit_of(root, into)?)
}

/// The work from `start` to `tip`: descending from `start`, bounded, inside the repository.
pub fn check_work(root: &Path, start: &str, tip: &str) -> Result<(), Error> {
    if !ops::is_ancestor(root, start, tip)? {
        return Err(Error::NotDescending {
            tip: tip.to_string(),
            start: start.to_string(),
        });
    }
    let range = format!("{start}..{tip}");
    let all = ops::git(root, &["rev-list", "--count", &range])?;
    let descending = ops::git(root, &["rev-list", "--count", "--ancestry-path", &range])?;
    let count: usize = all.trim().parse().unwrap_or(usize::MAX);
    if count > COMMITS_MAX {
        return Err(Error::TooManyCommits { count });
    }
    if all != descending {
        return Err(Error::Grafted {
            start: start.to_string(),
        });
    }
    let raw = ops::run(
        root,
        &[
            "diff",
            "--raw",
            "-z",
            "--no-renames",
            "--no-abbrev",
            start,
            tip,
        ]
        .map(std::ffi::OsStr::new),
    )?;
    let text = String::from_utf8_lossy(&raw.stdout);
    let mut fields = text.split('\0');
    while let Some(meta) = fields.next() {
        if meta.is_empty() {
            continue;
        }
        let path = fields.next().unwrap_or_default();
        // `:oldmode newmode oldsha newsha status`
        let parts: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        let (mode, sha) = (
            parts.get(1).copied().unwrap_or_default(),
            parts.get(3).copied().unwrap_or_default(),
        );
        check_path(path)?;
        let refuse = |why| Error::Path {
            path: cut(path),
            why,
        };
        match mode {
            "160000" => return Err(refuse("a submodule is not accepted")),
            "120000" => {
                let target = ops::git(root, &["cat-file", "blob", sha])?;
                if !link_inside(path, &target) {
                    return Err(refuse("a symbolic link pointing out of the repository"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A path a commit may change: relative, normal components only, none of them `.git`.
fn check_path(path: &str) -> Result<(), Error> {
    let refuse = |why| Error::Path {
        path: cut(path),
        why,
    };
    if path.is_empty() || path.len() > 4096 || path.contains('\\') {
        return Err(refuse("not a path inside the repository"));
    }
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) => {
                let name = name.to_string_lossy().to_ascii_lowercase();
                if name.trim_end_matches(['.', ' ']) == ".git" {
                    return Err(refuse("a `.git` path is never accepted"));
                }
            }
            _ => return Err(refuse("not a path inside the repository")),
        }
    }
    Ok(())
}

/// Does a symbolic link at `path` with `target` resolve inside the repository?
fn link_inside(path: &str, target: &str) -> bool {
    if target.is_empty() || Path::new(target).is_absolute() {
        return false;
    }
    let mut at: PathBuf = Path::new(path)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for component in Path::new(target).components() {
        match component {
            Component::Normal(name) => at.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                if !at.pop() {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

fn cut(text: &str) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
