//! The whole `software-dev` pipeline on a real client: `spectacular run <spec.md>` in a git
//! repository, the fake model playing a scripted session per phase through the client's own
//! tools (research reads a file of the repository, plan writes three work packages, two in
//! parallel and one depending on both, each package writes its code in its worktree, review
//! judges the merged code). Two scripts that do the same work with different words, order,
//! file names and a tool call that fails once must both pass: the engine does not depend on
//! one script.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use spectacular::record::{Event, EventData};

use super::{base_url, checkout_state, program, require, spectacular_run, CANARY};
use crate::fake_llm::{FakeLlm, Scenario};
use crate::fake_pipeline::{PhaseScript, Script, Step};
use crate::runtime::{code, text, Project};
use crate::support::{git, walk};

/// What only research can know: it is in a file of the repository and nowhere in a prompt.
pub(super) const MARKER: &str = "WORDING-RULES-7c1f";

/// A file of the repository research must read.
const WORDS: &str = "# The wording rules of the greetings (WORDING-RULES-7c1f): one line,\n\
# the word, a comma, the name, an exclamation mark.\nwording() {\n  echo \"$1, $2!\"\n}\n";

/// One of the two scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Variant {
    /// The plain session.
    Plain,
    /// The same work worded and ordered differently, with other ids and file names, chatter
    /// in the answers and a tool call that fails once per phase that reads.
    Other,
}

/// The files a script's work packages write, and where the check finds them.
struct Work {
    /// `(id, title, file, content, depends_on)` in the order of `tasks.json`.
    packages: Vec<(
        &'static str,
        &'static str,
        &'static str,
        String,
        Vec<&'static str>,
    )>,
}

fn greet(farewell: &str) -> String {
    format!(
        "#!/bin/sh\n# Greets a person by name; `--bye` says goodbye instead ({farewell}).\n\
         if [ \"${{1:-}}\" = \"--bye\" ]; then\n  . \"$(dirname \"$0\")/{}\"\n  bye \"$2\"\n\
         else\n  echo \"Hello, $1!\"\nfi\n",
        farewell.trim_start_matches("src/")
    )
}

const BYE: &str = "# Sourced by src/greet.sh for `--bye`.\nbye() {\n  echo \"Goodbye, $1!\"\n}\n";

fn work(variant: Variant) -> Work {
    match variant {
        Variant::Plain => Work {
            packages: vec![
                ("wp-greet", "Greet a person by name", "src/greet.sh", greet("src/bye.sh"), vec![]),
                ("wp-bye", "Say goodbye", "src/bye.sh", BYE.to_string(), vec![]),
                (
                    "wp-docs",
                    "Document both commands",
                    "docs/greetings.md",
                    "# Greetings\n\n    sh src/greet.sh Ada        # Hello, Ada!\n    sh src/greet.sh --bye Ada  # Goodbye, Ada!\n".into(),
                    vec!["wp-greet", "wp-bye"],
                ),
            ],
        },
        // The dependent package first, other ids and file names. (No line of `=` in a file:
        // Aider's SEARCH/REPLACE blocks take it for their divider.)
        Variant::Other => Work {
            packages: vec![
                (
                    "usage.docs",
                    "Usage notes for both commands",
                    "docs/usage.md",
                    "## Usage\n\nGreet: `sh src/greet.sh Ada` prints `Hello, Ada!`.\nLeave: `sh src/greet.sh --bye Ada` prints `Goodbye, Ada!`.\n".into(),
                    vec!["hello", "farewell_2"],
                ),
                ("hello", "Hello by name", "src/greet.sh", greet("src/farewell.sh"), vec![]),
                ("farewell_2", "Farewell", "src/farewell.sh", BYE.to_string(), vec![]),
            ],
        },
    }
}

fn tasks_json(work: &Work) -> String {
    let refs = |i: usize| match i {
        0 => vec!["FR-001", "US1", "SC-001"],
        1 => vec!["FR-002", "US2", "SC-001"],
        _ => vec!["FR-003", "SC-002"],
    };
    let packages: Vec<serde_json::Value> = work
        .packages
        .iter()
        .map(|(id, title, file, _, depends)| {
            // Which requirement a package delivers follows what it writes.
            let which = if file.starts_with("docs/") {
                2
            } else if file.ends_with("greet.sh") {
                0
            } else {
                1
            };
            serde_json::json!({
                "id": id,
                "title": title,
                "description": format!("Write {file}."),
                "depends_on": depends,
                "owned_files": [file],
                "requirement_refs": refs(which),
                "acceptance": [format!("{file} is written as the spec asks")],
                "estimate": "xs"
            })
        })
        .collect();
    serde_json::to_string_pretty(&packages).unwrap()
}

fn verdicts_json(work: &Work) -> String {
    let verdicts: Vec<serde_json::Value> = work
        .packages
        .iter()
        .map(|(id, _, file, _, _)| {
            serde_json::json!({
                "criterion": format!("{id}/1"),
                "verdict": "pass",
                "evidence": [{"kind": "file", "ref": file, "detail": "read in the merged code"}],
                "reason": "the file does what the spec asks"
            })
        })
        .collect();
    serde_json::to_string_pretty(&verdicts).unwrap()
}

/// The sessions of `variant`, implementers first (their prompts quote the plan), then review
/// (it quotes the plan too), plan (it quotes the research) and research.
pub(super) fn script(variant: Variant) -> Script {
    let work = work(variant);
    let other = variant == Variant::Other;
    let chatter = |s: &str| {
        if other {
            format!("Okay! Let me summarise what happened.\n\n{s}\n\nAnything else I can help with? (No further action needed.)")
        } else {
            s.to_string()
        }
    };
    let missing = |path: &str| Step::ReadMissing { path: path.into() };
    let mut phases = Vec::new();
    for (i, (id, _, file, content, _)) in work.packages.iter().enumerate() {
        let mut steps = Vec::new();
        if other && i == 1 {
            // It looks before writing: the file is not there yet.
            steps.push(missing(file));
        }
        steps.push(Step::write(file, content));
        phases.push(PhaseScript::new(
            &format!("Implement work package {id}:"),
            steps,
            &chatter(&format!("I wrote {file}.")),
        ));
    }
    let (verdict_check, verdict_expect) = if other {
        ("src/farewell.sh", "Goodbye")
    } else {
        ("src/greet.sh", "Hello, $1!")
    };
    let mut review = Vec::new();
    if other {
        review.push(missing("CHANGELOG.md"));
    }
    review.push(Step::read(verdict_check, verdict_expect));
    review.push(Step::write(
        ".spectacular/out/verdicts.json",
        &verdicts_json(&work),
    ));
    phases.push(PhaseScript::new(
        "Review the merged change",
        review,
        &chatter("Every criterion passes."),
    ));
    let plan_md = if other {
        "Plan:\n\nHello and farewell are independent files; the usage notes come last and need both.\n"
    } else {
        "# Plan\n\nThe greeting and the farewell are written in parallel; the documentation waits for both.\n"
    };
    let mut plan = vec![
        Step::write(".spectacular/out/plan.md", plan_md),
        Step::write(".spectacular/out/tasks.json", &tasks_json(&work)),
    ];
    if other {
        plan.reverse();
    }
    phases.push(PhaseScript::new(
        "You are the planner",
        plan,
        &chatter("The plan has three work packages."),
    ));
    let research_md = format!(
        "# Research\n\n- The wording rules live in src/words.sh ({}); greet and bye follow them.\n",
        if other { "read it" } else { "seen" }
    );
    let mut research = Vec::new();
    if other {
        research.push(missing("src/wording.sh"));
    }
    research.push(Step::read("src/words.sh", MARKER));
    let mut writes = vec![
        Step::write(".spectacular/out/research.md", &research_md),
        Step::write(
            ".spectacular/out/context.md",
            "- src/greet.sh: the greeting\n- scripts/check.sh: the checks\n",
        ),
    ];
    if other {
        writes.reverse();
    }
    research.extend(writes);
    phases.push(PhaseScript::new(
        "You are the researcher",
        research,
        &chatter("Research written."),
    ));
    Script { phases }
}

/// The greetings example as a git repository of its own under `parent`, with `client` as its
/// only agent (planner, executor and validator), a file research must read, and analysis
/// tiers that put the spec above `simple` (so research runs).
fn greetings_project(parent: &Path, agents: &str) -> Project {
    let project = Project::new_in(parent, "");
    let root = project.path();
    std::fs::remove_file(root.join("mission.yaml")).unwrap();
    let from = crate::support::repo_root().join("examples/speckit-greetings");
    for file in walk(&from) {
        let relative = file.strip_prefix(&from).unwrap();
        let local = [
            ".spectacular/runs",
            ".spectacular/state.db",
            ".spectacular/worktrees",
            ".spectacular/agents",
        ];
        if local.iter().any(|l| relative.starts_with(l)) {
            continue;
        }
        let to = root.join(relative);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&file, &to).unwrap();
    }
    std::fs::write(root.join(".spectacular/agents.yaml"), agents).unwrap();
    let mut config = std::fs::read_to_string(root.join(".spectacular/config.yaml")).unwrap();
    config.push_str("analysis:\n  tiers: { medium: 0.01, complex: 0.9, critical: 0.95 }\n");
    std::fs::write(root.join(".spectacular/config.yaml"), config).unwrap();
    std::fs::write(root.join("src/words.sh"), WORDS).unwrap_or_else(|_| {
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/words.sh"), WORDS).unwrap();
    });
    crate::support::git_init(root);
    // Work in progress the run must leave alone.
    std::fs::write(root.join("notes.txt"), "untracked notes\n").unwrap();
    project
}

/// One pipeline run and what it left.
pub(super) struct Piped {
    pub project: Project,
    pub home: tempfile::TempDir,
    pub output: Output,
    pub events: Vec<Event>,
    pub before: String,
}

impl Piped {
    pub fn transcript(&self) -> String {
        let mut out = text(&self.output);
        for file in walk(&self.project.path().join(".spectacular/runs")) {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".log") || name.starts_with("aider.chat") {
                let log = std::fs::read_to_string(&file).unwrap_or_default();
                let tail: String = log
                    .chars()
                    .rev()
                    .take(4000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.push_str(&format!("\n--- {}\n{tail}", file.display()));
            }
        }
        out
    }

    fn succeeded(&self, phase: &str) -> Option<&spectacular::record::event::AttemptSucceeded> {
        self.events.iter().rev().find_map(|e| match &e.data {
            EventData::AttemptSucceeded(d) if d.phase == phase => Some(d),
            _ => None,
        })
    }

    fn position(&self, what: impl Fn(&EventData) -> bool) -> usize {
        self.events
            .iter()
            .position(|e| what(&e.data))
            .unwrap_or_else(|| panic!("no such event\n{}", self.transcript()))
    }
}

/// Run `spectacular run specs/001-greetings/spec.md` in a new project under `parent` with the
/// agents of `agents` against `server`.
pub(super) fn run_pipeline(parent: &Path, agents: &str) -> Piped {
    let project = greetings_project(parent, agents);
    let before = checkout_state(project.path());
    let home = tempfile::tempdir().unwrap();
    let output = spectacular_run(
        &project,
        home.path(),
        &["run", "specs/001-greetings/spec.md"],
    );
    let events = project.events();
    Piped {
        project,
        home,
        output,
        events,
        before,
    }
}

/// `software-dev` end to end on `client` with the script `variant`: the run succeeds, every
/// phase worked where its work is, the integration branch holds exactly the packages' files
/// and passed the checks, every agent phase recorded its usage and cost, the key is nowhere
/// and the user's checkout is byte-identical.
pub(super) fn runs_software_dev(client: &str, parent: &Path, variant: Variant) {
    require(client);
    let program = program(client).expect("the client is installed");
    let server = FakeLlm::with_scenario(Scenario::Pipeline(Arc::new(script(variant))));
    let mut agents = format!(
        "agents:\n  {client}:\n    adapter: {client}\n    binary: {}\n    base_url: {}\n    roles: [planner, executor, validator]\n",
        program.display(),
        base_url(client, &server)
    );
    // `software-dev` has a budget: each agent names a model of the catalogue to reserve at
    // (Claude Code's role models are the catalogue's Claude models).
    let model = match client {
        "claude-code" => None,
        "gemini" => Some("gemini-pro"),
        _ => Some("gpt"),
    };
    if let Some(model) = model {
        agents.push_str(&format!("    model: {model}\n"));
    }
    let piped = run_pipeline(parent, &agents);
    assert_pipeline(&piped, variant, Some(client));
    // Through the client's own tools: OpenCode writes with `apply_patch`, which it offers GPT
    // models; Aider has no tools, it edits in its answers' edit format.
    let called = server.tools_called();
    let (read, write): (&[&str], &[&str]) = match client {
        "claude-code" => (&["Read"], &["Write"]),
        "gemini" => (&["read_file"], &["write_file"]),
        "opencode" => (&["read"], &["apply_patch"]),
        // Codex offers a `base_url` provider's model its shell and no `apply_patch`.
        "codex" => (
            &["shell", "shell_command", "exec_command"],
            &["apply_patch", "shell", "shell_command", "exec_command"],
        ),
        _ => (&[], &[]),
    };
    for wanted in [read, write] {
        assert!(
            wanted.is_empty() || called.iter().any(|c| wanted.contains(&c.as_str())),
            "none of {wanted:?} was called: {called:?}"
        );
    }
    if client == "aider" {
        assert!(called.is_empty(), "{called:?}");
    }
}

/// What every pipeline run must show (see [`runs_software_dev`]); `client` prices the usage
/// for the clients whose models the catalogue prices.
pub(super) fn assert_pipeline(piped: &Piped, variant: Variant, client: Option<&str>) {
    let transcript = || piped.transcript();
    assert_eq!(code(&piped.output), 0, "{}", transcript());
    let work = work(variant);
    let ids: Vec<&str> = work.packages.iter().map(|p| p.0).collect();
    let mut agent_phases = vec!["research".to_string(), "plan".to_string()];
    agent_phases.extend(ids.iter().map(|id| format!("implement[{id}]")));
    agent_phases.push("review".to_string());
    for phase in agent_phases
        .iter()
        .map(String::as_str)
        .chain(["merge", "check"])
    {
        assert!(
            piped.succeeded(phase).is_some(),
            "`{phase}` did not succeed\n{}",
            transcript()
        );
    }
    // The plan: two packages in parallel, the third after both.
    let dependent = work.packages.iter().find(|p| !p.4.is_empty()).unwrap().0;
    let started = piped.position(
        |d| matches!(d, EventData::AttemptStarted(s) if s.phase == format!("implement[{dependent}]")),
    );
    for (id, ..) in work.packages.iter().filter(|p| p.4.is_empty()) {
        let done = piped.position(
            |d| matches!(d, EventData::AttemptSucceeded(s) if s.phase == format!("implement[{id}]")),
        );
        assert!(
            done < started,
            "`{dependent}` started before `{id}` was done"
        );
    }
    assert_integration(piped, &work);
    for phase in &agent_phases {
        assert_usage(piped, phase, client);
    }
    assert_no_canary(piped);
    assert_eq!(
        checkout_state(piped.project.path()),
        piped.before,
        "the checkout changed\n{}",
        transcript()
    );
}

/// The run's integration branch holds the base commit's files and each package's file, as
/// written, and nothing of the clients or the engine's outputs; the check ran on it.
fn assert_integration(piped: &Piped, work: &Work) {
    let root = piped.project.path();
    let branch = spectacular::git::integration_branch(&piped.project.run_id());
    let files = git(root, &["ls-tree", "-r", "--name-only", &branch]);
    let base = git(root, &["ls-tree", "-r", "--name-only", "main"]);
    let mut expected: Vec<String> = base.lines().map(str::to_string).collect();
    expected.extend(work.packages.iter().map(|p| p.2.to_string()));
    expected.sort();
    let mut got: Vec<String> = files.lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(
        got,
        expected,
        "the integration branch's files\n{}",
        piped.transcript()
    );
    for (_, _, file, content, _) in &work.packages {
        let shown = git(root, &["show", &format!("{branch}:{file}")]);
        assert_eq!(
            shown.trim_end(),
            content.trim_end(),
            "{file} on the integration branch"
        );
    }
    // The review judged the merged code, in the integration worktree.
    let review = piped.succeeded("review").unwrap();
    let head = review
        .integration_head
        .as_deref()
        .expect("the review ran on the integration branch");
    assert_eq!(head, git(root, &["rev-parse", &branch]).trim());
    let check = piped.succeeded("check").unwrap();
    let log = piped
        .project
        .store()
        .run_dir(&piped.project.run_id())
        .join(format!("attempts/check/{}/stdout.log", check.attempt));
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        log.contains("`sh scripts/check.sh`: passed (0 errors"),
        "{log}"
    );
}

/// An agent phase recorded its agent's answer, its tokens (whole requests of the fake
/// server) and a cost, the catalogue's price of its tokens where the catalogue prices the
/// client's model.
fn assert_usage(piped: &Piped, phase: &str, client: Option<&str>) {
    let done = piped.succeeded(phase).unwrap();
    assert!(
        done.result.as_deref().is_some_and(|r| !r.trim().is_empty()),
        "`{phase}` recorded no answer: {done:?}"
    );
    let usage = done
        .usage
        .as_deref()
        .unwrap_or_else(|| panic!("`{phase}` recorded no usage"));
    let per = super::tokens_per_request(client.unwrap_or("http"));
    assert!(usage.output_tokens > 0, "`{phase}`: {usage:?}");
    assert_eq!(
        usage.output_tokens % per[1],
        0,
        "`{phase}`: not whole requests: {usage:?}"
    );
    let requests = usage.output_tokens / per[1];
    assert_eq!(
        [usage.input_tokens, usage.cache_read_tokens],
        [per[0] * requests, per[2] * requests],
        "`{phase}`: {usage:?}"
    );
    let cost = usage
        .cost_usd
        .unwrap_or_else(|| panic!("`{phase}` has no cost: {usage:?}"));
    use spectacular::record::usage::CostSource;
    match usage.cost_source {
        // The client's own figure (Claude Code, Aider, OpenCode).
        Some(CostSource::Reported) => assert!(cost >= 0.0, "`{phase}`: {usage:?}"),
        // The engine's: the catalogue's price of the recorded model.
        Some(CostSource::Priced) => {
            let dot = piped.project.path().join(".spectacular");
            let (catalog, _) = spectacular::config::models::load(&dot, None);
            let model = usage
                .model
                .as_deref()
                .expect("a priced usage names its model");
            let price = &catalog.get(model).expect("a catalogue model").price;
            let expected = price.cost(
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
            );
            assert!(
                (cost - expected).abs() < 1e-9,
                "`{phase}`: cost {cost}, expected {expected}: {usage:?}"
            );
        }
        other => panic!("`{phase}`: the cost is {other:?}, not measured: {usage:?}"),
    }
}

fn assert_no_canary(piped: &Piped) {
    for dir in [piped.project.path(), piped.home.path()] {
        for file in walk(dir) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "the key is in {}",
                file.display()
            );
        }
    }
}

/// `software-dev` end to end on an HTTP model (the `openai-chat` adapter) with the script
/// `variant`: a model without tools answers every file whole, and the engine writes the
/// phase's outputs and a work package's code from its answer.
pub(super) fn runs_software_dev_on_http(variant: Variant) {
    let server = FakeLlm::with_scenario(Scenario::Pipeline(Arc::new(script(variant))));
    let agents = format!(
        "agents:\n  http-model:\n    adapter: openai-chat\n    base_url: {}\n    model: gpt\n    roles: [planner, executor, validator]\n",
        server.openai_base()
    );
    let piped = run_pipeline(&std::env::temp_dir(), &agents);
    assert_pipeline(&piped, variant, None);
    assert!(server.tools_called().is_empty());
}
