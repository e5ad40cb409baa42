//! Shell completion of real values: run ids and `last`, mission names of every layer, the gates
//! of a run that wait, phases and policy packs; through bash itself, and through the callback
//! the zsh, fish and PowerShell scripts make. A completion call reads directories and small
//! files only: it never creates the store or the SQLite projection.

use std::path::Path;
use std::process::Command;

use crate::runtime::Project;

/// A run that waits at its second gate, the first approved; a project mission, a user mission
/// and a project policy pack beside it.
fn project() -> Project {
    let p = Project::new(
        "
mission: gates
phases:
  build: { run: [echo, built] }
  first-gate: { needs: [build], approval: { reason: look at the build } }
  second-gate: { needs: [first-gate], approval: { reason: ship it? } }
  deploy: { needs: [second-gate], run: [echo, deploy] }
",
    );
    let dir = p.path();
    let write = |relative: &str, text: &str| {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        ".spectacular/missions/our-release/mission.yaml",
        "mission: our-release\nphases:\n  a: { run: [echo, a] }\n",
    );
    write(
        "user-config/missions/my-triage/mission.yaml",
        "mission: my-triage\nphases:\n  a: { run: [echo, a] }\n",
    );
    write(
        ".spectacular/policies/team-pack/pack.yaml",
        "name: team-routing\nversion: 1.0.0\ndescription: routes nothing\nhooks: [route]\n",
    );
    write(
        ".spectacular/policies/team-pack/policy.rhai",
        "fn route(ctx) { () }\n",
    );
    let env = [("SPECTACULAR_CONFIG_DIR", dir.join("user-config"))];
    let run = p
        .command(&["run", "mission.yaml"])
        .envs(env.clone())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(3), "{run:?}");
    let run_id = p.run_id();
    let approve = p
        .command(&["approve", &run_id, "first-gate", "--resume"])
        .output()
        .unwrap();
    assert_eq!(approve.status.code(), Some(3), "{approve:?}");
    p
}

/// What the fish script gets back for `words` (the last one is being completed): the values,
/// in order, without their descriptions.
fn complete(dir: &Path, words: &[&str]) -> Vec<String> {
    complete_with(dir, words, &[])
}

fn complete_with(dir: &Path, words: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let output = callback(dir, "fish", words, env);
    output
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
}

/// Call the binary as a shell's script does: `SPECTACULAR_COMPLETE=<shell> spectacular --
/// spectacular <words…>`, with the index of the word being completed for the shells that pass
/// it.
fn callback(dir: &Path, shell: &str, words: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spectacular"));
    command
        .current_dir(dir)
        .env("SPECTACULAR_COMPLETE", shell)
        .env("SPECTACULAR_CONFIG_DIR", dir.join("user-config"))
        .env("_CLAP_COMPLETE_INDEX", words.len().to_string())
        .env("_CLAP_IFS", "\n")
        .env_remove("SPECTACULAR_STORE")
        .arg("--")
        .arg("spectacular")
        .args(words);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run the completion callback");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn values(list: &[String]) -> Vec<&str> {
    list.iter()
        .map(String::as_str)
        .filter(|v| !v.starts_with('-'))
        .collect()
}

#[test]
fn completes_runs_missions_gates_phases_and_packs() {
    let p = project();
    let dir = p.path();
    let run_id = p.run_id();
    // Nothing the completion calls below do may create the projection.
    std::fs::remove_file(dir.join(".spectacular/state.db")).unwrap();

    // Run ids: `last`, then the ids (newest first); a prefix of any case narrows them.
    assert_eq!(
        values(&complete(dir, &["status", ""])),
        ["last", run_id.as_str()]
    );
    let prefix = run_id[..6].to_ascii_lowercase();
    assert_eq!(complete(dir, &["resume", &prefix]), [run_id.as_str()]);
    assert_eq!(complete(dir, &["cancel", "la"]), ["last"]);

    // The gates of the run on the line that wait: not the one approved, nor other phases.
    assert_eq!(
        values(&complete(dir, &["approve", "last", ""])),
        ["second-gate"]
    );
    assert_eq!(
        values(&complete(dir, &["approve", &run_id[..8], "sec"])),
        ["second-gate"]
    );
    // Phases of the run (the latest when the line names none).
    assert_eq!(
        values(&complete(dir, &["events", "--phase", ""])),
        ["build", "first-gate", "second-gate", "deploy"]
    );
    assert_eq!(
        values(&complete(dir, &["policy", "explain", "last", "fi"])),
        ["first-gate"]
    );

    // Mission names of every layer, each once; paths when the word looks like one.
    let missions = complete(dir, &["run", ""]);
    for name in ["our-release", "my-triage", "software-dev"] {
        assert!(missions.iter().any(|m| m == name), "{name}: {missions:?}");
    }
    assert_eq!(complete(dir, &["validate", "our"]), ["our-release"]);
    assert_eq!(complete(dir, &["graph", "./miss"]), ["./mission.yaml"]);
    // `missions eject` takes built-in missions only.
    assert!(!complete(dir, &["missions", "eject", ""]).contains(&"our-release".to_string()));
    assert_eq!(complete(dir, &["missions", "show", "my"]), ["my-triage"]);

    // Policy packs: built-in ones and the project's, by the name in its manifest.
    let packs = complete(dir, &["replay", "--policies", ""]);
    for name in ["team-routing", "budget-guard", "security-review"] {
        assert!(packs.iter().any(|m| m == name), "{name}: {packs:?}");
    }
    assert_eq!(complete(dir, &["policy", "test", "team"]), ["team-routing"]);

    // `--store` on the line, or SPECTACULAR_STORE, says where the runs are.
    let elsewhere = tempfile::tempdir().unwrap();
    assert!(values(&complete(elsewhere.path(), &["status", ""])).is_empty());
    let store = dir.join(".spectacular");
    let store = store.to_str().unwrap();
    assert_eq!(
        complete(elsewhere.path(), &["--store", store, "status", "la"]),
        ["last"]
    );
    assert_eq!(
        complete_with(
            elsewhere.path(),
            &["status", "la"],
            &[("SPECTACULAR_STORE", store)]
        ),
        ["last"]
    );

    assert!(
        !dir.join(".spectacular/state.db").exists(),
        "a completion call opened the SQLite projection"
    );
    assert!(
        !elsewhere.path().join(".spectacular").exists(),
        "a completion call created a store"
    );
}

/// Bash itself: the script `spectacular completions bash` prints, sourced, completes a run's
/// waiting gate when its function is called the way bash calls it on Tab.
#[test]
fn bash_completes_through_its_script() {
    let p = project();
    let bin = env!("CARGO_BIN_EXE_spectacular");
    let script = r#"
source <("$BIN" completions bash)
complete -p spectacular >/dev/null || exit 9
COMP_WORDS=(spectacular approve last "")
COMP_CWORD=3
COMP_TYPE=9
_clap_complete_spectacular spectacular "" last
printf '%s\n' "${COMPREPLY[@]}"
COMP_WORDS=(spectacular sta)
COMP_CWORD=1
_clap_complete_spectacular spectacular sta spectacular
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let output = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", script])
        .current_dir(p.path())
        .env("BIN", bin)
        .env("SPECTACULAR_CONFIG_DIR", p.path().join("user-config"))
        .env_remove("SPECTACULAR_STORE")
        .output()
        .expect("run bash");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let values: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('-')).collect();
    assert_eq!(values, ["second-gate", "status"], "{output:?}");
}

/// Every shell's script calls the binary back with our variable, and the binary answers in
/// that shell's format (zsh: `value:help`; fish: `value<TAB>help`; PowerShell: one per line).
#[test]
fn every_shell_gets_a_script_and_answers() {
    let p = project();
    let bin = env!("CARGO_BIN_EXE_spectacular");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = Command::new(bin)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains("SPECTACULAR_COMPLETE"), "{shell}: {script}");
        assert!(
            script.contains(bin),
            "{shell} does not call the binary back: {script}"
        );
    }
    let dir = p.path();
    let zsh = callback(dir, "zsh", &["approve", "last", ""], &[]);
    assert!(
        zsh.lines().any(|l| l == "second-gate:waits: ship it?"),
        "{zsh}"
    );
    let fish = callback(dir, "fish", &["approve", "last", ""], &[]);
    assert!(
        fish.lines().any(|l| l == "second-gate\twaits: ship it?"),
        "{fish}"
    );
    let powershell = callback(dir, "powershell", &["approve", "last", ""], &[]);
    assert!(
        powershell.lines().any(|l| l.starts_with("second-gate")),
        "{powershell}"
    );
    let unknown = Command::new(bin)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}
