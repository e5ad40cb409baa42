//! The pipeline under a hostile agent. Each test is an attack: a stand-in agent (a shell
//! script committed in the project, run in its worktree) does the hostile thing, and the test
//! asserts a clear failure naming what happened, with the user's repository — branches,
//! worktrees, index and files, and a second worktree of the user's — byte-identical.

use std::path::{Path, PathBuf};

use spectacular::model::FailureKind;
use spectacular::record::{Event, EventData};

use crate::runtime::{code, text, Project};
use crate::support::{git, git_init, walk};

/// The stand-in agent: writes its package's file, then does what `ATTACK` says.
const AGENT: &str = r#"#!/bin/sh
set -eu
short=$(printf %s "$SPECTACULAR_RUN_ID" | tail -c 8 | tr 'A-Z' 'a-z')
case "$SPECTACULAR_PHASE" in
  "implement[wp-a]") echo a > a.txt; me=a ;;
  *) echo b > b.txt; me=b ;;
esac
attack="${ATTACK:-}"
if [ "$me" = a ]; then
  case "$attack" in
    symlink-next) ln -s "$USER_WT" "../implement[wp-b]" ;;
    rewrite-git) printf 'gitdir: %s\n' "$USER_GITDIR" > .git ;;
    plant-integration)
      mkdir -p ../.integration
      printf 'gitdir: %s\n' "$USER_GITDIR" > ../.integration/.git ;;
    checkout) git checkout -q release ;;
    fsmonitor) git config core.fsmonitor "$HOOK" ;;
    included-config)
      git config --file "$(git rev-parse --path-format=absolute --git-common-dir)/team.inc" \
        core.fsmonitor "$HOOK" ;;
    worktree-config) git config --worktree core.fsmonitor "$HOOK" ;;
    fifo-head)
      head=$(git rev-parse --path-format=absolute --git-path HEAD)
      rm -f "$head" && mkfifo "$head" ;;
    integration-branch)
      echo backdoor > backdoor.txt
      git add backdoor.txt
      git -c user.name=x -c user.email=x@x commit -qm backdoor
      git branch "spectacular/$short" HEAD
      git reset -q --hard HEAD~1 ;;
  esac
fi
"#;

/// The project's check, run in the integration worktree.
const CHECK: &str = r#"#!/bin/sh
set -eu
test -f a.txt && test -f b.txt
if [ "${ATTACK:-}" = commit-after-checks ]; then
  echo backdoor > backdoor.txt
  git add backdoor.txt
  git -c user.name=x -c user.email=x@x commit -qm "after the checks"
fi
"#;

const MISSION: &str = r#"mission: attacked
phases:
  implement:
    for_each: '[#{id: "wp-a", title: "A", owned_files: ["a.txt"]}, #{id: "wp-b", title: "B", owned_files: ["b.txt"], depends_on: ["wp-a"]}]'
    workspace: worktree
    shell: sh tools/agent.sh
  merge:
    needs: [implement]
    uses: builtin/merge
    with: { work: implement }
  check:
    needs: [merge]
    workspace: integration
    shell: sh tools/check.sh
"#;

/// A user's repository on `main`, a branch `release`, and a second worktree of the user's on
/// `feature` with an uncommitted edit and an untracked file.
struct Scene {
    project: Project,
    other: tempfile::TempDir,
}

impl Scene {
    fn new(mission: &str) -> Scene {
        let project = Project::new(mission);
        let p = project.path();
        std::fs::create_dir_all(p.join("tools")).unwrap();
        std::fs::write(p.join("tools/agent.sh"), AGENT).unwrap();
        std::fs::write(p.join("tools/check.sh"), CHECK).unwrap();
        std::fs::write(p.join("shared.txt"), "top\n").unwrap();
        std::fs::write(p.join(".gitignore"), ".spectacular/\n").unwrap();
        git_init(p);
        git(p, &["branch", "release"]);
        std::fs::write(p.join("scratch.txt"), "mine, uncommitted\n").unwrap();
        let other = tempfile::tempdir().unwrap();
        let wt = other.path().join("userwt");
        git(
            p,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "feature",
                wt.to_str().unwrap(),
            ],
        );
        std::fs::write(wt.join("notes.txt"), "untracked notes\n").unwrap();
        std::fs::write(wt.join("shared.txt"), "an edit in progress\n").unwrap();
        Scene { project, other }
    }

    fn user_worktree(&self) -> PathBuf {
        self.other.path().join("userwt")
    }

    /// The git directory of the user's second worktree.
    fn user_gitdir(&self) -> String {
        git(
            &self.user_worktree(),
            &["rev-parse", "--path-format=absolute", "--git-dir"],
        )
    }

    /// Run the mission with `attack`, and `extra` environment.
    fn run(&self, attack: &str, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
        let mut command = self.project.command(args);
        command
            .env("ATTACK", attack)
            .env("USER_WT", self.user_worktree())
            .env("USER_GITDIR", self.user_gitdir());
        for (k, v) in extra {
            command.env(k, v);
        }
        command.output().unwrap()
    }

    /// Everything of the user's: branches and tags (not the engine's `spectacular/…`),
    /// worktrees (not the engine's), and for both of the user's worktrees HEAD, index, status
    /// and every file's bytes.
    fn snapshot(&self) -> String {
        let p = self.project.path();
        let quiet = |dir: &Path, args: &[&str]| {
            let mut all = vec!["-c", "core.fsmonitor=false"];
            all.extend(args);
            git(dir, &all)
        };
        let mut out = String::new();
        for line in quiet(p, &["for-each-ref", "--format=%(refname) %(objectname)"]).lines() {
            if !line.starts_with("refs/heads/spectacular/") {
                out.push_str(line);
                out.push('\n');
            }
        }
        for block in quiet(p, &["worktree", "list", "--porcelain"]).split("\n\n") {
            if !block.contains("/.spectacular/worktrees/") {
                out.push_str(block);
                out.push('\n');
            }
        }
        for dir in [p.to_path_buf(), self.user_worktree()] {
            out.push_str(&format!("== {}\n", dir.display()));
            out.push_str(&quiet(&dir, &["symbolic-ref", "HEAD"]));
            out.push_str(&quiet(&dir, &["ls-files", "--stage"]));
            out.push_str(&quiet(
                &dir,
                &["status", "--porcelain", "--untracked-files=all"],
            ));
            for file in walk(&dir) {
                let relative = file.strip_prefix(&dir).unwrap();
                if relative.starts_with(".git") || relative.starts_with(".spectacular") {
                    continue;
                }
                let bytes = std::fs::read(&file).unwrap_or_default();
                out.push_str(&format!(
                    "{} {}\n",
                    relative.display(),
                    String::from_utf8_lossy(&bytes)
                ));
            }
        }
        out
    }
}

/// The failure of `phase`'s last attempt.
fn failure(events: &[Event], phase: &str) -> (FailureKind, String) {
    events
        .iter()
        .rev()
        .find_map(|e| match &e.data {
            EventData::AttemptFailed(f) if f.phase == phase => Some((f.kind, f.message.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no failed attempt of {phase}"))
}

/// Run `attack`: the run fails, `phase`'s attempt is `tampered` with a message containing
/// `says`, and the user's repository is as it was.
fn refused(attack: &str, phase: &str, says: &str) -> Scene {
    refused_in(Scene::new(MISSION), attack, phase, says, &[])
}

/// [`refused`] in a scene set up beforehand, with `extra` environment.
fn refused_in(
    scene: Scene,
    attack: &str,
    phase: &str,
    says: &str,
    extra: &[(&str, &str)],
) -> Scene {
    let before = scene.snapshot();
    let out = scene.run(attack, &["run", "mission.yaml"], extra);
    assert_ne!(code(&out), 0, "{attack}: the run failed\n{}", text(&out));
    let events = scene.project.events();
    let (kind, message) = failure(&events, phase);
    assert_eq!(kind, FailureKind::Tampered, "{attack}: {message}");
    assert!(message.contains(says), "{attack}: {message}");
    assert!(
        message.contains("nothing was touched"),
        "{attack}: {message}"
    );
    assert_eq!(
        scene.snapshot(),
        before,
        "{attack}: the user's repository changed"
    );
    scene
}

#[test]
fn the_same_mission_without_an_attack_succeeds() {
    let scene = Scene::new(MISSION);
    let before = scene.snapshot();
    let out = scene.run("", &["run", "mission.yaml"], &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(scene.snapshot(), before);
}

#[test]
fn a_symlink_planted_where_the_next_worktree_goes_is_refused() {
    let scene = refused("symlink-next", "implement[wp-b]", "symbolic link");
    // The link is where the agent left it; nothing was done through it.
    assert!(!scene.user_worktree().join("b.txt").exists());
}

#[test]
fn an_agent_that_rewrites_its_own_git_file_is_refused() {
    refused("rewrite-git", "implement[wp-a]", "/.git` was changed");
}

#[test]
fn a_git_file_planted_where_the_integration_worktree_goes_is_refused() {
    refused("plant-integration", "merge", "not made by the engine");
}

#[test]
fn an_agent_that_checks_out_another_branch_is_refused() {
    let scene = refused("checkout", "implement[wp-a]", "not the branch");
    let p = scene.project.path();
    assert_eq!(
        git(p, &["rev-parse", "release"]),
        git(p, &["rev-parse", "main"]),
        "release did not get the package's commit"
    );
}

#[test]
fn an_agent_that_writes_a_command_into_the_repository_config_is_named_and_never_run() {
    let scene = Scene::new(MISSION);
    let mark = scene.other.path().join("hook-ran");
    let hook = scene.other.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho ran >> '{}'\n", mark.display()),
    )
    .unwrap();
    make_executable(&hook);
    let before = scene.snapshot();
    let out = scene.run(
        "fsmonitor",
        &["run", "mission.yaml"],
        &[("HOOK", hook.to_str().unwrap())],
    );
    assert_ne!(code(&out), 0, "{}", text(&out));
    let (kind, message) = failure(&scene.project.events(), "implement[wp-a]");
    assert_eq!(kind, FailureKind::Tampered, "{message}");
    assert!(message.contains("fsmonitor"), "{message}");
    assert!(!mark.exists(), "the engine ran the agent's fsmonitor hook");
    assert_eq!(scene.snapshot(), before);
}

#[test]
fn config_that_runs_a_command_never_runs_in_the_engines_git_and_git_sees_no_secret() {
    let scene = Scene::new(MISSION);
    let p = scene.project.path();
    let mark = scene.other.path().join("ran");
    let hook = scene.other.path().join("hook.sh");
    std::fs::write(&hook, format!("#!/bin/sh\nenv >> '{}'\n", mark.display())).unwrap();
    make_executable(&hook);
    // Already in the repository's config when the run starts.
    let hook_s = hook.to_str().unwrap();
    for (key, value) in [
        ("core.fsmonitor", hook_s),
        ("filter.evil.clean", hook_s),
        ("filter.evil.smudge", hook_s),
        ("filter.evil.required", "true"),
    ] {
        git(p, &["config", key, value]);
    }
    std::fs::write(p.join(".gitattributes"), "*.txt filter=evil\n").unwrap();
    // The test's own git runs none of it either.
    let safe = [
        "-c",
        "core.fsmonitor=false",
        "-c",
        "filter.evil.clean=",
        "-c",
        "filter.evil.smudge=",
        "-c",
        "filter.evil.required=false",
    ];
    git(p, &[&safe[..], &["add", ".gitattributes"]].concat());
    git(
        p,
        &[
            &safe[..],
            &[
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "attributes",
            ],
        ]
        .concat(),
    );
    let out = scene.run(
        "",
        &["run", "mission.yaml"],
        &[("OPENAI_API_KEY", "sk-secret-of-the-user")],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        !mark.exists(),
        "a command from the config ran: {}",
        std::fs::read_to_string(&mark).unwrap_or_default()
    );
}

#[test]
fn an_integration_branch_created_before_the_merge_is_refused() {
    refused("integration-branch", "merge", "already exists");
}

#[test]
fn a_check_that_commits_after_checking_is_refused_and_nothing_is_applied() {
    let scene = Scene::new(MISSION);
    let before = scene.snapshot();
    let out = scene.run(
        "commit-after-checks",
        &["run", "mission.yaml", "--apply"],
        &[],
    );
    assert_ne!(code(&out), 0, "{}", text(&out));
    let (kind, message) = failure(&scene.project.events(), "check");
    assert_eq!(kind, FailureKind::Tampered, "{message}");
    assert!(message.contains("not at"), "{message}");
    assert_eq!(scene.snapshot(), before, "main did not move");
}

#[test]
fn apply_refuses_an_integration_branch_moved_after_the_checks() {
    let scene = Scene::new(MISSION);
    let out = scene.run("", &["run", "mission.yaml"], &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let p = scene.project.path();
    let run = scene.project.run_id();
    let into = spectacular::git::integration_branch(&run);
    let checked = git(p, &["rev-parse", &into]);
    // A late commit on the integration branch (a background process of the check, anyone).
    let tree = git(p, &["rev-parse", "main^{tree}"]);
    let late = git(
        p,
        &[
            "-c",
            "user.name=x",
            "-c",
            "user.email=x@x",
            "commit-tree",
            &tree,
            "-p",
            &checked,
            "-m",
            "late",
        ],
    );
    git(p, &["update-ref", &format!("refs/heads/{into}"), &late]);
    let before = scene.snapshot();
    let err = spectacular::git::apply::apply(&scene.project.store(), p, &run).unwrap_err();
    assert!(
        matches!(err, spectacular::git::apply::Error::MovedAfterChecks { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("after the checks"), "{err}");
    assert_eq!(scene.snapshot(), before);
    // Back at the checked commit, exactly that is applied.
    git(p, &["update-ref", &format!("refs/heads/{into}"), &checked]);
    let applied = spectacular::git::apply::apply(&scene.project.store(), p, &run).unwrap();
    assert_eq!(applied.commit, checked);
    assert_eq!(git(p, &["rev-parse", "main"]), checked);
}

#[test]
fn apply_never_moves_a_branch_checked_out_in_another_worktree() {
    let scene = Scene::new(MISSION);
    let p = scene.project.path();
    let out = scene.run("", &["run", "mission.yaml"], &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // The user moved on: `main` is now checked out in another worktree of theirs.
    std::fs::remove_file(p.join("scratch.txt")).unwrap();
    git(p, &["checkout", "-q", "release"]);
    let there = scene.other.path().join("main-wt");
    git(
        p,
        &["worktree", "add", "-q", there.to_str().unwrap(), "main"],
    );
    let before = scene.snapshot();
    let err = spectacular::git::apply::apply(&scene.project.store(), p, &scene.project.run_id())
        .unwrap_err();
    assert!(
        err.to_string().contains("checked out in the worktree"),
        "{err}"
    );
    assert_eq!(scene.snapshot(), before);
    assert!(!there.join("a.txt").exists());
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn conflict_markers_marked_resolved_by_git_add_are_never_committed() {
    let mission = r#"mission: clash
phases:
  implement:
    for_each: '[#{id: "a", title: "A side"}, #{id: "b", title: "B side"}]'
    workspace: worktree
    shell: |
      if grep -q '^<<<<<<<' shared.txt; then
        git add -A
      else
        echo "line from {{ item.id }}" >> shared.txt
      fi
  merge:
    needs: [implement]
    uses: builtin/merge
    with: { work: implement, on_conflict: rework }
    on_failure: { goto: implement, max_loops: 1 }
"#;
    let scene = Scene::new(mission);
    let before = scene.snapshot();
    let out = scene.run("", &["run", "mission.yaml"], &[]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    let events = scene.project.events();
    let (_, message) = failure(&events, "implement[b]");
    assert!(
        message.contains("conflict markers are left in shared.txt"),
        "{message}"
    );
    // No commit of the package holds a marker.
    for e in &events {
        if let EventData::AttemptSucceeded(d) = &e.data {
            if let Some(work) = &d.git {
                let text = git(
                    scene.project.path(),
                    &["show", &format!("{}:shared.txt", work.head)],
                );
                assert!(!text.contains("<<<<<<<"), "{}: {text}", d.phase);
            }
        }
    }
    assert_eq!(scene.snapshot(), before);
}

#[test]
fn a_conflict_on_a_link_to_a_fifo_ends_the_merge_instead_of_hanging() {
    let mission = r#"mission: fifo
phases:
  implement:
    for_each: '[#{id: "a", title: "A"}, #{id: "b", title: "B"}]'
    workspace: worktree
    shell: |
      if [ "$SPECTACULAR_PHASE" = "implement[a]" ]; then
        rm -f shared.txt && ln -s "$FIFO" shared.txt
      else
        echo "from b" >> shared.txt
      fi
  merge:
    needs: [implement]
    uses: builtin/merge
    with: { work: implement, on_conflict: fail }
"#;
    let scene = Scene::new(mission);
    let fifo = scene.other.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let before = scene.snapshot();
    let mut child = scene
        .project
        .command(&["run", "mission.yaml"])
        .env("FIFO", &fifo)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the merge of a link to a FIFO hangs");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let (kind, message) = failure(&scene.project.events(), "merge");
    assert_eq!(kind, FailureKind::Conflict, "{message}");
    assert!(message.contains("shared.txt"), "{message}");
    assert_eq!(scene.snapshot(), before);
}

#[test]
fn a_stale_index_lock_left_by_a_killed_git_is_recovered() {
    let mission = r#"mission: locked
phases:
  implement:
    for_each: '[#{id: "a", title: "A", owned_files: ["a.txt"]}]'
    workspace: worktree
    retry: { max_attempts: 2, backoff: { initial: 10ms } }
    shell: |
      echo a > a.txt
      # A git killed with SIGKILL leaves its lock behind; the first attempt then fails.
      touch "$(git rev-parse --git-dir)/index.lock"
      if [ "$SPECTACULAR_ATTEMPT" = 1 ]; then exit 1; fi
  merge:
    needs: [implement]
    uses: builtin/merge
    with: { work: implement }
"#;
    let scene = Scene::new(mission);
    let before = scene.snapshot();
    let out = scene.run("", &["run", "mission.yaml"], &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = scene.project.events();
    assert_eq!(
        crate::runtime::count(&events, "attempt.started", "implement[a]"),
        2,
        "one retry, not one per lock"
    );
    assert_eq!(scene.snapshot(), before);
}

#[test]
fn an_approval_from_inside_an_attempt_is_refused_even_with_its_variables_scrubbed_or_its_group_left(
) {
    let mission = r#"mission: sneaky
phases:
  gate:
    approval: { reason: ship it? }
  sneak:
    shell: |
      sleep 1
      cd "$PROJECT_DIR"
      ( env -u SPECTACULAR_RUN_ID -u SPECTACULAR_PHASE "$SPECTACULAR_BIN" approve last gate > "$MARKS/scrubbed.txt" 2>&1 & wait )
      # Out of the attempt's process group and session, its variables scrubbed.
      perl -e 'use POSIX; POSIX::setsid() or die "setsid: $!"; exec @ARGV' \
        env -u SPECTACULAR_RUN_ID -u SPECTACULAR_PHASE -u SPECTACULAR_SPAWN \
        "$SPECTACULAR_BIN" approve last gate > "$MARKS/setsid.txt" 2>&1 || true
      "$SPECTACULAR_BIN" approve last gate > "$MARKS/plain.txt" 2>&1 || true
  deploy: { shell: 'echo deployed', needs: [gate, sneak] }
"#;
    let scene = Scene::new(mission);
    let marks = scene.other.path();
    let out = scene.run(
        "",
        &["run", "mission.yaml"],
        &[
            ("SPECTACULAR_BIN", env!("CARGO_BIN_EXE_spectacular")),
            ("PROJECT_DIR", scene.project.path().to_str().unwrap()),
            ("MARKS", marks.to_str().unwrap()),
        ],
    );
    assert_eq!(code(&out), 3, "the run waits for a person: {}", text(&out));
    let events = scene.project.events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.data, EventData::ApprovalDecided(_))),
        "an attempt approved the gate"
    );
    for (file, says) in [
        ("scrubbed.txt", "process group of attempt `sneak 1`"),
        ("plain.txt", "`SPECTACULAR_RUN_ID` is set"),
        ("setsid.txt", "of attempt `sneak 1`"),
    ] {
        let said = std::fs::read_to_string(marks.join(file)).unwrap();
        assert!(
            said.contains("approvals come from people"),
            "{file}: {said}"
        );
        assert!(said.contains(says), "{file}: {said}");
    }
}

#[test]
fn a_planner_that_drops_a_requirement_from_the_spec_mid_run_is_checked_against_the_spec_it_started_with(
) {
    let mission = r#"mission: moving-spec
inputs:
  spec: { type: file, required: true }
phases:
  plan:
    retry: { max_attempts: 1 }
    shell: |
      # Covers two of three requirements, then makes the spec say there were two.
      grep -v 'FR-003' "$SPEC" > "$SPEC.new" && mv "$SPEC.new" "$SPEC"
      cat > "$SPECTACULAR_OUTPUT_DIR/tasks.json" <<'JSON'
      [{"id": "wp-1", "title": "One", "description": "d", "depends_on": [], "owned_files": ["a"], "requirement_refs": ["FR-001"], "acceptance": ["ok"], "estimate": "s"},
       {"id": "wp-2", "title": "Two", "description": "d", "depends_on": [], "owned_files": ["b"], "requirement_refs": ["FR-002"], "acceptance": ["ok"], "estimate": "s"}]
      JSON
    outputs:
      tasks: { path: tasks.json, check: { kind: plan, spec: "{{ inputs.spec }}" } }
"#;
    let p = Project::new(mission);
    let spec = "# Feature\n\n## Requirements\n\n- **FR-001**: one.\n- **FR-002**: two.\n- **FR-003**: three.\n";
    std::fs::write(p.path().join("spec.md"), spec).unwrap();
    let out = p
        .command(&["run", "mission.yaml", "--input", "spec=spec.md"])
        .env("SPEC", p.path().join("spec.md"))
        .output()
        .unwrap();
    assert_ne!(code(&out), 0, "{}", text(&out));
    let (_, message) = failure(&p.events(), "plan");
    assert!(message.contains("FR-003"), "{message}");
    assert!(message.contains("changed during the run"), "{message}");
}

/// A hook an attack writes into some config file, and the file it leaves when it runs.
fn hook(scene: &Scene) -> (PathBuf, PathBuf) {
    let mark = scene.other.path().join("hook-ran");
    let hook = scene.other.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho ran >> '{}'\n", mark.display()),
    )
    .unwrap();
    make_executable(&hook);
    (hook, mark)
}

#[test]
fn an_agent_that_writes_a_command_into_an_included_config_file_is_named() {
    let scene = Scene::new(MISSION);
    let p = scene.project.path();
    // The user's config includes a file of the team's settings (harmless when the run starts).
    let common = git(
        p,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    );
    std::fs::write(
        Path::new(&common).join("team.inc"),
        "[color]\n\tui = auto\n",
    )
    .unwrap();
    git(p, &["config", "include.path", "team.inc"]);
    let (hook, mark) = hook(&scene);
    refused_in(
        scene,
        "included-config",
        "implement[wp-a]",
        "team.inc",
        &[("HOOK", hook.to_str().unwrap())],
    );
    assert!(!mark.exists(), "the engine ran the agent's hook");
}

#[test]
fn an_agent_that_writes_a_command_into_its_worktrees_own_config_is_named() {
    let scene = Scene::new(MISSION);
    git(
        scene.project.path(),
        &["config", "extensions.worktreeConfig", "true"],
    );
    let (hook, mark) = hook(&scene);
    let scene = refused_in(
        scene,
        "worktree-config",
        "implement[wp-a]",
        "config.worktree",
        &[("HOOK", hook.to_str().unwrap())],
    );
    assert!(!mark.exists(), "the engine ran the agent's hook");
    let message = failure(&scene.project.events(), "implement[wp-a]").1;
    assert!(message.contains("fsmonitor"), "{message}");
}

#[test]
fn an_agent_that_puts_a_fifo_in_place_of_its_head_fails_its_attempt_instead_of_hanging_the_run() {
    let scene = Scene::new(MISSION);
    let before = scene.snapshot();
    let mut child = scene
        .project
        .command(&["run", "mission.yaml"])
        .env("ATTACK", "fifo-head")
        .env("USER_WT", scene.user_worktree())
        .env("USER_GITDIR", scene.user_gitdir())
        // Any git of the engine that would open the FIFO is stopped.
        .env("SPECTACULAR_GIT_TIMEOUT", "20")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("a FIFO in place of a worktree's HEAD hangs the run");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let (kind, message) = failure(&scene.project.events(), "implement[wp-a]");
    assert_eq!(kind, FailureKind::Tampered, "{message}");
    assert!(
        message.contains("`HEAD` is not a regular file"),
        "{message}"
    );
    // The FIFO goes (the test's own git would block on it too), then nothing else changed.
    for file in walk(&scene.project.path().join(".git/worktrees")) {
        if file.ends_with("HEAD") && !file.is_file() {
            std::fs::remove_file(&file).unwrap();
        }
    }
    assert_eq!(scene.snapshot(), before);
}

/// A phase reading the repository in a view (a detached worktree of the base, recorded like
/// every worktree of the engine), whose agent does what `ATTACK` says.
const VIEW_MISSION: &str = r#"mission: peek
phases:
  research:
    workspace: view
    shell: |
      test -f shared.txt
      case "${ATTACK:-}" in
        rewrite-git) printf 'gitdir: %s\n' "$USER_GITDIR" > .git ;;
        switch) git checkout -q release ;;
      esac
"#;

#[test]
fn a_view_is_recorded_checked_and_removed_like_every_worktree_of_the_engine() {
    let scene = Scene::new(VIEW_MISSION);
    let before = scene.snapshot();
    let out = scene.run("", &["run", "mission.yaml"], &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // Gone from git, the disk and the registry once its attempt ended.
    let p = scene.project.path();
    let listed = git(p, &["worktree", "list", "--porcelain"]);
    assert!(!listed.contains(".views"), "{listed}");
    let run_dir = scene.project.store().run_dir(&scene.project.run_id());
    let registry = std::fs::read_to_string(run_dir.join("worktrees.json")).unwrap();
    assert!(!registry.contains(".views"), "{registry}");
    assert_eq!(scene.snapshot(), before);
}

#[test]
fn an_agent_that_rewrites_its_views_git_file_or_switches_its_branch_is_refused() {
    for (attack, says) in [
        ("rewrite-git", "/.git` was changed"),
        ("switch", "the branch `release`"),
    ] {
        let scene = Scene::new(VIEW_MISSION);
        let before = scene.snapshot();
        let out = scene.run(attack, &["run", "mission.yaml"], &[]);
        assert_ne!(code(&out), 0, "{attack}: {}", text(&out));
        let (kind, message) = failure(&scene.project.events(), "research");
        assert_eq!(kind, FailureKind::Tampered, "{attack}: {message}");
        assert!(message.contains(says), "{attack}: {message}");
        assert!(!scene
            .project
            .path()
            .join(".spectacular/worktrees")
            .join(scene.project.run_id())
            .join(".views/research/1")
            .exists());
        assert_eq!(
            scene.snapshot(),
            before,
            "{attack}: the user's repository changed"
        );
    }
}
