//! `spectacular mcp` at the protocol level: JSON-RPC lines over the server's stdin/stdout,
//! as a client sends them (the real Python SDK client is the real-client tier's
//! `tests/real-clients/mcp_client.py`): the handshake, the tool list, a located error, a run
//! started, followed, approved and read back.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

use crate::runtime::Project;

const GATED: &str = "
mission: mcp-demo
phases:
  build: { run: [echo, built] }
  gate: { needs: [build], approval: { reason: ship it? } }
  deploy: { needs: [gate], run: [echo, deployed] }
";

/// A server the test started, and what it said, line by line.
struct Session {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    next_id: u64,
    /// Notifications seen while waiting for answers.
    notes: Vec<Value>,
}

impl Session {
    fn start(p: &Project) -> Session {
        let mut child = p
            .command(&["mcp"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn spectacular mcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout carries only JSON-RPC: {e}: {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let mut session = Session {
            child,
            stdin,
            lines,
            next_id: 0,
            notes: Vec::new(),
        };
        let init = session.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": { "name": "it", "version": "0" }
            }),
        );
        assert_eq!(
            init["result"]["serverInfo"]["name"], "spectacular",
            "{init}"
        );
        assert!(
            init["result"]["capabilities"]["tools"].is_object(),
            "{init}"
        );
        session.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        session
    }

    fn send(&mut self, message: Value) {
        writeln!(self.stdin, "{message}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Send a request and wait (bounded) for its answer; notifications are kept.
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let message = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no answer to {method}"));
            if message["id"] == json!(id) {
                return message;
            }
            self.notes.push(message);
        }
    }

    fn tool(&mut self, name: &str, arguments: Value) -> Value {
        self.request(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        )
    }

    /// The `message` of every log notification seen so far.
    fn logged(&self) -> Vec<String> {
        self.notes
            .iter()
            .filter(|n| n["method"] == "notifications/message")
            .filter_map(|n| n["params"]["data"]["message"].as_str().map(str::to_string))
            .collect()
    }

    /// Wait (bounded) for the log notification whose message is `message`.
    fn wait_note(&mut self, message: &str) {
        while !self.logged().iter().any(|m| m == message) {
            let note = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no notification `{message}`: {:?}", self.logged()));
            self.notes.push(note);
        }
    }

    /// Call a tool until `done` holds for its structured result (bounded).
    fn until(&mut self, name: &str, arguments: Value, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..300 {
            let answer = self.tool(name, arguments.clone());
            let result = &answer["result"]["structuredContent"];
            if done(result) {
                return result.clone();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("`{name}` never reached what the test waits for");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_handshake_lists_every_tool_with_its_schema() {
    let p = Project::new(GATED);
    let mut s = Session::start(&p);
    let listed = s.request("tools/list", json!({}));
    let tools = listed["result"]["tools"].as_array().expect("tools");
    let mut names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "analyse_spec",
            "answer",
            "approve",
            "board",
            "cancel",
            "cost_report",
            "explain_decisions",
            "list_runs",
            "plan",
            "run_status",
            "start_run",
            "validate_mission"
        ]
    );
    let start = tools.iter().find(|t| t["name"] == "start_run").unwrap();
    assert_eq!(start["inputSchema"]["required"], json!(["mission"]));
    let templates = s.request("resources/templates/list", json!({}));
    assert!(templates
        .to_string()
        .contains("spectacular://runs/{run}/events"));
}

#[test]
fn an_invalid_mission_is_an_error_carrying_located_diagnostics() {
    let p = Project::new("mission: broken\nphases:\n  a: { run: [echo], needs: [nope] }\n");
    let mut s = Session::start(&p);
    let answer = s.tool("validate_mission", json!({ "mission": "mission.yaml" }));
    let error = &answer["error"];
    assert_eq!(error["code"], -32602, "{answer}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("mission.yaml:3:"), "{message}");
    let diagnostic = &error["data"]["diagnostics"][0];
    assert_eq!(diagnostic["line"], 3, "{answer}");
    assert!(diagnostic["column"].as_u64().is_some(), "{answer}");
    assert!(
        diagnostic["code"].as_str().unwrap().starts_with('M'),
        "{answer}"
    );

    // A bad argument and an unknown run are refusals that say what to fix.
    let answer = s.tool("board", json!({ "rnu": "last" }));
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`rnu` is not an argument"));
    let answer = s.tool("run_status", json!({ "run": "01NOPE" }));
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
}

#[test]
fn a_run_started_from_a_client_is_followed_approved_and_read_back() {
    let p = Project::new(GATED);
    let mut s = Session::start(&p);
    let valid = s.tool("validate_mission", json!({ "mission": "mission.yaml" }));
    assert_eq!(
        valid["result"]["structuredContent"]["valid"], true,
        "{valid}"
    );

    let started = s.tool("start_run", json!({ "mission": "mission.yaml" }));
    let run_id = started["result"]["structuredContent"]["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"))
        .to_string();
    assert_eq!(run_id.len(), 26);

    let status = s.until("run_status", json!({ "run": run_id }), |r| {
        r["status"] == "suspended"
    });
    assert!(status.to_string().contains("gate"), "{status}");
    let waiting = s.tool("answer", json!({ "run": run_id }));
    let waiting = &waiting["result"]["structuredContent"]["waiting"];
    assert_eq!(waiting[0]["phase"], "gate", "{waiting}");
    assert_eq!(waiting[0]["reason"], "ship it?", "{waiting}");
    let approved = s.tool("approve", json!({ "run": run_id, "phase": "gate" }));
    assert_eq!(
        approved["result"]["structuredContent"]["resumed"], true,
        "{approved}"
    );
    s.until("run_status", json!({ "run": run_id }), |r| {
        r["status"] == "succeeded"
    });

    let board = s.tool("board", json!({ "run": run_id }));
    assert!(board["result"]["structuredContent"].is_object(), "{board}");
    let runs = s.tool("list_runs", json!({}));
    assert!(runs.to_string().contains(&run_id), "{runs}");
    let events = s.request(
        "resources/read",
        json!({ "uri": format!("spectacular://runs/{run_id}/events") }),
    );
    let text = events["result"]["contents"][0]["text"].as_str().unwrap();
    assert!(text.contains("\"run.succeeded\""), "{text}");

    // The run's events reach the client as notifications: those before the gate (the follower
    // may still be sending them; it reads the log on its own schedule)...
    s.wait_note("run.started");
    s.wait_note("phase.succeeded build");
    // And, once approved and resumed, the rest of the run up to its end, each event once.
    s.wait_note("run.succeeded");
    let logged = s.logged();
    let once = |m: &str| logged.iter().filter(|l| *l == m).count() == 1;
    assert!(once("phase.succeeded deploy"), "{logged:?}");
    assert!(once("run.started"), "{logged:?}");
}

/// The official Python MCP SDK's client (installed by `tests/mcp-client/run`, which sets
/// `MCP_PYTHON`) against the server: `tests/mcp-client/client.py`.
mod python_client {
    use super::*;

    #[test]
    #[ignore = "needs the Python MCP SDK: run tests/mcp-client/run"]
    fn validates_starts_and_reads_a_run() {
        let python = std::env::var("MCP_PYTHON")
            .expect("MCP_PYTHON names the Python of the MCP SDK: run tests/mcp-client/run");
        let p = Project::new(GATED);
        std::fs::write(
            p.path().join("broken.yaml"),
            "mission: broken\nphases:\n  a: { run: [echo], needs: [nope] }\n",
        )
        .unwrap();
        let script = crate::support::repo_root().join("tests/mcp-client/client.py");
        let output = std::process::Command::new(python)
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_spectacular"))
            .arg(p.path())
            .env("NO_COLOR", "1")
            .env_remove("SPECTACULAR_STORE")
            .output()
            .expect("run the Python client");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "the client failed:\n{stderr}");
        let seen: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&output.stdout))
        });

        assert_eq!(seen["server"], "spectacular");
        assert_eq!(seen["tools"].as_array().map(Vec::len), Some(12), "{seen}");
        assert_eq!(seen["valid"], true);
        let invalid = &seen["invalid"];
        assert_eq!(invalid["code"], -32602, "{invalid}");
        assert!(
            invalid["message"]
                .as_str()
                .unwrap()
                .contains("broken.yaml:3:"),
            "{invalid}"
        );
        assert_eq!(invalid["data"]["diagnostics"][0]["line"], 3, "{invalid}");
        assert_eq!(seen["suspended_status"], "suspended");
        assert!(seen["board"].is_object(), "{seen}");
        assert_eq!(seen["resumed"], true);
        assert_eq!(seen["final_status"], "succeeded");
        let events = seen["events"].as_array().unwrap();
        assert_eq!(events.first().unwrap(), "run.started");
        assert_eq!(events.last().unwrap(), "run.succeeded");
        let notes = seen["notifications"].as_array().unwrap();
        assert!(
            notes.iter().any(|n| n["type"] == "approval.requested"),
            "the run's events reach the client as notifications: {notes:?}"
        );
    }
}

/// The MCP servers and tools agents are given: `config.yaml`'s `mcp_servers` and
/// `mcp_tools`, as a `govern` decision narrows them, reach the client as its own arguments
/// and files, with the variables the servers refer to kept in its environment.
mod scoped_tools {
    use std::path::Path;

    use super::*;

    const CONFIG: &str = "
mcp_servers:
  github:
    command: github-mcp-server
    args: [stdio]
    env: { GITHUB_TOKEN: '${GITHUB_TOKEN}' }
  filesystem:
    command: npx
    args: [-y, '@modelcontextprotocol/server-filesystem', '.']
  db:
    command: db-mcp
mcp_tools:
  roles:
    planner: [github.search_issues, github.get_issue, filesystem.*]
  agents:
    claude: [github.*, filesystem.read_file, db.*]
";

    fn project(narrow: Option<&str>) -> Project {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
        let p = Project::new("mission: scoped\nphases:\n  plan: { role: planner }\n");
        let dot = p.path().join(".spectacular");
        std::fs::write(dot.join("config.yaml"), CONFIG).unwrap();
        std::fs::write(
            dot.join("agents.yaml"),
            format!(
                "agents:\n  claude:\n    adapter: claude-code\n    binary: {}\n    roles: [planner]\n    env: {{ FAKE_AGENT_SAMPLE: {}, FAKE_AGENT_RECORD: {}, FAKE_AGENT_SHOW: GITHUB_TOKEN }}\n",
                fixtures.join("claude/claude").display(),
                fixtures.join("samples/claude-success.json").display(),
                p.path().join("argv").display(),
            ),
        )
        .unwrap();
        if let Some(tools) = narrow {
            let pack = dot.join("policies/narrow");
            std::fs::create_dir_all(&pack).unwrap();
            std::fs::write(
                pack.join("pack.yaml"),
                "name: narrow\nversion: \"1.0.0\"\nhooks: [govern]\n",
            )
            .unwrap();
            std::fs::write(
                pack.join("policy.rhai"),
                format!(
                    "fn govern(ctx) {{\n    #{{ decision: \"allow\", mcp_tools: {tools} }}\n}}\n"
                ),
            )
            .unwrap();
        }
        p
    }

    fn argv(p: &Project) -> Vec<String> {
        let bytes = std::fs::read(p.path().join("argv")).expect("the client ran");
        bytes
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    fn run(p: &Project) {
        let out = p
            .command(&["run", "mission.yaml"])
            .env("GITHUB_TOKEN", "ghp_mcp_test_token_1234567890")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn claude_code_gets_the_tools_role_and_agent_both_allow() {
        let p = project(None);
        run(&p);
        let argv = argv(&p);
        assert!(
            argv.contains(&"--allowedTools=mcp__filesystem__read_file,mcp__github__get_issue,mcp__github__search_issues".to_string()),
            "{argv:?}"
        );
        assert!(
            argv.contains(&"--strict-mcp-config".to_string()),
            "{argv:?}"
        );
        // What the attempt was given is in its log: `attempt.started` records the argv.
        let recorded = p
            .events()
            .into_iter()
            .find_map(|e| match e.data {
                spectacular::record::EventData::AttemptStarted(d) => d.argv,
                _ => None,
            })
            .expect("attempt.started with its argv");
        assert!(
            recorded
                .iter()
                .any(|a| a.starts_with("--allowedTools=mcp__filesystem__read_file")),
            "{recorded:?}"
        );
        let config = argv
            .iter()
            .find_map(|a| a.strip_prefix("--mcp-config="))
            .expect("--mcp-config");
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
        let servers = config["mcpServers"].as_object().unwrap();
        // `db` is allowed to the agent but not to the role: not given at all.
        assert_eq!(servers.keys().collect::<Vec<_>>(), ["filesystem", "github"]);
        assert_eq!(servers["github"]["env"]["GITHUB_TOKEN"], "${GITHUB_TOKEN}");
        assert_eq!(servers["github"]["command"], "github-mcp-server");

        // The token the server refers to stays in the client's environment (a secret is
        // otherwise removed), and is redacted from what the attempt recorded.
        let run_dir = p.store().run_dir(&p.run_id());
        let stderr = std::fs::read_to_string(run_dir.join("attempts/plan/1/stderr.log")).unwrap();
        assert!(!stderr.contains("ghp_mcp_test_token"), "{stderr}");
        assert!(
            stderr.contains("GITHUB_TOKEN=") && !stderr.contains("GITHUB_TOKEN=\n"),
            "{stderr}"
        );
    }

    #[test]
    fn a_mission_declares_its_own_servers_and_tools() {
        let p = project(None);
        std::fs::remove_file(p.path().join(".spectacular/config.yaml")).unwrap();
        std::fs::write(
            p.path().join("mission.yaml"),
            "mission: scoped
mcp_servers:
  docs: { command: docs-mcp, args: [--stdio] }
mcp_tools:
  roles: { planner: [docs.lookup] }
phases:
  plan: { role: planner }
",
        )
        .unwrap();
        run(&p);
        let argv = argv(&p);
        assert!(
            argv.contains(&"--allowedTools=mcp__docs__lookup".to_string()),
            "{argv:?}"
        );
        let config = argv
            .iter()
            .find_map(|a| a.strip_prefix("--mcp-config="))
            .expect("--mcp-config");
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
        assert_eq!(config["mcpServers"]["docs"]["args"], json!(["--stdio"]));
    }

    #[test]
    fn a_govern_decision_narrows_the_tools_and_never_widens_them() {
        let p = project(Some(
            "[\"github.search_issues\", \"db.query\", \"filesystem.*\"]",
        ));
        run(&p);
        let argv = argv(&p);
        // `db.query` is in neither list of the planner: naming it widens nothing.
        assert!(
            argv.contains(
                &"--allowedTools=mcp__filesystem__read_file,mcp__github__search_issues".to_string()
            ),
            "{argv:?}"
        );
    }
}
