//! The real-client conformance tier: the published coding-agent CLIs (installed by
//! `tests/real-clients/run` at the versions in `tests/real-clients/versions`) run through
//! `spectacular run` with the built-in agent definitions plus only a `base_url`, against the
//! loopback fake model server. Ignored by `cargo test`: the script runs them with `REAL_CLIENTS`
//! naming each client's program (`claude-code=/…/claude codex=/…/codex …`), and passes the
//! exact names of the selected clients' tests only. A test of a client that `REAL_CLIENTS` does
//! not name fails: a client left out is never counted as passed (the script lists it as not
//! run, and libtest counts its tests as filtered out).

mod pipeline;

use std::path::PathBuf;
use std::process::Output;

use spectacular::record::{Event, EventData};

use crate::fake_llm::{FakeLlm, Scenario};
use crate::runtime::{code, count, text, Project};
use crate::support::walk;

/// The API key every client is given; it must appear nowhere but in the requests.
const CANARY: &str = "sk-canary-real-clients-5d1f0e9a7b3c4e21";

/// The program of `client`, from `REAL_CLIENTS`; `None` when the tier does not name it.
fn program(client: &str) -> Option<PathBuf> {
    let all = std::env::var("REAL_CLIENTS").ok()?;
    all.split_whitespace()
        .filter_map(|entry| entry.split_once('='))
        .find(|(name, _)| *name == client)
        .map(|(_, path)| PathBuf::from(path))
}

/// The base URL a client's `base_url` takes.
fn base_url(client: &str, server: &FakeLlm) -> String {
    match client {
        "claude-code" => server.anthropic_base(),
        "gemini" => server.root(),
        _ => server.openai_base(),
    }
}

/// One `spectacular run` of a one-phase mission on a real client.
struct Ran {
    project: Project,
    home: PathBuf,
    output: Output,
    events: Vec<Event>,
}

impl Ran {
    fn result(&self) -> &EventData {
        self.events
            .iter()
            .rev()
            .map(|e| &e.data)
            .find(|d| {
                matches!(
                    d,
                    EventData::AttemptSucceeded(_) | EventData::AttemptFailed(_)
                )
            })
            .expect("an attempt ended")
    }

    fn transcript(&self) -> String {
        let mut out = text(&self.output);
        for event in &self.events {
            if let EventData::AttemptStarted(started) = &event.data {
                out.push_str(&format!("\nargv: {:?}\n", started.argv));
            }
        }
        for file in walk(&self.project.path().join(".spectacular/runs")) {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".log") {
                out.push_str(&format!(
                    "\n--- {}\n{}",
                    file.display(),
                    std::fs::read_to_string(&file).unwrap_or_default()
                ));
            }
        }
        out
    }

    /// With `REAL_CLIENTS_CAPTURE` set, keep the first attempt's output as a transcript
    /// (`<client>-<scenario>.stdout`, `.stderr`, `.exit`) for the parser fixtures
    /// (`tests/fixtures/agents/real/`).
    fn capture(&self, client: &str, scenario: &str) {
        let Ok(dir) = std::env::var("REAL_CLIENTS_CAPTURE") else {
            return;
        };
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let attempt = self
            .project
            .store()
            .run_dir(&self.project.run_id())
            .join("attempts/write/1");
        for stream in ["stdout", "stderr"] {
            let text =
                std::fs::read_to_string(attempt.join(format!("{stream}.log"))).unwrap_or_default();
            std::fs::write(dir.join(format!("{client}-{scenario}.{stream}")), text).unwrap();
        }
        let exit = match self.result() {
            EventData::AttemptSucceeded(s) => s.exit_code,
            EventData::AttemptFailed(f) => f.exit_code,
            _ => None,
        };
        let exit = exit.map(|c| c.to_string()).unwrap_or_default();
        std::fs::write(dir.join(format!("{client}-{scenario}.exit")), exit).unwrap();
    }

    /// The canary key appears nowhere under the project (store, captures, workspace) nor in
    /// the client's HOME.
    fn assert_no_canary(&self) {
        for dir in [self.project.path(), self.home.as_path()] {
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
}

/// Where a client's `base_url` points.
enum Target<'a> {
    Server(&'a FakeLlm),
    /// A port where nothing listens.
    Down,
}

/// The prompt of the file-writing phase.
const WRITE_PROMPT: &str = "Write the file hello.txt with the text `hello from the fake model`.\n";

/// Run `client` (and, with `fallback`, a second agent after it) on a one-phase mission.
fn run(
    client: &str,
    target: &Target<'_>,
    timeout: &str,
    fallback: Option<(&str, &FakeLlm)>,
) -> Ran {
    run_prompt(client, target, timeout, fallback, WRITE_PROMPT)
}

/// [`run`] with the phase's prompt.
fn run_prompt(
    client: &str,
    target: &Target<'_>,
    timeout: &str,
    fallback: Option<(&str, &FakeLlm)>,
    prompt: &str,
) -> Ran {
    run_configured(client, target, timeout, fallback, prompt, None)
}

/// [`run_prompt`] with the project's `.spectacular/config.yaml`.
fn run_configured(
    client: &str,
    target: &Target<'_>,
    timeout: &str,
    fallback: Option<(&str, &FakeLlm)>,
    prompt: &str,
    config: Option<&str>,
) -> Ran {
    let program = program(client).expect("the client is installed");
    let mission = format!(
        "mission: real-{client}\nphases:\n  write:\n    agent: {client}\n    workspace: repo\n    timeout: {timeout}\n    prompt: prompt.md\n"
    );
    let project = Project::new(&mission);
    std::fs::write(project.path().join("prompt.md"), prompt).unwrap();
    let mut agents = format!(
        "agents:\n  {client}:\n    adapter: {client}\n    binary: {}\n    base_url: {}\n",
        program.display(),
        match target {
            Target::Server(server) => base_url(client, server),
            Target::Down => down_url(client),
        }
    );
    if let Some((second, second_server)) = fallback {
        agents.push_str(&format!("    fallbacks: [{second}-fallback]\n"));
        agents.push_str(&format!(
            "  {second}-fallback:\n    adapter: {second}\n    binary: {}\n    base_url: {}\n",
            program_or(second).display(),
            base_url(second, second_server)
        ));
    }
    std::fs::write(project.path().join(".spectacular/agents.yaml"), agents).unwrap();
    if let Some(config) = config {
        std::fs::write(project.path().join(".spectacular/config.yaml"), config).unwrap();
    }
    let home = project.path().join(".home");
    let output = spectacular_run(&project, &home, &["run", "mission.yaml"]);
    let events = project.events();
    Ran {
        project,
        home,
        output,
        events,
    }
}

/// `spectacular <args>` in `project` as on a CI runner: a fresh `home` (no login, no
/// settings), the canary as every key.
fn spectacular_run(project: &Project, home: &std::path::Path, args: &[&str]) -> Output {
    std::fs::create_dir_all(home).unwrap();
    project
        .command(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_STATE_HOME")
        .env("SPECTACULAR_CONFIG_DIR", home.join(".config/spectacular"))
        .env("ANTHROPIC_API_KEY", CANARY)
        .env("OPENAI_API_KEY", CANARY)
        .env("GEMINI_API_KEY", CANARY)
        // Claude Code retries a failing API ten times with backoff; two keep the tier short.
        .env("CLAUDE_CODE_MAX_RETRIES", "2")
        .output()
        .expect("run spectacular")
}

/// What a user sees of their checkout: the branch and commit checked out, the index, the
/// status, the diff, every branch but the engine's, and the bytes of every file git does not
/// ignore.
fn checkout_state(root: &std::path::Path) -> String {
    let git = |args: &[&str]| crate::support::git(root, args);
    let mut state = String::new();
    for args in [
        &["symbolic-ref", "HEAD"][..],
        &["rev-parse", "HEAD"],
        &["ls-files", "--stage"],
        &["status", "--porcelain=v1", "--untracked-files=all"],
        &["diff"],
        &["stash", "list"],
    ] {
        state.push_str(&format!("$ git {}\n{}\n", args.join(" "), git(args)));
    }
    let branches = git(&[
        "branch",
        "--list",
        "--format=%(refname:short) %(objectname)",
    ]);
    for line in branches.lines().filter(|l| !l.starts_with("spectacular/")) {
        state.push_str(&format!("branch {line}\n"));
    }
    let files = git(&["ls-files", "--cached", "--others", "--exclude-standard"]);
    for file in files.lines() {
        let bytes = std::fs::read(root.join(file)).unwrap_or_default();
        state.push_str(&format!(
            "--- {file}\n{}\n",
            String::from_utf8_lossy(&bytes)
        ));
    }
    state
}

/// The user's checkout is never where a client works: a phase in an attempt directory (inside
/// the checkout) and a work package in its worktree both write a file through the client's
/// own tools, and the checkout's branch, index and working tree (changes staged, unstaged and
/// untracked) are byte-identical afterwards. The work package's branch holds the file and
/// nothing of the client's caches or histories.
fn leaves_the_checkout_untouched(client: &str, parent: &std::path::Path) {
    require(client);
    let program = program(client).expect("the client is installed");
    let server = FakeLlm::with_scenario(write_scenario());
    let mission = format!(
        "mission: untouched-{client}\nphases:\n\
         \x20 scratch:\n    agent: {client}\n    timeout: 120s\n    prompt: prompt.md\n\
         \x20 work:\n    needs: [scratch]\n    agent: {client}\n    workspace: worktree\n    timeout: 120s\n    prompt: prompt.md\n"
    );
    let project = Project::new_in(parent, &mission);
    let root = project.path();
    std::fs::write(root.join("prompt.md"), WRITE_PROMPT).unwrap();
    // What `spectacular init` ignores.
    std::fs::write(
        root.join(".spectacular/.gitignore"),
        "runs/\nworktrees/\nstate.db\nstate.db-*\nspend.jsonl\n",
    )
    .unwrap();
    std::fs::write(
        root.join(".spectacular/agents.yaml"),
        format!(
            "agents:\n  {client}:\n    adapter: {client}\n    binary: {}\n    base_url: {}\n",
            program.display(),
            base_url(client, &server)
        ),
    )
    .unwrap();
    std::fs::write(root.join("README.md"), "# A project\n").unwrap();
    crate::support::git_init(root);
    // Work in progress of every kind.
    std::fs::write(
        root.join("README.md"),
        "# A project\n\nEdited, not staged.\n",
    )
    .unwrap();
    std::fs::write(root.join("staged.txt"), "staged, not committed\n").unwrap();
    crate::support::git(root, &["add", "staged.txt"]);
    std::fs::write(root.join("notes.txt"), "untracked\n").unwrap();
    let before = checkout_state(root);
    let home = tempfile::tempdir().unwrap();
    let output = spectacular_run(&project, home.path(), &["run", "mission.yaml"]);
    let events = project.events();
    let transcript = || {
        let mut out = text(&output);
        for file in walk(&root.join(".spectacular/runs")) {
            if file.extension().is_some_and(|e| e == "log") {
                let log = std::fs::read_to_string(&file).unwrap_or_default();
                out.push_str(&format!("\n--- {}\n{log}", file.display()));
            }
        }
        out
    };
    assert_eq!(code(&output), 0, "{}", transcript());
    assert_eq!(checkout_state(root), before, "{}", transcript());
    let work = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptSucceeded(d) if d.phase == "work" => d.git.clone(),
            _ => None,
        })
        .expect("the work package committed");
    let files = crate::support::git(root, &["ls-tree", "-r", "--name-only", &work.head]);
    assert!(files.lines().any(|f| f == "hello.txt"), "{files}");
    for file in files.lines() {
        assert!(
            !file.contains(".aider") && !file.starts_with(".spectacular/out"),
            "`{file}` was committed"
        );
    }
    assert_eq!(work.files, vec!["hello.txt".to_string()], "{work:?}");
}

fn program_or(client: &str) -> PathBuf {
    program(client).unwrap_or_else(|| PathBuf::from(client))
}

/// The tokens one answered request of the fake server comes to, as each client reports them:
/// `[input, output, cache read, cache write]`. The server reports 42 uncached and 10 cached
/// input tokens and 7 output tokens per answer; Aider reports the cached ones as input.
fn tokens_per_request(client: &str) -> [u64; 4] {
    match client {
        "aider" => [52, 7, 0, 0],
        _ => [42, 7, 10, 0],
    }
}

/// A base URL where nothing listens: connections are refused.
fn down_url(client: &str) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match client {
        "claude-code" | "gemini" => format!("http://127.0.0.1:{port}"),
        _ => format!("http://127.0.0.1:{port}/v1"),
    }
}

/// Fail unless `REAL_CLIENTS` names `client`'s program: a test of a client that was not
/// installed or not selected must not pass. `tests/real-clients/run` runs only the tests of
/// the clients it installed, by their exact names.
fn require(client: &str) {
    assert!(
        std::env::var_os("REAL_CLIENTS").is_some(),
        "REAL_CLIENTS is not set: run these tests with tests/real-clients/run"
    );
    assert!(
        program(client).is_some(),
        "`{client}` is not in REAL_CLIENTS: it was not installed or not selected; run `tests/real-clients/run {client}`"
    );
}

fn write_scenario() -> Scenario {
    Scenario::WriteFile {
        path: "hello.txt".into(),
        content: "hello from the fake model".into(),
        answer: "I wrote hello.txt.".into(),
    }
}

/// The file-writing phase: the file is written, the attempt succeeds with the client's result
/// text, the exact tokens of the requests the conversation made and their cost, and the key
/// is nowhere.
fn writes_a_file(client: &str) {
    require(client);
    let server = FakeLlm::with_scenario(write_scenario());
    let ran = run(client, &Target::Server(&server), "120s", None);
    ran.capture(client, "write");
    assert_eq!(code(&ran.output), 0, "{}", ran.transcript());
    let written = std::fs::read_to_string(ran.project.path().join("hello.txt"))
        .unwrap_or_else(|e| panic!("hello.txt: {e}\n{}", ran.transcript()));
    assert_eq!(written.trim_end(), "hello from the fake model");
    let EventData::AttemptSucceeded(done) = ran.result() else {
        panic!("{}", ran.transcript())
    };
    assert_eq!(done.agent.as_deref(), Some(client));
    assert!(
        done.result
            .as_deref()
            .is_some_and(|r| r.contains("I wrote hello.txt.")),
        "the answer is recorded: {:?}",
        done.result
    );
    let usage = done.usage.as_deref().expect("usage is recorded");
    // A tool call and the answer after its result; Aider edits in its one answer.
    let n = server.conversation_requests();
    assert!(n >= if client == "aider" { 1 } else { 2 }, "{n}");
    let per = tokens_per_request(client);
    assert_eq!(
        [
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens
        ],
        per.map(|t| t * n),
        "{usage:?}\n{}",
        ran.transcript()
    );
    let cost = usage.cost_usd.expect("a cost");
    match expected_cost(client, usage) {
        Some(expected) => assert!(
            (cost - expected).abs() < 1e-9,
            "cost {cost}, expected {expected}: {usage:?}"
        ),
        None => assert!(cost >= 0.0),
    }
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.headers.iter().any(|(_, v)| v.contains(CANARY))),
        "the client sent the key"
    );
    ran.assert_no_canary();
}

/// The cost a client's usage must come to: the catalogue's prices for its model (what Claude
/// Code computes itself, and what the engine computes for clients that report tokens only).
fn expected_cost(client: &str, usage: &spectacular::agents::Usage) -> Option<f64> {
    let (input, output, cache_read) = match client {
        "claude-code" => (3.0, 15.0, 0.3),
        "codex" => (1.25, 10.0, 0.125),
        "gemini" => (1.25, 10.0, 0.31),
        _ => return None,
    };
    Some(
        (usage.input_tokens as f64 * input
            + usage.output_tokens as f64 * output
            + usage.cache_read_tokens as f64 * cache_read)
            / 1_000_000.0,
    )
}

/// An HTTP error the client cannot get past: the attempt fails with `class` named in its
/// message, and the key is nowhere (the error bodies do not quote it).
fn fails_with(client: &str, status: u16, class: &str) {
    require(client);
    let server = FakeLlm::with_scenario(Scenario::Status(status));
    let ran = run(client, &Target::Server(&server), "300s", None);
    ran.capture(client, &status.to_string());
    assert_eq!(code(&ran.output), 1, "{}", ran.transcript());
    let EventData::AttemptFailed(failed) = ran.result() else {
        panic!("{}", ran.transcript())
    };
    assert!(
        failed.message.starts_with(&format!("{class}:")),
        "{}\n{}",
        failed.message,
        ran.transcript()
    );
    assert!(!server.requests().is_empty());
    ran.assert_no_canary();
}

/// A server that is down: the attempt fails as `unavailable` (or runs into its timeout for
/// a client that waits for the network), and hands over to a second agent, which writes the
/// file.
fn falls_back_when_down(client: &str) {
    require(client);
    let server = FakeLlm::with_scenario(write_scenario());
    let ran = run(client, &Target::Down, "45s", Some((client, &server)));
    assert_eq!(code(&ran.output), 0, "{}", ran.transcript());
    assert_eq!(
        count(&ran.events, "fallback.activated", "write"),
        1,
        "{}",
        ran.transcript()
    );
    let reason = ran
        .events
        .iter()
        .find_map(|e| match &e.data {
            EventData::FallbackActivated(f) => Some(f.reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        reason.starts_with("unavailable:") || reason.starts_with("timeout:"),
        "{reason}"
    );
    let EventData::AttemptSucceeded(done) = ran.result() else {
        panic!("{}", ran.transcript())
    };
    assert_eq!(done.agent, Some(format!("{client}-fallback")));
    assert!(ran.project.path().join("hello.txt").exists());
    ran.assert_no_canary();
}

/// A server that accepts the request and never answers: the phase's timeout stops the client,
/// the attempt fails as a timeout, and no process is left behind.
fn times_out_when_hung(client: &str) {
    require(client);
    let server = FakeLlm::with_scenario(Scenario::Hang);
    let ran = run(client, &Target::Server(&server), "15s", None);
    assert_eq!(code(&ran.output), 1, "{}", ran.transcript());
    let EventData::AttemptFailed(failed) = ran.result() else {
        panic!("{}", ran.transcript())
    };
    assert_eq!(
        failed.kind,
        spectacular::model::FailureKind::Timeout,
        "{}",
        ran.transcript()
    );
    ran.assert_no_canary();
}

/// The marker at the end of the large prompt: the client must have sent it to the model.
const LARGE_PROMPT_END: &str = "End of the background notes (marker 7f3a91c2).";

/// A prompt far over what one argument may hold (the kernel refuses an argument over
/// 128 KiB): the client gets it another way than argv (stdin or a file, see
/// `src/agents/clients.rs`), sends all of it to the model, and writes the file.
fn takes_a_large_prompt(client: &str) {
    require(client);
    let mut prompt = format!("{WRITE_PROMPT}\nBackground notes, for reference only:\n");
    let mut n = 0;
    while prompt.len() < 160 * 1024 {
        n += 1;
        prompt.push_str(&format!(
            "- note {n}: the parser keeps every position it reads, so diagnostics point at the source.\n"
        ));
    }
    prompt.push_str(LARGE_PROMPT_END);
    prompt.push('\n');
    let server = FakeLlm::with_scenario(write_scenario());
    let ran = run_prompt(client, &Target::Server(&server), "180s", None, &prompt);
    assert_eq!(code(&ran.output), 0, "{}", ran.transcript());
    let argv = ran
        .events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptStarted(s) => s.argv.clone(),
            _ => None,
        })
        .expect("an argv");
    assert!(
        argv.iter().all(|a| !a.contains("note 1:")),
        "the prompt went through argv"
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.body.to_string().contains(LARGE_PROMPT_END)),
        "the model never saw the end of the prompt\n{}",
        ran.transcript()
    );
    let written = std::fs::read_to_string(ran.project.path().join("hello.txt"))
        .unwrap_or_else(|e| panic!("hello.txt: {e}\n{}", ran.transcript()));
    assert_eq!(written.trim_end(), "hello from the fake model");
    ran.assert_no_canary();
}

/// The arguments the scripted model calls the MCP tool with.
const TICKET: &str = "SPEC-4217";

/// The project configuration giving `client` the fake MCP server, which logs its calls to
/// `log`, and only its tool `lookup_ticket`.
fn mcp_config(client: &str, log: &std::path::Path) -> String {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp/fake_server.py");
    format!(
        "mcp_servers:\n  tickets:\n    command: python3\n    args: [{}, {}]\n\
         mcp_tools:\n  agents:\n    {client}: [tickets.lookup_ticket]\n",
        serde_json::Value::String(script.display().to_string()),
        serde_json::Value::String(log.display().to_string()),
    )
}

/// A model that calls the tool outside the allow-list (`delete_ticket`) whenever the client
/// lets it (Claude Code names it, and its `ToolSearch` fetches its schema): the MCP server never
/// gets the call, and the attempt still ends.
fn refuses_an_mcp_tool_outside_the_list(client: &str) {
    require(client);
    let server = FakeLlm::with_scenario(Scenario::McpCall {
        tool: "delete_ticket".into(),
        args: serde_json::json!({ "ticket": TICKET }),
        path: "hello.txt".into(),
        content: "hello from the fake model".into(),
        answer: "Done.".into(),
    });
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.jsonl");
    let config = mcp_config(client, &log);
    let prompt = format!("Delete ticket {TICKET}.\n");
    let ran = run_configured(
        client,
        &Target::Server(&server),
        "180s",
        None,
        &prompt,
        Some(&config),
    );
    assert_eq!(code(&ran.output), 0, "{}", ran.transcript());
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !calls.contains("delete_ticket"),
        "the MCP server got a call outside the allow-list: {calls}\ncalled: {:?}\n{}",
        server.tools_called(),
        ran.transcript()
    );
    // Claude Code let the model try (the refusal is what is tested); the others never
    // offered the tool.
    let tried = server
        .tools_called()
        .iter()
        .any(|t| t.ends_with("delete_ticket"));
    assert_eq!(
        tried,
        client == "claude-code",
        "called: {:?}",
        server.tools_called()
    );
    ran.assert_no_canary();
}

/// The fake MCP server (`tests/fixtures/mcp/fake_server.py`) offers `lookup_ticket` and
/// `delete_ticket`; the agent may call `lookup_ticket` only. The scripted model calls it
/// through the client, then writes a file: the server got the call with the model's arguments,
/// the client offered the model the allowed tool and never the other one, and the attempt
/// succeeded with the file written.
fn calls_an_mcp_tool(client: &str) {
    require(client);
    let server = FakeLlm::with_scenario(Scenario::McpCall {
        tool: "lookup_ticket".into(),
        args: serde_json::json!({ "ticket": TICKET }),
        path: "hello.txt".into(),
        content: "hello from the fake model".into(),
        answer: "I looked the ticket up and wrote hello.txt.".into(),
    });
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.jsonl");
    let config = mcp_config(client, &log);
    let prompt = format!("Look up ticket {TICKET}, then {WRITE_PROMPT}");
    let ran = run_configured(
        client,
        &Target::Server(&server),
        "180s",
        None,
        &prompt,
        Some(&config),
    );
    let offered: Vec<String> = server
        .requests()
        .iter()
        .flat_map(crate::fake_llm::offered_tools)
        .collect();
    assert_eq!(code(&ran.output), 0, "{}", ran.transcript());
    let calls = std::fs::read_to_string(&log).unwrap_or_else(|e| {
        panic!(
            "the MCP server was never called: {e}\noffered: {offered:?}\n{}",
            ran.transcript()
        )
    });
    let calls: Vec<serde_json::Value> = calls
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        calls,
        vec![serde_json::json!({"tool": "lookup_ticket", "arguments": {"ticket": TICKET}})],
        "{}",
        ran.transcript()
    );
    assert!(
        offered.iter().any(|t| t.ends_with("lookup_ticket")),
        "the allowed tool was not offered: {offered:?}"
    );
    assert!(
        !offered.iter().any(|t| t.contains("delete_ticket")),
        "a tool outside the allow-list was offered: {offered:?}"
    );
    // Nor named anywhere else. Claude Code names every tool of its MCP servers in the prompt
    // (its deferred tools, whose schema `ToolSearch` fetches): `--allowedTools` is a permission
    // (a call of another tool is refused, `-p` cannot ask), not a filter of what it lists.
    if client != "claude-code" {
        for request in server.requests() {
            assert!(
                !request.body.to_string().contains("delete_ticket"),
                "a tool outside the allow-list was named to the model: {}",
                request.body
            );
        }
    }
    assert!(
        server
            .tools_called()
            .iter()
            .any(|t| t.ends_with("lookup_ticket")),
        "{:?}",
        server.tools_called()
    );
    let written = std::fs::read_to_string(ran.project.path().join("hello.txt"))
        .unwrap_or_else(|e| panic!("hello.txt: {e}\n{}", ran.transcript()));
    assert_eq!(written.trim_end(), "hello from the fake model");
    let EventData::AttemptSucceeded(_) = ran.result() else {
        panic!("{}", ran.transcript())
    };
    ran.assert_no_canary();
}

/// The `real_clients_<client>_<scenario>` tests of one client; `mcp` for a client that takes
/// MCP servers.
macro_rules! client_tests {
    ($module:ident, $client:literal $(, $mcp:ident)?) => {
        mod $module {
            $(
                #[test]
                #[ignore = "needs the real clients: tests/real-clients/run"]
                fn real_clients_calls_an_mcp_tool() {
                    // Only for the clients marked `mcp`.
                    let _ = stringify!($mcp);
                    super::calls_an_mcp_tool($client);
                }

                #[test]
                #[ignore = "needs the real clients: tests/real-clients/run"]
                fn real_clients_refuses_an_mcp_tool_outside_the_list() {
                    super::refuses_an_mcp_tool_outside_the_list($client);
                }
            )?

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_writes_a_file() {
                super::writes_a_file($client);
            }

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_rate_limited() {
                super::fails_with($client, 429, "rate_limit");
            }

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_overloaded() {
                super::fails_with($client, 529, "overloaded");
            }

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_falls_back_when_down() {
                super::falls_back_when_down($client);
            }

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_times_out_when_hung() {
                super::times_out_when_hung($client);
            }

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_takes_a_large_prompt() {
                super::takes_a_large_prompt($client);
            }

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_leaves_the_checkout_untouched() {
                // The tier's scratch directory, below $HOME.
                super::leaves_the_checkout_untouched($client, &std::env::temp_dir());
            }

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_leaves_the_checkout_untouched_under_tmp() {
                // A directory writable by others above the project, as on a CI runner.
                super::leaves_the_checkout_untouched($client, std::path::Path::new("/tmp"));
            }

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_runs_software_dev() {
                // The tier's scratch directory, below $HOME.
                super::pipeline::runs_software_dev(
                    $client,
                    &std::env::temp_dir(),
                    super::pipeline::Variant::Plain,
                );
            }

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_runs_software_dev_under_tmp() {
                super::pipeline::runs_software_dev(
                    $client,
                    std::path::Path::new("/tmp"),
                    super::pipeline::Variant::Plain,
                );
            }

            #[test]
            #[ignore = "needs the real clients: tests/real-clients/run"]
            fn real_clients_runs_software_dev_answered_otherwise() {
                super::pipeline::runs_software_dev(
                    $client,
                    &std::env::temp_dir(),
                    super::pipeline::Variant::Other,
                );
            }
        }
    };
}

/// One HTTP model through the whole pipeline: no client to install, so these run with the
/// other integration tests.
mod http {
    #[test]
    fn real_clients_http_runs_software_dev() {
        super::pipeline::runs_software_dev_on_http(super::pipeline::Variant::Plain);
    }

    #[test]
    fn real_clients_http_runs_software_dev_answered_otherwise() {
        super::pipeline::runs_software_dev_on_http(super::pipeline::Variant::Other);
    }
}

client_tests!(claude_code, "claude-code", mcp);
client_tests!(codex, "codex", mcp);
client_tests!(gemini, "gemini", mcp);
client_tests!(opencode, "opencode", mcp);
client_tests!(aider, "aider");
