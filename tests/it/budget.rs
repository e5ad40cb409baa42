//! The hard cap with clients that spend more than the engine reserved for them. Every figure
//! the tests expect is worked out here, from the fake client's token counts and the catalogue's
//! prices (`src/config/models.yaml`, read as text), never taken from what the engine printed
//! or recorded.

use std::path::Path;

use spectacular::model::FailureKind;
use spectacular::record::event::BudgetAlert;
use spectacular::record::{Event, EventData};

use crate::runtime::{code, fake_agent, text, write_agents, Project};

/// Far more than any figure below is allowed to differ by.
const EPSILON: f64 = 1e-9;

/// The prompt of every agent attempt here: 17 characters.
const PROMPT: &str = "Work on item 10.\n";

/// The catalogue's prices of `model`, in dollars per million tokens: (input, output,
/// cache_read). Read from the YAML text line by line, so that the test shares nothing with the
/// engine's catalogue loader.
pub(crate) fn catalogue_prices(model: &str) -> (f64, f64, f64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config/models.yaml");
    let catalogue = std::fs::read_to_string(path).unwrap();
    let mut lines = catalogue.lines();
    lines
        .by_ref()
        .find(|l| l.trim_end() == format!("  {model}:"))
        .unwrap_or_else(|| panic!("`{model}` is not in the catalogue"));
    let price = lines
        .take_while(|l| l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix("price:"))
        .unwrap_or_else(|| panic!("`{model}` has no price"));
    let field = |name: &str| -> f64 {
        price
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .split(',')
            .find_map(|kv| {
                let (k, v) = kv.split_once(':')?;
                (k.trim() == name).then(|| v.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("`{model}` has no `{name}` price"))
    };
    (field("input"), field("output"), field("cache_read"))
}

/// What one run of the fake Codex with `sample` costs on `model`: Codex reports tokens only
/// (cached input is part of `input_tokens`), so the cost is its tokens at the catalogue prices.
pub(crate) fn codex_cost(sample: &str, model: &str) -> f64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/agents/samples")
        .join(sample);
    let text = std::fs::read_to_string(path).unwrap();
    let usage = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["type"] == "turn.completed")
        .expect("a turn.completed line")["usage"]
        .clone();
    let tokens = |k: &str| usage[k].as_u64().unwrap() as f64;
    let (input, output, cache_read) = catalogue_prices(model);
    let cached = tokens("cached_input_tokens");
    ((tokens("input_tokens") - cached) * input
        + cached * cache_read
        + tokens("output_tokens") * output)
        / 1_000_000.0
}

/// What the engine reserves for an attempt of `PROMPT` on `model`, by the rule the book
/// states: the prompt at four characters a token, at the input price, plus 4,096 output
/// tokens at the output price.
fn reservation(model: &str) -> f64 {
    let (input, output, _) = catalogue_prices(model);
    let prompt_tokens = PROMPT.chars().count().div_ceil(4) as f64;
    (prompt_tokens * input + 4096.0 * output) / 1_000_000.0
}

fn cost_of(e: &Event) -> Option<f64> {
    match &e.data {
        EventData::AttemptSucceeded(s) => s.usage.as_ref().and_then(|u| u.cost_usd),
        EventData::AttemptFailed(f) => f.usage.as_ref().and_then(|u| u.cost_usd),
        _ => None,
    }
}

fn alerts(events: &[Event]) -> Vec<(usize, BudgetAlert)> {
    events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.data {
            EventData::BudgetAlert(a) => Some((i, a.clone())),
            _ => None,
        })
        .collect()
}

fn budget_refusals(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AttemptFailed(f) if f.kind == FailureKind::Budget => {
                Some((f.phase.clone(), f.message.clone()))
            }
            _ => None,
        })
        .collect()
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < EPSILON
}

#[test]
fn the_overspend_fixture_costs_more_than_its_reservation() {
    let (cost, reserved) = (
        codex_cost("codex-overspend.jsonl", "gpt"),
        reservation("gpt"),
    );
    // (20,000 × $1.25 + 100,000 × $0.125 + 30,000 × $10) / 1e6, against (5 × $1.25 + 4,096 ×
    // $10) / 1e6: the tests below are about a client that overspends, by construction.
    assert!(close(cost, 0.3375), "{cost}");
    assert!(close(reserved, 0.04096625), "{reserved}");
    assert!(cost > reserved * 8.0);
}

#[test]
fn an_overspending_client_raises_the_overshoot_alert_and_stops_further_agent_work() {
    let cost = codex_cost("codex-overspend.jsonl", "gpt");
    let reserved = reservation("gpt");
    // The cap leaves room for `b` by the ordinary rule: only the overshoot may refuse it.
    let cap = 1.0;
    assert!(cost + reserved < cap);
    let p = Project::new(&format!(
        "
mission: overspent
budget: {{ max_usd: {cap} }}
phases:
  a: {{ role: executor, model: gpt, prompt: work.md.j2 }}
  b: {{ role: executor, model: gpt, prompt: work.md.j2, needs: [a] }}
  tidy: {{ uses: builtin/noop, needs: [a] }}
"
    ));
    std::fs::write(p.path().join("work.md.j2"), PROMPT).unwrap();
    write_agents(
        &p,
        &[fake_agent(
            "codex",
            "codex",
            "executor",
            "codex-overspend.jsonl",
        )],
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();

    // `a` reserved the estimate and spent the fixture's tokens at catalogue prices.
    let started = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptStarted(s) if s.phase == "a" => Some(s.clone()),
            _ => None,
        })
        .expect("a started");
    assert!(
        started.reserved_usd.is_some_and(|r| close(r, reserved)),
        "{started:?}"
    );
    let a_done = events
        .iter()
        .position(|e| matches!(&e.data, EventData::AttemptSucceeded(s) if s.phase == "a"))
        .expect("a succeeded");
    assert!(
        cost_of(&events[a_done]).is_some_and(|c| close(c, cost)),
        "{:?}",
        events[a_done]
    );

    // One overshoot alert, right after `a`'s attempt, with the figures of that attempt.
    let alerts = alerts(&events);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (at, alert) = &alerts[0];
    assert_eq!(*at, a_done + 1);
    assert_eq!(alert.level, "overshoot");
    assert!(close(alert.spent_usd, cost), "{alert:?}");
    assert_eq!(alert.cap_usd, Some(cap));
    let figures = format!("`a` attempt 1 cost ${cost:.4} against ${reserved:.4} reserved");
    assert!(alert.message.contains(&figures), "{}", alert.message);

    // `b` is refused before it starts, for the overshoot; it never ran.
    let refusals = budget_refusals(&events);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].0, "b");
    assert!(
        refusals[0].1.contains("overspent its reservation") && refusals[0].1.contains(&figures),
        "{}",
        refusals[0].1
    );
    assert!(!events
        .iter()
        .any(|e| matches!(&e.data, EventData::AttemptSucceeded(s) if s.phase == "b")));
    // Work that costs nothing goes on.
    assert!(events
        .iter()
        .any(|e| matches!(&e.data, EventData::PhaseSucceeded(s) if s.phase == "tidy")));

    // The final spend is `a`'s cost, in the log and in the cost report.
    let spent: f64 = events.iter().filter_map(cost_of).sum();
    assert!(close(spent, cost), "spent {spent}, expected {cost}");
    let report = p.run(&["cost", "--json"]);
    assert_eq!(code(&report), 0, "{}", text(&report));
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["calls"], 1);
    assert!(
        close(report["cost_usd"].as_f64().unwrap(), cost),
        "{report}"
    );
}

#[test]
fn under_concurrency_overspending_clients_pass_the_cap_by_what_was_already_reserved() {
    // 50 agent attempts start at once; the cap leaves room for 10 reservations. Each client
    // then spends far more than it reserved: the cap refuses the other 40 before they start,
    // and the run spends what the 10 admitted attempts spent, which is past the cap.
    let cost = codex_cost("codex-overspend.jsonl", "gpt");
    let reserved = reservation("gpt");
    let cap = reserved * 10.5;
    let p = Project::new(&format!(
        "
mission: overspent-together
budget: {{ max_usd: {cap} }}
phases:
  work:
    for_each: 'range(10, 60)'
    role: executor
    model: gpt
    prompt: work.md.j2
"
    ));
    std::fs::write(p.path().join("work.md.j2"), "Work on item {{ item }}.\n").unwrap();
    write_agents(
        &p,
        &[fake_agent(
            "codex",
            "codex",
            "executor",
            "codex-overspend.jsonl",
        )],
    );
    let out = p.run(&["run", "mission.yaml", "--max-parallel", "50"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();

    let succeeded: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.data, EventData::AttemptSucceeded(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(succeeded.len(), 10, "exactly the reservations that fit ran");
    let refusals = budget_refusals(&events);
    assert_eq!(refusals.len(), 40);
    assert!(
        refusals
            .iter()
            .all(|(_, m)| m.contains("would pass the hard cap")),
        "{refusals:?}"
    );

    let spent: f64 = events.iter().filter_map(cost_of).sum();
    assert!(
        close(spent, 10.0 * cost),
        "spent {spent}, expected {}",
        10.0 * cost
    );
    assert!(spent > cap, "the overspend is not bounded by the cap");

    // One overshoot alert, right after the first attempt that overspent.
    let alerts = alerts(&events);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].0, succeeded[0] + 1);
    assert_eq!(alerts[0].1.level, "overshoot");
    assert!(close(alerts[0].1.spent_usd, cost), "{:?}", alerts[0].1);
}
