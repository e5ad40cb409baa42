//! The files in an HTTP agent's answer. An HTTP agent has no tools: the files of its phase come
//! in its answer, each as a line naming the file followed by a fenced block with the whole
//! file (the convention of Aider's "whole" edit format). A declared output named so (by its
//! path, or under `.spectacular/out/`, where the built-in prompts ask for it) is written into
//! the attempt directory; in a work package's worktree, the other files are written into the
//! worktree, where the engine commits them. An answer without such an output is, as before,
//! the phase's first declared output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::outputs::{relative_under, WORKSPACE_OUT};

/// The most files one answer may write.
const MAX_FILES: usize = 200;

#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    #[error("the answer's file `{path}` is refused: {reason}")]
    Refused { path: String, reason: String },
    #[error("the answer names more than {MAX_FILES} files")]
    TooMany,
    #[error("writing the answer's file `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The `(path, content)` of every file the answer gives whole, in order.
pub(super) fn files(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        let fence = lines[i + 1].trim_end();
        let ticks = fence.len() - fence.trim_start_matches('`').len();
        let Some(path) = path_line(lines[i]).filter(|_| ticks >= 3 && !fence.starts_with(' '))
        else {
            i += 1;
            continue;
        };
        let close = "`".repeat(ticks);
        let Some(end) = (i + 2..lines.len()).find(|&j| lines[j].trim_end() == close) else {
            break;
        };
        let mut content = lines[i + 2..end].join("\n");
        content.push('\n');
        found.push((path, content));
        i = end + 1;
    }
    found
}

/// The relative path a line names on its own: `src/a.rs`, `` `src/a.rs` ``, `### src/a.rs:`.
fn path_line(line: &str) -> Option<String> {
    let path = line
        .trim()
        .trim_start_matches('#')
        .trim()
        .trim_end_matches(':')
        .trim_matches(['`', '*'])
        .trim();
    let plausible = !path.is_empty()
        && !path.contains(char::is_whitespace)
        && (path.contains('/') || path.contains('.'))
        && !path.starts_with('/')
        && path.len() <= 1024;
    plausible.then(|| path.trim_start_matches("./").to_string())
}

/// Write the files of `text`: declared outputs (`paths`: name → path relative to the
/// attempt directory) into `attempt_dir`, the others into `workspace` when there is one.
/// Without a file for any declared output, the whole text is the first output.
pub(super) fn write(
    text: &str,
    attempt_dir: &Path,
    paths: &BTreeMap<String, String>,
    first_output: Option<&str>,
    workspace: Option<&Path>,
) -> Result<(), Error> {
    let files = files(text);
    if files.len() > MAX_FILES {
        return Err(Error::TooMany);
    }
    let out_prefix = format!("{WORKSPACE_OUT}/");
    let declared = |p: &str| paths.values().any(|d| d.trim_start_matches("./") == p);
    let mut wrote_output = false;
    for (path, content) in &files {
        let relative = path.strip_prefix(&out_prefix).unwrap_or(path);
        let target = if declared(relative) {
            wrote_output = true;
            under(attempt_dir, relative)?
        } else if let Some(workspace) = workspace {
            if path.starts_with(".spectacular/") || path.split('/').any(|p| p == ".git") {
                return Err(refused(path, "it is the engine's or git's"));
            }
            under(workspace, path)?
        } else {
            continue;
        };
        write_file(&target, path, content)?;
    }
    if let (false, Some(first)) = (wrote_output, first_output) {
        write_file(&under(attempt_dir, first)?, first, text)?;
    }
    Ok(())
}

fn refused(path: &str, reason: &str) -> Error {
    Error::Refused {
        path: path.chars().take(200).collect(),
        reason: reason.into(),
    }
}

/// `relative` below `root`, through no link.
fn under(root: &Path, relative: &str) -> Result<PathBuf, Error> {
    let target = relative_under(root, relative).map_err(|e| refused(relative, &e.to_string()))?;
    let mut at = target.as_path();
    while let Some(parent) = at.parent() {
        if at == root {
            break;
        }
        if std::fs::symlink_metadata(at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(refused(relative, "it goes through a symbolic link"));
        }
        at = parent;
    }
    Ok(target)
}

fn write_file(target: &Path, shown: &str, content: &str) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: shown.to_string(),
        source,
    };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(target, content).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "Here is the plan.\n\n.spectacular/out/plan.md\n```markdown\n# Plan\n\nTwo steps.\n```\n\n`tasks.json`:\n````json\n[{\"id\": \"a\"}]\n```\nstill inside\n````\n\nsrc/greet.sh\n```\necho hi\n```\nDone.\n";

    #[test]
    fn files_are_a_path_line_then_a_fenced_block() {
        assert_eq!(
            files(ANSWER),
            vec![
                (
                    ".spectacular/out/plan.md".into(),
                    "# Plan\n\nTwo steps.\n".into()
                ),
                (
                    "tasks.json".into(),
                    "[{\"id\": \"a\"}]\n```\nstill inside\n".into()
                ),
                ("src/greet.sh".into(), "echo hi\n".into()),
            ]
        );
        assert!(files("No files here.\n```\ncode\n```\n").is_empty());
        assert!(files("an unclosed one\n```\ncode\n").is_empty());
    }

    fn paths() -> BTreeMap<String, String> {
        [("plan", "plan.md"), ("tasks", "tasks.json")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn outputs_go_to_the_attempt_and_code_to_the_worktree() {
        let attempt = tempfile::tempdir().unwrap();
        let worktree = tempfile::tempdir().unwrap();
        write(
            ANSWER,
            attempt.path(),
            &paths(),
            Some("plan.md"),
            Some(worktree.path()),
        )
        .unwrap();
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(
            read(attempt.path().join("plan.md")),
            "# Plan\n\nTwo steps.\n"
        );
        assert!(read(attempt.path().join("tasks.json")).starts_with("[{"));
        assert_eq!(read(worktree.path().join("src/greet.sh")), "echo hi\n");
        // Without a workspace (a view, the integration worktree) code is not written.
        let attempt = tempfile::tempdir().unwrap();
        write(ANSWER, attempt.path(), &paths(), Some("plan.md"), None).unwrap();
        assert!(!attempt.path().join("src").exists());
    }

    #[test]
    fn an_answer_without_output_files_is_the_first_output() {
        let attempt = tempfile::tempdir().unwrap();
        write(
            "Just prose.\n",
            attempt.path(),
            &paths(),
            Some("plan.md"),
            None,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(attempt.path().join("plan.md")).unwrap(),
            "Just prose.\n"
        );
    }

    #[test]
    fn paths_that_leave_the_worktree_or_touch_git_are_refused() {
        let attempt = tempfile::tempdir().unwrap();
        let worktree = tempfile::tempdir().unwrap();
        for path in [
            "../escape.sh",
            ".git/hooks/pre-commit",
            "a/../../b",
            ".spectacular/x",
        ] {
            let answer = format!("{path}\n```\nrm -rf /\n```\n");
            let err = write(
                &answer,
                attempt.path(),
                &paths(),
                None,
                Some(worktree.path()),
            )
            .expect_err(path);
            assert!(err.to_string().contains("is refused"), "{path}: {err}");
        }
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(outside.path(), worktree.path().join("link")).unwrap();
            let err = write(
                "link/x.sh\n```\nx\n```\n",
                attempt.path(),
                &paths(),
                None,
                Some(worktree.path()),
            )
            .expect_err("a link");
            assert!(err.to_string().contains("symbolic link"), "{err}");
            assert!(!outside.path().join("x.sh").exists());
        }
    }
}
