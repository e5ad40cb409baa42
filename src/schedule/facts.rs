//! The recorded facts a phase can see (inputs, vars, outputs of finished phases, run facts,
//! its `for_each` item), and evaluating `if`/`for_each` expressions over them.

use std::collections::{HashMap, HashSet};

use rhai::{Dynamic, Scope};
use serde_json::{json, Map, Value};

use super::{Scheduler, State};
use crate::record::event::Child;

/// `run.complexity`: the last `complexity` number found in a recorded output (the analysis
/// step writes it), else 0.
fn complexity(s: &Scheduler) -> f64 {
    let mut found = 0.0;
    for inst in s
        .valued
        .iter()
        .map(|&i| &s.instances[i])
        .filter(|i| i.state == State::Succeeded)
    {
        for value in inst.values.values() {
            if let Some(c) = value.get("complexity").and_then(Value::as_f64) {
                found = c;
            }
        }
    }
    found
}

fn outputs(s: &Scheduler) -> Value {
    let mut outputs = Map::new();
    for inst in s.valued.iter().map(|&i| &s.instances[i]) {
        if matches!(
            inst.state,
            State::Succeeded | State::Failed { continued: true }
        ) && !inst.values.is_empty()
        {
            let values: Map<String, Value> = inst
                .values
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            outputs.insert(inst.name.clone(), Value::Object(values));
        }
    }
    Value::Object(outputs)
}

/// The template context of an instance (or the run, for `None`).
pub(super) fn context(s: &Scheduler, i: Option<usize>, attempt: u32) -> Value {
    let inputs: Map<String, Value> = s
        .inputs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let vars: Map<String, Value> = s
        .plan
        .mission
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut context = json!({
        "inputs": inputs,
        "vars": vars,
        "outputs": outputs(s),
        "run": { "id": s.run_id, "mission": s.plan.mission.id, "complexity": complexity(s) },
    });
    if let Some(i) = i {
        let inst = &s.instances[i];
        let phase = &s.phases[inst.phase];
        context["phase"] = json!({
            "id": inst.name,
            "name": phase.id,
            "key": inst.key,
            "attempt": attempt,
        });
        if let Some(item) = &inst.item {
            context["item"] = item.clone();
        }
    }
    context
}

/// Evaluate a Rhai expression over the facts of instance `i`.
pub(super) fn eval(s: &Scheduler, i: usize, expression: &str) -> Result<Value, String> {
    let context = context(s, Some(i), 0);
    let mut scope = Scope::new();
    for name in ["inputs", "vars", "outputs", "run", "phase", "item"] {
        if let Some(value) = context.get(name) {
            let dynamic: Dynamic = rhai::serde::to_dynamic(value).map_err(|e| e.to_string())?;
            scope.push_constant(name, dynamic);
        }
    }
    let mut result = crate::expr::script::eval_expression(&s.engine, &mut scope, expression)
        .map_err(|e| format!("`{expression}` failed: {e}"))?;
    // `range(a, b)` is a handy way to fan out; it is a range, not an array, in Rhai.
    if let Some(range) = result.clone().try_cast::<std::ops::Range<rhai::INT>>() {
        if range.end.saturating_sub(range.start) > crate::expr::MAX_ARRAY_SIZE as rhai::INT {
            return Err(format!(
                "`{expression}` gives more than {} items",
                crate::expr::MAX_ARRAY_SIZE
            ));
        }
        result = Dynamic::from_array(range.map(Dynamic::from_int).collect());
    }
    rhai::serde::from_dynamic::<Value>(&result)
        .map_err(|e| format!("`{expression}` gave a value that is not data: {e}"))
}

/// Turn `for_each` items into children: keys from `id` (else the index), edges from
/// `depends_on`. Refuses duplicate keys, unknown dependencies and cycles.
pub(super) fn children(items: Vec<Value>) -> Result<Vec<Child>, String> {
    let mut children = Vec::with_capacity(items.len());
    let mut keys = HashSet::new();
    for (index, item) in items.into_iter().enumerate() {
        let key = match item.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => index.to_string(),
        };
        if key.is_empty() || key.contains(['[', ']']) {
            return Err(format!(
                "item {index} has the id `{key}`; ids must be non-empty and without brackets"
            ));
        }
        if !keys.insert(key.clone()) {
            return Err(format!("two items have the id `{key}`"));
        }
        let depends_on: Vec<String> = match item.get("depends_on") {
            Some(Value::Array(deps)) => deps
                .iter()
                .map(|d| {
                    d.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| d.to_string())
                })
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        children.push(Child {
            key,
            item,
            depends_on,
        });
    }
    for child in &children {
        for dep in &child.depends_on {
            if !keys.contains(dep) {
                return Err(format!(
                    "item `{}` depends on `{dep}`, which is not an item",
                    child.key
                ));
            }
        }
    }
    // Kahn's algorithm: every item must be reachable without a cycle.
    let mut remaining: HashMap<&str, usize> = children
        .iter()
        .map(|c| (c.key.as_str(), c.depends_on.len()))
        .collect();
    let mut done = 0;
    let mut ready: Vec<&str> = remaining
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    while let Some(key) = ready.pop() {
        done += 1;
        for child in &children {
            if child.depends_on.iter().any(|d| d == key) {
                if let Some(n) = remaining.get_mut(child.key.as_str()) {
                    *n -= 1;
                    if *n == 0 {
                        ready.push(child.key.as_str());
                    }
                }
            }
        }
    }
    if done < children.len() {
        return Err("the items' `depends_on` form a cycle".into());
    }
    Ok(children)
}
