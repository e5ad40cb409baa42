//! The report as Markdown (`report.md`).

use std::fmt::Write as _;

use super::*;

/// A table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out = line.replace('|', "\\|");
    if text.lines().nth(1).is_some() {
        out.push_str(" …");
    }
    out
}

fn usd(value: f64) -> String {
    crate::query::usd(value)
}

fn ms(value: Option<u64>) -> String {
    crate::query::ms(value)
}

fn opt(value: &Option<String>) -> String {
    value.as_deref().map_or_else(|| "-".to_string(), cell)
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// The report as Markdown (`report.md`).
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    header(&mut out, report);
    spec(&mut out, report);
    plan(&mut out, report);
    work_packages(&mut out, report);
    work_package_problems(&mut out, report);
    phases(&mut out, report);
    checks(&mut out, report);
    verdicts(&mut out, report);
    merges(&mut out, report);
    cost(&mut out, report);
    decisions(&mut out, report);
    approvals(&mut out, report);
    loops(&mut out, report);
    timeline(&mut out, report);
    crate::tasks::render::no_html(&out)
}

/// The title and the run's status, mission, times, cost and inputs.
fn header(out: &mut String, report: &Report) {
    let run = &report.run;
    let _ = writeln!(out, "# Run {} of `{}`\n", run.run_id, run.mission);
    let _ = writeln!(out, "- status: **{}**", run.status);
    if run.status == "running" {
        let _ = writeln!(
            out,
            "- written while the run was going; `spectacular report {}` prints it again",
            run.run_id
        );
    }
    if !run.failed.is_empty() {
        let failed: Vec<String> = run.failed.iter().map(|f| format!("`{f}`")).collect();
        let _ = writeln!(out, "- failed: {}", failed.join(", "));
    }
    let _ = writeln!(out, "- mission: `{}`", run.mission_source);
    let _ = writeln!(
        out,
        "- started: {}; ended: {}; took {}",
        run.started_at.as_deref().unwrap_or("-"),
        run.ended_at.as_deref().unwrap_or("-"),
        ms(run.duration_ms)
    );
    let _ = writeln!(
        out,
        "- cost: {} over {} agent call{}",
        usd(report.cost.total_usd),
        report.cost.calls,
        plural(report.cost.calls)
    );
    for (name, value) in &run.inputs {
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "- input `{name}`: {}", cell(&shown));
    }
}

/// The spec's complexity and what it is made of.
fn spec(out: &mut String, report: &Report) {
    if let Some(spec) = &report.spec {
        let _ = writeln!(out, "\n## Spec\n");
        let title = spec
            .title
            .as_deref()
            .map(|t| format!(": {t}"))
            .unwrap_or_default();
        let _ = writeln!(out, "`{}`{title}\n", spec.spec);
        let _ = writeln!(
            out,
            "Complexity **{:.2}** ({}), {} requirements, {} questions{}.\n",
            spec.complexity,
            spec.tier,
            spec.requirements,
            spec.questions,
            if spec.risk_areas.is_empty() {
                String::new()
            } else {
                format!(", risk areas: {}", spec.risk_areas.join(", "))
            }
        );
        if !spec.dimensions.is_empty() {
            let _ = writeln!(out, "| dimension | score | weight | signals |");
            let _ = writeln!(out, "|---|---:|---:|---|");
            for d in &spec.dimensions {
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | {:.2} | {} |",
                    d.name,
                    d.score,
                    d.weight,
                    cell(&d.signals.join("; "))
                );
            }
        }
    }
}

/// The checked plan: its work packages and how they cover the spec.
fn plan(out: &mut String, report: &Report) {
    if let Some(plan) = &report.plan {
        let _ = writeln!(out, "\n## Plan\n");
        let _ = writeln!(
            out,
            "{} work package{} from `{}`{}.\n",
            plan.work_packages.len(),
            plural(plan.work_packages.len() as u64),
            plan.phase,
            if plan.to_cover > 0 {
                format!(
                    "; {} of {} requirements and criteria covered",
                    plan.covered, plan.to_cover
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(out, "| id | title | depends on | requirements | files |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for wp in &plan.work_packages {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&wp.id),
                cell(&wp.title),
                cell(&wp.depends_on.join(", ")),
                cell(&wp.requirement_refs.join(", ")),
                cell(&wp.owned_files.join(", "))
            );
        }
        if !plan.traceability.is_empty() {
            let _ = writeln!(out, "\n### Traceability\n");
            let _ = writeln!(out, "| id | kind | work packages | text |");
            let _ = writeln!(out, "|---|---|---|---|");
            for t in &plan.traceability {
                // An acceptance scenario no package names is covered through its story.
                let through = (t.kind == "acceptance")
                    .then(|| crate::tasks::story_of(&t.id))
                    .flatten()
                    .and_then(|story| {
                        plan.traceability
                            .iter()
                            .find(|r| r.kind == "story" && r.id == story)
                    })
                    .filter(|story| !story.work_packages.is_empty());
                let wps = match through {
                    _ if !t.work_packages.is_empty() => t.work_packages.join(", "),
                    Some(story) => {
                        format!("through {}: {}", story.id, story.work_packages.join(", "))
                    }
                    None => "**none**".to_string(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    cell(&t.id),
                    t.kind,
                    cell(&wps),
                    cell(&t.text)
                );
            }
        }
    }
}

/// The work packages: a summary of their states and one row each.
fn work_packages(out: &mut String, report: &Report) {
    if !report.work_packages.is_empty() {
        let _ = writeln!(out, "\n## Work packages\n");
        let mut states: Vec<(WpState, usize)> = Vec::new();
        for state in WpState::ALL {
            let n = report
                .work_packages
                .iter()
                .filter(|w| w.state == state)
                .count();
            if n > 0 {
                states.push((state, n));
            }
        }
        let states: Vec<String> = states
            .iter()
            .map(|(state, n)| format!("{n} {}", state.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "{} work package{}: {}.\n",
            report.work_packages.len(),
            plural(report.work_packages.len() as u64),
            states.join(", ")
        );
        let _ = writeln!(
            out,
            "| package | state | lane | branch | commits | diff | attempts | agent / model | cost | verdicts |"
        );
        let _ = writeln!(out, "|---|---|---:|---|---:|---|---:|---|---:|---|");
        for wp in &report.work_packages {
            let (branch, commits, diff) = match &wp.git {
                Some(g) => (
                    format!("`{}`", g.branch),
                    g.commits.len().to_string(),
                    format!(
                        "{} file{}, +{} −{}",
                        g.files.len(),
                        plural(g.files.len() as u64),
                        g.insertions,
                        g.deletions
                    ),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let who = [wp.agent.as_deref(), wp.model.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" / ");
            let verdicts = verdict_counts(&wp.verdicts);
            let state = if wp.note.is_empty() {
                wp.state.as_str().to_string()
            } else {
                format!("{}: {}", wp.state.as_str(), cell(&wp.note))
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                wp.instance,
                state,
                wp.lane.map_or_else(|| "-".to_string(), |l| l.to_string()),
                branch,
                commits,
                diff,
                wp.attempts.len(),
                if who.is_empty() {
                    "-".into()
                } else {
                    cell(&who)
                },
                usd(wp.cost_usd),
                if verdicts.is_empty() {
                    "-".into()
                } else {
                    verdicts
                }
            );
        }
    }
}

/// What went wrong in each work package: failed attempts, changes outside its files.
fn work_package_problems(out: &mut String, report: &Report) {
    for wp in &report.work_packages {
        let failed: Vec<&AttemptRow> = wp
            .attempts
            .iter()
            .filter(|a| a.outcome == "failed")
            .collect();
        let outside = wp.git.as_ref().map(|g| &g.outside_owned);
        if failed.is_empty() && outside.is_none_or(|o| o.is_empty()) {
            continue;
        }
        let _ = writeln!(out, "\n### `{}`\n", wp.instance);
        if let Some(outside) = outside.filter(|o| !o.is_empty()) {
            let _ = writeln!(out, "- changed outside its files: {}", outside.join(", "));
        }
        for a in failed {
            let _ = writeln!(
                out,
                "- attempt {} failed: {}: {}",
                a.attempt,
                a.kind.as_deref().unwrap_or("-"),
                cell(a.message.as_deref().unwrap_or(""))
            );
        }
    }
}

/// One row per phase.
fn phases(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n## Phases\n");
    let _ = writeln!(out, "| phase | state | attempts | time | cost | note |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|---|");
    for p in &report.phases {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            p.phase,
            p.state,
            p.attempts,
            ms(p.duration_ms),
            if p.cost_usd > 0.0 {
                usd(p.cost_usd)
            } else {
                "-".into()
            },
            cell(&p.note)
        );
    }
}

/// Failed attempts and the errors the checks found.
fn checks(out: &mut String, report: &Report) {
    if !report.checks.errors.is_empty() || !report.checks.failures.is_empty() {
        let _ = writeln!(out, "\n## Checks and errors\n");
        for f in &report.checks.failures {
            let files = if f.files.is_empty() {
                String::new()
            } else {
                format!(" (files: {})", f.files.join(", "))
            };
            let _ = writeln!(
                out,
                "- `{}` attempt {} failed ({}){files}: {}",
                f.phase,
                f.attempt,
                f.kind,
                cell(&f.message)
            );
        }
        if !report.checks.errors.is_empty() {
            if !report.checks.failures.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "| location | severity | tool | code | message |");
            let _ = writeln!(out, "|---|---|---|---|---|");
            for e in &report.checks.errors {
                let mut at = e.file.clone().unwrap_or_else(|| "-".into());
                if let Some(line) = e.line {
                    let _ = write!(at, ":{line}");
                    if let Some(column) = e.column {
                        let _ = write!(at, ":{column}");
                    }
                }
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    cell(&at),
                    cell(&e.severity),
                    cell(&e.tool),
                    opt(&e.code),
                    cell(&e.message)
                );
            }
        }
    }
}

/// The judges' verdicts on the acceptance criteria.
fn verdicts(out: &mut String, report: &Report) {
    if !report.verdicts.is_empty() {
        let _ = writeln!(out, "\n## Verdicts\n");
        let _ = writeln!(
            out,
            "| criterion | verdict | package | evidence | reason | by |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for v in &report.verdicts {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | `{}` |",
                cell(&v.criterion),
                cell(&v.verdict),
                opt(&v.work_package),
                if v.evidence.is_empty() {
                    "-".to_string()
                } else {
                    cell(&v.evidence.join("; "))
                },
                cell(&v.reason),
                v.phase
            );
        }
    }
}

/// The merges of work branches.
fn merges(out: &mut String, report: &Report) {
    if !report.merges.is_empty() {
        let _ = writeln!(out, "\n## Merges\n");
        for m in &report.merges {
            let conflicts = if m.conflicts.is_empty() {
                String::new()
            } else {
                format!(": {}", m.conflicts.join(", "))
            };
            let _ = writeln!(
                out,
                "- `{}` ({} at {}) into `{}`: {}{conflicts}",
                m.work,
                m.branch,
                short(&m.commit),
                m.into,
                m.outcome
            );
        }
    }
}

/// What the agent calls cost, by phase, agent and model, and the budget alerts.
fn cost(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\n## Cost\n");
    if report.cost.calls == 0 {
        let _ = writeln!(out, "No agent calls.");
    } else {
        for (title, groups) in [
            ("phase", &report.cost.by_phase),
            ("agent", &report.cost.by_agent),
            ("model", &report.cost.by_model),
        ] {
            let _ = writeln!(out, "| {title} | calls | cost | tokens in | tokens out |");
            let _ = writeln!(out, "|---|---:|---:|---:|---:|");
            for g in groups {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    cell(&g.key),
                    g.calls,
                    usd(g.cost_usd),
                    g.input_tokens,
                    g.output_tokens
                );
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "Total {} over {} call{}.",
            usd(report.cost.total_usd),
            report.cost.calls,
            plural(report.cost.calls)
        );
    }
    for alert in &report.cost.alerts {
        let _ = writeln!(out, "- budget alert: {}", cell(alert));
    }
}

/// The policy packs' decisions.
fn decisions(out: &mut String, report: &Report) {
    if !report.decisions.is_empty() {
        let _ = writeln!(out, "\n## Policy decisions\n");
        let _ = writeln!(out, "| phase | pack | hook | decision |");
        let _ = writeln!(out, "|---|---|---|---|");
        for d in &report.decisions {
            let _ = writeln!(
                out,
                "| {} | {} {} | {} | {} |",
                d.phase,
                d.pack,
                d.version,
                d.hook,
                cell(&d.decision)
            );
        }
    }
}

/// The approvals asked for and their answers.
fn approvals(out: &mut String, report: &Report) {
    if !report.approvals.is_empty() {
        let _ = writeln!(out, "\n## Approvals\n");
        for a in &report.approvals {
            let answered = a.questions.iter().filter(|q| q.answer.is_some()).count();
            let outcome = match a.approved {
                None if a.answered() => {
                    let mut by: Vec<&str> =
                        a.questions.iter().filter_map(|q| q.by.as_deref()).collect();
                    by.dedup();
                    format!("answered by {}", by.join(", "))
                }
                None if answered > 0 => format!(
                    "waiting ({answered} of {} questions answered)",
                    a.questions.len()
                ),
                None => "waiting".to_string(),
                Some(approved) => {
                    let what = match (approved, a.timed_out) {
                        (true, false) => "approved",
                        (false, false) => "rejected",
                        (true, true) => "approved on timeout",
                        (false, true) => "rejected on timeout",
                    };
                    let comment = a.comment.as_deref().map(|c| format!(": {}", cell(c)));
                    format!(
                        "{what} by {}{}",
                        a.by.as_deref().unwrap_or("-"),
                        comment.unwrap_or_default()
                    )
                }
            };
            let _ = writeln!(out, "- `{}` ({}): {outcome}", a.phase, cell(&a.reason));
            for q in &a.questions {
                let answer = q.answer.as_deref().map_or("not answered".into(), cell);
                let _ = writeln!(out, "  {}. {} → {answer}", q.number, cell(&q.text));
            }
        }
    }
}

/// The loops taken back to earlier phases.
fn loops(out: &mut String, report: &Report) {
    if !report.loops.is_empty() {
        let _ = writeln!(out, "\n## Loops\n");
        for l in &report.loops {
            let _ = writeln!(
                out,
                "- loop {} from `{}` back to `{}` at {}: reset {}",
                l.iteration,
                l.from,
                l.goto,
                l.at,
                l.reset.join(", ")
            );
        }
    }
}

/// The events, the latest last.
fn timeline(out: &mut String, report: &Report) {
    let run = &report.run;
    let _ = writeln!(out, "\n## Timeline\n");
    let _ = writeln!(out, "| seq | time | event | phase | detail |");
    let _ = writeln!(out, "|---:|---|---|---|---|");
    for t in &report.timeline {
        let time = t.ts.get(11..23).unwrap_or(&t.ts);
        let _ = writeln!(
            out,
            "| {} | {time} | {} | {} | {} |",
            t.seq,
            t.kind,
            t.phase.as_deref().unwrap_or(""),
            cell(&t.detail)
        );
    }
    if report.timeline_omitted > 0 {
        let _ = writeln!(
            out,
            "\n{} more events: `spectacular events {}` lists them all.",
            report.timeline_omitted, run.run_id
        );
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `2 pass, 1 fail`.
fn verdict_counts(verdicts: &[Verdict]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in verdicts {
        *counts.entry(v.verdict.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(v, n)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
