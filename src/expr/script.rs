//! Bounded Rhai engines: the limits, the operation counter that also sees closures called from
//! native functions, size-checked replacements for the native functions whose result can
//! outgrow the limits, and the translation of Rhai's errors into messages that name the limit.
//!
//! Rhai counts the operations of a closure called from a native function (`Array.all`,
//! `map`, `filter`, `sort`…) on a copy of its counter that is thrown away when the closure
//! returns, so its own operation limit never sees them. The progress callback, however, runs
//! for every operation, copy or not: it is where operations are counted ([`super::spend`]).

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Scope};

use super::{
    bounded, spend, Stop, MAX_ARRAY_SIZE, MAX_CALL_LEVELS, MAX_MAP_SIZE, MAX_OPERATIONS,
    MAX_STRING_SIZE,
};

/// Marker of the termination raised by the budget; the stop is in the text.
const STOP_PREFIX: &str = "spectacular-stop:";

/// A bounded engine: [`Engine::new`] (so the standard packages are there; the crate is built
/// with `no_time` and `no_module`, so there is no clock and no `import`) with operation,
/// call-depth, expression-depth and data-size limits, `eval` disabled, `print` and `debug`
/// silenced, the budget of [`super::bounded`] enforced on every operation, and the
/// size-checked native functions. Variables need not be declared (mission expressions);
/// callers may tighten the settings.
pub fn engine() -> Engine {
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
    engine.on_progress(|_| match spend(1) {
        Ok(()) => None,
        Err(stop) => Some(Dynamic::from(format!("{STOP_PREFIX}{stop:?}"))),
    });
    register_bounded(&mut engine);
    engine
}

/// The engine for mission expressions (`if`, `for_each`).
pub fn expression_engine() -> Engine {
    engine()
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

/// Evaluate one expression over `scope`, within the budget; a failure as a message that names
/// the limit it hit.
pub fn eval_expression(
    engine: &Engine,
    scope: &mut Scope,
    expression: &str,
) -> Result<Dynamic, super::Error> {
    bounded(|| engine.eval_expression_with_scope::<Dynamic>(scope, expression))
        .map_err(|e| super::Error::Script(describe_error(&e)))
}

fn too_large(what: &str) -> Box<EvalAltResult> {
    EvalAltResult::ErrorDataTooLarge(what.to_string(), rhai::Position::NONE).into()
}

/// The length of `text` with every `find` replaced by a `with_len`-byte text, without building
/// it; `None` past `usize`.
fn replaced_len(text: &str, find: &str, with_len: usize) -> Option<usize> {
    if find.is_empty() {
        // Rust inserts the replacement between every character and at both ends.
        let slots = text.chars().count() + 1;
        return text.len().checked_add(slots.checked_mul(with_len)?);
    }
    let count = text.matches(find).count();
    let removed = count * find.len();
    (text.len() - removed).checked_add(count.checked_mul(with_len)?)
}

fn check_string(len: Option<usize>) -> Result<(), Box<EvalAltResult>> {
    match len {
        Some(n) if n <= MAX_STRING_SIZE => Ok(()),
        _ => Err(too_large("Length of string")),
    }
}

fn check_items(count: usize) -> Result<(), Box<EvalAltResult>> {
    if count > MAX_ARRAY_SIZE {
        return Err(too_large("Size of array"));
    }
    Ok(())
}

/// Pieces of `text` split at `delimiter`, as Rust counts them.
fn pieces(text: &str, delimiter: &str) -> usize {
    if delimiter.is_empty() {
        text.chars().count() + 2
    } else {
        text.matches(delimiter).count() + 1
    }
}

fn strings(parts: impl Iterator<Item = impl Into<ImmutableString>>) -> rhai::Array {
    parts.map(|p| Dynamic::from(p.into())).collect()
}

/// Replacements, registered over Rhai's own, for the native functions whose result can be far
/// larger than their arguments: they check the size of the result before building it, so a
/// blow-up is a size-limit error and never an allocation failure.
fn register_bounded(engine: &mut Engine) {
    engine.register_fn(
        "replace",
        |text: &mut ImmutableString, find: &str, with: &str| -> Result<(), Box<EvalAltResult>> {
            check_string(replaced_len(text, find, with.len()))?;
            *text = text.replace(find, with).into();
            Ok(())
        },
    );
    engine.register_fn(
        "replace",
        |text: &mut ImmutableString, find: char, with: &str| -> Result<(), Box<EvalAltResult>> {
            let mut buffer = [0; 4];
            check_string(replaced_len(
                text,
                find.encode_utf8(&mut buffer),
                with.len(),
            ))?;
            *text = text.replace(find, with).into();
            Ok(())
        },
    );
    engine.register_fn(
        "replace",
        |text: &mut ImmutableString, find: &str, with: char| -> Result<(), Box<EvalAltResult>> {
            check_string(replaced_len(text, find, with.len_utf8()))?;
            *text = text.replace(find, &with.to_string()).into();
            Ok(())
        },
    );
    engine.register_fn(
        "split",
        |text: &mut ImmutableString, delimiter: &str| -> Result<rhai::Array, Box<EvalAltResult>> {
            check_items(pieces(text, delimiter))?;
            Ok(strings(text.split(delimiter)))
        },
    );
    engine.register_fn(
        "split",
        |text: &mut ImmutableString, delimiter: char| -> Result<rhai::Array, Box<EvalAltResult>> {
            check_items(text.matches(delimiter).count() + 1)?;
            Ok(strings(text.split(delimiter)))
        },
    );
    engine.register_fn(
        "split_rev",
        |text: &mut ImmutableString, delimiter: &str| -> Result<rhai::Array, Box<EvalAltResult>> {
            check_items(pieces(text, delimiter))?;
            Ok(strings(text.rsplit(delimiter)))
        },
    );
    engine.register_fn(
        "to_chars",
        |text: &mut ImmutableString| -> Result<rhai::Array, Box<EvalAltResult>> {
            check_items(text.chars().count())?;
            Ok(text.chars().map(Dynamic::from).collect())
        },
    );
    engine.register_fn(
        "split_whitespace",
        |text: &mut ImmutableString| -> Result<rhai::Array, Box<EvalAltResult>> {
            check_items(text.split_whitespace().count())?;
            Ok(strings(text.split_whitespace()))
        },
    );
}

/// A script failure, for people: which limit was hit, or what went wrong and where.
pub fn describe_error(error: &EvalAltResult) -> String {
    use EvalAltResult as E;
    let at = |pos: rhai::Position| match (pos.line(), pos.position()) {
        (Some(line), Some(col)) => format!(" (line {line}, column {col})"),
        (Some(line), None) => format!(" (line {line})"),
        _ => String::new(),
    };
    match error {
        E::ErrorInFunctionCall(_, _, inner, _) => describe_error(inner),
        E::ErrorTooManyOperations(pos) => format!("{}{}", Stop::Operations.message(), at(*pos)),
        E::ErrorStackOverflow(pos) => format!(
            "call depth limit exceeded: functions nest deeper than {MAX_CALL_LEVELS} calls{}",
            at(*pos)
        ),
        E::ErrorDataTooLarge(what, pos) => format!(
            "size limit exceeded: {} is larger than allowed (strings {MAX_STRING_SIZE} bytes, arrays {MAX_ARRAY_SIZE} items, maps {MAX_MAP_SIZE} entries){}",
            what.to_lowercase(),
            at(*pos)
        ),
        E::ErrorTerminated(..) => match stop_of(error) {
            Some(stop) => format!("{}{}", stop.message(), at(error.position())),
            None => error.to_string(),
        },
        other => {
            let text = other.to_string();
            // Rhai appends the position itself in most messages; keep them on one line.
            text.lines().collect::<Vec<_>>().join("; ")
        }
    }
}

/// The budget stop behind an error, if that is what ended the evaluation.
pub fn stop_of(error: &EvalAltResult) -> Option<Stop> {
    match error {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => stop_of(inner),
        EvalAltResult::ErrorTooManyOperations(_) => Some(Stop::Operations),
        EvalAltResult::ErrorTerminated(token, _) => {
            let text = token.clone().into_string().ok()?;
            match text.strip_prefix(STOP_PREFIX)? {
                "Operations" => Some(Stop::Operations),
                "Deadline" => Some(Stop::Deadline),
                "Interrupted" => Some(Stop::Interrupted),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Which limit an error hit, if any: `operations`, `call-depth`, `size`, `wall-clock`,
/// `interrupted`.
pub fn limit_kind(error: &EvalAltResult) -> Option<&'static str> {
    use EvalAltResult as E;
    match error {
        E::ErrorInFunctionCall(_, _, inner, _) => limit_kind(inner),
        E::ErrorStackOverflow(_) => Some("call-depth"),
        E::ErrorDataTooLarge(..) => Some("size"),
        _ => stop_of(error).map(|stop| match stop {
            Stop::Operations => "operations",
            Stop::Deadline => "wall-clock",
            Stop::Interrupted => "interrupted",
        }),
    }
}
