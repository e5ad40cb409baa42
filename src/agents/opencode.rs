//! OpenCode: `opencode run --format json <prompt>`. The output is JSONL with a `sessionID` on
//! every event: `text` parts carry the answer, each `step_finish` part carries `tokens`
//! (`input`, `output`, `reasoning`, `cache.read`, `cache.write`) and `cost` in dollars, and an
//! `error` event carries `error.data.message` (and, for API errors, `statusCode`).

use serde_json::Value;

use super::clients::Parse;
use super::{as_u64, classify_status, json_lines, str_at, u64_at, AgentOutcome, FailureClass};

/// Read `opencode run --format json`.
pub(super) fn parse(
    cx: &Parse<'_>,
    exit_code: Option<i32>,
    stdout: &str,
    stderr: &str,
) -> AgentOutcome {
    let mut usage = cx.usage();
    let mut text = None;
    let mut steps = 0u32;
    let mut cost = 0.0;
    let mut saw_cost = false;
    let mut saw_event = false;
    // The most recent error, cleared by a step that finished after it.
    let mut error: Option<(String, Option<u16>)> = None;
    for event in json_lines(stdout) {
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        saw_event |= !kind.is_empty();
        if let Some(id) = str_at(&event, "/sessionID") {
            usage.session_id = Some(id);
        }
        match kind {
            "text" => text = str_at(&event, "/part/text").or(text),
            "step_finish" => {
                steps += 1;
                let part = event.get("part").unwrap_or(&Value::Null);
                usage.input_tokens += u64_at(part, "/tokens/input");
                usage.output_tokens +=
                    u64_at(part, "/tokens/output") + u64_at(part, "/tokens/reasoning");
                usage.cache_read_tokens += u64_at(part, "/tokens/cache/read");
                usage.cache_write_tokens += u64_at(part, "/tokens/cache/write");
                if let Some(c) = part.get("cost").and_then(Value::as_f64) {
                    cost += c;
                    saw_cost = true;
                }
                error = None;
            }
            "error" => {
                let e = event.get("error").unwrap_or(&Value::Null);
                let message = str_at(e, "/data/message")
                    .or_else(|| str_at(e, "/message"))
                    .or_else(|| str_at(e, "/name"))
                    .unwrap_or_else(|| e.to_string());
                let status = e
                    .pointer("/data/statusCode")
                    .and_then(as_u64)
                    .map(|s| s as u16);
                error = Some((message, status));
            }
            _ => {}
        }
    }
    if steps > 0 {
        usage.turns = Some(steps);
    }
    if saw_cost {
        usage.reported_cost(cost);
    }
    if let Some((message, status)) = error {
        let class = status
            .and_then(|s| classify_status(s, &message))
            .filter(|c| *c != FailureClass::Other)
            .unwrap_or_else(|| cx.class(&[&message, stderr]));
        return AgentOutcome::failed(class, message, usage);
    }
    if exit_code != Some(0) || !saw_event {
        if exit_code == Some(0) {
            return AgentOutcome::failed(
                cx.class(&[stderr]),
                "opencode printed no JSON events",
                usage,
            );
        }
        let mut outcome = cx.exit_failure(exit_code, stdout, stderr);
        outcome.usage = usage;
        return outcome;
    }
    if steps == 0 {
        return AgentOutcome::failed(cx.class(&[stderr]), "opencode finished no step", usage);
    }
    AgentOutcome::success(text, usage)
}
