//! Event sync to a control plane, against the real NATS server on 127.0.0.1:4222 (per-test
//! stream names): the offline queue drained after an outage, duplicates not counted twice, a
//! wrong token refused with a clear message, the cost view across two projects, the fleet
//! budget, and hostile batches. With `CI=true` and NATS unreachable, these tests fail; elsewhere
//! they say they were skipped.

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::runtime::{code, text, Project};

const NATS: &str = "127.0.0.1:4222";
const TOKEN: &str = "fleet-token-0123456789";

/// Is NATS there? In CI it must be; elsewhere a test without it says it was skipped.
fn nats_or_skip(test: &str) -> bool {
    let addr = NATS.parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: NATS is not reachable at {NATS}, and CI=true: CI must start `nats-server -js` first");
    }
    eprintln!(
        "{test}: SKIPPED: NATS is not reachable at {NATS} (start `nats-server -js` to run it)"
    );
    false
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A per-test stream, deleted at the end.
struct Stream(String);

impl Stream {
    fn new(test: &str) -> Stream {
        Stream(format!("SYNC_{test}_{}", std::process::id()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let name = self.0.clone();
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            if let Ok(client) = async_nats::connect(NATS).await {
                let _ = async_nats::jetstream::new(client)
                    .delete_stream(&name)
                    .await;
            }
        });
    }
}

/// A running `spectacular serve`, stopped when dropped.
struct Plane {
    child: Child,
    url: String,
}

impl Plane {
    fn start(stream: &Stream, data: &Path, port: u16, extra: &[&str]) -> Plane {
        let port = port.to_string();
        let mut args = vec![
            "serve", "--nats", NATS, "--token", TOKEN, "--port", &port, "--stream", &stream.0,
        ];
        let data = data.display().to_string();
        args.extend(["--data", data.as_str()]);
        args.extend(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_spectacular"))
            .args(&args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spectacular serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(url) = line.trim().strip_prefix("control plane at ") else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "serve did not start: {line}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        Plane {
            url: url.to_string(),
            child,
        }
    }

    /// `GET path` with the token, as JSON.
    fn get(&self, path: &str) -> Value {
        let mut response = ureq::get(&format!("{}{path}", self.url))
            .header("authorization", &format!("Bearer {TOKEN}"))
            .call()
            .unwrap();
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// `POST /v1/events` with `token`: (status, answer).
    fn post(&self, token: &str, body: &[u8]) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .post(&format!("{}/v1/events", self.url))
            .header("authorization", &format!("Bearer {token}"))
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A project whose phase `work` runs the fake Claude Code (it reports `claude-success.json`'s
/// cost), syncing to `url` as `project` of `team`.
fn project(url: &str, project: &str, team: &str, extra: &str) -> Project {
    let p = Project::new("mission: m\nphases:\n  work: { agent: coder, prompt: work.md.j2 }\n");
    std::fs::write(p.path().join("work.md.j2"), "Work.\n").unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        format!(
            "agents:\n  coder:\n    adapter: claude-code\n    binary: {}\n    model: claude-sonnet\n    env: {{ FAKE_AGENT_SAMPLE: {} }}\n",
            fixtures.join("claude/claude").display(),
            fixtures.join("samples/claude-success.json").display(),
        ),
    )
    .unwrap();
    std::fs::write(
        p.path().join(".spectacular/config.yaml"),
        format!("sync:\n  url: {url}\n  project: {project}\n  team: {team}\n{extra}"),
    )
    .unwrap();
    p
}

fn cli(p: &Project, args: &[&str], token: &str) -> Output {
    p.command(args)
        .env("SPECTACULAR_SYNC_TOKEN", token)
        .env("SPECTACULAR_CONFIG_DIR", p.path().join(".user-config"))
        .output()
        .unwrap()
}

/// The dollars the fake Claude reports for one attempt.
fn claude_cost() -> f64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/agents/samples/claude-success.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["total_cost_usd"].as_f64().unwrap()
}

/// Every event of every run of `p`.
fn logged(p: &Project) -> u64 {
    let store = p.store();
    store
        .run_ids()
        .unwrap()
        .iter()
        .map(|r| store.read_events(r).unwrap().len() as u64)
        .sum()
}

fn status(p: &Project) -> Value {
    let out = cli(p, &["sync", "status", "--json"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn cost_of(plane: &Plane, by: &str, key: &str) -> f64 {
    let view = plane.get(&format!("/v1/cost?by={by}"));
    view["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .map(|r| r["usd"].as_f64().unwrap())
        .unwrap_or(0.0)
}

#[test]
fn the_offline_queue_is_drained_after_an_outage_and_nothing_counts_twice() {
    if !nats_or_skip("offline_queue") {
        return;
    }
    let stream = Stream::new("outage");
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let p = project(&url, "alpha", "core", "");

    // The control plane is not there yet: the run succeeds all the same, its events queue.
    let out = cli(&p, &["run", "mission.yaml"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let s = status(&p);
    assert_eq!(s["pending"].as_u64(), Some(logged(&p)));
    assert_eq!(s["state"]["last_problem"]["kind"], "unreachable");
    let out = cli(&p, &["sync", "diagnose"], TOKEN);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("DOWN or unreachable"), "{}", text(&out));

    // Started late: one push sends everything.
    let plane = Plane::start(&stream, data.path(), port, &[]);
    let out = cli(&p, &["sync", "push"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let first = logged(&p);
    assert!(
        text(&out).contains(&format!(
            "sent: {first} accepted, 0 duplicate(s), 0 rejected; 0 pending"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(status(&p)["pending"], 0);

    // Stopped, a second run queues, restarted: drained, the run pushes on its own.
    drop(plane);
    let out = cli(&p, &["run", "mission.yaml"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(status(&p)["pending"].as_u64(), Some(logged(&p) - first));
    let plane = Plane::start(&stream, data.path(), port, &[]);
    let out = cli(&p, &["sync", "push"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let s = status(&p);
    assert_eq!(s["pending"], 0);
    assert_eq!(s["state"]["accepted"].as_u64(), Some(logged(&p)));
    let runs = plane.get("/v1/audit?project=alpha");
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2, "{runs}");
    let two_runs = 2.0 * claude_cost();
    assert!((cost_of(&plane, "project", "alpha") - two_runs).abs() < 1e-9);

    // A push that died before it moved its cursor sends everything again: all duplicates, and
    // the cost does not move.
    std::fs::remove_file(p.path().join(".spectacular/sync/cursor.json")).unwrap();
    let out = cli(&p, &["sync", "push"], TOKEN);
    assert!(
        text(&out).contains(&format!("sent: 0 accepted, {} duplicate(s)", logged(&p))),
        "{}",
        text(&out)
    );
    assert!((cost_of(&plane, "project", "alpha") - two_runs).abs() < 1e-9);

    // The projection rebuilt from the stream counts each event once too.
    drop(plane);
    let plane = Plane::start(&stream, data.path(), port, &["--rebuild"]);
    assert!((cost_of(&plane, "project", "alpha") - two_runs).abs() < 1e-9);
    assert_eq!(plane.get("/v1/audit")["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn a_wrong_token_is_refused_with_a_clear_message_and_nothing_is_lost() {
    if !nats_or_skip("wrong_token") {
        return;
    }
    let stream = Stream::new("token");
    let data = tempfile::tempdir().unwrap();
    let plane = Plane::start(&stream, data.path(), 0, &[]);
    let p = project(&plane.url, "beta", "core", "");
    let out = cli(&p, &["run", "mission.yaml"], "not-the-token-at-all");
    assert_eq!(code(&out), 0, "sync never fails a run: {}", text(&out));
    let out = cli(&p, &["sync", "push"], "not-the-token-at-all");
    assert_eq!(code(&out), 1);
    let said = text(&out);
    assert!(said.contains("refused the token (HTTP 401)"), "{said}");
    assert!(said.contains("SPECTACULAR_SYNC_TOKEN"), "{said}");
    let out = cli(&p, &["sync", "diagnose"], "not-the-token-at-all");
    assert!(text(&out).contains("token: REFUSED"), "{}", text(&out));
    assert_eq!(status(&p)["pending"].as_u64(), Some(logged(&p)));
    // With the right token, everything goes.
    let out = cli(&p, &["sync", "push"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(status(&p)["pending"], 0);
}

#[test]
fn the_cost_view_spans_two_projects() {
    if !nats_or_skip("two_projects") {
        return;
    }
    let stream = Stream::new("fleet");
    let data = tempfile::tempdir().unwrap();
    let plane = Plane::start(&stream, data.path(), 0, &[]);
    let a = project(&plane.url, "payments", "money", "");
    let b = project(&plane.url, "search", "discovery", "");
    for p in [&a, &b] {
        let out = cli(p, &["run", "mission.yaml"], TOKEN);
        assert_eq!(code(&out), 0, "{}", text(&out));
        // The run pushed its events itself before it ended.
        assert_eq!(status(p)["pending"], 0, "{}", status(p));
    }
    let each = claude_cost();
    for (by, key) in [
        ("project", "payments"),
        ("project", "search"),
        ("team", "money"),
        ("team", "discovery"),
    ] {
        assert!((cost_of(&plane, by, key) - each).abs() < 1e-9, "{by} {key}");
    }
    assert!((cost_of(&plane, "agent", "coder") - 2.0 * each).abs() < 1e-9);
    let out = cli(&a, &["fleet", "cost", "--by", "project"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        table.contains("payments") && table.contains("search"),
        "{table}"
    );
    let audit = plane.get("/v1/audit");
    let runs = audit["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs
        .iter()
        .all(|r| r["mission"] == "m" && r["outcome"] == "succeeded"));
    assert!(runs
        .iter()
        .all(|r| r["agents"][0].as_str().unwrap().starts_with("coder")));
}

#[test]
fn a_project_over_its_fleet_budget_gets_its_agent_attempts_refused() {
    if !nats_or_skip("fleet_budget") {
        return;
    }
    let stream = Stream::new("budget");
    let data = tempfile::tempdir().unwrap();
    let plane = Plane::start(&stream, data.path(), 0, &["--budget", "capped=0"]);
    let p = project(&plane.url, "capped", "core", "  enforce_budget: true\n");
    let out = cli(&p, &["run", "mission.yaml"], TOKEN);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let refused = p.events().iter().any(|e| {
        matches!(&e.data, spectacular::record::EventData::AttemptFailed(f)
            if f.message.contains("fleet budget: project `capped`"))
    });
    assert!(refused, "{}", text(&out));
    // Another project, without a budget, runs.
    let free = project(&plane.url, "free", "core", "  enforce_budget: true\n");
    assert_eq!(code(&cli(&free, &["run", "mission.yaml"], TOKEN)), 0);
}

#[test]
fn hostile_batches_are_refused_or_rejected_with_reasons() {
    if !nats_or_skip("hostile") {
        return;
    }
    let stream = Stream::new("hostile");
    let data = tempfile::tempdir().unwrap();
    let plane = Plane::start(&stream, data.path(), 0, &[]);
    let batch = |project: &str, events: Vec<Value>| {
        serde_json::to_vec(&json!({ "project": project, "events": events })).unwrap()
    };
    // No token, a wrong one.
    assert_eq!(plane.post("", &batch("x", vec![])).0, 401);
    assert_eq!(
        plane.post("wrong-token-wrong-token", &batch("x", vec![])).0,
        401
    );
    // Names that would become paths, subjects or SQL.
    for name in ["../etc", "a.b", "x'; DROP TABLE calls; --", "", "*", ">"] {
        let (status, answer) = plane.post(TOKEN, &batch(name, vec![]));
        assert_eq!(status, 400, "{name}: {answer}");
    }
    // Not JSON; too many events; too big a body.
    assert_eq!(plane.post(TOKEN, b"{not json").0, 400);
    let many = (0..501).map(|_| json!({})).collect();
    assert_eq!(plane.post(TOKEN, &batch("x", many)).0, 413);
    // A body over the limit is refused from its length: the answer is 413, or, when the server
    // closed the connection before the client finished writing, a broken pipe.
    let huge = vec![b' '; 9 * 1024 * 1024];
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    match agent
        .post(&format!("{}/v1/events", plane.url))
        .header("authorization", &format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .send(&huge[..])
    {
        Ok(response) => assert_eq!(response.status().as_u16(), 413),
        Err(ureq::Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
        Err(e) => panic!("a body over the limit: {e}"),
    }
    // Events that are not events of this schema: each rejected with its reason.
    let good = json!({"event_id": "01JD3Q0000000000000000000A", "schema": 1,
        "run_id": "01JD3Q0000000000000000000B", "seq": 1, "ts": "2026-12-01T10:00:00.000Z",
        "actor": "engine", "type": "phase.ready", "data": {"phase": "x"}});
    let mut bad_id = good.clone();
    bad_id["event_id"] = json!("'; DROP TABLE events; --");
    let mut bad_type = good.clone();
    bad_type["type"] = json!("../../etc/passwd");
    let mut big = good.clone();
    big["data"]["phase"] = json!("x".repeat(600 * 1024));
    let (status, answer) = plane.post(
        TOKEN,
        &batch(
            "x",
            vec![bad_id, bad_type, big, json!(7), good.clone(), good],
        ),
    );
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "accepted",
            "duplicate"
        ]
    );
    assert!(results[0]["reason"].as_str().unwrap().contains("ULID"));
    assert!(results[2]["reason"]
        .as_str()
        .unwrap()
        .contains("over the limit"));
    // The tables are still there and answer.
    assert_eq!(plane.get("/v1/cost")["rows"], json!([]));
}

#[test]
fn a_sync_section_with_errors_is_reported_where_it_is_wrong_and_the_run_goes_on() {
    let p = project("http://127.0.0.1:9", "a.b", "core", "  tokn_env: X\n");
    let out = cli(&p, &["sync", "status"], TOKEN);
    assert_eq!(code(&out), 65, "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("config.yaml:3:12 (sync.project)"), "{said}");
    assert!(said.contains("did you mean `token_env`?"), "{said}");
    let out = cli(&p, &["run", "mission.yaml"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("so sync is off"), "{}", text(&out));
}

#[test]
fn a_run_killed_with_sigkill_loses_no_event_and_sends_none_twice() {
    if !nats_or_skip("sigkill") {
        return;
    }
    let stream = Stream::new("sigkill");
    let data = tempfile::tempdir().unwrap();
    let plane = Plane::start(&stream, data.path(), 0, &[]);
    let p = project(&plane.url, "killed", "core", "");
    std::fs::write(
        p.path().join("mission.yaml"),
        "mission: k\nphases:\n  work: { agent: coder, prompt: work.md.j2 }\n  slow: { run: [sleep, '30'], needs: [work] }\n",
    )
    .unwrap();
    let mut engine = p
        .command(&["run", "mission.yaml"])
        .env("SPECTACULAR_SYNC_TOKEN", TOKEN)
        .env("SPECTACULAR_CONFIG_DIR", p.path().join(".user-config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    p.wait_for("the slow phase to start", |events| {
        events.iter().any(|e| {
            matches!(&e.data, spectacular::record::EventData::AttemptStarted(a) if a.phase == "slow")
        })
    });
    // SIGKILL: no last push, maybe a push cut in the middle.
    unsafe { libc::kill(engine.id() as i32, libc::SIGKILL) };
    engine.wait().unwrap();
    let out = cli(&p, &["sync", "push"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(status(&p)["pending"], 0);
    // Resumed elsewhere in time, canceled, pushed: every event of the log accepted once.
    let out = cli(&p, &["cancel", "last"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = cli(&p, &["sync", "push"], TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let s = status(&p);
    assert_eq!(s["pending"], 0);
    assert_eq!(s["state"]["accepted"].as_u64(), Some(logged(&p)), "{s}");
    assert!((cost_of(&plane, "project", "killed") - claude_cost()).abs() < 1e-9);
}
