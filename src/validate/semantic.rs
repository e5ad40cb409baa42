//! Semantic passes over the YAML tree: ids, phase kinds, the `needs` graph (unknown phases,
//! self-needs, cycles), rework loops, durations, budgets and input defaults. Each check reads
//! only the parts that have the right shape; shape errors were reported by the schema pass.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};

use super::Ctx;
use crate::diag::{did_you_mean, one_of, Code, Diagnostic, Span};
use crate::load::yaml::{Node, Value};
use crate::load::Loaded;
use crate::model::builtins::{builtin_step, BUILTIN_STEPS};
use crate::model::raw::{self, RawMission, RawPhase, RawRetry};
use crate::model::{
    parse_duration, Budget, Defaults, ForEach, Input, InputType, Mission, OnFailure, OnTimeout,
    Output, Phase, PhaseKind, Retry,
};

/// What later passes need to know about the graph.
pub(super) struct GraphInfo {
    /// Phase ids in document order.
    #[allow(dead_code)]
    pub phase_ids: Vec<String>,
}

const KIND_KEYS: &[(&str, &str)] = &[
    ("role", "agent"),
    ("agent", "agent"),
    ("run", "run"),
    ("shell", "shell"),
    ("uses", "uses"),
    ("approval", "approval"),
];

pub(super) fn check(ctx: &mut Ctx<'_>, root: &Node) -> GraphInfo {
    check_mission_id(ctx, root);
    check_inputs(ctx, root);
    check_vars(ctx, root);
    check_budget(ctx, root);
    if let Some(defaults) = root.get("defaults") {
        check_durations(ctx, defaults, &["defaults"]);
    }
    check_some_phases(ctx, root);
    let phases = root.get("phases").map(Node::entries).unwrap_or_default();
    let mut needs: Needs = Vec::new();
    let mut gotos: Vec<(String, String, Span)> = Vec::new();
    for entry in phases {
        let id = entry.key.as_str();
        check_phase_id(ctx, id, entry.key_span);
        let phase = &entry.value;
        if !matches!(phase.value, Value::Map(_)) {
            continue;
        }
        check_kind(ctx, id, entry.key_span, phase);
        check_durations(ctx, phase, &["phases", id]);
        if phase.get("max_parallel").is_some() && phase.get("for_each").is_none() {
            let span = phase.entry("max_parallel").map(|e| e.key_span);
            ctx.push(
                Diagnostic::new(Code::IgnoredSetting, format!("phase `{id}` sets `max_parallel` but has no `for_each`"))
                    .at(ctx.file, span, format!("phases.{id}.max_parallel"))
                    .label("has no effect")
                    .help("`max_parallel` limits the items of a `for_each` fan-out; remove it or add `for_each`"),
            );
        }
        let mut list = Vec::new();
        if let Some(n) = phase.get("needs") {
            match &n.value {
                Value::Str(s) => list.push((s.clone(), n.span, usize::MAX)),
                Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Value::Str(s) = &item.value {
                            list.push((s.clone(), item.span, i));
                        }
                    }
                }
                _ => {}
            }
        }
        needs.push((id.to_string(), list));
        if let Some(goto) = phase.get("on_failure").and_then(|o| o.get("goto")) {
            if let Value::Str(target) = &goto.value {
                gotos.push((id.to_string(), target.clone(), goto.span));
            }
        }
    }
    let ids: Vec<String> = phases.iter().map(|e| e.key.clone()).collect();
    check_graph(ctx, &ids, &needs, &gotos);
    GraphInfo { phase_ids: ids }
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && id.as_bytes()[0].is_ascii_lowercase()
}

fn is_snake(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && (name.as_bytes()[0].is_ascii_lowercase() || name.as_bytes()[0] == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Phase ids: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
pub fn is_phase_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn suggest_id(id: &str, sep: char) -> String {
    let mut out = String::new();
    for c in id.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && !out.is_empty() && !out.ends_with(sep) {
                out.push(sep);
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with(sep) {
            out.push(sep);
        }
    }
    out.trim_matches(sep).to_string()
}

fn check_mission_id(ctx: &mut Ctx<'_>, root: &Node) {
    let Some(node) = root.get("mission") else {
        return;
    };
    let Some(id) = node.as_str() else { return };
    if !is_kebab(id) {
        let suggestion = suggest_id(id, '-');
        ctx.push(
            Diagnostic::new(
                Code::InvalidId,
                format!("mission id `{id}` is not kebab-case"),
            )
            .at(ctx.file, Some(node.span), "mission")
            .label("lowercase words joined by `-` expected")
            .maybe_help(is_kebab(&suggestion).then(|| format!("did you mean `{suggestion}`?"))),
        );
    }
}

/// `phases: {}`: a mission that does nothing is a mistake, not a valid run.
fn check_some_phases(ctx: &mut Ctx<'_>, root: &Node) {
    let Some(phases) = root.get("phases") else {
        return;
    };
    if matches!(&phases.value, Value::Map(entries) if entries.is_empty()) {
        ctx.push(
            Diagnostic::new(Code::NoPhases, "the mission has no phases")
                .at(ctx.file, Some(phases.span), "phases")
                .label("an empty map")
                .help("add at least one phase, such as `build: { run: [make] }`"),
        );
    }
}

fn check_phase_id(ctx: &mut Ctx<'_>, id: &str, span: Span) {
    if !is_phase_id(id) {
        let suggestion = suggest_id(id, '-');
        ctx.push(
            Diagnostic::new(
                Code::InvalidId,
                format!("phase id `{id}` is not a valid id"),
            )
            .at(ctx.file, Some(span), format!("phases.{id}"))
            .label("lowercase letters, digits, `-` and `_` expected")
            .maybe_help(is_phase_id(&suggestion).then(|| format!("did you mean `{suggestion}`?"))),
        );
    }
}

fn check_inputs(ctx: &mut Ctx<'_>, root: &Node) {
    let Some(inputs) = root.get("inputs") else {
        return;
    };
    for entry in inputs.entries() {
        let name = entry.key.as_str();
        let path = format!("inputs.{name}");
        if !is_snake(name) {
            let suggestion = suggest_id(name, '_');
            ctx.push(
                Diagnostic::new(
                    Code::InvalidId,
                    format!("input name `{name}` is not snake_case"),
                )
                .at(ctx.file, Some(entry.key_span), path.clone())
                .label("templates read it as `inputs.<name>`, so it must be an identifier")
                .maybe_help(is_snake(&suggestion).then(|| format!("did you mean `{suggestion}`?"))),
            );
        }
        let input = &entry.value;
        let kind = match input.get("type").map(|t| &t.value) {
            None => Some(InputType::String),
            Some(Value::Str(t)) => {
                serde_json::from_value::<InputType>(serde_json::Value::String(t.clone())).ok()
            }
            _ => None,
        };
        if let (Some(kind), Some(default)) = (kind, input.entry("default")) {
            let fits = matches!(
                (&default.value.value, kind),
                (Value::Null, _)
                    | (Value::Str(_), InputType::String | InputType::File)
                    | (Value::Int(_) | Value::Float(_), InputType::Number)
                    | (Value::Bool(_), InputType::Bool)
                    | (Value::Seq(_), InputType::List)
            );
            if !fits {
                ctx.push(
                    Diagnostic::new(
                        Code::BadInputDefault,
                        format!(
                            "the default of input `{name}` is {}, but the input's type is `{}`",
                            default.value.type_name(),
                            kind.as_str()
                        ),
                    )
                    .at(
                        ctx.file,
                        Some(default.value.span),
                        format!("{path}.default"),
                    )
                    .label(format!("not a `{}`", kind.as_str()))
                    .help("change the default, or declare the input's `type` to match it"),
                );
            }
        }
        let required = matches!(
            input.get("required").map(|r| &r.value),
            Some(Value::Bool(true))
        );
        if required && input.get("default").is_some() {
            let span = input.entry("required").map(|e| e.key_span);
            ctx.push(
                Diagnostic::new(
                    Code::RequiredWithDefault,
                    format!("input `{name}` is required but also has a default"),
                )
                .at(ctx.file, span, format!("{path}.required"))
                .label("never enforced, since the default fills in")
                .help("remove `required: true`, or remove the default"),
            );
        }
    }
}

fn check_vars(ctx: &mut Ctx<'_>, root: &Node) {
    let Some(vars) = root.get("vars") else { return };
    for entry in vars.entries() {
        let name = entry.key.as_str();
        if !is_snake(name) {
            let suggestion = suggest_id(name, '_');
            ctx.push(
                Diagnostic::new(
                    Code::InvalidId,
                    format!("var name `{name}` is not snake_case"),
                )
                .at(ctx.file, Some(entry.key_span), format!("vars.{name}"))
                .label("templates read it as `vars.<name>`, so it must be an identifier")
                .maybe_help(is_snake(&suggestion).then(|| format!("did you mean `{suggestion}`?"))),
            );
        }
    }
}

fn number(node: &Node) -> Option<f64> {
    match node.value {
        Value::Int(i) => Some(i as f64),
        Value::Float(f) => Some(f),
        _ => None,
    }
}

fn check_budget(ctx: &mut Ctx<'_>, root: &Node) {
    let Some(budget) = root.get("budget") else {
        return;
    };
    let max = budget.get("max_usd").and_then(number);
    let soft = budget.get("soft_usd");
    if let (Some(max), Some(soft_node)) = (max, soft) {
        if let Some(soft) = number(soft_node) {
            if soft > max && max >= 0.0 {
                ctx.push(
                    Diagnostic::new(
                        Code::OutOfRange,
                        format!("`soft_usd` ({soft}) is above `max_usd` ({max}), so the alert could never fire"),
                    )
                    .at(ctx.file, Some(soft_node.span), "budget.soft_usd")
                    .label(format!("above the hard cap of {max}"))
                    .help("the soft threshold alerts before the hard cap; set it below `max_usd`"),
                );
            }
        }
    }
}

/// Parse every duration under `node` (a phase or `defaults`).
fn check_durations(ctx: &mut Ctx<'_>, node: &Node, at: &[&str]) {
    let mut candidates: Vec<(Vec<&str>, &Node)> = Vec::new();
    for key in ["timeout", "deadline"] {
        if let Some(n) = node.get(key) {
            candidates.push((vec![key], n));
        }
    }
    if let Some(backoff) = node.get("retry").and_then(|r| r.get("backoff")) {
        for key in ["initial", "max"] {
            if let Some(n) = backoff.get(key) {
                candidates.push((vec!["retry", "backoff", key], n));
            }
        }
    }
    if let Some(n) = node.get("approval").and_then(|a| a.get("timeout")) {
        candidates.push((vec!["approval", "timeout"], n));
    }
    for (keys, value) in candidates {
        let Some(text) = value.as_str() else { continue };
        if let Err(reason) = parse_duration(text) {
            let path: Vec<&str> = at.iter().chain(keys.iter()).copied().collect();
            let field = keys.last().copied().unwrap_or_default();
            ctx.push(
                Diagnostic::new(Code::InvalidDuration, format!("`{field}` is not a valid duration: {reason}"))
                    .at(ctx.file, Some(value.span), path.join("."))
                    .label("not a duration")
                    .help("write a number and a unit, like `90s`, `30m` or `1h 30m` (units: ms, s, m, h, d)"),
            );
        }
    }
}

fn check_kind(ctx: &mut Ctx<'_>, id: &str, id_span: Span, phase: &Node) {
    let present: Vec<(&str, &str, Span)> = KIND_KEYS
        .iter()
        .filter_map(|(key, kind)| phase.entry(key).map(|e| (*key, *kind, e.key_span)))
        .collect();
    let mut kinds: Vec<&str> = present.iter().map(|(_, k, _)| *k).collect();
    kinds.dedup();
    let kind = match kinds.as_slice() {
        [] => {
            ctx.push(
                Diagnostic::new(Code::PhaseWithoutKind, format!("phase `{id}` does not say what it does"))
                    .at(ctx.file, Some(id_span), format!("phases.{id}"))
                    .label("no `role`, `agent`, `run`, `shell`, `uses` or `approval`")
                    .help("give the phase exactly one kind, for example `run: [make, test]` or `uses: builtin/noop`"),
            );
            return;
        }
        [one] => *one,
        [first, ..] => {
            let keys: Vec<&str> = present.iter().map(|(k, _, _)| *k).collect();
            let second = present
                .iter()
                .find(|(_, k, _)| k != first)
                .map(|(_, _, s)| *s);
            ctx.push(
                Diagnostic::new(
                    Code::PhaseWithSeveralKinds,
                    format!(
                        "phase `{id}` has several kinds: {}",
                        one_of(&keys).replace(" or ", " and ")
                    ),
                )
                .at(ctx.file, second, format!("phases.{id}"))
                .label("a second kind")
                .help("keep one kind per phase; split the work into phases joined by `needs`"),
            );
            return;
        }
    };
    let mismatched: &[(&str, &str)] = &[("model", "agent"), ("prompt", "agent"), ("with", "uses")];
    for (key, owner) in mismatched {
        if *owner != kind {
            if let Some(entry) = phase.entry(key) {
                ctx.push(
                    Diagnostic::new(
                        Code::KindMismatch,
                        format!("`{key}` only applies to {owner} phases, but phase `{id}` is {} {kind} phase", article(kind)),
                    )
                    .at(ctx.file, Some(entry.key_span), format!("phases.{id}.{key}"))
                    .label(format!("not used by {} {kind} phase", article(kind)))
                    .help(format!("remove `{key}`, or make the phase {} {owner} phase", article(owner))),
                );
            }
        }
    }
    if let Some(uses) = phase.get("uses") {
        if let Some(text) = uses.as_str() {
            if builtin_step(text).is_none() {
                let names: Vec<String> = BUILTIN_STEPS
                    .iter()
                    .map(|(n, _)| format!("builtin/{n}"))
                    .collect();
                let help = did_you_mean(text, names.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("built-in steps: {}", names.join(", ")));
                ctx.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!("phase `{id}` uses unknown step `{text}`"),
                    )
                    .at(ctx.file, Some(uses.span), format!("phases.{id}.uses"))
                    .label("no such built-in step")
                    .help(help),
                );
            }
        }
    }
}

fn article(word: &str) -> &'static str {
    // By sound: "an agent", "an approval", but "a uses phase".
    if word.starts_with(['a', 'e', 'i', 'o']) {
        "an"
    } else {
        "a"
    }
}

type Needs = Vec<(String, Vec<(String, Span, usize)>)>;

fn need_path(id: &str, index: usize) -> String {
    if index == usize::MAX {
        format!("phases.{id}.needs")
    } else {
        format!("phases.{id}.needs[{index}]")
    }
}

fn check_graph(ctx: &mut Ctx<'_>, ids: &[String], needs: &Needs, gotos: &[(String, String, Span)]) {
    let known: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut graph: DiGraph<&str, Span> = DiGraph::new();
    let index: HashMap<&str, NodeIndex> = ids
        .iter()
        .map(|id| (id.as_str(), graph.add_node(id.as_str())))
        .collect();
    for (id, list) in needs {
        let mut seen: HashSet<&str> = HashSet::new();
        for (need, span, i) in list {
            if need == id {
                ctx.push(
                    Diagnostic::new(Code::NeedsItself, format!("phase `{id}` needs itself"))
                        .at(ctx.file, Some(*span), need_path(id, *i))
                        .label("a phase cannot wait for itself")
                        .help(format!("remove `{id}` from its own `needs`")),
                );
            } else if !known.contains(need.as_str()) {
                ctx.push(
                    Diagnostic::new(
                        Code::UnknownNeed,
                        format!("phase `{id}` needs unknown phase `{need}`"),
                    )
                    .at(ctx.file, Some(*span), need_path(id, *i))
                    .label(format!("no phase named `{need}`"))
                    .maybe_help(
                        did_you_mean(need, ids.iter().map(String::as_str).filter(|p| p != id))
                            .or_else(|| {
                                Some(format!(
                                    "phases: {}",
                                    one_of(&ids.iter().map(String::as_str).collect::<Vec<_>>())
                                ))
                            }),
                    ),
                );
            } else if !seen.insert(need.as_str()) {
                ctx.push(
                    Diagnostic::new(
                        Code::DuplicateNeed,
                        format!("phase `{id}` lists `{need}` twice in `needs`"),
                    )
                    .at(ctx.file, Some(*span), need_path(id, *i))
                    .label("already listed")
                    .help("list each phase once"),
                );
            } else if let (Some(&from), Some(&to)) =
                (index.get(need.as_str()), index.get(id.as_str()))
            {
                graph.add_edge(from, to, *span);
            }
        }
    }
    let mut has_cycle = false;
    let mut sccs = petgraph::algo::tarjan_scc(&graph);
    sccs.sort_by_key(|scc| scc.iter().map(|n| n.index()).min());
    for scc in sccs.into_iter().filter(|scc| scc.len() > 1) {
        has_cycle = true;
        let members: HashSet<NodeIndex> = scc.iter().copied().collect();
        let start = scc
            .iter()
            .copied()
            .min_by_key(|n| n.index())
            .unwrap_or(scc[0]);
        // Walk "needs" edges inside the component until a phase repeats.
        let mut walk = vec![start];
        let mut spans = Vec::new();
        loop {
            let current = *walk.last().unwrap_or(&start);
            let next = graph
                .edges_directed(current, petgraph::Direction::Incoming)
                .filter(|e| members.contains(&petgraph::visit::EdgeRef::source(e)))
                .min_by_key(|e| petgraph::visit::EdgeRef::source(e).index());
            let Some(edge) = next else { break };
            let source = petgraph::visit::EdgeRef::source(&edge);
            spans.push(*petgraph::visit::EdgeRef::weight(&edge));
            if let Some(pos) = walk.iter().position(|n| *n == source) {
                walk.drain(..pos);
                spans.drain(..pos);
                walk.push(source);
                break;
            }
            walk.push(source);
        }
        let names: Vec<String> = walk.iter().map(|n| format!("`{}`", graph[*n])).collect();
        let first = graph[walk[0]];
        ctx.push(
            Diagnostic::new(Code::Cycle, format!("phases form a cycle: {}", names.join(" needs ")))
                .at(ctx.file, spans.first().copied(), format!("phases.{first}.needs"))
                .label("this need closes the cycle")
                .help("remove one of these needs; for a deliberate rework loop use `on_failure: { goto: <phase> }`"),
        );
    }
    for (id, target, span) in gotos {
        let path = format!("phases.{id}.on_failure.goto");
        if !known.contains(target.as_str()) {
            ctx.push(
                Diagnostic::new(
                    Code::UnknownGoto,
                    format!("phase `{id}` loops back to unknown phase `{target}`"),
                )
                .at(ctx.file, Some(*span), path)
                .label(format!("no phase named `{target}`"))
                .maybe_help(did_you_mean(target, ids.iter().map(String::as_str))),
            );
            continue;
        }
        if has_cycle {
            continue;
        }
        let (Some(&from), Some(&to)) = (index.get(id.as_str()), index.get(target.as_str())) else {
            continue;
        };
        let upstream = from != to && petgraph::algo::has_path_connecting(&graph, to, from, None);
        if !upstream {
            let ancestors: Vec<&str> = ids
                .iter()
                .map(String::as_str)
                .filter(|a| {
                    index.get(a).is_some_and(|&n| {
                        n != from && petgraph::algo::has_path_connecting(&graph, n, from, None)
                    })
                })
                .collect();
            let help = if target == id {
                "to run the same phase again use `retry: { max_attempts: … }`".to_string()
            } else if ancestors.is_empty() {
                format!("phase `{id}` has no upstream phases; add `needs: [{target}]` or remove `on_failure`")
            } else {
                format!(
                    "loop back to a phase upstream of `{id}`: {}",
                    one_of(&ancestors)
                )
            };
            ctx.push(
                Diagnostic::new(
                    Code::GotoNotUpstream,
                    format!("phase `{id}` loops back to `{target}`, which is not upstream of it"),
                )
                .at(ctx.file, Some(*span), path)
                .label(format!("`{id}` does not (transitively) need `{target}`"))
                .help(help),
            );
        }
    }
}

/// Why a raw mission that passed every check still could not be built: each is a bug in the
/// checks, which should have reported it.
#[derive(Debug, thiserror::Error)]
pub(super) enum BuildError {
    #[error("a duration passed the checks but does not parse: {0}")]
    Duration(#[from] crate::model::DurationError),
    #[error("phase `{0}` has no kind")]
    NoKind(String),
}

/// Turn a raw mission that passed every check into the validated model.
pub(super) fn build(raw: RawMission, loaded: &Loaded) -> Result<Mission, BuildError> {
    let duration = |d: &Option<raw::Duration>| -> Result<Option<std::time::Duration>, BuildError> {
        Ok(d.as_ref().map(|d| parse_duration(&d.0)).transpose()?)
    };
    let retry = |r: &Option<RawRetry>| -> Result<Retry, BuildError> {
        let Some(r) = r else {
            return Ok(Retry::default());
        };
        let backoff = r.backoff.clone().unwrap_or_default();
        Ok(Retry {
            max_attempts: r.max_attempts,
            initial: duration(&backoff.initial)?,
            factor: backoff.factor,
            max: duration(&backoff.max)?,
            non_retryable: (!r.non_retryable.is_empty()).then(|| r.non_retryable.clone()),
        })
    };
    let defaults_raw = raw.defaults.clone().unwrap_or_default();
    let defaults = Defaults {
        agent: defaults_raw.agent.clone(),
        model: defaults_raw.model.clone(),
        timeout: duration(&defaults_raw.timeout)?,
        deadline: duration(&defaults_raw.deadline)?,
        retry: retry(&defaults_raw.retry)?,
        workspace: defaults_raw.workspace,
        continue_on_error: defaults_raw.continue_on_error,
    };
    let mut phases = IndexMap::new();
    for (id, p) in &raw.phases {
        phases.insert(id.clone(), build_phase(id, p, &duration, &retry)?);
    }
    let inputs = raw
        .inputs
        .iter()
        .map(|(name, i)| {
            let input = Input {
                kind: i.kind.unwrap_or(InputType::String),
                required: i.required.unwrap_or(false),
                default: i.default.clone().filter(|d| !d.is_null()),
                description: i.description.clone(),
            };
            (name.clone(), input)
        })
        .collect();
    Ok(Mission {
        id: raw.mission.clone(),
        description: raw.description.clone(),
        inputs,
        vars: raw.vars.clone(),
        budget: raw
            .budget
            .as_ref()
            .map(|b| Budget {
                max_usd: b.max_usd,
                soft_usd: b.soft_usd,
            })
            .unwrap_or_default(),
        policies: raw
            .policies
            .iter()
            .flat_map(|p| match p {
                raw::PolicyEntry::Name(n) => vec![n.clone()],
                raw::PolicyEntry::WithParams(m) => m.keys().cloned().collect(),
            })
            .collect(),
        policy_params: raw
            .policies
            .iter()
            .flat_map(|p| match p {
                raw::PolicyEntry::Name(_) => Vec::new(),
                raw::PolicyEntry::WithParams(m) => {
                    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                }
            })
            .collect(),
        defaults,
        phases,
        mcp_servers: raw
            .mcp_servers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        mcp_tools: raw.mcp_tools.clone().unwrap_or_default(),
        source_text: loaded.source.text.to_string(),
        source_name: loaded.source.name.clone(),
        base: loaded.located.base.clone(),
    })
}

type DurationFn<'a> =
    dyn Fn(&Option<raw::Duration>) -> Result<Option<std::time::Duration>, BuildError> + 'a;
type RetryFn<'a> = dyn Fn(&Option<RawRetry>) -> Result<Retry, BuildError> + 'a;

fn build_phase(
    id: &str,
    p: &RawPhase,
    duration: &DurationFn<'_>,
    retry: &RetryFn<'_>,
) -> Result<Phase, BuildError> {
    let kind = if p.role.is_some() || p.agent.is_some() {
        PhaseKind::Agent {
            role: p.role.clone(),
            agent: p.agent.clone(),
            model: p.model.clone(),
            prompt: p.prompt.clone(),
        }
    } else if let Some(argv) = &p.run {
        PhaseKind::Run { argv: argv.clone() }
    } else if let Some(script) = &p.shell {
        PhaseKind::Shell {
            script: script.clone(),
        }
    } else if let Some(step) = &p.uses {
        PhaseKind::Uses {
            step: step.clone(),
            with: p.with.clone().unwrap_or_default(),
        }
    } else if let Some(a) = &p.approval {
        PhaseKind::Approval {
            reason: a.reason.clone(),
            timeout: duration(&a.timeout)?,
            on_timeout: a.on_timeout.unwrap_or(OnTimeout::Reject),
        }
    } else {
        return Err(BuildError::NoKind(id.to_string()));
    };
    Ok(Phase {
        id: id.to_string(),
        description: p.description.clone(),
        kind,
        needs: p
            .needs
            .as_ref()
            .map(raw::OneOrMany::to_vec)
            .unwrap_or_default(),
        condition: p.if_.clone(),
        for_each: p.for_each.as_ref().map(|f| match f {
            raw::ForEach::Expression(e) => ForEach::Expression(e.clone()),
            raw::ForEach::Items(items) => ForEach::Items(items.clone()),
        }),
        max_parallel: p.max_parallel,
        retry: retry(&p.retry)?,
        timeout: duration(&p.timeout)?,
        deadline: duration(&p.deadline)?,
        continue_on_error: p.continue_on_error,
        always: p.always.unwrap_or(false),
        outputs: p
            .outputs
            .iter()
            .map(|(name, o)| {
                (
                    name.clone(),
                    Output {
                        path: o.path.clone(),
                        schema: o.schema.clone(),
                        check: o.check.as_ref().map(|c| crate::model::OutputCheck {
                            kind: c.kind,
                            spec: c.spec.clone(),
                            plan: c.plan.clone(),
                            started_spec: None,
                        }),
                    },
                )
            })
            .collect(),
        workspace: p.workspace,
        runs_on: {
            let mut labels = p.runs_on.clone();
            labels.sort();
            labels.dedup();
            labels
        },
        on_failure: p.on_failure.as_ref().map(|o| OnFailure {
            goto: o.goto.clone(),
            max_loops: o.max_loops.unwrap_or(1),
        }),
    })
}
