//! `builtin/learn`: what failed and what fixed it (error → change), read from a run's events
//! and written into `.spectacular/learnings/<date>.md`, so that later runs' prompts get it
//! (see [`super::for_role`]: planners get every lesson, executors those naming files they
//! own).
//!
//! The folder is this machine's, beside `runs/`, and ignores itself (a `.gitignore` of `*`
//! written with it): a run never leaves a file `git status` shows in the user's checkout. A
//! lesson worth keeping for the team is moved into `.spectacular/knowledge/learnings/`
//! (committed); a lesson known there is not written again either.
//!
//! A lesson is a failed attempt of kind `checks` (its message and `files`) followed, as the
//! next outcome of the same phase instance, by a success: the work committed in between
//! (`attempt.succeeded` with `git`) is what fixed it. Each lesson has a stable key, a digest of
//! its normalised error text (lowercase, numbers and whitespace folded) and its files, written
//! beside it; a lesson whose key is in any learnings file is never written again, in any run.
//!
//! Lesson text comes from checks and agents: it is hostile. Every field is one line, without
//! control or invisible characters, cut to a bound, with the characters that could start
//! Markdown structure escaped; file names are kept only when they are plain (no backtick, no
//! control character, bounded) and shown in code spans. Files are written whole (a temporary
//! file, fsynced, renamed, the directory fsynced) under an exclusive lock, and are bounded:
//! lessons per run, per file, and the file's size.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::FailureKind;
use crate::record::event::{Event, EventData};

/// The longest error text kept, in characters.
pub const MAX_ERROR: usize = 300;
/// The longest heading, in characters (from the error text).
const MAX_TITLE: usize = 80;
/// The longest file name kept, in bytes.
const MAX_PATH: usize = 200;
/// The most files named in one list of a lesson.
pub const MAX_FILES: usize = 20;
/// The most work packages named as a lesson's fix.
const MAX_FIXES: usize = 10;
/// The most lessons one run writes.
pub const MAX_PER_RUN: usize = 20;
/// The most lessons in one learnings file.
pub const MAX_PER_FILE: usize = 50;
/// A learnings file is not grown past this many bytes.
pub const MAX_FILE_BYTES: usize = 128 * 1024;
/// The most learnings files read for known keys, and the bytes read of each.
const MAX_SCANNED: usize = 400;
const MAX_SCAN_BYTES: u64 = 256 * 1024;

/// The marker line before each lesson's fields: `<!-- lesson: <key> -->`.
const MARKER: &str = "<!-- lesson: ";

/// What failed and what fixed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lesson {
    /// 16 hex digits: the digest of the normalised error and the files.
    pub key: String,
    /// The phase instance that failed (`check`).
    pub phase: String,
    pub attempt: u32,
    /// The error, one line, bounded (not yet escaped).
    pub error: String,
    /// The files the failure was about (plain names only).
    pub files: Vec<String>,
    /// The work that fixed it: instance and the files it changed.
    pub fixed_by: Vec<Fix>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub work: String,
    pub files: Vec<String>,
}

/// What [`write`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The file written (none when nothing was new).
    pub path: Option<PathBuf>,
    /// The keys of the lessons written.
    pub written: Vec<String>,
    /// Lessons already known (in any learnings file), not written again.
    pub known: usize,
    /// Lessons left out by the bounds (per run, per file, file size).
    pub dropped: usize,
}

/// One line of hostile text: control and invisible characters become spaces, whitespace is
/// folded, and the result is cut to `max` characters (with `…`).
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in text.chars() {
        let blank = c.is_whitespace() || c.is_control() || is_invisible(c);
        if blank {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    if out.chars().count() > max {
        let mut cut: String = out.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        return cut;
    }
    out
}

/// Format characters that change how text looks or reads without showing themselves: zero
/// widths, bidirectional overrides and isolates, the byte order mark, soft hyphen.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Escape what could start Markdown structure or HTML inside a line of text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '!' | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A file name fit to be shown in a code span: relative, no backtick, no control or invisible
/// character, bounded. Anything else is left out.
fn plain_path(path: &str) -> Option<String> {
    let ok = !path.is_empty()
        && path.len() <= MAX_PATH
        && !path.starts_with('/')
        && !path
            .chars()
            .any(|c| c == '`' || c.is_control() || c.is_whitespace() || is_invisible(c));
    ok.then(|| path.to_string())
}

fn plain_paths<'a>(paths: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let set: BTreeSet<String> = paths.into_iter().filter_map(|p| plain_path(p)).collect();
    set.into_iter().take(MAX_FILES).collect()
}

/// The error as it is compared: lowercase, whitespace folded, and every number that stands
/// alone (a line, a column, a count: `:10:5`, `line 12`, `3 errors`) one `#`; digits inside a
/// word (`u32`, `E0308`) are kept.
fn normalised(error: &str) -> String {
    let mut out = String::new();
    let mut number = false;
    let mut previous = ' ';
    for c in one_line(error, MAX_ERROR * 4).chars() {
        if c.is_ascii_digit() && (number || !(previous.is_alphanumeric() || previous == '_')) {
            if !number {
                out.push('#');
            }
            number = true;
        } else {
            number = false;
            out.extend(c.to_lowercase());
        }
        previous = c;
    }
    out
}

/// The stable key of a lesson: its normalised error and its files.
pub fn key(error: &str, files: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(normalised(error).as_bytes());
    for file in files {
        hasher.update(b"\0");
        hasher.update(file.as_bytes());
    }
    let digest = hasher.finalize();
    digest[..8].iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The lessons of a run's events: each failed `checks` attempt whose phase's next outcome is a
/// success, with the work committed in between that touched its files (or, when none did,
/// all the work committed in between). At most [`MAX_PER_RUN`], each key once.
pub fn lessons(events: &[Event]) -> Vec<Lesson> {
    let mut found: Vec<Lesson> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let EventData::AttemptFailed(failed) = &event.data else {
            continue;
        };
        if failed.kind != FailureKind::Checks {
            continue;
        }
        // The phase's next outcome, and the work committed before it.
        let mut work: Vec<Fix> = Vec::new();
        let mut fixed = false;
        for later in &events[i + 1..] {
            match &later.data {
                EventData::AttemptSucceeded(s) if s.phase == failed.phase => {
                    fixed = true;
                    break;
                }
                EventData::AttemptFailed(f) if f.phase == failed.phase => break,
                EventData::AttemptSucceeded(s) => {
                    if let Some(git) = &s.git {
                        let files = plain_paths(&git.files);
                        if !files.is_empty() {
                            work.push(Fix {
                                work: s.phase.clone(),
                                files,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        if !fixed || work.is_empty() {
            continue;
        }
        let files = plain_paths(&failed.files);
        let touching: Vec<Fix> = work
            .iter()
            .filter(|w| w.files.iter().any(|f| files.contains(f)))
            .cloned()
            .collect();
        let mut fixed_by = if touching.is_empty() { work } else { touching };
        fixed_by.truncate(MAX_FIXES);
        let error = one_line(&failed.message, MAX_ERROR);
        if error.is_empty() {
            continue;
        }
        let key = key(&error, &files);
        if found.iter().any(|l| l.key == key) {
            continue;
        }
        found.push(Lesson {
            key,
            phase: one_line(&failed.phase, 100),
            attempt: failed.attempt,
            error,
            files,
            fixed_by,
        });
        if found.len() == MAX_PER_RUN {
            break;
        }
    }
    found
}

fn code_list(files: &[String]) -> String {
    files
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One lesson as a `## ` section of a learnings file.
pub fn section(lesson: &Lesson, run_id: &str, mission: &str) -> String {
    let mut out = String::new();
    let title = escape(&one_line(&lesson.error, MAX_TITLE));
    let _ = writeln!(out, "## {title}\n");
    let _ = writeln!(out, "{MARKER}{} -->", lesson.key);
    let _ = writeln!(
        out,
        "- **Failed:** {} (attempt {} of run {}, mission {}): {}",
        escape(&lesson.phase),
        lesson.attempt,
        escape(&one_line(run_id, 40)),
        escape(&one_line(mission, 80)),
        escape(&lesson.error)
    );
    if !lesson.files.is_empty() {
        let _ = writeln!(out, "- **Files:** {}", code_list(&lesson.files));
    }
    for fix in &lesson.fixed_by {
        let _ = writeln!(
            out,
            "- **Fixed by:** {} changing {}",
            escape(&one_line(&fix.work, 100)),
            code_list(&fix.files)
        );
    }
    out.push('\n');
    out
}

/// The keys of every lesson in the learnings files of `dir` (bounded).
pub fn known_keys(dir: &Path) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return keys;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    for file in files.iter().rev().take(MAX_SCANNED) {
        let Ok(handle) = std::fs::File::open(file) else {
            continue;
        };
        let mut text = String::new();
        if handle
            .take(MAX_SCAN_BYTES)
            .read_to_string(&mut text)
            .is_err()
        {
            continue;
        }
        keys.extend(text.lines().filter_map(marker_key));
    }
    keys
}

/// The key of a marker line written by [`section`], exactly.
fn marker_key(line: &str) -> Option<String> {
    let key = line.strip_prefix(MARKER)?.strip_suffix(" -->")?;
    (key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit())).then(|| key.to_string())
}

/// Is `date` `YYYY-MM-DD`?
fn is_date(date: &str) -> bool {
    let b = date.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Write the lessons not known yet into `dir/<date>.md` (created, or grown within its
/// bounds), crash-safe and under an exclusive lock on `dir/.lock`.
pub fn write(
    dir: &Path,
    date: &str,
    run_id: &str,
    mission: &str,
    lessons: &[Lesson],
) -> std::io::Result<Written> {
    if !is_date(date) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{date}` is not a date (YYYY-MM-DD); this is a bug in spectacular"),
        ));
    }
    let path = dir.join(format!("{date}.md"));
    // Nothing is written or read through a symbolic link (`knowledge/` linked out of the
    // project, a lessons file linked to one of the user's).
    let lock = dir.join(".lock");
    for at in [dir.parent().unwrap_or(dir), dir, &lock, &path] {
        if std::fs::symlink_metadata(at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(std::io::Error::other(format!(
                "`{}` is a symbolic link; lessons are never written through one",
                at.display()
            )));
        }
    }
    std::fs::create_dir_all(dir)?;
    ignore_itself(dir)?;
    let _lock = Lock::take(&lock)?;
    let mut known = known_keys(dir);
    let mut text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut in_file = text.lines().filter(|l| marker_key(l).is_some()).count();
    if text.is_empty() {
        let _ = writeln!(
            text,
            "# Learnings of {date}\n\n<!-- Written by `builtin/learn`: what failed in a run and \
             what fixed it. Edit or delete freely; a lesson whose marker is gone may be \
             written again. -->\n"
        );
    }
    let mut written = Written::default();
    for lesson in lessons {
        if known.contains(&lesson.key) {
            written.known += 1;
            continue;
        }
        let section = section(lesson, run_id, mission);
        if written.written.len() >= MAX_PER_RUN
            || in_file >= MAX_PER_FILE
            || text.len() + section.len() > MAX_FILE_BYTES
        {
            written.dropped += 1;
            continue;
        }
        text.push_str(&section);
        in_file += 1;
        known.insert(lesson.key.clone());
        written.written.push(lesson.key.clone());
    }
    if !written.written.is_empty() {
        replace(&path, text.as_bytes())?;
        written.path = Some(path);
    }
    Ok(written)
}

/// The `.gitignore` of a folder the engine keeps for this machine: everything in it, itself
/// included, is ignored by git. Written once; one already there is left as it is.
fn ignore_itself(dir: &Path) -> std::io::Result<()> {
    let ignore = dir.join(".gitignore");
    if std::fs::symlink_metadata(&ignore).is_ok() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&ignore)
    {
        Ok(mut file) => file.write_all(
            b"# Written by Spectacular: what runs on this machine learnt; never committed.\n\
              # Move a lesson worth keeping into ../knowledge/learnings/ (committed).\n*\n",
        ),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write `path` whole: a temporary file beside it, fsynced, renamed over it, the directory
/// fsynced. A crash leaves the old file or the new one, never a part.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// An exclusive `flock` on a file, released when dropped.
struct Lock {
    _file: std::fs::File,
}

impl Lock {
    fn take(path: &Path) -> std::io::Result<Lock> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // SAFETY: flock on a file descriptor we own; no memory is involved. It waits while
        // another run writes its lessons (a read and one rename).
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Lock { _file: file })
    }
}

/// Why a run's lessons could not be learned.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("cannot read the run log `{path}`: {source}")]
    ReadLog {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] crate::record::Error),
    #[error("cannot write the lessons into `{dir}`: {source}")]
    Write { dir: String, source: std::io::Error },
}

/// Read a run's log (`run_dir/events.jsonl`, read-only, beside its live writer), find its
/// lessons and write the new ones into `project_root/.spectacular/learnings/` (those already
/// in the team's `.spectacular/knowledge/learnings/` are known, not written again).
pub fn learn(
    project_root: &Path,
    run_dir: &Path,
    run_id: &str,
    mission: &str,
    date: &str,
) -> Result<(Written, usize), LearnError> {
    let log = run_dir.join(crate::record::EVENTS_FILE);
    let bytes = std::fs::read(&log).map_err(|source| LearnError::ReadLog {
        path: log.display().to_string(),
        source,
    })?;
    let events = crate::record::store::parse_log(&log, &bytes, run_id)?.events;
    let all = lessons(&events);
    let dot = project_root.join(crate::project::DOT_DIR);
    let dir = dot.join(super::LOCAL_LEARNINGS);
    let team = known_keys(&dot.join(super::DIR).join(super::LEARNINGS));
    let (in_team, found): (Vec<Lesson>, Vec<Lesson>) =
        all.into_iter().partition(|l| team.contains(&l.key));
    let known = in_team.len();
    let mut written =
        write(&dir, date, run_id, mission, &found).map_err(|source| LearnError::Write {
            dir: dir.display().to_string(),
            source,
        })?;
    written.known += known;
    Ok((written, found.len() + known))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_folds_controls_and_invisibles_and_cuts() {
        assert_eq!(one_line("a\n\tb\u{202E}c\u{0}d  ", 100), "a b c d");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(
            escape("<!-- x --> `y` *z*"),
            "\\<\\!-- x --\\> \\`y\\` \\*z\\*"
        );
    }

    #[test]
    fn keys_ignore_numbers_case_and_spacing() {
        let files = vec!["src/a.rs".to_string()];
        assert_eq!(
            key("src/a.rs:10:5: Expected `u32`", &files),
            key("src/a.rs:12:9:  expected `u32`\n", &files)
        );
        assert_ne!(key("expected u32", &files), key("expected u64", &files));
        assert_ne!(key("expected u32", &files), key("expected u32", &[]));
    }

    #[test]
    fn markers_are_read_exactly() {
        assert_eq!(
            marker_key("<!-- lesson: 0123456789abcdef -->").as_deref(),
            Some("0123456789abcdef")
        );
        assert_eq!(marker_key("x <!-- lesson: 0123456789abcdef -->"), None);
        assert_eq!(marker_key("<!-- lesson: 0123456789abcdeg -->"), None);
        assert!(is_date("2026-11-30") && !is_date("2026-11-3x") && !is_date("../x"));
    }
}
