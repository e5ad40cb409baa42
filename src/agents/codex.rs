//! Codex CLI: `codex exec --json <prompt>`. The output is JSONL: `thread.started` (the session
//! id), `item.completed` (an `agent_message` carries the answer; an `error` item can be a mere
//! warning), `turn.completed` with `usage` (tokens, no dollars; cached input is part of
//! `input_tokens`), and `turn.failed` or a top-level `error` when the turn failed.

use serde_json::Value;

use super::clients::Parse;
use super::{json_lines, str_at, u64_at, AgentOutcome};

/// Read `codex exec --json`.
pub(super) fn parse(
    cx: &Parse<'_>,
    exit_code: Option<i32>,
    stdout: &str,
    stderr: &str,
) -> AgentOutcome {
    let mut usage = cx.usage();
    let mut text = None;
    let mut turns = 0u32;
    // The last word on how the turn went: Ok after `turn.completed`, the reason after
    // `turn.failed`; errors in between are remembered but only count when no turn
    // completed after them.
    let mut finished: Option<TurnEnd> = None;
    let mut last_error: Option<String> = None;
    let mut saw_event = false;
    for event in json_lines(stdout) {
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        saw_event |= !kind.is_empty();
        match kind {
            "thread.started" => usage.session_id = str_at(&event, "/thread_id"),
            "item.completed" => match event.pointer("/item/type").and_then(Value::as_str) {
                Some("agent_message") => text = str_at(&event, "/item/text").or(text),
                Some("error") => last_error = str_at(&event, "/item/message").or(last_error),
                _ => {}
            },
            "turn.completed" => {
                turns += 1;
                let input = u64_at(&event, "/usage/input_tokens");
                let cached = u64_at(&event, "/usage/cached_input_tokens");
                usage.input_tokens += input.saturating_sub(cached);
                usage.cache_read_tokens += cached.min(input);
                usage.output_tokens += u64_at(&event, "/usage/output_tokens");
                finished = Some(TurnEnd::Completed);
            }
            "turn.failed" => {
                let reason = str_at(&event, "/error/message")
                    .or(last_error.clone())
                    .unwrap_or_else(|| "codex reported turn.failed".into());
                finished = Some(TurnEnd::Failed(reason));
            }
            "error" => last_error = str_at(&event, "/message").or(last_error),
            _ => {}
        }
    }
    if turns > 0 {
        usage.turns = Some(turns);
    }
    match (finished, exit_code) {
        (Some(TurnEnd::Completed), Some(0)) => AgentOutcome::success(text, usage),
        (Some(TurnEnd::Failed(reason)), _) => {
            let class = cx.class(&[&reason, stderr]);
            AgentOutcome::failed(class, reason, usage)
        }
        (_, code) if !saw_event => cx.exit_failure(code, stdout, stderr),
        (_, code) => {
            let reason = last_error.unwrap_or_else(|| match code {
                Some(0) => "codex ended without completing its turn".into(),
                Some(c) => format!("codex exited with code {c}"),
                None => "codex was killed by a signal".into(),
            });
            let class = cx.class(&[&reason, stderr]);
            AgentOutcome::failed(class, reason, usage)
        }
    }
}

/// How codex's last turn ended: completed, or failed for the reason it gave.
enum TurnEnd {
    Completed,
    Failed(String),
}
