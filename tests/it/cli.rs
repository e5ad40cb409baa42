//! The command line as users see it: the built binary run with `NO_COLOR=1` in a controlled
//! working directory, exit code + stdout + stderr compared with goldens under
//! `tests/fixtures/cli/` (`SPECTACULAR_BLESS=1` rewrites them).

use std::path::Path;

use crate::support::{assert_goldens, golden, repo_root, run_cli, Output};

const GOLDENS: &str = "tests/fixtures/cli";

/// The one check of this family: run `args` in `cwd`, expect `code`, compare the transcript
/// with the golden `<name>.txt`. Mismatches are collected so that one run shows them all.
fn check(failures: &mut Vec<String>, name: &str, cwd: &Path, args: &[&str], code: i32) -> Output {
    let output = run_cli(cwd, args, &[]);
    if output.code != code {
        failures.push(format!(
            "`spectacular {}` exited {} instead of {code}\n{}",
            args.join(" "),
            output.code,
            output.transcript()
        ));
    }
    let transcript = format!("$ spectacular {}\n{}", args.join(" "), output.transcript());
    if let Err(e) = golden(&Path::new(GOLDENS).join(format!("{name}.txt")), &transcript) {
        failures.push(e);
    }
    output
}

#[test]
fn validate_goldens() {
    let root = repo_root();
    let mut failures = Vec::new();
    let f = &mut failures;
    check(
        f,
        "validate-valid",
        &root,
        &["validate", "missions/software-dev"],
        0,
    );
    check(
        f,
        "validate-by-name",
        &root,
        &["validate", "software-dev"],
        0,
    );
    check(
        f,
        "validate-invalid",
        &root,
        &["validate", "tests/fixtures/diagnostics/M2003/mission.yaml"],
        65,
    );
    check(
        f,
        "validate-invalid-json",
        &root,
        &[
            "validate",
            "--format",
            "json",
            "tests/fixtures/diagnostics/M2003",
        ],
        65,
    );
    check(
        f,
        "validate-valid-json",
        &root,
        &["validate", "--format", "json", "missions/software-dev"],
        0,
    );
    check(
        f,
        "validate-warning",
        &root,
        &["validate", "tests/fixtures/diagnostics/M2017"],
        0,
    );
    check(
        f,
        "validate-deny-warnings",
        &root,
        &[
            "validate",
            "--deny-warnings",
            "tests/fixtures/diagnostics/M2017",
        ],
        65,
    );
    assert_goldens(failures);
}

#[test]
fn usage_errors_exit_2() {
    let root = repo_root();
    let mut failures = Vec::new();
    let f = &mut failures;
    check(
        f,
        "usage-unknown-flag",
        &root,
        &["validate", "--frobnicate", "x"],
        2,
    );
    check(f, "usage-no-subcommand", &root, &[], 2);
    check(
        f,
        "usage-bad-format",
        &root,
        &["graph", "--format", "svg", "software-dev"],
        2,
    );
    let typo = check(
        f,
        "usage-mission-typo",
        &root,
        &["validate", "softwre-dev"],
        2,
    );
    assert!(
        typo.stderr.contains("did you mean `software-dev`?"),
        "{}",
        typo.stderr
    );
    let unknown = check(
        f,
        "usage-mission-unknown",
        &root,
        &["validate", "nothing-like-it"],
        2,
    );
    assert!(
        unknown.stderr.contains("spectacular missions list"),
        "{}",
        unknown.stderr
    );
    check(
        f,
        "usage-missing-file",
        &root,
        &["validate", "missions/no-such/mission.yaml"],
        2,
    );
    assert_goldens(failures);
}

#[test]
fn graph_goldens() {
    let root = repo_root();
    let mut failures = Vec::new();
    let f = &mut failures;
    check(
        f,
        "graph-dot",
        &root,
        &["graph", "software-dev", "--format", "dot"],
        0,
    );
    check(
        f,
        "graph-mermaid",
        &root,
        &["graph", "software-dev", "--format", "mermaid"],
        0,
    );
    check(
        f,
        "graph-default",
        &root,
        &["graph", "tests/fixtures/valid/fan-out"],
        0,
    );
    check(
        f,
        "graph-invalid",
        &root,
        &["graph", "tests/fixtures/diagnostics/M2010"],
        65,
    );
    assert_goldens(failures);
}

/// The committed schema is what the binary prints (the drift test).
#[test]
fn committed_mission_schema_is_current() {
    let committed = crate::support::assert_committed_schema("mission", "mission.schema.json");
    let parsed: serde_json::Value = serde_json::from_str(&committed).expect("schema is JSON");
    assert!(parsed["properties"]["phases"].is_object(), "{parsed}");
}

#[test]
fn missions_list_show_and_eject() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    let mut failures = Vec::new();
    let f = &mut failures;
    let listed = check(f, "missions-list-builtin", dir, &["missions", "list"], 0);
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with("software-dev") && l.contains("built-in")),
        "{}",
        listed.stdout
    );
    let json = run_cli(dir, &["missions", "list", "--json"], &[]);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON list");
    assert!(parsed
        .as_array()
        .expect("a list")
        .iter()
        .any(|m| m["name"] == "software-dev" && m["origin"] == "builtin"));

    // A project mission of the same name shadows the built-in one.
    let project = dir.join(".spectacular/missions/software-dev");
    std::fs::create_dir_all(&project).expect("create project mission dir");
    std::fs::write(
        project.join("mission.yaml"),
        "mission: software-dev\ndescription: Our own flavour\nphases:\n  build:\n    run: [make]\n",
    )
    .expect("write project mission");
    let shadowed = check(f, "missions-list-shadowed", dir, &["missions", "list"], 0);
    assert!(
        shadowed.stdout.contains("project") && shadowed.stdout.contains("(shadowed)"),
        "{}",
        shadowed.stdout
    );
    check(
        f,
        "missions-validate-project",
        dir,
        &["validate", "software-dev"],
        0,
    );
    check(
        f,
        "missions-show-project",
        dir,
        &["missions", "show", "software-dev"],
        0,
    );
    check(
        f,
        "missions-eject-exists",
        dir,
        &["missions", "eject", "software-dev"],
        2,
    );
    std::fs::remove_dir_all(dir.join(".spectacular")).expect("remove project missions");

    // Eject copies every file of the built-in mission into the project.
    check(
        f,
        "missions-eject",
        dir,
        &["missions", "eject", "software-dev"],
        0,
    );
    let ejected = dir.join(".spectacular/missions/software-dev");
    for file in [
        "mission.yaml",
        "templates/plan.md.j2",
        "templates/implement.md.j2",
        "templates/review.md.j2",
    ] {
        let copy = std::fs::read_to_string(ejected.join(file)).expect("ejected file");
        let original =
            std::fs::read_to_string(repo_root().join("missions/software-dev").join(file))
                .expect("original file");
        assert_eq!(copy, original, "{file}");
    }
    check(
        f,
        "missions-eject-validates",
        dir,
        &["validate", "software-dev"],
        0,
    );
    check(
        f,
        "missions-eject-again",
        dir,
        &["missions", "eject", "software-dev"],
        2,
    );
    check(
        f,
        "missions-eject-force",
        dir,
        &["missions", "eject", "--force", "software-dev"],
        0,
    );
    check(
        f,
        "missions-eject-unknown",
        dir,
        &["missions", "eject", "no-such"],
        2,
    );
    check(
        f,
        "missions-show-unknown",
        dir,
        &["missions", "show", "no-such"],
        2,
    );
    assert_goldens(failures);
}

/// Every command's `--help` ends with examples, and each example is a command line this
/// build accepts (the words from `spectacular` up to a redirection or a pipe), at least one of
/// them of the command itself. Commands added later are held to the same.
#[test]
fn every_command_has_examples_that_parse() {
    fn walk(command: &clap::Command, path: Vec<String>, failures: &mut Vec<String>) {
        let shown = path.join(" ");
        let after = command
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        let examples: Vec<Vec<String>> = after
            .split_once("Examples:\n")
            .map(|(_, rest)| rest)
            .unwrap_or("")
            .lines()
            .take_while(|l| l.starts_with("  "))
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.find("spectacular ").map(|at| words(&l[at..])))
            .collect();
        if examples.len() < 2 {
            failures.push(format!(
                "`{shown} --help` shows {} examples, not 2 or 3",
                examples.len()
            ));
        }
        let mut own = false;
        for example in &examples {
            match spectacular::cli::Cli::command().try_get_matches_from(example) {
                Ok(matches) => {
                    let mut used = vec!["spectacular".to_string()];
                    let mut m = &matches;
                    while let Some((name, sub)) = m.subcommand() {
                        used.push(name.to_string());
                        m = sub;
                    }
                    own |= used.starts_with(&path);
                }
                Err(e) => failures.push(format!(
                    "`{shown}`: `{}` does not parse: {e}",
                    example.join(" ")
                )),
            }
        }
        if !examples.is_empty() && !own {
            failures.push(format!("no example of `{shown}` runs `{shown}`"));
        }
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut path = path.clone();
            path.push(sub.get_name().to_string());
            walk(sub, path, failures);
        }
    }
    /// Split an example line into words: quotes group, a redirection or a pipe ends it.
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut word = String::new();
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '"' => quoted = !quoted,
                ' ' if !quoted => {
                    if !word.is_empty() {
                        out.push(std::mem::take(&mut word));
                    }
                }
                '>' | '|' | ')' if !quoted => break,
                c => word.push(c),
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
        out
    }
    use clap::CommandFactory;
    let mut failures = Vec::new();
    let mut root = spectacular::cli::Cli::command();
    root.build();
    walk(&root, vec!["spectacular".to_string()], &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The options every command takes are listed under their own heading, apart from the
/// command's own options.
#[test]
fn global_options_stand_apart() {
    let output = run_cli(&repo_root(), &["approve", "--help"], &[]);
    assert_eq!(output.code, 0, "{}", output.transcript());
    let (own, global) = output
        .stdout
        .split_once("Global options:\n")
        .expect("a `Global options:` heading");
    let global = global.split("\n\n").next().unwrap_or_default();
    for flag in ["--reject", "--comment"] {
        assert!(
            own.contains(flag) && !global.contains(flag),
            "{flag}: {}",
            output.stdout
        );
    }
    for flag in ["--help", "--version", "--verbose", "--color", "--store"] {
        assert!(
            global.contains(flag) && !own.contains(flag),
            "{flag}: {}",
            output.stdout
        );
    }
}

#[test]
fn version_and_help() {
    let root = repo_root();
    for flag in ["--version", "-V"] {
        let version = run_cli(&root, &[flag], &[]);
        assert_eq!(version.code, 0, "{flag}");
        assert_eq!(
            version.stdout,
            format!("spectacular {}\n", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
    // With more on the line, clap answers (here for the subcommand).
    let version = run_cli(&root, &["validate", "--version"], &[]);
    assert_eq!(version.code, 0);
    assert_eq!(
        version.stdout.trim(),
        format!("spectacular-validate {}", env!("CARGO_PKG_VERSION"))
    );
    let mut failures = Vec::new();
    let f = &mut failures;
    check(f, "help", &root, &["--help"], 0);
    for sub in [
        &["validate"][..],
        &["graph"],
        &["schema"],
        &["missions"],
        &["missions", "list"],
        &["missions", "show"],
        &["missions", "eject"],
        &["completions"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        check(f, &format!("help-{}", sub.join("-")), &root, &args, 0);
    }
    assert_goldens(failures);
}

/// `--color always` colours diagnostics even when not on a terminal; `NO_COLOR` (set by
/// `run_cli`) keeps `auto` plain.
#[test]
fn colour_is_opt_in_off_a_terminal() {
    let root = repo_root();
    let fixture = "tests/fixtures/diagnostics/M2003";
    let plain = run_cli(&root, &["validate", fixture], &[]);
    assert!(!plain.stdout.contains('\u{1b}'), "{}", plain.stdout);
    let coloured = run_cli(&root, &["validate", "--color", "always", fixture], &[]);
    assert!(coloured.stdout.contains("\u{1b}["), "{}", coloured.stdout);
    assert_eq!(coloured.code, 65);
}

#[test]
fn committed_models_schema_is_current() {
    crate::support::assert_committed_schema("models", "models.schema.json");
}

#[test]
fn committed_agents_schema_is_current() {
    crate::support::assert_committed_schema("agents", "agents.schema.json");
}
