//! The routing context given to every hook: the phase, the run, the agents and models that are
//! available. Hooks see it as the Rhai map `ctx` (plus `ctx.params`, the pack's parameters, and
//! for `govern`/`budget` `ctx.route`, the route chosen by the `route` hooks).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything a hook may base a decision on. Every field has a default, so that a test case
/// only writes what it is about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingContext {
    pub phase: PhaseContext,
    pub run: RunContext,
    /// Names of the agents that are configured and available (`claude-code`, `codex`…).
    pub agents: Vec<String>,
    /// The priced models that can be chosen.
    pub models: Vec<ModelInfo>,
}

/// The phase about to start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhaseContext {
    /// Phase id; fan-out children are `parent[key]`.
    pub id: String,
    /// `planner`, `executor`, `validator`… for role phases.
    pub role: Option<String>,
    /// `agent`, `run`, `uses` or `approval`.
    pub kind: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Size of the rendered prompt in characters.
    pub prompt_chars: u64,
    /// A rough token count of the prompt (characters / 4 when not given).
    pub prompt_tokens_estimate: u64,
    /// Paths the phase declares (outputs, work-package files).
    pub paths: Vec<String>,
    /// The agent pinned by the mission, if any.
    pub agent: Option<String>,
    /// The model pinned by the mission, if any.
    pub model: Option<String>,
}

/// The run the phase belongs to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunContext {
    /// The mission id.
    pub mission: String,
    /// The run's inputs after defaults.
    pub inputs: BTreeMap<String, serde_json::Value>,
    /// Complexity score in [0, 1] when an analysis output exists.
    pub complexity: Option<f64>,
    /// Complexity tier (`low`, `medium`, `high`) when an analysis output exists.
    pub tier: Option<String>,
    /// Risk areas the analysis found in the spec (`auth`, `payment`…).
    pub risk_areas: Vec<String>,
    /// Dollars spent so far.
    pub spent_usd: f64,
    /// The run's hard cap, if any.
    pub budget_usd: Option<f64>,
    /// `budget_usd - spent_usd` (computed when not given).
    pub remaining_usd: Option<f64>,
    /// The soft (alert) threshold, if any.
    pub soft_usd: Option<f64>,
}

/// A priced model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelInfo {
    pub name: String,
    pub provider: String,
    /// `cheap`, `standard` or `strong`.
    pub tier: String,
    /// Dollars per million input tokens.
    pub input_per_mtok: f64,
    /// Dollars per million output tokens.
    pub output_per_mtok: f64,
    /// Context window in tokens.
    pub context_window: u64,
}

impl RoutingContext {
    /// Fill the derived fields left empty: the token estimate from the prompt size, the
    /// remaining budget from the cap and the spend, attempt 1.
    pub fn normalized(mut self) -> RoutingContext {
        if self.phase.prompt_tokens_estimate == 0 {
            self.phase.prompt_tokens_estimate = self.phase.prompt_chars.div_ceil(4);
        }
        if self.phase.attempt == 0 {
            self.phase.attempt = 1;
        }
        if self.run.remaining_usd.is_none() {
            if let Some(cap) = self.run.budget_usd {
                self.run.remaining_usd = Some((cap - self.run.spent_usd).max(0.0));
            }
        }
        self
    }
}
