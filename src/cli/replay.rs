//! `spectacular replay`: a run's log folded again without side effects (its timeline, or
//! `--verify` against the projection), and what-if replay: the run's recorded policy decisions
//! evaluated again under other packs (`--policies`) or prices (`--models`), for one run or for
//! every run of the store (`--all --since 30d`).

use std::path::{Path, PathBuf};

use super::{Context, Exit, Failure, Outcome};
use crate::config::models::Catalog;
use crate::policy::{Layer, PackFiles, Packs};
use crate::project::user_config_dir;
use crate::query::whatif::{self, RunReport, Setup};
use crate::record::{fold, Event, Store};

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The run id (a unique prefix, or `last`); the latest run when omitted.
    pub run: Option<String>,
    /// Check that the SQLite projection equals the fold of the log; exit 1 if it does not.
    #[arg(long, conflicts_with_all = ["policies", "models", "all"])]
    pub verify: bool,
    /// What if: evaluate the run's recorded policy decisions again with these packs added (a
    /// pack directory, a directory of packs, or a pack's name), without running anything.
    #[arg(long, num_args = 1.., value_name = "PACK")]
    pub policies: Vec<String>,
    /// What if: price the recorded tokens with this `models.yaml` on top of the catalogue.
    #[arg(long, value_name = "FILE")]
    pub models: Option<PathBuf>,
    /// What if, for every run of the store (with `--since`): per run and in total.
    #[arg(long, conflicts_with = "run")]
    pub all: bool,
    /// With `--all`: only runs started since a date (`2026-11-01`) or a duration ago (`30d`).
    #[arg(long, requires = "all")]
    pub since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub nats: super::from_nats::NatsArgs,
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::internal(e.to_string())
}

pub fn replay(context: &Context, args: ReplayArgs) -> Outcome {
    let store = context.store();
    let wanted: Vec<&str> = args.run.as_deref().into_iter().collect();
    super::from_nats::fetch_missing(&store, args.nats.nats.as_deref(), &wanted)?;
    let what_if = !args.policies.is_empty() || args.models.is_some();
    if args.all && !what_if {
        return Err(Failure::usage(
            "`--all` compares runs under other policies or prices\n  help: add `--policies <dir|pack>` or `--models <models.yaml>`",
        ));
    }
    if what_if {
        let tools = WhatIf::new(context, &args.policies, args.models.as_deref())?;
        if args.all {
            return replay_all(context, &store, &tools, args.since.as_deref(), args.json);
        }
        let run_id = resolve(&store, args.run.as_deref())?;
        let events = store.read_events(&run_id).map_err(internal)?;
        let report = tools.evaluate(&events)?;
        if args.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&report).map_err(internal)?
            )?;
        } else {
            out!("{}", whatif::text_report(&report))?;
        }
        return Ok(Exit::Success);
    }
    let run_id = resolve(&store, args.run.as_deref())?;
    let events = store.read_events(&run_id).map_err(internal)?;
    let summary = fold(&events);
    if !args.verify {
        if args.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&crate::query::status_json(&summary, &events))
                    .map_err(internal)?
            )?;
        } else {
            super::query::print_events(&events, false)?;
            outln!()?;
            out!("{}", crate::query::status_text(&summary, &events))?;
        }
        return Ok(Exit::Success);
    }
    let projection = store.projection().map_err(internal)?;
    let differences = projection.verify(&run_id, &events).map_err(internal)?;
    if differences.is_empty() {
        outln!(
            "run {run_id}: the projection matches the log ({} events)",
            events.len()
        )?;
        Ok(Exit::Success)
    } else {
        outln!("run {run_id}: the projection differs from the log:")?;
        for d in &differences {
            outln!("  {d}")?;
        }
        outln!(
            "delete `{}` to rebuild it from the logs",
            crate::project::display_path(&store.db_path(), &context.cwd)
        )?;
        Ok(Exit::RunFailed)
    }
}

fn resolve(store: &Store, run: Option<&str>) -> Result<String, Failure> {
    store
        .resolve_run(run.unwrap_or("last"))
        .map_err(|e| Failure::usage(e.to_string()))
}

/// Every run of the store started since `since`, evaluated; a run that cannot be read is
/// reported on stderr and the command exits with code 70 after the others.
fn replay_all(
    context: &Context,
    store: &Store,
    tools: &WhatIf,
    since: Option<&str>,
    json: bool,
) -> Outcome {
    let since = since
        .map(|s| crate::query::cost::parse_since(s, std::time::SystemTime::now()))
        .transpose()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let ids = if store.runs_dir().is_dir() {
        store.run_ids().map_err(internal)?
    } else {
        Vec::new()
    };
    let mut reports = Vec::new();
    let mut damaged = Vec::new();
    for run_id in ids {
        let events = match store.read_events(&run_id) {
            Ok(events) => events,
            Err(e) => {
                damaged.push((run_id, e.to_string()));
                continue;
            }
        };
        let started = events.first().map(|e| e.ts.as_str()).unwrap_or("");
        if since.as_deref().is_some_and(|s| started < s) {
            continue;
        }
        reports.push(tools.evaluate(&events)?);
    }
    if json {
        let value = serde_json::json!({
            "since": since,
            "runs": reports,
            "total": whatif::Totals::of(&reports),
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(internal)?
        )?;
    } else if reports.is_empty() {
        let when = since.map(|s| format!(" since {s}")).unwrap_or_default();
        outln!("no runs{when} in the store")?;
    } else {
        out!("{}", whatif::text_aggregate(&reports))?;
    }
    if damaged.is_empty() {
        return Ok(Exit::Success);
    }
    for (run_id, e) in &damaged {
        eoutln!(
            "{}",
            context.error_line(&format!("run `{run_id}` cannot be read: {e}"))
        );
    }
    Ok(Exit::Internal)
}

/// The packs and the catalogue a what-if evaluates with.
pub(super) struct WhatIf {
    packs: std::cell::RefCell<Packs>,
    /// Where `packs` came from, to load them again for a run that sets params.
    sources: Vec<(Layer, PackFiles)>,
    /// How many of `sources` come before the given packs (the run's mission-local packs go
    /// there).
    base: usize,
    /// The working directory, for display names.
    cwd: PathBuf,
    catalog: Catalog,
    repriced: bool,
    /// The names of the packs given on the command line (always enabled).
    given: Vec<String>,
}

impl WhatIf {
    /// Load the packs of the project (built-in, user, project) with `policies` on top, and
    /// the catalogue with `models` on top. Problems in what was given are reported and end the
    /// command with exit code 65.
    pub(super) fn new(
        context: &Context,
        policies: &[String],
        models: Option<&Path>,
    ) -> Result<WhatIf, Failure> {
        let dot_dir = context.project.dot_dir();
        let user = user_config_dir();
        let builtin = crate::policy::pack::builtin_names();
        // What was given: pack directories, directories of packs, or built-in names.
        let mut given_sources = Vec::new();
        let mut given_builtin = Vec::new();
        for item in policies {
            let path = context.cwd.join(item);
            if path.join(crate::policy::pack::MANIFEST).is_file() {
                given_sources.push((Layer::Mission, PackFiles::dir(&path, &context.cwd)));
            } else if path.is_dir() {
                let dirs = pack_dirs(&path);
                if dirs.is_empty() {
                    return Err(Failure {
                        exit: Exit::Invalid,
                        message: format!(
                            "`{item}` holds no policy pack (no `pack.yaml` in it or in its folders)"
                        ),
                    });
                }
                for dir in dirs {
                    given_sources.push((Layer::Mission, PackFiles::dir(&dir, &context.cwd)));
                }
            } else {
                // A pack's name: built-in, or found in the user's or the project's packs.
                given_builtin.push(item.clone());
            }
        }
        let (given_only, diagnostics) = Packs::from_sources(given_sources.clone(), &[]);
        if diagnostics.has_errors() {
            eout!("{}", context.render_stderr(&diagnostics));
            return Err(Failure {
                exit: Exit::Invalid,
                message: String::new(),
            });
        }
        let mut given: Vec<String> = given_only.list().into_iter().map(|p| p.name).collect();
        given.extend(given_builtin);
        // The packs the run had, as the engine discovers them, then the given ones on top.
        let mut sources: Vec<(Layer, PackFiles)> = builtin
            .into_iter()
            .map(|name| (Layer::Builtin, PackFiles::Builtin { name }))
            .collect();
        if let Some(user) = &user {
            for dir in pack_dirs(&user.join("policies")) {
                sources.push((Layer::User, PackFiles::dir(&dir, &context.cwd)));
            }
        }
        for dir in pack_dirs(&dot_dir.join("policies")) {
            sources.push((Layer::Project, PackFiles::dir(&dir, &context.cwd)));
        }
        let base = sources.len();
        sources.extend(given_sources);
        let (packs, diagnostics) = Packs::from_sources(sources.clone(), &[]);
        for d in diagnostics.iter().filter(|d| d.is_error()) {
            tracing::warn!("a policy pack is not used: {} ({})", d.message, d.file);
        }
        let known: Vec<String> = packs.list().into_iter().map(|p| p.name).collect();
        for name in &given {
            if !known.contains(name) {
                let help = crate::diag::did_you_mean(name, known.iter().map(String::as_str))
                    .unwrap_or_else(|| {
                        "give a pack directory, a directory of packs, or a pack's name \
                         (`spectacular policy list`)"
                            .into()
                    });
                return Err(Failure::usage(format!(
                    "`{name}` is neither a policy pack directory nor the name of a pack\n  help: {help}"
                )));
            }
        }
        let mut catalog = crate::config::models::load(&dot_dir, user.as_deref()).0;
        if let Some(file) = models {
            let path = context.cwd.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Failure::usage(format!("failed to read `{}`: {e}", file.display())))?;
            let name = crate::project::display_path(&path, &context.cwd);
            let (parsed, diagnostics) = crate::config::models::parse(&text, &name);
            let Some(parsed) = parsed.filter(|_| !diagnostics.has_errors()) else {
                eout!("{}", context.render_stderr(&diagnostics));
                return Err(Failure {
                    exit: Exit::Invalid,
                    message: String::new(),
                });
            };
            for (model, spec) in parsed.models {
                catalog
                    .models
                    .insert(model, (spec, crate::config::models::Layer::Project));
            }
        }
        Ok(WhatIf {
            packs: std::cell::RefCell::new(packs),
            sources,
            base,
            cwd: context.cwd.clone(),
            catalog,
            repriced: models.is_some(),
            given,
        })
    }

    /// Evaluate one run: its own packs (those that decided something in it and those its
    /// pinned mission enables, with the params it sets) and the given ones are enabled.
    pub(super) fn evaluate(&self, events: &[Event]) -> Result<RunReport, Failure> {
        let (enabled, params) = mission_policies(events);
        let mut names = whatif::enabled_names(events);
        names.extend(enabled);
        names.extend(self.given.iter().cloned());
        let local = self.mission_local(events);
        // Names of packs that no longer exist only matter to the run that had them.
        if params.is_empty() && local.is_empty() {
            let mut packs = self.packs.borrow_mut();
            let _ = packs.enable(&names);
            return Ok(self.run(events, &packs));
        }
        let mut sources = self.sources[..self.base].to_vec();
        sources.extend(local);
        sources.extend(self.sources[self.base..].iter().cloned());
        let (mut packs, _) = Packs::from_sources(sources, &names);
        for (name, values) in &params {
            if let Err(e) = packs.set_params(name, values) {
                tracing::warn!("params of policy pack `{name}` are not used: {e}");
            }
        }
        Ok(self.run(events, &packs))
    }

    /// The packs beside the run's mission file (its mission-local layer), except those a given
    /// pack replaces.
    fn mission_local(&self, events: &[Event]) -> Vec<(Layer, PackFiles)> {
        let Some(crate::record::EventData::RunStarted(started)) = events.first().map(|e| &e.data)
        else {
            return Vec::new();
        };
        if started.mission_source.starts_with("builtin:") {
            return Vec::new();
        }
        let mission = self.cwd.join(&started.mission_source);
        let Some(dir) = mission.parent() else {
            return Vec::new();
        };
        pack_dirs(&dir.join("policies"))
            .into_iter()
            .map(|d| (Layer::Mission, PackFiles::dir(&d, &self.cwd)))
            .filter(|source| {
                let (one, _) = Packs::from_sources(vec![source.clone()], &[]);
                one.list().iter().all(|p| !self.given.contains(&p.name))
            })
            .collect()
    }

    fn run(&self, events: &[Event], packs: &Packs) -> RunReport {
        let setup = Setup {
            packs,
            catalog: &self.catalog,
            repriced: self.repriced,
        };
        whatif::evaluate(events, &setup)
    }
}

type Params = serde_json::Map<String, serde_json::Value>;

/// The packs the run's pinned mission enables (`policies:`), and the params it sets for them.
fn mission_policies(events: &[Event]) -> (Vec<String>, Vec<(String, Params)>) {
    let Some(crate::record::EventData::RunStarted(started)) = events.first().map(|e| &e.data)
    else {
        return Default::default();
    };
    let parsed = crate::load::yaml::parse(&started.mission_text, &started.mission_source);
    let list = parsed
        .root
        .as_ref()
        .and_then(|r| r.get("policies"))
        .map(|p| p.to_json());
    let mut names = Vec::new();
    let mut params = Vec::new();
    for item in list
        .as_ref()
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
    {
        match item {
            serde_json::Value::String(name) => names.push(name.clone()),
            serde_json::Value::Object(map) => {
                for (name, values) in map {
                    names.push(name.clone());
                    if let Some(values) = values.as_object().filter(|v| !v.is_empty()) {
                        params.push((name.clone(), values.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    (names, params)
}

/// The directories below `dir` that hold a `pack.yaml`, sorted.
fn pack_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(crate::policy::pack::MANIFEST).is_file())
        .collect();
    dirs.sort();
    dirs
}
