//! `spectacular agents list|doctor`: the configured agents, where each comes from, and whether
//! it can run here (binary on PATH and its version, API keys set — never their values).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Context, Exit, Failure, Outcome};
use crate::agents::config::origins;
use crate::agents::{cli_adapter, HttpProtocol};

const EXAMPLES_LIST: &str = "\
Examples:
  # The configured agents and the file each comes from
  spectacular agents list
  # With the agents.yaml beside a mission
  spectacular agents list --mission-dir examples/quickstart";
const EXAMPLES_DOCTOR: &str = "\
Examples:
  # Is each agent's program installed, are its keys set?
  spectacular agents doctor
  # As JSON, for tools
  spectacular agents doctor --json";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// The configured agents: adapter, roles, model, and the file each comes from.
    #[command(after_help = EXAMPLES_LIST)]
    List {
        /// Also read the `agents.yaml` beside this mission directory.
        #[arg(long, value_name = "DIR")]
        mission_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check each agent: is its program installed (and which version), are its API keys set?
    #[command(after_help = EXAMPLES_DOCTOR)]
    Doctor {
        /// Also read the `agents.yaml` beside this mission directory.
        #[arg(long, value_name = "DIR")]
        mission_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Row {
    name: String,
    adapter: String,
    roles: Vec<String>,
    model: Option<String>,
    origin: String,
    program: Option<String>,
    found: Option<String>,
    version: Option<String>,
    keys: Vec<(String, bool)>,
    ready: bool,
}

pub fn run(context: &Context, args: Args) -> Outcome {
    let (doctor, mission_dir, json) = match args.command {
        Sub::List { mission_dir, json } => (false, mission_dir, json),
        Sub::Doctor { mission_dir, json } => (true, mission_dir, json),
    };
    let dot_dir = context.project.dot_dir();
    let user = crate::project::user_config_dir();
    let mission_dir = mission_dir.map(|d| context.cwd.join(d));
    let agents =
        origins(mission_dir.as_deref(), &dot_dir, user.as_deref()).map_err(|e| Failure {
            exit: Exit::Invalid,
            message: e.to_string(),
        })?;
    let rows: Vec<Row> = agents
        .iter()
        .map(|(name, (config, origin))| {
            let mut row = Row {
                name: name.clone(),
                adapter: config.adapter.clone(),
                roles: config.roles.clone(),
                model: config.model.clone(),
                origin: crate::project::display_path(Path::new(origin), &context.cwd),
                program: None,
                found: None,
                version: None,
                keys: Vec::new(),
                ready: false,
            };
            if let Some(protocol) = HttpProtocol::from_adapter(&config.adapter) {
                let key = config
                    .api_key_env
                    .clone()
                    .unwrap_or_else(|| protocol.default_key_env().to_string());
                row.keys = vec![(key.clone(), crate::agents::env_is_set(&key))];
                row.ready = crate::agents::env_is_set(&key);
            } else if let Some(adapter) = cli_adapter(&config.adapter, config) {
                let program = adapter.binary().to_string();
                row.found = which(&program).map(|p| p.display().to_string());
                if doctor {
                    if let Some(found) = &row.found {
                        row.version = version(Path::new(found), &adapter.version_args());
                    }
                }
                // The agent's own `api_key_env` first (Codex and OpenCode read the key from it
                // for a `base_url`; every client's child keeps it), then the client's variables.
                let mut names: Vec<String> = config.api_key_env.iter().cloned().collect();
                for k in adapter.key_env() {
                    if !names.iter().any(|n| n == k) {
                        names.push(k.to_string());
                    }
                }
                row.keys = names
                    .into_iter()
                    .map(|k| {
                        let set = crate::agents::env_is_set(&k);
                        (k, set)
                    })
                    .collect();
                row.ready = row.found.is_some();
                row.program = Some(program);
            }
            row
        })
        .collect();
    if json {
        let text =
            serde_json::to_string_pretty(&rows).map_err(|e| Failure::internal(e.to_string()))?;
        outln!("{text}")?;
        return Ok(Exit::Success);
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5);
    if !doctor {
        outln!(
            "{:width$}  {:18}  {:28}  ORIGIN",
            "AGENT",
            "ADAPTER",
            "ROLES"
        )?;
        for r in &rows {
            outln!(
                "{:width$}  {:18}  {:28}  {}",
                r.name,
                r.adapter,
                r.roles.join(","),
                r.origin
            )?;
        }
        return Ok(Exit::Success);
    }
    outln!(
        "{:width$}  {:18}  {:9}  {:30}  KEYS",
        "AGENT",
        "ADAPTER",
        "STATUS",
        "PROGRAM / VERSION"
    )?;
    for r in &rows {
        let status = if r.ready { "ready" } else { "missing" };
        let program = match (&r.program, &r.found, &r.version) {
            (Some(_), Some(_), Some(v)) => v.clone(),
            (Some(p), Some(_), None) => format!("{p} (version unknown)"),
            (Some(p), None, _) => format!("{p} not on PATH"),
            (None, _, _) => "(HTTP)".to_string(),
        };
        let keys: Vec<String> = r
            .keys
            .iter()
            .map(|(k, set)| format!("{k} {}", if *set { "set" } else { "not set" }))
            .collect();
        outln!(
            "{:width$}  {:18}  {:9}  {:30}  {}",
            r.name,
            r.adapter,
            status,
            program,
            keys.join(", ")
        )?;
    }
    let ready = rows.iter().filter(|r| r.ready).count();
    outln!("{ready} of {} agents can run here", rows.len())?;
    if ready == 0 {
        outln!("{WITHOUT_A_MODEL}")?;
    }
    Ok(Exit::Success)
}

/// What doctor says when nothing can run: the `command` adapter runs any program as an agent.
const WITHOUT_A_MODEL: &str = "\
No client can run here. To try Spectacular without a model, declare a `command` agent in
.spectacular/agents.yaml: a script standing in for the agent (adapter: command). The book's
page \"Try it on your project without a model\" (book/src/without-a-model.md) gives the
contract it follows and a script that works on any spec of any repository.";

/// The program as the OS would find it: a path as given, else the first match on PATH.
fn which(program: &str) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    crate::agents::on_path(program)
}

/// The first line a program prints for its version flag, within five seconds.
fn version(program: &Path, args: &[String]) -> Option<String> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let output = child.wait_with_output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}
