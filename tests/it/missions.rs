//! Everything we ship or show must validate clean: every mission under `missions/`,
//! `examples/` and `policies/` (as they appear) and the valid test fixtures, with no
//! diagnostics at all — warnings included.

use std::path::Path;

use spectacular::diag::{render_text, RenderOptions};
use spectacular::load::{self, yaml};

use crate::support::{relative, repo_root, validate_file, walk};

const SHIPPED: &[&str] = &["missions", "examples", "policies", "tests/fixtures/valid"];

/// Is this YAML file a mission? `mission.yaml` always is; another `*.yaml` is when its
/// top level has a `mission:` key (policy packs and other files are not).
fn is_mission(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name == "mission.yaml" || name == "mission.yml" {
        return true;
    }
    if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    yaml::parse(&text, name)
        .root
        .is_some_and(|root| root.get("mission").is_some())
}

fn shipped_missions() -> Vec<String> {
    let root = repo_root();
    SHIPPED
        .iter()
        .flat_map(|dir| walk(&root.join(dir)))
        .filter(|p| is_mission(p))
        .map(|p| relative(&p))
        .collect()
}

#[test]
fn every_shipped_mission_validates_clean() {
    let missions = shipped_missions();
    assert!(
        missions
            .iter()
            .any(|m| m == "missions/software-dev/mission.yaml"),
        "the walk found no built-in mission: {missions:?}"
    );
    let mut dirty = Vec::new();
    for file in &missions {
        let validated = validate_file(file);
        if !validated.diagnostics.is_empty() || validated.mission.is_none() {
            dirty.push(render_text(
                &validated.diagnostics,
                RenderOptions::default(),
            ));
        }
    }
    assert!(
        dirty.is_empty(),
        "shipped missions must validate without any diagnostic:\n\n{}",
        dirty.join("\n")
    );
}

/// The built-in missions, loaded by name from the binary, are the same files and also clean.
#[test]
fn built_in_missions_validate_clean_by_name() {
    let cwd = repo_root();
    let temp = tempfile::tempdir().expect("temp dir");
    // Built-in missions are listed whatever the working directory.
    let builtins: Vec<String> = load::list(temp.path())
        .into_iter()
        .filter(|m| m.origin == load::Origin::Builtin)
        .map(|m| m.name)
        .collect();
    assert!(builtins.iter().any(|n| n == "software-dev"), "{builtins:?}");
    for name in builtins {
        // Built by hand rather than by `locate`, so that no project or user mission of the
        // same name can shadow the built-in one.
        let located = load::Located {
            display: format!("builtin:missions/{name}/mission.yaml"),
            origin: load::Origin::Builtin,
            base: load::Base::Builtin(name.clone()),
            path: None,
        };
        let loaded = load::load(located).expect("built-in mission loads");
        let on_disk =
            std::fs::read_to_string(cwd.join("missions").join(&name).join("mission.yaml"))
                .expect("built-in mission exists on disk");
        assert_eq!(&*loaded.source.text, on_disk, "`{name}` is embedded stale");
        let validated = spectacular::validate::validate(&loaded, temp.path());
        assert!(
            validated.diagnostics.is_empty(),
            "{}",
            render_text(&validated.diagnostics, RenderOptions::default())
        );
        let mission = validated.mission.expect("a clean mission builds");
        let plan = spectacular::plan::plan(mission);
        assert_eq!(
            plan.layers().iter().map(Vec::len).sum::<usize>(),
            plan.len(),
            "every phase sits in exactly one layer"
        );
    }
}

/// `missions diff`: an ejected copy against the built-in mission: exit 0 when the same, 1
/// with a unified diff per changed file when not, 2 when there is nothing to compare.
#[test]
fn missions_diff_compares_an_ejected_copy_with_the_built_in() {
    use crate::support::run_cli;
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    std::fs::create_dir_all(dir.join(".spectacular")).unwrap();

    let none = run_cli(dir, &["missions", "diff", "research"], &[]);
    assert_eq!(none.code, 2, "{}", none.transcript());
    assert!(
        none.stderr.contains("no ejected copy of `research`")
            && none.stderr.contains("spectacular missions eject research"),
        "{}",
        none.stderr
    );
    let unknown = run_cli(dir, &["missions", "diff", "no-such-mission"], &[]);
    assert_eq!(unknown.code, 2, "{}", unknown.transcript());
    assert!(
        unknown.stderr.contains("no built-in mission named"),
        "{}",
        unknown.stderr
    );

    let eject = run_cli(dir, &["missions", "eject", "research"], &[]);
    assert_eq!(eject.code, 0, "{}", eject.transcript());
    let same = run_cli(dir, &["missions", "diff", "research"], &[]);
    assert_eq!(same.code, 0, "{}", same.transcript());
    assert!(
        same.stdout.contains("is the same as the built-in"),
        "{}",
        same.stdout
    );

    // The copy drifts: one line of the mission changed, a template removed, a file added.
    let copy = dir.join(".spectacular/missions/research");
    let yaml = std::fs::read_to_string(copy.join("mission.yaml")).unwrap();
    let changed = yaml.replace("max_questions: 6\n", "max_questions: 4\n");
    assert_ne!(changed, yaml, "the mission has `max_questions: 6`");
    std::fs::write(copy.join("mission.yaml"), &changed).unwrap();
    std::fs::remove_file(copy.join("templates/synthesize.md.j2")).unwrap();
    std::fs::write(copy.join("templates/extra.md.j2"), "mine\n").unwrap();
    let differs = run_cli(dir, &["missions", "diff", "research"], &[]);
    assert_eq!(differs.code, 1, "{}", differs.transcript());
    crate::support::assert_goldens(
        crate::support::golden(
            Path::new("tests/fixtures/cli/missions-diff.txt"),
            &format!(
                "$ spectacular missions diff research\n{}",
                differs.transcript()
            ),
        )
        .err()
        .into_iter()
        .collect(),
    );
    let out = &differs.stdout;
    assert!(
        out.contains(
            "--- .spectacular/missions/research/mission.yaml\n\
             +++ builtin:missions/research/mission.yaml\n"
        ),
        "{out}"
    );
    let hunk = out.split("@@ ").nth(1).expect("a hunk for mission.yaml");
    assert!(
        hunk.contains("\n-  max_questions: 4\n+  max_questions: 6\n"),
        "{out}"
    );
    assert!(
        out.contains("--- /dev/null\n+++ builtin:missions/research/templates/synthesize.md.j2\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "--- .spectacular/missions/research/templates/extra.md.j2\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-mine\n"
        ),
        "{out}"
    );
    // Applying the diff to the copy gives back the built-in mission, line for line.
    let builtin =
        std::fs::read_to_string(repo_root().join("missions/research/mission.yaml")).unwrap();
    let mission_diff = out.split("--- ").nth(1).unwrap();
    let patched = apply(&changed, mission_diff);
    assert_eq!(patched, builtin);
}

/// Apply a one-file unified diff (as `missions diff` prints it) to `old`.
fn apply(old: &str, diff: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut at = 0;
    for hunk in diff.split("\n@@ -").skip(1) {
        let start: usize = hunk.split([',', ' ']).next().unwrap().parse().unwrap();
        while at + 1 < start {
            out.push(old[at].to_string());
            at += 1;
        }
        for line in hunk.lines().skip(1) {
            match line.split_at(1) {
                (" ", rest) => {
                    out.push(rest.to_string());
                    at += 1;
                }
                ("-", _) => at += 1,
                ("+", rest) => out.push(rest.to_string()),
                _ => break,
            }
        }
    }
    out.extend(old[at..].iter().map(|l| l.to_string()));
    out.join("\n") + "\n"
}
