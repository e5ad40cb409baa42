//! The `analysis:` key of the project's `.spectacular/config.yaml`: the weights of the five
//! complexity dimensions, the tier thresholds and the bound of the repository walk.
//!
//! ```yaml
//! analysis:
//!   weights: { scope: 0.25, dependencies: 0.20, ambiguity: 0.20, technical_risk: 0.20, integration: 0.15 }
//!   tiers: { medium: 0.3, complex: 0.6, critical: 0.8 }
//!   max_files: 20000
//! ```
//!
//! Every key is optional. Weights are normalised to sum to 1. A bad value is a located
//! diagnostic (`S3001`) and leaves the default in place; the rest of the file is not this
//! module's business.

use std::path::Path;

use serde::Serialize;

use crate::diag::{did_you_mean, Code, Diagnostic, Diagnostics, SourceFile};
use crate::load::yaml::{self, Node, Value};

/// The five dimension names, in the order they are reported.
pub const DIMENSIONS: [&str; 5] = [
    "scope",
    "dependencies",
    "ambiguity",
    "technical_risk",
    "integration",
];

/// Weights, thresholds and bounds of the analysis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnalysisConfig {
    /// The weight of each dimension of [`DIMENSIONS`], in that order; they sum to 1.
    pub weights: [f64; 5],
    /// The lowest score of `medium`, `complex` and `critical`.
    pub tiers: [f64; 3],
    /// The repository walk stops after this many files.
    pub max_files: usize,
}

impl Default for AnalysisConfig {
    fn default() -> AnalysisConfig {
        AnalysisConfig {
            weights: [0.25, 0.20, 0.20, 0.20, 0.15],
            tiers: [0.3, 0.6, 0.8],
            max_files: 20_000,
        }
    }
}

const TIER_NAMES: [&str; 3] = ["medium", "complex", "critical"];

impl AnalysisConfig {
    /// The project's config (`<root>/.spectacular/config.yaml`), or the defaults when the
    /// file or its `analysis:` key does not exist. The diagnostics hold the config file as a
    /// source when it has problems.
    pub fn load(root: &Path, display_base: &Path) -> (AnalysisConfig, Diagnostics) {
        let path = root.join(".spectacular").join("config.yaml");
        let mut diagnostics = Diagnostics::new();
        let Ok(text) = std::fs::read_to_string(&path) else {
            return (AnalysisConfig::default(), diagnostics);
        };
        let name = crate::project::display_path(&path, display_base);
        let (config, items) = AnalysisConfig::from_yaml(&name, &text);
        if !items.is_empty() {
            diagnostics.add_source(SourceFile::new(&name, text.as_str()));
            for d in items {
                diagnostics.push(d);
            }
        }
        (config, diagnostics)
    }

    /// Read the `analysis:` key of a config file's text. Problems of the YAML itself are left
    /// to the config file's own reader; only the `analysis:` key is checked here.
    pub fn from_yaml(file: &str, text: &str) -> (AnalysisConfig, Vec<Diagnostic>) {
        let mut config = AnalysisConfig::default();
        let mut out = Vec::new();
        let parsed = yaml::parse(text, file);
        let Some(analysis) = parsed.root.as_ref().and_then(|r| r.get("analysis")) else {
            return (config, out);
        };
        let bad = |node: &Node, path: &str, message: String, help: String| {
            Diagnostic::new(Code::BadAnalysisConfig, message)
                .at(file, Some(node.span), path)
                .help(help)
        };
        let Value::Map(entries) = &analysis.value else {
            if analysis.value != Value::Null {
                out.push(bad(
                    analysis,
                    "analysis",
                    format!("`analysis` must be a mapping, not {}", analysis.type_name()),
                    "write `analysis:` with `weights`, `tiers` and `max_files` under it".into(),
                ));
            }
            return (config, out);
        };
        for entry in entries {
            let path = format!("analysis.{}", entry.key);
            match entry.key.as_str() {
                "weights" => {
                    let mut weights = config.weights;
                    let ok = numbers(
                        file,
                        &entry.value,
                        &path,
                        &DIMENSIONS,
                        &mut weights,
                        &mut out,
                        |v| (0.0..=100.0).contains(&v),
                        "a number ≥ 0",
                    );
                    let sum: f64 = weights.iter().sum();
                    if ok && sum <= 0.0 {
                        out.push(bad(
                            &entry.value,
                            &path,
                            "the weights sum to 0".into(),
                            "give at least one dimension a weight above 0".into(),
                        ));
                    } else if ok {
                        config.weights = weights.map(|w| w / sum);
                    }
                }
                "tiers" => {
                    let mut tiers = config.tiers;
                    let ok = numbers(
                        file,
                        &entry.value,
                        &path,
                        &TIER_NAMES,
                        &mut tiers,
                        &mut out,
                        |v| v > 0.0 && v < 1.0,
                        "a number between 0 and 1",
                    );
                    if ok && !(tiers[0] < tiers[1] && tiers[1] < tiers[2]) {
                        out.push(bad(
                            &entry.value,
                            &path,
                            format!(
                                "the tier thresholds must increase: medium {} < complex {} < critical {}",
                                tiers[0], tiers[1], tiers[2]
                            ),
                            "order the thresholds `medium < complex < critical`".into(),
                        ));
                    } else if ok {
                        config.tiers = tiers;
                    }
                }
                "max_files" => match entry.value.value {
                    Value::Int(n) if n >= 1 => config.max_files = n as usize,
                    _ => out.push(bad(
                        &entry.value,
                        &path,
                        format!(
                            "`max_files` must be a positive integer, not {}",
                            describe(&entry.value)
                        ),
                        "write a number of files, like `max_files: 20000`".into(),
                    )),
                },
                other => out.push(
                    Diagnostic::new(
                        Code::BadAnalysisConfig,
                        format!("unknown key `{other}` in `analysis`"),
                    )
                    .at(file, Some(entry.key_span), &path)
                    .help(
                        did_you_mean(other, ["weights", "tiers", "max_files"]).unwrap_or_else(
                            || "`analysis` takes `weights`, `tiers` and `max_files`".into(),
                        ),
                    ),
                ),
            }
        }
        (config, out)
    }

    /// The tier of a score.
    pub fn tier(&self, score: f64) -> super::Tier {
        use super::Tier;
        if score >= self.tiers[2] {
            Tier::Critical
        } else if score >= self.tiers[1] {
            Tier::Complex
        } else if score >= self.tiers[0] {
            Tier::Medium
        } else {
            Tier::Simple
        }
    }
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("`{s}`"),
        Value::Int(i) => format!("`{i}`"),
        Value::Float(f) => format!("`{f}`"),
        _ => node.type_name().to_string(),
    }
}

/// Read a mapping of named numbers into `values`; false when anything was wrong.
#[allow(clippy::too_many_arguments)]
fn numbers<const N: usize>(
    file: &str,
    node: &Node,
    path: &str,
    names: &[&str; N],
    values: &mut [f64; N],
    out: &mut Vec<Diagnostic>,
    allowed: impl Fn(f64) -> bool,
    wanted: &str,
) -> bool {
    let Value::Map(entries) = &node.value else {
        out.push(
            Diagnostic::new(
                Code::BadAnalysisConfig,
                format!("`{path}` must be a mapping, not {}", node.type_name()),
            )
            .at(file, Some(node.span), path)
            .help(format!("write `{path}: {{ {}: … }}`", names.join(": …, "))),
        );
        return false;
    };
    let mut ok = true;
    for entry in entries {
        let here = format!("{path}.{}", entry.key);
        let Some(i) = names.iter().position(|n| *n == entry.key) else {
            ok = false;
            out.push(
                Diagnostic::new(
                    Code::BadAnalysisConfig,
                    format!("unknown key `{}` in `{path}`", entry.key),
                )
                .at(file, Some(entry.key_span), &here)
                .help(
                    did_you_mean(&entry.key, names.iter().copied())
                        .or_else(|| {
                            names
                                .iter()
                                .find(|n| n.contains(entry.key.as_str()))
                                .map(|n| format!("did you mean `{n}`?"))
                        })
                        .unwrap_or_else(|| {
                            format!("`{path}` takes {}", crate::diag::one_of(names))
                        }),
                ),
            );
            continue;
        };
        let value = match entry.value.value {
            Value::Int(n) => Some(n as f64),
            Value::Float(f) => Some(f),
            _ => None,
        };
        match value {
            Some(v) if v.is_finite() && allowed(v) => values[i] = v,
            _ => {
                ok = false;
                out.push(
                    Diagnostic::new(
                        Code::BadAnalysisConfig,
                        format!("`{here}` must be {wanted}, not {}", describe(&entry.value)),
                    )
                    .at(file, Some(entry.value.span), &here)
                    .label(format!("expected {wanted}"))
                    .help(format!("write {wanted}, like `{}: 0.2`", entry.key)),
                );
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_normalised_and_thresholds_read() {
        let (c, d) = AnalysisConfig::from_yaml(
            "config.yaml",
            "analysis:\n  weights: { scope: 2, dependencies: 0, ambiguity: 0, technical_risk: 0, integration: 2 }\n  tiers: { medium: 0.2 }\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.weights, [0.5, 0.0, 0.0, 0.0, 0.5]);
        assert_eq!(c.tiers, [0.2, 0.6, 0.8]);
    }

    #[test]
    fn bad_values_are_located_and_leave_the_defaults() {
        let text =
            "analysis:\n  weights: { scope: fast }\n  tiers: { medium: 0.7 }\n  max_file: 3\n";
        let (c, d) = AnalysisConfig::from_yaml("config.yaml", text);
        assert_eq!(c, AnalysisConfig::default());
        let lines: Vec<u32> = d.iter().map(|d| d.span.unwrap().line).collect();
        assert_eq!(lines, vec![2, 3, 4], "{d:#?}");
        assert!(d[2].help.as_deref().unwrap().contains("max_files"));
    }
}
