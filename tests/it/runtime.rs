//! End-to-end runs through the CLI: success, retries, timeouts, cancellation without orphan
//! processes, approvals, fan-out with sibling dependencies, rework loops, `always`, and a
//! crash test that kills the engine with SIGKILL at many moments and resumes each time.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use spectacular::record::{Event, EventData, Store};

/// A throwaway project with its own store.
pub(crate) struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub(crate) fn new(mission: &str) -> Project {
        Project::new_in(&std::env::temp_dir(), mission)
    }

    /// A project in a new directory under `parent`.
    pub(crate) fn new_in(parent: &Path, mission: &str) -> Project {
        let dir = tempfile::tempdir_in(parent).expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".spectacular")).unwrap();
        std::fs::write(dir.path().join("mission.yaml"), mission).unwrap();
        Project { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spectacular"));
        cmd.args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("SPECTACULAR_KILL_GRACE", "300ms")
            .env_remove("SPECTACULAR_STORE")
            .env("SPECTACULAR_ACTOR", "user:tester");
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("spawn spectacular")
    }

    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spectacular")
    }

    pub(crate) fn store(&self) -> Store {
        Store::locate(self.path(), None)
    }

    pub(crate) fn run_id(&self) -> String {
        self.store()
            .run_ids()
            .unwrap()
            .last()
            .cloned()
            .expect("a run")
    }

    pub(crate) fn events(&self) -> Vec<Event> {
        self.store().read_events(&self.run_id()).unwrap()
    }

    /// Wait (bounded) until the latest run's log satisfies `done`.
    pub(crate) fn wait_for(&self, what: &str, done: impl Fn(&[Event]) -> bool) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(id) = self
                .store()
                .run_ids()
                .ok()
                .and_then(|ids| ids.last().cloned())
            {
                if let Ok(events) = self.store().read_events(&id) {
                    if done(&events) {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}");
    }
}

pub(crate) fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub(crate) fn count(events: &[Event], kind: &str, phase: &str) -> usize {
    events
        .iter()
        .filter(|e| e.data.type_name() == kind && e.data.phase() == Some(phase))
        .count()
}

pub(crate) fn position(events: &[Event], kind: &str, phase: &str) -> usize {
    events
        .iter()
        .position(|e| e.data.type_name() == kind && e.data.phase() == Some(phase))
        .unwrap_or_else(|| panic!("no {kind} for {phase}"))
}

/// Is `pid` a live process? A zombie (killed, not yet reaped by whoever adopted it) is dead.
pub(crate) fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid, 0) == 0 };
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    });
    exists && !zombie
}

#[test]
fn a_successful_run_records_every_phase_and_verifies() {
    let p = Project::new(
        "
mission: ok
phases:
  hello: { run: [echo, hello] }
  shout: { shell: 'echo \"$SPECTACULAR_PHASE $SPECTACULAR_ATTEMPT\" > out.txt', needs: [hello], outputs: { out: { path: out.txt } } }
  done: { uses: builtin/noop, needs: [shout] }
",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    for phase in ["hello", "shout", "done"] {
        assert_eq!(count(&events, "phase.succeeded", phase), 1);
    }
    assert!(matches!(
        events.last().unwrap().data,
        EventData::RunSucceeded(_)
    ));
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "seq is gap-free"
    );
    let run = p.run_id();
    let artifact = p.store().run_dir(&run).join("artifacts/shout/out.txt");
    assert_eq!(std::fs::read_to_string(artifact).unwrap(), "shout 1\n");
    let stdout = p.store().run_dir(&run).join("attempts/hello/1/stdout.log");
    assert_eq!(std::fs::read_to_string(stdout).unwrap(), "hello\n");
    let verify = p.run(&["replay", &run, "--verify"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify));
    let status = p.run(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["status"], "succeeded");
}

#[test]
fn a_failing_attempt_is_retried_then_succeeds() {
    let p = Project::new(
        "
mission: retry
phases:
  flaky:
    shell: 'if [ -f marker ]; then echo second; else touch marker; echo first >&2; exit 3; fi'
    workspace: repo
    retry: { max_attempts: 3, backoff: { initial: 10ms, max: 10ms } }
",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    let failed = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptFailed(f) => Some(f.clone()),
            _ => None,
        })
        .expect("a failed attempt");
    assert_eq!(failed.exit_code, Some(3));
    assert!(
        failed.message.contains("first"),
        "the message quotes stderr: {}",
        failed.message
    );
    assert_eq!(count(&events, "attempt.started", "flaky"), 2);
    assert_eq!(count(&events, "phase.succeeded", "flaky"), 1);
}

#[test]
fn an_attempt_past_its_timeout_fails_as_timeout() {
    let p = Project::new(
        "
mission: slow
phases:
  slow: { run: [sleep, '30'], timeout: 200ms }
  after: { uses: builtin/noop, needs: [slow] }
",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();
    let kind = events.iter().find_map(|e| match &e.data {
        EventData::AttemptFailed(f) => Some(f.kind),
        _ => None,
    });
    assert_eq!(kind, Some(spectacular::model::FailureKind::Timeout));
    assert_eq!(count(&events, "phase.skipped", "after"), 1);
}

const BACKGROUND: &str = "
mission: bg
phases:
  spawner:
    shell: 'sleep 30 & echo $! >> pids; sleep 30 & echo $! >> pids; echo $$ >> pids; wait'
    workspace: repo
  later: { uses: builtin/noop, needs: [spawner] }
";

pub(crate) fn read_pids(p: &Project) -> Vec<i32> {
    std::fs::read_to_string(p.path().join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

pub(crate) fn wait_for_pids(p: &Project, n: usize) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let pids = read_pids(p);
        if pids.len() >= n {
            return pids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the phase did not start its processes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn assert_all_dead(pids: &[i32]) {
    let start = Instant::now();
    while pids.iter().any(|&p| alive(p)) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivors: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(survivors.is_empty(), "processes survived: {survivors:?}");
}

#[test]
fn ctrl_c_cancels_without_orphans_and_the_run_resumes() {
    let p = Project::new(BACKGROUND);
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    let pids = wait_for_pids(&p, 3);
    // SAFETY: sends SIGINT to the engine we started.
    unsafe { libc::kill(engine.id() as i32, libc::SIGINT) };
    let status = engine.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(engine.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("spectacular resume"),
        "says how to resume: {stderr}"
    );
    assert_all_dead(&pids);
    let events = p.events();
    assert!(matches!(
        events.last().unwrap().data,
        EventData::RunCanceled(_)
    ));
    // Resume: the canceled phase runs again; make it quick this time.
    std::fs::write(
        p.path().join("mission.yaml"),
        BACKGROUND
            .replace("sleep 30 &", "true &")
            .replace("wait'", "true'"),
    )
    .unwrap();
    let out = p.run(&["resume", &p.run_id(), "--upgrade"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(count(&p.events(), "phase.succeeded", "later"), 1);
}

#[test]
fn cancel_from_another_terminal_reaches_the_running_engine() {
    let p = Project::new(BACKGROUND);
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    let pids = wait_for_pids(&p, 3);
    let out = p.run(&["cancel", &p.run_id()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(engine.wait().unwrap().code(), Some(130));
    assert_all_dead(&pids);
    let events = p.events();
    let actor = events
        .iter()
        .find(|e| matches!(e.data, EventData::CancelRequested(_)))
        .map(|e| e.actor.clone());
    assert_eq!(actor.as_deref(), Some("user:tester"));
}

const GATED: &str = "
mission: gated
phases:
  build: { uses: builtin/noop }
  gate:
    needs: [build]
    approval: { reason: ship it? }
  deploy: { shell: 'echo deployed', needs: [gate] }
";

#[test]
fn an_approval_suspends_the_run_and_approve_resumes_it() {
    let p = Project::new(GATED);
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("spectacular approve"), "{}", text(&out));
    let run = p.run_id();
    let wrong = p.run(&["approve", &run, "deploy"]);
    assert_eq!(
        code(&wrong),
        2,
        "only waiting gates can be approved: {}",
        text(&wrong)
    );
    let out = p.run(&[
        "approve",
        &run,
        "gate",
        "--comment",
        "looks good",
        "--resume",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    let decided = events
        .iter()
        .find(|e| matches!(e.data, EventData::ApprovalDecided(_)))
        .unwrap();
    assert_eq!(decided.actor, "user:tester");
    assert_eq!(count(&events, "phase.succeeded", "deploy"), 1);
    assert!(events
        .iter()
        .any(|e| matches!(e.data, EventData::RunSuspended(_))));
}

#[test]
fn a_rejected_gate_fails_the_run() {
    let p = Project::new(GATED);
    assert_eq!(code(&p.run(&["run", "mission.yaml"])), 3);
    let out = p.run(&["approve", &p.run_id(), "gate", "--reject", "--resume"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(count(&p.events(), "phase.skipped", "deploy"), 1);
}

#[test]
fn approve_reaches_a_running_engine_through_its_inbox() {
    let p = Project::new(
        "
mission: busy-gate
phases:
  gate: { approval: { reason: go? } }
  deploy: { uses: builtin/noop, needs: [gate] }
  long: { shell: 'while [ ! -f release ]; do sleep 0.05; done', workspace: repo, timeout: 30s }
",
    );
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    p.wait_for("the gate", |events| {
        events
            .iter()
            .any(|e| matches!(e.data, EventData::ApprovalRequested(_)))
    });
    let out = p.run(&["approve", &p.run_id(), "gate"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    p.wait_for("deploy", |events| {
        count(events, "phase.succeeded", "deploy") == 1
    });
    std::fs::write(p.path().join("release"), "").unwrap();
    assert_eq!(engine.wait().unwrap().code(), Some(0));
}

#[test]
fn for_each_children_respect_sibling_dependencies() {
    let p = Project::new(
        "
mission: fan
phases:
  work:
    for_each:
      - { id: a }
      - { id: b, depends_on: [a] }
      - { id: c, depends_on: [b] }
      - { id: d }
    max_parallel: 2
    shell: 'echo {{ item.id }} > item.txt'
    outputs: { item: { path: item.txt } }
  after: { uses: builtin/noop, needs: [work] }
",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    assert!(
        position(&events, "phase.succeeded", "work[a]")
            < position(&events, "attempt.started", "work[b]")
    );
    assert!(
        position(&events, "phase.succeeded", "work[b]")
            < position(&events, "attempt.started", "work[c]")
    );
    assert!(
        position(&events, "phase.succeeded", "work")
            < position(&events, "attempt.started", "after")
    );
    let artifact = p
        .store()
        .run_dir(&p.run_id())
        .join("artifacts/work[c]/item.txt");
    assert_eq!(std::fs::read_to_string(artifact).unwrap(), "c\n");
}

#[test]
fn a_rework_loop_reruns_from_the_goto_phase() {
    let p = Project::new(
        "
mission: rework
phases:
  implement: { shell: 'echo attempt >> attempts.log', workspace: repo }
  check:
    needs: [implement]
    shell: 'if [ -f fixed ]; then exit 0; else touch fixed; exit 1; fi'
    workspace: repo
    on_failure: { goto: implement, max_loops: 2 }
",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.data.type_name() == "loop.started")
            .count(),
        1
    );
    assert_eq!(count(&events, "attempt.started", "implement"), 2);
    assert_eq!(
        std::fs::read_to_string(p.path().join("attempts.log"))
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn always_phases_run_after_a_failure() {
    let p = Project::new(
        "
mission: finally
phases:
  broken: { uses: builtin/fail, with: { message: nope } }
  skipped: { uses: builtin/noop, needs: [broken] }
  report: { uses: builtin/report, needs: [skipped], always: true, outputs: { report: { path: report.md } } }
",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();
    assert_eq!(count(&events, "phase.skipped", "skipped"), 1);
    assert_eq!(count(&events, "phase.succeeded", "report"), 1);
    let report = std::fs::read_to_string(
        p.store()
            .run_dir(&p.run_id())
            .join("artifacts/report/report.md"),
    )
    .unwrap();
    assert!(report.contains("| broken | failed |"), "{report}");
}

#[test]
fn an_output_escaping_the_attempt_directory_is_invalid() {
    let p = Project::new(
        "
mission: escape
phases:
  sneaky:
    shell: 'ln -s /etc/hostname link.txt'
    outputs: { link: { path: link.txt } }
  dots:
    shell: 'true'
    outputs: { up: { path: ../up.txt } }
",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let kinds: Vec<_> = p
        .events()
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AttemptFailed(f) => Some((f.phase.clone(), f.kind)),
            _ => None,
        })
        .collect();
    assert!(
        kinds.contains(&(
            "sneaky".into(),
            spectacular::model::FailureKind::OutputInvalid
        )),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(
            "dots".into(),
            spectacular::model::FailureKind::OutputInvalid
        )),
        "{kinds:?}"
    );
}

#[test]
fn resume_refuses_a_changed_mission_unless_upgraded() {
    let p = Project::new(GATED);
    assert_eq!(code(&p.run(&["run", "mission.yaml"])), 3);
    std::fs::write(
        p.path().join("mission.yaml"),
        GATED.replace("echo deployed", "echo changed"),
    )
    .unwrap();
    let run = p.run_id();
    let out = p.run(&["resume", &run]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("--upgrade"), "{}", text(&out));
}

#[test]
fn a_second_engine_on_the_same_run_is_refused() {
    let p = Project::new(BACKGROUND);
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    let pids = wait_for_pids(&p, 3);
    let out = p.run(&["resume", &p.run_id()]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains(&engine.id().to_string()),
        "names the holder: {}",
        text(&out)
    );
    engine.kill().unwrap();
    engine.wait().unwrap();
    for pid in pids {
        // SAFETY: clean up the orphans of the engine we killed.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// 24 phases: a chain, a diamond and a fan-out, each a short process.
fn crash_mission() -> String {
    let mut m = String::from("mission: crash\nphases:\n");
    m.push_str("  p00: { run: [sh, -c, 'sleep 0.02'] }\n");
    for i in 1..20u32 {
        let needs = if i % 5 == 0 {
            format!("[p{:02}, p{:02}]", i - 1, i.saturating_sub(3))
        } else {
            format!("[p{:02}]", i - 1)
        };
        m.push_str(&format!(
            "  p{i:02}: {{ run: [sh, -c, 'sleep 0.02'], needs: {needs} }}\n"
        ));
    }
    m.push_str("  fan:\n    needs: [p19]\n    for_each: [{id: a}, {id: b, depends_on: [a]}, {id: c}, {id: d}]\n    max_parallel: 2\n    run: [sh, -c, 'sleep 0.02']\n");
    m.push_str("  side: { run: [sh, -c, 'sleep 0.05'] }\n");
    m.push_str("  last: { uses: builtin/noop, needs: [fan, side] }\n");
    m
}

#[test]
fn killing_the_engine_at_any_moment_loses_nothing() {
    let p = Project::new(&crash_mission());
    let mut engine = p.spawn(&["run", "mission.yaml", "--max-parallel", "3"]);
    p.wait_for("the run to start", |events| !events.is_empty());
    let mut kills = 0;
    let mut finished = false;
    for round in 0..40u64 {
        let delay = Duration::from_millis(13 + (round * 37) % 160);
        std::thread::sleep(delay);
        if let Ok(Some(status)) = engine.try_wait() {
            let id = p.run_id();
            let last = p
                .store()
                .read_events(&id)
                .unwrap()
                .last()
                .map(|e| e.data.type_name());
            if last == Some("run.succeeded") {
                // Either this engine finished the run, or the one killed before it had
                // already recorded the end and this resume found nothing left to do.
                let mut stderr = String::new();
                std::io::Read::read_to_string(engine.stderr.as_mut().unwrap(), &mut stderr)
                    .unwrap();
                assert!(
                    status.code() == Some(0)
                        || (status.code() == Some(2) && stderr.contains("already succeeded")),
                    "{status:?}: {stderr}"
                );
                finished = true;
                break;
            }
        } else {
            engine.kill().unwrap();
            engine.wait().unwrap();
            kills += 1;
        }
        engine = p.spawn(&["resume", &p.run_id()]);
    }
    if !finished {
        // The last resume completes the run, unless the engine killed last had recorded its
        // end already: then this one finds nothing left to do, and says so.
        let status = engine.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(engine.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(
            status.code() == Some(0)
                || (status.code() == Some(2) && stderr.contains("already succeeded")),
            "the last resume: {status:?}: {stderr}"
        );
    }
    assert!(kills >= 5, "the engine was killed only {kills} times");
    let events = p.events();
    assert!(matches!(
        events.last().unwrap().data,
        EventData::RunSucceeded(_)
    ));
    let mut phases: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
    phases.extend(
        [
            "fan", "fan[a]", "fan[b]", "fan[c]", "fan[d]", "side", "last",
        ]
        .map(String::from),
    );
    for phase in &phases {
        assert_eq!(
            count(&events, "phase.succeeded", phase),
            1,
            "phase {phase} succeeded exactly once"
        );
    }
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "seq is gap-free"
    );
    let verify = p.run(&["replay", &p.run_id(), "--verify"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify));
    // Through every kill and resume, each decision is what the log before it decides.
    let mission = crash_mission();
    let plan = spectacular::plan::plan(
        crate::support::validate_bytes("mission.yaml", mission.as_bytes())
            .mission
            .expect("the crash mission is valid"),
    );
    crate::replay::assert_the_log_replays(&std::sync::Arc::new(plan), &events);
}

#[test]
fn the_quickstart_example_runs_end_to_end() {
    let store = tempfile::tempdir().unwrap();
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_spectacular"))
        .args(["run", "examples/quickstart", "--store"])
        .arg(store.path())
        .current_dir(repo)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let store = Store::locate(Path::new(repo), Some(store.path()));
    let run = store.run_ids().unwrap().pop().unwrap();
    let dir = store.run_dir(&run);
    let tasks: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("artifacts/plan/tasks.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), 3);
    let greet = std::fs::read_to_string(dir.join("artifacts/implement[wp-1]/greet.txt")).unwrap();
    assert!(
        greet.contains("Implement work package wp-1: Greeting"),
        "the agent got the rendered prompt: {greet}"
    );
    let report = std::fs::read_to_string(dir.join("artifacts/report/report.md")).unwrap();
    assert!(report.contains("| check | succeeded |"), "{report}");
    let prompt = std::fs::read_to_string(dir.join("attempts/plan/1/prompt.md")).unwrap();
    assert!(
        prompt.contains("complexity is"),
        "the prompt is saved, rendered: {prompt}"
    );
}

#[test]
fn inputs_are_checked_against_the_mission() {
    let p = Project::new(
        "
mission: inputs
inputs:
  spec: { type: file, required: true }
  count: { type: number, default: 2 }
  names: { type: list, default: [] }
phases:
  show: { shell: 'echo {{ inputs.count }} {{ inputs.names | join(\"+\") }}' }
",
    );
    let missing = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&missing), 2);
    assert!(
        text(&missing).contains("--input spec="),
        "{}",
        text(&missing)
    );
    let typo = p.run(&["run", "mission.yaml", "--input", "sepc=x"]);
    assert_eq!(code(&typo), 2);
    assert!(
        text(&typo).contains("did you mean `spec`"),
        "{}",
        text(&typo)
    );
    let no_file = p.run(&["run", "mission.yaml", "--input", "spec=nope.md"]);
    assert_eq!(code(&no_file), 2, "{}", text(&no_file));
    std::fs::write(p.path().join("spec.md"), "# spec\n").unwrap();
    let not_number = p.run(&[
        "run",
        "mission.yaml",
        "-i",
        "spec=spec.md",
        "-i",
        "count=many",
    ]);
    assert_eq!(code(&not_number), 2, "{}", text(&not_number));
    let ok = p.run(&[
        "run",
        "mission.yaml",
        "-i",
        "spec=spec.md",
        "-i",
        "count=3",
        "-i",
        "names=a,b",
    ]);
    assert_eq!(code(&ok), 0, "{}", text(&ok));
    let stdout = p
        .store()
        .run_dir(&p.run_id())
        .join("attempts/show/1/stdout.log");
    assert_eq!(std::fs::read_to_string(stdout).unwrap(), "3 a+b\n");
}

#[test]
fn a_gate_times_out_by_its_on_timeout_when_resumed_late() {
    let p = Project::new(
        "
mission: timeout-gate
phases:
  gate: { approval: { reason: go?, timeout: 100ms, on_timeout: approve } }
  after: { uses: builtin/noop, needs: [gate] }
",
    );
    assert_eq!(code(&p.run(&["run", "mission.yaml"])), 3);
    std::thread::sleep(Duration::from_millis(200));
    let out = p.run(&["resume", &p.run_id()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let decided = p.events().into_iter().find_map(|e| match e.data {
        EventData::ApprovalDecided(d) => Some(d),
        _ => None,
    });
    assert!(decided.is_some_and(|d| d.timed_out && d.approved));
}

#[test]
fn captured_output_is_capped_with_a_marker() {
    let p = Project::new(
        "
mission: loud
phases:
  loud: { shell: 'head -c 9000000 /dev/zero | tr \"\\\\0\" x; echo; echo done >&2' }
",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let dir = p.store().run_dir(&p.run_id()).join("attempts/loud/1");
    let stdout = std::fs::read(dir.join("stdout.log")).unwrap();
    let cap = spectacular::execute::process::OUTPUT_CAP as usize;
    assert!(stdout.len() < cap + 200, "{} bytes kept", stdout.len());
    assert!(String::from_utf8_lossy(&stdout[cap..]).contains("output truncated"));
    assert_eq!(
        std::fs::read_to_string(dir.join("stderr.log")).unwrap(),
        "done\n"
    );
}

#[test]
fn json_mode_streams_the_events_on_stdout() {
    let p =
        Project::new("mission: j\nphases:\n  a: { uses: builtin/echo, with: { message: hi } }\n");
    let out = p.run(&["run", "mission.yaml", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let streamed: Vec<Event> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| Event::from_json_line(l).expect("each line is an event"))
        .collect();
    assert_eq!(streamed, p.events());
}

#[test]
fn status_says_when_no_engine_runs_an_unfinished_run() {
    let p = Project::new(BACKGROUND);
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    let pids = wait_for_pids(&p, 3);
    engine.kill().unwrap();
    engine.wait().unwrap();
    let out = p.run(&["status"]);
    assert!(text(&out).contains("spectacular resume"), "{}", text(&out));
    for pid in pids {
        // SAFETY: clean up the orphans of the engine we killed.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

#[test]
fn events_follow_streams_until_the_run_ends() {
    let p = Project::new(
        "
mission: follow
phases:
  wait: { shell: 'while [ ! -f go ]; do sleep 0.05; done', workspace: repo, timeout: 30s }
  after: { uses: builtin/noop, needs: [wait] }
",
    );
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    p.wait_for("the attempt", |events| {
        events
            .iter()
            .any(|e| matches!(e.data, EventData::AttemptStarted(_)))
    });
    let follower = p
        .command(&["events", &p.run_id(), "--follow", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(p.path().join("go"), "").unwrap();
    assert_eq!(engine.wait().unwrap().code(), Some(0));
    let out = follower.wait_with_output().unwrap();
    assert_eq!(code(&out), 0);
    let followed: Vec<Event> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| Event::from_json_line(l).unwrap())
        .collect();
    assert_eq!(
        followed,
        p.events(),
        "every event, in order, ending with the run's end"
    );
}

/// A project whose agent phase runs a fake agent CLI (see `tests/fixtures/agents/`).
fn agent_project(client: &str, adapter: &str, model: &str) -> Project {
    let p = Project::new(&format!(
        "
mission: agent
phases:
  plan:
    role: planner
    model: {model}
    prompt: plan.md.j2
"
    ));
    std::fs::write(
        p.path().join("plan.md.j2"),
        "Plan the work for run {{ run.id }}.\n",
    )
    .unwrap();
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        format!("agents:\n  {client}:\n    adapter: {adapter}\n    roles: [planner]\n"),
    )
    .unwrap();
    p
}

fn run_with_fake(p: &Project, client: &str, sample: &str, extra: &[(&str, &str)]) -> Output {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    let path = format!(
        "{}:{}",
        fixtures.join(client).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = p.command(&["run", "mission.yaml"]);
    cmd.env("PATH", path)
        .env("FAKE_AGENT_SAMPLE", fixtures.join("samples").join(sample))
        .env("FAKE_AGENT_RECORD", p.path().join("argv"));
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Write a policy pack `name` with one hook into `dir/<name>/`; returns its directory.
fn write_pack(dir: &Path, name: &str, hook: &str, script: &str) -> std::path::PathBuf {
    let pack = dir.join(name);
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(
        pack.join("pack.yaml"),
        format!("name: {name}\nversion: \"1.0.0\"\nhooks: [{hook}]\n"),
    )
    .unwrap();
    std::fs::write(pack.join("policy.rhai"), script).unwrap();
    pack
}

/// An `agents.yaml` entry for a fake client (`tests/fixtures/agents/<client>/<client>`) that
/// prints `sample`.
pub(crate) fn fake_agent(client: &str, adapter: &str, role: &str, sample: &str) -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    format!(
        "  {client}:\n    adapter: {adapter}\n    binary: {}\n    roles: [{role}]\n    env: {{ FAKE_AGENT_SAMPLE: {} }}\n",
        fixtures.join(client).join(client).display(),
        fixtures.join("samples").join(sample).display()
    )
}

pub(crate) fn write_agents(p: &Project, entries: &[String]) {
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        format!("agents:\n{}", entries.concat()),
    )
    .unwrap();
}

fn attempt_result(events: &[Event]) -> EventData {
    events
        .iter()
        .rev()
        .find(|e| {
            matches!(
                e.data,
                EventData::AttemptSucceeded(_) | EventData::AttemptFailed(_)
            )
        })
        .map(|e| e.data.clone())
        .expect("an attempt result")
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_with(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_with(&path, needle));
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
fn a_command_agent_that_names_no_key_still_leaks_none() {
    let p = Project::new(
        "
mission: agent
phases:
  plan:
    role: planner
    prompt: plan.md.j2
",
    );
    std::fs::write(p.path().join("plan.md.j2"), "Plan.\n").unwrap();
    // A careless tool that would print a provider key and a token if it inherited them.
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        "agents:\n  tool:\n    adapter: command\n    roles: [planner]\n    stdin: false\n    argv: [sh, -c, 'echo \"key $OPENAI_API_KEY\"; echo \"token $ACME_SERVICE_TOKEN\" >&2; exit 3']\n",
    )
    .unwrap();
    let key = "sk-canary-openai-5d1f0c9e7b3a";
    let token = "canary-acme-token-8e2b4f6a1c";
    let out = p
        .command(&["run", "mission.yaml"])
        .env("OPENAI_API_KEY", key)
        .env("ACME_SERVICE_TOKEN", token)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    for secret in [key, token] {
        assert!(!text(&out).contains(secret), "{}", text(&out));
        let leaked = files_with(p.path(), secret);
        assert!(leaked.is_empty(), "`{secret}` is in {leaked:?}");
    }
    // It names no key, so it inherits none of them.
    match attempt_result(&p.events()) {
        EventData::AttemptFailed(f) => {
            assert!(f.message.ends_with("token"), "{}", f.message)
        }
        other => panic!("{other:?}"),
    }
    let stdout = p
        .store()
        .run_dir(&p.run_id())
        .join("attempts/plan/1/stdout.log");
    assert_eq!(std::fs::read_to_string(stdout).unwrap(), "key \n");
}

#[test]
fn a_claude_code_phase_records_the_reported_cost() {
    let p = agent_project("claude", "claude-code", "claude-sonnet");
    let out = run_with_fake(&p, "claude", "claude-success.json", &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let argv = std::fs::read_to_string(p.path().join("argv")).unwrap();
    let argv: Vec<&str> = argv.split('\0').filter(|a| !a.is_empty()).collect();
    assert_eq!(argv[0], "-p");
    assert!(
        argv[1].starts_with("Plan the work for run "),
        "the rendered prompt is one argument: {argv:?}"
    );
    let model = argv
        .iter()
        .position(|a| *a == "--model")
        .map(|i| argv[i + 1]);
    assert_eq!(
        model,
        Some("claude-sonnet-4-5"),
        "the catalog maps the model to the provider's id"
    );
    match attempt_result(&p.events()) {
        EventData::AttemptSucceeded(s) => {
            assert_eq!(s.agent.as_deref(), Some("claude"));
            let usage = s.usage.expect("usage");
            assert_eq!(usage.cost_usd, Some(0.0421));
            assert_eq!(
                usage.cost_source,
                Some(spectacular::agents::CostSource::Reported)
            );
            assert_eq!(usage.output_tokens, 512);
            assert!(usage.session_id.is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_codex_phase_is_priced_from_the_catalog() {
    let p = agent_project("codex", "codex", "gpt");
    let out = run_with_fake(&p, "codex", "codex-success.jsonl", &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    match attempt_result(&p.events()) {
        EventData::AttemptSucceeded(s) => {
            let usage = s.usage.expect("usage");
            assert_eq!(
                usage.cost_source,
                Some(spectacular::agents::CostSource::Priced)
            );
            let expected = (usage.input_tokens as f64 * 1.25
                + usage.output_tokens as f64 * 10.0
                + usage.cache_read_tokens as f64 * 0.125)
                / 1_000_000.0;
            let cost = usage.cost_usd.expect("a price");
            assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_agent_error_reported_with_exit_0_fails_and_keys_never_leak() {
    let canary = "sk-ant-canary-0123456789abcdef";
    let p = agent_project("claude", "claude-code", "claude-sonnet");
    let out = run_with_fake(
        &p,
        "claude",
        "claude-auth.json",
        &[
            ("ANTHROPIC_API_KEY", canary),
            ("FAKE_AGENT_LEAK", "ANTHROPIC_API_KEY"),
        ],
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    match attempt_result(&p.events()) {
        EventData::AttemptFailed(f) => assert!(f.message.starts_with("auth"), "{}", f.message),
        other => panic!("{other:?}"),
    }
    assert!(!text(&out).contains(canary));
    for entry in walk(&p.store().dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(canary),
            "the key leaked into {}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn cost_reports_group_calls_by_agent_model_and_day() {
    let p = Project::new(
        "
mission: costly
phases:
  plan: { role: planner, model: claude-sonnet }
  build: { role: executor, model: gpt, needs: [plan] }
",
    );
    write_agents(
        &p,
        &[
            fake_agent("claude", "claude-code", "planner", "claude-success.json"),
            fake_agent("codex", "codex", "executor", "codex-success.jsonl"),
        ],
    );
    for _ in 0..2 {
        let out = p.run(&["run", "mission.yaml"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    let out = p.run(&["cost", "--by", "agent", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["calls"], 4);
    let groups = report["groups"].as_array().unwrap();
    let claude = groups
        .iter()
        .find(|g| g["key"] == "claude")
        .expect("claude");
    assert_eq!(claude["calls"], 2);
    assert!(
        (claude["cost_usd"].as_f64().unwrap() - 0.0842).abs() < 1e-9,
        "{claude}"
    );
    let shares: f64 = groups.iter().map(|g| g["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    let by_day = p.run(&["cost", "--by", "day", "--since", "1d"]);
    assert_eq!(code(&by_day), 0, "{}", text(&by_day));
    assert!(
        String::from_utf8_lossy(&by_day.stdout).contains("total: $"),
        "{}",
        text(&by_day)
    );
    let bad = p.run(&["cost", "--since", "yesterday"]);
    assert_eq!(code(&bad), 2, "{}", text(&bad));
}

#[test]
fn agents_doctor_finds_installed_clients_and_never_prints_keys() {
    let canary = "sk-ant-canary-doctor-0123456789";
    let p = Project::new("mission: none\nphases:\n  a: { uses: builtin/noop }\n");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    let path = format!("{}:/usr/bin:/bin", fixtures.join("claude").display());
    let out = p
        .command(&["agents", "doctor", "--json"])
        .env("PATH", path)
        .env("ANTHROPIC_API_KEY", canary)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!text(&out).contains(canary));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("claude-code")["ready"], true);
    assert_eq!(
        row("claude-code")["keys"][0],
        serde_json::json!(["ANTHROPIC_API_KEY", true])
    );
    assert_eq!(row("codex")["ready"], false);
    let list = p.run(&["agents", "list"]);
    assert!(
        text(&list).contains("builtin:agents.yaml"),
        "{}",
        text(&list)
    );
}

/// The reservation of one `Work on item NN.` attempt on claude-sonnet ($3/$15 per Mtok).
fn work_item_estimate() -> f64 {
    spectacular::execute::budget::estimate(
        Some(&spectacular::agents::Prices {
            input: 3.0,
            output: 15.0,
            cache_read: None,
            cache_write: None,
        }),
        "Work on item 10.\n".chars().count(),
    )
}

#[test]
fn the_hard_cap_holds_under_concurrency() {
    // 50 agent phases start at once; the cap leaves room for 10 reservations.
    let estimate = work_item_estimate();
    let cap = estimate * 10.0 + estimate / 2.0;
    let p = Project::new(&format!(
        "
mission: capped
budget: {{ max_usd: {cap} }}
phases:
  work:
    for_each: 'range(10, 60)'
    role: planner
    model: claude-sonnet
    prompt: work.md.j2
"
    ));
    std::fs::write(p.path().join("work.md.j2"), "Work on item {{ item }}.\n").unwrap();
    write_agents(
        &p,
        &[fake_agent(
            "claude",
            "claude-code",
            "planner",
            "claude-success.json",
        )],
    );
    let out = p.run(&["run", "mission.yaml", "--max-parallel", "50"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();
    let spent: f64 = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AttemptSucceeded(s) => s.usage.as_ref().and_then(|u| u.cost_usd),
            _ => None,
        })
        .sum();
    let succeeded = events
        .iter()
        .filter(|e| matches!(e.data, EventData::AttemptSucceeded(_)))
        .count();
    let denied: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AttemptFailed(f) if f.kind == spectacular::model::FailureKind::Budget => {
                Some(f.message.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(succeeded, 10, "exactly the reservations that fit ran");
    assert_eq!(denied.len(), 40);
    // This client reports its dollars and keeps within its reservation: the run spends what
    // the sample reports, ten times, under the cap.
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/agents/samples/claude-success.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let reported = sample["total_cost_usd"].as_f64().unwrap();
    assert!(
        reported < estimate,
        "the sample must keep within its reservation"
    );
    assert!(
        (spent - 10.0 * reported).abs() < 1e-9,
        "spent {spent}, expected {}",
        10.0 * reported
    );
    assert!(spent <= cap, "spent {spent} > cap {cap}");
    assert!(
        denied[0].contains("spent $")
            && denied[0].contains("reserved $")
            && denied[0].contains("estimate $")
            && denied[0].contains("cap $"),
        "{}",
        denied[0]
    );
}

#[test]
fn concurrent_runs_share_a_day_budget_through_the_ledger() {
    // Two runs of 20 parallel agent phases each start together; the project's day budget
    // leaves room for 10 reservations in all. Each run sees the other's reservations.
    let estimate = work_item_estimate();
    let limit = estimate * 10.0 + estimate / 2.0;
    let p = Project::new(
        "
mission: shared
phases:
  work:
    for_each: 'range(10, 30)'
    role: planner
    model: claude-sonnet
    prompt: work.md.j2
",
    );
    std::fs::write(p.path().join("work.md.j2"), "Work on item {{ item }}.\n").unwrap();
    std::fs::write(
        p.path().join(".spectacular/budgets.yaml"),
        format!("day_usd: {limit}\n"),
    )
    .unwrap();
    write_agents(
        &p,
        &[fake_agent(
            "claude",
            "claude-code",
            "planner",
            "claude-success.json",
        )],
    );
    let user = tempfile::tempdir().unwrap();
    let start = || {
        p.command(&["run", "mission.yaml", "--max-parallel", "20"])
            .env("SPECTACULAR_CONFIG_DIR", user.path())
            .env("FAKE_AGENT_SLEEP", "0.3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let runs = [start(), start()];
    for mut run in runs {
        run.wait().unwrap();
    }
    let store = p.store();
    let ids = store.run_ids().unwrap();
    assert_eq!(ids.len(), 2);
    let (mut spent, mut succeeded, mut denied) = (0.0, 0, Vec::new());
    for id in &ids {
        for e in store.read_events(id).unwrap() {
            match e.data {
                EventData::AttemptSucceeded(s) => {
                    succeeded += 1;
                    spent += s.usage.and_then(|u| u.cost_usd).unwrap_or(0.0);
                }
                EventData::AttemptFailed(f)
                    if f.kind == spectacular::model::FailureKind::Budget =>
                {
                    denied.push(f.message)
                }
                _ => {}
            }
        }
    }
    assert!(
        spent <= limit,
        "the runs spent {spent} together, past {limit}"
    );
    assert!(
        succeeded >= 10,
        "every reservation that fits ran: {succeeded}"
    );
    assert_eq!(succeeded + denied.len(), 40);
    assert!(
        denied
            .iter()
            .all(|m| m.contains("project day budget") && m.contains("estimate $")),
        "{denied:?}"
    );
    // The ledger holds no open reservation once both runs are over.
    let ledger = std::fs::read_to_string(p.path().join(".spectacular/spend.jsonl")).unwrap();
    let reserves = ledger.lines().filter(|l| l.contains("\"reserve\"")).count();
    let settled = ledger.lines().filter(|l| l.contains("\"usd\"")).count();
    assert_eq!(reserves, succeeded, "{ledger}");
    assert_eq!(settled, succeeded, "{ledger}");
}

#[test]
fn policies_route_unpinned_phases_and_every_decision_is_recorded() {
    let p = Project::new(
        "
mission: routed
phases:
  plan: { role: planner, prompt: plan.md.j2 }
",
    );
    std::fs::write(p.path().join("plan.md.j2"), "Plan it.\n").unwrap();
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        "agents:\n  claude:\n    adapter: claude-code\n    roles: [planner]\n",
    )
    .unwrap();
    let out = run_with_fake(&p, "claude", "claude-success.json", &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let argv = std::fs::read_to_string(p.path().join("argv")).unwrap();
    let argv: Vec<&str> = argv.split('\0').filter(|a| !a.is_empty()).collect();
    let model = argv
        .iter()
        .position(|a| *a == "--model")
        .map(|i| argv[i + 1]);
    // No analysis: medium complexity, a planner needs a strong model; Claude gets Anthropic's.
    assert_eq!(model, Some("claude-opus-4-1"), "{argv:?}");
    let events = p.events();
    let decided: Vec<&spectacular::record::event::PolicyDecided> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::PolicyDecided(d) => Some(d.as_ref()),
            _ => None,
        })
        .collect();
    let route = decided
        .iter()
        .find(|d| d.hook == "route")
        .expect("a route decision");
    assert_eq!(route.pack, "default-routing");
    assert_eq!(route.result["model"], "claude-opus");
    assert!(route
        .reason
        .as_deref()
        .unwrap_or_default()
        .contains("planner"));
    let decided_at = events
        .iter()
        .position(|e| matches!(e.data, EventData::PolicyDecided(_)))
        .unwrap();
    let started_at = events
        .iter()
        .position(|e| matches!(e.data, EventData::AttemptStarted(_)))
        .unwrap();
    assert!(decided_at < started_at, "decisions come before the attempt");
    let explain = p.run(&["policy", "explain", &p.run_id()]);
    assert_eq!(code(&explain), 0, "{}", text(&explain));
    assert!(
        text(&explain).contains("default-routing"),
        "{}",
        text(&explain)
    );
}

#[test]
fn a_project_policy_can_deny_a_phase() {
    let p = agent_project("claude", "claude-code", "claude-opus");
    write_pack(&p.path().join(".spectacular/policies"), "no-opus", "govern", "fn govern(ctx) {\n    if (ctx.phase.model ?? \"\") == \"claude-opus\" { return deny(\"opus is not for planning here\"); }\n    allow(\"fine\")\n}\n");
    let out = run_with_fake(&p, "claude", "claude-success.json", &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    match attempt_result(&p.events()) {
        EventData::AttemptFailed(f) => {
            assert_eq!(f.kind, spectacular::model::FailureKind::Denied);
            assert!(
                f.message.contains("no-opus") && f.message.contains("not for planning"),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!p.path().join("argv").exists(), "the agent never started");
}

fn fallback_project(claude_binary: &str, claude_sample: &str, codex_sample: &str) -> Project {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    let p = Project::new("mission: fb\nphases:\n  plan: { role: planner }\n");
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        format!(
            "agents:\n  claude:\n    adapter: claude-code\n    binary: {claude_binary}\n    roles: [planner]\n    fallbacks: [codex]\n    env: {{ FAKE_AGENT_SAMPLE: {} }}\n  codex:\n    adapter: codex\n    binary: {}\n    model: gpt\n    env: {{ FAKE_AGENT_SAMPLE: {} }}\n",
            fixtures.join("samples").join(claude_sample).display(),
            fixtures.join("codex/codex").display(),
            fixtures.join("samples").join(codex_sample).display(),
        ),
    )
    .unwrap();
    p
}

#[test]
fn a_rate_limited_agent_falls_back_to_the_next_one() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    let claude = fixtures.join("claude/claude");
    let p = fallback_project(
        &claude.display().to_string(),
        "claude-rate-limit.json",
        "codex-success.jsonl",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    let hops: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::FallbackActivated(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    // The routed model's own fallback (same provider) first, then the agent's fallback.
    assert_eq!(hops.len(), 2, "{hops:?}");
    assert_eq!(hops[0].from_model.as_deref(), Some("claude-opus"));
    assert_eq!(hops[0].to_model.as_deref(), Some("claude-sonnet"));
    assert_eq!(
        (hops[1].from_agent.as_str(), hops[1].to_agent.as_str()),
        ("claude", "codex")
    );
    assert_eq!(hops[1].to_model.as_deref(), Some("gpt"));
    assert!(
        hops.iter().all(|h| h.reason.starts_with("rate_limit")),
        "{hops:?}"
    );
    match attempt_result(&events) {
        EventData::AttemptSucceeded(s) => assert_eq!(s.agent.as_deref(), Some("codex")),
        other => panic!("{other:?}"),
    }
    let dir = p.store().run_dir(&p.run_id()).join("attempts/plan/1");
    assert!(
        dir.join("stdout.1.log").is_file(),
        "the first hop's output is kept"
    );
}

#[test]
fn a_missing_primary_falls_back_and_an_exhausted_chain_lists_every_reason() {
    let p = fallback_project(
        "no-such-claude-binary",
        "claude-success.json",
        "codex-rate-limit.jsonl",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    match attempt_result(&p.events()) {
        EventData::AttemptFailed(f) => {
            assert!(
                f.message
                    .contains("every agent of the fallback chain failed"),
                "{}",
                f.message
            );
            assert!(
                f.message.contains("claude/") && f.message.contains("unavailable"),
                "{}",
                f.message
            );
            assert!(
                f.message.contains("codex/gpt") && f.message.contains("rate_limit"),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_agent_cools_down_for_the_next_phases() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    let claude = fixtures.join("claude/claude");
    let p = fallback_project(
        &claude.display().to_string(),
        "claude-rate-limit.json",
        "codex-success.jsonl",
    );
    std::fs::write(
        p.path().join("mission.yaml"),
        "mission: fb\nphases:\n  plan: { role: planner }\n  again: { role: planner, needs: [plan] }\n",
    )
    .unwrap();
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    let started_again = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptStarted(s) if s.phase == "again" => s.argv.clone(),
            _ => None,
        })
        .unwrap();
    assert!(
        started_again[0].ends_with("codex"),
        "the cooling agent is passed over: {started_again:?}"
    );
    assert_eq!(count(&events, "fallback.activated", "again"), 0);
}

#[test]
fn validate_reports_broken_packs_and_unknown_pack_names() {
    let p = Project::new(
        "mission: packs\npolicies: [aproved-models]\nphases:\n  a: { uses: builtin/noop }\n",
    );
    write_pack(
        &p.path().join("policies"),
        "broken",
        "route",
        "fn route(ctx) {\n    let x = ;\n}\n",
    );
    let out = p.run(&["validate", "mission.yaml"]);
    assert_eq!(code(&out), 65, "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("did you mean `approved-models`?"),
        "{report}"
    );
    assert!(
        report.contains("error[M4001]") && report.contains("policies/broken/policy.rhai:2:"),
        "{report}"
    );
}

#[test]
fn the_soft_threshold_alerts_once() {
    let p = Project::new(
        "
mission: alerting
budget: { max_usd: 10, soft_usd: 0.05 }
phases:
  a: { role: planner, model: claude-sonnet }
  b: { role: planner, model: claude-sonnet, needs: [a] }
  c: { role: planner, model: claude-sonnet, needs: [b] }
",
    );
    write_agents(
        &p,
        &[fake_agent(
            "claude",
            "claude-code",
            "planner",
            "claude-success.json",
        )],
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    let alerts: Vec<(usize, String)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.data {
            EventData::BudgetAlert(a) => Some((i, a.level.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].1, "soft");
    // It follows b's attempt, the first to take the spend past $0.05.
    let b_done = position(&events, "attempt.succeeded", "b");
    assert_eq!(alerts[0].0, b_done + 1);
    assert!(text(&out).contains("soft alert"), "{}", text(&out));
}

#[test]
fn a_text_role_runs_through_an_http_api_and_its_answer_is_the_output() {
    use crate::fake_llm::{FakeLlm, Reply};
    let server = FakeLlm::start();
    server.push(Reply::error(529, "overloaded_error", "Overloaded"));
    server.push(Reply::Text("# Plan\nParse first, then check.".into()));
    let p = Project::new(
        "
mission: http
phases:
  plan:
    role: planner
    model: claude-sonnet
    outputs: { plan: { path: plan.md } }
",
    );
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        format!(
            "agents:\n  api:\n    adapter: anthropic-messages\n    base_url: {}\n    api_key_env: FAKE_KEY\n    roles: [planner]\n    fallbacks: [api-again]\n  api-again:\n    adapter: anthropic-messages\n    base_url: {}\n    api_key_env: FAKE_KEY\n",
            server.anthropic_base(),
            server.anthropic_base()
        ),
    )
    .unwrap();
    let out = p
        .command(&["run", "mission.yaml"])
        .env("FAKE_KEY", "sk-ant-canary-http-123456")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    assert_eq!(
        count(&events, "fallback.activated", "plan"),
        1,
        "the overloaded call fell back"
    );
    let artifact = p
        .store()
        .run_dir(&p.run_id())
        .join("artifacts/plan/plan.md");
    assert_eq!(
        std::fs::read_to_string(artifact).unwrap(),
        "# Plan\nParse first, then check."
    );
    match attempt_result(&events) {
        EventData::AttemptSucceeded(s) => {
            assert_eq!(s.agent.as_deref(), Some("api-again"));
            assert_eq!(s.values["plan"], "# Plan\nParse first, then check.");
            assert!(
                s.usage.unwrap().cost_usd.is_some(),
                "priced from the catalog"
            );
        }
        other => panic!("{other:?}"),
    }
    for file in walk(&p.store().dir) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("sk-ant-canary-http"),
            "{}",
            file.display()
        );
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].body["model"], "claude-sonnet-4-5");
}

#[test]
fn agents_yaml_problems_are_located_with_suggestions() {
    let p = Project::new("mission: cfg\nphases:\n  a: { role: planner }\n");
    std::fs::write(
        p.path().join("agents.yaml"),
        "agents:\n  mine:\n    adapter: claude-cod\n    rolse: [planner]\n",
    )
    .unwrap();
    let out = p.run(&["validate", "mission.yaml"]);
    assert_eq!(code(&out), 65, "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("agents.yaml:3:14") && report.contains("did you mean `claude-code`?"),
        "{report}"
    );
    assert!(
        report.contains("agents.yaml:4:5") && report.contains("did you mean `roles`?"),
        "{report}"
    );
}

#[test]
fn an_attempt_refused_before_it_starts_does_not_stall_the_run() {
    // The only phase is denied by a policy before anything runs: the run must still end.
    let p = agent_project("claude", "claude-code", "claude-opus");
    write_pack(
        &p.path().join(".spectacular/policies"),
        "deny-all",
        "govern",
        "fn govern(ctx) { deny(\"nothing runs today\") }\n",
    );
    // The agent exists (a run refuses to start without one); the policy stops it.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents");
    let path = format!(
        "{}:{}",
        fixtures.join("claude").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = p
        .command(&["run", "mission.yaml"])
        .env("PATH", path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("the run stalled after the refusal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    assert!(matches!(
        p.events().last().unwrap().data,
        EventData::RunFailed(_)
    ));
}

#[test]
fn a_mission_sets_pack_params_and_the_pack_governs_with_them() {
    let p = agent_project("claude", "claude-code", "claude-opus");
    let mission = std::fs::read_to_string(p.path().join("mission.yaml")).unwrap();
    std::fs::write(
        p.path().join("mission.yaml"),
        mission.replace(
            "mission: agent\n",
            "mission: agent\npolicies:\n  - approved-models: { models: [claude-sonnet] }\n",
        ),
    )
    .unwrap();
    let out = run_with_fake(&p, "claude", "claude-success.json", &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    match attempt_result(&p.events()) {
        EventData::AttemptFailed(f) => {
            assert_eq!(f.kind, spectacular::model::FailureKind::Denied);
            assert!(
                f.message.contains("claude-opus is not approved"),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
    // Params are checked against the pack's declaration.
    std::fs::write(
        p.path().join("mission.yaml"),
        mission.replace(
            "mission: agent\n",
            "mission: agent\npolicies:\n  - approved-models: { modles: [x] }\n",
        ),
    )
    .unwrap();
    let out = p.run(&["validate", "mission.yaml"]);
    assert_eq!(code(&out), 65, "{}", text(&out));
    assert!(
        text(&out).contains("params of policy pack `approved-models`"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_policy_can_require_an_approval_before_a_phase_runs() {
    let p = agent_project("claude", "claude-code", "claude-sonnet");
    write_agents(
        &p,
        &[fake_agent(
            "claude",
            "claude-code",
            "planner",
            "claude-success.json",
        )],
    );
    let pack = write_pack(
        &p.path().join(".spectacular/policies"),
        "ask-first",
        "govern",
        "fn govern(ctx) { require_approval(\"plans need a human\") }\n",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let events = p.events();
    let requested = events.iter().find_map(|e| match &e.data {
        EventData::ApprovalRequested(r) => Some(r.clone()),
        _ => None,
    });
    let requested = requested.expect("an approval.requested");
    assert_eq!(requested.phase, "plan");
    assert!(
        requested.reason.contains("ask-first") && requested.reason.contains("plans need a human")
    );
    assert_eq!(
        count(&events, "attempt.started", "plan"),
        0,
        "nothing ran before the approval"
    );
    let asked = count(&events, "policy.decided", "plan");
    assert!(asked > 0);
    let out = p.run(&["approve", &p.run_id(), "plan", "--resume"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    assert_eq!(count(&events, "phase.succeeded", "plan"), 1);
    // As the policies page says: when the approved phase starts, the packs are asked again
    // and their answers recorded again; the repeated `require_approval` does not stop it.
    assert_eq!(count(&events, "policy.decided", "plan"), 2 * asked);
    // Rejecting instead fails the phase without running it.
    let q = agent_project("claude", "claude-code", "claude-sonnet");
    write_agents(
        &q,
        &[fake_agent(
            "claude",
            "claude-code",
            "planner",
            "claude-success.json",
        )],
    );
    write_pack(
        &q.path().join(".spectacular/policies"),
        "ask-first",
        "govern",
        &std::fs::read_to_string(pack.join("policy.rhai")).unwrap(),
    );
    assert_eq!(code(&q.run(&["run", "mission.yaml"])), 3);
    let out = q.run(&["approve", &q.run_id(), "plan", "--reject", "--resume"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(count(&q.events(), "attempt.started", "plan"), 0);
}

#[test]
fn project_and_user_day_budgets_count_other_runs() {
    let two = "mission: daily\nphases:\n  a: { role: planner, model: claude-sonnet }\n  b: { role: planner, model: claude-sonnet, needs: [a] }\n";
    let user = tempfile::tempdir().unwrap();
    let p = Project::new(two);
    write_agents(
        &p,
        &[fake_agent(
            "claude",
            "claude-code",
            "planner",
            "claude-success.json",
        )],
    );
    std::fs::write(
        p.path().join(".spectacular/budgets.yaml"),
        "day_usd: 0.11\n",
    )
    .unwrap();
    let run = |p: &Project| {
        p.command(&["run", "mission.yaml"])
            .env("SPECTACULAR_CONFIG_DIR", user.path())
            .output()
            .unwrap()
    };
    let first = run(&p);
    assert_eq!(
        code(&first),
        0,
        "the first run fits ($0.0842): {}",
        text(&first)
    );
    let out = run(&p);
    assert_eq!(code(&out), 1, "{}", text(&out));
    match attempt_result(&p.events()) {
        EventData::AttemptFailed(f) => {
            assert_eq!(f.kind, spectacular::model::FailureKind::Budget);
            assert!(
                f.message.contains("project day budget") && f.message.contains("spent $0.0842"),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
    // The user's budget spans projects, through the user's spend ledger.
    std::fs::write(user.path().join("budgets.yaml"), "month_usd: 0.15\n").unwrap();
    let q = Project::new(two);
    write_agents(
        &q,
        &[fake_agent(
            "claude",
            "claude-code",
            "planner",
            "claude-success.json",
        )],
    );
    assert_eq!(code(&run(&q)), 0, "{}", "nothing in the ledger yet");
    let r = Project::new(two);
    write_agents(
        &r,
        &[fake_agent(
            "claude",
            "claude-code",
            "planner",
            "claude-success.json",
        )],
    );
    let out = run(&r);
    assert_eq!(code(&out), 1, "{}", text(&out));
    match attempt_result(&r.events()) {
        EventData::AttemptFailed(f) => {
            assert!(f.message.contains("user month budget"), "{}", f.message)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn failure_messages_and_output_values_are_bounded_with_a_pointer_to_the_full_data() {
    use spectacular::record::limits::{TEXT_MAX, VALUE_MAX};
    let big_line = 8 * 1024 * 1024;
    let big_json = 30 * 1000 * 1000;
    let p = Project::new(&format!(
        r#"
mission: bounded
phases:
  noisy:
    shell: 'head -c {big_line} /dev/zero | tr "\000" x >&2; exit 1'
  bulky:
    shell: '{{ printf "{{\"data\":\""; head -c {big_json} /dev/zero | tr "\000" a; printf "\"}}"; }} > big.json'
    outputs: {{ big: {{ path: big.json, schema: object.schema.json }} }}
"#
    ));
    std::fs::write(
        p.path().join("object.schema.json"),
        r#"{"type": "object", "required": ["data"]}"#,
    )
    .unwrap();
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let run_dir = p.store().run_dir(&p.run_id());
    let log = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    let line = |kind: &str, phase: &str| {
        log.lines()
            .find(|l| {
                l.contains(&format!("\"type\":\"{kind}\""))
                    && l.contains(&format!("\"phase\":\"{phase}\""))
            })
            .unwrap_or_else(|| panic!("no {kind} of {phase}"))
            .to_string()
    };
    // The failure message: cut, pointing at the file that keeps the whole line.
    let failed = line("attempt.failed", "noisy");
    assert!(failed.len() < TEXT_MAX + 1024, "{} bytes", failed.len());
    assert!(
        failed.contains("full text in attempts/noisy/1/stderr.log]"),
        "{}",
        &failed[failed.len().saturating_sub(300)..]
    );
    let stderr = std::fs::metadata(run_dir.join("attempts/noisy/1/stderr.log")).unwrap();
    assert!(stderr.len() >= big_line);
    // The output value: a marker pointing at the artifact, which keeps it all.
    let succeeded = line("attempt.succeeded", "bulky");
    assert!(succeeded.len() < VALUE_MAX, "{} bytes", succeeded.len());
    match attempt_of(&p.events(), "bulky") {
        EventData::AttemptSucceeded(s) => {
            let value = s.values["big"].as_str().expect("a marker").to_string();
            assert!(
                value.starts_with("…[truncated:")
                    && value.contains("full value in artifacts/bulky/big.json"),
                "{value}"
            );
        }
        other => panic!("{other:?}"),
    }
    let artifact = std::fs::metadata(run_dir.join("artifacts/bulky/big.json")).unwrap();
    assert_eq!(artifact.len(), big_json + r#"{"data":""}"#.len() as u64);
}

/// The result of `phase`'s last attempt.
fn attempt_of(events: &[Event], phase: &str) -> EventData {
    events
        .iter()
        .rev()
        .find(|e| {
            matches!(&e.data, EventData::AttemptSucceeded(d) if d.phase == phase)
                || matches!(&e.data, EventData::AttemptFailed(d) if d.phase == phase)
        })
        .map(|e| e.data.clone())
        .unwrap_or_else(|| panic!("no attempt result for `{phase}`"))
}

#[test]
fn the_projection_follows_the_log_while_an_attempt_runs() {
    let p = Project::new(
        "
mission: long
phases:
  wait:
    shell: 'while [ ! -f go ]; do sleep 0.02; done'
    workspace: repo
",
    );
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    // Nothing is committed while the attempt runs; `state.db` (read directly, not through a
    // command that would catch it up from the log) must still show it started.
    let db = p.store().db_path();
    let started_in_db = || -> bool {
        let Ok(conn) =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        else {
            return false;
        };
        conn.query_row(
            "SELECT count(*) FROM events WHERE type = 'attempt.started'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .is_ok_and(|n| n == 1)
    };
    let begin = Instant::now();
    let mut seen = false;
    while begin.elapsed() < Duration::from_secs(30) {
        if started_in_db() {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let running = p.events().iter().all(|e| !e.data.is_terminal());
    // Let the attempt end whatever happened, and the run with it.
    std::fs::write(p.path().join("go"), "").unwrap();
    let status = engine.wait().unwrap();
    assert!(seen, "state.db never showed the running attempt");
    assert!(running, "the run ended before the projection was read");
    assert!(status.success());
}

#[test]
fn a_run_whose_agents_cannot_run_here_is_refused_before_anything_starts() {
    let p = Project::new(
        "
mission: unready
phases:
  first: { run: [echo, spent] }
  plan: { agent: ghost, needs: [first] }
  write: { agent: remote, needs: [first] }
  review: { agent: tool, needs: [first] }
",
    );
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        "agents:
  ghost:
    adapter: claude-code
    binary: no-such-claude-binary
    fallbacks: [spare]
  spare:
    adapter: codex
    binary: no-such-codex-binary
  remote:
    adapter: openai-chat
    api_key_env: UNREADY_TEST_API_KEY
  tool:
    adapter: command
    argv: [sh, -c, 'true']
",
    )
    .unwrap();
    let out = p
        .command(&["run", "mission.yaml"])
        .env_remove("UNREADY_TEST_API_KEY")
        .output()
        .unwrap();
    assert_eq!(code(&out), 65, "{}", text(&out));
    let said = text(&out);
    // Every problem at once: both agents of `plan`'s chain, and `write`'s key.
    for needle in [
        "`no-such-claude-binary` was not found on PATH",
        "`no-such-codex-binary` was not found on PATH",
        "phase `write`",
        "`UNREADY_TEST_API_KEY`, which is not set",
    ] {
        assert!(said.contains(needle), "`{needle}` is missing from: {said}");
    }
    assert!(!said.contains("phase `review`"), "{said}");
    // Nothing ran, nothing was recorded.
    assert!(p.store().run_ids().unwrap_or_default().is_empty());
}

#[test]
fn resume_refuses_a_run_whose_agent_is_gone() {
    let p = Project::new(
        "
mission: gone
phases:
  gate: { approval: { reason: go? } }
  write: { agent: tool, needs: [gate] }
",
    );
    let tool = p.path().join("tool.sh");
    std::fs::write(&tool, "#!/bin/sh\necho done\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        p.path().join(".spectacular/agents.yaml"),
        format!(
            "agents:\n  tool:\n    adapter: command\n    argv: [{}]\n",
            tool.display()
        ),
    )
    .unwrap();
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let run = p.run_id();
    let out = p.run(&["approve", &run, "gate"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let before = p.events().len();
    std::fs::remove_file(&tool).unwrap();
    let out = p.run(&["resume", &run]);
    assert_eq!(code(&out), 65, "{}", text(&out));
    assert!(
        text(&out).contains("was not found on PATH"),
        "{}",
        text(&out)
    );
    assert_eq!(p.events().len(), before, "nothing was recorded");
}

#[test]
fn a_missing_program_is_not_retried() {
    let p = Project::new(
        "
mission: missing
phases:
  build:
    run: [no-such-program-for-this-test]
    retry: { max_attempts: 3, backoff: { initial: 10ms, max: 10ms } }
",
    );
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();
    assert_eq!(count(&events, "attempt.started", "build"), 1);
    match attempt_of(&events, "build") {
        EventData::AttemptFailed(f) => {
            assert_eq!(f.kind, spectacular::model::FailureKind::Unavailable);
            assert!(f.message.contains("not found on PATH"), "{}", f.message);
        }
        other => panic!("{other:?}"),
    }
}
