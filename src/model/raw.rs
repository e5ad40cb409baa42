//! The document shape of `mission.yaml`: what a mission author writes, before any semantic
//! check. The JSON Schema (`schemas/mission.schema.json`) is generated from these types and
//! their doc comments, which are the mission.yaml reference.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Spectacular mission: a declarative graph of phases.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Spectacular mission (mission.yaml v1)")]
pub struct RawMission {
    /// The mission's id, in kebab-case (`software-dev`, `release-notes`).
    pub mission: String,
    /// What the mission does, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Values given with `--input name=value` when the mission runs, by name (snake_case).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub inputs: IndexMap<String, RawInput>,
    /// Constants available to templates as `vars.<name>` and to expressions as `vars.<name>`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub vars: IndexMap<String, serde_json::Value>,
    /// Spending limits for one run of this mission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<RawBudget>,
    /// Policy packs to enable in addition to the auto-discovered ones: a pack's name, or
    /// `{name: {param: value, …}}` to set its params.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyEntry>,
    /// MCP servers this mission's agents may be given, by name (`github: { command:
    /// github-mcp-server, args: [stdio], env: { GITHUB_TOKEN: "${GITHUB_TOKEN}" } }`), beside
    /// those of `.spectacular/config.yaml` (whose server of the same name wins).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": "^[A-Za-z0-9_-]{1,32}$" }))]
    pub mcp_servers: IndexMap<String, crate::config::mcp::McpServer>,
    /// Which MCP tools each role and each agent may call (`planner: [github.search_issues,
    /// filesystem.*]`); where `.spectacular/config.yaml` lists the same role or agent, only
    /// the tools both lists allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_tools: Option<crate::config::mcp::McpTools>,
    /// Settings every phase inherits unless it sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<RawDefaults>,
    /// The phases, by id. Order does not matter: `needs` decides what runs when.
    pub phases: IndexMap<String, RawPhase>,
}

/// A policy pack to enable: its name, or `{name: {param: value, …}}` to set its params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PolicyEntry {
    Name(String),
    WithParams(IndexMap<String, serde_json::Map<String, serde_json::Value>>),
}

/// A declared input.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "Input")]
pub struct RawInput {
    /// The input's type; `file` values must name an existing file. Defaults to `string`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<InputType>,
    /// The run refuses to start without this input (unless it has a default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// The value used when the input is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// What the input is for, shown in help and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The type of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    String,
    Number,
    Bool,
    File,
    List,
}

impl InputType {
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Number => "number",
            InputType::Bool => "bool",
            InputType::File => "file",
            InputType::List => "list",
        }
    }
}

/// Spending limits in US dollars.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "Budget")]
pub struct RawBudget {
    /// The hard cap: a phase that would take the run past it is not started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_usd: Option<f64>,
    /// The alert threshold: crossing it records an alert, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub soft_usd: Option<f64>,
}

/// Settings inherited by every phase that does not set its own.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "Defaults")]
pub struct RawDefaults {
    /// The agent used by agent phases that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The model used by agent phases that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Per-attempt time limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Time limit for a whole phase, all attempts included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,
    /// Retry settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RawRetry>,
    /// Where attempts run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Workspace>,
    /// Keep the run going when a phase fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_error: Option<bool>,
}

/// A duration written as a humantime string: `90s`, `30m`, `1h 30m`, `2d`. Bare numbers are
/// rejected because their unit would be a guess.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as `90s`, `30m` or `1h 30m` (units: ms, s, m, h, d). Bare numbers are rejected.",
            "examples": ["30s", "5m", "1h 30m"]
        })
    }
}

/// How failed attempts are retried.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "Retry")]
pub struct RawRetry {
    /// Attempts in all, the first one included (1 means no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_attempts: Option<u32>,
    /// The wait between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<RawBackoff>,
    /// Failure kinds that are never retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_retryable: Vec<FailureKind>,
}

/// Exponential backoff: `initial`, multiplied by `factor` after each attempt, at most `max`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "Backoff")]
pub struct RawBackoff {
    /// The first wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<Duration>,
    /// The multiplier applied after each attempt (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub factor: Option<f64>,
    /// The longest wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Duration>,
}

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The process exited with a non-zero status (or the agent reported an error).
    Exit,
    /// The attempt ran past its `timeout`.
    Timeout,
    /// The run was canceled while the attempt ran.
    Canceled,
    /// The engine stopped (crash, kill) while the attempt ran.
    Interrupted,
    /// A declared output is missing, escapes the attempt directory or fails its schema.
    OutputInvalid,
    /// The process could not be started.
    Spawn,
    /// The program to run is not installed (not found), or no agent of the chain could be
    /// started: never retried, since waiting does not install it.
    Unavailable,
    /// The phase's `if` or `for_each` could not be evaluated.
    Expression,
    /// An approval gate was rejected.
    Rejected,
    /// The attempt would have taken the run past its budget's hard cap.
    Budget,
    /// A policy pack denied the phase (or required an approval it did not get).
    Denied,
    /// The work is wrong, not the attempt: the project's checks or the validator's verdicts
    /// failed. Never retried (the same checks on the same code fail the same way); the
    /// phase's `on_failure` sends the work back.
    Checks,
    /// Merging a work package's branch conflicted with what was merged before it.
    Conflict,
    /// Something the engine's git was about to act on is not what the engine made: a
    /// worktree's path, `.git`, branch or commit, the integration branch, or the
    /// repository's config changed under it. Nothing was done; never retried.
    Tampered,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Exit => "exit",
            FailureKind::Timeout => "timeout",
            FailureKind::Canceled => "canceled",
            FailureKind::Interrupted => "interrupted",
            FailureKind::OutputInvalid => "output_invalid",
            FailureKind::Spawn => "spawn",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Expression => "expression",
            FailureKind::Rejected => "rejected",
            FailureKind::Budget => "budget",
            FailureKind::Denied => "denied",
            FailureKind::Checks => "checks",
            FailureKind::Conflict => "conflict",
            FailureKind::Tampered => "tampered",
        }
    }
}

/// Where a phase's attempts run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Workspace {
    /// A fresh directory per attempt under the run (the default).
    Attempt,
    /// The project's repository itself.
    Repo,
    /// A git worktree on its own branch (`spectacular/<run-short>-<work package>`), created
    /// from the run's base or the work of its dependencies; what the attempt leaves is
    /// committed with provenance trailers.
    Worktree,
    /// The run's integration worktree, where `builtin/merge` merged the work packages: for
    /// phases that read or check the merged work (what they change there is not committed).
    Integration,
    /// A throw-away view of the repository at the run's base commit (a detached git worktree,
    /// removed after the attempt): for phases that read the code without changing it
    /// (research, planning). Never the user's own checkout.
    View,
}

/// A phase: one node of the mission graph. It has exactly one kind: `role`/`agent` (an agent
/// step), `run` (a command), `shell` (a shell script), `uses` (a built-in step) or `approval`
/// (a human gate).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "Phase")]
pub struct RawPhase {
    /// What the phase does, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// Agent kind: the role the routing policy picks an agent and model for (`planner`,
    /// `executor`, `validator`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Agent kind: pin the agent (`claude-code`, `codex`, `aider`, `command`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Agent phases: pin the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Agent phases: the prompt template file (minijinja), relative to the mission file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,

    /// Command kind: the argv to run, without a shell. Items may use `{{ }}` templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub run: Option<Vec<String>>,
    /// Shell kind: a script run with `sh -c`, for when you do want a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Built-in kind: the step to use, like `builtin/report`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// Built-in phases: the step's arguments; strings may use `{{ }}` templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<IndexMap<String, serde_json::Value>>,
    /// Approval kind: a gate that waits for a human decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<RawApproval>,

    /// Phases that must finish first (a skipped phase counts as finished). One id or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<OneOrMany>,
    /// Run the phase only when this Rhai expression is true, e.g. `run.complexity >= 0.3`.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    /// Fan out: run the phase once per item. A Rhai expression giving an array
    /// (`outputs.plan.tasks`) or a literal list. Items may carry `id` and `depends_on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<ForEach>,
    /// `for_each` phases: how many items run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_parallel: Option<u32>,
    /// Retry settings (override `defaults.retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RawRetry>,
    /// Per-attempt time limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Time limit for the whole phase, all attempts included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,
    /// When the phase fails, carry on as if it had succeeded (the failure is still recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_error: Option<bool>,
    /// Run even when earlier phases failed (like `finally`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always: Option<bool>,
    /// Files the phase produces, by name; checked and promoted into the run's artifacts.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: IndexMap<String, RawOutput>,
    /// Where attempts run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Workspace>,
    /// Labels a worker must have to run this phase's attempts when the run goes through NATS
    /// (`spectacular worker --labels linux,aider`), e.g. `[linux, aider]`. Without NATS the
    /// phase runs on this machine, as always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,31}$")))]
    pub runs_on: Vec<String>,
    /// A bounded rework loop: when this phase fails, re-run from an upstream phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<RawOnFailure>,
}

/// One phase id or a list of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one.clone()],
            OneOrMany::Many(many) => many.clone(),
        }
    }
}

/// A Rhai expression giving an array, or a literal list of items.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ForEach {
    Expression(String),
    Items(Vec<serde_json::Value>),
}

/// A human gate.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "Approval")]
pub struct RawApproval {
    /// Why approval is needed, shown to the approver.
    pub reason: String,
    /// How long to wait for a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// What happens when the timeout passes (default `reject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<OnTimeout>,
}

/// The decision taken when an approval times out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    Reject,
    Approve,
}

/// A declared output file.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "Output")]
pub struct RawOutput {
    /// The file's path, relative to the attempt's output directory.
    pub path: String,
    /// A JSON Schema file (relative to the mission) the output must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// A check the engine runs on the output beyond a schema; a failed check fails the attempt
    /// as `output_invalid` with every problem, which the retry's prompt gets as
    /// `attempt.previous_errors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<RawOutputCheck>,
}

/// A check of an output by the engine.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "OutputCheck")]
pub struct RawOutputCheck {
    /// What the output is. `plan`: a `tasks.json` checked against the published tasks schema
    /// (`spectacular schema tasks`) and the plan rules: unique ids, existing and acyclic
    /// `depends_on`, references the spec defines, every requirement and success criterion
    /// covered. It writes `traceability.md` beside the output. `verdicts`: a validator's
    /// `verdicts.json` checked against the published verdicts schema
    /// (`spectacular schema verdicts`) and, with `plan`, exactly one verdict for every
    /// acceptance criterion of the plan's work packages; a well-formed file with a `fail`
    /// verdict fails the attempt as `checks`, naming the evidence files of the failed verdicts.
    pub kind: OutputCheckKind,
    /// `kind: plan`: the spec the plan is traced to (a path, relative to the project;
    /// templated, e.g. `{{ inputs.spec }}`). Without it, only the plan's own structure is
    /// checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    /// `kind: verdicts`: the plan (`tasks.json`) whose acceptance criteria the verdicts are
    /// about: a recorded output as `<phase>.<output>` (`plan.tasks`), or a path relative to
    /// the project (templated). Without it, only the verdicts file itself is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
}

/// The kinds of output checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputCheckKind {
    /// A planner's `tasks.json`.
    Plan,
    /// A validator's `verdicts.json`.
    Verdicts,
}

/// A rework loop.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "OnFailure")]
pub struct RawOnFailure {
    /// The upstream phase to re-run from.
    pub goto: String,
    /// How many times the loop may run (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_loops: Option<u32>,
}
