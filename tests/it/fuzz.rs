//! A deterministic mutation fuzzer for load + validate (+ plan when valid). It starts from the
//! diagnostic fixtures and the missions in `missions/`, applies byte and line mutations, and
//! checks that nothing panics and that every diagnostic is well formed.
//!
//! `SPECTACULAR_FUZZ_ITERS` sets the number of inputs (default small enough for CI);
//! `SPECTACULAR_FUZZ_SEED` the seed. A failing input is written to
//! `target/fuzz-failure.yaml` and the message says how to replay it.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use spectacular::diag::{render_json, render_text, RenderOptions, ALL_CODES};

use crate::support::{relative, repo_root, validate_bytes, walk};

const DEFAULT_ITERS: u64 = 600;
const DEFAULT_SEED: u64 = 0x5eed_5eed_5eed_5eed;

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`0` when `n == 0`).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Snippets that stress the parser and the passes when spliced in.
const TOKENS: &[&str] = &[
    "needs:",
    "needs: [",
    "&a ",
    "*a",
    "{{",
    "}}",
    "{%",
    "for_each:",
    "if:",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "#",
    "|",
    ">",
    "---",
    "...",
    "\t",
    "\0",
    "~",
    "!!str ",
    "<<: *a",
    "? ",
    "run: [",
    "uses: builtin/noop",
    "on_failure: { goto: ",
    "timeout: 30",
    "max_parallel: 0",
    "prompt: templates/x.md.j2",
    "{{ inputs.",
    "{{ item }}",
    "phases:",
    "mission: ",
    "é",
    "\u{feff}",
    "\r\n",
    "-1",
    "1e400",
    "0x",
    ".nan",
    "&b [*a, *a]",
];

/// One random change to `bytes`. Line-based changes keep the text mostly YAML-shaped, so that
/// the later passes are reached too.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, donors: &[Vec<u8>]) {
    let lines =
        |b: &[u8]| -> Vec<Vec<u8>> { b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect() };
    let join = |ls: Vec<Vec<u8>>| -> Vec<u8> { ls.join(&b'\n') };
    match rng.below(12) {
        0 if !bytes.is_empty() => {
            // Delete a short byte range.
            let at = rng.below(bytes.len());
            let len = 1 + rng.below(8).min(bytes.len() - at - 1);
            bytes.drain(at..at + len);
        }
        1 if !bytes.is_empty() => {
            // Replace one byte with any byte.
            let at = rng.below(bytes.len());
            bytes[at] = rng.next() as u8;
        }
        2 => {
            // Insert a token.
            let at = rng.below(bytes.len() + 1);
            let token = rng.pick(TOKENS).as_bytes();
            bytes.splice(at..at, token.iter().copied());
        }
        3 => {
            // Delete a line.
            let mut ls = lines(bytes);
            let at = rng.below(ls.len());
            ls.remove(at);
            *bytes = join(ls);
        }
        4 => {
            // Duplicate a line (duplicate keys, repeated phases).
            let mut ls = lines(bytes);
            let at = rng.below(ls.len());
            let line = ls[at].clone();
            ls.insert(at, line);
            *bytes = join(ls);
        }
        5 => {
            // Swap two lines.
            let mut ls = lines(bytes);
            let (a, b) = (rng.below(ls.len()), rng.below(ls.len()));
            ls.swap(a, b);
            *bytes = join(ls);
        }
        6 => {
            // Change a line's indentation.
            let mut ls = lines(bytes);
            let at = rng.below(ls.len());
            let line = &mut ls[at];
            if rng.below(2) == 0 {
                let n = 1 + rng.below(4);
                line.splice(0..0, std::iter::repeat_n(b' ', n));
            } else {
                let n = line
                    .iter()
                    .take_while(|&&c| c == b' ')
                    .count()
                    .min(1 + rng.below(4));
                line.drain(..n);
            }
            *bytes = join(ls);
        }
        7 => {
            // Insert a token at the start of a line's content.
            let mut ls = lines(bytes);
            let at = rng.below(ls.len());
            let indent = ls[at].iter().take_while(|&&c| c == b' ').count();
            let token = rng.pick(TOKENS).as_bytes();
            ls[at].splice(indent..indent, token.iter().copied());
            *bytes = join(ls);
        }
        8 if !donors.is_empty() => {
            // Splice in a line from another mission.
            let donor: &Vec<u8> = rng.pick(donors);
            let donor = lines(donor);
            let line = rng.pick(&donor).clone();
            let mut ls = lines(bytes);
            let at = rng.below(ls.len() + 1);
            ls.insert(at, line);
            *bytes = join(ls);
        }
        9 => {
            // Replace a value: the text after the first `: ` of a line.
            let mut ls = lines(bytes);
            let at = rng.below(ls.len());
            if let Some(pos) = ls[at].windows(2).position(|w| w == b": ") {
                let token = rng.pick(TOKENS).as_bytes();
                ls[at].truncate(pos + 2);
                ls[at].extend_from_slice(token);
            }
            *bytes = join(ls);
        }
        10 if !bytes.is_empty() => {
            // Truncate.
            let at = rng.below(bytes.len());
            bytes.truncate(at);
        }
        _ => {
            // Rename a word: swap a phase id or key with another word from the file.
            let text = String::from_utf8_lossy(bytes).into_owned();
            let words: Vec<&str> = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .filter(|w| w.len() > 2)
                .collect();
            if words.len() >= 2 {
                let from = *rng.pick(&words);
                let to = *rng.pick(&words);
                let replaced = text.replacen(from, to, 1 + rng.below(2));
                *bytes = replaced.into_bytes();
            }
        }
    }
}

/// Where the starting points come from; the valid missions come first.
const VALID_DIRS: &[&str] = &["tests/fixtures/valid", "missions", "examples", "policies"];
const INVALID_DIRS: &[&str] = &["tests/fixtures/diagnostics"];

/// The starting points: every valid mission and diagnostic fixture, with its path (relative
/// to the repository root) so that templates and schemas next to it resolve.
fn corpus(dirs: &[&str]) -> Vec<(String, Vec<u8>)> {
    let root = repo_root();
    let mut seeds = Vec::new();
    for dir in dirs {
        for path in walk(&root.join(dir)) {
            let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if is_yaml {
                if let Ok(bytes) = std::fs::read(&path) {
                    seeds.push((relative(&path), bytes));
                }
            }
        }
    }
    assert!(!seeds.is_empty(), "the fuzz corpus is empty");
    seeds
}

/// Check the invariants for one input; `Ok(true)` when it is a valid mission, `Err` describes
/// a violation.
fn check(file: &str, bytes: &[u8]) -> Result<bool, String> {
    let validated = validate_bytes(file, bytes);
    let diagnostics = &validated.diagnostics;
    let known: HashSet<&str> = ALL_CODES.iter().map(|c| c.code.as_str()).collect();
    for d in diagnostics.iter() {
        if !known.contains(d.code.as_str()) {
            return Err(format!("diagnostic with an unknown code: {d:?}"));
        }
        if d.message.is_empty() {
            return Err(format!("diagnostic without a message: {d:?}"));
        }
        if let Some(span) = d.span {
            let Some(source) = diagnostics.source(&d.file) else {
                return Err(format!("a span into a file with no source: {d:?}"));
            };
            let lines = source.text.lines().count().max(1) as u32;
            if span.line == 0 || span.line > lines || span.col == 0 {
                return Err(format!("span outside `{}` ({lines} lines): {d:?}", d.file));
            }
        }
    }
    let _ = render_text(diagnostics, RenderOptions { color: true });
    let json: serde_json::Value = serde_json::from_str(&render_json(diagnostics))
        .map_err(|e| format!("render_json is not JSON: {e}"))?;
    if json["valid"] != serde_json::Value::Bool(!diagnostics.has_errors()) {
        return Err("`valid` disagrees with the diagnostics".into());
    }
    let valid = validated.mission.is_some();
    match validated.mission {
        Some(mission) => {
            if diagnostics.has_errors() {
                return Err("a mission was built despite errors".into());
            }
            let ids: Vec<String> = mission.phases.keys().cloned().collect();
            let plan = spectacular::plan::plan(mission);
            let mut layered: Vec<&str> = plan.layers().into_iter().flatten().collect();
            layered.sort_unstable();
            let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
            expected.sort_unstable();
            if layered != expected {
                return Err(format!(
                    "the plan's layers {layered:?} do not cover the phases {expected:?} exactly once"
                ));
            }
            let _ = spectacular::plan::to_dot(&plan);
            let _ = spectacular::plan::to_mermaid(&plan);
        }
        None => {
            if !diagnostics.has_errors() {
                return Err("no mission and no error".into());
            }
        }
    }
    Ok(valid)
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[test]
fn mutated_missions_never_panic_and_diagnose_cleanly() {
    let iters = env_u64("SPECTACULAR_FUZZ_ITERS").unwrap_or(DEFAULT_ITERS);
    let seed = env_u64("SPECTACULAR_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let valid_seeds = corpus(VALID_DIRS);
    let seeds: Vec<(String, Vec<u8>)> = valid_seeds
        .iter()
        .cloned()
        .chain(corpus(INVALID_DIRS))
        .collect();
    let donors: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let started = std::time::Instant::now();
    let mut valid = 0u64;
    let mut failure = None;
    for i in 0..iters {
        // Each input has its own seed, so one failure replays alone.
        let input_seed = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut rng = Rng::new(input_seed);
        // Half the inputs start from a valid mission, so that mutants often stay valid and
        // reach the planner.
        let pool = if rng.below(2) == 0 {
            &valid_seeds
        } else {
            &seeds
        };
        let (file, start) = rng.pick(pool);
        let mut bytes = start.clone();
        let mutations = if rng.below(2) == 0 {
            1
        } else {
            2 + rng.below(3)
        };
        for _ in 0..mutations {
            mutate(&mut rng, &mut bytes, &donors);
        }
        if i > 0 && i % 10_000 == 0 {
            eprintln!(
                "fuzz: {i} inputs ({valid} valid) in {:.0?}",
                started.elapsed()
            );
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| check(file, &bytes)));
        let problem = match outcome {
            Ok(Ok(is_valid)) => {
                valid += u64::from(is_valid);
                continue;
            }
            Ok(Err(problem)) => problem,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("panic: {message}")
            }
        };
        let saved = repo_root().join("target/fuzz-failure.yaml");
        let _ = std::fs::write(&saved, &bytes);
        failure = Some(format!(
            "input {i} (from `{file}`, SPECTACULAR_FUZZ_SEED={seed:#x}) failed: {problem}\n\
             the input is saved in target/fuzz-failure.yaml:\n{}",
            String::from_utf8_lossy(&bytes)
        ));
        break;
    }
    if let Some(failure) = failure {
        panic!("{failure}");
    }
    eprintln!(
        "fuzz: {iters} inputs ({valid} valid) from {} seeds in {:.1?}",
        seeds.len(),
        started.elapsed()
    );
}

/// Inputs the fuzzer once found failing, kept so that they stay fixed.
const REGRESSIONS: &[(&str, &str)] = &[
    // A YAML error at the end of input pointed at a line after the last one.
    (
        "tests/fixtures/diagnostics/M3006/mission.yaml",
        "mission: release-notes\nphases:\n  draft:\n    outputs:\n      notes: { path: notes.json, schema: schemas/no",
    ),
    // An empty `phases:` at the end of input: the empty value's span had no line.
    (
        "tests/fixtures/diagnostics/M2015/mission.yaml",
        "mission: release-notes\ninputs:\n  max_entries: { type: number }\nphases:",
    ),
    // An empty block scalar as the last `if`: the expression's position had no line.
    (
        "tests/fixtures/diagnostics/M3001/mission.yaml",
        "mission: release-notes\nphases:\n  publish:\n    uses: builtin/noop\n    if: |\n",
    ),
];

#[test]
fn former_fuzz_failures_stay_fixed() {
    for (file, text) in REGRESSIONS {
        if let Err(problem) = check(file, text.as_bytes()) {
            panic!("{problem}\n--- input\n{text}");
        }
    }
}
