//! What the durability page promises, each through the binary: resume kills what a dead engine
//! left running; cancellation climbs SIGINT → SIGTERM → SIGKILL and a second Ctrl-C kills at
//! once, even for processes that ignore the polite signals; a log that can no longer be written
//! stops the run's attempts and exits 70; and what the SQLite projection lags, and what it
//! does not.

use std::os::unix::process::CommandExt;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use spectacular::record::{EventData, Projection};

use crate::runtime::{alive, assert_all_dead, code, count, text, wait_for_pids, Project};

/// Wait for `child` to exit, for at most a generous bound (a hung engine fails the test
/// instead of hanging it).
fn wait_bounded(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Poll (bounded) until `done` holds.
fn poll(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut stderr = String::new();
    if let Some(pipe) = child.stderr.as_mut() {
        std::io::Read::read_to_string(pipe, &mut stderr).unwrap();
    }
    stderr
}

/// Kills, when dropped, every process the test's mission wrote into `pids`: a failing test
/// must not leave processes behind that ignore every polite signal.
struct Reap(std::path::PathBuf);

impl Reap {
    fn new(p: &Project) -> Reap {
        Reap(p.path().to_path_buf())
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        let pids = std::fs::read_to_string(self.0.join("pids")).unwrap_or_default();
        for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            if pid > 1 {
                // SAFETY: these processes were started by this test's own mission.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn sigint(child: &Child) {
    // SAFETY: sends SIGINT to the engine this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}

// ---------------------------------------------------------------- resume kills orphans

const ORPHANS: &str = "
mission: orphans
phases:
  spawner:
    shell: 'sleep 300 & echo $! >> pids; sleep 300 & echo $! >> pids; echo $$ >> pids; wait'
    workspace: repo
  later: { uses: builtin/noop, needs: [spawner] }
";

#[test]
fn resume_kills_what_a_dead_engine_left_running() {
    let p = Project::new(ORPHANS);
    let _reap = Reap::new(&p);
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    let pids = wait_for_pids(&p, 3);
    engine.kill().unwrap(); // SIGKILL: the engine cleans up nothing.
    engine.wait().unwrap();
    // The engine's death leaves the phase's processes running: they are in their own group.
    let survivors: Vec<i32> = pids.iter().copied().filter(|&pid| alive(pid)).collect();
    assert_eq!(survivors, pids, "the orphans outlive the engine");

    // Resume with a quick version of the phase; the orphans of the first attempt must go.
    std::fs::write(
        p.path().join("mission.yaml"),
        ORPHANS
            .replace("sleep 300 &", "true &")
            .replace("wait'", "true'"),
    )
    .unwrap();
    let out = p.run(&["resume", &p.run_id(), "--upgrade"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let survivors: Vec<i32> = pids.iter().copied().filter(|&pid| alive(pid)).collect();
    assert!(
        survivors.is_empty(),
        "resume left the dead engine's processes running: {survivors:?}"
    );
    let events = p.events();
    let resumed = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::RunResumed(r) => Some(r.clone()),
            _ => None,
        })
        .expect("run.resumed");
    assert_eq!(resumed.interrupted, ["spawner"]);
    assert_eq!(count(&events, "phase.succeeded", "later"), 1);
}

#[test]
fn cancel_of_a_run_no_engine_runs_kills_what_the_dead_engine_left_running() {
    let p = Project::new(ORPHANS);
    let _reap = Reap::new(&p);
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    let pids = wait_for_pids(&p, 3);
    engine.kill().unwrap();
    engine.wait().unwrap();
    let survivors: Vec<i32> = pids.iter().copied().filter(|&pid| alive(pid)).collect();
    assert_eq!(survivors, pids, "the orphans outlive the engine");

    let out = p.run(&["cancel", &p.run_id()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let survivors: Vec<i32> = pids.iter().copied().filter(|&pid| alive(pid)).collect();
    assert!(
        survivors.is_empty(),
        "cancel left the dead engine's processes running: {survivors:?}"
    );
    assert!(matches!(
        p.events().last().unwrap().data,
        EventData::RunCanceled(_)
    ));
}

// ---------------------------------------------------------------- the signal ladder

/// A phase whose shell logs each polite signal it gets (and carries on), with a child that
/// ignores SIGINT and SIGTERM outright (`trap ""` is inherited by its `sleep`s).
const STUBBORN: &str = r#"
mission: stubborn
phases:
  stubborn:
    shell: |
      trap 'echo INT >> signals' INT
      trap 'echo TERM >> signals' TERM
      sh -c 'trap "" INT TERM; echo $$ >> pids; while :; do sleep 0.05; done' &
      echo $$ >> pids
      while :; do sleep 0.05; done
    workspace: repo
"#;

fn signals(p: &Project) -> String {
    std::fs::read_to_string(p.path().join("signals")).unwrap_or_default()
}

#[test]
fn cancel_climbs_from_sigint_to_sigterm_to_sigkill() {
    let p = Project::new(STUBBORN);
    let _reap = Reap::new(&p);
    // A grace long enough for a shell to run a trap even on a busy machine, short enough for
    // the test.
    let mut engine = p
        .command(&["run", "mission.yaml"])
        .env("SPECTACULAR_KILL_GRACE", "2s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pids = wait_for_pids(&p, 2);
    // SIGTERM to the engine cancels like Ctrl-C.
    // SAFETY: sends SIGTERM to the engine this test started.
    unsafe { libc::kill(engine.id() as i32, libc::SIGTERM) };
    let status = wait_bounded(
        &mut engine,
        "the engine never stopped a phase that ignores SIGINT and SIGTERM",
    );
    let stderr = stderr_of(&mut engine);
    assert_eq!(status.code(), Some(130), "{stderr}");
    // The phase got SIGINT, then SIGTERM, and survived both; only SIGKILL ended it.
    assert_eq!(signals(&p), "INT\nTERM\n");
    assert_all_dead(&pids);
    let events = p.events();
    let reason = events.iter().find_map(|e| match &e.data {
        EventData::CancelRequested(c) => c.reason.clone(),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("interrupted (Ctrl-C or SIGTERM)"));
    let failed = events.into_iter().find_map(|e| match e.data {
        EventData::AttemptFailed(f) => Some(f),
        _ => None,
    });
    assert_eq!(
        failed.map(|f| f.kind),
        Some(spectacular::model::FailureKind::Canceled)
    );
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let p = Project::new(STUBBORN);
    let _reap = Reap::new(&p);
    // A grace no test would wait out: only the second Ctrl-C can end this run in time.
    let mut engine = p
        .command(&["run", "mission.yaml"])
        .env("SPECTACULAR_KILL_GRACE", "1h")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pids = wait_for_pids(&p, 2);
    sigint(&engine);
    // The ladder has begun once the phase logged its SIGINT.
    poll("the phase to get SIGINT", || signals(&p) == "INT\n");
    sigint(&engine);
    let status = wait_bounded(
        &mut engine,
        "a second Ctrl-C did not kill the phase at once (the engine waited out its grace)",
    );
    let stderr = stderr_of(&mut engine);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(signals(&p), "INT\n", "straight to SIGKILL, no SIGTERM");
    assert_all_dead(&pids);
    assert!(matches!(
        p.events().last().unwrap().data,
        EventData::RunCanceled(_)
    ));
}

// ---------------------------------------------------------------- a log that cannot be written

/// `long` runs until told to stop; once `gate` is released, `many` records hundreds of events,
/// which a 128 KiB file-size limit refuses.
const DISK_FULL: &str = "
mission: disk-full
phases:
  long:
    shell: 'sleep 300 & echo $! >> pids; echo $$ >> pids; while [ ! -f stop ]; do sleep 0.05; done'
    workspace: repo
  gate: { shell: 'while [ ! -f go ]; do sleep 0.05; done', workspace: repo }
  many: { for_each: 'range(0, 600)', uses: builtin/noop, needs: [gate] }
";

const FILE_SIZE_LIMIT: u64 = 128 * 1024;

#[test]
fn a_log_write_that_fails_stops_the_attempts_and_exits_70() {
    let p = Project::new(DISK_FULL);
    let _reap = Reap::new(&p);
    let mut command = p.command(&["run", "mission.yaml", "--max-parallel", "4"]);
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: async-signal-safe libc calls between fork and exec. Writes past the limit then
    // fail with EFBIG (as on a full disk) instead of killing the engine with SIGXFSZ.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: FILE_SIZE_LIMIT,
                rlim_max: FILE_SIZE_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut engine = command.spawn().unwrap();
    let pids = wait_for_pids(&p, 2);
    p.wait_for("the gate to start", |events| {
        count(events, "attempt.started", "gate") == 1
    });
    let log = p.store().events_path(&p.run_id());
    let before = std::fs::metadata(&log).unwrap().len();
    assert!(
        before < FILE_SIZE_LIMIT / 2,
        "the log is {before} bytes already"
    );
    std::fs::write(p.path().join("go"), "").unwrap();

    let status = wait_bounded(&mut engine, "the engine did not stop when its log failed");
    let stderr = stderr_of(&mut engine);
    assert_eq!(status.code(), Some(70), "{stderr}");
    assert!(stderr.contains("spectacular resume"), "{stderr}");
    // The attempts stopped with it: nothing of `long` runs on.
    assert_all_dead(&pids);
    // What was committed reads back whole: no torn line, no part of the failed group.
    let events = p.events();
    assert!(
        std::fs::metadata(&log).unwrap().len() <= FILE_SIZE_LIMIT,
        "the log grew past the limit"
    );
    assert!(!events.iter().any(|e| e.data.is_terminal()), "{events:?}");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());

    // Once the cause is gone, resume finishes the run from there.
    std::fs::write(p.path().join("stop"), "").unwrap();
    let out = p.run(&["resume", &p.run_id()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    assert_eq!(count(&events, "phase.succeeded", "many"), 1);
    assert_eq!(count(&events, "phase.succeeded", "many[599]"), 1);
}

// ---------------------------------------------------------------- the projection's lag

/// While a run goes, the engine updates `state.db` at a commit at least 250 ms after its last
/// update, so while it waits with nothing to commit (a long attempt) the file can lag the log
/// for as long as the wait. What holds: every reader brings it up to date from the logs when
/// it opens it, and the engine leaves it complete when the run ends.
#[test]
fn readers_never_see_the_projection_lag_and_the_engine_completes_it_at_the_end() {
    let p = Project::new(
        "
mission: lag
phases:
  quick: { uses: builtin/noop }
  wait: { shell: 'while [ ! -f go ]; do sleep 0.05; done', workspace: repo, needs: [quick] }
  after: { uses: builtin/noop, needs: [wait] }
",
    );
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    p.wait_for("the long attempt", |events| {
        count(events, "attempt.started", "wait") == 1
    });
    let run = p.run_id();
    let committed = p.events();
    // A reader (`runs`, `status`) sees every committed event, whatever the engine synced.
    let projection = p.store().projection().unwrap();
    assert_eq!(
        projection.last_seq(&run).unwrap(),
        committed.last().unwrap().seq
    );
    assert_eq!(
        projection.verify(&run, &committed).unwrap(),
        Vec::<String>::new()
    );
    drop(projection);
    let status = p.run(&["status", &run, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["status"], "running", "{json}");

    std::fs::write(p.path().join("go"), "").unwrap();
    assert_eq!(
        wait_bounded(&mut engine, "the run did not end").code(),
        Some(0)
    );
    // The engine's own copy, opened without catching up: complete.
    let events = p.events();
    let db = Projection::open(&p.store().db_path()).unwrap();
    assert_eq!(db.last_seq(&run).unwrap(), events.last().unwrap().seq);
    assert_eq!(db.verify(&run, &events).unwrap(), Vec::<String>::new());
}

/// Many phases whose `if:` each runs until its evaluation budget is spent: without a way to
/// stop them, the engine would spend half a minute deciding before it could hear Ctrl-C.
fn slow_conditions(started: &std::path::Path, phases: usize) -> String {
    let numbers: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
    let array = format!("[{}]", numbers.join(","));
    let mut mission = format!(
        "mission: slow-conditions\nvars:\n  a: {array}\n  b: {array}\nphases:\n  start:\n    run: [touch, {:?}]\n",
        started.display().to_string()
    );
    for i in 0..phases {
        mission.push_str(&format!(
            "  p{i}:\n    needs: [start]\n    if: \"(vars.a + []).all(|i| vars.b.all(|j| true))\"\n    run: [\"true\"]\n"
        ));
    }
    mission
}

#[test]
fn ctrl_c_stops_a_script_evaluation_and_cancels_the_run() {
    let p = Project::new("mission: placeholder\nphases:\n  a:\n    run: [\"true\"]\n");
    let started = p.path().join("started");
    std::fs::write(
        p.path().join("mission.yaml"),
        slow_conditions(&started, 200),
    )
    .unwrap();
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    let _reap = Reap::new(&p);
    poll("the first phase to run", || started.exists());
    sigint(&engine);
    let status = wait_bounded(&mut engine, "the engine to answer Ctrl-C");
    let stderr = stderr_of(&mut engine);
    assert_eq!(status.code(), Some(130), "{stderr}");
    let events = p.events();
    assert!(
        matches!(events.last().unwrap().data, EventData::RunCanceled(_)),
        "{:?}",
        events.last()
    );
    // No phase is recorded as failed because Ctrl-C stopped its condition.
    let interrupted = events
        .iter()
        .any(|e| matches!(&e.data, EventData::PhaseFailed(f) if f.message.contains("interrupted")));
    assert!(
        !interrupted,
        "an interrupted evaluation was recorded as the phase's outcome"
    );
    // The engine did not evaluate every condition to its budget before it stopped.
    let exhausted = events
        .iter()
        .filter(|e| matches!(&e.data, EventData::PhaseFailed(_)))
        .count();
    assert!(
        exhausted < 200,
        "every condition ran to its end: {exhausted}"
    );
}

#[test]
fn cancel_stops_a_script_evaluation_too() {
    let p = Project::new("mission: placeholder\nphases:\n  a:\n    run: [\"true\"]\n");
    let started = p.path().join("started");
    std::fs::write(
        p.path().join("mission.yaml"),
        slow_conditions(&started, 200),
    )
    .unwrap();
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    let _reap = Reap::new(&p);
    poll("the first phase to run", || started.exists());
    let out = p.run(&["cancel", &p.run_id()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let status = wait_bounded(&mut engine, "the engine to answer `cancel`");
    assert_eq!(status.code(), Some(130), "{}", stderr_of(&mut engine));
    let events = p.events();
    assert!(matches!(
        events.last().unwrap().data,
        EventData::RunCanceled(_)
    ));
    let failed = events
        .iter()
        .filter(|e| matches!(&e.data, EventData::PhaseFailed(_)))
        .count();
    assert!(failed < 200, "every condition ran to its end: {failed}");
}
