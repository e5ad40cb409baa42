//! Gemini CLI: `gemini -p <prompt> --output-format json [-m M] --approval-mode yolo`. The result
//! is one JSON object: `response`, `stats.models.<model>.tokens` (`prompt` including `cached`,
//! `candidates`, `thoughts`; no dollars) and, when the request failed, `error`.

use serde_json::Value;

use super::clients::Parse;
use super::{str_at, u64_at, AgentOutcome, Usage};

/// Read `gemini -p --output-format json`.
pub(super) fn parse(
    cx: &Parse<'_>,
    exit_code: Option<i32>,
    stdout: &str,
    stderr: &str,
) -> AgentOutcome {
    // A failure's JSON comes on stderr, after whatever else Gemini logged there.
    let json = match cx.json_result(&["response", "error", "stats"], exit_code, stdout, stderr) {
        Ok(json) => json,
        Err(failure) => match json_on_stderr(stderr) {
            Some(json) => json,
            None => return *failure,
        },
    };
    let usage = usage(&json, cx.model);
    let text = str_at(&json, "/response");
    let error = json.get("error").filter(|e| !e.is_null());
    if error.is_none() && exit_code == Some(0) {
        return AgentOutcome::success(text, usage);
    }
    let reason = match error {
        Some(e) => {
            let message = str_at(e, "/message").unwrap_or_else(|| e.to_string());
            match e.get("code").filter(|c| !c.is_null()) {
                Some(code) => format!("{message} (code {code})"),
                None => message,
            }
        }
        None => format!(
            "gemini exited with code {}",
            exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into())
        ),
    };
    let error_text = error.map(Value::to_string).unwrap_or_default();
    let class = cx.class(&[&reason, &error_text, stderr]);
    let mut outcome = AgentOutcome::failed(class, reason, usage);
    outcome.text = text;
    outcome
}

/// The first JSON object with an `error` on a line of its own in `stderr` (pretty-printed or
/// not), ignoring the log lines around it.
fn json_on_stderr(stderr: &str) -> Option<Value> {
    let mut offset = 0;
    for line in stderr.split_inclusive('\n') {
        if line.starts_with('{') {
            let mut values =
                serde_json::Deserializer::from_str(&stderr[offset..]).into_iter::<Value>();
            if let Some(Ok(json)) = values.next() {
                if json.get("error").is_some_and(|e| !e.is_null()) {
                    return Some(json);
                }
            }
        }
        offset += line.len();
    }
    None
}

fn usage(json: &Value, configured_model: Option<&str>) -> Usage {
    let mut usage = Usage {
        model: configured_model.map(str::to_string),
        session_id: str_at(json, "/session_id").or_else(|| str_at(json, "/sessionId")),
        ..Usage::default()
    };
    let Some(models) = json.pointer("/stats/models").and_then(Value::as_object) else {
        return usage;
    };
    let mut busiest = (0u64, None);
    let mut requests = 0u64;
    for (name, stats) in models {
        let prompt = u64_at(stats, "/tokens/prompt");
        let cached = u64_at(stats, "/tokens/cached").min(prompt);
        let output = u64_at(stats, "/tokens/candidates") + u64_at(stats, "/tokens/thoughts");
        usage.input_tokens += prompt - cached;
        usage.cache_read_tokens += cached;
        usage.output_tokens += output;
        requests += u64_at(stats, "/api/totalRequests");
        let total = prompt + output;
        if total >= busiest.0 {
            busiest = (total, Some(name.clone()));
        }
    }
    if let Some(name) = busiest.1 {
        usage.model = Some(name);
    }
    if requests > 0 {
        usage.turns = Some(requests as u32);
    }
    usage
}
