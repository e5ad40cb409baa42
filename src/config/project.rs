//! The project's `config.yaml` (`.spectacular/config.yaml`): the mission `spectacular run
//! spec.md` runs, and the knowledge budgets of each role. Sections this module does not know
//! are left to the parts of the engine that read them; the sections it knows are checked.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diag::Diagnostics;

/// The built-in mission a Markdown spec runs by default.
pub const DEFAULT_SPEC_MISSION: &str = "software-dev";

/// `config.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Spectacular project configuration (config.yaml)")]
pub struct ProjectConfig {
    /// The mission `spectacular run <spec.md>` runs with the spec as its `spec` input (a name
    /// or a path; default `software-dev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub spec_mission: Option<String>,
    /// Inputs given to that mission when the command line does not give them
    /// (`check_command: make test`); inputs the mission does not declare are left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spec_inputs: BTreeMap<String, String>,
    /// The spec analysis's weights, tier thresholds and bounds (`spectacular analyse`; checked
    /// by the analysis itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Value>,
    /// How much project knowledge (`.spectacular/knowledge/`) prompts get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<KnowledgeConfig>,
    /// When `builtin/clarify` stops the run to ask the spec's questions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clarify: Option<ClarifySection>,
    /// The webhooks told about runs: a gate or a question waiting for a person, a run that
    /// failed or succeeded, a budget alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<super::notify::NotifySection>,
    /// MCP servers agents may be given (`github: { command: github-mcp-server, args: [stdio] }`);
    /// an attempt gets only the servers of the tools `mcp_tools` allows it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": "^[A-Za-z0-9_-]{1,32}$" }))]
    pub mcp_servers: BTreeMap<String, super::mcp::McpServer>,
    /// Which MCP tools each role and each agent may call (`<server>.<tool>`, `<server>.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_tools: Option<super::mcp::McpTools>,
    /// Send this project's run events to a control plane (`spectacular serve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncSection>,
    /// The GitHub and GitLab APIs that issue references (`spectacular run github:owner/repo#1`)
    /// are fetched from, and whether the plan and the end of a run are commented on the issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forge: Option<ForgeSection>,
    /// Pushing a run's integration branch and opening a pull or merge request for it. Without
    /// this section nothing is ever pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_requests: Option<PullRequestSection>,
    /// Running attempts on NATS workers (`run --nats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats: Option<NatsSection>,
}

/// The `nats` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsSection {
    /// How long an attempt waits in the queue for a worker with its labels (`10m`, the
    /// default; from `1s` to `7d`): when no worker took it, and none took or ran any attempt
    /// needing those labels in the last half of it, the attempt fails saying which worker to
    /// start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub queue_timeout: Option<String>,
}

/// The shortest and longest `nats.queue_timeout`.
pub const QUEUE_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600));

impl NatsSection {
    /// The queue timeout, if set and valid.
    pub fn queue_timeout(&self) -> Option<Duration> {
        self.queue_timeout
            .as_deref()
            .and_then(|t| humantime::parse_duration(t.trim()).ok())
            .filter(|d| (QUEUE_TIMEOUT_RANGE.0..=QUEUE_TIMEOUT_RANGE.1).contains(d))
    }
}

/// What the schema cannot check about the `nats` section: the duration, located in `file`.
fn check_nats(
    root: &crate::load::yaml::Node,
    section: &NatsSection,
    file: &str,
    diagnostics: &mut Diagnostics,
) {
    use crate::conform::Seg;
    use crate::diag::{Code, Diagnostic};
    let Some(text) = &section.queue_timeout else {
        return;
    };
    if section.queue_timeout().is_some() {
        return;
    }
    let path = [Seg::Key("nats".into()), Seg::Key("queue_timeout".into())];
    let span = crate::conform::lookup(root, &path).map(|f| f.key_span.unwrap_or(f.node.span));
    let problem = match humantime::parse_duration(text.trim()) {
        Err(e) => format!("is not a duration: {e}"),
        Ok(_) => "is out of range".into(),
    };
    diagnostics.push(
        Diagnostic::new(
            Code::InvalidDuration,
            format!("`queue_timeout: {text}` {problem}"),
        )
        .at(file, span, crate::conform::path_text(&path))
        .help("write a duration from `1s` to `7d`, such as `10m` (the default)"),
    );
}

/// The `sync` section: where this project's events go, and under which names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    /// The control plane's URL (`http://fleet.internal:7420`).
    #[schemars(regex(pattern = r"^https?://[^\s]+$"))]
    pub url: String,
    /// This project's name on the control plane: letters, digits, `_` and `-`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"))]
    pub project: String,
    /// The team the project belongs to (cost by team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"))]
    pub team: Option<String>,
    /// The environment variable holding the bearer token (default `SPECTACULAR_SYNC_TOKEN`).
    /// The token itself is never written in a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"))]
    pub token_env: Option<String>,
    /// Ask the control plane before each agent attempt whether the project is over its fleet
    /// budget for the month, and refuse the attempt when it is (default false).
    #[serde(default)]
    pub enforce_budget: bool,
}

/// The `forge` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgeSection {
    /// GitHub (or GitHub Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<ForgeApi>,
    /// GitLab (or a self-hosted GitLab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<ForgeApi>,
    /// Comment the checked plan and the end of a run on the issue it came from (default
    /// false: nothing is written to the issue).
    #[serde(default)]
    pub comment: bool,
}

/// One forge's API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgeApi {
    /// The API's address (default `https://api.github.com`, `https://gitlab.com/api/v4`;
    /// GitHub Enterprise: `https://<host>/api/v3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub api_url: Option<String>,
}

/// The `pull_requests` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequestSection {
    /// The git remote the integration branch is pushed to (`origin`).
    #[schemars(length(min = 1))]
    pub remote: String,
    /// Open (or update) the pull request at the end of every run that succeeds; without it,
    /// only `spectacular pr <run>` does.
    #[serde(default)]
    pub on_success: bool,
    /// The project the pull request is opened in (`github:owner/repo`,
    /// `gitlab:group/project`); default: the project of the run's issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub project: Option<String>,
    /// The branch it asks to merge into; default: the branch the run started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub base: Option<String>,
    /// Open it as a draft.
    #[serde(default)]
    pub draft: bool,
}

/// The `clarify` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClarifySection {
    /// Ask when the spec's ambiguity score reaches this (0..1; default 0.5). Clarification
    /// markers left in the spec are asked about whatever the score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub ambiguity: Option<f64>,
    /// Ask at most this many questions at once (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20))]
    pub max_questions: Option<u32>,
}

impl ProjectConfig {
    /// The clarification settings, defaults filled in.
    pub fn clarify(&self) -> ClarifyConfig {
        let mut config = ClarifyConfig::default();
        if let Some(section) = &self.clarify {
            if let Some(a) = section.ambiguity {
                config.ambiguity = a;
            }
            if let Some(n) = section.max_questions {
                config.max_questions = n as usize;
            }
        }
        config
    }
}

/// When a spec asks its questions: the `clarify:` key of `.spectacular/config.yaml`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClarifyConfig {
    /// Ask when the ambiguity dimension reaches this score (0..1), or when clarification
    /// markers remain, whatever the score.
    pub ambiguity: f64,
    /// Ask at most this many questions at once (Spec Kit asks five).
    pub max_questions: usize,
}

impl Default for ClarifyConfig {
    fn default() -> ClarifyConfig {
        ClarifyConfig {
            ambiguity: 0.5,
            max_questions: 5,
        }
    }
}

/// The `knowledge` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeConfig {
    /// Tokens of knowledge per role (`planner: 8000`); roles not named keep their default.
    #[serde(default)]
    pub budgets: BTreeMap<String, u32>,
}

/// The JSON Schema of `config.yaml`, compiled once per process.
pub static PROJECT_SCHEMA: crate::conform::Schema = crate::conform::Schema::new(project_schema);

/// The JSON Schema of `config.yaml`.
pub fn project_schema() -> Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<ProjectConfig>()
        .to_value()
}

/// Read `config.yaml` in `dot_dir` (`.spectacular/`), if there is one. A file with errors gives
/// the default configuration and its diagnostics.
pub fn load(dot_dir: &Path) -> (ProjectConfig, Diagnostics) {
    let path = dot_dir.join("config.yaml");
    match std::fs::read_to_string(&path) {
        Ok(text)
            if text.lines().all(|l| {
                let l = l.trim();
                l.is_empty() || l.starts_with('#') || l == "---"
            }) =>
        {
            (ProjectConfig::default(), Diagnostics::new())
        }
        Ok(text) => {
            let file = path.display().to_string();
            let (config, mut diagnostics) = super::check_file(&text, &file, &PROJECT_SCHEMA);
            let mut config: ProjectConfig = config.unwrap_or_default();
            if let Some(section) = &config.notify {
                if let Some(root) = crate::load::yaml::parse(&text, &file).root {
                    super::notify::check(&root, section, &file, &mut diagnostics);
                }
                if diagnostics.has_errors() {
                    config.notify = None;
                }
            }
            if let Some(section) = &config.nats {
                if let Some(root) = crate::load::yaml::parse(&text, &file).root {
                    check_nats(&root, section, &file, &mut diagnostics);
                }
            }
            (config, diagnostics)
        }
        Err(_) => (ProjectConfig::default(), Diagnostics::new()),
    }
}
