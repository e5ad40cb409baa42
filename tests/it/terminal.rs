//! The binary in a real terminal: tmux runs it in a pseudo-terminal of a given size, and the
//! screen tmux keeps is what a person would see. Checked: the live view of a run redraws in
//! place and leaves a clean screen (when the run ends and after Ctrl-C), `NO_COLOR` leaves no
//! escape sequence on it, and at 60 and 200 columns nothing the view or `status` and `runs`
//! draw is broken across rows.
//!
//! tmux is required in CI (`.ci/run` installs it); elsewhere, without it, these tests say so
//! and pass.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::runtime::Project;

/// Phases slow enough for the spinner to be drawn, with names long enough to fill 60 columns,
/// and a fan-out that runs five at once.
const SLOW: &str = r#"
mission: slow
phases:
  prepare-the-workspace-for-the-long-running-work:
    run: [sleep, "0.6"]
  build-every-package:
    needs: [prepare-the-workspace-for-the-long-running-work]
    for_each:
      - alpha-package-with-a-long-name
      - beta-package-with-a-long-name
      - gamma-package-with-a-long-name
      - delta-package-with-a-long-name
      - epsilon-package-with-a-long-name
    max_parallel: 5
    run: [sleep, "1.5"]
  finish:
    needs: [build-every-package]
    run: [sleep, "0.2"]
"#;

/// The spinner's glyphs (indicatif's default tick strings).
const SPINNER: &[char] = &[
    '⠁', '⠂', '⠄', '⡀', '⢀', '⠠', '⠐', '⠈', '⠉', '⠘', '⠰', '⠤', '⠆', '⠃', '⠋', '⠙', '⠸', '⠴', '⠦',
    '⠇',
];

/// One program in a tmux pane of its own (a private server), kept on screen after it exits.
struct Pane {
    socket: String,
    /// Where the program's exit code is written (tmux's own `pane_dead_status` is sometimes
    /// left empty when a program ends quickly).
    exit_file: std::path::PathBuf,
    _config: tempfile::TempDir,
}

impl Pane {
    /// Start `spectacular <args>` in `cwd`, in a terminal `columns` wide, with `env` set.
    fn start(cwd: &Path, columns: u16, env: &[(&str, &str)], args: &[&str]) -> Pane {
        let config = tempfile::tempdir().unwrap();
        let conf = config.path().join("tmux.conf");
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g history-limit 1000\n",
        )
        .unwrap();
        let socket = format!(
            "spectacular-test-{}-{}",
            std::process::id(),
            config.path().file_name().unwrap().to_string_lossy()
        );
        let mut command = Command::new("tmux");
        command
            .args(["-L", &socket, "-f"])
            .arg(&conf)
            .args([
                "new-session",
                "-d",
                "-x",
                &columns.to_string(),
                "-y",
                "40",
                "-c",
            ])
            .arg(cwd)
            .env_remove("TMUX")
            .env_remove("NO_COLOR");
        let config_dir = cwd.join(".user-config");
        let mut vars = vec![
            "TERM=xterm-256color".to_string(),
            format!("SPECTACULAR_CONFIG_DIR={}", config_dir.display()),
        ];
        vars.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        for var in &vars {
            command.args(["-e", var]);
        }
        let exit_file = config.path().join("exit");
        command.args(["-e", &format!("EXIT_FILE={}", exit_file.display())]);
        // The shell waits for the program and writes its exit code; Ctrl-C runs the trap in
        // the shell (a trap, not an ignored signal, so the program gets the default back).
        command
            .args([
                "sh",
                "-c",
                r#"trap : INT; "$0" "$@"; echo $? > "$EXIT_FILE""#,
            ])
            .arg(env!("CARGO_BIN_EXE_spectacular"))
            .args(args);
        let status = command.status().expect("start tmux");
        assert!(status.success(), "tmux new-session failed");
        Pane {
            socket,
            exit_file,
            _config: config,
        }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        assert!(output.status.success(), "tmux {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The whole screen and what scrolled off it: `joined` joins the rows a long line wrapped
    /// onto; `escapes` keeps the colours and attributes as escape sequences. The line tmux
    /// adds when the program ended and the empty rows below the text are left out.
    fn screen(&self, joined: bool, escapes: bool) -> Vec<String> {
        let mut args = vec!["capture-pane", "-p", "-S", "-"];
        if joined {
            args.push("-J");
        }
        if escapes {
            args.push("-e");
        }
        let text = self.tmux(&args);
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with("Pane is dead"))
            .map(|l| l.trim_end().to_string())
            .collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        while lines.first().is_some_and(|l| l.is_empty()) {
            lines.remove(0);
        }
        lines
    }

    /// Wait (bounded) until the screen shows a line for which `seen` holds; that line.
    fn wait_for_line(&self, what: &str, seen: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Some(line) = self.screen(true, false).into_iter().find(|l| seen(l)) {
                return line;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{what} never showed:\n{}",
            self.screen(false, false).join("\n")
        );
    }

    /// Wait (bounded) for the program to end and its pane to close; its exit code.
    fn wait_for_exit(&self) -> i32 {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            let code = std::fs::read_to_string(&self.exit_file).unwrap_or_default();
            let dead = self.tmux(&["display-message", "-p", "#{pane_dead}"]);
            if code.ends_with('\n') && dead.trim() == "1" {
                return code.trim().parse().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the program did not end:\n{}",
            self.screen(false, false).join("\n")
        );
    }

    fn keys(&self, keys: &str) {
        self.tmux(&["send-keys", keys]);
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// Whether these tests can run: tmux is installed. In CI it must be.
fn tmux_here() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is not installed; .ci/run installs it"
        );
        eprintln!("tmux is not installed: the terminal tests are skipped");
    }
    found
}

fn width(line: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(line)
}

/// What a finished run's screen must be, and nothing else: the header, one line per phase and
/// child in some order, the closing line.
fn assert_clean_run_screen(screen: &[String], columns: u16) {
    let text = screen.join("\n");
    assert!(
        screen[0].starts_with("run ") && screen[0].ends_with(" of `slow`"),
        "the header is not the first line:\n{text}"
    );
    let run_id = screen[0].split(' ').nth(1).unwrap();
    let mut expected: Vec<String> = vec![
        "ok        build-every-package".into(),
        "ok        finish (1 attempt)".into(),
        "ok        prepare-the-workspace-for-the-long-running-work (1 attempt)".into(),
    ];
    // The five children, named by their item or by their index.
    let mut middle: Vec<String> = Vec::new();
    let mut children = 0;
    for line in &screen[1..screen.len() - 1] {
        if line.starts_with("ok        build-every-package[") && line.ends_with("] (1 attempt)") {
            children += 1;
        } else {
            middle.push(line.clone());
        }
    }
    middle.sort();
    expected.sort();
    assert_eq!(middle, expected, "{columns} columns:\n{text}");
    assert_eq!(children, 5, "{columns} columns:\n{text}");
    assert_eq!(
        screen[screen.len() - 1],
        format!("run {run_id} succeeded"),
        "{columns} columns:\n{text}"
    );
    assert!(!text.contains(SPINNER), "a spinner is left:\n{text}");
}

#[test]
fn the_live_view_redraws_in_place_and_leaves_a_clean_screen() {
    if !tmux_here() {
        return;
    }
    for columns in [60u16, 200] {
        let p = Project::new(SLOW);
        let pane = Pane::start(p.path(), columns, &[], &["run", "mission.yaml"]);
        // While the fan-out runs, the spinner line names what runs, on one row of its own.
        let spinner = pane.wait_for_line("the spinner over the fan-out", |l| {
            l.contains("running: build-every-package")
        });
        assert!(
            width(&spinner) < usize::from(columns),
            "{columns} columns: the spinner line wraps:\n{spinner}"
        );
        assert_eq!(pane.wait_for_exit(), 0);
        assert_clean_run_screen(&pane.screen(true, false), columns);
        // Colour is on (the `ok` marks), so that the NO_COLOR test below means something.
        let coloured = pane.screen(true, true).join("\n");
        assert!(
            coloured.contains("\u{1b}["),
            "no colour on a terminal:\n{coloured}"
        );
    }
}

#[test]
fn ctrl_c_leaves_no_spinner_behind() {
    if !tmux_here() {
        return;
    }
    for columns in [60u16, 200] {
        let p = Project::new(SLOW);
        let pane = Pane::start(p.path(), columns, &[], &["run", "mission.yaml"]);
        pane.wait_for_line("the spinner over the fan-out", |l| {
            l.contains("running: build-every-package")
        });
        pane.keys("C-c");
        assert_eq!(pane.wait_for_exit(), 130);
        let screen = pane.screen(true, false);
        let text = screen.join("\n");
        assert!(
            screen[0].ends_with(" of `slow`"),
            "{columns} columns:\n{text}"
        );
        assert!(
            !text.contains(SPINNER),
            "{columns} columns: a spinner is left:\n{text}"
        );
        assert!(!text.contains("running:"), "{columns} columns:\n{text}");
        assert!(
            !text.contains("^C"),
            "{columns} columns: the echoed ^C shows:\n{text}"
        );
        assert!(
            screen
                .last()
                .unwrap()
                .contains(" canceled; resume it with "),
            "{columns} columns:\n{text}"
        );
        // Every line is one the view printed whole: a line of its own, not a piece of another.
        for line in &screen[1..] {
            let known = ["ok ", "attempt ", "canceling", "run "];
            assert!(
                known.iter().any(|k| line.starts_with(k)),
                "{columns} columns: stray line `{line}`:\n{text}"
            );
        }
    }
}

#[test]
fn no_color_means_no_escape_sequences() {
    if !tmux_here() {
        return;
    }
    let p = Project::new(SLOW);
    let pane = Pane::start(
        p.path(),
        100,
        &[("NO_COLOR", "1")],
        &["run", "mission.yaml"],
    );
    assert_eq!(pane.wait_for_exit(), 0);
    let screen = pane.screen(true, true);
    assert_clean_run_screen(&pane.screen(true, false), 100);
    let text = screen.join("\n");
    assert!(
        !text.contains('\u{1b}'),
        "an escape sequence with NO_COLOR:\n{text:?}"
    );
    for args in [
        &["status"][..],
        &["runs"],
        &["events"],
        &["status", "--color", "auto"],
    ] {
        let pane = Pane::start(p.path(), 100, &[("NO_COLOR", "1")], args);
        assert_eq!(pane.wait_for_exit(), 0, "{args:?}");
        let text = pane.screen(true, true).join("\n");
        assert!(
            !text.contains('\u{1b}'),
            "{args:?} with NO_COLOR:\n{text:?}"
        );
    }
}

/// `status` and `runs` fit 60 columns (notes under their row, long names cut with `…`) and show
/// everything whole at 200.
#[test]
fn status_and_runs_fit_60_and_200_columns() {
    if !tmux_here() {
        return;
    }
    let p = Project::new(SLOW);
    let run = p.run(&["run", "mission.yaml"]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    for columns in [60u16, 200] {
        for args in [&["status"][..], &["runs"]] {
            let pane = Pane::start(p.path(), columns, &[("NO_COLOR", "1")], args);
            assert_eq!(pane.wait_for_exit(), 0);
            let joined = pane.screen(true, false);
            let text = joined.join("\n");
            // Joined rows are the lines as printed: none may be wider than the terminal.
            for line in &joined {
                assert!(
                    width(line) <= usize::from(columns),
                    "{args:?} at {columns} columns: `{line}` wraps:\n{text}"
                );
            }
            if args == ["status"] {
                let phase_rows: Vec<&String> = joined
                    .iter()
                    .filter(|l| {
                        l.contains("succeeded") && !l.starts_with("run ") && !l.starts_with(' ')
                    })
                    .collect();
                assert_eq!(phase_rows.len(), 3, "{columns} columns:\n{text}");
                assert!(text.contains("5 items: 5 succeeded"), "{columns}:\n{text}");
                let long = "prepare-the-workspace-for-the-long-running-work";
                if columns == 200 {
                    assert!(text.contains(long), "{text}");
                } else {
                    assert!(
                        phase_rows[0].starts_with("prepare-the-") && phase_rows[0].contains('…'),
                        "{text}"
                    );
                }
            } else {
                assert!(text.contains(&p.run_id()), "{columns} columns:\n{text}");
            }
        }
    }
}
