//! What-if replay: the recorded policy decisions of a run evaluated again under other packs
//! or other prices, without running anything.
//!
//! Each phase attempt that policies decided about recorded, with its first `policy.decided`
//! event, the routing context the hooks saw. That context is given to the other packs; their
//! combined answer (agent, model, allow/deny/approval, downgrades, alerts) is compared with what
//! the recorded decisions chose, and the attempt's recorded tokens are priced for the model the
//! new answer picks. Nothing is written and no agent is called.
//!
//! Rules (documented in the book's `what-if.md`):
//!
//! - the model is, as in the engine, a budget downgrade, else the phase's pinned model, else
//!   the route's model; the agent is the phase's pinned agent, else the route's agent, else the
//!   first agent serving the phase's role (the first of `ctx.agents`);
//! - the cost before is the recorded cost; the cost after is the recorded tokens at the
//!   catalogue's prices of the model picked, or the recorded cost when the model and its prices
//!   are unchanged; an attempt a new deny would have stopped costs nothing; one that was denied
//!   and would now run has no recorded tokens, so its cost is unknown;
//! - budget hooks see the spend the run would have had: the recorded spend plus the
//!   differences of the attempts settled before;
//! - with other prices (`--models`), the context's models are the new catalogue's, restricted
//!   to the providers the recorded context offered.
//!
//! Logs written before decisions carried their context cannot be re-evaluated: their attempts
//! are reported as such, and only repriced (same choice, other prices).

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::config::models::Catalog;
use crate::policy::{GovernOutcome, ModelInfo, Packs, PhaseContext, RoutingContext};
use crate::record::event::PolicyDecided;
use crate::record::usage::Usage;
use crate::record::{Event, EventData};

/// What to evaluate recorded decisions with.
pub struct Setup<'a> {
    /// The packs to ask, already enabled for the run ([`enabled_names`]).
    pub packs: &'a Packs,
    /// The catalogue prices come from (the current one, with `--models` on top).
    pub catalog: &'a Catalog,
    /// `--models` was given: the hooks see the new catalogue's models.
    pub repriced: bool,
}

/// What one side (recorded or what-if) chose for an attempt.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Choice {
    pub agent: Option<String>,
    pub model: Option<String>,
    /// `allow`, `deny` or `require_approval`.
    pub govern: String,
    /// The pack that denied or asked for approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The pack whose route won.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routed_by: Option<String>,
    /// `pack: model` of a budget downgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downgrade: Option<String>,
    /// `pack: level: message` of each budget alert.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
    /// Why the winning route's agent or model is not what the attempt runs on (`not applied:
    /// …`), when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_ignored: Option<String>,
}

/// Whether an attempt could be evaluated again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evaluation {
    /// Its recorded context was given to the other packs.
    Evaluated,
    /// Its log has no recorded context: the choice is kept, only prices change.
    RepricedOnly,
}

/// One phase attempt, before and after.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub phase: String,
    pub attempt: u32,
    pub evaluation: Evaluation,
    pub before: Choice,
    pub after: Choice,
    /// What differs, for people (`model claude-opus → claude-haiku`).
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
    pub cost_before_usd: f64,
    /// `None` when unknown (an unpriced model, or no recorded tokens).
    pub cost_after_usd: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Attempt {
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// The tokens an attempt used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Tokens {
    fn of(usage: &Usage) -> Tokens {
        Tokens {
            input: usage.input_tokens,
            output: usage.output_tokens,
            cache_read: usage.cache_read_tokens,
            cache_write: usage.cache_write_tokens,
        }
    }
}

/// A run, before and after.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub mission: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub attempts: Vec<Attempt>,
    /// Every agent cost the run recorded.
    pub cost_before_usd: f64,
    /// The same with each re-evaluated attempt's difference; attempts whose cost after is
    /// unknown count at their recorded cost (see `unknown_costs`).
    pub cost_after_usd: f64,
    /// Attempts with a different agent, model, verdict, downgrade or alert.
    pub decisions_changed: usize,
    /// Attempts that could only be repriced (no recorded context).
    pub not_evaluated: usize,
    /// Attempts whose cost after is unknown.
    pub unknown_costs: usize,
    /// Models picked that have no price in the catalogue.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub unpriced_models: BTreeSet<String>,
}

/// The packs that decided something in `events`: enable them (with the packs given on the
/// command line) so that the what-if set is the run's own plus the new ones.
pub fn enabled_names(events: &[Event]) -> Vec<String> {
    let mut names: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::PolicyDecided(d) => Some(d.pack.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The decisions of one phase attempt, as recorded.
struct Batch<'a> {
    phase: String,
    decisions: Vec<&'a PolicyDecided>,
}

impl Batch<'_> {
    /// `govern` asked again about what a finished attempt changed outside its work
    /// package's `owned_files`: not a route, and the money was spent whatever it answered.
    fn after_attempt(&self) -> bool {
        self.decisions
            .first()
            .and_then(|d| d.context.as_ref())
            .is_some_and(|c| !c["phase"]["changes"].is_null())
    }
}

/// Evaluate every recorded decision of a run under `setup`.
pub fn evaluate(events: &[Event], setup: &Setup<'_>) -> RunReport {
    let (mission, started_at) = events
        .first()
        .and_then(|e| match &e.data {
            EventData::RunStarted(s) => Some((s.mission.clone(), Some(e.ts.clone()))),
            _ => None,
        })
        .unwrap_or_default();
    let mut report = RunReport {
        run_id: events.first().map(|e| e.run_id.clone()).unwrap_or_default(),
        mission,
        started_at,
        attempts: Vec::new(),
        cost_before_usd: 0.0,
        cost_after_usd: 0.0,
        decisions_changed: 0,
        not_evaluated: 0,
        unknown_costs: 0,
        unpriced_models: BTreeSet::new(),
    };
    // The difference in spend so far: budget hooks after it see it.
    let mut delta = 0.0;
    // Phase → index in `report.attempts` of its attempt waiting for its result.
    let mut pending: HashMap<String, usize> = HashMap::new();
    let mut batch: Option<Batch<'_>> = None;
    // Phases whose finished attempt `govern` was asked about again (see `after_attempt`).
    let mut reviewed: BTreeSet<String> = BTreeSet::new();
    for event in events {
        if let EventData::PolicyDecided(d) = &event.data {
            let continues = batch
                .as_ref()
                .is_some_and(|b| b.phase == d.phase && d.context.is_none());
            if !continues {
                if let Some(b) = batch.take() {
                    finish(b, &mut reviewed, setup, delta, &mut report, &mut pending);
                }
                batch = Some(Batch {
                    phase: d.phase.clone(),
                    decisions: Vec::new(),
                });
            }
            if let Some(b) = batch.as_mut() {
                b.decisions.push(d);
            }
            continue;
        }
        if let Some(b) = batch.take() {
            finish(b, &mut reviewed, setup, delta, &mut report, &mut pending);
        }
        let (phase, attempt, agent, usage, denied) = match &event.data {
            EventData::AttemptSucceeded(s) => {
                (&s.phase, s.attempt, &s.agent, s.usage.as_deref(), false)
            }
            EventData::AttemptFailed(f) => (
                &f.phase,
                f.attempt,
                &f.agent,
                f.usage.as_deref(),
                // Denied for what it changed, it ran: its tokens are priced like any.
                f.kind == crate::model::FailureKind::Denied && !reviewed.contains(&f.phase),
            ),
            _ => continue,
        };
        let after_review = reviewed.remove(phase.as_str());
        let recorded_cost = usage.and_then(|u| u.cost_usd).unwrap_or(0.0);
        report.cost_before_usd += recorded_cost;
        let Some(index) = pending.remove(phase.as_str()) else {
            continue;
        };
        let a = &mut report.attempts[index];
        a.attempt = attempt;
        if a.before.agent.is_none() {
            a.before.agent.clone_from(agent);
        }
        if a.before.model.is_none() {
            a.before.model = usage.and_then(|u| u.model.clone());
        }
        // Nothing routed: the agent serving the role, with its own model, as recorded.
        if a.after.agent.is_none() {
            a.after.agent.clone_from(&a.before.agent);
        }
        if a.after.model.is_none() && a.after.agent == a.before.agent {
            a.after.model.clone_from(&a.before.model);
        }
        if after_review {
            a.notes.push(
                "`govern` was asked again about the files it changed outside its owned_files; \
                 that decision is as recorded, not evaluated again"
                    .into(),
            );
        }
        a.cost_before_usd = recorded_cost;
        a.tokens = usage.map(Tokens::of);
        settle(a, usage, denied, setup, &mut report.unpriced_models);
        if let Some(after) = a.cost_after_usd {
            delta += after - recorded_cost;
        }
    }
    if let Some(b) = batch.take() {
        finish(b, &mut reviewed, setup, delta, &mut report, &mut pending);
    }
    // Attempts that never got a result (a gate that waited, a run that stopped): no cost.
    for index in pending.into_values() {
        let a = &mut report.attempts[index];
        if a.after.govern == "deny" || a.before.govern != "allow" {
            a.cost_after_usd = Some(0.0);
        } else {
            a.notes
                .push("the attempt has no recorded result, so no tokens to price".into());
        }
    }
    let mut after = report.cost_before_usd;
    for a in &mut report.attempts {
        a.changes = changes(&a.before, &a.after);
        if a.changed() {
            report.decisions_changed += 1;
        }
        if a.evaluation == Evaluation::RepricedOnly {
            report.not_evaluated += 1;
        }
        match a.cost_after_usd {
            Some(cost) => after += cost - a.cost_before_usd,
            None => report.unknown_costs += 1,
        }
    }
    report.cost_after_usd = after;
    report
}

/// A batch before an attempt is evaluated again; one after is only noted.
fn finish(
    batch: Batch<'_>,
    reviewed: &mut BTreeSet<String>,
    setup: &Setup<'_>,
    delta: f64,
    report: &mut RunReport,
    pending: &mut HashMap<String, usize>,
) {
    if batch.after_attempt() {
        reviewed.insert(batch.phase);
    } else {
        finish_batch(batch, setup, delta, report, pending);
    }
}

/// Evaluate a batch of recorded decisions again and register its attempt as pending.
fn finish_batch(
    batch: Batch<'_>,
    setup: &Setup<'_>,
    delta: f64,
    report: &mut RunReport,
    pending: &mut HashMap<String, usize>,
) {
    let recorded_context = batch
        .decisions
        .first()
        .and_then(|d| d.context.as_ref())
        .and_then(|c| serde_json::from_value::<RoutingContext>(c.clone()).ok());
    let recorded_phase = recorded_context.as_ref().map(|c| c.phase.clone());
    let before = recorded_choice(&batch.decisions, recorded_phase.as_ref());
    let mut notes = Vec::new();
    let (evaluation, after, attempt) = match recorded_context {
        Some(mut ctx) => {
            let attempt = ctx.phase.attempt;
            if setup.repriced {
                ctx.models = models_of(setup.catalog, &ctx.models);
            }
            if delta != 0.0 {
                ctx.run.spent_usd = (ctx.run.spent_usd + delta).max(0.0);
                ctx.run.remaining_usd = ctx.run.remaining_usd.map(|r| (r - delta).max(0.0));
            }
            let decisions = setup.packs.decide(&ctx);
            let mut after = choice_of(&decisions, recorded_phase.as_ref());
            if let (Some(why), Some(pack)) = (&after.route_ignored, &after.routed_by) {
                notes.push(format!("the route of `{pack}` would be {why}"));
            }
            if after.agent.is_none() {
                after.agent = ctx.agents.first().cloned();
            }
            (Evaluation::Evaluated, after, attempt)
        }
        None => {
            notes.push(
                "recorded without its routing context (an older spectacular): not re-evaluated, \
                 only repriced"
                    .to_string(),
            );
            (Evaluation::RepricedOnly, before.clone(), 0)
        }
    };
    let index = report.attempts.len();
    report.attempts.push(Attempt {
        phase: batch.phase.clone(),
        attempt,
        evaluation,
        before,
        after,
        changes: Vec::new(),
        tokens: None,
        cost_before_usd: 0.0,
        cost_after_usd: None,
        notes,
    });
    // A second decision for the same phase before a result (a gate approved, then asked
    // again) replaces the first as the one the result belongs to.
    if let Some(previous) = pending.insert(batch.phase, index) {
        let a = &mut report.attempts[previous];
        a.cost_after_usd = Some(0.0);
    }
}

/// Work out the cost after, once the attempt's recorded usage is known.
fn settle(
    a: &mut Attempt,
    usage: Option<&Usage>,
    denied: bool,
    setup: &Setup<'_>,
    unpriced: &mut BTreeSet<String>,
) {
    if a.after.govern == "deny" {
        a.cost_after_usd = Some(0.0);
        if a.before.govern != "deny" {
            a.notes
                .push("a deny would have stopped it before it ran".into());
        }
        return;
    }
    if denied || a.before.govern == "deny" {
        a.notes
            .push("it was denied, so there are no recorded tokens to price".into());
        return;
    }
    let Some(usage) = usage else {
        a.cost_after_usd = Some(0.0);
        return;
    };
    let same_model = a.after.model == a.before.model;
    if same_model && !setup.repriced {
        a.cost_after_usd = Some(a.cost_before_usd);
        return;
    }
    match a
        .after
        .model
        .as_deref()
        .and_then(|m| price(setup.catalog, m))
    {
        Some(p) => {
            a.cost_after_usd = Some(p.cost(
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
            ));
        }
        None => {
            let name = a.after.model.clone().unwrap_or_else(|| "(none)".into());
            a.notes.push(format!(
                "model `{name}` has no price in the catalogue: its cost is unknown"
            ));
            unpriced.insert(name);
        }
    }
}

/// The prices of a model by its catalogue name, or by the provider's id a client reported.
fn price(catalog: &Catalog, model: &str) -> Option<crate::config::models::Price> {
    catalog
        .get(model)
        .or_else(|| {
            catalog
                .models
                .values()
                .map(|(m, _)| m)
                .find(|m| m.id.as_deref() == Some(model))
        })
        .map(|m| m.price)
}

/// The catalogue's models, as hooks see them, of the providers `recorded` offered (all of
/// them when it offered none).
fn models_of(catalog: &Catalog, recorded: &[ModelInfo]) -> Vec<ModelInfo> {
    let providers: BTreeSet<&str> = recorded.iter().map(|m| m.provider.as_str()).collect();
    catalog
        .models
        .iter()
        .filter(|(_, (m, _))| providers.is_empty() || providers.contains(m.provider.as_str()))
        .map(|(name, (m, _))| ModelInfo {
            name: name.clone(),
            provider: m.provider.clone(),
            tier: m.tier.as_str().to_string(),
            input_per_mtok: m.price.input,
            output_per_mtok: m.price.output,
            context_window: m.context_window.unwrap_or(0),
        })
        .collect()
}

fn text(result: &Value, key: &str) -> Option<String> {
    result
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn kind(d: &PolicyDecided) -> Option<&str> {
    d.result.get("decision").and_then(Value::as_str)
}

fn layer_rank(layer: Option<&str>) -> u8 {
    match layer {
        Some("user") => 1,
        Some("project") => 2,
        Some("mission") => 3,
        _ => 0,
    }
}

/// The agent and model by the engine's rules ([`crate::policy::choice::apply`]), for the
/// phase as the hooks saw it (its pins, the likely agent's models); a log without the context
/// takes a route's choice as it is.
fn applied(
    phase: Option<&PhaseContext>,
    downgrade: Option<String>,
    route_agent: Option<String>,
    route_model: Option<String>,
) -> crate::policy::choice::Applied {
    let offer = crate::policy::choice::Offer {
        agent: phase.and_then(|p| p.agent.as_deref()),
        adapter: phase.and_then(|p| p.adapter.as_deref()),
        model: phase.and_then(|p| p.agent_model.as_deref()),
        models: phase.map_or(&[][..], |p| p.agent_models.as_slice()),
    };
    crate::policy::choice::apply(
        phase.and_then(|p| p.agent.as_deref()),
        phase.and_then(|p| p.model.as_deref()),
        downgrade.as_deref(),
        route_agent.as_deref(),
        route_model.as_deref(),
        &offer,
    )
}

/// What the recorded decisions chose, combined by the engine's rules.
fn recorded_choice(decisions: &[&PolicyDecided], phase: Option<&PhaseContext>) -> Choice {
    let answered =
        |d: &&&PolicyDecided| d.hook == "route" && !d.result.is_null() && kind(d) != Some("error");
    // The highest layer that answered; within a layer, the first.
    let mut route: Option<&PolicyDecided> = None;
    for d in decisions.iter().filter(answered) {
        if route.is_none_or(|r| layer_rank(d.layer.as_deref()) > layer_rank(r.layer.as_deref())) {
            route = Some(d);
        }
    }
    let downgrade = decisions
        .iter()
        .rev()
        .find(|d| d.hook == "budget" && kind(d) == Some("downgrade"));
    let deny = decisions
        .iter()
        .find(|d| matches!(kind(d), Some("deny") | Some("error")));
    let approval = decisions
        .iter()
        .find(|d| kind(d) == Some("require_approval"));
    let (govern, by, reason) = match (deny, approval) {
        (Some(d), _) => ("deny", Some(d.pack.clone()), d.reason.clone()),
        (None, Some(d)) => ("require_approval", Some(d.pack.clone()), d.reason.clone()),
        (None, None) => ("allow", None, None),
    };
    let applied = applied(
        phase,
        downgrade.and_then(|d| text(&d.result, "model")),
        route.and_then(|r| text(&r.result, "agent")),
        route.and_then(|r| text(&r.result, "model")),
    );
    Choice {
        route_ignored: applied.ignored,
        agent: applied.agent,
        model: applied.model,
        govern: govern.into(),
        by,
        reason,
        routed_by: route.map(|r| r.pack.clone()),
        downgrade: downgrade.map(|d| {
            format!(
                "{}: {}",
                d.pack,
                text(&d.result, "model").unwrap_or_default()
            )
        }),
        alerts: decisions
            .iter()
            .filter(|d| d.hook == "budget" && kind(d) == Some("alert"))
            .map(|d| {
                format!(
                    "{}: {}: {}",
                    d.pack,
                    text(&d.result, "level").unwrap_or_default(),
                    text(&d.result, "message").unwrap_or_default()
                )
            })
            .collect(),
    }
}

/// What the packs decided now, combined by the engine's rules.
fn choice_of(decisions: &crate::policy::Decisions, phase: Option<&PhaseContext>) -> Choice {
    let (govern, by, reason) = match &decisions.govern {
        GovernOutcome::Allow => ("allow", None, None),
        GovernOutcome::Deny { reason, pack } => ("deny", Some(pack.clone()), Some(reason.clone())),
        GovernOutcome::RequireApproval { reason, pack } => {
            ("require_approval", Some(pack.clone()), Some(reason.clone()))
        }
    };
    let downgrade = decisions
        .budget
        .iter()
        .rev()
        .find(|d| d.kind() == Some("downgrade"));
    let applied = applied(
        phase,
        downgrade.and_then(|d| text(&d.result, "model")),
        decisions.agent().map(str::to_string),
        decisions
            .route
            .as_ref()
            .and_then(|r| text(&r.result, "model")),
    );
    Choice {
        route_ignored: applied.ignored,
        agent: applied.agent,
        model: applied.model,
        govern: govern.into(),
        by,
        reason,
        routed_by: decisions.route.as_ref().map(|r| r.pack.clone()),
        downgrade: downgrade.map(|d| {
            format!(
                "{}: {}",
                d.pack,
                text(&d.result, "model").unwrap_or_default()
            )
        }),
        alerts: decisions
            .alerts()
            .into_iter()
            .map(|(pack, level, message)| format!("{pack}: {level}: {message}"))
            .collect(),
    }
}

/// What differs between two choices, for people.
fn changes(before: &Choice, after: &Choice) -> Vec<String> {
    let name = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let mut out = Vec::new();
    let by = match (&after.routed_by, before.routed_by == after.routed_by) {
        (Some(pack), false) => format!(" (routed by `{pack}`)"),
        _ => String::new(),
    };
    if before.agent != after.agent {
        out.push(format!(
            "agent {} → {}{by}",
            name(&before.agent),
            name(&after.agent)
        ));
    }
    if before.model != after.model {
        out.push(format!(
            "model {} → {}{by}",
            name(&before.model),
            name(&after.model)
        ));
    }
    if before.govern != after.govern || before.by != after.by {
        let verdict = |c: &Choice| match &c.by {
            Some(pack) => format!("{} ({pack})", c.govern),
            None => c.govern.clone(),
        };
        out.push(format!("{} → {}", verdict(before), verdict(after)));
    }
    if before.downgrade != after.downgrade {
        out.push(format!(
            "downgrade {} → {}",
            name(&before.downgrade),
            name(&after.downgrade)
        ));
    }
    // An alert is the same alert when the same pack raises it at the same level; its message
    // may quote a spend that differs.
    let key =
        |alert: &String| -> String { alert.splitn(3, ": ").take(2).collect::<Vec<_>>().join(": ") };
    let old: BTreeSet<String> = before.alerts.iter().map(key).collect();
    let new: BTreeSet<String> = after.alerts.iter().map(key).collect();
    for alert in after.alerts.iter().filter(|a| !old.contains(&key(a))) {
        out.push(format!("new alert {alert}"));
    }
    for alert in before.alerts.iter().filter(|a| !new.contains(&key(a))) {
        out.push(format!("no alert {alert}"));
    }
    out
}

/// The totals over several runs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub runs: usize,
    pub attempts: usize,
    pub decisions_changed: usize,
    pub not_evaluated: usize,
    pub unknown_costs: usize,
    pub cost_before_usd: f64,
    pub cost_after_usd: f64,
}

impl Totals {
    pub fn of(reports: &[RunReport]) -> Totals {
        let mut t = Totals::default();
        for r in reports {
            t.runs += 1;
            t.attempts += r.attempts.len();
            t.decisions_changed += r.decisions_changed;
            t.not_evaluated += r.not_evaluated;
            t.unknown_costs += r.unknown_costs;
            t.cost_before_usd += r.cost_before_usd;
            t.cost_after_usd += r.cost_after_usd;
        }
        t
    }
}

/// Dollars for people (see [`crate::record::usage::usd`]).
pub fn usd(value: f64) -> String {
    crate::record::usage::usd(value)
}

/// A signed difference in dollars (`+$0.0123`, `-$1.20`, `$0.0000`).
pub fn usd_delta(value: f64) -> String {
    let text = usd(value);
    if text.starts_with('-') || text == "$0.00" {
        text
    } else {
        format!("+{text}")
    }
}

/// The report of one run as text.
pub fn text_report(report: &RunReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} ({}): {} attempt{} decided by policies, {} would change",
        report.run_id,
        report.mission,
        report.attempts.len(),
        if report.attempts.len() == 1 { "" } else { "s" },
        report.decisions_changed
    );
    for a in &report.attempts {
        out.push_str(&attempt_text(a));
    }
    let _ = writeln!(
        out,
        "\ncost: {} recorded → {} under these policies ({})",
        usd(report.cost_before_usd),
        usd(report.cost_after_usd),
        usd_delta(report.cost_after_usd - report.cost_before_usd)
    );
    attempts_line(&mut out, report.unknown_costs, UNKNOWN_COST);
    if !report.unpriced_models.is_empty() {
        let names: Vec<String> = report
            .unpriced_models
            .iter()
            .map(|m| format!("`{m}`"))
            .collect();
        let _ = writeln!(out, "unpriced models: {}", names.join(", "));
    }
    attempts_line(&mut out, report.not_evaluated, NOT_EVALUATED);
    out
}

const UNKNOWN_COST: &str = "of unknown cost counted at the recorded cost";
const NOT_EVALUATED: &str =
    "recorded no routing context (an older spectacular) and could only be repriced";

/// `N attempt(s) <what>` as a footnote, when `count` is not zero.
fn attempts_line(out: &mut String, count: usize, what: &str) {
    use std::fmt::Write as _;
    if count > 0 {
        let plural = if count == 1 { "" } else { "s" };
        let _ = writeln!(out, "{count} attempt{plural} {what}");
    }
}

/// One attempt as text: the phase, then what would change and the cost.
pub fn attempt_text(a: &Attempt) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let cost = match a.cost_after_usd {
        Some(after) => format!(
            "{} → {} ({})",
            usd(a.cost_before_usd),
            usd(after),
            usd_delta(after - a.cost_before_usd)
        ),
        None => format!("{} → unknown", usd(a.cost_before_usd)),
    };
    let what = |c: &Choice| {
        let mut parts = Vec::new();
        if let Some(agent) = &c.agent {
            parts.push(agent.clone());
        }
        if let Some(model) = &c.model {
            parts.push(model.clone());
        }
        let target = if parts.is_empty() {
            "-".to_string()
        } else {
            parts.join(" / ")
        };
        format!("{target}, {}", c.govern)
    };
    let _ = writeln!(out, "\n{} (attempt {})", a.phase, a.attempt.max(1));
    if a.changed() {
        for change in &a.changes {
            let _ = writeln!(out, "  {change}");
        }
    } else {
        let _ = writeln!(out, "  unchanged: {}", what(&a.after));
    }
    if let Some(reason) = a
        .after
        .reason
        .as_deref()
        .filter(|_| a.after.govern != "allow")
    {
        let _ = writeln!(out, "  why: {reason}");
    }
    let _ = writeln!(out, "  cost: {cost}");
    for note in &a.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

/// The aggregate over several runs as text: one line per run, then the totals.
pub fn text_aggregate(reports: &[RunReport]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let rows: Vec<[String; 6]> = reports
        .iter()
        .map(|r| {
            [
                r.run_id.clone(),
                r.mission.clone(),
                format!("{}/{}", r.decisions_changed, r.attempts.len()),
                usd(r.cost_before_usd),
                usd(r.cost_after_usd),
                usd_delta(r.cost_after_usd - r.cost_before_usd),
            ]
        })
        .collect();
    let header = [
        "RUN".to_string(),
        "MISSION".into(),
        "CHANGED".into(),
        "BEFORE".into(),
        "AFTER".into(),
        "DIFFERENCE".into(),
    ];
    let t = Totals::of(reports);
    let total = [
        "total".to_string(),
        format!("{} run{}", t.runs, if t.runs == 1 { "" } else { "s" }),
        format!("{}/{}", t.decisions_changed, t.attempts),
        usd(t.cost_before_usd),
        usd(t.cost_after_usd),
        usd_delta(t.cost_after_usd - t.cost_before_usd),
    ];
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows).chain([&total]) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(super::width(cell));
        }
    }
    let line = |row: &[String; 6]| {
        let mut text = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            // Money is right-aligned.
            if i >= 3 {
                text.push_str(&" ".repeat(w - super::width(cell)));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(w - super::width(cell)));
            }
            text.push_str("  ");
        }
        text.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    let _ = writeln!(out, "{}", line(&total));
    attempts_line(&mut out, t.not_evaluated, NOT_EVALUATED);
    attempts_line(&mut out, t.unknown_costs, UNKNOWN_COST);
    out
}

#[cfg(test)]
mod tests;
