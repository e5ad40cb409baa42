//! Claude Code: `claude -p <prompt> --output-format json`. The result is one JSON object with
//! `result`, `is_error`, `subtype`, `session_id`, `total_cost_usd`, `num_turns` and `usage`
//! (Anthropic's token fields); `modelUsage` is keyed by model name.

use serde_json::Value;

use super::{
    classify_text, exit_failure, find_json_object, str_at, u64_at, AdapterConfig, AgentOutcome,
    CliAdapter, FailureClass, Invocation, Request, Usage,
};

pub struct ClaudeCode {
    binary: String,
    model: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    permission_mode: Option<String>,
}

impl ClaudeCode {
    pub fn new(config: &AdapterConfig) -> ClaudeCode {
        let mut env: Vec<(String, String)> = vec![(
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
            "1".into(),
        )];
        if let Some(url) = &config.base_url {
            env.push(("ANTHROPIC_BASE_URL".into(), url.clone()));
        }
        env.extend(config.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let permission_mode = match config.permission_mode.as_deref() {
            None => Some("acceptEdits".to_string()),
            Some("") => None,
            Some(mode) => Some(mode.to_string()),
        };
        ClaudeCode {
            binary: config.binary.clone().unwrap_or_else(|| "claude".into()),
            model: config.model.clone(),
            args: config.args.clone(),
            env,
            permission_mode,
        }
    }
}

impl CliAdapter for ClaudeCode {
    fn name(&self) -> &'static str {
        "claude-code"
    }

    fn binary(&self) -> &str {
        &self.binary
    }

    fn invocation(&self, request: &Request) -> Invocation {
        let mut argv = vec![
            self.binary.clone(),
            "-p".into(),
            request.prompt.clone(),
            "--output-format".into(),
            "json".into(),
        ];
        if let Some(model) = request.model.as_ref().or(self.model.as_ref()) {
            argv.extend(["--model".into(), model.clone()]);
        }
        if let Some(turns) = request.max_turns {
            argv.extend(["--max-turns".into(), turns.to_string()]);
        }
        if let Some(mode) = &self.permission_mode {
            argv.extend(["--permission-mode".into(), mode.clone()]);
        }
        if let Some(budget) = request.max_budget_usd {
            argv.extend(["--max-budget-usd".into(), format!("{budget}")]);
        }
        argv.extend(self.args.iter().cloned());
        Invocation {
            argv,
            stdin: None,
            env: self.env.clone(),
        }
    }

    fn parse(&self, exit_code: Option<i32>, stdout: &str, stderr: &str) -> AgentOutcome {
        let Some(json) = find_json_object(stdout).filter(|j| {
            j.get("result").is_some() || j.get("is_error").is_some() || j.get("type").is_some()
        }) else {
            if exit_code == Some(0) {
                return AgentOutcome::failed(
                    classify_text(stderr).unwrap_or(FailureClass::Other),
                    "claude printed no JSON result",
                    Usage::default(),
                );
            }
            return exit_failure(exit_code, stdout, stderr);
        };
        let usage = usage(&json, self.model.as_deref());
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
        let class = classify_text(&reason)
            .or_else(|| classify_text(stderr))
            .unwrap_or(FailureClass::Other);
        let mut outcome = AgentOutcome::failed(class, reason, usage);
        outcome.text = result;
        outcome
    }

    fn version_args(&self) -> Vec<String> {
        vec!["--version".into()]
    }

    fn key_env(&self) -> &[&'static str] {
        &[
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "CLAUDE_CODE_OAUTH_TOKEN",
        ]
    }
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
