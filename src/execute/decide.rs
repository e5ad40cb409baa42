//! The policy hooks of an agent attempt: what the packs see (the phase, the run, the agents
//! and models on offer) and what they decide.

use serde_json::Value;

use super::*;
use crate::model::{FailureKind, PhaseKind};
use crate::record::event::AttemptFailed;

impl Engine {
    /// Run the policy hooks for an agent attempt.
    pub(super) fn decide_policies(
        &self,
        instance: &str,
        attempt: u32,
        phase: &crate::plan::PlannedPhase,
        configured: &crate::agents::config::AgentsFile,
        prompt: &str,
        context: &Value,
    ) -> crate::policy::Decisions {
        use crate::policy::{ModelInfo, PhaseContext, RoutingContext, RunContext};
        let PhaseKind::Agent {
            role, agent, model, ..
        } = &phase.kind
        else {
            return self.packs.decide(&RoutingContext::default());
        };
        // The agents serving the role come first: a route that names none picks among them.
        let mut agents: Vec<String> = configured
            .agents
            .iter()
            .filter(|(_, a)| role.as_ref().is_some_and(|r| a.roles.contains(r)))
            .map(|(n, _)| n.clone())
            .collect();
        agents.extend(
            configured
                .agents
                .keys()
                .filter(|n| !agents.contains(n))
                .cloned()
                .collect::<Vec<_>>(),
        );
        // Offer the models the likely agent can use: a provider's own CLI takes its models.
        let chosen = agent
            .as_ref()
            .or(agents.first())
            .and_then(|a| configured.agents.get(a));
        let adapter = chosen.map(|a| a.adapter.clone());
        let provider = match adapter.as_deref() {
            Some("claude-code") | Some("anthropic-messages") => Some("anthropic"),
            Some("codex") | Some("openai-chat") => Some("openai"),
            Some("gemini") => Some("google"),
            _ => None,
        };
        // An agent that declares its models is offered those only; a command agent that
        // declares none runs no model of ours and is offered none: it is neither priced nor
        // judged as one.
        let offer = crate::policy::choice::Offer {
            agent: None,
            adapter: adapter.as_deref(),
            model: chosen.and_then(|a| a.model.as_deref()),
            models: chosen.map_or(&[][..], |a| a.models.as_slice()),
        };
        let restricted = offer.restricted();
        let offered = |name: &str, model_provider: &str| match &restricted {
            Some(names) => names.contains(&name),
            None => provider.is_none_or(|p| model_provider == p),
        };
        let analysis = context["outputs"]
            .as_object()
            .and_then(|o| {
                o.values()
                    .flat_map(|v| v.as_object())
                    .flat_map(|v| v.values())
                    .find(|v| v.get("complexity").is_some())
            })
            .cloned()
            .unwrap_or(Value::Null);
        let complexity = analysis.get("complexity").and_then(Value::as_f64);
        let budget_usd = self.budget.cap();
        let ctx = RoutingContext {
            phase: PhaseContext {
                id: instance.to_string(),
                role: role.clone(),
                kind: "agent".into(),
                attempt,
                prompt_chars: prompt.chars().count() as u64,
                prompt_tokens_estimate: (prompt.chars().count() as u64).div_ceil(4),
                paths: phase.outputs.values().map(|o| o.path.clone()).collect(),
                agent: agent.clone(),
                model: model.clone(),
                agent_model: chosen.and_then(|a| a.model.clone()),
                agent_models: chosen.map(|a| a.models.clone()).unwrap_or_default(),
                adapter: adapter.clone(),
                changes: None,
            },
            run: RunContext {
                mission: self.plan.mission.id.clone(),
                inputs: context["inputs"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                complexity,
                tier: analysis
                    .get("tier")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        complexity.map(|c| {
                            crate::spec::AnalysisConfig::default()
                                .tier(c)
                                .as_str()
                                .to_string()
                        })
                    }),
                dimensions: analysis
                    .get("dimensions")
                    .and_then(Value::as_object)
                    .map(|d| {
                        d.iter()
                            .filter_map(|(name, dim)| {
                                let score = dim.get("score").or(Some(dim))?.as_f64()?;
                                Some((name.clone(), score))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                risk_areas: analysis
                    .get("risk_areas")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                spent_usd: self.budget.spent(),
                budget_usd,
                remaining_usd: budget_usd
                    .map(|cap| (cap - self.budget.spent() - self.budget.reserved()).max(0.0)),
                soft_usd: self.budget.soft(),
            },
            agents,
            models: self
                .catalog
                .models
                .iter()
                .filter(|(name, (m, _))| offered(name, &m.provider))
                .map(|(name, (m, _))| ModelInfo {
                    name: name.clone(),
                    provider: m.provider.clone(),
                    tier: m.tier.as_str().to_string(),
                    input_per_mtok: m.price.input,
                    output_per_mtok: m.price.output,
                    context_window: m.context_window.unwrap_or(0),
                })
                .collect(),
        };
        self.packs.decide(&ctx.normalized())
    }
}

impl Engine {
    /// The result of an attempt, after `govern` was asked about the files it changed outside
    /// its work package's `owned_files` (only then): the decisions are recorded, and a deny
    /// fails the attempt (kind `denied`, its usage kept: the money was spent). A hook that
    /// asks for an approval the phase did not get before it started fails it too, since a
    /// finished attempt cannot wait for one.
    pub(super) fn govern_changes(&mut self, result: EventData) -> EventData {
        use crate::policy::{Changes, GovernOutcome, PhaseContext, RoutingContext, RunContext};
        let done = match result {
            EventData::AttemptSucceeded(done) => done,
            other => return other,
        };
        let routed = self.routed.remove(&done.phase);
        let Some(changes) = done
            .git
            .as_deref()
            .filter(|g| !g.outside_owned.is_empty())
            .map(|g| Changes {
                files: g.files.clone(),
                outside_owned: g.outside_owned.clone(),
            })
        else {
            return EventData::AttemptSucceeded(done);
        };
        if !self.packs.governs() {
            return EventData::AttemptSucceeded(done);
        }
        let mut ctx = match routed {
            Some(ctx) => *ctx,
            None => RoutingContext {
                phase: PhaseContext {
                    id: done.phase.clone(),
                    kind: self
                        .scheduler
                        .phase_of(&done.phase)
                        .map_or("run", |p| p.kind.name())
                        .to_string(),
                    ..Default::default()
                },
                run: RunContext {
                    mission: self.plan.mission.id.clone(),
                    inputs: self.scheduler.context(&done.phase, done.attempt)["inputs"]
                        .as_object()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                    budget_usd: self.budget.cap(),
                    soft_usd: self.budget.soft(),
                    ..Default::default()
                },
                ..Default::default()
            },
        };
        ctx.phase.attempt = done.attempt;
        let outside = changes.outside_owned.clone();
        ctx.phase.changes = Some(changes);
        ctx.run.spent_usd = self.budget.spent();
        ctx.run.remaining_usd = None;
        let ctx = ctx.normalized();
        let model = done.usage.as_ref().and_then(|u| u.model.clone());
        let decisions = self
            .packs
            .govern_changes(&ctx, done.agent.as_deref(), model.as_deref());
        for event in decisions.events(&done.phase) {
            self.record(event, "engine");
        }
        let why = match &decisions.govern {
            GovernOutcome::Allow => return EventData::AttemptSucceeded(done),
            // A person agreed to this phase before it started: the same ask is answered.
            GovernOutcome::RequireApproval { .. } if self.scheduler.approved(&done.phase) => {
                return EventData::AttemptSucceeded(done)
            }
            GovernOutcome::Deny { reason, pack } => format!("denied by policy `{pack}`: {reason}"),
            GovernOutcome::RequireApproval { reason, pack } => format!(
                "policy `{pack}` asks for approval ({reason}), which a finished attempt cannot \
                 wait for: have the policy deny such changes, or widen the package's owned_files"
            ),
        };
        EventData::AttemptFailed(AttemptFailed {
            message: format!(
                "{why} (changed outside owned_files: {})",
                outside.join(", ")
            ),
            files: outside,
            phase: done.phase,
            attempt: done.attempt,
            kind: FailureKind::Denied,
            exit_code: done.exit_code,
            duration_ms: done.duration_ms,
            agent: done.agent,
            usage: done.usage,
        })
    }
}
