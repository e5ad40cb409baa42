//! `spectacular policy list|test|explain`: policy packs, their tests and a run's decisions.

use std::path::Path;

use serde_json::{json, Value as Json};

use super::{Context, Exit, Failure, Outcome};
use crate::diag::{did_you_mean, Diagnostics};
use crate::policy::testcase::PackReport;
use crate::policy::{Layer, PackFiles, Packs};
use crate::project::user_config_dir;
use crate::record::EventData;

const EXAMPLES_LIST: &str = "\
Examples:
  # Every pack, its layer and hooks
  spectacular policy list
  # With the packs a mission adds
  spectacular policy list --mission examples/quickstart";
const EXAMPLES_TEST: &str = "\
Examples:
  # Run the tests of every pack
  spectacular policy test
  # Of one pack, by name or directory
  spectacular policy test budget-guard";
const EXAMPLES_EXPLAIN: &str = "\
Examples:
  # Every policy decision of the latest run
  spectacular policy explain last
  # One phase, and what another pack would have decided
  spectacular policy explain last implement --policies ./cost-routing";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// List policy packs with their version, layer, hooks and origin.
    #[command(after_help = EXAMPLES_LIST)]
    List {
        /// Also the packs beside this mission (its `policies/` directory) and those it enables.
        #[arg(long, value_name = "MISSION")]
        mission: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the test cases (`tests/*.yaml`) of every pack, or of one pack (a name or a directory).
    #[command(after_help = EXAMPLES_TEST)]
    Test {
        /// A pack name, or the path of a pack directory.
        pack: Option<String>,
        /// Also the packs beside this mission (its `policies/` directory) and those it enables.
        #[arg(long, value_name = "MISSION")]
        mission: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the policy decisions of a run (every hook call, with its reason).
    #[command(after_help = EXAMPLES_EXPLAIN)]
    Explain {
        /// The run id (a unique prefix, or `last`).
        run: String,
        /// Only this phase (a fan-out parent includes its children).
        phase: Option<String>,
        /// What if: also evaluate the decisions again with these packs added (as
        /// `spectacular replay --policies`).
        #[arg(long, num_args = 1.., value_name = "PACK")]
        policies: Vec<String>,
        /// What if: price the recorded tokens with this `models.yaml` on top of the catalogue.
        #[arg(long, value_name = "FILE")]
        models: Option<std::path::PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(context: &Context, args: Args) -> Outcome {
    match args.command {
        Sub::List { mission, json } => list(context, mission.as_deref(), json),
        Sub::Test {
            pack,
            mission,
            json,
        } => test(context, pack.as_deref(), mission.as_deref(), json),
        Sub::Explain {
            run,
            phase,
            policies,
            models,
            json,
        } => {
            let what_if = (!policies.is_empty() || models.is_some())
                .then(|| super::replay::WhatIf::new(context, &policies, models.as_deref()))
                .transpose()?;
            explain(context, &run, phase.as_deref(), what_if.as_ref(), json)
        }
    }
}

/// Every pack reachable from the working directory, and from `mission` when one is given: the
/// mission-local layer and the packs the mission enables. An invalid mission is reported and
/// ends the command (with the outcome in `Err`).
fn discover(context: &Context, mission: Option<&str>) -> Result<(Packs, Diagnostics), Outcome> {
    let dot_dir = context.project.dot_dir();
    let user = user_config_dir().map(|d| d.join("policies"));
    let validated = match mission {
        None => None,
        Some(name) => {
            let validated = context.validate(name).map_err(Err)?;
            match validated.mission {
                Some(m) if !validated.diagnostics.has_errors() => Some(m),
                _ => return Err(Ok(report(context, &validated.diagnostics))),
            }
        }
    };
    let mission_dir = validated.as_ref().and_then(|m| m.base.dir());
    let enabled = validated.as_ref().map_or(&[][..], |m| &m.policies[..]);
    Ok(Packs::discover_from(
        &dot_dir,
        user.as_deref(),
        mission_dir,
        enabled,
        &context.cwd,
    ))
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::internal(e.to_string())
}

/// Print diagnostics on stderr; the exit code for them.
fn report(context: &Context, diagnostics: &Diagnostics) -> Exit {
    if diagnostics.is_empty() {
        return Exit::Success;
    }
    eout!("{}", context.render_stderr(diagnostics));
    if diagnostics.has_errors() {
        Exit::Invalid
    } else {
        Exit::Success
    }
}

fn list(context: &Context, mission: Option<&str>, json: bool) -> Outcome {
    let (packs, diagnostics) = match discover(context, mission) {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let infos = packs.list();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&infos).map_err(internal)?
        )?;
    } else {
        let width = infos.iter().map(|p| p.name.len()).max().unwrap_or(4).max(4);
        let hooks_of = |p: &crate::policy::PackInfo| {
            p.hooks
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let hooks_width = infos
            .iter()
            .map(|p| hooks_of(p).len())
            .max()
            .unwrap_or(5)
            .max(5);
        outln!(
            "{:width$}  {:7}  {:7}  {:hooks_width$}  {:8}  ORIGIN",
            "NAME",
            "VERSION",
            "LAYER",
            "HOOKS",
            "STATUS"
        )?;
        for p in &infos {
            let status = if p.shadowed {
                "shadowed"
            } else if p.active {
                "active"
            } else {
                "opt-in"
            };
            outln!(
                "{:width$}  {:7}  {:7}  {:hooks_width$}  {:8}  {}",
                p.name,
                p.version,
                p.layer.as_str(),
                hooks_of(p),
                status,
                p.origin
            )?;
        }
    }
    Ok(report(context, &diagnostics))
}

fn test(context: &Context, pack: Option<&str>, mission: Option<&str>, json: bool) -> Outcome {
    let as_dir = pack
        .map(|p| context.cwd.join(p))
        .filter(|p| p.join(crate::policy::pack::MANIFEST).is_file());
    let (packs, mut diagnostics, filter) = match &as_dir {
        Some(dir) => {
            let files = PackFiles::dir(dir, &context.cwd);
            let (packs, diagnostics) = Packs::from_sources(vec![(Layer::Project, files)], &[]);
            (packs, diagnostics, None)
        }
        None => {
            let (packs, diagnostics) = match discover(context, mission) {
                Ok(found) => found,
                Err(outcome) => return outcome,
            };
            (packs, diagnostics, pack)
        }
    };
    if let Some(name) = filter {
        let names: Vec<String> = packs.list().into_iter().map(|p| p.name).collect();
        if !names.iter().any(|n| n == name) && !diagnostics.has_errors() {
            let hint = did_you_mean(name, names.iter().map(String::as_str))
                .map(|h| format!("\n  help: {h}"))
                .unwrap_or_else(|| {
                    "\n  help: `spectacular policy list` shows the packs; a path to a pack directory works too".into()
                });
            return Err(Failure::usage(format!(
                "no policy pack named `{name}`{hint}"
            )));
        }
    }
    let (reports, case_diagnostics) = packs.test(filter);
    diagnostics.extend(case_diagnostics);
    if json {
        let value = json!({
            "passed": reports.iter().map(PackReport::passed).sum::<usize>(),
            "failed": reports.iter().map(PackReport::failed).sum::<usize>(),
            "invalid": diagnostics.error_count(),
            "packs": reports,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(internal)?
        )?;
    } else {
        out!("{}", render_reports(&reports, diagnostics.error_count()))?;
    }
    let invalid = report(context, &diagnostics);
    if invalid != Exit::Success {
        return Ok(invalid);
    }
    let failed = reports.iter().any(|r| r.failed() > 0);
    Ok(if failed {
        Exit::RunFailed
    } else {
        Exit::Success
    })
}

/// The text report of `policy test`.
pub fn render_reports(reports: &[PackReport], invalid: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for r in reports {
        let _ = writeln!(out, "{} {} ({})", r.pack, r.version, r.origin);
        if r.cases.is_empty() {
            let _ = writeln!(out, "  (no tests)");
        }
        for case in &r.cases {
            if case.passed {
                let _ = writeln!(out, "  ok    {} [{}]", case.name, case.hook);
            } else {
                let file = Path::new(&case.file)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let _ = writeln!(out, "  FAIL  {} [{}] ({file})", case.name, case.hook);
                for line in &case.diff {
                    let _ = writeln!(out, "          {line}");
                }
                let _ = writeln!(out, "          actual: {}", case.actual);
            }
        }
    }
    let passed: usize = reports.iter().map(PackReport::passed).sum();
    let failed: usize = reports.iter().map(PackReport::failed).sum();
    let verdict = if failed == 0 && invalid == 0 {
        "ok"
    } else {
        "FAILED"
    };
    let problems = match invalid {
        0 => String::new(),
        1 => "; 1 problem in packs or cases (see below)".into(),
        n => format!("; {n} problems in packs or cases (see below)"),
    };
    let _ = writeln!(
        out,
        "\npolicy tests: {verdict}. {passed} passed; {failed} failed; {} pack{}{problems}",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" }
    );
    out
}

fn explain(
    context: &Context,
    run: &str,
    phase: Option<&str>,
    what_if: Option<&super::replay::WhatIf>,
    json: bool,
) -> Outcome {
    let store = context.store();
    let run_id = store
        .resolve_run(run)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let events = store.read_events(&run_id).map_err(internal)?;
    let matches = |p: &str| {
        phase.is_none_or(|want| {
            p == want || p.strip_prefix(want).is_some_and(|r| r.starts_with('['))
        })
    };
    let decisions: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::PolicyDecided(d) if matches(&d.phase) => Some((e, d)),
            _ => None,
        })
        .collect();
    if json {
        let items: Vec<Json> = decisions
            .iter()
            .map(|(e, d)| {
                json!({
                    "seq": e.seq,
                    "ts": e.ts,
                    "phase": d.phase,
                    "pack": d.pack,
                    "version": d.version,
                    "hook": d.hook,
                    "result": d.result,
                    "reason": d.reason,
                    "input_digest": d.input_digest,
                    "ignored": d.ignored,
                })
            })
            .collect();
        let value = match &what_if {
            None => Json::Array(items),
            Some(tools) => {
                let attempts: Vec<_> = tools
                    .evaluate(&events)?
                    .attempts
                    .into_iter()
                    .filter(|a| matches(&a.phase))
                    .collect();
                json!({"decisions": items, "what_if": attempts})
            }
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(internal)?
        )?;
        return Ok(Exit::Success);
    }
    let scope = phase.map(|p| format!(", phase `{p}`")).unwrap_or_default();
    if decisions.is_empty() {
        outln!("run {run_id}{scope}: no policy decisions recorded")?;
        return Ok(Exit::Success);
    }
    outln!(
        "run {run_id}{scope}: {} policy decision{}",
        decisions.len(),
        if decisions.len() == 1 { "" } else { "s" }
    )?;
    let mut current = "";
    for (e, d) in &decisions {
        if d.phase != current {
            outln!("\n{}", d.phase)?;
            current = &d.phase;
        }
        let who = format!("{} {}", d.pack, d.version);
        outln!(
            "  #{:<5} {:6}  {:24}  {}",
            e.seq,
            d.hook,
            who,
            summarize(&d.hook, &d.result, d.reason.as_deref())
        )?;
        // A route the engine did not apply is never shown as if it were.
        if let Some(why) = &d.ignored {
            outln!("  {:6}  {:6}  {:24}  {why}", "", "", "")?;
        }
    }
    if let Some(tools) = what_if {
        let report = tools.evaluate(&events)?;
        outln!("\nwhat if:")?;
        for a in report.attempts.iter().filter(|a| matches(&a.phase)) {
            out!("{}", crate::query::whatif::attempt_text(a))?;
        }
    }
    Ok(Exit::Success)
}

/// One line for a decision: what was decided and why.
fn summarize(hook: &str, result: &Json, reason: Option<&str>) -> String {
    crate::query::decision_summary(hook, result, reason)
}
