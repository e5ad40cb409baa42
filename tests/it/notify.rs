//! Notifications: the project's webhooks get a signed message for each kind of event (a gate
//! waiting, questions waiting, a budget alert, the run failed or succeeded) in the JSON,
//! Slack and Discord shapes; a receiver that fails is tried again; one that is down or hangs
//! holds up nothing; a resumed run sends what was never recorded as delivered and nothing
//! twice; a bad `notify:` section is refused with its location. Every receiver is a loopback
//! server the test starts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use spectacular::record::event::{EventData, Notification};

use crate::runtime::{code, text, Project};

const SECRET: &str = "s3cret-webhook-key";

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The signature checked as a receiver would: HMAC-SHA256 of `<timestamp>.<body>`.
    fn assert_signed(&self, secret: &str) {
        let timestamp = self.header("x-spectacular-timestamp").expect("a timestamp");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let ts: u64 = timestamp.parse().expect("Unix seconds");
        assert!(now.abs_diff(ts) < 300, "a timestamp of now: {ts} vs {now}");
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(&self.body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            self.header("x-spectacular-signature"),
            Some(format!("v1={expected}").as_str()),
            "the signature of {}",
            String::from_utf8_lossy(&self.body)
        );
    }
}

/// How a receiver answers its n-th request (0-based): a status, or never (`None`) until the
/// test ends.
type Behaviour = Arc<dyn Fn(usize) -> Option<u16> + Send + Sync>;

/// A loopback webhook receiver.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    /// Dropped with the receiver: releases the requests it holds.
    _release: mpsc::Sender<()>,
}

impl Receiver {
    fn start(behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let (release, release_rx) = mpsc::channel();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (g, r) = (got.clone(), release_rx);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (g, r, b) = (g.clone(), r.clone(), behaviour.clone());
                std::thread::spawn(move || serve(stream, &g, &r, &b));
            }
        });
        Receiver {
            url,
            got,
            _release: release,
        }
    }

    fn ok() -> Receiver {
        Receiver::start(Arc::new(|_| Some(200)))
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    got: &Mutex<Vec<Received>>,
    release: &Mutex<mpsc::Receiver<()>>,
    behaviour: &Behaviour,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut headers = Vec::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((n, v)) = header.split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let n = {
            let mut got = got.lock().unwrap();
            got.push(Received { headers, body });
            got.len() - 1
        };
        let Some(status) = behaviour(n) else {
            // Hang: answer nothing until the test lets go.
            let _ = release.lock().unwrap().recv();
            return;
        };
        let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn write_config(p: &Project, config: &str) {
    std::fs::write(p.path().join(".spectacular/config.yaml"), config).unwrap();
}

fn notifications(p: &Project) -> Vec<(bool, Notification)> {
    p.events()
        .into_iter()
        .filter_map(|e| match e.data {
            EventData::NotificationSent(n) => Some((true, n)),
            EventData::NotificationFailed(n) => Some((false, n)),
            _ => None,
        })
        .collect()
}

const GATED_COSTLY: &str = "
mission: costly
budget: { max_usd: 0.05, soft_usd: 0.000001 }
phases:
  a: { role: executor, model: gpt, prompt: work.md.j2 }
  gate: { needs: [a], approval: { reason: ship it? } }
";

fn costly_project() -> Project {
    let p = Project::new(GATED_COSTLY);
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
    p
}

fn json_hook(url: &str, extra: &str) -> String {
    format!(
        "notify:\n  webhooks:\n    - name: team\n      url: {url}\n      secret_env: HOOK_SECRET\n{extra}"
    )
}

#[test]
fn every_kind_of_event_reaches_the_receiver_signed_and_each_delivery_is_recorded() {
    let receiver = Receiver::ok();
    // A gate and a budget alert, then the run succeeds once approved.
    let p = costly_project();
    write_config(&p, &json_hook(&receiver.url, ""));
    let run = |args: &[&str]| p.command(args).env("HOOK_SECRET", SECRET).output().unwrap();
    let out = run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let out = run(&["approve", "last", "gate", "--resume"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // A run that fails, and one that asks questions, in the same project.
    std::fs::write(
        p.path().join("fails.yaml"),
        "mission: fails\nphases:\n  broken: { run: [sh, -c, 'exit 4'] }\n",
    )
    .unwrap();
    let out = run(&["run", "fails.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    std::fs::write(
        p.path().join("asks.yaml"),
        "mission: asks\ninputs:\n  spec: { type: file }\nphases:\n  clarify:\n    uses: builtin/clarify\n    with: { spec: '{{ inputs.spec }}' }\n",
    )
    .unwrap();
    std::fs::write(
        p.path().join("spec.md"),
        "# Feature: greetings\n\n## Requirements\n\n- **FR-001**: The tool MUST greet the user by name.\n- **FR-002**: The README MUST show [NEEDS CLARIFICATION: which examples?]\n",
    )
    .unwrap();
    let out = run(&["run", "asks.yaml", "--input", "spec=spec.md"]);
    assert_eq!(code(&out), 3, "{}", text(&out));

    let got = receiver.got();
    let kinds: Vec<String> = got
        .iter()
        .map(|r| r.json()["kind"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["approval", "budget", "failed", "question", "succeeded"],
        "one message per kind: {kinds:?}"
    );
    for r in &got {
        r.assert_signed(SECRET);
        let body = r.json();
        assert_eq!(r.header("x-spectacular-event"), body["type"].as_str());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let text = body["text"].as_str().unwrap();
        assert!(text.contains(body["run_id"].as_str().unwrap()), "{text}");
        assert!(!String::from_utf8_lossy(&r.body).contains(SECRET));
    }
    let question = got.iter().find(|r| r.json()["kind"] == "question").unwrap();
    let q = question.json();
    assert_eq!(q["type"], "approval.requested");
    let questions = q["data"]["questions"].as_array().unwrap();
    assert!(
        questions
            .iter()
            .any(|x| x.as_str().unwrap().contains("Which examples")),
        "{q:#}"
    );
    assert!(q["text"].as_str().unwrap().contains("1. "), "{q:#}");
    let failed = got
        .iter()
        .find(|r| r.json()["kind"] == "failed")
        .unwrap()
        .json();
    assert_eq!(failed["data"]["failed"][0], "broken");

    // Each delivery is an event of its run, about the event it told; the secret is in none.
    let store = p.store();
    let mut recorded = 0;
    for r in &got {
        let body = r.json();
        let events = store.read_events(body["run_id"].as_str().unwrap()).unwrap();
        let seq = body["seq"].as_u64().unwrap();
        let told = events.iter().find(|e| e.seq == seq).unwrap();
        assert_eq!(told.data.type_name(), body["type"].as_str().unwrap());
        let sent: Vec<&Notification> = events
            .iter()
            .filter_map(|e| match &e.data {
                EventData::NotificationSent(n) if n.event_seq == seq => Some(n),
                _ => None,
            })
            .collect();
        assert_eq!(sent.len(), 1, "one notification.sent for event {seq}");
        assert_eq!(sent[0].webhook, "team");
        assert_eq!(sent[0].kind, body["kind"].as_str().unwrap());
        assert_eq!((sent[0].attempts, sent[0].status), (1, Some(200)));
        recorded += 1;
        let log = std::fs::read_to_string(store.run_dir(&told.run_id).join("events.jsonl"));
        assert!(!log.unwrap().contains(SECRET));
    }
    assert_eq!(recorded, 5);
    // The run that succeeded is still `succeeded`, although deliveries follow its end.
    let first = &got[0].json()["run_id"];
    let out = p.run(&["status", first.as_str().unwrap(), "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["status"], "succeeded", "{status:#}");
}

#[test]
fn slack_and_discord_get_their_own_shapes_with_run_text_escaped() {
    let slack = Receiver::ok();
    let discord = Receiver::ok();
    let p = Project::new("mission: fails\nphases:\n  broken: { run: [sh, -c, 'exit 4'] }\n");
    write_config(
        &p,
        &format!(
            "notify:\n  webhooks:\n    - name: slack\n      url_env: SLACK_URL\n      format: slack\n    - name: discord\n      url: {}\n      format: discord\n      events: [failed]\n",
            discord.url
        ),
    );
    let out = p
        .command(&["run", "mission.yaml"])
        .env("SLACK_URL", &slack.url)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));

    let s = slack.got();
    assert_eq!(s.len(), 1);
    let body = s[0].json();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("failed: broken"), "{text}");
    assert_eq!(body["blocks"][0]["type"], "section");
    assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
    assert_eq!(body["blocks"][0]["text"]["text"], body["text"]);
    assert!(
        s[0].header("x-spectacular-signature").is_none(),
        "no secret, no signature"
    );

    let d = discord.got();
    assert_eq!(d.len(), 1);
    let body = d[0].json();
    assert!(body["content"].as_str().unwrap().contains("failed: broken"));
    assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
    assert_eq!(body["embeds"][0]["title"], "failed · fails");

    // The Slack URL came from the environment: recorded by name, never by value.
    let log = std::fs::read_to_string(p.store().run_dir(&p.run_id()).join("events.jsonl")).unwrap();
    assert!(!log.contains(&slack.url), "{log}");
    let sent: Vec<String> = notifications(&p)
        .into_iter()
        .filter(|(ok, _)| *ok)
        .map(|(_, n)| n.webhook)
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
}

#[test]
fn a_receiver_that_fails_twice_gets_the_message_on_the_third_try() {
    let receiver = Receiver::start(Arc::new(|n| Some(if n < 2 { 503 } else { 200 })));
    let p = Project::new("mission: ok\nphases:\n  a: { run: [echo, hi] }\n");
    write_config(
        &p,
        &json_hook(&receiver.url, "      retries: 3\n      backoff: 50ms\n"),
    );
    let out = p
        .command(&["run", "mission.yaml"])
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.header("x-spectacular-delivery"))
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0] && id.is_some()),
        "{ids:?}"
    );
    for r in &got {
        r.assert_signed(SECRET);
    }
    let recorded = notifications(&p);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let (sent, n) = &recorded[0];
    assert!(sent);
    assert_eq!(
        (n.attempts, n.status, n.kind.as_str()),
        (3, Some(200), "succeeded")
    );
}

#[test]
fn a_receiver_that_refuses_is_not_tried_again_and_the_run_still_succeeds() {
    let receiver = Receiver::start(Arc::new(|_| Some(404)));
    let p = Project::new("mission: ok\nphases:\n  a: { run: [echo, hi] }\n");
    write_config(&p, &json_hook(&receiver.url, "      backoff: 50ms\n"));
    let out = p
        .command(&["run", "mission.yaml"])
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(receiver.got().len(), 1);
    let recorded = notifications(&p);
    let (sent, n) = &recorded[0];
    assert!(!sent);
    assert_eq!((n.attempts, n.status), (1, Some(404)));
    assert!(n.error.as_deref().unwrap().starts_with("HTTP 404"), "{n:?}");
}

#[test]
fn a_receiver_that_hangs_holds_up_neither_the_run_nor_the_engine() {
    let receiver = Receiver::start(Arc::new(|_| None));
    let p = Project::new("mission: ok\nphases:\n  a: { run: [echo, hi] }\n");
    write_config(
        &p,
        &format!(
            "notify:\n  exit_wait: 300ms\n  webhooks:\n    - name: slow\n      url: {}\n      timeout: 60s\n",
            receiver.url
        ),
    );
    let out = p.run(&["run", "mission.yaml"]);
    // The engine exited while the receiver still held the request unanswered: it answers
    // only once the test drops it, after these lines.
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(receiver.got().len(), 1, "the receiver got the request");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("webhook `slow` was not told (succeeded): no answer"),
        "{stderr}"
    );
    let events = p.events();
    let ended = events
        .iter()
        .position(|e| matches!(e.data, EventData::RunSucceeded(_)))
        .expect("run.succeeded");
    let failed = events
        .iter()
        .position(|e| matches!(e.data, EventData::NotificationFailed(_)))
        .expect("notification.failed");
    assert!(
        ended < failed,
        "the run ended before its delivery was given up"
    );
    let (_, n) = &notifications(&p)[0];
    assert!(
        n.error
            .as_deref()
            .unwrap()
            .contains("no answer before the engine stopped"),
        "{n:?}"
    );
    drop(receiver);
}

#[test]
fn a_receiver_that_is_down_holds_up_nothing_and_is_recorded_as_failed() {
    // A port nothing listens on.
    let url = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let p = Project::new(
        "mission: gated\nphases:\n  a: { run: [echo, hi] }\n  gate: { needs: [a], approval: { reason: go? } }\n",
    );
    // Retries far apart: the engine stops before the first retry is due.
    write_config(
        &p,
        &format!(
            "notify:\n  exit_wait: 1s\n  webhooks:\n    - name: down\n      url: {url}\n      retries: 5\n      backoff: 60s\n"
        ),
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let recorded = notifications(&p);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let (sent, n) = &recorded[0];
    assert!(!sent);
    assert_eq!((n.kind.as_str(), n.attempts), ("approval", 1));
    let error = n.error.as_deref().unwrap();
    assert!(error.contains("cannot reach the webhook"), "{error}");
    assert!(
        error.contains("not tried again: the engine stopped"),
        "{error}"
    );
    assert!(
        !error.contains(&url),
        "the URL is never in an error: {error}"
    );
    let status: Value = serde_json::from_slice(&p.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["status"], "suspended");
}

#[test]
fn a_resumed_run_sends_what_was_never_recorded_as_delivered_and_nothing_twice() {
    let receiver = Receiver::ok();
    let p = Project::new(
        "mission: gated\nphases:\n  a: { run: [echo, hi] }\n  gate: { needs: [a], approval: { reason: go? } }\n",
    );
    write_config(&p, &json_hook(&receiver.url, ""));
    let run = |args: &[&str]| p.command(args).env("HOOK_SECRET", SECRET).output().unwrap();
    let out = run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert_eq!(receiver.got().len(), 1);
    // Resumed with the delivery recorded: not sent again.
    let out = run(&["resume", "last"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert_eq!(receiver.got().len(), 1, "nothing is sent twice");
    // An engine killed before it recorded the delivery: cut the log back to the request.
    let log = p.store().run_dir(&p.run_id()).join("events.jsonl");
    let text_log = std::fs::read_to_string(&log).unwrap();
    let kept: String = text_log
        .lines()
        .take_while(|l| !l.contains("\"type\":\"notification.sent\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&log, kept).unwrap();
    let out = run(&["resume", "last"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let got = receiver.got();
    assert_eq!(got.len(), 2, "the undelivered request is sent again");
    assert_eq!(got[1].json()["kind"], "approval");
    assert_eq!(got[0].json()["seq"], got[1].json()["seq"]);
    let sent = notifications(&p).into_iter().filter(|(ok, _)| *ok).count();
    assert_eq!(sent, 1);
}

#[test]
fn a_bad_notify_section_is_refused_with_its_location() {
    let p = Project::new("mission: ok\nphases:\n  a: { run: [echo, hi] }\n");
    write_config(
        &p,
        "notify:\n  webhooks:\n    - name: team\n      format: teams\n      url: https://example.invalid/x\n    - name: other\n      timeout: soon\n",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 65, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.yaml:4:15"), "{err}");
    assert!(err.contains("teams"), "{err}");
    let runs = std::fs::read_dir(p.store().runs_dir()).map_or(0, |d| d.count());
    assert_eq!(runs, 0, "nothing ran");

    // Conforming to the schema, but no URL and a bad duration.
    write_config(
        &p,
        "notify:\n  webhooks:\n    - name: other\n      timeout: soon\n",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 65, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no `url` and no `url_env`"), "{err}");
    assert!(err.contains("config.yaml:3:7"), "{err}");
    assert!(err.contains("`timeout: soon`"), "{err}");
    assert!(err.contains("config.yaml:4:"), "{err}");

    // A secret named but not set.
    write_config(
        &p,
        "notify:\n  webhooks:\n    - name: team\n      url: http://127.0.0.1:9/x\n      secret_env: UNSET_HOOK_SECRET\n",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 65, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`UNSET_HOOK_SECRET`, which is not set"),
        "{err}"
    );
}
