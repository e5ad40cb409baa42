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
