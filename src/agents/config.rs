//! `agents.yaml`: the configured agents, loaded from the mission's directory and the project's
//! `.spectacular/`, and the choice of an agent for a phase.

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use super::Error;

/// `agents.yaml`.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Spectacular agents (agents.yaml)")]
pub struct AgentsFile {
    #[serde(default)]
    pub agents: IndexMap<String, AgentConfig>,
}

/// One agent of `agents.yaml`. Which fields matter depends on the adapter.
#[derive(Clone, Debug, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename = "Agent")]
pub struct AgentConfig {
    /// The adapter: `claude-code`, `codex`, `aider`, `gemini`, `opencode`, `command`,
    /// `openai-chat` or `anthropic-messages`.
    #[schemars(extend("enum" = super::ADAPTERS))]
    pub adapter: String,
    /// Roles this agent serves when a phase names a role but no agent.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Agents to try, in order, when this one is unavailable, rate-limited, overloaded,
    /// failing on the server or timing out.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// `command`: the argv template (minijinja; sees the phase context plus `prompt_file`).
    #[serde(default)]
    pub argv: Vec<String>,
    /// `command`: send the prompt on stdin too (default true).
    #[serde(default = "yes")]
    pub stdin: bool,
    /// `command`: how to read the output (text, JSON or JSONL; pointers or regexes).
    #[serde(default)]
    pub output: Option<OutputSpec>,
    /// CLI adapters: the program to run instead of the client's usual name.
    #[serde(default)]
    pub binary: Option<String>,
    /// The model to ask for (a phase's model wins).
    #[serde(default)]
    pub model: Option<String>,
    /// Other models of the catalogue this agent accepts from a routing policy: a route may
    /// choose among these and `model`, and among no other. A `command` agent is offered for
    /// routing only the models it declares (`{{ model }}` and `SPECTACULAR_MODEL` tell it the
    /// one chosen).
    #[serde(default)]
    pub models: Vec<String>,
    /// CLI adapters: extra arguments, placed before the prompt.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables for the client (not secrets: name those in `api_key_env`).
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// The API's base URL: passed to a CLI through its usual variable, or the HTTP endpoint.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding the API key (its name, never its value). The client
    /// sees it; its value is redacted from everything recorded.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// CLI and `command` agents: environment variables holding secrets that the client may
    /// still see (names). A client keeps only its own key variables and `api_key_env` of the
    /// variables Spectacular treats as secrets; name any other it needs here (a `GITHUB_TOKEN`
    /// for `gh`, say). Their values are redacted all the same.
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// HTTP adapters: extra request headers.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// HTTP adapters: stream the response (server-sent events).
    #[serde(default)]
    pub stream: bool,
    /// HTTP adapters: the most output tokens to ask for.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Claude Code: `--permission-mode` (default `acceptEdits`; empty for the client default).
    #[serde(default)]
    pub permission_mode: Option<String>,
}

/// The configuration an adapter is built from.
pub type AdapterConfig = AgentConfig;

impl Default for AgentConfig {
    fn default() -> AgentConfig {
        AgentConfig {
            adapter: "command".into(),
            roles: Vec::new(),
            fallbacks: Vec::new(),
            argv: Vec::new(),
            stdin: true,
            output: None,
            binary: None,
            model: None,
            models: Vec::new(),
            args: Vec::new(),
            env: IndexMap::new(),
            base_url: None,
            api_key_env: None,
            pass_env: Vec::new(),
            headers: IndexMap::new(),
            stream: false,
            max_tokens: None,
            permission_mode: None,
        }
    }
}

impl AgentConfig {
    /// A configuration for `adapter` with every other field at its default.
    pub fn for_adapter(adapter: &str) -> AgentConfig {
        AgentConfig {
            adapter: adapter.into(),
            ..AgentConfig::default()
        }
    }
}

/// How a `command` agent's output is read.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// `text` (default), `json` (one object) or `jsonl` (one object per line).
    #[serde(default)]
    pub format: OutputFormat,
    /// Each field below is a JSON pointer (`/usage/input_tokens`) for `json` and `jsonl`, or a
    /// regex whose first capture group is the value for `text`. With `jsonl`, token counts and
    /// costs are summed over the lines and strings come from the last line that has them.
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub input_tokens: Option<String>,
    #[serde(default)]
    pub output_tokens: Option<String>,
    #[serde(default)]
    pub cache_read_tokens: Option<String>,
    #[serde(default)]
    pub cache_write_tokens: Option<String>,
    #[serde(default)]
    pub cost_usd: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// When this matches (a non-empty, non-false value, or a regex match), the attempt failed
    /// whatever the exit code; the value is the reason.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
    Jsonl,
}

fn yes() -> bool {
    true
}

/// The built-in agents' `agents.yaml`.
pub const BUILTIN_AGENTS: &str = include_str!("agents.yaml");

/// Where a configured agent comes from, highest precedence first: beside the mission, the
/// project's `.spectacular/`, the user's config dir, built in.
pub fn layers(
    mission_dir: Option<&Path>,
    dot_dir: &Path,
    user_dir: Option<&Path>,
) -> Vec<(String, String)> {
    let mut layers = Vec::new();
    for dir in [mission_dir, Some(dot_dir), user_dir].into_iter().flatten() {
        let path = dir.join("agents.yaml");
        if let Ok(text) = std::fs::read_to_string(&path) {
            layers.push((path.display().to_string(), text));
        }
    }
    layers.push((
        "builtin:agents.yaml".to_string(),
        BUILTIN_AGENTS.to_string(),
    ));
    layers
}

/// Every configured agent with the file it comes from; the first definition of a name wins,
/// and agents are listed in precedence order (so a role is served by the highest layer).
pub fn origins(
    mission_dir: Option<&Path>,
    dot_dir: &Path,
    user_dir: Option<&Path>,
) -> Result<IndexMap<String, (AgentConfig, String)>, Error> {
    let mut merged: IndexMap<String, (AgentConfig, String)> = IndexMap::new();
    for (origin, text) in layers(mission_dir, dot_dir, user_dir) {
        let file = parse(&text, &origin)?;
        for (name, agent) in file.agents {
            merged.entry(name).or_insert((agent, origin.clone()));
        }
    }
    Ok(merged)
}

/// The agents a run can use: beside the mission, then the project's, the user's, built in.
pub fn load(mission_dir: Option<&Path>, dot_dir: &Path) -> Result<AgentsFile, Error> {
    let user = crate::project::user_config_dir();
    let merged = origins(mission_dir, dot_dir, user.as_deref())?;
    Ok(AgentsFile {
        agents: merged
            .into_iter()
            .map(|(name, (agent, _))| (name, agent))
            .collect(),
    })
}

/// The JSON Schema of `agents.yaml`, compiled once per process (files are checked with it).
pub static AGENTS_SCHEMA: crate::conform::Schema = crate::conform::Schema::new(agents_schema);

/// The JSON Schema of `agents.yaml`, generated from its types.
pub fn agents_schema() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<AgentsFile>();
    schema.to_value()
}

/// `agents_schema()` as pretty JSON with a trailing newline (`schemas/agents.schema.json`).
pub fn agents_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&agents_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// Check the text of an `agents.yaml` (`origin` names it): located diagnostics, like missions.
pub fn check(text: &str, origin: &str) -> (Option<AgentsFile>, crate::diag::Diagnostics) {
    crate::conform::check_file(text, origin, &AGENTS_SCHEMA)
}

/// Parse the text of an `agents.yaml`; `origin` names it in messages. The error is the first
/// problem, located (`file:line:col: message`); `check` gives them all.
pub fn parse(text: &str, origin: &str) -> Result<AgentsFile, Error> {
    let (file, diagnostics) = check(text, origin);
    if let Some(file) = file {
        return Ok(file);
    }
    let first = diagnostics.sorted().into_iter().find(|d| d.is_error());
    Err(match first {
        Some(d) => {
            let at = d
                .span
                .map(|s| format!("{}:{}:{}", d.file, s.line, s.col))
                .unwrap_or_else(|| d.file.clone());
            let help = d
                .help
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            Error::InvalidFile {
                at,
                message: format!("{}{help}", d.message),
            }
        }
        None => Error::InvalidFile {
            at: origin.to_string(),
            message: "not a valid agents.yaml".into(),
        },
    })
}

/// Pick the agent for a phase: the pinned one, else the first serving its role.
pub fn choose<'a>(
    file: &'a AgentsFile,
    agent: Option<&str>,
    role: Option<&str>,
) -> Result<(&'a str, &'a AgentConfig), Error> {
    if let Some(name) = agent {
        return file
            .agents
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| Error::UnknownAgent {
                name: name.to_string(),
            });
    }
    let role = role.unwrap_or_default();
    file.agents
        .iter()
        .find(|(_, a)| a.roles.iter().any(|r| r == role))
        .map(|(k, v)| (k.as_str(), v))
        .ok_or_else(|| Error::NoAgentForRole {
            role: role.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_what_is_wrong() {
        let file = parse("agents:\n  a:\n    adapter: codex\n", "agents.yaml").unwrap();
        assert_eq!(
            choose(&file, Some("b"), None).unwrap_err(),
            Error::UnknownAgent { name: "b".into() }
        );
        assert_eq!(
            choose(&file, None, Some("reviewer")).unwrap_err(),
            Error::NoAgentForRole {
                role: "reviewer".into()
            }
        );
        match parse("agents:\n  a:\n    adapter: claud\n", "agents.yaml") {
            Err(Error::InvalidFile { at, message }) => {
                assert_eq!(at, "agents.yaml:3:14");
                assert!(message.contains("`claud`"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
