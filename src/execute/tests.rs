//! Crash tests of the engine's side files (the process-group ledger, the inbox, the spend
//! ledger, fallback hops): an engine in a child process is killed with SIGKILL at a crash
//! point (`crash::point`), then another child resumes the run, and the files and the log must
//! have lost nothing and doubled nothing. And a test that the event loop goes on while another
//! run holds the spend ledger's lock.
//!
//! The child half, `engine_child`, is `#[ignore]`d and refuses to run without its variables,
//! so it never passes on its own; the parents run it with `--ignored --exact`.

use std::io::BufRead as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::*;
use crate::record::EventData;

const PROJECT: &str = "SPECTACULAR_TEST_PROJECT";
const RESUME: &str = "SPECTACULAR_TEST_RESUME";
const CANCEL_ON_START: &str = "SPECTACULAR_TEST_CANCEL_ON_START";

/// Print each durable event as `EVENT <type> <phase>`, for the parent to follow.
fn observer(store_dir: PathBuf) -> Observer {
    let cancel = std::env::var_os(CANCEL_ON_START).is_some();
    Box::new(move |e| {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "EVENT {} {}",
            e.data.type_name(),
            e.data.phase().unwrap_or("-")
        );
        let _ = out.flush();
        if cancel && matches!(e.data, EventData::AttemptStarted(_)) {
            let store = Store {
                dir: store_dir.clone(),
            };
            inbox::send(
                &store.run_dir(&e.run_id),
                &inbox::Command::Cancel {
                    actor: "test".into(),
                    reason: None,
                },
            )
            .unwrap();
        }
    })
}

/// The child half of every test here: start (or resume) the run of `$SPECTACULAR_TEST_PROJECT`
/// and drive it to its end, unless a crash point kills it first.
#[test]
#[ignore = "the child half of the crash tests; they run it"]
fn engine_child() {
    let project = PathBuf::from(std::env::var_os(PROJECT).expect("run by a crash test"));
    let store = Store {
        dir: project.join(".spectacular"),
    };
    let settings = Settings {
        grace: Duration::from_millis(50),
        inbox_poll: Duration::from_millis(10),
        signals: false,
        nats: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let observer = observer(store.dir.clone());
        let engine = match std::env::var(RESUME) {
            Ok(run_id) => {
                let found = crate::project::Project::discover(&project);
                Engine::resume(store, &run_id, &project, &found, false, settings, observer).unwrap()
            }
            Err(_) => {
                let located = start::locate_source("mission.yaml", &project);
                let loaded = crate::load::load(located).unwrap();
                let mission = crate::validate::validate(&loaded, &project)
                    .mission
                    .expect("a valid mission");
                Engine::start(StartRequest {
                    store,
                    mission,
                    inputs: BTreeMap::new(),
                    max_parallel: 4,
                    project_root: project.clone(),
                    settings,
                    observer,
                })
                .unwrap()
            }
        };
        engine.drive().await.unwrap()
    });
    println!("OUTCOME {outcome:?}");
}

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(mission: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".spectacular")).unwrap();
        std::fs::create_dir_all(dir.path().join("user")).unwrap();
        std::fs::write(dir.path().join("mission.yaml"), mission).unwrap();
        Project { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, relative: &str, text: &str) {
        std::fs::write(self.path().join(relative), text).unwrap();
    }

    fn store(&self) -> Store {
        Store {
            dir: self.path().join(".spectacular"),
        }
    }

    fn run_id(&self) -> String {
        self.store().run_ids().unwrap().pop().expect("a run")
    }

    fn run_dir(&self) -> PathBuf {
        self.store().run_dir(&self.run_id())
    }

    fn events(&self) -> Vec<crate::record::Event> {
        self.store().read_events(&self.run_id()).unwrap()
    }

    fn count(&self, kind: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.data.type_name() == kind)
            .count()
    }

    /// The engine in a child process; `crash_at` names the crash point it dies at.
    fn engine(&self, crash_at: Option<&str>, resume: bool, env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "execute::tests::engine_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PROJECT, self.path())
            .env("SPECTACULAR_CONFIG_DIR", self.path().join("user"))
            .env("M", self.path().join("marker"))
            .env_remove(crash::VAR)
            .env_remove(RESUME)
            .env_remove(CANCEL_ON_START)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(point) = crash_at {
            command.env(crash::VAR, point);
        }
        if resume {
            command.env(RESUME, self.run_id());
        }
        command.envs(env.iter().copied());
        command
    }

    /// Run the engine until the crash point kills it.
    fn crash_at(&self, point: &str, env: &[(&str, &str)]) {
        let out = self.engine(Some(point), false, env).output().unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "the engine did not reach crash point `{point}`: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Resume the run to its end; its outcome.
    fn resume(&self) -> String {
        let child = self.engine(None, true, &[]).spawn().unwrap();
        // A resumed run that never ends fails the test instead of hanging it.
        let (done, watch) = std::sync::mpsc::channel::<()>();
        let pid = child.id() as i32;
        let watchdog = std::thread::spawn(move || {
            if watch.recv_timeout(Duration::from_secs(60)).is_err() {
                // SAFETY: our child, not yet waited for (the parent blocks in `wait`).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let out = child.wait_with_output().unwrap();
        let _ = done.send(());
        watchdog.join().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("OUTCOME "))
            .expect("an outcome")
            .to_string()
    }
}

/// Is process `pid` gone (or a zombie nobody reaped yet)? Waits for it, up to a limit that
/// only guards against hanging.
fn dies(pid: i32) -> bool {
    for _ in 0..1000 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) => {
                let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
                if matches!(state, Some("Z" | "X")) {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// `sleep` in a process group (and session) of its own, unrelated to any run.
fn unrelated_group() -> std::process::Child {
    let mut command = Command::new("sleep");
    command.arg("1000");
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    command.spawn().unwrap()
}

const SLOW_ONCE: &str = r#"
mission: crash
phases:
  slow:
    shell: 'if [ -e "$M" ]; then exit 0; fi; touch "$M"; exec sleep 1000'
"#;

#[test]
fn a_process_recorded_just_before_a_crash_is_killed_on_resume() {
    let p = Project::new(SLOW_ONCE);
    p.crash_at("process.recorded", &[]);
    let ledger = p.run_dir().join("pids");
    let entries = process::entries(&ledger);
    let [orphan] = entries.as_slice() else {
        panic!("the started group is not recorded: {entries:?}");
    };
    assert_eq!(orphan.tag, "slow 1");
    assert_eq!(orphan.verdict(), process::Verdict::Ours);
    // An unrelated group whose number is written under the same tag, as an older ledger would.
    let unrelated = unrelated_group();
    let mut text = std::fs::read_to_string(&ledger).unwrap();
    text.push_str(&format!("{} slow 1\n", unrelated.id()));
    std::fs::write(&ledger, text).unwrap();
    // The next attempt ends at once, however far the first one got before the crash.
    p.write("marker", "");
    assert_eq!(p.resume(), "Succeeded");
    assert!(dies(orphan.pgid), "the orphan of the dead engine survived");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(unrelated.id() as i32, libc::SIGTERM) };
    let mut unrelated = unrelated;
    assert_eq!(
        unrelated.wait().unwrap().signal(),
        Some(libc::SIGTERM),
        "resume killed a process group that is not its own"
    );
}

#[test]
fn a_process_started_but_not_yet_recorded_is_found_and_killed_on_resume() {
    let p = Project::new(SLOW_ONCE);
    p.crash_at("process.spawned", &[]);
    let ledger = p.run_dir().join("pids");
    assert_eq!(process::entries(&ledger), [], "the group was recorded");
    let intent: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&ledger).unwrap().trim()).unwrap();
    let token = intent["spawn"].as_str().expect("an intent with its token");
    // The phase's processes all inherit the token; the spawn's own leads its group.
    let carriers = identity::carriers(&format!("{}={token}", process::SPAWN_VAR));
    // SAFETY: getpgid only reads.
    let orphans: Vec<i32> = carriers
        .iter()
        .copied()
        .filter(|&pid| unsafe { libc::getpgid(pid) } == pid)
        .collect();
    let [orphan] = orphans.as_slice() else {
        panic!("the spawn's process is not found by its token: {carriers:?} (leaders {orphans:?})");
    };
    let unrelated = unrelated_group();
    p.write("marker", "");
    assert_eq!(p.resume(), "Succeeded");
    assert!(dies(*orphan), "the orphan of the dead engine survived");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(unrelated.id() as i32, libc::SIGTERM) };
    let mut unrelated = unrelated;
    assert_eq!(
        unrelated.wait().unwrap().signal(),
        Some(libc::SIGTERM),
        "resume killed a process group that is not its own"
    );
}

const SLOW: &str = r#"
mission: crash
phases:
  slow:
    shell: 'exec sleep 1000'
"#;

#[test]
fn a_cancel_taken_from_the_inbox_is_not_lost_when_the_engine_dies_before_its_commit() {
    let p = Project::new(SLOW);
    p.crash_at("inbox.claimed", &[(CANCEL_ON_START, "1")]);
    assert_eq!(p.count("run.cancel_requested"), 0);
    let waiting: Vec<_> = std::fs::read_dir(p.run_dir().join("inbox"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        waiting.len(),
        1,
        "the command was deleted before its event was durable: {waiting:?} {:?}",
        p.events()
            .iter()
            .map(|e| e.data.type_name())
            .collect::<Vec<_>>()
    );
    assert_eq!(p.resume(), "Canceled");
    assert_eq!(p.count("run.cancel_requested"), 1);
}

#[test]
fn a_cancel_committed_just_before_a_crash_is_not_acted_on_twice() {
    let p = Project::new(SLOW_ONCE);
    p.crash_at("inbox.committed", &[(CANCEL_ON_START, "1")]);
    assert_eq!(p.count("run.cancel_requested"), 1);
    // The canceled run is resumed (its next attempt ends at once, however far the first one
    // got): the command must not cancel it again.
    p.write("marker", "");
    assert_eq!(p.resume(), "Succeeded");
    assert_eq!(p.count("run.cancel_requested"), 1);
    let left = std::fs::read_dir(p.run_dir().join("inbox"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "the inbox still holds the command");
}

const AGENTS: &str = r#"
agents:
  flaky:
    adapter: command
    argv: [sh, -c, "echo 'rate limit exceeded' >&2; exit 1"]
    stdin: false
    fallbacks: [steady]
  steady:
    adapter: command
    argv: [sh, -c, "echo '{\"answer\": \"ok\", \"cost\": 0.25}'"]
    stdin: false
    output: { format: json, result: /answer, cost_usd: /cost }
"#;

#[test]
fn the_next_fallback_starts_only_once_the_hop_is_durable() {
    let p = Project::new("mission: crash\nphases:\n  work: { agent: flaky }\n");
    p.write(".spectacular/agents.yaml", AGENTS);
    p.crash_at("fallback.next", &[]);
    assert_eq!(p.count("fallback.activated"), 1);
    assert_eq!(p.resume(), "Succeeded");
}

/// The lines of the project's spend ledger, each of which must be a JSON object.
fn ledger_lines(p: &Project) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(p.path().join(".spectacular/spend.jsonl")).unwrap();
    assert!(text.ends_with('\n'), "a torn last line: {text}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("unreadable line `{l}`: {e}")))
        .collect()
}

fn settled(p: &Project, key: &str) -> Vec<f64> {
    ledger_lines(p)
        .iter()
        .filter(|l| l["key"] == key)
        .filter_map(|l| l["usd"].as_f64())
        .collect()
}

#[test]
fn a_torn_ledger_line_is_truncated_before_the_next_append() {
    let p = Project::new("mission: crash\nphases:\n  work: { agent: steady }\n");
    p.write(".spectacular/agents.yaml", AGENTS);
    p.write(".spectacular/budgets.yaml", "day_usd: 100\n");
    p.crash_at("ledger.append", &[]);
    let torn = std::fs::read_to_string(p.path().join(".spectacular/spend.jsonl")).unwrap();
    assert!(!torn.is_empty() && !torn.ends_with('\n'), "{torn}");
    assert_eq!(p.resume(), "Succeeded");
    // Every line reads, and the retry's reservation and spending are there.
    assert_eq!(settled(&p, "work#2"), [0.25]);
    assert!(ledger_lines(&p)
        .iter()
        .any(|l| l["key"] == "work#2" && l["reserve"].is_number()));
}

#[test]
fn spending_is_settled_after_its_event_is_durable_and_once_after_a_crash() {
    let p = Project::new(
        "mission: crash\nphases:\n  work: { agent: steady }\n  after: { needs: [work], run: ['true'] }\n",
    );
    p.write(".spectacular/agents.yaml", AGENTS);
    p.write(".spectacular/budgets.yaml", "day_usd: 100\n");
    p.crash_at("ledger.settle", &[]);
    assert_eq!(p.count("attempt.succeeded"), 1);
    assert_eq!(settled(&p, "work#1"), [0.0; 0]);
    assert_eq!(p.resume(), "Succeeded");
    assert_eq!(settled(&p, "work#1"), [0.25]);
}

#[test]
fn the_loop_goes_on_while_another_run_holds_the_ledger_lock() {
    let p = Project::new(
        "mission: blocked\nphases:\n  work: { agent: steady }\n  quick: { run: ['true'] }\n",
    );
    p.write(".spectacular/agents.yaml", AGENTS);
    p.write(".spectacular/budgets.yaml", "day_usd: 100\n");
    // Another run holds the ledger's lock.
    let ledger = std::fs::File::create(p.path().join(".spectacular/spend.jsonl")).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&ledger), libc::LOCK_EX) },
        0
    );
    let mut engine = p.engine(None, false, &[]).spawn().unwrap();
    let stdout = engine.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The independent phase ends while the agent's reservation waits for the lock. (The
    // limit only keeps a blocked engine from hanging the test.)
    let mut seen = Vec::new();
    let quick_done = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line == "EVENT attempt.succeeded quick" => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    drop(ledger);
    let status = engine.wait().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        quick_done,
        "the event loop stalled on the ledger lock: {seen:?}"
    );
    assert!(status.success());
    assert!(
        rest.iter().any(|l| l == "EVENT run.succeeded -"),
        "{rest:?}"
    );
}

/// The names of the entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_instance_name_with_dot_dot_creates_nothing_outside_the_store() {
    // The scheduler refuses such ids at expansion; this is the engine's own wall, reached with
    // a hand-made `phase.expanded` event.
    let outer = tempfile::tempdir().unwrap();
    let project = outer.path().join("project");
    std::fs::create_dir_all(project.join(".spectacular")).unwrap();
    std::fs::write(
        project.join("mission.yaml"),
        "mission: paths\nphases:\n  write: { shell: 'echo hi > out.txt', outputs: { out: { path: out.txt } } }\n",
    )
    .unwrap();
    let store = Store {
        dir: project.join(".spectacular"),
    };
    let located = start::locate_source("mission.yaml", &project);
    let loaded = crate::load::load(located).unwrap();
    let mission = crate::validate::validate(&loaded, &project)
        .mission
        .expect("a valid mission");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Up from `attempts/write[..` to the directory that holds the project.
    let key = "../../../../../../../escaped";
    let instance = format!("write[{key}]");
    let run_dir = runtime.block_on(async {
        let mut engine = Engine::start(StartRequest {
            store,
            mission,
            inputs: BTreeMap::new(),
            max_parallel: 4,
            project_root: project.clone(),
            settings: Settings {
                grace: Duration::from_millis(50),
                inbox_poll: Duration::from_millis(10),
                signals: false,
                nats: None,
            },
            observer: Box::new(|_| {}),
        })
        .unwrap();
        engine.record(
            EventData::PhaseExpanded(crate::record::event::PhaseExpanded {
                phase: "write".into(),
                children: vec![crate::record::event::Child {
                    lane: None,
                    key: key.into(),
                    item: serde_json::json!("x"),
                    depends_on: Vec::new(),
                }],
            }),
            "engine",
        );
        let (_, job) = engine.prepare(&instance, 1, None);
        match job {
            Err(prepare::NotStarted::Failed(kind, message)) => {
                assert_eq!(kind, crate::model::FailureKind::Spawn);
                assert!(message.contains("cannot be part of a path"), "{message}");
            }
            Ok(_) => panic!("an attempt of `{instance}` was prepared"),
            Err(_) => panic!("an attempt of `{instance}` did not fail"),
        }
        engine.run_dir.clone()
    });
    // Promoting outputs under that name is refused too.
    let attempt = run_dir.join("attempts/write/1");
    std::fs::create_dir_all(&attempt).unwrap();
    std::fs::write(attempt.join("out.txt"), "hi\n").unwrap();
    let outputs: indexmap::IndexMap<String, crate::model::Output> = [(
        "out".to_string(),
        crate::model::Output {
            path: "out.txt".into(),
            schema: None,
            check: None,
        },
    )]
    .into_iter()
    .collect();
    let promoted = outputs::promote(
        &outputs,
        &BTreeMap::new(),
        &attempt,
        &run_dir,
        &instance,
        &crate::load::Base::Dir(project.clone()),
        &crate::record::Redactor::default(),
    );
    assert!(
        matches!(promoted, Err(outputs::Error::Outside { .. })),
        "promoted under `{instance}`"
    );
    assert_eq!(entries(outer.path()), ["project"]);
    assert_eq!(entries(&project), [".spectacular", "mission.yaml"]);
}

#[test]
fn a_large_output_value_is_promoted_as_a_marker_pointing_at_its_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let attempt = run_dir.join("attempts/make/1");
    std::fs::create_dir_all(&attempt).unwrap();
    let secret = "sk-canary-promote-0123456789";
    let big = serde_json::json!({ "data": "a".repeat(crate::record::limits::VALUE_MAX) });
    std::fs::write(attempt.join("big.json"), big.to_string()).unwrap();
    std::fs::write(attempt.join("small.txt"), format!("key {secret}\n")).unwrap();
    std::fs::write(
        dir.path().join("object.schema.json"),
        r#"{"type": "object"}"#,
    )
    .unwrap();
    let outputs: indexmap::IndexMap<String, crate::model::Output> = [
        (
            "big".to_string(),
            crate::model::Output {
                path: "big.json".into(),
                schema: Some("object.schema.json".into()),
                check: None,
            },
        ),
        (
            "small".to_string(),
            crate::model::Output {
                path: "./small.txt".into(),
                schema: None,
                check: None,
            },
        ),
    ]
    .into_iter()
    .collect();
    let promoted = outputs::promote(
        &outputs,
        &BTreeMap::new(),
        &attempt,
        &run_dir,
        "make",
        &crate::load::Base::Dir(dir.path().to_path_buf()),
        &crate::record::Redactor::new([("ACME_API_KEY", secret)]),
    )
    .unwrap();
    let marker = promoted.values["big"].as_str().expect("a marker");
    assert!(
        marker.starts_with("…[truncated:")
            && marker.ends_with("full value in artifacts/make/big.json]"),
        "{marker}"
    );
    assert_eq!(
        promoted.values["small"],
        serde_json::json!("key [redacted:ACME_API_KEY]\n")
    );
    assert_eq!(promoted.artifacts["small"], "artifacts/make/small.txt");
    let kept = std::fs::read_to_string(run_dir.join("artifacts/make/big.json")).unwrap();
    assert_eq!(kept, big.to_string());
}
