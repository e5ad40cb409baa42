//! Conform: a positioned YAML document checked against a JSON Schema, each schema error turned
//! into a located diagnostic written for people (unknown keys with a suggestion, wrong types
//! naming both sides, values outside their choices or ranges). Missions (`validate`) and the
//! configuration files (`config`, `agents.yaml`) are all checked here.
//!
//! A leaf: it knows YAML trees (`load`), diagnostics (`diag`) and JSON Schema, nothing of what
//! the documents mean.

use std::fmt::Write as _;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diag::{did_you_mean, one_of, Code, Diagnostic, Diagnostics, SourceFile, Span};
use crate::load::yaml::Node;

/// One step of a YAML path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// `phases.review.needs[0]`
pub fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// A node found by path, with the span of the key that holds it (if it is a map value).
pub struct Found<'a> {
    pub node: &'a Node,
    pub key_span: Option<Span>,
}

/// The node at `path` under `root`, if there is one.
pub fn lookup<'a>(root: &'a Node, path: &[Seg]) -> Option<Found<'a>> {
    let mut found = Found {
        node: root,
        key_span: None,
    };
    for seg in path {
        found = match seg {
            Seg::Key(k) => {
                let entry = found.node.entry(k)?;
                Found {
                    node: &entry.value,
                    key_span: Some(entry.key_span),
                }
            }
            Seg::Index(i) => Found {
                node: found.node.items().get(*i)?,
                key_span: None,
            },
        };
    }
    Some(found)
}

/// Where diagnostics go: the file they are about and the list they join.
struct Out<'a> {
    file: &'a str,
    diagnostics: &'a mut Diagnostics,
}

impl Out<'_> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }
}

/// Check `root` (whose JSON form is `json`) with a compiled `validator` for `schema`, pushing a
/// located diagnostic per problem onto `diagnostics`; returns whether the document conforms.
pub fn report_errors(
    validator: &Validator,
    schema: &Value,
    root: &Node,
    json: &Value,
    file: &str,
    diagnostics: &mut Diagnostics,
) -> bool {
    let mut out = Out { file, diagnostics };
    let mut ok = true;
    for error in validator.iter_errors(json) {
        ok = false;
        report(&mut out, root, schema, &error);
    }
    ok
}

/// Check a YAML document against a JSON Schema (compiled here), with the same located messages
/// as missions: unknown keys with suggestions, wrong types, values out of range.
pub fn check_document(root: &Node, schema: &Value, file: &str) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    match jsonschema::validator_for(schema) {
        Ok(validator) => {
            report_errors(&validator, schema, root, &root.to_json(), file, &mut diagnostics);
        }
        Err(e) => diagnostics.push(Diagnostic::new(
            Code::WrongType,
            format!("a built-in schema does not compile ({e}); this is a bug in spectacular, please report it"),
        )),
    }
    diagnostics
}

/// Parse a YAML file and check it against its JSON Schema: every problem located, like
/// missions. The value is `None` when the file has errors (it contributes nothing).
pub fn check_file<T: DeserializeOwned>(
    text: &str,
    name: &str,
    schema: &Value,
) -> (Option<T>, Diagnostics) {
    let mut diagnostics = Diagnostics::new();
    diagnostics.add_source(SourceFile::new(name, text));
    let parsed = crate::load::yaml::parse(text, name);
    for d in parsed.diagnostics {
        diagnostics.push(d);
    }
    let Some(root) = parsed.root else {
        return (None, diagnostics);
    };
    diagnostics.extend(check_document(&root, schema, name));
    if diagnostics.has_errors() {
        return (None, diagnostics);
    }
    match serde_json::from_value::<T>(root.to_json()) {
        Ok(value) => (Some(value), diagnostics),
        Err(e) => {
            diagnostics.push(
                Diagnostic::new(Code::WrongType, format!("`{name}` could not be read: {e}"))
                    .at(name, None, ""),
            );
            (None, diagnostics)
        }
    }
}

fn segments(error: &ValidationError<'_>) -> Vec<Seg> {
    error
        .instance_path()
        .segments()
        .map(|s| match s {
            jsonschema::paths::LocationSegment::Property(p) => Seg::Key(p.to_string()),
            jsonschema::paths::LocationSegment::Index(i) => Seg::Index(i),
        })
        .collect()
}

fn report(out: &mut Out<'_>, root: &Node, schema: &Value, error: &ValidationError<'_>) {
    let path = segments(error);
    let Some(found) = lookup(root, &path) else {
        return;
    };
    let shown = path_text(&path);
    let field = path
        .iter()
        .rev()
        .find_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .unwrap_or("mission");
    let node = found.node;
    // An empty value has no text of its own; point at its key instead.
    let value_span = match (&node.value, found.key_span) {
        (crate::load::yaml::Value::Null, Some(key)) => key,
        _ => node.span,
    };
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_keys(schema, error.schema_path().as_str());
            let place = place_name(&path);
            for key in unexpected {
                let Some(entry) = node.entry(key) else {
                    continue;
                };
                let mut child = path.clone();
                child.push(Seg::Key(key.clone()));
                let help = did_you_mean(key, allowed.iter().map(String::as_str)).or_else(|| {
                    (!allowed.is_empty()).then(|| {
                        let names: Vec<&str> = allowed.iter().map(String::as_str).collect();
                        format!("{place} accepts {}", one_of(&names))
                    })
                });
                out.push(
                    Diagnostic::new(Code::UnknownKey, format!("unknown key `{key}` in {place}"))
                        .at(out.file, Some(entry.key_span), path_text(&child))
                        .label("not a known key here")
                        .maybe_help(help),
                );
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let place = place_name(&path);
            let span = found.key_span.unwrap_or(node.span);
            out.push(
                Diagnostic::new(
                    Code::MissingField,
                    format!("{place} is missing the required key `{name}`"),
                )
                .at(out.file, Some(span), shown)
                .label(format!("`{name}` is required here"))
                .help(format!("add `{name}:`")),
            );
        }
        ValidationErrorKind::Type { kind } => {
            let expected = type_names(kind);
            if is_duration(&path)
                && matches!(
                    node.value,
                    crate::load::yaml::Value::Int(_) | crate::load::yaml::Value::Float(_)
                )
            {
                let number = node.to_json();
                out.push(
                    Diagnostic::new(
                        Code::InvalidDuration,
                        format!("`{field}` is the bare number `{number}`; durations need a unit"),
                    )
                    .at(out.file, Some(node.span), shown)
                    .label("no unit")
                    .help(format!(
                        "write `{number}s` or `{number}m` (units: ms, s, m, h, d)"
                    )),
                );
                return;
            }
            out.push(
                Diagnostic::new(
                    Code::WrongType,
                    format!("`{field}` must be {expected}, not {}", node.type_name()),
                )
                .at(out.file, Some(value_span), shown)
                .label(format!("expected {expected}"))
                .maybe_help(type_help(field, &path)),
            );
        }
        ValidationErrorKind::Enum { options } => {
            let choices: Vec<&str> = options
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let value = node.to_json();
            let text = value
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            let help = did_you_mean(&text, choices.iter().copied())
                .unwrap_or_else(|| format!("use {}", one_of(&choices)));
            out.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("`{text}` is not a valid `{field}`"),
                )
                .at(out.file, Some(node.span), shown)
                .label(format!("expected {}", one_of(&choices)))
                .help(help),
            );
        }
        ValidationErrorKind::Minimum { limit }
        | ValidationErrorKind::ExclusiveMinimum { limit } => {
            let value = node.to_json();
            out.push(
                Diagnostic::new(
                    Code::OutOfRange,
                    format!("`{field}` must be at least {limit}, not {value}"),
                )
                .at(out.file, Some(node.span), shown)
                .label(format!("below the minimum of {limit}"))
                .maybe_help(range_help(field)),
            );
        }
        ValidationErrorKind::Maximum { limit }
        | ValidationErrorKind::ExclusiveMaximum { limit } => {
            let value = node.to_json();
            out.push(
                Diagnostic::new(
                    Code::OutOfRange,
                    format!("`{field}` must be at most {limit}, not {value}"),
                )
                .at(out.file, Some(node.span), shown)
                .label(format!("above the maximum of {limit}")),
            );
        }
        ValidationErrorKind::MinItems { limit } => {
            out.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!(
                        "`{field}` needs at least {limit} item{}",
                        if *limit == 1 { "" } else { "s" }
                    ),
                )
                .at(out.file, Some(node.span), shown)
                .label("empty")
                .maybe_help((field == "run").then(|| {
                    "give the program to run and its arguments, like `run: [cargo, test]`"
                        .to_string()
                })),
            );
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // Keep the alternatives whose type fits; if exactly one does, its errors are the
            // real story. Otherwise the value has none of the accepted types.
            let here = error.instance_path();
            let fitting: Vec<&Vec<ValidationError<'static>>> = context
                .iter()
                .filter(|branch| {
                    !branch.iter().any(|e| {
                        e.instance_path() == here
                            && matches!(e.kind(), ValidationErrorKind::Type { .. })
                    })
                })
                .collect();
            if let [branch] = fitting.as_slice() {
                for inner in branch.iter() {
                    report(out, root, schema, inner);
                }
                return;
            }
            let mut expected: Vec<String> = Vec::new();
            for e in context.iter().flatten() {
                if let ValidationErrorKind::Type { kind } = e.kind() {
                    if e.instance_path() == here {
                        let name = type_names(kind);
                        if !expected.contains(&name) {
                            expected.push(name);
                        }
                    }
                }
            }
            let expected = if expected.is_empty() {
                "another type".to_string()
            } else {
                expected.join(" or ")
            };
            out.push(
                Diagnostic::new(
                    Code::WrongType,
                    format!("`{field}` must be {expected}, not {}", node.type_name()),
                )
                .at(out.file, Some(value_span), shown)
                .label(format!("expected {expected}"))
                .maybe_help(type_help(field, &path)),
            );
        }
        _ => {
            out.push(
                Diagnostic::new(
                    Code::WrongType,
                    format!("`{field}` is not valid here: {error}"),
                )
                .at(out.file, Some(node.span), shown),
            );
        }
    }
}

/// Human words for a JSON Schema type set: "a string", "a list", "a mapping"...
fn type_names(kind: &TypeKind) -> String {
    let name = |t: &jsonschema::JsonType| -> &'static str {
        match t.to_string().as_str() {
            "string" => "a string",
            "array" => "a list",
            "object" => "a mapping",
            "integer" => "a whole number",
            "number" => "a number",
            "boolean" => "`true` or `false`",
            "null" => "empty",
            _ => "another type",
        }
    };
    match kind {
        TypeKind::Single(t) => name(t).to_string(),
        TypeKind::Multiple(set) => {
            let names: Vec<&str> = set.iter().map(|t| name(&t)).collect();
            names.join(" or ")
        }
    }
}

fn type_help(field: &str, path: &[Seg]) -> Option<String> {
    let in_phase = matches!(path.first(), Some(Seg::Key(k)) if k == "phases");
    Some(match field {
        "needs" => "write `needs: [build, test]` or `needs: build`".into(),
        "run" if in_phase => "`run` takes an argv list, like `run: [cargo, test]`; use `shell:` for a shell script".into(),
        "phases" => "`phases` is a mapping from phase id to phase, like `phases: { build: { run: [make] } }`".into(),
        "for_each" => "give a Rhai expression (`outputs.plan.tasks`) or a list of items".into(),
        "if" => "give a Rhai expression as a string, like `if: inputs.deploy == true`".into(),
        _ => return None,
    })
}

fn range_help(field: &str) -> Option<String> {
    Some(match field {
        "max_attempts" => "`max_attempts` counts all attempts: 1 means no retry".into(),
        "max_parallel" => "use 1 to run the items one at a time".into(),
        "max_loops" => "use 1 for a single rework pass".into(),
        "max_usd" | "soft_usd" => "budgets are amounts in US dollars, 0 or more".into(),
        "factor" => "a factor of 1 keeps the wait constant; 2 doubles it each attempt".into(),
        _ => return None,
    })
}

/// Is this the path of a duration value?
fn is_duration(path: &[Seg]) -> bool {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    matches!(
        keys.as_slice(),
        [.., "timeout"] | [.., "deadline"] | [.., "backoff", "initial"] | [.., "backoff", "max"]
    )
}

/// "the mission", "phase `build`", "`retry` of phase `build`"...
fn place_name(path: &[Seg]) -> String {
    match path {
        [] => "the mission".into(),
        [Seg::Key(p), Seg::Key(id)] if p == "phases" => format!("phase `{id}`"),
        [Seg::Key(p), Seg::Key(id), rest @ ..] if p == "phases" => {
            format!("`{}` of phase `{id}`", path_text(rest))
        }
        [Seg::Key(p), Seg::Key(name)] if p == "inputs" => format!("input `{name}`"),
        _ => format!("`{}`", path_text(path)),
    }
}

/// The property names allowed by the schema object holding the keyword at `schema_path`.
fn allowed_keys(schema: &Value, schema_path: &str) -> Vec<String> {
    let mut node = schema;
    let mut parts: Vec<String> = schema_path
        .split('/')
        .skip(1)
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    parts.pop(); // the keyword itself (`additionalProperties`)
    for part in parts {
        node = follow_ref(schema, node);
        let next = match node {
            Value::Object(map) => map.get(&part),
            Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        let Some(next) = next else { return Vec::new() };
        node = next;
    }
    node = follow_ref(schema, node);
    node.get("properties")
        .and_then(Value::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

fn follow_ref<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    let mut node = node;
    for _ in 0..8 {
        let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return node;
        };
        match schema.pointer(pointer) {
            Some(target) => node = target,
            None => return node,
        }
    }
    node
}
