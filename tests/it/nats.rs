//! Distributed execution against the real NATS server on 127.0.0.1:4222 (each test with its
//! own stream prefix, so that tests run in parallel). With `CI=true` an unreachable server
//! fails the tests; elsewhere they say they were skipped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spectacular::record::event::EventData;
use spectacular::record::{Event, Store};

use crate::support::bin;

const NATS: &str = "127.0.0.1:4222";

/// Is the server there? In CI (`CI=true`) it must be.
fn nats_up(test: &str) -> bool {
    if TcpStream::connect_timeout(&NATS.parse().unwrap(), Duration::from_secs(2)).is_ok() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: NATS is not reachable at {NATS} and CI=true: start `nats-server -js`");
    }
    eprintln!("{test}: skipped: NATS is not reachable at {NATS} (start `nats-server -js`)");
    false
}

/// A stream prefix of this test alone.
fn prefix(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let short: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    format!(
        "t{short}{}x{}x{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A project with a mission, and the environment of every process of the test.
struct Project {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Project {
    fn new(mission: &str, prefix: &str, ack_wait: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".spectacular")).unwrap();
        let mission = mission.replace("@DIR@", &dir.path().display().to_string());
        std::fs::write(dir.path().join("mission.yaml"), mission).unwrap();
        let env = vec![
            ("SPECTACULAR_NATS_PREFIX".to_string(), prefix.to_string()),
            (
                "SPECTACULAR_NATS_ACK_WAIT".to_string(),
                ack_wait.to_string(),
            ),
            ("NO_COLOR".into(), "1".into()),
            (
                "SPECTACULAR_CONFIG_DIR".into(),
                dir.path().join(".user-config").display().to_string(),
            ),
        ];
        Project { dir, env }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Another checkout of the same project (a second coordinator's machine).
    fn elsewhere(&self) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".spectacular")).unwrap();
        std::fs::copy(
            self.path().join("mission.yaml"),
            dir.path().join("mission.yaml"),
        )
        .unwrap();
        let mut env = self.env.clone();
        for (k, v) in env.iter_mut() {
            if k == "SPECTACULAR_CONFIG_DIR" {
                *v = dir.path().join(".user-config").display().to_string();
            }
        }
        Project { dir, env }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin());
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("RUST_LOG")
            .env_remove("SPECTACULAR_NATS")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    /// Run a command to its end: exit code and stderr.
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn spawn(&self, args: &[&str]) -> Killed {
        let child = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Killed(child)
    }

    fn worker(&self, name: &str, labels: &str, url: &str) -> Killed {
        let dir = self.path().join(format!("worker-{name}"));
        let dir = dir.display().to_string();
        let mut args = vec!["worker", "--nats", url, "--name", name, "--dir", &dir];
        if !labels.is_empty() {
            args.extend(["--labels", labels]);
        }
        self.spawn(&args)
    }

    fn run_ids(&self) -> Vec<String> {
        self.store().run_ids().unwrap_or_default()
    }

    fn store(&self) -> Store {
        Store {
            dir: self.path().join(".spectacular"),
        }
    }

    fn events(&self, run_id: &str) -> Vec<Event> {
        self.store().read_events(run_id).unwrap()
    }
}

/// A child process killed (SIGKILL) and reaped when dropped.
struct Killed(Child);

impl Killed {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
    fn wait(mut self) -> (i32, String) {
        let status = self.0.wait().unwrap();
        let mut stderr = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        (status.code().unwrap_or(-1), stderr)
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wait for `what` (a guard against hanging, not a measurement).
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(events: &[Event], kind: &str, phase: &str) -> usize {
    events
        .iter()
        .filter(|e| e.data.type_name() == kind && e.data.phase() == Some(phase))
        .count()
}

/// Kill the process group whose leader's pid is in `file` (a phase's shell, started by a
/// worker this test started and killed).
fn kill_group_in(file: &Path) {
    if let Some(pid) = std::fs::read_to_string(file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    {
        // SAFETY: a plain system call on a process group this test's worker started.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

fn url() -> String {
    format!("nats://{NATS}")
}

#[test]
fn a_mission_runs_across_three_workers() {
    if !nats_up("a_mission_runs_across_three_workers") {
        return;
    }
    let mission = r#"
mission: fleet
phases:
  hello: { run: [echo, hello] }
  work:
    needs: [hello]
    for_each: [a, b, c, d, e, f]
    shell: 'echo "$SPECTACULAR_PHASE" > out.txt; echo "$SPECTACULAR_PHASE" >> @DIR@/ran; sleep 0.2'
    outputs: { out: { path: out.txt } }
    runs_on: [linux]
  gpu: { needs: [work], shell: 'echo gpu > out.txt', runs_on: [gpu], outputs: { out: { path: out.txt } } }
"#;
    let p = Project::new(mission, &prefix("three"), "30s");
    let _w1 = p.worker("w1", "linux", &url());
    let _w2 = p.worker("w2", "linux", &url());
    let _w3 = p.worker("w3", "gpu,linux", &url());
    let (code, stderr) = p.run(&["run", "mission.yaml", "--nats", &url()]);
    assert_eq!(code, 0, "{stderr}");
    let run_id = p.run_ids().pop().unwrap();
    let events = p.events(&run_id);
    // Every item ran once, on a worker, and its output came back as the run's artifact.
    let ran = std::fs::read_to_string(p.path().join("ran")).unwrap();
    let mut ran: Vec<&str> = ran.lines().collect();
    ran.sort();
    assert_eq!(
        ran,
        ["work[a]", "work[b]", "work[c]", "work[d]", "work[e]", "work[f]"]
    );
    let values: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AttemptSucceeded(s) if s.phase.starts_with("work[") => Some(
                s.values
                    .get("out")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(values.len(), 6, "{values:?}");
    assert!(values.iter().all(|v| v.contains("work[")), "{values:?}");
    // The phase that needs `gpu` ran on the only worker that has it.
    assert_eq!(count(&events, "attempt.succeeded", "gpu"), 1);
    // The stream holds the same log.
    let (code, stderr) = p.elsewhere().run(&["resume", &run_id, "--nats", &url()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("already succeeded"), "{stderr}");
}

#[test]
fn a_killed_worker_attempt_is_redelivered_and_completed_once() {
    if !nats_up("a_killed_worker_attempt_is_redelivered_and_completed_once") {
        return;
    }
    // The first delivery records its shell's pid and hangs; a later one finishes.
    let mission = r#"
mission: redeliver
phases:
  slow:
    shell: 'if [ -f @DIR@/first ]; then echo done > out.txt; else echo $$ > @DIR@/first; sleep 600; fi'
    outputs: { out: { path: out.txt } }
"#;
    let p = Project::new(mission, &prefix("redeliver"), "1s");
    let mut first = p.worker("first", "", &url());
    let coordinator = p.spawn(&["run", "mission.yaml", "--nats", &url()]);
    until("the first worker to start the attempt", || {
        p.path().join("first").is_file()
    });
    first.kill();
    kill_group_in(&p.path().join("first"));
    let _second = p.worker("second", "", &url());
    let (code, stderr) = coordinator.wait();
    assert_eq!(code, 0, "{stderr}");
    let run_id = p.run_ids().pop().unwrap();
    let events = p.events(&run_id);
    assert_eq!(count(&events, "attempt.started", "slow"), 1);
    assert_eq!(count(&events, "attempt.succeeded", "slow"), 1);
    assert_eq!(count(&events, "attempt.failed", "slow"), 0);
    let redelivered: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AttemptRedelivered(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(redelivered.len(), 1, "{redelivered:?}");
    assert_eq!(redelivered[0].worker, "second");
    assert!(redelivered[0].delivery >= 2);
}

/// A mission whose second phase waits for the test to open a gate.
const GATED: &str = r#"
mission: gated
phases:
  first: { shell: 'echo one > out.txt', outputs: { out: { path: out.txt } } }
  second:
    needs: [first]
    shell: 'echo $$ >> @DIR@/second-started; while [ ! -f @DIR@/gate ]; do sleep 0.05; done; echo two > out.txt'
    outputs: { out: { path: out.txt } }
"#;

#[test]
fn a_killed_coordinator_is_resumed_elsewhere_from_the_stream() {
    if !nats_up("a_killed_coordinator_is_resumed_elsewhere_from_the_stream") {
        return;
    }
    let p = Project::new(GATED, &prefix("failover"), "30s");
    let _worker = p.spawn(&[
        "worker",
        "--nats",
        &url(),
        "--concurrency",
        "2",
        "--name",
        "w",
    ]);
    let mut coordinator = p.spawn(&["run", "mission.yaml", "--nats", &url()]);
    until("the second phase to start", || {
        p.path().join("second-started").is_file()
    });
    let run_id = p.run_ids().pop().unwrap();
    coordinator.kill();
    // Another machine, which never saw the run, takes it over from the stream.
    let other = p.elsewhere();
    std::fs::write(p.path().join("gate"), "").unwrap();
    let (code, stderr) = other.run(&["resume", &run_id, "--nats", &url()]);
    assert_eq!(code, 0, "{stderr}");
    let events = other.events(&run_id);
    // Nothing lost: the first phase's success came from the stream; nothing doubled: it
    // ran once, and every event id is unique (the log reader refuses repeats).
    assert_eq!(count(&events, "attempt.succeeded", "first"), 1);
    assert_eq!(count(&events, "attempt.started", "first"), 1);
    assert_eq!(count(&events, "phase.succeeded", "second"), 1);
    assert!(events
        .iter()
        .any(|e| matches!(e.data, EventData::RunSucceeded(_))));
    let resumed = events
        .iter()
        .filter(|e| matches!(e.data, EventData::RunResumed(_)))
        .count();
    assert_eq!(resumed, 1);
}

#[test]
fn a_resumed_coordinator_recalls_the_dead_ones_attempts_from_the_workers() {
    if !nats_up("a_resumed_coordinator_recalls_the_dead_ones_attempts_from_the_workers") {
        return;
    }
    // The first attempt runs until it is stopped (and says so); the retry finishes.
    let mission = r#"
mission: recall
phases:
  long:
    shell: 'if [ "$SPECTACULAR_ATTEMPT" = 1 ]; then trap "echo stopped > @DIR@/stopped; exit 1" INT TERM; echo $$ > @DIR@/first; while :; do sleep 0.05; done; fi; echo done > out.txt'
    outputs: { out: { path: out.txt } }
"#;
    let p = Project::new(mission, &prefix("recall"), "30s");
    let _worker = p.spawn(&[
        "worker",
        "--nats",
        &url(),
        "--concurrency",
        "2",
        "--name",
        "w",
    ]);
    let mut coordinator = p.spawn(&["run", "mission.yaml", "--nats", &url()]);
    until("the first attempt to run on the worker", || {
        p.path().join("first").is_file()
    });
    let run_id = p.run_ids().pop().unwrap();
    coordinator.kill();
    let other = p.elsewhere();
    let (code, stderr) = other.run(&["resume", &run_id, "--nats", &url()]);
    assert_eq!(code, 0, "{stderr}");
    // The dead coordinator's copy does not run on to its end: the worker stopped it.
    until("the worker to stop the dead coordinator's attempt", || {
        p.path().join("stopped").is_file()
    });
    let events = other.events(&run_id);
    let recalled: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AttemptRecalled(r) => Some((r.phase.clone(), r.attempt)),
            _ => None,
        })
        .collect();
    assert_eq!(recalled, vec![("long".to_string(), 1)]);
    assert_eq!(count(&events, "attempt.succeeded", "long"), 1);
    assert!(events
        .iter()
        .any(|e| matches!(e.data, EventData::RunSucceeded(_))));
}

#[test]
fn two_coordinators_racing_on_one_run_one_wins() {
    if !nats_up("two_coordinators_racing_on_one_run_one_wins") {
        return;
    }
    let p = Project::new(GATED, &prefix("race"), "30s");
    let _worker = p.spawn(&[
        "worker",
        "--nats",
        &url(),
        "--concurrency",
        "4",
        "--name",
        "w",
    ]);
    let mut coordinator = p.spawn(&["run", "mission.yaml", "--nats", &url()]);
    until("the second phase to start", || {
        p.path().join("second-started").is_file()
    });
    let run_id = p.run_ids().pop().unwrap();
    coordinator.kill();
    let (a, b) = (p.elsewhere(), p.elsewhere());
    let first = a.spawn(&["resume", &run_id, "--nats", &url()]);
    let second = b.spawn(&["resume", &run_id, "--nats", &url()]);
    // Both are running (or one already lost) before the gate opens.
    until("both resumes to start the second phase again", || {
        std::fs::read_to_string(p.path().join("second-started"))
            .is_ok_and(|t| t.lines().count() >= 2)
    });
    std::fs::write(p.path().join("gate"), "").unwrap();
    let results = [first.wait(), second.wait()];
    let won: Vec<_> = results.iter().filter(|(code, _)| *code == 0).collect();
    let lost: Vec<_> = results.iter().filter(|(code, _)| *code != 0).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert_eq!(lost.len(), 1, "{results:?}");
    assert!(
        lost[0].1.contains("another coordinator") || lost[0].1.contains("already succeeded"),
        "{results:?}"
    );
    // The stream holds one lineage: a third look sees a run that succeeded once.
    let (code, stderr) = p.elsewhere().run(&["resume", &run_id, "--nats", &url()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("already succeeded"), "{stderr}");
}

/// A loopback TCP proxy the test can cut and restore.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (cut2, open2, upstream) = (cut.clone(), open.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                if let Ok(mut open) = open2.lock() {
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[test]
fn a_worker_cut_off_from_nats_reconnects_and_its_work_is_not_lost() {
    if !nats_up("a_worker_cut_off_from_nats_reconnects_and_its_work_is_not_lost") {
        return;
    }
    let mission = r#"
mission: outage
phases:
  long:
    shell: 'touch @DIR@/started; while [ ! -f @DIR@/gate ]; do sleep 0.05; done; echo kept > out.txt; touch @DIR@/finished'
    outputs: { out: { path: out.txt } }
"#;
    let p = Project::new(mission, &prefix("outage"), "60s");
    let proxy = Proxy::start(NATS);
    let _worker = p.worker("far", "", &format!("nats://127.0.0.1:{}", proxy.port));
    let coordinator = p.spawn(&["run", "mission.yaml", "--nats", &url()]);
    until("the attempt to start", || {
        p.path().join("started").is_file()
    });
    proxy.cut();
    // The attempt ends while its worker cannot reach NATS.
    std::fs::write(p.path().join("gate"), "").unwrap();
    until("the attempt to finish", || {
        p.path().join("finished").is_file()
    });
    std::thread::sleep(Duration::from_millis(500));
    proxy.restore();
    let (code, stderr) = coordinator.wait();
    assert_eq!(code, 0, "{stderr}");
    let run_id = p.run_ids().pop().unwrap();
    let events = p.events(&run_id);
    assert_eq!(count(&events, "attempt.started", "long"), 1);
    assert_eq!(count(&events, "attempt.succeeded", "long"), 1);
    let artifact: PathBuf = p.store().run_dir(&run_id).join("attempts/long/1/out.txt");
    assert_eq!(std::fs::read_to_string(artifact).unwrap(), "kept\n");
}

#[test]
fn an_unreachable_server_stops_run_and_worker_with_a_fix() {
    let p = Project::new(
        "mission: x\nphases:\n  a: { run: [echo, a] }\n",
        &prefix("unreachable"),
        "30s",
    );
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let (code, stderr) = p.run(&["run", "mission.yaml", "--nats", &url]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot reach NATS"), "{stderr}");
    assert!(p.run_ids().is_empty(), "nothing is recorded");
    let (code, stderr) = p.run(&["worker", "--nats", &url, "--labels", "Linux"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("label `Linux`"), "{stderr}");
}

#[test]
fn files_from_a_peer_never_leave_the_attempt_directory() {
    use spectacular::execute::distributed::wire::{unpack, File};
    let dir = tempfile::tempdir().unwrap();
    let attempt = dir.path().join("attempt");
    std::fs::create_dir(&attempt).unwrap();
    let file = |path: &str| File {
        path: path.into(),
        data: "aGk=".into(),
        executable: false,
    };
    for hostile in ["../escaped", "/etc/escaped", "a/../../escaped", ""] {
        let refused = unpack(&attempt, &[file(hostile)]).unwrap_err();
        assert!(
            refused.to_string().contains("not a path inside"),
            "{refused}"
        );
    }
    // A link planted in the directory is not followed.
    std::os::unix::fs::symlink(dir.path(), attempt.join("link")).unwrap();
    assert!(unpack(&attempt, &[file("link/escaped")]).is_err());
    assert!(!dir.path().join("escaped").exists());
    unpack(&attempt, &[file("sub/ok.txt")]).unwrap();
    assert_eq!(
        std::fs::read_to_string(attempt.join("sub/ok.txt")).unwrap(),
        "hi"
    );
}

#[test]
fn a_bad_runs_on_label_is_reported_where_it_is() {
    let p = Project::new(
        "mission: labels\nphases:\n  a:\n    run: [echo, a]\n    runs_on: [linux, Big_GPU]\n",
        &prefix("labels"),
        "30s",
    );
    let out = p.command(&["validate", "mission.yaml"]).output().unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(65), "{shown}");
    assert!(shown.contains("mission.yaml:5:22"), "{shown}");
    assert!(shown.contains("\"Big_GPU\" does not match"), "{shown}");
}

#[test]
fn an_attempt_no_worker_serves_fails_after_the_queue_timeout_saying_which_worker_to_start() {
    if !nats_up("an_attempt_no_worker_serves_fails_after_the_queue_timeout") {
        return;
    }
    let p = Project::new(
        "mission: gpu\nphases:\n  train:\n    run: [echo, trained]\n    runs_on: [gpu]\n",
        &prefix("queuetimeout"),
        "30s",
    );
    std::fs::write(
        p.path().join(".spectacular/config.yaml"),
        "nats:\n  queue_timeout: 1s\n",
    )
    .unwrap();
    // A worker without the label: it never takes the attempt.
    let _worker = p.worker("plain", "", &url());
    let (code, stderr) = p.run(&["run", "mission.yaml", "--nats", &url()]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("no worker serving the labels `gpu`"),
        "warned at start: {stderr}"
    );
    let run_id = p.run_ids().pop().unwrap();
    let failed: Vec<String> = p
        .events(&run_id)
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AttemptFailed(f) => Some(f.message.clone()),
            _ => None,
        })
        .collect();
    assert!(!failed.is_empty());
    for message in &failed {
        assert!(
            message.contains("no NATS worker took this attempt within 1s"),
            "{message}"
        );
        assert!(
            message.contains("`spectacular worker --nats URL --labels gpu`"),
            "{message}"
        );
    }
}

#[test]
fn a_bad_queue_timeout_stops_run_with_its_place_in_config_yaml() {
    let p = Project::new(
        "mission: x\nphases:\n  a: { run: [echo, a] }\n",
        &prefix("badqueuetimeout"),
        "30s",
    );
    std::fs::write(
        p.path().join(".spectacular/config.yaml"),
        "nats:\n  queue_timeout: soon\n",
    )
    .unwrap();
    let (code, stderr) = p.run(&["run", "mission.yaml", "--nats", &url()]);
    assert_eq!(code, 65, "{stderr}");
    assert!(stderr.contains("config.yaml:2:3"), "{stderr}");
    assert!(
        stderr.contains("`queue_timeout: soon` is not a duration"),
        "{stderr}"
    );
    assert!(stderr.contains("such as `10m`"), "{stderr}");
    assert!(p.run_ids().is_empty(), "nothing is recorded");
}

#[test]
fn status_cost_and_replay_read_a_run_from_the_stream_in_a_fresh_checkout() {
    if !nats_up("status_cost_and_replay_read_a_run_from_the_stream") {
        return;
    }
    let p = Project::new(
        "mission: elsewhere\nphases:\n  a: { run: [echo, a] }\n  b: { run: [echo, b], needs: [a] }\n",
        &prefix("readers"),
        "30s",
    );
    let _worker = p.worker("w", "", &url());
    let (code, stderr) = p.run(&["run", "mission.yaml", "--nats", &url()]);
    assert_eq!(code, 0, "{stderr}");
    let run_id = p.run_ids().pop().unwrap();
    let fresh = p.elsewhere();
    let (code, _) = fresh.run(&["status", &run_id]);
    assert_ne!(code, 0, "the fresh checkout has no copy of the run");
    let out = |args: &[&str]| {
        let out = fresh.command(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
        stdout
    };
    let status = out(&["status", &run_id, "--json", "--nats", &url()]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["status"], "succeeded", "{status}");
    // The copy is the stream's, event for event.
    assert_eq!(fresh.events(&run_id), p.events(&run_id));
    let cost = out(&["cost", &run_id, "--json", "--nats", &url()]);
    assert!(
        serde_json::from_str::<serde_json::Value>(&cost).is_ok(),
        "{cost}"
    );
    let replayed = out(&["replay", &run_id, "--verify", "--nats", &url()]);
    assert!(!replayed.is_empty());
}

/// A project of `mission` in a git repository (one commit on `main`, the engine's directory
/// and the workers' ignored).
fn git_project(mission: &str, prefix: &str, ack_wait: &str) -> Project {
    let p = Project::new(mission, prefix, ack_wait);
    std::fs::write(p.path().join("old.txt"), "old\n").unwrap();
    std::fs::write(
        p.path().join(".gitignore"),
        ".spectacular/\n.user-config/\nworker-*/\nfirst\n",
    )
    .unwrap();
    crate::support::git_init(p.path());
    p
}

fn succeeded<'a>(
    events: &'a [Event],
    phase: &str,
) -> Option<&'a spectacular::record::event::AttemptSucceeded> {
    events.iter().find_map(|e| match &e.data {
        EventData::AttemptSucceeded(s) if s.phase == phase => Some(s),
        _ => None,
    })
}

/// Three work packages: `a` writes a file, `b` needs `a`'s work, commits some itself and leaves
/// more uncommitted, `c` changes and deletes; each writes where it ran as an output.
const PACKAGES: &str = r#"
mission: packages
phases:
  implement:
    for_each: '[#{id: "a", title: "A"}, #{id: "b", title: "B", depends_on: ["a"]}, #{id: "c", title: "C"}]'
    workspace: worktree
    shell: |
      set -eu
      case "{{ item.id }}" in
        a) mkdir -p src; echo add > src/a.txt ;;
        b) test -f src/a.txt; echo mul > src/b.txt; git add src/b.txt
           git -c user.name=Agent -c user.email=agent@example.com commit -qm "b by itself"
           echo more >> src/b.txt ;;
        c) echo doc > README.md; rm old.txt ;;
      esac
      pwd > "$SPECTACULAR_OUTPUT_DIR/where.txt"
    outputs: { where: { path: where.txt } }
  merge:
    needs: [implement]
    uses: builtin/merge
    with: { work: implement }
"#;

#[test]
fn work_packages_on_workers_make_the_same_integration_branch_as_locally() {
    if !nats_up("work_packages_on_workers_make_the_same_integration_branch_as_locally") {
        return;
    }
    let here = git_project(PACKAGES, &prefix("pkglocal"), "30s");
    let (code, stderr) = here.run(&["run", "mission.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    let local_run = here.run_ids().pop().unwrap();
    let p = git_project(PACKAGES, &prefix("packages"), "30s");
    let _w1 = p.worker("w1", "", &url());
    let _w2 = p.worker("w2", "", &url());
    let (code, stderr) = p.run(&["run", "mission.yaml", "--nats", &url()]);
    assert_eq!(code, 0, "{stderr}");
    let run_id = p.run_ids().pop().unwrap();
    let events = p.events(&run_id);
    // Each package ran once, in a worker's own clone, and its output came back.
    for item in ["a", "b", "c"] {
        let phase = format!("implement[{item}]");
        assert_eq!(count(&events, "attempt.started", &phase), 1, "{phase}");
        let done = succeeded(&events, &phase).expect("the package succeeded");
        let artifact = done.artifacts.values().next().expect("its output").clone();
        let ran_in = std::fs::read_to_string(p.store().run_dir(&run_id).join(artifact)).unwrap();
        assert!(ran_in.contains("worker-w"), "{phase} ran in {ran_in}");
        assert!(
            ran_in.trim_end().ends_with(".repo"),
            "{phase} ran in {ran_in}"
        );
    }
    // The same integration branch, to the byte, as the run on this machine.
    let tree = |p: &Project, run: &str| {
        let branch = spectacular::git::integration_branch(run);
        crate::support::git(p.path(), &["rev-parse", &format!("{branch}^{{tree}}")])
    };
    assert_eq!(tree(&p, &run_id), tree(&here, &local_run));
    // `b`'s own commit came back, and what it left uncommitted was committed with provenance.
    let b = succeeded(&events, "implement[b]")
        .unwrap()
        .git
        .clone()
        .unwrap();
    let log = crate::support::git(
        p.path(),
        &["log", "--format=%s%n%b", &format!("{}..{}", b.base, b.head)],
    );
    assert!(log.contains("b by itself"), "{log}");
    assert!(log.contains(&format!("Spectacular-Run: {run_id}")), "{log}");
    assert!(!log.contains("Work left uncommitted"), "{log}");
    // Nothing is left in the engine's incoming refs.
    let left = crate::support::git(p.path(), &["for-each-ref", "refs/spectacular"]);
    assert!(left.is_empty(), "{left}");
}

#[test]
fn hostile_work_from_a_worker_is_refused_and_never_reaches_the_branch() {
    if !nats_up("hostile_work_from_a_worker_is_refused_and_never_reaches_the_branch") {
        return;
    }
    // What an agent on a worker can do to its clone: a link out of the repository, history
    // from elsewhere in place of its branch, a tree with a `.git` directory made by hand.
    let mission = r#"
mission: hostile
phases:
  implement:
    for_each: '[#{id: "link", title: "L"}, #{id: "orphan", title: "O"}, #{id: "dotgit", title: "D"}]'
    workspace: worktree
    retry: { max_attempts: 1 }
    shell: |
      set -eu
      c() { git -c user.name=A -c user.email=a@example.com "$@"; }
      case "{{ item.id }}" in
        link) ln -s /etc/passwd passwd; c add passwd; c commit -qm link ;;
        orphan) b=$(git symbolic-ref --short HEAD); c checkout -q --orphan other
                c commit -q --allow-empty -m elsewhere; c branch -f "$b" other; c checkout -q "$b" ;;
        dotgit) blob=$(echo '[core]' | git hash-object -w --stdin)
                inner=$(printf '100644 blob %s\tconfig\n' "$blob" | git mktree)
                tree=$(printf '040000 tree %s\t.git\n' "$inner" | git mktree)
                commit=$(c commit-tree "$tree" -p HEAD -m evil)
                c update-ref "refs/heads/$(git symbolic-ref --short HEAD)" "$commit" ;;
      esac
"#;
    let p = git_project(mission, &prefix("hostile"), "30s");
    let base = crate::support::git(p.path(), &["rev-parse", "HEAD"]);
    let _w = p.worker("w1", "", &url());
    let (code, stderr) = p.run(&["run", "mission.yaml", "--nats", &url()]);
    assert_ne!(code, 0, "{stderr}");
    let run_id = p.run_ids().pop().unwrap();
    let events = p.events(&run_id);
    let failed = |phase: &str| -> String {
        events
            .iter()
            .rev()
            .find_map(|e| match &e.data {
                EventData::AttemptFailed(f) if f.phase == phase => Some(f.message.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{phase} did not fail"))
    };
    let link = failed("implement[link]");
    assert!(
        link.contains("refused") && link.contains("`passwd`: a symbolic link pointing out"),
        "{link}"
    );
    let orphan = failed("implement[orphan]");
    assert!(
        orphan.contains("refused") && orphan.contains("does not descend from"),
        "{orphan}"
    );
    let dotgit = failed("implement[dotgit]");
    assert!(
        dotgit.contains("refused") && dotgit.contains("hasDotgit"),
        "{dotgit}"
    );
    // No package branch moved, no incoming ref is left.
    for item in ["link", "orphan", "dotgit"] {
        let branch = spectacular::git::work_branch(&run_id, item);
        let head = crate::support::git(p.path(), &["rev-parse", &branch]);
        assert_eq!(head, base, "{branch}");
    }
    let left = crate::support::git(p.path(), &["for-each-ref", "refs/spectacular"]);
    assert!(left.is_empty(), "{left}");
}

#[test]
fn a_killed_worker_s_work_package_is_redelivered_and_committed_once() {
    if !nats_up("a_killed_worker_s_work_package_is_redelivered_and_committed_once") {
        return;
    }
    let mission = r#"
mission: redeliver-package
phases:
  implement:
    for_each: '[#{id: "a", title: "A"}]'
    workspace: worktree
    shell: 'if [ -f @DIR@/first ]; then echo done >> work.txt; else echo $$ > @DIR@/first; echo half >> work.txt; sleep 600; fi'
"#;
    let p = git_project(mission, &prefix("pkgredeliver"), "1s");
    let mut first = p.worker("first", "", &url());
    let coordinator = p.spawn(&["run", "mission.yaml", "--nats", &url()]);
    until("the first worker to start the package", || {
        p.path().join("first").is_file()
    });
    first.kill();
    kill_group_in(&p.path().join("first"));
    let _second = p.worker("second", "", &url());
    let (code, stderr) = coordinator.wait();
    assert_eq!(code, 0, "{stderr}");
    let run_id = p.run_ids().pop().unwrap();
    let events = p.events(&run_id);
    assert_eq!(count(&events, "attempt.started", "implement[a]"), 1);
    assert_eq!(count(&events, "attempt.succeeded", "implement[a]"), 1);
    assert_eq!(count(&events, "attempt.redelivered", "implement[a]"), 1);
    // The second worker started from the base, not from what the first one left.
    let git = succeeded(&events, "implement[a]")
        .unwrap()
        .git
        .clone()
        .unwrap();
    let work = crate::support::git(p.path(), &["show", &format!("{}:work.txt", git.head)]);
    assert_eq!(work, "done");
    assert_eq!(git.commits.len(), 1, "{:?}", git.commits);
}
