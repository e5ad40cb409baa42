//! Specs: each format read into the model with locations, nothing dropped, hostile input
//! survived, the `analyse` command (goldens, JSON, exit codes, config), the analysis as a
//! run's facts, and the scorer's ranking of a labelled corpus.

use std::path::{Path, PathBuf};

use spectacular::spec::{
    self, AnalysisConfig, CriterionKind, Format, RequirementKind, Spec, MAX_SPEC_BYTES,
};

use crate::runtime::{code, count, text, Project};
use crate::support::{golden, repo_root, run_cli};

const SPECS: &str = "tests/fixtures/specs";

fn fixture(name: &str) -> (String, String) {
    let path = repo_root().join(SPECS).join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read `{}`: {e}", path.display()));
    (format!("{SPECS}/{name}"), text)
}

fn parse(name: &str) -> Spec {
    let (file, text) = fixture(name);
    spec::parse(&file, &text).0
}

/// The text of line `line` (1-based) of `text`, from column `col` on.
fn at(text: &str, line: u32, col: u32) -> String {
    let l = text.lines().nth(line as usize - 1).unwrap_or_default();
    l.chars().skip(col as usize - 1).collect()
}

#[test]
fn a_spec_kit_spec_becomes_stories_scenarios_requirements_and_questions() {
    let (file, source) = fixture("corpus/25-speckit-clarify.md");
    let (s, diagnostics) = spec::parse(&file, &source);
    assert_eq!(s.format, Format::SpecKit);
    assert_eq!(
        s.title.as_deref(),
        Some("Feature Specification: User accounts")
    );
    let stories: Vec<(&str, Option<&str>)> = s
        .stories
        .iter()
        .map(|u| (u.id.as_str(), u.priority.as_deref()))
        .collect();
    assert_eq!(stories, vec![("US1", Some("P1")), ("US2", Some("P1"))]);
    let ids: Vec<&str> = s.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["FR-001", "FR-002", "FR-003", "FR-004", "FR-005", "FR-006"]
    );
    // The location points at the requirement's text, after its id.
    let fr3 = s.requirement("FR-003").unwrap();
    assert!(
        at(&source, fr3.location.line, fr3.location.col).starts_with("System MUST authenticate")
    );
    // Scenarios are criteria of their story; SC-001 is a success criterion.
    let scenario = &s.scenarios[0];
    assert_eq!(
        (scenario.id.as_str(), scenario.story.as_deref()),
        ("US1.1", Some("US1"))
    );
    assert_eq!(scenario.when, "they sign up with a valid email");
    assert!(s
        .criteria
        .iter()
        .any(|c| c.id == "SC-001" && c.kind == CriterionKind::Success));
    // Three markers, three questions, each tied to its requirement.
    let questions: Vec<(&str, Option<&str>, &str)> = s
        .clarifications
        .iter()
        .map(|q| (q.id.as_str(), q.requirement.as_deref(), q.question.as_str()))
        .collect();
    assert_eq!(
        questions,
        vec![
            (
                "Q1",
                Some("FR-003"),
                "What is the auth method (email/password, SSO, OAuth)?"
            ),
            ("Q2", Some("FR-004"), "What is the retention period?"),
            (
                "Q3",
                Some("FR-005"),
                "What is the number of failed attempts?"
            ),
        ]
    );
    let marker = &s.clarifications[0];
    assert!(
        at(&source, marker.location.line, marker.location.col).starts_with("[NEEDS CLARIFICATION")
    );
    let codes: Vec<&str> = diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "S2005").count(),
        3,
        "{codes:?}"
    );
}

#[test]
fn a_kiro_requirements_file_becomes_numbered_requirements_with_ears_criteria() {
    let s = parse("corpus/17-kiro-password-reset.md");
    assert_eq!(s.format, Format::Kiro);
    let ids: Vec<&str> = s.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["R1", "R2"]);
    assert!(s
        .requirements
        .iter()
        .all(|r| r.kind == RequirementKind::Ears));
    assert!(s.requirements[0]
        .text
        .contains("reset my password by email"));
    let criteria: Vec<(&str, &[String])> = s
        .criteria
        .iter()
        .map(|c| (c.id.as_str(), c.covers.as_slice()))
        .collect();
    assert_eq!(criteria.len(), 5);
    assert_eq!(criteria[0].0, "R1.1");
    assert_eq!(criteria[0].1, ["R1".to_string()]);
    assert_eq!(criteria[3].0, "R2.1");
    let unwanted = s.criteria[2].ears.as_ref().unwrap();
    assert_eq!(unwanted.pattern, "unwanted");
    assert_eq!(
        unwanted.condition.as_deref(),
        Some("a reset link is used twice")
    );
    assert_eq!(s.criteria[4].ears.as_ref().unwrap().pattern, "ubiquitous");
    assert_eq!(s.uncovered().count(), 0);
    assert_eq!(s.stories.len(), 2, "the User Story lines are stories too");
}

#[test]
fn a_free_form_brief_has_requirements_constraints_and_checkbox_criteria() {
    let s = parse("corpus/11-free-search.md");
    assert_eq!(s.format, Format::FreeForm);
    let functional: Vec<&str> = s
        .requirements
        .iter()
        .filter(|r| r.kind == RequirementKind::Functional)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        functional,
        ["REQ-1", "REQ-2", "REQ-3", "REQ-4", "REQ-5", "REQ-6"]
    );
    let constraints: Vec<&str> = s
        .requirements
        .iter()
        .filter(|r| r.kind == RequirementKind::Constraint)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        constraints,
        ["CON-001", "CON-002"],
        "generated ids for unnamed items"
    );
    assert_eq!(s.criteria.len(), 5);
    assert!(s
        .criteria
        .iter()
        .all(|c| c.kind == CriterionKind::Acceptance));
    // "(REQ-1, REQ-2)" in a criterion covers both.
    assert!(s.criteria[0].covers.contains(&"REQ-1".to_string()));
    assert!(s.criteria[0].covers.contains(&"REQ-2".to_string()));
    assert_eq!(
        s.uncovered()
            .filter(|r| r.kind != RequirementKind::Constraint)
            .count(),
        0
    );
}

#[test]
fn issue_text_has_a_title_tasks_and_a_body() {
    let s = parse("corpus/06-issue-stripe-webhooks.md");
    assert_eq!(s.format, Format::Issue);
    assert_eq!(
        s.title.as_deref(),
        Some("Handle Stripe webhooks for failed subscription payments")
    );
    assert_eq!(s.requirements.len(), 5);
    assert!(s
        .requirements
        .iter()
        .all(|r| r.kind == RequirementKind::Task));
    assert_eq!(s.requirements[0].id, "TASK-001");
    assert!(s
        .paragraphs
        .iter()
        .any(|p| p.text.contains("billing service owns")));
}

#[test]
fn prose_with_must_sentences_gives_requirements_when_nothing_is_listed() {
    let text = "Make exports work\n\nThe export must include archived orders. It should finish in one minute. Thanks!\n";
    let (s, _) = spec::parse("issue.md", text);
    let texts: Vec<&str> = s.requirements.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "The export must include archived orders.",
            "It should finish in one minute."
        ]
    );
    assert_eq!(
        (
            s.requirements[1].location.line,
            s.requirements[1].location.col
        ),
        (3, 42)
    );
}

/// Every line of every corpus spec and fixture lands in the model: its last words are in the
/// text of some section, requirement, criterion, story, item or paragraph.
#[test]
fn nothing_is_dropped() {
    let mut missing = Vec::new();
    for path in spec_files() {
        let (file, text) = (
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap(),
        );
        let (s, _) = spec::parse(&file, &text);
        let mut all = String::new();
        let mut add = |t: &str| {
            all.push_str(&t.replace("**", "").replace("__", ""));
            all.push('\n');
        };
        s.title.iter().for_each(|t| add(t));
        s.sections.iter().for_each(|x| add(&x.title));
        s.requirements.iter().for_each(|x| add(&x.text));
        s.criteria.iter().for_each(|x| add(&x.text));
        s.stories.iter().for_each(|x| add(&x.title));
        s.edge_cases.iter().for_each(|x| add(&x.text));
        s.items.iter().for_each(|x| add(&x.text));
        s.paragraphs.iter().for_each(|x| add(&x.text));
        s.clarifications.iter().for_each(|x| add(&x.marker));
        let mut comment = false;
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.starts_with("<!--") || comment {
                comment = !t.contains("-->");
                continue;
            }
            if t.is_empty() || t == "---" {
                continue;
            }
            let plain = t
                .trim_start_matches('#')
                .replace("**", "")
                .replace("__", "");
            let words: Vec<&str> = plain.split_whitespace().collect();
            let tail = words[words.len().saturating_sub(3)..].join(" ");
            if !all.contains(&tail) {
                missing.push(format!("{file}:{}: {t}", i + 1));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "lines not in the model:\n{}",
        missing.join("\n")
    );
}

fn spec_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = crate::support::walk(&repo_root().join(SPECS))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| !p.to_string_lossy().contains("/repo/"))
        .collect();
    files.sort();
    files
}

/// A small deterministic generator (xorshift), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random bytes and random Markdown made of spec fragments never panic, and every location
/// the model or a diagnostic gives is inside the text.
#[test]
fn hostile_input_never_panics_and_locations_stay_inside() {
    const FRAGMENTS: &[&str] = &[
        "# ",
        "## Requirements",
        "### User Story 1 - x (Priority: P1)",
        "### Requirement 2",
        "#### Acceptance Criteria",
        "- ",
        "- [ ] ",
        "1. ",
        "**FR-001**: ",
        "SC-1: ",
        "[NEEDS CLARIFICATION: ",
        "]",
        "**Given** ",
        "**When** ",
        "**Then** ",
        "WHEN ",
        "THE SYSTEM SHALL ",
        "```",
        "<!--",
        "-->",
        "é",
        "🎯",
        "\t",
        "\r",
        "\n",
        "\n\n",
        " ",
        "fast",
        "etc.",
        "must",
        "`x_y`",
        "| a | b |",
        "\u{0}",
        "\u{1b}[31m",
        "(",
        ")",
        "[",
        "*",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for round in 0..400 {
        let bytes: Vec<u8> = if round % 4 == 0 {
            (0..rng.below(2000)).map(|_| rng.next() as u8).collect()
        } else {
            let mut s = String::new();
            for _ in 0..rng.below(300) {
                s.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
            }
            s.into_bytes()
        };
        let (s, diagnostics) = spec::parse_bytes("fuzz.md", &bytes);
        let text = String::from_utf8_lossy(&bytes);
        let lines = text.split('\n').count() as u32;
        let mut locations: Vec<spec::Location> =
            s.requirements.iter().map(|r| r.location).collect();
        locations.extend(s.criteria.iter().map(|c| c.location));
        locations.extend(s.clarifications.iter().map(|c| c.location));
        locations.extend(s.paragraphs.iter().map(|p| p.location));
        for l in locations {
            assert!(
                l.line >= 1 && l.line <= lines && l.col >= 1,
                "round {round}: {l:?}"
            );
        }
        for d in &diagnostics {
            if let Some(span) = d.span {
                assert!(span.line >= 1 && span.line <= lines, "round {round}: {d:?}");
            }
        }
        // The whole analysis, scoring included, survives it too.
        let _ = spec::analyse("fuzz.md", &text, None, &AnalysisConfig::default());
    }
}

#[test]
fn oversized_specs_and_lines_are_refused_with_a_diagnostic_not_a_crash() {
    let big = vec![b'a'; MAX_SPEC_BYTES + 1];
    let (_, d) = spec::parse_bytes("big.md", &big);
    assert_eq!(d[0].code.as_str(), "S1001");
    // One enormous line, and thousands of nested list items.
    let mut text = format!("# T\n\n- FR-001: {}\n", "word ".repeat(200_000));
    for depth in 0..5000 {
        text.push_str(&" ".repeat(depth % 200));
        text.push_str("- [ ] nested\n");
    }
    let (s, d) = spec::parse("long.md", &text);
    assert!(d.iter().any(|d| d.code.as_str() == "S1004"));
    // A deeper item details the one it hangs from: 25 items at the margin, plus FR-001.
    assert_eq!(s.requirements.len(), 26);
}

/// A spec made to be slow (thousands of requirements and criteria, each with vague terms,
/// duplicate ids, markers) is analysed in linear time and its diagnostics are capped.
#[test]
fn a_spec_built_to_be_slow_is_bounded() {
    let mut text = String::from("# Slow\n\n## Requirements\n\n");
    for _ in 0..20_000 {
        text.push_str("- FR-1: widgets fast etc. [NEEDS CLARIFICATION: x]\n");
    }
    text.push_str("\n## Success Criteria\n\n");
    for _ in 0..20_000 {
        text.push_str("- SC-1: widgets archived quickly\n");
    }
    let (s, d) = spec::parse("slow.md", &text);
    assert_eq!(s.requirements.len(), 20_000);
    let vague = d.iter().filter(|d| d.code.as_str() == "S2004").count();
    assert_eq!(vague, 101, "100 shown and one that counts the rest");
    assert!(d
        .iter()
        .any(|d| d.message == "59900 more `vague-term` findings are not shown"));
    let _ = spec::analyse("slow.md", &text, None, &AnalysisConfig::default());
}

/// Spearman's rank correlation (ties get their average rank).
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0 + 1.0;
            for k in i..=j {
                r[idx[k]] = avg;
            }
            i = j + 1;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let mean = (n + 1.0) / 2.0;
    let cov: f64 = ra
        .iter()
        .zip(&rb)
        .map(|(x, y)| (x - mean) * (y - mean))
        .sum();
    let va: f64 = ra.iter().map(|x| (x - mean).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mean).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn spearman_is_right_on_known_cases() {
    assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-9);
    assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-9);
}

/// The scorer ranks the hand-labelled corpus much as a person does. The floor only catches a
/// broken scorer; the figure is printed (`cargo test corpus -- --nocapture`).
#[test]
fn the_corpus_scores_rank_like_the_labels() {
    let dir = repo_root().join(SPECS).join("corpus");
    let labels = std::fs::read_to_string(dir.join("labels.yaml")).unwrap();
    let mut scores = Vec::new();
    let mut wanted = Vec::new();
    let mut rows = Vec::new();
    for line in labels
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(':'))
    {
        let (name, label) = line.split_once(':').unwrap();
        let label: f64 = label.trim().parse().unwrap();
        let text = std::fs::read_to_string(dir.join(name.trim())).unwrap();
        let a = spec::analyse(name, &text, None, &AnalysisConfig::default());
        rows.push(format!(
            "{:<32} label {label:.2}  score {:.2} {}",
            name,
            a.complexity,
            a.tier.as_str()
        ));
        scores.push(a.complexity);
        wanted.push(label);
    }
    assert!(
        scores.len() >= 30,
        "the corpus has at least 30 labelled specs"
    );
    let rho = spearman(&scores, &wanted);
    println!(
        "{}\nSpearman rank correlation of score and label over {} specs: {rho:.3}",
        rows.join("\n"),
        scores.len()
    );
    assert!(
        rho >= 0.6,
        "rank correlation {rho:.3} is below 0.6:\n{}",
        rows.join("\n")
    );
}

/// `spectacular analyse` for people: structure, diagnostics, complexity, questions.
#[test]
fn analyse_prints_structure_diagnostics_complexity_and_questions() {
    let root = repo_root();
    let mut failures = Vec::new();
    for (name, args) in [
        (
            "speckit",
            vec![
                "analyse",
                "tests/fixtures/specs/corpus/25-speckit-clarify.md",
                "--no-repo",
            ],
        ),
        (
            "kiro",
            vec![
                "analyse",
                "tests/fixtures/specs/corpus/21-kiro-gdpr-export.md",
                "--no-repo",
            ],
        ),
        (
            "repo",
            vec![
                "analyse",
                "tests/fixtures/specs/repo-spec.md",
                "--repo",
                "tests/fixtures/specs/repo",
            ],
        ),
    ] {
        let out = run_cli(&root, &args, &[]);
        let path = Path::new(SPECS)
            .join("cli")
            .join(format!("analyse-{name}.txt"));
        if let Err(e) = golden(&path, &out.transcript()) {
            failures.push(e);
        }
    }
    crate::support::assert_goldens(failures);
}

#[test]
fn analyse_exits_65_on_errors_and_0_on_warnings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dup.md"),
        "# X\n\n## Requirements\n\n- FR-1: a\n- FR-1: b\n",
    )
    .unwrap();
    let out = run_cli(dir.path(), &["analyse", "dup.md", "--no-repo"], &[]);
    assert_eq!(out.code, 65, "{}", out.transcript());
    assert!(out.stdout.contains("error[S2002]"), "{}", out.stdout);
    let out = run_cli(
        &repo_root(),
        &[
            "analyse",
            "tests/fixtures/specs/corpus/04-issue-vague-perf.md",
            "--no-repo",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "warnings only: {}", out.transcript());
    let out = run_cli(dir.path(), &["analyse", "missing.md"], &[]);
    assert_eq!(out.code, 2, "{}", out.transcript());
}

#[test]
fn analyse_json_has_a_stable_shape() {
    let out = run_cli(
        &repo_root(),
        &[
            "analyse",
            "tests/fixtures/specs/corpus/26-speckit-checkout.md",
            "--json",
            "--no-repo",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.transcript());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "spec",
            "format",
            "title",
            "summary",
            "complexity",
            "tier",
            "ambiguity",
            "dimensions",
            "risk_areas",
            "requirements",
            "criteria",
            "questions",
            "repository",
            "diagnostics"
        ]
    );
    let dims: Vec<&str> = v["dimensions"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        dims,
        [
            "scope",
            "dependencies",
            "ambiguity",
            "technical_risk",
            "integration"
        ]
    );
    let weights: f64 = v["dimensions"]
        .as_object()
        .unwrap()
        .values()
        .map(|d| d["weight"].as_f64().unwrap())
        .sum();
    assert!((weights - 1.0).abs() < 1e-9);
    // The score is the weighted sum of the dimensions, and the tier follows the thresholds.
    let sum: f64 = v["dimensions"]
        .as_object()
        .unwrap()
        .values()
        .map(|d| d["weight"].as_f64().unwrap() * d["score"].as_f64().unwrap())
        .sum();
    let score = v["complexity"].as_f64().unwrap();
    assert!((score - sum).abs() < 0.006, "{score} vs {sum}");
    let tier = match score {
        s if s >= 0.8 => "critical",
        s if s >= 0.6 => "complex",
        s if s >= 0.3 => "medium",
        _ => "simple",
    };
    assert_eq!(v["tier"], tier);
    assert!(v["risk_areas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "payments"));
    assert_eq!(v["requirements"][0]["id"], "FR-001");
    assert_eq!(v["diagnostics"]["valid"], true);
}

#[test]
fn project_config_changes_weights_and_tiers_and_bad_values_are_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".spectacular")).unwrap();
    let spec = repo_root()
        .join(SPECS)
        .join("corpus/09-free-footer-year.md");
    std::fs::copy(&spec, dir.path().join("spec.md")).unwrap();
    let analyse = || {
        let out = run_cli(dir.path(), &["analyse", "spec.md", "--json"], &[]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        (out.code, v)
    };
    let (_, before) = analyse();
    assert_eq!(before["tier"], "simple");
    // Everything on ambiguity, and a very low bar for `critical`.
    std::fs::write(
        dir.path().join(".spectacular/config.yaml"),
        "analysis:\n  weights: { scope: 0, dependencies: 0, ambiguity: 1, technical_risk: 0, integration: 0 }\n  tiers: { medium: 0.01, complex: 0.02, critical: 0.03 }\n",
    )
    .unwrap();
    let (code, after) = analyse();
    assert_eq!(code, 0);
    assert_eq!(
        after["complexity"],
        after["dimensions"]["ambiguity"]["score"]
    );
    assert_eq!(after["dimensions"]["ambiguity"]["weight"], 1.0);
    assert_eq!(after["tier"], "critical");
    std::fs::write(
        dir.path().join(".spectacular/config.yaml"),
        "# project config\nanalysis:\n  tiers: { medium: 0.5, complex: 0.4 }\n",
    )
    .unwrap();
    let (code, bad) = analyse();
    assert_eq!(code, 65);
    let d = &bad["diagnostics"]["diagnostics"][0];
    assert_eq!(d["code"], "S3001");
    assert_eq!(
        (d["file"].as_str(), d["line"].as_u64()),
        (Some(".spectacular/config.yaml"), Some(3))
    );
    assert_eq!(bad["tier"], "simple", "the defaults stay in force");
}

#[test]
fn the_repository_walk_finds_named_files_and_manifests_and_stops_when_told() {
    let repo = repo_root().join(SPECS).join("repo");
    let (_, text) = fixture("repo-spec.md");
    let ids = spec::repo::identifiers(&text);
    let facts = spec::repo::scan(&repo, &ids, 1000);
    let matched: Vec<&str> = facts.matched.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(matched, ["src/auth/session.rs", "src/billing/invoice.rs"]);
    assert_eq!(facts.ecosystems, ["node", "rust"]);
    assert!(facts.dependencies.contains(&"stripe".to_string()));
    assert!(!facts.truncated);
    let bounded = spec::repo::scan(&repo, &ids, 2);
    assert!(bounded.truncated);
    assert_eq!(bounded.files, 2);
    assert_eq!(bounded.stopped.as_deref(), Some("stopped after 2 files"));
}

#[test]
fn a_run_sees_the_analysis_as_run_tier_and_run_dimensions() {
    let p = Project::new(
        r#"
mission: tiers
inputs:
  spec: { type: file, required: true }
phases:
  analyse:
    uses: builtin/analyse-spec
    with: { spec: "{{ inputs.spec }}" }
    outputs:
      analysis: { path: analysis.json }
  simple_only:
    needs: [analyse]
    uses: builtin/noop
    if: run.tier == "simple" && run.dimensions.scope < 0.5
  critical_only:
    needs: [analyse]
    uses: builtin/noop
    if: run.tier == "critical"
"#,
    );
    let (_, spec) = fixture("corpus/01-issue-typo.md");
    std::fs::write(p.path().join("spec.md"), spec).unwrap();
    let out = p.run(&["run", "mission.yaml", "--input", "spec=spec.md"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let events = p.events();
    assert_eq!(count(&events, "phase.succeeded", "simple_only"), 1);
    assert_eq!(count(&events, "phase.skipped", "critical_only"), 1);
    let store = p.store();
    let analysis = std::fs::read_to_string(
        store
            .run_dir(&p.run_id())
            .join("artifacts/analyse/analysis.json"),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&analysis).unwrap();
    assert!(v["complexity"].as_f64().unwrap() < 0.3);
    assert_eq!(v["tier"], "simple");
    assert_eq!(v["requirements"][0]["id"], "TASK-001");
}

#[test]
fn the_analysis_step_fails_on_a_spec_with_errors() {
    let p = Project::new(
        r#"
mission: broken-spec
inputs:
  spec: { type: file, required: true }
phases:
  analyse:
    uses: builtin/analyse-spec
    with: { spec: "{{ inputs.spec }}" }
"#,
    );
    std::fs::write(p.path().join("spec.md"), "# X\n\n- FR-1: a\n- FR-1: b\n").unwrap();
    let out = p.run(&["run", "mission.yaml", "--input", "spec=spec.md"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(count(&p.events(), "phase.failed", "analyse"), 1);
}
