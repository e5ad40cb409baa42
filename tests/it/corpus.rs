//! The corpus of real specs (`tests/fixtures/corpus/`, sources in its `MANIFEST.md`):
//! `spectacular analyse --json` on each document gives the counts written by hand in
//! `COUNTS.md`, and no diagnostic the table does not expect.

use std::collections::BTreeMap;
use std::process::Command;

const CORPUS: &str = "tests/fixtures/corpus";

const COLUMNS: &[&str] = &[
    "requirements",
    "constraints",
    "criteria",
    "success_criteria",
    "stories",
    "scenarios",
    "ears",
    "clarifications",
];

struct Row {
    document: String,
    format: String,
    counts: Vec<Option<u64>>,
    /// Expected diagnostics by code (`None`: deserved, not yet counted one by one).
    diagnostics: BTreeMap<String, Option<u64>>,
}

fn rows() -> Vec<Row> {
    let table = std::fs::read_to_string(format!("{CORPUS}/COUNTS.md")).expect("COUNTS.md");
    let mut rows = Vec::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 11, "a row of COUNTS.md has 11 cells: {line}");
        let counts = cells[2..10]
            .iter()
            .map(|c| (*c != "?").then(|| c.parse().expect("a count")))
            .collect();
        let diagnostics = match cells[10] {
            "-" => BTreeMap::new(),
            d => d
                .split_whitespace()
                .map(|p| {
                    let (code, n) = p.split_once('×').expect("CODE×N");
                    (
                        code.to_string(),
                        (n != "?").then(|| n.parse().expect("a number")),
                    )
                })
                .collect(),
        };
        rows.push(Row {
            document: cells[0].trim_matches('`').to_string(),
            format: cells[1].to_string(),
            counts,
            diagnostics,
        });
    }
    rows
}

#[test]
fn the_corpus_holds_forty_documents_with_their_sources() {
    let rows = rows();
    assert!(rows.len() >= 40, "{} documents", rows.len());
    let manifest = std::fs::read_to_string(format!("{CORPUS}/MANIFEST.md")).expect("MANIFEST.md");
    for row in &rows {
        assert!(
            manifest.contains(&format!("`{}`", row.document)),
            "{} has no source in MANIFEST.md",
            row.document
        );
    }
}

#[test]
fn analyse_reads_every_document_as_counted_by_hand() {
    let mut failures = Vec::new();
    let mut unjudged = Vec::new();
    let mut false_alarms: Vec<String> = Vec::new();
    for row in rows() {
        let path = format!("{CORPUS}/{}", row.document);
        let out = Command::new(env!("CARGO_BIN_EXE_spectacular"))
            .args(["analyse", "--no-repo", "--json", &path])
            .output()
            .expect("spectacular runs");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e})"));
        if json["format"] != row.format.as_str() {
            failures.push(format!(
                "{}: format {} (expected {})",
                row.document, json["format"], row.format
            ));
        }
        for (name, expected) in COLUMNS.iter().zip(&row.counts) {
            let got = json["summary"][name].as_u64().unwrap_or(0);
            match expected {
                Some(n) if *n != got => {
                    failures.push(format!("{}: {name} {got} (counted {n})", row.document))
                }
                None => unjudged.push(format!("{}: {name} {got}", row.document)),
                _ => {}
            }
        }
        let list = json["diagnostics"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        for d in &list {
            *got.entry(d["code"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        for d in &list {
            let code = d["code"].as_str().unwrap_or("?");
            let expected = row.diagnostics.get(code);
            let over = match expected {
                None => true,
                Some(None) => false,
                Some(Some(n)) => got.get(code).copied().unwrap_or(0) > *n,
            };
            if over {
                let line = format!("{}:{}: {code} {}", row.document, d["line"], d["message"]);
                if d["severity"] == "error" {
                    failures.push(format!("false error {line}"));
                } else if expected.is_none() {
                    false_alarms.push(line);
                } else {
                    false_alarms.push(format!("{line} (one of {} × {code})", got[code]));
                }
            }
        }
        for (code, n) in &row.diagnostics {
            let g = got.get(code).copied().unwrap_or(0);
            match n {
                Some(n) if g < *n => {
                    failures.push(format!("{}: {g} × {code} (expected {n})", row.document))
                }
                None if g == 0 => {
                    failures.push(format!("{}: no {code} (expected some)", row.document))
                }
                _ => {}
            }
        }
        if row.diagnostics.values().any(Option::is_none) {
            unjudged.push(format!("{}: diagnostics {got:?}", row.document));
        }
    }
    if !false_alarms.is_empty() {
        eprintln!(
            "false alarms ({}):\n{}",
            false_alarms.len(),
            false_alarms.join("\n")
        );
    }
    if !unjudged.is_empty() {
        eprintln!(
            "not yet counted by hand ({}):\n{}",
            unjudged.len(),
            unjudged.join("\n")
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `spectacular run specs/NNN-name/spec.md` on each Spec Kit folder of the corpus, in a
/// project whose only agent is a stand-in planner that writes no plan: the spec is analysed
/// and clarified (its questions, if it asks any, answered) before the planner is called.
#[test]
fn every_spec_kit_folder_runs_past_analyse_and_clarify() {
    use spectacular::record::{EventData, Store};
    let folders: Vec<String> = rows()
        .into_iter()
        .filter(|r| r.format == "spec-kit" && r.document.ends_with("/spec.md"))
        .filter(|r| !r.document.contains("/templates/"))
        .map(|r| r.document.trim_end_matches("/spec.md").to_string())
        .collect();
    assert!(folders.len() >= 15, "{folders:?}");
    let dir = crate::support::greetings();
    let root = dir.path();
    std::fs::write(
        root.join(".spectacular/agents/scribe.sh"),
        "#!/bin/sh\n# A stand-in planner: it plans nothing.\nexit 1\n",
    )
    .expect("stand-in");
    let mut failures = Vec::new();
    for (n, folder) in folders.iter().enumerate() {
        let name = folder.rsplit('/').next().unwrap_or("feature");
        let target = format!("specs/{:03}-{name}", 100 + n);
        std::fs::create_dir_all(root.join(&target)).expect("mkdir");
        for file in ["spec.md", "plan.md", "tasks.md"] {
            let from = std::path::Path::new(CORPUS).join(folder).join(file);
            if from.is_file() {
                std::fs::copy(&from, root.join(&target).join(file)).expect("copy");
            }
        }
        let spec = format!("{target}/spec.md");
        let out = crate::support::run_cli(root, &["run", &spec], &[]);
        let store = Store::locate(root, None);
        let run = store.run_ids().expect("runs").pop().expect("a run");
        if out.code == 3 {
            // Waiting for answers: answer every question the way its authors would decide.
            let events = store.read_events(&run).expect("events");
            let asked = events
                .iter()
                .rev()
                .find_map(|e| match &e.data {
                    EventData::ApprovalRequested(r) if r.phase == "clarify" => {
                        Some(r.questions.len())
                    }
                    _ => None,
                })
                .unwrap_or(0);
            let answers: String = (1..=asked)
                .map(|q| format!("{q}: as the authors decide\n"))
                .collect();
            std::fs::write(root.join("answers.yaml"), answers).expect("answers");
            let _ = crate::support::run_cli(
                root,
                &["answer", &run, "--file", "answers.yaml", "--resume"],
                &[],
            );
        }
        let events = store.read_events(&run).expect("events");
        let passed = |phase: &str| {
            events
                .iter()
                .any(|e| matches!(&e.data, EventData::PhaseSucceeded(d) if d.phase == phase))
        };
        if !passed("analyse") || !passed("clarify") {
            failures.push(format!("{folder}: {}", out.transcript()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
