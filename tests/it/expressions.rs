//! Hostile expressions and templates end to end: each attack ends in a clear, recorded error
//! (never a hang and never an abort), whatever the phase evaluates.

use std::path::Path;
use std::process::{Command, Output};

use spectacular::record::{EventData, Store};

fn run(mission: &str) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(".spectacular")).unwrap();
    std::fs::write(dir.path().join("mission.yaml"), mission).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spectacular"))
        .args(["run", "mission.yaml"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("SPECTACULAR_STORE")
        .output()
        .expect("spawn spectacular");
    (dir, out)
}

/// The failure message recorded for `phase`.
fn failure(dir: &Path, phase: &str) -> String {
    let store = Store::locate(dir, None);
    let id = store.run_ids().unwrap().last().cloned().expect("a run");
    let events = store.read_events(&id).unwrap();
    events
        .iter()
        .find_map(|e| match &e.data {
            EventData::PhaseFailed(f) if f.phase == phase => Some(f.message.clone()),
            EventData::AttemptFailed(a) if a.phase == phase => Some(a.message.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no failure recorded for `{phase}`: {events:#?}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A mission whose `vars.a` and `vars.b` are `0..n` and whose phase `check` has
/// `key: expression`.
fn with_array(n: usize, key: &str, expression: &str) -> String {
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!(
        "mission: hostile\nvars:\n  a: [{0}]\n  b: [{0}]\nphases:\n  check:\n    uses: builtin/noop\n    {key}: '{expression}'\n",
        items.join(", ")
    )
}

fn assert_stopped(message: &str) {
    assert!(
        message.contains("operation limit exceeded")
            || message.contains("wall-clock limit exceeded"),
        "{message}"
    );
}

#[test]
fn nested_closures_in_an_if_end_in_a_clear_error() {
    let (dir, out) = run(&with_array(
        3_000,
        "if",
        "(vars.a + []).all(|i| vars.b.all(|j| true))",
    ));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = failure(dir.path(), "check");
    assert_stopped(&message);
    assert!(
        message.contains("vars.b.all"),
        "names the expression: {message}"
    );
}

#[test]
fn nested_closures_in_a_for_each_end_in_a_clear_error() {
    let (dir, out) = run(&with_array(
        3_000,
        "for_each",
        "(vars.a + []).filter(|i| vars.b.all(|j| true))",
    ));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_stopped(&failure(dir.path(), "check"));
}

#[test]
fn a_replace_that_would_need_a_terabyte_is_a_size_error_not_an_abort() {
    let half = "a".repeat(500_000);
    let mission = format!(
        "mission: hostile\nvars:\n  s: {half}\nphases:\n  check:\n    uses: builtin/noop\n    if: '(vars.s + vars.s).replace(\"a\", vars.s + vars.s) == ()'\n"
    );
    let (dir, out) = run(&mission);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not an abort (134): {}",
        text(&out)
    );
    let message = failure(dir.path(), "check");
    assert!(message.contains("size limit exceeded"), "{message}");
}

#[test]
fn an_if_cannot_read_the_clock() {
    let (dir, out) = run(
        "mission: hostile\nphases:\n  check:\n    uses: builtin/noop\n    if: timestamp().elapsed > 0.0\n",
    );
    let message = if out.status.code() == Some(1) && text(&out).contains("timestamp") {
        text(&out)
    } else {
        failure(dir.path(), "check")
    };
    assert!(message.contains("timestamp"), "{message}");
}

#[test]
fn nested_ranges_in_a_shell_template_run_out_of_fuel() {
    let (dir, out) = run(
        "mission: hostile\nphases:\n  check:\n    shell: \"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}true\"\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = failure(dir.path(), "check");
    assert!(message.contains("template limit exceeded"), "{message}");
}

#[test]
fn recorded_data_reaches_the_shell_as_one_word_with_q() {
    let hostile = "it's $(echo pwned) `id`\n\"x\"; rm -rf /nonexistent";
    let mission = format!(
        "mission: quoting\nvars:\n  x: {}\nphases:\n  echo:\n    shell: 'test \"$(printf %s {{{{ vars.x | q }}}})\" = {{{{ vars.x | shell_quote }}}}'\n",
        serde_json::to_string(hostile).unwrap()
    );
    let (_dir, out) = run(&mission);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
