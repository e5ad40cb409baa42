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
    /// The adapter of the agent the phase will run on, when the engine knows it (the pinned
    /// agent, else the first serving the role): `claude-code`, `codex`, `command`… A `command`
    /// agent has no model unless it declares one, and costs what it reports.
    pub adapter: Option<String>,
    /// That agent's own model (`model:` in agents.yaml), which it runs when no route's model
    /// applies.
    pub agent_model: Option<String>,
    /// The other models that agent accepts from a route (`models:` in agents.yaml). When it
    /// declares neither `model` nor `models`, a client takes any model and a `command` agent
    /// none; otherwise a route's model outside them is not applied.
    pub agent_models: Vec<String>,
    /// What a finished attempt changed on its work-package branch, when `govern` is asked
    /// again about it (`()` to hooks before an attempt starts). Asked only when the attempt
    /// changed files outside its package's `owned_files`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
}

/// The files an attempt changed on its work-package branch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Changes {
    /// Every file changed between the attempt's base and its last commit.
    pub files: Vec<String>,
    /// Those outside the work package's `owned_files`.
    pub outside_owned: Vec<String>,
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
    /// Complexity tier (`simple`, `medium`, `complex`, `critical`) when an analysis output
    /// exists.
    pub tier: Option<String>,
    /// The analysis's complexity dimensions (`scope`, `dependencies`, `ambiguity`,
    /// `technical_risk`, `integration`), each a score in [0, 1], when an analysis output exists.
    pub dimensions: BTreeMap<String, f64>,
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

/// The run-level part of the context (agents and models) as Rhai values and a digest,
/// converted once and reused while it stays the same from phase to phase.
#[derive(Debug, Default)]
pub(crate) struct ContextCache {
    inner: std::sync::Mutex<Option<Catalog>>,
}

#[derive(Debug)]
struct Catalog {
    agents: Vec<String>,
    models: Vec<ModelInfo>,
    agents_dyn: Dynamic,
    models_dyn: Dynamic,
    digest: [u8; 32],
    /// The run's inputs (the same for every phase of a run) and their Rhai form.
    inputs: BTreeMap<String, serde_json::Value>,
    inputs_dyn: Dynamic,
}

use rhai::{Array, Dynamic, Map};
use sha2::Digest as _;

fn string(s: &str) -> Dynamic {
    Dynamic::from(rhai::ImmutableString::from(s))
}

fn option_string(s: &Option<String>) -> Dynamic {
    s.as_deref().map_or(Dynamic::UNIT, string)
}

fn option_float(f: Option<f64>) -> Dynamic {
    f.map_or(Dynamic::UNIT, Dynamic::from_float)
}

fn strings(items: &[String]) -> Dynamic {
    Dynamic::from_array(items.iter().map(|s| string(s)).collect())
}

fn int(n: u64) -> Dynamic {
    Dynamic::from_int(n.min(i64::MAX as u64) as rhai::INT)
}

fn map<const N: usize>(pairs: [(&str, Dynamic); N]) -> Map {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.into(), v);
    }
    map
}

fn frozen<const N: usize>(pairs: [(&str, Dynamic); N]) -> Dynamic {
    Dynamic::from(Frozen::new(map(pairs)))
}

/// A read-only map: how hooks see each entry of `ctx.models`. Fields read like a map's
/// (`m.tier`, `m["name"]`); assigning to them is an error. The catalogue is converted once per
/// run and shared by every hook call (a pointer is copied, not the data); each call still gets
/// its own copy of the rest of the context, so that no hook can change what the next one sees.
#[derive(Clone, Debug)]
pub struct Frozen(std::sync::Arc<Map>);

impl Frozen {
    pub fn new(map: Map) -> Frozen {
        Frozen(std::sync::Arc::new(map))
    }

    /// The value of `key`, or `()`.
    pub fn get(&self, key: &str) -> Dynamic {
        self.0.get(key).cloned().unwrap_or(Dynamic::UNIT)
    }

    pub fn map(&self) -> &Map {
        &self.0
    }
}

/// The fields of a model, registered as property getters of [`Frozen`].
pub(crate) const FIELDS: &[&str] = &[
    "name",
    "tier",
    "provider",
    "input_per_mtok",
    "output_per_mtok",
    "context_window",
];

/// The context converted for Rhai once per phase; every hook call shares it.
#[derive(Clone, Debug)]
pub(crate) struct ContextParts {
    phase: Dynamic,
    run: Dynamic,
    agents: Dynamic,
    models: Dynamic,
}

impl ContextParts {
    /// The `ctx` a hook receives: these parts plus the pack's params and the route.
    pub(crate) fn with(&self, params: &Dynamic, route: &Dynamic) -> Dynamic {
        Dynamic::from_map(map([
            ("phase", self.phase.clone()),
            ("run", self.run.clone()),
            ("agents", self.agents.clone()),
            ("models", self.models.clone()),
            ("params", params.clone()),
            ("route", route.clone()),
        ]))
    }
}

impl RoutingContext {
    /// The context as hooks see it (without `params` and `route`), and the digest of its JSON
    /// form.
    pub(crate) fn to_rhai(&self, cache: &ContextCache) -> (ContextParts, Vec<u8>) {
        let (agents, models, inputs, catalog_digest) = self.catalog(cache);
        let p = &self.phase;
        let phase = Dynamic::from_map(map([
            ("id", string(&p.id)),
            ("role", option_string(&p.role)),
            ("kind", string(&p.kind)),
            ("attempt", int(u64::from(p.attempt))),
            ("prompt_chars", int(p.prompt_chars)),
            ("prompt_tokens_estimate", int(p.prompt_tokens_estimate)),
            ("paths", strings(&p.paths)),
            ("agent", option_string(&p.agent)),
            ("model", option_string(&p.model)),
            ("adapter", option_string(&p.adapter)),
            ("agent_model", option_string(&p.agent_model)),
            ("agent_models", strings(&p.agent_models)),
            (
                "changes",
                p.changes.as_ref().map_or(Dynamic::UNIT, |c| {
                    Dynamic::from_map(map([
                        ("files", strings(&c.files)),
                        ("outside_owned", strings(&c.outside_owned)),
                    ]))
                }),
            ),
        ]));
        let r = &self.run;
        let run = Dynamic::from_map(map([
            ("mission", string(&r.mission)),
            ("inputs", inputs),
            ("complexity", option_float(r.complexity)),
            ("tier", option_string(&r.tier)),
            (
                "dimensions",
                Dynamic::from_map(
                    r.dimensions
                        .iter()
                        .map(|(k, v)| (k.as_str().into(), Dynamic::from_float(*v)))
                        .collect(),
                ),
            ),
            ("risk_areas", strings(&r.risk_areas)),
            ("spent_usd", Dynamic::from_float(r.spent_usd)),
            ("budget_usd", option_float(r.budget_usd)),
            ("remaining_usd", option_float(r.remaining_usd)),
            ("soft_usd", option_float(r.soft_usd)),
        ]));
        let mut json = Vec::with_capacity(1024);
        // Writing to a vector cannot fail.
        let _ = serde_json::to_writer(&mut json, &self.phase);
        json.push(b'\n');
        let _ = serde_json::to_writer(&mut json, &self.run);
        json.push(b'\n');
        let mut hasher = sha2::Sha256::new();
        hasher.update(&json);
        hasher.update(catalog_digest);
        let parts = ContextParts {
            phase,
            run,
            agents,
            models,
        };
        (parts, hasher.finalize().to_vec())
    }

    /// The agents, the models and the run's inputs as Rhai values, and the digest of the
    /// agents and models: from the cache while they stay the same.
    fn catalog(&self, cache: &ContextCache) -> (Dynamic, Dynamic, Dynamic, [u8; 32]) {
        let mut guard = match cache.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(c) = guard.as_mut() {
            if c.agents == self.agents && c.models == self.models {
                if c.inputs != self.run.inputs {
                    c.inputs = self.run.inputs.clone();
                    c.inputs_dyn = inputs_dynamic(&c.inputs);
                }
                let out = (
                    c.agents_dyn.clone(),
                    c.models_dyn.clone(),
                    c.inputs_dyn.clone(),
                );
                return (out.0, out.1, out.2, c.digest);
            }
        }
        let models: Array = self
            .models
            .iter()
            .map(|m| {
                frozen([
                    ("name", string(&m.name)),
                    ("provider", string(&m.provider)),
                    ("tier", string(&m.tier)),
                    ("input_per_mtok", Dynamic::from_float(m.input_per_mtok)),
                    ("output_per_mtok", Dynamic::from_float(m.output_per_mtok)),
                    ("context_window", int(m.context_window)),
                ])
            })
            .collect();
        let json = serde_json::to_vec(&(&self.agents, &self.models)).unwrap_or_default();
        let catalog = Catalog {
            agents: self.agents.clone(),
            models: self.models.clone(),
            agents_dyn: strings(&self.agents),
            models_dyn: Dynamic::from_array(models),
            digest: sha2::Sha256::digest(&json).into(),
            inputs: self.run.inputs.clone(),
            inputs_dyn: inputs_dynamic(&self.run.inputs),
        };
        let out = (
            catalog.agents_dyn.clone(),
            catalog.models_dyn.clone(),
            catalog.inputs_dyn.clone(),
            catalog.digest,
        );
        *guard = Some(catalog);
        out
    }
}

fn inputs_dynamic(inputs: &BTreeMap<String, serde_json::Value>) -> Dynamic {
    rhai::serde::to_dynamic(inputs).unwrap_or(Dynamic::UNIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_see_the_context_as_its_json() {
        let ctx = RoutingContext {
            phase: PhaseContext {
                id: "plan".into(),
                role: Some("planner".into()),
                kind: "agent".into(),
                attempt: 2,
                prompt_chars: 4000,
                prompt_tokens_estimate: 1000,
                paths: vec!["plan.md".into()],
                agent: None,
                model: Some("opus".into()),
                adapter: Some("claude-code".into()),
                agent_model: None,
                agent_models: Vec::new(),
                changes: Some(Changes {
                    files: vec!["src/a.rs".into(), "README.md".into()],
                    outside_owned: vec!["README.md".into()],
                }),
            },
            run: RunContext {
                mission: "m".into(),
                inputs: [("spec".to_string(), serde_json::json!({"a": [1, 2.5, "x"]}))].into(),
                complexity: Some(0.5),
                tier: None,
                dimensions: [("scope".to_string(), 0.25)].into(),
                risk_areas: vec!["auth".into()],
                spent_usd: 1.0,
                budget_usd: Some(2.0),
                remaining_usd: None,
                soft_usd: Some(1.5),
            },
            agents: vec!["claude-code".into()],
            models: vec![ModelInfo {
                name: "opus".into(),
                provider: "anthropic".into(),
                tier: "strong".into(),
                input_per_mtok: 15.0,
                output_per_mtok: 75.0,
                context_window: 200_000,
            }],
        };
        let cache = ContextCache::default();
        let (parts, digest) = ctx.to_rhai(&cache);
        let seen = super::super::dynamic_to_json(&parts.with(&Dynamic::UNIT, &Dynamic::UNIT))
            .expect("converts");
        let mut expected = serde_json::to_value(&ctx).expect("serializes");
        expected["params"] = serde_json::Value::Null;
        expected["route"] = serde_json::Value::Null;
        assert_eq!(seen, expected);
        // The cached catalogue gives the same digest the second time.
        let (_, digest_again) = ctx.to_rhai(&cache);
        assert_eq!(digest, digest_again);
    }
}
