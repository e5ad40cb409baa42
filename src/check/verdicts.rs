//! `verdicts.json`: the validator's verdict on each acceptance criterion of a plan's work
//! packages (pass, fail or unknown, with evidence). This module owns its published JSON Schema
//! (generated from [`Verdict`], `spectacular schema verdicts`) and [`check`]: the schema, then
//! exactly one verdict for every criterion of the plan and none for a criterion it does not
//! have. `execute/outputs.rs` runs it for outputs with `check: { kind: verdicts }`.
//!
//! A criterion is named `<work package id>/<n>`: the n-th (from 1) entry of that package's
//! `acceptance` list in `tasks.json`.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest `verdicts.json` checked, in bytes.
pub const MAX_BYTES: usize = 1 << 20;
/// The most verdicts in a file: every criterion of the largest plan.
pub const MAX_VERDICTS: usize = crate::tasks::MAX_WORK_PACKAGES * crate::tasks::MAX_LIST;
/// The most problems listed; the rest are counted.
pub const MAX_PROBLEMS: usize = 50;

/// What the validator concluded about one criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The criterion is met; the evidence shows it.
    Pass,
    /// The criterion is not met; the evidence shows where. A `fail` sends the work back.
    Fail,
    /// The validator could not tell (the reason says why).
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    }
}

/// What a piece of evidence is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    /// A file of the project: `ref` is its path relative to the project root, optionally
    /// with `:line` (`src/auth/login.rs:42`).
    File,
    /// A test: `ref` is its name (`tests::login_rejects_bad_password`,
    /// `tests/test_login.py::test_lockout`).
    Test,
    /// A command the validator ran: `ref` is the command (`cargo test login`).
    Command,
}

/// One piece of evidence for a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// The file (`path` or `path:line`), the test's name or the command.
    #[serde(rename = "ref")]
    #[schemars(length(min = 1, max = 1000))]
    pub reference: String,
    /// What it shows: the relevant lines, the test's result, the command's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4000))]
    pub detail: Option<String>,
}

/// The validator's verdict on one acceptance criterion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Verdict")]
pub struct Verdict {
    /// `<work package id>/<n>`: the n-th (from 1) acceptance criterion of that work package.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}/[1-9][0-9]{0,2}$"))]
    pub criterion: String,
    pub verdict: Outcome,
    /// What the verdict rests on; `pass` and `fail` need at least one item.
    #[schemars(length(max = 20))]
    pub evidence: Vec<Evidence>,
    /// Why, in a sentence or two.
    #[schemars(length(min = 1, max = 2000))]
    pub reason: String,
}

/// The verdicts JSON Schema's `$id`.
pub const VERDICTS_SCHEMA_ID: &str = "https://spectacular.dev/schemas/verdicts.schema.json";

/// The verdicts JSON Schema (draft 2020-12) as a value: an array of verdicts.
pub fn verdicts_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut value = generator.into_root_schema_for::<Vec<Verdict>>().to_value();
    crate::model::schema::strip_null(&mut value);
    if let Value::Object(map) = &mut value {
        map.insert("$id".into(), Value::String(VERDICTS_SCHEMA_ID.into()));
        map.insert("title".into(), Value::String("verdicts.json".into()));
        map.insert(
            "description".into(),
            Value::String(
                "The validator's verdict on every acceptance criterion of a plan's work packages."
                    .into(),
            ),
        );
        map.insert("maxItems".into(), Value::from(MAX_VERDICTS));
    }
    value
}

/// The verdicts JSON Schema as pretty JSON with a trailing newline.
pub fn verdicts_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&verdicts_schema()).unwrap_or_default();
    text.push('\n');
    text
}

static VALIDATOR: LazyLock<Option<jsonschema::Validator>> =
    LazyLock::new(|| jsonschema::validator_for(&verdicts_schema()).ok());

/// A checked verdicts file.
#[derive(Debug)]
pub struct Checked {
    pub verdicts: Vec<Verdict>,
}

impl Checked {
    /// The verdicts that failed.
    pub fn failed(&self) -> Vec<&Verdict> {
        self.verdicts
            .iter()
            .filter(|v| v.verdict == Outcome::Fail)
            .collect()
    }

    /// The distinct project files the evidence of failed verdicts names (without `:line`).
    pub fn failed_files(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.failed()
            .into_iter()
            .flat_map(|v| &v.evidence)
            .filter(|e| e.kind == EvidenceKind::File)
            .map(|e| without_line(e.reference.trim()))
            .filter(|f| super::is_project_path(f))
            .filter(|f| seen.insert(f.to_string()))
            .map(str::to_string)
            .collect()
    }

    /// How many verdicts of each outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.verdicts
            .iter()
            .filter(|v| v.verdict == outcome)
            .count()
    }
}

/// `src/a.rs:12:3` → `src/a.rs`.
fn without_line(reference: &str) -> &str {
    let mut rest = reference;
    for _ in 0..2 {
        match rest.rsplit_once(':') {
            Some((head, tail)) if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) => {
                rest = head
            }
            _ => break,
        }
    }
    rest
}

/// Why a plan's acceptance criteria cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the plan has {bytes} bytes, more than the {limit} a plan may have")]
    TooLarge { bytes: usize, limit: usize },
    #[error("the plan is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("the plan is not a list of work packages")]
    NotAList,
}

/// The acceptance criteria of a plan (`tasks.json`): `<id>/<n>` → the criterion's text, in
/// plan order. Only `id` and `acceptance` are read; the plan was checked when it was made.
pub fn criteria(plan: &[u8]) -> Result<BTreeMap<String, String>, PlanError> {
    if plan.len() > crate::tasks::MAX_BYTES {
        return Err(PlanError::TooLarge {
            bytes: plan.len(),
            limit: crate::tasks::MAX_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(plan).map_err(PlanError::NotJson)?;
    let Value::Array(packages) = value else {
        return Err(PlanError::NotAList);
    };
    let mut out = BTreeMap::new();
    for package in packages.iter().take(crate::tasks::MAX_WORK_PACKAGES) {
        let Some(id) = package.get("id").and_then(Value::as_str) else {
            continue;
        };
        let Some(acceptance) = package.get("acceptance").and_then(Value::as_array) else {
            continue;
        };
        for (n, text) in acceptance.iter().take(crate::tasks::MAX_LIST).enumerate() {
            let text = text.as_str().unwrap_or_default();
            out.insert(format!("{id}/{}", n + 1), text.to_string());
        }
    }
    Ok(out)
}

/// Check a verdicts file against the schema and, given the plan's criteria (see
/// [`criteria`]), against the plan: exactly one verdict each, none for an unknown criterion.
/// Every problem, up to [`MAX_PROBLEMS`] (the rest counted), or the checked verdicts.
pub fn check(
    bytes: &[u8],
    criteria: Option<&BTreeMap<String, String>>,
) -> Result<Checked, Vec<String>> {
    if bytes.len() > MAX_BYTES {
        return Err(vec![format!(
            "the file has {} bytes, more than the {MAX_BYTES} a verdicts file may have",
            bytes.len()
        )]);
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| vec![format!("the file is not JSON: {e}")])?;
    let mut problems = Vec::new();
    match VALIDATOR.as_ref() {
        Some(validator) => {
            let mut errors = validator.iter_errors(&value);
            for error in errors.by_ref().take(MAX_PROBLEMS) {
                problems.push(format!("at `{}`: {error}", error.instance_path()));
            }
            if errors.next().is_some() {
                problems.push("… and more problems".to_string());
            }
        }
        None => problems
            .push("the verdicts schema does not compile; this is a bug in spectacular".to_string()),
    }
    if !problems.is_empty() {
        return Err(bounded(problems));
    }
    let verdicts: Vec<Verdict> = serde_json::from_value(value)
        .map_err(|e| vec![format!("the file does not match the verdicts schema: {e}")])?;
    let mut seen = HashSet::new();
    for verdict in &verdicts {
        let criterion = verdict.criterion.as_str();
        if !seen.insert(criterion) {
            problems.push(format!("criterion `{criterion}` has more than one verdict"));
        }
        if verdict.verdict != Outcome::Unknown && verdict.evidence.is_empty() {
            problems.push(format!(
                "the `{}` verdict of `{criterion}` has no evidence; name the file, test or command it rests on",
                verdict.verdict.as_str()
            ));
        }
        if let Some(known) = criteria {
            if !known.contains_key(criterion) {
                problems.push(unknown_criterion(criterion, known));
            }
        }
    }
    if let Some(known) = criteria {
        for (criterion, text) in known {
            if !seen.contains(criterion.as_str()) {
                problems.push(format!(
                    "criterion `{criterion}` ({}) has no verdict",
                    quote(text)
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(Checked { verdicts })
    } else {
        Err(bounded(problems))
    }
}

fn unknown_criterion(criterion: &str, known: &BTreeMap<String, String>) -> String {
    let package = criterion.split('/').next().unwrap_or(criterion);
    let of_package = known
        .keys()
        .filter(|k| k.split('/').next() == Some(package))
        .count();
    if of_package == 0 {
        format!("criterion `{criterion}`: the plan has no work package `{package}`")
    } else {
        format!(
            "criterion `{criterion}` is not in the plan: work package `{package}` has {of_package} acceptance criteria (`{package}/1` to `{package}/{of_package}`)"
        )
    }
}

/// A criterion's text, quoted and shortened for a message.
fn quote(text: &str) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 80 {
        format!("\"{}…\"", one.chars().take(80).collect::<String>())
    } else {
        format!("\"{one}\"")
    }
}

fn bounded(mut problems: Vec<String>) -> Vec<String> {
    if problems.len() > MAX_PROBLEMS {
        let more = problems.len() - MAX_PROBLEMS;
        problems.truncate(MAX_PROBLEMS);
        problems.push(format!("… and {more} more problems"));
    }
    problems
}

/// The `output_invalid` message of a refused verdicts file: a header, then one `- ` line per
/// problem (the form `attempt.previous_errors` splits), within the size of a recorded message.
pub fn problems_message(output: &str, problems: &[String]) -> String {
    list_message(
        &format!(
            "output `{output}` is not a valid verdicts file ({}):",
            count(problems.len(), "problem")
        ),
        problems,
    )
}

/// The `checks` message of verdicts with failures: one `- ` line per failed criterion with
/// the validator's reason.
pub fn failed_message(output: &str, checked: &Checked) -> String {
    let failed = checked.failed();
    let lines: Vec<String> = failed
        .iter()
        .map(|v| format!("`{}`: {}", v.criterion, v.reason))
        .collect();
    list_message(
        &format!(
            "the verdicts of output `{output}` fail {}:",
            count(failed.len(), "acceptance criterion")
        ),
        &lines,
    )
}

fn count(n: usize, word: &str) -> String {
    match (n, word) {
        (1, _) => format!("1 {word}"),
        (_, "acceptance criterion") => format!("{n} acceptance criteria"),
        _ => format!("{n} {word}s"),
    }
}

fn list_message(header: &str, lines: &[String]) -> String {
    const MAX: usize = 7 * 1024;
    let mut out = header.to_string();
    for (shown, line) in lines.iter().enumerate() {
        let line = format!("\n- {}", line.replace('\n', " "));
        if out.len() + line.len() > MAX {
            out.push_str(&format!("\n- … and {} more", lines.len() - shown));
            break;
        }
        out.push_str(&line);
    }
    out
}
