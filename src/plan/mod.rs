//! Plan: a validated [`Mission`] becomes an immutable phase graph (petgraph) with every
//! per-phase setting resolved (phase → `defaults` → built-in defaults) and topological layers.
//! Planning never fails: everything that could go wrong was checked by validate.

mod render;

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use serde::Serialize;

pub use render::{to_dot, to_mermaid};

use crate::model::{FailureKind, ForEach, Mission, OnFailure, Output, PhaseKind, Workspace};

/// Built-in defaults, used when neither the phase nor `defaults` says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 1;
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
pub const DEFAULT_BACKOFF_FACTOR: f64 = 2.0;
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Resolved retry policy of one phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial: Duration,
    pub factor: f64,
    pub max: Duration,
    pub non_retryable: Vec<FailureKind>,
}

impl RetryPolicy {
    /// The wait before attempt `next` (2 for the first retry).
    pub fn backoff(&self, next: u32) -> Duration {
        let exponent = next.saturating_sub(2).min(64) as i32;
        let secs = self.initial.as_secs_f64() * self.factor.powi(exponent);
        let capped = secs.min(self.max.as_secs_f64()).max(0.0);
        Duration::try_from_secs_f64(capped).unwrap_or(self.max)
    }
}

/// One phase with all settings resolved.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedPhase {
    pub id: String,
    pub description: Option<String>,
    pub kind: PhaseKind,
    pub needs: Vec<String>,
    pub condition: Option<String>,
    pub for_each: Option<ForEach>,
    /// How many `for_each` items run at once (`None`: only the global limit applies).
    pub max_parallel: Option<u32>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    pub deadline: Option<Duration>,
    pub continue_on_error: bool,
    pub always: bool,
    pub outputs: IndexMap<String, Output>,
    pub workspace: Workspace,
    /// Labels a NATS worker must have to run the phase.
    pub runs_on: Vec<String>,
    pub on_failure: Option<OnFailure>,
    /// 0 for phases that need nothing; otherwise 1 + the deepest need's layer.
    pub layer: usize,
}

impl PlannedPhase {
    pub fn is_approval(&self) -> bool {
        matches!(self.kind, PhaseKind::Approval { .. })
    }
}

/// The immutable phase graph. Edges point from a phase to the phases that need it.
#[derive(Clone, Debug)]
pub struct Plan {
    pub mission: Arc<Mission>,
    graph: DiGraph<PlannedPhase, ()>,
    index: IndexMap<String, NodeIndex>,
    layers: Vec<Vec<NodeIndex>>,
}

/// Build the plan of a validated mission.
pub fn plan(mission: Mission) -> Plan {
    let mut graph = DiGraph::new();
    let mut index = IndexMap::new();
    for phase in mission.phases.values() {
        let defaults = &mission.defaults;
        let retry = RetryPolicy {
            max_attempts: phase
                .retry
                .max_attempts
                .or(defaults.retry.max_attempts)
                .unwrap_or(DEFAULT_MAX_ATTEMPTS),
            initial: phase
                .retry
                .initial
                .or(defaults.retry.initial)
                .unwrap_or(DEFAULT_BACKOFF_INITIAL),
            factor: phase
                .retry
                .factor
                .or(defaults.retry.factor)
                .unwrap_or(DEFAULT_BACKOFF_FACTOR),
            max: phase
                .retry
                .max
                .or(defaults.retry.max)
                .unwrap_or(DEFAULT_BACKOFF_MAX),
            non_retryable: phase
                .retry
                .non_retryable
                .clone()
                .or_else(|| defaults.retry.non_retryable.clone())
                .unwrap_or_default(),
        };
        let kind = match &phase.kind {
            PhaseKind::Agent {
                role,
                agent,
                model,
                prompt,
            } => PhaseKind::Agent {
                role: role.clone(),
                agent: agent.clone().or_else(|| {
                    if role.is_none() {
                        defaults.agent.clone()
                    } else {
                        None
                    }
                }),
                model: model.clone().or_else(|| defaults.model.clone()),
                prompt: prompt.clone(),
            },
            other => other.clone(),
        };
        let planned = PlannedPhase {
            id: phase.id.clone(),
            description: phase.description.clone(),
            kind,
            needs: phase.needs.clone(),
            condition: phase.condition.clone(),
            for_each: phase.for_each.clone(),
            max_parallel: phase.max_parallel,
            retry,
            timeout: phase.timeout.or(defaults.timeout),
            deadline: phase.deadline.or(defaults.deadline),
            continue_on_error: phase
                .continue_on_error
                .or(defaults.continue_on_error)
                .unwrap_or(false),
            always: phase.always,
            outputs: phase.outputs.clone(),
            workspace: phase
                .workspace
                .or(defaults.workspace)
                .unwrap_or(Workspace::Attempt),
            runs_on: phase.runs_on.clone(),
            on_failure: phase.on_failure.clone(),
            layer: 0,
        };
        let node = graph.add_node(planned);
        index.insert(phase.id.clone(), node);
    }
    for phase in mission.phases.values() {
        let Some(&to) = index.get(&phase.id) else {
            continue;
        };
        for need in &phase.needs {
            if let Some(&from) = index.get(need) {
                if graph.find_edge(from, to).is_none() {
                    graph.add_edge(from, to, ());
                }
            }
        }
    }
    // Validation rejects cycles; should one slip through, its phases keep layer 0 rather
    // than failing here.
    let order =
        petgraph::algo::toposort(&graph, None).unwrap_or_else(|_| graph.node_indices().collect());
    for node in &order {
        let layer = graph
            .neighbors_directed(*node, Direction::Incoming)
            .map(|n| graph[n].layer + 1)
            .max()
            .unwrap_or(0);
        graph[*node].layer = layer;
    }
    let depth = graph.node_weights().map(|p| p.layer + 1).max().unwrap_or(0);
    let mut layers = vec![Vec::new(); depth];
    for (_, &node) in &index {
        layers[graph[node].layer].push(node);
    }
    Plan {
        mission: Arc::new(mission),
        graph,
        index,
        layers,
    }
}

impl Plan {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Phases in mission order.
    pub fn phases(&self) -> impl Iterator<Item = &PlannedPhase> {
        self.index.values().map(|&n| &self.graph[n])
    }

    pub fn phase(&self, id: &str) -> Option<&PlannedPhase> {
        self.index.get(id).map(|&n| &self.graph[n])
    }

    /// Phase ids by topological layer: every phase's needs are in earlier layers.
    pub fn layers(&self) -> Vec<Vec<&str>> {
        self.layers
            .iter()
            .map(|layer| layer.iter().map(|&n| self.graph[n].id.as_str()).collect())
            .collect()
    }

    /// The phases that need `id` directly.
    pub fn dependents(&self, id: &str) -> Vec<&str> {
        let Some(&node) = self.index.get(id) else {
            return Vec::new();
        };
        let mut out: Vec<&str> = self
            .graph
            .neighbors_directed(node, Direction::Outgoing)
            .map(|n| self.graph[n].id.as_str())
            .collect();
        out.sort_by_key(|id| self.index.get_index_of(*id));
        out
    }

    /// Every phase `id` needs, transitively.
    pub fn upstream(&self, id: &str) -> Vec<&str> {
        self.reachable(id, Direction::Incoming)
    }

    /// Every phase that needs `id`, transitively.
    pub fn downstream(&self, id: &str) -> Vec<&str> {
        self.reachable(id, Direction::Outgoing)
    }

    fn reachable(&self, id: &str, direction: Direction) -> Vec<&str> {
        let Some(&start) = self.index.get(id) else {
            return Vec::new();
        };
        let mut seen = vec![false; self.graph.node_count()];
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            for next in self.graph.neighbors_directed(n, direction) {
                if !seen[next.index()] {
                    seen[next.index()] = true;
                    stack.push(next);
                }
            }
        }
        self.index
            .iter()
            .filter(|(_, n)| seen[n.index()])
            .map(|(id, _)| id.as_str())
            .collect()
    }
}
