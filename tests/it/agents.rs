//! Agent adapters: parsers over recorded outputs of every client, fake CLIs run as real
//! processes, the HTTP adapters against the fake LLM server, and the canary API key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use spectacular::agents::{
    self, call_http, call_http_with_key, cli_adapter, command, price, redact, redact_file,
    AdapterConfig, AgentOutcome, CliAdapter, CostSource, FailureClass, HttpEndpoint, HttpProtocol,
    Invocation, Prices, Request, Usage,
};
use spectacular::execute::process;

use crate::fake_llm::{FakeLlm, Reply, CACHED_TOKENS, INPUT_TOKENS, OUTPUT_TOKENS};
use crate::support::repo_root;

const CANARY: &str = "sk-canary-7f3e9d1c5b2a4e6f8091a2b3c4d5e6f7";

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/agents")
}

fn sample(name: &str) -> String {
    let path = fixtures().join("samples").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn adapter(name: &str) -> Box<dyn CliAdapter> {
    cli_adapter(name, &AdapterConfig::for_adapter(name)).expect("a known adapter")
}

/// What a parsed outcome should be; `None` fields are not checked.
#[derive(Default)]
struct Expect {
    ok: bool,
    class: Option<FailureClass>,
    text: Option<&'static str>,
    tokens: Option<[u64; 4]>,
    cost: Option<Option<f64>>,
    session: Option<&'static str>,
    model: Option<&'static str>,
    turns: Option<u32>,
}

fn differences(outcome: &AgentOutcome, expect: &Expect) -> Vec<String> {
    let mut out = Vec::new();
    if outcome.ok != expect.ok {
        out.push(format!(
            "ok is {} (failure: {:?})",
            outcome.ok, outcome.failure
        ));
    }
    if outcome.ok != outcome.failure.is_none() {
        out.push("ok and failure disagree".into());
    }
    if let Some(class) = expect.class {
        let got = outcome.failure.as_ref().map(|f| f.0);
        if got != Some(class) {
            out.push(format!(
                "class {got:?}, expected {class:?} ({:?})",
                outcome.failure
            ));
        }
    }
    if let Some(text) = expect.text {
        if !outcome.text.as_deref().unwrap_or("").contains(text) {
            out.push(format!("text {:?} lacks {text:?}", outcome.text));
        }
    }
    let u = &outcome.usage;
    if let Some(tokens) = expect.tokens {
        let got = [
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens,
        ];
        if got != tokens {
            out.push(format!(
                "tokens [in, out, cache read, cache write] {got:?}, expected {tokens:?}"
            ));
        }
    }
    if let Some(cost) = expect.cost {
        let same = match (u.cost_usd, cost) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-9,
            (None, None) => true,
            _ => false,
        };
        if !same {
            out.push(format!("cost {:?}, expected {cost:?}", u.cost_usd));
        }
        let source = cost.map(|_| CostSource::Reported);
        if u.cost_source != source {
            out.push(format!(
                "cost source {:?}, expected {source:?}",
                u.cost_source
            ));
        }
    }
    if let Some(session) = expect.session {
        if u.session_id.as_deref() != Some(session) {
            out.push(format!("session {:?}, expected {session:?}", u.session_id));
        }
    }
    if let Some(model) = expect.model {
        if u.model.as_deref() != Some(model) {
            out.push(format!("model {:?}, expected {model:?}", u.model));
        }
    }
    if let Some(turns) = expect.turns {
        if u.turns != Some(turns) {
            out.push(format!("turns {:?}, expected {turns}", u.turns));
        }
    }
    out
}

/// Parse `sample` with `adapter` as if the client exited with `exit`; describe what differs.
fn check(adapter_name: &str, sample_name: &str, exit: i32, expect: Expect) -> Vec<String> {
    let outcome = adapter(adapter_name).parse(Some(exit), &sample(sample_name), "");
    differences(&outcome, &expect)
        .into_iter()
        .map(|d| format!("{adapter_name} {sample_name} (exit {exit}): {d}"))
        .collect()
}

fn fail(class: FailureClass) -> Expect {
    Expect {
        ok: false,
        class: Some(class),
        ..Expect::default()
    }
}

#[test]
fn parsers_read_the_recorded_output_of_every_client() {
    use FailureClass::*;
    let mut failures = Vec::new();
    // Claude Code: one JSON object; `is_error` decides, whatever the exit code.
    failures.extend(check(
        "claude-code",
        "claude-success.json",
        0,
        Expect {
            ok: true,
            text: Some("added the parser"),
            tokens: Some([12, 512, 15300, 4210]),
            cost: Some(Some(0.0421)),
            session: Some("4f6a1c2e-8b1d-4c55-9d6e-2f0b7a1e9c31"),
            model: Some("claude-sonnet-4-5"),
            turns: Some(3),
            ..Expect::default()
        },
    ));
    for exit in [0, 1] {
        failures.extend(check(
            "claude-code",
            "claude-rate-limit.json",
            exit,
            fail(RateLimit),
        ));
    }
    failures.extend(check(
        "claude-code",
        "claude-overloaded.json",
        1,
        fail(Overloaded),
    ));
    failures.extend(check("claude-code", "claude-auth.json", 1, fail(Auth)));
    failures.extend(check(
        "claude-code",
        "claude-context.json",
        1,
        fail(ContextOverflow),
    ));
    failures.extend(check(
        "claude-code",
        "claude-max-turns.json",
        0,
        Expect {
            cost: Some(Some(0.1875)),
            turns: Some(6),
            ..fail(Other)
        },
    ));
    // Codex: JSONL; an error item before a completed turn is only a warning.
    failures.extend(check(
        "codex",
        "codex-success.jsonl",
        0,
        Expect {
            ok: true,
            text: Some("Added the parser; all tests pass."),
            tokens: Some([315, 122, 24448, 0]),
            cost: Some(None),
            session: Some("0199a213-81c0-7800-8aa1-bbab2a035a53"),
            turns: Some(1),
            ..Expect::default()
        },
    ));
    failures.extend(check("codex", "codex-success.jsonl", 1, fail(Other)));
    failures.extend(check("codex", "codex-rate-limit.jsonl", 1, fail(RateLimit)));
    failures.extend(check("codex", "codex-auth.jsonl", 1, fail(Auth)));
    // Aider: text; exit code 0 even when the API failed.
    failures.extend(check(
        "aider",
        "aider-success.txt",
        0,
        Expect {
            ok: true,
            text: Some("I added the `parse` function"),
            tokens: Some([2200, 45, 1100, 0]),
            cost: Some(Some(0.0012)),
            model: Some("openai/fake-model"),
            turns: Some(1),
            ..Expect::default()
        },
    ));
    failures.extend(check(
        "aider",
        "aider-retry-success.txt",
        0,
        Expect {
            ok: true,
            text: Some("handles empty input"),
            tokens: Some([29500, 430, 0, 1500]),
            cost: Some(Some(0.09)),
            turns: Some(2),
            ..Expect::default()
        },
    ));
    failures.extend(check("aider", "aider-auth-exit0.txt", 0, fail(Auth)));
    failures.extend(check(
        "aider",
        "aider-rate-limit-exit0.txt",
        0,
        fail(RateLimit),
    ));
    failures.extend(check(
        "aider",
        "aider-context-exit0.txt",
        0,
        fail(ContextOverflow),
    ));
    // Gemini: one JSON object with per-model tokens and no dollars.
    failures.extend(check(
        "gemini",
        "gemini-success.json",
        0,
        Expect {
            ok: true,
            text: Some("Added the parser and a test."),
            tokens: Some([3676 + 1000, 224, 21263, 0]),
            cost: Some(None),
            model: Some("gemini-2.5-pro"),
            turns: Some(3),
            ..Expect::default()
        },
    ));
    failures.extend(check("gemini", "gemini-quota.json", 1, fail(RateLimit)));
    failures.extend(check("gemini", "gemini-auth.json", 1, fail(Auth)));
    // OpenCode: JSONL; tokens and dollars per step.
    failures.extend(check(
        "opencode",
        "opencode-success.jsonl",
        0,
        Expect {
            ok: true,
            text: Some("Added the parser and its tests."),
            tokens: Some([1500, 130, 19200, 0]),
            cost: Some(Some(0.0043)),
            session: Some("ses_44f9562d4ffe"),
            turns: Some(2),
            ..Expect::default()
        },
    ));
    failures.extend(check(
        "opencode",
        "opencode-overloaded.jsonl",
        0,
        fail(Overloaded),
    ));
    failures.extend(check("opencode", "opencode-auth.jsonl", 0, fail(Auth)));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn garbage_output_is_never_a_success() {
    for name in ["claude-code", "codex", "aider", "gemini", "opencode"] {
        for exit in [0, 1] {
            let outcome = adapter(name).parse(Some(exit), "Segmentation fault\n", "");
            assert!(!outcome.ok, "{name} (exit {exit}) took garbage for success");
        }
        let outcome = adapter(name).parse(Some(0), "", "");
        assert!(!outcome.ok, "{name} took empty output for success");
    }
}

#[test]
fn failure_classes_know_what_is_worth_a_fallback() {
    use FailureClass::*;
    for class in [RateLimit, Overloaded, ServerError, Timeout, Unavailable] {
        assert!(class.is_transient(), "{class}");
    }
    for class in [Auth, ContextOverflow, Other] {
        assert!(!class.is_transient(), "{class}");
    }
    assert_eq!(
        serde_json::to_value(RateLimit).unwrap(),
        json!("rate_limit")
    );
    assert_eq!(
        serde_json::to_value(ContextOverflow).unwrap(),
        json!("context_overflow")
    );
}

#[test]
fn invocations_follow_each_clients_non_interactive_form() {
    let request = Request {
        prompt: "Fix the bug".into(),
        prompt_file: "/tmp/p.md".into(),
        model: Some("m1".into()),
        workdir: "/tmp".into(),
        max_budget_usd: Some(2.5),
        max_turns: Some(8),
        git_worktree: false,
    };
    let argv = |name: &str| adapter(name).invocation(&request).argv;
    assert_eq!(
        argv("claude-code"),
        [
            "claude",
            "-p",
            "Fix the bug",
            "--output-format",
            "json",
            "--model",
            "m1",
            "--max-turns",
            "8",
            "--permission-mode",
            "acceptEdits",
            "--max-budget-usd",
            "2.5"
        ]
    );
    // Codex reads the prompt from stdin (`-`), so no prompt is too long for it.
    assert_eq!(
        argv("codex"),
        [
            "codex",
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--sandbox",
            "workspace-write",
            "--disable",
            "shell_snapshot",
            "--model",
            "m1",
            "-"
        ]
    );
    assert_eq!(
        adapter("codex").invocation(&request).stdin.as_deref(),
        Some(&b"Fix the bug"[..])
    );
    assert_eq!(
        argv("aider"),
        [
            "aider",
            "--message",
            "Fix the bug",
            "--yes-always",
            "--no-stream",
            "--no-check-update",
            "--no-show-release-notes",
            "--analytics-disable",
            "--no-gitignore",
            "--no-auto-commits",
            "--no-dirty-commits",
            "--model",
            "m1",
            // Not in a worktree of the engine: the repository above is the user's.
            "--no-git"
        ]
    );
    let in_worktree = Request {
        git_worktree: true,
        ..request.clone()
    };
    assert!(!adapter("aider")
        .invocation(&in_worktree)
        .argv
        .contains(&"--no-git".to_string()));
    assert_eq!(
        argv("gemini"),
        [
            "gemini",
            "-p",
            "Fix the bug",
            "--output-format",
            "json",
            "-m",
            "m1",
            "--approval-mode",
            "yolo",
            "--skip-trust"
        ]
    );
    assert_eq!(
        argv("opencode"),
        [
            "opencode",
            "run",
            "--format",
            "json",
            "--model",
            "m1",
            "Fix the bug"
        ]
    );
    // A base URL reaches each client through its own variable; Aider needs LiteLLM's prefix.
    let base = |name: &str| {
        let config = AdapterConfig {
            base_url: Some("http://127.0.0.1:9/v1".into()),
            ..AdapterConfig::for_adapter(name)
        };
        cli_adapter(name, &config).unwrap().invocation(&request)
    };
    let has = |inv: &Invocation, k: &str| inv.env.iter().any(|(name, _)| name == k);
    assert!(has(&base("claude-code"), "ANTHROPIC_BASE_URL"));
    assert!(has(
        &base("claude-code"),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"
    ));
    // Codex ignores `OPENAI_BASE_URL`: a model provider of its own, over HTTPS only.
    let codex = base("codex").argv.join(" ");
    assert!(!has(&base("codex"), "OPENAI_BASE_URL"));
    assert!(
        codex.contains(r#"-c model_providers.spectacular.base_url="http://127.0.0.1:9/v1""#)
            && codex.contains(r#"-c model_providers.spectacular.env_key="OPENAI_API_KEY""#)
            && codex.contains("-c model_providers.spectacular.supports_websockets=false")
            && codex.contains(r#"-c model_provider="spectacular""#),
        "{codex}"
    );
    // OpenCode takes a provider block of its configuration, inline, and the model under it.
    let opencode = base("opencode");
    let config = opencode
        .env
        .iter()
        .find(|(k, _)| k == "OPENCODE_CONFIG_CONTENT")
        .map(|(_, v)| serde_json::from_str::<serde_json::Value>(v).unwrap())
        .expect("an inline configuration");
    assert_eq!(
        config["provider"]["spectacular"]["options"]["baseURL"],
        "http://127.0.0.1:9/v1"
    );
    assert_eq!(
        config["provider"]["spectacular"]["options"]["apiKey"],
        "{env:OPENAI_API_KEY}"
    );
    assert!(opencode.argv.contains(&"spectacular/m1".to_string()));
    // Gemini refuses a bare base URL non-interactively: user settings in a HOME of the
    // attempt's own select the API-key auth type (a system settings file is read only when
    // root owns it and every directory above it).
    let gemini = base("gemini");
    let (path, settings) = &gemini.files[0];
    assert_eq!(path, Path::new("/tmp/home/.gemini/settings.json"));
    assert!(settings.contains("gemini-api-key"), "{settings}");
    assert!(gemini.env.contains(&("HOME".into(), "/tmp/home".into())));
    // Without a base URL, nothing of the sort.
    assert!(adapter("gemini").invocation(&request).files.is_empty());
    assert!(!argv("codex").contains(&"-c".to_string()));
    assert!(has(&base("aider"), "OPENAI_API_BASE"));
    assert!(base("aider").argv.contains(&"openai/m1".to_string()));
    assert!(has(&base("gemini"), "GOOGLE_GEMINI_BASE_URL"));
    for name in ["claude-code", "codex", "aider", "gemini", "opencode"] {
        let a = adapter(name);
        assert!(!a.key_env().is_empty(), "{name} names no key variables");
        assert_eq!(a.version_args(), ["--version"], "{name}");
        assert_eq!(a.invocation(&request).argv[0], a.binary(), "{name}");
    }
}

// --- fake CLIs run as processes ----------------------------------------------------------

struct Ran {
    ended: process::Ended,
    stdout: String,
    stderr: String,
    argv: Vec<String>,
}

/// Run an adapter's invocation with `PATH` starting at the fake client's fixture folder.
fn run_fake(client_dir: &str, invocation: &Invocation, env: &[(&str, String)], dir: &Path) -> Ran {
    run_fake_with_timeout(client_dir, invocation, env, dir, Duration::from_secs(60))
}

fn run_fake_with_timeout(
    client_dir: &str,
    invocation: &Invocation,
    env: &[(&str, String)],
    dir: &Path,
    timeout: Duration,
) -> Ran {
    let record = dir.join("argv.bin");
    let path = format!(
        "{}:{}",
        fixtures().join(client_dir).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut all_env = invocation.env.clone();
    all_env.push(("PATH".into(), path));
    all_env.push(("FAKE_AGENT_RECORD".into(), record.display().to_string()));
    all_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let spec = process::Spec {
        argv: invocation.argv.clone(),
        cwd: dir.to_path_buf(),
        env: all_env,
        env_remove: Vec::new(),
        stdin: invocation.stdin.clone(),
        stdout: dir.join("stdout.log"),
        stderr: dir.join("stderr.log"),
        pid_file: dir.join("pids"),
        tag: "test 1".into(),
        timeout: Some(timeout),
        grace: Duration::from_millis(200),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (_cancel, cancel_rx) = tokio::sync::watch::channel(0u8);
    let ended = runtime.block_on(process::run(spec, cancel_rx));
    let argv = std::fs::read(&record)
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    Ran {
        ended,
        stdout: std::fs::read_to_string(dir.join("stdout.log")).unwrap_or_default(),
        stderr: std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default(),
        argv,
    }
}

fn exit_code(ended: &process::Ended) -> Option<i32> {
    match ended {
        process::Ended::Exited { code, .. } => *code,
        other => panic!("the fake agent did not exit: {other:?}"),
    }
}

/// A prompt a shell would mangle: it must arrive as exactly one argument, byte for byte.
const HOSTILE_PROMPT: &str =
    "Fix it; rm -rf / $(touch pwned) `id` && echo \"quoted\" 'single'\n| second line * ?";

#[test]
fn fake_clis_get_the_prompt_as_one_argument_and_their_output_parses() {
    let cases = [
        ("claude-code", "claude", "claude-success.json"),
        ("codex", "codex", "codex-success.jsonl"),
        ("aider", "aider", "aider-success.txt"),
        ("gemini", "gemini", "gemini-success.json"),
        ("opencode", "opencode", "opencode-success.jsonl"),
    ];
    for (name, dir_name, sample_name) in cases {
        let dir = tempfile::tempdir().unwrap();
        let a = adapter(name);
        let request = Request {
            prompt: HOSTILE_PROMPT.into(),
            prompt_file: dir.path().join("prompt.md"),
            workdir: dir.path().to_path_buf(),
            ..Request::default()
        };
        let invocation = a.invocation(&request);
        let ran = run_fake(
            dir_name,
            &invocation,
            &[(
                "FAKE_AGENT_SAMPLE",
                fixtures()
                    .join("samples")
                    .join(sample_name)
                    .display()
                    .to_string(),
            )],
            dir.path(),
        );
        assert_eq!(
            ran.argv,
            invocation.argv[1..],
            "{name}: argv changed on the way"
        );
        match &invocation.stdin {
            // Codex reads its prompt from stdin.
            Some(stdin) => assert_eq!(stdin, HOSTILE_PROMPT.as_bytes(), "{name}"),
            None => assert_eq!(
                ran.argv.iter().filter(|a| *a == HOSTILE_PROMPT).count(),
                1,
                "{name}: the prompt is not one argument"
            ),
        }
        assert!(
            !dir.path().join("pwned").exists(),
            "{name}: a shell ran the prompt"
        );
        let outcome = a.parse(exit_code(&ran.ended), &ran.stdout, &ran.stderr);
        assert!(outcome.ok, "{name}: {:?}", outcome.failure);
    }
}

#[test]
fn fake_claude_sees_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = AdapterConfig {
        base_url: Some("http://127.0.0.1:1".into()),
        ..AdapterConfig::for_adapter("claude-code")
    };
    let a = cli_adapter("claude-code", &config).unwrap();
    let invocation = a.invocation(&Request {
        prompt: "hello".into(),
        ..Request::default()
    });
    let ran = run_fake(
        "claude",
        &invocation,
        &[(
            "FAKE_AGENT_SHOW",
            "ANTHROPIC_BASE_URL CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
        )],
        dir.path(),
    );
    assert!(
        ran.stderr
            .contains("ANTHROPIC_BASE_URL=http://127.0.0.1:1\n"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\n"),
        "{}",
        ran.stderr
    );
}

#[test]
fn fake_aider_reporting_an_api_error_with_exit_zero_fails() {
    let dir = tempfile::tempdir().unwrap();
    let a = adapter("aider");
    let invocation = a.invocation(&Request {
        prompt: "p".into(),
        ..Request::default()
    });
    let ran = run_fake(
        "aider",
        &invocation,
        &[(
            "FAKE_AGENT_SAMPLE",
            fixtures()
                .join("samples/aider-rate-limit-exit0.txt")
                .display()
                .to_string(),
        )],
        dir.path(),
    );
    assert_eq!(exit_code(&ran.ended), Some(0));
    let outcome = a.parse(Some(0), &ran.stdout, &ran.stderr);
    assert!(!outcome.ok);
    assert_eq!(outcome.failure.unwrap().0, FailureClass::RateLimit);
}

#[test]
fn a_missing_client_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let invocation = adapter("codex").invocation(&Request::default());
    let spec = process::Spec {
        argv: invocation.argv,
        cwd: dir.path().to_path_buf(),
        env: vec![("PATH".into(), empty.path().display().to_string())],
        env_remove: Vec::new(),
        stdin: None,
        stdout: dir.path().join("stdout.log"),
        stderr: dir.path().join("stderr.log"),
        pid_file: dir.path().join("pids"),
        tag: "test 1".into(),
        timeout: Some(Duration::from_secs(10)),
        grace: Duration::from_millis(100),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_cancel, cancel_rx) = tokio::sync::watch::channel(0u8);
    let ended = runtime.block_on(process::run(spec, cancel_rx));
    let process::Ended::SpawnFailed(message) = ended else {
        panic!("a missing binary started: {ended:?}");
    };
    let outcome = AgentOutcome::spawn_failed(&message);
    let (class, _) = outcome.failure.unwrap();
    assert_eq!(class, FailureClass::Unavailable);
    assert!(class.is_transient());
    // The same words in a shell's output classify the same way.
    let parsed = adapter("codex").parse(Some(127), "", "sh: 1: codex: command not found\n");
    assert_eq!(parsed.failure.unwrap().0, FailureClass::Unavailable);
}

#[test]
fn a_client_killed_by_its_timeout_is_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let a = adapter("gemini");
    let invocation = a.invocation(&Request {
        prompt: "p".into(),
        ..Request::default()
    });
    let ran = run_fake_with_timeout(
        "gemini",
        &invocation,
        &[("FAKE_AGENT_SLEEP", "30".into())],
        dir.path(),
        Duration::from_millis(300),
    );
    assert_eq!(ran.ended, process::Ended::TimedOut);
    let outcome = agents::process_outcome(&*a, &ran.ended, &ran.stdout, &ran.stderr, &[], "300ms");
    let (class, reason) = outcome.failure.unwrap();
    assert_eq!(class, FailureClass::Timeout);
    assert!(reason.contains("300ms"), "{reason}");
    // An exited process is parsed by the adapter, and redacted.
    let exited = process::Ended::Exited {
        code: Some(0),
        signal: None,
    };
    let outcome = agents::process_outcome(
        &*a,
        &exited,
        r#"{"response": "key sk-abc123 works", "stats": {}}"#,
        "",
        &["sk-abc123".to_string()],
        "1m",
    );
    assert!(outcome.ok);
    assert_eq!(outcome.text.as_deref(), Some("key [REDACTED] works"));
}

// --- the canary API key ---------------------------------------------------------------------

fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path)
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn the_canary_key_never_survives_a_cli_run() {
    let dir = tempfile::tempdir().unwrap();
    let a = adapter("claude-code");
    let invocation = a.invocation(&Request {
        prompt: "p".into(),
        ..Request::default()
    });
    let ran = run_fake(
        "claude",
        &invocation,
        &[
            ("ANTHROPIC_API_KEY", CANARY.to_string()),
            ("FAKE_AGENT_LEAK", "ANTHROPIC_API_KEY".into()),
            ("FAKE_AGENT_EXIT", "1".into()),
            (
                "FAKE_AGENT_SAMPLE",
                fixtures()
                    .join("samples/claude-auth.json")
                    .display()
                    .to_string(),
            ),
        ],
        dir.path(),
    );
    // The careless client did leak it: without redaction this test would fail.
    assert!(ran.stderr.contains(CANARY) && ran.stdout.contains(CANARY));
    let secrets = vec![CANARY.to_string()];
    let outcome = a
        .parse(exit_code(&ran.ended), &ran.stdout, &ran.stderr)
        .redacted(&secrets);
    assert_eq!(outcome.failure.as_ref().unwrap().0, FailureClass::Auth);
    for path in [dir.path().join("stdout.log"), dir.path().join("stderr.log")] {
        assert!(redact_file(&path, &secrets).unwrap(), "{}", path.display());
    }
    let text = format!(
        "{outcome:?} {}",
        serde_json::to_string(&outcome.usage).unwrap()
    );
    assert!(!text.contains(CANARY), "{text}");
    let redacted = redact(&ran.stderr, &secrets);
    assert!(!redacted.contains(CANARY) && redacted.contains("[REDACTED]"));
    let leaked = files_containing(dir.path(), CANARY);
    assert!(leaked.is_empty(), "the canary key is in {leaked:?}");
}

#[test]
fn the_canary_key_never_survives_an_http_call() {
    let server = FakeLlm::start();
    server.push(Reply::EchoKey);
    let endpoint = HttpEndpoint {
        base_url: server.openai_base(),
        model: "fake-model".into(),
        ..HttpEndpoint::default()
    };
    let outcome = block_on(call_http_with_key(
        HttpProtocol::OpenAiChat,
        &endpoint,
        &prompt("hi"),
        Duration::from_secs(10),
        Some(CANARY.into()),
    ));
    // The key was sent, and the server quoted it back...
    let requests = server.requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {CANARY}").as_str())
    );
    // ...but the outcome does not carry it.
    let (class, reason) = outcome.failure.clone().unwrap();
    assert_eq!(class, FailureClass::Auth);
    assert!(reason.contains("[REDACTED]"), "{reason}");
    assert!(!format!("{outcome:?}").contains(CANARY));
}

// --- HTTP adapters against the fake LLM ------------------------------------------------------

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn prompt(text: &str) -> Request {
    Request {
        prompt: text.into(),
        ..Request::default()
    }
}

fn endpoint(server: &FakeLlm, protocol: HttpProtocol, stream: bool) -> HttpEndpoint {
    HttpEndpoint {
        base_url: match protocol {
            HttpProtocol::OpenAiChat => server.openai_base(),
            HttpProtocol::AnthropicMessages => server.anthropic_base(),
        },
        api_key_env: None,
        model: "fake-model".into(),
        headers: vec![("x-test".into(), "yes".into())],
        stream,
        max_tokens: Some(256),
    }
}

fn call(server: &FakeLlm, protocol: HttpProtocol, stream: bool) -> AgentOutcome {
    block_on(call_http_with_key(
        protocol,
        &endpoint(server, protocol, stream),
        &prompt("Summarise the spec"),
        Duration::from_secs(10),
        Some("test-key".into()),
    ))
}

#[test]
fn http_adapters_read_plain_and_streamed_answers() {
    for protocol in [HttpProtocol::OpenAiChat, HttpProtocol::AnthropicMessages] {
        for stream in [false, true] {
            let server = FakeLlm::start();
            server.push(Reply::Text("The spec asks for a parser.".into()));
            let outcome = call(&server, protocol, stream);
            let what = format!("{protocol:?} stream={stream}");
            assert!(outcome.ok, "{what}: {:?}", outcome.failure);
            assert_eq!(
                outcome.text.as_deref(),
                Some("The spec asks for a parser."),
                "{what}"
            );
            let u = &outcome.usage;
            assert_eq!(
                [u.input_tokens, u.output_tokens, u.cache_read_tokens],
                [INPUT_TOKENS, OUTPUT_TOKENS, CACHED_TOKENS],
                "{what}"
            );
            assert_eq!(u.model.as_deref(), Some("fake-model"), "{what}");
            assert!(u.session_id.is_some(), "{what}");
            assert_eq!(u.cost_usd, None, "{what}: the API reports no dollars");
            let requests = server.requests();
            assert_eq!(requests.len(), 1, "{what}");
            let r = &requests[0];
            assert_eq!(r.method, "POST");
            assert_eq!(r.header("x-test"), Some("yes"), "{what}");
            assert_eq!(r.body["model"], "fake-model");
            assert_eq!(
                r.body["stream"].as_bool().unwrap_or(false),
                stream,
                "{what}"
            );
            match protocol {
                HttpProtocol::OpenAiChat => {
                    assert_eq!(r.path, "/v1/chat/completions");
                    assert_eq!(r.header("authorization"), Some("Bearer test-key"));
                    assert_eq!(r.body["messages"][0]["content"], "Summarise the spec");
                }
                HttpProtocol::AnthropicMessages => {
                    assert_eq!(r.path, "/v1/messages");
                    assert_eq!(r.header("x-api-key"), Some("test-key"));
                    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
                    assert_eq!(r.body["max_tokens"], 256);
                    assert_eq!(r.body["messages"][0]["role"], "user");
                }
            }
        }
    }
}

#[test]
fn http_errors_are_classified() {
    use FailureClass::*;
    let cases = [
        (
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            RateLimit,
        ),
        (529, "overloaded_error", "Overloaded", Overloaded),
        (503, "api_error", "upstream connect error", Overloaded),
        (401, "authentication_error", "invalid x-api-key", Auth),
        (500, "api_error", "Internal server error", ServerError),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
            ContextOverflow,
        ),
        (
            400,
            "invalid_request_error",
            "This model's maximum context length is 128000 tokens",
            ContextOverflow,
        ),
        (
            400,
            "invalid_request_error",
            "temperature: must be at most 1",
            Other,
        ),
    ];
    let mut failures = Vec::new();
    for protocol in [HttpProtocol::OpenAiChat, HttpProtocol::AnthropicMessages] {
        for (status, kind, message, class) in cases {
            let server = FakeLlm::start();
            server.push(Reply::error(status, kind, message));
            let outcome = call(&server, protocol, false);
            let got = outcome.failure.as_ref().map(|f| f.0);
            if outcome.ok || got != Some(class) {
                failures.push(format!(
                    "{protocol:?} {status} {message}: {:?}",
                    outcome.failure
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn broken_streams_fail() {
    for protocol in [HttpProtocol::OpenAiChat, HttpProtocol::AnthropicMessages] {
        let server = FakeLlm::start();
        server.push(Reply::StreamError {
            kind: "overloaded_error".into(),
            message: "Overloaded".into(),
        });
        let outcome = call(&server, protocol, true);
        assert_eq!(
            outcome.failure.map(|f| f.0),
            Some(FailureClass::Overloaded),
            "{protocol:?}"
        );
        let server = FakeLlm::start();
        server.push(Reply::Truncated);
        let outcome = call(&server, protocol, true);
        assert!(!outcome.ok, "{protocol:?}: a cut-off stream passed");
        assert_eq!(outcome.failure.unwrap().0, FailureClass::ServerError);
    }
}

#[test]
fn http_timeouts_and_unreachable_servers() {
    let server = FakeLlm::start();
    server.push(Reply::Hang);
    let outcome = block_on(call_http_with_key(
        HttpProtocol::AnthropicMessages,
        &endpoint(&server, HttpProtocol::AnthropicMessages, false),
        &prompt("p"),
        Duration::from_millis(300),
        None,
    ));
    assert_eq!(outcome.failure.map(|f| f.0), Some(FailureClass::Timeout));

    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = HttpEndpoint {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        model: "m".into(),
        ..HttpEndpoint::default()
    };
    let outcome = block_on(call_http_with_key(
        HttpProtocol::OpenAiChat,
        &closed,
        &prompt("p"),
        Duration::from_secs(5),
        None,
    ));
    assert_eq!(
        outcome.failure.map(|f| f.0),
        Some(FailureClass::Unavailable)
    );
}

#[test]
fn a_missing_api_key_fails_before_any_request() {
    let server = FakeLlm::start();
    let mut e = endpoint(&server, HttpProtocol::OpenAiChat, false);
    e.api_key_env = Some("SPECTACULAR_TEST_SURELY_UNSET_KEY".into());
    let outcome = block_on(call_http(
        HttpProtocol::OpenAiChat,
        &e,
        &prompt("p"),
        Duration::from_secs(5),
    ));
    let (class, reason) = outcome.failure.unwrap();
    assert_eq!(class, FailureClass::Auth);
    assert!(
        reason.contains("SPECTACULAR_TEST_SURELY_UNSET_KEY"),
        "{reason}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn http_endpoints_come_from_agents_yaml() {
    let file = command::parse_agents_file(
        "agents:\n  planner:\n    adapter: anthropic-messages\n    model: claude-x\n    stream: true\n    roles: [planner]\n",
        "agents.yaml",
    )
    .unwrap();
    let config = &file.agents["planner"];
    let protocol = HttpProtocol::from_adapter(&config.adapter).unwrap();
    let e = HttpEndpoint::from_config(protocol, config);
    assert_eq!(e.base_url, "https://api.anthropic.com");
    assert_eq!(e.api_key_env.as_deref(), Some("ANTHROPIC_API_KEY"));
    assert_eq!(e.model, "claude-x");
    assert!(e.stream);
    assert!(cli_adapter("anthropic-messages", config).is_none());
}

// --- the generic command adapter -------------------------------------------------------------

fn command_adapter(yaml: &str) -> Box<dyn CliAdapter> {
    let file = command::parse_agents_file(yaml, "agents.yaml").expect("valid agents.yaml");
    let config = file.agents.values().next().unwrap();
    cli_adapter(&config.adapter, config).unwrap()
}

#[test]
fn command_agents_render_argv_without_a_shell() {
    let a = command_adapter(
        "agents:\n  c:\n    adapter: command\n    argv: [tool, --in, \"{{ prompt_file }}\", \"{{ model }}\", \"{{ prompt }}\"]\n    model: m7\n",
    );
    let request = Request {
        prompt: HOSTILE_PROMPT.into(),
        prompt_file: "/work/p.md".into(),
        ..Request::default()
    };
    let inv = a.try_invocation(&request).unwrap();
    assert_eq!(
        inv.argv,
        ["tool", "--in", "/work/p.md", "m7", HOSTILE_PROMPT]
    );
    assert_eq!(inv.stdin.as_deref(), Some(HOSTILE_PROMPT.as_bytes()));
    let broken = command_adapter(
        "agents:\n  c:\n    adapter: command\n    argv: [tool, \"{{ nowhere }}\"]\n    stdin: false\n",
    );
    assert!(broken.try_invocation(&request).is_err());
    assert!(broken.invocation(&request).argv.is_empty());
    // The runtime's entry point still refuses other adapters.
    let config = AdapterConfig::for_adapter("codex");
    assert!(command::invocation(&config, &json!({}), Path::new("p"), "x").is_err());
}

#[test]
fn command_agents_read_json_jsonl_and_text() {
    let json_agent = command_adapter(
        "agents:\n  c:\n    adapter: command\n    argv: [x]\n    output:\n      format: json\n      result: /answer\n      input_tokens: /usage/in\n      output_tokens: /usage/out\n      cost_usd: /cost\n      session_id: /id\n      error: /error\n",
    );
    let ok = json_agent.parse(
        Some(0),
        r#"{"answer":"done","usage":{"in":10,"out":3},"cost":0.5,"id":"s1","error":null}"#,
        "",
    );
    assert!(ok.ok, "{:?}", ok.failure);
    assert_eq!(ok.text.as_deref(), Some("done"));
    assert_eq!([ok.usage.input_tokens, ok.usage.output_tokens], [10, 3]);
    assert_eq!(ok.usage.cost_usd, Some(0.5));
    assert_eq!(ok.usage.cost_source, Some(CostSource::Reported));
    assert_eq!(ok.usage.session_id.as_deref(), Some("s1"));
    let err = json_agent.parse(Some(0), r#"{"error":"429 Too Many Requests"}"#, "");
    assert_eq!(err.failure.map(|f| f.0), Some(FailureClass::RateLimit));
    let garbage = json_agent.parse(Some(0), "not json", "");
    assert!(!garbage.ok);

    let jsonl_agent = command_adapter(
        "agents:\n  c:\n    adapter: command\n    argv: [x]\n    output:\n      format: jsonl\n      result: /text\n      input_tokens: /tokens/in\n      output_tokens: /tokens/out\n      cost_usd: /cost\n",
    );
    let ok = jsonl_agent.parse(
        Some(0),
        "{\"tokens\":{\"in\":5,\"out\":1},\"cost\":0.25}\nnoise\n{\"text\":\"final\",\"tokens\":{\"in\":7,\"out\":2},\"cost\":0.5}\n",
        "",
    );
    assert!(ok.ok);
    assert_eq!(ok.text.as_deref(), Some("final"));
    assert_eq!([ok.usage.input_tokens, ok.usage.output_tokens], [12, 3]);
    assert_eq!(ok.usage.cost_usd, Some(0.75));

    let text_agent = command_adapter(
        "agents:\n  c:\n    adapter: command\n    argv: [x]\n    output:\n      input_tokens: 'in=(\\S+)'\n      output_tokens: 'out=(\\d+)'\n      cost_usd: 'cost \\$([0-9.]+)'\n      error: '(?m)^ERROR: (.*)$'\n",
    );
    let ok = text_agent.parse(Some(0), "all good\nin=2.5k out=40 cost $0.03\n", "");
    assert!(ok.ok, "{:?}", ok.failure);
    assert_eq!(
        ok.text.as_deref(),
        Some("all good\nin=2.5k out=40 cost $0.03")
    );
    assert_eq!([ok.usage.input_tokens, ok.usage.output_tokens], [2500, 40]);
    assert_eq!(ok.usage.cost_usd, Some(0.03));
    let err = text_agent.parse(Some(0), "ERROR: context length exceeded\n", "");
    assert_eq!(
        err.failure.map(|f| f.0),
        Some(FailureClass::ContextOverflow)
    );
    let exit = text_agent.parse(Some(3), "", "boom\n");
    let (class, reason) = exit.failure.unwrap();
    assert_eq!(class, FailureClass::Other);
    assert!(
        reason.contains("code 3") && reason.contains("boom"),
        "{reason}"
    );
}

#[test]
fn agents_yaml_rejects_unknown_adapters_and_fields() {
    let unknown = command::parse_agents_file("agents:\n  a:\n    adapter: claud\n", "agents.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("agents.yaml:3:14")
            && unknown.contains("`claud` is not a valid `adapter`"),
        "{unknown}"
    );
    let typo = command::parse_agents_file(
        "agents:\n  a:\n    adapter: codex\n    modle: x\n",
        "agents.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(typo.contains("modle"), "{typo}");
    for name in agents::ADAPTERS {
        let yaml = format!("agents:\n  a:\n    adapter: {name}\n");
        assert!(
            command::parse_agents_file(&yaml, "agents.yaml").is_ok(),
            "{name}"
        );
    }
}

// --- usage and cost -------------------------------------------------------------------------

#[test]
fn tokens_are_priced_only_when_the_client_reported_no_dollars() {
    let prices = Prices {
        input: 3.0,
        output: 15.0,
        cache_read: Some(0.3),
        cache_write: None,
    };
    let mut usage = Usage {
        input_tokens: 1_000_000,
        output_tokens: 100_000,
        cache_read_tokens: 2_000_000,
        cache_write_tokens: 1_000_000,
        ..Usage::default()
    };
    price(&mut usage, &prices);
    assert!((usage.cost_usd.unwrap() - (3.0 + 1.5 + 0.6 + 3.0)).abs() < 1e-9);
    assert_eq!(usage.cost_source, Some(CostSource::Priced));
    let mut reported = Usage::default();
    reported.reported_cost(0.42);
    price(&mut reported, &prices);
    assert_eq!(reported.cost_usd, Some(0.42));
    assert_eq!(reported.cost_source, Some(CostSource::Reported));
    // The event shape: snake_case, absent fields omitted.
    assert_eq!(
        serde_json::to_value(&reported).unwrap(),
        json!({"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0,
               "cache_write_tokens": 0, "cost_usd": 0.42, "cost_source": "reported"})
    );
}

#[test]
fn prompts_too_long_for_one_argument_go_through_stdin_or_the_prompt_file() {
    let long = "x".repeat(200 * 1024);
    let request = Request {
        prompt: long.clone(),
        prompt_file: "/tmp/attempt/prompt.md".into(),
        workdir: "/tmp".into(),
        ..Request::default()
    };
    // Every client has another way than argv.
    for name in ["claude-code", "codex", "aider", "gemini", "opencode"] {
        let invocation = adapter(name).invocation(&request);
        assert!(
            invocation.argv.iter().all(|a| a.len() < 128 * 1024),
            "{name}: the prompt is still an argument"
        );
        assert!(
            invocation.argv.iter().all(|a| !a.contains("xxxx")),
            "{name}: part of the prompt is an argument: {:?}",
            invocation.argv
        );
        match name {
            "aider" => {
                let at = invocation.argv.iter().position(|a| a == "--message-file");
                assert_eq!(
                    at.map(|i| invocation.argv[i + 1].as_str()),
                    Some("/tmp/attempt/prompt.md")
                );
                assert!(!invocation.argv.contains(&"--message".to_string()));
            }
            _ => assert_eq!(invocation.stdin.as_deref(), Some(long.as_bytes()), "{name}"),
        }
    }
    // A short prompt stays an argument (but for Codex, which always reads stdin).
    let short = Request {
        prompt: "short".into(),
        ..request
    };
    for name in ["claude-code", "opencode"] {
        let invocation = adapter(name).invocation(&short);
        assert!(invocation.stdin.is_none(), "{name}");
        assert!(invocation.argv.contains(&"short".to_string()), "{name}");
    }
}

#[test]
fn claude_gets_no_budget_cap_of_zero() {
    let request = |budget: Option<f64>| Request {
        prompt: "p".into(),
        max_budget_usd: budget,
        ..Request::default()
    };
    let argv = |budget| adapter("claude-code").invocation(&request(budget)).argv;
    assert!(!argv(Some(0.0)).contains(&"--max-budget-usd".to_string()));
    assert!(!argv(None).contains(&"--max-budget-usd".to_string()));
    assert!(argv(Some(0.25)).contains(&"0.25".to_string()));
}

#[test]
fn claude_tokens_come_from_model_usage_when_usage_is_zero() {
    let stdout = json!({
        "type": "result", "subtype": "error_max_budget_usd", "is_error": true,
        "total_cost_usd": 0.0123, "num_turns": 3, "session_id": "s1",
        "usage": {"input_tokens": 0, "output_tokens": 0,
            "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
        "modelUsage": {"claude-sonnet-4-5": {"inputTokens": 1200, "outputTokens": 80,
            "cacheReadInputTokens": 300, "cacheCreationInputTokens": 40, "costUSD": 0.0123}}
    })
    .to_string();
    let outcome = adapter("claude-code").parse(Some(1), &stdout, "");
    assert!(!outcome.ok);
    let u = &outcome.usage;
    assert_eq!(
        [
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens
        ],
        [1200, 80, 300, 40]
    );
    assert_eq!(u.cost_usd, Some(0.0123));
}

#[test]
fn gemini_errors_are_read_from_stderr() {
    let stderr = "Loaded cached credentials.\nError when talking to Gemini API\n{\n  \"session_id\": \"abc\",\n  \"error\": {\n    \"type\": \"Error\",\n    \"message\": \"Resource exhausted\",\n    \"code\": 429\n  }\n}\n";
    let outcome = adapter("gemini").parse(Some(1), "", stderr);
    let (class, reason) = outcome.failure.expect("a failure");
    assert_eq!(class, FailureClass::RateLimit, "{reason}");
    assert_eq!(reason, "Resource exhausted (code 429)");
}

#[test]
fn agents_doctor_checks_the_key_variable_a_cli_agent_names() {
    use crate::runtime::{code, text, Project};
    let p = Project::new("mission: none\nphases:\n  a: { uses: builtin/noop }\n");
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        "agents:\n  mine:\n    adapter: codex\n    api_key_env: MY_PROXY_KEY\n",
    )
    .unwrap();
    let out = p
        .command(&["agents", "doctor", "--json"])
        .env("MY_PROXY_KEY", CANARY)
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!text(&out).contains(CANARY));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "mine")
        .cloned()
        .unwrap();
    assert_eq!(mine["keys"][0], json!(["MY_PROXY_KEY", true]));
}

/// The transcripts the real-client tier captured (`tests/fixtures/agents/real/`, written by
/// `REAL_CLIENTS_CAPTURE=… tests/real-clients/run`): every client's own output for a
/// file-writing phase, a 429 and a 529 from the fake model server, parsed as the engine does.
#[test]
fn real_client_transcripts_parse() {
    let dir = fixtures().join("real");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".stdout"))
        else {
            continue;
        };
        let (client, scenario) = stem.rsplit_once('-').unwrap();
        let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{stem}.{ext}"))).unwrap();
        let exit = read("exit").trim().parse::<i32>().ok();
        let outcome = adapter(client).parse(exit, &read("stdout"), &read("stderr"));
        let u = &outcome.usage;
        let tokens = [
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens,
        ];
        match scenario {
            "write" => {
                assert!(outcome.ok, "{stem}: {:?}", outcome.failure);
                assert!(
                    outcome
                        .text
                        .as_deref()
                        .is_some_and(|t| t.contains("I wrote hello.txt.")),
                    "{stem}: {:?}",
                    outcome.text
                );
                // Two requests (the tool call, the answer) of 42 + 10 cached input and 7
                // output tokens each; Aider answers in one and counts cached tokens as input.
                let expected = match client {
                    "aider" => [52, 7, 0, 0],
                    _ => [84, 14, 20, 0],
                };
                assert_eq!(tokens, expected, "{stem}");
            }
            "429" => assert_eq!(
                outcome.failure.as_ref().map(|f| f.0),
                Some(FailureClass::RateLimit),
                "{stem}: {:?}",
                outcome.failure
            ),
            "529" => assert_eq!(
                outcome.failure.as_ref().map(|f| f.0),
                Some(FailureClass::Overloaded),
                "{stem}: {:?}",
                outcome.failure
            ),
            other => panic!("{stem}: unknown scenario {other}"),
        }
        seen += 1;
    }
    assert!(seen >= 12, "{seen} transcripts");
}

// --- the engine with fake clients ---------------------------------------------------------

fn fake_entry(name: &str, client: &str, sample: &str, extra: &str) -> String {
    let fixtures = fixtures();
    format!(
        "  {name}:\n    adapter: {}\n    binary: {}\n    env: {{ FAKE_AGENT_SAMPLE: {} }}\n{extra}",
        if client == "claude" {
            "claude-code"
        } else {
            client
        },
        fixtures.join(client).join(client).display(),
        fixtures.join("samples").join(sample).display()
    )
}

fn attempt_end(events: &[spectacular::record::Event]) -> spectacular::record::EventData {
    use spectacular::record::EventData;
    events
        .iter()
        .rev()
        .map(|e| e.data.clone())
        .find(|d| {
            matches!(
                d,
                EventData::AttemptSucceeded(_) | EventData::AttemptFailed(_)
            )
        })
        .expect("an attempt ended")
}

/// A client that reported usage and then hung is stopped by the timeout; what it reported is
/// kept, the timeout hands over to the next agent, and the attempt's usage is the sum of both
/// hops (the money was spent), under the catalogue's model name, with the answer recorded.
#[test]
fn a_timed_out_hop_falls_back_and_its_usage_is_kept() {
    use crate::runtime::{code, count, text, Project};
    use spectacular::record::EventData;
    let p = Project::new(
        "mission: hops\nphases:\n  work:\n    agent: slow\n    model: gpt\n    timeout: 2s\n",
    );
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        format!(
            "agents:\n{}{}",
            fake_entry(
                "slow",
                "codex",
                "codex-success.jsonl",
                "    fallbacks: [quick]\n"
            )
            .replace(
                "FAKE_AGENT_SAMPLE:",
                "FAKE_AGENT_HANG: \"30\", FAKE_AGENT_SAMPLE:"
            ),
            fake_entry(
                "quick",
                "claude",
                "claude-success.json",
                "    model: claude-sonnet\n"
            )
        ),
    )
    .unwrap();
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    assert_eq!(count(&events, "fallback.activated", "work"), 1);
    let reason = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::FallbackActivated(f) => Some(f.reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(reason.starts_with("timeout:"), "{reason}");
    let EventData::AttemptSucceeded(done) = attempt_end(&events) else {
        panic!("{}", text(&out))
    };
    assert_eq!(done.agent.as_deref(), Some("quick"));
    assert_eq!(
        done.result.as_deref(),
        Some("Done: added the parser and its tests.")
    );
    // The hung Codex hop, priced from the catalogue, plus Claude's reported cost.
    let mut codex = adapter("codex")
        .parse(Some(0), &sample("codex-success.jsonl"), "")
        .usage;
    price(
        &mut codex,
        &Prices {
            input: 1.25,
            output: 10.0,
            cache_read: Some(0.125),
            cache_write: None,
        },
    );
    let claude = adapter("claude-code")
        .parse(Some(0), &sample("claude-success.json"), "")
        .usage;
    let usage = done.usage.expect("usage");
    assert_eq!(usage.input_tokens, codex.input_tokens + claude.input_tokens);
    assert_eq!(
        usage.output_tokens,
        codex.output_tokens + claude.output_tokens
    );
    let expected = codex.cost_usd.unwrap() + claude.cost_usd.unwrap();
    assert!(
        (usage.cost_usd.unwrap() - expected).abs() < 1e-12,
        "{usage:?} vs {expected}"
    );
    // One name per model: the catalogue's, not the provider id Claude reports.
    assert_eq!(usage.model.as_deref(), Some("claude-sonnet"));
}

/// Under a budget, a model without a price is refused with a message naming `models.yaml`,
/// before any client starts (never a zero reservation, nor `--max-budget-usd 0`).
#[test]
fn an_unpriced_model_under_a_budget_is_refused() {
    use crate::runtime::{code, text, Project};
    use spectacular::record::EventData;
    let p = Project::new(
        "mission: unpriced\nbudget: { max_usd: 5 }\nphases:\n  work:\n    agent: claude\n    model: my-private-model\n",
    );
    let record = p.path().join("argv.bin");
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        format!(
            "agents:\n{}",
            fake_entry("claude", "claude", "claude-success.json", "").replace(
                "FAKE_AGENT_SAMPLE:",
                &format!(
                    "FAKE_AGENT_RECORD: {}, FAKE_AGENT_SAMPLE:",
                    record.display()
                )
            )
        ),
    )
    .unwrap();
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let EventData::AttemptFailed(failed) = attempt_end(&p.events()) else {
        panic!("{}", text(&out))
    };
    assert_eq!(failed.kind, spectacular::model::FailureKind::Budget);
    assert!(
        failed.message.contains("`my-private-model`") && failed.message.contains("models.yaml"),
        "{}",
        failed.message
    );
    assert!(!record.exists(), "the client was started");
}

/// The default routing pack does not override the `model:` an agent names.
#[test]
fn an_agents_own_model_wins_over_the_default_route() {
    use crate::runtime::{code, text, Project};
    use spectacular::record::EventData;
    let p = Project::new("mission: own\nphases:\n  work:\n    role: planner\n");
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        format!(
            "agents:\n{}",
            fake_entry(
                "claude",
                "claude",
                "claude-success.json",
                "    roles: [planner]\n    model: claude-haiku\n"
            )
        ),
    )
    .unwrap();
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let argv = p
        .events()
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptStarted(s) => s.argv.clone(),
            _ => None,
        })
        .unwrap();
    let at = argv.iter().position(|a| a == "--model").expect("--model");
    assert_eq!(argv[at + 1], "claude-haiku-4-5", "{argv:?}");
}

#[test]
fn agents_doctor_points_to_the_command_adapter_when_nothing_can_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(".git")).expect("git marker");
    let out = crate::support::run_cli(
        dir.path(),
        &["agents", "doctor"],
        &[("PATH", "/nonexistent")],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stdout.contains("0 of "), "{}", out.stdout);
    for expected in [
        "No client can run here",
        "`command` agent",
        "\"Try it on your project without a model\" (book/src/without-a-model.md)",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected} in\n{}",
            out.stdout
        );
    }
    assert!(crate::support::repo_root()
        .join("book/src/without-a-model.md")
        .is_file());
}
