//! The recorded facts a phase can see (inputs, vars, outputs of finished phases, run facts,
//! its `for_each` item), and evaluating `if`/`for_each` expressions over them.

use rhai::{Dynamic, Scope};
use serde_json::{json, Map, Value};

use super::{ExpressionError, Scheduler, State};

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

/// `run.tier` and `run.dimensions` (each dimension's score by name): from the last recorded
/// output that has a `complexity` number (the analysis), else `"simple"` and no dimensions.
fn analysis_facts(s: &Scheduler) -> (Value, Value) {
    let mut found = (json!("simple"), json!({}));
    for inst in s
        .valued
        .iter()
        .map(|&i| &s.instances[i])
        .filter(|i| i.state == State::Succeeded)
    {
        for value in inst.values.values() {
            if value.get("complexity").and_then(Value::as_f64).is_some() {
                let tier = value.get("tier").cloned().unwrap_or(json!("simple"));
                let dimensions: Map<String, Value> = value
                    .get("dimensions")
                    .and_then(Value::as_object)
                    .map(|d| {
                        d.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.get("score")?.clone())))
                            .collect()
                    })
                    .unwrap_or_default();
                found = (tier, Value::Object(dimensions));
            }
        }
    }
    found
}

/// The plan an approval shows: the checked plan (its report and estimate, recorded by the
/// phase that wrote it) of the last succeeded phase that recorded one.
pub(super) fn plan_summary(s: &Scheduler) -> Option<Box<crate::record::event::PlanSummary>> {
    let inst = s.valued.iter().rev().map(|&i| &s.instances[i]).find(|i| {
        i.state == State::Succeeded && i.values.contains_key(crate::tasks::REPORT_VALUE)
    })?;
    let report: crate::tasks::PlanReport =
        serde_json::from_value(inst.values.get(crate::tasks::REPORT_VALUE)?.clone()).ok()?;
    let estimate = inst.values.get(crate::tasks::ESTIMATE_VALUE).and_then(|e| {
        Some((
            e.get("usd")?.as_f64()?,
            e.get("model")?.as_str()?.to_string(),
        ))
    });
    let unpriced = inst
        .values
        .get(crate::tasks::ESTIMATE_VALUE)
        .and_then(|e| e.get("unpriced"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut summary = crate::tasks::approval_summary(&inst.name, &report, estimate);
    summary.unpriced = unpriced;
    Some(Box::new(summary))
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

/// What every instance sees of the recorded values: `outputs` and `run.complexity`.
#[derive(Debug)]
pub(super) struct Recorded {
    outputs: Value,
    complexity: f64,
    tier: Value,
    dimensions: Value,
}

/// `outputs` and `run.complexity`, built once per change of the recorded values.
fn recorded(s: &Scheduler) -> &Recorded {
    s.recorded.get_or_init(|| {
        let (tier, dimensions) = analysis_facts(s);
        Recorded {
            outputs: outputs(s),
            complexity: complexity(s),
            tier,
            dimensions,
        }
    })
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
    let recorded = recorded(s);
    let mut context = json!({
        "inputs": inputs,
        "vars": vars,
        "outputs": recorded.outputs.clone(),
        "run": {
            "id": s.run_id,
            "mission": s.plan.mission.id,
            "complexity": recorded.complexity,
            "tier": recorded.tier.clone(),
            "dimensions": recorded.dimensions.clone(),
        },
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
        context["attempt"] = json!({
            "number": attempt,
            "previous_errors": inst.previous_errors,
        });
        if let Some(item) = &inst.item {
            context["item"] = item.clone();
        }
    }
    context
}

/// Evaluate a Rhai expression over the facts of instance `i`.
pub(super) fn eval(s: &Scheduler, i: usize, expression: &str) -> Result<Value, ExpressionError> {
    let context = context(s, Some(i), 0);
    let mut scope = Scope::new();
    for name in ["inputs", "vars", "outputs", "run", "phase", "item"] {
        if let Some(value) = context.get(name) {
            let dynamic: Dynamic =
                rhai::serde::to_dynamic(value).map_err(|e| ExpressionError::Facts {
                    expression: expression.to_string(),
                    detail: e.to_string(),
                })?;
            scope.push_constant(name, dynamic);
        }
    }
    let mut result = crate::expr::script::eval_expression(&s.engine, &mut scope, expression)
        .map_err(|source| ExpressionError::Failed {
            expression: expression.to_string(),
            source,
        })?;
    // `range(a, b)` is a handy way to fan out; it is a range, not an array, in Rhai.
    if let Some(range) = result.clone().try_cast::<std::ops::Range<rhai::INT>>() {
        if range.end.saturating_sub(range.start) > crate::expr::MAX_ARRAY_SIZE as rhai::INT {
            return Err(ExpressionError::TooManyItems {
                expression: expression.to_string(),
                limit: crate::expr::MAX_ARRAY_SIZE,
            });
        }
        result = Dynamic::from_array(range.map(Dynamic::from_int).collect());
    }
    rhai::serde::from_dynamic::<Value>(&result).map_err(|e| ExpressionError::NotData {
        expression: expression.to_string(),
        detail: e.to_string(),
    })
}
