//! What-if replay on runs the binary recorded with a fake Codex: other packs and other prices
//! applied to the recorded decisions and tokens. Every expected figure is worked out here from
//! the fake client's token counts and the catalogue's prices (read as text), never taken from
//! what the engine printed or recorded.

use std::path::Path;

use serde_json::Value;

use crate::budget::{catalogue_prices, codex_cost};
use crate::runtime::{code, fake_agent, text, write_agents, Project};

const SAMPLE: &str = "codex-success.jsonl";

/// Far more than any figure below may differ by.
const EPSILON: f64 = 1e-9;

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < EPSILON
}

/// A pack in `<project>/<dir>/<name>` with one hook.
fn write_pack(p: &Project, dir: &str, name: &str, hook: &str, body: &str) {
    let dir = p.path().join(dir).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pack.yaml"),
        format!("name: {name}\nversion: \"1.0.0\"\nhooks: [{hook}]\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("policy.rhai"),
        format!("fn {hook}(ctx) {{ {body} }}\n"),
    )
    .unwrap();
}

/// A project whose own routing pack sends executors to `gpt`, with two executor phases run
/// by the fake Codex: one finished run.
fn recorded_run() -> Project {
    let p = Project::new(
        "
mission: what-if
phases:
  write: { role: executor, prompt: work.md.j2 }
  review: { role: executor, prompt: work.md.j2, needs: [write] }
",
    );
    std::fs::write(p.path().join("work.md.j2"), "Work on item 10.\n").unwrap();
    write_agents(&p, &[fake_agent("codex", "codex", "executor", SAMPLE)]);
    write_pack(
        &p,
        ".spectacular/policies",
        "team-routing",
        "route",
        r#"route("codex", "gpt", "the team's standard")"#,
    );
    run(&p);
    p
}

fn run(p: &Project) {
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

fn json(p: &Project, args: &[&str]) -> Value {
    let out = p.run(args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn attempt<'a>(report: &'a Value, phase: &str) -> &'a Value {
    report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["phase"] == phase)
        .unwrap_or_else(|| panic!("no attempt of `{phase}` in {report:#}"))
}

/// The fake Codex's tokens: (uncached input, cached input, output).
fn codex_tokens() -> (f64, f64, f64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/agents/samples")
        .join(SAMPLE);
    let text = std::fs::read_to_string(path).unwrap();
    let usage = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["type"] == "turn.completed")
        .expect("a turn.completed line")["usage"]
        .clone();
    let tokens = |k: &str| usage[k].as_u64().unwrap() as f64;
    let cached = tokens("cached_input_tokens");
    (
        tokens("input_tokens") - cached,
        cached,
        tokens("output_tokens"),
    )
}

#[test]
fn a_cheaper_route_shows_the_saving_worked_out_from_the_recorded_tokens() {
    let p = recorded_run();
    write_pack(
        &p,
        "candidates",
        "cheap-routing",
        "route",
        r#"route("codex", "gpt-mini", "executors are cheap")"#,
    );
    let (before, after) = (codex_cost(SAMPLE, "gpt"), codex_cost(SAMPLE, "gpt-mini"));
    assert!(after < before, "the test needs a cheaper model");

    let report = json(
        &p,
        &["replay", "--policies", "candidates/cheap-routing", "--json"],
    );
    for phase in ["write", "review"] {
        let a = attempt(&report, phase);
        assert_eq!(a["evaluation"], "evaluated", "{a:#}");
        assert_eq!(a["before"]["model"], "gpt", "{a:#}");
        assert_eq!(a["after"]["model"], "gpt-mini", "{a:#}");
        assert_eq!(a["after"]["routed_by"], "cheap-routing", "{a:#}");
        assert_eq!(a["after"]["agent"], "codex", "{a:#}");
        assert!(
            close(a["cost_before_usd"].as_f64().unwrap(), before),
            "{a:#}"
        );
        assert!(close(a["cost_after_usd"].as_f64().unwrap(), after), "{a:#}");
    }
    assert_eq!(report["decisions_changed"], 2);
    assert!(close(
        report["cost_before_usd"].as_f64().unwrap(),
        2.0 * before
    ));
    assert!(close(
        report["cost_after_usd"].as_f64().unwrap(),
        2.0 * after
    ));

    // The same for people, per phase and in total.
    let out = p.run(&["replay", "last", "--policies", "candidates/cheap-routing"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("model gpt → gpt-mini (routed by `cheap-routing`)"),
        "{shown}"
    );
    let saving = format!("-${:.4}", 2.0 * (before - after));
    assert!(shown.contains(&saving), "{saving} in {shown}");

    // The unchanged packs change nothing, and cost what was recorded.
    let same = json(&p, &["replay", "--policies", "team-routing", "--json"]);
    assert_eq!(same["decisions_changed"], 0, "{same:#}");
    assert!(close(
        same["cost_after_usd"].as_f64().unwrap(),
        2.0 * before
    ));

    // A directory of packs works like the pack itself; the aggregate adds up the runs.
    run(&p);
    let all = json(
        &p,
        &[
            "replay",
            "--all",
            "--since",
            "30d",
            "--policies",
            "candidates",
            "--json",
        ],
    );
    assert_eq!(all["runs"].as_array().unwrap().len(), 2, "{all:#}");
    assert_eq!(all["total"]["decisions_changed"], 4);
    assert!(close(
        all["total"]["cost_before_usd"].as_f64().unwrap(),
        4.0 * before
    ));
    assert!(close(
        all["total"]["cost_after_usd"].as_f64().unwrap(),
        4.0 * after
    ));
    // Runs started before `--since` are left out.
    let none = json(
        &p,
        &[
            "replay",
            "--all",
            "--since",
            "2999-01-01",
            "--policies",
            "candidates",
            "--json",
        ],
    );
    assert!(none["runs"].as_array().unwrap().is_empty(), "{none:#}");
}

#[test]
fn a_route_to_an_unpriced_model_says_so() {
    let p = recorded_run();
    write_pack(
        &p,
        "candidates",
        "mystery-routing",
        "route",
        r#"route("codex", "mystery-1", "new and shiny")"#,
    );
    let report = json(
        &p,
        &[
            "replay",
            "--policies",
            "candidates/mystery-routing",
            "--json",
        ],
    );
    let a = attempt(&report, "write");
    assert!(a["cost_after_usd"].is_null(), "{a:#}");
    assert_eq!(report["unpriced_models"], serde_json::json!(["mystery-1"]));
    assert_eq!(report["unknown_costs"], 2);
    let out = p.run(&["replay", "--policies", "candidates/mystery-routing"]);
    assert!(
        text(&out).contains("model `mystery-1` has no price in the catalogue"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_govern_pack_that_denies_shows_the_deny_and_what_it_saves() {
    let p = recorded_run();
    write_pack(
        &p,
        "candidates",
        "no-codex",
        "govern",
        r#"if ctx.route.agent == "codex" { deny("codex is not approved") } else { allow() }"#,
    );
    let before = codex_cost(SAMPLE, "gpt");
    let report = json(
        &p,
        &["replay", "--policies", "candidates/no-codex", "--json"],
    );
    for phase in ["write", "review"] {
        let a = attempt(&report, phase);
        assert_eq!(a["before"]["govern"], "allow", "{a:#}");
        assert_eq!(a["after"]["govern"], "deny", "{a:#}");
        assert_eq!(a["after"]["by"], "no-codex", "{a:#}");
        assert_eq!(a["after"]["reason"], "codex is not approved", "{a:#}");
        // A denied attempt never runs: it costs nothing.
        assert!(close(a["cost_after_usd"].as_f64().unwrap(), 0.0), "{a:#}");
    }
    assert!(close(
        report["cost_before_usd"].as_f64().unwrap(),
        2.0 * before
    ));
    assert!(close(report["cost_after_usd"].as_f64().unwrap(), 0.0));

    // `policy explain` shows the same for one phase, and only that phase.
    let out = p.run(&[
        "policy",
        "explain",
        "last",
        "review",
        "--policies",
        "candidates/no-codex",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let shown = text(&out);
    let what_if = shown
        .split_once("what if:")
        .unwrap_or_else(|| panic!("{shown}"))
        .1;
    assert!(what_if.contains("allow → deny (no-codex)"), "{shown}");
    assert!(what_if.contains("why: codex is not approved"), "{shown}");
    assert!(what_if.contains("review (attempt 1)"), "{shown}");
    assert!(!what_if.contains("write"), "{shown}");
}

#[test]
fn other_prices_reprice_the_recorded_tokens() {
    let p = recorded_run();
    std::fs::write(
        p.path().join("prices.yaml"),
        "models:\n  gpt:\n    provider: openai\n    tier: standard\n    price: { input: 2.5, output: 20.0, cache_read: 0.5 }\n",
    )
    .unwrap();
    let (input, cached, output) = codex_tokens();
    let expected = (input * 2.5 + cached * 0.5 + output * 20.0) / 1_000_000.0;
    let before = codex_cost(SAMPLE, "gpt");
    assert!(!close(expected, before), "the test needs other prices");
    let report = json(&p, &["replay", "--models", "prices.yaml", "--json"]);
    let a = attempt(&report, "write");
    assert_eq!(a["after"]["model"], "gpt", "{a:#}");
    assert!(
        close(a["cost_after_usd"].as_f64().unwrap(), expected),
        "{a:#}"
    );
    assert!(close(
        report["cost_after_usd"].as_f64().unwrap(),
        2.0 * expected
    ));
    // The catalogue's own prices are those the run was priced with.
    let (i, o, c) = catalogue_prices("gpt");
    assert!(close((input * i + cached * c + output * o) / 1e6, before));
}

#[test]
fn a_log_recorded_without_contexts_is_only_repriced_and_says_so() {
    let p = recorded_run();
    // Take the contexts out, as a log written before they were recorded.
    let log = p.store().events_path(&p.run_id());
    let older: String = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line).unwrap();
            if let Some(data) = event["data"].as_object_mut() {
                data.remove("context");
                data.remove("layer");
            }
            format!("{event}\n")
        })
        .collect();
    assert!(!older.contains("\"context\""));
    std::fs::write(&log, older).unwrap();
    write_pack(
        &p,
        "candidates",
        "cheap-routing",
        "route",
        r#"route("codex", "gpt-mini", "executors are cheap")"#,
    );
    let report = json(
        &p,
        &["replay", "--policies", "candidates/cheap-routing", "--json"],
    );
    let a = attempt(&report, "write");
    assert_eq!(a["evaluation"], "repriced_only", "{a:#}");
    assert_eq!(a["after"]["model"], "gpt", "{a:#}");
    assert_eq!(report["not_evaluated"], 2);
    assert_eq!(report["decisions_changed"], 0);
    let out = p.run(&["replay", "--policies", "candidates/cheap-routing"]);
    assert!(
        text(&out).contains("2 attempts recorded no routing context"),
        "{}",
        text(&out)
    );
}

#[test]
fn what_if_arguments_that_are_no_pack_are_refused() {
    let p = recorded_run();
    let out = p.run(&["replay", "--policies", "budget-gaurd"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("`budget-guard`"), "{}", text(&out));
    let out = p.run(&["replay", "--all"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
}

#[test]
fn the_run_s_own_packs_judge_the_new_route_with_the_params_its_mission_set() {
    let p = Project::new(
        "
mission: what-if
policies: [{ approved-models: { models: [gpt] } }]
phases:
  write: { role: executor, prompt: work.md.j2 }
",
    );
    std::fs::write(p.path().join("work.md.j2"), "Work on item 10.\n").unwrap();
    write_agents(&p, &[fake_agent("codex", "codex", "executor", SAMPLE)]);
    write_pack(
        &p,
        ".spectacular/policies",
        "team-routing",
        "route",
        r#"route("codex", "gpt", "the team's standard")"#,
    );
    run(&p);
    write_pack(
        &p,
        "candidates",
        "cheap-routing",
        "route",
        r#"route("codex", "gpt-mini", "executors are cheap")"#,
    );
    let report = json(
        &p,
        &["replay", "--policies", "candidates/cheap-routing", "--json"],
    );
    let a = attempt(&report, "write");
    assert_eq!(a["before"]["govern"], "allow", "{a:#}");
    assert_eq!(a["after"]["model"], "gpt-mini", "{a:#}");
    assert_eq!(a["after"]["govern"], "deny", "{a:#}");
    assert_eq!(a["after"]["by"], "approved-models", "{a:#}");
}

#[test]
fn the_packs_beside_the_run_s_mission_take_part() {
    let p = Project::new(
        "
mission: what-if
phases:
  write: { role: executor, prompt: work.md.j2 }
",
    );
    std::fs::write(p.path().join("work.md.j2"), "Work on item 10.\n").unwrap();
    write_agents(&p, &[fake_agent("codex", "codex", "executor", SAMPLE)]);
    write_pack(
        &p,
        "policies",
        "local-routing",
        "route",
        r#"route("codex", "gpt-mini", "this mission is cheap")"#,
    );
    run(&p);
    std::fs::write(
        p.path().join("prices.yaml"),
        "models:\n  gpt-mini:\n    provider: openai\n    tier: cheap\n    price: { input: 0.5, output: 4.0, cache_read: 0.05 }\n",
    )
    .unwrap();
    let report = json(&p, &["replay", "--models", "prices.yaml", "--json"]);
    let a = attempt(&report, "write");
    assert_eq!(a["before"]["model"], "gpt-mini", "{a:#}");
    assert_eq!(a["after"]["model"], "gpt-mini", "{a:#}");
    assert_eq!(a["after"]["routed_by"], "local-routing", "{a:#}");
    assert_eq!(report["decisions_changed"], 0, "{report:#}");
    let (input, cached, output) = codex_tokens();
    let expected = (input * 0.5 + cached * 0.05 + output * 4.0) / 1_000_000.0;
    assert!(
        close(a["cost_after_usd"].as_f64().unwrap(), expected),
        "{a:#}"
    );
}

#[test]
fn what_if_output_goldens() {
    let p = recorded_run();
    write_pack(
        &p,
        "candidates",
        "cheap-routing",
        "route",
        r#"route("codex", "gpt-mini", "executors are cheap")"#,
    );
    write_pack(
        &p,
        "candidates",
        "no-codex",
        "govern",
        r#"if ctx.phase.id == "review" { deny("codex may not review") } else { allow() }"#,
    );
    let run_id = p.run_id();
    let mut failures = Vec::new();
    let mut check = |name: &str, args: &[&str]| {
        let out = p.run(args);
        let transcript = format!(
            "$ spectacular {}\n{}",
            args.join(" "),
            // The same width as a run id, so that tables stay aligned.
            text(&out).replace(&run_id, &format!("{:_<26}", "RUN_ID"))
        );
        assert_eq!(code(&out), 0, "{transcript}");
        if let Err(e) = crate::support::golden(
            &Path::new("tests/fixtures/cli").join(format!("{name}.txt")),
            &transcript,
        ) {
            failures.push(e);
        }
    };
    check(
        "replay-what-if",
        &["replay", "last", "--policies", "candidates"],
    );
    check(
        "replay-what-if-all",
        &["replay", "--all", "--policies", "candidates"],
    );
    check(
        "policy-explain-what-if",
        &[
            "policy",
            "explain",
            "last",
            "review",
            "--policies",
            "candidates/no-codex",
        ],
    );
    crate::support::assert_goldens(failures);
}
