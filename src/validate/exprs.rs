//! Expressions, templates and referenced files: `if`/`for_each` must parse as Rhai; `{{ }}`
//! strings and prompt files must parse as minijinja and only read variables that exist;
//! prompt templates and output schemas must exist, and schemas must be valid JSON Schema.

use std::collections::BTreeSet;

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
            }
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
        if let Some(reason) = phase.get("approval").and_then(|a| a.get("reason")) {
            collect_strings(reason, format!("phases.{id}.approval.reason"), &mut strings);
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
            check_template(ctx, text, &file, &path, &locate, &declared, fans_out);
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
fn check_template(
    ctx: &mut Ctx<'_>,
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
        ctx, source, file, path, locate, declared, fans_out, &variables,
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
                "templates see `inputs`, `vars`, `outputs`, `run`, `phase` and `item`".into()
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
    check_template(ctx, &source, &shown, &path, &locate, declared, fans_out);
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
