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
        if !existing.starts_with(MARKER) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
