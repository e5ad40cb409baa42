//! From a spec to an approved plan in the built-in `software-dev` mission: the clarification
//! that stops an ambiguous spec with numbered questions and writes the answers into it, the
//! research phase that complex specs get before planning, and the plan summary that the
//! approval of the plan shows.

use std::path::{Path, PathBuf};

use spectacular::record::event::{ApprovalRequested, EventData, SkipReason};
use spectacular::record::{Event, Store};

use crate::support::*;

const SPEC: &str = "specs/001-greetings/spec.md";

/// A copy of `examples/speckit-greetings`: a project and git repository of its own.
fn greetings() -> tempfile::TempDir {
    crate::support::greetings()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn last_run(root: &Path) -> (String, PathBuf, Vec<Event>) {
    let store = Store::locate(root, None);
    let run = store.run_ids().expect("runs").pop().expect("a run");
    let events = store.read_events(&run).expect("events");
    (run.clone(), store.run_dir(&run), events)
}

/// The questions of the last clarification request of `events`.
fn asked(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .rev()
        .find_map(|e| match &e.data {
            EventData::ApprovalRequested(r) if r.phase == "clarify" => Some(r.questions.clone()),
            _ => None,
        })
        .expect("the clarify phase asked")
}

/// The greetings spec with FR-003 left open and a second marker in the edge cases.
fn ambiguous(root: &Path, second: bool) {
    let path = root.join(SPEC);
    let mut spec = read(&path).replace(
        "- **FR-003**: The README MUST show one example of each command.",
        "- **FR-003**: The README MUST show [NEEDS CLARIFICATION: which examples - one per command, or a tutorial?]",
    );
    if second {
        spec = spec.replace(
            "- A name with spaces is printed as given, quoted by the shell.",
            "- A name with spaces is printed [NEEDS CLARIFICATION: quoted, or as separate words?]",
        );
    }
    write(&path, &spec);
}

#[test]
fn an_ambiguous_spec_waits_with_numbered_questions_and_goes_on_after_answer() {
    let dir = greetings();
    let root = dir.path();
    ambiguous(root, false);
    let out = run_cli(root, &["run", SPEC], &[]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    let (run, run_dir, events) = last_run(root);
    let questions = asked(&events);
    assert_eq!(questions.len(), 1, "{questions:?}");
    assert!(
        questions[0].starts_with("FR-003: ") && questions[0].contains("examples - one per command"),
        "{questions:?}"
    );
    // The questions are numbered where the run stopped, with what to do next.
    assert!(
        out.stderr.contains(&format!("1. {}", questions[0])),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("spectacular answer {run} <number>")),
        "{}",
        out.stderr
    );
    let status = run_cli(root, &["status", &run], &[]);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("clarify ") && l.contains("waiting for answers: ")),
        "{}",
        status.stdout
    );
    // Nothing was planned yet, and the spec is untouched.
    assert!(!events.iter().any(|e| e.data.phase() == Some("plan")));
    assert!(read(&root.join(SPEC)).contains("[NEEDS CLARIFICATION:"));

    // `answer` alone lists the questions.
    let listed = run_cli(root, &["answer", &run], &[]);
    assert_eq!(listed.code, 0, "{}", listed.transcript());
    assert!(
        listed
            .stdout
            .contains(&format!("1. [open] {}", questions[0])),
        "{}",
        listed.stdout
    );
    // A question the clarification did not ask, and an empty answer, are refused.
    let wrong = run_cli(root, &["answer", &run, "2", "x"], &[]);
    assert_eq!(wrong.code, 2, "{}", wrong.transcript());
    assert!(
        wrong.stderr.contains("there is no question 2"),
        "{}",
        wrong.stderr
    );
    let empty = run_cli(root, &["answer", &run, "1", " \t"], &[]);
    assert_eq!(empty.code, 2, "{}", empty.transcript());

    // The answer is recorded as an event, one line, without control characters.
    let answer = run_cli(
        root,
        &[
            "answer",
            &run,
            "1",
            "One example of each\ncommand\u{1b}[31m",
        ],
        &[],
    );
    assert_eq!(answer.code, 0, "{}", answer.transcript());
    assert!(
        answer.stdout.contains(&format!("spectacular resume {run}")),
        "{}",
        answer.stdout
    );
    let (_, _, events) = last_run(root);
    let recorded: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::ClarificationAnswered(a) => Some((a.question, a.answer.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        recorded,
        [(1, "One example of each command [31m".to_string())]
    );

    let resumed = run_cli(root, &["resume", &run], &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.transcript());
    // The answer is in the spec, the way Spec Kit's clarify writes it, and the marker is gone.
    let spec = read(&root.join(SPEC));
    let (_, _, events) = last_run(root);
    let answered_on = events
        .iter()
        .find(|e| matches!(e.data, EventData::ClarificationAnswered(_)))
        .map(|e| e.ts[..10].to_string())
        .expect("an answer");
    let section = format!(
        "## Clarifications\n\n### Session {answered_on}\n\n- Q: {} → A: One example of each command [31m\n\n## User Scenarios & Testing",
        questions[0]
    );
    assert!(spec.contains(&section), "{spec}");
    assert!(
        spec.contains("- **FR-003**: The README MUST show One example of each command [31m\n"),
        "{spec}"
    );
    assert!(!spec.contains("NEEDS CLARIFICATION"), "{spec}");
    assert!(!spec.contains('\u{1b}'), "{spec}");
    // The analysis was redone: no question left, and the plan saw that analysis.
    let analysis: serde_json::Value =
        serde_json::from_str(&read(&run_dir.join("artifacts/clarify/analysis.json")))
            .expect("JSON");
    assert_eq!(analysis["questions"], serde_json::json!([]), "{analysis}");
    let first: serde_json::Value =
        serde_json::from_str(&read(&run_dir.join("artifacts/analyse/analysis.json")))
            .expect("JSON");
    assert_eq!(first["questions"].as_array().map(Vec::len), Some(1));
    let prompt = read(&run_dir.join("attempts/plan/1/prompt.md"));
    assert!(prompt.contains("One example of each command"), "{prompt}");
    crate::replay::assert_the_log_replays(&plan_of(&events), &events);
}

/// The plan of the built-in mission the run pinned.
fn plan_of(events: &[Event]) -> std::sync::Arc<spectacular::plan::Plan> {
    let EventData::RunStarted(started) = &events[0].data else {
        panic!("the first event starts the run")
    };
    assert_eq!(started.mission, "software-dev");
    let validated = validate_file("missions/software-dev/mission.yaml");
    std::sync::Arc::new(spectacular::plan::plan(
        validated.mission.expect("the mission is valid"),
    ))
}

#[test]
fn answers_come_from_a_file_and_an_open_question_keeps_the_run_waiting() {
    let dir = greetings();
    let root = dir.path();
    ambiguous(root, true);
    let out = run_cli(root, &["run", SPEC], &[]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    let (run, _, events) = last_run(root);
    let questions = asked(&events);
    assert_eq!(questions.len(), 2, "{questions:?}");
    // In reading order: the edge case first, then FR-003.
    assert!(questions[0].contains("separate words"), "{questions:?}");
    assert!(questions[1].starts_with("FR-003: "), "{questions:?}");
    // One answer of two: the run still waits, and says which question is open.
    let one = run_cli(
        root,
        &["answer", &run, "1", "quoted, exactly as given"],
        &[],
    );
    assert_eq!(one.code, 0, "{}", one.transcript());
    assert!(
        one.stdout.contains("still open: question 2"),
        "{}",
        one.stdout
    );
    let again = run_cli(root, &["resume", &run], &[]);
    assert_eq!(again.code, 3, "{}", again.transcript());
    assert!(read(&root.join(SPEC)).contains("[NEEDS CLARIFICATION:"));
    // The rest from a file, then on.
    write(&root.join("answers.yaml"), "2: one example per command\n");
    let rest = run_cli(
        root,
        &["answer", &run, "--file", "answers.yaml", "--resume"],
        &[],
    );
    assert_eq!(rest.code, 0, "{}", rest.transcript());
    let spec = read(&root.join(SPEC));
    assert!(
        spec.contains(&format!(
            "- Q: {} → A: quoted, exactly as given\n",
            questions[0]
        )),
        "{spec}"
    );
    assert!(
        spec.contains(&format!(
            "- Q: {} → A: one example per command\n",
            questions[1]
        )),
        "{spec}"
    );
    assert!(
        spec.contains("- A name with spaces is printed quoted, exactly as given\n"),
        "{spec}"
    );
    assert!(
        spec.contains("- **FR-003**: The README MUST show one example per command\n"),
        "{spec}"
    );
    assert!(!spec.contains("NEEDS CLARIFICATION"), "{spec}");
    // A list of answers in question order is a file too; bad files are refused.
    write(&root.join("bad.yaml"), "first: yes\n");
    let bad = run_cli(root, &["answer", &run, "--file", "bad.yaml"], &[]);
    assert_eq!(bad.code, 2, "{}", bad.transcript());
}

#[test]
fn a_clear_spec_is_not_stopped_and_its_research_is_skipped_when_simple() {
    let dir = greetings();
    let root = dir.path();
    let out = run_cli(root, &["run", SPEC], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (_, run_dir, events) = last_run(root);
    assert!(!events
        .iter()
        .any(|e| matches!(&e.data, EventData::ApprovalRequested(_))));
    assert!(events.iter().any(|e| matches!(
        &e.data,
        EventData::PhaseSkipped(s) if s.phase == "research" && s.reason == SkipReason::Condition
    )));
    let prompt = read(&run_dir.join("attempts/plan/1/prompt.md"));
    assert!(!prompt.contains("What the research found"), "{prompt}");
    assert!(!read(&root.join(SPEC)).contains("## Clarifications"));
}

/// An agent in front of the example's scribe: does the research phase, hands the others on.
const RESEARCHER: &str = r#"#!/bin/sh
set -eu
if [ "$SPECTACULAR_PHASE" != research ]; then
  exec sh "$(dirname "$0")/scribe.sh" "$@"
fi
out="$SPECTACULAR_OUTPUT_DIR"
grep -q "search it for the spec's terms" "$1"
test -f scripts/check.sh
printf '# Research\n\n`greet` lives in src/greet.sh; the farewell reuses its wording.\n' > "$out/research.md"
printf -- '- src/greet.sh: the greeting (read and change)\n' > "$out/context.md"
"#;

#[test]
fn a_spec_above_simple_gets_research_and_the_planner_reads_it() {
    let dir = greetings();
    let root = dir.path();
    // The same spec is `medium` once the project lowers the tier threshold.
    let config = root.join(".spectacular/config.yaml");
    write(
        &config,
        &format!(
            "{}analysis:\n  tiers: {{ medium: 0.05, complex: 0.6, critical: 0.8 }}\n",
            read(&config)
        ),
    );
    write(&root.join(".spectacular/agents/researcher.sh"), RESEARCHER);
    let agents = root.join(".spectacular/agents.yaml");
    write(
        &agents,
        &read(&agents).replace(
            "agents:\n",
            "agents:\n  researcher:\n    adapter: command\n    argv: [sh, \"{{ project_dir }}/.spectacular/agents/researcher.sh\", \"{{ prompt_file }}\"]\n    roles: [planner]\n",
        ),
    );
    let out = run_cli(root, &["run", SPEC], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (_, run_dir, events) = last_run(root);
    assert!(events.iter().any(|e| matches!(
        &e.data,
        EventData::PhaseSucceeded(s) if s.phase == "research"
    )));
    assert!(read(&run_dir.join("artifacts/research/research.md")).contains("src/greet.sh"));
    let prompt = read(&run_dir.join("attempts/plan/1/prompt.md"));
    assert!(
        prompt.contains("`greet` lives in src/greet.sh; the farewell reuses its wording."),
        "{prompt}"
    );
    assert!(
        prompt.contains("- src/greet.sh: the greeting (read and change)"),
        "{prompt}"
    );
}

#[test]
fn the_plan_gate_shows_the_plan_summary_and_plan_prints_the_same() {
    let dir = greetings();
    let root = dir.path();
    // The stand-in agent is given a catalogue model, so that its plan is priced (an agent with
    // no model and no reported cost is `unpriced`).
    let (model, input, output) = first_standard_model();
    let agents = read(&root.join(".spectacular/agents.yaml")).replace(
        "    roles: [planner, executor, validator]",
        &format!("    roles: [planner, executor, validator]\n    model: {model}"),
    );
    std::fs::write(root.join(".spectacular/agents.yaml"), agents).expect("write agents.yaml");
    let out = run_cli(root, &["run", SPEC, "--input", "approve_plan=true"], &[]);
    assert_eq!(out.code, 3, "{}", out.transcript());
    let (_, _, events) = last_run(root);
    let request: &ApprovalRequested = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::ApprovalRequested(r) if r.phase == "approve_plan" => Some(r),
            _ => None,
        })
        .expect("the plan gate asked");
    let plan = request.plan.as_ref().expect("the request carries the plan");
    assert_eq!(plan.phase, "plan");
    // The example's planner writes three packages; wp-bye waits for wp-greet; no two share
    // a file, so each is its own lane; the spec's five requirements and criteria are covered.
    assert_eq!(plan.work_packages, ["wp-greet", "wp-bye", "wp-docs"]);
    assert_eq!(plan.waves, 2);
    assert_eq!(plan.lane_count, 3);
    assert!(plan.lanes.is_empty(), "{:?}", plan.lanes);
    assert_eq!((plan.covered, plan.to_cover), (5, 5));
    assert!(plan.uncovered.is_empty());
    // The estimate: three `xs` packages priced with the agent's model, the catalogue's first
    // standard one, read here from the catalogue itself.
    assert_eq!(plan.model.as_deref(), Some(model.as_str()));
    let (xs_in, xs_out) = spectacular::tasks::Estimate::Xs.tokens();
    let expected = 3.0 * (xs_in as f64 * input + xs_out as f64 * output) / 1_000_000.0;
    let usd = plan.estimate_usd.expect("an estimate");
    assert!(
        (usd - (expected * 100.0).round() / 100.0).abs() < 1e-9,
        "{usd} != {expected}"
    );
    // The run's output shows it where it stops, and `plan --json` prints the same figures.
    assert!(
        out.stderr
            .contains("plan: 3 work packages in 2 waves, 3 lanes; coverage 5 of 5; estimated $"),
        "{}",
        out.stderr
    );
    let json = run_cli(root, &["plan", "last", "--json"], &[]);
    assert_eq!(json.code, 0, "{}", json.transcript());
    let printed: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(printed["estimate"]["model"], model.as_str());
    assert_eq!(printed["estimate"]["usd"].as_f64(), Some(usd));
    assert_eq!(printed["plan"]["lanes"].as_array().map(Vec::len), Some(3));
}

/// The first model of the built-in catalogue whose tier is `standard`: name, input and output
/// dollars per million tokens.
fn first_standard_model() -> (String, f64, f64) {
    let text = read(&repo_root().join("src/config/models.yaml"));
    let doc: serde_json::Value = serde_yaml_ng_free_parse(&text);
    let models = doc["models"].as_object().expect("models");
    for (name, model) in models {
        if model["tier"] == "standard" {
            return (
                name.clone(),
                model["price"]["input"].as_f64().expect("input price"),
                model["price"]["output"].as_f64().expect("output price"),
            );
        }
    }
    panic!("no standard model in the catalogue")
}

/// YAML to JSON through the crate's own positioned parser.
fn serde_yaml_ng_free_parse(text: &str) -> serde_json::Value {
    use spectacular::load::yaml::{self, Node, Value};
    fn json(node: &Node) -> serde_json::Value {
        match &node.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => (*f).into(),
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => items.iter().map(json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| (e.key.clone(), json(&e.value)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
    json(&yaml::parse(text, "models.yaml").root.expect("a document"))
}

#[test]
fn interactive_asks_on_the_terminal_and_goes_on() {
    // A terminal for the run: util-linux `script` gives it a pseudo-terminal and passes what
    // it reads on its stdin on to it.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` to give the run a terminal");
        return;
    }
    let dir = greetings();
    let root = dir.path();
    ambiguous(root, false);
    let command = format!("{} run --interactive {SPEC}", bin().display());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(root)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("XDG_CONFIG_HOME")
        .env("SPECTACULAR_CONFIG_DIR", root.join(".user-config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"one example of each command\n")
            .expect("write the answer");
    }
    let out = child.wait_with_output().expect("script ends");
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{transcript}");
    let spec = read(&root.join(SPEC));
    assert!(
        spec.contains("→ A: one example of each command\n"),
        "{spec}\n{transcript}"
    );
    let (_, _, events) = last_run(root);
    assert!(events
        .iter()
        .any(|e| matches!(e.data, EventData::RunSucceeded(_))));
}

const WHILE_RUNNING: &str = r#"
mission: clarified
inputs:
  spec: { type: file, required: true }
phases:
  clarify:
    uses: builtin/clarify
    with: { spec: "{{ inputs.spec }}" }
    outputs:
      analysis: { path: analysis.json }
  other:
    shell: "while [ ! -f release ]; do sleep 0.05; done"
    workspace: repo
    timeout: 60s
"#;

/// Kills the engine a test started if the test fails before it ends.
struct Engine(std::process::Child);

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn answers_reach_a_running_engine_through_its_inbox() {
    let p = crate::runtime::Project::new(WHILE_RUNNING);
    let root = p.path();
    write(
        &root.join("spec.md"),
        "# Export\n\n## Requirements\n\n- **FR-001**: Export MUST write [NEEDS CLARIFICATION: CSV or JSON?]\n\n## Acceptance Criteria\n\n- [ ] Exporting writes a file (FR-001).\n",
    );
    // `other` keeps the engine running while `clarify` waits for its answer.
    let mut engine = Engine(p.spawn(&["run", "mission.yaml", "--input", "spec=spec.md"]));
    p.wait_for("the questions", |events| {
        events
            .iter()
            .any(|e| matches!(&e.data, EventData::ApprovalRequested(r) if r.phase == "clarify"))
    });
    let questions = asked(&p.events());
    assert!(questions[0].starts_with("FR-001: "), "{questions:?}");
    for n in 1..=questions.len() {
        let text = if n == 1 {
            "CSV, one row per record"
        } else {
            "a test reads it back"
        };
        let answer = run_cli(
            root,
            &["answer", "last", &n.to_string(), text],
            &[("SPECTACULAR_ACTOR", "user:ada")],
        );
        assert_eq!(answer.code, 0, "{}", answer.transcript());
        assert!(
            answer
                .stdout
                .contains("the running engine continues the run"),
            "{}",
            answer.stdout
        );
    }
    // The engine records the answer, runs `clarify` with it, and ends once `other` does.
    p.wait_for("clarify to run with the answer", |events| {
        events
            .iter()
            .any(|e| matches!(&e.data, EventData::PhaseSucceeded(s) if s.phase == "clarify"))
    });
    let events = p.events();
    let answered: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.data, EventData::ClarificationAnswered(_)))
        .collect();
    assert_eq!(answered.len(), questions.len());
    assert!(answered.iter().all(|e| e.actor == "user:ada"));
    write(&root.join("release"), "");
    let status = engine.0.wait().expect("the engine ends");
    assert_eq!(status.code(), Some(0));
    let spec = read(&root.join("spec.md"));
    assert!(
        spec.contains("- **FR-001**: Export MUST write CSV, one row per record\n"),
        "{spec}"
    );
    assert!(spec.contains("→ A: CSV, one row per record\n"), "{spec}");
}

const WITH_CLARIFIER: &str = r#"
mission: clarifier
inputs:
  spec: { type: file, required: true }
phases:
  clarifier:
    role: analyser
    outputs:
      questions: { path: questions.md }
  clarify:
    needs: [clarifier]
    uses: builtin/clarify
    with: { spec: "{{ inputs.spec }}", questions: "{{ outputs.clarifier.questions }}" }
    outputs:
      analysis: { path: analysis.json }
"#;

#[test]
fn a_clarifier_agent_proposes_questions_that_are_asked_with_the_specs_own() {
    let p = crate::runtime::Project::new(WITH_CLARIFIER);
    let root = p.path();
    write(
        &root.join(".spectacular/agents.yaml"),
        "agents:\n  asker:\n    adapter: command\n    argv: [sh, -c, \"printf -- '# Questions\\\\n\\\\n- Which file format?\\\\n- Who may export?\\\\n' > \\\"$SPECTACULAR_OUTPUT_DIR/questions.md\\\"\"]\n    roles: [analyser]\n",
    );
    write(
        &root.join("spec.md"),
        "# Export\n\n## Requirements\n\n- **FR-001**: Export MUST keep [NEEDS CLARIFICATION: how many days?]\n\n## Acceptance Criteria\n\n- [ ] Exporting keeps a copy (FR-001).\n",
    );
    let out = run_cli(
        root,
        &["run", "mission.yaml", "--input", "spec=spec.md"],
        &[],
    );
    assert_eq!(out.code, 3, "{}", out.transcript());
    let store = Store::locate(root, None);
    let run = store.run_ids().expect("runs").pop().expect("a run");
    let questions = asked(&store.read_events(&run).expect("events"));
    assert_eq!(questions.len(), 3, "{questions:?}");
    assert!(questions[0].starts_with("FR-001: "), "{questions:?}");
    assert_eq!(questions[1..], ["Which file format?", "Who may export?"]);
    write(
        &root.join("answers.yaml"),
        "- thirty\n- CSV\n- administrators\n",
    );
    let answered = run_cli(
        root,
        &["answer", &run, "--file", "answers.yaml", "--resume"],
        &[],
    );
    assert_eq!(answered.code, 0, "{}", answered.transcript());
    let spec = read(&root.join("spec.md"));
    assert!(
        spec.contains("- Q: Which file format? → A: CSV\n"),
        "{spec}"
    );
    assert!(
        spec.contains("- Q: Who may export? → A: administrators\n"),
        "{spec}"
    );
    assert!(spec.contains("Export MUST keep thirty\n"), "{spec}");
}
