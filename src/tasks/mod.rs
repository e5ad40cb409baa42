//! The planning contract: `tasks.json`, the work packages a planner writes. This module owns
//! its published JSON Schema (generated from [`WorkPackage`], committed as
//! `schemas/tasks.schema.json`), the checks beyond the schema ([`check`]: ids, dependencies,
//! traceability to the spec, owned-file overlaps), the traceability matrix (`traceability.md`)
//! and the plan summary `spectacular plan` prints.
//!
//! - `check.rs`: a hostile `tasks.json` → every problem, or a [`PlanReport`].
//! - `globs.rs`: could two `owned_files` globs name the same file?
//! - `refs.rs`: the requirement and success-criterion ids of a spec, the input of traceability.
//! - `render.rs`: `traceability.md` and the summary as text.
//! - `speckit.rs`: Spec Kit feature directories, and the plan written back as its `plan.md`
//!   and `tasks.md`.
//!
//! **Invariant:** pure (no file, clock or network access) except `speckit.rs`, which reads and
//! writes only inside a Spec Kit feature directory; a plan of any shape gives problems, never a
//! panic, in time bounded by the limits below.

mod check;
pub mod globs;
mod refs;
pub(crate) mod render;
pub mod speckit;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use check::{check, Lane, Overlap, PlanReport, TraceRow, WorkPackageSummary};
pub use globs::may_overlap;
pub use refs::{refs_from_markdown, refs_from_spec, story_of, RefKind, SpecRef};
pub use render::{approval_text, summary_text, traceability_markdown, Cost};

/// The `output_invalid` message of a refused plan: a header, then one `- ` line per problem
/// (the form `attempt.previous_errors` splits), within the size of a recorded message.
pub fn problems_message(output: &str, problems: &[String]) -> String {
    const MAX: usize = 7 * 1024;
    let count = problems.len();
    let plural = if count == 1 { "" } else { "s" };
    let mut out = format!("output `{output}` is not a valid plan ({count} problem{plural}):");
    for (shown, problem) in problems.iter().enumerate() {
        let line = format!("\n- {}", problem.replace('\n', " "));
        if out.len() + line.len() > MAX {
            out.push_str(&format!("\n- … and {} more problems", count - shown));
            break;
        }
        out.push_str(&line);
    }
    out
}

/// The estimated cost of a plan in dollars with one model's prices: each package's tokens
/// (see [`Estimate::tokens`]) at `input` and `output` dollars per million tokens.
pub fn estimated_cost(report: &PlanReport, input: f64, output: f64) -> f64 {
    report
        .work_packages
        .iter()
        .map(|wp| {
            let (i, o) = wp.estimate.tokens();
            (i as f64 * input + o as f64 * output) / 1_000_000.0
        })
        .sum()
}

/// The value recorded beside [`REPORT_VALUE`]: the plan's estimated cost,
/// `{"usd": …, "model": …}`, priced when the plan was accepted (see [`estimate`]).
pub const ESTIMATE_VALUE: &str = "plan_estimate";

/// A plan's estimated cost with the catalogue: priced with `preferred` (the model the planner
/// used) when the catalogue has it, else with its first `standard` model. Dollars rounded to
/// the cent, and the model's name.
pub fn estimate(
    report: &PlanReport,
    catalog: &crate::config::models::Catalog,
    preferred: Option<&str>,
) -> Option<(f64, String)> {
    let name = preferred
        .filter(|m| catalog.get(m).is_some())
        .map(str::to_string)
        .or_else(|| {
            catalog
                .models
                .iter()
                .find(|(_, (m, _))| m.tier == crate::config::models::Tier::Standard)
                .map(|(name, _)| name.clone())
        })?;
    let spec = catalog.get(&name)?;
    let usd = estimated_cost(report, spec.price.input, spec.price.output);
    Some(((usd * 100.0).round() / 100.0, name))
}

/// The summary an approval of the plan shows (`approval.requested`'s `plan`), from the
/// recorded report and estimate of the phase that wrote it.
pub fn approval_summary(
    phase: &str,
    report: &PlanReport,
    estimate: Option<(f64, String)>,
) -> crate::record::event::PlanSummary {
    let waves = report
        .work_packages
        .iter()
        .map(|w| w.wave + 1)
        .max()
        .unwrap_or(0);
    let (estimate_usd, model) = estimate.unzip();
    crate::record::event::PlanSummary {
        phase: phase.to_string(),
        work_packages: report.work_packages.iter().map(|w| w.id.clone()).collect(),
        waves: waves as u32,
        lanes: report
            .lanes
            .iter()
            .filter(|l| l.work_packages.len() > 1)
            .map(|l| l.work_packages.clone())
            .collect(),
        lane_count: report.lanes.len() as u32,
        covered: report.covered as u32,
        to_cover: report.to_cover as u32,
        uncovered: report
            .traceability
            .iter()
            .filter(|r| r.kind.must_cover() && r.work_packages.is_empty())
            .map(|r| r.id.clone())
            .collect(),
        estimate_usd,
        unpriced: false,
        model,
    }
}

/// The schema's `$id`.
pub const TASKS_SCHEMA_ID: &str = "https://spectacular.dev/schemas/tasks.schema.json";

/// The largest `tasks.json` checked, in bytes.
pub const MAX_BYTES: usize = 1 << 20;
/// The most work packages in a plan (a record limit: plan summaries in events are cut at it).
pub use crate::record::limits::WORK_PACKAGES_MAX as MAX_WORK_PACKAGES;
/// The most entries in each list of a work package (`owned_files`, `depends_on`…).
pub const MAX_LIST: usize = 64;
/// The longest title.
pub const MAX_TITLE: usize = 200;
/// The longest description or acceptance criterion.
pub const MAX_TEXT: usize = 8_000;
/// The longest `owned_files` glob.
pub const MAX_GLOB: usize = 256;
/// The most `owned_files` globs in a whole plan (overlaps compare every pair).
pub const MAX_GLOBS: usize = 500;
/// The value an output check of kind `plan` records beside the plan: the [`PlanReport`].
pub const REPORT_VALUE: &str = "plan_report";
/// The artifact it writes beside the plan: the traceability matrix.
pub const TRACEABILITY: &str = "traceability";

/// The most problems listed; the rest are counted.
pub const MAX_PROBLEMS: usize = 50;

/// How big a work package is: `xs` (a line or two) to `xl` (a day of work for a person).
/// The plan summary turns it into tokens to estimate a cost: from 20,000 input and 2,000
/// output tokens for `xs` to 1,000,000 and 100,000 for `xl`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Estimate {
    Xs,
    S,
    M,
    L,
    Xl,
}

impl Estimate {
    /// Input and output tokens an agent typically spends on a work package of this size.
    pub fn tokens(self) -> (u64, u64) {
        match self {
            Estimate::Xs => (20_000, 2_000),
            Estimate::S => (60_000, 6_000),
            Estimate::M => (150_000, 15_000),
            Estimate::L => (400_000, 40_000),
            Estimate::Xl => (1_000_000, 100_000),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Estimate::Xs => "xs",
            Estimate::S => "s",
            Estimate::M => "m",
            Estimate::L => "l",
            Estimate::Xl => "xl",
        }
    }
}

/// The complexity tier of a work package, as the spec analysis names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Simple,
    Medium,
    Complex,
    Critical,
}

/// One work package of `tasks.json`. Keys not listed here are kept and reach the phase that
/// implements the package as `item.<key>`; a key one letter away from a listed one
/// (`depends-on`, `owned_file`) is refused as a likely typo.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Work package")]
pub struct WorkPackage {
    /// Names the package, its phase (`implement[<id>]`) and its branch: 1 to 64 ASCII
    /// letters, digits, `-`, `_` and `.`, starting with a letter, a digit or `_`. Unique.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"))]
    pub id: String,
    /// One line saying what the package delivers.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// What to do and how, for the agent that implements it.
    #[schemars(length(min = 1, max = 8000))]
    pub description: String,
    /// Ids of the packages that must be done first (they must exist; no cycles).
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(min = 1, max = 64)))]
    pub depends_on: Vec<String>,
    /// Files the package may change, as globs relative to the repository root
    /// (`src/auth/**`, `tests/login.rs`). Packages whose globs could name the same file are
    /// reported and never run at the same time.
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 256)))]
    pub owned_files: Vec<String>,
    /// Ids of the spec's requirements and success criteria this package delivers
    /// (`FR-001`, `SC-002`). Every one of the spec's must be covered by some package.
    #[schemars(length(max = 64), inner(length(min = 1, max = 200)))]
    pub requirement_refs: Vec<String>,
    /// How to tell the package is done: checkable statements.
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 8000)))]
    pub acceptance: Vec<String>,
    /// The package's size.
    pub estimate: Estimate,
    /// The role of the agent that should implement it (default: the phase's role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub role: Option<String>,
    /// Its complexity tier, for routing policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
}

/// The keys [`WorkPackage`] knows.
pub const KEYS: &[&str] = &[
    "id",
    "title",
    "description",
    "depends_on",
    "owned_files",
    "requirement_refs",
    "acceptance",
    "estimate",
    "role",
    "tier",
];

/// The tasks JSON Schema (draft 2020-12) as a value: an array of work packages.
pub fn tasks_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut value = generator
        .into_root_schema_for::<Vec<WorkPackage>>()
        .to_value();
    crate::model::schema::strip_null(&mut value);
    if let Value::Object(map) = &mut value {
        map.insert("$id".into(), Value::String(TASKS_SCHEMA_ID.into()));
        map.insert("title".into(), Value::String("tasks.json".into()));
        map.insert(
            "description".into(),
            Value::String(
                "The work packages a planner writes: the planning contract of Spectacular.".into(),
            ),
        );
        map.insert("maxItems".into(), Value::from(MAX_WORK_PACKAGES));
    }
    value
}

/// The tasks JSON Schema as pretty JSON with a trailing newline.
pub fn tasks_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&tasks_schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_plan_lists_its_problems_one_per_line_within_a_recorded_message() {
        let message = problems_message("tasks", &["a\nb".to_string(), "c".to_string()]);
        assert_eq!(
            message,
            "output `tasks` is not a valid plan (2 problems):\n- a b\n- c"
        );
        let many: Vec<String> = (0..500)
            .map(|i| format!("problem {i} {}", "x".repeat(100)))
            .collect();
        let message = problems_message("tasks", &many);
        assert!(message.len() <= 7 * 1024 + 64, "{}", message.len());
        assert!(message.ends_with("more problems"), "{message}");
    }

    #[test]
    fn the_schema_lists_every_known_key() {
        let schema = tasks_schema();
        let properties = &schema["$defs"]["WorkPackage"]["properties"];
        for key in KEYS {
            assert!(properties.get(key).is_some(), "{key} missing: {schema}");
        }
        assert_eq!(
            properties.as_object().map(|p| p.len()),
            Some(KEYS.len()),
            "KEYS and the type disagree"
        );
    }
}
