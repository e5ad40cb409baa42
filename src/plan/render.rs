//! Drawing the plan: Graphviz DOT and Mermaid. `for_each` phases are fan-out nodes, approval
//! gates have their own shape, `on_failure` loops are dashed back edges.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::{Plan, PlannedPhase};
use crate::model::{ForEach, PhaseKind};

fn summary(phase: &PlannedPhase) -> String {
    match &phase.kind {
        PhaseKind::Agent {
            role, agent, model, ..
        } => {
            let mut s = match (role, agent) {
                (Some(role), Some(agent)) => format!("{role} ({agent})"),
                (Some(role), None) => format!("role: {role}"),
                (None, Some(agent)) => format!("agent: {agent}"),
                (None, None) => "agent".into(),
            };
            if let Some(model) = model {
                let _ = write!(s, " · {model}");
            }
            s
        }
        PhaseKind::Run { argv } => format!("run: {}", argv.join(" ")),
        PhaseKind::Shell { .. } => "shell".into(),
        PhaseKind::Uses { step, .. } => step.clone(),
        PhaseKind::Approval { reason, .. } => format!("approval: {reason}"),
    }
}

fn title(phase: &PlannedPhase) -> String {
    if phase.for_each.is_some() {
        format!("{}[*]", phase.id)
    } else {
        phase.id.clone()
    }
}

fn extra_lines(phase: &PlannedPhase) -> Vec<String> {
    let mut lines = Vec::new();
    match &phase.for_each {
        Some(ForEach::Expression(e)) => lines.push(format!("for each: {e}")),
        Some(ForEach::Items(items)) => lines.push(format!("for each: {} items", items.len())),
        None => {}
    }
    if let Some(condition) = &phase.condition {
        lines.push(format!("if: {condition}"));
    }
    if phase.always {
        lines.push("always".into());
    }
    lines
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz DOT.
pub fn to_dot(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", dot_escape(&plan.mission.id));
    out.push_str("  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for phase in plan.phases() {
        let mut label = vec![title(phase), truncate(&summary(phase), 48)];
        label.extend(extra_lines(phase).into_iter().map(|l| truncate(&l, 48)));
        let label = label
            .iter()
            .map(|l| dot_escape(l))
            .collect::<Vec<_>>()
            .join("\\n");
        let shape = if phase.is_approval() {
            "shape=octagon, style=filled, fillcolor=\"#fff3c4\""
        } else if phase.for_each.is_some() {
            "shape=box3d"
        } else if phase.always {
            "shape=box, style=\"rounded,bold\""
        } else {
            "shape=box, style=rounded"
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{label}\", {shape}];",
            dot_escape(&phase.id)
        );
    }
    for phase in plan.phases() {
        for need in &phase.needs {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                dot_escape(need),
                dot_escape(&phase.id)
            );
        }
    }
    for phase in plan.phases() {
        if let Some(loop_) = &phase.on_failure {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [style=dashed, constraint=false, label=\"on failure (max {})\"];",
                dot_escape(&phase.id),
                dot_escape(&loop_.goto),
                loop_.max_loops
            );
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid_escape(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// Mermaid flowchart.
pub fn to_mermaid(plan: &Plan) -> String {
    let mut ids = std::collections::HashMap::new();
    let mut used = HashSet::new();
    for (i, phase) in plan.phases().enumerate() {
        let mut id: String = phase
            .id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if !used.insert(id.clone()) {
            id = format!("{id}_{i}");
            used.insert(id.clone());
        }
        ids.insert(phase.id.clone(), id);
    }
    let node_id = |id: &str| ids.get(id).cloned().unwrap_or_else(|| id.to_string());
    let mut out = String::from("flowchart TD\n");
    for phase in plan.phases() {
        let mut label = vec![title(phase), truncate(&summary(phase), 48)];
        label.extend(extra_lines(phase).into_iter().map(|l| truncate(&l, 48)));
        let label = label
            .iter()
            .map(|l| mermaid_escape(l))
            .collect::<Vec<_>>()
            .join("<br/>");
        let id = node_id(&phase.id);
        let _ = if phase.is_approval() {
            writeln!(out, "  {id}{{{{\"{label}\"}}}}")
        } else if phase.for_each.is_some() {
            writeln!(out, "  {id}[[\"{label}\"]]")
        } else {
            writeln!(out, "  {id}(\"{label}\")")
        };
    }
    for phase in plan.phases() {
        for need in &phase.needs {
            let _ = writeln!(out, "  {} --> {}", node_id(need), node_id(&phase.id));
        }
    }
    for phase in plan.phases() {
        if let Some(loop_) = &phase.on_failure {
            let _ = writeln!(
                out,
                "  {} -. \"on failure (max {})\" .-> {}",
                node_id(&phase.id),
                loop_.max_loops,
                node_id(&loop_.goto)
            );
        }
    }
    let gates: Vec<String> = plan
        .phases()
        .filter(|p| p.is_approval())
        .map(|p| node_id(&p.id))
        .collect();
    if !gates.is_empty() {
        out.push_str("  classDef gate fill:#fff3c4,stroke:#b58900\n");
        let _ = writeln!(out, "  class {} gate", gates.join(","));
    }
    out
}
