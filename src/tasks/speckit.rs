//! Spec Kit interoperability: detecting a Spec Kit feature directory
//! (`specs/NNN-name/spec.md` with `plan.md`, `tasks.md`, `research.md`… beside it), and
//! writing a checked plan back as Spec Kit's `plan.md` and `tasks.md`, with task lines in its
//! checklist format: `- [ ] T001 [P] [US1] Description in path`.
//!
//! Task ids follow execution order (wave by wave); `[P]` marks a task that shares a wave with
//! others and no files with them; `[USn]` is the first user story the package refers to.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::check::{PlanReport, WorkPackageSummary};
use super::globs::may_overlap;

/// The artifacts Spec Kit keeps beside a spec, read as context when they exist.
pub const ARTIFACTS: &[&str] = &[
    "plan.md",
    "tasks.md",
    "research.md",
    "data-model.md",
    "quickstart.md",
    "contracts",
    "checklists",
];

/// The first line of every file Spectacular writes into a Spec Kit directory; a file without
/// it is the team's own and is kept as `<name>.orig` before being replaced.
pub const MARKER: &str = "<!-- Written by Spectacular";

/// Did Spectacular write the file at `path` (its first line is [`MARKER`])? A directory never.
pub fn written_by_us(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; MARKER.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == MARKER.as_bytes()
}

/// A Spec Kit feature directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `specs/NNN-name`.
    pub dir: PathBuf,
    /// `NNN-name`.
    pub feature: String,
    /// The artifacts beside the spec that exist.
    pub artifacts: Vec<PathBuf>,
}

/// Is `spec` the `spec.md` of a Spec Kit feature directory (`…/specs/NNN-name/spec.md`)?
pub fn detect(spec: &Path) -> Option<Layout> {
    if spec.file_name()? != "spec.md" {
        return None;
    }
    let dir = spec.parent()?;
    let feature = dir.file_name()?.to_str()?.to_string();
    let (number, name) = feature.split_once('-')?;
    let numbered = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    let under_specs = dir.parent()?.file_name()? == "specs";
    if !numbered || name.is_empty() || !under_specs {
        return None;
    }
    let artifacts = ARTIFACTS
        .iter()
        .map(|a| dir.join(a))
        .filter(|p| p.exists())
        .collect();
    Some(Layout {
        dir: dir.to_path_buf(),
        feature,
        artifacts,
    })
}

/// The feature's title: the spec's first `# ` heading without `Feature Specification:`.
pub fn feature_title(spec_text: &str, fallback: &str) -> String {
    spec_text
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(|t| {
            t.trim()
                .trim_start_matches("Feature Specification:")
                .trim()
                .to_string()
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| fallback.to_string())
}

/// Packages in execution order: by wave, then as the plan lists them.
fn ordered(report: &PlanReport) -> Vec<&WorkPackageSummary> {
    let mut packages: Vec<&WorkPackageSummary> = report.work_packages.iter().collect();
    packages.sort_by_key(|w| w.wave);
    packages
}

fn story(wp: &WorkPackageSummary) -> Option<&str> {
    wp.requirement_refs.iter().find_map(|r| {
        r.strip_prefix("US")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .map(|_| r.as_str())
    })
}

/// `tasks.md` in Spec Kit's format.
pub fn tasks_md(report: &PlanReport, title: &str, feature: &str, run_id: &str) -> String {
    let order = ordered(report);
    let task_id = |id: &str| {
        order
            .iter()
            .position(|w| w.id == id)
            .map(|i| format!("T{:03}", i + 1))
            .unwrap_or_default()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{MARKER} (run {run_id}) from its checked tasks.json -->"
    );
    let _ = writeln!(out, "# Tasks: {title}\n");
    let _ = writeln!(
        out,
        "**Input**: Design documents from `/specs/{feature}/`\n"
    );
    let _ = writeln!(out, "**Prerequisites**: plan.md (required), spec.md\n");
    let _ = writeln!(out, "## Format: `[ID] [P?] [Story] Description`\n");
    let _ = writeln!(
        out,
        "- **[P]**: Can run in parallel (different files, no dependencies)\n\
         - **[Story]**: Which user story this task belongs to (e.g., US1, US2, US3)\n"
    );
    let waves = order.last().map(|w| w.wave + 1).unwrap_or(0);
    for wave in 0..waves {
        let members: Vec<&&WorkPackageSummary> = order.iter().filter(|w| w.wave == wave).collect();
        let _ = writeln!(out, "---\n");
        let purpose = if wave == 0 {
            "Work that depends on nothing else".to_string()
        } else {
            format!("Work that needs phase {wave} done")
        };
        let _ = writeln!(out, "## Phase {}: {purpose}\n", wave + 1);
        for wp in &members {
            let parallel = members.len() > 1
                && members.iter().all(|other| {
                    other.id == wp.id
                        || !wp
                            .owned_files
                            .iter()
                            .any(|a| other.owned_files.iter().any(|b| may_overlap(a, b)))
                });
            let mut line = format!("- [ ] {}", task_id(&wp.id));
            if parallel {
                line.push_str(" [P]");
            }
            if let Some(story) = story(wp) {
                let _ = write!(line, " [{story}]");
            }
            let _ = write!(
                line,
                " {} in {}",
                wp.title.replace('\n', " "),
                wp.owned_files.join(", ")
            );
            if !wp.depends_on.is_empty() {
                let deps: Vec<String> = wp.depends_on.iter().map(|d| task_id(d)).collect();
                let _ = write!(line, " (depends on {})", deps.join(", "));
            }
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Work packages\n");
    let _ = writeln!(out, "| task | work package | covers |\n|---|---|---|");
    for wp in &order {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            task_id(&wp.id),
            wp.id,
            wp.requirement_refs.join(", ")
        );
    }
    super::render::no_html(&out)
}

/// `plan.md` in Spec Kit's shape: the header, the planner's plan as the summary, and the
/// traceability matrix.
pub fn plan_md(
    report: &PlanReport,
    planner_plan: &str,
    title: &str,
    feature: &str,
    run_id: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER} (run {run_id}) from its checked plan -->");
    let _ = writeln!(out, "# Implementation Plan: {title}\n");
    let _ = writeln!(
        out,
        "**Branch**: `{feature}` | **Spec**: [spec.md](spec.md)\n"
    );
    let _ = writeln!(
        out,
        "**Input**: Feature specification from `/specs/{feature}/spec.md`\n"
    );
    let _ = writeln!(out, "## Summary\n");
    for line in planner_plan.lines() {
        // The planner's headings go one level down, under the summary.
        if line.starts_with('#') {
            let _ = writeln!(out, "##{line}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = writeln!(out);
    let trace = super::traceability_markdown(report);
    for line in trace.lines() {
        if line.starts_with('#') {
            let _ = writeln!(out, "#{line}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    super::render::no_html(&out)
}

/// Write `name` in the layout's directory; a file the team wrote (without [`MARKER`]) is kept
/// as `<name>.orig` first. Returns the path written and the backup, if one was made.
pub fn write(
    layout: &Layout,
    name: &str,
    text: &str,
) -> std::io::Result<(PathBuf, Option<PathBuf>)> {
    write_as(layout, name, text, true)
}

/// Replace `name` in the layout's directory with `text`, the team's file or not, without a
/// backup: for the team's own `tasks.md` with ticks added ([`tick`]), where nothing of
/// theirs is lost.
pub fn update(layout: &Layout, name: &str, text: &str) -> std::io::Result<PathBuf> {
    write_as(layout, name, text, false).map(|(path, _)| path)
}

/// The team's `tasks.md` with the tasks in `done` ticked (`- [ ] T004 …` → `- [x] T004 …`),
/// every other byte as it was: their phases, their wording, the ticks they made and the
/// examples in code fences stay. Returns the text and the ids ticked, in file order.
pub fn tick(text: &str, done: &std::collections::BTreeSet<String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut ticked = Vec::new();
    let mut fence = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = !fence;
        } else if !fence {
            let body = line.trim_end_matches(['\n', '\r']);
            if let Some(c) = TASK_LINE.captures(body) {
                let id = c.name("id").map_or("", |m| m.as_str());
                if let Some(m) = c.name("done").filter(|m| m.as_str() == " ") {
                    if done.contains(id) {
                        out.push_str(&line[..m.start()]);
                        out.push('x');
                        out.push_str(&line[m.end()..]);
                        ticked.push(id.to_string());
                        continue;
                    }
                }
            }
        }
        out.push_str(line);
    }
    (out, ticked)
}

fn write_as(
    layout: &Layout,
    name: &str,
    text: &str,
    keep_theirs: bool,
) -> std::io::Result<(PathBuf, Option<PathBuf>)> {
    let path = layout.dir.join(name);
    let temp = layout.dir.join(format!(".{name}.spectacular"));
    let orig = layout.dir.join(format!("{name}.orig"));
    // Nothing is written, read or moved through a symbolic link (one committed where the
    // plan goes could point anywhere).
    for at in [&layout.dir, &path, &temp, &orig] {
        if std::fs::symlink_metadata(at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(std::io::Error::other(format!(
                "`{}` is a symbolic link; nothing is written through one (remove it, then run \
                 again)",
                at.display()
            )));
        }
    }
    let mut backup = None;
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if existing == text {
            return Ok((path, None));
        }
        if keep_theirs && !existing.starts_with(MARKER) {
            std::fs::rename(&path, &orig)?;
            backup = Some(orig);
        }
    }
    let _ = std::fs::remove_file(&temp);
    {
        use std::io::Write as _;
        // `create_new`: never opens what is there (a link planted in between included).
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
    }
    std::fs::rename(&temp, &path)?;
    Ok((path, backup))
}

/// What went wrong reading a Spec Kit `tasks.md` as a plan.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("{path}: no task lines (`- [ ] T001 [P] [US1] Description in path`) found")]
    NoTasks { path: String },
    #[error("{path}:{line}: task `{id}` is listed twice (first at line {first}); give each task its own id")]
    Duplicate {
        path: String,
        line: usize,
        first: usize,
        id: String,
    },
    #[error("{path}: every task is done ([x]); nothing is left to plan")]
    AllDone { path: String },
    #[error(
        "{path}: {count} tasks, more than the {max} a plan may hold; import one phase at a time"
    )]
    TooMany {
        path: String,
        count: usize,
        max: usize,
    },
}

/// One task line of a Spec Kit `tasks.md`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// `T001`, as written.
    pub id: String,
    pub done: bool,
    /// `[P]`: may run beside the other `[P]` tasks of its phase.
    pub parallel: bool,
    /// `US1` for `[US1]`.
    pub story: Option<String>,
    /// The task's text, without its checkbox, id and tags.
    pub text: String,
    /// The heading it sits under (`Phase 1: Setup`).
    pub phase: String,
    /// The backticked (or bare) file paths the text names.
    pub paths: Vec<String>,
    /// 1-based line.
    pub line: usize,
}

static TASK_LINE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"^\s*[-*]\s+\[(?P<done>[ xX])\]\s+(?:\*\*)?(?P<id>T\d{1,5}[a-z]?)(?:\*\*)?[:.]?\s+(?P<rest>.*)$",
    )
    .expect("valid regex")
});
static TAG: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^\[(?P<tag>P|US\d{1,4}|Story\s*\d{1,4})\]\s*").expect("valid regex")
});
static BARE_PATH: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?:^|[\s(])(?P<path>(?:[A-Za-z0-9_.-]+/)+[A-Za-z0-9_.-]+\.[A-Za-z0-9]{1,8})\b",
    )
    .expect("valid regex")
});

/// Ids a task names (`FR-003`, `SC-001`, `FR-011a`), after its `[USn]`.
static NAMED_ID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"\b(?:FR|NFR|SC|REQ|AC|CON|C|R)(?:-[A-Z]{2,12})?-\d{1,9}[A-Za-z]?\b")
        .expect("valid regex")
});

/// The spec ids a task refers to: its story, then the ids its text names.
fn refs_of(t: &Task) -> Vec<String> {
    let mut refs: Vec<String> = t.story.iter().cloned().collect();
    for m in NAMED_ID.find_iter(&t.text) {
        if !refs.iter().any(|r| r == m.as_str()) && refs.len() < super::MAX_LIST {
            refs.push(m.as_str().to_string());
        }
    }
    refs
}

/// A path a task names: relative, no `..`, no spaces, a file or directory name in it.
fn as_path(text: &str) -> Option<String> {
    let t = text
        .trim()
        .trim_end_matches([',', '.', ':', ';'])
        .trim_start_matches("./");
    let ok = !t.is_empty()
        && t.len() <= 200
        && !t.starts_with('/')
        && !t.contains("..")
        && !t.contains(char::is_whitespace)
        && (t.contains('/')
            // A dotfile: `.shellcheckrc`, `.gitignore`.
            || t.len() > 2 && t.starts_with('.') && !t[1..].contains('.')
            || t.rsplit_once('.').is_some_and(|(a, e)| {
                !a.is_empty()
                    && (1..=8).contains(&e.len())
                    && e.chars().all(|c| c.is_ascii_alphanumeric())
            }))
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-*{},".contains(c));
    ok.then(|| t.to_string())
}

/// The task lines of a Spec Kit `tasks.md`, with the phase each sits under. Lines inside
/// code fences are not tasks.
pub fn read_tasks(text: &str) -> Vec<Task> {
    let mut tasks = Vec::new();
    let mut phase = String::new();
    for (i, line) in crate::spec::outside_fences(text.lines()) {
        let t = line.trim_start();
        if let Some(h) = t.strip_prefix('#') {
            phase = h.trim_start_matches('#').trim().to_string();
            continue;
        }
        let Some(c) = TASK_LINE.captures(line) else {
            continue;
        };
        let mut rest = c.name("rest").map_or("", |m| m.as_str());
        let (mut parallel, mut story) = (false, None);
        while let Some(tag) = TAG.captures(rest) {
            let name = tag.name("tag").map_or("", |m| m.as_str());
            if name == "P" {
                parallel = true;
            } else {
                let n: String = name.chars().filter(char::is_ascii_digit).collect();
                story = Some(format!("US{n}"));
            }
            rest = &rest[tag.get(0).map_or(0, |m| m.end())..];
        }
        let mut paths: Vec<String> = Vec::new();
        for (k, part) in rest.split('`').enumerate() {
            if k % 2 == 1 {
                if let Some(p) = as_path(part) {
                    paths.push(p);
                }
            } else {
                for m in BARE_PATH.captures_iter(part) {
                    if let Some(p) = m.name("path").and_then(|p| as_path(p.as_str())) {
                        paths.push(p);
                    }
                }
            }
        }
        paths.dedup();
        tasks.push(Task {
            id: c.name("id").map_or("", |m| m.as_str()).to_string(),
            done: c.name("done").is_some_and(|m| m.as_str() != " "),
            parallel,
            story,
            text: rest.trim().to_string(),
            phase: phase.clone(),
            paths,
            line: i + 1,
        });
    }
    tasks
}

/// A Spec Kit `tasks.md` as the tasks contract (`tasks.json`'s work packages), without an
/// agent: one package per task that is not done, in the team's words. Dependencies follow
/// Spec Kit's rules: phases run in order; within a phase a task waits for the task before it
/// unless both are `[P]`; done tasks are skipped and never waited for. `[USn]` becomes a
/// reference to the user story (which covers what its scenarios cover); the paths the task
/// names are the files it owns (all files, `**`, when it names none).
pub fn import(path: &str, text: &str) -> Result<serde_json::Value, ImportError> {
    let tasks = read_tasks(text);
    if tasks.is_empty() {
        return Err(ImportError::NoTasks {
            path: path.to_string(),
        });
    }
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for t in &tasks {
        if let Some(first) = seen.insert(&t.id, t.line) {
            return Err(ImportError::Duplicate {
                path: path.to_string(),
                line: t.line,
                first,
                id: t.id.clone(),
            });
        }
    }
    let open: Vec<&Task> = tasks.iter().filter(|t| !t.done).collect();
    if open.is_empty() {
        return Err(ImportError::AllDone {
            path: path.to_string(),
        });
    }
    if open.len() > super::MAX_WORK_PACKAGES {
        return Err(ImportError::TooMany {
            path: path.to_string(),
            count: open.len(),
            max: super::MAX_WORK_PACKAGES,
        });
    }
    let mut packages = Vec::new();
    // The tasks a new task waits for: the end of the previous phase, then what came before
    // it in its own phase.
    let mut phase = None::<&str>;
    let mut before_phase: Vec<String> = Vec::new();
    let mut in_phase: Vec<(String, bool)> = Vec::new();
    for t in open {
        if phase != Some(t.phase.as_str()) {
            if !in_phase.is_empty() {
                before_phase = in_phase.drain(..).map(|(id, _)| id).collect();
            }
            phase = Some(t.phase.as_str());
        }
        let last_serial = in_phase.iter().rposition(|(_, p)| !*p);
        let depends: Vec<String> = if t.parallel {
            // Beside the [P] tasks since the last serial one.
            match last_serial {
                Some(k) => vec![in_phase[k].0.clone()],
                None => before_phase.clone(),
            }
        } else if in_phase.is_empty() {
            before_phase.clone()
        } else {
            // After everything since the last serial task (that one included).
            in_phase[last_serial.unwrap_or(0)..]
                .iter()
                .map(|(id, _)| id.clone())
                .collect()
        };
        in_phase.push((t.id.clone(), t.parallel));
        let title: String = t.text.chars().take(super::MAX_TITLE).collect();
        let owned = if t.paths.is_empty() {
            vec!["**".to_string()]
        } else {
            t.paths.iter().take(super::MAX_LIST).cloned().collect()
        };
        let mut description = format!("{} {}", t.id, t.text);
        if !t.phase.is_empty() {
            description.push_str(&format!("\n\nPhase: {}", t.phase));
        }
        let description: String = description.chars().take(super::MAX_TEXT).collect();
        packages.push(serde_json::json!({
            "id": t.id,
            "title": if title.trim().is_empty() { t.id.clone() } else { title },
            "description": description,
            "depends_on": depends,
            "owned_files": owned,
            "requirement_refs": refs_of(t),
            "acceptance": [format!("{} is done as tasks.md states: {}", t.id, t.text.chars().take(2000).collect::<String>())],
            "estimate": "s",
            "speckit": { "phase": t.phase, "parallel": t.parallel, "line": t.line },
        }));
    }
    Ok(serde_json::Value::Array(packages))
}

/// The spec mission's input naming the team's `tasks.md` (`run spec.md --tasks FILE`).
pub const TASKS_INPUT: &str = "tasks";

/// The path of the first output of phase `id` other than `tasks_output`.
fn plan_phase_other_output(
    mission: &crate::model::Mission,
    id: &str,
    tasks_output: &str,
) -> Option<String> {
    mission
        .phases
        .get(id)?
        .outputs
        .values()
        .find_map(|o| (o.path != tasks_output && o.check.is_none()).then(|| o.path.clone()))
}

/// `text` as one shell word.
fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The mission to run when the run's `tasks` input names the team's Spec Kit `tasks.md`: its
/// planning phase (the phase whose output is checked as a plan) imports that file with
/// `spectacular plan import` (the program `exe`) instead of asking the planner agent, and the
/// agent phases of the same role it waits for (the research feeding the planner) are skipped.
/// `None` when the input is not set or the mission has no planning phase.
pub fn with_team_tasks(
    mission: &crate::model::Mission,
    inputs: &std::collections::BTreeMap<String, serde_json::Value>,
    exe: &Path,
) -> Option<crate::model::Mission> {
    use crate::model::{OutputCheckKind, PhaseKind};
    let tasks = inputs
        .get(TASKS_INPUT)
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())?;
    let (plan_id, output) = mission.phases.iter().find_map(|(id, phase)| {
        phase
            .outputs
            .values()
            .find(|o| {
                o.check
                    .as_ref()
                    .is_some_and(|c| c.kind == OutputCheckKind::Plan)
            })
            .map(|o| (id.clone(), o.path.clone()))
    })?;
    let mut mission = mission.clone();
    let plan_phase = mission.phases.get(&plan_id)?;
    let PhaseKind::Agent { role, .. } = &plan_phase.kind else {
        return None;
    };
    let role = role.clone();
    // What the planning phase waits for, transitively.
    let mut before: Vec<String> = plan_phase.needs.clone();
    let mut k = 0;
    while k < before.len() {
        let needs = mission
            .phases
            .get(&before[k])
            .map(|p| p.needs.clone())
            .unwrap_or_default();
        for n in needs {
            if !before.contains(&n) {
                before.push(n);
            }
        }
        k += 1;
    }
    for id in &before {
        if let Some(phase) = mission.phases.get_mut(id) {
            if matches!(&phase.kind, PhaseKind::Agent { role: r, .. } if *r == role) {
                phase.kind = PhaseKind::Shell {
                    script: ":".to_string(),
                };
                phase.condition = Some("false".to_string());
            }
        }
    }
    let spec = inputs.get("spec").and_then(serde_json::Value::as_str);
    let mut script = format!(
        "{} plan import {}",
        shell_word(&exe.display().to_string()),
        shell_word(tasks)
    );
    if let Some(spec) = spec {
        script.push_str(&format!(" --spec {}", shell_word(spec)));
    }
    let out = |path: &str| format!("\"$SPECTACULAR_OUTPUT_DIR\"/{}", shell_word(path));
    script.push_str(&format!(" --out {}", out(&output)));
    // The phase's other output (Spec Kit's `plan.md`) says what was imported.
    if let Some(other) = plan_phase_other_output(&mission, &plan_id, &output) {
        script.push_str(&format!(" --summary {}", out(&other)));
    }
    let phase = mission.phases.get_mut(&plan_id)?;
    phase.kind = PhaseKind::Shell { script };
    // The team's plan is refused only when it cannot run; what it does not trace to the
    // spec is said (on the attempt's stderr), not refused: the team decides.
    for o in phase.outputs.values_mut() {
        if let Some(check) = o.check.as_mut().filter(|c| c.kind == OutputCheckKind::Plan) {
            check.spec = None;
        }
    }
    Some(mission)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TEAM_TASKS: &str = "# Tasks: Greetings\n\n## Phase 1: Setup\n\n\
        - [x] T001 Create the project skeleton\n\
        - [ ] T002 [P] Add the lint config in `.shellcheckrc`\n\
        - [ ] T003 [P] Add the CI workflow in .github/workflows/ci.yml\n\n\
        ## Phase 2: User Story 1 - Greet (Priority: P1)\n\n\
        ```text\n- [ ] T999 not a task, an example\n```\n\
        - [ ] T004 [US1] Write the greeting in `src/greet.sh` (FR-001, FR-011a)\n\
        - [ ] T005 [P] [US1] Test it in `tests/greet.bats`\n\
        - [ ] T006 [P] [US1] Document it in `README.md`\n\
        - [ ] T007 [US1] Check the whole story\n";

    #[test]
    fn ticking_the_teams_tasks_changes_only_the_boxes_of_the_work_done() {
        let done: std::collections::BTreeSet<String> =
            ["T004", "T005", "T999", "T001"].map(String::from).into();
        let text = TEAM_TASKS.replace("T007 [US1] Check", "T007 [US1] Check\r");
        let (ticked, ids) = tick(&text, &done);
        assert_eq!(ids, ["T004", "T005"]);
        let expected = text
            .replace("- [ ] T004", "- [x] T004")
            .replace("- [ ] T005", "- [x] T005");
        assert_eq!(ticked, expected);
        // The example in a fence and the team's own tick are untouched.
        assert!(ticked.contains("- [ ] T999 not a task"));
        assert!(ticked.contains("- [x] T001 Create the project skeleton"));
    }

    #[test]
    fn spec_kit_task_lines_are_read_with_their_tags_paths_and_phase() {
        let tasks = read_tasks(TEAM_TASKS);
        let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            ["T001", "T002", "T003", "T004", "T005", "T006", "T007"]
        );
        assert!(tasks[0].done && !tasks[1].done);
        assert!(tasks[1].parallel && !tasks[3].parallel);
        assert_eq!(tasks[3].story.as_deref(), Some("US1"));
        assert_eq!(
            tasks[3].phase,
            "Phase 2: User Story 1 - Greet (Priority: P1)"
        );
        assert_eq!(tasks[1].paths, [".shellcheckrc"]);
        assert_eq!(tasks[2].paths, [".github/workflows/ci.yml"]);
        assert_eq!(
            tasks[3].text,
            "Write the greeting in `src/greet.sh` (FR-001, FR-011a)"
        );
    }

    #[test]
    fn a_tasks_md_becomes_work_packages_ordered_by_phase_and_p() {
        let plan = import("tasks.md", TEAM_TASKS).expect("a plan");
        let packages = plan.as_array().expect("an array");
        let by_id = |id: &str| packages.iter().find(|p| p["id"] == id).cloned();
        // Done tasks are skipped and never waited for.
        assert!(by_id("T001").is_none());
        assert_eq!(by_id("T002").unwrap()["depends_on"], json!([]));
        assert_eq!(by_id("T003").unwrap()["depends_on"], json!([]));
        // The next phase waits for the whole phase before it.
        assert_eq!(
            by_id("T004").unwrap()["depends_on"],
            json!(["T002", "T003"])
        );
        // [P] tasks run beside each other, after the serial task before them.
        assert_eq!(by_id("T005").unwrap()["depends_on"], json!(["T004"]));
        assert_eq!(by_id("T006").unwrap()["depends_on"], json!(["T004"]));
        // A serial task waits for all of them.
        assert_eq!(
            by_id("T007").unwrap()["depends_on"],
            json!(["T004", "T005", "T006"])
        );
        let t4 = by_id("T004").unwrap();
        assert_eq!(t4["requirement_refs"], json!(["US1", "FR-001", "FR-011a"]));
        assert_eq!(t4["owned_files"], json!(["src/greet.sh"]));
        // A task that names no file may touch any: it runs alone.
        assert_eq!(by_id("T007").unwrap()["owned_files"], json!(["**"]));
        // The result is a plan the contract accepts.
        let bytes = serde_json::to_vec(&plan).unwrap();
        crate::tasks::check(&bytes, None).expect("a valid plan");
    }

    #[test]
    fn a_tasks_md_without_open_tasks_says_why() {
        assert!(matches!(
            import("t.md", "# Tasks\n"),
            Err(ImportError::NoTasks { .. })
        ));
        assert!(matches!(
            import("t.md", "- [x] T001 Done\n"),
            Err(ImportError::AllDone { .. })
        ));
        assert!(matches!(
            import("t.md", "- [ ] T001 One\n- [ ] T001 Two\n"),
            Err(ImportError::Duplicate {
                line: 2,
                first: 1,
                ..
            })
        ));
    }

    fn report() -> PlanReport {
        let wp = |id: &str, deps: &[&str], files: &[&str], refs: &[&str]| {
            json!({"id": id, "title": format!("Build {id}"), "description": "d",
                   "depends_on": deps, "owned_files": files, "requirement_refs": refs,
                   "acceptance": ["ok"], "estimate": "s"})
        };
        let plan = json!([
            wp("model", &[], &["src/models/user.py"], &["FR-001", "US1"]),
            wp("docs", &[], &["docs/user.md"], &["FR-002"]),
            wp(
                "service",
                &["model"],
                &["src/services/user.py"],
                &["US2", "FR-001"]
            ),
        ]);
        super::super::check(plan.to_string().as_bytes(), None).expect("a valid plan")
    }

    #[cfg(unix)]
    #[test]
    fn write_back_never_writes_through_a_symbolic_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let feature = dir.path().join("specs/001-x");
        std::fs::create_dir_all(&feature).unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "the user's file\n").unwrap();
        let layout = Layout {
            dir: feature.clone(),
            feature: "001-x".into(),
            artifacts: Vec::new(),
        };
        for name in ["plan.md", ".tasks.md.spectacular"] {
            std::os::unix::fs::symlink(&outside, feature.join(name)).unwrap();
        }
        for name in ["plan.md", "tasks.md"] {
            let err = write(&layout, name, "new text\n").unwrap_err();
            assert!(err.to_string().contains("symbolic link"), "{err}");
        }
        assert_eq!(
            std::fs::read_to_string(&outside).unwrap(),
            "the user's file\n"
        );
    }

    #[test]
    fn task_lines_follow_spec_kits_checklist_format() {
        let text = tasks_md(&report(), "Users", "001-users", "01RUN");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("- [ ] T")).collect();
        assert_eq!(
            lines,
            [
                "- [ ] T001 [P] [US1] Build model in src/models/user.py",
                "- [ ] T002 [P] Build docs in docs/user.md",
                "- [ ] T003 [US2] Build service in src/services/user.py (depends on T001)",
            ]
        );
        assert!(text.starts_with(MARKER));
    }

    #[test]
    fn a_spec_kit_directory_is_detected_with_its_artifacts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let feature = dir.path().join("specs/003-login");
        std::fs::create_dir_all(feature.join("contracts")).expect("mkdir");
        for f in ["spec.md", "research.md"] {
            std::fs::write(feature.join(f), "# x\n").expect("write");
        }
        let layout = detect(&feature.join("spec.md")).expect("detected");
        assert_eq!(layout.feature, "003-login");
        assert_eq!(
            layout.artifacts,
            [feature.join("research.md"), feature.join("contracts")]
        );
        assert!(detect(&dir.path().join("docs/spec.md")).is_none());
        assert!(detect(&dir.path().join("specs/login/spec.md")).is_none());
        assert!(detect(&feature.join("other.md")).is_none());
    }

    #[test]
    fn the_teams_own_file_is_kept_and_ours_is_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let layout = Layout {
            dir: dir.path().to_path_buf(),
            feature: "001-x".into(),
            artifacts: Vec::new(),
        };
        std::fs::write(dir.path().join("plan.md"), "# Our plan\n").expect("write");
        let ours = format!("{MARKER} (run 1) -->\n# Plan\n");
        let (_, backup) = write(&layout, "plan.md", &ours).expect("written");
        assert_eq!(backup, Some(dir.path().join("plan.md.orig")));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("plan.md.orig")).expect("read"),
            "# Our plan\n"
        );
        let newer = format!("{MARKER} (run 2) -->\n# Plan\n");
        let (_, backup) = write(&layout, "plan.md", &newer).expect("written");
        assert_eq!(backup, None, "our own file is simply replaced");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("plan.md.orig")).expect("read"),
            "# Our plan\n"
        );
    }
}
