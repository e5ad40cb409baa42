//! `spectacular run <spec.md>`: a Markdown file as the run target runs the project's spec
//! mission (`spec_mission` in `config.yaml`, default `software-dev`) with the file as its
//! `spec` input. A spec in a Spec Kit feature directory gets the artifacts beside it as the
//! `context` input (but for the files Spectacular wrote there), and the run's checked plan can
//! be written back there as Spec Kit's `plan.md` and `tasks.md` on request (`spectacular plan
//! <run> --write`): a run never changes the user's checkout.

use std::path::{Path, PathBuf};

use super::{Context, Failure};
use crate::config::project::DEFAULT_SPEC_MISSION;
use crate::project::{display_path, Project};
use crate::record::event::EventData;
use crate::record::Store;
use crate::tasks::{speckit, PlanReport, REPORT_VALUE};

/// What to run for a spec target.
pub struct SpecRun {
    pub mission: String,
    pub inputs: Vec<String>,
    /// What to tell the user before the run starts (the check command chosen, and why).
    pub notes: Vec<String>,
    /// The issue the spec was fetched from (`github:owner/repo#123`), to remember in the run.
    pub issue: Option<crate::forge::publish::Link>,
}

/// Is `target` an issue reference (`github:owner/repo#123`, `gitlab:group/project#45`)? Then
/// the issue is fetched into a spec file below the store, and run like one.
fn issue_target(
    context: &Context,
    target: &str,
    inputs: &[String],
    tasks: Option<&Path>,
) -> Option<Result<SpecRun, Failure>> {
    let reference = match crate::forge::IssueRef::parse(target)? {
        Ok(r) => r,
        Err(e) => return Some(Err(Failure::usage(e.to_string()))),
    };
    Some((|| {
        let store = context.store();
        let config = context.project_config()?;
        let forge = crate::forge::ForgeConfig::from_project(&config);
        let api = crate::forge::connect(reference.kind, &forge).map_err(forge_failure)?;
        let (path, issue) = crate::forge::publish::fetch_spec(&store.dir, api.as_ref(), &reference)
            .map_err(publish_failure)?;
        let shown = path.display().to_string();
        let mut run = self::target(context, &shown, inputs, tasks)?.ok_or_else(|| {
            Failure::internal(format!(
                "the spec of {reference} is not a Markdown file; this is a bug in spectacular"
            ))
        })?;
        let root = Project::discover(&context.cwd).root;
        run.notes.insert(
            0,
            format!(
                "fetched {reference} ({} comment{}, labels: {}) into {}",
                issue.comments.len(),
                if issue.comments.len() == 1 { "" } else { "s" },
                if issue.labels.is_empty() {
                    "none".to_string()
                } else {
                    issue.labels.join(", ")
                },
                display_path(&path, &root)
            ),
        );
        run.issue = Some(crate::forge::publish::Link {
            issue: reference.clone(),
            title: issue.title.clone(),
            url: issue.url.clone(),
        });
        Ok(run)
    })())
}

/// A forge error as a failure: what the user can fix is a usage error.
pub fn forge_failure(e: crate::forge::Error) -> Failure {
    use crate::forge::Error as E;
    let exit = match &e {
        E::NoToken { .. } | E::BadApiUrl { .. } => super::Exit::Usage,
        E::Status { status, .. } if (400..500).contains(status) => super::Exit::Usage,
        _ => super::Exit::RunFailed,
    };
    Failure {
        exit,
        message: e.to_string(),
    }
}

/// A publishing error as a failure.
pub fn publish_failure(e: crate::forge::publish::PublishError) -> Failure {
    use crate::forge::publish::PublishError as E;
    match e {
        E::Forge(e) => forge_failure(e),
        E::TooLarge { .. } => Failure {
            exit: super::Exit::Invalid,
            message: e.to_string(),
        },
        E::Io { .. } | E::Record(_) => Failure::internal(e.to_string()),
        E::Push { .. } => Failure {
            exit: super::Exit::RunFailed,
            message: e.to_string(),
        },
        e => Failure::usage(e.to_string()),
    }
}

/// Is `target` a Markdown file? Then the mission and the inputs to run it with: the spec, the
/// Spec Kit context, the configured `spec_inputs`, the team's `tasks.md` as the plan
/// (`--tasks`), and `--input`s (which win).
pub fn target(
    context: &Context,
    target: &str,
    inputs: &[String],
    tasks: Option<&Path>,
) -> Result<Option<SpecRun>, Failure> {
    if let Some(run) = issue_target(context, target, inputs, tasks) {
        return run.map(Some);
    }
    let is_markdown = Path::new(target)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("markdown"));
    let path = context.cwd.join(target);
    if is_markdown && !path.exists() {
        return Err(Failure::usage(format!(
            "no such file: `{target}`\n  help: a Markdown run target is a spec to implement; \
             check the path (it is relative to {})",
            context.cwd.display()
        )));
    }
    if !is_markdown || !path.is_file() {
        return Ok(None);
    }
    let root = context.project.root.clone();
    let config = context.project_config()?;
    let mission = config
        .spec_mission
        .clone()
        .unwrap_or_else(|| DEFAULT_SPEC_MISSION.to_string());
    let given = |name: &str| {
        inputs
            .iter()
            .any(|i| i.split_once('=').map(|(n, _)| n) == Some(name))
    };
    let mut all = vec![format!("spec={target}")];
    if given("spec") {
        return Err(Failure::usage(format!(
            "`{target}` is the spec already; leave out `--input spec=…`"
        )));
    }
    if !given("context") {
        if let Some(layout) = speckit::detect(&path) {
            // What Spectacular wrote there itself (an earlier run's plan written back on
            // request) is not the team's context.
            let files: Vec<String> = layout
                .artifacts
                .iter()
                .filter(|a| !speckit::written_by_us(a))
                .map(|a| display_path(a, &root))
                .collect();
            if !files.is_empty() && declares(context, &mission, "context") {
                all.push(format!("context={}", files.join(",")));
            }
        }
    }
    for (name, value) in &config.spec_inputs {
        if !given(name) && declares(context, &mission, name) {
            all.push(format!("{name}={value}"));
        }
    }
    let mut notes = Vec::new();
    if let Some(tasks) = tasks {
        if given(speckit::TASKS_INPUT) {
            return Err(Failure::usage(
                "give the team's tasks.md once: `--tasks FILE` or `--input tasks=FILE`",
            ));
        }
        if !declares(context, &mission, speckit::TASKS_INPUT) {
            return Err(Failure::usage(format!(
                "--tasks needs a spec mission with a `{}` input, and `{mission}` has none\n  \
                 help: run with the built-in `software-dev` mission (`spec_mission` in \
                 .spectacular/config.yaml), or add the input to yours",
                speckit::TASKS_INPUT
            )));
        }
        let (absolute, note) = team_tasks(context, tasks, &path)?;
        notes.push(note);
        all.push(format!("{}={}", speckit::TASKS_INPUT, absolute.display()));
    }
    if !given(CHECK) && !config.spec_inputs.contains_key(CHECK) {
        if let Some(default) = input_default(context, &mission, CHECK) {
            let config_file = display_path(&context.store().dir.join("config.yaml"), &root);
            match crate::knowledge::detect(&root).check {
                Some(check) => {
                    notes.push(format!(
                        "checking the work with `{}`: no check command is configured, and {} \
                         (set `spec_inputs.{CHECK}` in {config_file}, or run `spectacular init`)",
                        check.command, check.why
                    ));
                    all.push(format!("{CHECK}={}", check.command));
                }
                None => notes.push(format!(
                    "checking the work with `{default}`, the mission's default: no check command \
                     is configured and none was found in the repository (set \
                     `spec_inputs.{CHECK}` in {config_file})"
                )),
            }
        }
    }
    all.extend(inputs.iter().cloned());
    Ok(Some(SpecRun {
        mission,
        inputs: all,
        notes,
        issue: None,
    }))
}

/// The team's Spec Kit `tasks.md` (`--tasks`), read and checked before the run starts: a
/// file that cannot be a plan is refused with the line to fix. Returns its absolute path and
/// what to tell the user.
fn team_tasks(context: &Context, tasks: &Path, spec: &Path) -> Result<(PathBuf, String), Failure> {
    let shown = tasks.display().to_string();
    let path = context.cwd.join(tasks);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::usage(format!(
            "--tasks: cannot read `{shown}`: {e}\n  help: give the Spec Kit tasks.md of the \
             feature (`specs/NNN-name/tasks.md`), relative to {}",
            context.cwd.display()
        ))
    })?;
    let invalid = |message: String| Failure {
        exit: super::Exit::Invalid,
        message,
    };
    let plan = speckit::import(&shown, &text).map_err(|e| invalid(e.to_string()))?;
    let bytes = serde_json::to_vec(&plan).map_err(|e| Failure::internal(e.to_string()))?;
    let report = crate::tasks::check(&bytes, None)
        .map_err(|problems| invalid(crate::tasks::problems_message(&shown, &problems)))?;
    let mut note = format!(
        "planning with the team's {shown}: {} open tasks as work packages, no planner agent",
        report.work_packages.len()
    );
    let spec_text = std::fs::read_to_string(spec).unwrap_or_default();
    let refs = crate::tasks::refs_from_markdown(&spec_text);
    if let Err(gaps) = crate::tasks::check(&bytes, Some(&refs)) {
        note.push_str(&format!(
            " ({} gaps against the spec; `spectacular plan import {shown}` lists them)",
            gaps.len()
        ));
    }
    Ok((path.canonicalize().unwrap_or(path), note))
}

/// The input that holds the command checking the work.
const CHECK: &str = "check_command";

/// The default of `mission`'s string input `name`, when it declares one that is not empty.
fn input_default(context: &Context, mission: &str, name: &str) -> Option<String> {
    let mission = context.validate(mission).ok()?.mission?;
    let input = mission.inputs.get(name)?;
    match &input.default {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Does `mission` declare input `name`? (A mission that does not load is reported later.)
fn declares(context: &Context, mission: &str, name: &str) -> bool {
    context
        .validate(mission)
        .ok()
        .and_then(|v| v.mission)
        .is_some_and(|m| m.inputs.contains_key(name))
}

/// The spec of a run in a Spec Kit feature directory, and the run's checked plan (its report
/// and `plan` text), when it has one.
fn checked_plan(
    store: &Store,
    run_id: &str,
) -> Option<(PathBuf, speckit::Layout, PlanReport, String)> {
    let events = store.read_events(run_id).ok()?;
    let spec = events.iter().find_map(|e| match &e.data {
        EventData::RunStarted(d) => d
            .inputs
            .get("spec")
            .and_then(|s| s.as_str())
            .map(PathBuf::from),
        _ => None,
    });
    let spec = spec?;
    let layout = speckit::detect(&spec)?;
    let mut report: Option<(PlanReport, String)> = None;
    for event in &events {
        if let EventData::AttemptSucceeded(d) = &event.data {
            if let Some(value) = d.values.get(REPORT_VALUE) {
                if let Ok(r) = serde_json::from_value::<PlanReport>(value.clone()) {
                    let plan = d
                        .values
                        .get("plan")
                        .and_then(|p| p.as_str())
                        .unwrap_or_default()
                        .to_string();
                    report = Some((r, plan));
                }
            }
        }
    }
    let (report, plan) = report?;
    Some((spec, layout, report, plan))
}

/// Was the checked plan imported from `tasks` (the team's `tasks.md`): is every work
/// package one of its task ids?
fn imported_from(report: &PlanReport, tasks: &str) -> bool {
    let ids: std::collections::HashSet<String> = speckit::read_tasks(tasks)
        .into_iter()
        .map(|t| t.id)
        .collect();
    !report.work_packages.is_empty() && report.work_packages.iter().all(|w| ids.contains(&w.id))
}

/// The work packages a run merged (`merge.step` merged or already there).
fn merged_work(store: &Store, run_id: &str) -> std::collections::BTreeSet<String> {
    let events = store.read_events(run_id).unwrap_or_default();
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::MergeStep(step)
                if step.outcome != crate::record::event::MergeOutcome::Conflict =>
            {
                Some(crate::git::work_of(&step.work).to_string())
            }
            _ => None,
        })
        .collect()
}

/// After a run of a spec in a Spec Kit feature directory with a checked plan: how to get it
/// there as Spec Kit's `plan.md` and `tasks.md` (never written unasked: the checkout stays as
/// it was).
pub fn export_hint(store: &Store, run_id: &str, project: &Project) -> Option<String> {
    let (_, layout, _, _) = checked_plan(store, run_id)?;
    let root = project.root.clone();
    Some(format!(
        "the checked plan can go beside the spec as Spec Kit's plan.md and tasks.md: \
         `spectacular plan {run_id} --write` writes them into {}",
        display_path(&layout.dir, &root)
    ))
}

/// Write the checked plan of a run of a spec in a Spec Kit feature directory there, as
/// `plan.md` and `tasks.md` (`spectacular plan --write`). Returns what to tell the user; `None`
/// when the run's spec is not in a Spec Kit directory or it has no checked plan.
pub fn export(store: &Store, run_id: &str, project: &Project) -> Option<Vec<String>> {
    let (spec, layout, report, plan) = checked_plan(store, run_id)?;
    let spec_text = std::fs::read_to_string(&spec).unwrap_or_default();
    let title = speckit::feature_title(&spec_text, &layout.feature);
    let root = project.root.clone();
    // The feature directory is in the project: a link out of it is never written through.
    let inside = layout
        .dir
        .canonicalize()
        .ok()
        .zip(root.canonicalize().ok())
        .is_some_and(|(dir, root)| dir.starts_with(root));
    if !inside {
        return Some(vec![format!(
            "did not write the plan back: `{}` leads out of the project (a symbolic link on the \
             way)",
            display_path(&layout.dir, &root)
        )]);
    }
    let mut said = Vec::new();
    // A plan imported from the team's own tasks.md: that file stays theirs, with the tasks
    // the run merged ticked.
    let theirs = std::fs::read_to_string(layout.dir.join("tasks.md"))
        .ok()
        .filter(|text| !text.starts_with(speckit::MARKER))
        .filter(|text| imported_from(&report, text));
    if let Some(text) = &theirs {
        let (ticked, ids) = speckit::tick(text, &merged_work(store, run_id));
        said.push(match speckit::update(&layout, "tasks.md", &ticked) {
            Ok(path) if ids.is_empty() => format!(
                "left {} as it was: the run merged none of its open tasks",
                display_path(&path, &root)
            ),
            Ok(path) => format!(
                "ticked {} in {} (the rest of it is as you wrote it)",
                ids.join(", "),
                display_path(&path, &root)
            ),
            Err(e) => format!(
                "could not tick tasks.md in {}: {e}",
                display_path(&layout.dir, &root)
            ),
        });
    }
    let mut files = vec![(
        "plan.md",
        speckit::plan_md(&report, &plan, &title, &layout.feature, run_id),
    )];
    if theirs.is_none() {
        files.push((
            "tasks.md",
            speckit::tasks_md(&report, &title, &layout.feature, run_id),
        ));
    }
    for (name, text) in files {
        match speckit::write(&layout, name, &text) {
            Ok((path, backup)) => {
                let mut line = format!("wrote {}", display_path(&path, &root));
                if let Some(backup) = backup {
                    line.push_str(&format!(
                        " (the previous one is kept as {})",
                        display_path(&backup, &root)
                    ));
                }
                said.push(line);
            }
            Err(e) => said.push(format!(
                "could not write {name} in {}: {e}",
                display_path(&layout.dir, &root)
            )),
        }
    }
    Some(said)
}
