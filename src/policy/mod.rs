//! Policy packs: discovery, hooks and the combination of their answers. Hooks run in the
//! bounded engines of [`crate::expr`] (operations counted inside closures, call depth,
//! expression depth, string/array/map sizes checked before a native call allocates, a
//! wall-clock deadline, the engine's interrupt; no `eval`, no modules, no clock, no file,
//! network or environment access), with the decision helpers of [`sandbox`].
//!
//! Policy packs (DESIGN §6) are discovered in layers, lowest precedence first: built-in →
//! user → project (`.spectacular/policies/`) → mission-local (`policies/` beside the mission).
//! A pack shadows a pack of the same name in a lower layer. [`Packs::decide`] runs the hooks of
//! every active pack for one phase and combines them:
//!
//! 1. `route(ctx)` of every pack; the highest layer that answers wins (within a layer, the
//!    pack whose name sorts first). The winner (or the phase's pinned agent/model) is then
//!    visible to the other hooks as `ctx.route` (`#{agent, model, pack}`, or `()`).
//! 2. `budget(ctx)` of every pack. A `downgrade` replaces the routed model (the highest
//!    layer's downgrade wins); `alert`s are collected.
//! 3. `govern(ctx)` of every pack, seeing the route after any downgrade.
//!
//! Any `deny` (from govern or budget) wins over everything; else `require_approval` if any
//! pack requires it; else allow.
//!
//! **Fail closed**: a hook that fails at run time (a script error, a sandbox limit, a result of
//! the wrong shape) becomes a decision of kind `error`, which counts as a deny whose reason is
//! the error.

pub mod choice;
mod context;
pub mod pack;
pub mod sandbox;
pub mod testcase;

use std::path::{Path, PathBuf};

use rhai::{Dynamic, Map};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use sha2::Digest as _;

pub use context::{Changes, Frozen, ModelInfo, PhaseContext, RoutingContext, RunContext};
pub use pack::{LoadedPack, Manifest, PackFiles, Param, ParamType};

use crate::diag::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::record::event::{EventData, PolicyDecided};

/// Mission expressions are built by [`crate::expr`]; these names stay for existing callers.
pub use crate::expr::{check_expression, expression_engine, SyntaxError};
/// Limits of the sandbox (those of every evaluation, see [`crate::expr`]).
pub use crate::expr::{
    MAX_ARRAY_SIZE, MAX_CALL_LEVELS, MAX_MAP_SIZE, MAX_OPERATIONS, MAX_STRING_SIZE,
};

/// A policy hook.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    /// Choose the agent and model of a phase.
    Route,
    /// Allow, deny, or require a human's approval.
    Govern,
    /// Soft budget behaviour: allow, deny, downgrade the model, alert.
    Budget,
}

impl Hook {
    pub const NAMES: &'static [&'static str] = &["route", "govern", "budget"];
    pub const ALL: [Hook; 3] = [Hook::Route, Hook::Govern, Hook::Budget];

    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Route => "route",
            Hook::Govern => "govern",
            Hook::Budget => "budget",
        }
    }

    pub fn parse(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.as_str() == name)
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a pack was found, lowest precedence first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Builtin,
    User,
    Project,
    Mission,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Builtin => "builtin",
            Layer::User => "user",
            Layer::Project => "project",
            Layer::Mission => "mission",
        }
    }
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A discovered pack, for `policy list`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PackInfo {
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub layer: Layer,
    /// A path (relative to the working directory) or `builtin:policies/<name>`.
    pub origin: String,
    pub hooks: Vec<Hook>,
    /// Active in decisions (enabled and not shadowed).
    pub active: bool,
    /// A pack of the same name in a higher layer replaces this one.
    pub shadowed: bool,
    /// `sha256:<hex>` of the manifest and scripts.
    pub digest: String,
}

/// One hook's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub pack: String,
    pub version: String,
    pub layer: Layer,
    pub hook: Hook,
    /// The hook's result as JSON: `null` when it abstained, `{"decision":"error","error":…}`
    /// when it failed.
    pub result: Json,
    pub reason: Option<String>,
    /// `sha256:<hex>` over the context's digest, the pack's params and the route the hook saw.
    pub input_digest: String,
}

impl Decision {
    /// The hook abstained (returned `()`).
    pub fn abstained(&self) -> bool {
        self.result.is_null()
    }

    /// The `decision` field of a govern or budget result (`allow`, `deny`, `error`…).
    pub fn kind(&self) -> Option<&str> {
        self.result.get("decision").and_then(Json::as_str)
    }

    /// The hook failed; it counts as a deny.
    pub fn is_error(&self) -> bool {
        self.kind() == Some("error")
    }

    /// The `policy.decided` event payload for this decision about `phase`.
    pub fn to_event(&self, phase: &str) -> EventData {
        EventData::PolicyDecided(Box::new(PolicyDecided {
            phase: phase.to_string(),
            pack: self.pack.clone(),
            version: self.version.clone(),
            hook: self.hook.as_str().to_string(),
            result: self.result.clone(),
            reason: self.reason.clone(),
            input_digest: self.input_digest.clone(),
            layer: Some(self.layer.as_str().to_string()),
            context: None,
            ignored: None,
        }))
    }
}

/// The combined governance outcome of a phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GovernOutcome {
    Allow,
    Deny { reason: String, pack: String },
    RequireApproval { reason: String, pack: String },
}

/// Every decision taken for one phase, and their combination.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decisions {
    /// The winning route: the highest layer that answered.
    pub route: Option<Decision>,
    pub govern: GovernOutcome,
    /// The budget decisions that did not abstain, in layer order.
    pub budget: Vec<Decision>,
    /// Every hook call, abstentions included, in the order they ran.
    pub all: Vec<Decision>,
    /// The context the hooks saw, recorded with the first decision (for what-if replay).
    #[serde(skip)]
    pub context: Option<Box<RoutingContext>>,
    /// Why the winning route was not (wholly) applied, once the engine chose
    /// ([`choice::apply`]); recorded on the route's decision.
    #[serde(skip)]
    pub ignored: Option<String>,
}

impl Decisions {
    /// The agent to use: the winning route's, if it named one.
    pub fn agent(&self) -> Option<&str> {
        self.route
            .as_ref()
            .and_then(|d| d.result.get("agent"))
            .and_then(Json::as_str)
            .filter(|a| !a.is_empty())
    }

    /// The model to use: the highest layer's budget `downgrade`, else the winning route's.
    pub fn model(&self) -> Option<&str> {
        self.budget
            .iter()
            .rev()
            .find(|d| d.kind() == Some("downgrade"))
            .or(self.route.as_ref())
            .and_then(|d| d.result.get("model"))
            .and_then(Json::as_str)
            .filter(|m| !m.is_empty())
    }

    /// What the `govern` decisions that name `mcp_tools` leave of the MCP tools an attempt may
    /// call: each narrows (`config::mcp::Scope::narrow`), none widens. `None` when none names any.
    pub fn mcp_tools(&self) -> Option<Vec<String>> {
        let mut narrowed: Option<Vec<String>> = None;
        for d in self.all.iter().filter(|d| d.hook == Hook::Govern) {
            let Some(list) = d.result.get("mcp_tools").and_then(Json::as_array) else {
                continue;
            };
            let names: Vec<String> = list
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect();
            narrowed = Some(match narrowed {
                None => names,
                Some(before) => crate::config::mcp::meet_names(&before, &names),
            });
        }
        narrowed
    }

    /// The budget alerts: (pack, level, message).
    pub fn alerts(&self) -> Vec<(&str, &str, &str)> {
        self.budget
            .iter()
            .filter(|d| d.kind() == Some("alert"))
            .map(|d| {
                let field = |k: &str| d.result.get(k).and_then(Json::as_str).unwrap_or("");
                (d.pack.as_str(), field("level"), field("message"))
            })
            .collect()
    }

    /// One `policy.decided` event per hook call, in order; the first carries the context
    /// the hooks saw.
    pub fn events(&self, phase: &str) -> Vec<EventData> {
        let winner = self.route.as_ref();
        let mut events: Vec<EventData> = self
            .all
            .iter()
            .map(|d| {
                let mut event = d.to_event(phase);
                if let EventData::PolicyDecided(e) = &mut event {
                    if winner.is_some_and(|w| w == d) {
                        e.ignored.clone_from(&self.ignored);
                    }
                }
                event
            })
            .collect();
        if let (Some(EventData::PolicyDecided(first)), Some(ctx)) =
            (events.first_mut(), &self.context)
        {
            first.context = serde_json::to_value(ctx).ok();
        }
        events
    }
}

/// A valid pack and what it needs at decision time.
#[derive(Clone, Debug)]
struct Entry {
    pack: LoadedPack,
    layer: Layer,
    active: bool,
    shadowed: bool,
    /// The params after defaults and overrides, as JSON (for digests) and as a Rhai map.
    params: serde_json::Map<String, Json>,
    params_dyn: Dynamic,
    /// SHA-256 of the params' JSON, part of every input digest.
    params_digest: [u8; 32],
}

impl Entry {
    fn new(pack: LoadedPack, layer: Layer) -> Entry {
        let params: serde_json::Map<String, Json> = pack
            .manifest
            .params
            .iter()
            .map(|(k, p)| (k.clone(), p.default.clone()))
            .collect();
        let mut entry = Entry {
            pack,
            layer,
            active: false,
            shadowed: false,
            params: serde_json::Map::new(),
            params_dyn: Dynamic::UNIT,
            params_digest: [0; 32],
        };
        entry.set_params(params);
        entry
    }

    fn set_params(&mut self, params: serde_json::Map<String, Json>) {
        self.params_dyn = params_to_dynamic(&params);
        self.params_digest =
            sha2::Sha256::digest(serde_json::to_vec(&params).unwrap_or_default()).into();
        self.params = params;
    }

    fn name(&self) -> &str {
        &self.pack.manifest.name
    }

    fn has(&self, hook: Hook) -> bool {
        self.pack.manifest.hooks.contains(&hook)
    }
}

/// Params as a Rhai map; numbers are always floats so that scripts compare them uniformly.
fn params_to_dynamic(params: &serde_json::Map<String, Json>) -> Dynamic {
    let floats: serde_json::Map<String, Json> = params
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Json::Number(n) => n.as_f64().map(Json::from).unwrap_or(Json::Null),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    rhai::serde::to_dynamic(&floats).unwrap_or(Dynamic::UNIT)
}

/// The policy packs of a run: discovered, loaded and compiled once, in layer order.
pub struct Packs {
    engine: rhai::Engine,
    /// Every valid pack, sorted by (layer, name).
    entries: Vec<Entry>,
    /// Agents and models converted for Rhai once per run, not once per phase.
    cache: context::ContextCache,
}

impl std::fmt::Debug for Packs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packs")
            .field("packs", &self.list())
            .finish_non_exhaustive()
    }
}

impl Packs {
    /// Discover the packs of every layer: built-in, `user_dir` (the user's policies directory,
    /// e.g. `~/.config/spectacular/policies`), `<project_dot_dir>/policies` and
    /// `<mission_dir>/policies`. Packs from user, project and mission layers are active unless
    /// their manifest says `enabled_by_default: false`; such packs (and the opt-in built-ins)
    /// are active when named in `enabled`. File names in diagnostics are relative to the
    /// working directory.
    pub fn discover(
        project_dot_dir: &Path,
        user_dir: Option<&Path>,
        mission_dir: Option<&Path>,
        enabled: &[String],
    ) -> (Packs, Diagnostics) {
        let base = std::env::current_dir().unwrap_or_default();
        Packs::discover_from(project_dot_dir, user_dir, mission_dir, enabled, &base)
    }

    /// [`Packs::discover`] with file names shown relative to `base`.
    pub fn discover_from(
        project_dot_dir: &Path,
        user_dir: Option<&Path>,
        mission_dir: Option<&Path>,
        enabled: &[String],
        base: &Path,
    ) -> (Packs, Diagnostics) {
        let mut sources: Vec<(Layer, PackFiles)> = pack::builtin_names()
            .into_iter()
            .map(|name| (Layer::Builtin, PackFiles::Builtin { name }))
            .collect();
        let mut scan = |layer: Layer, dir: PathBuf| {
            for path in pack_dirs(&dir) {
                sources.push((layer, PackFiles::dir(&path, base)));
            }
        };
        if let Some(user) = user_dir {
            scan(Layer::User, user.to_path_buf());
        }
        scan(Layer::Project, project_dot_dir.join("policies"));
        if let Some(mission) = mission_dir {
            scan(Layer::Mission, mission.join("policies"));
        }
        Packs::from_sources(sources, enabled)
    }

    /// Only the built-in packs (all of them active): for tests and benchmarks.
    pub fn builtin() -> (Packs, Diagnostics) {
        let names = pack::builtin_names();
        let sources = names
            .iter()
            .map(|name| (Layer::Builtin, PackFiles::Builtin { name: name.clone() }))
            .collect();
        Packs::from_sources(sources, &names)
    }

    /// Load the packs in `sources` (each with its layer).
    pub fn from_sources(
        sources: Vec<(Layer, PackFiles)>,
        enabled: &[String],
    ) -> (Packs, Diagnostics) {
        let engine = sandbox::policy_engine();
        let mut diagnostics = Diagnostics::new();
        let mut entries = Vec::new();
        for (layer, files) in sources {
            if let Some(pack) = pack::load(&engine, files, &mut diagnostics) {
                entries.push(Entry::new(pack, layer));
            }
        }
        entries.sort_by(|a, b| (a.layer, a.name()).cmp(&(b.layer, b.name())));
        let mut packs = Packs {
            engine,
            entries,
            cache: context::ContextCache::default(),
        };
        diagnostics.extend(packs.enable(enabled));
        (packs, diagnostics)
    }

    /// Decide which packs take part: not shadowed (a pack shadows the packs of the same name
    /// in lower layers), and enabled by default or named in `enabled`. A name that is no pack
    /// is a diagnostic.
    pub fn enable(&mut self, enabled: &[String]) -> Diagnostics {
        let entries = &mut self.entries;
        for i in 0..entries.len() {
            let shadowed = entries[i + 1..]
                .iter()
                .any(|e| e.name() == entries[i].name() && e.layer > entries[i].layer);
            let e = &mut entries[i];
            e.shadowed = shadowed;
            e.active = !shadowed
                && (e.pack.manifest.enabled_by_default || enabled.iter().any(|n| n == e.name()));
        }
        let mut diagnostics = Diagnostics::new();
        for name in enabled {
            if !entries.iter().any(|e| e.name() == name) {
                diagnostics.push(
                    Diagnostic::new(Code::PackInvalid, format!("no policy pack named `{name}`"))
                        .maybe_help(did_you_mean(name, entries.iter().map(Entry::name)))
                        .help("`spectacular policy list` shows the packs that can be enabled"),
                );
            }
        }
        diagnostics
    }

    /// Every valid pack found, in layer order (shadowed and inactive ones included).
    pub fn list(&self) -> Vec<PackInfo> {
        self.entries
            .iter()
            .map(|e| PackInfo {
                name: e.name().to_string(),
                version: e.pack.manifest.version.clone(),
                description: e.pack.manifest.description.clone(),
                layer: e.layer,
                origin: e.pack.files.origin(),
                hooks: e.pack.manifest.hooks.clone(),
                active: e.active,
                shadowed: e.shadowed,
                digest: e.pack.digest.clone(),
            })
            .collect()
    }

    /// Override params of the active pack `name` (from a mission, say). Values are checked
    /// against the declared types.
    pub fn set_params(
        &mut self,
        name: &str,
        values: &serde_json::Map<String, Json>,
    ) -> Result<(), ParamsError> {
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.active && e.name() == name)
            .ok_or_else(|| ParamsError::NoSuchPack {
                name: name.to_string(),
            })?;
        let params = merge_params(&entry.pack.manifest, &entry.params, values)?;
        entry.set_params(params);
        Ok(())
    }

    /// Run every active pack's hooks for the phase in `ctx` and combine the answers.
    pub fn decide(&self, ctx: &RoutingContext) -> Decisions {
        let (parts, ctx_digest) = ctx.to_rhai(&self.cache);
        let active: Vec<&Entry> = self.entries.iter().filter(|e| e.active).collect();
        let mut all = Vec::new();

        // 1. route: the highest layer that answers wins; within a layer, the first by name.
        let mut winner: Option<usize> = None;
        for entry in active.iter().filter(|e| e.has(Hook::Route)) {
            let decision = self.call(entry, Hook::Route, &parts, &ctx_digest, &Dynamic::UNIT, "");
            let answered = !decision.abstained() && !decision.is_error();
            if answered {
                let better = match winner {
                    None => true,
                    Some(w) => {
                        let current: &Decision = &all[w];
                        decision.layer > current.layer
                    }
                };
                if better {
                    winner = Some(all.len());
                }
            }
            all.push(decision);
        }
        let text =
            |d: &Decision, key: &str| d.result.get(key).and_then(Json::as_str).map(str::to_string);
        let mut seen = match winner.map(|w| &all[w]) {
            Some(d) => Some(SeenRoute {
                agent: text(d, "agent"),
                model: text(d, "model"),
                pack: Some(d.pack.clone()),
            }),
            None if ctx.phase.agent.is_some() || ctx.phase.model.is_some() => Some(SeenRoute {
                agent: ctx.phase.agent.clone(),
                model: ctx.phase.model.clone(),
                pack: None,
            }),
            None => None,
        };

        // 2. budget sees the route; 3. govern sees it after any downgrade.
        for hook in [Hook::Budget, Hook::Govern] {
            if hook == Hook::Govern {
                let downgrade = all
                    .iter()
                    .rev()
                    .find(|d| d.hook == Hook::Budget && d.kind() == Some("downgrade"));
                if let (Some(d), Some(route)) = (downgrade, seen.as_mut()) {
                    route.model = text(d, "model");
                    route.pack = Some(d.pack.clone());
                }
            }
            let callers: Vec<&&Entry> = active.iter().filter(|e| e.has(hook)).collect();
            if callers.is_empty() {
                continue;
            }
            let route_dyn = seen.as_ref().map_or(Dynamic::UNIT, SeenRoute::to_dynamic);
            let route_text = match &seen {
                Some(route) => serde_json::to_string(route).unwrap_or_default(),
                None => "null".to_string(),
            };
            for entry in callers {
                all.push(self.call(entry, hook, &parts, &ctx_digest, &route_dyn, &route_text));
            }
        }
        let mut decisions = combine(winner, all);
        decisions.context = Some(Box::new(ctx.clone()));
        decisions
    }

    /// Whether an active pack has a `govern` hook.
    pub fn governs(&self) -> bool {
        self.entries.iter().any(|e| e.active && e.has(Hook::Govern))
    }

    /// Ask the `govern` hooks again about a finished attempt: `ctx.phase.changes` holds what
    /// it changed and `ctx.route` the agent and model it ran on. Only `govern` is called (the
    /// route was taken and the money spent); the answers combine as before an attempt.
    pub fn govern_changes(
        &self,
        ctx: &RoutingContext,
        agent: Option<&str>,
        model: Option<&str>,
    ) -> Decisions {
        let (parts, ctx_digest) = ctx.to_rhai(&self.cache);
        let route = SeenRoute {
            agent: agent.map(str::to_string),
            model: model.map(str::to_string),
            pack: None,
        };
        let route_dyn = route.to_dynamic();
        let route_text = serde_json::to_string(&route).unwrap_or_default();
        let all = self
            .entries
            .iter()
            .filter(|e| e.active && e.has(Hook::Govern))
            .map(|entry| {
                self.call(
                    entry,
                    Hook::Govern,
                    &parts,
                    &ctx_digest,
                    &route_dyn,
                    &route_text,
                )
            })
            .collect();
        let mut decisions = combine(None, all);
        decisions.context = Some(Box::new(ctx.clone()));
        decisions
    }

    /// Call one hook of one pack.
    fn call(
        &self,
        entry: &Entry,
        hook: Hook,
        parts: &context::ContextParts,
        ctx_digest: &[u8],
        route: &Dynamic,
        route_json: &str,
    ) -> Decision {
        let ctx = parts.with(&entry.params_dyn, route);
        let mut hasher = sha2::Sha256::new();
        hasher.update(ctx_digest);
        hasher.update(b"\n");
        hasher.update(entry.params_digest);
        hasher.update(b"\n");
        hasher.update(route_json.as_bytes());
        let input_digest = digest_text(&hasher.finalize());
        let (result, reason) = match self.run_hook(entry, hook, ctx) {
            Ok(value) => match interpret(hook, value) {
                Ok(ok) => ok,
                Err(error) => error_result(error.to_string()),
            },
            Err(error) => error_result(error.to_string()),
        };
        Decision {
            pack: entry.name().to_string(),
            version: entry.pack.manifest.version.clone(),
            layer: entry.layer,
            hook,
            result,
            reason,
            input_digest,
        }
    }

    /// Run the hook function in the sandbox; the result as JSON, or why it failed.
    fn run_hook(&self, entry: &Entry, hook: Hook, ctx: Dynamic) -> Result<Json, HookError> {
        let options = rhai::CallFnOptions::new()
            .eval_ast(false)
            .rewind_scope(true);
        let mut scope = rhai::Scope::new();
        let result = sandbox::guarded(|| {
            self.engine.call_fn_with_options::<Dynamic>(
                options,
                &mut scope,
                &entry.pack.ast,
                hook.as_str(),
                (ctx,),
            )
        });
        let value = result.map_err(|e| HookError::Failed(sandbox::describe_error(&e)))?;
        dynamic_to_json(&value)
    }
}

/// The route govern and budget hooks see as `ctx.route` (its JSON is part of their input
/// digest).
#[derive(Serialize)]
struct SeenRoute {
    agent: Option<String>,
    model: Option<String>,
    pack: Option<String>,
}

impl SeenRoute {
    fn to_dynamic(&self) -> Dynamic {
        let value = |s: &Option<String>| {
            s.as_deref()
                .map_or(Dynamic::UNIT, |s| Dynamic::from(s.to_string()))
        };
        let mut map = Map::new();
        map.insert("agent".into(), value(&self.agent));
        map.insert("model".into(), value(&self.model));
        map.insert("pack".into(), value(&self.pack));
        Dynamic::from_map(map)
    }
}

/// `sha256:<hex>` of a digest.
pub(crate) fn digest_text(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(7 + 2 * digest.len());
    text.push_str("sha256:");
    for byte in digest {
        text.push(HEX[usize::from(byte >> 4)] as char);
        text.push(HEX[usize::from(byte & 0xf)] as char);
    }
    text
}

/// A hook's result as JSON: `()`, booleans, numbers, strings, arrays and maps of them.
fn dynamic_to_json(value: &Dynamic) -> Result<Json, HookError> {
    if value.is_unit() {
        return Ok(Json::Null);
    }
    if let Ok(s) = value.as_immutable_string_ref() {
        return Ok(Json::String(s.to_string()));
    }
    let object = |map: &Map| -> Result<Json, HookError> {
        let mut out = serde_json::Map::new();
        for (k, v) in map.iter() {
            out.insert(k.to_string(), dynamic_to_json(v)?);
        }
        Ok(Json::Object(out))
    };
    if let Ok(map) = value.as_map_ref() {
        return object(&map);
    }
    if let Some(frozen) = value.read_lock::<Frozen>() {
        return object(frozen.map());
    }
    if let Ok(items) = value.as_array_ref() {
        return items
            .iter()
            .map(dynamic_to_json)
            .collect::<Result<_, _>>()
            .map(Json::Array);
    }
    rhai::serde::from_dynamic::<Json>(value)
        .map_err(|e| HookError::NotRecordable(sandbox::describe_error(&e)))
}

/// Every problem of the pack in `dir` (its manifest, scripts and test cases), with file names
/// relative to `base`: what `policy test <dir>` reports before running anything.
pub fn check_dir(dir: &Path, base: &Path) -> Diagnostics {
    let (packs, mut diagnostics) =
        Packs::from_sources(vec![(Layer::Project, PackFiles::dir(dir, base))], &[]);
    for entry in &packs.entries {
        testcase::load_cases(&entry.pack.files, &entry.pack.manifest, &mut diagnostics);
    }
    diagnostics
}

/// The directories below `dir` that hold a `pack.yaml`, sorted.
fn pack_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(pack::MANIFEST).is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Why params cannot be given to a pack.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error("no active policy pack named `{name}`")]
    NoSuchPack { name: String },
    /// `hint` is empty or `; did you mean …`.
    #[error("pack `{pack}` has no parameter `{key}`{hint}")]
    Unknown {
        pack: String,
        key: String,
        hint: String,
    },
    #[error("parameter `{key}` of pack `{pack}` is a {kind}, not {value}")]
    WrongType {
        pack: String,
        key: String,
        kind: &'static str,
        /// The value given, as JSON.
        value: String,
    },
}

/// `current` with `values` applied, each checked against the manifest.
fn merge_params(
    manifest: &Manifest,
    current: &serde_json::Map<String, Json>,
    values: &serde_json::Map<String, Json>,
) -> Result<serde_json::Map<String, Json>, ParamsError> {
    let mut params = current.clone();
    for (key, value) in values {
        let Some(spec) = manifest.params.get(key) else {
            let known: Vec<&str> = manifest.params.keys().map(String::as_str).collect();
            let hint = did_you_mean(key, known.iter().copied())
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            return Err(ParamsError::Unknown {
                pack: manifest.name.clone(),
                key: key.clone(),
                hint,
            });
        };
        if !spec.kind.accepts(value) {
            return Err(ParamsError::WrongType {
                pack: manifest.name.clone(),
                key: key.clone(),
                kind: spec.kind.as_str(),
                value: value.to_string(),
            });
        }
        params.insert(key.clone(), value.clone());
    }
    Ok(params)
}

/// Why a hook's answer is not used; recorded as the decision's error.
#[derive(Debug, thiserror::Error)]
enum HookError {
    /// The script failed or hit a limit of the sandbox.
    #[error("{0}")]
    Failed(String),
    /// The script returned what cannot be recorded as JSON.
    #[error("the result cannot be recorded: {0}")]
    NotRecordable(String),
    /// The answer has a shape the hook may not return; the message says which it must.
    #[error("{0}")]
    Answer(String),
}

fn error_result(message: String) -> (Json, Option<String>) {
    (
        json!({"decision": "error", "error": message}),
        Some(message),
    )
}

/// Check the shape of a hook's result; keep it as recorded, with its reason.
fn interpret(hook: Hook, value: Json) -> Result<(Json, Option<String>), HookError> {
    if value.is_null() {
        return Ok((Json::Null, None));
    }
    let shape = match hook {
        Hook::Route => "`()` or a map `#{agent, model, reason}`",
        Hook::Govern => "`()` or a map `#{decision: \"allow\"|\"deny\"|\"require_approval\", reason}`",
        Hook::Budget => "`()` or a map `#{decision: \"allow\"|\"deny\"|\"downgrade\"|\"alert\", model, level, message}`",
    };
    let Some(map) = value.as_object() else {
        return Err(HookError::Answer(format!(
            "`{hook}` returned {value}, but must return {shape}"
        )));
    };
    let text = |key: &str| -> Result<Option<String>, HookError> {
        match map.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(HookError::Answer(format!(
                "`{hook}` returned `{key}: {other}`, which must be a string"
            ))),
        }
    };
    let allowed: &[&str] = match hook {
        Hook::Route => &["agent", "model", "reason"],
        Hook::Govern => &["decision", "reason", "mcp_tools"],
        Hook::Budget => &["decision", "model", "level", "message", "reason"],
    };
    if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(HookError::Answer(format!(
            "`{hook}` returned the unknown key `{key}`; it must return {shape}"
        )));
    }
    match hook {
        Hook::Route => {
            let agent = text("agent")?.filter(|s| !s.is_empty());
            let model = text("model")?.filter(|s| !s.is_empty());
            if agent.is_none() && model.is_none() {
                return Err(HookError::Answer(format!("`route` returned neither an agent nor a model; return `()` to abstain, or {shape}")));
            }
            let reason = text("reason")?;
            Ok((value, reason))
        }
        Hook::Govern | Hook::Budget => {
            let decision = text("decision")?.unwrap_or_default();
            let choices: &[&str] = if hook == Hook::Govern {
                &["allow", "deny", "require_approval"]
            } else {
                &["allow", "deny", "downgrade", "alert"]
            };
            if !choices.contains(&decision.as_str()) {
                return Err(HookError::Answer(format!(
                    "`{hook}` returned the decision `{decision}`; it must return {shape}"
                )));
            }
            if let Some(tools) = map.get("mcp_tools") {
                let names = tools.as_array().filter(|l| {
                    l.len() <= 256 && l.iter().all(|t| t.as_str().is_some_and(|s| s.len() <= 128))
                });
                if names.is_none() {
                    return Err(HookError::Answer(format!(
                        "`{hook}` returned `mcp_tools: {tools}`, which must be a list of tool names (`github.search_issues`, `filesystem.*`)"
                    )));
                }
            }
            if decision == "downgrade" && text("model")?.filter(|m| !m.is_empty()).is_none() {
                return Err(HookError::Answer(
                    "`budget` returned `downgrade` without a `model`".into(),
                ));
            }
            let reason = match (text("reason")?, text("message")?) {
                (Some(r), _) => Some(r),
                (None, m) => m,
            };
            let needs_level = decision == "alert" && !map.contains_key("level");
            let mut value = value;
            if needs_level {
                value["level"] = json!("warning");
            }
            Ok((value, reason))
        }
    }
}

/// Combine the hook calls of one phase (see the module docs); `route` is the index of the
/// winning route in `all`.
fn combine(route: Option<usize>, all: Vec<Decision>) -> Decisions {
    let route = route.map(|w| all[w].clone());
    let reason_of = |d: &Decision, default: &str| {
        d.reason
            .clone()
            .unwrap_or_else(|| format!("{default} by pack `{}`", d.pack))
    };
    let deny = all
        .iter()
        .find(|d| d.is_error() || d.kind() == Some("deny"))
        .map(|d| {
            let reason = if d.is_error() {
                format!(
                    "pack `{}` failed in `{}`: {}",
                    d.pack,
                    d.hook,
                    d.reason.as_deref().unwrap_or("unknown error")
                )
            } else {
                reason_of(d, "denied")
            };
            GovernOutcome::Deny {
                reason,
                pack: d.pack.clone(),
            }
        });
    let approval = || {
        all.iter()
            .find(|d| d.kind() == Some("require_approval"))
            .map(|d| GovernOutcome::RequireApproval {
                reason: reason_of(d, "approval required"),
                pack: d.pack.clone(),
            })
    };
    let govern = deny.or_else(approval).unwrap_or(GovernOutcome::Allow);
    let budget = all
        .iter()
        .filter(|d| d.hook == Hook::Budget && !d.abstained())
        .cloned()
        .collect();
    Decisions {
        route,
        govern,
        budget,
        all,
        context: None,
        ignored: None,
    }
}
