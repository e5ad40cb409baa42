//! Declared outputs: each must exist inside the attempt directory (no `..`, no absolute path,
//! no symlink pointing out), satisfy its JSON Schema when it has one, and is then promoted
//! atomically into `runs/<id>/artifacts/<phase>/`. Small outputs are also returned as values,
//! recorded in the event so that later decisions read recorded facts only.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use crate::load::Base;
use crate::model::Output;
use crate::record::limits;
use crate::record::redact::Redactor;
use crate::record::store::{join_under, UnsafePath};

/// Outputs up to this size are recorded as values (JSON, else text).
pub const VALUE_LIMIT: u64 = 64 * 1024;

#[derive(Default)]
pub struct Promoted {
    /// name → artifact path relative to the run directory.
    pub artifacts: BTreeMap<String, String>,
    pub values: BTreeMap<String, Value>,
}

/// Why the outputs of an attempt are refused; its text is the `output_invalid` message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("attempt directory: {0}")]
    AttemptDir(std::io::Error),
    #[error("output `{name}` path `{path}` must stay inside the attempt directory")]
    Outside { name: String, path: String },
    #[error("output `{name}` was not produced: `{path}` does not exist")]
    Missing { name: String, path: String },
    #[error("output `{name}`: {source}")]
    Unreadable {
        name: String,
        source: std::io::Error,
    },
    #[error("output `{name}` (`{path}`) is a link that points outside the attempt directory")]
    LinkOutside { name: String, path: String },
    #[error("output `{name}` (`{path}`) is not a regular file")]
    NotAFile { name: String, path: String },
    #[error("output `{name}` schema: {detail}")]
    Schema { name: String, detail: String },
    #[error("output `{name}` (`{path}`) is not valid JSON, but it has a schema")]
    NotJson { name: String, path: String },
    #[error("output `{name}` does not match `{schema}`: {}", problems.join("; "))]
    Mismatch {
        name: String,
        schema: String,
        problems: Vec<String>,
    },
    /// A `check: { kind: plan }` output with problems: one `- ` line each, so that the retry's
    /// `attempt.previous_errors` lists them.
    #[error("{}", crate::tasks::problems_message(name, problems))]
    Plan { name: String, problems: Vec<String> },
    /// A `check: { kind: verdicts }` output that is not a valid verdicts file for the plan:
    /// one `- ` line a problem, like a refused plan.
    #[error("{}", crate::check::verdicts::problems_message(name, problems))]
    Verdicts { name: String, problems: Vec<String> },
    /// Valid verdicts with failed criteria: the work is wrong, not the attempt (`checks`).
    #[error("{message}")]
    VerdictsFailed { message: String, files: Vec<String> },
    #[error("artifacts: {0}")]
    Artifacts(std::io::Error),
    #[error("promoting `{name}`: {source}")]
    Promoting {
        name: String,
        source: std::io::Error,
    },
}

impl Error {
    /// The kind of the attempt's failure: `checks` for failed verdicts, else `output_invalid`.
    pub fn failure_kind(&self) -> crate::model::FailureKind {
        match self {
            Error::VerdictsFailed { .. } => crate::model::FailureKind::Checks,
            _ => crate::model::FailureKind::OutputInvalid,
        }
    }

    /// The files the failure is about: the evidence files of failed verdicts.
    pub fn files(&self) -> Vec<String> {
        match self {
            Error::VerdictsFailed { files, .. } => files.clone(),
            _ => Vec::new(),
        }
    }
}

/// Where a phase that works in a repository (`workspace: view`, `worktree` or `integration`)
/// writes its outputs, relative to its working directory: clients are confined to their
/// working directory, so the outputs are written inside it, then moved into the attempt
/// directory ([`collect`]) and never committed.
pub const WORKSPACE_OUT: &str = ".spectacular/out";

/// Make an attempt's outputs directory (`<working directory>/`[`WORKSPACE_OUT`]) empty and
/// ready (blocking).
pub(super) fn prepare_out(out: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(out) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(out)?,
        Ok(_) => std::fs::remove_file(out)?,
        Err(_) => {}
    }
    std::fs::create_dir_all(out)
}

/// Move the declared outputs an attempt wrote into `out` (its [`WORKSPACE_OUT`]) into its
/// attempt directory, where [`promote`] checks them, then remove `out` (and `.spectacular/`
/// when nothing else is in it), so that nothing of it is committed (blocking). An output that
/// is not there is left to [`promote`] to report; a path that would leave either directory is
/// not moved.
pub(super) fn collect(out: &Path, attempt_dir: &Path, paths: &BTreeMap<String, String>) {
    // The agent may have replaced the directory (or `.spectacular/`) by a link elsewhere.
    let real_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    let moved = if real_dir(out) && out.parent().is_some_and(real_dir) {
        paths.values().collect()
    } else {
        Vec::new()
    };
    for relative in moved {
        let (Ok(from), Ok(to)) = (
            relative_under(out, relative),
            relative_under(attempt_dir, relative),
        ) else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(&from) else {
            continue;
        };
        if let Some(parent) = to.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        // Worktrees live under the project's store, like attempt directories: a rename (a
        // link moves as a link, for `promote` to judge), else a copy of a regular file
        // (another file system).
        if std::fs::rename(&from, &to).is_err() && meta.is_file() {
            let _ = std::fs::copy(&from, &to);
        }
    }
    discard_out(out);
}

/// Remove an attempt's outputs directory and `.spectacular/` above it when it is left empty.
pub(super) fn discard_out(out: &Path) {
    let _ = std::fs::remove_dir_all(out);
    if let Some(dot_dir) = out.parent() {
        let _ = std::fs::remove_dir(dot_dir);
    }
}

/// `root` joined with a relative `/`-separated path (an output's `path:`), each segment
/// proven to stay under `root` ([`join_under`]); empty and `.` segments are dropped.
pub(super) fn relative_under(root: &Path, relative: &str) -> Result<PathBuf, UnsafePath> {
    let parts: Vec<&str> = relative
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    join_under(root, &parts)
}

/// Check and promote the outputs of a finished attempt. Values are redacted and bounded
/// ([`limits::output_value`]): a large one is recorded as a marker pointing at its artifact.
pub fn promote(
    outputs: &IndexMap<String, Output>,
    rendered_paths: &BTreeMap<String, String>,
    attempt_dir: &Path,
    run_dir: &Path,
    instance: &str,
    base: &Base,
    redactor: &Redactor,
) -> Result<Promoted, Error> {
    let mut artifacts = BTreeMap::new();
    let mut values = BTreeMap::new();
    if outputs.is_empty() {
        return Ok(Promoted { artifacts, values });
    }
    let root = attempt_dir.canonicalize().map_err(Error::AttemptDir)?;
    for (name, output) in outputs {
        let relative = rendered_paths
            .get(name)
            .cloned()
            .unwrap_or_else(|| output.path.clone());
        let path = Path::new(&relative);
        if path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::RootDir))
        {
            return Err(Error::Outside {
                name: name.clone(),
                path: relative,
            });
        }
        let outside = || Error::Outside {
            name: name.clone(),
            path: relative.clone(),
        };
        let full = relative_under(attempt_dir, &relative).map_err(|_| outside())?;
        if !full.exists() {
            return Err(Error::Missing {
                name: name.clone(),
                path: relative,
            });
        }
        let real = full.canonicalize().map_err(|source| Error::Unreadable {
            name: name.clone(),
            source,
        })?;
        if !real.starts_with(&root) {
            return Err(Error::LinkOutside {
                name: name.clone(),
                path: relative,
            });
        }
        if !real.is_file() {
            return Err(Error::NotAFile {
                name: name.clone(),
                path: relative,
            });
        }
        let size = real.metadata().map(|m| m.len()).unwrap_or(0);
        let json: Option<Value> = if output.schema.is_some() || size <= VALUE_LIMIT {
            std::fs::read(&real)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        } else {
            None
        };
        if let Some(schema_path) = &output.schema {
            let schema_error = |detail: String| Error::Schema {
                name: name.clone(),
                detail,
            };
            let schema_text = base
                .read(schema_path)
                .map_err(|e| schema_error(e.to_string()))?;
            let schema: Value =
                serde_json::from_str(&schema_text).map_err(|e| schema_error(e.to_string()))?;
            let validator =
                jsonschema::validator_for(&schema).map_err(|e| schema_error(e.to_string()))?;
            let Some(instance_value) = &json else {
                return Err(Error::NotJson {
                    name: name.clone(),
                    path: relative,
                });
            };
            let problems: Vec<String> = validator
                .iter_errors(instance_value)
                .take(5)
                .map(|e| format!("at `{}`: {e}", e.instance_path()))
                .collect();
            if !problems.is_empty() {
                return Err(Error::Mismatch {
                    name: name.clone(),
                    schema: schema_path.clone(),
                    problems,
                });
            }
        }
        let plan = match &output.check {
            Some(check) if check.kind == crate::model::OutputCheckKind::Plan => Some(check_plan(
                name,
                &real,
                size,
                check.spec.as_deref(),
                check.started_spec.as_deref(),
            )?),
            Some(check) if check.kind == crate::model::OutputCheckKind::Verdicts => {
                check_verdicts(name, &real, size, check.plan.as_deref())?;
                None
            }
            _ => None,
        };
        let artifacts_dir = join_under(run_dir, &["artifacts", instance]).map_err(|_| outside())?;
        let target = relative_under(&artifacts_dir, &relative).map_err(|_| outside())?;
        let target_rel = target
            .strip_prefix(run_dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| target.clone());
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(Error::Artifacts)?;
        }
        let temp = target.with_extension("promoting");
        std::fs::copy(&real, &temp)
            .and_then(|_| std::fs::File::open(&temp))
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&temp, &target))
            .map_err(|source| Error::Promoting {
                name: name.clone(),
                source,
            })?;
        let artifact = target_rel.to_string_lossy().into_owned();
        let value = match json {
            Some(value) => Some(value),
            None if size <= VALUE_LIMIT => std::fs::read_to_string(&real).ok().map(Value::String),
            None => None,
        };
        if let Some(value) = value {
            values.insert(
                name.clone(),
                limits::output_value(value, redactor, Some(&artifact)),
            );
        }
        artifacts.insert(name.clone(), artifact);
        if let Some(report) = plan {
            // The traceability matrix beside the plan, and the report as a recorded value.
            let trace = artifacts_dir.join("traceability.md");
            let temp = trace.with_extension("promoting");
            std::fs::write(&temp, crate::tasks::traceability_markdown(&report))
                .and_then(|()| std::fs::File::open(&temp))
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&temp, &trace))
                .map_err(|source| Error::Promoting {
                    name: crate::tasks::TRACEABILITY.into(),
                    source,
                })?;
            let trace_rel = trace.strip_prefix(run_dir).unwrap_or(&trace);
            let trace_rel = trace_rel.to_string_lossy().into_owned();
            values.insert(
                crate::tasks::REPORT_VALUE.into(),
                limits::output_value(report.recorded_value(), redactor, Some(&trace_rel)),
            );
            artifacts.insert(crate::tasks::TRACEABILITY.into(), trace_rel);
        }
    }
    Ok(Promoted { artifacts, values })
}

/// The plan check of an output (`check: { kind: plan }`): the tasks schema and the plan rules,
/// traced to `spec` (an absolute path, rendered when the attempt was prepared) when given: to
/// its copy taken when the run started (`started`) when there is one, and a spec changed
/// since is reported in the plan's report.
fn check_plan(
    name: &str,
    real: &Path,
    size: u64,
    spec: Option<&str>,
    started: Option<&str>,
) -> Result<crate::tasks::PlanReport, Error> {
    let refused = |problems: Vec<String>| Error::Plan {
        name: name.to_string(),
        problems,
    };
    if size > crate::tasks::MAX_BYTES as u64 {
        return Err(refused(vec![format!(
            "`tasks.json` has {size} bytes, more than the {} a plan may have",
            crate::tasks::MAX_BYTES
        )]));
    }
    let bytes = std::fs::read(real).map_err(|source| Error::Unreadable {
        name: name.to_string(),
        source,
    })?;
    let read_spec = |path: &str| -> std::io::Result<Vec<u8>> {
        let mut text = Vec::new();
        std::fs::File::open(path).and_then(|f| {
            use std::io::Read as _;
            f.take(crate::spec::MAX_SPEC_BYTES as u64 + 1)
                .read_to_end(&mut text)
        })?;
        Ok(text)
    };
    let mut changed = None;
    if let (Some(live), Some(started)) = (spec, started) {
        if read_spec(live).ok() != read_spec(started).ok() {
            changed = Some(format!(
                "the spec `{live}` changed during the run; coverage is checked against the spec \
                 as it was when the run started (kept in the run as `{started}`)"
            ));
        }
    }
    let refs = match spec {
        None => None,
        Some(spec) => {
            // At most one byte more than a spec may have: parse_bytes refuses the rest.
            let text = read_spec(started.unwrap_or(spec)).map_err(|e| {
                refused(vec![format!(
                    "cannot read the spec `{spec}` to trace the plan to: {e}"
                )])
            })?;
            let (model, _) = crate::spec::parse_bytes(spec, &text);
            Some(crate::tasks::refs_from_spec(&model))
        }
    };
    let mut report = crate::tasks::check(&bytes, refs.as_deref()).map_err(|mut problems| {
        problems.extend(changed.clone());
        refused(problems)
    })?;
    report.spec_changed = changed;
    Ok(report)
}

/// The verdicts check of an output (`check: { kind: verdicts }`): the verdicts schema and, with
/// `plan` (an absolute path, rendered when the attempt was prepared), one verdict for every
/// acceptance criterion of the plan. Failed verdicts are [`Error::VerdictsFailed`].
fn check_verdicts(name: &str, real: &Path, size: u64, plan: Option<&str>) -> Result<(), Error> {
    use crate::check::verdicts;
    let refused = |problems: Vec<String>| Error::Verdicts {
        name: name.to_string(),
        problems,
    };
    if size > verdicts::MAX_BYTES as u64 {
        return Err(refused(vec![format!(
            "the file has {size} bytes, more than the {} a verdicts file may have",
            verdicts::MAX_BYTES
        )]));
    }
    let bytes = std::fs::read(real).map_err(|source| Error::Unreadable {
        name: name.to_string(),
        source,
    })?;
    let criteria = match plan {
        None => None,
        Some(plan) => {
            // At most one byte more than a plan may have: `criteria` refuses the rest.
            let mut text = Vec::new();
            std::fs::File::open(plan)
                .and_then(|f| {
                    use std::io::Read as _;
                    f.take(crate::tasks::MAX_BYTES as u64 + 1)
                        .read_to_end(&mut text)
                })
                .map_err(|e| {
                    refused(vec![format!(
                        "cannot read the plan `{plan}` the verdicts are about: {e}"
                    )])
                })?;
            Some(
                verdicts::criteria(&text)
                    .map_err(|e| refused(vec![format!("the plan `{plan}`: {e}")]))?,
            )
        }
    };
    let checked = verdicts::check(&bytes, criteria.as_ref()).map_err(refused)?;
    if checked.failed().is_empty() {
        return Ok(());
    }
    Err(Error::VerdictsFailed {
        message: verdicts::failed_message(name, &checked),
        files: checked.failed_files(),
    })
}
