//! `spectacular missions diff`: an ejected copy of a built-in mission
//! (`.spectacular/missions/<name>/`) compared with the built-in one, file by file, as unified
//! diffs (`---` the ejected copy, `+++` the built-in: the `+` lines are what the built-in has
//! and the copy lacks).

use std::path::{Path, PathBuf};

/// The number of unchanged lines shown around each change.
const CONTEXT: usize = 3;
/// Files above this many lines on both sides are compared as a whole (one hunk) instead of
/// line by line, to bound the work.
const MAX_LINES: usize = 20_000;
/// The most files read from an ejected copy, and the bytes read of each.
const MAX_FILES: usize = 500;
const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// One file that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDiff {
    /// The path inside the mission's folder (`mission.yaml`, `templates/plan.md.j2`).
    pub file: String,
    /// The unified diff, headers included.
    pub text: String,
}

/// Why the comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no built-in mission named `{name}` (built-in: {builtins})")]
    NoBuiltin { name: String, builtins: String },
    #[error(
        "there is no ejected copy of `{name}` in `{dir}`\n  help: `spectacular missions eject \
         {name}` makes one"
    )]
    NotEjected { name: String, dir: String },
    #[error("failed to read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// Compare the ejected copy in `dir` with the built-in mission `name`: the files that
/// differ (present on one side only included), sorted by path. Empty when they are the same.
pub fn compare(name: &str, dir: &Path, shown: &str) -> Result<Vec<FileDiff>, Error> {
    let builtin = super::builtin_files(name);
    if builtin.is_empty() {
        let mut names: Vec<&str> = super::builtin::FILES
            .iter()
            .filter_map(|(p, _)| p.strip_suffix("/mission.yaml"))
            .collect();
        names.sort_unstable();
        return Err(Error::NoBuiltin {
            name: name.to_string(),
            builtins: names.join(", "),
        });
    }
    if !dir.join("mission.yaml").is_file() {
        return Err(Error::NotEjected {
            name: name.to_string(),
            dir: shown.to_string(),
        });
    }
    let mut ejected: Vec<(String, String)> = Vec::new();
    for path in files_under(dir) {
        let relative = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let text = read_bounded(&path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        ejected.push((relative, text));
    }
    let mut names: Vec<String> = builtin
        .iter()
        .map(|(p, _)| p.to_string())
        .chain(ejected.iter().map(|(p, _)| p.clone()))
        .collect();
    names.sort();
    names.dedup();
    let mut diffs = Vec::new();
    for file in names {
        let old = ejected
            .iter()
            .find(|(p, _)| *p == file)
            .map(|(_, t)| t.as_str());
        let new = builtin.iter().find(|(p, _)| *p == file).map(|(_, t)| *t);
        if old == new {
            continue;
        }
        let old_name = match old {
            Some(_) => format!("{shown}/{file}"),
            None => "/dev/null".to_string(),
        };
        let new_name = match new {
            Some(_) => format!("builtin:missions/{name}/{file}"),
            None => "/dev/null".to_string(),
        };
        let text = unified(old.unwrap_or(""), new.unwrap_or(""), &old_name, &new_name);
        diffs.push(FileDiff { file, text });
    }
    Ok(diffs)
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Regular files under `dir` (symbolic links and hidden entries left out), bounded.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() && out.len() < MAX_FILES {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Same,
    Del,
    Add,
}

/// The lines of `text`, each with its newline (a last line without one is marked as git
/// does).
fn lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    if let Some(last) = out.last_mut() {
        if !last.ends_with('\n') {
            last.push_str("\n\\ No newline at end of file\n");
        }
    }
    out
}

/// The edit script from `a` to `b` (longest common subsequence, after the common prefix
/// and suffix).
fn script(a: &[String], b: &[String]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops = vec![Op::Same; prefix];
    if ma.len().max(mb.len()) > MAX_LINES || ma.len() * mb.len() > 16_000_000 {
        ops.extend(std::iter::repeat_n(Op::Del, ma.len()));
        ops.extend(std::iter::repeat_n(Op::Add, mb.len()));
    } else {
        let (n, m) = (ma.len(), mb.len());
        // lcs[i][j]: the longest common subsequence of ma[i..] and mb[j..].
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * (m + 1) + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && ma[i] == mb[j] {
                ops.push(Op::Same);
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
                ops.push(Op::Del);
                i += 1;
            } else {
                ops.push(Op::Add);
                j += 1;
            }
        }
    }
    ops.extend(std::iter::repeat_n(Op::Same, suffix));
    ops
}

/// A unified diff of `old` and `new` with [`CONTEXT`] lines of context; empty when they are
/// the same.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let (a, b) = (lines(old), lines(new));
    let ops = script(&a, &b);
    // Positions in `a` and `b` before each op.
    let mut at = Vec::with_capacity(ops.len() + 1);
    let (mut i, mut j) = (0usize, 0usize);
    for op in &ops {
        at.push((i, j));
        match op {
            Op::Same => {
                i += 1;
                j += 1;
            }
            Op::Del => i += 1,
            Op::Add => j += 1,
        }
    }
    at.push((i, j));
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k] != Op::Same).collect();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = changed[k];
        // Extend the hunk while the next change is within two contexts.
        while k < changed.len() && changed[k] <= end + 2 * CONTEXT + 1 {
            end = changed[k];
            k += 1;
        }
        let end = (end + 1 + CONTEXT).min(ops.len());
        let (a0, b0) = at[start];
        let (a1, b1) = at[end];
        let range = |from: usize, to: usize| {
            let len = to - from;
            let first = if len == 0 { from } else { from + 1 };
            format!("{first},{len}")
        };
        out.push_str(&format!("@@ -{} +{} @@\n", range(a0, a1), range(b0, b1)));
        for (op, &(i, j)) in ops[start..end].iter().zip(&at[start..end]) {
            match op {
                Op::Same => {
                    out.push(' ');
                    out.push_str(&a[i]);
                }
                Op::Del => {
                    out.push('-');
                    out.push_str(&a[i]);
                }
                Op::Add => {
                    out.push('+');
                    out.push_str(&b[j]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_is_one_hunk_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified(old, new, "old", "new"),
            "--- old\n+++ new\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn far_apart_changes_are_two_hunks_and_files_may_be_new() {
        let old: String = (1..=20).map(|n| format!("{n}\n")).collect();
        let new = old.replace("2\n", "two\n").replace("19\n", "nineteen\n");
        let diff = unified(&old, &new, "o", "n");
        assert_eq!(diff.matches("@@ -").count(), 2, "{diff}");
        assert_eq!(
            unified("", "x\n", "/dev/null", "n"),
            "--- /dev/null\n+++ n\n@@ -0,0 +1,1 @@\n+x\n"
        );
        assert_eq!(unified("same\n", "same\n", "o", "n"), "");
    }
}
