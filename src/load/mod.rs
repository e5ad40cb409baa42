//! Load: find a mission (a path, or a name through the chain project → user → built-in), read
//! its bytes within limits, and parse them into a positioned YAML tree. No semantic checks here.

pub mod diff;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Code, Diagnostic, Diagnostics, SourceFile, Span};
use crate::project::{self, Project};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_missions.rs"));
}

/// Mission files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Where a mission was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Given as a path on the command line.
    Path,
    /// `.spectacular/missions/<name>/mission.yaml` in the project.
    Project,
    /// `<user config dir>/missions/<name>/mission.yaml`.
    User,
    /// Compiled into the binary from `missions/<name>/`.
    Builtin,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Path => "path",
            Origin::Project => "project",
            Origin::User => "user",
            Origin::Builtin => "built-in",
        })
    }
}

/// The directory a mission's relative paths (templates, schemas) resolve against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    Dir(PathBuf),
    /// A built-in mission: files come from the binary.
    Builtin(String),
}

impl Base {
    /// Read a file referenced by the mission, relative to the mission's directory.
    pub fn read(&self, relative: &str) -> Result<String, Error> {
        match self {
            Base::Dir(dir) => {
                let path = dir.join(relative);
                std::fs::read_to_string(&path).map_err(|source| Error::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
            Base::Builtin(name) => {
                let wanted = format!("{name}/{}", relative.trim_start_matches("./"));
                builtin::FILES
                    .iter()
                    .find(|(path, _)| *path == wanted)
                    .map(|(_, text)| text.to_string())
                    .ok_or(Error::NoBuiltinFile { path: wanted })
            }
        }
    }

    /// A display name for a file relative to the mission.
    pub fn display(&self, relative: &str, cwd: &Path) -> String {
        match self {
            Base::Dir(dir) => project::display_path(&dir.join(relative), cwd),
            Base::Builtin(name) => format!("builtin:missions/{name}/{relative}"),
        }
    }

    /// The directory on disk, when there is one.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Base::Dir(dir) => Some(dir),
            Base::Builtin(_) => None,
        }
    }
}

/// A mission located but not yet read.
#[derive(Clone, Debug)]
pub struct Located {
    /// The name shown in messages.
    pub display: String,
    pub origin: Origin,
    pub base: Base,
    /// The file on disk, or `None` for a built-in mission.
    pub path: Option<PathBuf>,
}

/// Why a mission could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no mission named `{name}`; looked in {}", searched.join(", "))]
    NotFound {
        name: String,
        searched: Vec<String>,
        suggestion: Option<String>,
    },
    #[error("failed to read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "builtin:missions/{path}: no such file; the built-in missions hold only their own files"
    )]
    NoBuiltinFile { path: String },
}

/// The parsed mission document: its source, its YAML tree (absent when unparseable) and the
/// problems found so far.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub source: SourceFile,
    pub located: Located,
    pub root: Option<yaml::Node>,
    pub diagnostics: Diagnostics,
}

/// Is this argument a path (rather than a mission name)?
fn looks_like_path(arg: &str) -> bool {
    arg.contains('/')
        || arg.contains('\\')
        || arg.ends_with(".yaml")
        || arg.ends_with(".yml")
        || Path::new(arg).exists()
}

/// Find the mission `arg` names: a file or directory path, or a mission name resolved through
/// the project, then the user's config dir, then the built-in missions.
pub fn locate(arg: &str, cwd: &Path) -> Result<Located, Error> {
    locate_in(arg, cwd, &Project::discover(cwd))
}

/// [`locate`] in a project already found: mission names resolve through `project`'s
/// `.spectacular/missions/` first.
pub fn locate_in(arg: &str, cwd: &Path, project: &Project) -> Result<Located, Error> {
    if looks_like_path(arg) {
        let mut path = cwd.join(arg);
        if path.is_dir() {
            path = path.join("mission.yaml");
        }
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cwd.to_path_buf());
        return Ok(Located {
            display: project::display_path(&path, cwd),
            origin: Origin::Path,
            base: Base::Dir(base),
            path: Some(path),
        });
    }
    let mut searched = Vec::new();
    let mut on_disk = vec![(Origin::Project, project.dot_dir().join("missions"))];
    if let Some(user) = project::user_config_dir() {
        on_disk.push((Origin::User, user.join("missions")));
    }
    for (origin, dir) in on_disk {
        let file = dir.join(arg).join("mission.yaml");
        if file.is_file() {
            return Ok(Located {
                display: project::display_path(&file, cwd),
                origin,
                base: Base::Dir(dir.join(arg)),
                path: Some(file),
            });
        }
        searched.push(project::display_path(&dir, cwd));
    }
    if builtin_text(arg).is_some() {
        return Ok(Located {
            display: format!("builtin:missions/{arg}/mission.yaml"),
            origin: Origin::Builtin,
            base: Base::Builtin(arg.to_string()),
            path: None,
        });
    }
    searched.push("the built-in missions".into());
    let names: Vec<String> = list(cwd).into_iter().map(|m| m.name).collect();
    let suggestion = crate::diag::did_you_mean(arg, names.iter().map(String::as_str));
    Err(Error::NotFound {
        name: arg.to_string(),
        searched,
        suggestion,
    })
}

fn builtin_text(name: &str) -> Option<&'static str> {
    let wanted = format!("{name}/mission.yaml");
    builtin::FILES
        .iter()
        .find(|(path, _)| *path == wanted)
        .map(|(_, text)| *text)
}

/// Read and parse a located mission. Oversized, non-UTF-8 and empty files become diagnostics.
pub fn load(located: Located) -> Result<Loaded, Error> {
    let bytes: Vec<u8> = match (&located.path, &located.base) {
        (Some(path), _) => std::fs::read(path).map_err(|source| Error::Read {
            path: located.display.clone(),
            source,
        })?,
        (None, Base::Builtin(name)) => builtin_text(name).unwrap_or_default().as_bytes().to_vec(),
        (None, Base::Dir(_)) => Vec::new(),
    };
    Ok(load_bytes(located, &bytes))
}

/// Parse mission bytes already in memory (also the entry point for fuzzing).
pub fn load_bytes(located: Located, bytes: &[u8]) -> Loaded {
    let name = located.display.clone();
    let mut diagnostics = Diagnostics::new();
    let finish = |text: String, root, diagnostics| Loaded {
        source: SourceFile::new(name.clone(), Arc::<str>::from(text)),
        located: located.clone(),
        root,
        diagnostics,
    };
    if bytes.len() > MAX_FILE_BYTES {
        diagnostics.push(
            Diagnostic::new(
                Code::TooLarge,
                format!(
                    "`{name}` is {} bytes; a mission file may be at most {MAX_FILE_BYTES} bytes",
                    bytes.len()
                ),
            )
            .at(&name, None, "")
            .help("split the mission, or move long prompts into template files referenced by `prompt:`"),
        );
        return finish(String::new(), None, diagnostics);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let good = std::str::from_utf8(good).unwrap_or_default();
            let line = good.matches('\n').count() + 1;
            let col = good.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            let span = Span::new(line as u32, col as u32, 1);
            let shown = String::from_utf8_lossy(bytes).into_owned();
            diagnostics.add_source(SourceFile::new(name.clone(), shown.clone()));
            diagnostics.push(
                Diagnostic::new(Code::NotUtf8, format!("`{name}` is not valid UTF-8"))
                    .at(&name, Some(span), "")
                    .label(format!("invalid byte 0x{:02x}", bytes[e.valid_up_to()]))
                    .help("save the file with UTF-8 encoding"),
            );
            return finish(shown, None, diagnostics);
        }
    };
    let text = text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text);
    diagnostics.add_source(SourceFile::new(name.clone(), text.clone()));
    if let Some(d) = forbidden_character(&text, &name) {
        diagnostics.push(d);
        return finish(text, None, diagnostics);
    }
    let parsed = yaml::parse(&text, &name);
    for d in parsed.diagnostics {
        diagnostics.push(d);
    }
    let root = match parsed.root {
        Some(root) if root.value == yaml::Value::Null && !diagnostics.has_errors() => {
            diagnostics.push(empty(&name));
            None
        }
        None if !diagnostics.has_errors() => {
            diagnostics.push(empty(&name));
            None
        }
        Some(root) if !matches!(root.value, yaml::Value::Map(_)) => {
            diagnostics.push(
                Diagnostic::new(
                    Code::NotAMapping,
                    format!("the mission is {}, not a mapping of keys", root.type_name()),
                )
                .at(&name, Some(root.span), "")
                .label("expected `mission:`, `phases:` and other keys here")
                .help("a mission file starts like `mission: my-mission` followed by `phases:`"),
            );
            None
        }
        other => other,
    };
    finish(text, root, diagnostics)
}

/// YAML allows tabs, line breaks and printable characters only; the parser lets some control
/// characters (NUL, escape sequences) through, which would then reach messages and terminals.
fn forbidden_character(text: &str, name: &str) -> Option<Diagnostic> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{85}')
            || !(c.is_control() || c == '\u{fffe}' || c == '\u{ffff}')
    };
    let (offset, c) = text.char_indices().find(|&(_, c)| !allowed(c))?;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    let code = format!("U+{:04X}", u32::from(c));
    Some(
        Diagnostic::new(
            Code::YamlSyntax,
            format!("invalid YAML: the control character {code} is not allowed"),
        )
        .at(name, Some(Span::new(line as u32, col as u32, 1)), "")
        .label(format!("{code} here"))
        .help("remove it; inside a double-quoted string it can be written as an escape such as `\\x07`"),
    )
}

fn empty(name: &str) -> Diagnostic {
    Diagnostic::new(Code::EmptyDocument, format!("`{name}` holds no YAML document"))
        .at(name, None, "")
        .help("start with `mission: <id>` and a `phases:` mapping (see `spectacular missions show software-dev`)")
}

/// A mission that can be found by name.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Listed {
    pub name: String,
    pub origin: Origin,
    /// Where it is (a path, or `builtin:missions/<name>/mission.yaml`).
    pub location: String,
    /// Shadowed by a mission of the same name in a higher layer.
    pub shadowed: bool,
}

/// Every mission reachable by name, highest precedence first within each name.
pub fn list(cwd: &Path) -> Vec<Listed> {
    list_in(cwd, &Project::discover(cwd))
}

/// [`list`] in a project already found.
pub fn list_in(cwd: &Path, project: &Project) -> Vec<Listed> {
    let mut found = Vec::new();
    let mut scan = |origin: Origin, dir: PathBuf| {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut names: Vec<(String, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().join("mission.yaml").is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.path().join("mission.yaml"),
                )
            })
            .collect();
        names.sort();
        for (name, file) in names {
            found.push(Listed {
                name,
                origin,
                location: project::display_path(&file, cwd),
                shadowed: false,
            });
        }
    };
    scan(Origin::Project, project.dot_dir().join("missions"));
    if let Some(user) = project::user_config_dir() {
        scan(Origin::User, user.join("missions"));
    }
    for (path, _) in builtin::FILES {
        if let Some(name) = path
            .strip_suffix("/mission.yaml")
            .filter(|n| !n.contains('/'))
        {
            found.push(Listed {
                name: name.to_string(),
                origin: Origin::Builtin,
                location: format!("builtin:missions/{path}"),
                shadowed: false,
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for listed in &mut found {
        listed.shadowed = !seen.insert(listed.name.clone());
    }
    found
}

/// The files of a built-in mission (relative to its directory), for `missions eject`.
pub fn builtin_files(name: &str) -> Vec<(&'static str, &'static str)> {
    let prefix = format!("{name}/");
    builtin::FILES
        .iter()
        .filter_map(|(path, text)| path.strip_prefix(prefix.as_str()).map(|rel| (rel, *text)))
        .collect()
}
