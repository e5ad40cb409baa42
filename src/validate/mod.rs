//! Validate: a loaded YAML tree becomes a [`Mission`], or a list of every problem found.
//!
//! Passes, in order: the structural pass against the generated JSON Schema
//! ([`structure`]), then semantic passes that read the tree leniently, skipping parts with the
//! wrong shape (already reported), so that one run reports *all* problems: ids and kinds
//! ([`semantic`]), the `needs` graph, durations and ranges, and finally expressions, templates
//! and referenced files ([`exprs`]). A [`Mission`] is built only when no error was found.

mod exprs;
mod semantic;
mod structure;

use std::path::Path;

use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::load::yaml::Node;
use crate::load::{Base, Loaded};
use crate::model::raw::RawMission;
use crate::model::Mission;
use crate::project::Project;

pub use crate::conform::{path_text, Seg};

/// Shared state of the passes.
pub(crate) struct Ctx<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub base: &'a Base,
    pub cwd: &'a Path,
    /// The project the mission is validated in (its agents, budgets and policy packs).
    pub project: &'a Project,
    pub diagnostics: Diagnostics,
}

impl Ctx<'_> {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }
}

/// The result of validation: the mission when there were no errors, and every diagnostic.
#[derive(Debug)]
pub struct Validated {
    pub mission: Option<Mission>,
    pub diagnostics: Diagnostics,
}

/// Validate a loaded mission in the project found from `cwd`; see [`validate_in`].
pub fn validate(loaded: &Loaded, cwd: &Path) -> Validated {
    validate_in(loaded, cwd, &Project::discover(cwd))
}

/// Validate a loaded mission in `project`. `cwd` is used to display paths of referenced files.
pub fn validate_in(loaded: &Loaded, cwd: &Path, project: &Project) -> Validated {
    let mut diagnostics = loaded.diagnostics.clone();
    let Some(root) = &loaded.root else {
        return Validated {
            mission: None,
            diagnostics,
        };
    };
    let mut ctx = Ctx {
        file: &loaded.source.name,
        text: &loaded.source.text,
        base: &loaded.located.base,
        cwd,
        project,
        diagnostics: Diagnostics::new(),
    };
    let json = root.to_json();
    let conforms = structure::check(&mut ctx, root, &json);
    let graph = semantic::check(&mut ctx, root);
    exprs::check(&mut ctx, root, &graph);
    check_policies(&mut ctx, root, loaded);
    check_agents(&mut ctx, loaded);

    let mut mission = None;
    if conforms && !ctx.diagnostics.has_errors() && !diagnostics.has_errors() {
        match serde_json::from_value::<RawMission>(json) {
            Ok(raw) => match semantic::build(raw, loaded) {
                Ok(m) => mission = Some(m),
                Err(e) => ctx.push(bug(ctx.file, &e.to_string())),
            },
            Err(e) => ctx.push(bug(ctx.file, &e.to_string())),
        }
    }
    diagnostics.extend(ctx.diagnostics);
    Validated {
        mission,
        diagnostics,
    }
}

/// Check a YAML document (a configuration file) against a JSON Schema; see
/// [`crate::conform::check_document`], which this forwards to.
pub fn check_document(
    root: &Node,
    schema: &serde_json::Value,
    file: &str,
    _text: &str,
) -> Diagnostics {
    crate::conform::check_document(root, schema, file)
}

/// The `agents.yaml` beside the mission and the project's must be valid.
fn check_agents(ctx: &mut Ctx<'_>, loaded: &Loaded) {
    let project = ctx.project;
    let dirs = [
        loaded.located.base.dir().map(std::path::Path::to_path_buf),
        Some(project.dot_dir()),
    ];
    let mut seen = Vec::new();
    for dir in dirs.into_iter().flatten() {
        let path = dir.join("agents.yaml");
        if seen.contains(&path) {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&path) {
            let name = crate::project::display_path(&path, ctx.cwd);
            let (_, diagnostics) = crate::agents::config::check(&text, &name);
            ctx.diagnostics.extend(diagnostics);
        }
        seen.push(path);
    }
    // The project's day and month limits.
    let (_, diagnostics) = crate::config::budgets::load(&project.dot_dir());
    ctx.diagnostics.extend(diagnostics);
}

/// The policy packs the mission will run with must compile, and the packs it names in
/// `policies:` must exist.
fn check_policies(ctx: &mut Ctx<'_>, root: &Node, loaded: &Loaded) {
    let project = ctx.project;
    let user = crate::project::user_config_dir().map(|d| d.join("policies"));
    // (name, params, span, index) of each entry of `policies:`.
    type Params = serde_json::Map<String, serde_json::Value>;
    let mut named: Vec<(String, Option<Params>, Option<Span>, usize)> = Vec::new();
    for (i, item) in root
        .get("policies")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match item.as_str() {
            Some(name) => named.push((name.to_string(), None, Some(item.span), i)),
            None => {
                let entries = item.entries();
                if entries.len() > 1 {
                    ctx.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            "a `policies` entry with params names one pack",
                        )
                        .at(ctx.file, Some(item.span), format!("policies[{i}]"))
                        .help("write one entry per pack: `- approved-models: { models: [gpt] }`"),
                    );
                }
                for entry in entries {
                    let params = entry.value.to_json().as_object().cloned();
                    named.push((entry.key.clone(), params, Some(entry.key_span), i));
                }
            }
        }
    }
    let enabled: Vec<String> = named.iter().map(|(n, _, _, _)| n.clone()).collect();
    let mission_packs = loaded.located.base.dir().map(|d| d.join("policies"));
    let has_packs = |d: Option<&std::path::Path>| d.is_some_and(|d| d.is_dir());
    if enabled.is_empty()
        && !has_packs(mission_packs.as_deref())
        && !has_packs(Some(&project.dot_dir().join("policies")))
        && !has_packs(user.as_deref())
    {
        // Only the built-in packs, which are tested with the binary.
        return;
    }
    let (mut packs, diagnostics) = crate::policy::Packs::discover_from(
        &project.dot_dir(),
        user.as_deref(),
        loaded.located.base.dir(),
        &[],
        ctx.cwd,
    );
    ctx.diagnostics.extend(diagnostics);
    let known: Vec<String> = packs.list().into_iter().map(|p| p.name).collect();
    // Unknown names are reported below, at their place in the mission.
    let enabled: Vec<String> = enabled.into_iter().filter(|n| known.contains(n)).collect();
    packs.enable(&enabled);
    for (name, params, span, i) in named {
        if let (true, Some(params)) = (known.contains(&name), &params) {
            if let Err(reason) = packs.set_params(&name, params) {
                ctx.push(
                    Diagnostic::new(Code::InvalidValue, format!("params of policy pack `{name}`: {reason}"))
                        .at(ctx.file, span, format!("policies[{i}].{name}"))
                        .help(format!("`spectacular policy list` shows `{name}`; its `pack.yaml` declares the params")),
                );
            }
        }
        if !known.contains(&name) {
            ctx.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("the mission enables unknown policy pack `{name}`"),
                )
                .at(ctx.file, span, format!("policies[{i}]"))
                .label("no pack of this name")
                .help(
                    crate::diag::did_you_mean(&name, known.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("known packs: {}", known.join(", "))),
                ),
            );
        }
    }
}

fn bug(file: &str, detail: &str) -> Diagnostic {
    Diagnostic::new(
        Code::WrongType,
        format!("the mission passed validation but could not be read ({detail}); this is a bug in spectacular, please report it"),
    )
    .at(file, None, "")
}
