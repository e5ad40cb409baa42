//! `spectacular clean`: on a git repository where the test lays out worktrees and branches as
//! the engine does (`<store>/worktrees/<run>/<instance>` on `spectacular/<run-short>/<work>`,
//! the integration branch `spectacular/<run-short>`), with run logs in every state.

use std::path::Path;

use spectacular::git::{integration_branch, run_short, work_branch, worktree_dir};
use spectacular::record::event::{RunFinished, RunSuspended};
use spectacular::record::{EventData, RunLog, Store};

use crate::support::{git, run_cli, Output};

const SUCCEEDED: &str = "01JDQ3ZK6V8X4M2N5P7R9SUCC1";
const FAILED: &str = "01JDQ3ZK6V8X4M2N5P7R9FAIL1";
const CANCELED: &str = "01JDQ3ZK6V8X4M2N5P7R9CANC1";
const RUNNING: &str = "01JDQ3ZK6V8X4M2N5P7R9RUNN1";
const SUSPENDED: &str = "01JDQ3ZK6V8X4M2N5P7R9SUSP1";

fn branches(repo: &Path) -> Vec<String> {
    git(
        repo,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn worktrees(repo: &Path) -> usize {
    git(repo, &["worktree", "list", "--porcelain"])
        .lines()
        .filter(|l| l.starts_with("worktree "))
        .count()
}

/// A run's log ending in `end` (none: still running).
fn log(store: &Store, run_id: &str, end: Option<EventData>) {
    let mut log = RunLog::create(store, run_id).expect("create the run log");
    log.append(
        EventData::PhaseReady(spectacular::record::event::PhaseRef {
            phase: "implement".into(),
        }),
        "engine",
        None,
    );
    if let Some(end) = end {
        log.append(end, "engine", None);
    }
    log.commit().expect("commit");
}

/// What the engine leaves of a run: two work packages' worktrees and branches, the
/// integration branch checked out in the merge worktree.
fn run_work(repo: &Path, store: &Store, run_id: &str) {
    for wp in ["WP01", "WP02"] {
        let dir = worktree_dir(store, run_id, &format!("implement[{wp}]")).unwrap();
        git(
            repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                &work_branch(run_id, wp),
                dir.to_str().unwrap(),
                "main",
            ],
        );
        std::fs::write(dir.join(format!("{wp}.txt")), "work in progress\n").unwrap();
    }
    let merge = worktree_dir(store, run_id, "merge").unwrap();
    let merge = merge.to_str().unwrap();
    if integration_fits(run_id) {
        git(repo, &["branch", &integration_branch(run_id), "main"]);
        git(
            repo,
            &["worktree", "add", "-q", merge, &integration_branch(run_id)],
        );
    } else {
        git(repo, &["worktree", "add", "-q", "--detach", merge, "main"]);
    }
}

/// Can git hold the integration branch beside the work branches? Not when its name is a
/// folder of theirs (`spectacular/<short>` and `spectacular/<short>/WP01`: git keeps refs as
/// paths); then the test lays out no integration branch.
fn integration_fits(run_id: &str) -> bool {
    !work_branch(run_id, "WP01").starts_with(&format!("{}/", integration_branch(run_id)))
}

fn finished(kind: &str) -> EventData {
    let end = RunFinished {
        failed: Vec::new(),
        reason: None,
    };
    match kind {
        "succeeded" => EventData::RunSucceeded(end),
        "failed" => EventData::RunFailed(end),
        _ => EventData::RunCanceled(end),
    }
}

struct Repo {
    _temp: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Store,
}

fn repo() -> Repo {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("project");
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("README.md"), "hello\n").unwrap();
    std::fs::write(root.join(".gitignore"), ".spectacular/\n").unwrap();
    git(&root, &["add", "."]);
    git(&root, &["commit", "-q", "-m", "init"]);
    let store = Store {
        dir: root.join(".spectacular"),
    };
    std::fs::create_dir_all(&store.dir).unwrap();
    for (run, end) in [
        (SUCCEEDED, Some(finished("succeeded"))),
        (FAILED, Some(finished("failed"))),
        (CANCELED, Some(finished("canceled"))),
        (RUNNING, None),
        (
            SUSPENDED,
            Some(EventData::RunSuspended(RunSuspended {
                waiting: vec!["approve".into()],
            })),
        ),
    ] {
        log(&store, run, end);
        run_work(&root, &store, run);
    }
    Repo {
        _temp: temp,
        root,
        store,
    }
}

fn clean(repo: &Repo, args: &[&str]) -> Output {
    let mut all = vec!["clean"];
    all.extend_from_slice(args);
    run_cli(&repo.root, &all, &[])
}

/// Is the run's work all there (its worktree directory, both work branches)?
fn has_work(repo: &Repo, run_id: &str) -> bool {
    let all = branches(&repo.root);
    repo.store.dir.join("worktrees").join(run_id).exists()
        && ["WP01", "WP02"]
            .iter()
            .all(|wp| all.contains(&work_branch(run_id, wp)))
}

/// Is none of the run's work left (no worktree directory, no work branch)?
fn has_none(repo: &Repo, run_id: &str) -> bool {
    let prefix = format!("spectacular/{}/", run_short(run_id));
    !repo.store.dir.join("worktrees").join(run_id).exists()
        && !branches(&repo.root).iter().any(|b| b.starts_with(&prefix))
}

#[test]
fn finished_cleans_succeeded_runs_keeps_failed_ones_and_never_touches_live_ones() {
    let repo = repo();
    // The user's own work: a branch under the run's prefix checked out in the working tree,
    // an uncommitted file, other branches that only look alike.
    let mine = work_branch(SUCCEEDED, "mine");
    git(&repo.root, &["checkout", "-q", "-b", &mine]);
    std::fs::write(repo.root.join("notes.txt"), "uncommitted\n").unwrap();
    let lookalikes = [
        format!("spectacular/{}x/WP01", run_short(SUCCEEDED)),
        format!("feature/spectacular/{}/WP01", run_short(SUCCEEDED)),
        "spectacular-notes".to_string(),
    ];
    for branch in &lookalikes {
        git(&repo.root, &["branch", branch, "main"]);
    }
    // A locked worktree: git refuses `remove --force`; the directory goes and prune forgets it.
    let locked = worktree_dir(&repo.store, SUCCEEDED, "implement[WP02]").unwrap();
    git(&repo.root, &["worktree", "lock", locked.to_str().unwrap()]);
    // A damaged one (its `.git` file gone): git refuses to remove it; the directory goes and
    // `git worktree prune` forgets it.
    let damaged = worktree_dir(&repo.store, SUCCEEDED, "merge").unwrap();
    std::fs::remove_file(damaged.join(".git")).unwrap();
    let before = worktrees(&repo.root);

    let dry = clean(&repo, &["--finished", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.transcript());
    assert!(dry.stdout.contains("would remove branch"), "{}", dry.stdout);
    assert_eq!(
        worktrees(&repo.root),
        before,
        "a dry run removed a worktree"
    );
    assert!(has_work(&repo, SUCCEEDED));

    let out = clean(&repo, &["--finished"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    crate::support::assert_goldens(
        crate::support::golden(
            Path::new("tests/fixtures/cli/clean-finished.txt"),
            &format!("$ spectacular clean --finished\n{}", out.transcript()),
        )
        .err()
        .into_iter()
        .collect(),
    );
    let all = branches(&repo.root);
    // The succeeded run: worktrees and work branches gone; the integration branch and the
    // current branch kept.
    assert!(!repo.store.dir.join("worktrees").join(SUCCEEDED).exists());
    for wp in ["WP01", "WP02"] {
        assert!(!all.contains(&work_branch(SUCCEEDED, wp)), "{all:?}");
        assert!(
            out.stdout
                .contains(&format!("removed branch {}", work_branch(SUCCEEDED, wp))),
            "{}",
            out.stdout
        );
    }
    if integration_fits(SUCCEEDED) {
        assert!(all.contains(&integration_branch(SUCCEEDED)), "{all:?}");
        assert!(
            out.stdout.contains("(the integration branch)"),
            "{}",
            out.stdout
        );
    }
    assert!(all.contains(&mine), "{all:?}");
    assert!(
        out.stdout.contains("(it is the current branch)"),
        "{}",
        out.stdout
    );
    for branch in &lookalikes {
        assert!(all.contains(branch), "`{branch}` was deleted: {all:?}");
    }
    assert_eq!(
        git(&repo.root, &["symbolic-ref", "--short", "HEAD"]).trim(),
        mine
    );
    assert_eq!(
        std::fs::read_to_string(repo.root.join("notes.txt")).unwrap(),
        "uncommitted\n"
    );
    // Three worktrees of the succeeded run fewer: git forgot the locked and damaged ones too.
    assert_eq!(worktrees(&repo.root), before - 3);
    // Failed and canceled runs kept for inspection; running and suspended ones untouched.
    for run in [FAILED, CANCELED, RUNNING, SUSPENDED] {
        assert!(has_work(&repo, run), "{run} was cleaned:\n{}", out.stdout);
    }
    assert!(out.stdout.contains("kept for inspection"), "{}", out.stdout);
    assert!(
        out.stdout.contains("it waits for an approval"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("it is running"), "{}", out.stdout);

    // Named, a live run is refused; a failed one is cleaned (a dry run first).
    for run in [RUNNING, SUSPENDED] {
        let refused = clean(&repo, &[run]);
        assert_eq!(refused.code, 2, "{}", refused.transcript());
        assert!(
            refused.stderr.contains("never touches"),
            "{}",
            refused.stderr
        );
        assert!(has_work(&repo, run));
    }
    let dry = clean(&repo, &[FAILED, "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.transcript());
    assert!(has_work(&repo, FAILED), "a dry run removed work");
    let named = clean(&repo, &[FAILED]);
    assert_eq!(named.code, 0, "{}", named.transcript());
    assert!(has_none(&repo, FAILED), "{}", named.stdout);
    if integration_fits(FAILED) {
        assert!(branches(&repo.root).contains(&integration_branch(FAILED)));
    }
    // `--include-failed` takes the canceled one; live runs still stay.
    let all_finished = clean(&repo, &["--finished", "--include-failed"]);
    assert_eq!(all_finished.code, 0, "{}", all_finished.transcript());
    assert!(has_none(&repo, CANCELED), "{}", all_finished.stdout);
    for run in [RUNNING, SUSPENDED] {
        assert!(has_work(&repo, run));
    }
    // The user's working tree is the one left beside the live runs' worktrees.
    assert_eq!(worktrees(&repo.root), 1 + 2 * 3);
}

#[test]
fn clean_needs_a_run_or_finished() {
    let repo = repo();
    for args in [
        &[][..],
        &["--include-failed"][..],
        &[SUCCEEDED, "--finished"][..],
    ] {
        let out = clean(&repo, args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.transcript());
    }
    let unknown = clean(&repo, &["01NOPE"]);
    assert_eq!(unknown.code, 2, "{}", unknown.transcript());
    assert!(has_work(&repo, SUCCEEDED));
}
