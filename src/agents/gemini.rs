//! Gemini CLI: `gemini -p <prompt> --output-format json [-m M] --approval-mode yolo`. The result
//! is one JSON object: `response`, `stats.models.<model>.tokens` (`prompt` including `cached`,
//! `candidates`, `thoughts`; no dollars) and, when the request failed, `error`.

use serde_json::Value;

use super::{
    classify_text, exit_failure, find_json_object, str_at, u64_at, AdapterConfig, AgentOutcome,
    CliAdapter, FailureClass, Invocation, Request, Usage,
};

pub struct Gemini {
    binary: String,
    model: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Gemini {
    pub fn new(config: &AdapterConfig) -> Gemini {
        let mut env = Vec::new();
        if let Some(url) = &config.base_url {
            env.push(("GOOGLE_GEMINI_BASE_URL".to_string(), url.clone()));
        }
        env.extend(config.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        Gemini {
            binary: config.binary.clone().unwrap_or_else(|| "gemini".into()),
            model: config.model.clone(),
            args: config.args.clone(),
            env,
        }
    }
}

impl CliAdapter for Gemini {
    fn name(&self) -> &'static str {
        "gemini"
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
            argv.extend(["-m".into(), model.clone()]);
        }
        argv.extend(["--approval-mode".into(), "yolo".into()]);
        argv.extend(self.args.iter().cloned());
        Invocation {
            argv,
            stdin: None,
            env: self.env.clone(),
        }
    }

    fn parse(&self, exit_code: Option<i32>, stdout: &str, stderr: &str) -> AgentOutcome {
        let Some(json) = find_json_object(stdout).filter(|j| {
            j.get("response").is_some() || j.get("error").is_some() || j.get("stats").is_some()
        }) else {
            if exit_code == Some(0) {
                return AgentOutcome::failed(
                    classify_text(stderr).unwrap_or(FailureClass::Other),
                    "gemini printed no JSON result",
                    Usage::default(),
                );
            }
            return exit_failure(exit_code, stdout, stderr);
        };
        let usage = usage(&json, self.model.as_deref());
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
        let class = classify_text(&reason)
            .or_else(|| error.and_then(|e| classify_text(&e.to_string())))
            .or_else(|| classify_text(stderr))
            .unwrap_or(FailureClass::Other);
        let mut outcome = AgentOutcome::failed(class, reason, usage);
        outcome.text = text;
        outcome
    }

    fn version_args(&self) -> Vec<String> {
        vec!["--version".into()]
    }

    fn key_env(&self) -> &[&'static str] {
        &["GEMINI_API_KEY", "GOOGLE_API_KEY"]
    }
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
