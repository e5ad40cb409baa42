//! Agent adapters: the coding-agent CLIs (Claude Code, Codex, Aider, Gemini, OpenCode), one
//! table of them in [`clients`] with a parser per client, the generic `command` adapter
//! configured in `agents.yaml`, and HTTP adapters for the OpenAI Chat Completions and Anthropic
//! Messages protocols. An adapter turns a rendered prompt into an [`Invocation`] (argv, never a
//! shell) and the client's output into an [`AgentOutcome`]: the result text, the [`Usage`]
//! (tokens, dollars and where they came from) and, on failure, a [`FailureClass`] that tells
//! the engine whether falling back to another agent is worthwhile.
//!
//! This module never spawns processes (the engine does, through `execute::process`) and never
//! writes files; API keys are read from the environment by name, and every secret of the
//! environment ([`secret`]) is redacted from every text it returns.

mod aider;
mod classify;
mod claude;
pub mod clients;
mod codex;
pub mod command;
pub mod config;
mod gemini;
mod http;
pub mod mcp;
mod opencode;
pub mod secret;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::record::usage::{CostSource, Usage};
pub use classify::{classify_status, classify_text};
pub use config::{AdapterConfig, AgentConfig, AgentsFile, OutputFormat, OutputSpec};
pub use http::{call_http, call_http_blocking, call_http_with_key, HttpEndpoint, HttpProtocol};
pub use secret::{child_env_removals, secret_env_names};

/// What goes wrong in this module outside an attempt: a configuration that cannot be read or
/// does not name an agent, an argv that does not render, a key that is not set.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// An `agents.yaml` with errors: its first problem, located (`file:line:col`).
    #[error("{at}: {message}")]
    InvalidFile { at: String, message: String },
    #[error("no agent named `{name}` is configured (agents.yaml)")]
    UnknownAgent { name: String },
    #[error("no configured agent serves the role `{role}` (add `roles: [{role}]` to an agent in agents.yaml)")]
    NoAgentForRole { role: String },
    #[error("a `command` agent needs a non-empty `argv`")]
    EmptyArgv,
    /// An element of a `command` agent's argv template that does not render.
    #[error("{0}")]
    Template(String),
    #[error("adapter `{adapter}` is not run by this engine yet; use `adapter: command`")]
    NotCommand { adapter: String },
    #[error("the API key variable `{name}` is not set")]
    KeyNotSet { name: String },
}

/// The engine records these errors as text.
impl From<Error> for String {
    fn from(error: Error) -> String {
        error.to_string()
    }
}

/// What an adapter needs to know about one attempt.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The rendered prompt.
    pub prompt: String,
    /// Where the rendered prompt was written (`attempts/<phase>/<n>/prompt.md`).
    pub prompt_file: PathBuf,
    /// The model to ask for; the client's default when absent.
    pub model: Option<String>,
    /// The directory the agent works in.
    pub workdir: PathBuf,
    /// A spending cap the client enforces itself (Claude Code only).
    pub max_budget_usd: Option<f64>,
    /// A cap on agentic turns (Claude Code only).
    pub max_turns: Option<u32>,
    /// Whether `workdir` is a git worktree the engine made for the attempt (a view, a work
    /// package's worktree, the integration worktree). Elsewhere (an attempt directory inside
    /// the user's checkout, the checkout itself) a client must not use git: it would find the
    /// user's repository.
    pub git_worktree: bool,
}

/// How to start a client: an argv (the program first), optional stdin bytes, extra
/// environment variables and the files the client's settings need. Never a shell command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    pub env: Vec<(String, String)>,
    /// Files to write before the client starts (absolute paths inside the attempt's directory,
    /// such as a client's settings file): the engine writes them, this module never does.
    pub files: Vec<(PathBuf, String)>,
}

/// Why an attempt failed, as far as the adapter can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The client is not installed, cannot start, or the API cannot be reached.
    Unavailable,
    /// Missing, invalid or unpaid credentials.
    Auth,
    /// HTTP 429 or the client's words for it.
    RateLimit,
    /// The provider says it is overloaded (Anthropic 529, HTTP 503).
    Overloaded,
    /// The prompt does not fit the model's context window.
    ContextOverflow,
    /// The attempt ran out of time.
    Timeout,
    /// HTTP 5xx other than overload.
    ServerError,
    /// Anything else (the agent itself failed, a bad request, unparseable output).
    Other,
}

impl FailureClass {
    /// Is another try (or another agent) likely to succeed where this one failed?
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureClass::RateLimit
                | FailureClass::Overloaded
                | FailureClass::ServerError
                | FailureClass::Timeout
                | FailureClass::Unavailable
        )
    }

    /// The snake_case name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Unavailable => "unavailable",
            FailureClass::Auth => "auth",
            FailureClass::RateLimit => "rate_limit",
            FailureClass::Overloaded => "overloaded",
            FailureClass::ContextOverflow => "context_overflow",
            FailureClass::Timeout => "timeout",
            FailureClass::ServerError => "server_error",
            FailureClass::Other => "other",
        }
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What came of one call to an agent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentOutcome {
    pub ok: bool,
    /// The agent's final answer, when it gave one.
    pub text: Option<String>,
    pub usage: Usage,
    /// The class and a one-line reason, when `ok` is false.
    pub failure: Option<(FailureClass, String)>,
}

impl AgentOutcome {
    pub fn success(text: Option<String>, usage: Usage) -> AgentOutcome {
        AgentOutcome {
            ok: true,
            text,
            usage,
            failure: None,
        }
    }

    pub fn failed(class: FailureClass, reason: impl Into<String>, usage: Usage) -> AgentOutcome {
        AgentOutcome {
            ok: false,
            text: None,
            usage,
            failure: Some((class, one_line(&reason.into()))),
        }
    }

    /// The outcome with every secret replaced by `[REDACTED]`.
    pub fn redacted(mut self, secrets: &[String]) -> AgentOutcome {
        self.text = self.text.map(|t| redact(&t, secrets));
        if let Some((_, reason)) = &mut self.failure {
            *reason = redact(reason, secrets);
        }
        self.usage.session_id = self.usage.session_id.map(|s| redact(&s, secrets));
        self.usage.model = self.usage.model.map(|s| redact(&s, secrets));
        self
    }

    /// The outcome of a process that could not be started (`execute::process` reports it).
    pub fn spawn_failed(message: &str) -> AgentOutcome {
        AgentOutcome::failed(FailureClass::Unavailable, message, Usage::default())
    }

    /// The outcome of a process killed by its timeout.
    pub fn timed_out(limit: &str) -> AgentOutcome {
        AgentOutcome::failed(
            FailureClass::Timeout,
            format!("the agent did not finish within {limit}"),
            Usage::default(),
        )
    }
}

/// An adapter for a coding-agent CLI run as a child process.
pub trait CliAdapter: Send + Sync {
    /// The adapter's name in `agents.yaml`: `claude-code`, `codex`, `aider`, `gemini`,
    /// `opencode` or `command`.
    fn name(&self) -> &'static str;
    /// The program to run (the configured `binary`, else the client's usual name).
    fn binary(&self) -> &str;
    /// The argv, stdin and environment for one attempt.
    fn invocation(&self, request: &Request) -> Invocation;
    /// Like [`CliAdapter::invocation`], but reports what prevents building one (a `command`
    /// agent's argv template that does not render). The engine should call this one.
    fn try_invocation(&self, request: &Request) -> Result<Invocation, Error> {
        Ok(self.invocation(request))
    }
    /// Read the client's output. The exit code alone is never trusted where the client is
    /// known to exit 0 on errors.
    fn parse(&self, exit_code: Option<i32>, stdout: &str, stderr: &str) -> AgentOutcome;
    /// The arguments that print the client's version (`agents doctor`).
    fn version_args(&self) -> Vec<String>;
    /// The environment variables holding API keys the client reads (names only).
    fn key_env(&self) -> &[&'static str];
}

/// The CLI adapter named `name`, configured by `config`; `None` for an unknown name or an HTTP
/// adapter (see [`HttpProtocol::from_adapter`]).
pub fn cli_adapter(name: &str, config: &AdapterConfig) -> Option<Box<dyn CliAdapter>> {
    if name == "command" {
        return Some(Box::new(command::CommandAdapter::new(config)));
    }
    let spec = clients::client_spec(name)?;
    Some(Box::new(clients::Client::new(spec, config)))
}

/// How an agent's process ended, as the engine reports it to [`process_outcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessEnd {
    /// It exited with this code (`None`: killed by a signal).
    Exited(Option<i32>),
    TimedOut,
    Canceled,
    /// It could not be started; the message says why.
    SpawnFailed(String),
}

/// The outcome of a CLI attempt from how its process ended and what it printed, redacted:
/// the adapter parses what a process that exited printed; a timeout, a cancellation and a
/// failure to start are classified without it. `limit` names the timeout in messages.
pub fn process_outcome(
    adapter: &dyn CliAdapter,
    ended: impl Into<ProcessEnd>,
    stdout: &str,
    stderr: &str,
    secrets: &[String],
    limit: &str,
) -> AgentOutcome {
    let outcome = match ended.into() {
        ProcessEnd::Exited(code) => adapter.parse(code, stdout, stderr),
        ProcessEnd::TimedOut => {
            // Whatever the client managed to report before it was killed still counts.
            let partial = adapter.parse(None, stdout, stderr);
            let mut outcome = AgentOutcome::timed_out(limit);
            outcome.usage = partial.usage;
            outcome
        }
        ProcessEnd::Canceled => AgentOutcome::failed(
            FailureClass::Other,
            "the attempt was canceled",
            Usage::default(),
        ),
        ProcessEnd::SpawnFailed(message) => AgentOutcome::spawn_failed(&message),
    };
    outcome.redacted(secrets)
}

/// The names of every adapter, CLI and HTTP, as written in `agents.yaml`.
pub const ADAPTERS: &[&str] = &[
    "claude-code",
    "codex",
    "aider",
    "gemini",
    "opencode",
    "command",
    "openai-chat",
    "anthropic-messages",
];

/// The values to redact from what an agent returns: every secret of this process's environment
/// (see [`secret`]: the built-in list, the clients' key variables, names ending in `_API_KEY`,
/// `_TOKEN`…), plus the adapter's key variables and the agent's `api_key_env` and `pass_env`.
/// A `command` agent's output is redacted of all of them too, whether or not it names a key.
pub fn secrets(adapter: Option<&dyn CliAdapter>, config: &AdapterConfig) -> Vec<String> {
    secrets_in(adapter, config, &secret::process_env())
}

/// [`secrets`] against the given environment.
pub fn secrets_in(
    adapter: Option<&dyn CliAdapter>,
    config: &AdapterConfig,
    env: &[(String, String)],
) -> Vec<String> {
    let mut names = secret::secret_env_names(
        &AgentsFile::default(),
        &crate::config::models::Catalog::default(),
    );
    names.extend(
        adapter
            .map(|a| {
                a.key_env()
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    names.extend(config.api_key_env.iter().cloned());
    names.extend(config.pass_env.iter().cloned());
    let mut values: Vec<String> = secret::secret_values(&names, env)
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    values.sort();
    values.dedup();
    values
}

/// The values to redact from an HTTP agent's answer: those of the named variables (its key),
/// and every other secret of this process's environment ([`secret`]).
pub fn secret_values(names: &[String]) -> Vec<String> {
    let env = secret::process_env();
    let mut values: Vec<String> = names
        .iter()
        .filter_map(|n| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
        .filter(|v| v.len() >= 4)
        .collect();
    let known = secret::secret_env_names(
        &AgentsFile::default(),
        &crate::config::models::Catalog::default(),
    );
    values.extend(
        secret::secret_values(&known, &env)
            .into_iter()
            .map(|(_, value)| value),
    );
    values.sort();
    values.dedup();
    values
}

/// Replace every occurrence of each secret in `text` with `[REDACTED]`. Secrets shorter than
/// four characters are ignored (they would redact ordinary words).
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    // Longest first, so that a secret containing another is replaced whole.
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| s.len() >= 4).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in sorted {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "[REDACTED]");
        }
    }
    out
}

/// Redact a captured file (an attempt's `stdout.log` or `stderr.log`) in place; true when
/// something was replaced. In a file that is not UTF-8, invalid bytes become U+FFFD when (and
/// only when) a secret had to be replaced.
pub fn redact_file(path: &std::path::Path, secrets: &[String]) -> std::io::Result<bool> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let redacted = redact(&text, secrets);
    if redacted == text {
        return Ok(false);
    }
    std::fs::write(path, redacted)?;
    Ok(true)
}

/// Per-million-token prices of a model, in dollars.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
    /// Cached input read; the input price when absent.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Cache writes; the input price when absent.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

/// Fill in `cost_usd` (with `cost_source: priced`) from the tokens when the client reported
/// only tokens. A reported cost is never replaced.
pub fn price(usage: &mut Usage, prices: &Prices) {
    if usage.cost_usd.is_some() {
        return;
    }
    let per = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
    let cost = per(usage.input_tokens, prices.input)
        + per(usage.output_tokens, prices.output)
        + per(
            usage.cache_read_tokens,
            prices.cache_read.unwrap_or(prices.input),
        )
        + per(
            usage.cache_write_tokens,
            prices.cache_write.unwrap_or(prices.input),
        );
    usage.cost_usd = Some(cost);
    usage.cost_source = Some(CostSource::Priced);
}

/// The first non-empty line of a message, at most 500 characters: failure reasons are short.
pub(crate) fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut out: String = line.chars().take(500).collect();
    if line.chars().count() > 500 {
        out.push('…');
    }
    out
}

/// The last few non-empty lines of a text, for failure reasons taken from stderr.
pub(crate) fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join(" | ")
}

/// A failure for a process that exited non-zero without a machine-readable reason.
pub(crate) fn exit_failure(exit_code: Option<i32>, stdout: &str, stderr: &str) -> AgentOutcome {
    clients::exit_failure_with(classify_text, exit_code, stdout, stderr)
}

/// Parse the first complete JSON value in `text`: the whole text, else the last line that is
/// a JSON object, else the span from the first `{` to the last `}` (clients sometimes print a
/// banner before their JSON).
pub(crate) fn find_json_object(text: &str) -> Option<serde_json::Value> {
    let trimmed = text.trim();
    if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_str(trimmed) {
        return Some(v);
    }
    for line in trimmed.lines().rev() {
        let line = line.trim();
        if line.starts_with('{') {
            if let Ok(v @ serde_json::Value::Object(_)) = serde_json::from_str(line) {
                return Some(v);
            }
        }
    }
    let start = trimmed.find('{')?;
    let end = trimmed.rfind('}')?;
    if end <= start {
        return None;
    }
    match serde_json::from_str(&trimmed[start..=end]) {
        Ok(v @ serde_json::Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// The JSON objects of a JSONL stream, skipping lines that are not JSON objects.
pub(crate) fn json_lines(text: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if !line.starts_with('{') {
            return None;
        }
        match serde_json::from_str(line) {
            Ok(v @ serde_json::Value::Object(_)) => Some(v),
            _ => None,
        }
    })
}

pub(crate) fn u64_at(value: &serde_json::Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(as_u64).unwrap_or(0)
}

pub(crate) fn as_u64(value: &serde_json::Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

pub(crate) fn str_at(value: &serde_json::Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Whether the environment variable `name` holds a non-empty value.
pub fn env_is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// The first file named `program` in a directory of `PATH`, as the OS would find a bare name.
pub fn on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
