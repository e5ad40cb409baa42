//! Policy pack tests: each `tests/*.yaml` of a pack holds one case (a mapping) or several (a
//! list). A case gives a hook a context and compares its answer with `expect`:
//!
//! ```yaml
//! name: complex planning gets a strong model
//! hook: route
//! ctx:                       # the routing context; unset fields take their defaults
//!   phase: { id: plan, role: planner, kind: agent }
//!   run: { tier: high, complexity: 0.82 }
//!   route: { model: opus }   # what govern/budget hooks see as `ctx.route`
//! params: { max_tier: strong }   # overrides of the pack's params
//! expect: { model: opus }    # keys compared with the result; `expect: null` = abstains
//! ```

use serde::Serialize;
use serde_json::Value as Json;

use super::{merge_params, Entry, Hook, Layer, Manifest, PackFiles, Packs, RoutingContext};
use crate::diag::{did_you_mean, one_of, Code, Diagnostic, Diagnostics, SourceFile};
use crate::load::yaml::{self, Node, Value};

const CASE_KEYS: &[&str] = &["name", "description", "hook", "ctx", "params", "expect"];

/// One test case, checked.
#[derive(Clone, Debug)]
pub struct Case {
    /// The test file's display name.
    pub file: String,
    pub name: String,
    pub hook: Hook,
    pub ctx: RoutingContext,
    /// `ctx.route` as the hook sees it.
    pub route: Json,
    /// Params overrides.
    pub params: serde_json::Map<String, Json>,
    pub expect: Json,
}

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub hook: Hook,
    pub passed: bool,
    pub expected: Json,
    pub actual: Json,
    /// Lines of a diff of expected (`-`) and actual (`+`), empty when the case passed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<String>,
}

/// The outcome of one pack's tests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PackReport {
    pub pack: String,
    pub version: String,
    pub layer: Layer,
    pub origin: String,
    pub cases: Vec<CaseResult>,
}

impl PackReport {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
}

impl Packs {
    /// Run the tests of every valid pack (shadowed and inactive ones too) whose name is
    /// `filter`, or of all packs. Malformed cases are diagnostics; they are not run.
    pub fn test(&self, filter: Option<&str>) -> (Vec<PackReport>, Diagnostics) {
        let mut diagnostics = Diagnostics::new();
        let mut reports = Vec::new();
        for entry in &self.entries {
            if filter.is_some_and(|f| f != entry.name()) {
                continue;
            }
            let cases = load_cases(&entry.pack.files, &entry.pack.manifest, &mut diagnostics);
            let results = cases
                .iter()
                .map(|case| self.run_case(entry, case))
                .collect();
            reports.push(PackReport {
                pack: entry.name().to_string(),
                version: entry.pack.manifest.version.clone(),
                layer: entry.layer,
                origin: entry.pack.files.origin(),
                cases: results,
            });
        }
        (reports, diagnostics)
    }

    fn run_case(&self, entry: &Entry, case: &Case) -> CaseResult {
        let mut entry = entry.clone();
        if let Ok(params) = merge_params(&entry.pack.manifest, &entry.params, &case.params) {
            entry.set_params(params);
        }
        let ctx = case.ctx.clone().normalized();
        let (parts, ctx_digest) = ctx.to_rhai(&self.cache);
        let route = rhai::serde::to_dynamic(&case.route).unwrap_or(rhai::Dynamic::UNIT);
        let decision = self.call(
            &entry,
            case.hook,
            &parts,
            &ctx_digest,
            &route,
            &case.route.to_string(),
        );
        let diff = compare(&case.expect, &decision.result);
        CaseResult {
            file: case.file.clone(),
            name: case.name.clone(),
            hook: case.hook,
            passed: diff.is_empty(),
            expected: case.expect.clone(),
            actual: decision.result,
            diff,
        }
    }
}

/// The differences between `expect` and `actual`: every key of `expect` must be in `actual`
/// with an equal value (numbers compare numerically); `null` expects an abstention.
pub fn compare(expect: &Json, actual: &Json) -> Vec<String> {
    let show = |v: &Json| {
        if v.is_null() {
            "() (abstains)".to_string()
        } else {
            v.to_string()
        }
    };
    match (expect, actual) {
        (Json::Object(e), Json::Object(a)) => {
            let mut out = Vec::new();
            for (key, want) in e {
                let got = a.get(key);
                if !got.is_some_and(|g| same(want, g)) {
                    out.push(format!("- {key}: {want}"));
                    out.push(match got {
                        Some(g) => format!("+ {key}: {g}"),
                        None => format!("+ {key}: (missing)"),
                    });
                }
            }
            out
        }
        (e, a) if same(e, a) => Vec::new(),
        (e, a) => vec![format!("- {}", show(e)), format!("+ {}", show(a))],
    }
}

fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Read and check the test cases of a pack, pushing every problem into `diagnostics`.
pub fn load_cases(
    files: &PackFiles,
    manifest: &Manifest,
    diagnostics: &mut Diagnostics,
) -> Vec<Case> {
    let mut cases = Vec::new();
    for relative in files.test_files() {
        let file = files.display(&relative);
        let text = match files.read(&relative) {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(error) => {
                diagnostics.push(
                    Diagnostic::new(Code::PolicyTestInvalid, error.to_string()).at(&file, None, ""),
                );
                continue;
            }
        };
        diagnostics.add_source(SourceFile::new(file.clone(), text.as_str()));
        let parsed = yaml::parse(&text, &file);
        for d in parsed.diagnostics {
            diagnostics.push(d);
        }
        let Some(root) = parsed.root else { continue };
        let items: Vec<(&Node, String)> = match &root.value {
            Value::Map(_) => vec![(&root, String::new())],
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (n, format!("[{i}]")))
                .collect(),
            _ => {
                diagnostics.push(
                    Diagnostic::new(
                        Code::PolicyTestInvalid,
                        format!(
                            "a test file holds a case (a mapping) or a list of cases, not {}",
                            root.type_name()
                        ),
                    )
                    .at(&file, Some(root.span), "")
                    .help("write `name:`, `hook:`, `ctx:` and `expect:`"),
                );
                continue;
            }
        };
        for (node, path) in items {
            if let Some(case) = check_case(&file, node, &path, manifest, diagnostics) {
                cases.push(case);
            }
        }
    }
    cases
}

fn check_case(
    file: &str,
    node: &Node,
    path: &str,
    manifest: &Manifest,
    diagnostics: &mut Diagnostics,
) -> Option<Case> {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else if key.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    let bad = |message: String, n: &Node, key: &str| {
        Diagnostic::new(Code::PolicyTestInvalid, message).at(file, Some(n.span), at(key))
    };
    let Value::Map(entries) = &node.value else {
        diagnostics.push(bad(
            format!("a test case is a mapping, not {}", node.type_name()),
            node,
            "",
        ));
        return None;
    };
    let mut ok = true;
    for entry in entries {
        if !CASE_KEYS.contains(&entry.key.as_str()) {
            let help = did_you_mean(&entry.key, CASE_KEYS.iter().copied())
                .unwrap_or_else(|| format!("a case has {}", one_of(CASE_KEYS)));
            diagnostics.push(
                Diagnostic::new(
                    Code::PolicyTestInvalid,
                    format!("unknown key `{}` in a test case", entry.key),
                )
                .at(file, Some(entry.key_span), at(&entry.key))
                .label("not a test case key")
                .help(help),
            );
            ok = false;
        }
    }
    for key in ["name", "hook", "expect"] {
        if node.get(key).is_none() {
            diagnostics.push(bad(format!("the test case has no `{key}`"), node, "").help(
                "a case needs `name`, `hook` and `expect` (`expect: null` when the hook abstains)",
            ));
            ok = false;
        }
    }
    let name = match node.get("name") {
        Some(n) => match &n.value {
            Value::Str(s) => s.clone(),
            _ => {
                diagnostics.push(bad(
                    format!("`name` must be a string, not {}", n.type_name()),
                    n,
                    "name",
                ));
                ok = false;
                String::new()
            }
        },
        None => String::new(),
    };
    let hook = node.get("hook").and_then(|h| {
        let declared: Vec<&str> = manifest.hooks.iter().map(|h| h.as_str()).collect();
        match h.as_str().and_then(Hook::parse) {
            Some(hook) if manifest.hooks.contains(&hook) => Some(hook),
            _ => {
                let shown = h
                    .as_str()
                    .map_or_else(|| h.type_name().to_string(), |s| format!("`{s}`"));
                diagnostics.push(
                    bad(
                        format!("the hook {shown} is not a hook of pack `{}`", manifest.name),
                        h,
                        "hook",
                    )
                    .label("not declared in pack.yaml")
                    .help(format!("the pack's hooks are {}", one_of(&declared))),
                );
                None
            }
        }
    });
    let (ctx, route) = match node.get("ctx") {
        None => (RoutingContext::default(), Json::Null),
        Some(c) => {
            let mut json = c.to_json();
            let route = json
                .as_object_mut()
                .and_then(|m| m.remove("route"))
                .unwrap_or(Json::Null);
            match serde_json::from_value::<RoutingContext>(json) {
                Ok(ctx) => (ctx, route),
                Err(e) => {
                    diagnostics.push(
                        bad(format!("`ctx` is not a routing context: {e}"), c, "ctx")
                            .help("`ctx` has `phase`, `run`, `agents`, `models` and `route`; see the policy packs chapter of the book"),
                    );
                    ok = false;
                    (RoutingContext::default(), Json::Null)
                }
            }
        }
    };
    let params = match node.get("params") {
        None => serde_json::Map::new(),
        Some(p) => match p.to_json() {
            Json::Object(map) => {
                let current = serde_json::Map::new();
                match merge_params(manifest, &current, &map) {
                    Ok(_) => map,
                    Err(error) => {
                        diagnostics.push(
                            Diagnostic::new(Code::BadParamDefault, error.to_string())
                                .at(file, Some(p.span), at("params"))
                                .help("a test's params must be declared in pack.yaml, with the declared type"),
                        );
                        ok = false;
                        serde_json::Map::new()
                    }
                }
            }
            _ => {
                diagnostics.push(bad(
                    format!("`params` must be a mapping, not {}", p.type_name()),
                    p,
                    "params",
                ));
                ok = false;
                serde_json::Map::new()
            }
        },
    };
    let expect = node.get("expect").map(Node::to_json).unwrap_or(Json::Null);
    let hook = hook?;
    ok.then(|| Case {
        file: file.to_string(),
        name,
        hook,
        ctx,
        route,
        params,
        expect,
    })
}
