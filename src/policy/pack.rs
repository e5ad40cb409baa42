//! A policy pack on disk (or compiled into the binary): `pack.yaml`, its Rhai scripts and its
//! `tests/*.yaml`. Loading checks the manifest with located diagnostics and compiles the
//! scripts once; the [`rhai::AST`] is kept for every later call.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use rhai::{Engine, AST};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{did_you_mean, one_of, Code, Diagnostic, Diagnostics, SourceFile, Span};
use crate::load::yaml::{self, Node, Value};

use super::Hook;

/// The manifest file of a pack.
pub const MANIFEST: &str = "pack.yaml";
/// The script read when `scripts` is not given.
pub const DEFAULT_SCRIPT: &str = "policy.rhai";
/// The schema's `$id`.
pub const POLICY_SCHEMA_ID: &str = "https://spectacular.dev/schemas/policy.schema.json";

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_policies.rs"));
}

/// `pack.yaml`: a policy pack's manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Spectacular policy pack (pack.yaml)")]
pub struct Manifest {
    /// The pack's name, kebab-case (`cost-routing`). A pack in a higher layer shadows a pack of
    /// the same name in a lower one.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"))]
    pub name: String,
    /// The pack's version (`1.2.0`), recorded with every decision.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+){0,2}([-+][0-9A-Za-z.-]+)?$"))]
    pub version: String,
    /// What the pack decides, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The hooks the pack's scripts define: `route`, `govern`, `budget`.
    #[schemars(length(min = 1))]
    pub hooks: Vec<Hook>,
    /// Typed parameters, visible to scripts as `ctx.params.<name>`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Param>,
    /// The scripts to compile, relative to the pack (default: `policy.rhai`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<String>,
    /// Whether the pack is active without being named in a mission's `policies:` (default
    /// true). Built-in packs that change behaviour sharply are opt-in.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled_by_default: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One typed parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// The parameter's type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// The value used unless a mission or a test sets another.
    pub default: serde_json::Value,
    /// What the parameter changes, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Number,
    Bool,
    List,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Number => "number",
            ParamType::Bool => "bool",
            ParamType::List => "list",
        }
    }

    pub fn accepts(self, value: &serde_json::Value) -> bool {
        match self {
            ParamType::String => value.is_string(),
            ParamType::Number => value.is_number(),
            ParamType::Bool => value.is_boolean(),
            ParamType::List => value.is_array(),
        }
    }
}

const KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "hooks",
    "params",
    "scripts",
    "enabled_by_default",
];
const PARAM_KEYS: &[&str] = &["type", "default", "description"];
const TYPES: &[&str] = &["string", "number", "bool", "list"];

/// The JSON Schema of `pack.yaml` (draft 2020-12), pretty, with a trailing newline.
pub fn policy_schema_text() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Manifest>();
    let mut value = schema.to_value();
    strip_null(&mut value);
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("$id".into(), POLICY_SCHEMA_ID.into());
    }
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// Optional keys are written by leaving them out, never as `null`: drop the `null` type
/// schemars adds for `Option<T>`.
fn strip_null(value: &mut serde_json::Value) {
    use serde_json::Value as J;
    match value {
        J::Object(map) => {
            if let Some(J::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types[0].clone();
                    map.insert("type".into(), only);
                }
            }
            map.values_mut().for_each(strip_null);
        }
        J::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// Where a pack's files come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackFiles {
    /// A directory; `display` is how its paths are shown (relative to the working directory).
    Dir { path: PathBuf, display: String },
    /// A pack compiled into the binary, by name.
    Builtin { name: String },
}

/// Why a file of a pack cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("`{file}` is not UTF-8 text")]
    NotUtf8 { file: String },
    #[error("failed to read `{file}`: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}

impl PackFiles {
    /// A directory on disk, shown relative to `base` when it lies below it.
    pub fn dir(path: &Path, base: &Path) -> PackFiles {
        let display = crate::project::display_path(path, base).replace('\\', "/");
        PackFiles::Dir {
            path: path.to_path_buf(),
            display,
        }
    }

    /// Where the pack is, for people.
    pub fn origin(&self) -> String {
        match self {
            PackFiles::Dir { display, .. } => display.clone(),
            PackFiles::Builtin { name } => format!("builtin:policies/{name}"),
        }
    }

    /// The display name of a file of the pack.
    pub fn display(&self, relative: &str) -> String {
        format!("{}/{relative}", self.origin())
    }

    /// The text of a file of the pack; `Ok(None)` when it does not exist.
    pub fn read(&self, relative: &str) -> Result<Option<String>, ReadError> {
        match self {
            PackFiles::Dir { path, .. } => match std::fs::read(path.join(relative)) {
                Ok(bytes) => String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| ReadError::NotUtf8 {
                        file: self.display(relative),
                    }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(ReadError::Io {
                    file: self.display(relative),
                    source,
                }),
            },
            PackFiles::Builtin { name } => {
                let path = format!("{name}/{relative}");
                Ok(builtin::FILES
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, text)| (*text).to_string()))
            }
        }
    }

    /// The pack's test files (`tests/*.yaml`), relative to the pack, sorted.
    pub fn test_files(&self) -> Vec<String> {
        let mut files: Vec<String> = match self {
            PackFiles::Dir { path, .. } => std::fs::read_dir(path.join("tests"))
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
                        .map(|n| format!("tests/{n}"))
                        .collect()
                })
                .unwrap_or_default(),
            PackFiles::Builtin { name } => {
                let prefix = format!("{name}/tests/");
                builtin::FILES
                    .iter()
                    .filter_map(|(p, _)| p.strip_prefix(&prefix))
                    .filter(|n| !n.contains('/') && (n.ends_with(".yaml") || n.ends_with(".yml")))
                    .map(|n| format!("tests/{n}"))
                    .collect()
            }
        };
        files.sort();
        files
    }
}

/// The names of the packs compiled into the binary, sorted.
pub fn builtin_names() -> Vec<String> {
    let mut names: Vec<String> = builtin::FILES
        .iter()
        .filter_map(|(p, _)| p.strip_suffix("/pack.yaml"))
        .filter(|n| !n.contains('/'))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// A pack whose manifest is valid and whose scripts compiled.
#[derive(Clone, Debug)]
pub struct LoadedPack {
    pub manifest: Manifest,
    pub files: PackFiles,
    /// Every script, compiled once and merged.
    pub ast: Arc<AST>,
    /// `sha256:<hex>` of the manifest and the scripts, for pinning and drift checks.
    pub digest: String,
}

/// Load and compile the pack in `files`, pushing every problem into `diagnostics`.
pub fn load(
    engine: &Engine,
    files: PackFiles,
    diagnostics: &mut Diagnostics,
) -> Option<LoadedPack> {
    let name = files.display(MANIFEST);
    let text = match files.read(MANIFEST) {
        Ok(Some(text)) => text,
        Ok(None) => {
            diagnostics.push(
                Diagnostic::new(Code::PackInvalid, format!("`{name}` does not exist"))
                    .at(&name, None, "")
                    .help(
                        "a policy pack is a directory with a `pack.yaml`, its scripts and `tests/`",
                    ),
            );
            return None;
        }
        Err(error) => {
            diagnostics
                .push(Diagnostic::new(Code::PackInvalid, error.to_string()).at(&name, None, ""));
            return None;
        }
    };
    diagnostics.add_source(SourceFile::new(name.clone(), text.as_str()));
    let parsed = yaml::parse(&text, &name);
    let had_yaml_errors = !parsed.diagnostics.is_empty();
    for d in parsed.diagnostics {
        diagnostics.push(d);
    }
    let root = parsed.root?;
    let mut check = Checker {
        file: &name,
        diagnostics,
        ok: !had_yaml_errors,
    };
    check.manifest(&root);
    let ok = check.ok;
    let manifest: Manifest = if ok {
        match serde_json::from_value(root.to_json()) {
            Ok(m) => m,
            Err(e) => {
                diagnostics.push(
                    Diagnostic::new(Code::PackInvalid, format!("invalid `pack.yaml`: {e}")).at(
                        &name,
                        Some(root.span),
                        "",
                    ),
                );
                return None;
            }
        }
    } else {
        return None;
    };

    // Compile every script once and merge them.
    let scripts = if manifest.scripts.is_empty() {
        vec![DEFAULT_SCRIPT.to_string()]
    } else {
        manifest.scripts.clone()
    };
    let mut ast = AST::empty();
    let mut digest_input = text.clone();
    let mut compiled = true;
    for (i, script) in scripts.iter().enumerate() {
        let display = files.display(script);
        let locate = || {
            if manifest.scripts.is_empty() {
                (None, String::new())
            } else {
                let node = root.get("scripts").map(|s| &s.items()[i]);
                (node.map(|n| n.span), format!("scripts[{i}]"))
            }
        };
        let source = match files.read(script) {
            Ok(Some(source)) => source,
            Ok(None) => {
                let (span, path) = locate();
                diagnostics.push(
                    Diagnostic::new(Code::PackInvalid, format!("script `{display}` does not exist"))
                        .at(&name, span, path)
                        .label("no such file")
                        .help(format!("create `{script}` beside `pack.yaml`, or list the pack's scripts under `scripts:`")),
                );
                compiled = false;
                continue;
            }
            Err(error) => {
                let (span, path) = locate();
                diagnostics.push(
                    Diagnostic::new(Code::PackInvalid, error.to_string()).at(&name, span, path),
                );
                compiled = false;
                continue;
            }
        };
        digest_input.push('\0');
        digest_input.push_str(&source);
        match engine.compile(&source) {
            Ok(mut part) => {
                part.set_source(display.as_str());
                ast = ast.merge(&part);
            }
            Err(e) => {
                let position = e.position();
                let line = position.line().unwrap_or(1) as u32;
                let col = position.position().unwrap_or(1) as u32;
                diagnostics.add_source(SourceFile::new(display.clone(), source.as_str()));
                let message = e.err_type().to_string();
                diagnostics.push(
                    Diagnostic::new(
                        Code::PolicySyntax,
                        format!("the script of pack `{}` does not compile: {message}", manifest.name),
                    )
                    .at(&display, Some(clamp(&source, line, col)), "")
                    .label(message)
                    .help("policy scripts are Rhai; hooks are functions such as `fn route(ctx) { … }`"),
                );
                compiled = false;
            }
        }
    }
    if !compiled {
        return None;
    }

    // Every declared hook must be a function of one parameter.
    let mut hooks_ok = true;
    for (i, hook) in manifest.hooks.iter().enumerate() {
        let defined = ast
            .iter_functions()
            .any(|f| f.name == hook.as_str() && f.params.len() == 1);
        if !defined {
            let node = root.get("hooks").map(|h| &h.items()[i]);
            diagnostics.push(
                Diagnostic::new(
                    Code::HookNotDefined,
                    format!(
                        "pack `{}` declares the hook `{}` but no script defines `fn {}(ctx)`",
                        manifest.name,
                        hook.as_str(),
                        hook.as_str()
                    ),
                )
                .at(&name, node.map(|n| n.span), format!("hooks[{i}]"))
                .label("declared here")
                .help(format!(
                    "define `fn {}(ctx) {{ … }}` in {}, or remove it from `hooks`",
                    hook.as_str(),
                    one_of(&scripts.iter().map(String::as_str).collect::<Vec<_>>())
                )),
            );
            hooks_ok = false;
        }
    }
    if !hooks_ok {
        return None;
    }

    use sha2::Digest as _;
    let digest = super::digest_text(&sha2::Sha256::digest(digest_input.as_bytes()));
    Some(LoadedPack {
        manifest,
        files,
        ast: Arc::new(ast),
        digest,
    })
}

/// A span for a Rhai position, kept inside the text (Rhai reports end of input past it).
fn clamp(source: &str, line: u32, col: u32) -> Span {
    let lines = source.lines().count().max(1) as u32;
    if line > lines {
        let width = source.lines().last().unwrap_or("").chars().count() as u32;
        return Span::new(lines, width + 1, 1);
    }
    Span::new(line.max(1), col.max(1), 1)
}

/// The manifest checks, collecting every problem.
struct Checker<'a> {
    file: &'a str,
    diagnostics: &'a mut Diagnostics,
    ok: bool,
}

impl Checker<'_> {
    fn error(&mut self, code: Code, message: String, span: Span, path: &str) -> Diagnostic {
        self.ok = false;
        Diagnostic::new(code, message).at(self.file, Some(span), path)
    }

    fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    fn manifest(&mut self, root: &Node) {
        let Value::Map(entries) = &root.value else {
            let d = self
                .error(
                    Code::PackInvalid,
                    format!("`pack.yaml` must be a mapping, not {}", root.type_name()),
                    root.span,
                    "",
                )
                .help("start with `name: <pack>`, `version: \"1.0.0\"` and `hooks: [route]`");
            self.push(d);
            return;
        };
        for entry in entries {
            if !KEYS.contains(&entry.key.as_str()) {
                let d = self
                    .error(
                        Code::PackInvalid,
                        format!("unknown key `{}` in `pack.yaml`", entry.key),
                        entry.key_span,
                        &entry.key,
                    )
                    .label("not a pack.yaml key")
                    .maybe_help(did_you_mean(&entry.key, KEYS.iter().copied()))
                    .help_if_none(format!("the keys of `pack.yaml` are {}", one_of(KEYS)));
                self.push(d);
            }
        }
        for key in ["name", "version", "hooks"] {
            if root.get(key).is_none() {
                let d = self
                    .error(
                        Code::PackInvalid,
                        format!("`pack.yaml` has no `{key}`"),
                        root.span,
                        "",
                    )
                    .help(format!("add `{key}:`"));
                self.push(d);
            }
        }
        if let Some(node) = root.get("name") {
            match node.as_str() {
                Some(name) if is_kebab(name) => {}
                Some(name) => {
                    let d = self
                        .error(
                            Code::PackInvalid,
                            format!("the pack name `{name}` is not kebab-case"),
                            node.span,
                            "name",
                        )
                        .label("not kebab-case")
                        .help("use lowercase words joined by `-`, like `cost-routing`");
                    self.push(d);
                }
                None => self.wrong_type(node, "name", "a string"),
            }
        }
        if let Some(node) = root.get("version") {
            match &node.value {
                Value::Str(v) if is_version(v) => {}
                Value::Str(v) => {
                    let d = self
                        .error(
                            Code::PackInvalid,
                            format!("the version `{v}` is not a version number"),
                            node.span,
                            "version",
                        )
                        .help("write it like `1.0.0` (major.minor.patch)");
                    self.push(d);
                }
                Value::Int(_) | Value::Float(_) => {
                    let d = self
                        .error(
                            Code::PackInvalid,
                            "`version` must be a string".into(),
                            node.span,
                            "version",
                        )
                        .label("a number")
                        .help(
                            "quote it, like `version: \"1.0.0\"`, so that YAML keeps it as written",
                        );
                    self.push(d);
                }
                _ => self.wrong_type(node, "version", "a string"),
            }
        }
        if let Some(node) = root.get("description") {
            if node.as_str().is_none() {
                self.wrong_type(node, "description", "a string");
            }
        }
        if let Some(node) = root.get("enabled_by_default") {
            if !matches!(node.value, Value::Bool(_)) {
                self.wrong_type(node, "enabled_by_default", "true or false");
            }
        }
        if let Some(node) = root.get("hooks") {
            self.hooks(node);
        }
        if let Some(node) = root.get("scripts") {
            self.scripts(node);
        }
        if let Some(node) = root.get("params") {
            self.params(node);
        }
    }

    fn wrong_type(&mut self, node: &Node, path: &str, expected: &str) {
        let d = self
            .error(
                Code::PackInvalid,
                format!("`{path}` must be {expected}, not {}", node.type_name()),
                node.span,
                path,
            )
            .label(format!("expected {expected}"));
        self.push(d);
    }

    fn hooks(&mut self, node: &Node) {
        let Value::Seq(items) = &node.value else {
            self.wrong_type(
                node,
                "hooks",
                "a list of hooks (`route`, `govern`, `budget`)",
            );
            return;
        };
        if items.is_empty() {
            let d = self
                .error(
                    Code::PackInvalid,
                    "`hooks` is empty".into(),
                    node.span,
                    "hooks",
                )
                .help("list the hooks the pack defines: `route`, `govern`, `budget`");
            self.push(d);
        }
        let names = Hook::NAMES;
        let mut seen = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("hooks[{i}]");
            match item.as_str() {
                Some(h) if names.contains(&h) => {
                    if seen.contains(&h) {
                        let d = self
                            .error(
                                Code::PackInvalid,
                                format!("the hook `{h}` is listed twice"),
                                item.span,
                                &path,
                            )
                            .help("list each hook once");
                        self.push(d);
                    }
                    seen.push(h);
                }
                Some(h) => {
                    let d = self
                        .error(
                            Code::PackInvalid,
                            format!("unknown hook `{h}`"),
                            item.span,
                            &path,
                        )
                        .label("not a hook")
                        .maybe_help(did_you_mean(h, names.iter().copied()))
                        .help_if_none(format!("hooks are {}", one_of(names)));
                    self.push(d);
                }
                None => self.wrong_type(item, &path, "a hook name"),
            }
        }
    }

    fn scripts(&mut self, node: &Node) {
        let Value::Seq(items) = &node.value else {
            self.wrong_type(node, "scripts", "a list of file names");
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("scripts[{i}]");
            match item.as_str() {
                Some(s)
                    if !s.is_empty()
                        && !s.starts_with('/')
                        && !s.contains('\\')
                        && !s.split('/').any(|p| p == "..") => {}
                Some(s) => {
                    let d = self
                        .error(
                            Code::PackInvalid,
                            format!("the script path `{s}` leaves the pack"),
                            item.span,
                            &path,
                        )
                        .help("scripts are relative paths inside the pack's directory, like `policy.rhai`");
                    self.push(d);
                }
                None => self.wrong_type(item, &path, "a file name"),
            }
        }
    }

    fn params(&mut self, node: &Node) {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, "params", "a mapping of parameter names");
            return;
        };
        for entry in entries {
            let name = &entry.key;
            let base = format!("params.{name}");
            if !is_snake(name) {
                let d = self
                    .error(
                        Code::PackInvalid,
                        format!("the parameter name `{name}` is not snake_case"),
                        entry.key_span,
                        &base,
                    )
                    .help("use lowercase words joined by `_`, like `max_tier`");
                self.push(d);
            }
            let spec = &entry.value;
            let Value::Map(keys) = &spec.value else {
                self.wrong_type(spec, &base, "a mapping with `type` and `default`");
                continue;
            };
            for key in keys {
                if !PARAM_KEYS.contains(&key.key.as_str()) {
                    let d = self
                        .error(
                            Code::PackInvalid,
                            format!("unknown key `{}` in parameter `{name}`", key.key),
                            key.key_span,
                            &format!("{base}.{}", key.key),
                        )
                        .maybe_help(did_you_mean(&key.key, PARAM_KEYS.iter().copied()))
                        .help_if_none(format!("a parameter has {}", one_of(PARAM_KEYS)));
                    self.push(d);
                }
            }
            let kind = match spec.get("type") {
                None => {
                    let d = self
                        .error(
                            Code::PackInvalid,
                            format!("parameter `{name}` has no `type`"),
                            entry.key_span,
                            &base,
                        )
                        .help(format!("add `type:` ({})", one_of(TYPES)));
                    self.push(d);
                    None
                }
                Some(t) => match t.as_str() {
                    Some("string") => Some(ParamType::String),
                    Some("number") => Some(ParamType::Number),
                    Some("bool") => Some(ParamType::Bool),
                    Some("list") => Some(ParamType::List),
                    other => {
                        let shown =
                            other.map_or_else(|| t.type_name().to_string(), |o| format!("`{o}`"));
                        let d = self
                            .error(
                                Code::PackInvalid,
                                format!("parameter `{name}` has the unknown type {shown}"),
                                t.span,
                                &format!("{base}.type"),
                            )
                            .maybe_help(other.and_then(|o| did_you_mean(o, TYPES.iter().copied())))
                            .help_if_none(format!("types are {}", one_of(TYPES)));
                        self.push(d);
                        None
                    }
                },
            };
            match spec.get("default") {
                None => {
                    let d = self
                        .error(
                            Code::PackInvalid,
                            format!("parameter `{name}` has no `default`"),
                            entry.key_span,
                            &base,
                        )
                        .help(
                            "every parameter needs a default, so that the pack works unconfigured",
                        );
                    self.push(d);
                }
                Some(default) => {
                    if let Some(kind) = kind {
                        if !kind.accepts(&default.to_json()) || matches!(default.value, Value::Null)
                        {
                            let d = self
                                .error(
                                    Code::BadParamDefault,
                                    format!(
                                        "the default of parameter `{name}` is {}, not a {}",
                                        default.type_name(),
                                        kind.as_str()
                                    ),
                                    default.span,
                                    &format!("{base}.default"),
                                )
                                .label(format!("expected a {}", kind.as_str()))
                                .help("change the default or the declared type so that they agree");
                            self.push(d);
                        }
                    }
                }
            }
            if let Some(d) = spec.get("description") {
                if d.as_str().is_none() {
                    self.wrong_type(d, &format!("{base}.description"), "a string");
                }
            }
        }
    }
}

trait HelpIfNone {
    fn help_if_none(self, help: String) -> Self;
}

impl HelpIfNone for Diagnostic {
    fn help_if_none(self, help: String) -> Diagnostic {
        if self.help.is_some() {
            self
        } else {
            self.help(help)
        }
    }
}

fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_snake(name: &str) -> bool {
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_version(v: &str) -> bool {
    let (core, _) = v.split_once(['-', '+']).unwrap_or((v, ""));
    let parts: Vec<&str> = core.split('.').collect();
    (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert!(
            is_kebab("cost-routing") && is_kebab("a1") && !is_kebab("Cost") && !is_kebab("a--b")
        );
        assert!(is_version("1") && is_version("1.2.3") && is_version("0.1.0-beta.1"));
        assert!(!is_version("v1") && !is_version("1..2") && !is_version("1.2.3.4"));
    }
}
