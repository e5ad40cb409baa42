//! `spectacular run <mission>` and `spectacular resume <run>`: drive a run to its end and map
//! how it ended to an exit code, telling the user how to continue.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::progress::{Mode, Progress};
use super::{Context, Exit, Failure, Outcome};
use crate::execute::{self, Engine, Settings, StartRequest};
use crate::model::{InputType, Mission};
use crate::record::Store;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A mission file or directory, or a mission name.
    pub mission: String,
    /// An input, as `name=value` (repeatable). `file` inputs must exist; `list` inputs take
    /// `a,b,c` or a JSON array.
    #[arg(short, long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// Take this Spec Kit `tasks.md` as the plan instead of asking a planner agent (a spec
    /// target only): one work package per open task, dependencies from its phases and `[P]`,
    /// done tasks skipped; `spectacular plan <run> --write` ticks what the run merged.
    #[arg(long, value_name = "FILE")]
    pub tasks: Option<PathBuf>,
    /// At most this many attempts run at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel: u32,
    /// Stream the run's events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// When the run succeeds, fast-forward its base branch to the integration branch (missions
    /// that merge work packages); without it the integration branch is left for review.
    #[arg(long)]
    pub apply: bool,
    /// When the run stops to ask the spec's questions, ask them here (on a terminal), record
    /// the answers and go on.
    #[arg(long, conflicts_with = "json")]
    pub interactive: bool,
    /// Run the attempts on NATS workers (`spectacular worker`) through this server, and
    /// mirror the run's log to JetStream, e.g. `nats://127.0.0.1:4222`.
    #[arg(long, env = crate::execute::distributed::NATS_ENV, value_name = "URL")]
    pub nats: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The run id (a unique prefix, or `last`).
    pub run: String,
    /// Continue with the mission as it is now, even though it changed since the run started.
    #[arg(long)]
    pub upgrade: bool,
    /// Stream the run's events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// When the run succeeds, fast-forward its base branch to the integration branch.
    #[arg(long)]
    pub apply: bool,
    /// When the run stops to ask the spec's questions, ask them here (on a terminal), record
    /// the answers and go on.
    #[arg(long, conflicts_with = "json")]
    pub interactive: bool,
    /// Run the attempts on NATS workers (`spectacular worker`) through this server, and
    /// mirror the run's log to JetStream, e.g. `nats://127.0.0.1:4222`.
    #[arg(long, env = crate::execute::distributed::NATS_ENV, value_name = "URL")]
    pub nats: Option<String>,
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    // One thread: the engine is one loop; attempts are child processes, not threads.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))
}

pub fn run(context: &Context, args: RunArgs) -> Outcome {
    // A Markdown file runs the project's spec mission with it as the `spec` input.
    let spec_run =
        super::spec_run::target(context, &args.mission, &args.inputs, args.tasks.as_deref())?;
    if spec_run.is_none() && args.tasks.is_some() {
        return Err(Failure::usage(format!(
            "--tasks takes the plan of a spec, and `{}` is not a Markdown spec\n  help: run \
             `spectacular run specs/NNN-name/spec.md --tasks specs/NNN-name/tasks.md`",
            args.mission
        )));
    }
    if !args.json {
        for note in spec_run.iter().flat_map(|s| &s.notes) {
            eoutln!("{note}");
        }
    }
    let (mission_arg, input_args) = match &spec_run {
        Some(s) => (s.mission.clone(), s.inputs.clone()),
        None => (args.mission.clone(), args.inputs.clone()),
    };
    let validated = context.validate(&mission_arg)?;
    let Some(mission) = validated.mission else {
        eout!("{}", context.render_stderr(&validated.diagnostics));
        return Ok(Exit::Invalid);
    };
    let inputs = parse_inputs(&mission, &input_args, context)?;
    let store = context.store();
    let (progress, observer) = watch(context, &store, args.json);
    let runtime = runtime()?;
    let project_root = context.project.root.clone();
    let mission_id = mission.id.clone();
    let settings = nats_settings(context, &runtime, args.nats.as_deref())?;
    let engine = runtime.block_on(async {
        Engine::start(StartRequest {
            store,
            mission,
            inputs,
            max_parallel: args.max_parallel,
            project_root,
            settings,
            observer,
        })
    });
    let engine = engine.map_err(|e| match e {
        execute::Error::Unready { .. } | execute::Error::NoBase(_) => Failure {
            exit: Exit::Invalid,
            message: e.to_string(),
        },
        execute::Error::Notify(e) => notify_failure(context, e),
        e => Failure::internal(e.to_string()),
    })?;
    if !args.json {
        eoutln!("run {} of `{mission_id}`", engine.run_id());
    }
    // A run of an issue remembers it: its plan and end are commented there, and its pull
    // request closes it.
    if let Some(link) = spec_run.as_ref().and_then(|s| s.issue.as_ref()) {
        let run_dir = context.store().run_dir(engine.run_id());
        if let Err(e) = crate::forge::publish::write_link(&run_dir, link) {
            eoutln!("warning: {e}; the run goes on without its issue");
        }
    }
    drive(
        context,
        &runtime,
        engine,
        &progress,
        args.json,
        args.interactive,
        args.apply,
    )
}

pub fn resume(context: &Context, args: ResumeArgs) -> Outcome {
    let store = context.store();
    let runtime = runtime()?;
    let settings = nats_settings(context, &runtime, args.nats.as_deref())?;
    let run_id = match &settings.nats {
        // With NATS the stream is the authority: the local log is rebuilt from it (this
        // machine may never have seen the run).
        Some(link) => {
            let run_id = args.run.clone();
            let run_dir = store
                .checked_run_dir(&run_id)
                .ok()
                .filter(|_| crate::execute::distributed::check_token(&run_id))
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "`{run_id}` is not a run id; with --nats, give the whole id"
                    ))
                })?;
            let events = runtime
                .block_on(crate::execute::distributed::mirror::read(link, &run_id))
                .map_err(|e| Failure::usage(e.to_string()))?;
            crate::execute::distributed::mirror::write_local(&run_dir, &events)
                .map_err(|e| Failure::internal(e.to_string()))?;
            run_id
        }
        None => store
            .resolve_run(&args.run)
            .map_err(|e| Failure::usage(e.to_string()))?,
    };
    let (progress, observer) = watch(context, &store, args.json);
    let engine = runtime.block_on(async {
        Engine::resume(
            store,
            &run_id,
            &context.cwd,
            &context.project,
            args.upgrade,
            settings,
            observer,
        )
    });
    let engine = match engine {
        Ok(engine) => engine,
        // A finished run has nothing to resume, but its work can still be applied.
        Err(execute::Error::Finished { .. }) if args.apply => {
            return super::apply::run(context, super::apply::Args { run: run_id })
        }
        Err(
            e @ (execute::Error::Drift { .. }
            | execute::Error::Finished { .. }
            | execute::Error::NotARun(_)),
        ) => return Err(Failure::usage(e.to_string())),
        Err(e @ (execute::Error::PinnedInvalid { .. } | execute::Error::Unready { .. })) => {
            return Err(Failure {
                exit: Exit::Invalid,
                message: e.to_string(),
            })
        }
        Err(execute::Error::Notify(e)) => return Err(notify_failure(context, e)),
        Err(execute::Error::Record(e @ crate::record::Error::Locked { .. })) => {
            return Err(Failure::usage(e.to_string()))
        }
        Err(e) => return Err(Failure::internal(e.to_string())),
    };
    if !args.json {
        eoutln!("resuming run {run_id}");
    }
    drive(
        context,
        &runtime,
        engine,
        &progress,
        args.json,
        args.interactive,
        args.apply,
    )
}

/// The project's webhooks cannot be used as configured: refused before anything runs.
fn notify_failure(context: &Context, e: crate::notify::Error) -> Failure {
    let message = match e {
        crate::notify::Error::Config(diagnostics) => format!(
            "the project's config.yaml has errors\n{}",
            context.render_stderr(&diagnostics)
        ),
        e => e.to_string(),
    };
    Failure {
        exit: Exit::Invalid,
        message,
    }
}

fn drive(
    context: &Context,
    runtime: &tokio::runtime::Runtime,
    engine: Engine,
    progress: &Arc<Mutex<Progress>>,
    json: bool,
    interactive: bool,
    apply: bool,
) -> Outcome {
    let run_id = engine.run_id().to_string();
    // With `sync:`, the run's events go to the control plane as they are recorded, from a
    // thread of its own; whatever is not sent shortly after the run ends stays queued.
    let sync = crate::sync::Background::start(&context.store());
    if let (None, Err(e @ crate::sync::Error::Config { .. })) =
        (&sync, crate::sync::Settings::load(&context.store()))
    {
        if !json {
            eoutln!("warning: {e}");
        }
    }
    let outcome = runtime.block_on(engine.drive());
    if let Some(sync) = sync {
        sync.finish(std::time::Duration::from_secs(5));
    }
    if let Ok(mut p) = progress.lock() {
        p.finish();
    }
    let outcome = outcome.map_err(|e| match e {
        execute::Error::Distributed(e @ crate::execute::distributed::Error::Superseded { .. }) => {
            Failure::usage(e.to_string())
        }
        e => Failure::internal(format!("{e}\nthe engine stopped; the log keeps everything recorded so far: `spectacular resume {run_id}` continues"))
    })?;
    let say = |text: String| {
        if !json {
            eoutln!("{text}");
        }
    };
    // A spec in a Spec Kit directory may get the checked plan back, on request.
    if let Some(line) = super::spec_run::export_hint(&context.store(), &run_id, &context.project) {
        say(line);
    }
    // The issue the run came from hears of its plan and its end; a success may open its
    // pull request.
    let succeeded = matches!(outcome, execute::Outcome::Succeeded);
    let (forge_lines, forge_error) = super::pr::after_run(context, &run_id, succeeded);
    if !succeeded {
        for line in &forge_lines {
            say(line.clone());
        }
    }
    let exit = match outcome {
        execute::Outcome::Succeeded => {
            say(format!("run {run_id} succeeded"));
            match finish_branches(context, &run_id, apply) {
                Ok(lines) => {
                    for line in lines.into_iter().chain(forge_lines.iter().cloned()) {
                        say(line);
                    }
                    match &forge_error {
                        Some(message) => {
                            eoutln!("{message}");
                            Exit::RunFailed
                        }
                        None => Exit::Success,
                    }
                }
                Err(error) => {
                    eoutln!("{error}");
                    Exit::RunFailed
                }
            }
        }
        execute::Outcome::Failed => {
            say(format!(
                "run {run_id} failed; `spectacular status {run_id}` shows what happened"
            ));
            Exit::RunFailed
        }
        execute::Outcome::Suspended => {
            let events = context.store().read_events(&run_id).unwrap_or_default();
            let questions = super::answer::pending(&events);
            let summary = crate::record::fold(&events);
            let gates = super::control::waiting_gates(&summary);
            let gate = match gates.as_slice() {
                [gate] => gate.to_string(),
                _ => "<gate>".to_string(),
            };
            if questions.is_empty() {
                let which = match gates.as_slice() {
                    [] | [_] => String::new(),
                    more => format!(" (waiting: {})", crate::diag::one_of(more)),
                };
                say(format!(
                    "run {run_id} is waiting for approval; continue with `spectacular approve {run_id} {gate} --resume` (or `--reject`){which}; `spectacular status {run_id}` shows the gates"
                ));
                return Ok(Exit::Suspended);
            }
            use std::io::IsTerminal;
            if interactive
                && std::io::stdin().is_terminal()
                && super::answer::ask(context, &run_id)?
            {
                return resume(
                    context,
                    ResumeArgs {
                        run: run_id,
                        upgrade: false,
                        json,
                        interactive,
                        apply,
                        nats: None,
                    },
                );
            }
            say(format!(
                "run {run_id} is waiting for answers; give them with `spectacular answer {run_id} <number> \"…\"` (or `--file answers.yaml`), then `spectacular resume {run_id}`; `spectacular approve {run_id} {gate} --resume` goes on without them"
            ));
            Exit::Suspended
        }
        execute::Outcome::Canceled => {
            say(format!(
                "run {run_id} canceled; resume it with `spectacular resume {run_id}`"
            ));
            Exit::Canceled
        }
    };
    // The report on disk says how the run ended, and the last line says where it is.
    if let Some(path) = super::report::finalize(&context.store(), &run_id) {
        say(format!(
            "report: {}",
            crate::project::display_path(&path, &context.project.root)
        ));
    }
    Ok(exit)
}

/// The engine's settings, connected to NATS when `--nats` (or `SPECTACULAR_NATS`) names a
/// server: an unreachable server, or a `config.yaml` with errors, stops the command before
/// anything is recorded.
fn nats_settings(
    context: &Context,
    runtime: &tokio::runtime::Runtime,
    url: Option<&str>,
) -> Result<Settings, Failure> {
    let mut settings = Settings::default();
    if let Some(url) = url.filter(|u| !u.is_empty()) {
        let mut config = crate::execute::distributed::Config::from_env(url)
            .map_err(|e| Failure::usage(e.to_string()))?;
        let project = context.project_config()?;
        if let Some(timeout) = project.nats.as_ref().and_then(|n| n.queue_timeout()) {
            config.queue_timeout = timeout;
        }
        let link = runtime
            .block_on(crate::execute::distributed::coordinator::Link::connect(
                config,
            ))
            .map_err(|e| Failure::usage(e.to_string()))?;
        settings.nats = Some(Arc::new(link));
    }
    Ok(settings)
}

/// Check `--input name=value` against the mission's inputs; apply defaults.
pub fn parse_inputs(
    mission: &Mission,
    raw: &[String],
    context: &Context,
) -> Result<BTreeMap<String, Value>, Failure> {
    let mut values = BTreeMap::new();
    let names: Vec<&str> = mission.inputs.keys().map(String::as_str).collect();
    for item in raw {
        let Some((name, text)) = item.split_once('=') else {
            return Err(Failure::usage(format!(
                "`--input {item}` is not `name=value`"
            )));
        };
        let Some(input) = mission.inputs.get(name) else {
            let help =
                crate::diag::did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                    format!("the mission's inputs: {}", crate::diag::one_of(&names))
                });
            return Err(Failure::usage(format!(
                "mission `{}` has no input `{name}`\n  help: {help}",
                mission.id
            )));
        };
        let bad =
            |what: &str| Failure::usage(format!("input `{name}` must be {what}, not `{text}`"));
        let value = match input.kind {
            InputType::String => Value::String(text.to_string()),
            InputType::Number => {
                if let Ok(i) = text.parse::<i64>() {
                    Value::from(i)
                } else {
                    text.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .ok_or_else(|| bad("a number"))?
                }
            }
            InputType::Bool => match text {
                "true" | "yes" | "1" => Value::Bool(true),
                "false" | "no" | "0" => Value::Bool(false),
                _ => return Err(bad("`true` or `false`")),
            },
            InputType::File => {
                let path = context.cwd.join(text);
                if !path.is_file() {
                    return Err(Failure::usage(format!(
                        "input `{name}`: no file at `{text}`"
                    )));
                }
                let absolute: PathBuf = path.canonicalize().unwrap_or(path);
                Value::String(absolute.display().to_string())
            }
            InputType::List => {
                if text.trim_start().starts_with('[') {
                    serde_json::from_str::<Value>(text)
                        .ok()
                        .filter(Value::is_array)
                        .ok_or_else(|| bad("a JSON array or `a,b,c`"))?
                } else {
                    Value::Array(
                        text.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|s| Value::String(s.to_string()))
                            .collect(),
                    )
                }
            }
        };
        values.insert(name.to_string(), value);
    }
    let mut missing = Vec::new();
    for (name, input) in &mission.inputs {
        if values.contains_key(name) {
            continue;
        }
        match &input.default {
            Some(Value::String(path)) if input.kind == InputType::File => {
                // File defaults are relative to the mission's directory.
                let full = mission
                    .base
                    .dir()
                    .map(|d| d.join(path))
                    .unwrap_or_else(|| PathBuf::from(path));
                if !full.is_file() {
                    return Err(Failure::usage(format!(
                        "input `{name}` defaults to `{path}`, which does not exist beside the mission; pass `--input {name}=<file>`"
                    )));
                }
                let absolute = full.canonicalize().unwrap_or(full);
                values.insert(name.clone(), Value::String(absolute.display().to_string()));
            }
            Some(default) => {
                values.insert(name.clone(), default.clone());
            }
            None if input.required => missing.push(name.as_str()),
            None => {}
        }
    }
    if !missing.is_empty() {
        let example: Vec<String> = missing.iter().map(|m| format!("--input {m}=…")).collect();
        return Err(Failure::usage(format!(
            "mission `{}` needs the input{} {}\n  help: add {}",
            mission.id,
            if missing.len() == 1 { "" } else { "s" },
            crate::diag::one_of(&missing).replace(" or ", " and "),
            example.join(" ")
        )));
    }
    Ok(values)
}

/// A store for a context.
impl Context {
    pub fn store(&self) -> Store {
        Store::of(&self.project, &self.cwd, self.store_override.as_deref())
    }
}

/// Why `--apply` did not bring a succeeded run's work onto its base branch.
#[derive(Debug, thiserror::Error)]
pub(super) enum ApplyError {
    #[error(
        "run {run_id} succeeded, but `--apply` has nothing to apply: the mission does not \
         merge work on branches"
    )]
    NothingToApply { run_id: String },
    #[error("run {run_id} succeeded, but {source}")]
    Apply {
        run_id: String,
        source: Box<crate::git::apply::Error>,
    },
}

/// After a run that worked on branches succeeded: its worktrees and work-package branches go,
/// its integration branch stays for review, or (`--apply`) its base branch is fast-forwarded
/// to it. What happened, as lines to show; an `Err` when `--apply` could not fast-forward.
pub(super) fn finish_branches(
    context: &Context,
    run_id: &str,
    apply: bool,
) -> Result<Vec<String>, ApplyError> {
    let store = context.store();
    let Ok(events) = store.read_events(run_id) else {
        return Ok(Vec::new());
    };
    let base = events.iter().find_map(|e| match &e.data {
        crate::record::EventData::RunStarted(s) => s.git_base.clone(),
        _ => None,
    });
    if base.is_none() {
        if apply {
            return Err(ApplyError::NothingToApply {
                run_id: run_id.to_string(),
            });
        }
        return Ok(Vec::new());
    };
    let project_root = context.project.root.clone();
    let Ok(root) = crate::git::ops::toplevel(&project_root) else {
        return Ok(Vec::new());
    };
    // Nothing is left behind but the integration branch.
    let target = crate::git::clean::Target::Run(run_id.to_string());
    if let Err(e) = crate::git::clean::clean(&store, &root, &target, false) {
        tracing::warn!("cleaning the run's worktrees: {e}");
    }
    let integration = crate::git::integration_branch(run_id);
    if !apply {
        let Ok(head) = crate::git::ops::commit_of(&root, &integration) else {
            return Ok(Vec::new());
        };
        let short = head.get(..12).unwrap_or(&head);
        return Ok(vec![format!(
            "the merged work is on branch `{integration}` ({short}); review it, or merge it with \
             `git merge --ff-only {integration}` (or run with `--apply`)"
        )]);
    }
    match crate::git::apply::apply(&store, &root, run_id) {
        Ok(applied) => Ok(vec![format!(
            "`{}` fast-forwarded to `{}` ({}), the commit the checks ran on",
            applied.branch,
            applied.integration,
            applied.commit.get(..12).unwrap_or(&applied.commit)
        )]),
        Err(source) => Err(ApplyError::Apply {
            run_id: run_id.to_string(),
            source: Box::new(source),
        }),
    }
}

/// The live view of a run, and the observer that feeds it every durable event (and, under
/// GitHub Actions without `--json`, prints the annotations `builtin/check` wrote on stdout,
/// where the runner turns them into annotations of the workflow).
fn watch(
    context: &Context,
    store: &crate::record::Store,
    json: bool,
) -> (Arc<Mutex<Progress>>, execute::Observer) {
    let progress = Arc::new(Mutex::new(Progress::new(
        Mode::choose(json),
        context.color_stderr,
    )));
    let annotate = !json && std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true");
    let (view, store) = (progress.clone(), store.clone());
    let observer: execute::Observer = Box::new(move |e| {
        if let Ok(mut p) = view.lock() {
            p.event(e);
        }
        if annotate {
            print_annotations(&store, e);
        }
    });
    (progress, observer)
}

/// Print the annotations of the attempt an `attempt.succeeded` or `attempt.failed` ends.
fn print_annotations(store: &crate::record::Store, event: &crate::record::Event) {
    let (phase, attempt) = match &event.data {
        crate::record::EventData::AttemptSucceeded(d) => (&d.phase, d.attempt),
        crate::record::EventData::AttemptFailed(d) => (&d.phase, d.attempt),
        _ => return,
    };
    let run_dir = store.run_dir(&event.run_id);
    let Ok(dir) =
        crate::record::store::join_under(&run_dir, &["attempts", phase, &attempt.to_string()])
    else {
        return;
    };
    if let Ok(text) = std::fs::read_to_string(dir.join("annotations.txt")) {
        let _ = out!("{text}");
    }
}
