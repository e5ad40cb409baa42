//! What a repository says about its conventions: languages (by files), package managers and
//! their commands (test, lint, format), CI files, and the instructions it has for agents and
//! editors. Reads a bounded number of directory entries and small files only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Directory entries looked at, at most.
const MAX_ENTRIES: usize = 20_000;
/// How deep the walk goes.
const MAX_DEPTH: usize = 6;
/// Directories never walked into.
const SKIPPED: &[&str] = &[
    "target",
    "node_modules",
    "vendor",
    "dist",
    "build",
    "out",
    "__pycache__",
    "venv",
];

/// What [`detect`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detected {
    /// Language → number of files, most first.
    pub languages: Vec<(String, usize)>,
    /// Package manager and the file that shows it.
    pub package_managers: Vec<(String, String)>,
    /// What (`test`, `lint`, `format`, `build`) → the command and where it comes from.
    pub commands: Vec<(String, String, String)>,
    /// CI configuration files.
    pub ci: Vec<String>,
    /// Instruction files for agents and editors that exist (`AGENTS.md`, `CLAUDE.md`…).
    pub instructions: Vec<String>,
    /// `.editorconfig` settings of its `[*]` section.
    pub editorconfig: Vec<String>,
    /// The command that checks the work (`spec_inputs.check_command`) and why it is that one.
    pub check: Option<Check>,
}

/// The check command [`detect`] chose, and what it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The shell command (`python3 -m pytest`, `npm test`, `make test`…).
    pub command: String,
    /// What showed it, for people: "`pyproject.toml` names pytest".
    pub why: String,
}

fn language(extension: &str) -> Option<&'static str> {
    Some(match extension {
        "rs" => "Rust",
        "py" => "Python",
        "ts" | "tsx" => "TypeScript",
        "js" | "jsx" | "mjs" | "cjs" => "JavaScript",
        "go" => "Go",
        "java" => "Java",
        "kt" | "kts" => "Kotlin",
        "rb" => "Ruby",
        "php" => "PHP",
        "c" | "h" => "C",
        "cc" | "cpp" | "cxx" | "hpp" => "C++",
        "cs" => "C#",
        "swift" => "Swift",
        "scala" => "Scala",
        "ex" | "exs" => "Elixir",
        "sh" | "bash" => "Shell",
        _ => return None,
    })
}

fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(256 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

fn count_languages(root: &Path) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), 0)];
    let mut seen = 0;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            seen += 1;
            if seen > MAX_ENTRIES {
                break;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth < MAX_DEPTH && !SKIPPED.contains(&name.as_ref()) {
                    stack.push((entry.path(), depth + 1));
                }
            } else if kind.is_file() {
                if let Some(lang) = name.rsplit_once('.').and_then(|(_, e)| language(e)) {
                    *counts.entry(lang).or_default() += 1;
                }
            }
        }
    }
    let mut languages: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(l, n)| (l.to_string(), n))
        .collect();
    languages.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    languages
}

/// The scripts of `package.json`, without npm's placeholder `test` script (which only fails
/// with "no test specified").
fn npm_scripts(root: &Path) -> Vec<String> {
    let Some(text) = read_small(&root.join("package.json")) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    value
        .get("scripts")
        .and_then(|s| s.as_object())
        .map(|s| {
            s.iter()
                .filter(|(_, body)| {
                    !body
                        .as_str()
                        .is_some_and(|b| b.contains("no test specified"))
                })
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Does the Python project use pytest? Its configuration or requirements name it, or it has
/// pytest's own files.
fn uses_pytest(root: &Path) -> Option<&'static str> {
    for file in ["pytest.ini", "conftest.py", "tests/conftest.py"] {
        if root.join(file).is_file() {
            return Some(file);
        }
    }
    [
        "pyproject.toml",
        "setup.cfg",
        "tox.ini",
        "requirements.txt",
        "requirements-dev.txt",
        "setup.py",
    ]
    .into_iter()
    .find(|file| read_small(&root.join(file)).is_some_and(|t| t.contains("pytest")))
}

/// Python test files (`test_*.py`, `*_test.py`) at the top or in `tests/`, the way `unittest`
/// finds them.
fn has_python_tests(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).take(MAX_ENTRIES).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".py") && (name.starts_with("test") || name.ends_with("_test.py"))
        })
    })
}

/// The targets of a Makefile (`name:` at the start of a line).
fn make_targets(root: &Path) -> Vec<String> {
    let Some(text) = read_small(&root.join("Makefile")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split_once(':').map(|(t, _)| t))
        .filter(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .collect()
}

/// Look at the repository at `root`.
pub fn detect(root: &Path) -> Detected {
    let has = |name: &str| root.join(name).exists();
    let mut d = Detected {
        languages: count_languages(root),
        ..Detected::default()
    };
    let mut manager = |name: &str, file: &str| {
        d.package_managers
            .push((name.to_string(), file.to_string()));
    };
    let mut commands: Vec<(String, String, String)> = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    let mut check = |command: &str, why: String| {
        checks.push(Check {
            command: command.to_string(),
            why,
        });
    };
    let mut command = |what: &str, cmd: &str, from: &str| {
        if !commands.iter().any(|(w, _, _)| w == what) {
            commands.push((what.to_string(), cmd.to_string(), from.to_string()));
        }
    };
    // Makefile targets are what the team runs; they go first.
    let targets = make_targets(root);
    for (what, target) in [
        ("test", "test"),
        ("lint", "lint"),
        ("format", "fmt"),
        ("format", "format"),
        ("build", "build"),
    ] {
        if targets.iter().any(|t| t == target) {
            command(what, &format!("make {target}"), "Makefile");
        }
    }
    if targets.iter().any(|t| t == "test") {
        check(
            "make test",
            "the `Makefile` has a `test` target".to_string(),
        );
    }
    if has("Cargo.toml") {
        manager("cargo", "Cargo.toml");
        command("build", "cargo build", "Cargo.toml");
        command("test", "cargo test", "Cargo.toml");
        command(
            "lint",
            "cargo clippy --all-targets -- -D warnings",
            "Cargo.toml",
        );
        command("format", "cargo fmt --all -- --check", "Cargo.toml");
        check("cargo test", "`Cargo.toml`: a Rust project".to_string());
    }
    if has("package.json") {
        let (name, run, lock) = if has("pnpm-lock.yaml") {
            ("pnpm", "pnpm", "pnpm-lock.yaml")
        } else if has("yarn.lock") {
            ("yarn", "yarn", "yarn.lock")
        } else if has("bun.lockb") {
            ("bun", "bun run", "bun.lockb")
        } else if has("bun.lock") {
            ("bun", "bun run", "bun.lock")
        } else if has("package-lock.json") {
            ("npm", "npm run", "package-lock.json")
        } else {
            ("npm", "npm run", "package.json")
        };
        manager(name, lock);
        let scripts = npm_scripts(root);
        for (what, script) in [
            ("test", "test"),
            ("lint", "lint"),
            ("format", "format"),
            ("format", "fmt"),
            ("build", "build"),
        ] {
            if scripts.iter().any(|s| s == script) {
                command(what, &format!("{run} {script}"), "package.json");
            }
        }
        if scripts.iter().any(|s| s == "test") {
            check(
                &format!("{run} test"),
                format!("`package.json` has a `test` script; `{lock}` says {name}"),
            );
        }
    }
    let python_files = d.languages.iter().any(|(language, _)| language == "Python");
    if has("pyproject.toml") || has("setup.py") || has("requirements.txt") || python_files {
        let (name, file) = if has("uv.lock") {
            ("uv", "uv.lock")
        } else if has("poetry.lock") {
            ("poetry", "poetry.lock")
        } else if has("pyproject.toml") {
            ("pip", "pyproject.toml")
        } else if has("setup.py") {
            ("pip", "setup.py")
        } else if has("requirements.txt") {
            ("pip", "requirements.txt")
        } else {
            ("python", "")
        };
        if !file.is_empty() {
            manager(name, file);
        }
        let pyproject = read_small(&root.join("pyproject.toml")).unwrap_or_default();
        let prefix = if name == "uv" {
            "uv run "
        } else if name == "poetry" {
            "poetry run "
        } else {
            ""
        };
        if let Some(file) = uses_pytest(root) {
            let run = if prefix.is_empty() {
                "python3 -m pytest".to_string()
            } else {
                format!("{prefix}pytest")
            };
            command("test", &run, file);
            check(&run, format!("`{file}` names pytest"));
        } else if has_python_tests(&root.join("tests")) {
            let run = format!("{prefix}python3 -m unittest discover -s tests");
            command("test", &run, "tests/");
            check(
                &run,
                "`tests/` has Python tests and nothing names pytest: unittest".to_string(),
            );
        } else if has_python_tests(root) {
            let run = format!("{prefix}python3 -m unittest");
            command("test", &run, ".");
            check(
                &run,
                "Python tests at the top and nothing names pytest: unittest".to_string(),
            );
        }
        if pyproject.contains("ruff") {
            command("lint", &format!("{prefix}ruff check ."), "pyproject.toml");
            command(
                "format",
                &format!("{prefix}ruff format --check ."),
                "pyproject.toml",
            );
        } else if pyproject.contains("black") {
            command(
                "format",
                &format!("{prefix}black --check ."),
                "pyproject.toml",
            );
        }
    }
    if has("go.mod") {
        manager("go modules", "go.mod");
        command("build", "go build ./...", "go.mod");
        command("test", "go test ./...", "go.mod");
        command("lint", "go vet ./...", "go.mod");
        command("format", "gofmt -l .", "go.mod");
        check("go test ./...", "`go.mod`: a Go module".to_string());
    }
    if has("pom.xml") {
        manager("maven", "pom.xml");
        command("test", "mvn test", "pom.xml");
        check("mvn test", "`pom.xml`: a Maven project".to_string());
    }
    if has("build.gradle") || has("build.gradle.kts") {
        manager("gradle", "build.gradle");
        command("test", "./gradlew test", "build.gradle");
        check(
            "./gradlew test",
            "`build.gradle`: a Gradle project".to_string(),
        );
    }
    if has("Gemfile") {
        manager("bundler", "Gemfile");
    }
    if has("composer.json") {
        manager("composer", "composer.json");
    }
    d.commands = commands;
    // The Makefile's `test` wins (the team's own entry point); then the first ecosystem found.
    d.check = checks.into_iter().next();
    for file in [
        ".gitlab-ci.yml",
        ".circleci/config.yml",
        "azure-pipelines.yml",
        ".travis.yml",
        "Jenkinsfile",
        ".ci/run",
    ] {
        if has(file) {
            d.ci.push(file.to_string());
        }
    }
    if let Ok(entries) = std::fs::read_dir(root.join(".github/workflows")) {
        let mut workflows: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
            .map(|n| format!(".github/workflows/{n}"))
            .take(50)
            .collect();
        workflows.sort();
        d.ci.extend(workflows);
    }
    for file in [
        "AGENTS.md",
        "CLAUDE.md",
        "GEMINI.md",
        ".github/copilot-instructions.md",
        ".cursorrules",
        "CONTRIBUTING.md",
        "ARCHITECTURE.md",
        ".editorconfig",
    ] {
        if has(file) {
            d.instructions.push(file.to_string());
        }
    }
    if let Some(text) = read_small(&root.join(".editorconfig")) {
        let mut in_all = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_all = line == "[*]";
            } else if in_all && line.contains('=') && d.editorconfig.len() < 20 {
                d.editorconfig.push(line.to_string());
            }
        }
    }
    d
}

impl Detected {
    /// `conventions.md` as `spectacular init` writes it.
    pub fn conventions_markdown(&self) -> String {
        let mut out = String::from(
            "# Conventions\n\n<!-- Written by `spectacular init` from what it found in the \
             repository. Edit it: it is yours now, and init never overwrites it. Prompts of \
             planners, executors and validators include it. -->\n",
        );
        if !self.languages.is_empty() {
            let _ = writeln!(out, "\n## Languages\n");
            for (language, files) in self.languages.iter().take(8) {
                let plural = if *files == 1 { "" } else { "s" };
                let _ = writeln!(out, "- {language} ({files} file{plural})");
            }
        }
        if !self.package_managers.is_empty() {
            let _ = writeln!(out, "\n## Package managers\n");
            for (name, file) in &self.package_managers {
                let _ = writeln!(out, "- {name} (`{file}`)");
            }
        }
        if !self.commands.is_empty() {
            let _ = writeln!(
                out,
                "\n## Commands\n\nRun these before saying a change is done.\n"
            );
            let _ = writeln!(out, "| what | command | from |\n|---|---|---|");
            for (what, command, from) in &self.commands {
                let _ = writeln!(out, "| {what} | `{command}` | `{from}` |");
            }
        }
        if !self.ci.is_empty() {
            let _ = writeln!(out, "\n## CI\n");
            for file in &self.ci {
                let _ = writeln!(out, "- `{file}`");
            }
        }
        let docs: Vec<&String> = self
            .instructions
            .iter()
            .filter(|f| f.as_str() != ".editorconfig")
            .collect();
        if !docs.is_empty() {
            let _ = writeln!(
                out,
                "\n## Instructions in the repository\n\nRead these before changing code; they \
                 win over this file.\n"
            );
            for file in docs {
                let _ = writeln!(out, "- `{file}`");
            }
        }
        if !self.editorconfig.is_empty() {
            let _ = writeln!(out, "\n## Formatting (`.editorconfig`, all files)\n");
            for setting in &self.editorconfig {
                let _ = writeln!(out, "- `{setting}`");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_project_with_ci_and_agent_docs_is_described() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for (file, text) in [
            ("Cargo.toml", "[package]\nname = \"x\"\n"),
            ("src/main.rs", "fn main() {}\n"),
            ("src/lib.rs", ""),
            ("target/debug/build.rs", ""),
            (".github/workflows/ci.yml", "on: push\n"),
            ("AGENTS.md", "be nice\n"),
            (
                ".editorconfig",
                "root = true\n[*]\nindent_style = space\n[*.md]\nx = y\n",
            ),
            ("scripts/x.py", ""),
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        let d = detect(root);
        assert_eq!(d.languages, [("Rust".into(), 2), ("Python".into(), 1)]);
        assert_eq!(d.package_managers, [("cargo".into(), "Cargo.toml".into())]);
        assert!(d
            .commands
            .iter()
            .any(|(w, c, _)| w == "test" && c == "cargo test"));
        assert_eq!(d.ci, [".github/workflows/ci.yml"]);
        assert_eq!(d.instructions, ["AGENTS.md", ".editorconfig"]);
        assert_eq!(d.editorconfig, ["indent_style = space"]);
        let md = d.conventions_markdown();
        for expected in [
            "| test | `cargo test` | `Cargo.toml` |",
            "- `AGENTS.md`",
            "- Rust (2 files)",
        ] {
            assert!(md.contains(expected), "{expected} in\n{md}");
        }
    }

    #[test]
    fn package_json_scripts_and_makefile_targets_become_commands() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::write(
            root.join("package.json"),
            r#"{"scripts": {"test": "vitest", "lint": "eslint ."}}"#,
        )
        .expect("write");
        std::fs::write(root.join("pnpm-lock.yaml"), "").expect("write");
        std::fs::write(root.join("Makefile"), "test:\n\tpnpm test\n").expect("write");
        let d = detect(root);
        assert_eq!(d.package_managers[0].0, "pnpm");
        assert_eq!(
            d.commands,
            [
                ("test".into(), "make test".into(), "Makefile".into()),
                ("lint".into(), "pnpm lint".into(), "package.json".into()),
            ]
        );
    }

    fn checked(files: &[(&str, &str)]) -> Option<(String, String)> {
        let dir = tempfile::tempdir().expect("temp dir");
        for (file, text) in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        detect(dir.path()).check.map(|c| (c.command, c.why))
    }

    #[test]
    fn the_check_command_fits_the_ecosystem() {
        let command = |files: &[(&str, &str)]| checked(files).map(|(c, _)| c);
        assert_eq!(
            command(&[
                (
                    "pyproject.toml",
                    "[project.optional-dependencies]\ndev = [\"pytest\"]\n"
                ),
                ("app.py", ""),
            ]),
            Some("python3 -m pytest".into())
        );
        assert_eq!(
            command(&[("pyproject.toml", "[project]\n"), ("tests/test_app.py", "")]),
            Some("python3 -m unittest discover -s tests".into())
        );
        assert_eq!(
            command(&[("app.py", ""), ("test_app.py", "import unittest\n")]),
            Some("python3 -m unittest".into())
        );
        assert_eq!(
            command(&[("uv.lock", ""), ("pyproject.toml", "pytest"), ("a.py", "")]),
            Some("uv run pytest".into())
        );
        assert_eq!(
            command(&[("Cargo.toml", "[package]\n")]),
            Some("cargo test".into())
        );
        assert_eq!(
            command(&[("go.mod", "module x\n")]),
            Some("go test ./...".into())
        );
        let node = r#"{"scripts": {"test": "node --test"}}"#;
        for (lock, expected) in [
            ("package-lock.json", "npm run test"),
            ("pnpm-lock.yaml", "pnpm test"),
            ("yarn.lock", "yarn test"),
            ("bun.lockb", "bun run test"),
        ] {
            assert_eq!(
                command(&[("package.json", node), (lock, "")]),
                Some(expected.into()),
                "{lock}"
            );
        }
        // npm's placeholder script is no test.
        let placeholder = r#"{"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}}"#;
        assert_eq!(command(&[("package.json", placeholder)]), None);
        // The Makefile's `test` wins over the ecosystem's.
        assert_eq!(
            command(&[("Makefile", "test:\n\tgo test ./...\n"), ("go.mod", "")]),
            Some("make test".into())
        );
        assert_eq!(command(&[("README.md", "hello\n")]), None);
        let (_, why) = checked(&[("package.json", node), ("yarn.lock", "")]).expect("a check");
        assert_eq!(
            why,
            "`package.json` has a `test` script; `yarn.lock` says yarn"
        );
    }
}
