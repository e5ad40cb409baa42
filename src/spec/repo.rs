//! What the repository says about a spec: the files and symbols it names, the manifests and
//! their dependencies, the size of the modules involved. The walk runs on every core, respects
//! `.gitignore` (and skips hidden files), reads only source files (when the spec names
//! identifiers) and manifests, stops after `max_files` files and reads at most
//! [`MAX_READ_BYTES`] of source, [`MAX_FILE_BYTES`] per file; when it stops early it says so.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;
use serde::Serialize;

/// Files larger than this are not searched for symbols.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// The walk reads at most this much source in all.
pub const MAX_READ_BYTES: u64 = 64 * 1024 * 1024;
/// At most this many identifiers of the spec are looked for.
pub const MAX_IDENTIFIERS: usize = 256;

const MANIFESTS: &[(&str, &str)] = &[
    ("Cargo.toml", "rust"),
    ("package.json", "node"),
    ("pyproject.toml", "python"),
    ("requirements.txt", "python"),
    ("setup.py", "python"),
    ("go.mod", "go"),
    ("pom.xml", "java"),
    ("build.gradle", "java"),
    ("build.gradle.kts", "java"),
    ("Gemfile", "ruby"),
    ("composer.json", "php"),
    ("mix.exs", "elixir"),
    ("Package.swift", "swift"),
];

const SOURCE_EXTENSIONS: &[&str] = &[
    "rs", "py", "js", "mjs", "cjs", "ts", "tsx", "jsx", "go", "java", "kt", "kts", "rb", "php",
    "c", "h", "cc", "cpp", "hpp", "cs", "swift", "scala", "ex", "exs", "sql", "proto", "vue",
    "svelte", "sh",
];

/// One file that names identifiers of the spec (in its path or its text).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MatchedFile {
    pub path: String,
    pub lines: usize,
    pub identifiers: Vec<String>,
}

/// A top-level directory holding matched files.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Module {
    pub name: String,
    pub files: usize,
    pub lines: usize,
}

/// What the walk found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RepoFacts {
    /// Files walked.
    pub files: usize,
    /// The walk stopped at `max_files` (or the read budget) before seeing everything.
    pub truncated: bool,
    /// Why it stopped, when it did.
    pub stopped: Option<String>,
    /// Manifests, relative paths.
    pub manifests: Vec<String>,
    /// Ecosystems of the manifests (`rust`, `node`, `python`…), sorted.
    pub ecosystems: Vec<String>,
    /// Dependency names declared in the manifests, sorted.
    pub dependencies: Vec<String>,
    /// The identifiers looked for.
    pub identifiers: Vec<String>,
    /// The identifiers found in at least one file.
    pub found: Vec<String>,
    pub matched: Vec<MatchedFile>,
    /// The modules (top-level directories) of the matched files, largest first.
    pub modules: Vec<Module>,
}

static BACKTICKED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"`([^`\s]{3,80})`").expect("valid regex"));
static CAMEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+\b").expect("valid regex"));
static SNAKE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b").expect("valid regex"));
static PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[\w./-]+\.(?:rs|py|js|ts|tsx|jsx|go|java|kt|rb|php|c|h|cpp|cs|swift|toml|json|ya?ml|sql|proto)\b")
        .expect("valid regex")
});

/// Identifiers a spec names: code spans, `CamelCase` and `snake_case` words, file paths.
pub fn identifiers(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        let s = s.trim_matches(|c: char| c == '.' || c == ',' || c == ':' || c == '(' || c == ')');
        let s = s.strip_suffix("()").unwrap_or(s);
        if s.len() >= 3
            && s.len() <= 80
            && s.chars().any(|c| c.is_alphabetic())
            && !out.iter().any(|o| o == s)
            && out.len() < MAX_IDENTIFIERS
        {
            out.push(s.to_string());
        }
    };
    for c in BACKTICKED.captures_iter(text) {
        let s = c.get(1).map_or("", |m| m.as_str());
        if s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':' | '(' | ')'))
        {
            add(s);
        }
    }
    for m in PATH.find_iter(text) {
        add(m.as_str());
    }
    for m in CAMEL.find_iter(text) {
        add(m.as_str());
    }
    for m in SNAKE.find_iter(text) {
        add(m.as_str());
    }
    out
}

/// What the walk's threads share: the searches, prepared once, and the budgets.
struct Walk<'a> {
    root: &'a Path,
    identifiers: &'a [String],
    /// Content is searched for the names of symbols.
    searcher: Option<AhoCorasick>,
    /// File stems (lowercase, `snake_case`) → the identifiers they stand for.
    stems: HashMap<String, Vec<usize>>,
    /// Identifiers compared with the ends of paths (those with a `/` or a `.`).
    path_like: Vec<usize>,
    max_files: usize,
    files: AtomicUsize,
    read: AtomicU64,
    found: Mutex<Found>,
}

/// What the threads found, merged.
#[derive(Default)]
struct Found {
    /// (relative path, ecosystem, dependencies) of each manifest near the root.
    manifests: Vec<(String, &'static str, Vec<String>)>,
    matched: Vec<MatchedFile>,
    read_stopped: bool,
}

/// Manifests looked at in all (those nearest the root, by path, are kept).
const MAX_MANIFESTS: usize = 64;

impl Walk<'_> {
    /// One file of the walk; `Quit` once `max_files` files are seen.
    fn visit(&self, entry: Result<ignore::DirEntry, ignore::Error>) -> ignore::WalkState {
        let Ok(entry) = entry else {
            return ignore::WalkState::Continue;
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            return ignore::WalkState::Continue;
        }
        if self.files.fetch_add(1, Ordering::Relaxed) >= self.max_files {
            return ignore::WalkState::Quit;
        }
        let path = entry.path();
        let relative = path
            .strip_prefix(self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some((manifest, ecosystem)) = MANIFESTS.iter().find(|(m, _)| *m == name) {
            if relative.matches('/').count() <= 2 {
                let mut dependencies = Vec::new();
                if let Some(text) = read_bounded(path).and_then(|b| String::from_utf8(b).ok()) {
                    manifest_dependencies(manifest, &text, &mut dependencies);
                }
                let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
                found
                    .manifests
                    .push((relative.clone(), ecosystem, dependencies));
            }
        }
        if self.identifiers.is_empty() {
            return ignore::WalkState::Continue;
        }
        let mut hits: Vec<usize> = Vec::new();
        let stem = Path::new(name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_lowercase();
        if let Some(indices) = self.stems.get(&stem) {
            hits.extend(indices);
        }
        for &i in &self.path_like {
            if relative.ends_with(self.identifiers[i].as_str()) && !hits.contains(&i) {
                hits.push(i);
            }
        }
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let mut lines = 0;
        let mut read_stopped = false;
        if SOURCE_EXTENSIONS.contains(&extension) {
            if self.read.load(Ordering::Relaxed) < MAX_READ_BYTES {
                if let Some(bytes) = read_bounded(path) {
                    let before = self.read.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    read_stopped = before + bytes.len() as u64 >= MAX_READ_BYTES;
                    if let Some(searcher) = &self.searcher {
                        for m in searcher.find_iter(&bytes) {
                            let i = m.pattern().as_usize();
                            if !hits.contains(&i) && boundary(&bytes, m.start(), m.end()) {
                                hits.push(i);
                            }
                        }
                    }
                    if !hits.is_empty() {
                        lines = memchr::memchr_iter(b'\n', &bytes).count();
                    }
                }
            } else {
                read_stopped = true;
            }
        }
        if hits.is_empty() && !read_stopped {
            return ignore::WalkState::Continue;
        }
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found.read_stopped |= read_stopped;
        if !hits.is_empty() {
            hits.sort_unstable();
            found.matched.push(MatchedFile {
                path: relative,
                lines,
                identifiers: hits.iter().map(|&i| self.identifiers[i].clone()).collect(),
            });
        }
        ignore::WalkState::Continue
    }
}

/// Walk `root` looking for `identifiers`, on as many threads as there are cores. What it
/// finds does not depend on the order the threads see files in, unless the walk stops early.
pub fn scan(root: &Path, identifiers: &[String], max_files: usize) -> RepoFacts {
    let mut facts = RepoFacts {
        identifiers: identifiers.to_vec(),
        ..RepoFacts::default()
    };
    let mut stems: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, identifier) in identifiers.iter().enumerate() {
        stems.entry(snake(identifier)).or_default().push(i);
    }
    stems.remove("");
    let walk = Walk {
        root,
        identifiers,
        searcher: AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(identifiers)
            .ok(),
        stems,
        path_like: (0..identifiers.len())
            .filter(|&i| identifiers[i].contains('/') || identifiers[i].contains('.'))
            .collect(),
        max_files,
        files: AtomicUsize::new(0),
        read: AtomicU64::new(0),
        found: Mutex::new(Found::default()),
    };
    ignore::WalkBuilder::new(root)
        .require_git(false)
        .git_global(false)
        .build_parallel()
        .run(|| Box::new(|entry| walk.visit(entry)));
    let seen = walk.files.load(Ordering::Relaxed);
    facts.files = seen.min(max_files);
    let found = walk.found.into_inner().unwrap_or_else(|e| e.into_inner());
    if seen > max_files {
        facts.truncated = true;
        facts.stopped = Some(format!("stopped after {max_files} files"));
    } else if found.read_stopped {
        facts.truncated = true;
        facts.stopped = Some(format!(
            "stopped reading source after {} MiB",
            MAX_READ_BYTES / (1024 * 1024)
        ));
    }
    let mut manifests = found.manifests;
    manifests.sort_by(|a, b| a.0.cmp(&b.0));
    manifests.truncate(MAX_MANIFESTS);
    let mut ecosystems: Vec<String> = Vec::new();
    let mut dependencies: Vec<String> = Vec::new();
    for (path, ecosystem, deps) in manifests {
        facts.manifests.push(path);
        if !ecosystems.iter().any(|e| e == ecosystem) {
            ecosystems.push(ecosystem.to_string());
        }
        dependencies.extend(deps);
    }
    facts.matched = found.matched;
    facts.matched.sort_by(|a, b| a.path.cmp(&b.path));
    let mut found = vec![false; identifiers.len()];
    for m in &facts.matched {
        for identifier in &m.identifiers {
            if let Some(i) = identifiers.iter().position(|x| x == identifier) {
                found[i] = true;
            }
        }
    }
    facts.found = identifiers
        .iter()
        .zip(&found)
        .filter(|(_, f)| **f)
        .map(|(i, _)| i.clone())
        .collect();
    ecosystems.sort();
    facts.ecosystems = ecosystems;
    dependencies.sort();
    dependencies.dedup();
    facts.dependencies = dependencies;
    let mut modules: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for m in &facts.matched {
        let module = match m.path.split_once('/') {
            Some((top, rest))
                if top == "src" || top == "lib" || top == "crates" || top == "packages" =>
            {
                match rest.split_once('/') {
                    Some((second, _)) => format!("{top}/{second}"),
                    None => top.to_string(),
                }
            }
            Some((top, _)) => top.to_string(),
            None => ".".to_string(),
        };
        let e = modules.entry(module).or_default();
        e.0 += 1;
        e.1 += m.lines;
    }
    let mut modules: Vec<Module> = modules
        .into_iter()
        .map(|(name, (files, lines))| Module { name, files, lines })
        .collect();
    modules.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.name.cmp(&b.name)));
    facts.modules = modules;
    facts
}

/// The bytes of a file of at most [`MAX_FILE_BYTES`] (`None` for a larger or unreadable
/// one), read without asking its size first.
fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 <= MAX_FILE_BYTES).then_some(bytes)
}

fn boundary(bytes: &[u8], start: usize, end: usize) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (start == 0 || !word(bytes[start - 1])) && (end >= bytes.len() || !word(bytes[end]))
}

/// `UserSession` → `user_session`; `user_session` stays.
fn snake(ident: &str) -> String {
    let mut out = String::new();
    for (i, c) in ident.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Dependency names declared in a manifest (a light reading: enough to recognise names).
fn manifest_dependencies(name: &str, text: &str, out: &mut Vec<String>) {
    match name {
        "Cargo.toml" => {
            let mut in_deps = false;
            for line in text.lines() {
                let t = line.trim();
                if t.starts_with('[') {
                    in_deps = t.contains("dependencies");
                    continue;
                }
                if in_deps {
                    if let Some((key, _)) = t.split_once('=') {
                        let key = key.trim();
                        if !key.is_empty() && !key.starts_with('#') {
                            out.push(key.to_string());
                        }
                    }
                }
            }
        }
        "package.json" | "composer.json" => {
            if let Ok(serde_json::Value::Object(root)) = serde_json::from_str(text) {
                for key in [
                    "dependencies",
                    "devDependencies",
                    "peerDependencies",
                    "require",
                ] {
                    if let Some(serde_json::Value::Object(deps)) = root.get(key) {
                        out.extend(deps.keys().cloned());
                    }
                }
            }
        }
        "requirements.txt" => {
            for line in text.lines() {
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') || t.starts_with('-') {
                    continue;
                }
                let end = t
                    .find(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
                    .unwrap_or(t.len());
                out.push(t[..end].to_lowercase());
            }
        }
        "pyproject.toml" => {
            static DEP: LazyLock<Regex> = LazyLock::new(|| {
                Regex::new(r#"^\s*"([A-Za-z0-9][A-Za-z0-9._-]*)"#).expect("valid regex")
            });
            for line in text.lines() {
                if let Some(c) = DEP.captures(line) {
                    out.push(c[1].to_lowercase());
                }
            }
        }
        "go.mod" => {
            for line in text.lines() {
                let t = line.trim().trim_start_matches("require").trim();
                if let Some(module) = t.split_whitespace().next() {
                    if module.contains('/') && module.contains('.') {
                        if let Some(last) = module.rsplit('/').next() {
                            out.push(last.to_string());
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_code_names_and_paths() {
        let ids = identifiers(
            "Store it in `session_store` via SessionManager; see src/auth/login.rs. Plain words are not.",
        );
        assert_eq!(
            ids,
            vec!["session_store", "src/auth/login.rs", "SessionManager"]
        );
    }

    #[test]
    fn cargo_dependencies_are_read() {
        let mut deps = Vec::new();
        manifest_dependencies(
            "Cargo.toml",
            "[package]\nname = \"x\"\n[dependencies]\nserde = \"1\"\ntokio = { version = \"1\" }\n",
            &mut deps,
        );
        assert_eq!(deps, vec!["serde", "tokio"]);
    }

    #[test]
    fn the_walk_finds_symbols_paths_and_manifests_whatever_the_order_of_its_threads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "Cargo.toml",
            "[package]\nname = \"x\"\n[dependencies]\nserde = \"1\"\n",
        );
        write("web/package.json", r#"{"dependencies": {"react": "18"}}"#);
        write("src/auth/login.rs", "fn login() {}\n");
        write(
            "src/store.rs",
            "struct SessionManager;\nfn session_store() {}\nfn session_store_x() {}\n",
        );
        write("src/session_manager.py", "pass\n");
        // Larger than a file may be: not searched.
        write(
            "src/big.rs",
            &"session_store\n".repeat(MAX_FILE_BYTES as usize / 10),
        );
        for i in 0..200 {
            write(&format!("src/filler/f{i}.rs"), "fn nothing() {}\n");
        }
        let identifiers: Vec<String> = [
            "session_store",
            "src/auth/login.rs",
            "SessionManager",
            "Absent",
        ]
        .map(String::from)
        .to_vec();
        let facts = scan(root, &identifiers, 10_000);
        assert_eq!(facts.files, 206);
        assert!(!facts.truncated);
        assert_eq!(facts.manifests, ["Cargo.toml", "web/package.json"]);
        assert_eq!(facts.ecosystems, ["node", "rust"]);
        assert_eq!(facts.dependencies, ["react", "serde"]);
        assert_eq!(
            facts.found,
            ["session_store", "src/auth/login.rs", "SessionManager"]
        );
        let matched: Vec<(&str, usize, Vec<&str>)> = facts
            .matched
            .iter()
            .map(|m| {
                let ids = m.identifiers.iter().map(String::as_str).collect();
                (m.path.as_str(), m.lines, ids)
            })
            .collect();
        assert_eq!(
            matched,
            [
                ("src/auth/login.rs", 1, vec!["src/auth/login.rs"]),
                ("src/session_manager.py", 1, vec!["SessionManager"]),
                ("src/store.rs", 3, vec!["session_store", "SessionManager"]),
            ]
        );
        assert_eq!(
            scan(root, &identifiers, 10_000),
            facts,
            "the same every time"
        );
        let stopped = scan(root, &identifiers, 50);
        assert_eq!(stopped.files, 50);
        assert!(stopped.truncated);
        assert_eq!(stopped.stopped.as_deref(), Some("stopped after 50 files"));
    }
}
