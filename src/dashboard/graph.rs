//! The phase graph of a run laid out in layers for the page to draw: the same phases and
//! `needs` edges as `spectacular graph`, read from the pinned mission. Each phase's layer is
//! the length of the longest `needs` path to it, so every edge points to a later layer.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::query::MissionPhase;

/// The nodes (with their layer and row in it) and edges of the pinned mission's graph.
pub fn layout(phases: &[MissionPhase]) -> Value {
    let layers = layers(phases);
    let mut rows: HashMap<usize, usize> = HashMap::new();
    let nodes: Vec<Value> = phases
        .iter()
        .zip(&layers)
        .map(|(p, &layer)| {
            let row = rows.entry(layer).or_default();
            let node = json!({
                "id": p.id, "layer": layer, "row": *row, "gate": p.gate,
                "always": p.always, "uses": p.uses,
            });
            *row += 1;
            node
        })
        .collect();
    let known: HashMap<&str, ()> = phases.iter().map(|p| (p.id.as_str(), ())).collect();
    let edges: Vec<Value> = phases
        .iter()
        .flat_map(|p| {
            p.needs
                .iter()
                .filter(|n| known.contains_key(n.as_str()))
                .map(move |n| json!({ "from": n, "to": p.id }))
        })
        .collect();
    json!({
        "nodes": nodes,
        "edges": edges,
        "layers": layers.iter().max().map_or(0, |m| m + 1),
    })
}

/// Each phase's layer: 0 without `needs`, else one more than its deepest need. A cycle (a
/// validated mission has none) or an unknown need counts as no need, so this always ends.
fn layers(phases: &[MissionPhase]) -> Vec<usize> {
    let index: HashMap<&str, usize> = phases
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let mut layer: Vec<Option<usize>> = vec![None; phases.len()];
    for start in 0..phases.len() {
        // Iterative depth-first walk; `on_path` breaks cycles.
        let mut stack = vec![(start, 0usize)];
        let mut on_path = vec![false; phases.len()];
        on_path[start] = true;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if layer[node].is_some() {
                on_path[node] = false;
                stack.pop();
                continue;
            }
            let needs = &phases[node].needs;
            if let Some(need) = needs.get(*next) {
                *next += 1;
                if let Some(&n) = index.get(need.as_str()) {
                    if layer[n].is_none() && !on_path[n] {
                        on_path[n] = true;
                        stack.push((n, 0));
                    }
                }
                continue;
            }
            let depth = needs
                .iter()
                .filter_map(|n| index.get(n.as_str()).and_then(|&i| layer[i]))
                .map(|l| l + 1)
                .max()
                .unwrap_or(0);
            layer[node] = Some(depth);
            on_path[node] = false;
            stack.pop();
        }
    }
    layer.into_iter().map(Option::unwrap_or_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(id: &str, needs: &[&str]) -> MissionPhase {
        MissionPhase {
            id: id.into(),
            needs: needs.iter().map(|n| n.to_string()).collect(),
            ..MissionPhase::default()
        }
    }

    #[test]
    fn every_edge_points_to_a_later_layer() {
        let phases = [
            phase("notify", &["deploy", "build"]),
            phase("build", &[]),
            phase("fan", &["build"]),
            phase("gate", &["fan"]),
            phase("deploy", &["gate"]),
        ];
        assert_eq!(layers(&phases), [4, 0, 1, 2, 3]);
        let graph = layout(&phases);
        assert_eq!(graph["layers"], 5);
        assert_eq!(graph["edges"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn a_cycle_or_an_unknown_need_still_ends() {
        let phases = [phase("a", &["b"]), phase("b", &["a"]), phase("c", &["zz"])];
        let got = layers(&phases);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], 0);
    }
}
