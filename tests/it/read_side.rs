//! The read side on runs the binary recorded: `status` lists every phase with why it is
//! where it is, `events` shows each event's essential data and filters by type and phase, and
//! `runs` outside a project creates nothing.

use crate::budget::codex_cost;
use crate::runtime::{code, fake_agent, text, write_agents, Project};

/// The line of `output` that starts with `first` (a phase's row, say).
fn row<'a>(output: &'a str, first: &str) -> &'a str {
    output
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row `{first}` in:\n{output}"))
}

fn stdout(p: &Project, args: &[&str]) -> String {
    let out = p.run(args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// A run that stops at a gate, after a fan-out of three items.
fn gated_run() -> Project {
    let p = Project::new(
        "
mission: status-demo
phases:
  build: { run: [echo, built] }
  fan: { needs: [build], for_each: '[\"x\", \"y\", \"z\"]', run: [echo, '{{ item }}'] }
  gate: { needs: [fan], approval: { reason: ship it? } }
  deploy: { needs: [gate], run: [echo, deploy] }
  notify: { needs: [deploy, fan], run: [echo, done] }
",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    p
}

#[test]
fn status_lists_every_phase_with_why_it_waits() {
    let p = gated_run();
    let status = stdout(&p, &["status"]);
    // Phases not reached yet are listed, in the mission's order, with what they wait on.
    let order: Vec<&str> = status
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        order,
        ["build", "fan", "gate", "deploy", "notify"],
        "{status}"
    );
    assert!(row(&status, "deploy").contains("pending"), "{status}");
    assert!(
        row(&status, "deploy").ends_with("waiting on `gate`"),
        "{status}"
    );
    assert!(
        row(&status, "notify").ends_with("waiting on `deploy`"),
        "{status}"
    );
    // The gate says why it waits; the mission asked, not a policy.
    assert!(
        row(&status, "gate").ends_with("waiting for approval (gate): ship it?"),
        "{status}"
    );
    // The fan-out parent shows its children's totals: three items, one attempt each.
    let fan: Vec<&str> = row(&status, "fan").split_whitespace().collect();
    assert_eq!(fan[1..3], ["succeeded", "3"], "{status}");
    assert!(
        row(&status, "fan").ends_with("3 items: 3 succeeded"),
        "{status}"
    );

    let json: serde_json::Value = serde_json::from_str(&stdout(&p, &["status", "--json"])).unwrap();
    let phase = |id: &str| {
        json["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ph| ph["phase"] == id)
            .unwrap_or_else(|| panic!("no `{id}` in {json:#}"))
            .clone()
    };
    assert_eq!(phase("notify")["state"], "pending");
    assert_eq!(phase("notify")["note"], "waiting on `deploy`");
    assert_eq!(phase("fan")["children"]["succeeded"], 3);
    assert_eq!(phase("fan")["children"]["attempts"], 3);

    // Columns line up: every row's STATE starts where the header's does.
    let header = status.lines().nth(1).unwrap();
    let at = header.find("STATE").unwrap();
    for line in status.lines().skip(2) {
        let state = line[at..].split_whitespace().next().unwrap();
        assert!(
            ["succeeded", "waiting", "pending"].contains(&state),
            "{line}\n{status}"
        );
    }
}

#[test]
fn a_gate_a_policy_asked_for_names_the_policy() {
    let p = Project::new(
        "
mission: guarded
policies: [security-review]
phases:
  auth-login: { role: executor, prompt: work.md.j2 }
  after: { needs: [auth-login], run: [echo, done] }
",
    );
    std::fs::write(p.path().join("work.md.j2"), "Work on item 10.\n").unwrap();
    write_agents(
        &p,
        &[fake_agent(
            "codex",
            "codex",
            "executor",
            "codex-success.jsonl",
        )],
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let status = stdout(&p, &["status"]);
    assert!(
        row(&status, "auth-login").contains(
            "waiting for approval, asked by policy `security-review`: phase auth-login touches auth"
        ),
        "{status}"
    );
    assert!(
        row(&status, "after").ends_with("waiting on `auth-login`"),
        "{status}"
    );
    // The event line says which pack decided what.
    let events = stdout(&p, &["events", "--type", "policy.decided"]);
    let govern = events
        .lines()
        .find(|l| l.contains("security-review"))
        .unwrap_or_else(|| panic!("{events}"));
    assert!(
        govern.contains(
            "security-review 1.0.0 govern: require_approval: phase auth-login touches auth"
        ),
        "{events}"
    );
    assert!(
        events.lines().all(|l| l.contains("policy.decided")),
        "{events}"
    );
}

#[test]
fn events_filter_by_type_and_phase_and_default_to_the_last_run() {
    let p = gated_run();
    let fan = stdout(&p, &["events", "--phase", "fan"]);
    assert!(!fan.is_empty());
    for line in fan.lines() {
        let phase = line.split_whitespace().nth(3).unwrap_or("");
        assert!(phase == "fan" || phase.starts_with("fan["), "{line}\n{fan}");
    }
    assert!(
        fan.contains("3 items: 0, 1, 2") || fan.contains("3 items: x, y, z"),
        "{fan}"
    );
    let attempts = stdout(&p, &["events", "--type", "attempt", "--phase", "build"]);
    let types: Vec<&str> = attempts
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(
        types,
        ["attempt.started", "attempt.succeeded"],
        "{attempts}"
    );
    // The latest run without naming it, as `status` does.
    let all = stdout(&p, &["events"]);
    assert!(
        all.lines().last().unwrap().contains("run.suspended"),
        "{all}"
    );
    assert!(
        all.lines().last().unwrap().ends_with("waiting: gate"),
        "{all}"
    );

    let out = p.run(&["events", "--type", "polcy.decided"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("`policy.decided`"), "{}", text(&out));
}

#[test]
fn a_budget_alert_shows_its_numbers_and_a_refusal_says_budget_once() {
    let cost = codex_cost("codex-success.jsonl", "gpt");
    let soft = cost / 2.0;
    let p = Project::new(&format!(
        "
mission: alerting
budget: {{ max_usd: 1, soft_usd: {soft} }}
phases:
  a: {{ role: executor, model: gpt, prompt: work.md.j2 }}
",
    ));
    std::fs::write(p.path().join("work.md.j2"), "Work on item 10.\n").unwrap();
    write_agents(
        &p,
        &[fake_agent(
            "codex",
            "codex",
            "executor",
            "codex-success.jsonl",
        )],
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = stdout(&p, &["events", "--type", "budget.alert"]);
    let expected = format!("soft: spent ${cost:.4}, threshold ${soft:.4}, cap $1.00");
    assert!(events.contains(&expected), "{expected} in:\n{events}");
    // The alert's own message has the digits to show a threshold under a cent.
    let message = format!("past the ${soft:.4} alert threshold");
    assert!(events.contains(&message), "{message} in:\n{events}");
    assert!(
        soft < 0.005,
        "the test needs a threshold that rounds to $0.00 at two decimals"
    );
    let attempt = stdout(&p, &["events", "--type", "attempt.succeeded"]);
    assert!(attempt.contains("codex / gpt"), "{attempt}");
    assert!(attempt.contains(&format!("${cost:.4}")), "{attempt}");

    // A cap too small for the estimate refuses the attempt: the reason says `budget` once.
    let p = Project::new(
        "
mission: refused
budget: { max_usd: 0.000001 }
phases:
  a: { role: executor, model: gpt, prompt: work.md.j2 }
",
    );
    std::fs::write(p.path().join("work.md.j2"), "Work on item 10.\n").unwrap();
    write_agents(
        &p,
        &[fake_agent(
            "codex",
            "codex",
            "executor",
            "codex-success.jsonl",
        )],
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let status = stdout(&p, &["status"]);
    let events = stdout(&p, &["events"]);
    for shown in [&status, &events] {
        assert!(shown.contains("budget: `a` would pass"), "{shown}");
        assert!(!shown.contains("budget: budget:"), "{shown}");
    }
}

#[test]
fn runs_outside_a_project_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spectacular"))
        .arg("runs")
        .current_dir(dir.path())
        .env_remove("SPECTACULAR_STORE")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("no runs yet"), "{}", text(&out));
    assert!(!dir.path().join(".spectacular").exists());
}

#[test]
fn resume_prints_its_header_before_what_it_found() {
    let p = Project::new(
        "
mission: taken-over
phases:
  wait: { shell: 'while [ ! -f go ]; do sleep 0.05; done', workspace: repo, timeout: 30s }
",
    );
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    p.wait_for("the attempt", |events| {
        events
            .iter()
            .any(|e| matches!(e.data, spectacular::record::EventData::AttemptStarted(_)))
    });
    engine.kill().unwrap();
    engine.wait().unwrap();
    // The shell left behind ends by itself once `go` exists; resume kills it anyway.
    std::fs::write(p.path().join("go"), "").unwrap();
    let out = p.run(&["resume", "last"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let header = stderr
        .find("resuming run")
        .unwrap_or_else(|| panic!("{stderr}"));
    let found = stderr
        .find("interrupted attempts will run again: wait")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(header < found, "{stderr}");
}

/// `status` shows what each agent phase answered: a short answer whole, a long one as its
/// first lines with the command that prints all of it.
#[test]
fn status_shows_each_agents_answer_bounded_with_where_the_rest_is() {
    let p = Project::new(
        "
mission: answers
phases:
  short: { role: planner }
  long: { agent: talker, needs: [short] }
",
    );
    let lines: Vec<String> = (1..=8).map(|i| format!("line {i} of the answer")).collect();
    let answer = lines.join("\\n");
    write_agents(
        &p,
        &[
            fake_agent("claude", "claude-code", "planner", "claude-success.json"),
            format!(
                "  talker:\n    adapter: command\n    argv: [printf, '%s', '{{\"answer\": \"{answer}\"}}']\n    stdin: false\n    output: {{ format: json, result: /answer }}\n"
            ),
        ],
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let run = p.run_id();
    let status = stdout(&p, &["status"]);
    let section = &status[status.find("\nanswer of").expect("answers") + 1..];
    let whole: String = lines.join("\n");
    let expected = format!(
        "answer of `short` (attempt 1, claude):
  Done: added the parser and its tests.

answer of `long` (attempt 1, talker):
  {}
  … (3 more lines, {} characters in all; the whole answer: `spectacular events {run} --phase long --type attempt.succeeded --json`)
",
        lines[..5].join("\n  "),
        whole.chars().count()
    );
    assert_eq!(section, expected, "{status}");
    // Where the rest is: the whole answer, in the event the command prints.
    let event = stdout(
        &p,
        &[
            "events",
            &run,
            "--phase",
            "long",
            "--type",
            "attempt.succeeded",
            "--json",
        ],
    );
    let event: serde_json::Value = serde_json::from_str(event.trim()).unwrap();
    assert_eq!(event["data"]["result"], whole.as_str(), "{event}");
    // The JSON status carries the excerpt too.
    let json: serde_json::Value = serde_json::from_str(&stdout(&p, &["status", "--json"])).unwrap();
    let long = json["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ph| ph["phase"] == "long")
        .unwrap();
    assert_eq!(long["answer"]["excerpt"], lines[..5].join("\n").as_str());
    assert_eq!(long["answer"]["more_lines"], 3);
}
