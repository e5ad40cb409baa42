//! The answers of agent phases (the `result` an agent's successful attempt recorded: Claude
//! Code's `result`, Codex's last message, an HTTP API's text…), as `status` shows them: a
//! bounded excerpt of each phase's answer, and where the whole text is.

use serde_json::{json, Value};

use crate::record::{Event, EventData};

/// The most lines of an answer `status` shows.
pub const EXCERPT_LINES: usize = 5;
/// The most characters of one line of an excerpt.
pub const EXCERPT_WIDTH: usize = 160;

/// The answer of one phase instance: its last successful attempt that recorded one.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub phase: String,
    pub attempt: u32,
    pub agent: Option<String>,
    /// The first non-empty lines, each at most [`EXCERPT_WIDTH`] characters (cut with `…`),
    /// control characters replaced: safe to print on a terminal.
    pub excerpt: Vec<String>,
    /// Lines of the whole answer that the excerpt leaves out.
    pub more_lines: usize,
    /// The whole answer's size in characters.
    pub chars: usize,
}

impl Answer {
    /// The excerpt leaves something out (lines, or the end of a long line).
    pub fn is_cut(&self) -> bool {
        self.more_lines > 0 || self.excerpt.iter().any(|l| l.ends_with('…'))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "attempt": self.attempt,
            "agent": self.agent,
            "excerpt": self.excerpt.join("\n"),
            "more_lines": self.more_lines,
            "chars": self.chars,
        })
    }
}

/// The answer of every phase instance that has one, by instance name.
pub fn answers(events: &[Event]) -> std::collections::HashMap<String, Answer> {
    let mut found = std::collections::HashMap::new();
    for e in events {
        if let EventData::AttemptSucceeded(d) = &e.data {
            if let Some(text) = d.result.as_deref().filter(|t| !t.trim().is_empty()) {
                let (excerpt, more_lines) = excerpt(text, EXCERPT_LINES, EXCERPT_WIDTH);
                found.insert(
                    d.phase.clone(),
                    Answer {
                        phase: d.phase.clone(),
                        attempt: d.attempt,
                        agent: d.agent.clone(),
                        excerpt,
                        more_lines,
                        chars: text.chars().count(),
                    },
                );
            }
        }
    }
    found
}

/// The first `lines` non-empty lines of `text`, each cut at `width` characters (with `…`)
/// and with control characters (terminal escapes among them) replaced by `�`; and how many
/// non-empty lines are left out.
pub fn excerpt(text: &str, lines: usize, width: usize) -> (Vec<String>, usize) {
    let mut all = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty());
    let shown: Vec<String> = all
        .by_ref()
        .take(lines)
        .map(|line| {
            let mut out: String = line
                .chars()
                .take(width)
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .collect();
            if line.chars().nth(width).is_some() {
                out.push('…');
            }
            out
        })
        .collect();
    (shown, all.count())
}

/// The answers section of `spectacular status`: for each of `phases` (in order) that has an
/// answer, its excerpt, and when the excerpt leaves something out, the command that prints
/// the whole text.
pub fn answers_text(
    run_id: &str,
    phases: &[&str],
    answers: &std::collections::HashMap<String, Answer>,
) -> String {
    let mut out = String::new();
    for phase in phases {
        let Some(answer) = answers.get(*phase) else {
            continue;
        };
        let by = answer
            .agent
            .as_deref()
            .map(|a| format!(", {a}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "\nanswer of `{phase}` (attempt {}{by}):\n",
            answer.attempt
        ));
        for line in &answer.excerpt {
            out.push_str(&format!("  {line}\n"));
        }
        if answer.is_cut() {
            let more = match answer.more_lines {
                0 => String::new(),
                1 => "1 more line, ".to_string(),
                n => format!("{n} more lines, "),
            };
            out.push_str(&format!(
                "  … ({more}{} characters in all; the whole answer: `spectacular events {run_id} --phase {phase} --type attempt.succeeded --json`)\n",
                answer.chars
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_bounded_in_lines_and_width_and_safe_to_print() {
        let text = format!(
            "\nfirst\n\n{}\nthird \u{1b}[31mred\nfourth\nfifth\n",
            "x".repeat(12)
        );
        let (shown, more) = excerpt(&text, 3, 10);
        assert_eq!(shown, ["first", "xxxxxxxxxx…", "third \u{fffd}[31…"]);
        assert_eq!(more, 2);
        let (shown, more) = excerpt("one line", 3, 160);
        assert_eq!((shown, more), (vec!["one line".to_string()], 0));
    }
}
