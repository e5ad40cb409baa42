//! Issues in, pull requests out, against loopback fakes of the GitHub and GitLab REST APIs
//! (a `std::net::TcpListener` server in the test, answering from a script of canned failures
//! and a little state) and a bare git repository on disk as the remote: an issue becomes a
//! run of the greetings example, whose report ends up in a pull or merge request; rate limits
//! and server errors are waited out; a missing token and a hostile issue are refused or
//! bounded like any spec.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use spectacular::record::event::EventData;
use spectacular::record::{Event, Store};

use crate::support::{bin, git, greetings, repo_root};

/// One request the fake received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A canned answer: status, headers, body.
type Canned = (u16, Vec<(&'static str, String)>, String);

/// The fake forge's state, shared with its thread.
#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// Answers given first to the requests whose `METHOD path` starts with the key.
    failures: Vec<(String, VecDeque<Canned>)>,
    /// Issue answer and comments answer.
    issue: Value,
    comments: Value,
    /// Pull or merge requests opened (their bodies).
    requests: Vec<Value>,
}

struct Fake {
    url: String,
    state: Arc<Mutex<State>>,
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn fail_first(&self, key: &str, answers: Vec<Canned>) {
        self.state
            .lock()
            .unwrap()
            .failures
            .push((key.to_string(), answers.into()));
    }

    fn requests(&self) -> Vec<Value> {
        self.state.lock().unwrap().requests.clone()
    }
}

/// Start a fake of `kind` (`github` or `gitlab`) on loopback.
fn start_fake(kind: &'static str, issue: Value, comments: Value) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let state = Arc::new(Mutex::new(State {
        issue,
        comments,
        ..State::default()
    }));
    let shared = state.clone();
    let base = url.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = serve(stream, kind, &shared, &base);
        }
    });
    Fake { url, state }
}

fn serve(
    stream: std::net::TcpStream,
    kind: &str,
    state: &Mutex<State>,
    base: &str,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let seen = Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, extra, text) = answer(kind, state, &seen, base);
    state.lock().unwrap().seen.push(seen);
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        text.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// The fake's answer to one request.
fn answer(kind: &str, state: &Mutex<State>, seen: &Seen, base: &str) -> Canned {
    let mut s = state.lock().unwrap();
    let key = format!("{} {}", seen.method, seen.path);
    for (prefix, queue) in &mut s.failures {
        if key.starts_with(prefix.as_str()) {
            if let Some(canned) = queue.pop_front() {
                return canned;
            }
        }
    }
    let ok = |v: Value| (200, Vec::new(), v.to_string());
    let path = seen.path.split('?').next().unwrap_or_default().to_string();
    let method = seen.method.as_str();
    let is = |suffix: &str| path.ends_with(suffix);
    match (kind, method) {
        ("github", "GET") if path.contains("/issues/") && is("/comments") => ok(s.comments.clone()),
        ("gitlab", "GET") if path.contains("/issues/") && is("/notes") => ok(s.comments.clone()),
        (_, "GET") if path.contains("/issues/") => ok(s.issue.clone()),
        (_, "POST") if is("/comments") || is("/notes") => {
            ok(json!({"id": 99, "html_url": format!("{base}/comment/99")}))
        }
        // The open requests (every request the fake has is open, from the run's branch).
        (_, "GET") if is("/pulls") || is("/merge_requests") => ok(Value::Array(
            (1..=s.requests.len() as u64)
                .map(|n| {
                    json!({"number": n, "iid": n, "html_url": format!("{base}/pull/{n}"),
                                "web_url": format!("{base}/-/merge_requests/{n}")})
                })
                .collect(),
        )),
        (_, "POST") if is("/pulls") || is("/merge_requests") => {
            s.requests.push(seen.json());
            let n = s.requests.len() as u64;
            ok(
                json!({"number": n, "iid": n, "html_url": format!("{base}/pull/{n}"),
                      "web_url": format!("{base}/-/merge_requests/{n}")}),
            )
        }
        (_, "PATCH") | (_, "PUT") => {
            let n: u64 = path
                .rsplit('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if let Some(r) = s.requests.get_mut(n.saturating_sub(1) as usize) {
                if let (Some(r), Some(update)) = (r.as_object_mut(), seen.json().as_object()) {
                    r.extend(update.clone());
                }
            }
            ok(
                json!({"number": n, "iid": n, "html_url": format!("{base}/pull/{n}"),
                      "web_url": format!("{base}/-/merge_requests/{n}")}),
            )
        }
        _ => (404, Vec::new(), json!({"message": "Not Found"}).to_string()),
    }
}

/// The greetings spec, as an issue's body.
fn greetings_spec() -> String {
    std::fs::read_to_string(
        repo_root().join("examples/speckit-greetings/specs/001-greetings/spec.md"),
    )
    .expect("the example's spec")
}

/// A folder with a `gh` and a `glab` that are not logged in (or, for `glab`, print `token`).
fn fake_clis(dir: &Path, glab_token: Option<&str>) -> PathBuf {
    let bin_dir = dir.join("fake-bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let glab = match glab_token {
        Some(t) => format!(
            "#!/bin/sh\n[ \"$1 $2 $3\" = \"config get token\" ] && echo {t} && exit 0\nexit 1\n"
        ),
        None => "#!/bin/sh\nexit 1\n".to_string(),
    };
    for (name, text) in [("gh", "#!/bin/sh\nexit 1\n".to_string()), ("glab", glab)] {
        let path = bin_dir.join(name);
        std::fs::write(&path, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin_dir
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run the binary with no forge token but those given, and the fake `gh`/`glab` first on PATH.
fn spectacular(root: &Path, args: &[&str], env: &[(&str, &str)], clis: &Path) -> Out {
    let path = format!(
        "{}:{}",
        clis.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new(bin());
    command
        .args(args)
        .current_dir(root)
        .env("NO_COLOR", "1")
        .env("PATH", path)
        .env("SPECTACULAR_CONFIG_DIR", root.join(".user-config"))
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env_remove("GITLAB_TOKEN")
        .env_remove("GITHUB_ACTIONS");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run spectacular");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const MARK: &str = "\n# the forge test's own settings\n";

/// The project's config with `yaml` (instead of what an earlier call added).
fn configure(root: &Path, yaml: &str) {
    let path = root.join(".spectacular/config.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let original = text.split(MARK).next().unwrap_or_default();
    std::fs::write(&path, format!("{original}{MARK}{yaml}")).unwrap();
}

/// A bare repository beside the project, as its `origin`.
fn bare_remote(root: &Path, temp: &Path) -> PathBuf {
    let remote = temp.join("remote.git");
    git(temp, &["init", "-q", "--bare", "remote.git"]);
    git(
        root,
        &["remote", "add", "origin", &remote.display().to_string()],
    );
    remote
}

fn last_run(root: &Path) -> (String, Vec<Event>) {
    let store = Store::locate(root, None);
    let run = store.run_ids().expect("runs").pop().expect("a run");
    let events = store.read_events(&run).expect("events");
    (run, events)
}

fn transcript(out: &Out) -> String {
    format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        out.code, out.stdout, out.stderr
    )
}

#[test]
fn a_github_issue_becomes_a_run_whose_report_is_a_pull_request() {
    let dir = greetings();
    let root = dir.path();
    let temp = tempfile::tempdir().unwrap();
    let remote = bare_remote(root, temp.path());
    let issue = json!({"number": 7, "title": "Greetings", "body": greetings_spec(),
        "labels": [{"name": "complexity:low"}], "comments": 1,
        "html_url": "https://github.example/octo/greetings/issues/7"});
    let comments = json!([{"user": {"login": "ada"}, "body": "The README examples matter most."}]);
    let fake = start_fake("github", issue, comments);
    // The issue first answers a server error, the pull request a rate limit.
    fake.fail_first(
        "GET /repos/octo/greetings/issues/7",
        vec![(500, vec![], "{}".into())],
    );
    fake.fail_first(
        "POST /repos/octo/greetings/pulls",
        vec![(
            429,
            vec![("retry-after", "1".into())],
            r#"{"message":"slow down"}"#.into(),
        )],
    );
    configure(
        root,
        &format!(
            "forge:\n  github: {{ api_url: \"{}\" }}\n  comment: true\npull_requests:\n  remote: origin\n  on_success: true\n",
            fake.url
        ),
    );
    let clis = fake_clis(temp.path(), None);
    let token = [("GITHUB_TOKEN", "ghp_fake_token_1234567890")];
    let out = spectacular(root, &["run", "github:octo/greetings#7"], &token, &clis);
    assert_eq!(out.code, 0, "{}", transcript(&out));
    assert!(
        out.stderr
            .contains("fetched github:octo/greetings#7 (1 comment, labels: complexity:low)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("opened pull request #1: "),
        "{}",
        out.stderr
    );
    let (run, events) = last_run(root);

    // The branch is on the remote, at the integration branch's commit.
    let branch = format!("spectacular/{}", spectacular::git::run_short(&run));
    let pushed = git(&remote, &["rev-parse", &branch]);
    assert_eq!(pushed, git(root, &["rev-parse", &branch]));
    // One pull request, from that branch, closing the issue, with the report as its body.
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let pr = &requests[0];
    assert_eq!(pr["head"], json!(branch));
    assert_eq!(pr["base"], json!("main"));
    assert_eq!(pr["title"], json!("Greetings"));
    let body = pr["body"].as_str().unwrap();
    assert!(body.starts_with("Closes #7\n"), "{body}");
    assert!(
        body.contains("wp-greet"),
        "the report names the work packages: {body}"
    );
    // The spec was fetched once the server error passed, and the rate limit was waited out.
    let seen = fake.seen();
    let gets = seen
        .iter()
        .filter(|s| s.method == "GET" && s.path == "/repos/octo/greetings/issues/7")
        .count();
    assert_eq!(gets, 2, "a 500, then the issue");
    let posts = seen
        .iter()
        .filter(|s| s.method == "POST" && s.path == "/repos/octo/greetings/pulls")
        .count();
    assert_eq!(posts, 2, "a 429, then the pull request");
    assert!(seen
        .iter()
        .all(|s| s.header("authorization") == Some("Bearer ghp_fake_token_1234567890")));
    // The plan and the end were commented on the issue, and recorded.
    let comments: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "POST" && s.path.ends_with("/issues/7/comments"))
        .collect();
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert!(comments[0].json()["body"]
        .as_str()
        .unwrap()
        .contains("planned run"));
    assert!(comments[1].json()["body"]
        .as_str()
        .unwrap()
        .contains("succeeded"));
    let kinds: Vec<&str> = events.iter().map(|e| e.data.type_name()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "issue.commented").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"pr.opened"), "{kinds:?}");
    // The token is nowhere: not in the log, nor on the terminal.
    let log = std::fs::read_to_string(Store::locate(root, None).run_dir(&run).join("events.jsonl"))
        .unwrap();
    assert!(!log.contains("ghp_fake_token"), "the token is in the log");
    assert!(!out.stderr.contains("ghp_fake_token") && !out.stdout.contains("ghp_fake_token"));

    // `spectacular pr` again updates the same pull request.
    let again = spectacular(root, &["pr", &run], &token, &clis);
    assert_eq!(again.code, 0, "{}", transcript(&again));
    assert!(
        again.stdout.contains("updated pull request #1"),
        "{}",
        again.stdout
    );
    assert_eq!(fake.requests().len(), 1);
    assert!(fake
        .seen()
        .iter()
        .any(|s| s.method == "PATCH" && s.path == "/repos/octo/greetings/pulls/1"));
    let (_, events) = last_run(root);
    assert!(events.iter().any(|e| matches!(&e.data, EventData::PrUpdated(p) if p.number == 1 && p.issue.as_deref() == Some("github:octo/greetings#7"))));

    let shown = spectacular(root, &["events", &run], &[], &clis);
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.contains("pr.updated") && l.contains("github:octo/greetings #1")),
        "{}",
        shown.stdout
    );

    // Without `pull_requests` in the configuration nothing is pushed.
    let config = root.join(".spectacular/config.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.split("pull_requests:").next().unwrap()).unwrap();
    let before = git(&remote, &["for-each-ref"]);
    let refused = spectacular(root, &["pr", &run], &token, &clis);
    assert_eq!(refused.code, 2, "{}", transcript(&refused));
    assert!(
        refused
            .stderr
            .contains("nothing is pushed unless the project's configuration says so"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("remote: origin"),
        "{}",
        refused.stderr
    );
    assert_eq!(git(&remote, &["for-each-ref"]), before);
}

#[test]
fn a_gitlab_issue_in_a_nested_group_becomes_a_merge_request() {
    let dir = greetings();
    let root = dir.path();
    let temp = tempfile::tempdir().unwrap();
    let remote = bare_remote(root, temp.path());
    let issue = json!({"iid": 45, "title": "Greetings", "description": greetings_spec(),
        "labels": ["bug"], "web_url": "https://gitlab.example/group/sub/greetings/-/issues/45"});
    let notes = json!([
        {"system": true, "author": {"username": "bot"}, "body": "added ~complexity label"},
        {"system": false, "author": {"username": "grace"}, "body": "The README examples matter most."}
    ]);
    let fake = start_fake("gitlab", issue, notes);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    fake.fail_first(
        "GET /api/v4/projects/group%2Fsub%2Fgreetings/issues/45",
        vec![(429, vec![("ratelimit-reset", now.to_string())], "{}".into())],
    );
    configure(
        root,
        &format!(
            "forge:\n  gitlab: {{ api_url: \"{}/api/v4\" }}\npull_requests:\n  remote: origin\n",
            fake.url
        ),
    );
    // No GITLAB_TOKEN: the token `glab` is logged in with.
    let clis = fake_clis(temp.path(), Some("glpat-from-glab"));
    let out = spectacular(root, &["run", "gitlab:group/sub/greetings#45"], &[], &clis);
    assert_eq!(out.code, 0, "{}", transcript(&out));
    let (run, _) = last_run(root);
    let branch = format!("spectacular/{}", spectacular::git::run_short(&run));
    // Not asked to open the merge request at the end: nothing pushed, nothing opened, and
    // nothing commented (`forge.comment` is not set).
    assert!(fake.requests().is_empty());
    assert_eq!(git(&remote, &["for-each-ref"]), "");
    assert!(!fake.seen().iter().any(|s| s.method == "POST"));
    // The system note is not part of the spec; the person's is.
    let spec =
        std::fs::read_to_string(root.join(".spectacular/issues/gitlab/group/sub/greetings/45.md"))
            .unwrap();
    assert!(
        spec.contains("### Comment by grace") && !spec.contains("added ~complexity"),
        "{spec}"
    );

    let pr = spectacular(root, &["pr", &run], &[], &clis);
    assert_eq!(pr.code, 0, "{}", transcript(&pr));
    assert!(
        pr.stdout.contains("opened merge request !1"),
        "{}",
        pr.stdout
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["source_branch"], json!(branch));
    assert_eq!(requests[0]["target_branch"], json!("main"));
    let description = requests[0]["description"].as_str().unwrap();
    assert!(description.starts_with("Closes #45\n"), "{description}");
    assert!(description.contains("wp-greet"), "{description}");
    assert_eq!(
        git(&remote, &["rev-parse", &branch]),
        git(root, &["rev-parse", &branch])
    );
    let seen = fake.seen();
    assert!(seen
        .iter()
        .all(|s| s.header("private-token") == Some("glpat-from-glab")));
    let issue_gets = seen
        .iter()
        .filter(|s| s.method == "GET" && s.path.ends_with("/issues/45"))
        .count();
    assert_eq!(issue_gets, 2, "the rate limit, then the issue");

    // A request opened by a `pr` that stopped before recording it is found by its branch and
    // updated, not opened again.
    let log = Store::locate(root, None).run_dir(&run).join("events.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"pr.opened\""))
        .collect();
    assert_eq!(
        kept.len() + 1,
        text.lines().count(),
        "the last event was the request"
    );
    std::fs::write(&log, kept.join("\n") + "\n").unwrap();
    let again = spectacular(root, &["pr", &run], &[], &clis);
    assert_eq!(again.code, 0, "{}", transcript(&again));
    assert!(
        again.stdout.contains("updated merge request !1"),
        "{}",
        again.stdout
    );
    assert_eq!(fake.requests().len(), 1);
    assert!(fake
        .seen()
        .iter()
        .any(|s| s.method == "PUT" && s.path.ends_with("/merge_requests/1")));
}

#[test]
fn a_missing_token_says_which_variable_to_set() {
    let dir = greetings();
    let root = dir.path();
    let temp = tempfile::tempdir().unwrap();
    let fake = start_fake("github", json!({}), json!([]));
    configure(
        root,
        &format!("forge:\n  github: {{ api_url: \"{}\" }}\n", fake.url),
    );
    let clis = fake_clis(temp.path(), None);
    let out = spectacular(root, &["run", "github:octo/greetings#7"], &[], &clis);
    assert_eq!(out.code, 2, "{}", transcript(&out));
    assert!(
        out.stderr.contains("no GitHub token: set `GITHUB_TOKEN`"),
        "{}",
        out.stderr
    );
    assert!(fake.seen().is_empty(), "nothing was asked without a token");
    let out = spectacular(root, &["run", "gitlab:group/project#1"], &[], &clis);
    assert_eq!(out.code, 2, "{}", transcript(&out));
    assert!(out.stderr.contains("set `GITLAB_TOKEN`"), "{}", out.stderr);
    // A reference that is not one says how to write it.
    let out = spectacular(root, &["run", "github:octo#7"], &[], &clis);
    assert_eq!(out.code, 2, "{}", transcript(&out));
    assert!(
        out.stderr.contains("write `github:owner/repo#123`"),
        "{}",
        out.stderr
    );
    assert!(Store::locate(root, None)
        .run_ids()
        .unwrap_or_default()
        .is_empty());
    // A forge section with a mistake is reported where it is, before anything is asked.
    configure(
        root,
        &format!(
            "forge:\n  github: {{ api_url: \"{}\", token: x }}\n",
            fake.url
        ),
    );
    let token = [("GITHUB_TOKEN", "t")];
    let out = spectacular(root, &["run", "github:octo/greetings#7"], &token, &clis);
    assert_eq!(out.code, 65, "{}", transcript(&out));
    assert!(out.stderr.contains("config.yaml:"), "{}", out.stderr);
    assert!(out.stderr.contains("token"), "{}", out.stderr);
    assert!(
        fake.seen().is_empty(),
        "nothing was asked with a broken configuration"
    );
}

#[test]
fn a_hostile_issue_is_bounded_and_cleaned_like_any_spec() {
    let dir = greetings();
    let root = dir.path();
    let temp = tempfile::tempdir().unwrap();
    let clis = fake_clis(temp.path(), None);
    let hostile = format!(
        "\u{1b}]52;c;cm0gLXJmIC8=\u{7}\u{202e}evil\u{1b}[2J\n{}\n- FR-009: {}\n",
        greetings_spec(),
        "x".repeat(200_000)
    );
    let issue = json!({"title": "Greet \u{1b}[31mred\n# injected heading", "body": hostile,
        "labels": [{"name": "complexity:critical"}], "comments": 0});
    let fake = start_fake("github", issue, json!([]));
    configure(
        root,
        &format!("forge:\n  github: {{ api_url: \"{}\" }}\n", fake.url),
    );
    let token = [("GITHUB_TOKEN", "t")];
    let out = spectacular(root, &["run", "github:octo/greetings#8"], &token, &clis);
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stdout.contains('\u{1b}'),
        "{}",
        transcript(&out)
    );
    let spec = std::fs::read_to_string(root.join(".spectacular/issues/github/octo/greetings/8.md"))
        .unwrap();
    assert!(!spec.contains('\u{1b}') && !spec.contains('\u{7}') && !spec.contains('\u{202e}'));
    // The title stays one heading; the label asked for the critical tier.
    assert!(
        spec.starts_with("# Greet [31mred # injected heading\n"),
        "{}",
        &spec[..200]
    );
    let (run, _) = last_run(root);
    let snapshot = Store::locate(root, None).run_dir(&run).join("inputs/spec");
    assert_eq!(
        std::fs::read_to_string(snapshot).unwrap(),
        spec,
        "the run keeps the issue as fetched"
    );
    let analysis = spectacular(
        root,
        &["analyse", ".spectacular/issues/github/octo/greetings/8.md"],
        &token,
        &clis,
    );
    assert!(
        analysis
            .stdout
            .contains("(critical, from the label `complexity:critical`)"),
        "{}",
        transcript(&analysis)
    );
    // The line over the limit is a located diagnostic, like in any spec file.
    assert!(
        analysis.stdout.contains("only its first"),
        "{}",
        analysis.stdout
    );

    // Text over the size of a spec is refused before any run starts.
    let big = json!({"title": "Big", "body": "y".repeat(spectacular::spec::MAX_SPEC_BYTES + 10)});
    let fake = start_fake("github", big, json!([]));
    configure(
        root,
        &format!("forge:\n  github: {{ api_url: \"{}\" }}\n", fake.url),
    );
    let runs = Store::locate(root, None).run_ids().unwrap().len();
    let out = spectacular(root, &["run", "github:octo/greetings#9"], &token, &clis);
    assert_eq!(out.code, 65, "{}", transcript(&out));
    assert!(out.stderr.contains("a spec is at most"), "{}", out.stderr);
    assert_eq!(Store::locate(root, None).run_ids().unwrap().len(), runs);
}
