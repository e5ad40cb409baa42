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
    // The commented config is a valid, empty configuration.
    let (config, diagnostics) = spectacular::config::project::load(&dot);
    assert!(diagnostics.is_empty(), "config.yaml has diagnostics");
    assert_eq!(config, Default::default());
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
