//! `spectacular dashboard` over HTTP: every API request needs the token, actions are `POST`
//! only from the dashboard's own origin, approving from it records the same event as the
//! CLI and lets the run go on, its event stream delivers what the log gains, and neither its
//! JSON nor an attempt's log shows a secret.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use spectacular::record::EventData;

use crate::runtime::{code, text, Project};

const GATED: &str = "
mission: dash-demo
phases:
  build: { run: [echo, built] }
  gate: { needs: [build], approval: { reason: ship it? } }
  deploy: { needs: [gate], run: [echo, deployed] }
";

/// A dashboard the test started; stopped when dropped.
struct Dashboard {
    child: Child,
    /// `127.0.0.1:<port>`
    addr: String,
    token: String,
}

impl Dashboard {
    fn start(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Dashboard {
        let mut all = vec!["dashboard"];
        all.extend_from_slice(args);
        let mut command = p.command(&all);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn spectacular dashboard");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("dashboard at http://")
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        let (addr, token) = url.split_once("/?token=").expect("a token in the URL");
        assert_eq!(token.len(), 32, "{url}");
        Dashboard {
            addr: addr.to_string(),
            token: token.to_string(),
            child,
        }
    }

    /// `method path` with the token and the dashboard's own Host (and Origin for a POST).
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let origin = format!("http://{}", self.addr);
        let mut headers = vec![("x-spectacular-token", self.token.as_str())];
        if method == "POST" {
            headers.push(("origin", &origin));
        }
        request(&self.addr, method, path, &headers, body)
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; the status and the body. `host` among `headers` replaces the
/// address as the `Host`.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the dashboard");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let host = headers
        .iter()
        .find(|(k, _)| *k == "host")
        .map_or(addr, |(_, v)| *v);
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n");
    for (k, v) in headers.iter().filter(|(k, _)| *k != "host") {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if method == "POST" {
        head.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn gated_run() -> Project {
    let p = Project::new(GATED);
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    p
}

#[test]
fn every_api_request_needs_the_token() {
    let p = gated_run();
    let d = Dashboard::start(&p, &[], &[]);
    let (status, body) = request(&d.addr, "GET", "/api/runs", &[], None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("needs the dashboard's token"), "{body}");
    let wrong = [("x-spectacular-token", "0123456789abcdef0123456789abcdef")];
    assert_eq!(request(&d.addr, "GET", "/api/runs", &wrong, None).0, 401);
    // The event stream takes it in the query (EventSource cannot send headers).
    let path = format!("/api/runs?token={}", d.token);
    assert_eq!(request(&d.addr, "GET", &path, &[], None).0, 200);
    let (status, body) = d.call("GET", "/api/runs", None);
    assert_eq!(status, 200, "{body}");
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(runs[0]["run_id"], p.run_id().as_str());
    assert_eq!(runs[0]["status"], "suspended");
    // An action without the token is refused before anything else is looked at.
    let origin = format!("http://{}", d.addr);
    let path = format!("/api/runs/{}/approve", p.run_id());
    let (status, _) = request(
        &d.addr,
        "POST",
        &path,
        &[("origin", &origin)],
        Some(r#"{"phase":"gate"}"#),
    );
    assert_eq!(status, 401);
    // The page itself holds no data and loads without the token.
    let (status, page) = request(&d.addr, "GET", "/", &[], None);
    assert_eq!(status, 200);
    assert!(page.contains("/app.js"), "{page}");
}

#[test]
fn actions_are_post_only_and_from_the_dashboards_own_origin() {
    let p = gated_run();
    let d = Dashboard::start(&p, &[], &[]);
    let path = format!("/api/runs/{}/approve", p.run_id());
    let token = ("x-spectacular-token", d.token.as_str());
    let body = Some(r#"{"phase":"gate"}"#);
    // GET on an action: method not allowed.
    assert_eq!(d.call("GET", &path, None).0, 405);
    // No Origin, another origin, a cross-site fetch: refused.
    assert_eq!(request(&d.addr, "POST", &path, &[token], body).0, 403);
    let evil = [token, ("origin", "http://evil.example")];
    let (status, text) = request(&d.addr, "POST", &path, &evil, body);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("cross-origin"), "{text}");
    let origin = format!("http://{}", d.addr);
    let cross = [
        token,
        ("origin", origin.as_str()),
        ("sec-fetch-site", "cross-site"),
    ];
    assert_eq!(request(&d.addr, "POST", &path, &cross, body).0, 403);
    // A name that resolves to 127.0.0.1 (DNS rebinding) is not the dashboard's host.
    let rebound = [
        token,
        ("host", "evil.example:80"),
        ("origin", "http://evil.example:80"),
    ];
    assert_eq!(request(&d.addr, "POST", &path, &rebound, body).0, 403);
    assert_eq!(
        request(
            &d.addr,
            "GET",
            "/api/runs",
            &[token, ("host", "evil.example")],
            None
        )
        .0,
        403
    );
    // Nothing was recorded.
    assert!(!p
        .events()
        .iter()
        .any(|e| matches!(e.data, EventData::ApprovalDecided(_))));
    // A gate that does not wait is refused with the CLI's own words.
    let (status, text) = d.call("POST", &path, Some(r#"{"phase":"deploy"}"#));
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("has no phase `deploy` waiting"), "{text}");
}

#[test]
fn a_read_only_dashboard_refuses_every_action() {
    let p = gated_run();
    let d = Dashboard::start(&p, &["--read-only"], &[]);
    let path = format!("/api/runs/{}/cancel", p.run_id());
    let (status, text) = d.call("POST", &path, Some("{}"));
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("read-only"), "{text}");
    let (_, run) = d.call("GET", &format!("/api/runs/{}", p.run_id()), None);
    let run: serde_json::Value = serde_json::from_str(&run).unwrap();
    assert_eq!(run["read_only"], true);
}

#[test]
fn approving_from_the_dashboard_records_what_the_cli_records_and_the_run_goes_on() {
    let actor = [("SPECTACULAR_ACTOR", "user:reviewer")];
    // From the CLI.
    let cli = gated_run();
    let out = cli
        .command(&["approve", "last", "gate", "--comment=--reject looks good"])
        .env("SPECTACULAR_ACTOR", "user:reviewer")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    // From the dashboard.
    let p = gated_run();
    let d = Dashboard::start(&p, &[], &actor);
    let (status, body) = d.call(
        "POST",
        &format!("/api/runs/{}/approve", p.run_id()),
        Some(r#"{"phase":"gate","approve":true,"comment":"--reject looks good"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["resumed"], true, "{body}");
    let decided = |p: &Project| {
        p.events()
            .into_iter()
            .find(|e| matches!(e.data, EventData::ApprovalDecided(_)))
            .expect("an approval.decided event")
    };
    let (a, b) = (decided(&cli), decided(&p));
    assert_eq!(a.data, b.data);
    assert_eq!(a.actor, b.actor);
    assert_eq!(b.actor, "user:reviewer");
    // The dashboard started the engine again: the run finishes.
    p.wait_for("the run to succeed", |events| {
        events
            .iter()
            .any(|e| matches!(e.data, EventData::RunSucceeded(_)))
    });
    let (_, run) = d.call("GET", &format!("/api/runs/{}", p.run_id()), None);
    let run: serde_json::Value = serde_json::from_str(&run).unwrap();
    assert_eq!(run["status"]["status"], "succeeded");
    assert_eq!(run["waiting"], serde_json::json!([]));
}

#[test]
fn the_event_stream_delivers_what_the_log_gains() {
    let p = gated_run();
    let d = Dashboard::start(&p, &[], &[]);
    let mut stream = TcpStream::connect(&d.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let head = format!(
        "GET /api/stream?token={}&run={} HTTP/1.1\r\nhost: {}\r\n\r\n",
        d.token,
        p.run_id(),
        d.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut seen = String::new();
    let mut read_until = |what: &str, seen: &mut String| {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while !seen.contains(what) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no `{what}` in the stream:\n{seen}"
            );
            if let Ok(n) = stream.read(&mut buf) {
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    };
    read_until("approval.requested", &mut seen);
    assert!(seen.contains("text/event-stream"), "{seen}");
    seen.clear();
    // Another terminal approves: the stream tells.
    let out = p.run(&["approve", "last", "gate"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    read_until("approval.decided", &mut seen);
    assert!(seen.contains("event: events"), "{seen}");
}

#[test]
fn no_secret_reaches_a_page() {
    let secret = "sk-dashboard-test-0123456789abcdef";
    let p = Project::new(&format!(
        "
mission: leaky
phases:
  say: {{ run: [echo, '{secret}'] }}
"
    ));
    let out = p
        .command(&["run", "mission.yaml"])
        .env("OPENAI_API_KEY", secret)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let d = Dashboard::start(&p, &[], &[("OPENAI_API_KEY", secret)]);
    let run = p.run_id();
    for path in [
        format!("/api/runs/{run}"),
        format!("/api/runs/{run}/report"),
        format!("/api/runs/{run}/board"),
        "/api/runs".to_string(),
        "/api/costs".to_string(),
    ] {
        let (status, body) = d.call("GET", &path, None);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains(secret), "{path} shows the secret: {body}");
    }
    let (status, log) = d.call(
        "GET",
        &format!("/api/runs/{run}/log?instance=say&attempt=1&stream=stdout"),
        None,
    );
    assert_eq!(status, 200, "{log}");
    assert!(!log.contains(secret), "{log}");
    assert!(log.contains("[redacted:OPENAI_API_KEY]"), "{log}");
    // A path out of the run's directory is refused.
    let (status, _) = d.call(
        "GET",
        &format!("/api/runs/{run}/log?instance=..&attempt=1"),
        None,
    );
    assert_eq!(status, 400);
}

#[test]
fn binding_beyond_loopback_needs_a_chosen_token() {
    let p = Project::new(GATED);
    let out = p.run(&["dashboard", "--bind", "0.0.0.0"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("needs a token you choose"),
        "{}",
        text(&out)
    );
    let out = p.run(&["dashboard", "--token", "short"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("at least 16 characters"),
        "{}",
        text(&out)
    );
}

fn cli_json(p: &Project, args: &[&str]) -> serde_json::Value {
    let out = p.run(args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_pages_show_the_numbers_of_status_board_and_cost() {
    let p = Project::new(
        "
mission: costly
budget: { max_usd: 0.05, soft_usd: 0.01 }
phases:
  a: { role: executor, model: gpt, prompt: work.md.j2 }
  gate: { needs: [a], approval: { reason: ship it? } }
",
    );
    std::fs::write(p.path().join("work.md.j2"), "Work on item 10.\n").unwrap();
    crate::runtime::write_agents(
        &p,
        &[crate::runtime::fake_agent(
            "codex",
            "codex",
            "executor",
            "codex-success.jsonl",
        )],
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let costly = p.run_id();
    let quickstart = crate::support::repo_root().join("examples/quickstart");
    let out = p.run(&["run", quickstart.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let planned = p.run_id();
    let d = Dashboard::start(&p, &[], &[]);
    let get = |path: &str| -> serde_json::Value {
        let (status, body) = d.call("GET", path, None);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    };

    // The run page: `status --json`'s phases, and the mission's budget.
    let run = get(&format!("/api/runs/{costly}"));
    let status = cli_json(&p, &["status", &costly, "--json"]);
    assert_eq!(run["status"]["phases"], status["phases"]);
    assert_eq!(run["status"]["status"], "suspended");
    let cost = crate::budget::codex_cost("codex-success.jsonl", "gpt");
    assert!((run["cost"]["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9);
    assert_eq!(run["budget"]["max_usd"], 0.05);
    assert_eq!(run["budget"]["soft_usd"], 0.01);
    assert_eq!(run["waiting"][0]["phase"], "gate");
    assert_eq!(
        run["graph"]["edges"][0],
        serde_json::json!({"from": "a", "to": "gate"})
    );

    // The board: `board --json`'s work packages, in the same columns.
    let board = get(&format!("/api/runs/{planned}/board"));
    let cli_board = cli_json(&p, &["board", &planned, "--json"]);
    let cards = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                (s("work"), s("state"), s("column"))
            })
            .collect()
    };
    let shown = cards(&board["board"]["work_packages"]);
    assert_eq!(shown, cards(&cli_board["work_packages"]));
    assert_eq!(shown.len(), 3, "{board:#}");

    // Costs: `cost --by … --json`, every grouping.
    let costs = get("/api/costs");
    for by in ["day", "agent", "model", "mission", "phase"] {
        let cli = cli_json(&p, &["cost", "--by", by, "--json"]);
        assert_eq!(costs["reports"][by]["groups"], cli["groups"], "--by {by}");
        assert_eq!(
            costs["reports"][by]["cost_usd"], cli["cost_usd"],
            "--by {by}"
        );
    }
    let since = get("/api/costs?since=7d");
    assert_eq!(since["reports"]["model"]["calls"], 1 + 4);
    let (status, body) = d.call("GET", "/api/costs?since=yesterday-ish", None);
    assert_eq!(status, 400, "{body}");

    // The runs list: both, newest first, with their costs.
    let runs = get("/api/runs");
    assert_eq!(runs[0]["run_id"], planned.as_str());
    assert_eq!(runs[1]["run_id"], costly.as_str());
    assert!((runs[1]["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9);
}

#[test]
fn answering_from_the_dashboard_records_the_answers_and_the_last_one_lets_the_run_go_on() {
    let p = Project::new(
        "
mission: asks
inputs:
  spec: { type: file }
phases:
  clarify:
    uses: builtin/clarify
    with: { spec: '{{ inputs.spec }}' }
    outputs:
      analysis: { path: analysis.json }
  after: { needs: [clarify], run: [echo, done] }
",
    );
    std::fs::write(
        p.path().join("spec.md"),
        "# Feature: greetings\n\n## Requirements\n\n- **FR-001**: The tool MUST greet the user by name.\n- **FR-002**: The README MUST show [NEEDS CLARIFICATION: which examples?]\n",
    )
    .unwrap();
    let out = p.run(&["run", "mission.yaml", "--input", "spec=spec.md"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let d = Dashboard::start(&p, &[], &[("SPECTACULAR_ACTOR", "user:answerer")]);
    let run = p.run_id();
    let (_, page) = d.call("GET", &format!("/api/runs/{run}"), None);
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let questions = page["waiting"][0]["questions"].as_array().unwrap().clone();
    assert!(!questions.is_empty(), "{page:#}");
    assert_eq!(page["waiting"][0]["phase"], "clarify");
    let path = format!("/api/runs/{run}/answer");
    // A question that was not asked is refused with the CLI's words.
    let body = format!(
        r#"{{"phase":"clarify","question":{},"answer":"x"}}"#,
        questions.len() + 1
    );
    let (status, text) = d.call("POST", &path, Some(&body));
    assert_eq!(status, 409, "{text}");
    for (i, q) in questions.iter().enumerate() {
        let body = serde_json::json!({
            "phase": "clarify", "question": q["n"], "answer": format!("--resume answer {}", i + 1),
        });
        let (status, text) = d.call("POST", &path, Some(&body.to_string()));
        assert_eq!(status, 200, "{text}");
        let said: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Only the last answer lets the run go on.
        assert_eq!(said["resumed"], i + 1 == questions.len(), "{text}");
    }
    p.wait_for("the run to succeed", |events| {
        events
            .iter()
            .any(|e| matches!(e.data, EventData::RunSucceeded(_)))
    });
    let answered: Vec<_> = p
        .events()
        .into_iter()
        .filter_map(|e| match e.data {
            EventData::ClarificationAnswered(a) => Some((a.question, a.answer, e.actor)),
            _ => None,
        })
        .collect();
    assert_eq!(answered.len(), questions.len());
    // A text that looks like an option is recorded as written.
    assert_eq!(
        answered[0],
        (
            1,
            "--resume answer 1".to_string(),
            "user:answerer".to_string()
        )
    );
}

#[test]
fn canceling_from_the_dashboard_stops_a_running_engine_through_its_inbox() {
    let p = Project::new(
        "
mission: slow
phases:
  wait: { run: [sleep, '30'] }
",
    );
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    p.wait_for("the attempt to start", |events| {
        events
            .iter()
            .any(|e| matches!(e.data, EventData::AttemptStarted(_)))
    });
    let d = Dashboard::start(&p, &[], &[]);
    let (_, page) = d.call("GET", &format!("/api/runs/{}", p.run_id()), None);
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["status"]["engine_running"], true, "{page:#}");
    let (status, text) = d.call(
        "POST",
        &format!("/api/runs/{}/cancel", p.run_id()),
        Some("{}"),
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("the running engine"), "{text}");
    let exit = engine.wait().unwrap();
    assert_eq!(exit.code(), Some(130));
    let events = p.events();
    let requested = events
        .iter()
        .find(|e| matches!(e.data, EventData::CancelRequested(_)))
        .expect("cancel.requested");
    assert_eq!(requested.actor, "user:tester");
    assert!(events
        .iter()
        .any(|e| matches!(e.data, EventData::RunCanceled(_))));
}
