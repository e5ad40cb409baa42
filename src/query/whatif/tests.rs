//! What-if replay: choices, prices and the batches of recorded decisions.

use super::*;

/// `govern` asked again after an attempt about the files it changed is not a route: the
/// attempt it follows keeps its own evaluation, and a deny there (the money spent) is
/// priced like any finished attempt.
#[test]
fn a_deny_after_an_attempt_keeps_its_cost_and_the_route_before_it() {
    use crate::policy::{Changes, RoutingContext};
    use crate::record::event::{AttemptFailed, AttemptStarted};
    let ctx = |changes: Option<Changes>| {
        let mut ctx = RoutingContext::default().normalized();
        ctx.phase.id = "w".into();
        ctx.phase.kind = "agent".into();
        ctx.phase.changes = changes;
        serde_json::to_value(ctx).ok()
    };
    let decided = |context, result: Value| {
        EventData::PolicyDecided(Box::new(PolicyDecided {
            phase: "w".into(),
            pack: "strict".into(),
            version: "1".into(),
            hook: "govern".into(),
            result,
            reason: None,
            input_digest: String::new(),
            layer: Some("project".into()),
            context,
            ignored: None,
        }))
    };
    let usage = Usage {
        input_tokens: 1000,
        output_tokens: 100,
        cost_usd: Some(0.25),
        model: Some("m".into()),
        ..Usage::default()
    };
    let data = [
        decided(ctx(None), serde_json::json!({"decision": "allow"})),
        EventData::AttemptStarted(AttemptStarted {
            phase: "w".into(),
            attempt: 1,
            workdir: ".".into(),
            argv: None,
            prompt_digest: None,
            timeout_ms: None,
            reserved_usd: None,
        }),
        decided(
            ctx(Some(Changes {
                files: vec!["a".into(), "b".into()],
                outside_owned: vec!["b".into()],
            })),
            serde_json::json!({"decision": "deny"}),
        ),
        EventData::AttemptFailed(AttemptFailed {
            phase: "w".into(),
            attempt: 1,
            kind: crate::model::FailureKind::Denied,
            message: "denied by policy `strict`".into(),
            exit_code: Some(0),
            duration_ms: 5,
            agent: Some("coder".into()),
            usage: Some(Box::new(usage)),
            files: vec!["b".into()],
        }),
    ];
    let events: Vec<Event> = data
        .into_iter()
        .enumerate()
        .map(|(i, data)| Event {
            event_id: format!("e{i}"),
            schema: 1,
            run_id: "run".into(),
            seq: i as u64 + 1,
            ts: "2026-01-01T00:00:00Z".into(),
            causation_id: None,
            actor: "engine".into(),
            data,
        })
        .collect();
    let (packs, _) = Packs::from_sources(Vec::new(), &[]);
    let catalog = Catalog::default();
    let setup = Setup {
        packs: &packs,
        catalog: &catalog,
        repriced: false,
    };
    let report = evaluate(&events, &setup);
    assert_eq!(report.attempts.len(), 1, "{:#?}", report.attempts);
    let a = &report.attempts[0];
    assert_eq!(a.evaluation, Evaluation::Evaluated);
    assert_eq!(a.before.govern, "allow");
    assert_eq!(a.cost_before_usd, 0.25);
    assert_eq!(a.cost_after_usd, Some(0.25), "{a:#?}");
    assert!(
        a.notes.iter().any(|n| n.contains("asked again")),
        "{:?}",
        a.notes
    );
    assert_eq!(report.cost_after_usd, 0.25);
}

#[test]
fn dollars_never_print_as_negative_zero() {
    assert_eq!(usd(-0.0000001), "$0.00");
    assert_eq!(usd(-0.0), "$0.00");
    assert_eq!(usd(0.0), "$0.00");
    assert_eq!(usd(0.01234), "$0.0123");
    assert_eq!(usd(0.0000123), "$0.000012");
    assert_eq!(usd(-0.00001), "-$0.000010");
    assert_eq!(usd(-0.5), "-$0.5000");
    assert_eq!(usd(12.345), "$12.35");
    assert_eq!(usd_delta(0.25), "+$0.2500");
    assert_eq!(usd_delta(-0.0000001), "$0.00");
    assert_eq!(usd_delta(-2.0), "-$2.00");
}

#[test]
fn a_changed_choice_names_each_difference() {
    let before = Choice {
        agent: Some("codex".into()),
        model: Some("gpt".into()),
        govern: "allow".into(),
        ..Choice::default()
    };
    let after = Choice {
        model: Some("gpt-mini".into()),
        govern: "deny".into(),
        by: Some("approved-models".into()),
        ..before.clone()
    };
    assert_eq!(
        changes(&before, &after),
        vec!["model gpt → gpt-mini", "allow → deny (approved-models)"]
    );
    assert!(changes(&before, &before).is_empty());
    // The same pack alerting at the same level with another spend is the same alert.
    let alerting = |message: &str| Choice {
        alerts: vec![format!("budget-guard: warning: {message}")],
        ..before.clone()
    };
    assert!(changes(&alerting("spent $15.50"), &alerting("spent $9.10")).is_empty());
    assert_eq!(
        changes(&before, &alerting("spent $9.10")),
        vec!["new alert budget-guard: warning: spent $9.10"]
    );
}

#[test]
fn the_recorded_route_is_the_highest_layer_that_answered() {
    let d = |pack: &str, layer: &str, model: &str| PolicyDecided {
        phase: "a".into(),
        pack: pack.into(),
        version: "1".into(),
        hook: "route".into(),
        result: serde_json::json!({"agent": "codex", "model": model}),
        reason: None,
        input_digest: String::new(),
        layer: Some(layer.into()),
        context: None,
        ignored: None,
    };
    let (low, high, also_high) = (
        d("default-routing", "builtin", "gpt"),
        d("a-project", "project", "gpt-mini"),
        d("b-project", "project", "claude-haiku"),
    );
    let choice = recorded_choice(&[&low, &high, &also_high], None);
    assert_eq!(choice.model.as_deref(), Some("gpt-mini"));
    assert_eq!(choice.routed_by.as_deref(), Some("a-project"));
    // A pinned model wins over the route.
    let phase = crate::policy::PhaseContext {
        model: Some("gpt".into()),
        ..Default::default()
    };
    let pinned = recorded_choice(&[&low, &high], Some(&phase));
    assert_eq!(pinned.model.as_deref(), Some("gpt"));
    assert_eq!(
        pinned.route_ignored.as_deref(),
        Some("not applied: model `gpt-mini`: the phase pins model `gpt`")
    );
    // A command agent runs the models it declares only: a route to another is not applied.
    let command = crate::policy::PhaseContext {
        adapter: Some("command".into()),
        agent_model: Some("claude-sonnet".into()),
        ..Default::default()
    };
    let ignored = recorded_choice(&[&low, &high], Some(&command));
    assert_eq!(ignored.model.as_deref(), Some("claude-sonnet"));
    assert!(ignored.route_ignored.is_some());
}
