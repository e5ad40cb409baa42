//! `spectacular init`: the knowledge layer, `.gitignore` and `config.yaml`, never overwriting.

use crate::support::*;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir(root.join(".git")).expect("git marker");
    for (file, text) in [
        ("Cargo.toml", "[package]\nname = \"demo\"\n"),
        ("src/main.rs", "fn main() {}\n"),
        ("CLAUDE.md", "Run the tests.\n"),
        (".github/workflows/ci.yml", "on: push\n"),
    ] {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

#[test]
fn init_scaffolds_knowledge_filled_from_the_repository() {
    let dir = project();
    let out = run_cli(dir.path(), &["init"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let dot = dir.path().join(".spectacular");
    let conventions = std::fs::read_to_string(dot.join("knowledge/conventions.md")).expect("read");
    assert_goldens(
        [
            golden(
                std::path::Path::new("tests/fixtures/cli/init.txt"),
                &out.transcript(),
            ),
            golden(
                std::path::Path::new("tests/fixtures/cli/init-conventions.md"),
                &conventions,
            ),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect(),
    );
    for file in [
        "knowledge/architecture.md",
        "knowledge/conventions.md",
        "knowledge/gotchas.md",
        "knowledge/dependencies.md",
        ".gitignore",
        "config.yaml",
    ] {
        assert!(dot.join(file).is_file(), "{file} missing:\n{}", out.stdout);
        assert!(
            out.stdout.contains(&format!("created .spectacular/{file}")),
            "{}",
            out.stdout
        );
    }
    assert!(dot.join("knowledge/learnings").is_dir());
    let conventions = std::fs::read_to_string(dot.join("knowledge/conventions.md")).expect("read");
    for expected in [
        "- Rust (1 file)",
        "- cargo (`Cargo.toml`)",
        "| test | `cargo test` | `Cargo.toml` |",
        "- `.github/workflows/ci.yml`",
        "- `CLAUDE.md`",
    ] {
        assert!(
            conventions.contains(expected),
            "{expected} not in\n{conventions}"
        );
    }
    let ignore = std::fs::read_to_string(dot.join(".gitignore")).expect("read");
    for line in ["runs/", "worktrees/", "state.db", "spend.jsonl"] {
        assert!(
            ignore.lines().any(|l| l == line),
            "{line} not ignored:\n{ignore}"
        );
    }
    // The config is valid, and sets the check command init found, nothing else.
    let (config, diagnostics) = spectacular::config::project::load(&dot);
    assert!(diagnostics.is_empty(), "config.yaml has diagnostics");
    assert_eq!(config.spec_inputs["check_command"], "cargo test");
    assert_eq!(config.spec_mission, None);
}

/// Writes `files` into a new repository.
fn repository(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join(".git")).expect("git marker");
    for (file, text) in files {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

#[test]
fn init_writes_the_check_command_of_the_repository_and_says_why() {
    for (files, command, why) in [
        (
            &[
                ("pyproject.toml", "[tool.pytest.ini_options]\n"),
                ("app.py", "x = 1\n"),
            ][..],
            "python3 -m pytest",
            "`pyproject.toml` names pytest",
        ),
        (
            &[
                ("app.py", "x = 1\n"),
                ("tests/test_app.py", "import unittest\n"),
            ][..],
            "python3 -m unittest discover -s tests",
            "`tests/` has Python tests",
        ),
        (
            &[
                ("package.json", r#"{"scripts": {"test": "node --test"}}"#),
                ("pnpm-lock.yaml", ""),
            ][..],
            "pnpm test",
            "`pnpm-lock.yaml` says pnpm",
        ),
        (&[("go.mod", "module x\n")][..], "go test ./...", "`go.mod`"),
        (
            &[("Makefile", "test:\n\ttrue\n"), ("Cargo.toml", "")][..],
            "make test",
            "the `Makefile` has a `test` target",
        ),
    ] {
        let dir = repository(files);
        let out = run_cli(dir.path(), &["init"], &[]);
        assert_eq!(out.code, 0, "{}", out.transcript());
        assert!(
            out.stdout
                .contains(&format!("Runs of a spec check the work with `{command}` ("))
                && out.stdout.contains(why),
            "{}",
            out.stdout
        );
        let text = std::fs::read_to_string(dir.path().join(".spectacular/config.yaml"))
            .expect("read config.yaml");
        assert!(
            text.contains(&format!("\nspec_inputs:\n  check_command: \"{command}\"\n")),
            "{text}"
        );
        let (config, diagnostics) =
            spectacular::config::project::load(&dir.path().join(".spectacular"));
        assert!(diagnostics.is_empty(), "config.yaml has diagnostics");
        assert_eq!(config.spec_inputs["check_command"], command);
    }
    // Nothing found: said, and the setting stays commented out.
    let dir = repository(&[("README.md", "hello\n")]);
    let out = run_cli(dir.path(), &["init"], &[]);
    assert!(
        out.stdout.contains("No test command found"),
        "{}",
        out.stdout
    );
    let (config, _) = spectacular::config::project::load(&dir.path().join(".spectacular"));
    assert_eq!(config, Default::default());
}

#[test]
fn a_spec_run_without_a_check_command_says_which_one_it_uses_and_why() {
    let dir = repository(&[
        ("package.json", r#"{"scripts": {"test": "node --test"}}"#),
        ("yarn.lock", ""),
        ("spec.md", "# Feature\n\n- FR-001: The app greets.\n"),
    ]);
    let out = run_cli(dir.path(), &["run", "spec.md"], &[("PATH", "/nonexistent")]);
    assert!(
        out.stderr.contains(
            "checking the work with `yarn test`: no check command is configured, and \
             `package.json` has a `test` script; `yarn.lock` says yarn"
        ),
        "{}",
        out.transcript()
    );
    let dir = repository(&[("spec.md", "# Feature\n\n- FR-001: The app greets.\n")]);
    let out = run_cli(dir.path(), &["run", "spec.md"], &[("PATH", "/nonexistent")]);
    assert!(
        out.stderr.contains(
            "checking the work with `cargo test`, the mission's default: no check command is \
             configured and none was found"
        ),
        "{}",
        out.transcript()
    );
}

#[test]
fn init_never_overwrites_a_file() {
    let dir = project();
    let dot = dir.path().join(".spectacular");
    std::fs::create_dir_all(dot.join("knowledge")).expect("mkdir");
    std::fs::write(dot.join("knowledge/conventions.md"), "# Ours\n").expect("write");
    std::fs::write(dot.join("config.yaml"), "spec_mission: bugfix\n").expect("write");
    let out = run_cli(dir.path(), &["init"], &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(
        out.stdout
            .contains("kept    .spectacular/knowledge/conventions.md (it exists)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_to_string(dot.join("knowledge/conventions.md")).expect("read"),
        "# Ours\n"
    );
    assert_eq!(
        std::fs::read_to_string(dot.join("config.yaml")).expect("read"),
        "spec_mission: bugfix\n"
    );
    // A second init changes nothing either.
    let again = run_cli(dir.path(), &["init"], &[]);
    assert!(!again.stdout.contains("created"), "{}", again.stdout);
}

#[test]
fn committed_config_schema_is_current() {
    assert_committed_schema("config", "config.schema.json");
}
