//! Work on branches, end to end through the CLI: work packages in git worktrees on branches of
//! their own, commits with provenance, lanes, `builtin/merge` into the integration branch,
//! conflicts (rework, approval, fail), retries from a clean reset, `--apply`, and SIGKILL in
//! the middle of implementation and of the merge.

use std::time::Duration;

use spectacular::record::event::{GitWork, MergeOutcome};
use spectacular::record::{Event, EventData};

use crate::runtime::{code, text, Project};
use crate::support::{git, git_init};

/// A project with `mission` and `files`, committed on `main`.
fn repo(mission: &str, files: &[(&str, &str)]) -> Project {
    let p = Project::new(mission);
    for (path, content) in files {
        let full = p.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    std::fs::write(p.path().join(".gitignore"), ".spectacular/\n").unwrap();
    git_init(p.path());
    p
}

fn integration(events: &[Event]) -> String {
    let run = &events[0].run_id;
    spectacular::git::integration_branch(run)
}

/// The committed work of each work package that succeeded last, by instance.
fn work(events: &[Event]) -> std::collections::BTreeMap<String, GitWork> {
    let mut out = std::collections::BTreeMap::new();
    for e in events {
        if let EventData::AttemptSucceeded(d) = &e.data {
            if let Some(git) = &d.git {
                out.insert(d.phase.clone(), (**git).clone());
            }
        }
    }
    out
}

fn attempts(events: &[Event], phase: &str) -> usize {
    crate::runtime::count(events, "attempt.started", phase)
}

/// The sample project: a tiny shell "library" whose test checks what the work packages add.
const TEST_SH: &str = "#!/bin/sh\nset -eu\n. ./src/add.sh\n. ./src/mul.sh\ntest \"$(add 2 3)\" = 5\ntest \"$(mul 2 3)\" = 6\ngrep -q 'mul 2 3' README.md\necho ok\n";

/// The fake coding agent: writes real code for its work package into the working directory
/// (its worktree). `wp-mul` builds on `wp-add`, so it fails unless its dependency's work is
/// there.
const CODER: &str = r#"#!/bin/sh
set -eu
case "$SPECTACULAR_PHASE" in
  "implement[wp-add]")
    mkdir -p src
    printf 'add() { echo $(($1 + $2)); }\n' > src/add.sh ;;
  "implement[wp-mul]")
    test -f src/add.sh || { echo "src/add.sh is missing: the dependency's work is not here" >&2; exit 1; }
    mkdir -p src
    printf 'mul() { r=0; i=0; while [ $i -lt $2 ]; do r=$(add $r $1); i=$((i + 1)); done; echo $r; }\n' > src/mul.sh ;;
  "implement[wp-docs]")
    printf '# Arith\n\n    . src/add.sh; . src/mul.sh; mul 2 3   # 6\n' > README.md ;;
esac
if [ -n "${CODER_STRAY:-}" ]; then echo stray > stray.txt; fi
sleep "${CODER_SLEEP:-0}"
echo "wrote $SPECTACULAR_PHASE"
"#;

const ITEMS: &str = r#"'[#{id: "wp-add", title: "Add two numbers", owned_files: ["src/add.sh"]}, #{id: "wp-mul", title: "Multiply with add", owned_files: ["src/mul.sh"], depends_on: ["wp-add"]}, #{id: "wp-docs", title: "Document mul", owned_files: ["README.md"]}]'"#;

fn build_mission(on_conflict: &str) -> String {
    format!(
        "mission: arith\n\
         inputs:\n  base_branch: {{ type: string, default: \"\" }}\n\
         phases:\n\
         \x20 implement:\n    for_each: {ITEMS}\n    role: executor\n    workspace: worktree\n\
         \x20 merge:\n    needs: [implement]\n    uses: builtin/merge\n    with: {{ work: implement, on_conflict: {on_conflict} }}\n\
         \x20 check:\n    needs: [merge]\n    workspace: integration\n    run: [sh, test.sh]\n"
    )
}

/// The sample repository with the fake agent configured as the executor.
fn arith() -> Project {
    let p = repo(
        &build_mission("fail"),
        &[("test.sh", TEST_SH), ("tools/coder.sh", CODER)],
    );
    let agents = format!(
        "agents:\n  coder:\n    adapter: command\n    argv: [sh, \"{}\"]\n    roles: [executor]\n",
        p.path().join("tools/coder.sh").display()
    );
    std::fs::write(p.path().join(".spectacular/agents.yaml"), agents).unwrap();
    p
}

#[test]
fn three_work_packages_become_one_integration_branch_and_nothing_is_left_behind() {
    let p = arith();
    // The user's own work in progress: never touched.
    std::fs::write(p.path().join("scratch.txt"), "mine\n").unwrap();
    let before = git(p.path(), &["rev-parse", "HEAD"]);
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    let run = events[0].run_id.clone();
    let into = integration(&events);
    assert!(
        text(&out).contains(&into),
        "names the branch: {}",
        text(&out)
    );

    // Each work package committed its own files on its own branch, with provenance.
    let work = work(&events);
    for (wp, file) in [
        ("wp-add", "src/add.sh"),
        ("wp-mul", "src/mul.sh"),
        ("wp-docs", "README.md"),
    ] {
        let w = &work[&format!("implement[{wp}]")];
        assert_eq!(w.branch, spectacular::git::work_branch(&run, wp));
        assert_eq!(w.files, vec![file.to_string()], "{wp}");
        assert_eq!(w.commits.len(), 1, "{wp}");
        assert!(
            w.insertions >= 1 && w.outside_owned.is_empty(),
            "{wp}: {w:?}"
        );
        let message = git(p.path(), &["log", "-1", "--format=%B", &w.head]);
        for trailer in [
            format!("Spectacular-Run: {run}"),
            format!("Spectacular-Phase: implement[{wp}]"),
            "Spectacular-Agent: coder".to_string(),
        ] {
            assert!(message.contains(&trailer), "{wp}: {message}");
        }
    }
    // `wp-mul` started from `wp-add`'s work, the others from the base.
    assert_eq!(
        work["implement[wp-mul]"].base,
        work["implement[wp-add]"].head
    );
    assert_eq!(work["implement[wp-add]"].base, before);
    assert_eq!(work["implement[wp-docs]"].base, before);

    // Merged in dependency order, each step recorded.
    let steps: Vec<(String, MergeOutcome)> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::MergeStep(s) => Some((s.work.clone(), s.outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps.iter().all(|(_, o)| *o == MergeOutcome::Merged));
    let pos = |w: &str| steps.iter().position(|(s, _)| s == w).unwrap();
    assert!(pos("implement[wp-add]") < pos("implement[wp-mul]"));

    // The integration branch holds all of it, and the check passed on it.
    for file in ["src/add.sh", "src/mul.sh", "README.md"] {
        git(p.path(), &["cat-file", "-e", &format!("{into}:{file}")]);
    }
    let merges = git(p.path(), &["rev-list", "--merges", "--count", &into]);
    assert_eq!(merges, "3", "one merge commit per work package");

    // Nothing left but the integration branch; the user's tree and branch as they were.
    let worktrees = git(p.path(), &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 1, "{worktrees}");
    let branches = git(p.path(), &["branch", "--format=%(refname:short)"]);
    assert_eq!(
        branches.lines().collect::<Vec<_>>(),
        vec!["main", into.as_str()]
    );
    assert_eq!(git(p.path(), &["rev-parse", "HEAD"]), before);
    assert_eq!(git(p.path(), &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(
        std::fs::read_to_string(p.path().join("scratch.txt")).unwrap(),
        "mine\n"
    );
    assert!(
        !p.path().join("src").exists(),
        "the user's tree is untouched"
    );
}

#[test]
fn apply_fast_forwards_the_base_branch_to_the_integration_branch() {
    let p = arith();
    let out = p.run(&["run", "mission.yaml", "--apply"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let into = integration(&p.events());
    assert_eq!(
        git(p.path(), &["rev-parse", "main"]),
        git(p.path(), &["rev-parse", &into])
    );
    assert!(p.path().join("src/mul.sh").is_file(), "the checkout moved");
    assert!(text(&out).contains("fast-forwarded"), "{}", text(&out));
}

#[test]
fn apply_refuses_to_move_a_branch_with_uncommitted_changes() {
    let p = arith();
    std::fs::write(p.path().join("test.sh"), "changed by the user\n").unwrap();
    let out = p.run(&[
        "run",
        "mission.yaml",
        "--apply",
        "--input",
        "base_branch=main",
    ]);
    // The check ran on the merged work, which has the committed test.sh.
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("uncommitted changes"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(p.path().join("test.sh")).unwrap(),
        "changed by the user\n"
    );
    let into = integration(&p.events());
    assert_ne!(
        git(p.path(), &["rev-parse", "main"]),
        git(p.path(), &["rev-parse", &into])
    );
}

#[test]
fn a_project_outside_git_is_refused_before_anything_runs() {
    let p = Project::new(&conflict_mission("fail"));
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 65, "{}", text(&out));
    assert!(
        text(&out).contains("not inside a git repository"),
        "{}",
        text(&out)
    );
    assert!(
        p.store().run_ids().unwrap().is_empty(),
        "no run was recorded"
    );
}

/// Two work packages that both append to `shared.txt`; whoever comes second conflicts. The
/// "agent" resolves conflict markers by keeping both sides.
fn conflicting(on_conflict: &str) -> Project {
    repo(&conflict_mission(on_conflict), &[("shared.txt", "top\n")])
}

fn conflict_mission(on_conflict: &str) -> String {
    format!(
        r#"mission: clash
phases:
  implement:
    for_each: '[#{{id: "a", title: "A side"}}, #{{id: "b", title: "B side"}}]'
    workspace: worktree
    shell: |
      if grep -q '^<<<<<<<' shared.txt; then
        grep -v '^<<<<<<<\|^=======\|^>>>>>>>' shared.txt > resolved && mv resolved shared.txt
      else
        echo "line from {{{{ item.id }}}}" >> shared.txt
      fi
  merge:
    needs: [implement]
    uses: builtin/merge
    with: {{ work: implement, on_conflict: {on_conflict} }}
    on_failure: {{ goto: implement, max_loops: 2 }}
"#
    )
}

fn merge_steps(events: &[Event]) -> Vec<spectacular::record::event::MergeStep> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::MergeStep(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_conflict_sends_back_only_the_conflicting_work_package_which_resolves_it() {
    let p = conflicting("rework");
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    let steps = merge_steps(&events);
    let conflict = steps
        .iter()
        .find(|s| s.outcome == MergeOutcome::Conflict)
        .expect("a conflict was recorded");
    assert_eq!(conflict.conflicts[0].file, "shared.txt");
    assert!(
        conflict.conflicts[0].hunks[0].starts_with("<<<<<<<"),
        "{:?}",
        conflict.conflicts
    );
    let second = conflict.work.clone();
    let first = if second == "implement[a]" {
        "implement[b]"
    } else {
        "implement[a]"
    };
    // Only the conflicting package was redone.
    assert_eq!(attempts(&events, first), 1);
    assert_eq!(attempts(&events, &second), 2);
    let reset = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::LoopStarted(l) => Some(l.reset.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(reset, vec![second.clone(), "merge".to_string()]);
    // Its second attempt started from its work with the integration branch merged in.
    let into = integration(&events);
    let merged = git(p.path(), &["show", &format!("{into}:shared.txt")]);
    assert_eq!(merged.lines().count(), 3, "{merged}");
    assert!(merged.contains("line from a") && merged.contains("line from b"));
    assert!(!merged.contains("<<<<<<<"), "{merged}");
}

#[test]
fn a_conflict_can_wait_for_a_person_who_resolves_it_and_approves() {
    let p = conflicting("approval");
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let events = p.events();
    let into = integration(&events);
    let place = spectacular::git::integration_dir(&p.store(), &events[0].run_id).unwrap();
    assert!(
        text(&out).contains("resolve the conflict"),
        "{}",
        text(&out)
    );
    // The conflict is where the message says; resolve it as a person would.
    let status = git(&place, &["status", "--porcelain"]);
    assert!(status.contains("UU shared.txt"), "{status}");
    std::fs::write(place.join("shared.txt"), "top\nline from a\nline from b\n").unwrap();
    git(&place, &["add", "shared.txt"]);
    git(
        &place,
        &[
            "-c",
            "user.name=P",
            "-c",
            "user.email=p@localhost",
            "commit",
            "-q",
            "--no-edit",
        ],
    );
    let out = p.run(&["approve", "last", "merge", "--resume"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let merged = git(p.path(), &["show", &format!("{into}:shared.txt")]);
    assert_eq!(merged, "top\nline from a\nline from b");
    // The second merge found the resolved work in the branch: not merged twice.
    let steps = merge_steps(&p.events());
    assert_eq!(steps.last().unwrap().outcome, MergeOutcome::Already);
}

#[test]
fn a_conflict_fails_the_merge_when_asked_to() {
    let p = conflicting("fail");
    let mission = std::fs::read_to_string(p.path().join("mission.yaml")).unwrap();
    std::fs::write(
        p.path().join("mission.yaml"),
        mission.replace("    on_failure: { goto: implement, max_loops: 2 }\n", ""),
    )
    .unwrap();
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();
    let failed = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptFailed(f) if f.phase == "merge" => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(failed.kind, spectacular::model::FailureKind::Conflict);
    assert_eq!(failed.files, vec!["shared.txt".to_string()]);
    assert_eq!(attempts(&events, "merge"), 1, "a conflict is not retried");
}

#[test]
fn a_retry_starts_from_a_clean_reset_and_changes_outside_owned_files_are_reported() {
    let mission = r#"mission: retry
phases:
  implement:
    for_each: '[#{id: "w", title: "Write", owned_files: ["owned.txt"]}]'
    workspace: worktree
    retry: { max_attempts: 2, backoff: { initial: 10ms } }
    shell: |
      if [ "$SPECTACULAR_ATTEMPT" = 1 ]; then echo junk > junk.txt; echo broken > owned.txt; exit 1; fi
      test ! -e junk.txt
      echo good > owned.txt
      echo stray > elsewhere.txt
"#;
    let p = repo(mission, &[("owned.txt", "old\n")]);
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    let w = &work(&events)["implement[w]"];
    assert_eq!(w.files, vec!["elsewhere.txt", "owned.txt"]);
    assert_eq!(w.outside_owned, vec!["elsewhere.txt"]);
    assert_eq!(
        git(p.path(), &["show", &format!("{}:owned.txt", w.head)]),
        "good"
    );
    let tree = git(p.path(), &["ls-tree", "--name-only", &w.head]);
    assert!(!tree.contains("junk.txt"), "{tree}");
}

#[test]
fn overlapping_owned_files_put_work_packages_in_one_lane_that_runs_one_at_a_time() {
    let mission = r#"mission: lanes
phases:
  implement:
    for_each: '[#{id: "a", owned_files: ["src/**"]}, #{id: "b", owned_files: ["src/x.rs"]}, #{id: "c", owned_files: ["docs/c.md"]}]'
    workspace: worktree
    shell: 'echo "start {{ item.id }}" >> "$LOG"; sleep 0.3; echo "end {{ item.id }}" >> "$LOG"'
"#;
    let p = repo(mission, &[]);
    let log = p.path().join("lanes.log");
    let out = p
        .command(&["run", "mission.yaml", "--max-parallel", "3"])
        .env("LOG", &log)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let lanes: Vec<(String, Option<u32>)> = p
        .events()
        .iter()
        .find_map(|e| match &e.data {
            EventData::PhaseExpanded(x) => {
                Some(x.children.iter().map(|c| (c.key.clone(), c.lane)).collect())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(
        lanes,
        vec![
            ("a".to_string(), Some(0)),
            ("b".to_string(), Some(0)),
            ("c".to_string(), Some(1))
        ]
    );
    // a and b never overlap in time; c runs beside one of them.
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let at = |l: &str| lines.iter().position(|x| x == l).unwrap();
    let (a, b) = ((at("start a"), at("end a")), (at("start b"), at("end b")));
    assert!(a.1 < b.0 || b.1 < a.0, "a and b overlapped: {lines:?}");
    let c = (at("start c"), at("end c"));
    assert!(
        (c.0 < a.1 && a.0 < c.1) || (c.0 < b.1 && b.0 < c.1),
        "c ran beside a lane member: {lines:?}"
    );
}

/// Eight work packages whose agents take a while: time to kill the engine during the work and
/// during the merge.
fn slow_mission() -> String {
    let items: Vec<String> = (0..8)
        .map(|i| format!("#{{id: \"w{i}\", title: \"Part {i}\", owned_files: [\"part{i}.txt\"]}}"))
        .collect();
    format!(
        "mission: slow\nphases:\n  implement:\n    for_each: '[{}]'\n    max_parallel: 3\n    workspace: worktree\n    shell: 'sleep 0.2; echo \"part {{{{ item.id }}}}\" > part{{{{ item.id | replace(\"w\", \"\") }}}}.txt'\n  merge:\n    needs: [implement]\n    uses: builtin/merge\n    with: {{ work: implement }}\n",
        items.join(", ")
    )
}

/// The integration branch's tree and the subjects of its commits (sorted: merge order may
/// differ between runs only where the mission allows it).
fn outcome(p: &Project) -> (String, Vec<String>) {
    let into = integration(&p.events());
    let tree = git(p.path(), &["rev-parse", &format!("{into}^{{tree}}")]);
    let run_short = spectacular::git::run_short(&p.run_id());
    let mut subjects: Vec<String> = git(p.path(), &["log", "--format=%s", &into])
        .lines()
        .map(|s| s.replace(&run_short, "RUN"))
        .collect();
    subjects.sort();
    (tree, subjects)
}

#[test]
fn killed_during_the_work_and_during_the_merge_a_resumed_run_ends_the_same() {
    let files = [("README.md", "parts\n")];
    let reference = repo(&slow_mission(), &files);
    let out = reference.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let expected = outcome(&reference);

    let p = repo(&slow_mission(), &files);
    // Kill in the middle of the work: some packages committed, others running.
    let mut engine = p.spawn(&["run", "mission.yaml"]);
    p.wait_for("two packages done", |events| {
        events
            .iter()
            .filter(|e| matches!(&e.data, EventData::AttemptSucceeded(s) if s.git.is_some()))
            .count()
            >= 2
    });
    engine.kill().unwrap();
    engine.wait().unwrap();
    // Kill in the middle of the merge: some steps recorded, others not.
    let run = p.run_id();
    let mut engine = p.spawn(&["resume", &run]);
    p.wait_for("the merge under way", |events| {
        events
            .iter()
            .any(|e| matches!(e.data, EventData::MergeStep(_)))
    });
    std::thread::sleep(Duration::from_millis(30));
    engine.kill().unwrap();
    engine.wait().unwrap();
    let out = p.run(&["resume", &run]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    assert_eq!(
        outcome(&p),
        expected,
        "same tree and history as without kills"
    );
    let into = integration(&p.events());
    let merges = git(p.path(), &["rev-list", "--merges", "--count", &into]);
    assert_eq!(merges, "8", "each package merged exactly once");
    let worktrees = git(p.path(), &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 1, "{worktrees}");
    let verify = p.run(&["replay", &run, "--verify"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify));
}

/// A work package that writes outside its `owned_files`: reported always; denied when the
/// mission enables the `owned-files` pack, which `govern` asks after the attempt with what it
/// changed. The money was spent, so the attempt's usage is kept.
#[test]
fn a_governance_pack_can_deny_changes_outside_owned_files() {
    let mission = |policies: &str| {
        format!(
            r#"mission: strays
{policies}phases:
  implement:
    for_each: '[#{{id: "w", title: "Write", owned_files: ["src/owned.txt"]}}, #{{id: "tidy", title: "Tidy", owned_files: ["notes.txt"]}}]'
    workspace: worktree
    shell: |
      case "$SPECTACULAR_PHASE" in
        *"[w]") echo new > src/owned.txt; echo stray > src/other.txt; echo lock > Cargo.lock ;;
        *) echo tidy > notes.txt ;;
      esac
  merge: {{ needs: [implement], uses: builtin/merge, with: {{ work: implement }} }}
"#
        )
    };
    let files = [("src/owned.txt", "old\n"), ("notes.txt", "\n")];

    // Without the pack, the stray file is only reported.
    let p = repo(&mission(""), &files);
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let w = &work(&p.events())["implement[w]"];
    assert_eq!(w.outside_owned, vec!["Cargo.lock", "src/other.txt"]);

    // With it, the attempt that strayed fails; its sibling, which did not, succeeds.
    let p = repo(&mission("policies: [owned-files]\n"), &files);
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();
    let failed = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptFailed(f) if f.phase == "implement[w]" => Some(f.clone()),
            _ => None,
        })
        .expect("the straying attempt failed");
    assert_eq!(failed.kind, spectacular::model::FailureKind::Denied);
    assert_eq!(failed.files, vec!["Cargo.lock", "src/other.txt"]);
    // Cargo.lock is allowed by the pack's default `allow`; src/other.txt is not.
    assert!(
        failed.message.contains("denied by policy `owned-files`")
            && failed
                .message
                .contains("changed files outside its owned_files: src/other.txt"),
        "{}",
        failed.message
    );
    assert_eq!(
        attempts(&events, "implement[w]"),
        1,
        "a deny is not retried"
    );
    assert!(work(&events).contains_key("implement[tidy]"));
    assert!(!work(&events).contains_key("implement[w]"));
    // The decision is recorded with what the hook saw.
    let asked = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::PolicyDecided(d) if d.phase == "implement[w]" && d.context.is_some() => {
                d.context.clone()
            }
            _ => None,
        })
        .expect("govern was asked about implement[w]");
    assert_eq!(
        asked["phase"]["changes"]["outside_owned"],
        serde_json::json!(["Cargo.lock", "src/other.txt"])
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.data, EventData::AttemptStarted(s) if s.phase == "merge")),
        "nothing is merged after the deny"
    );
}

/// An agent's attempt is asked about with the context its route was decided on: the role and
/// the adapter before the attempt, the files it changed after.
#[test]
fn an_agent_that_writes_outside_its_package_is_denied_with_the_context_it_was_routed_on() {
    let p = arith();
    let mission = build_mission("fail").replace("phases:", "policies: [owned-files]\nphases:");
    std::fs::write(p.path().join("mission.yaml"), mission).unwrap();
    let out = p
        .command(&["run", "mission.yaml"])
        .env("CODER_STRAY", "1")
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    let events = p.events();
    let denied: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AttemptFailed(f)
                if f.kind == spectacular::model::FailureKind::Denied
                    && f.files == ["stray.txt"] =>
            {
                Some(f.phase.as_str())
            }
            _ => None,
        })
        .collect();
    assert!(denied.contains(&"implement[wp-add]"), "{denied:?}");
    let after = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::PolicyDecided(d)
                if d.phase == "implement[wp-add]"
                    && d.context
                        .as_ref()
                        .is_some_and(|c| !c["phase"]["changes"].is_null()) =>
            {
                d.context.clone()
            }
            _ => None,
        })
        .expect("govern was asked after the attempt");
    assert_eq!(after["phase"]["role"], "executor");
    assert_eq!(after["phase"]["adapter"], "command");
    assert_eq!(
        after["phase"]["changes"]["outside_owned"],
        serde_json::json!(["stray.txt"])
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.data, EventData::MergeStep(_))),
        "nothing denied is merged"
    );
}

/// A work package writes a declared output in `.spectacular/out/` of its worktree: the output
/// is promoted, and neither it nor the directory reaches the package's branch, even when the
/// agent committed it itself.
#[test]
fn outputs_written_in_a_worktree_are_promoted_and_never_committed() {
    let mission = "mission: notes\n\
        phases:\n\
        \x20 implement:\n    workspace: worktree\n    shell: |\n      echo code > code.txt\n      echo 'what I did' > .spectacular/out/notes.md\n      git add -A -f && git -c user.name=a -c user.email=a@a commit -qm 'agent commit'\n      echo 'and more' >> .spectacular/out/notes.md\n    outputs:\n      notes: { path: notes.md }\n";
    let p = repo(mission, &[]);
    let head = git(p.path(), &["rev-parse", "HEAD"]);
    let out = p.run(&["run", "mission.yaml"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    let notes = std::fs::read_to_string(
        p.store()
            .run_dir(&p.run_id())
            .join("artifacts/implement/notes.md"),
    )
    .unwrap();
    assert_eq!(notes, "what I did\nand more\n");
    let work = work(&events);
    let committed = &work["implement"].head;
    let files = git(p.path(), &["ls-tree", "-r", "--name-only", committed]);
    assert!(files.lines().any(|f| f == "code.txt"), "{files}");
    assert!(!files.contains(".spectacular/out"), "{files}");
    assert_eq!(git(p.path(), &["rev-parse", "HEAD"]), head);
}
