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

// --- fallback chains: every hop reserves at its own model's price --------------------------

/// A Codex run that did some work (one turn, with its tokens) and then failed on a 429: a
/// hop that spent money before it failed.
fn codex_rate_limited_after_work(input: u64, cached: u64, output: u64) -> String {
    format!(
        concat!(
            "{{\"type\":\"thread.started\",\"thread_id\":\"0199a213-0000-7000-8000-000000000001\"}}\n",
            "{{\"type\":\"turn.started\"}}\n",
            "{{\"type\":\"turn.completed\",\"usage\":{{\"input_tokens\":{},\"cached_input_tokens\":{},\"output_tokens\":{}}}}}\n",
            "{{\"type\":\"turn.started\"}}\n",
            "{{\"type\":\"turn.failed\",\"error\":{{\"message\":\"exceeded retry limit, last status: 429 Too Many Requests\"}}}}\n",
        ),
        input, cached, output
    )
}

/// What Codex's tokens cost on `model`, at the catalogue's prices (cached input is part of
/// `input`).
fn codex_tokens_cost(model: &str, input: u64, cached: u64, output: u64) -> f64 {
    let (i, o, c) = catalogue_prices(model);
    ((input - cached) as f64 * i + cached as f64 * c + output as f64 * o) / 1_000_000.0
}

/// The dollars the fake Claude reports for `sample` (`total_cost_usd`).
fn claude_reported(sample: &str) -> f64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/agents/samples")
        .join(sample);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["total_cost_usd"].as_f64().unwrap()
}

/// A project whose phase `work` runs `first` (Codex on `gpt-mini`, which spends and then hits
/// a 429) and falls back to `second` (Claude Code on `claude-sonnet`, which records its argv
/// in `argv.bin`), under `budget`.
fn two_hop_project(budget: &str, tokens: (u64, u64, u64)) -> Project {
    two_hop_project_to("claude-sonnet", budget, tokens)
}

/// [`two_hop_project`] with `second` on `model`.
fn two_hop_project_to(model: &str, budget: &str, tokens: (u64, u64, u64)) -> Project {
    let p = Project::new(&format!(
        "mission: hops\n{budget}phases:\n  work: {{ agent: first, model: gpt-mini, prompt: work.md.j2 }}\n"
    ));
    std::fs::write(p.path().join("work.md.j2"), PROMPT).unwrap();
    let sample = p.path().join("codex-429.jsonl");
    std::fs::write(
        &sample,
        codex_rate_limited_after_work(tokens.0, tokens.1, tokens.2),
    )
    .unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        format!(
            "agents:
  first:
    adapter: codex
    binary: {}
    env: {{ FAKE_AGENT_SAMPLE: {}, FAKE_AGENT_EXIT: '1' }}
    fallbacks: [second]
  second:
    adapter: claude-code
    binary: {}
    model: {model}
    env: {{ FAKE_AGENT_SAMPLE: {}, FAKE_AGENT_RECORD: {} }}
",
            fixtures.join("codex/codex").display(),
            sample.display(),
            fixtures.join("claude/claude").display(),
            fixtures.join("samples/claude-success.json").display(),
            p.path().join("argv.bin").display(),
        ),
    )
    .unwrap();
    p
}

fn run_isolated(p: &Project) -> std::process::Output {
    let user = tempfile::tempdir().unwrap();
    p.command(&["run", "mission.yaml"])
        .env("SPECTACULAR_CONFIG_DIR", user.path())
        .output()
        .unwrap()
}

fn ledger(p: &Project) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p.path().join(".spectacular/spend.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `reserve` or `usd` figures of ledger key `key`, in order.
fn ledger_figures(lines: &[serde_json::Value], key: &str, field: &str) -> Vec<f64> {
    lines
        .iter()
        .filter(|l| l["key"] == key)
        .filter_map(|l| l[field].as_f64())
        .collect()
}

#[test]
fn each_hop_of_a_fallback_chain_reserves_at_its_own_models_price() {
    let tokens = (10_000, 2_000, 300);
    let p = two_hop_project("budget: { max_usd: 5 }\n", tokens);
    std::fs::write(p.path().join(".spectacular/budgets.yaml"), "day_usd: 100\n").unwrap();
    let out = run_isolated(&p);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();

    let (mini, sonnet) = (reservation("gpt-mini"), reservation("claude-sonnet"));
    assert!(sonnet > mini * 5.0, "the two reservations must differ");
    let codex = codex_tokens_cost("gpt-mini", tokens.0, tokens.1, tokens.2);
    let claude = claude_reported("claude-success.json");

    // The first hop reserved at `gpt-mini`'s price.
    let started = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptStarted(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        started.reserved_usd.is_some_and(|r| close(r, mini)),
        "{started:?}"
    );
    // The hop: what Codex spent, and Claude's reservation at `claude-sonnet`'s price.
    let hop = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::FallbackActivated(f) => Some(f.clone()),
            _ => None,
        })
        .expect("a fallback");
    assert!(hop.cost_usd.is_some_and(|c| close(c, codex)), "{hop:?}");
    assert!(
        hop.reserved_usd.is_some_and(|r| close(r, sonnet)),
        "{hop:?}"
    );
    // Claude Code is capped at its own reservation.
    let argv = std::fs::read(p.path().join("argv.bin")).unwrap();
    let argv: Vec<String> = argv
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = argv
        .iter()
        .position(|a| a == "--max-budget-usd")
        .expect("--max-budget-usd");
    let cap: f64 = argv[at + 1].parse().unwrap();
    assert!(close(cap, sonnet), "{argv:?}");

    // The attempt's usage is both hops, each at its own price; so is the cost report.
    let spent: f64 = events.iter().filter_map(cost_of).sum();
    assert!(
        close(spent, codex + claude),
        "{spent} vs {}",
        codex + claude
    );
    let report = p.run(&["cost", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(
        close(report["cost_usd"].as_f64().unwrap(), codex + claude),
        "{report}"
    );

    // The shared ledger: each hop reserved at its own price under its own key, and settled
    // what it cost; nothing is left open.
    let lines = ledger(&p);
    let first = ledger_figures(&lines, "work#1", "reserve");
    assert!(first.len() == 1 && close(first[0], mini), "{lines:?}");
    let settled = ledger_figures(&lines, "work#1", "usd");
    assert!(settled.len() == 1 && close(settled[0], codex), "{lines:?}");
    let second = ledger_figures(&lines, "work#1.1", "reserve");
    assert!(second.len() == 1 && close(second[0], sonnet), "{lines:?}");
    let settled = ledger_figures(&lines, "work#1.1", "usd");
    assert!(settled.len() == 1 && close(settled[0], claude), "{lines:?}");
    assert_eq!(lines.len(), 4, "{lines:?}");
}

#[test]
fn a_hop_whose_reservation_would_pass_the_hard_cap_is_refused() {
    // Codex spends a little (within its reservation); the cap leaves room for `gpt-mini`'s
    // reservation but not for what Codex spent plus `claude-sonnet`'s.
    let tokens = (1_000, 0, 500);
    let codex = codex_tokens_cost("gpt-mini", tokens.0, tokens.1, tokens.2);
    let (mini, sonnet) = (reservation("gpt-mini"), reservation("claude-sonnet"));
    assert!(codex < mini, "the first hop must not overspend");
    let cap = (mini + codex + sonnet) / 2.0;
    assert!(mini < cap && codex + sonnet > cap);
    let p = two_hop_project(
        &format!("budget: {{ max_usd: {cap} }}\ndefaults: {{ retry: {{ max_attempts: 1 }} }}\n"),
        tokens,
    );
    let out = run_isolated(&p);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();
    assert!(!p.path().join("argv.bin").exists(), "Claude Code started");
    assert!(!events
        .iter()
        .any(|e| matches!(e.data, EventData::FallbackActivated(_))));
    let refusals = budget_refusals(&events);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let expected = format!(
        "the fallback of `work` to `second/claude-sonnet` would pass the hard cap: spent ${codex:.4} + reserved $0.0000 + estimate ${sonnet:.4}"
    );
    assert!(refusals[0].1.contains(&expected), "{}", refusals[0].1);
    // What Codex spent counts.
    let spent: f64 = events.iter().filter_map(cost_of).sum();
    assert!(close(spent, codex), "{spent} vs {codex}");
}

// --- a client stopped at its timeout without reporting usage --------------------------------

#[test]
fn a_timed_out_client_that_reported_nothing_is_charged_its_reservation() {
    let p = Project::new(
        "mission: slow
budget: { max_usd: 1 }
phases:
  work:
    agent: codex
    model: gpt
    prompt: work.md.j2
    timeout: 1s
    retry: { max_attempts: 1 }
",
    );
    std::fs::write(p.path().join("work.md.j2"), PROMPT).unwrap();
    std::fs::write(p.path().join(".spectacular/budgets.yaml"), "day_usd: 100\n").unwrap();
    write_agents(
        &p,
        &[
            fake_agent("codex", "codex", "executor", "codex-success.jsonl").replace(
                "FAKE_AGENT_SAMPLE:",
                "FAKE_AGENT_SLEEP: '30', FAKE_AGENT_SAMPLE:",
            ),
        ],
    );
    let out = run_isolated(&p);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();
    let failed = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptFailed(f) => Some(f.clone()),
            _ => None,
        })
        .expect("the attempt failed");
    assert_eq!(failed.kind, FailureKind::Timeout);
    // The estimate the reservation was made of: the prompt at four characters a token and
    // 4,096 output tokens, at `gpt`'s prices, marked as an estimate.
    let expected = reservation("gpt");
    let usage = failed.usage.expect("an estimated usage");
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (PROMPT.chars().count().div_ceil(4) as u64, 4096)
    );
    assert!(
        usage.cost_usd.is_some_and(|c| close(c, expected)),
        "{usage:?}"
    );
    assert_eq!(
        usage.cost_source,
        Some(spectacular::record::usage::CostSource::Estimated)
    );
    assert_eq!(usage.model.as_deref(), Some("gpt"));
    // Counted by the cost report and settled in the shared ledger.
    let report = p.run(&["cost", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(
        close(report["cost_usd"].as_f64().unwrap(), expected),
        "{report}"
    );
    assert_eq!(report["estimated_calls"], 1, "{report}");
    let table = p.run(&["cost"]);
    let table = String::from_utf8_lossy(&table.stdout);
    let said = format!(
        "of which {} over 1 call estimated: a client stopped at its timeout reported nothing",
        spectacular::record::usage::usd(expected)
    );
    assert!(table.contains(&said), "{table}");
    let settled = ledger_figures(&ledger(&p), "work#1", "usd");
    assert!(
        settled.len() == 1 && close(settled[0], expected),
        "{settled:?}"
    );
}

#[test]
fn a_hop_to_an_unpriced_model_under_a_budget_is_refused() {
    let tokens = (1_000, 0, 500);
    let codex = codex_tokens_cost("gpt-mini", tokens.0, tokens.1, tokens.2);
    let p = two_hop_project_to(
        "my-private-model",
        "budget: { max_usd: 5 }\ndefaults: { retry: { max_attempts: 1 } }\n",
        tokens,
    );
    let out = run_isolated(&p);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(!p.path().join("argv.bin").exists(), "Claude Code started");
    let refusals = budget_refusals(&p.events());
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let message = &refusals[0].1;
    assert!(
        message.contains("the fallback to `second/my-private-model` cannot reserve")
            && message.contains("models.yaml"),
        "{message}"
    );
    // What Codex spent still counts.
    let spent: f64 = p.events().iter().filter_map(cost_of).sum();
    assert!(close(spent, codex), "{spent} vs {codex}");
}

/// The same chain without a budget: nothing to reserve against, so a hop to a model without a
/// price runs, and no attempt records a reservation.
#[test]
fn without_a_budget_a_hop_to_an_unpriced_model_runs_and_nothing_is_reserved() {
    let p = two_hop_project_to(
        "my-private-model",
        "defaults: { retry: { max_attempts: 1 } }\n",
        (1_000, 0, 500),
    );
    let out = run_isolated(&p);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        p.path().join("argv.bin").exists(),
        "Claude Code never started"
    );
    let events = p.events();
    assert!(budget_refusals(&events).is_empty());
    for e in &events {
        if let EventData::AttemptStarted(s) = &e.data {
            assert_eq!(s.reserved_usd, None, "{s:?}");
        }
    }
}

/// Policy hooks see the run's budget as the mission set it: the cap, the soft threshold, and
/// what remains before anything is spent or reserved.
#[test]
fn policies_see_the_budget_the_mission_set() {
    let p = two_hop_project("budget: { max_usd: 5, soft_usd: 2 }\n", (1_000, 0, 500));
    let out = run_isolated(&p);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let context = p
        .events()
        .into_iter()
        .find_map(|e| match e.data {
            EventData::PolicyDecided(d) => d.context,
            _ => None,
        })
        .expect("a decision recorded its context");
    assert_eq!(context["run"]["budget_usd"], 5.0, "{context:#}");
    assert_eq!(context["run"]["soft_usd"], 2.0, "{context:#}");
    assert_eq!(context["run"]["remaining_usd"], 5.0, "{context:#}");
    assert_eq!(context["run"]["spent_usd"], 0.0, "{context:#}");
}
