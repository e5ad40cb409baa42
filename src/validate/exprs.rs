//! Expressions, templates and referenced files: `if`/`for_each` must parse as Rhai; they and
//! `{{ }}` strings and prompt files may only read inputs, vars and outputs that exist (outputs
//! of phases upstream, else a warning); `{{ }}` in fields shown as written is reported; prompt
//! templates and output schemas must exist, and schemas must be valid JSON Schema.

use std::collections::{BTreeMap, BTreeSet};

use super::semantic::GraphInfo;
use super::Ctx;
use crate::diag::{did_you_mean, Code, Diagnostic, SourceFile, Span};
use crate::expr;
use crate::load::yaml::{Node, Value};
use crate::prompt::{self, TEMPLATE_ROOTS};

/// Functions and names minijinja provides on its own.
const TEMPLATE_GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "loop",
    "self",
    "super",
    "caller",
    "varargs",
    "kwargs",
];

struct Declared {
    inputs: Vec<String>,
    vars: Vec<String>,
    /// Each phase's declared outputs and `needs`, in document order.
    phases: BTreeMap<String, PhaseFacts>,
}

#[derive(Default)]
struct PhaseFacts {
    outputs: Vec<String>,
    needs: Vec<String>,
}

impl Declared {
    /// Whether `phase` is upstream of `reader`: reachable from it through `needs`.
    fn upstream(&self, reader: &str, phase: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut todo = vec![reader];
        while let Some(id) = todo.pop() {
            for need in self
                .phases
                .get(id)
                .map(|p| p.needs.as_slice())
                .unwrap_or(&[])
            {
                if need == phase {
                    return true;
                }
                if seen.insert(need.as_str()) {
                    todo.push(need);
                }
            }
        }
        false
    }
}

/// Phase facts read from the tree: declared outputs and `needs` (strings only; other shapes
/// are reported by the structural pass).
fn phase_facts(root: &Node) -> BTreeMap<String, PhaseFacts> {
    let strings = |node: Option<&Node>| -> Vec<String> {
        match node {
            Some(n) => match n.as_str() {
                Some(one) => vec![one.to_string()],
                None => n
                    .items()
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
            },
            None => Vec::new(),
        }
    };
    let mut out = BTreeMap::new();
    for entry in root.get("phases").map(Node::entries).unwrap_or_default() {
        let mut outputs: Vec<String> = entry
            .value
            .get("outputs")
            .map(|o| o.entries().iter().map(|e| e.key.clone()).collect())
            .unwrap_or_default();
        if let Some(uses) = entry.value.get("uses").and_then(Node::as_str) {
            let implicit = crate::model::builtins::implicit_outputs(uses);
            outputs.extend(implicit.iter().map(|o| o.to_string()));
        }
        let needs = strings(entry.value.get("needs"));
        out.insert(entry.key.clone(), PhaseFacts { outputs, needs });
    }
    out
}

pub(super) fn check(ctx: &mut Ctx<'_>, root: &Node, _graph: &GraphInfo) {
    let keys = |name: &str| -> Vec<String> {
        root.get(name)
            .map(|n| n.entries().iter().map(|e| e.key.clone()).collect())
            .unwrap_or_default()
    };
    let declared = Declared {
        inputs: keys("inputs"),
        vars: keys("vars"),
        phases: phase_facts(root),
    };
    let engine = expr::expression_engine();
    let Some(phases) = root.get("phases") else {
        return;
    };
    for entry in phases.entries() {
        let id = entry.key.as_str();
        let phase = &entry.value;
        let fans_out = phase.get("for_each").is_some();
        for key in ["if", "for_each"] {
            let Some(node) = phase.get(key) else { continue };
            let Some(expression) = node.as_str() else {
                continue;
            };
            if expression.trim().is_empty() {
                ctx.push(
                    Diagnostic::new(
                        Code::ExpressionSyntax,
                        format!("the `{key}` expression of phase `{id}` is empty"),
                    )
                    .at(ctx.file, Some(node.span), format!("phases.{id}.{key}"))
                    .label("no expression")
                    .help(format!(
                        "write a Rhai expression, like `run.complexity >= 0.3`, or remove `{key}`"
                    )),
                );
                continue;
            }
            if let Err(e) = expr::check_expression(&engine, expression) {
                let span = node.position_in_scalar(ctx.text, e.line, e.col, 1);
                ctx.push(
                    Diagnostic::new(Code::ExpressionSyntax, format!("the `{key}` expression of phase `{id}` does not parse: {}", e.message))
                        .at(ctx.file, Some(span), format!("phases.{id}.{key}"))
                        .label(e.message.clone())
                        .help("`if` and `for_each` take Rhai expressions, like `run.complexity >= 0.3` or `outputs.plan.tasks`"),
                );
                continue;
            }
            check_expression_reads(ctx, id, key, expression, node, &declared);
        }
        // Fields shown as written: `{{ }}` there would reach people unrendered.
        let mut plain: Vec<(String, &Node)> = Vec::new();
        if let Some(reason) = phase.get("approval").and_then(|a| a.get("reason")) {
            plain.push((format!("phases.{id}.approval.reason"), reason));
        }
        if let Some(description) = phase.get("description") {
            plain.push((format!("phases.{id}.description"), description));
        }
        for (path, node) in plain {
            report_unrendered(ctx, &path, node);
        }
        let mut strings: Vec<(String, &Node)> = Vec::new();
        if let Some(with) = phase.get("with") {
            collect_strings(with, format!("phases.{id}.with"), &mut strings);
        }
        if let Some(run) = phase.get("run") {
            collect_strings(run, format!("phases.{id}.run"), &mut strings);
        }
        for key in ["shell"] {
            if let Some(node) = phase.get(key) {
                collect_strings(node, format!("phases.{id}.{key}"), &mut strings);
            }
        }
        if let Some(outputs) = phase.get("outputs") {
            for output in outputs.entries() {
                if let Some(path) = output.value.get("path") {
                    collect_strings(
                        path,
                        format!("phases.{id}.outputs.{}.path", output.key),
                        &mut strings,
                    );
                }
                if let Some(spec) = output.value.get("check").and_then(|c| c.get("spec")) {
                    collect_strings(
                        spec,
                        format!("phases.{id}.outputs.{}.check.spec", output.key),
                        &mut strings,
                    );
                }
            }
        }
        for (path, node) in strings {
            let Some(text) = node.as_str() else { continue };
            if !prompt::is_template(text) {
                continue;
            }
            let file = ctx.file.to_string();
            let text_owned = ctx.text.to_string();
            let locate = |line: usize, col: usize, len: usize| {
                node.position_in_scalar(&text_owned, line, col, len)
            };
            check_template(ctx, id, text, &file, &path, &locate, &declared, fans_out);
        }
        if let Some(prompt_node) = phase.get("prompt") {
            if let Some(relative) = prompt_node.as_str() {
                check_prompt_file(ctx, id, relative, prompt_node, &declared, fans_out);
            }
        }
        if let Some(outputs) = phase.get("outputs") {
            for output in outputs.entries() {
                if let Some(schema) = output.value.get("schema") {
                    if let Some(relative) = schema.as_str() {
                        check_output_schema(ctx, id, &output.key, relative, schema);
                    }
                }
            }
        }
    }
}

fn collect_strings<'a>(node: &'a Node, path: String, out: &mut Vec<(String, &'a Node)>) {
    match &node.value {
        Value::Str(_) => out.push((path, node)),
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_strings(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Map(entries) => {
            for e in entries {
                collect_strings(&e.value, format!("{path}.{}", e.key), out);
            }
        }
        _ => {}
    }
}

/// Check one template. `locate` maps a (line, col, len) inside the template to a span in `file`.
#[allow(clippy::too_many_arguments)]
fn check_template(
    ctx: &mut Ctx<'_>,
    reader: &str,
    source: &str,
    file: &str,
    path: &str,
    locate: &dyn Fn(usize, usize, usize) -> Span,
    declared: &Declared,
    fans_out: bool,
) {
    let variables = match prompt::check_template(source) {
        Ok(vars) => vars,
        Err(e) => {
            ctx.push(
                Diagnostic::new(Code::TemplateSyntax, format!("template does not parse: {}", e.message))
                    .at(file, Some(locate(e.line, e.col, e.len)), path)
                    .label(e.message.clone())
                    .help("templates use minijinja (Jinja2) syntax: `{{ inputs.spec }}`, `{% if … %}…{% endif %}`"),
            );
            return;
        }
    };
    check_variables(
        ctx, reader, source, file, path, locate, declared, fans_out, &variables,
    );
    if is_shell(path) {
        check_shell_quoting(ctx, source, file, path, locate);
    }
}

/// Is `path` (`phases.<id>.shell…`) a `shell:` script?
fn is_shell(path: &str) -> bool {
    let mut parts = path.splitn(3, '.');
    parts.next() == Some("phases")
        && parts.next().is_some()
        && parts
            .next()
            .is_some_and(|rest| rest == "shell" || rest.starts_with("shell["))
}

/// Recorded data (`outputs`, `item`) put into a shell script by a `{{ }}` whose last filter
/// is not `q` or `shell_quote`.
fn check_shell_quoting(
    ctx: &mut Ctx<'_>,
    source: &str,
    file: &str,
    path: &str,
    locate: &dyn Fn(usize, usize, usize) -> Span,
) {
    for (offset, expression) in unquoted_shell_values(source) {
        let (line, col) = prompt::line_col(source, offset);
        let span = locate(line, col, expression.chars().count().max(1));
        ctx.push(
            Diagnostic::new(
                Code::UnquotedShellValue,
                format!("`shell:` puts `{expression}` into the script unquoted"),
            )
            .at(file, Some(span), path)
            .label("recorded data, unquoted")
            .help(format!(
                "quote it: `{{{{ {expression} | q }}}}`; quotes, `$( )` or a newline in the value would otherwise run as shell code"
            )),
        );
    }
}

/// The `{{ }}` expressions of `source` that read `outputs` or `item` and do not end in the
/// `q` or `shell_quote` filter, with their byte offsets.
fn unquoted_shell_values(source: &str) -> Vec<(usize, &str)> {
    let mut found = Vec::new();
    let mut rest = 0;
    while let Some(open) = source[rest..].find("{{").map(|o| rest + o + 2) {
        let Some(close) = source[open..].find("}}").map(|c| open + c) else {
            break;
        };
        rest = close + 2;
        let inner = &source[open..close];
        let trimmed = inner
            .trim_start_matches(['-', '+'])
            .trim_end_matches(['-', '+']);
        let expression = trimmed.trim();
        if expression.is_empty() {
            continue;
        }
        let reads_data = expression
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|word| word == "outputs" || word == "item");
        let quoted = expression
            .rsplit_once('|')
            .is_some_and(|(_, filter)| matches!(filter.trim(), "q" | "shell_quote"));
        if reads_data && !quoted {
            let start =
                open + (inner.len() - inner.trim_start_matches(['-', '+']).trim_start().len());
            found.push((start, expression));
        }
    }
    found
}

#[allow(clippy::too_many_arguments)]
fn check_variables(
    ctx: &mut Ctx<'_>,
    reader: &str,
    source: &str,
    file: &str,
    path: &str,
    locate: &dyn Fn(usize, usize, usize) -> Span,
    declared: &Declared,
    fans_out: bool,
    variables: &BTreeSet<String>,
) {
    for variable in variables {
        let mut parts = variable.splitn(3, '.');
        let root = parts.next().unwrap_or_default();
        let second = parts.next();
        let at = |name: &str| {
            prompt::find_variable(source, name)
                .map(|(line, col)| locate(line, col, name.chars().count()))
        };
        if TEMPLATE_GLOBALS.contains(&root) {
            continue;
        }
        if root == "item" && !fans_out {
            ctx.push(
                Diagnostic::new(
                    Code::UnknownTemplateVariable,
                    "`item` is only defined in `for_each` phases",
                )
                .at(file, at(root), path)
                .label("no `for_each` here")
                .help("add `for_each:` to the phase, or remove the use of `item`"),
            );
            continue;
        }
        if !TEMPLATE_ROOTS.contains(&root) {
            let help = did_you_mean(root, TEMPLATE_ROOTS.iter().copied()).unwrap_or_else(|| {
                "templates see `inputs`, `vars`, `outputs`, `run`, `phase`, `item`, `attempt` and \
                 `knowledge`"
                    .into()
            });
            ctx.push(
                Diagnostic::new(
                    Code::UnknownTemplateVariable,
                    format!("template uses unknown variable `{root}`"),
                )
                .at(file, at(root), path)
                .label("not defined while a mission runs")
                .help(help),
            );
            continue;
        }
        let Some(name) = second else { continue };
        if root == "outputs" {
            let output = parts.next().and_then(|rest| rest.split('.').next());
            let mut segments = vec![("outputs".to_string(), 0), (name.to_string(), 0)];
            if let Some(output) = output {
                segments.push((output.to_string(), 0));
            }
            let read = Read { segments };
            let span = |upto: usize| at(&read.dotted(upto));
            check_output_read(ctx, reader, file, path, &read, &span, declared);
            continue;
        }
        let (list, code, what) = match root {
            "inputs" => (&declared.inputs, Code::UndeclaredInput, "input"),
            "vars" => (&declared.vars, Code::UndeclaredVar, "var"),
            _ => continue,
        };
        if !list.iter().any(|d| d == name) {
            let dotted = format!("{root}.{name}");
            let help = did_you_mean(name, list.iter().map(String::as_str))
                .map(|h| h.replacen("did you mean `", &format!("did you mean `{root}."), 1))
                .unwrap_or_else(|| format!("declare it under `{root}:`"));
            ctx.push(
                Diagnostic::new(code, format!("template uses undeclared {what} `{name}`"))
                    .at(file, at(&dotted), path)
                    .label(format!("no {what} named `{name}`"))
                    .help(help),
            );
        }
    }
}

fn check_prompt_file(
    ctx: &mut Ctx<'_>,
    id: &str,
    relative: &str,
    node: &Node,
    declared: &Declared,
    fans_out: bool,
) {
    let path = format!("phases.{id}.prompt");
    let shown = ctx.base.display(relative, ctx.cwd);
    let source = match ctx.base.read(relative) {
        Ok(text) => text,
        Err(_) => {
            ctx.push(
                Diagnostic::new(
                    Code::TemplateMissing,
                    format!("prompt template `{relative}` of phase `{id}` does not exist"),
                )
                .at(ctx.file, Some(node.span), path)
                .label(format!("no file at `{shown}`"))
                .help(
                    "create the file, or fix the path (relative to the mission file's directory)",
                ),
            );
            return;
        }
    };
    ctx.diagnostics
        .add_source(SourceFile::new(shown.clone(), source.clone()));
    let locate = |line: usize, col: usize, len: usize| {
        Span::new(line as u32 + 1, col as u32 + 1, len as u32)
    };
    check_template(ctx, id, &source, &shown, &path, &locate, declared, fans_out);
}

fn check_output_schema(ctx: &mut Ctx<'_>, id: &str, output: &str, relative: &str, node: &Node) {
    let path = format!("phases.{id}.outputs.{output}.schema");
    let shown = ctx.base.display(relative, ctx.cwd);
    let Ok(text) = ctx.base.read(relative) else {
        ctx.push(
            Diagnostic::new(Code::TemplateMissing, format!("schema `{relative}` of output `{output}` does not exist"))
                .at(ctx.file, Some(node.span), path)
                .label(format!("no file at `{shown}`"))
                .help("create the schema file, or fix the path (relative to the mission file's directory)"),
        );
        return;
    };
    ctx.diagnostics
        .add_source(SourceFile::new(shown.clone(), text.clone()));
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            ctx.push(
                Diagnostic::new(
                    Code::InvalidOutputSchema,
                    format!("schema `{relative}` is not valid JSON: {e}"),
                )
                .at(
                    &shown,
                    Some(Span::new(e.line() as u32, e.column().max(1) as u32, 1)),
                    path,
                )
                .help("fix the JSON syntax at the position shown"),
            );
            return;
        }
    };
    if let Err(e) = jsonschema::validator_for(&value) {
        ctx.push(
            Diagnostic::new(
                Code::InvalidOutputSchema,
                format!("schema `{relative}` is not a valid JSON Schema: {e}"),
            )
            .at(&shown, Some(Span::new(1, 1, 1)), path)
            .help("check the schema against the JSON Schema 2020-12 specification"),
        );
    }
}

/// A read of `inputs`, `vars` or `outputs` in an expression: its dotted segments, each with
/// its byte offset in the expression.
struct Read {
    segments: Vec<(String, usize)>,
}

impl Read {
    /// The first `upto` segments joined by dots (`outputs.plan`).
    fn dotted(&self, upto: usize) -> String {
        let names: Vec<&str> = self
            .segments
            .iter()
            .take(upto)
            .map(|(s, _)| s.as_str())
            .collect();
        names.join(".")
    }
}

/// The reads of `inputs`, `vars` and `outputs` in a Rhai expression: each root name (not a
/// property of something else, outside strings and comments) with the property names that
/// follow it (`.name`, `?.name` or `["name"]`).
fn expression_reads(source: &str) -> Vec<Read> {
    let bytes = source.as_bytes();
    let mut reads = Vec::new();
    let mut i = 0;
    // The last significant byte before `i`, to tell `x.inputs` from `inputs`.
    let mut previous = b' ';
    let ident_start = |b: u8| b.is_ascii_alphabetic() || b == b'_';
    let ident_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ident_at = |at: usize| -> Option<(usize, usize)> {
        (at < bytes.len() && ident_start(bytes[at])).then(|| {
            let mut end = at;
            while end < bytes.len() && ident_char(bytes[end]) {
                end += 1;
            }
            (at, end)
        })
    };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' | b'`' | b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                previous = b;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            _ if ident_start(b) => {
                let (start, end) = ident_at(i).unwrap_or((i, i + 1));
                let name = &source[start..end];
                let is_root = previous != b'.' && !previous.is_ascii_digit();
                i = end;
                previous = b'a';
                if !is_root || !matches!(name, "inputs" | "vars" | "outputs") {
                    continue;
                }
                let mut segments = vec![(name.to_string(), start)];
                loop {
                    let dot = if bytes.get(i) == Some(&b'.') {
                        Some(i + 1)
                    } else if bytes.get(i) == Some(&b'?') && bytes.get(i + 1) == Some(&b'.') {
                        Some(i + 2)
                    } else {
                        None
                    };
                    // A method call (`.len()`) ends the path.
                    if let Some((s, e)) = dot
                        .and_then(ident_at)
                        .filter(|&(_, e)| bytes.get(e) != Some(&b'('))
                    {
                        segments.push((source[s..e].to_string(), s));
                        i = e;
                        continue;
                    }
                    if bytes.get(i) == Some(&b'[') && bytes.get(i + 1) == Some(&b'"') {
                        let s = i + 2;
                        if let Some(len) = source[s..].find('"') {
                            let key = &source[s..s + len];
                            if !key.contains('\\') && bytes.get(s + len + 1) == Some(&b']') {
                                segments.push((key.to_string(), s));
                                i = s + len + 2;
                                continue;
                            }
                        }
                    }
                    break;
                }
                reads.push(Read { segments });
            }
            _ => {
                if !b.is_ascii_whitespace() {
                    previous = b;
                }
                i += 1;
            }
        }
    }
    reads
}

/// Check what an `if` or `for_each` expression reads against what the mission declares.
fn check_expression_reads(
    ctx: &mut Ctx<'_>,
    id: &str,
    key: &str,
    expression: &str,
    node: &Node,
    declared: &Declared,
) {
    let path = format!("phases.{id}.{key}");
    let file = ctx.file.to_string();
    let text = ctx.text.to_string();
    for read in expression_reads(expression) {
        // The span from the root to the end of segment `upto - 1`.
        let span = |upto: usize| -> Option<Span> {
            let start = read.segments.first()?.1;
            let (last, at) = read.segments.get(upto.checked_sub(1)?)?;
            let end = at + last.len();
            let (line, col) = prompt::line_col(expression, start);
            let len = expression.get(start..end).map_or(1, |t| t.chars().count());
            Some(node.position_in_scalar(&text, line, col, len))
        };
        let root = read.segments[0].0.as_str();
        let Some((name, _)) = read.segments.get(1) else {
            continue;
        };
        let (list, what) = match root {
            "inputs" => (&declared.inputs, "input"),
            "vars" => (&declared.vars, "var"),
            _ => {
                check_output_read(ctx, id, &file, &path, &read, &span, declared);
                continue;
            }
        };
        if list.iter().any(|d| d == name) {
            continue;
        }
        let help = did_you_mean(name, list.iter().map(String::as_str))
            .map(|h| h.replacen("did you mean `", &format!("did you mean `{root}."), 1))
            .unwrap_or_else(|| format!("declare it under `{root}:`"));
        ctx.push(
            Diagnostic::new(
                Code::ExpressionUndeclared,
                format!("the `{key}` expression of phase `{id}` reads undeclared {what} `{name}`"),
            )
            .at(&file, span(2), path.clone())
            .label(format!("no {what} named `{name}`"))
            .help(help),
        );
    }
}

/// Check a read of `outputs.<phase>[.<output>]` by phase `reader` (in an expression or a
/// template): the phase exists, declares the output and is upstream of the reader.
fn check_output_read(
    ctx: &mut Ctx<'_>,
    reader: &str,
    file: &str,
    path: &str,
    read: &Read,
    span: &dyn Fn(usize) -> Option<Span>,
    declared: &Declared,
) {
    let Some((phase, _)) = read.segments.get(1) else {
        return;
    };
    let Some(facts) = declared.phases.get(phase) else {
        let help = did_you_mean(phase, declared.phases.keys().map(String::as_str))
            .map(|h| h.replacen("did you mean `", "did you mean `outputs.", 1))
            .unwrap_or_else(|| "`outputs.<phase>.<output>` names a phase of this mission".into());
        ctx.push(
            Diagnostic::new(
                Code::UnknownOutput,
                format!("phase `{reader}` reads outputs of unknown phase `{phase}`"),
            )
            .at(file, span(2), path)
            .label(format!("no phase named `{phase}`"))
            .help(help),
        );
        return;
    };
    if let Some((output, _)) = read.segments.get(2) {
        if !facts.outputs.iter().any(|o| o == output) {
            let help = did_you_mean(output, facts.outputs.iter().map(String::as_str))
                .map(|h| h.replacen("did you mean `", &format!("did you mean `outputs.{phase}."), 1))
                .unwrap_or_else(|| match facts.outputs.is_empty() {
                    true => format!("phase `{phase}` declares no outputs; declare it under `phases.{phase}.outputs`"),
                    false => format!("phase `{phase}` declares {}", list(&facts.outputs)),
                });
            ctx.push(
                Diagnostic::new(
                    Code::UnknownOutput,
                    format!("phase `{reader}` reads output `{output}`, which phase `{phase}` does not declare"),
                )
                .at(file, span(3), path)
                .label(format!("`{phase}` has no output `{output}`"))
                .help(help),
            );
            return;
        }
    }
    if !declared.upstream(reader, phase) {
        ctx.push(
            Diagnostic::new(
                Code::OutputNotUpstream,
                format!("phase `{reader}` reads outputs of `{phase}`, which is not upstream of it"),
            )
            .at(file, span(2), path)
            .label(format!("`{phase}` may not have run yet"))
            .help(format!(
                "add `{phase}` to the `needs` of `{reader}`, directly or through another phase"
            )),
        );
    }
}

/// `a`, `a` and `b`, `a`, `b` and `c` (each in backticks).
fn list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Report `{{ }}` in a field that is shown as written, never rendered.
fn report_unrendered(ctx: &mut Ctx<'_>, path: &str, node: &Node) {
    let Some(text) = node.as_str() else { return };
    let Some(start) = text.find("{{").or_else(|| text.find("{%")) else {
        return;
    };
    let (line, col) = prompt::line_col(text, start);
    let span = node.position_in_scalar(ctx.text, line, col, 2);
    let field = path.rsplit_once(".approval.").map_or_else(
        || path.rsplit('.').next().unwrap_or(path).to_string(),
        |(_, rest)| format!("approval.{rest}"),
    );
    ctx.push(
        Diagnostic::new(
            Code::TemplateNotRendered,
            format!("`{field}` is shown as written; its `{{{{ }}}}` is never rendered"),
        )
        .at(ctx.file, Some(span), path)
        .label("not a template field")
        .help("write the text plainly; `{{ }}` is rendered in `with`, `run`, `shell`, output paths and prompt files only"),
    );
}

#[cfg(test)]
mod tests {
    use super::expression_reads;

    fn reads(source: &str) -> Vec<String> {
        expression_reads(source)
            .iter()
            .map(|r| {
                r.segments
                    .iter()
                    .map(|(s, at)| format!("{s}@{at}"))
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect()
    }

    #[test]
    fn reads_are_found_outside_strings_and_properties() {
        assert_eq!(reads("inputs.publish"), ["inputs@0.publish@7"]);
        assert_eq!(
            reads("outputs.plan.tasks.len() > 0 && vars.x"),
            ["outputs@0.plan@8.tasks@13", "vars@32.x@37"]
        );
        assert_eq!(
            reads(r#"outputs["write-docs"].file"#),
            ["outputs@0.write-docs@9.file@22"]
        );
        assert_eq!(reads("inputs?.name"), ["inputs@0.name@8"]);
        assert!(reads(r#""inputs.x" == run.inputs.y // inputs.z"#).is_empty());
        assert!(reads("x.outputs.y /* vars.a */").is_empty());
        assert_eq!(reads("inputs"), ["inputs@0"]);
    }
}
