//! One fixture folder per diagnostic code: `tests/fixtures/diagnostics/<CODE>/mission.yaml`
//! (plus the templates and schemas it refers to), or for policy pack codes a pack directory
//! `tests/fixtures/diagnostics/<CODE>/pack/`, with the rendered text and JSON as goldens.
//! `SPECTACULAR_BLESS=1 cargo test` rewrites the goldens; review the diff before committing.

use std::path::{Path, PathBuf};

use spectacular::diag::{render_json, render_text, Diagnostics, RenderOptions, ALL_CODES};
use spectacular::load::MAX_FILE_BYTES;
use spectacular::validate::Validated;

use crate::support::{assert_goldens, golden, relative, repo_root, validate_bytes};

const FIXTURES: &str = "tests/fixtures/diagnostics";

/// The fixture folders, sorted by name.
fn folders() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo_root().join(FIXTURES))
        .expect("tests/fixtures/diagnostics exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The mission bytes of a fixture. Files too big to commit are generated here instead.
fn mission_bytes(dir: &Path) -> Vec<u8> {
    let code = dir.file_name().unwrap_or_default().to_string_lossy();
    if code == "M1006" {
        return too_large_mission();
    }
    let path = dir.join("mission.yaml");
    std::fs::read(&path).unwrap_or_else(|e| panic!("failed to read `{}`: {e}", path.display()))
}

/// A reasonable mission padded with comment lines to just over the size limit.
pub fn too_large_mission() -> Vec<u8> {
    let mut text =
        String::from("mission: huge\nphases:\n  build:\n    run: [make]\n# padding follows\n");
    let line = "# the quick brown fox jumps over the lazy dog, again and again and again\n";
    while text.len() <= MAX_FILE_BYTES {
        text.push_str(line);
    }
    text.into_bytes()
}

/// A spec fixture (`S` codes): its `spec.md` analysed, or its `config.yaml`'s `analysis:` key
/// read. `S1001`'s spec, too large to commit, is generated.
fn spec_fixture(dir: &Path) -> Option<Diagnostics> {
    let code = dir.file_name().unwrap_or_default().to_string_lossy();
    if !code.starts_with('S') {
        return None;
    }
    let config = dir.join("config.yaml");
    if config.is_file() {
        let name = format!("{}/config.yaml", relative(dir));
        let text = std::fs::read_to_string(&config).expect("the fixture is readable");
        let (_, items) = spectacular::spec::AnalysisConfig::from_yaml(&name, &text);
        return Some(spectacular::spec::collect(&name, &text, items));
    }
    let name = format!("{}/spec.md", relative(dir));
    let bytes = if code == "S1001" {
        let mut text = String::from("# Huge\n\n## Requirements\n\n- FR-001: it is big\n");
        while text.len() <= spectacular::spec::MAX_SPEC_BYTES {
            text.push_str("Padding, again and again, to go past the limit of a spec's size.\n");
        }
        text.into_bytes()
    } else if code == "S1004" {
        let mut text = std::fs::read_to_string(dir.join("spec.md")).expect("the fixture exists");
        text.push_str(&"long ".repeat(4000));
        text.push('\n');
        text.into_bytes()
    } else {
        std::fs::read(dir.join("spec.md")).expect("the fixture has a spec.md")
    };
    let (_, items) = spectacular::spec::parse_bytes(&name, &bytes);
    let text = String::from_utf8_lossy(&bytes);
    Some(spectacular::spec::collect(&name, &text, items))
}

/// Validate one fixture, as the CLI would from the repository root: its spec for `S` codes,
/// its policy pack when it has a `pack/` directory, else its mission.
fn run(dir: &Path) -> Diagnostics {
    if let Some(diagnostics) = spec_fixture(dir) {
        return diagnostics;
    }
    let pack = dir.join("pack");
    if pack.join("pack.yaml").is_file() {
        return spectacular::policy::check_dir(&pack, &repo_root());
    }
    let file = format!("{}/mission.yaml", relative(dir));
    let validated: Validated = validate_bytes(&file, &mission_bytes(dir));
    validated.diagnostics
}

/// The one check of this family: the fixture's diagnostics include its code, and the text and
/// JSON renderings equal the goldens.
fn check(dir: &Path, failures: &mut Vec<String>) {
    let code = dir.file_name().unwrap_or_default().to_string_lossy();
    let diagnostics = &run(dir);
    if !diagnostics.iter().any(|d| d.code.as_str() == code) {
        failures.push(format!(
            "fixture `{code}` does not produce {code}; it produced:\n{}",
            render_text(diagnostics, RenderOptions::default())
        ));
    }
    let text = render_text(diagnostics, RenderOptions { color: false });
    let json = render_json(diagnostics);
    let rel = Path::new(FIXTURES).join(&*code);
    for (name, actual) in [("expected.txt", &text), ("expected.json", &json)] {
        if let Err(e) = golden(&rel.join(name), actual) {
            failures.push(e);
        }
    }
}

#[test]
fn every_fixture_renders_as_its_goldens() {
    let mut failures = Vec::new();
    for dir in folders() {
        check(&dir, &mut failures);
    }
    assert_goldens(failures);
}

#[test]
fn every_code_has_a_fixture_and_every_fixture_a_code() {
    let names: Vec<String> = folders()
        .iter()
        .map(|d| {
            d.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let missing: Vec<&str> = ALL_CODES
        .iter()
        .map(|c| c.code.as_str())
        .filter(|c| !names.iter().any(|n| n == c))
        .collect();
    assert!(
        missing.is_empty(),
        "diagnostic codes without a fixture folder under {FIXTURES}/: {missing:?}"
    );
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !ALL_CODES.iter().any(|c| c.code.as_str() == n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "fixture folders for codes not in the catalogue: {unknown:?}"
    );
}

/// Fixtures aim at one code each: every diagnostic of a fixture has the folder's code, except
/// where a second code is the honest consequence (listed here with the reason).
#[test]
fn fixtures_trigger_only_their_code() {
    let mut stray = Vec::new();
    for dir in folders() {
        let code = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let diagnostics = run(&dir);
        let others: Vec<&str> = diagnostics
            .iter()
            .map(|d| d.code.as_str())
            .filter(|c| *c != code)
            .collect();
        if !others.is_empty() {
            stray.push(format!("{code}: also {others:?}"));
        }
    }
    assert!(
        stray.is_empty(),
        "fixtures with extra codes:\n{}",
        stray.join("\n")
    );
}

/// Every diagnostic carries the code's catalogue severity, a message and, with a span, a line
/// that exists in the file it names.
#[test]
fn fixture_diagnostics_are_well_formed() {
    for dir in folders() {
        let diagnostics = run(&dir);
        for d in diagnostics.iter() {
            assert_eq!(d.severity, d.code.info().severity, "{d:?}");
            assert!(!d.message.is_empty(), "{d:?}");
            assert!(!d.file.is_empty(), "{d:?}");
            assert!(
                !Path::new(&d.file).is_absolute(),
                "display names must be relative: {d:?}"
            );
            if let Some(span) = d.span {
                let text = diagnostics
                    .source(&d.file)
                    .map(|s| s.text.to_string())
                    .unwrap_or_default();
                let lines = text.lines().count().max(1) as u32;
                assert!(
                    span.line >= 1 && span.line <= lines,
                    "span outside `{}` ({lines} lines): {d:?}",
                    d.file
                );
            }
        }
    }
}

/// The catalogue itself: codes and names unique, codes in order, every entry documented.
#[test]
fn catalogue_is_consistent() {
    let mut previous = "";
    let mut names = std::collections::HashSet::new();
    for info in ALL_CODES {
        let code = info.code.as_str();
        assert!(
            code.len() == 5
                && (code.starts_with('M') || code.starts_with('S'))
                && code[1..].bytes().all(|b| b.is_ascii_digit()),
            "malformed code {code}"
        );
        assert!(code > previous, "{code} is out of order (after {previous})");
        previous = code;
        assert!(names.insert(info.name), "duplicate name {}", info.name);
        assert!(
            std::ptr::eq(info.code.info(), info),
            "{code}: info() disagrees"
        );
        assert!(
            !info.summary.is_empty() && !info.fix.is_empty(),
            "{code} undocumented"
        );
    }
}
