//! Size limits of what goes into an event, in one place. Every event passes through
//! [`sanitize`] on the log's append path ([`RunLog::append`](super::RunLog::append)), so no
//! caller can forget them:
//!
//! - each free-text string (a failure message, a reason, a comment, an argv element) is at
//!   most [`TEXT_MAX`] bytes;
//! - each recorded JSON value (an output value, a policy result, a `for_each` item, an input)
//!   is at most [`VALUE_MAX`] bytes of JSON;
//! - the text and values of one event together are at most [`EVENT_MAX`] bytes (the largest
//!   are cut first; `for_each` items do not count, they are bounded one by one).
//!
//! What is cut is replaced with a marker saying how large it was and, when known, where the
//! full data is kept (`…[truncated: 8388608 bytes, full text in attempts/check/1/stderr.log]`).
//! Secrets are redacted before anything is cut, so a cut never leaves half a secret.
//!
//! Ids, paths, digests and the pinned mission text are never cut: they are what the record is
//! made of. The helpers [`stderr_tail`] and [`output_value`] let the engine bound what it
//! records with a pointer to the attempt's files.

use std::io::Write;

use serde_json::Value;

use super::event::EventData;
use super::redact::Redactor;

/// The largest free-text string recorded in an event, in bytes.
pub const TEXT_MAX: usize = 8 * 1024;
/// The largest JSON value recorded in an event (an output value, a policy result, an item),
/// in bytes of JSON.
pub const VALUE_MAX: usize = 64 * 1024;
/// The largest total of the text and values of one event, in bytes.
pub const EVENT_MAX: usize = 1024 * 1024;
/// The longest answer (and question) of a clarification, in characters: one line of the
/// spec's `## Clarifications` section, not a document.
pub const ANSWER_MAX: usize = 2_000;
/// The most questions one clarification asks.
pub const QUESTIONS_MAX: usize = 20;
/// The most work packages in a plan, and in a plan summary recorded in an event.
pub const WORK_PACKAGES_MAX: usize = 200;

/// Make `s` one line of at most `max` characters: control characters (newlines, tabs,
/// escapes…) become spaces, runs of whitespace one space, and the ends are trimmed. What a
/// person typed is written into a spec from here, so nothing in it can start a line, a
/// heading or a terminal escape of its own.
pub fn one_line(s: &mut String, max: usize) {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut space = false;
    let mut count = 0;
    for c in s.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            space = !out.is_empty();
            continue;
        }
        if count >= max {
            break;
        }
        if space {
            out.push(' ');
            count += 1;
            space = false;
            if count >= max {
                break;
            }
        }
        out.push(c);
        count += 1;
    }
    *s = out;
}

/// The marker that replaces what was cut: `…[truncated: <size> bytes]`, with `, full text in
/// <where>` when the full data is kept somewhere (a path relative to the run directory).
pub fn marker(size: usize, full_at: Option<&str>) -> String {
    match full_at {
        Some(at) => format!("…[truncated: {size} bytes, full text in {at}]"),
        None => format!("…[truncated: {size} bytes]"),
    }
}

/// The marker that replaces a whole JSON value.
pub fn value_marker(size: usize, full_at: Option<&str>) -> String {
    match full_at {
        Some(at) => format!("…[truncated: {size} bytes of JSON, full value in {at}]"),
        None => format!("…[truncated: {size} bytes of JSON]"),
    }
}

/// Cut `text` to at most `max` bytes (on a character boundary), marker included.
pub fn bound_text(text: &mut String, max: usize, full_at: Option<&str>) {
    if text.len() <= max {
        return;
    }
    let marker = marker(text.len(), full_at);
    let mut keep = max.saturating_sub(marker.len()).min(text.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    text.truncate(keep);
    text.push_str(&marker);
}

/// Replace `value` with a marker string when its JSON is larger than `max` bytes.
pub fn bound_value(value: &mut Value, max: usize, full_at: Option<&str>) {
    bound_value_sized(value, max, full_at);
}

/// [`bound_value`], returning the size of the JSON of what is left (the value is serialised
/// once, to count).
fn bound_value_sized(value: &mut Value, max: usize, full_at: Option<&str>) -> usize {
    let size = json_size(value);
    if size > max {
        *value = Value::String(value_marker(size, full_at));
        return json_size(value);
    }
    size
}

/// The last `lines` non-empty lines of a captured stream, joined with ` / `, redacted, then
/// cut to [`TEXT_MAX`] with a pointer to the file that keeps it all (such as
/// `attempts/<phase>/<n>/stderr.log`). For failure messages.
pub fn stderr_tail(text: &str, lines: usize, redactor: &Redactor, full_at: Option<&str>) -> String {
    let kept: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = kept.len().saturating_sub(lines);
    let mut tail = redactor.redact(&kept[start..].join(" / ")).into_owned();
    bound_text(&mut tail, TEXT_MAX, full_at);
    tail
}

/// An output value as it may be recorded: redacted, and replaced with a marker pointing at
/// its artifact (`artifacts/<phase>/<path>`) when larger than [`VALUE_MAX`].
pub fn output_value(mut value: Value, redactor: &Redactor, full_at: Option<&str>) -> Value {
    redactor.redact_value(&mut value);
    bound_value(&mut value, VALUE_MAX, full_at);
    value
}

/// The size of `value` as compact JSON; a string counts its own bytes.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    if let Value::String(s) = value {
        return s.len();
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// One bounded part of an event.
enum Slot<'a> {
    Text(&'a mut String, Option<String>),
    /// A value; `budgeted` is false for `for_each` items (bounded one by one only).
    Value {
        value: &'a mut Value,
        full_at: Option<String>,
        budgeted: bool,
    },
}

fn text<'a>(slots: &mut Vec<Slot<'a>>, s: &'a mut String) {
    slots.push(Slot::Text(s, None));
}

fn opt_text<'a>(slots: &mut Vec<Slot<'a>>, s: &'a mut Option<String>) {
    if let Some(s) = s {
        slots.push(Slot::Text(s, None));
    }
}

fn value<'a>(slots: &mut Vec<Slot<'a>>, value: &'a mut Value, full_at: Option<String>) {
    slots.push(Slot::Value {
        value,
        full_at,
        budgeted: true,
    });
}

/// The free text and values of a payload. A new event type fails to compile here until its
/// fields are sorted into "bounded" and "structural".
fn slots(data: &mut EventData) -> Vec<Slot<'_>> {
    let mut slots = Vec::new();
    let s = &mut slots;
    match data {
        // The pinned mission text is exempt: resume rebuilds the mission from it.
        EventData::RunStarted(d) => {
            for v in d.inputs.values_mut() {
                value(s, v, None);
            }
        }
        EventData::RunResumed(_) => {}
        EventData::PhaseReady(_) => {}
        EventData::PhaseExpanded(d) => {
            for child in &mut d.children {
                s.push(Slot::Value {
                    value: &mut child.item,
                    full_at: None,
                    budgeted: false,
                });
            }
        }
        EventData::AttemptStarted(d) => {
            for arg in d.argv.iter_mut().flatten() {
                text(s, arg);
            }
        }
        EventData::AttemptSucceeded(d) => {
            for (name, v) in &mut d.values {
                value(s, v, d.artifacts.get(name).cloned());
            }
            opt_text(s, &mut d.agent);
            if let Some(git) = &mut d.git {
                for file in git.files.iter_mut().chain(&mut git.outside_owned) {
                    text(s, file);
                }
            }
        }
        EventData::AttemptFailed(d) => {
            text(s, &mut d.message);
            opt_text(s, &mut d.agent);
            for file in &mut d.files {
                text(s, file);
            }
        }
        EventData::PhaseSucceeded(_) => {}
        EventData::PhaseFailed(d) => text(s, &mut d.message),
        EventData::PhaseSkipped(d) => opt_text(s, &mut d.detail),
        EventData::LoopStarted(_) => {}
        EventData::ApprovalRequested(d) => {
            text(s, &mut d.reason);
            d.questions.truncate(QUESTIONS_MAX);
            for q in &mut d.questions {
                one_line(q, ANSWER_MAX);
                text(s, q);
            }
            if let Some(plan) = &mut d.plan {
                text(s, &mut plan.phase);
                plan.lanes.truncate(WORK_PACKAGES_MAX);
                plan.work_packages.truncate(WORK_PACKAGES_MAX);
                plan.uncovered.truncate(WORK_PACKAGES_MAX);
                for id in plan
                    .work_packages
                    .iter_mut()
                    .chain(plan.lanes.iter_mut().flatten())
                    .chain(plan.uncovered.iter_mut())
                {
                    text(s, id);
                }
                opt_text(s, &mut plan.model);
            }
        }
        EventData::ClarificationAnswered(d) => {
            one_line(&mut d.text, ANSWER_MAX);
            one_line(&mut d.answer, ANSWER_MAX);
            text(s, &mut d.text);
            text(s, &mut d.answer);
        }
        EventData::ApprovalDecided(d) => opt_text(s, &mut d.comment),
        EventData::CancelRequested(d) => opt_text(s, &mut d.reason),
        EventData::RunSuspended(_) => {}
        EventData::RunSucceeded(d) | EventData::RunFailed(d) | EventData::RunCanceled(d) => {
            opt_text(s, &mut d.reason)
        }
        EventData::PolicyDecided(d) => {
            value(s, &mut d.result, None);
            opt_text(s, &mut d.reason);
            if let Some(context) = &mut d.context {
                value(s, context, None);
            }
        }
        EventData::FallbackActivated(d) => text(s, &mut d.reason),
        EventData::AttemptRedelivered(d) => text(s, &mut d.worker),
        EventData::AttemptRecalled(_) => {}
        EventData::MergeStep(d) => {
            for conflict in &mut d.conflicts {
                text(s, &mut conflict.file);
                for hunk in &mut conflict.hunks {
                    text(s, hunk);
                }
            }
        }
        EventData::BudgetAlert(d) => text(s, &mut d.message),
        EventData::NotificationSent(d) | EventData::NotificationFailed(d) => {
            text(s, &mut d.webhook);
            opt_text(s, &mut d.error);
        }
        EventData::IssueCommented(d) => {
            text(s, &mut d.issue);
            text(s, &mut d.what);
            text(s, &mut d.url);
        }
        EventData::PrOpened(d) | EventData::PrUpdated(d) => {
            text(s, &mut d.project);
            text(s, &mut d.url);
            text(s, &mut d.branch);
            text(s, &mut d.head);
            text(s, &mut d.base);
            opt_text(s, &mut d.issue);
        }
    }
    slots
}

/// Redact and bound a payload before it is recorded: secrets first, then each string and
/// value, then the event as a whole (largest parts first).
pub fn sanitize(data: &mut EventData, redactor: &Redactor) {
    let mut slots = slots(data);
    if slots.is_empty() {
        return;
    }
    let mut sizes = Vec::with_capacity(slots.len());
    for slot in &mut slots {
        let size = match slot {
            Slot::Text(s, full_at) => {
                redactor.redact_string(s);
                bound_text(s, TEXT_MAX, full_at.as_deref());
                s.len()
            }
            Slot::Value {
                value,
                full_at,
                budgeted,
            } => {
                redactor.redact_value(value);
                let size = bound_value_sized(value, VALUE_MAX, full_at.as_deref());
                if *budgeted {
                    size
                } else {
                    0
                }
            }
        };
        sizes.push(size);
    }
    let mut total: usize = sizes.iter().sum();
    if total <= EVENT_MAX {
        return;
    }
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    for i in order {
        if total <= EVENT_MAX {
            break;
        }
        let size = sizes[i];
        let replaced = match &mut slots[i] {
            Slot::Text(s, full_at) => {
                **s = marker(size, full_at.as_deref());
                s.len()
            }
            Slot::Value { value, full_at, .. } => {
                **value = Value::String(value_marker(size, full_at.as_deref()));
                json_size(value)
            }
        };
        total = total - size + replaced;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clarification_answers_and_questions_are_one_bounded_line() {
        use crate::record::event::{ApprovalRequested, ClarificationAnswered};
        let hostile = format!("a\n## Heading\r\n\u{1b}[2J{}", "é".repeat(10_000));
        let mut data = EventData::ClarificationAnswered(ClarificationAnswered {
            phase: "clarify".into(),
            question: 1,
            text: hostile.clone(),
            answer: hostile.clone(),
        });
        sanitize(&mut data, &Redactor::default());
        let EventData::ClarificationAnswered(d) = &data else {
            unreachable!()
        };
        for s in [&d.text, &d.answer] {
            assert!(s.starts_with("a ## Heading [2J"), "{s:.40}");
            assert_eq!(s.chars().count(), ANSWER_MAX);
            assert!(!s.chars().any(char::is_control));
        }
        let mut data = EventData::ApprovalRequested(ApprovalRequested {
            phase: "clarify".into(),
            reason: "r".into(),
            timeout_ms: None,
            questions: vec![hostile; 50],
            plan: None,
        });
        sanitize(&mut data, &Redactor::default());
        let EventData::ApprovalRequested(d) = &data else {
            unreachable!()
        };
        assert_eq!(d.questions.len(), QUESTIONS_MAX);
        assert!(d
            .questions
            .iter()
            .all(|q| q.chars().count() == ANSWER_MAX && !q.contains('\n')));
    }

    #[test]
    fn text_is_cut_on_a_character_boundary_with_its_marker() {
        let mut s = "é".repeat(10_000);
        bound_text(&mut s, 1000, Some("attempts/a/1/stderr.log"));
        assert!(s.len() <= 1000, "{}", s.len());
        assert!(s.ends_with("…[truncated: 20000 bytes, full text in attempts/a/1/stderr.log]"));
        let mut small = "ok".to_string();
        bound_text(&mut small, 1000, None);
        assert_eq!(small, "ok");
    }

    #[test]
    fn a_tail_keeps_the_last_lines_redacted_and_bounded() {
        let r = Redactor::new([("KEY", "secret-value-1234")]);
        let text = "one\n\ntwo\nthree secret-value-1234\nfour\n";
        assert_eq!(
            stderr_tail(text, 3, &r, None),
            "two / three [redacted:KEY] / four"
        );
        let huge = format!("start\n{}\n", "x".repeat(8 << 20));
        let tail = stderr_tail(&huge, 3, &r, Some("attempts/a/1/stderr.log"));
        assert!(tail.len() <= TEXT_MAX);
        assert!(
            tail.ends_with("full text in attempts/a/1/stderr.log]"),
            "{}",
            &tail[tail.len() - 80..]
        );
    }

    #[test]
    fn values_over_the_limit_become_markers() {
        let big = Value::Array(vec![Value::from("y".repeat(1000)); 100]);
        let v = output_value(big, &Redactor::default(), Some("artifacts/p/o.json"));
        assert_eq!(
            v,
            Value::from("…[truncated: 100301 bytes of JSON, full value in artifacts/p/o.json]")
        );
        let small = serde_json::json!({"a": 1});
        assert_eq!(
            output_value(small.clone(), &Redactor::default(), None),
            small
        );
    }
}
