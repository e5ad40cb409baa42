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
    /// Expected diagnostics by code, or `None` when not yet judged.
    diagnostics: Option<BTreeMap<String, u64>>,
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
            "?" => None,
            "-" => Some(BTreeMap::new()),
            d => Some(
                d.split_whitespace()
                    .map(|p| {
                        let (code, n) = p.split_once('×').expect("CODE×N");
                        (code.to_string(), n.parse().expect("a number"))
                    })
                    .collect(),
            ),
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
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        let list = json["diagnostics"]["diagnostics"]
            .as_array()
            .or_else(|| json["diagnostics"].as_array())
            .cloned()
            .unwrap_or_default();
        for d in &list {
            *got.entry(d["code"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        match &row.diagnostics {
            Some(expected) => {
                for d in &list {
                    let code = d["code"].as_str().unwrap_or("?");
                    if !expected.contains_key(code) {
                        failures.push(format!(
                            "{}: false diagnostic {code} at line {}: {}",
                            row.document, d["line"], d["message"]
                        ));
                    }
                }
                for (code, n) in expected {
                    let g = got.get(code).copied().unwrap_or(0);
                    if g != *n {
                        failures.push(format!("{}: {g} × {code} (expected {n})", row.document));
                    }
                }
            }
            None => unjudged.push(format!("{}: diagnostics {got:?}", row.document)),
        }
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
