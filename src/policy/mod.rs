//! The one place that builds Rhai engines. Mission expressions (`if`, `for_each`) and, later,
//! policy packs run in the same sandbox: bounded operations, call depth, expression depth and
//! string/array/map sizes; no `eval`, no modules, no file, network or environment access.

use rhai::Engine;

/// Limits of the sandbox.
pub const MAX_OPERATIONS: u64 = 1_000_000;
pub const MAX_CALL_LEVELS: usize = 32;
pub const MAX_STRING_SIZE: usize = 1 << 20;
pub const MAX_ARRAY_SIZE: usize = 100_000;
pub const MAX_MAP_SIZE: usize = 10_000;

/// A sandboxed engine for mission expressions.
pub fn expression_engine() -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_strict_variables(false);
    engine.disable_symbol("eval");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine
}

/// A syntax error in an expression: the message and its 0-based (line, column) in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

/// Check that `expression` parses as a single Rhai expression.
pub fn check_expression(engine: &Engine, expression: &str) -> Result<(), SyntaxError> {
    match engine.compile_expression(expression) {
        Ok(_) => Ok(()),
        Err(e) => {
            let position = e.position();
            Err(SyntaxError {
                message: e.err_type().to_string(),
                line: position.line().unwrap_or(1).saturating_sub(1),
                col: position.position().unwrap_or(1).saturating_sub(1),
            })
        }
    }
}
