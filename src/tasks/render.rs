//! The plan as people read it: `traceability.md` and the summary of `spectacular plan`.

use std::fmt::Write as _;

use super::check::PlanReport;

/// Escape a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Markdown the engine writes with no raw HTML from what it quotes (a plan's titles, a spec's
/// text, an agent's plan): every `<` becomes `&lt;`, so no tag, comment or script reaches a
/// renderer. The engine's own first-line marker comment ([`super::speckit::MARKER`]) stays.
pub fn no_html(markdown: &str) -> String {
    let (first, rest) = match markdown.split_once('\n') {
        Some((first, rest))
            if first.starts_with(super::speckit::MARKER)
                && first.ends_with("-->")
                && first[4..first.len() - 3].find("-->").is_none() =>
        {
            (format!("{first}\n"), rest)
        }
        _ => (String::new(), markdown),
    };
    first + &*rest.replace('<', "&lt;")
}

/// The traceability matrix: each requirement, criterion and story of the spec and the work
/// packages that deliver it, then each package and what it covers.
pub fn traceability_markdown(report: &PlanReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Traceability\n");
    if report.traceability.is_empty() {
        let _ = writeln!(
            out,
            "The plan was checked without a spec: there is nothing to trace it to.\n"
        );
    } else {
        let _ = writeln!(
            out,
            "{} of {} requirements and success criteria are covered.\n",
            report.covered, report.to_cover
        );
        let _ = writeln!(out, "| id | kind | spec line | text | work packages |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for row in &report.traceability {
            let through = (row.kind == super::RefKind::Acceptance)
                .then(|| super::refs::story_of(&row.id))
                .flatten()
                .and_then(|story| {
                    report
                        .traceability
                        .iter()
                        .find(|r| r.kind == super::RefKind::Story && r.id == story)
                })
                .filter(|story| !story.work_packages.is_empty());
            let packages = match through {
                _ if !row.work_packages.is_empty() => row.work_packages.join(", "),
                Some(story) => format!("through {}: {}", story.id, story.work_packages.join(", ")),
                None => "—".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                row.id,
                row.kind.name(),
                row.line,
                cell(&row.text),
                packages
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Work packages\n");
    let _ = writeln!(out, "| work package | title | covers | owned files |");
    let _ = writeln!(out, "|---|---|---|---|");
    for wp in &report.work_packages {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            wp.id,
            cell(&wp.title),
            cell(&wp.requirement_refs.join(", ")),
            cell(&wp.owned_files.join(", "))
        );
    }
    no_html(&out)
}

/// What a plan is estimated to cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cost<'a> {
    /// Dollars with a model's catalogue prices.
    Priced(f64, &'a str),
    /// Its agents have no prices (`command` agents).
    Unpriced,
    /// No model's prices are known.
    Unknown,
}

/// The plan summary for a terminal, with its estimated cost.
pub fn summary_text(report: &PlanReport, cost: Cost<'_>) -> String {
    let mut out = String::new();
    if let Some(changed) = &report.spec_changed {
        let _ = writeln!(out, "warning: {changed}");
    }
    let _ = writeln!(
        out,
        "{} work packages in {} waves, {} lanes",
        report.work_packages.len(),
        report
            .work_packages
            .iter()
            .map(|w| w.wave + 1)
            .max()
            .unwrap_or(0),
        report.lanes.len()
    );
    if report.imported {
        let _ = writeln!(
            out,
            "imported from the team's Spec Kit tasks.md (no planner agent): one work package per \
             open task"
        );
    }
    if report.to_cover > 0 || !report.traceability.is_empty() {
        let _ = writeln!(
            out,
            "coverage: {} of {} requirements and success criteria",
            report.covered, report.to_cover
        );
    }
    match cost {
        Cost::Priced(usd, model) => {
            let _ = writeln!(out, "estimated cost: ${usd:.2} with `{model}`");
        }
        Cost::Unpriced => {
            let _ = writeln!(
                out,
                "estimated cost: unpriced (its agents have no prices; `--model` prices it \
                 with a catalogue model)"
            );
        }
        Cost::Unknown => {
            let _ = writeln!(out, "estimated cost: unknown (no priced model)");
        }
    }
    let _ = writeln!(out);
    for wp in &report.work_packages {
        let _ = writeln!(
            out,
            "{} [{}] {}",
            wp.id,
            wp.estimate.name(),
            wp.title.replace('\n', " ")
        );
        if !wp.depends_on.is_empty() {
            let _ = writeln!(out, "    after: {}", wp.depends_on.join(", "));
        }
        let _ = writeln!(out, "    files: {}", wp.owned_files.join(", "));
        if !wp.requirement_refs.is_empty() {
            let _ = writeln!(out, "    covers: {}", wp.requirement_refs.join(", "));
        }
    }
    let shared: Vec<_> = report
        .lanes
        .iter()
        .filter(|l| l.work_packages.len() > 1)
        .collect();
    if !shared.is_empty() {
        let _ = writeln!(
            out,
            "\nlanes (packages that share files run one at a time):"
        );
        for lane in shared {
            let _ = writeln!(out, "    {}", lane.work_packages.join(" → "));
        }
    }
    if !report.overlaps.is_empty() {
        let _ = writeln!(out, "\noverlaps between packages that could run together:");
        for o in &report.overlaps {
            let _ = writeln!(
                out,
                "    {} and {}: `{}` / `{}`",
                o.a, o.b, o.globs.0, o.globs.1
            );
        }
        if report.more_overlaps > 0 {
            let _ = writeln!(out, "    … and {} more", report.more_overlaps);
        }
    }
    let uncovered: Vec<&str> = report
        .traceability
        .iter()
        .filter(|r| r.kind.must_cover() && r.work_packages.is_empty())
        .map(|r| r.id.as_str())
        .collect();
    if !uncovered.is_empty() {
        let _ = writeln!(out, "\nnot covered: {}", uncovered.join(", "));
    }
    out
}

/// An approval's plan summary on one line: `3 work packages in 2 waves, 3 lanes; coverage 5 of
/// 5; estimated $0.12 with `claude-sonnet``, with the lanes that serialize packages.
pub fn approval_text(plan: &crate::record::event::PlanSummary) -> String {
    let mut out = format!(
        "{} work packages in {} waves, {} lanes; coverage {} of {}",
        plan.work_packages.len(),
        plan.waves,
        plan.lane_count,
        plan.covered,
        plan.to_cover
    );
    if !plan.uncovered.is_empty() {
        let _ = write!(out, " (not covered: {})", plan.uncovered.join(", "));
    }
    match (plan.estimate_usd, &plan.model) {
        _ if plan.unpriced => out.push_str("; unpriced (its agents have no prices)"),
        (Some(usd), Some(model)) => {
            let _ = write!(out, "; estimated ${usd:.2} with `{model}`");
        }
        _ => out.push_str("; estimated cost unknown"),
    }
    for lane in &plan.lanes {
        let _ = write!(out, "; lane {}", lane.join(" → "));
    }
    out
}

#[cfg(test)]
mod html_tests {
    use super::*;

    #[test]
    fn no_raw_html_reaches_the_markdown_but_the_marker_stays() {
        let md = format!(
            "{} (run r) -->\n# <script>alert(1)</script>\n<!-- x -->\n",
            super::super::speckit::MARKER
        );
        let safe = no_html(&md);
        assert!(safe.starts_with("<!-- Written by Spectacular"), "{safe}");
        assert!(!safe[4..].contains('<'), "{safe}");
        assert!(safe.contains("&lt;script>"), "{safe}");
        assert_eq!(no_html("a <b> c"), "a &lt;b> c");
    }
}

#[cfg(test)]
mod through_tests {
    use super::super::check::{PlanReport, TraceRow};
    use super::super::RefKind;
    use super::*;

    fn row(id: &str, kind: RefKind, work_packages: &[&str]) -> TraceRow {
        TraceRow {
            id: id.into(),
            kind,
            text: format!("{id} text"),
            line: 1,
            work_packages: work_packages.iter().map(|w| w.to_string()).collect(),
        }
    }

    #[test]
    fn an_acceptance_scenario_is_covered_through_its_story() {
        let report = PlanReport {
            work_packages: Vec::new(),
            traceability: vec![
                row("FR-001", RefKind::Requirement, &["wp-1"]),
                row("US1.1", RefKind::Acceptance, &[]),
                row("US2.1", RefKind::Acceptance, &[]),
                row("US1", RefKind::Story, &["wp-1"]),
                row("US2", RefKind::Story, &[]),
            ],
            covered: 1,
            to_cover: 1,
            overlaps: Vec::new(),
            more_overlaps: 0,
            lanes: Vec::new(),
            spec_changed: None,
            imported: false,
        };
        let md = traceability_markdown(&report);
        assert!(md.contains("| through US1: wp-1 |"), "{md}");
        // A story no package covers covers nothing.
        let us2 = md
            .lines()
            .find(|l| l.starts_with("| US2.1 "))
            .expect("US2.1");
        assert!(us2.ends_with("| — |"), "{us2}");
    }
}
