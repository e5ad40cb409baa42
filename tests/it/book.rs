//! The book's shell examples run: every ```` ```sh ```` block of `book/src/*.md` is marked
//! `sh,test` (run, and must exit 0, or `exit=N`) or `sh,no_run` (shown only: it installs,
//! writes outside the project or is a synopsis with `<placeholders>`); every
//! ```` ```console ```` transcript is `console,test` (each `$ ` line run, its output compared)
//! or `console,no_run` (it needs a real client, or shows run ids and times). The blocks of a page
//! run in order, in one scratch project per page holding a copy of `examples/`, with
//! `spectacular` on `PATH` being the binary under test. A ```` ```<lang>,file=<path> ````
//! block is written to `<path>` in the scratch project before the blocks after it run.
//! See CONTRIBUTING.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{bin, git_init, repo_root};

/// One fenced block of a page.
struct Block {
    line: usize,
    lang: String,
    attrs: Vec<String>,
    body: String,
}

fn blocks(page: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = page.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut parts = info.split(',').map(str::trim);
        let lang = parts.next().unwrap_or("").to_string();
        let attrs = parts.map(str::to_string).collect();
        let mut body = String::new();
        for (_, line) in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        out.push(Block {
            line: n + 1,
            lang,
            attrs,
            body,
        });
    }
    out
}

fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo_root().join("book/src"))
        .expect("read book/src")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory");
    for entry in std::fs::read_dir(from).expect("read a directory").flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy a file");
        }
    }
}

/// A scratch project: a git root with a copy of `examples/`, a private home and user config,
/// and a `bin/` whose `spectacular` is the binary under test.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("project")).expect("create the project");
    std::fs::create_dir_all(root.join("home")).expect("create home");
    std::fs::create_dir_all(root.join("bin")).expect("create bin");
    copy_dir(
        &repo_root().join("examples"),
        &root.join("project/examples"),
    );
    std::os::unix::fs::symlink(bin(), root.join("bin/spectacular")).expect("link the binary");
    // A real repository: missions that work on branches start from a commit.
    git_init(&root.join("project"));
    dir
}

/// What a `sh,test` block must exit with.
fn expected_exit(block: &Block) -> i32 {
    block
        .attrs
        .iter()
        .find_map(|a| a.strip_prefix("exit="))
        .map(|n| n.parse().expect("`exit=` takes a number"))
        .unwrap_or(0)
}

/// Run the tested blocks of one page in a scratch project with `examples/`; returns the
/// failures.
fn run_page(page: &Path) -> Vec<String> {
    run_page_in(page, &scratch)
}

/// The pages whose blocks run in projects of their own rather than beside `examples/`.
const OWN_PROJECTS: &[&str] = &["without-a-model.md"];

/// Run the tested blocks of one page in the scratch project `make` makes (at the first block
/// that needs it); returns the failures.
fn run_page_in(page: &Path, make: &dyn Fn() -> tempfile::TempDir) -> Vec<String> {
    run_page_at(page, make).0
}

/// [`run_page_in`], and the scratch project it ran in.
fn run_page_at(
    page: &Path,
    make: &dyn Fn() -> tempfile::TempDir,
) -> (Vec<String>, Option<tempfile::TempDir>) {
    let name = page.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(page).expect("read a page");
    let mut failures = Vec::new();
    let mut dir = None;
    for block in blocks(&text) {
        let at = format!("book/src/{name}:{}", block.line);
        if let Some(file) = block.attrs.iter().find_map(|a| a.strip_prefix("file=")) {
            let dir = dir.get_or_insert_with(make);
            let path = dir.path().join("project").join(file);
            std::fs::create_dir_all(path.parent().unwrap()).expect("create a directory");
            std::fs::write(&path, &block.body).expect("write a file of the book");
            continue;
        }
        if block.lang != "sh" && block.lang != "console" {
            continue;
        }
        let lang = &block.lang;
        let tested = block.attrs.iter().any(|a| a == "test");
        let shown = block.attrs.iter().any(|a| a == "no_run");
        if tested == shown {
            failures.push(format!(
                "{at}: a ```{lang} block is marked either `{lang},test` or `{lang},no_run`"
            ));
            continue;
        }
        if shown {
            continue;
        }
        let dir = dir.get_or_insert_with(make);
        if block.lang == "console" {
            failures.extend(check_transcript(dir.path(), &block, &at));
            continue;
        }
        let output = shell(dir.path(), &block.body);
        let code = output.status.code().unwrap_or(-1);
        if code != expected_exit(&block) {
            failures.push(format!(
                "{at}: exited with {code}, expected {}\n{}\n--- stdout\n{}--- stderr\n{}",
                expected_exit(&block),
                block.body,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    (failures, dir)
}

/// Run `script` with `sh -e` in the scratch project under `root`.
fn shell(root: &Path, script: &str) -> std::process::Output {
    let path = format!(
        "{}:{}",
        root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-ec", script])
        .current_dir(root.join("project"))
        .env("PATH", path)
        .env("HOME", root.join("home"))
        .env(
            "SPECTACULAR_CONFIG_DIR",
            root.join("home/.config/spectacular"),
        )
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("SPECTACULAR_STORE")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("RUST_LOG")
        .output()
        .expect("run sh")
}

/// A ```` ```console,test ```` block is a transcript: each `$ ` line is run, and what it
/// prints (stdout, then stderr) must be the lines that follow it, exactly.
fn check_transcript(root: &Path, block: &Block, at: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let mut steps: Vec<(String, String)> = Vec::new();
    for line in block.body.lines() {
        match line.strip_prefix("$ ") {
            Some(command) => steps.push((command.to_string(), String::new())),
            None => match steps.last_mut() {
                Some((_, expected)) => {
                    expected.push_str(line);
                    expected.push('\n');
                }
                None => failures.push(format!("{at}: a transcript starts with `$ `")),
            },
        }
    }
    for (command, expected) in steps {
        let output = shell(root, &command);
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if printed.trim_end() != expected.trim_end() {
            failures.push(format!(
                "{at}: `{command}` printed\n{printed}\nbut the book shows\n{expected}"
            ));
        }
    }
    failures
}

#[test]
fn every_shell_example_of_the_book_runs() {
    let mut failures = Vec::new();
    let mut tested = 0;
    for page in pages() {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        if OWN_PROJECTS.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&page).expect("read a page");
        tested += blocks(&text)
            .iter()
            .filter(|b| b.lang == "sh" && b.attrs.iter().any(|a| a == "test"))
            .count();
        failures.extend(run_page(&page));
    }
    assert!(tested > 0, "no tested shell blocks found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The marker of a tested block that fails makes the test fail (so that the test above
/// cannot pass by running nothing).
#[test]
fn a_failing_example_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "```sh,test\nspectacular validate nowhere\n```\n\n```sh,test,exit=2\nspectacular validate nowhere\n```\n\n```sh\nunmarked\n```\n",
    )
    .expect("write a page");
    let failures = run_page(&page);
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(
        failures[0].contains("page.md:1: exited with"),
        "{failures:#?}"
    );
    assert!(
        failures[1].contains("page.md:9: a ```sh block"),
        "{failures:#?}"
    );
    let page = dir.path().join("transcript.md");
    std::fs::write(
        &page,
        "```console,test\n$ echo one\none\n$ echo two\nthree\n```\n",
    )
    .expect("write a page");
    let failures = run_page(&page);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(failures[0].contains("`echo two` printed"), "{failures:#?}");
}

/// The `.gitignore` the book shows for `.spectacular/` is the one shipped in
/// `book/src/files/gitignore`.
#[test]
fn the_book_shows_the_shipped_gitignore() {
    let shipped = std::fs::read_to_string(repo_root().join("book/src/files/gitignore"))
        .expect("read book/src/files/gitignore");
    let page = std::fs::read_to_string(repo_root().join("book/src/committing.md"))
        .expect("read committing.md");
    let shown = blocks(&page)
        .into_iter()
        .find(|b| b.attrs.iter().any(|a| a == "file=.spectacular/.gitignore"))
        .expect("committing.md shows `.spectacular/.gitignore`");
    assert_eq!(shown.body, shipped);
}

/// Files of a repository: path and text.
type Files<'a> = &'a [(&'a str, &'a str)];

/// A scratch project whose repository holds `files` (committed), with a git identity in its
/// private home, as a new user's own repository would be.
fn own_repository(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for sub in ["project", "home", "bin"] {
        std::fs::create_dir_all(root.join(sub)).expect("create a directory");
    }
    for (file, text) in files {
        let path = root.join("project").join(file);
        std::fs::create_dir_all(path.parent().unwrap()).expect("create a directory");
        std::fs::write(path, text).expect("write a file of the repository");
    }
    std::fs::write(
        root.join("home/.gitconfig"),
        "[user]\n\tname = Book\n\temail = book@localhost\n",
    )
    .expect("write .gitconfig");
    std::os::unix::fs::symlink(bin(), root.join("bin/spectacular")).expect("link the binary");
    git_init(&root.join("project"));
    dir
}

/// "Try it on your project without a model", followed word for word on a Python, a Rust and a
/// Node repository: `init` chooses each one's check command, the stand-in agent gets a checked
/// integration branch from the page's spec, and the checkout stays clean until `apply`.
#[test]
fn the_stand_in_agent_runs_on_a_python_a_rust_and_a_node_repository() {
    let page = repo_root().join("book/src/without-a-model.md");
    let repositories: [(&str, Files, &str); 3] = [
        (
            "python",
            &[
                ("app.py", "def greet(name):\n    return f\"Hello, {name}!\"\n"),
                (
                    "tests/test_app.py",
                    "import unittest\n\nfrom app import greet\n\n\nclass Greet(unittest.TestCase):\n    \
                     def test_greet(self):\n        self.assertEqual(greet(\"Ada\"), \"Hello, Ada!\")\n",
                ),
            ],
            "python3 -m unittest discover -s tests",
        ),
        (
            "rust",
            &[
                (
                    "Cargo.toml",
                    "[package]\nname = \"greeter\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
                ),
                (
                    "src/lib.rs",
                    "pub fn greet(name: &str) -> String {\n    format!(\"Hello, {name}!\")\n}\n\n\
                     #[test]\nfn greets() {\n    assert_eq!(greet(\"Ada\"), \"Hello, Ada!\");\n}\n",
                ),
                (".gitignore", "/target\n"),
            ],
            "cargo test",
        ),
        (
            "node",
            &[
                (
                    "package.json",
                    "{\"name\": \"greeter\", \"version\": \"1.0.0\", \"scripts\": {\"test\": \"node --test\"}}\n",
                ),
                ("package-lock.json", "{\"name\": \"greeter\", \"lockfileVersion\": 3}\n"),
                (
                    "greet.js",
                    "exports.greet = (name) => `Hello, ${name}!`;\n",
                ),
                (
                    "test/greet.test.js",
                    "const test = require('node:test');\nconst assert = require('node:assert');\n\
                     const { greet } = require('../greet.js');\n\
                     test('greets', () => assert.strictEqual(greet('Ada'), 'Hello, Ada!'));\n",
                ),
            ],
            "npm run test",
        ),
    ];
    for (name, files, check) in repositories {
        let (failures, dir) = run_page_at(&page, &|| own_repository(files));
        assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n\n"));
        let dir = dir.expect("the page ran");
        let project = dir.path().join("project");
        let store = spectacular::record::Store::locate(&project, None);
        let runs = store.run_ids().expect("runs");
        assert_eq!(runs.len(), 1, "{name}: one run");
        let events = store.read_events(&runs[0]).expect("events");
        let started = events
            .iter()
            .find_map(|e| match &e.data {
                spectacular::record::EventData::RunStarted(s) => Some(s.clone()),
                _ => None,
            })
            .expect("run.started");
        assert_eq!(started.inputs["check_command"], check, "{name}");
        assert!(
            events.iter().any(|e| matches!(
                &e.data,
                spectacular::record::EventData::AttemptSucceeded(a) if a.phase == "check"
            )),
            "{name}: the check ran and passed"
        );
        assert!(
            events.iter().any(|e| matches!(
                &e.data,
                spectacular::record::EventData::AttemptSucceeded(a) if a.phase == "review"
            )),
            "{name}: the review ran"
        );
        assert!(
            matches!(
                events.last().map(|e| &e.data),
                Some(spectacular::record::EventData::RunSucceeded(_))
            ),
            "{name}: the run succeeded"
        );
        // Applied: the notes are in the checkout, committed, and nothing else changed.
        for id in ["FR-001", "FR-002", "SC-001", "SC-002"] {
            let note = std::fs::read_to_string(project.join(format!("todo/{id}.md")))
                .unwrap_or_else(|e| panic!("{name}: todo/{id}.md: {e}"));
            assert!(note.starts_with(&format!("# {id}\n")), "{name}: {note}");
        }
        let status = Command::new("git")
            .args(["status", "--porcelain"])
            .current_dir(&project)
            .output()
            .expect("git status");
        assert!(
            status.stdout.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&status.stdout)
        );
    }
}
