//! Agent adapters. The runtime knows one adapter, `command`: a configured argv template that
//! receives the rendered prompt as a file (`{{ prompt_file }}`) and on stdin, never through a
//! shell. Agents are declared in `agents.yaml` beside the mission or in `.spectacular/`.

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

/// `agents.yaml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsFile {
    #[serde(default)]
    pub agents: IndexMap<String, AgentConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The adapter: `command`.
    pub adapter: String,
    /// The argv template (minijinja; sees the phase context plus `prompt_file`).
    #[serde(default)]
    pub argv: Vec<String>,
    /// Send the prompt on stdin too (default true).
    #[serde(default = "yes")]
    pub stdin: bool,
    /// Roles this agent serves when a phase names a role but no agent.
    #[serde(default)]
    pub roles: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Agents from the mission's directory (highest precedence) and the project's `.spectacular/`.
pub fn load(mission_dir: Option<&Path>, dot_dir: &Path) -> Result<AgentsFile, String> {
    let mut merged = AgentsFile::default();
    // The mission's own agents first: they win by name and are tried first for a role.
    for dir in [mission_dir, Some(dot_dir)].into_iter().flatten() {
        let path = dir.join("agents.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let parsed = crate::load::yaml::parse(&text, &path.display().to_string());
        if let Some(d) = parsed.diagnostics.first() {
            return Err(format!("{}: {}", path.display(), d.message));
        }
        let json = parsed.root.map(|r| r.to_json()).unwrap_or(Value::Null);
        let file: AgentsFile =
            serde_json::from_value(json).map_err(|e| format!("{}: {e}", path.display()))?;
        for (name, agent) in file.agents {
            merged.agents.entry(name).or_insert(agent);
        }
    }
    Ok(merged)
}

/// Pick the agent for a phase: the pinned one, else the first serving its role.
pub fn choose<'a>(
    file: &'a AgentsFile,
    agent: Option<&str>,
    role: Option<&str>,
) -> Result<(&'a str, &'a AgentConfig), String> {
    if let Some(name) = agent {
        return file
            .agents
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| format!("no agent named `{name}` is configured (agents.yaml)"));
    }
    let role = role.unwrap_or_default();
    file.agents
        .iter()
        .find(|(_, a)| a.roles.iter().any(|r| r == role))
        .map(|(k, v)| (k.as_str(), v))
        .ok_or_else(|| format!("no configured agent serves the role `{role}` (add `roles: [{role}]` to an agent in agents.yaml)"))
}

/// The argv and stdin of a `command` agent call.
pub fn invocation(
    agent: &AgentConfig,
    context: &Value,
    prompt_file: &Path,
    prompt: &str,
) -> Result<(Vec<String>, Option<Vec<u8>>), String> {
    if agent.adapter != "command" {
        return Err(format!(
            "adapter `{}` is not available yet; use `adapter: command`",
            agent.adapter
        ));
    }
    if agent.argv.is_empty() {
        return Err("a `command` agent needs a non-empty `argv`".into());
    }
    let mut context = context.clone();
    context["prompt_file"] = Value::String(prompt_file.display().to_string());
    let argv = agent
        .argv
        .iter()
        .map(|a| crate::prompt::render(a, &context))
        .collect::<Result<Vec<String>, String>>()?;
    Ok((argv, agent.stdin.then(|| prompt.as_bytes().to_vec())))
}
