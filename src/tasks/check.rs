//! Checking a planner's `tasks.json`, which is treated as hostile: bounded size and counts,
//! every problem collected (up to [`MAX_PROBLEMS`]), never a panic. A plan without problems
//! gives a [`PlanReport`]: the work packages, the traceability matrix, overlaps and lanes.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::globs::may_overlap;
use super::refs::{RefKind, SpecRef};
use super::*;
use crate::model::is_item_id;

/// The published schema, compiled once.
static VALIDATOR: LazyLock<Option<jsonschema::Validator>> =
    LazyLock::new(|| jsonschema::validator_for(&tasks_schema()).ok());

/// What `spectacular plan` shows and the approval of a plan reads: recorded with the plan.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PlanReport {
    pub work_packages: Vec<WorkPackageSummary>,
    /// One row per requirement, criterion and story of the spec (empty without a spec).
    pub traceability: Vec<TraceRow>,
    /// Requirements and criteria covered, and how many there are.
    pub covered: usize,
    pub to_cover: usize,
    /// Pairs of packages that could run at the same time and could change the same files
    /// (the first [`MAX_OVERLAPS`]).
    pub overlaps: Vec<Overlap>,
    /// Overlapping pairs beyond those listed.
    #[serde(default)]
    pub more_overlaps: usize,
    /// Packages grouped so that no two packages of different lanes share files.
    pub lanes: Vec<Lane>,
    /// The spec changed on disk during the run: what to tell (coverage is of the spec as it
    /// was when the run started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_changed: Option<String>,
    /// The plan is the team's own Spec Kit `tasks.md`, read without a planner agent (every
    /// package carries the `speckit` key the import writes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub imported: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WorkPackageSummary {
    pub id: String,
    pub title: String,
    pub depends_on: Vec<String>,
    pub owned_files: Vec<String>,
    pub requirement_refs: Vec<String>,
    pub estimate: Estimate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// 0 for packages without dependencies, else one more than the deepest dependency.
    pub wave: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceRow {
    pub id: String,
    pub kind: RefKind,
    pub text: String,
    pub line: usize,
    /// The packages whose `requirement_refs` name it.
    pub work_packages: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Overlap {
    pub a: String,
    pub b: String,
    /// The first pair of globs that could name the same file.
    pub globs: (String, String),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Lane {
    pub work_packages: Vec<String>,
}

/// The plan is recorded in the run's log as the output's value, which keeps values up to this
/// size; a larger plan could not be fanned out from recorded facts.
const RECORDED_MAX: usize = crate::record::limits::VALUE_MAX;

impl PlanReport {
    /// The report as a value small enough to be recorded in an event: the traceability texts
    /// are shortened, then left out (the `traceability.md` artifact keeps them), then the rows.
    pub fn recorded_value(&self) -> Value {
        let size = |v: &Value| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
        let mut report = self.clone();
        let mut value = serde_json::to_value(&report).unwrap_or(Value::Null);
        if size(&value) <= RECORDED_MAX {
            return value;
        }
        for row in &mut report.traceability {
            row.text.clear();
        }
        value = serde_json::to_value(&report).unwrap_or(Value::Null);
        if size(&value) <= RECORDED_MAX {
            return value;
        }
        report.traceability.clear();
        for wp in &mut report.work_packages {
            wp.owned_files.truncate(3);
        }
        serde_json::to_value(&report).unwrap_or(Value::Null)
    }
}

/// The most overlaps listed in a report; the rest are counted.
pub const MAX_OVERLAPS: usize = 100;

/// Problems, collected up to [`MAX_PROBLEMS`].
#[derive(Default)]
struct Problems {
    list: Vec<String>,
    more: usize,
}

impl Problems {
    fn push(&mut self, problem: String) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(problem);
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.list.push(format!("… and {} more problems", self.more));
        }
        self.list
    }
}

/// `s` for a message: one line, escaped, at most 60 characters.
fn shown(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == 60 {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

/// The strings of list `key` of an item (non-strings are the schema's problem).
fn strings<'a>(item: &'a Value, key: &str) -> Vec<&'a str> {
    match item.get(key) {
        Some(Value::Array(list)) => list
            .iter()
            .take(MAX_LIST)
            .filter_map(Value::as_str)
            .collect(),
        _ => Vec::new(),
    }
}

/// Check `tasks.json` (its bytes) against the schema and the rules beyond it; `spec` gives the
/// ids `requirement_refs` may name and that must be covered (no traceability without it).
/// Returns every problem (at most [`MAX_PROBLEMS`] and a count of the rest), or the report.
pub fn check(bytes: &[u8], spec: Option<&[SpecRef]>) -> Result<PlanReport, Vec<String>> {
    if bytes.len() > MAX_BYTES {
        return Err(vec![format!(
            "`tasks.json` has {} bytes, more than the {MAX_BYTES} a plan may have; split the work \
             into fewer, larger work packages",
            bytes.len()
        )]);
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![format!(
                "`tasks.json` is not valid JSON: {e}; write a JSON array of work packages"
            )])
        }
    };
    let recorded = serde_json::to_vec(&value)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if recorded > RECORDED_MAX {
        return Err(vec![format!(
            "the plan takes {recorded} bytes as compact JSON, more than the {RECORDED_MAX} a              recorded output value may have; shorten the descriptions or merge small work              packages"
        )]);
    }
    let Value::Array(items) = &value else {
        return Err(vec![
            "`tasks.json` must be a JSON array of work packages (`[{\"id\": \"wp-1\", …}]`)".into(),
        ]);
    };
    if items.len() > MAX_WORK_PACKAGES {
        return Err(vec![format!(
            "the plan has {} work packages, more than {MAX_WORK_PACKAGES}; merge small ones",
            items.len()
        )]);
    }
    let mut problems = Problems::default();
    // The schema first; paths of its problems tell the checks below what is already said.
    let mut flagged_ids = Vec::new();
    match &*VALIDATOR {
        Some(validator) => {
            for error in validator.iter_errors(&value) {
                let path = error.instance_path().to_string();
                if let Some(index) = path
                    .strip_prefix('/')
                    .and_then(|p| p.strip_suffix("/id"))
                    .and_then(|i| i.parse::<usize>().ok())
                {
                    flagged_ids.push(index);
                }
                let at = if path.is_empty() {
                    "/".to_string()
                } else {
                    path
                };
                problems.push(format!("at `{at}`: {}", shown_long(&error.to_string())));
            }
        }
        None => problems
            .push("the tasks schema does not compile; this is a bug in spectacular".to_string()),
    }
    // Ids: valid, unique.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<String> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let id = item.get("id").and_then(Value::as_str);
        names.push(match id {
            Some(id) => format!("work package `{}`", shown(id)),
            None => format!("work package {index}"),
        });
        let Some(id) = id else { continue };
        if !is_item_id(id) && !flagged_ids.contains(&index) {
            problems.push(format!(
                "work package {index} has the id `{}`; ids must be 1 to 64 ASCII letters, digits, \
                 `-`, `_` and `.`, starting with a letter, a digit or `_`, without `..` and not \
                 ending with `.` or `.lock`, since they name git branches (like `wp-{index}`)",
                shown(id)
            ));
        }
        if let Some(&first) = ids.get(id) {
            problems.push(format!(
                "work packages {first} and {index} have the same id `{}`; give each its own id",
                shown(id)
            ));
        } else {
            ids.insert(id, index);
        }
        if let Value::Object(map) = item {
            for key in map.keys().take(MAX_LIST) {
                if KEYS.contains(&key.as_str()) {
                    continue;
                }
                if let Some(known) = KEYS
                    .iter()
                    .find(|k| close(k, key) || k.replace('_', "-") == *key)
                {
                    problems.push(format!(
                        "{} has the key `{}`; did you mean `{known}`?",
                        names[index],
                        shown(key)
                    ));
                }
            }
        }
    }
    // Dependencies: existing, not itself, acyclic.
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    for (index, item) in items.iter().enumerate() {
        for dep in strings(item, "depends_on") {
            match ids.get(dep) {
                Some(&d) if d == index => problems.push(format!(
                    "{} depends on itself; remove `{}` from its `depends_on`",
                    names[index],
                    shown(dep)
                )),
                Some(&d) => {
                    if !deps[index].contains(&d) {
                        deps[index].push(d);
                    }
                }
                None => problems.push(format!(
                    "{} depends on `{}`, which is not a work package of this plan{}",
                    names[index],
                    shown(dep),
                    suggestion(dep, ids.keys().copied())
                )),
            }
        }
    }
    let waves = waves(&deps);
    let cyclic: Vec<&str> = waves
        .iter()
        .enumerate()
        .filter(|(_, w)| w.is_none())
        .filter_map(|(i, _)| items[i].get("id").and_then(Value::as_str))
        .collect();
    if !cyclic.is_empty() {
        let listed: Vec<String> = cyclic
            .iter()
            .take(10)
            .map(|id| format!("`{}`", shown(id)))
            .collect();
        problems.push(format!(
            "the `depends_on` of {} form a cycle{}; a package can only depend on packages done \
             before it",
            listed.join(", "),
            if cyclic.len() > 10 { " (and more)" } else { "" }
        ));
    }
    // Owned files: bounded in total, then overlaps between packages that could run together.
    let globs: Vec<Vec<&str>> = items.iter().map(|i| strings(i, "owned_files")).collect();
    let total_globs: usize = globs.iter().map(Vec::len).sum();
    if total_globs > MAX_GLOBS {
        problems.push(format!(
            "the plan owns {total_globs} `owned_files` globs in all, more than {MAX_GLOBS}; use \
             directory globs (`src/auth/**`) instead of listing files"
        ));
    }
    // Traceability: references exist; every requirement and criterion is covered.
    let mut rows: Vec<TraceRow> = Vec::new();
    if let Some(spec) = spec {
        let known: HashMap<&str, usize> = spec
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        rows = spec
            .iter()
            .map(|r| TraceRow {
                id: r.id.clone(),
                kind: r.kind,
                text: r.text.clone(),
                line: r.line,
                work_packages: Vec::new(),
            })
            .collect();
        for (index, item) in items.iter().enumerate() {
            let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
            for reference in strings(item, "requirement_refs") {
                match known.get(reference) {
                    Some(&row) => {
                        // A user story delivers what its scenarios cover (the scenarios
                        // themselves are shown as covered through the story).
                        let through: Vec<usize> = spec[row]
                            .covers
                            .iter()
                            .filter_map(|c| known.get(c.as_str()).copied())
                            .filter(|&r| spec[r].kind.must_cover())
                            .collect();
                        for r in std::iter::once(row).chain(through) {
                            let covering = &mut rows[r].work_packages;
                            if !covering.iter().any(|c| c == id) {
                                covering.push(id.to_string());
                            }
                        }
                    }
                    None => problems.push(format!(
                        "{} refers to `{}`, which the spec does not define{}",
                        names[index],
                        shown(reference),
                        suggestion(reference, known.keys().copied())
                    )),
                }
            }
        }
        for row in &rows {
            if row.kind.must_cover() && row.work_packages.is_empty() {
                problems.push(format!(
                    "{} `{}` (spec line {}: {}) is covered by no work package; add `{}` to the \
                     `requirement_refs` of the package that delivers it",
                    row.kind.name(),
                    row.id,
                    row.line,
                    shown(&row.text),
                    row.id
                ));
            }
        }
    }
    let problems = problems.finish();
    if !problems.is_empty() {
        return Err(problems);
    }
    // Only a plan without problems gets here: every item is a well-formed work package.
    let packages: Vec<WorkPackage> = match serde_json::from_value(value.clone()) {
        Ok(p) => p,
        Err(e) => {
            return Err(vec![format!(
                "`tasks.json` passed its checks but cannot be read: {e}; this is a bug in \
                 spectacular"
            )])
        }
    };
    let ancestors = ancestors(&deps);
    let mut overlaps = Vec::new();
    let mut more_overlaps = 0;
    let mut lanes = UnionFind::new(packages.len());
    for a in 0..packages.len() {
        for b in a + 1..packages.len() {
            let Some(globs) = first_overlap(&globs[a], &globs[b]) else {
                continue;
            };
            lanes.join(a, b);
            if !ancestors[a][b] && !ancestors[b][a] && overlaps.len() >= MAX_OVERLAPS {
                more_overlaps += 1;
            } else if !ancestors[a][b] && !ancestors[b][a] {
                overlaps.push(Overlap {
                    a: packages[a].id.clone(),
                    b: packages[b].id.clone(),
                    globs,
                });
            }
        }
    }
    let mut grouped: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut lane_of_root: HashMap<usize, usize> = HashMap::new();
    for (i, p) in packages.iter().enumerate() {
        let root = lanes.find(i);
        let next = lane_of_root.len();
        let lane = *lane_of_root.entry(root).or_insert(next);
        grouped.entry(lane).or_default().push(p.id.clone());
    }
    let covered = rows
        .iter()
        .filter(|r| r.kind.must_cover() && !r.work_packages.is_empty())
        .count();
    let to_cover = rows.iter().filter(|r| r.kind.must_cover()).count();
    Ok(PlanReport {
        work_packages: packages
            .into_iter()
            .zip(waves)
            .map(|(p, wave)| WorkPackageSummary {
                id: p.id,
                title: p.title,
                depends_on: p.depends_on,
                owned_files: p.owned_files,
                requirement_refs: p.requirement_refs,
                estimate: p.estimate,
                role: p.role,
                tier: p.tier,
                wave: wave.unwrap_or(0),
            })
            .collect(),
        traceability: rows,
        covered,
        to_cover,
        overlaps,
        more_overlaps,
        lanes: grouped
            .into_values()
            .map(|work_packages| Lane { work_packages })
            .collect(),
        spec_changed: None,
        imported: !items.is_empty()
            && items
                .iter()
                .all(|i| i.get("speckit").is_some_and(Value::is_object)),
    })
}

fn shown_long(s: &str) -> String {
    let mut out: String = s.chars().take(300).collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out.replace('\n', " ")
}

/// Is `wrong` a likely typo of `known`: one edit away, or two for longer names?
fn close(known: &str, wrong: &str) -> bool {
    let d = strsim::levenshtein(known, wrong);
    d <= 1 || (d == 2 && known.len().min(wrong.len()) >= 6)
}

/// `; did you mean `x`?` for the closest known name, if one is close.
fn suggestion<'a>(wrong: &str, known: impl Iterator<Item = &'a str>) -> String {
    known
        .filter(|k| close(k, wrong))
        .map(|k| (strsim::levenshtein(k, wrong), k))
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

/// The wave of each package (Kahn's algorithm); `None` for packages on or after a cycle.
fn waves(deps: &[Vec<usize>]) -> Vec<Option<usize>> {
    let n = deps.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut wave: Vec<Option<usize>> = vec![None; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    for &i in &ready {
        wave[i] = Some(0);
    }
    while let Some(i) = ready.pop() {
        let w = wave[i].unwrap_or(0);
        for &d in &dependents[i] {
            wave[d] = Some(wave[d].map_or(w + 1, |x| x.max(w + 1)));
            remaining[d] -= 1;
            if remaining[d] == 0 {
                ready.push(d);
            }
        }
    }
    for i in 0..n {
        if remaining[i] > 0 {
            wave[i] = None;
        }
    }
    wave
}

/// `ancestors[a][b]`: `b` is done before `a` (transitively). Only called on acyclic plans.
fn ancestors(deps: &[Vec<usize>]) -> Vec<Vec<bool>> {
    let n = deps.len();
    let mut result = vec![vec![false; n]; n];
    for start in 0..n {
        let mut stack: Vec<usize> = deps[start].clone();
        while let Some(d) = stack.pop() {
            if !result[start][d] {
                result[start][d] = true;
                stack.extend(deps[d].iter().copied());
            }
        }
    }
    result
}

fn first_overlap(a: &[&str], b: &[&str]) -> Option<(String, String)> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| (*x, *y)))
        .find(|(x, y)| may_overlap(x, y))
        .map(|(x, y)| (x.to_string(), y.to_string()))
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind((0..n).collect())
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wp(id: &str, deps: &[&str], files: &[&str], refs: &[&str]) -> Value {
        json!({
            "id": id, "title": format!("do {id}"), "description": "details",
            "depends_on": deps, "owned_files": files, "requirement_refs": refs,
            "acceptance": ["it works"], "estimate": "s"
        })
    }

    fn spec() -> Vec<SpecRef> {
        crate::tasks::refs_from_markdown(
            "- **FR-001**: sign in\n- **FR-002**: sign out\n- **SC-001**: fast enough\n",
        )
    }

    fn problems(plan: Value) -> Vec<String> {
        match check(plan.to_string().as_bytes(), Some(&spec())) {
            Ok(report) => panic!("accepted: {report:?}"),
            Err(p) => p,
        }
    }

    fn report(plan: Value) -> PlanReport {
        match check(plan.to_string().as_bytes(), Some(&spec())) {
            Ok(report) => report,
            Err(p) => panic!("refused: {p:#?}"),
        }
    }

    #[test]
    fn a_good_plan_gives_traceability_waves_and_lanes() {
        let r = report(json!([
            wp("wp-1", &[], &["src/auth/**"], &["FR-001", "SC-001"]),
            wp("wp-2", &["wp-1"], &["src/auth/logout.rs"], &["FR-002"]),
            wp("wp-3", &[], &["docs/*.md"], &["SC-001"]),
        ]));
        assert_eq!((r.covered, r.to_cover), (3, 3));
        let waves: Vec<usize> = r.work_packages.iter().map(|w| w.wave).collect();
        assert_eq!(waves, [0, 1, 0]);
        assert_eq!(r.traceability[2].work_packages, ["wp-1", "wp-3"]);
        // wp-1 and wp-2 share files but are ordered: one lane, no overlap reported.
        assert!(r.overlaps.is_empty(), "{:?}", r.overlaps);
        assert_eq!(r.lanes.len(), 2);
        assert_eq!(r.lanes[0].work_packages, ["wp-1", "wp-2"]);
    }

    #[test]
    fn overlaps_between_parallel_packages_are_reported_not_refused() {
        let r = report(json!([
            wp("a", &[], &["src/lib.rs"], &["FR-001", "FR-002", "SC-001"]),
            wp("b", &[], &["src/*.rs"], &[]),
        ]));
        assert_eq!(r.overlaps.len(), 1);
        assert_eq!(
            r.overlaps[0].globs,
            ("src/lib.rs".into(), "src/*.rs".into())
        );
    }

    #[test]
    fn every_problem_is_listed() {
        let p = problems(json!([
            wp("a", &["zz", "a"], &["x"], &["FR-001", "FR-009"]),
            wp("a", &[], &["y"], &[]),
            wp("../b", &[], &["z"], &[]),
            wp("c", &["d"], &["c"], &[]),
            wp("d", &["c"], &["d"], &[]),
        ]));
        let all = p.join("\n");
        for expected in [
            "at `/2/id`",
            "work packages 0 and 1 have the same id `a`",
            "depends on `zz`, which is not a work package",
            "work package `a` depends on itself",
            "refers to `FR-009`, which the spec does not define; did you mean `FR-001`?",
            "the `depends_on` of `c`, `d` form a cycle",
            "requirement `FR-002` (spec line 2: sign out) is covered by no work package",
            "success criterion `SC-001`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn the_id_rule_is_the_schedulers() {
        // Valid for the scheduler (`_` first, dots inside) and so for the plan.
        let r = report(json!([wp(
            "_x.1",
            &[],
            &["a"],
            &["FR-001", "FR-002", "SC-001"]
        )]));
        assert_eq!(r.work_packages[0].id, "_x.1");
        let p = problems(json!([wp(
            "-x",
            &[],
            &["a"],
            &["FR-001", "FR-002", "SC-001"]
        )]));
        assert!(p.iter().any(|p| p.contains("/0/id")), "{p:?}");
    }

    #[test]
    fn a_typo_in_a_key_is_refused_with_the_right_name() {
        let mut item = wp("a", &[], &["x"], &["FR-001", "FR-002", "SC-001"]);
        item["depends-on"] = json!(["b"]);
        let p = problems(json!([item]));
        assert!(
            p.iter()
                .any(|p| p.contains("has the key `depends-on`; did you mean `depends_on`?")),
            "{p:?}"
        );
    }

    #[test]
    fn unknown_keys_far_from_known_ones_are_kept() {
        let mut item = wp("a", &[], &["x"], &["FR-001", "FR-002", "SC-001"]);
        item["file"] = json!("greet.txt");
        report(json!([item]));
    }

    #[test]
    fn hostile_plans_give_problems_not_panics() {
        for bytes in [
            b"".to_vec(),
            b"{}".to_vec(),
            b"[1, null, \"x\", []]".to_vec(),
            b"[{\"id\": 5, \"depends_on\": \"a\"}]".to_vec(),
            vec![b' '; MAX_BYTES + 1],
            format!("[{{\"id\": \"a\", \"title\": \"{}\"}}]", "x".repeat(70_000)).into_bytes(),
            format!("[{}]", vec!["{}"; MAX_WORK_PACKAGES + 1].join(",")).into_bytes(),
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        ] {
            let p = check(&bytes, Some(&spec())).expect_err("refused");
            assert!(!p.is_empty() && p.len() <= MAX_PROBLEMS + 1, "{p:?}");
        }
    }

    #[test]
    fn mutated_plans_never_panic() {
        let good = json!([
            wp("wp-1", &[], &["src/**/*.rs"], &["FR-001", "SC-001"]),
            wp(
                "wp-2",
                &["wp-1"],
                &["src/a?.rs", "docs/{a,b}.md"],
                &["FR-002"]
            ),
        ])
        .to_string()
        .into_bytes();
        let spec = spec();
        // A small deterministic generator: replace, drop or duplicate bytes.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) as usize) % n.max(1)
        };
        let alphabet = b"[]{}\",:*?/.-_ 0aFR\\";
        for _ in 0..2_000 {
            let mut bytes = good.clone();
            for _ in 0..1 + next(4) {
                let at = next(bytes.len());
                match next(3) {
                    0 => bytes[at] = alphabet[next(alphabet.len())],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => {
                        let end = (at + next(40)).min(bytes.len());
                        let copy = bytes[at..end].to_vec();
                        bytes.splice(at..at, copy);
                    }
                }
            }
            let _ = check(&bytes, Some(&spec));
        }
    }

    #[test]
    fn problems_are_capped_and_counted() {
        let items: Vec<Value> = (0..120)
            .map(|i| wp(&format!("w{i}"), &["nope"], &["x"], &[]))
            .collect();
        let p = check(Value::Array(items).to_string().as_bytes(), None).expect_err("refused");
        assert_eq!(p.len(), MAX_PROBLEMS + 1);
        assert!(
            p.last()
                .is_some_and(|l| l.starts_with("… and 70 more problems")),
            "{p:?}"
        );
    }

    #[test]
    fn without_a_spec_there_is_no_traceability() {
        let r = check(
            json!([wp("a", &[], &["x"], &["ANY-1"])])
                .to_string()
                .as_bytes(),
            None,
        )
        .expect("accepted");
        assert!(r.traceability.is_empty());
        assert_eq!(r.to_cover, 0);
    }
}
