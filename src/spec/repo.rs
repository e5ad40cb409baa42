//! What the repository says about a spec: the files and symbols it names, the manifests and
//! their dependencies, the size of the modules involved. The walk respects `.gitignore` (and
//! skips hidden files), stops after `max_files` files and reads at most
//! [`MAX_READ_BYTES`] of source, [`MAX_FILE_BYTES`] per file; when it stops early it says so.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

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

/// Walk `root` looking for `identifiers`.
pub fn scan(root: &Path, identifiers: &[String], max_files: usize) -> RepoFacts {
    let mut facts = RepoFacts {
        identifiers: identifiers.to_vec(),
        ..RepoFacts::default()
    };
    // Content is searched for the names of symbols; paths are compared with path-like
    // identifiers and with file stems.
    let searcher = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(identifiers)
        .ok();
    let stems: Vec<String> = identifiers.iter().map(|i| snake(i)).collect();
    let mut found = vec![false; identifiers.len()];
    let mut read: u64 = 0;
    let mut dependencies: Vec<String> = Vec::new();
    let mut ecosystems: Vec<String> = Vec::new();
    let walker = ignore::WalkBuilder::new(root)
        .require_git(false)
        .git_global(false)
        .build();
    for entry in walker.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if facts.files >= max_files {
            facts.truncated = true;
            facts.stopped = Some(format!("stopped after {max_files} files"));
            break;
        }
        facts.files += 1;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some((_, ecosystem)) = MANIFESTS.iter().find(|(m, _)| *m == name) {
            if relative.matches('/').count() <= 2 && facts.manifests.len() < 64 {
                facts.manifests.push(relative.clone());
                if !ecosystems.iter().any(|e| e == ecosystem) {
                    ecosystems.push(ecosystem.to_string());
                }
                if let Ok(text) = read_bounded(path) {
                    manifest_dependencies(name, &text, &mut dependencies);
                }
            }
        }
        if identifiers.is_empty() {
            continue;
        }
        let mut hits: Vec<usize> = Vec::new();
        let stem = Path::new(name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_lowercase();
        for (i, ident) in identifiers.iter().enumerate() {
            let path_like = ident.contains('/') || ident.contains('.');
            if (path_like && relative.ends_with(ident.as_str()))
                || (!stem.is_empty() && stem == stems[i])
            {
                hits.push(i);
            }
        }
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let mut lines = 0;
        if SOURCE_EXTENSIONS.contains(&extension) && read < MAX_READ_BYTES {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
            if size <= MAX_FILE_BYTES {
                if let Ok(bytes) = std::fs::read(path) {
                    read += bytes.len() as u64;
                    lines = memchr::memchr_iter(b'\n', &bytes).count();
                    if let Some(searcher) = &searcher {
                        for m in searcher.find_iter(&bytes) {
                            let i = m.pattern().as_usize();
                            if !hits.contains(&i) && boundary(&bytes, m.start(), m.end()) {
                                hits.push(i);
                            }
                        }
                    }
                }
            }
            if read >= MAX_READ_BYTES && facts.stopped.is_none() {
                facts.truncated = true;
                facts.stopped = Some(format!(
                    "stopped reading source after {} MiB",
                    MAX_READ_BYTES / (1024 * 1024)
                ));
            }
        }
        if !hits.is_empty() {
            hits.sort_unstable();
            for &i in &hits {
                found[i] = true;
            }
            facts.matched.push(MatchedFile {
                path: relative,
                lines,
                identifiers: hits.iter().map(|&i| identifiers[i].clone()).collect(),
            });
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

fn read_bounded(path: &Path) -> std::io::Result<String> {
    let size = std::fs::metadata(path)?.len();
    if size > MAX_FILE_BYTES {
        return Err(std::io::Error::other("too large"));
    }
    std::fs::read_to_string(path)
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
}
