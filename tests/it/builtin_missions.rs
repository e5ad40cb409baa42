//! The built-in missions `research`, `documentation` and `bugfix` run end to end by name, with a fake
//! `command` agent (a shell script that writes what each phase declares, from its prompt) in
//! a git repository the test makes.

use std::path::PathBuf;
use std::process::Command;

use spectacular::record::{Event, EventData};

use crate::runtime::Project;
use crate::support::git;

/// The fake agent: `$1` is the phase instance, `$2` the prompt file; it writes the phase's
/// outputs where a client may write them, the relative `.spectacular/out/` the prompts name
/// (in its working directory: a view of the repository, a worktree, the integration
/// worktree), copying the prompt so that the test sees what reached it. The phases that read
/// the code fail when they cannot see the repository's files.
const AGENT: &str = r##"#!/bin/sh
set -e
out=.spectacular/out
sees() { test -f "$1" || { echo "$1 is not in $(pwd)" >&2; exit 4; }; }
case "$1" in
  questions)
    sees brief.md
    printf '%s' '[{"id":"q1","question":"Which clock does the scheduler read?","why":"replay"},{"id":"q2","question":"Where are events made durable?","where":["src/record"]}]' > $out/questions.json ;;
  investigate*) sees brief.md; { echo "Findings of $1"; cat "$2"; } > $out/findings.md ;;
  synthesize) cp "$2" report.md ;;
  inventory)
    sees brief.md
    echo "# Inventory: nothing documented yet" > $out/inventory.md
    printf '%s' '[{"id":"install","title":"Installing","description":"How to install it","owned_files":["docs/install.md"],"examples":["cargo install spectacular"]},{"id":"usage","title":"Using it","description":"A first run","owned_files":["docs/usage.md"],"depends_on":["install"]}]' > $out/pages.json ;;
  write*) mkdir -p docs; cp "$2" "docs/$(echo "$1" | sed 's/.*\[\(.*\)\]/\1/').md" ;;
  review) sees docs/install.md; cp "$2" $out/review.md ;;
  reproduce)
    sees src/add.sh
    { echo "add 2 3 prints -1: add subtracts."; echo "Test: tests/add_test.sh asserts add 2 3 = 5."; } > $out/reproduction.md ;;
  fix)
    mkdir -p tests
    printf '. ./src/add.sh\ngot=$(add 2 3)\n[ "$got" = 5 ] || { echo "tests/add_test.sh:2:1: error: add 2 3 gave $got, expected 5"; exit 1; }\n' > tests/add_test.sh
    if grep -q 'fix these' "$2"; then
      printf 'add() { echo $(($1 + $2)); }\n' > src/add.sh
    else
      printf 'add() { echo $(($1 * $2)); }\n' > src/add.sh
    fi ;;
  *) echo "unexpected phase $1" >&2; exit 3 ;;
esac
"##;

/// A git repository with a committed file, the fake agent for every role, and `brief.md`.
fn project() -> Project {
    let p = Project::new("mission: unused\nphases:\n  a:\n    uses: builtin/noop\n");
    let root = p.path();
    std::fs::write(root.join(".gitignore"), ".spectacular/\n").unwrap();
    std::fs::write(
        root.join("brief.md"),
        "# Brief\n\nHow does the engine stay deterministic?\n",
    )
    .unwrap();
    let agent = root.join(".spectacular/agent.sh");
    std::fs::write(&agent, AGENT).unwrap();
    std::fs::write(
        root.join(".spectacular/agents.yaml"),
        format!(
            "agents:\n  fake:\n    adapter: command\n    roles: [planner, analyst, executor, validator]\n    stdin: false\n    argv: [sh, {}, \"{{{{ phase.id }}}}\", \"{{{{ prompt_file }}}}\"]\n",
            agent.display()
        ),
    )
    .unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "init"]);
    p
}

fn text(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The artifact `name` of `phase`'s successful attempt.
fn artifact(p: &Project, events: &[Event], phase: &str, name: &str) -> String {
    let relative = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptSucceeded(s) if s.phase == phase => s.artifacts.get(name).cloned(),
            _ => None,
        })
        .unwrap_or_else(|| panic!("`{phase}` recorded no `{name}`"));
    let path: PathBuf = p.store().run_dir(&p.run_id()).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn succeeded(events: &[Event], phase: &str) -> Option<usize> {
    events
        .iter()
        .position(|e| matches!(&e.data, EventData::PhaseSucceeded(s) if s.phase == phase))
}

#[test]
fn research_runs_end_to_end_and_changes_no_code() {
    let p = project();
    let head = git(p.path(), &["rev-parse", "HEAD"]);
    let out = p.run(&["run", "research", "--input", "brief=brief.md"]);
    assert!(out.status.success(), "{}", text(&out));
    let events = p.events();
    for phase in [
        "questions",
        "investigate[q1]",
        "investigate[q2]",
        "synthesize",
        "summary",
    ] {
        assert!(
            succeeded(&events, phase).is_some(),
            "`{phase}` did not succeed"
        );
    }
    // Each question reached its investigator, each finding reached the synthesis.
    let report = artifact(&p, &events, "synthesize", "report");
    for expected in [
        "Findings of investigate[q1]",
        "Which clock does the scheduler read?",
        "Findings of investigate[q2]",
        "Where are events made durable?",
        "Start from: src/record",
    ] {
        assert!(report.contains(expected), "`{expected}` not in\n{report}");
    }
    // No code changes: the repository is as it was, and every view is gone.
    assert_eq!(git(p.path(), &["rev-parse", "HEAD"]), head);
    assert_eq!(git(p.path(), &["status", "--porcelain"]), "");
    let worktrees = git(p.path(), &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 1, "{worktrees}");
}

#[test]
fn documentation_runs_end_to_end() {
    let p = project();
    let out = p.run(&["run", "documentation", "--input", "scope=the CLI"]);
    let events = p.events();
    for phase in ["inventory", "write[install]", "write[usage]"] {
        assert!(
            succeeded(&events, phase).is_some(),
            "`{phase}` did not succeed\n{}",
            text(&out)
        );
    }
    // `usage` links to `install`: it starts once `install` is written.
    let usage_started = events
        .iter()
        .position(|e| matches!(&e.data, EventData::AttemptStarted(s) if s.phase == "write[usage]"))
        .unwrap();
    assert!(succeeded(&events, "write[install]").unwrap() < usage_started);
    // The page's writer got its page, its examples, the other pages and the inventory.
    let run_dir = p.store().run_dir(&p.run_id());
    let prompt = crate::support::walk(&run_dir)
        .into_iter()
        .find(|f| f.to_string_lossy().contains("write[install]") && f.ends_with("prompt.md"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .expect("the prompt of write[install]");
    for expected in [
        "Write the documentation page install: Installing",
        "Change only these files: docs/install.md.",
        "- cargo install spectacular",
        "a page of this\nplan: install, usage)",
        "# Inventory: nothing documented yet",
        "The scope of the whole task: the CLI",
    ] {
        assert!(prompt.contains(expected), "`{expected}` not in\n{prompt}");
    }
    // The pages are merged, checked and reviewed; the report runs last.
    assert!(out.status.success(), "{}", text(&out));
    for phase in ["merge", "review", "learn", "report"] {
        assert!(
            succeeded(&events, phase).is_some(),
            "`{phase}` did not succeed"
        );
    }
    let review = artifact(&p, &events, "review", "review");
    assert!(
        review.contains("Review the documentation written for: the CLI"),
        "{review}"
    );
}

/// `bugfix`: the analyst reproduces the bug, the executor writes the failing test and a fix
/// on a branch; the first fix is wrong, so the checks fail and send it back with their errors;
/// the second is right. The merged branch holds the test and the fix, and its tests pass.
#[test]
fn bugfix_runs_end_to_end_and_a_failed_check_sends_the_fix_back() {
    let p = project();
    let root = p.path();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join("tests")).unwrap();
    std::fs::write(root.join("src/add.sh"), "add() { echo $(($1 - $2)); }\n").unwrap();
    std::fs::write(root.join("tests/smoke.sh"), "true\n").unwrap();
    std::fs::write(
        root.join("test.sh"),
        "for t in tests/*.sh; do sh \"$t\" || exit 1; done\necho all tests pass\n",
    )
    .unwrap();
    std::fs::write(
        root.join("bug.md"),
        "# add subtracts\n\n`add 2 3` prints -1; it should print 5.\n",
    )
    .unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "the bug"]);
    let out = p.run(&[
        "run",
        "bugfix",
        "--input",
        "bug=bug.md",
        "--input",
        "check_command=sh test.sh",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let events = p.events();
    for phase in ["reproduce", "fix", "merge", "check", "learn", "report"] {
        assert!(
            succeeded(&events, phase).is_some(),
            "`{phase}` did not succeed"
        );
    }
    assert!(artifact(&p, &events, "reproduce", "reproduction").contains("add subtracts"));
    // The wrong fix failed the checks, naming the test; the loop sent `fix` back once.
    let check_failed = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::AttemptFailed(f) if f.phase == "check" => Some(f.clone()),
            _ => None,
        })
        .expect("the first check failed");
    assert_eq!(check_failed.files, vec!["tests/add_test.sh".to_string()]);
    let loops = events
        .iter()
        .filter(|e| matches!(&e.data, EventData::LoopStarted(l) if l.goto == "fix"))
        .count();
    assert_eq!(loops, 1);
    assert_eq!(crate::runtime::count(&events, "attempt.started", "fix"), 2);
    // The second fix's prompt had the check's error.
    let prompts: Vec<String> = crate::support::walk(&p.store().run_dir(&p.run_id()))
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("/fix/") && f.ends_with("prompt.md"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(
        prompts
            .iter()
            .any(|t| t.contains("add 2 3 gave 6, expected 5")),
        "{prompts:?}"
    );
    // The integration branch holds the test and the right fix, and its tests pass.
    let branch = spectacular::git::integration_branch(&p.run_id());
    let checkout = tempfile::tempdir().unwrap();
    git(
        root,
        &[
            "worktree",
            "add",
            "-q",
            &checkout.path().join("c").to_string_lossy(),
            &branch,
        ],
    );
    let tests = Command::new("sh")
        .arg("test.sh")
        .current_dir(checkout.path().join("c"))
        .output()
        .unwrap();
    assert!(tests.status.success(), "{}", text(&tests));
    let merged = checkout.path().join("c");
    assert_eq!(
        std::fs::read_to_string(merged.join("src/add.sh")).unwrap(),
        "add() { echo $(($1 + $2)); }\n"
    );
    assert!(std::fs::read_to_string(merged.join("tests/add_test.sh"))
        .unwrap()
        .contains("expected 5"));
    // The user's checkout is untouched.
    assert_eq!(
        std::fs::read_to_string(root.join("src/add.sh")).unwrap(),
        "add() { echo $(($1 - $2)); }\n"
    );
}

/// Every new built-in mission validates by name (the validation of every shipped file is
/// `missions::every_shipped_mission_validates_clean`).
#[test]
fn the_new_built_in_missions_validate_by_name() {
    let temp = tempfile::tempdir().unwrap();
    for name in ["bugfix", "documentation", "research"] {
        let out = crate::support::run_cli(temp.path(), &["validate", name], &[]);
        assert_eq!(out.code, 0, "{}", out.transcript());
        assert!(
            out.stdout
                .contains(&format!("`builtin:missions/{name}/mission.yaml` is valid")),
            "{}",
            out.stdout
        );
    }
}
