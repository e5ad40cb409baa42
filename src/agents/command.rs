//! The generic `command` adapter: a configured argv template (minijinja, rendered through
//! `crate::prompt`) that receives the rendered prompt as a file (`{{ prompt_file }}`) and, unless
//! `stdin: false`, on stdin, never through a shell. Its output is read as configured: plain text,
//! or values picked by JSON pointer (`json`, `jsonl`) or regex (`text`).

use std::path::Path;

use regex::Regex;
use serde_json::Value;

use super::{
    as_u64, classify_text, exit_failure, find_json_object, json_lines, AdapterConfig, AgentOutcome,
    CliAdapter, FailureClass, Invocation, OutputFormat, OutputSpec, Request, Usage,
};

use super::config::AgentsFile;
use super::Error;

pub use super::config::{choose, load};

/// [`super::config::parse`] under the name the engine's callers know.
pub fn parse_agents_file(text: &str, origin: &str) -> Result<AgentsFile, Error> {
    super::config::parse(text, origin)
}

/// The argv and stdin of a `command` agent call, rendered against the phase context plus
/// `prompt_file`. Other adapters are refused here: the engine runs them through [`CliAdapter`].
pub fn invocation(
    agent: &AdapterConfig,
    context: &Value,
    prompt_file: &Path,
    prompt: &str,
) -> Result<(Vec<String>, Option<Vec<u8>>), Error> {
    if agent.adapter != "command" {
        return Err(Error::NotCommand {
            adapter: agent.adapter.clone(),
        });
    }
    let mut context = context.clone();
    context["prompt_file"] = Value::String(prompt_file.display().to_string());
    let argv = render_argv(&agent.argv, &context)?;
    Ok((argv, agent.stdin.then(|| prompt.as_bytes().to_vec())))
}

/// Render each element of an argv template; each stays one argument whatever it contains.
pub fn render_argv(template: &[String], context: &Value) -> Result<Vec<String>, Error> {
    if template.is_empty() {
        return Err(Error::EmptyArgv);
    }
    template
        .iter()
        .map(|a| crate::prompt::render(a, context).map_err(|e| Error::Template(e.to_string())))
        .collect()
}

/// The `command` adapter as a [`CliAdapter`].
pub struct CommandAdapter {
    config: AdapterConfig,
    /// Extra template variables (the phase context); `prompt_file`, `prompt`, `model` and
    /// `workdir` are added from the request.
    context: Value,
}

impl CommandAdapter {
    pub fn new(config: &AdapterConfig) -> CommandAdapter {
        CommandAdapter {
            config: config.clone(),
            context: Value::Object(Default::default()),
        }
    }

    /// The adapter with the phase context available to the argv template.
    pub fn with_context(mut self, context: Value) -> CommandAdapter {
        if context.is_object() {
            self.context = context;
        }
        self
    }

    fn render(&self, request: &Request) -> Result<Invocation, Error> {
        let mut context = self.context.clone();
        context["prompt_file"] = Value::String(request.prompt_file.display().to_string());
        context["prompt"] = Value::String(request.prompt.clone());
        context["workdir"] = Value::String(request.workdir.display().to_string());
        context["model"] = match request.model.as_ref().or(self.config.model.as_ref()) {
            Some(m) => Value::String(m.clone()),
            None => Value::Null,
        };
        let argv = render_argv(&self.config.argv, &context)?;
        let mut env: Vec<(String, String)> = self
            .config
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // The model chosen for the attempt (a route's, the phase's, its own), as `{{ model }}`.
        if let Some(model) = context["model"].as_str() {
            env.push(("SPECTACULAR_MODEL".to_string(), model.to_string()));
        }
        Ok(Invocation {
            argv,
            stdin: self
                .config
                .stdin
                .then(|| request.prompt.as_bytes().to_vec()),
            env,
            files: Vec::new(),
        })
    }
}

impl CliAdapter for CommandAdapter {
    fn name(&self) -> &'static str {
        "command"
    }

    fn binary(&self) -> &str {
        self.config.argv.first().map(String::as_str).unwrap_or("")
    }

    /// The invocation; an argv template that does not render gives an empty argv, which the
    /// process runner refuses (call [`CliAdapter::try_invocation`] for the reason).
    fn invocation(&self, request: &Request) -> Invocation {
        self.render(request).unwrap_or_default()
    }

    fn try_invocation(&self, request: &Request) -> Result<Invocation, Error> {
        self.render(request)
    }

    fn parse(&self, exit_code: Option<i32>, stdout: &str, stderr: &str) -> AgentOutcome {
        let spec = self.config.output.clone().unwrap_or_default();
        let extracted = match extract(&spec, stdout) {
            Ok(x) => x,
            Err(e) => {
                return AgentOutcome::failed(
                    FailureClass::Other,
                    format!("the `output` of this command agent is misconfigured: {e}"),
                    Usage::default(),
                )
            }
        };
        let mut usage = extracted.usage;
        if usage.model.is_none() {
            usage.model = self.config.model.clone();
        }
        if let Some(reason) = extracted.error {
            let class = classify_text(&reason)
                .or_else(|| classify_text(stderr))
                .unwrap_or(FailureClass::Other);
            return AgentOutcome::failed(class, reason, usage);
        }
        if exit_code != Some(0) {
            let mut outcome = exit_failure(exit_code, stdout, stderr);
            outcome.usage = usage;
            return outcome;
        }
        if spec.format != OutputFormat::Text && !extracted.parsed {
            return AgentOutcome::failed(
                FailureClass::Other,
                format!(
                    "the agent's output is not {}",
                    if spec.format == OutputFormat::Json {
                        "a JSON object"
                    } else {
                        "JSON lines"
                    }
                ),
                usage,
            );
        }
        AgentOutcome::success(extracted.text, usage)
    }

    fn version_args(&self) -> Vec<String> {
        Vec::new()
    }

    fn key_env(&self) -> &[&'static str] {
        &[]
    }
}

/// Why a `command` agent's `output` spec could not be applied to its output.
#[derive(Debug, thiserror::Error)]
enum OutputSpecError {
    #[error("regex `{pattern}`: {source}")]
    Regex {
        pattern: String,
        source: regex::Error,
    },
    #[error("cost `{text}` is not a number")]
    Cost { text: String },
    #[error("token count `{text}` is not a number")]
    Count { text: String },
}

struct Extracted {
    text: Option<String>,
    usage: Usage,
    error: Option<String>,
    /// Was the output in the configured format at all?
    parsed: bool,
}

fn extract(spec: &OutputSpec, stdout: &str) -> Result<Extracted, OutputSpecError> {
    let mut out = Extracted {
        text: None,
        usage: Usage::default(),
        error: None,
        parsed: false,
    };
    let fields = [
        &spec.input_tokens,
        &spec.output_tokens,
        &spec.cache_read_tokens,
        &spec.cache_write_tokens,
    ];
    match spec.format {
        OutputFormat::Text => {
            out.parsed = true;
            let pick = |pattern: &Option<String>| -> Result<Option<String>, OutputSpecError> {
                let Some(pattern) = pattern else {
                    return Ok(None);
                };
                let re = Regex::new(pattern).map_err(|source| OutputSpecError::Regex {
                    pattern: pattern.clone(),
                    source,
                })?;
                Ok(re.captures_iter(stdout).last().map(|c| {
                    c.get(1)
                        .or_else(|| c.get(0))
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default()
                }))
            };
            out.text = match &spec.result {
                Some(_) => pick(&spec.result)?,
                None => Some(stdout.trim().to_string()).filter(|t| !t.is_empty()),
            };
            let mut counts = [0u64; 4];
            for (slot, field) in counts.iter_mut().zip(fields) {
                *slot = pick(field)?
                    .map(|s| parse_count(&s))
                    .transpose()?
                    .unwrap_or(0);
            }
            set_counts(&mut out.usage, counts);
            if let Some(cost) = pick(&spec.cost_usd)? {
                let cost = cost
                    .trim()
                    .trim_start_matches('$')
                    .parse::<f64>()
                    .map_err(|_| OutputSpecError::Cost { text: cost.clone() })?;
                out.usage.reported_cost(cost);
            }
            out.usage.session_id = pick(&spec.session_id)?;
            if let Some(model) = pick(&spec.model)? {
                out.usage.model = Some(model);
            }
            out.error = pick(&spec.error)?.map(|e| {
                if e.trim().is_empty() {
                    "the agent reported an error".into()
                } else {
                    e
                }
            });
        }
        OutputFormat::Json => {
            let Some(json) = find_json_object(stdout) else {
                return Ok(out);
            };
            out.parsed = true;
            out.text = match &spec.result {
                Some(p) => json.pointer(p).map(value_text),
                None => Some(stdout.trim().to_string()),
            };
            let mut counts = [0u64; 4];
            for (slot, field) in counts.iter_mut().zip(fields) {
                if let Some(p) = field {
                    *slot = json.pointer(p).and_then(as_u64).unwrap_or(0);
                }
            }
            set_counts(&mut out.usage, counts);
            if let Some(cost) = spec
                .cost_usd
                .as_ref()
                .and_then(|p| json.pointer(p))
                .and_then(number)
            {
                out.usage.reported_cost(cost);
            }
            out.usage.session_id = spec
                .session_id
                .as_ref()
                .and_then(|p| json.pointer(p))
                .map(value_text);
            if let Some(m) = spec.model.as_ref().and_then(|p| json.pointer(p)) {
                out.usage.model = Some(value_text(m));
            }
            out.error = spec
                .error
                .as_ref()
                .and_then(|p| json.pointer(p))
                .and_then(error_value);
        }
        OutputFormat::Jsonl => {
            let mut counts = [0u64; 4];
            let mut cost = None;
            for json in json_lines(stdout) {
                out.parsed = true;
                if let Some(v) = spec.result.as_ref().and_then(|p| json.pointer(p)) {
                    out.text = Some(value_text(v));
                }
                for (slot, field) in counts.iter_mut().zip(fields) {
                    if let Some(p) = field {
                        *slot += json.pointer(p).and_then(as_u64).unwrap_or(0);
                    }
                }
                if let Some(c) = spec
                    .cost_usd
                    .as_ref()
                    .and_then(|p| json.pointer(p))
                    .and_then(number)
                {
                    cost = Some(cost.unwrap_or(0.0) + c);
                }
                if let Some(v) = spec.session_id.as_ref().and_then(|p| json.pointer(p)) {
                    out.usage.session_id = Some(value_text(v));
                }
                if let Some(v) = spec.model.as_ref().and_then(|p| json.pointer(p)) {
                    out.usage.model = Some(value_text(v));
                }
                if let Some(e) = spec
                    .error
                    .as_ref()
                    .and_then(|p| json.pointer(p))
                    .and_then(error_value)
                {
                    out.error = Some(e);
                }
            }
            set_counts(&mut out.usage, counts);
            if let Some(c) = cost {
                out.usage.reported_cost(c);
            }
        }
    }
    Ok(out)
}

fn set_counts(usage: &mut Usage, [input, output, read, write]: [u64; 4]) {
    usage.input_tokens = input;
    usage.output_tokens = output;
    usage.cache_read_tokens = read;
    usage.cache_write_tokens = write;
}

/// `1234`, `1,234`, `2.2k`, `1.5M`.
fn parse_count(text: &str) -> Result<u64, OutputSpecError> {
    let t = text.trim().replace(',', "");
    let (number, scale) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000.0),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000.0),
        _ => (t.as_str(), 1.0),
    };
    number
        .parse::<f64>()
        .map(|n| (n * scale).round() as u64)
        .map_err(|_| OutputSpecError::Count {
            text: text.to_string(),
        })
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| {
        v.as_str()
            .and_then(|s| s.trim().trim_start_matches('$').parse().ok())
    })
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An error field that says something went wrong: `true`, a non-empty string, an object.
fn error_value(v: &Value) -> Option<String> {
    match v {
        Value::Null | Value::Bool(false) => None,
        Value::Bool(true) => Some("the agent reported an error".into()),
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => Some(
            o.get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string()),
        ),
        other => Some(other.to_string()),
    }
}
