//! `spectacular completions <shell>`: shell completion that completes real values.
//!
//! The script a shell sources is a few lines that call the binary back on every Tab
//! (`SPECTACULAR_COMPLETE=<shell> spectacular -- <words>`); clap_complete's engine then walks
//! the same clap command tree the parser uses, so every subcommand and option completes as
//! soon as it exists, and the values of arguments come from [`command`], which attaches a
//! completer by the argument's id wherever it appears in the tree:
//!
//! | argument id | completes |
//! |---|---|
//! | `run` | `last` and the run ids of the store (directory names under `runs/`) |
//! | `mission`, and `name` under `missions` | mission names (project, user, built-in), then paths |
//! | `phase` | of `approve`: the gates of the run on the line that wait; else the run's phases |
//! | `pack`, `policies` | policy pack names (built-in, user, project), then paths |
//!
//! A new command that names its arguments the same way completes without a change here.
//!
//! A completion call must be quick: it lists directories and reads small files (the run's
//! `mission.lock.yaml`; for `approve`, the approval lines of the run's log). It never opens
//! the SQLite projection, never folds a log and never creates anything.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Arg, Command, CommandFactory, ValueHint};
use clap_complete::engine::{
    ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter as _,
};
use clap_complete::env::EnvCompleter;

use super::{Cli, Exit, Failure, Outcome};
use crate::project::Project;
use crate::record::Store;

/// The variable that turns a call of the binary into a completion request. Our own name, so
/// that a `COMPLETE` set for another program never changes what `spectacular` does.
pub const VAR: &str = "SPECTACULAR_COMPLETE";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    #[value(name = "powershell")]
    PowerShell,
    Elvish,
}

impl CompletionShell {
    fn completer(self) -> &'static dyn EnvCompleter {
        match self {
            CompletionShell::Bash => &clap_complete::env::Bash,
            CompletionShell::Zsh => &clap_complete::env::Zsh,
            CompletionShell::Fish => &clap_complete::env::Fish,
            CompletionShell::PowerShell => &clap_complete::env::Powershell,
            CompletionShell::Elvish => &clap_complete::env::Elvish,
        }
    }
}

/// Print the script that registers the completion of `spectacular` in a shell.
pub fn run(args: Args) -> Outcome {
    let completer = completer_program();
    let mut script = Vec::new();
    args.shell
        .completer()
        .write_registration(VAR, "spectacular", "spectacular", &completer, &mut script)
        .map_err(|e| Failure::internal(format!("failed to write the script: {e}")))?;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(Exit::Success),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::closed()),
        Err(e) => Err(Failure::internal(format!("failed to write to stdout: {e}"))),
    }
}

/// The program the script calls back: as it was called (`spectacular` from `PATH`), or made
/// absolute when it was called by a relative path (`./target/debug/spectacular`).
fn completer_program() -> String {
    let arg0 = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("spectacular"));
    let program = if arg0.components().count() > 1 && arg0.is_relative() {
        std::env::current_dir()
            .map(|cwd| cwd.join(&arg0))
            .unwrap_or(arg0)
    } else {
        arg0
    };
    program.to_string_lossy().into_owned()
}

/// Answer a completion request and exit, when this call is one (`SPECTACULAR_COMPLETE` is
/// set); otherwise return at once.
pub fn complete_if_asked() {
    if std::env::var_os(VAR).is_none_or(|v| v.is_empty()) {
        return;
    }
    clap_complete::CompleteEnv::with_factory(command)
        .var(VAR)
        .complete();
}

/// The command tree with a value completer on every argument that takes a run, a mission, a
/// phase or a policy pack (see the module's table).
pub fn command() -> Command {
    attach(Cli::command(), &[])
}

fn attach(command: Command, parents: &[String]) -> Command {
    let name = command.get_name().to_string();
    let mut path = parents.to_vec();
    path.push(name.clone());
    let parent = parents.last().cloned().unwrap_or_default();
    let command = command.mut_args(|arg| complete_arg(arg, &name, &parent));
    let sub_path = path.clone();
    command.mut_subcommands(move |sub| attach(sub, &sub_path))
}

fn complete_arg(arg: Arg, command: &str, parent: &str) -> Arg {
    let id = arg.get_id().as_str().to_string();
    match (parent, command, id.as_str()) {
        (_, _, "run") => arg.add(ArgValueCompleter::new(runs)),
        ("missions", "eject", "name") => arg.add(ArgValueCompleter::new(builtin_missions)),
        ("missions", _, "name") | (_, _, "mission") => arg.add(ArgValueCompleter::new(missions)),
        (_, "approve", "phase") => arg.add(ArgValueCompleter::new(waiting_gates)),
        (_, _, "phase") => arg.add(ArgValueCompleter::new(phases)),
        (_, _, "pack" | "policies") => arg.add(ArgValueCompleter::new(packs)),
        _ if arg.get_value_hint() == ValueHint::Unknown => match arg.get_value_names() {
            Some([name, ..]) if name.as_str() == "FILE" => arg.value_hint(ValueHint::FilePath),
            Some([name, ..]) if name.as_str() == "DIR" => arg.value_hint(ValueHint::DirPath),
            _ => arg,
        },
        _ => arg,
    }
}

/// What the completion request says about where to look: the working directory and the
/// store (`--store DIR` on the line, else `SPECTACULAR_STORE`), and the words of the line.
struct Request {
    cwd: PathBuf,
    /// The project of `cwd`, found once.
    project: Project,
    store: Store,
    /// The words of the command line, the program's name first, the word being completed last.
    words: Vec<String>,
}

impl Request {
    fn read() -> Request {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        // The callback is `spectacular -- spectacular <words…>`.
        let words: Vec<String> = std::env::args_os()
            .skip_while(|a| a != "--")
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut store_dir = std::env::var_os("SPECTACULAR_STORE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let last = words.len().saturating_sub(1);
        for (i, word) in words.iter().enumerate().take(last) {
            if word == "--store" {
                if let Some(next) = words.get(i + 1).filter(|_| i + 1 < last) {
                    store_dir = Some(PathBuf::from(next));
                }
            } else if let Some(dir) = word.strip_prefix("--store=") {
                store_dir = Some(PathBuf::from(dir));
            }
        }
        let project = Project::discover(&cwd);
        let store = Store::of(&project, &cwd, store_dir.as_deref());
        Request {
            cwd,
            project,
            store,
            words,
        }
    }

    /// The run the line names before the word being completed (an id, a unique prefix of one,
    /// or `last`), else the latest run (the default of the commands whose run is optional).
    fn run_id(&self) -> Option<String> {
        let last = self.words.len().saturating_sub(1);
        self.words
            .iter()
            .take(last)
            .skip(1)
            .filter(|w| !w.starts_with('-') && (w.len() >= 4 || w.as_str() == "last"))
            .find_map(|w| self.store.resolve_run(w).ok())
            .or_else(|| self.store.resolve_run("last").ok())
    }
}

fn text(current: &OsStr) -> Option<&str> {
    current.to_str()
}

/// Does `candidate` complete `typed` (a prefix; run ids ignore case like `resolve_run`)?
fn extends(candidate: &str, typed: &str) -> bool {
    candidate.starts_with(typed)
        || candidate
            .to_ascii_uppercase()
            .starts_with(&typed.to_ascii_uppercase())
}

/// `last` and the run ids, newest first, each with when it started (read from the id).
fn runs(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = text(current) else {
        return Vec::new();
    };
    let request = Request::read();
    let ids = request.store.run_ids().unwrap_or_default();
    let mut out = Vec::new();
    if !ids.is_empty() && "last".starts_with(typed) {
        out.push(CompletionCandidate::new("last").help(Some("the latest run".into())));
    }
    for id in ids.iter().rev().filter(|id| extends(id, typed)) {
        let help = ulid::Ulid::from_string(id).ok().map(|u| {
            let at = humantime::format_rfc3339_seconds(u.datetime()).to_string();
            format!("started {} UTC", at.replace('T', " ").trim_end_matches('Z')).into()
        });
        out.push(CompletionCandidate::new(id).help(help));
    }
    ordered(out)
}

/// Keep the order given (shells that sort their own way may still sort).
fn ordered(candidates: Vec<CompletionCandidate>) -> Vec<CompletionCandidate> {
    candidates
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.display_order(Some(i)))
        .collect()
}

/// Mission names (each once, from the layer that wins), then paths when the word looks like one
/// or no name fits.
fn missions(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = text(current) else {
        return Vec::new();
    };
    let request = Request::read();
    let mut out: Vec<CompletionCandidate> = crate::load::list_in(&request.cwd, &request.project)
        .into_iter()
        .filter(|m| !m.shadowed && m.name.starts_with(typed))
        .map(|m| {
            let origin = match m.origin {
                crate::load::Origin::Project => "project mission",
                crate::load::Origin::User => "user mission",
                crate::load::Origin::Builtin => "built-in mission",
                _ => "mission",
            };
            CompletionCandidate::new(m.name).help(Some(origin.into()))
        })
        .collect();
    with_paths(&mut out, current, &request.cwd);
    out
}

/// The built-in missions (what `missions eject` takes).
fn builtin_missions(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = text(current) else {
        return Vec::new();
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    crate::load::list(&cwd)
        .into_iter()
        .filter(|m| m.origin == crate::load::Origin::Builtin && m.name.starts_with(typed))
        .map(|m| CompletionCandidate::new(m.name))
        .collect()
}

/// Add paths when the word looks like one (`./`, `../`, `/`, `~`, holds a `/` or a `.`) or
/// nothing else fits.
fn with_paths(out: &mut Vec<CompletionCandidate>, current: &OsStr, cwd: &Path) {
    let typed = current.to_string_lossy();
    let looks_like_path = typed.contains('/') || typed.contains('.') || typed.starts_with('~');
    if out.is_empty() || looks_like_path {
        out.extend(PathCompleter::any().current_dir(cwd).complete(current));
    }
}

/// Policy pack names of every layer but the mission's (built-in, user, project), then paths.
fn packs(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = text(current) else {
        return Vec::new();
    };
    let request = Request::read();
    let mut names: Vec<(String, &str)> = crate::policy::pack::builtin_names()
        .into_iter()
        .map(|n| (n, "built-in pack"))
        .collect();
    let project_dot = request.project.dot_dir();
    let mut layers = Vec::new();
    if let Some(user) = crate::project::user_config_dir() {
        layers.push((user.join("policies"), "user pack"));
    }
    layers.push((project_dot.join("policies"), "project pack"));
    for (dir, origin) in layers {
        for name in pack_names(&dir) {
            names.retain(|(n, _)| *n != name);
            names.push((name, origin));
        }
    }
    names.sort();
    let mut out: Vec<CompletionCandidate> = names
        .into_iter()
        .filter(|(n, _)| n.starts_with(typed))
        .map(|(n, origin)| CompletionCandidate::new(n).help(Some(origin.into())))
        .collect();
    with_paths(&mut out, current, &request.cwd);
    out
}

/// The names of the packs in a layer's directory: each pack's `name:` in its `pack.yaml`
/// (a line read, not a parse), else its directory's name.
fn pack_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let manifest = entry.path().join(crate::policy::pack::MANIFEST);
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let declared = text.lines().find_map(|line| {
            let value = line.strip_prefix("name:")?.trim();
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            (!value.is_empty()).then(|| value.to_string())
        });
        names.push(declared.unwrap_or_else(|| entry.file_name().to_string_lossy().into_owned()));
    }
    names
}

/// The phases of the run on the line: the keys of `phases:` in its pinned mission.
fn phases(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = text(current) else {
        return Vec::new();
    };
    let request = Request::read();
    let Some(run_id) = request.run_id() else {
        return Vec::new();
    };
    let lock = request.store.run_dir(&run_id).join("mission.lock.yaml");
    let Ok(text) = std::fs::read_to_string(&lock) else {
        return Vec::new();
    };
    let parsed = crate::load::yaml::parse(&text, "mission.lock.yaml");
    let Some(phases) = parsed.root.as_ref().and_then(|root| root.get("phases")) else {
        return Vec::new();
    };
    phases
        .entries()
        .iter()
        .map(|entry| entry.key.clone())
        .filter(|name| name.starts_with(typed))
        .map(CompletionCandidate::new)
        .collect()
}

/// The gates of the run on the line that wait for a decision: requested and not yet decided.
/// Only the log's approval lines are decoded; the rest is skipped unread.
fn waiting_gates(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = text(current) else {
        return Vec::new();
    };
    let request = Request::read();
    let Some(run_id) = request.run_id() else {
        return Vec::new();
    };
    let Ok(file) = std::fs::File::open(request.store.events_path(&run_id)) else {
        return Vec::new();
    };
    let mut waiting: Vec<(String, String)> = Vec::new();
    let finder = memchr::memmem::Finder::new(b"\"approval.");
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        match std::io::BufRead::read_until(&mut reader, b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if finder.find(&line).is_none() || line.last() != Some(&b'\n') {
            continue;
        }
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
            continue;
        };
        let phase = event["data"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match event["type"].as_str() {
            Some("approval.requested") => {
                let reason = event["data"]["reason"].as_str().unwrap_or_default();
                waiting.retain(|(p, _)| *p != phase);
                waiting.push((phase, reason.to_string()));
            }
            Some("approval.decided") => waiting.retain(|(p, _)| *p != phase),
            _ => {}
        }
    }
    waiting
        .into_iter()
        .filter(|(phase, _)| phase.starts_with(typed))
        .map(|(phase, reason)| {
            let help = (!reason.is_empty()).then(|| format!("waits: {reason}").into());
            CompletionCandidate::new(phase).help(help)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument named by the convention gets a completer, wherever it is in the tree
    /// (commands added later included).
    #[test]
    fn the_convention_reaches_every_command() {
        fn walk(command: &Command, path: String, found: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "run" | "mission" | "phase" | "pack" | "policies") {
                    assert!(
                        arg.get::<ArgValueCompleter>().is_some(),
                        "`{path} <{id}>` has no completer"
                    );
                    found.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut found = Vec::new();
        walk(&command(), "spectacular".into(), &mut found);
        for expected in [
            "spectacular status run",
            "spectacular approve phase",
            "spectacular run mission",
            "spectacular policy explain policies",
        ] {
            assert!(found.iter().any(|f| f == expected), "{expected}: {found:?}");
        }
    }
}
