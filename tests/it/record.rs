//! The event store: run logs (group commit, torn tails, corruption, seq gaps), the run lock
//! across processes, the fixture log of v1 that must keep loading, and the SQLite projection.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use spectacular::model::FailureKind;
use spectacular::record::event::{AttemptFailed, AttemptSucceeded, PhaseRef, PhaseSucceeded};
use spectacular::record::fold::{fold, PhaseState, RunStatus};
use spectacular::record::{limits, lock, Error, EventData, RunLog, Store};

const FIXTURE_RUN: &str = "01JDQ3ZK6V8X4M2N5P7R9T1W3Y";

/// Open a run's log again after dropping it. Other tests spawn processes concurrently, and a
/// child forked at that moment holds a copy of the lock's descriptor until it execs; wait
/// that out instead of failing.
fn reopen(store: &Store, run_id: &str) -> (RunLog, Vec<spectacular::record::Event>) {
    let start = std::time::Instant::now();
    loop {
        match RunLog::open(store, run_id) {
            Err(spectacular::record::Error::Locked { .. })
                if start.elapsed() < std::time::Duration::from_secs(5) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => return other.unwrap(),
        }
    }
}

fn new_store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store {
        dir: tmp.path().join(".spectacular"),
    };
    (tmp, store)
}

/// A store holding the v1 fixture log as its only run.
fn fixture_store() -> (tempfile::TempDir, Store) {
    let (tmp, store) = new_store();
    let fixture = crate::support::repo_root().join("tests/fixtures/logs/v1/events.jsonl");
    std::fs::create_dir_all(store.run_dir(FIXTURE_RUN)).unwrap();
    std::fs::copy(fixture, store.events_path(FIXTURE_RUN)).unwrap();
    (tmp, store)
}

fn ready(phase: &str) -> EventData {
    EventData::PhaseReady(PhaseRef {
        phase: phase.to_string(),
    })
}

/// A committed run with `n` events; returns the log's path.
fn run_with_events(store: &Store, run_id: &str, n: usize) -> PathBuf {
    let mut log = RunLog::create(store, run_id).unwrap();
    for i in 0..n {
        log.append(ready(&format!("p{i}")), "engine", None);
    }
    log.commit().unwrap();
    log.path().to_path_buf()
}

// ---------------------------------------------------------------- the v1 fixture log

#[test]
fn the_v1_fixture_log_keeps_loading() {
    let (_tmp, store) = fixture_store();
    let events = store.read_events(FIXTURE_RUN).unwrap();
    assert_eq!(events.len(), 76);
    let s = fold(&events);
    assert_eq!(s.run_id, FIXTURE_RUN);
    assert_eq!(s.mission, "software-dev");
    assert_eq!(s.status, RunStatus::Succeeded);
    assert_eq!(s.started_at.as_deref(), Some("2026-11-21T10:00:00.000Z"));
    assert_eq!(s.ended_at.as_deref(), Some("2026-11-21T13:31:48.625Z"));
    assert_eq!(s.last_seq, 76);
    assert_eq!(s.inputs["spec"], "specs/auth.md");
    let order: Vec<&str> = s.phases.keys().map(String::as_str).collect();
    assert_eq!(
        order,
        [
            "analyse",
            "plan",
            "implement",
            "check",
            "review",
            "approve",
            "report",
            "implement[wp-1]",
            "implement[wp-2]"
        ]
    );
    let attempts: Vec<u32> = s.phases.values().map(|p| p.attempts).collect();
    assert_eq!(attempts, [1, 3, 0, 2, 2, 0, 2, 2, 3]);
    assert!(s.phases.values().all(|p| p.state == PhaseState::Succeeded));
    let plan = &s.phases["plan"];
    assert!(
        plan.last_failure
            .as_deref()
            .is_some_and(|f| f.starts_with("output_invalid: output `tasks`")),
        "{plan:?}"
    );
    assert_eq!(
        s.phases["implement[wp-2]"].last_failure.as_deref(),
        Some("interrupted: the engine stopped while the attempt ran")
    );
    assert_eq!(
        s.phases["implement[wp-1]"].parent.as_deref(),
        Some("implement")
    );
    // check: started again after the loop reset (seq 54), ended at seq 56.
    let check = &s.phases["check"];
    assert_eq!(check.duration_ms, Some(44_101));
    let counts = s.child_counts("implement");
    assert_eq!((counts.total, counts.succeeded), (2, 2));
    assert_eq!(s.fan_outs().len(), 1);

    // It opens for writing without repair, and continues its seq.
    let (mut log, reopened) = RunLog::open(&store, FIXTURE_RUN).unwrap();
    assert_eq!(log.repaired(), None);
    assert_eq!(reopened, events);
    assert_eq!(log.last_seq(), 76);
    let next = log.append(
        ready("extra"),
        "engine",
        log.last_event_id().map(str::to_owned).as_deref(),
    );
    assert_eq!(next.seq, 77);
    assert_eq!(
        next.causation_id.as_deref(),
        Some(events[75].event_id.as_str())
    );
}

#[test]
fn fold_tracks_a_run_as_it_goes() {
    let (_tmp, store) = fixture_store();
    let events = store.read_events(FIXTURE_RUN).unwrap();
    let at = |seq: usize| fold(&events[..seq]);
    assert_eq!(at(20).status, RunStatus::Failed);
    assert_eq!(at(20).phases["implement"].state, PhaseState::Skipped);
    assert_eq!(at(21).status, RunStatus::Running);
    assert_eq!(at(21).ended_at, None);
    // Mid-attempt of `implement[wp-2]` when the engine was killed.
    assert_eq!(at(32).phases["implement[wp-2]"].state, PhaseState::Running);
    let after_loop = at(43);
    assert_eq!(after_loop.phases["check"].state, PhaseState::Pending);
    assert_eq!(
        after_loop.phases["implement[wp-1]"].state,
        PhaseState::Pending
    );
    assert_eq!(after_loop.phases["check"].attempts, 1);
    assert_eq!(after_loop.child_counts("implement").pending, 2);
    assert_eq!(at(61).status, RunStatus::Canceled);
    let suspended = at(68);
    assert_eq!(suspended.status, RunStatus::Suspended);
    assert_eq!(suspended.phases["approve"].state, PhaseState::Waiting);
}

// ---------------------------------------------------------------- log writing and repair

#[test]
fn group_commit_writes_every_buffered_line_at_once() {
    let (_tmp, store) = new_store();
    let mut log = RunLog::create(&store, "01RUN").unwrap();
    let first = log.append(ready("a"), "engine", None);
    let second = log.append(ready("b"), "engine", Some(&first.event_id));
    assert_eq!(
        std::fs::metadata(log.path()).unwrap().len(),
        0,
        "nothing before commit"
    );
    assert!(store.read_events("01RUN").unwrap().is_empty());
    log.commit().unwrap();
    assert_eq!(
        store.read_events("01RUN").unwrap(),
        vec![first.clone(), second.clone()]
    );
    // An empty commit is fine and writes nothing.
    log.commit().unwrap();
    let third = log.append(ready("c"), "engine", Some(&second.event_id));
    log.commit().unwrap();
    drop(log);
    let (log, events) = reopen(&store, "01RUN");
    assert_eq!(events, vec![first, second, third.clone()]);
    assert_eq!(log.last_seq(), 3);
    assert_eq!(log.last_event_id(), Some(third.event_id.as_str()));
    assert!(
        third.ts.ends_with('Z') && third.ts.len() == 24,
        "{}",
        third.ts
    );
}

#[test]
fn a_torn_last_line_is_ignored_by_readers_and_truncated_on_open() {
    let (_tmp, store) = new_store();
    let path = run_with_events(&store, "01RUN", 3);
    let good_len = std::fs::metadata(&path).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"event_id":"01JDQ4","type":"phase.re"#)
        .unwrap();
    drop(f);

    // A reader leaves the file alone: a live writer may be mid-line.
    assert_eq!(store.read_events("01RUN").unwrap().len(), 3);
    assert!(std::fs::metadata(&path).unwrap().len() > good_len);

    let (mut log, events) = reopen(&store, "01RUN");
    assert_eq!(events.len(), 3);
    let warning = log.repaired().expect("the repair is reported");
    assert!(warning.contains("line 4"), "{warning}");
    assert!(warning.contains("torn last line"), "{warning}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    log.append(ready("next"), "engine", None);
    log.commit().unwrap();
    assert_eq!(store.read_events("01RUN").unwrap().len(), 4);
}

/// Append raw bytes to a run's log.
fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// A complete last line (it ends with a newline) is not torn: the writer refuses it with its
/// line number and the fix, and leaves the file as it is, like every reader.
fn assert_last_line_refused(line: &str, fix: &str) {
    let (_tmp, store) = new_store();
    let path = run_with_events(&store, "01RUN", 2);
    append_raw(&path, format!("{line}\n").as_bytes());
    let before = std::fs::read(&path).unwrap();
    let err = RunLog::open(&store, "01RUN").unwrap_err();
    assert!(matches!(err, Error::Corrupt { line: 3, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("events.jsonl` line 3"), "{message}");
    assert!(message.contains(fix), "{message}");
    let err = store.read_events("01RUN").unwrap_err();
    assert!(matches!(err, Error::Corrupt { line: 3, .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing removed");
}

#[test]
fn a_complete_unparsable_last_line_is_refused_not_truncated() {
    assert_last_line_refused("\0\0\0\0", "not a torn write");
}

#[test]
fn a_last_line_of_a_newer_version_is_kept_and_refused() {
    let (_tmp, store) = new_store();
    let path = run_with_events(&store, "01RUN", 1);
    let line = std::fs::read_to_string(&path).unwrap();
    let line = line.trim_end().replace("\"seq\":1", "\"seq\":3");
    let newer_schema = line.replace("\"schema\":1", "\"schema\":2");
    assert_last_line_refused(&newer_schema, "written by a newer version");
    let unknown_type = line.replace("phase.ready", "phase.teleported");
    assert_last_line_refused(&unknown_type, "written by a newer version");
}

#[test]
fn a_duplicate_event_id_is_refused_with_both_line_numbers() {
    let (_tmp, store) = new_store();
    let path = run_with_events(&store, "01RUN", 4);
    let text = std::fs::read_to_string(&path).unwrap();
    let id = |l: &str| l[13..13 + 26].to_string();
    let first = id(text.lines().next().unwrap());
    rewrite_line(&path, 3, |l| l.replace(&id(l), &first));
    for err in [
        store.read_events("01RUN").unwrap_err(),
        RunLog::open(&store, "01RUN").unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                Error::DuplicateEvent {
                    line: 3,
                    first_line: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("line 3 repeats the event_id"), "{message}");
        assert!(message.contains("of line 1"), "{message}");
        assert!(message.contains("help:"), "{message}");
    }
}

fn rewrite_line(path: &Path, line_no: usize, f: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let out: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line_no {
                f(l)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(path, out.join("\n") + "\n").unwrap();
}

#[test]
fn a_corrupt_line_in_the_middle_is_refused_with_its_line_number() {
    let (_tmp, store) = new_store();
    let path = run_with_events(&store, "01RUN", 4);
    rewrite_line(&path, 2, |l| l[..l.len() / 2].to_string());
    let before = std::fs::read(&path).unwrap();
    let err = RunLog::open(&store, "01RUN").unwrap_err();
    match &err {
        Error::Corrupt { line, path: p, .. } => {
            assert_eq!(*line, 2);
            assert_eq!(p, &path);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("events.jsonl` line 2"), "{message}");
    assert!(message.contains("help:"), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "never skipped or repaired"
    );
    let err = store.read_events("01RUN").unwrap_err();
    assert!(matches!(err, Error::Corrupt { line: 2, .. }), "{err:?}");
}

#[test]
fn a_gap_in_seq_is_refused() {
    let (_tmp, store) = new_store();
    let path = run_with_events(&store, "01RUN", 4);
    rewrite_line(&path, 3, |_| String::new());
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\n\n", "\n");
    std::fs::write(&path, text).unwrap();
    let err = RunLog::open(&store, "01RUN").unwrap_err();
    match err {
        Error::SeqGap {
            line,
            expected,
            found,
            ..
        } => assert_eq!((line, expected, found), (3, 3, 4)),
        other => panic!("expected SeqGap, got {other:?}"),
    }
}

#[test]
fn events_of_another_run_are_refused() {
    let (_tmp, store) = new_store();
    let path = run_with_events(&store, "01RUN", 2);
    rewrite_line(&path, 2, |l| {
        l.replace("\"run_id\":\"01RUN\"", "\"run_id\":\"01OTHER\"")
    });
    let err = store.read_events("01RUN").unwrap_err();
    assert!(matches!(err, Error::WrongRun { line: 2, .. }), "{err:?}");
}

// ---------------------------------------------------------------- failing writes, in a child

/// The child half of `a_write_error_poisons_the_log`: with a 1 KiB file-size limit the kernel
/// refuses the write (EFBIG), as a full disk would. Ignored: only its parent runs it.
#[test]
#[ignore = "the child half of `record::a_write_error_poisons_the_log`, which runs it"]
fn poison_child() {
    let dir = child_env("SPECTACULAR_TEST_POISON_DIR");
    // SAFETY: plain libc calls in a child process that only runs this test.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit {
            rlim_cur: 1024,
            rlim_max: 1024,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let store = Store { dir: dir.into() };
    let mut log = RunLog::create(&store, "01RUN").unwrap();
    log.append(ready("small"), "engine", None);
    log.commit().unwrap();
    for _ in 0..20 {
        log.append(ready(&"x".repeat(100)), "engine", None);
    }
    let err = log.commit().unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    println!("FIRST-ERROR {err}");
    assert!(log.is_poisoned());
    log.append(ready("later"), "engine", None);
    let err = log.commit().unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err:?}");
    println!("SECOND-ERROR {err}");
}

/// The environment variable through which a parent hands a child half its work. A child half
/// run any other way has nothing to check, and fails rather than passing.
fn child_env(name: &str) -> std::ffi::OsString {
    std::env::var_os(name).unwrap_or_else(|| {
        panic!("`{name}` is not set: this test is the child half of another and only runs as its child")
    })
}

/// Run the ignored test `name` (a child half) of this test binary, alone.
fn child_test(name: &str, env: (&str, &Path)) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(env.0, env.1)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

#[test]
fn a_write_error_poisons_the_log() {
    let (_tmp, store) = new_store();
    let out = child_test(
        "record::poison_child",
        ("SPECTACULAR_TEST_POISON_DIR", &store.dir),
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("FIRST-ERROR failed to append to the run log"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SECOND-ERROR the log of run `01RUN` can no longer be written"),
        "{stdout}"
    );
    // What was committed before the failure is intact; the part of the failed group that
    // reached the file was taken back, so it does not reappear as if it had been committed.
    let (log, events) = reopen(&store, "01RUN");
    assert_eq!(events.len(), 1);
    assert_eq!(log.repaired(), None);
}

// ---------------------------------------------------------------- the run lock

/// The child half of `the_lock_is_refused_while_held_and_taken_over_after_sigkill`. Ignored:
/// only its parent runs it.
#[test]
#[ignore = "the child half of `record::the_lock_is_refused_while_held_and_taken_over_after_sigkill`, which runs it"]
fn lock_holder_child() {
    let dir = child_env("SPECTACULAR_TEST_LOCK_DIR");
    let store = Store { dir: dir.into() };
    let (_log, _) = reopen(&store, "01RUN");
    println!("LOCK-HELD pid={}", std::process::id());
    std::io::stdout().flush().unwrap();
    // Hold the lock until the parent kills this process.
    loop {
        std::thread::park();
    }
}

#[test]
fn the_lock_is_refused_while_held_and_taken_over_after_sigkill() {
    let (_tmp, store) = new_store();
    run_with_events(&store, "01RUN", 1);
    let mut child = child_test(
        "record::lock_holder_child",
        ("SPECTACULAR_TEST_LOCK_DIR", &store.dir),
    )
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let held = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("LOCK-HELD"));
    assert!(held, "the child did not take the lock");

    let err = RunLog::open(&store, "01RUN").unwrap_err();
    match &err {
        Error::Locked { run_id, pid, host } => {
            assert_eq!(run_id, "01RUN");
            assert_eq!(*pid, Some(child.id()));
            assert_eq!(host.as_deref(), Some(lock::hostname().as_str()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("process {}", child.id())),
        "{message}"
    );
    assert!(message.contains("help:"), "{message}");
    assert!(lock::is_locked(&store.run_dir("01RUN")));

    child.kill().unwrap(); // SIGKILL: no cleanup runs in the child.
    child.wait().unwrap();
    assert!(!lock::is_locked(&store.run_dir("01RUN")));
    let (log, events) = reopen(&store, "01RUN");
    assert_eq!(events.len(), 1);
    let holder = lock::read_holder(log.run_dir()).unwrap();
    assert_eq!(holder.pid, Some(std::process::id()));
}

// ---------------------------------------------------------------- locating runs

#[test]
fn runs_resolve_by_id_prefix_or_last() {
    let (_tmp, store) = new_store();
    assert!(matches!(
        store.resolve_run("last"),
        Err(Error::UnknownRun { .. })
    ));
    for id in ["01AAA1", "01AAB2", "01BBB3"] {
        run_with_events(&store, id, 1);
    }
    assert_eq!(store.run_ids().unwrap(), ["01AAA1", "01AAB2", "01BBB3"]);
    assert_eq!(store.resolve_run("last").unwrap(), "01BBB3");
    assert_eq!(store.resolve_run("latest").unwrap(), "01BBB3");
    assert_eq!(store.resolve_run("01AAB2").unwrap(), "01AAB2");
    assert_eq!(store.resolve_run("01b").unwrap(), "01BBB3");
    let err = store.resolve_run("01AA").unwrap_err();
    assert!(err.to_string().contains("01AAA1, 01AAB2"), "{err}");
    let err = store.resolve_run("02").unwrap_err();
    assert!(err.to_string().contains("01BBB3"), "{err}");
}

#[test]
fn the_store_is_found_by_walking_up() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let deep = root.join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    assert_eq!(Store::locate(&deep, None).dir, deep.join(".spectacular"));
    std::fs::create_dir(root.join(".git")).unwrap();
    assert_eq!(Store::locate(&deep, None).dir, root.join(".spectacular"));
    std::fs::create_dir(root.join("a/.spectacular")).unwrap();
    assert_eq!(Store::locate(&deep, None).dir, root.join("a/.spectacular"));
    assert_eq!(
        Store::locate(&deep, Some(Path::new("elsewhere"))).dir,
        deep.join("elsewhere")
    );
}

// ---------------------------------------------------------------- the projection

fn dump(store: &Store) -> String {
    let p = store.projection().unwrap();
    let mut out = format!("{:#?}\n", p.runs().unwrap());
    for run in p.runs().unwrap() {
        out += &format!(
            "{:#?}\n{:#?}\n",
            p.phases(&run.run_id).unwrap(),
            p.attempts(&run.run_id).unwrap()
        );
    }
    out
}

#[test]
fn the_projection_catches_up_and_matches_the_fold() {
    let (_tmp, store) = fixture_store();
    let events = store.read_events(FIXTURE_RUN).unwrap();
    let mut p = store.projection().unwrap();
    let runs = p.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "succeeded");
    assert_eq!(runs[0].last_seq, 76);
    assert_eq!(
        p.verify(FIXTURE_RUN, &events).unwrap(),
        Vec::<String>::new()
    );
    let attempts = p.attempts(FIXTURE_RUN).unwrap();
    assert_eq!(attempts.len(), 15);
    let plan_1 = &attempts[1];
    assert_eq!((plan_1.phase.as_str(), plan_1.attempt), ("plan", 1));
    assert_eq!(plan_1.failure_kind.as_deref(), Some("timeout"));
    assert_eq!(plan_1.duration_ms, Some(1_800_000));

    // Applying again is a no-op.
    let before = dump(&store);
    p.apply(&events).unwrap();
    p.apply(&events[10..20]).unwrap();
    assert_eq!(dump(&store), before);
    assert_eq!(p.event_count(FIXTURE_RUN).unwrap(), 76);
}

#[test]
fn applying_event_by_event_equals_the_fold() {
    let (_tmp, store) = fixture_store();
    let events = store.read_events(FIXTURE_RUN).unwrap();
    let mut p = spectacular::record::Projection::in_memory().unwrap();
    for (i, event) in events.iter().enumerate() {
        p.apply(std::slice::from_ref(event)).unwrap();
        let diffs = p.verify(FIXTURE_RUN, &events[..=i]).unwrap();
        assert!(diffs.is_empty(), "after seq {}: {diffs:#?}", event.seq);
    }
    // A gap is refused.
    let mut q = spectacular::record::Projection::in_memory().unwrap();
    let err = q.apply(&events[1..3]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ProjectionGap {
                at: 0,
                found: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_deleted_or_damaged_projection_is_rebuilt_identically() {
    let (_tmp, store) = fixture_store();
    run_with_events(&store, "01ZZZ", 3);
    let original = dump(&store);
    assert!(original.contains("01ZZZ"));

    std::fs::remove_file(store.db_path()).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", store.db_path().display()));
    }
    assert_eq!(dump(&store), original, "rebuilt after deletion");

    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", store.db_path().display()));
    }
    std::fs::write(store.db_path(), b"this is not a database, it is a text file of some length........................................................").unwrap();
    assert_eq!(dump(&store), original, "rebuilt after corruption");

    store
        .projection()
        .unwrap()
        .execute_sql(
            "UPDATE meta SET value = '0' WHERE key = 'schema_version'; DELETE FROM phases;",
        )
        .unwrap();
    assert_eq!(
        dump(&store),
        original,
        "rebuilt after a layout version change"
    );
}

#[test]
fn the_projection_catches_up_with_a_live_run_and_forgets_removed_runs() {
    let (_tmp, store) = new_store();
    let mut log = RunLog::create(&store, "01RUN").unwrap();
    log.append(ready("a"), "engine", None);
    log.commit().unwrap();
    assert_eq!(store.projection().unwrap().last_seq("01RUN").unwrap(), 1);
    log.append(
        EventData::PhaseSucceeded(PhaseSucceeded {
            phase: "a".into(),
            attempts: 1,
            artifacts: Default::default(),
        }),
        "engine",
        None,
    );
    log.commit().unwrap();
    let p = store.projection().unwrap();
    assert_eq!(p.phases("01RUN").unwrap()[0].state, "succeeded");
    drop(log);
    std::fs::remove_dir_all(store.run_dir("01RUN")).unwrap();
    assert!(store.projection().unwrap().runs().unwrap().is_empty());
}

#[test]
fn verify_finds_a_tampered_row() {
    let (_tmp, store) = fixture_store();
    let events = store.read_events(FIXTURE_RUN).unwrap();
    let p = store.projection().unwrap();
    p.execute_sql("UPDATE phases SET state = 'failed' WHERE phase = 'check'; UPDATE attempts SET exit_code = 7 WHERE phase = 'check' AND attempt = 2; UPDATE runs SET status = 'running'")
        .unwrap();
    let diffs = p.verify(FIXTURE_RUN, &events).unwrap();
    assert_eq!(diffs.len(), 3, "{diffs:#?}");
    assert!(
        diffs[0].contains("status is `running` in the projection but `succeeded` in the log"),
        "{diffs:#?}"
    );
    assert!(
        diffs[1].contains("phase `check`: state is `failed`"),
        "{diffs:#?}"
    );
    assert!(
        diffs[2].contains("attempt 2 of phase `check`"),
        "{diffs:#?}"
    );
}

// ---------------------------------------------------------------- limits and redaction

const KEY: &str = "sk-test-0123456789abcdef";

fn attempt_failed(message: String) -> EventData {
    EventData::AttemptFailed(AttemptFailed {
        files: Vec::new(),
        phase: "check".into(),
        attempt: 1,
        kind: FailureKind::Exit,
        message,
        exit_code: Some(1),
        duration_ms: 5,
        agent: None,
        usage: None,
    })
}

fn attempt_succeeded(name: &str, value: serde_json::Value) -> EventData {
    EventData::AttemptSucceeded(AttemptSucceeded {
        git: None,
        integration_head: None,
        phase: "plan".into(),
        attempt: 1,
        exit_code: Some(0),
        duration_ms: 5,
        artifacts: [(name.to_string(), format!("artifacts/plan/{name}.json"))].into(),
        values: [(name.to_string(), value)].into(),
        agent: None,
        usage: None,
        result: None,
    })
}

/// Every byte of the projection's files (the database and its write-ahead log).
fn projection_bytes(store: &Store) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", store.db_path().display());
        bytes.extend(std::fs::read(path).unwrap_or_default());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn huge_messages_and_values_are_bounded_with_markers() {
    let (_tmp, store) = new_store();
    let mut log = RunLog::create(&store, "01RUN").unwrap();
    let line = format!("exited with code 1: {}", "e".repeat(8 << 20));
    let failed = log.append(attempt_failed(line), "engine", None);
    let tasks: Vec<serde_json::Value> = (0..300_000)
        .map(|i| serde_json::json!({"id": format!("wp-{i}"), "title": "x".repeat(80)}))
        .collect();
    let succeeded = log.append(
        attempt_succeeded("tasks", serde_json::Value::from(tasks)),
        "engine",
        None,
    );
    log.commit().unwrap();

    let EventData::AttemptFailed(d) = &failed.data else {
        unreachable!()
    };
    assert!(d.message.len() <= limits::TEXT_MAX, "{}", d.message.len());
    assert!(
        d.message
            .ends_with(&format!("…[truncated: {} bytes]", 8 + (8 << 20) + 12)),
        "{}",
        &d.message[d.message.len() - 60..]
    );
    let EventData::AttemptSucceeded(d) = &succeeded.data else {
        unreachable!()
    };
    let marker = d.values["tasks"].as_str().unwrap();
    assert!(marker.starts_with("…[truncated: 3"), "{marker}");
    assert!(
        marker.ends_with("bytes of JSON, full value in artifacts/plan/tasks.json]"),
        "{marker}"
    );
    // What was written is what the caller got back, and it is small.
    assert!(std::fs::metadata(log.path()).unwrap().len() < 2 * limits::TEXT_MAX as u64);
    assert_eq!(store.read_events("01RUN").unwrap(), vec![failed, succeeded]);
}

#[test]
fn one_event_is_bounded_as_a_whole() {
    let (_tmp, store) = new_store();
    let mut log = RunLog::create(&store, "01RUN").unwrap();
    let values: std::collections::BTreeMap<String, serde_json::Value> = (0..40)
        .map(|i| {
            (
                format!("o{i:02}"),
                serde_json::Value::from("v".repeat(60_000 + i)),
            )
        })
        .collect();
    let mut data = attempt_succeeded("o00", serde_json::Value::Null);
    if let EventData::AttemptSucceeded(d) = &mut data {
        d.values = values;
    }
    let event = log.append(data, "engine", None);
    assert!(event.to_json_line().len() <= limits::EVENT_MAX + 4096);
    let EventData::AttemptSucceeded(d) = &event.data else {
        unreachable!()
    };
    // The largest values were cut first.
    assert!(d.values["o39"]
        .as_str()
        .unwrap()
        .starts_with("…[truncated: 60039 bytes"));
    assert_eq!(d.values["o00"].as_str().unwrap().len(), 60_000);
}

#[test]
fn secrets_never_reach_the_log_or_the_projection() {
    let (_tmp, store) = new_store();
    let mut log = RunLog::create(&store, "01RUN").unwrap();
    log.set_secrets([("OPENAI_API_KEY", KEY), ("TOO_SHORT", "abc")]);
    log.append(ready("check"), "engine", None);
    let failed = log.append(
        attempt_failed(format!("exited with code 1: error: bad key {KEY} / abc")),
        "engine",
        None,
    );
    log.append(
        EventData::PhaseFailed(spectacular::record::event::PhaseFailed {
            phase: "check".into(),
            attempts: 1,
            kind: FailureKind::Exit,
            message: format!("exited with code 1: error: bad key {KEY}"),
            continued: false,
        }),
        "engine",
        None,
    );
    let nested =
        serde_json::json!({"env": [{"name": "OPENAI_API_KEY", "value": format!("Bearer {KEY}")}]});
    let succeeded = log.append(attempt_succeeded("facts", nested), "engine", None);
    log.commit().unwrap();

    let EventData::AttemptFailed(d) = &failed.data else {
        unreachable!()
    };
    assert_eq!(
        d.message,
        "exited with code 1: error: bad key [redacted:OPENAI_API_KEY] / abc"
    );
    let EventData::AttemptSucceeded(d) = &succeeded.data else {
        unreachable!()
    };
    assert_eq!(
        d.values["facts"]["env"][0]["value"],
        "Bearer [redacted:OPENAI_API_KEY]"
    );
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(!text.contains(KEY), "{text}");
    assert_eq!(text.matches("[redacted:OPENAI_API_KEY]").count(), 3);

    let p = store.projection().unwrap();
    assert_eq!(
        p.phases("01RUN").unwrap()[0].last_failure.as_deref(),
        Some("exit: exited with code 1: error: bad key [redacted:OPENAI_API_KEY]")
    );
    drop(p);
    let db = projection_bytes(&store);
    assert!(contains(&db, "[redacted:OPENAI_API_KEY]"));
    assert!(!contains(&db, KEY), "the key is in state.db");
}

// ---------------------------------------------------------------- readers on the command line

/// A project directory whose store holds runs written through `RunLog`.
fn project() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store {
        dir: tmp.path().join(".spectacular"),
    };
    (tmp, store)
}

fn run_started(mission: &str) -> EventData {
    EventData::RunStarted(spectacular::record::event::RunStarted {
        mission: mission.into(),
        mission_source: "m.yaml".into(),
        mission_digest: "sha256:00".into(),
        mission_text: format!("mission: {mission}\n"),
        files: Default::default(),
        inputs: Default::default(),
        max_parallel: 1,
        engine_version: "0.1.0".into(),
        git_base: None,
    })
}

fn succeeded(phase: &str) -> EventData {
    EventData::PhaseSucceeded(PhaseSucceeded {
        phase: phase.into(),
        attempts: 1,
        artifacts: Default::default(),
    })
}

/// A run of mission `mission`: started, then `a` ready, then `a` succeeded.
fn cli_run(store: &Store, run_id: &str, mission: &str) -> PathBuf {
    let mut log = RunLog::create(store, run_id).unwrap();
    log.append(run_started(mission), "engine", None);
    log.append(ready("a"), "engine", None);
    log.append(succeeded("a"), "engine", None);
    log.commit().unwrap();
    log.path().to_path_buf()
}

fn cli(dir: &Path, args: &[&str]) -> crate::support::Output {
    crate::support::run_cli(dir, args, &[])
}

#[test]
fn status_and_runs_refuse_a_damaged_log_and_list_the_other_runs() {
    let (tmp, store) = project();
    let damaged = cli_run(&store, "01AAA", "first");
    cli_run(&store, "01BBB", "second");
    // The projection indexes both runs, then a line in the middle is damaged.
    let out = cli(tmp.path(), &["runs"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    rewrite_line(&damaged, 2, |l| l.replace("\"phase\":\"a\"", "\"phase\":7"));

    let out = cli(tmp.path(), &["status", "01AAA"]);
    assert_eq!(out.code, 70, "{}", out.transcript());
    assert!(out.stdout.is_empty(), "{}", out.transcript());
    assert!(
        out.stderr
            .contains("events.jsonl` line 2 is not a valid event"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("help: the log is damaged"),
        "{}",
        out.stderr
    );

    let out = cli(tmp.path(), &["runs"]);
    assert_eq!(out.code, 70, "{}", out.transcript());
    assert!(out.stdout.contains("01AAA"), "{}", out.stdout);
    assert!(out.stdout.contains("damaged"), "{}", out.stdout);
    assert!(
        out.stdout.contains("01BBB") && out.stdout.contains("second"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("run `01AAA` cannot be read"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);

    let out = cli(tmp.path(), &["status", "01BBB"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
}

#[test]
fn status_follows_a_log_that_was_cut_back() {
    let (tmp, store) = project();
    let path = cli_run(&store, "01AAA", "m");
    let out = cli(tmp.path(), &["status", "01AAA", "--json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains("\"state\": \"succeeded\""),
        "{}",
        out.stdout
    );
    // Back to an older point: `a` is only ready.
    let text = std::fs::read_to_string(&path).unwrap();
    let older: String = text.split_inclusive('\n').take(2).collect();
    std::fs::write(&path, older).unwrap();
    let out = cli(tmp.path(), &["status", "01AAA", "--json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout.contains("\"state\": \"ready\""),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\"last_seq\": 2"), "{}", out.stdout);

    // The same length, different content: noticed too.
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"mission\":\"m\"", "\"mission\":\"n\"");
    std::fs::write(&path, edited).unwrap();
    let out = cli(tmp.path(), &["status", "01AAA"]);
    assert!(out.stdout.contains("mission n"), "{}", out.transcript());
}

#[test]
fn a_duplicate_event_id_breaks_only_its_own_run() {
    let (tmp, store) = project();
    cli_run(&store, "01AAA", "good");
    let bad = cli_run(&store, "01BBB", "bad");
    let text = std::fs::read_to_string(&bad).unwrap();
    let first_id = text.lines().next().unwrap()[13..13 + 26].to_string();
    rewrite_line(&bad, 3, |l| l.replace(&l[13..13 + 26], &first_id));
    for _ in 0..2 {
        // Deleting state.db changes nothing: the log itself is refused.
        let _ = std::fs::remove_file(store.db_path());
        let out = cli(tmp.path(), &["runs"]);
        assert_eq!(out.code, 70, "{}", out.transcript());
        assert!(out.stdout.contains("good"), "{}", out.transcript());
        assert!(
            out.stderr.contains("line 3 repeats the event_id") && out.stderr.contains("of line 1"),
            "{}",
            out.stderr
        );
        let out = cli(tmp.path(), &["replay", "01AAA", "--verify"]);
        assert_eq!(out.code, 0, "{}", out.transcript());
        let out = cli(tmp.path(), &["replay", "01BBB", "--verify"]);
        assert_eq!(out.code, 70, "{}", out.transcript());
    }
}

/// Run the binary with its stdout on a pipe, read one line, close the pipe, and return how
/// the process ended. The output is larger than a pipe's buffer, so the process is still
/// writing when the pipe closes.
fn head_1(dir: &Path, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(crate::support::bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env("SPECTACULAR_CONFIG_DIR", dir.join(".user-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    drop(reader);
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        first,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_commands_quietly() {
    let (tmp, store) = project();
    let mut log = RunLog::create(&store, "01AAA").unwrap();
    log.append(run_started("m"), "engine", None);
    for i in 0..20_000 {
        log.append(ready(&format!("phase-{i}")), "engine", None);
    }
    log.commit().unwrap();
    drop(log);
    let (status, first, stderr) = head_1(tmp.path(), &["replay", "last"]);
    assert!(first.contains("run.started"), "{first}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");

    let mut mission = String::from("mission: big\nphases:\n");
    for i in 0..5_000 {
        mission += &format!("  p{i}:\n    run: [\"true\"]\n");
        if i > 0 {
            mission += &format!("    needs: [p{}]\n", i - 1);
        }
    }
    std::fs::write(tmp.path().join("big.yaml"), mission).unwrap();
    let (status, first, stderr) = head_1(tmp.path(), &["graph", "big.yaml"]);
    assert!(first.starts_with("digraph"), "{first}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn the_projection_notices_a_log_cut_back_below_what_the_engine_applied() {
    let (_tmp, store) = new_store();
    let mut log = RunLog::create(&store, "01RUN").unwrap();
    log.append(ready("a"), "engine", None);
    log.commit().unwrap();
    let mut p = store.projection().unwrap();
    // The engine applies what it commits straight to the projection, past its mark.
    let b = log.append(ready("b"), "engine", None);
    let c = log.append(ready("c"), "engine", None);
    log.commit().unwrap();
    p.apply(&[b, c]).unwrap();
    drop(p);
    let names = |store: &Store| -> Vec<String> {
        let p = store.projection().unwrap();
        p.phases("01RUN")
            .unwrap()
            .into_iter()
            .map(|r| r.phase)
            .collect()
    };
    assert_eq!(names(&store), ["a", "b", "c"]);
    let d = log.append(ready("d"), "engine", None);
    log.commit().unwrap();
    drop(log);
    assert_eq!(
        names(&store),
        ["a", "b", "c", "d"],
        "caught up past its mark"
    );
    let mut p = store.projection().unwrap();
    assert_eq!(p.last_seq("01RUN").unwrap(), 4);
    p.apply(&[d]).unwrap();
    drop(p);

    // Cut back to two events: the rows of `c` and `d` go.
    let path = store.events_path("01RUN");
    let text = std::fs::read_to_string(&path).unwrap();
    let two: String = text.split_inclusive('\n').take(2).collect();
    std::fs::write(&path, &two).unwrap();
    assert_eq!(names(&store), ["a", "b"]);
    assert_eq!(store.projection().unwrap().last_seq("01RUN").unwrap(), 2);

    // A different second event (another id, same seq): rebuilt from the log.
    let (mut log, _) = reopen(&store, "01RUN");
    log.append(ready("e"), "engine", None);
    log.commit().unwrap();
    drop(log);
    assert_eq!(names(&store), ["a", "b", "e"]);
    let first: String = text.split_inclusive('\n').take(1).collect();
    std::fs::write(&path, &first).unwrap();
    let (mut log, _) = reopen(&store, "01RUN");
    log.append(ready("f"), "engine", None);
    log.append(ready("g"), "engine", None);
    log.commit().unwrap();
    drop(log);
    assert_eq!(names(&store), ["a", "f", "g"]);
}

#[test]
fn status_bounds_a_huge_message_of_an_older_log() {
    let (tmp, store) = project();
    let path = cli_run(&store, "01AAA", "m");
    // Written as an older version did: straight to the file, without the limits.
    let event = spectacular::record::Event {
        event_id: "01OLDEVENT0000000000000000".into(),
        schema: 1,
        run_id: "01AAA".into(),
        seq: 4,
        ts: "2026-11-21T10:00:00.000Z".into(),
        causation_id: None,
        actor: "engine".into(),
        data: EventData::PhaseFailed(spectacular::record::event::PhaseFailed {
            phase: "b".into(),
            attempts: 1,
            kind: FailureKind::Exit,
            message: format!("exited with code 1: {}", "e".repeat(8 << 20)),
            continued: false,
        }),
    };
    append_raw(&path, format!("{}\n", event.to_json_line()).as_bytes());
    let out = cli(tmp.path(), &["status", "01AAA"]);
    assert_eq!(out.code, 0, "{}", &out.stderr);
    assert!(
        out.stdout.len() < 2 * limits::TEXT_MAX,
        "{}",
        out.stdout.len()
    );
    assert!(
        out.stdout.contains("…[truncated: 8388634 bytes]"),
        "{}",
        &out.stdout[out.stdout.len() - 200..]
    );
    let out = cli(tmp.path(), &["events", "01AAA"]);
    assert!(
        out.stdout.len() < 2 * limits::TEXT_MAX,
        "{}",
        out.stdout.len()
    );
}

/// The projection's cost per batch is what the batch holds: once a 2,000-child fan-out is
/// indexed, applying one event writes its `events` row, its `attempts` row (if any), the
/// run's row and the row of the phase it names, never the run's other phases again.
#[test]
fn a_projection_batch_writes_rows_for_its_events_not_for_the_whole_run() {
    use spectacular::record::event::{AttemptStarted, Child, PhaseExpanded, RunStarted};
    use spectacular::record::{Event, Projection};
    const CHILDREN: usize = 2_000;
    let mut log: Vec<Event> = Vec::new();
    let mut push = |data: EventData| {
        let seq = log.len() as u64 + 1;
        log.push(Event {
            event_id: format!("e{seq}"),
            schema: 1,
            run_id: "fan".into(),
            seq,
            ts: format!("2026-11-30T00:00:{:02}.000Z", seq % 60),
            causation_id: None,
            actor: "engine".into(),
            data,
        });
        log.len()
    };
    push(EventData::RunStarted(RunStarted {
        mission: "fan".into(),
        mission_source: "fan.yaml".into(),
        mission_digest: "sha256:0".into(),
        mission_text: String::new(),
        files: Default::default(),
        inputs: Default::default(),
        max_parallel: 4,
        engine_version: "test".into(),
        git_base: None,
    }));
    push(ready("fan"));
    let fanned = push(EventData::PhaseExpanded(PhaseExpanded {
        phase: "fan".into(),
        children: (0..CHILDREN)
            .map(|i| Child {
                lane: None,
                key: i.to_string(),
                item: serde_json::json!(i),
                depends_on: Vec::new(),
            })
            .collect(),
    }));
    let started = push(EventData::AttemptStarted(AttemptStarted {
        phase: "fan[7]".into(),
        attempt: 1,
        workdir: ".".into(),
        argv: None,
        prompt_digest: None,
        timeout_ms: None,
        reserved_usd: None,
    }));
    let succeeded = push(EventData::PhaseSucceeded(PhaseSucceeded {
        phase: "fan[7]".into(),
        attempts: 1,
        artifacts: Default::default(),
    }));
    let readied = push(ready("fan[8]"));

    let mut p = Projection::in_memory().unwrap();
    p.apply(&log[..fanned]).unwrap();
    // The fan-out itself: its event, the run and every phase it names.
    assert!(p.rows_written() >= CHILDREN as u64);
    for (upto, what, rows) in [
        (started, "attempt.started", 4),
        (succeeded, "phase.succeeded", 3),
        (readied, "phase.ready", 3),
    ] {
        let before = p.rows_written();
        p.apply(&log[upto - 1..upto]).unwrap();
        assert_eq!(p.rows_written() - before, rows, "rows written for `{what}`");
        assert_eq!(p.verify("fan", &log[..upto]).unwrap(), Vec::<String>::new());
    }
    let phases = p.phases("fan").unwrap();
    assert_eq!(phases.len(), CHILDREN + 1);
    assert_eq!(phases[8].phase, "fan[7]");
    assert_eq!(phases[8].state, "succeeded");
    assert_eq!(phases[9].state, "ready");
}
