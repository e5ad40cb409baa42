//! Claude Code: `claude -p <prompt> --output-format json`. The result is one JSON object with
//! `result`, `is_error`, `subtype`, `session_id`, `total_cost_usd`, `num_turns` and `usage`
//! (Anthropic's token fields); `modelUsage` is keyed by model name.

use serde_json::Value;

use super::clients::Parse;
use super::{str_at, u64_at, AgentOutcome, Usage};

/// Read `claude -p --output-format json`.
pub(super) fn parse(
    cx: &Parse<'_>,
    exit_code: Option<i32>,
    stdout: &str,
    stderr: &str,
) -> AgentOutcome {
    let json = match cx.json_result(&["result", "is_error", "type"], exit_code, stdout, stderr) {
        Ok(json) => json,
        Err(failure) => return *failure,
    };
    let usage = usage(&json, cx.model);
    let result = str_at(&json, "/result");
    let is_error = json
        .get("is_error")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let subtype = str_at(&json, "/subtype").unwrap_or_else(|| "success".into());
    if !is_error && subtype == "success" && exit_code == Some(0) {
        return AgentOutcome::success(result, usage);
    }
    let reason = match subtype.as_str() {
        "error_max_turns" => "claude stopped at the turn limit (error_max_turns)".to_string(),
        "error_max_budget_usd" => {
            "claude stopped at the budget limit (error_max_budget_usd)".to_string()
        }
        _ => result
            .clone()
            .or_else(|| {
                json.get("errors")
                    .and_then(Value::as_array)
                    .and_then(|e| e.first())
                    .map(|e| e.as_str().map(str::to_string).unwrap_or(e.to_string()))
            })
            .unwrap_or_else(|| format!("claude reported {subtype}")),
    };
    let class = cx.class(&[&reason, stderr]);
    let mut outcome = AgentOutcome::failed(class, reason, usage);
    outcome.text = result;
    outcome
}

fn usage(json: &Value, configured_model: Option<&str>) -> Usage {
    let mut usage = Usage {
        input_tokens: u64_at(json, "/usage/input_tokens"),
        output_tokens: u64_at(json, "/usage/output_tokens"),
        cache_read_tokens: u64_at(json, "/usage/cache_read_input_tokens"),
        cache_write_tokens: u64_at(json, "/usage/cache_creation_input_tokens"),
        session_id: str_at(json, "/session_id"),
        turns: json
            .get("num_turns")
            .and_then(Value::as_u64)
            .map(|n| n as u32),
        ..Usage::default()
    };
    // `usage` is zero on some failures (`error_max_budget_usd`) while `modelUsage` has the real
    // figures: read them from there then.
    let zero = usage.input_tokens + usage.output_tokens + usage.cache_read_tokens == 0;
    if let (true, Some(models)) = (zero, json.get("modelUsage").and_then(Value::as_object)) {
        for m in models.values() {
            usage.input_tokens += u64_at(m, "/inputTokens");
            usage.output_tokens += u64_at(m, "/outputTokens");
            usage.cache_read_tokens += u64_at(m, "/cacheReadInputTokens");
            usage.cache_write_tokens += u64_at(m, "/cacheCreationInputTokens");
        }
    }
    if let Some(cost) = json.get("total_cost_usd").and_then(Value::as_f64) {
        usage.reported_cost(cost);
    }
    // `modelUsage` names the models that did the work; the one that cost most is "the" model.
    usage.model = json
        .get("modelUsage")
        .and_then(Value::as_object)
        .and_then(|models| {
            models
                .iter()
                .max_by(|a, b| {
                    let cost = |v: &Value| v.get("costUSD").and_then(Value::as_f64).unwrap_or(0.0);
                    cost(a.1).total_cmp(&cost(b.1))
                })
                .map(|(name, _)| name.clone())
        })
        .or_else(|| configured_model.map(str::to_string));
    usage
}
