//! What people read of a check: `summary.md` (the commands, then per tool its counts and its
//! errors as a table, bounded) and GitHub Actions annotations (workflow commands
//! `::error file=…,line=…,col=…,title=…::message`, escaped as the runner expects).

use std::fmt::Write as _;

use super::{is_project_path, Error, Outcome, Report, Severity};

/// The most rows of a tool's table in `summary.md`.
pub const SUMMARY_ROWS: usize = 50;
/// The longest message shown in a table cell, in characters.
const CELL: usize = 200;

/// `summary.md`.
pub fn summary_markdown(report: &Report) -> String {
    let mut out = String::new();
    let verdict = match report.outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::NoTests => "ran no tests",
        Outcome::CannotRun => "cannot run",
        Outcome::TimedOut => "timed out",
    };
    let _ = writeln!(out, "# Checks {verdict}\n");
    let _ = writeln!(out, "| command | result | errors | warnings |");
    let _ = writeln!(out, "|---|---|---|---|");
    for command in &report.commands {
        let exit = command
            .exit_code
            .map(|c| format!(" (exit {c})"))
            .unwrap_or_default();
        let result = match (command.outcome, command.exit_code) {
            (Outcome::Passed, _) => "passed".to_string(),
            (Outcome::NoTests, _) => format!("no tests{exit}"),
            (Outcome::CannotRun, _) => format!("cannot run{exit}"),
            (Outcome::TimedOut, _) => "timed out".to_string(),
            (Outcome::Failed, Some(code)) => format!("exit {code}"),
            (Outcome::Failed, None) => "did not finish".to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {result} | {} | {} |",
            code_cell(&command.command),
            command.errors,
            command.warnings
        );
    }
    for command in &report.commands {
        if let (Outcome::NoTests | Outcome::CannotRun, Some(reason)) =
            (command.outcome, &command.reason)
        {
            let _ = writeln!(
                out,
                "\n{} {}: {}",
                code_cell(&command.command),
                if command.outcome == Outcome::NoTests {
                    "ran no tests"
                } else {
                    "cannot run"
                },
                code_cell(reason)
            );
        }
    }
    if report.errors.is_empty() {
        let _ = writeln!(out, "\nNo errors were found in the output.");
        return out;
    }
    let mut tools: Vec<&str> = Vec::new();
    for error in &report.errors {
        if !tools.contains(&error.tool.as_str()) {
            tools.push(&error.tool);
        }
    }
    for tool in tools {
        let of_tool: Vec<&Error> = report.errors.iter().filter(|e| e.tool == tool).collect();
        let count = |s: Severity| of_tool.iter().filter(|e| e.severity == s).count();
        let _ = writeln!(
            out,
            "\n## {tool}: {}, {}, {}\n",
            plural(count(Severity::Error), "error"),
            plural(count(Severity::Warning), "warning"),
            plural(count(Severity::Note), "note"),
        );
        let _ = writeln!(out, "| severity | location | code | message |");
        let _ = writeln!(out, "|---|---|---|---|");
        for error in of_tool.iter().take(SUMMARY_ROWS) {
            let location = location(error).map(|l| code_cell(&l)).unwrap_or_default();
            let code = error.code.as_deref().map(code_cell).unwrap_or_default();
            let mut message = first_line(&error.message);
            if let Some(test) = &error.test {
                message = format!("{} ({})", message, cell(test));
            }
            let _ = writeln!(
                out,
                "| {} | {location} | {code} | {message} |",
                error.severity.as_str()
            );
        }
        if of_tool.len() > SUMMARY_ROWS {
            let _ = writeln!(
                out,
                "\n… and {} more (`errors.json` lists them all).",
                of_tool.len() - SUMMARY_ROWS
            );
        }
    }
    if report.dropped > 0 {
        let _ = writeln!(
            out,
            "\n{} more problems were found and left out of `errors.json` (it keeps {}).",
            report.dropped,
            super::MAX_ERRORS
        );
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `file:line:col` of an error, when it names a file.
fn location(error: &Error) -> Option<String> {
    let file = error.file.as_deref()?;
    Some(match (error.line, error.column) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file.to_string(),
    })
}

/// Text for a table cell: one line, `|` escaped, bounded.
fn cell(text: &str) -> String {
    let one: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut shown: String = one.chars().take(CELL).collect();
    if one.chars().count() > CELL {
        shown.push('…');
    }
    shown.replace('|', "\\|")
}

/// A message's first line, for a cell (`…` when there is more).
fn first_line(message: &str) -> String {
    let mut lines = message.lines();
    let first = lines.next().unwrap_or("");
    if lines.next().is_some() {
        format!("{} …", cell(first))
    } else {
        cell(first)
    }
}

/// Text in a code span of a cell.
fn code_cell(text: &str) -> String {
    let text = cell(text).replace('`', "'");
    format!("`{text}`")
}

/// GitHub Actions annotations for the errors, one workflow command a line. Files are given
/// relative to the project root (the repository's, on a runner); a file outside the working
/// directory is left out of the command (the annotation is then shown on the run).
pub fn annotations(report: &Report) -> String {
    let mut out = String::new();
    for error in &report.errors {
        let command = match error.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "notice",
        };
        let mut properties = Vec::new();
        if let Some(file) = error.file.as_deref().filter(|f| is_project_path(f)) {
            let file = match report.workdir.as_str() {
                "" | "." => file.to_string(),
                dir => format!("{}/{file}", dir.trim_end_matches('/')),
            };
            properties.push(format!("file={}", property(&file)));
            if let Some(line) = error.line {
                properties.push(format!("line={line}"));
                if let Some(column) = error.column {
                    properties.push(format!("col={column}"));
                }
            }
        }
        let title = match &error.code {
            Some(code) => format!("{} {code}", error.tool),
            None => error.tool.clone(),
        };
        properties.push(format!("title={}", property(&title)));
        let mut message = error.message.clone();
        if let Some(test) = &error.test {
            message = format!("{test}: {message}");
        }
        let _ = writeln!(
            out,
            "::{command} {}::{}",
            properties.join(","),
            data(&message)
        );
    }
    out
}

/// A workflow command's message, escaped.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value, escaped.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}
