//! The one place that builds minijinja environments: for checking templates at validate time
//! and, at run time, rendering prompts and `{{ }}` strings against recorded facts.

use std::collections::BTreeSet;

use minijinja::Environment;

/// The variables a template can see while a mission runs.
/// `attempt` has the attempt's number and the problems of the one before it
/// (`attempt.previous_errors`); `knowledge` is the project knowledge for the phase's role.
pub const TEMPLATE_ROOTS: &[&str] = &[
    "inputs",
    "vars",
    "outputs",
    "run",
    "phase",
    "item",
    "loop",
    "attempt",
    "knowledge",
];

/// The bounded environment of [`crate::expr::template`]: strict undefined behaviour, fuel,
/// a recursion limit and the `shell_quote` (`q`) filter.
pub fn environment() -> Environment<'static> {
    crate::expr::template::environment()
}

/// Render a template against a context (the recorded facts), within the bounds of
/// [`crate::expr`] (fuel, output size, deadline, interrupt). A missing variable is an error.
pub fn render(source: &str, context: &serde_json::Value) -> Result<String, crate::expr::Error> {
    if !is_template(source) {
        return Ok(source.to_string());
    }
    crate::expr::template::render(source, context)
}

/// Does this string contain template syntax?
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// A template problem: the message and its 0-based (line, column, length) in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub message: String,
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

/// Parse `source`; on success return the variables it reads (dotted, like `inputs.spec`).
pub fn check_template(source: &str) -> Result<BTreeSet<String>, TemplateError> {
    let env = environment();
    match env.template_from_str(source) {
        Ok(template) => Ok(template.undeclared_variables(true).into_iter().collect()),
        Err(e) => {
            let (line, col, len) = match e.range() {
                Some(range) => {
                    let (line, col) = line_col(source, range.start);
                    (line, col, range.len().max(1))
                }
                None => (e.line().unwrap_or(1).saturating_sub(1), 0, 1),
            };
            let message = e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string());
            Err(TemplateError {
                message,
                line,
                col,
                len,
            })
        }
    }
}

/// 0-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count();
    let col = before.rsplit('\n').next().unwrap_or("").chars().count();
    (line, col)
}

/// Where `name` first appears in `source` (0-based line, column), for pointing at a variable.
pub fn find_variable(source: &str, name: &str) -> Option<(usize, usize)> {
    source.find(name).map(|offset| line_col(source, offset))
}
