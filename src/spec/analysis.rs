//! The whole analysis of a spec: the model, its diagnostics, the repository facts, the
//! complexity and the questions, in the stable shape `spectacular analyse --json` prints and
//! `builtin/analyse-spec` writes to `analysis.json`.

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::complexity::{self, Complexity, Dimension, Findings, Tier};
use super::config::AnalysisConfig;
use super::model::{CriterionKind, Format, RequirementKind, Spec};
use super::repo::{self, RepoFacts};
use crate::diag::{render_json, Code, Diagnostics};

/// Counts of what the spec holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub lines: u32,
    pub words: u32,
    pub sections: usize,
    pub requirements: usize,
    pub constraints: usize,
    pub criteria: usize,
    pub success_criteria: usize,
    pub stories: usize,
    pub scenarios: usize,
    /// Criteria written as EARS statements (`WHEN … THE SYSTEM SHALL …`, any pattern).
    pub ears: usize,
    pub edge_cases: usize,
    pub items: usize,
    pub paragraphs: usize,
    pub clarifications: usize,
    /// Requirements (constraints aside) no criterion covers.
    pub uncovered: usize,
}

/// A question for the spec's author (from a clarification marker or an open question).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Question {
    pub id: String,
    pub question: String,
    pub marker: String,
    pub requirement: Option<String>,
    pub line: u32,
    pub column: u32,
}

/// A requirement as the analysis reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequirementRow {
    pub id: String,
    pub kind: RequirementKind,
    pub text: String,
    pub line: u32,
    pub column: u32,
    pub priority: Option<String>,
    /// The criteria that cover it.
    pub covered_by: Vec<String>,
}

/// A criterion as the analysis reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriterionRow {
    pub id: String,
    pub kind: CriterionKind,
    pub text: String,
    pub line: u32,
    pub column: u32,
    pub covers: Vec<String>,
    /// Its EARS parts (`event`, `state`, `unwanted`, `optional`, `ubiquitous`; `scenario`
    /// for Given/When/Then), when it is written so.
    pub ears: Option<super::model::Ears>,
}

/// What the repository walk found, in short.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RepoSummary {
    pub files: usize,
    pub truncated: bool,
    pub stopped: Option<String>,
    pub manifests: Vec<String>,
    pub ecosystems: Vec<String>,
    pub identifiers: usize,
    pub found: Vec<String>,
    pub matched_files: usize,
    pub modules: Vec<repo::Module>,
}

/// The analysis of one spec.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    /// The spec's display name.
    pub spec: String,
    pub format: Format,
    pub title: Option<String>,
    pub summary: Summary,
    /// The weighted complexity score (0..1), as `run.complexity` reads it.
    pub complexity: f64,
    pub tier: Tier,
    /// The label that set the tier instead of the score: an issue's `complexity:<tier>`
    /// (`spectacular run github:owner/repo#123`), which the team's judgement wins over the score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier_hint: Option<String>,
    /// The ambiguity dimension's score, for the clarification gate.
    pub ambiguity: f64,
    pub dimensions: indexmap::IndexMap<String, Dimension>,
    pub risk_areas: Vec<String>,
    pub requirements: Vec<RequirementRow>,
    pub criteria: Vec<CriterionRow>,
    pub questions: Vec<Question>,
    pub repository: Option<RepoSummary>,
    /// `{valid, errors, warnings, diagnostics: […]}`, the shape of `validate --format json`.
    pub diagnostics: serde_json::Value,
    /// The model itself, for the planning checks.
    #[serde(skip)]
    pub model: Spec,
    /// The diagnostics with the spec as their source, for rendering.
    #[serde(skip)]
    pub diagnostics_found: Diagnostics,
    #[serde(skip)]
    pub scored: Complexity,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics_found.has_errors()
    }

    /// Add diagnostics found elsewhere (the `analysis:` config) to the analysis's own.
    pub fn add_diagnostics(&mut self, other: Diagnostics) {
        if other.is_empty() {
            return;
        }
        self.diagnostics_found.extend(other);
        self.diagnostics = serde_json::from_str(&render_json(&self.diagnostics_found))
            .unwrap_or(serde_json::Value::Null);
    }

    /// The analysis as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        text
    }
}

/// Analyse a spec's text. `repo` is the repository to look at (none: the spec alone);
/// `config` the weights and thresholds.
pub fn analyse(name: &str, text: &str, repo: Option<&Path>, config: &AnalysisConfig) -> Analysis {
    let (spec, items) = super::parse_all(name, text);
    finish(name, text, spec, items, repo, config)
}

/// Read and analyse the spec at `path` (shown as `name`), refusing files over
/// [`super::MAX_SPEC_BYTES`] without reading them whole.
pub fn analyse_file(
    path: &Path,
    name: &str,
    repo: Option<&Path>,
    config: &AnalysisConfig,
) -> std::io::Result<Analysis> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(super::MAX_SPEC_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    let (spec, items) = super::parse_bytes_all(name, &bytes);
    let text = String::from_utf8_lossy(&bytes);
    Ok(finish(name, &text, spec, items, repo, config))
}

fn finish(
    name: &str,
    text: &str,
    spec: Spec,
    items: Vec<crate::diag::Diagnostic>,
    repo: Option<&Path>,
    config: &AnalysisConfig,
) -> Analysis {
    let findings = Findings {
        vague_terms: items.iter().filter(|d| d.code == Code::VagueTerm).count(),
        uncovered: spec.uncovered().filter(|r| Spec::expects_cover(r)).count(),
    };
    let mut items = items;
    super::checks::cap(name, &mut items);
    let facts: Option<RepoFacts> =
        repo.map(|root| repo::scan(root, &repo::identifiers(text), config.max_files));
    let scored = complexity::score(&spec, text, facts.as_ref(), findings, config);
    let diagnostics_found = super::collect(name, text, items);
    let summary = Summary {
        lines: spec.lines,
        words: spec.words,
        sections: spec.sections.len(),
        requirements: spec
            .requirements
            .iter()
            .filter(|r| r.kind != RequirementKind::Constraint)
            .count(),
        constraints: spec
            .requirements
            .iter()
            .filter(|r| r.kind == RequirementKind::Constraint)
            .count(),
        criteria: spec.criteria.len(),
        success_criteria: spec
            .criteria
            .iter()
            .filter(|c| c.kind == CriterionKind::Success)
            .count(),
        stories: spec.stories.len(),
        scenarios: spec.scenarios.len(),
        ears: spec
            .criteria
            .iter()
            .filter(|c| c.ears.as_ref().is_some_and(|e| e.pattern != "scenario"))
            .count(),
        edge_cases: spec.edge_cases.len(),
        items: spec.items.len(),
        paragraphs: spec.paragraphs.len(),
        clarifications: spec.clarifications.len(),
        uncovered: findings.uncovered,
    };
    let covered_by = spec.covered_by();
    let requirements = spec
        .requirements
        .iter()
        .map(|r| RequirementRow {
            id: r.id.clone(),
            kind: r.kind,
            text: r.text.clone(),
            line: r.location.line,
            column: r.location.col,
            priority: r.priority.clone(),
            covered_by: covered_by
                .get(r.id.as_str())
                .map(|ids| ids.iter().map(|i| i.to_string()).collect())
                .unwrap_or_default(),
        })
        .collect();
    let criteria = spec
        .criteria
        .iter()
        .map(|c| CriterionRow {
            id: c.id.clone(),
            kind: c.kind,
            text: c.text.clone(),
            line: c.location.line,
            column: c.location.col,
            covers: c.covers.clone(),
            ears: c.ears.clone(),
        })
        .collect();
    let questions = spec
        .clarifications
        .iter()
        .map(|q| Question {
            id: q.id.clone(),
            question: q.question.clone(),
            marker: q.marker.clone(),
            requirement: q.requirement.clone(),
            line: q.location.line,
            column: q.location.col,
        })
        .collect();
    let repository = facts.map(|f| RepoSummary {
        files: f.files,
        truncated: f.truncated,
        stopped: f.stopped,
        manifests: f.manifests,
        ecosystems: f.ecosystems,
        identifiers: f.identifiers.len(),
        found: f.found,
        matched_files: f.matched.len(),
        modules: f.modules,
    });
    let diagnostics =
        serde_json::from_str(&render_json(&diagnostics_found)).unwrap_or(serde_json::Value::Null);
    let hint = complexity::complexity_hint(text);
    Analysis {
        tier: hint.as_ref().map_or(scored.tier, |(_, tier)| *tier),
        tier_hint: hint.map(|(label, _)| label),
        spec: name.to_string(),
        format: spec.format,
        title: spec.title.clone(),
        summary,
        complexity: scored.score,
        ambiguity: scored
            .dimensions
            .get("ambiguity")
            .map(|d| d.score)
            .unwrap_or(0.0),
        dimensions: scored.dimensions.clone(),
        risk_areas: scored.risk_areas.clone(),
        requirements,
        criteria,
        questions,
        repository,
        diagnostics,
        model: spec,
        diagnostics_found,
        scored,
    }
}
