//! Rendering diagnostics for people (rustc-style text, coloured only when asked) and for
//! tools (`--format json`, a stable shape).

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use super::{Diagnostic, Diagnostics, Severity};

#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions {
    pub color: bool,
}

struct Palette {
    error: Style,
    warning: Style,
    accent: Style,
    bold: Style,
}

impl Palette {
    fn new(color: bool) -> Palette {
        if !color {
            let plain = Style::new();
            return Palette {
                error: plain,
                warning: plain,
                accent: plain,
                bold: plain,
            };
        }
        Palette {
            error: AnsiColor::Red.on_default().bold(),
            warning: AnsiColor::Yellow.on_default().bold(),
            accent: AnsiColor::Blue.on_default().bold(),
            bold: Style::new().bold(),
        }
    }

    fn severity(&self, severity: Severity) -> Style {
        match severity {
            Severity::Error => self.error,
            Severity::Warning => self.warning,
        }
    }
}

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// All diagnostics as text, in reading order, followed by a one-line summary.
pub fn render_text(diagnostics: &Diagnostics, options: RenderOptions) -> String {
    let palette = Palette::new(options.color);
    let mut out = String::new();
    for diagnostic in diagnostics.sorted() {
        render_one(&mut out, diagnostics, diagnostic, &palette);
        out.push('\n');
    }
    let errors = diagnostics.error_count();
    let warnings = diagnostics.warning_count();
    if errors + warnings > 0 {
        let mut parts = Vec::new();
        if errors > 0 {
            parts.push(plural(errors, "error"));
        }
        if warnings > 0 {
            parts.push(plural(warnings, "warning"));
        }
        let style = if errors > 0 {
            palette.error
        } else {
            palette.warning
        };
        let _ = writeln!(
            out,
            "{}",
            paint(style, &format!("found {}", parts.join(" and ")))
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

/// Text from the user's files, made safe for a terminal: control characters (an escape
/// sequence hidden in a value, a lone carriage return) are shown as `\u{1b}` instead of being
/// sent to the terminal.
fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

fn render_one(out: &mut String, all: &Diagnostics, d: &Diagnostic, palette: &Palette) {
    let head = format!("{}[{}]", d.severity, d.code);
    let _ = writeln!(
        out,
        "{}{}",
        paint(palette.severity(d.severity), &head),
        paint(palette.bold, &format!(": {}", visible(&d.message)))
    );
    let source_line = d.span.and_then(|span| {
        all.source(&d.file)
            .and_then(|s| s.line_text(span.line))
            .map(|t| (span, t))
    });
    let gutter = d.span.map(|s| s.line.to_string().len()).unwrap_or(1);
    let pad = " ".repeat(gutter);
    let arrow = paint(palette.accent, "-->");
    let bar = paint(palette.accent, "|");
    if !d.file.is_empty() {
        let mut location = visible(&d.file);
        if let Some(span) = d.span {
            let _ = write!(location, ":{}:{}", span.line, span.col);
        }
        if !d.path.is_empty() {
            let _ = write!(location, " ({})", visible(&d.path));
        }
        let _ = writeln!(out, "{pad}{arrow} {location}");
    }
    if let Some((span, text)) = source_line {
        // One character stays one column, so that the carets line up.
        let text: String = text
            .chars()
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() => '\u{fffd}',
                c => c,
            })
            .collect();
        let _ = writeln!(out, "{pad} {bar}");
        let _ = writeln!(
            out,
            "{} {bar} {}",
            paint(palette.accent, &span.line.to_string()),
            text.trim_end()
        );
        let start = span.col.saturating_sub(1) as usize;
        let width = text.chars().count();
        let len = (span.len as usize).min(width.saturating_sub(start)).max(1);
        let carets = paint(palette.severity(d.severity), &"^".repeat(len));
        let label = d
            .label
            .as_deref()
            .map(|l| format!(" {}", paint(palette.severity(d.severity), &visible(l))))
            .unwrap_or_default();
        let _ = writeln!(out, "{pad} {bar} {}{carets}{label}", " ".repeat(start));
    } else if let Some(label) = &d.label {
        let _ = writeln!(out, "{pad} = note: {}", visible(label));
    }
    if let Some(help) = &d.help {
        let _ = writeln!(
            out,
            "{pad} = {}: {}",
            paint(palette.bold, "help"),
            visible(help)
        );
    }
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'a str,
    severity: Severity,
    message: &'a str,
    file: &'a str,
    line: Option<u32>,
    column: Option<u32>,
    path: &'a str,
    label: Option<&'a str>,
    help: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

/// The stable JSON form: `{valid, errors, warnings, diagnostics: [{code, severity, message,
/// file, line, column, path, label, help}]}`.
pub fn render_json(diagnostics: &Diagnostics) -> String {
    let report = JsonReport {
        valid: !diagnostics.has_errors(),
        errors: diagnostics.error_count(),
        warnings: diagnostics.warning_count(),
        diagnostics: diagnostics
            .sorted()
            .into_iter()
            .map(|d| JsonDiagnostic {
                code: d.code.as_str(),
                severity: d.severity,
                message: &d.message,
                file: &d.file,
                line: d.span.map(|s| s.line),
                column: d.span.map(|s| s.col),
                path: &d.path,
                label: d.label.as_deref(),
                help: d.help.as_deref(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}
