//! What a webhook is told: which events are worth a message, the message's text, and the
//! body in each format (a generic JSON document, Slack's and Discord's webhook shapes). Every
//! text that comes from a run (phase names, reasons, questions, messages) is hostile: it is
//! bounded, and escaped for the format's markup; Discord is told to mention no one.

use serde_json::{json, Value};

use crate::config::notify::{NotifyKind, WebhookFormat};
use crate::record::event::{Event, EventData};

/// The longest message text (Discord's `content` takes 2,000 characters).
pub const MAX_TEXT: usize = 1_900;

/// The kind of message an event makes, if it makes one.
pub fn kind_of(data: &EventData) -> Option<NotifyKind> {
    match data {
        EventData::ApprovalRequested(d) if d.questions.is_empty() => Some(NotifyKind::Approval),
        EventData::ApprovalRequested(_) => Some(NotifyKind::Question),
        EventData::RunFailed(_) => Some(NotifyKind::Failed),
        EventData::RunSucceeded(_) => Some(NotifyKind::Succeeded),
        EventData::BudgetAlert(_) => Some(NotifyKind::Budget),
        _ => None,
    }
}

/// The message's text, plain (no markup), at most [`MAX_TEXT`] characters.
pub fn text(event: &Event, mission: &str) -> String {
    let run = &event.run_id;
    let head = format!("Run {run} of `{mission}`");
    let body = match &event.data {
        EventData::ApprovalRequested(d) if d.questions.is_empty() => format!(
            "{head} waits for approval at `{}`: {}\nApprove: spectacular approve {run} {}\nReject: spectacular approve {run} {} --reject",
            d.phase, d.reason, d.phase, d.phase
        ),
        EventData::ApprovalRequested(d) => {
            let mut text = format!(
                "{head} asks {} question{} at `{}`:",
                d.questions.len(),
                if d.questions.len() == 1 { "" } else { "s" },
                d.phase
            );
            for (i, q) in d.questions.iter().enumerate() {
                text.push_str(&format!("\n{}. {q}", i + 1));
            }
            text.push_str(&format!("\nAnswer: spectacular answer {run} 1 \"…\""));
            text
        }
        EventData::RunFailed(d) => {
            let mut text = format!("{head} failed");
            if !d.failed.is_empty() {
                text.push_str(&format!(": {}", d.failed.join(", ")));
            }
            if let Some(reason) = &d.reason {
                text.push_str(&format!(" ({reason})"));
            }
            text.push_str(&format!("\nSee: spectacular status {run}"));
            text
        }
        EventData::RunSucceeded(_) => format!("{head} succeeded\nSee: spectacular report {run}"),
        EventData::BudgetAlert(d) => format!(
            "{head}: budget alert ({}): {}\nSee: spectacular cost {run}",
            d.level, d.message
        ),
        other => format!("{head}: {}", other.type_name()),
    };
    bound(&clean(&body), MAX_TEXT)
}

/// The body a webhook of `format` receives about `event`.
pub fn body(format: WebhookFormat, event: &Event, kind: NotifyKind, mission: &str) -> Value {
    let text = text(event, mission);
    match format {
        WebhookFormat::Json => json!({
            "kind": kind.as_str(),
            "type": event.data.type_name(),
            "run_id": event.run_id,
            "mission": mission,
            "seq": event.seq,
            "ts": event.ts,
            "phase": event.data.phase(),
            "text": text,
            "data": serde_json::to_value(&event.data)
                .ok()
                .and_then(|v| v.get("data").cloned())
                .unwrap_or(Value::Null),
        }),
        WebhookFormat::Slack => {
            let escaped = slack_escape(&text);
            json!({
                "text": escaped,
                "blocks": [{
                    "type": "section",
                    "text": { "type": "mrkdwn", "text": escaped },
                }],
            })
        }
        WebhookFormat::Discord => json!({
            "content": discord_escape(&text),
            "allowed_mentions": { "parse": [] },
            "embeds": [{
                "title": bound(&format!("{} · {mission}", kind.as_str()), 256),
                "color": color(kind),
                "footer": { "text": format!("run {} · event {}", event.run_id, event.seq) },
            }],
        }),
    }
}

fn color(kind: NotifyKind) -> u32 {
    match kind {
        NotifyKind::Succeeded => 0x2e_a0_43,
        NotifyKind::Failed => 0xd1_24_2f,
        NotifyKind::Budget => 0xbf_87_00,
        NotifyKind::Approval | NotifyKind::Question => 0x09_69_da,
    }
}

/// Control characters (but newlines) and invisible format characters become spaces.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (c.is_control() && c != '\n')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// `text` cut to at most `max` characters, with `…` when cut.
fn bound(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Slack's mrkdwn: `&`, `<` and `>` are control characters (links, mentions).
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Discord's markdown: markup characters escaped, and `@` broken so that nothing mentions
/// anyone even where `allowed_mentions` is ignored.
pub fn discord_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '|' | '>' | '#' | '[' | ']' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            '@' => out.push_str("@\u{200b}"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_markup_in_run_text_is_escaped() {
        assert_eq!(
            slack_escape("<!channel> & <http://x|y>"),
            "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
        );
    }

    #[test]
    fn discord_mentions_are_broken() {
        assert_eq!(discord_escape("@everyone *x*"), "@\u{200b}everyone \\*x\\*");
    }

    #[test]
    fn long_text_is_bounded() {
        let long = "é".repeat(5000);
        assert_eq!(bound(&long, 10).chars().count(), 10);
    }
}
