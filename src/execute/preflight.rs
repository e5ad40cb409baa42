//! Before a run starts: can every agent phase run here? Each phase's agent (its pinned
//! `agent:`, else the first agent of its `role:`) and that agent's fallbacks are checked: a CLI
//! client's program on PATH, an HTTP agent's key (and a `command` agent's `api_key_env`) set.
//! A phase none of whose agents can run is a problem; every problem is reported at once, and
//! the run is refused before anything is recorded or spent.

use std::path::{Path, PathBuf};

use crate::agents::{AgentConfig, HttpProtocol};
use crate::model::{Mission, PhaseKind};

/// What keeps each agent phase of `mission` from running here; empty when all can run.
/// With `remote` (NATS workers), a CLI client of a phase in its own attempt directory runs on
/// a worker: its program is the worker's business (HTTP agents still run here).
pub(super) fn check(mission: &Mission, project_root: &Path, remote: bool) -> Vec<String> {
    let agent_phases: Vec<(&String, Option<&str>, Option<&str>, bool)> = mission
        .phases
        .iter()
        .filter_map(|(id, phase)| match &phase.kind {
            PhaseKind::Agent { agent, role, .. } => {
                let on_worker = remote
                    && matches!(
                        phase.workspace,
                        None | Some(
                            crate::model::Workspace::Attempt | crate::model::Workspace::Worktree
                        )
                    );
                Some((id, agent.as_deref(), role.as_deref(), on_worker))
            }
            _ => None,
        })
        .collect();
    if agent_phases.is_empty() {
        return Vec::new();
    }
    let dot_dir = project_root.join(crate::project::DOT_DIR);
    let configured = match super::agents::load(mission.base.dir(), &dot_dir) {
        Ok(configured) => configured,
        Err(e) => return vec![format!("agents.yaml: {e}")],
    };
    let mut problems = Vec::new();
    for (id, agent, role, on_worker) in agent_phases {
        let (name, chosen) = match super::agents::choose(&configured, agent, role) {
            Ok(chosen) => chosen,
            // A pinned agent that does not exist can never run; a role without an agent may
            // still be routed by a policy.
            Err(e) if agent.is_some() => {
                problems.push(format!("phase `{id}`: {e}"));
                continue;
            }
            Err(_) => continue,
        };
        let mut chain = vec![(name, chosen)];
        chain.extend(chosen.fallbacks.iter().filter_map(|f| {
            configured
                .agents
                .get_key_value(f)
                .map(|(k, v)| (k.as_str(), v))
        }));
        let reasons: Vec<String> = chain
            .iter()
            .map(|(name, config)| {
                let http = HttpProtocol::from_adapter(&config.adapter).is_some();
                if on_worker && !http {
                    return None;
                }
                unavailable(name, config)
            })
            .collect::<Option<Vec<String>>>()
            .unwrap_or_default();
        if !reasons.is_empty() {
            problems.push(format!(
                "phase `{id}` has no agent that can run here: {}",
                reasons.join("; ")
            ));
        }
    }
    problems
}

/// Why agent `name` cannot run here, or `None` when it can.
fn unavailable(name: &str, config: &AgentConfig) -> Option<String> {
    if let Some(protocol) = HttpProtocol::from_adapter(&config.adapter) {
        let key = config
            .api_key_env
            .clone()
            .unwrap_or_else(|| protocol.default_key_env().to_string());
        return (!crate::agents::env_is_set(&key))
            .then(|| format!("agent `{name}` needs `{key}`, which is not set"));
    }
    let Some(adapter) = crate::agents::cli_adapter(&config.adapter, config) else {
        return Some(format!(
            "agent `{name}` uses adapter `{}`, which this engine does not run",
            config.adapter
        ));
    };
    let program = adapter.binary();
    // A templated program is only known at run time.
    if !program.contains("{{") && which(program).is_none() {
        return Some(format!("agent `{name}`: `{program}` was not found on PATH"));
    }
    if config.adapter == "command" {
        if let Some(key) = config
            .api_key_env
            .as_deref()
            .filter(|k| !crate::agents::env_is_set(k))
        {
            return Some(format!("agent `{name}` needs `{key}`, which is not set"));
        }
    }
    None
}

/// The program as the OS would find it: a path as given, else the first match on PATH.
fn which(program: &str) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        // A relative path is resolved in the attempt's directory, known at run time only.
        return (path.is_relative() || path.is_file()).then_some(path);
    }
    crate::agents::on_path(program)
}

/// Is `program` missing: a bare name not on PATH, or a path (relative to `cwd`) that is not a
/// file?
pub(super) fn missing(program: &str, cwd: &Path) -> bool {
    if program.contains('/') {
        return !cwd.join(program).is_file();
    }
    which(program).is_none()
}
